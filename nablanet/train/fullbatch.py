"""Training with the full-batch methods (``lbfgs``, ``newton``, ``hessian_free``).

:class:`~nablanet.train.Trainer` hands the run here when its optimizer is one
of :mod:`nablanet.optim.second_order`'s.  This module turns the network and
the training set into an :class:`~nablanet.optim.Objective` of the flat
parameter vector theta::

    f(theta) = C(model(theta; X), y) + l2 sum W^2          (the smooth part)
    F(theta) = f(theta) + l1 sum |W|                         (L1 kept apart)

with the cost and penalty from :mod:`nablanet.losses`, and, for the
Gauss-Newton option, the product ``G v = J^T (H_C (J v))``: ``J v`` by one
forward sweep through the network, ``H_C u`` the Hessian of the cost in the
network's outputs (the engine's ``hvp``), ``J^T w`` by one reverse sweep.

Each iteration of the method is one record of the history (``epochs`` is the
iteration budget), so callbacks, validation data and metrics work as with
the first-order optimizers.  ``history.solver`` says how the run ended.
"""

from __future__ import annotations

import time

import numpy as np

from ..autodiff.transforms import hvp, jvp, vjp
from ..autodiff.tree import tree_flatten, tree_unflatten
from ..losses import l2_penalty
from ..nn.layers import BatchNorm, Dropout
from ..optim import Objective
from .callbacks import Callback
from .metrics import compute_metric

__all__ = ["check_fits", "network_objective", "run_full_batch", "GAUSS_NEWTON_LOSSES"]

# costs convex in the network's outputs: their Gauss-Newton matrix is positive semi-definite
GAUSS_NEWTON_LOSSES = ("mse", "half_sse", "binary_cross_entropy", "cross_entropy")


def check_fits(trainer, n_rows, batch_size):
    """Raise a clear error where the trainer's full-batch method does not fit the training set-up.

    Called by the training loop before any work, and by the command line before it writes a run folder.
    """
    method = trainer.optimizer.name
    if batch_size < n_rows:
        raise ValueError(
            f"{method} is a full-batch method: it needs batch_size=None (all {n_rows} rows), got batch_size={batch_size}"
        )
    if trainer._distributed and trainer.parallel == "shard":
        raise ValueError(f"{method} is a full-batch method: over MPI, rank 0 runs it alone (parallel='lead' or "
                         f"'auto'); it does not shard the rows over the ranks (parallel='shard')")
    for layer in trainer.model.layers:
        if isinstance(layer, Dropout) and layer.p > 0:
            raise ValueError(
                f"{method} minimizes one fixed function, but {layer!r} draws a new random mask every step; "
                f"remove the dropout or use a first-order optimizer"
            )
        if isinstance(layer, BatchNorm):
            raise ValueError(
                f"{method} minimizes one fixed function, but batch normalization in training mode changes its "
                f"running statistics every step; remove batch_norm or use a first-order optimizer"
            )
    if getattr(trainer.optimizer, "gauss_newton", False) and trainer.loss.name not in GAUSS_NEWTON_LOSSES:
        raise ValueError(
            f"hessian_free(gauss_newton=True) needs a cost convex in the outputs ({', '.join(GAUSS_NEWTON_LOSSES)}); "
            f"the loss is {trainer.loss.name!r}: use gauss_newton=False"
        )
    trainer.optimizer.check_size(trainer.get_flat_params().size)


