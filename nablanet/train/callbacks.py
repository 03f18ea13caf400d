"""Callbacks: things that happen around the training loop, and its history.

Under MPI with ``parallel="lead"`` (:mod:`nablanet.distributed`) the callbacks run on rank 0 alone, which
trains alone; the other ranks take its state at the end, callbacks' filed state included (their callback
objects see no calls).  Sharded ranks run them on every rank.
"""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

from .. import validate as V
from ..autodiff.tree import tree_flatten, tree_map, tree_unflatten
from ..files import atomic_path

__all__ = [
    "Callback", "History", "EarlyStopping", "Checkpoint", "ProgressBar", "TerminateOnNaN",
    "ReduceLROnPlateau", "LearningRateScheduler", "LambdaCallback", "CSVLogger", "progress_bar",
]


class History:
    """Per-epoch records: ``history["loss"]``, ``history["val_accuracy"]``, ...

    Keys: ``epoch``, ``loss`` (mean training cost over the epoch's batches,
    penalties included), ``val_loss``, each metric and ``val_`` metric, ``lr``
    (learning rate at the epoch's last step) and ``time`` (seconds).  With a
    full-batch method (``lbfgs``, ``newton``, ``hessian_free``) each record is
    one iteration, with ``grad_norm``, and ``solver`` says how the last run
    ended: ``{"method", "n_iter", "n_fev", "n_hvp", "stop_reason", "converged",
    "value", "grad_norm"}``.
    """

    def __init__(self, records=None):
        self.history = {k: list(v) for k, v in (records or {}).items()}
        self.solver = None

    def append(self, logs):
        n = len(self.history.get("epoch", []))
        for k, v in logs.items():
            self.history.setdefault(k, [None] * n).append(v)
        for col in self.history.values():
            if len(col) < n + 1:
                col.append(None)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __len__(self):
        return len(self.history.get("epoch", []))

    def keys(self):
        return self.history.keys()

    def last(self):
        return {k: v[-1] for k, v in self.history.items() if v}

    def __repr__(self):
        last = {k: v for k, v in self.last().items() if k not in ("epoch", "time") and isinstance(v, (int, float))}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in last.items())
        return f"History({len(self)} epoch{'' if len(self) == 1 else 's'}" + (f"; last epoch: {shown})" if shown else ")")


#: Callbacks whose checkpointed state has a schema, by state key (filled as the classes are defined).
STATE_SCHEMAS = {}


