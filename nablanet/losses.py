"""Cost functions and weight penalties.

All costs average over the samples (rows).  Cross-entropies take *logits* z
(the output layer before its sigmoid/softmax) and are computed with
log-sum-exp and softplus, never by clipping probabilities::

    softmax cross-entropy   C = -mean_i [ t_i . log softmax(z_i) ]     dC/dz = (p - t) / n
    binary cross-entropy    C = mean   [ softplus(z) - t z ]              dC/dz = (sigmoid(z) - t) / N

Each fused cost is a primitive whose rule is that closed form: ``p - t`` lives
in the softmax cross-entropy rule and nowhere else, and Huber's mask (inside or
outside ``delta``) is computed inside its rules from the values they are given,
so a captured program recomputes it at every replay.  The values of
log-sum-exp, sigmoid and softplus come from :mod:`nablanet.numpy._kernels`.

The penalties (:func:`l1_penalty`, :func:`l2_penalty`) are the one
implementation the training loop adds to the cost it differentiates.
"""

from __future__ import annotations

import numpy as np

from . import numpy as anp
from .autodiff.core import NondiffPrimitive, Primitive, getval
from .nn.activations import sigmoid
from .numpy import _kernels

__all__ = [
    "Loss", "mse", "half_sse", "mae", "huber", "binary_cross_entropy", "softmax_cross_entropy",
    "get_loss", "LOSSES", "l1_penalty", "l2_penalty",
]


def _check_same_shape(name, y, t):
    ys, ts = np.shape(getval(y)), np.shape(getval(t))
    if ys != ts:
        raise ValueError(f"{name}: predictions have shape {ys} but targets have shape {ts}; they must match")


# ------------------------------------------------------------------ mean squared error (fused)

def _mse(y, t):
    d = y - t
    if type(d) is np.ndarray:
        np.multiply(d, d, out=d)  # d * d in place
        return _kernels.mean(d)
    return np.mean(d * d)


_mse_p = Primitive(_mse, "mse")
_mse_p.defvjp(
    lambda ans, y, t: lambda g: g * (2.0 / np.size(getval(y))) * (y - t),
    lambda ans, y, t: lambda g: g * (-2.0 / np.size(getval(y))) * (y - t),
)
_mse_p.defjvp(
    lambda g, ans, y, t: anp.sum(g * (y - t)) * (2.0 / np.size(getval(y))),
    lambda g, ans, y, t: anp.sum(g * (t - y)) * (2.0 / np.size(getval(y))),
)


def mse(y, t):
    """Mean squared error over all entries, ``mean((y - t)^2)``."""
    _check_same_shape("mse", y, t)
    return _mse_p(y, t)


def half_sse(y, t):
    """The notes' cost ``1/2 sum (y - t)^2`` (summed, not averaged)."""
    _check_same_shape("half_sse", y, t)
    d = y - t
    return 0.5 * anp.sum(d * d)


def mae(y, t):
    """Mean absolute error."""
    _check_same_shape("mae", y, t)
    return anp.mean(anp.abs(y - t))


def _huber(y, t, delta):
    a = np.abs(y - t)
    q = np.minimum(a, delta)  # the quadratic part; a - q is the linear part beyond delta
    return np.mean(q * (0.5 * q) + delta * (a - q))


def _huber_slope(y, t, delta):
    """N dC/dy = clip(y - t, -delta, delta): the mask |y - t| <= delta, computed here, in the rule."""
    return anp.clip(y - t, -delta, delta)


_huber_p = Primitive(_huber, "huber")
_huber_p.defvjp(
    lambda ans, y, t, delta: lambda g: g * (_huber_slope(y, t, delta) * (1.0 / np.size(getval(y)))),
    lambda ans, y, t, delta: lambda g: g * (_huber_slope(y, t, delta) * (-1.0 / np.size(getval(y)))),
)
_huber_p.defjvp(
    lambda g, ans, y, t, delta: anp.sum(g * _huber_slope(y, t, delta)) * (1.0 / np.size(getval(y))),
    lambda g, ans, y, t, delta: anp.sum(g * _huber_slope(y, t, delta)) * (-1.0 / np.size(getval(y))),
)


