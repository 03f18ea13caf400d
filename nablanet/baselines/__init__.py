"""Peer implementations of "the same network", for honest comparisons (``nablanet compare``).

Each baseline takes a nablanet network *before training* (its layers and its
initial parameters), the optimizer, the penalties, the batch size and the
number of epochs, and trains the same thing in another library: the same
initial weights (so the same initialization scheme), the same L2 penalty
converted to that library's definition, the same optimizer, momentum,
schedule, batch size and epochs.  What a library cannot reproduce is said in
the returned notes, never silently changed.

nablanet's penalty (:class:`nablanet.train.Trainer`) adds ``l2 * sum(W**2)``
(weights only, not biases) to the mean cost of each batch.  Converted:

* scikit-learn adds ``alpha / (2 n_batch) * sum(W**2)`` to its cost, and its
  squared-error cost is half the mean squared error.  So
  ``alpha = 2 * l2 * n_batch`` for classification and ``alpha = l2 * n_batch``
  for regression, where the halved cost also halves the gradient (the SGD
  learning rate is doubled to match; Adam does not see the scale).
* PyTorch's ``weight_decay`` adds ``wd * W`` to the gradient, the gradient of
  ``wd/2 * sum(W**2)``: ``weight_decay = 2 * l2``, on the weights only.

Each peer has its own module, and the library itself never imports a peer
framework: ``sklearn_mlp`` (scikit-learn is a dependency) and ``pytorch``
(PyTorch is an optional extra, imported only when
:func:`nablanet.baselines.pytorch.train` runs; without it that raises
ImportError with a one-line message and the install command).
"""

from __future__ import annotations

__all__ = ["network_layers"]


def network_layers(model):
    """The layers of a nablanet network as plain records, with copies of their current parameters.

    Returns a list of dicts: ``{"kind": "dense", "W", "b", "activation", "alpha"}``,
    ``{"kind": "batch_norm", "gamma", "beta", "momentum", "eps"}``, ``{"kind": "dropout", "p"}``,
    ``{"kind": "activation", "activation", "alpha"}``; the output activation is ``model.output_activation``.
    """
    import numpy as np

    from ..nn.layers import Activation, BatchNorm, Dense, Dropout

    out = []
    for layer, p in zip(model.layers, model.params):
        if isinstance(layer, Dense):
            act = layer.activation
            out.append({"kind": "dense", "W": np.array(p["W"]), "b": np.array(p["b"]), "activation": act.name,
                        "alpha": act.params.get("alpha")})
        elif isinstance(layer, BatchNorm):
            out.append({"kind": "batch_norm", "gamma": np.array(p["gamma"]), "beta": np.array(p["beta"]),
                        "momentum": layer.momentum, "eps": layer.eps})
        elif isinstance(layer, Dropout):
            out.append({"kind": "dropout", "p": layer.p})
        elif isinstance(layer, Activation):
            act = layer.activation
            out.append({"kind": "activation", "activation": act.name, "alpha": act.params.get("alpha")})
        else:
            raise ValueError(f"no peer baseline for the layer {layer!r}")
    return out