class Callback:
    """Override what you need; return True from ``on_epoch_end`` to stop training.

    A callback with state that must survive a checkpoint (a reduced learning
    rate, a count of epochs without improvement) returns it as a JSON-able
    dict from :meth:`state_dict` and takes it back in :meth:`load_state_dict`;
    :meth:`save_state` (call it at the end of ``on_epoch_end``) files it in
    the trainer, whose checkpoints carry it, and :meth:`restore_state` (call
    it in ``on_train_begin``) reads it back, so a new instance given to a
    loaded trainer continues where the old one stopped.  ``state_key`` names
    the entry (the class name unless given).

    ``state_schema`` says what the state holds: a dict from each key to its
    check (:mod:`nablanet.validate`, e.g. ``{"lr": V.positive_number}``).  A
    class that declares one is registered under its key, and loading a
    checkpoint checks that entry against it (every key present, no other,
    each value of its kind: finite numbers, whole counts), so a damaged or
    foreign state is one error naming the file and the key, not a crash
    epochs later.

    Its repr is its class and :meth:`settings`, as an optimizer's is its class
    and hyperparameters: ``EarlyStopping(monitor='val_loss', patience=10, ...)``.
    """

    state_key = None
    state_schema = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.__dict__.get("state_schema") is not None:
            STATE_SCHEMAS[cls.state_key or cls.__name__] = cls

    @classmethod
    def check_state(cls, state, where=None):
        """``state`` checked against ``state_schema`` (returned normalized); names ``where`` and the key."""
        schema = cls.state_schema
        if schema is None:
            return state
        name = where or f"{cls.state_key or cls.__name__} state"
        if not isinstance(state, dict):
            raise V.InvalidTypeError(f"{name}: expected a table of {', '.join(schema)}, got {state!r:.80}")
        missing, extra = [k for k in schema if k not in state], sorted(str(k) for k in state if k not in schema)
        if missing or extra:
            raise V.InvalidValueError(f"{name}: expected the keys {', '.join(schema)}"
                                      + (f"; missing {', '.join(missing)}" if missing else "")
                                      + (f"; unknown {', '.join(extra)}" if extra else ""))
        return {k: check(state[k], f"{name}: {k}") for k, check in schema.items()}

    def settings(self):
        """What this callback was made with, by argument name, for its repr; the default is none."""
        return {}

    def __repr__(self):
        def show(v):
            if callable(v) and hasattr(v, "__qualname__"):  # a function by its name, not <function ... at 0x...>
                return v.__qualname__.rsplit("<locals>.", 1)[-1]
            return repr(v)  # (a float as it is: 0.123456789, not 0.123457)

        try:  # the class's own settings(): an instance may keep an attribute of that name
            shown = ", ".join(f"{k}={show(v)}" for k, v in dict(type(self).settings(self)).items())
        except Exception:  # noqa: BLE001 - a repr never fails: the class name alone
            shown = ""
        return f"{type(self).__name__}({shown})"

    def state_dict(self):
        """What this callback must remember across a checkpoint; None (the default) when nothing.

        Override it, with :meth:`load_state_dict`, in a callback whose decisions depend on the epochs
        before (a best value, a count of epochs without improvement, a reduced learning rate).  The
        trainer counts a callback whose class overrides it as resumable: two resumable callbacks of
        one fit must file under different ``state_key`` values.

        Returns
        -------
        dict or None
            A dict the checkpoint's JSON metadata can hold: numbers, strings, booleans, None, and
            lists and dicts of them (a tuple comes back a list).
        """
        return None

    def load_state_dict(self, state):
        """Take back a state that :meth:`state_dict` returned; the default ignores it.

        Parameters
        ----------
        state : dict
            The state as filed in the trainer, or as read back from a checkpoint, already checked
            against ``state_schema`` when the class declares one (see :meth:`restore_state`).
        """

    def _key(self):
        return self.state_key or type(self).__name__

    def save_state(self, trainer):
        """File this callback's :meth:`state_dict` in ``trainer``, where the trainer's checkpoints pick it up.

        The state is stored in ``trainer.callback_state`` under ``state_key`` (the class name unless
        given), replacing the one filed before.  When :meth:`state_dict` returns None nothing is filed
        and the state filed before, if any, stays in place (a checkpoint still carries it).  Call it at
        the end of ``on_epoch_end``, once the epoch has changed the state.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the fit (any object with a ``callback_state`` dict).
        """
        state = self.state_dict()
        if state is not None:
            trainer.callback_state[self._key()] = state

    def restore_state(self, trainer):
        """Load the state filed in ``trainer`` under this callback's key, if there is one.

        A trainer loaded from a checkpoint carries the states its callbacks filed, so a new callback
        that calls this in ``on_train_begin`` continues where the one before stopped.  The state is
        checked against ``state_schema`` (:meth:`check_state`), then given to :meth:`load_state_dict`.

        Parameters
        ----------
        trainer : Trainer
            The trainer about to fit; one without ``callback_state`` has no state to give.

        Returns
        -------
        bool
            True when a state was found and loaded; False when there was none, and the callback is
            left as it was (to start afresh).

        Raises
        ------
        nablanet.validate.InvalidValueError, nablanet.validate.InvalidTypeError
            When the state does not hold what ``state_schema`` says (a missing or unknown key, a value
            of the wrong kind).
        """
        state = getattr(trainer, "callback_state", {}).get(self._key())
        if state is not None:
            self.load_state_dict(self.check_state(state))
        return state is not None


    def on_train_begin(self, trainer):
        pass

    def on_batch_end(self, trainer, epoch, batch, loss):
        pass

    def on_epoch_end(self, trainer, epoch, logs):
        return False

    def _follow_lead(self, trainer):
        """On an MPI rank that waited while rank 0 trained alone (``parallel="lead"``, where callbacks run on
        rank 0 only): take the state rank 0's copy of this callback filed, from ``trainer`` just restored from
        rank 0's, so that this copy matches it.  The default loads it when the class is resumable."""
        if type(self).state_dict is not Callback.state_dict:
            self.restore_state(trainer)

    def on_train_end(self, trainer):
        pass