def huber(y, t, delta=1.0):
    """Huber cost: ``mean`` of ``d^2/2`` where ``|d| <= delta`` and ``delta (|d| - delta/2)`` beyond (d = y - t)."""
    _check_same_shape("huber", y, t)
    if not delta > 0:
        raise ValueError(f"huber: delta must be positive, got {delta}")
    return _huber_p(y, t, float(delta))


# ------------------------------------------------------------------ binary cross-entropy from logits (fused)

def _bce(z, t):
    return np.mean(_kernels.softplus(z) - t * z)


_bce_p = Primitive(_bce, "binary_cross_entropy")
_bce_p.defvjp(
    lambda ans, z, t: lambda g: g * ((sigmoid(z) - t) * (1.0 / np.size(getval(z)))),
    lambda ans, z, t: lambda g: g * (z * (-1.0 / np.size(getval(z)))),
)
_bce_p.defjvp(
    lambda g, ans, z, t: anp.sum(g * (sigmoid(z) - t)) * (1.0 / np.size(getval(z))),
    lambda g, ans, z, t: anp.sum(g * z) * (-1.0 / np.size(getval(z))),
)


def binary_cross_entropy(z, t):
    """``-mean[t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))]`` from logits ``z``, targets in [0, 1]."""
    _check_same_shape("binary_cross_entropy", z, t)
    return _bce_p(z, t)


# ------------------------------------------------------------------ softmax cross-entropy from logits (fused)

_UNSIGNED = {np.dtype(f"i{n}"): np.dtype(f"u{n}") for n in (1, 2, 4, 8)}


def _check_labels(labels, k):
    """Raise unless every integer label lies in [0, k): one reduction (negative labels, seen as unsigned
    integers of their width, are larger than any k)."""
    if labels.size:
        u = _UNSIGNED.get(labels.dtype)
        if np.maximum.reduce(labels if u is None else labels.view(u), axis=None) >= k:
            raise ValueError(f"softmax_cross_entropy: labels must lie in [0, {k}), got [{labels.min()}, {labels.max()}]")


def _minus_onehot_into(out, p, labels):
    """``p - onehot(labels)`` in ``out``: 1 taken off each row's entry at its label (the other entries are
    ``p``'s, as ``p - 0`` is)."""
    if out is not p:
        np.copyto(out, p)
    out[np.arange(labels.shape[0]), labels] -= 1
    return out


# p - onehot(labels), differentiable in p (its derivative is the identity): one step of a captured
# program writing into a buffer, instead of a one-hot array made and subtracted at every replay.
_minus_onehot = Primitive(lambda p, labels: _minus_onehot_into(np.array(p, copy=True), p, labels), "minus_onehot")
_minus_onehot.into = _minus_onehot_into
_minus_onehot.defvjp(lambda ans, p, labels: lambda g: g)
_minus_onehot.defjvp(lambda g, ans, p, labels: g)


def _softmax_ce(z, t, lse):
    """The cost from the logits and their row-wise log-sum-exp ``lse`` (kept as a column).  Integer labels
    are checked here, in the primitive, so that a captured program checks them at every replay without a
    guard of its own."""
    if t.ndim == 1:  # integer class labels
        _check_labels(t, z.shape[1])
        return _kernels.mean(lse[:, 0] - z[np.arange(z.shape[0]), t])
    return _kernels.mean(np.sum(t * (lse - z), axis=1))


# The cost takes its log-sum-exp as a value computed beside it (its derivative is in the rules, which
# compute softmax(z) = exp(z - logsumexp(z)) differentiably): a captured program then computes the
# log-sum-exp once for the cost and the sweep, instead of once inside each.
_lse_value = NondiffPrimitive(lambda lse: lse, "lse_value")


def _softmax_rows(z):
    """softmax(z) along the rows, ``exp(z - logsumexp(z))`` (the bits of ``softmax(z, axis=1)``)."""
    return anp.exp(z - anp.logsumexp(z, axis=1, keepdims=True))


def _dce_dz(z, t):
    """n dC/dz = p - t for labels or rows summing to one; p sum(t) - t in general."""
    v = getval(t)
    if v.ndim == 1:
        return _minus_onehot(_softmax_rows(z), v)
    return _softmax_rows(z) * anp.sum(t, axis=1, keepdims=True) - t


