"""The training step of a plain MLP, captured once and replayed.

For a network of dense layers (each activation one of identity, sigmoid,
tanh, ReLU, leaky ReLU, ELU, softplus) and a cost of MSE, softmax
cross-entropy or binary cross-entropy, the graph the engine would record is
the same at every step.  So it is laid out once per batch size: one buffer per
layer for a^l and one for delta^l, and the gradients are written by
``np.matmul(..., out=)`` straight into the trainer's flat gradient buffer.
A step is then the notes' equations as a fixed list of NumPy calls::

    forward   a^l = sigma_l(a^(l-1) W^l + b^l)
    cost      delta^L = dC/dz^L                     ((p - t)/n, (sigmoid(z) - t)/N, 2(a - t)/N)
    backward  dC/dW^l = a^(l-1)^T delta^l,   dC/db^l = sum of delta^l over rows,
              delta^(l-1) = (delta^l W^l^T) * sigma'(a^(l-1))

Anything else (dropout, normalization, other costs or activations) goes
through the engine.  Tests check that both paths give the same gradients.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CapturedStep", "capturable"]

_LOSSES = ("mse", "cross_entropy", "binary_cross_entropy")


def _forward(name, alpha):
    """sigma applied in place to the buffer z (which then holds a)."""
    if name == "identity":
        return None
    if name == "relu":
        return lambda z, t: np.maximum(z, 0, out=z)
    if name == "tanh":
        return lambda z, t: np.tanh(z, out=z)
    if name == "sigmoid":  # exp(-logaddexp(0, -z)): exact in both tails, no overflow
        def f(z, t):
            np.negative(z, out=z)
            np.logaddexp(0.0, z, out=z)
            np.negative(z, out=z)
            return np.exp(z, out=z)
        return f
    if name == "softplus":
        return lambda z, t: np.logaddexp(0.0, z, out=z)
    if name == "leaky_relu":
        def f(z, t):
            np.multiply(z, alpha, out=t)
            return np.maximum(z, t, out=z)  # alpha < 1: max(z, alpha z) is leaky ReLU
        return f if alpha <= 1 else None
    if name == "elu":
        def f(z, t):
            np.minimum(z, 0, out=t)
            np.expm1(t, out=t)
            t *= alpha
            np.copyto(z, t, where=z <= 0)
            return z
        return f
    return None


def _backward(name, alpha):
    """delta *= sigma'(a) in place, from the layer's output a."""
    if name == "identity":
        return lambda d, a, t: d
    if name == "relu":
        def f(d, a, t):
            np.greater(a, 0, out=t)
            return np.multiply(d, t, out=d)
        return f
    if name == "tanh":
        def f(d, a, t):
            np.multiply(a, a, out=t)
            np.subtract(1.0, t, out=t)
            return np.multiply(d, t, out=d)
        return f
    if name == "sigmoid":
        def f(d, a, t):
            np.subtract(1.0, a, out=t)
            t *= a
            return np.multiply(d, t, out=d)
        return f
    if name == "softplus":  # sigma'(z) = sigmoid(z) = 1 - exp(-a)
        def f(d, a, t):
            np.negative(a, out=t)
            np.expm1(t, out=t)
            np.negative(t, out=t)
            return np.multiply(d, t, out=d)
        return f
    if name == "leaky_relu":
        def f(d, a, t):
            np.greater(a, 0, out=t)
            t *= 1.0 - alpha
            t += alpha
            return np.multiply(d, t, out=d)
        return f
    if name == "elu":  # sigma'(z) = 1 for z > 0, alpha e^z = a + alpha otherwise
        def f(d, a, t):
            np.add(a, alpha, out=t)
            np.copyto(t, 1.0, where=a > 0)
            return np.multiply(d, t, out=d)
        return f
    return None


def capturable(model, loss):
    """Why the step of ``model`` with ``loss`` cannot be captured, or None if it can."""
    from ..losses import LOSSES
    from ..nn.layers import Dense, Sequential

    if not isinstance(model, Sequential):
        return "not a Sequential model"
    if loss.name not in _LOSSES or LOSSES.get(loss.name) is not loss:
        return f"cost {loss.name} has no captured form"
    if not loss.from_logits and model.output_activation.name != "identity":
        return "an output activation under a cost that is not from logits"
    for layer in model.layers:
        if type(layer) is not Dense:
            return f"{type(layer).__name__} layers are not captured"
        act = layer.activation
        if not act.builtin:  # replayed by name below: only the library's own activations
            return f"activation {act.name!r} is user-defined"
        alpha = act.params.get("alpha", 0.0)
        if (_forward(act.name, alpha) is None and act.name != "identity") or _backward(act.name, alpha) is None:
            return f"activation {act.name} is not captured"
    return None


class CapturedStep:
    """Forward, cost and backward of an MLP as preallocated NumPy calls.

    Build it only for a model and cost that :func:`capturable` accepts (it returns None).

    Parameters
    ----------
    model : Sequential of Dense layers
        Its ``params`` must be the views the trainer keeps (they are read at
        every step, so updates of the flat buffer are seen).
    loss : nablanet.losses.Loss
    grad_views : list of arrays
        Views of the flat gradient buffer, in the order of the parameter
        leaves (W^1, b^1, W^2, b^2, ...); the step writes the gradients there.
    """

    def __init__(self, model, loss, grad_views):
        self.model, self.loss = model, loss
        self.gW = grad_views[0::2]
        self.gb = grad_views[1::2]
        self.fwd, self.bwd = [], []
        for layer in model.layers:
            a = layer.activation
            alpha = a.params.get("alpha", 0.0)
            self.fwd.append(_forward(a.name, alpha))
            self.bwd.append(_backward(a.name, alpha))
        self.sizes = [layer.n_out for layer in model.layers]
        self.dtype = model.dtype
        self._plans = {}

    def _plan(self, n):
        plan = self._plans.get(n)
        if plan is None:
            dt = self.dtype
            plan = {
                "A": [np.empty((n, k), dt) for k in self.sizes],
                "D": [np.empty((n, k), dt) for k in self.sizes],
                "T": [np.empty((n, k), dt) for k in self.sizes],
                "rows": np.arange(n),
            }
            self._plans[n] = plan
        return plan

    def __call__(self, X, y):
        """One forward and backward pass on ``(X, y)``; returns the cost. Gradients land in ``grad_views``."""
        n = X.shape[0]
        P = self._plan(n)
        A, D, T = P["A"], P["D"], P["T"]
        params = self.model.params
        a = X
        for p, Al, Tl, f in zip(params, A, T, self.fwd):
            np.matmul(a, p["W"], out=Al)
            Al += p["b"]
            if f is not None:
                f(Al, Tl)
            a = Al
        cost = self._cost(a, y, D[-1], T[-1], P["rows"])  # dC/da of the last layer ...
        self.bwd[-1](D[-1], A[-1], T[-1])  # ... times its sigma' (identity in an MLP) is delta^L
        L = len(params)
        for i in range(L - 1, -1, -1):
            d = D[i]
            np.matmul((A[i - 1] if i else X).T, d, out=self.gW[i])
            np.sum(d, axis=0, out=self.gb[i])
            if i:
                np.matmul(d, params[i]["W"].T, out=D[i - 1])
                self.bwd[i - 1](D[i - 1], A[i - 1], T[i - 1])
        return cost

    def _cost(self, z, y, d, t, rows):
        """The cost of the last layer's output z, and dC/dz written into d."""
        name = self.loss.name
        n = z.shape[0]
        if name == "mse":
            np.subtract(z, y, out=d)
            N = d.size
            cost = float(np.vdot(d, d)) / N
            d *= 2.0 / N
            return cost
        if name == "binary_cross_entropy":
            N = z.size
            cost = float(np.mean(np.logaddexp(0.0, z) - y * z))
            np.negative(z, out=d)  # d = sigmoid(z) - t, then / N
            np.logaddexp(0.0, d, out=d)
            np.negative(d, out=d)
            np.exp(d, out=d)
            d -= y
            d *= 1.0 / N
            return cost
        # softmax cross-entropy from logits: d = (p - t) / n
        m = z.max(axis=1, keepdims=True)
        np.subtract(z, m, out=d)
        np.exp(d, out=d)
        s = d.sum(axis=1, keepdims=True)
        lse = np.log(s)
        lse += m
        d /= s
        if y.ndim == 1:
            cost = float(np.mean(lse[:, 0] - z[rows, y]))
            d[rows, y] -= 1.0
        else:
            cost = float(np.mean(np.sum(y * (lse - z), axis=1)))
            d *= np.sum(y, axis=1, keepdims=True)
            d -= y
        d *= 1.0 / n
        return cost
