"""The training loop.

One step::

    batch -> forward (traced) -> cost (+ penalty) -> backward sweep -> gradients
          -> one flat gradient buffer -> optimizer update of the flat parameter buffer

The model's parameters are views into one flat buffer owned by the
:class:`Trainer`, so the optimizer updates all of them with a handful of NumPy
calls, and checkpoints save one array.  All randomness (shuffling, dropout)
comes from the trainer's ``numpy.random.Generator``, which checkpoints save
too: a run stopped, saved, loaded and continued ends with the same parameters,
bit for bit, as a run that never stopped.
"""

from __future__ import annotations

import contextlib
import select
import time

import numpy as np

from .. import validate as V
from ..autodiff.capture import jit
from ..autodiff.transforms import value_and_grad
from ..autodiff.tree import tree_flatten, tree_unflatten
from ..distributed import LeadFailed, _drain, _wake, _wake_reachable, _wake_socket, parallel_choice, thread_limit, threads_in_use
from ..losses import get_loss, l1_penalty, l2_penalty
from ..nn.layers import BatchNorm, Sequential
from ..optim import FullBatchOptimizer, Optimizer, Schedule, for_run, get_optimizer, get_schedule, run_schedule
from . import checkpoint
from .callbacks import Callback, Checkpoint, History, ProgressBar, TerminateOnNaN
from .metrics import check_metrics, compute_metric

__all__ = ["Trainer", "fit", "predict", "evaluate", "prepare_data", "load"]

#: At most this many bytes of each array's rows are hashed when ranks that may shard compare their data
#: (:meth:`Trainer._fingerprints`: a strided sample, with the float64 sum of the whole array).
FINGERPRINT_BYTES = 1 << 16

#: parallel="auto" shards only when a step of a shard with the Allreduce took less than this share of a step of the
#: whole batch (on the slowest rank)
SHARD_MARGIN = 0.9




def prepare_data(model, loss, X, y, where="training data"):
    """Validated, converted copies of X and y (never modifies the caller's arrays)."""
    X = V.as_array(X, f"{where}: X")
    y = V.as_array(y, f"{where}: y")
    if X.ndim == 0:
        raise V.InvalidTypeError(f"{where}: X must be an array of rows (n_samples, n_features), got {X!r:.60}")
    if X.size == 0 or X.shape[0] == 0:
        raise ValueError(f"{where}: X is empty")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{where}: X must be numeric, got dtype {X.dtype}")
    if X.ndim == 1:
        X = X[:, None] if model.n_inputs == 1 else X[None, :]
    if X.ndim != 2:
        raise ValueError(f"{where}: X must be 2-d (n_samples, n_features), got shape {X.shape}")
    if X.shape[1] != model.n_inputs:
        raise ValueError(
            f"{where}: X has {X.shape[1]} features but the model's first layer expects {model.n_inputs}"
        )
    if y.ndim == 0:
        raise ValueError(f"{where}: y is a single number; give one target (or row of targets) per sample")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"{where}: X has {X.shape[0]} rows but y has {y.shape[0]}")
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{where}: y must be numeric, got dtype {y.dtype}")
    X = V.finite_array(X, f"{where}: X", model.dtype)  # finite in the model's dtype too
    V.finite_array(y, f"{where}: y", model.dtype if y.dtype.kind == "f" else None)
    k = model.n_outputs
    if loss.name == "cross_entropy":
        if y.ndim == 1:
            if y.dtype.kind == "f" and not np.all(y == np.round(y)):
                raise ValueError(f"{where}: cross-entropy targets must be integer class labels or one-hot rows")
            y = y.astype(np.int64)
            if y.min() < 0 or y.max() >= k:
                raise ValueError(
                    f"{where}: labels must lie in [0, {k}) for {k} output units, got [{y.min()}, {y.max()}]"
                )
        elif y.shape != (X.shape[0], k):
            raise ValueError(f"{where}: one-hot targets must have shape ({X.shape[0]}, {k}), got {y.shape}")
        else:
            _check_probability_rows(y, where)
            y = y.astype(model.dtype)
    else:
        labels = y.ndim == 1 and k > 1 and y.size and (y.dtype.kind in "biu" or np.all(y == np.round(y))) and y.min() >= 0
        if y.ndim == 1:
            y = y[:, None]
        if y.shape[1] != k:
            hint = (f"; y looks like integer class labels: for classification give loss=\"cross_entropy\" (labels "
                    f"in [0, {k}) for the {k} outputs)" if labels else "")
            raise ValueError(f"{where}: y has {y.shape[1]} columns but the model has {k} outputs{hint}")
        if loss.name == "binary_cross_entropy" and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"{where}: binary cross-entropy targets must lie in [0, 1], got [{y.min()}, {y.max()}]")
        y = y.astype(model.dtype)
    return X, y


#: how far a row of cross-entropy targets may sum from 1: probabilities written to a few decimals (0.333 three
#: times) or rounded to float32 are rows of probabilities, not a mistake (-5 times a one-hot row is)
ROW_SUM_TOLERANCE = 1e-2


def _check_probability_rows(y, where):
    """Refuse 2-d cross-entropy targets that are not one-hot or probability rows (entries >= 0, each row summing
    to 1): against other rows softmax cross-entropy is no cost at all (-5 * one-hot rows give a negative one)."""
    y = np.asarray(y, dtype=np.float64)
    if (y < 0).any():
        i, j = (int(v) for v in np.argwhere(y < 0)[0])
        raise V.InvalidValueError(f"{where}: cross-entropy targets must be one-hot or probability rows (entries "
                                  f">= 0, each row summing to 1); y[{i}, {j}] is {y[i, j]:g}")
    sums = y.sum(axis=1)
    off = np.abs(sums - 1) > ROW_SUM_TOLERANCE
    if off.any():
        i = int(np.argmax(off))
        raise V.InvalidValueError(f"{where}: cross-entropy targets must be one-hot or probability rows (entries "
                                  f">= 0, each row summing to 1); row {i} sums to {sums[i]:g}")


def _validation_pair(data):
    """``validation_data`` as its two arrays; anything but an ``(X_val, y_val)`` pair is refused, said so."""
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return tuple(data)
    if isinstance(data, (tuple, list)):
        got = f"a {type(data).__name__} of {len(data)} items"
    elif isinstance(data, np.ndarray):
        got = f"an array of shape {data.shape}"
    else:
        got = f"{type(data).__name__} {data!r:.40}"
    raise V.InvalidTypeError(f"validation_data: expected an (X_val, y_val) pair, got {got}")


def _callback_list(callbacks):
    """``callbacks`` as a list: one Callback alone is a list of one; ``None`` is none."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    if isinstance(callbacks, (str, bytes, dict)) or not hasattr(callbacks, "__iter__"):
        raise V.InvalidTypeError(f"callbacks: expected a Callback or a list of Callbacks, got {callbacks!r:.60}")
    return list(callbacks)


def _evaluate(model, loss, X, y, metrics):
    logits = model.apply(model.params, X, logits=loss.from_logits)
    out = {"loss": float(loss(logits, y))}
    if metrics:
        out.update({m: compute_metric(m, _probabilities(logits, loss), y, loss.task) for m in metrics})
    return out


def _probabilities(logits, loss):
    """What metrics see: for costs from logits, the loss's own link (sigmoid, softmax) of the logits."""
    from ..nn.activations import get_activation

    return get_activation(loss.link)(logits) if loss.from_logits else logits