_softmax_ce_p = Primitive(_softmax_ce, "softmax_cross_entropy")
_softmax_ce_p.defvjp(
    lambda ans, z, t, lse: lambda g: g * (_dce_dz(z, t) * (1.0 / getval(z).shape[0])),
    lambda ans, z, t, lse: lambda g: g * ((z - anp.logsumexp(z, axis=1, keepdims=True)) * (-1.0 / getval(z).shape[0])),
)
_softmax_ce_p.defjvp(
    lambda g, ans, z, t, lse: anp.sum(g * _dce_dz(z, t)) * (1.0 / getval(z).shape[0]),
    lambda g, ans, z, t, lse: anp.sum(g * (z - anp.logsumexp(z, axis=1, keepdims=True))) * (-1.0 / getval(z).shape[0]),
)


def softmax_cross_entropy(z, t):
    """Cross-entropy of ``softmax(z)`` (rows of logits) against integer labels or one-hot/probability rows."""
    if type(t) is list or type(t) is tuple:  # labels or rows written out (an AttributeError before)
        t = np.asarray(t)
    zs, tv = np.shape(getval(z)), getval(t)
    if len(zs) != 2:
        raise ValueError(f"softmax_cross_entropy: logits must be (n_samples, n_classes), got shape {zs}")
    if np.ndim(tv) == 1:
        if (tv.dtype if hasattr(tv, "dtype") else np.asarray(tv).dtype).kind not in "iu":
            raise TypeError("softmax_cross_entropy: 1-d targets must be integer class labels")
        if len(tv) != zs[0]:
            raise ValueError(f"softmax_cross_entropy: {zs[0]} rows of logits but {len(tv)} labels")
        # their range is checked by the cost's primitive (at every replay of a captured program too)
    else:
        _check_same_shape("softmax_cross_entropy", z, t)
    return _softmax_ce_p(z, t, _lse_value(anp.logsumexp(z, axis=1, keepdims=True)))


# ------------------------------------------------------------------ registry


class Loss:
    """A named cost with what the training loop needs to know about it.

    ``from_logits``: the cost takes the network's output before the output
    activation (which must then be ``link`` or identity).
    """

    def __init__(self, name, fn, from_logits=False, link=None, task="regression"):
        self.name, self.fn, self.from_logits, self.link, self.task = name, fn, from_logits, link, task

    def __call__(self, y, t):
        return self.fn(y, t)

    def __repr__(self):
        return f"Loss({self.name})"


LOSSES = {
    "mse": Loss("mse", mse),
    "half_sse": Loss("half_sse", half_sse),
    "mae": Loss("mae", mae),
    "huber": Loss("huber", huber),
    "binary_cross_entropy": Loss("binary_cross_entropy", binary_cross_entropy, True, "sigmoid", "binary"),
    "cross_entropy": Loss("cross_entropy", softmax_cross_entropy, True, "softmax", "multiclass"),
}
LOSSES["bce"] = LOSSES["binary_cross_entropy"]
LOSSES["softmax_cross_entropy"] = LOSSES["cross_entropy"]


def get_loss(spec):
    """A :class:`Loss` from a name (``"mse"``, ``"cross_entropy"``, ``"bce"``...) or a callable ``(y, t) -> cost``."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str):
        if spec not in LOSSES:
            raise ValueError(f"unknown loss {spec!r}; choose from {', '.join(sorted(LOSSES))}")
        return LOSSES[spec]
    if callable(spec):
        return Loss(getattr(spec, "__name__", "custom"), spec)
    raise TypeError(f"loss must be a name or a callable, not {type(spec).__name__}")


# ------------------------------------------------------------------ penalties


def _penalized(params, include_bias):
    """The arrays a penalty applies to: weights ``W`` (and biases ``b`` if asked)."""
    keys = ("W", "b") if include_bias else ("W",)
    return [p[k] for p in params for k in keys if k in p]


def l2_penalty(params, lam, include_bias=False):
    """``lam * sum W^2`` over the weight matrices (biases only if ``include_bias``)."""
    return lam * sum(anp.sum(w * w) for w in _penalized(params, include_bias))


def l1_penalty(params, lam, include_bias=False):
    """``lam * sum |W|`` over the weight matrices (biases only if ``include_bias``)."""
    return lam * sum(anp.sum(anp.abs(w)) for w in _penalized(params, include_bias))