def network_objective(model, loss, X, y, l1=0.0, l2=0.0, penalize_bias=False, dtype=np.float64):
    """The training cost of ``model`` on prepared ``(X, y)`` as a function of the flat parameter vector.

    Returns ``(objective, theta0)``: an :class:`~nablanet.optim.Objective`
    (smooth part: cost plus L2 penalty; L1 strengths per entry; a Gauss-Newton
    product when the cost is one of :data:`GAUSS_NEWTON_LOSSES`) and the
    model's current parameters as one vector in ``dtype``.  The layout is the
    :class:`~nablanet.train.Trainer`'s (layer by layer, key by key).
    """
    dtype = np.dtype(dtype)
    leaves, treedef = tree_flatten(model.params)
    shapes = [leaf.shape for leaf in leaves]
    offs = np.cumsum([0] + [leaf.size for leaf in leaves])
    keys = [k for p in model.params for k in p]
    theta0 = np.concatenate([np.asarray(leaf, dtype=dtype).ravel() for leaf in leaves]) if leaves \
        else np.zeros(0, dtype)
    X = np.asarray(X, dtype=dtype)
    y = y if y.dtype.kind in "iu" else np.asarray(y, dtype=dtype)
    state = [{k: np.asarray(v, dtype=dtype) for k, v in s.items()} for s in model.state]
    logits = loss.from_logits

    def unflatten(theta):
        return tree_unflatten(treedef, [theta[a:b].reshape(s) for a, b, s in zip(offs[:-1], offs[1:], shapes)])

    def outputs(theta):
        return model.apply(unflatten(theta), X, state=state, logits=logits)

    def penalty(theta):
        return l2_penalty(unflatten(theta), l2, penalize_bias)

    def fun(theta):
        cost = loss(outputs(theta), y)
        return cost + penalty(theta) if l2 else cost

    l1_vec = np.zeros(theta0.size, dtype)
    if l1:
        for a, b, key in zip(offs[:-1], offs[1:], keys):
            if key == "W" or (penalize_bias and key == "b"):
                l1_vec[a:b] = l1

    gn = None
    if loss.name in GAUSS_NEWTON_LOSSES:

        def gn(theta, v):
            out, Jv = jvp(outputs, (theta,), (v,))
            HJv = hvp(lambda z: loss(z, y), np.asarray(out), np.asarray(Jv))
            _, pullback = vjp(outputs, theta)
            Gv = np.asarray(pullback(HJv)[0])
            return Gv + hvp(penalty, theta, v) if l2 else Gv

    return Objective(fun, l1=l1_vec, gauss_newton_product=gn), theta0


def run_full_batch(trainer, X, y, val, epochs, batch_size, metrics, callbacks, evaluate, probabilities):
    """Train with ``trainer.optimizer`` (a full-batch method) for at most ``epochs`` iterations.

    Called by :meth:`Trainer.fit <nablanet.train.Trainer.fit>` with prepared
    data, its callbacks and its evaluation functions (``evaluate(model, loss,
    X, y, metrics) -> dict``, ``probabilities(logits, loss)``); returns the
    trainer's history.
    """
    method = trainer.optimizer
    check_fits(trainer, X.shape[0], batch_size)  # before the objective, the callbacks, any work
    model = trainer.model
    dtype = np.dtype(method.dtype) if method.dtype else model.dtype
    objective, theta0 = network_objective(model, trainer.loss, X, y, trainer.l1, trainer.l2, trainer.penalize_bias,
                                          dtype)
    batch_cbs = [cb for cb in callbacks if type(cb).on_batch_end is not Callback.on_batch_end]
    trainer._epochs_planned = epochs
    clock = [time.perf_counter()]

    def on_iteration(k, theta, value, grad_norm):
        trainer.set_flat_params(theta)
        e = trainer.epoch
        for cb in batch_cbs:
            cb.on_batch_end(trainer, e, 0, value)
        logs = {"epoch": e + 1, "loss": value, "grad_norm": grad_norm}
        if metrics:
            out = probabilities(model.apply(model.params, X, logits=trainer.loss.from_logits), trainer.loss)
            logs.update({m: compute_metric(m, out, y, trainer.loss.task) for m in metrics})
        if val is not None:
            logs.update({f"val_{k}": v for k, v in evaluate(model, trainer.loss, *val, metrics).items()})
        now = time.perf_counter()
        logs["time"] = now - clock[0]
        clock[0] = now
        trainer.history.append(logs)
        trainer.epoch += 1
        trainer.opt_state["t"] += 1
        stop = False
        for cb in callbacks:
            stop = bool(cb.on_epoch_end(trainer, e, logs)) or stop
        return stop

    for cb in callbacks:
        cb.on_train_begin(trainer)
    trainer.interrupted = True  # until the method returns
    try:
        theta, info = method.minimize(objective, theta0, int(epochs), on_iteration)
        trainer.set_flat_params(theta)
        trainer.history.solver = {"method": method.name, **info}
        trainer.interrupted = False
    finally:
        for cb in callbacks:
            cb.on_train_end(trainer)
    return trainer.history