class _SignalsCaught:
    """While in the block, SIGINT and SIGTERM are recorded in ``caught`` instead of acted on (Python-level
    handlers, in the main thread only: a signal that another thread takes, MPI's or BLAS's, still reaches
    them), so a collective that exchanges a trainer's state is never left half done; at the end the previous
    handlers are put back, and the first signal caught is acted on as they would have (:meth:`reraise`), in
    place of whatever else ended the block.

    A signal is caught only when it would stop this process: the previous handler runs when it arrives, as
    it would have, and what it raises (KeyboardInterrupt, the command line's SIGTERM exception) is kept for
    :meth:`reraise`; a handler that returns (a "finish gracefully" flag) lets everything go on; the
    system's default action (SIG_DFL) is caught and delivered again by :meth:`reraise`; an ignored signal
    (SIG_IGN) stays ignored.

    While ``at_once`` is set (rank 0 training alone inside the block: :meth:`Trainer._lead`), a signal caught
    also stops the code at once, as it would outside the block: it raises what the handler raised
    (KeyboardInterrupt under SIG_DFL, whose default action comes at the end) and unsets ``at_once``, so the
    rest of the block (rank 0's release of the others) records signals again.  The handler stays ours
    throughout: no handler is put back and taken again between the two, where a signal could slip past."""

    def __init__(self):
        self.caught = []
        self.at_once = False
        self._raised, self._acted = None, False
        self._previous = []

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            try:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    previous = signal.getsignal(sig)
                    # None: a handler set outside Python, left alone; SIG_IGN: the program ignores it, and so do we
                    if previous is not None and previous != signal.SIG_IGN:
                        self._previous.append((sig, previous))
                        signal.signal(sig, self._record)
            except BaseException:  # a SIGTERM whose handler raised, between the two: SIGINT not left ours
                self._put_back()
                raise
        return self

    def _record(self, signum, frame):
        previous, raised = dict(self._previous).get(signum), None
        if callable(previous):
            try:
                previous(signum, frame)
                return  # (a handler that returns stops nothing)
            except BaseException as e:  # noqa: BLE001 - kept, and raised by reraise()
                raised = e
        if not self.caught:
            self._raised = raised  # (None under SIG_DFL: reraise() delivers the signal again)
        self.caught.append(signum)
        if self.at_once:  # (see the class)
            self.at_once = False
            raise raised or KeyboardInterrupt(f"signal {signum}")

    def previous(self, signum):
        """The handler the block took over for ``signum``: what the signal does outside it."""
        import signal

        return dict(self._previous).get(signum, signal.getsignal(signum))

    def __exit__(self, *exc):
        self._put_back()
        self.reraise()
        return False

    def _put_back(self):
        """The handlers the block took over, put back (each, whatever putting back another raised)."""
        import signal

        def restore(pairs):
            if pairs:
                try:
                    signal.signal(*pairs[0])
                finally:
                    restore(pairs[1:])

        pairs, self._previous = self._previous, []
        restore(pairs)

    def reraise(self):
        """Act on the first signal caught, once: raise what its handler raised when it came (Python's SIGINT
        handler KeyboardInterrupt, the command line's SIGTERM handler its own), or deliver it again to the
        system's default action (SIG_DFL)."""
        if not self.caught or self._acted:
            return
        self._acted = True
        if self._raised is not None:
            raise self._raised
        import signal

        signal.raise_signal(self.caught[0])  # caught under SIG_DFL, which is back in place: its default action


#: The longest a rank waiting for rank 0's wake-up datagram sleeps between tests of its barrier, in milliseconds
#: (:func:`_wait_asleep`): how soon a Ctrl-C it caught reaches rank 0; a datagram lost costs a few of these
#: (MPICH's nonblocking barrier completes at the second to fifth test after rank 0's part is posted).
WAKE_POLL_MS = 50


def _wait_asleep(request, between=None, wake=None):
    """Wait for the MPI ``request`` asleep (MPI's blocking waits spin on a core); ``between()`` is called between
    tests of it.

    With ``wake`` (a rank waiting while rank 0 on its machine leads: its wake-up socket,
    :func:`nablanet.distributed._wake_socket`, whose datagrams left from earlier fits were read before this fit's
    agreement, so any waiting is this fit's), the rank sleeps in ``poll`` on the socket, ``WAKE_POLL_MS`` at
    most between tests, until rank 0's datagram comes
    (sent once rank 0 has posted its part of the barrier): the kernel wakes it then, where naps of 2 ms woke
    it 500 times a second on the cores rank 0 trains with.  From then on, and without ``wake``, the request is
    tested every 0.1 ms backing off to 2 ms, in ``time.sleep``.  The datagram is a hint: only the request ends
    the wait (a datagram lost costs a few polls of ``WAKE_POLL_MS``)."""
    poller = None
    if wake is not None:  # (stale datagrams were read before the fit's agreement: any here is this fit's)
        poller = select.poll()
        poller.register(wake, select.POLLIN)
    nap, short_until = 1e-4, time.monotonic() + SHORT_NAPS_SECONDS
    while not request.Test():  # (a completed request tests True again)
        if between is not None:
            between()
        if poller is not None:
            try:  # (a signal handler that returns restarts the poll, PEP 475: the timeout bounds the wait)
                woken = poller.poll(WAKE_POLL_MS)
            except OSError:
                woken = True
            if woken:  # rank 0 is releasing the ranks: test again now, then every 0.1-2 ms
                _drain(wake)
                poller = None
            continue
        time.sleep(nap)
        if time.monotonic() > short_until:
            nap = min(2 * nap, 0.002)  # rank 0 waits up to this for a waiting rank without a wake-up socket


#: For how long :func:`_wait_asleep` tests its request every 0.1 ms before it backs off to 2 ms: the other ranks
#: of a fit's start-of-fit agreement come within milliseconds of each other (rank 0 writes its run folder's
#: configuration first), and a rank that had backed off to 2 ms naps kept rank 0 waiting 2-4 ms there.
SHORT_NAPS_SECONDS = 0.02


#: The MPI tag of the message a rank waiting for rank 0 (parallel="lead") sends it when Ctrl-C or SIGTERM stops it.
_STOP_TAG = 29517


class _StopWhenAsked(Callback):
    """Rank 0 training alone (parallel="lead"): at each epoch's end, one ``Iprobe`` for a waiting rank's word
    that Ctrl-C or SIGTERM stopped it; then rank 0 stops as that signal would stop it (its handler's exception:
    KeyboardInterrupt, the command line's SIGTERM one), after the other callbacks have seen the epoch.  The
    handler is the one the fit's ``signals`` (:class:`_SignalsCaught`) took over."""

    def __init__(self, comm, signals):
        self.comm, self.signals, self.received = comm, signals, 0

    def on_epoch_end(self, trainer, epoch, logs):
        status = self.comm.MPI.Status()
        if not self.comm.comm.Iprobe(source=self.comm.MPI.ANY_SOURCE, tag=_STOP_TAG, status=status):
            return False
        signum = self.comm.comm.recv(source=status.Get_source(), tag=_STOP_TAG)
        self.received += 1
        handler = self.signals.previous(signum)
        if callable(handler):  # (a handler of the system's, SIG_DFL, would end rank 0 before it saves)
            handler(signum, None)
        raise KeyboardInterrupt(f"MPI rank {status.Get_source()} was interrupted while rank 0 trained alone")


def _mask_stream(rng, epoch, rank):
    """A sharded rank's generator of dropout masks for one epoch: seeded from the state of the stream all ranks
    share (rank 0's, which its checkpoint keeps), the epoch and the rank, without drawing from that stream, so
    the shuffles are one process's and a resumed run draws the masks the unbroken one drew."""
    import hashlib

    digest = hashlib.sha256(repr(sorted(rng.bit_generator.state.items())).encode()).digest()
    return np.random.default_rng([int.from_bytes(digest[:16], "little"), int(epoch), int(rank)])


