"""The same network in scikit-learn (``MLPRegressor`` / ``MLPClassifier``), where scikit-learn can express it.

scikit-learn's MLP has one activation for all hidden layers (relu, tanh,
logistic, identity), no dropout, no batch normalization, no L1 penalty, the
optimizers SGD (with momentum) and Adam, and no schedule for Adam.  What it
can follow is followed exactly: nablanet's initial weights are copied in,
the L2 penalty is converted (see :mod:`nablanet.baselines`), the batch size
and the number of epochs are the same, and its early stop on a stalled
training cost is switched off.  What it cannot follow is returned as a
reason (no row) or as a note (a row that differs in that one respect).
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from . import network_layers

__all__ = ["train", "alpha_from_l2"]

_ACT = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic", "identity": "identity"}


def alpha_from_l2(l2, batch_size, task):
    """scikit-learn's ``alpha`` for nablanet's ``l2`` (penalty ``l2 * sum(W**2)`` on the mean cost).

    scikit-learn adds ``alpha / (2 n_batch) sum(W**2)`` to a cost that is the
    mean log-loss (classification) or half the mean squared error (regression).
    """
    return float(l2) * float(batch_size) * (2.0 if task == "classification" else 1.0)


def _with_initial_weights(cls):
    class Seeded(cls):
        """scikit-learn's MLP started from given weights instead of its own Glorot draw."""

        def _initialize(self, y, layer_units, dtype):
            super()._initialize(y, layer_units, dtype)
            Ws, bs = self._nablanet_initial
            if [w.shape for w in self.coefs_] == [w.shape for w in Ws]:
                self.coefs_ = [np.array(w, dtype=dtype) for w in Ws]
                self.intercepts_ = [np.array(b, dtype=dtype) for b in bs]

    Seeded.__name__ = cls.__name__
    return Seeded


def train(model, loss, optimizer, X, y, *, task, epochs, batch_size=None, l1=0.0, l2=0.0, seed=0):
    """Train scikit-learn's copy of ``model`` (an untrained nablanet network) on ``(X, y)``.

    Returns ``(predict, seconds, notes)`` as :func:`nablanet.baselines.pytorch.train`,
    or ``(None, 0.0, [reason])`` when scikit-learn cannot build this network.
    """
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    layers = network_layers(model)
    kinds = {r["kind"] for r in layers}
    if kinds - {"dense"}:
        return None, 0.0, [f"scikit-learn's MLP has no {', '.join(sorted(kinds - {'dense'}))} layers"]
    hidden_acts = {r["activation"] for r in layers[:-1]}
    if len(hidden_acts) > 1:
        return None, 0.0, ["scikit-learn's MLP uses one activation for all hidden layers"]
    act = hidden_acts.pop() if hidden_acts else "identity"
    if act not in _ACT:
        return None, 0.0, [f"scikit-learn's MLP has no {act} activation"]
    if l1:
        return None, 0.0, ["scikit-learn's MLP has no L1 penalty"]
    if task == "regression" and (loss != "mse" or model.output_activation.name != "identity"):
        return None, 0.0, [f"scikit-learn's MLPRegressor minimizes the squared error with a linear output, not {loss}"]
    conf = optimizer.config()
    if conf["name"] not in ("sgd", "gd", "adam", "lbfgs"):
        return None, 0.0, [f"scikit-learn's MLP has no {conf['name']} optimizer"]
    if conf.get("weight_decay"):
        return None, 0.0, ["scikit-learn's MLP has no weight decay of its own (only the L2 penalty on weights)"]
    notes = []
    lr = None if conf["name"] == "lbfgs" else float(optimizer.lr(0))
    if lr is not None and conf["lr"].get("name") != "constant":
        notes.append(f"constant learning rate (scikit-learn has no {conf['lr'].get('name')} schedule)")
    n = len(X)
    bs = min(int(batch_size), n) if batch_size else n
    # the halved squared error halves the gradient: SGD takes twice the rate, Adam half the epsilon
    half = task == "regression"
    kw = dict(hidden_layer_sizes=tuple(r["W"].shape[1] for r in layers[:-1]), activation=_ACT[act],
              alpha=alpha_from_l2(l2, bs, task), batch_size=bs, max_iter=int(epochs), shuffle=True,
              random_state=seed, tol=0.0, n_iter_no_change=int(epochs) + 1, warm_start=False)
    if conf["name"] == "lbfgs":  # epochs is the iteration budget of both; tol the projected-gradient tolerance
        kw.update(solver="lbfgs", tol=conf["tol"])
    elif conf["name"] == "adam":
        kw.update(solver="adam", learning_rate_init=lr, beta_1=conf["beta1"], beta_2=conf["beta2"],
                  epsilon=conf["eps"] / (2.0 if half else 1.0))
    else:
        kw.update(solver="sgd", learning_rate="constant", learning_rate_init=lr * (2.0 if half else 1.0),
                  momentum=conf["momentum"], nesterovs_momentum=bool(conf["nesterov"]))
    cls = _with_initial_weights(MLPClassifier if task == "classification" else MLPRegressor)
    est = cls(**kw)
    est._nablanet_initial = ([r["W"] for r in layers], [r["b"] for r in layers])
    if task == "classification" and model.n_outputs == 2:
        notes.append("one logistic output for two classes and its own initial weights")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: it ran the epochs it was given, on purpose
        est.fit(np.asarray(X, np.float64), y)
    return est.predict, time.perf_counter() - t0, notes
