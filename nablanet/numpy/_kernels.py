"""Numerically stable kernels on plain NumPy arrays: the one home of this math.

The differentiable primitive ``nablanet.numpy.logsumexp``, the activations
(sigmoid, softplus, softmax, log-sigmoid in :mod:`nablanet.nn.activations`)
and the costs from logits (:mod:`nablanet.losses`) all compute their values
with these functions, so an edge case is handled (or not) in one place:

* ``logsumexp(x) = m + log sum exp(x - m)`` with ``m = max x``; a slice that
  is all ``-inf`` gives ``-inf`` (not NaN), one with ``+inf`` gives ``+inf``.
* ``sigmoid(z) = exp(-softplus(-z))``: no overflow at ``z = -1000``, exactly
  1 at ``z = +1000`` and the tiny true value, not 0, down to ``z ~ -745``.
* ``softplus(z) = log(1 + e^z)`` and ``log_sigmoid(z) = -softplus(-z)``,
  both through ``np.logaddexp(0, .)``: exact in both tails.

Each keeps the dtype of its input (float32 stays float32) and never warns.
These take and return plain arrays; the derivative rules live with the
primitives that call them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["logsumexp", "softmax", "sigmoid", "softplus", "log_sigmoid", "mean"]


def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x)))`` over ``axis`` with the maximum subtracted first; all ``-inf`` gives ``-inf``."""
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    # the ufuncs np.max, np.sum and np.squeeze call, without their wrappers (a training step calls this twice)
    m = _row_max(x) if axis in (1, -1) and x.ndim == 2 else np.maximum.reduce(x, axis=axis, keepdims=True)
    finite = np.isfinite(m)
    if np.logical_and.reduce(finite, axis=None):  # the common case: the maximal term is exp(0) = 1, so the sum is >= 1
        e = x - m
        e = np.exp(e, out=e) if type(e) is np.ndarray else np.exp(e)  # (0-d arrays give NumPy scalars)
        out = np.add.reduce(e, axis=axis, keepdims=True)
        out = np.log(out, out=out) if type(out) is np.ndarray else np.log(out)
    else:  # -inf (no mass) or +inf slices: shift those by 0 instead; log(0) = -inf is right there
        m = np.where(finite, m, np.zeros_like(m))
        with np.errstate(divide="ignore"):
            out = np.log(np.add.reduce(np.exp(x - m), axis=axis, keepdims=True))
    out += m
    return out if keepdims else out.squeeze(axis)


def _row_max(x):
    """``np.maximum.reduce(x, axis=1, keepdims=True)`` of a 2-d array, the same values.  Short rows (the
    logits of a few classes) are reduced as the columns of a transposed copy: NumPy reduces each short row
    in a loop of its own (6.7 us for 128 rows of 10, against 1.8 us for the copy and its column maxima)."""
    n, k = x.shape
    if k > 16 or n < 16 or x.dtype.kind != "f":
        return np.maximum.reduce(x, axis=1, keepdims=True)
    return np.maximum.reduce(np.ascontiguousarray(x.T), axis=0).reshape(n, 1)


def softmax(x, axis=-1):
    """``exp(x - logsumexp(x))`` along ``axis``: rows of probabilities summing to one."""
    p = np.subtract(x, logsumexp(x, axis=axis, keepdims=True))
    return np.exp(p, out=p) if type(p) is np.ndarray else np.exp(p)


def mean(x):
    """``np.mean(x)`` over all entries, the same bits; for float arrays without its wrappers."""
    if type(x) is np.ndarray and x.dtype.kind == "f" and x.dtype.itemsize >= 4 and x.size:
        s = np.add.reduce(x, axis=None)
        return s.dtype.type(s / np.intp(x.size))  # np.mean divides by the count as np.intp, then casts back
    return np.mean(x)


def softplus(z):
    """``log(1 + e^z)``, exact for large ``|z|`` in both directions."""
    return np.logaddexp(0.0, z)


def log_sigmoid(z):
    """``log sigmoid(z) = -softplus(-z)``."""
    return -np.logaddexp(0.0, -z)


def sigmoid(z):
    """``1 / (1 + e^-z)`` as ``exp(log_sigmoid(z))``: never overflows, exact in both tails."""
    return np.exp(log_sigmoid(z))