class Trainer:
    """Trains a model: holds the flat parameter buffer, optimizer state, RNG and history.

    Parameters
    ----------
    model : nablanet.nn.Sequential (or MLP)
    loss : str or callable
        ``"mse"``, ``"half_sse"``, ``"mae"``, ``"huber"``, ``"cross_entropy"``
        (softmax, from logits), ``"bce"`` (sigmoid, from logits), or ``(y, t) -> cost``.
    optimizer : str or Optimizer
        ``"sgd"``, ``"adam"``... or an instance from :mod:`nablanet.optim`
        (which brings its own settings: giving ``lr`` or any other setting
        beside an instance is an error);
        the full-batch methods ``"lbfgs"``, ``"newton"`` and ``"hessian_free"``
        (:mod:`nablanet.optim.second_order`) run one iteration per epoch on
        all rows (``batch_size=None``) in float64, see :mod:`nablanet.train.fullbatch`.
    lr : float or Schedule, optional
        Learning rate when ``optimizer`` is a name (default: the optimizer's).
    schedule : str, Schedule or dict, optional
        A named schedule of :data:`nablanet.optim.RUN_SCHEDULES` (``"cosine"``,
        ``"step_decay"``, ``"exponential"``, ``"inverse_time"``; ``"step"`` is
        ``"step_decay"``) starting at ``lr`` and fitted to the epochs of each
        :meth:`fit`; or a Schedule object or its config dict, which is the
        learning rate itself (``warmup``, which takes settings of its own, is
        given so: ``schedule=optim.warmup(optim.cosine(0.01, 1000), warmup_steps=100)``).
    **optimizer_settings
        The named optimizer's other settings: ``momentum``, ``nesterov``,
        ``betas=(b1, b2)`` (or ``beta1``, ``beta2``), ``eps``, ``rho``,
        ``weight_decay``, ``clip_norm``.
    l1, l2 : float
        Strengths of the L1 and L2 penalties on the weights (``lam sum|W|``,
        ``lam sum W^2``), added to the cost the optimizer sees.
    penalize_bias : bool
        Apply the penalties to biases too.
    seed : int or numpy.random.Generator
        Shuffling and dropout.
    capture : bool
        Replay a captured step instead of tracing every step; the gradients are the same.
    comm : nablanet.distributed.Communicator, optional
        Train data-parallel over MPI ranks (see :mod:`nablanet.distributed`).
    parallel : {"auto", "shard", "lead"}
        How the ranks share the steps (:mod:`nablanet.distributed`): each its
        shard of every batch and one Allreduce per step, or rank 0 all of
        them alone, as one process, while the others wait asleep and take its
        state at the end (callbacks run on rank 0 only); ``"auto"`` times both
        at the first fit and keeps the faster, in :attr:`parallel_mode` (and in
        checkpoints).  No effect without MPI (``comm`` None or of one rank).
    threads : int, optional
        BLAS/OpenMP threads rank 0 trains with in ``"lead"`` mode (default:
        what one process on its machine uses, the cores its ranks share); the
        limits are restored after the fit.
    _names : dict, optional
        The caller's names of settings, for the errors (the estimators':
        ``{"lr": "learning_rate"}``).

    Attributes
    ----------
    interrupted : bool
        Whether the last :meth:`fit` ended by an exception (Ctrl-C, SIGTERM on
        the command line, the NaN guard) rather than at its last epoch or a
        callback's stop; callbacks read it in ``on_train_end``.
    parallel_mode : str or None
        ``"shard"`` or ``"lead"``, what the ranks do (None until the first
        fit over more than one rank); ``parallel_timing`` holds the seconds the
        ``"auto"`` choice compared.
    """

    def __init__(self, model, loss="mse", optimizer="adam", lr=None, l1=0.0, l2=0.0, penalize_bias=False, seed=None,
                 capture=True, comm=None, schedule=None, parallel="auto", threads=None, _names=None,
                 **optimizer_settings):
        l1, l2 = V.non_negative_number(l1, "l1"), V.non_negative_number(l2, "l2")
        self.parallel = parallel_choice()(parallel, "parallel")
        self.threads = V.Optional(V.positive_int)(threads, "threads")
        self.lead_threads = None  # the BLAS/OpenMP threads rank 0 trained with when it last led
        self.parallel_mode, self.parallel_timing = None, None
        self.parallel_batch_size = None  # the batch size auto chose parallel_mode for (None: any, or not chosen)
        penalize_bias, seed = V.boolean(penalize_bias, "penalize_bias"), V.seed(seed, "seed")
        if not isinstance(model, Sequential):
            raise V.InvalidTypeError(f"model: expected a nablanet network (nablanet.nn.MLP or Sequential), "
                                     f"got {type(model).__name__}")
        self.model = model
        self.loss = get_loss(loss)
        self._schedule = None
        if schedule is not None and isinstance(optimizer, Optimizer):
            raise ValueError(f"optimizer={optimizer!r} is an Optimizer object with its own learning rate, and "
                             f"schedule={schedule!r} was given as well; give the schedule as the object's lr")
        if isinstance(schedule, dict):  # a config dict, as lr takes one
            schedule = get_schedule(schedule)
        if isinstance(schedule, Schedule):
            if lr is not None:
                raise ValueError(f"{(_names or {}).get('lr', 'lr')}={lr!r} and schedule={schedule!r} were both given; "
                                 f"a Schedule object is the learning rate, give one of them")
            lr = schedule
        elif schedule is not None:
            schedule = run_schedule(schedule, "schedule")
            self._schedule = None if schedule == "constant" else schedule
        self.optimizer = get_optimizer(optimizer, _names, lr=lr, **optimizer_settings)
        if self._schedule is not None and isinstance(self.optimizer, FullBatchOptimizer):
            raise ValueError(f"{self.optimizer.name} takes no learning rate or schedule (schedule={schedule!r} was "
                             f"given): its steps come from a line search")
        self._base_lr = self.optimizer.lr
        if l1 < 0 or l2 < 0:
            raise ValueError(f"penalty strengths must be non-negative, got l1={l1}, l2={l2}")
        self.l1, self.l2, self.penalize_bias = float(l1), float(l2), bool(penalize_bias)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._mask_rng = None  # a sharded rank's dropout stream during an epoch (else self.rng draws the masks)
        self.epoch = 0
        self.history = History()
        self.callback_state = {}  # what resumable callbacks file here (Callback.save_state); checkpoints carry it
        self.callback_arrays = {}  # and the arrays they keep (EarlyStopping's best epoch), by the same key
        self.run_config = None  # the settings of the run training it (run_training), carried by its checkpoints
        self.interrupted = False  # whether the last fit ended by an exception (callbacks' on_train_end read it)
        self.comm = comm
        if self.parallel != "auto" and self._distributed:  # a mode named is the mode from the start
            self.parallel_mode = self.parallel
        self._check_loss_fits_model()
        self._flatten()
        self.capture = bool(capture)
        self._connect()
        self.opt_state = self.optimizer.init([self._flat])
        self._epochs_planned = 0

    def __repr__(self):
        pen = f", schedule={self._schedule}" if self._schedule is not None else ""  # the object shows its base rate
        pen += "".join(f", {k}={v:g}" for k, v in (("l1", self.l1), ("l2", self.l2)) if v)
        last = self.history.last()
        tail = f", last loss={last['loss']:.4g}" if last.get("loss") is not None else ""
        return (f"Trainer({self.model!r}, loss={self.loss.name}, optimizer={self.optimizer!r}{pen}, "
                f"epochs done={self.epoch}{tail})")

    # ------------------------------------------------------------------ parameters as one buffer
    def _flatten(self):
        model = self.model
        leaves, self._treedef = tree_flatten(model.params)
        sizes = [leaf.size for leaf in leaves]
        self._flat = np.empty(sum(sizes), dtype=model.dtype)
        # the gradient buffer has one slot more: the cost, so that data-parallel training
        # sums gradients and cost in one Allreduce
        self._gbuf = np.empty(self._flat.size + 1, dtype=model.dtype)
        self._gflat = self._gbuf[:-1]
        offs = np.cumsum([0] + sizes)
        views, gviews = [], []
        for leaf, a, b in zip(leaves, offs[:-1], offs[1:]):
            v = self._flat[a:b].reshape(leaf.shape)
            v[...] = leaf
            views.append(v)
            gviews.append(self._gflat[a:b].reshape(leaf.shape))
        model.params = tree_unflatten(self._treedef, views)
        self._params_tree, self._pleaves = model.params, views
        self._gviews = gviews
        self._dests = {}  # where a captured step writes its outputs (None: a fresh array), by number of state leaves
        self._state_tree, self._n_state = None, 0  # the running statistics last seen, and how many leaves they have

    def _connect(self):
        """Data-parallel set-up: the same parameters on every rank; global batch statistics.

        Layers that reduce over the batch receive the sum over the ranks as
        an argument of the forward pass (``reduce``; None when training
        serially); nothing is set on the model.
        """
        self._steps = {}  # the differentiated step, per (scale is 1, penalties on)
        self._set_mode(self.parallel_mode)
        if self.comm is not None:
            self.comm.bcast_(self._flat)

    @property
    def _distributed(self):
        return self.comm is not None and self.comm.size > 1

    def _set_mode(self, mode):
        """Shard the batches over the ranks (batch statistics summed over them) unless ``mode`` is "lead"."""
        self._sharded = self.comm is not None and mode != "lead"
        self._reduce = self.comm.sum_over_ranks if self._sharded else None

    @property
    def is_root(self):
        """Whether this process writes files: always, unless it is a rank other than 0."""
        return self.comm is None or self.comm.is_root

    def get_flat_params(self):
        return self._flat

    def set_flat_params(self, flat):
        self._flat[...] = flat

    # ------------------------------------------------------------------ checks
    def _check_loss_fits_model(self):
        loss, model = self.loss, self.model
        out_act = model.output_activation.name
        if loss.from_logits and out_act not in ("identity", loss.link):
            raise ValueError(
                f"loss {loss.name} works from logits and needs output_activation {loss.link!r} "
                f"(or identity), but the model's is {out_act!r}"
            )
        k = model.n_outputs
        if loss.name == "cross_entropy" and k < 2:
            raise ValueError(
                "softmax cross-entropy needs at least 2 output units, but the model has 1; "
                "use loss='bce' with a sigmoid output for two classes"
            )

    # ------------------------------------------------------------------ one step
    def penalty(self, params):
        """The weight penalties on ``params`` (differentiable): :func:`nablanet.losses.l1_penalty` and ``l2_penalty``."""
        pen = 0.0
        if self.l1:
            pen = pen + l1_penalty(params, self.l1, self.penalize_bias)
        if self.l2:
            pen = pen + l2_penalty(params, self.l2, self.penalize_bias)
        return pen

    def objective(self, params, state, X, y, rng, scale=1.0, penalize=True):
        """The training objective as a pure function: ``(scale * (cost + penalties), new_state)``.

        ``state`` holds the running statistics in, ``new_state`` the updated
        ones out; ``rng`` draws the dropout masks.  This is what a step
        differentiates with respect to ``params``.
        """
        out, new_state = self.model.apply(params, X, state=state, train=True, rng=rng, logits=self.loss.from_logits,
                                          return_state=True, reduce=self._reduce)
        cost = self.loss(out, y)
        if penalize and (self.l1 or self.l2):
            cost = cost + self.penalty(params)
        return (cost if scale == 1.0 else cost * scale), new_state

    def _step_fn(self, penalize, scaled):
        """``value_and_grad`` of the objective, captured with ``jit``.

        The function takes the parameters as the list of the flat buffer's
        views and returns their gradients as a list (written into the flat
        gradient buffer); the running statistics go in and come out as the
        model's state tree (the replay builds the new tree itself).  What the
        objective reads besides its arguments is part of the key: a changed
        penalty, loss or communicator never replays a stale program.
        """
        key = (penalize, scaled, self.capture, self.l1, self.l2, self.penalize_bias, self.loss, self._reduce)
        fn = self._steps.get(key)
        if fn is None:
            pdef = self._treedef

            def step(pleaves, state, X, y, rng, scale=1.0):
                return self.objective(tree_unflatten(pdef, pleaves), state, X, y, rng, scale, penalize)

            fn = value_and_grad(step if scaled else (lambda p, s, X, y, rng: step(p, s, X, y, rng)), has_aux=True)
            if self.capture:
                fn = jit(fn)
            self._steps[key] = fn
        return fn

    def gradient(self, X, y, scale=1.0, penalize=True):
        """The objective on ``(X, y)`` (prepared) times ``scale``; its gradient is left in the flat gradient buffer.

        One call of the captured ``jit(value_and_grad(objective))``: forward
        pass, cost, penalties and backward sweep replayed as one program (traced
        once per batch shape), whatever the layers and the loss.  The running
        statistics it returns become the model's state; the penalties are
        included unless ``penalize=False``.
        """
        model = self.model
        if model.params is not self._params_tree:  # parameters replaced from outside: re-read them
            self._pleaves = tree_flatten(model.params)[0]
            self._params_tree = model.params
        state = model.state
        if state is not self._state_tree:  # not the tree the last step set (the first step, or set from outside)
            self._state_tree, self._n_state = state, len(tree_flatten(state)[0])
        n_state = self._n_state
        scaled = scale != 1.0
        rng = self.rng if self._mask_rng is None else self._mask_rng
        args = (self._pleaves, state, X, y, rng) + ((float(scale),) if scaled else ())
        fn = self._step_fn(bool(penalize), scaled)
        if self.capture:  # the replay writes the gradients straight into the flat gradient buffer
            dests = self._dests.get(n_state)
            if dests is None:
                dests = self._dests[n_state] = [None] * (1 + n_state) + self._gviews
            (cost, new_state), _ = fn.call_into(dests, *args)
        else:
            (cost, new_state), grads = fn(*args)
            for gv, g in zip(self._gviews, grads):
                gv[...] = g
        if n_state:  # the running statistics the step computed are the model's state (same structure)
            model.state = self._state_tree = new_state
        return float(cost)

    def train_step(self, X, y, n_global=None):
        """One optimizer step on the batch ``(X, y)`` (already prepared); returns the cost.

        Data-parallel (``parallel_mode`` "shard"): ``(X, y)`` is this rank's
        shard of a global batch of ``n_global`` rows; the shard gradients,
        weighted by their sizes, are summed over the ranks in one Allreduce
        before the update.  "lead" (on rank 0): ``(X, y)`` is the whole batch.
        """
        if not self._sharded:
            cost = self.gradient(X, y)
        else:
            n = X.shape[0]
            if n_global is None:
                n_global = self.comm.comm.allreduce(n)
            if n:
                # the shard's weight scales its objective before the sweep, so the terms that cross
                # ranks (batch statistics) are weighted like the rest, and the penalties, the same
                # on every rank, add up to one penalty over the ranks' weights n / n_global
                self._gbuf[-1] = self.gradient(X, y, n / n_global)
            else:
                self._gbuf[...] = 0
            self.comm.allreduce_sum_(self._gbuf)
            cost = float(self._gbuf[-1])
        self.optimizer._step([self._flat], [self._gflat], self.opt_state)  # its own state (init, or a checked checkpoint)
        return cost

    # ------------------------------------------------------------------ the loop
    def fit(self, X, y, epochs=10, batch_size=None, shuffle=True, validation_data=None, validation_split=None,
            callbacks=(), metrics=(), progress=False):
        """Train for ``epochs`` more epochs; returns the :class:`History` (of all epochs so far).

        ``batch_size=None`` is full-batch gradient descent.  ``validation_split``
        holds out that fraction of the rows (the last ones, before shuffling).
        """
        try:
            epochs, X, y, val, n, bs, min_rows, full_batch, mode, metrics, cbs = self._fit_arguments(
                X, y, epochs, batch_size, shuffle, validation_data, validation_split, callbacks, metrics, progress)
            if full_batch:
                from .fullbatch import check_fits

                check_fits(self, n, bs)  # on every rank, before any rank goes its own way
        except Exception as e:
            if self._distributed:  # the other ranks hear of it (they raise an error naming it), then this rank
                with _SignalsCaught() as signals:
                    self._check_ranks_agree(signals, error=e)  # raises its own
            raise
        # Over several ranks, signals are caught (:class:`_SignalsCaught`) from the agreement to the training's
        # start, and under "lead" on to the end of the waiting ranks' release (:meth:`_lead`): no rank that the
        # agreement let go on leaves a lead fit without the others hearing of it (they would wait for it forever).
        with _SignalsCaught() if self._distributed else contextlib.nullcontext() as signals:
            if self._distributed:
                size = None if batch_size is None else int(batch_size)  # np.int64(16) and 16: one batch size
                self._check_ranks_agree(signals, spec={"epochs": epochs, "batch_size": size,
                                                       "mode": mode or "auto (to time)", "full_batch": bool(full_batch)},
                                        data=(X, y, val) if epochs and mode != "lead" else None)
            if full_batch:  # one record per iteration
                from .fullbatch import run_full_batch

                def train():
                    return run_full_batch(self, X, y, val, epochs, bs, metrics, cbs, _evaluate, _probabilities)
            else:
                self._epochs_planned = epochs
            if self._distributed and epochs:
                self._settle_mode(mode, X, y, (0, bs))
                self.parallel_batch_size = bs if self.parallel == "auto" else None
            if not full_batch:
                if self._sharded:
                    min_rows = max(min_rows, self.comm.size)
                starts = list(range(0, n, bs))
                if len(starts) > 1 and n - starts[-1] < min_rows:
                    starts.pop()  # a last batch too small joins the one before
                bounds = list(zip(starts, starts[1:] + [n]))
                if self._schedule is not None:  # the named schedule over all the epochs so far and these
                    self.optimizer.lr = for_run(self._schedule, self._base_lr(0),
                                                (self.epoch + epochs) * len(bounds), len(bounds))

                def train():
                    return self._run_epochs(X, y, val, epochs, bs, bounds, shuffle, metrics, cbs)
            if self._distributed and epochs and self.parallel_mode == "lead":
                self._lead(train, cbs, signals)
                return self.history
        return train()

    def _fit_arguments(self, X, y, epochs, batch_size, shuffle, validation_data, validation_split, callbacks,
                       metrics, progress):
        """:meth:`fit`'s arguments checked and prepared (every refusal of a fit is raised here)."""
        epochs = V.non_negative_int(epochs, "epochs")
        batch_size = V.Optional(V.positive_int)(batch_size, "batch_size")
        shuffle = V.boolean(shuffle, "shuffle")
        if not (isinstance(progress, (bool, np.bool_)) or progress == "force"):
            raise V.InvalidValueError(f"progress: expected True, False or 'force', got {progress!r:.60}")
        if validation_split is not None and validation_data is not None:
            raise ValueError("give validation_data or validation_split, not both")
        if validation_data is not None:
            validation_data = _validation_pair(validation_data)
        if validation_split is not None:
            validation_split = V.open_fraction(validation_split, "validation_split")
            n_val = int(round(len(X) * validation_split))
            if n_val < 1 or n_val >= len(X):
                raise ValueError(f"validation_split={validation_split} leaves no rows for training or validation")
            validation_data = (X[-n_val:], y[-n_val:])
            X, y = X[:-n_val], y[:-n_val]
        X, y = prepare_data(self.model, self.loss, X, y)
        val = None if validation_data is None else prepare_data(self.model, self.loss, *validation_data, "validation data")
        n = X.shape[0]
        bs = n if batch_size is None else int(batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        bs = min(bs, n)
        # the fewest rows a batch may have: 2 for batch statistics, and a row for every rank that shards it
        has_bn = any(isinstance(la, BatchNorm) for la in self.model.layers)
        min_rows = 2 if has_bn else 1
        if n < min_rows or bs < min_rows:
            raise ValueError(f"training data: batch normalization needs 2 rows per batch, but the batches have "
                             f"{min(n, bs)}")
        full_batch = getattr(self.optimizer, "full_batch", False)  # lbfgs, newton, hessian_free
        mode = self._fit_mode(bs, full_batch)
        if mode == "shard" and bs < self.comm.size:
            raise ValueError(f"training data: {self.comm.size} MPI ranks need a row each to shard the batches "
                             f"(parallel='shard'), but the batches have {bs}; parallel='lead' takes them whole")
        metrics = check_metrics(metrics, self.loss.task)
        callbacks = _callback_list(callbacks)
        # checkpoints save after the other callbacks have filed their state for the epoch
        callbacks = sorted(callbacks, key=lambda cb: isinstance(cb, Checkpoint))
        cbs = [TerminateOnNaN()] + list(callbacks) + ([ProgressBar(force=progress == "force")] if progress else [])
        filed = {}
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be nablanet Callbacks, got {type(cb).__name__}")
            if type(cb).state_dict is not Callback.state_dict:  # resumable: its state is filed under its key
                other = filed.setdefault(cb._key(), cb)
                if other is not cb:
                    raise ValueError(
                        f"{type(other).__name__} and {type(cb).__name__} would both file their state under "
                        f"{cb._key()!r} and resume with one another's; give each its own cb.state_key = '...'"
                    )
        return epochs, X, y, val, n, bs, min_rows, full_batch, mode, metrics, cbs

    def _run_epochs(self, X, y, val, epochs, bs, bounds, shuffle, metrics, cbs):
        """The epochs of :meth:`fit` over the batches ``bounds`` (first-order optimizers); returns the history."""
        n = X.shape[0]
        sharded = self._sharded
        batch_cbs = [cb for cb in cbs if type(cb).on_batch_end is not Callback.on_batch_end]
        for cb in cbs:
            cb.on_train_begin(self)
        quiet = np.errstate(over="ignore", invalid="ignore", divide="ignore")  # divergence: TerminateOnNaN says it
        quiet.__enter__()
        self.interrupted = True  # until the epochs end or a callback stops them
        try:
            for _ in range(epochs):
                e = self.epoch
                t0 = time.perf_counter()
                full = bs == n
                if sharded:  # this rank's dropout masks for the epoch (the shared stream itself left as it is)
                    self._mask_rng = _mask_stream(self.rng, e, self.comm.rank)
                order = self.rng.permutation(n) if shuffle and not full else None  # the same on every rank
                total = 0.0
                for b, (start, stop) in enumerate(bounds):
                    lo, hi = self.comm.shard(start, stop) if sharded else (start, stop)
                    if order is None:
                        Xb, yb = (X, y) if full and not sharded else (X[lo:hi], y[lo:hi])
                    else:
                        idx = order[lo:hi]
                        Xb, yb = X[idx], y[idx]
                    cost = self.train_step(Xb, yb, stop - start)
                    total += cost * (stop - start)
                    for cb in batch_cbs:
                        cb.on_batch_end(self, e, b, cost)
                logs = {"epoch": e + 1, "loss": total / n}
                if metrics:
                    logits = self.model.apply(self.model.params, X, logits=self.loss.from_logits)
                    out = _probabilities(logits, self.loss)
                    logs.update({m: compute_metric(m, out, y, self.loss.task) for m in metrics})
                if val is not None:
                    logs.update({f"val_{k}": v for k, v in _evaluate(self.model, self.loss, *val, metrics).items()})
                logs["lr"] = float(self.optimizer.lr(max(self.opt_state["t"] - 1, 0)))
                logs["time"] = time.perf_counter() - t0
                self.history.append(logs)
                self.epoch += 1
                stop = False
                for cb in cbs:
                    stop = bool(cb.on_epoch_end(self, e, logs)) or stop
                if stop:
                    break
            self.interrupted = False
        finally:
            quiet.__exit__(None, None, None)
            self._mask_rng = None
            for cb in cbs:
                cb.on_train_end(self)
        return self.history

    # ------------------------------------------------------------------ data-parallel strategies
    def _fit_mode(self, batch_size, full_batch=False):
        """The mode a fit over several ranks with batches of ``batch_size`` rows trains in (None in one process,
        and when ``"auto"`` is to time both): the ``parallel`` asked for; "lead" for full-batch methods and for
        batches with fewer rows than ranks (they cannot be sharded); else the mode an earlier fit or the
        checkpoint recorded for batches of this size (another size decides again).  (Full-batch methods refuse
        "shard": :func:`.fullbatch.check_fits`.)"""
        if not self._distributed:
            return None
        if self.parallel != "auto":
            return self.parallel
        if full_batch or batch_size < self.comm.size:
            return "lead"
        return self.parallel_mode if self.parallel_batch_size in (None, batch_size) else None

    def _check_ranks_agree(self, signals, error=None, spec=None, data=None):
        """The one collective at the start of every fit over several ranks (epochs 0 included): each rank says
        whether its arguments were refused (``error``), whether it was stopped (Ctrl-C, SIGTERM) while it waited
        for the others here, its settings (``spec``: epochs, batch size, mode, full batch) and, when it may
        shard, a fingerprint of its data (``data``: X, y, validation data or None).  Ranks that went on with
        other settings than the rest hung, each waiting in another collective; now every rank raises one error:
        a refused rank its own (after this returns), the others a ValueError naming that rank and its error;
        a stopped rank its signal, the others KeyboardInterrupt; ranks with other settings or data a
        ValueError naming what differs.  Waits asleep, inside the caller's block of caught signals
        (``signals``, :class:`_SignalsCaught`), whose end acts on a signal caught here whatever else went
        wrong.  Each rank also says the name of its wake-up socket (:meth:`_plan_wake`)."""
        comm = self.comm
        sock, name = _wake_socket()
        word = {"error": None if error is None else f"{type(error).__name__}: {error}", "spec": spec,
                "data": None if data is None else self._fingerprints(*data), "wake": name}
        if sock is not None:
            _drain(sock)  # before this rank's part of the agreement: rank 0 cannot have woken it for this fit yet
        _wait_asleep(comm.comm.Ibarrier())  # the others may come late: wait here asleep, not in allgather
        word["signal"] = signals.caught[0] if signals.caught else None
        every = comm.comm.allgather(word)
        self._plan_wake([w["wake"] for w in every])
        failed = [r for r, w in enumerate(every) if w["error"] is not None]
        if error is not None:
            return  # the caller raises it
        if failed:
            r = failed[0]
            raise ValueError(f"MPI rank {r} could not start the fit: {every[r]['error']}")
        stopped = [r for r, w in enumerate(every) if w["signal"] is not None]
        if stopped:  # (the stopped rank too: the end of ``signals`` raises its own signal's exception instead)
            raise KeyboardInterrupt(f"MPI rank {stopped[0]} was interrupted as the fit started")
        differ = [k for k in spec if len({repr(w["spec"][k]) for w in every}) > 1]
        if differ:
            said = "; ".join(f"{k.replace('_', ' ')}: " + ", ".join(f"rank {r} {w['spec'][k]!r}"
                                                                    for r, w in enumerate(every)) for k in differ)
            raise ValueError(f"the MPI ranks called fit with different settings ({said}); every rank must run the "
                             f"same fit")
        if data is not None:
            self._compare_data([w["data"] for w in every])

    #: Rank 0 leading: the wake-up sockets of the waiting ranks on its machine, and on a waiting rank whether
    #: rank 0 can wake it (:meth:`_plan_wake`, at the start of each fit over several ranks)
    _wake_names, _wake_me = (), False

    def _plan_wake(self, names):
        """From every rank's wake-up socket name (``names``, None for a rank without one), said in the agreement
        at the start of a fit: on rank 0 the names it can reach (the ranks on its machine), whom it wakes when
        it releases them after leading; on the others whether rank 0 can wake this rank (it and rank 0 have
        sockets on one machine), which then sleeps on its socket instead of polling (:func:`_wait_asleep`).
        Ranks elsewhere poll as before."""
        if self.comm.is_root:
            # (a name that could not be probed is sent to all the same: a datagram is cheap, and its rank may
            # be asleep on it)
            self._wake_names = tuple(n for n in names[1:] if n is not None and _wake_reachable(n) is not False)
        else:  # (one that could not be probed: nap, this fit)
            self._wake_me = names[self.comm.rank] is not None and bool(_wake_reachable(names[0]))

    @staticmethod
    def _fingerprints(X, y, val):
        """Shape, dtype, a BLAKE2b digest of a strided sample of the rows (at most ``FINGERPRINT_BYTES``, at
        least one row, spread evenly over the array: first and last included) and the float64 sum of the whole
        array (one pass) of each of the prepared arrays.  Detected: other shapes or dtypes, other rows or
        another order of them where the sample falls, and a changed value anywhere that moves the sum (a
        value changed by less than the sum's rounding, or rows reordered between the sampled ones, is not)."""
        import hashlib

        def describe(a):
            rows = a.reshape(len(a), -1) if a.ndim else a.reshape(1, 1)
            k = max(1, min(len(rows), FINGERPRINT_BYTES // max(1, rows.shape[1] * a.itemsize)))
            sample = np.ascontiguousarray(rows[np.linspace(0, len(rows) - 1, k).astype(np.intp)] if len(rows)
                                          else rows)
            digest = hashlib.blake2b(sample.data, digest_size=16).hexdigest()
            c = np.ascontiguousarray(a).reshape(-1)  # the sum's rounding depends on the layout (a Fortran X)
            # the scale its rounding is compared to: sqrt(n sum a^2) >= sum |a|, with no array as large as X
            # made (integer and boolean sums are exact: 0)
            scale = float(np.sqrt(len(c) * float(np.dot(c, c)))) if np.issubdtype(c.dtype, np.floating) else 0.0
            return [list(a.shape), a.dtype.str, digest, float(np.sum(c, dtype=np.float64)), scale]

        return [describe(a) for a in ((X, y) if val is None else (X, y, *val))]

    @staticmethod
    def _compare_data(every):
        """Raise one error when the ranks' fingerprints (:meth:`_fingerprints`) differ."""
        def same(d, e):  # the sums to 1e-12 of their scale (a sum near 0 rounds otherwise elsewhere)
            return len(d) == len(e) and all(a[:3] == b[:3] and abs(a[3] - b[3]) <= 1e-12 * max(a[4], b[4])
                                            for a, b in zip(d, e))

        differ = [r for r, d in enumerate(every) if not same(d, every[0])]
        if not differ:
            return
        names = ("X", "y", "validation X", "validation y")

        def shape(d):
            x = d[0]
            return f"{x[0]} rows x {x[1]} columns" if len(x) > 1 else f"{x[0]} rows" if x else "a scalar"

        said = []
        for r in differ:
            d, first = every[r], every[0]
            if len(d) != len(first):
                said.append(f"rank {r} has {'no ' if len(d) < len(first) else ''}validation data and rank 0 "
                            f"{'has' if len(d) < len(first) else 'none'}")
                continue
            i = next(i for i, (a, b) in enumerate(zip(d, first)) if not same([a], [b]))
            said.append(f"rank {r}'s {names[i]} has {shape(d[i])}" + (
                f", rank 0's {shape(first[i])}" if d[i][0] != first[i][0] else
                f" ({d[i][1]}), rank 0's {first[i][1]}" if d[i][1] != first[i][1] else
                " with other values than rank 0's"))
        raise ValueError(f"the MPI ranks hold different data: {'; '.join(said)} (every rank must load the same "
                         f"rows to share the steps; parallel='lead' trains on rank 0's alone)")

    def _settle_mode(self, mode, X, y, batch):
        """Fix ``parallel_mode`` before a fit over several ranks: ``mode`` (:meth:`_fit_mode`), else the faster
        on the first global batch ``X[batch]``."""
        if mode is None:
            self.parallel_timing = timing = self._time_modes(X, y, *batch)
            # sharding must win by a margin: its ranks meet every step, so each step waits for the slowest,
            # which a few steps started together underestimate on a busy machine; rank 0 leading meets the
            # others once a fit, and has their cores besides (the timing gave each rank its own share)
            faster = "shard" if timing["shard"] < SHARD_MARGIN * timing["lead"] else "lead"
            mode = self.comm.bcast_object(faster if self.comm.is_root else None)  # rank 0 decides for all
        self.parallel_mode = mode
        self._set_mode(mode)
        if self.parallel_timing is not None:  # the other mode's traced step is not needed any more
            self._steps = {k: fn for k, fn in self._steps.items() if k[-1] == self._reduce}
        if mode == "shard":
            # one random stream for all: rank 0's (the one its checkpoint keeps). Sharded ranks draw the same
            # shuffles from it, and each epoch their masks from a stream of their own seeded from it (see fit),
            # so a resumed run draws what the unbroken one drew. (Rank 0 leading sends its whole state at the end.)
            self.rng.bit_generator.state = self.comm.bcast_object(self.rng.bit_generator.state)

    def _time_modes(self, X, y, start, stop, repeats=5, budget=0.25):
        """Seconds per step of both strategies on the rows ``[start, stop)``, the slowest rank's medians.

        "lead": a gradient of the whole batch (what rank 0 computes alone, timed on every rank at once,
        each with its own BLAS threads); "shard": a gradient of this rank's shard and the Allreduce (the
        update, the same in both, is left out).  Each is evaluated once untimed (tracing
        the step the training then replays), then up to ``repeats`` times while the pairs fit in
        ``budget`` seconds.  Nothing the training sees changes: the running statistics, the random
        generator and the gradient buffer are put back.
        """
        comm, model = self.comm, self.model
        Xg, yg = X[start:stop], y[start:stop]
        lo, hi = comm.shard(start, stop)
        Xs, ys, weight = X[lo:hi], y[lo:hi], (hi - lo) / (stop - start)
        saved = (model.state, self._state_tree, self._n_state, self.rng.bit_generator.state, self._gbuf.copy())
        times = {"lead": [], "shard": []}

        def pair(record):
            comm.barrier()
            self._set_mode("lead")
            t0 = time.perf_counter()
            self.gradient(Xg, yg)
            t1 = time.perf_counter()
            self._set_mode("shard")
            comm.barrier()
            t2 = time.perf_counter()
            self._gbuf[-1] = self.gradient(Xs, ys, weight)
            comm.allreduce_sum_(self._gbuf)
            t3 = time.perf_counter()
            if record:
                times["lead"].append(t1 - t0)
                times["shard"].append(t3 - t2)

        try:
            pair(False)
            pair(True)
            first = comm.max_over_ranks([times["lead"][0] + times["shard"][0]])[0]  # the same on every rank
            for _ in range(min(repeats, max(1, int(budget / max(first, 1e-9)))) - 1):
                pair(True)
        finally:
            model.state, self._state_tree, self._n_state = saved[:3]
            self.rng.bit_generator.state = saved[3]
            self._gbuf[...] = saved[4]
            self._set_mode(self.parallel_mode)
        slowest = comm.max_over_ranks([np.median(times["lead"]), np.median(times["shard"])])
        return {"lead": float(slowest[0]), "shard": float(slowest[1])}

    def _lead(self, train, cbs, signals):
        """Run ``train()`` (the fit's epochs or full-batch iterations, with the callbacks ``cbs``) on rank 0
        alone; the other ranks wait asleep, then take rank 0's state (:func:`checkpoint.snapshot`).  See
        :mod:`nablanet.distributed`.

        Rank 0 trains with the BLAS/OpenMP threads one process on its machine would use (the ranks there wait),
        or ``threads``, and restores its limits after.  Whatever ends its training, it releases the others in a
        ``finally``: with its state, with its state and "interrupted" (Ctrl-C, SIGTERM: they raise
        KeyboardInterrupt after taking it), or with its error (they raise :class:`LeadFailed` naming it).
        A waiting rank stopped by Ctrl-C or SIGTERM tells rank 0, which stops at the end of that epoch as if
        stopped itself (:class:`_StopWhenAsked`).

        All this inside the fit's block of caught signals (``signals``, :class:`_SignalsCaught`), begun before
        the start-of-fit agreement: a signal is never acted on between the agreement and the release, where it
        would leave the others waiting.  Rank 0 stops before training on one caught since the agreement, and
        while it trains a signal stops it at once (``signals.at_once``), as in one process.
        """
        if not self.comm.is_root:
            return self._follow(cbs, signals)
        asked = _StopWhenAsked(self.comm, signals)
        cbs.append(asked)  # the last: the others have seen the epoch
        word = ("error", "its training ended without a word")
        try:
            signals.at_once = True  # while rank 0 trains, a signal stops it at once, as in one process
            if signals.caught:  # one caught since the agreement stops it before it trains
                self.interrupted = True  # (as on the waiting ranks, which hear "interrupted")
                raise KeyboardInterrupt("rank 0 was interrupted as its lead fit started")
            with thread_limit(self.threads):
                self.lead_threads = threads_in_use()
                train()
            word = ("done", None)
        except KeyboardInterrupt:
            signals.at_once = False  # (first, as in the finally: a signal while the word is made is recorded)
            word = ("interrupted", None)
            raise
        except BaseException as e:
            signals.at_once = False
            word = ("error", f"{type(e).__name__}: {e}")
            raise
        finally:
            # first, before any call (CPython 3.11+ runs signal handlers at calls and backward jumps, not at an
            # assignment): from here on a signal is recorded, and the others are released whatever comes
            signals.at_once = False
            cbs.remove(asked)
            self._release(word, signals, asked.received)

    def _release(self, word, signals, received=0):
        """Rank 0, its lead fit ended: wake the waiting ranks and send them ``word`` and its state (see _lead).

        Rank 0 posts its part of the barrier the others wait in, then wakes those on its machine (a datagram to
        each one's socket, :meth:`_plan_wake`), so they answer at once.  Ctrl-C and SIGTERM are caught
        meanwhile (the fit's ``signals``, :class:`_SignalsCaught`) and acted on once the others have the state,
        at the block's end: one caught before it is sent makes the word "interrupted", so that every rank
        stops.  Then each waiting rank says whether it was stopped while it waited and how many stop messages
        it sent (of which rank 0 ``received`` some during the fit): the rest are received here, so none is left
        for a later fit, and a fit that ended while a waiting rank was stopped ends interrupted on rank 0 too."""
        snap, failure = None, None
        comm = self.comm
        if word[0] != "error":
            try:
                snap = self.snapshot()
            except Exception as e:  # noqa: BLE001 - the waiting ranks hear of it; rank 0 raises it after
                failure, word = e, ("error", f"its state could not be taken ({type(e).__name__}: {e})")
        request = comm.comm.Ibarrier()  # they wait in the same barrier
        _wake(self._wake_names)  # once it is posted: a rank woken finds rank 0's part of it there
        _wait_asleep(request)
        if signals.caught and word[0] == "done":
            word, self.interrupted = ("interrupted", None), True
        comm.bcast_object((word, snap))
        said = comm.comm.gather((0, False), root=0)
        for _ in range(sum(sent for sent, _ in said) - received):
            comm.comm.recv(source=comm.MPI.ANY_SOURCE, tag=_STOP_TAG)
        if failure is not None:
            raise failure
        stopped = [r for r, (_, caught) in enumerate(said) if caught]
        if stopped and word[0] == "done":
            self.interrupted = True
            raise KeyboardInterrupt(f"MPI rank {stopped[0]} was interrupted while rank 0 trained alone")

    def _follow(self, cbs, signals):
        """A rank other than 0 while rank 0 trains alone: wait asleep for its word, then take its state, and
        the callbacks ``cbs`` their filed state in it.

        The wait is a nonblocking barrier tested asleep (:func:`_wait_asleep`: MPI's blocking waits spin on a
        core rank 0 trains with): on rank 0's machine in ``poll`` on this process's wake-up socket, which rank 0
        writes to as it releases the ranks (the barrier tested every 50 ms meanwhile), elsewhere in naps of
        0.1-2 ms.  Ctrl-C and SIGTERM are caught meanwhile, as since the start of the fit's agreement (the
        fit's ``signals``, :class:`_SignalsCaught`): the first is sent on to rank 0 within 50 ms (which stops at
        the end of its epoch, saves, and sends its state and "interrupted"), also one caught after the agreement
        and before the wait; this rank keeps waiting for rank 0's word and state, takes them whole, and acts on
        the signal at the block's end, whatever rank 0 said or the restore did.
        """
        comm, told = self.comm, []

        def tell():
            if signals.caught and not told:
                told.append(comm.comm.isend(signals.caught[0], dest=0, tag=_STOP_TAG))

        _wait_asleep(comm.comm.Ibarrier(), tell, _wake_socket()[0] if self._wake_me else None)
        (kind, detail), snap = comm.bcast_object(None)
        comm.comm.gather((len(told), bool(signals.caught)), root=0)
        for request in told:
            request.wait()
        if snap is not None:
            checkpoint.restore_snapshot(self, snap)
            self._set_mode(self.parallel_mode)
            self.interrupted = kind != "done" or bool(signals.caught)
            for cb in cbs:  # (they ran on rank 0 alone) as rank 0's left them, as far as their state says
                cb._follow_lead(self)
        if kind == "error":
            raise LeadFailed(f"rank 0 failed while it trained alone (parallel='lead'): {detail}")
        if kind == "interrupted":
            raise KeyboardInterrupt("rank 0 was interrupted while it trained alone (parallel='lead')")
        return self.history

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, X, y, metrics=()):
        """The cost (without penalties) and ``metrics`` on ``(X, y)`` in evaluation mode."""
        metrics = check_metrics(metrics, self.loss.task)
        X, y = prepare_data(self.model, self.loss, X, y, "evaluation data")
        return _evaluate(self.model, self.loss, X, y, metrics)

    def predict(self, X):
        return self.model.predict(X)

    # ------------------------------------------------------------------ checkpoints
    def save(self, path):
        """Write a checkpoint (atomically): see :func:`nablanet.train.checkpoint.save`."""
        if self.is_root:
            checkpoint.save(self, path)

    def snapshot(self):
        """What :meth:`save` would write now, held in memory: see :func:`nablanet.train.checkpoint.snapshot`."""
        return checkpoint.snapshot(self)

    def save_snapshot(self, snap, path):
        """Write a :meth:`snapshot` to ``path`` (atomically), as :meth:`save` would have when it was taken."""
        if self.is_root:
            checkpoint.save_snapshot(snap, path)

    @classmethod
    def load(cls, path, loss=None):
        """The trainer saved at ``path`` (see :func:`load`)."""
        return checkpoint.restore(path, cls, loss=loss)


def fit(model, X, y, loss="mse", optimizer="adam", lr=None, epochs=10, batch_size=None, shuffle=True, seed=None,
        validation_data=None, validation_split=None, callbacks=(), metrics=(), l1=0.0, l2=0.0, penalize_bias=False,
        progress=False, schedule=None, **optimizer_settings):
    """Train ``model`` on ``(X, y)``; returns the :class:`History`.

    A convenience for ``Trainer(model, loss, optimizer, ...).fit(X, y, ...)``;
    the trained parameters are in ``model.params`` afterwards, and the trainer
    (for checkpoints and further epochs) in ``history.trainer``.  Optimizer
    settings go by name (``fit(model, X, y, optimizer="sgd", lr=0.1,
    momentum=0.9, nesterov=True, schedule="cosine")``); see :class:`Trainer`.
    ``progress=True`` shows a bar in terminals and notebooks (nothing in pipes
    or CI), ``"force"`` always.
    """
    trainer = Trainer(model, loss, optimizer, lr=lr, l1=l1, l2=l2, penalize_bias=penalize_bias, seed=seed,
                      schedule=schedule, **optimizer_settings)
    history = trainer.fit(X, y, epochs=epochs, batch_size=batch_size, shuffle=shuffle, validation_data=validation_data,
                          validation_split=validation_split, callbacks=callbacks, metrics=metrics, progress=progress)
    history.trainer = trainer
    return history


def predict(model, X):
    """The model's outputs for ``X`` in evaluation mode."""
    return model.predict(X)


def evaluate(model, X, y, loss="mse", metrics=()):
    """The cost and ``metrics`` of ``model`` on ``(X, y)`` in evaluation mode."""
    loss = get_loss(loss)
    metrics = check_metrics(metrics, loss.task)
    X, y = prepare_data(model, loss, X, y, "evaluation data")
    return _evaluate(model, loss, X, y, metrics)


def load(path, loss=None):
    """Rebuild the :class:`Trainer` saved at ``path`` (by ``trainer.save``), ready to continue training.

    ``loss`` is needed only when the checkpoint was trained with a custom
    loss function (which a file of arrays cannot hold).
    """
    return Trainer.load(path, loss=loss)
