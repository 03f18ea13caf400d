"""Why equal initial weights never break symmetry (notes 004), as a measurement.

If every hidden unit of a layer starts with the same incoming weights and bias
(and the same outgoing weights), every unit computes the same activation
a_1 = a_2 = ... on every input, receives the same delta in the backward sweep,
and so gets the same update: the units stay identical through training, and
the layer behaves as if it had one unit.  Random initialization breaks the tie.

:func:`equal_weights` trains the same network twice on the same data, once from
a constant initialization and once from a random one, and records after every
epoch how far apart the units of each hidden layer are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SymmetryRun", "equal_weights", "unit_spread"]


def unit_spread(model, X, params=None):
    """For each hidden Dense layer: the largest difference between two of its units.

    Returns ``(weight_spread, activation_spread)``, one entry per hidden layer:
    the max over inputs of (max - min across units) of the incoming weights and
    bias, and of the layer's activations on ``X``.  Zero means every unit is identical.
    """
    from .nn import Sequential

    params = model.params if params is None else params
    X = np.asarray(X, dtype=model.dtype)
    dense = [i for i, p in enumerate(params) if isinstance(p, dict) and "W" in p]
    w_spread, a_spread = [], []
    for i in dense[:-1]:  # the last Dense layer is the output layer
        W = np.vstack([np.asarray(params[i]["W"]), np.asarray(params[i]["b"]).reshape(1, -1)])
        w_spread.append(float(np.max(W.max(axis=1) - W.min(axis=1))))
        # the activations after this layer: the model's own layers up to the next Dense one
        stop = next((j for j in dense if j > i), len(params))
        head = Sequential.__new__(Sequential)
        head.__dict__.update(model.__dict__)
        head.layers = model.layers[:stop]
        a = head.apply(params[:stop], X, state=model.state[:stop], logits=True)
        a = np.asarray(a)
        a_spread.append(float(np.max(a.max(axis=1) - a.min(axis=1))))
    return np.array(w_spread), np.array(a_spread)


@dataclass
class SymmetryRun:
    """Spreads between units after each epoch (row 0 is before training), one column per hidden layer."""

    init: str
    weight_spread: np.ndarray
    activation_spread: np.ndarray
    final_loss: float

    @property
    def symmetric(self):
        """True when the units stayed identical (to rounding) through all of training."""
        return bool(np.all(self.weight_spread <= 1e-10) and np.all(self.activation_spread <= 1e-10))

    def __repr__(self):
        return (f"SymmetryRun(init={self.init}, epochs={len(self.weight_spread) - 1}, "
                f"max unit spread: weights {self.weight_spread.max():.3g}, activations "
                f"{self.activation_spread.max():.3g}, final loss {self.final_loss:.4g}, "
                f"{'symmetric' if self.symmetric else 'symmetry broken'})")


def equal_weights(X, y, hidden=(4,), activation="tanh", loss="mse", output_activation="identity",
                  value=0.5, epochs=50, lr=0.1, seed=0):
    """Train one network from constant weights (all equal to ``value``) and one from random weights
    (nablanet's default draw), both with zero biases as in the notes, by full-batch gradient descent in
    float64; returns ``{"constant": run, "random": run}``.
    """
    from . import validate as V
    from .nn import MLP, init
    from .train import fit
    from .train.callbacks import Callback

    hidden = V.Sizes(min_len=1, low=2, expected="hidden layer sizes of at least 2 units each (one unit has no "
                                                 "other to compare with)")(hidden, "hidden")
    value = V.finite_number(value, "value")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] == 0:
        raise V.InvalidValueError(f"X: expected a 2-D array (rows are samples), got shape {X.shape}")
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise V.InvalidValueError(f"y has {y.shape[0] if y.ndim else 0} rows, X has {X.shape[0]}; give one target "
                                  f"per sample")
    sizes = [X.shape[1], *hidden, 1 if y.ndim == 1 or y.shape[1] == 1 else y.shape[1]]
    if output_activation == "softmax":
        sizes[-1] = int(np.max(y)) + 1

    class Record(Callback):
        def __init__(self):
            self.w, self.a = [], []

        def take(self, model):
            w, a = unit_spread(model, X)
            self.w.append(w)
            self.a.append(a)

        def on_epoch_end(self, trainer, epoch, logs):
            self.take(trainer.model)
            return False

    runs = {}
    for name, initializer in (("constant", init.constant(value)), ("random", "auto")):
        # the notes' start: biases at zero in both runs, so that only the weights differ (random biases would
        # break the tie by themselves)
        model = MLP(sizes, activation=activation, output_activation=output_activation, init=initializer,
                    bias_init="zeros", seed=seed, dtype=np.float64)
        rec = Record()
        rec.take(model)
        hist = fit(model, X, y, loss=loss, optimizer="sgd", lr=lr, epochs=epochs, batch_size=len(X), shuffle=False,
                   seed=seed, callbacks=[rec])
        final = hist["loss"][-1]
        runs[name] = SymmetryRun(name, np.array(rec.w), np.array(rec.a), float(final))
    return runs