class TerminateOnNaN(Callback):
    """Stop with a clear message, naming epoch and batch, when the cost is NaN or infinite."""

    def on_batch_end(self, trainer, epoch, batch, loss):
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"the training cost became {loss} at epoch {epoch + 1}, batch {batch + 1}; "
                f"lower the learning rate, scale the inputs, or clip the gradients (clip_norm)"
            )

    def on_epoch_end(self, trainer, epoch, logs):
        # the last update of an epoch can overflow the parameters after a finite cost
        if not np.isfinite(trainer.get_flat_params()).all():
            raise FloatingPointError(
                f"the parameters became NaN or infinite at epoch {epoch + 1}, last batch; "
                f"lower the learning rate, scale the inputs, or clip the gradients (clip_norm)"
            )
        return False


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best=True`` the parameters and running statistics of the
    best epoch are put back.  Resumable: the best value, its epoch, the count
    of epochs without improvement and the best epoch's parameters and running
    statistics travel in checkpoints (the arrays beside the others), so a run
    interrupted after its best epoch stops, resumed, where it would have
    stopped and restores the same epoch.  Once it has stopped training, its
    state says so (``stopped``; :func:`nablanet.experiments.run_training`
    then resumes nothing) and a later ``fit`` starts counting afresh.
    """

    state_schema = {"best": V.Optional(V.finite_number), "best_epoch": V.Optional(V.non_negative_int),
                    "wait": V.non_negative_int, "stopped": V.boolean}

    def __init__(self, monitor="val_loss", patience=10, min_delta=0.0, mode="auto", restore_best=True):
        patience, min_delta = V.positive_int(patience, "patience"), V.non_negative_number(min_delta, "min_delta")
        self.monitor, self.patience, self.min_delta, self.restore_best = monitor, patience, min_delta, restore_best
        if mode == "auto":
            mode = "max" if any(s in monitor for s in ("accuracy", "r2")) else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min', 'max' or 'auto', not {mode!r}")
        self.mode = mode

        self._resumable = True  # False for Checkpoint's own tracker, which files nothing

    def settings(self):
        return {"monitor": self.monitor, "patience": self.patience, "min_delta": self.min_delta, "mode": self.mode,
                "restore_best": self.restore_best}

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped": self.stopped_epoch is not None}

    def load_state_dict(self, state):
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], int(state["wait"])
        self._stopped = bool(state["stopped"])

    def on_train_begin(self, trainer):
        self._best_params, self._best_state, self.stopped_epoch, self._stopped = None, None, None, False
        if not (self._resumable and self.restore_state(trainer)) or self._stopped:  # none, or a finished run's
            self.best, self.best_epoch, self.wait = None, None, 0
            return
        saved = trainer.callback_arrays.get(self._key())
        if self.restore_best and saved:  # the best epoch's parameters, then its running statistics
            leaves, treedef = tree_flatten(trainer.model.state)
            want = [trainer.get_flat_params()] + leaves
            if len(saved) != len(want) or any(a.shape != w.shape for a, w in zip(saved, want)):
                raise ValueError(f"{type(self).__name__}: the best epoch's arrays filed in the trainer "
                                 f"({[a.shape for a in saved]}) do not fit its model ({[w.shape for w in want]})")
            self._best_params = np.array(saved[0], dtype=want[0].dtype)
            self._best_state = tree_unflatten(treedef, [np.array(a, dtype=w.dtype) for a, w in zip(saved[1:], leaves)])

    def _follow_lead(self, trainer):
        self._best_params, self._best_state, self.stopped_epoch, self._stopped = None, None, None, False
        self.best, self.best_epoch, self.wait = None, None, 0
        if self._resumable and self.restore_state(trainer) and self._stopped:
            self.stopped_epoch = trainer.epoch - 1  # it stopped the fit: at its last epoch

    def _file(self, trainer):
        if not self._resumable:
            return
        self.save_state(trainer)
        if self._best_params is not None:  # replaced, never changed in place, when a better epoch comes
            trainer.callback_arrays[self._key()] = [self._best_params] + tree_flatten(self._best_state)[0]

    def _done(self, trainer):
        if self._resumable:  # finished: its state says so, the best epoch's arrays are not needed any more
            self.save_state(trainer)
            trainer.callback_arrays.pop(self._key(), None)

    def _better(self, v):
        if not math.isfinite(v):  # an infinite or NaN cost is never the best epoch (nor a value to file)
            return False
        if self.best is None:
            return True
        return v < self.best - self.min_delta if self.mode == "min" else v > self.best + self.min_delta

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs or logs[self.monitor] is None:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r} but the logs hold {sorted(logs)}; "
                f"give validation data or monitor 'loss'"
            )
        v = logs[self.monitor]
        if self._better(v):
            self.best, self.best_epoch, self.wait = v, epoch, 0
            if self.restore_best:
                self._best_params = trainer.get_flat_params().copy()
                self._best_state = tree_map(np.copy, trainer.model.state)  # running statistics of that epoch
            self._file(trainer)
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self._done(trainer)  # the next fit starts afresh
            return True
        self._file(trainer)
        return False

    def on_train_end(self, trainer):
        if self.restore_best and self._best_params is not None:
            trainer.set_flat_params(self._best_params)
            trainer.model.state = tree_map(np.copy, self._best_state)  # the model's own: training changes it in place


class Checkpoint(Callback):
    """Save the trainer (parameters, optimizer state, RNG, history) on a cadence, or only when
    ``monitor`` improves if ``save_best_only``.

    The cadence: every ``every`` epochs and/or whenever ``seconds`` have passed since the last save
    (both None: every epoch), at the start (so a run killed early can be resumed; ``at_start=False`` leaves
    it out, for callers that can start the run again from its beginning otherwise, as a run folder's
    ``config.json`` does), at the end,
    and when training stops early or is interrupted (Ctrl-C, or SIGTERM on the command line).  A half-done
    epoch is never saved: an interrupt in the middle of an epoch saves the state at the end of the epoch
    before it (held in memory, a copy of the arrays, at each epoch's end; ``trainer.interrupted`` tells an
    interrupt from the end, where early stopping's restored best epoch is what is saved), so
    a resumed run is always the run that was never stopped (with the full-batch ``lbfgs`` and
    ``hessian_free``, whose curvature model a checkpoint does not hold, it goes on from the same parameters,
    not bit for bit).  A process killed outright (SIGKILL, power loss) resumes from the last file written.
    """

    def __init__(self, path, every=None, save_best_only=False, monitor="val_loss", mode="auto", seconds=None,
                 at_start=True):
        every = V.Optional(V.positive_int)(every, "Checkpoint: every")
        seconds = V.Optional(V.non_negative_number)(seconds, "Checkpoint: seconds")
        self.at_start = V.boolean(at_start, "Checkpoint: at_start")
        if every is None and seconds is None:
            every = 1
        self.path, self.every, self.seconds, self.save_best_only = path, every, seconds, save_best_only
        self._tracker = EarlyStopping(monitor, patience=1 << 30, mode=mode, restore_best=False) if save_best_only else None
        if self._tracker is not None:
            self._tracker._resumable = False

    def settings(self):
        best = {"save_best_only": True, "monitor": self._tracker.monitor, "mode": self._tracker.mode} if self._tracker else {}
        return {"path": self.path, "every": self.every, "seconds": self.seconds, "at_start": self.at_start, **best}

    def _save(self, trainer):
        trainer.save(self.path)
        self._saved_epoch, self._last, self._boundary = trainer.epoch, time.monotonic(), None

    def on_train_begin(self, trainer):
        self._saved_epoch, self._last, self._boundary = None, time.monotonic(), None
        if self._tracker:
            self._tracker.on_train_begin(trainer)
        elif self.at_start and (trainer.epoch == 0 or not os.path.exists(self.path)):
            self._save(trainer)

    def on_epoch_end(self, trainer, epoch, logs):
        if self._tracker is not None:
            before = self._tracker.best_epoch
            self._tracker.on_epoch_end(trainer, epoch, logs)
            if self._tracker.best_epoch != before:
                self._save(trainer)
            return False
        # the state at this epoch's end, kept (copied) until the next epoch ends: what an interrupt before then
        # writes, whatever has changed since (the next epoch's shuffle, dropout masks and steps, early stopping's
        # restored best epoch); written now if the cadence says so
        # (the one before is let go first, so one copy is held, not two; an interrupt inside the copy leaves the
        # file as it is, an earlier whole epoch)
        self._boundary = None
        self._boundary = trainer.snapshot() if trainer.is_root else None
        if (self.every is not None and (epoch + 1) % int(self.every) == 0) or (
                self.seconds is not None and time.monotonic() - self._last >= self.seconds):
            self._save(trainer)  # the same state; interrupted while writing, the end writes the one kept
        return False

    def on_train_end(self, trainer):
        if self._tracker is not None:
            return
        if trainer.interrupted:  # Ctrl-C, SIGTERM, the NaN guard: the last whole epoch, unless the file holds it
            if self._boundary is not None:
                trainer.save_snapshot(self._boundary, self.path)
                self._saved_epoch, self._boundary = self._boundary[0]["epoch"], None
        elif self._saved_epoch != trainer.epoch:  # the end (early stopping's restored best epoch, if any)
            self._save(trainer)


def _in_notebook():
    """Whether this runs in a Jupyter kernel (not a terminal IPython)."""
    shell = sys.modules.get("IPython")
    try:
        ip = shell.get_ipython() if shell is not None else None
    except Exception:
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def progress_bar(total, desc=None, unit="epoch", force=False, file=None, initial=0):
    """A tqdm bar where a person is watching, else None.

    In a Jupyter notebook: a widget (``tqdm.notebook``) when ipywidgets is
    installed, else a text bar on the cell's output, without tqdm's
    "IProgress not found" warning.  In a terminal: a text bar on stderr.  In a
    pipe, a file or CI (the ``CI`` environment variable set): nothing, unless
    ``force`` (then text on ``file``, stderr by default).
    """
    import os

    if _in_notebook():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm as widget
        except ImportError:
            widget = None
        if widget is not None:
            return widget(total=total, desc=desc, unit=unit, leave=True, initial=initial)
        from tqdm.std import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=file or sys.stdout, leave=True, initial=initial)
    file = file or sys.stderr
    watched = hasattr(file, "isatty") and file.isatty() and not os.environ.get("CI")
    if not (force or watched):
        return None
    from tqdm.std import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=file, leave=True, dynamic_ncols=True, initial=initial)


class ProgressBar(Callback):
    """A bar over the epochs with the cost and metrics (see :func:`progress_bar` for where it shows)."""

    def __init__(self, force=False, file=None):
        self.force, self.file, self._bar = force, file, None

    def settings(self):
        return {"force": self.force, "file": self.file}

    def on_train_begin(self, trainer):
        self._bar = progress_bar(trainer._epochs_planned, force=self.force, file=self.file) if trainer.is_root else None

    def on_epoch_end(self, trainer, epoch, logs):
        if self._bar is not None:
            show = {k: v for k, v in logs.items() if k not in ("epoch", "time", "lr") and isinstance(v, float)}
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in show.items()}, refresh=False)
            self._bar.update(1)
        return False

    def on_train_end(self, trainer):
        if self._bar is not None:
            self._bar.close()



# ---------------------------------------------------------------------------------------------- learning rates


def _lr_schedule(trainer, who):
    lr = getattr(trainer.optimizer, "lr", None)
    if lr is None:
        raise ValueError(f"{who} changes the learning rate, but {trainer.optimizer!r} has none (a full-batch method)")
    return lr


def _root(lr):
    while isinstance(lr, _Adjusted):
        lr = lr.base
    return lr


class _Adjusted:
    """The optimizer's schedule as a callback adjusts it; a checkpoint stores the schedule underneath.

    (The adjustment is the callback's state, saved beside it.)
    """

    def __init__(self, base, fn):
        self.base, self._fn = base, fn

    def __call__(self, t):
        return self._fn(t)

    def config(self):
        return self.base.config()

    def __repr__(self):
        return f"adjusted({self.base!r})"


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for ``patience`` epochs.

    An improvement is a drop (``mode="min"``) or rise (``"max"``) by more than
    ``min_delta``; after a reduction, ``cooldown`` epochs pass before counting
    again, and the rate never goes below ``min_lr``.  The reduction scales
    whatever schedule the optimizer has (or the rate a
    :class:`LearningRateScheduler` listed before sets).  scikit-learn's
    ``learning_rate="adaptive"`` is ``ReduceLROnPlateau("loss", factor=0.2,
    patience=2, min_delta=tol)``.  Resumable: the scale and counters travel in
    checkpoints.
    """

    state_schema = {"scale": V.Number(0, 1, low_open=True), "best": V.Optional(V.finite_number),
                    "wait": V.non_negative_int, "cooling": V.non_negative_int, "reductions": V.non_negative_int}

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, cooldown=0, min_lr=0.0,
                 mode="auto"):
        factor = V.Number(0, 1, low_open=True, high_open=True)(factor, "ReduceLROnPlateau: factor")
        patience = V.positive_int(patience, "ReduceLROnPlateau: patience")
        cooldown = V.non_negative_int(cooldown, "ReduceLROnPlateau: cooldown")
        min_lr = V.non_negative_number(min_lr, "ReduceLROnPlateau: min_lr")
        min_delta = V.non_negative_number(min_delta, "ReduceLROnPlateau: min_delta")
        if not isinstance(monitor, str):
            raise V.InvalidTypeError(f"ReduceLROnPlateau: monitor: expected a name such as 'val_loss', got {monitor!r}")
        if mode == "auto":
            mode = "max" if any(k in monitor for k in ("accuracy", "r2")) else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min', 'max' or 'auto', not {mode!r}")
        self.monitor, self.factor, self.patience, self.min_delta = monitor, float(factor), int(patience), float(min_delta)
        self.cooldown, self.min_lr, self.mode = int(cooldown), float(min_lr), mode
        self.scale, self.best, self.wait, self.cooling, self.reductions = 1.0, None, 0, 0, 0

    def settings(self):
        return {"monitor": self.monitor, "factor": self.factor, "patience": self.patience, "min_delta": self.min_delta,
                "cooldown": self.cooldown, "min_lr": self.min_lr, "mode": self.mode}

    def state_dict(self):
        return {"scale": self.scale, "best": self.best, "wait": self.wait, "cooling": self.cooling,
                "reductions": self.reductions}

    def load_state_dict(self, state):
        self.scale, self.best, self.wait = float(state["scale"]), state["best"], int(state["wait"])
        self.cooling, self.reductions = int(state["cooling"]), int(state["reductions"])

    def on_train_begin(self, trainer):
        if not self.restore_state(trainer):
            self.scale, self.best, self.wait, self.cooling, self.reductions = 1.0, None, 0, 0, 0
        under = _lr_schedule(trainer, "ReduceLROnPlateau")  # the schedule, or what a callback before made of it
        trainer.optimizer.lr = _Adjusted(under, lambda t: max(under(t) * self.scale, self.min_lr))

    def on_epoch_end(self, trainer, epoch, logs):
        v = logs.get(self.monitor)
        if v is None:
            raise ValueError(
                f"ReduceLROnPlateau monitors {self.monitor!r} but the logs hold {sorted(logs)}; "
                f"give validation data or monitor 'loss'"
            )
        better = math.isfinite(v) and (self.best is None or (v < self.best - self.min_delta if self.mode == "min"
                                                              else v > self.best + self.min_delta))
        cooling = self.cooling > 0
        if cooling:
            self.cooling -= 1
            self.wait = 0
        if better:
            self.best, self.wait = float(v), 0
        elif not cooling:
            self.wait += 1
            if self.wait >= self.patience:
                self.scale *= self.factor
                self.reductions += 1
                self.wait, self.cooling = 0, self.cooldown
        self.save_state(trainer)
        return False

    def on_train_end(self, trainer):
        trainer.optimizer.lr = _root(trainer.optimizer.lr)


class LearningRateScheduler(Callback):
    """Set the learning rate before each epoch from ``fn(epoch)`` or ``fn(epoch, lr)``.

    ``epoch`` counts from 0 over the trainer's life (a resumed run goes on
    counting); ``lr`` is the rate of the previous epoch.  The rate holds for
    every step of the epoch, in place of the optimizer's schedule (a
    :class:`ReduceLROnPlateau` listed after this callback scales it).
    Resumable: the current rate travels in checkpoints.
    """

    def __init__(self, fn):
        import inspect

        if not callable(fn):
            raise TypeError(f"LearningRateScheduler needs a function fn(epoch) or fn(epoch, lr), got {fn!r}")
        try:
            n = len([p for p in inspect.signature(fn).parameters.values()
                     if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
        except (TypeError, ValueError):
            n = 1
        self.fn, self._two = fn, n >= 2
        self.lr = None

    def settings(self):
        return {"fn": self.fn}

    state_schema = {"lr": V.positive_number}

    def state_dict(self):
        return None if self.lr is None else {"lr": self.lr}

    def load_state_dict(self, state):
        self.lr = float(state["lr"])

    def _set(self, epoch):
        new = self.fn(epoch, self.lr) if self._two else self.fn(epoch)
        try:
            new = float(new)
        except (TypeError, ValueError):
            raise TypeError(f"LearningRateScheduler: fn({epoch}) returned {new!r}; it must return a number") from None
        if not (math.isfinite(new) and new > 0):
            raise ValueError(f"LearningRateScheduler: fn({epoch}) returned {new}; a learning rate must be positive")
        self.lr = new

    def on_train_begin(self, trainer):
        if not self.restore_state(trainer):
            self.lr = None
        under = _lr_schedule(trainer, "LearningRateScheduler")
        if self.lr is None:  # a fresh start: fn(epoch, lr) sees the optimizer's rate first
            self.lr = float(under(trainer.opt_state["t"]))
            self._set(trainer.epoch)
        trainer.optimizer.lr = _Adjusted(under, lambda t: self.lr)

    def on_epoch_end(self, trainer, epoch, logs):
        self._set(epoch + 1)
        self.save_state(trainer)
        return False

    def on_train_end(self, trainer):
        trainer.optimizer.lr = _root(trainer.optimizer.lr)


# ---------------------------------------------------------------------------------------------- the rest


class LambdaCallback(Callback):
    """A callback from functions: ``on_train_begin(trainer)``, ``on_batch_end(trainer, epoch, batch, loss)``,
    ``on_epoch_end(trainer, epoch, logs)`` (a true return value stops training), ``on_train_end(trainer)``."""

    def __init__(self, on_train_begin=None, on_batch_end=None, on_epoch_end=None, on_train_end=None):
        for name, f in (("on_train_begin", on_train_begin), ("on_batch_end", on_batch_end),
                        ("on_epoch_end", on_epoch_end), ("on_train_end", on_train_end)):
            if f is not None and not callable(f):
                raise TypeError(f"LambdaCallback: {name} must be a function, got {f!r}")
        self._begin, self._batch, self._epoch, self._end = on_train_begin, on_batch_end, on_epoch_end, on_train_end

    def settings(self):
        hooks = zip(("on_train_begin", "on_batch_end", "on_epoch_end", "on_train_end"),
                    (self._begin, self._batch, self._epoch, self._end))
        return {name: f for name, f in hooks if f is not None}

    def on_train_begin(self, trainer):
        if self._begin:
            self._begin(trainer)

    def on_batch_end(self, trainer, epoch, batch, loss):
        if self._batch:
            self._batch(trainer, epoch, batch, loss)

    def on_epoch_end(self, trainer, epoch, logs):
        return bool(self._epoch(trainer, epoch, logs)) if self._epoch else False

    def on_train_end(self, trainer):
        if self._end:
            self._end(trainer)


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file (the header is the first epoch's keys).

    A fresh run (epoch 0) starts the file anew unless ``append=True``; a
    resumed run (a loaded checkpoint) keeps the rows of the epochs it has and
    drops any written after the checkpoint, so the file matches the history.
    Only the process that writes files (MPI rank 0) writes.
    """

    def __init__(self, path, separator=",", append=False):
        self.path, self.separator, self.append = path, separator, bool(append)
        self._file, self._writer, self._fields = None, None, None

    def settings(self):
        return {"path": self.path, "separator": self.separator, "append": self.append}

    def on_train_begin(self, trainer):
        import csv
        import os

        self._file = self._writer = self._fields = None
        if not trainer.is_root:
            return
        path = os.fspath(self.path)
        rows = []
        if (self.append or trainer.epoch > 0) and os.path.isfile(path) and os.path.getsize(path) > 0:
            try:
                with open(path, newline="") as f:
                    reader = csv.DictReader(f, delimiter=self.separator)
                    self._fields = reader.fieldnames
                    rows = list(reader)
                if trainer.epoch > 0 and self._fields and "epoch" in self._fields:
                    rows = [r for r in rows if r["epoch"] and int(float(r["epoch"])) <= trainer.epoch]
            except (OSError, UnicodeDecodeError, csv.Error, ValueError, TypeError) as e:
                raise V.FileFormatError(path, f"damaged CSV log, cannot continue it ({type(e).__name__}: {e}); "
                                              f"move it away to start a new one") from None
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        if self._fields:  # the rows kept, rewritten atomically: stopped halfway, the old log stays whole
            with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, self._fields, delimiter=self.separator, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
            self._file = open(path, "a", newline="")
            self._writer = csv.DictWriter(self._file, self._fields, delimiter=self.separator, extrasaction="ignore")
        else:
            self._file = open(path, "w", newline="")

    def on_epoch_end(self, trainer, epoch, logs):
        import csv

        if self._file is None:
            return False
        if self._writer is None:
            self._fields = list(logs)
            self._writer = csv.DictWriter(self._file, self._fields, delimiter=self.separator, extrasaction="ignore")
            self._writer.writeheader()
        self._writer.writerow({k: ("" if v is None else v) for k, v in logs.items()})
        self._file.flush()
        return False

    def on_train_end(self, trainer):
        if self._file is not None:
            self._file.close()
            self._file = None
