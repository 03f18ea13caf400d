"""Primitives that make a layer's side effects explicit values.

A layer is a pure function of ``(params, state, x, rng, train)``: what it
draws at random and what it remembers go in and come out as values computed
by primitives, so the engine records them, and a captured program
(:func:`nablanet.jit`) recomputes them at every replay instead of baking the
first step's values in as constants.

* :func:`dropout_mask` draws the scaled keep-mask of inverted dropout from the
  random state it is given (a ``numpy.random.Generator``): the Generator is
  the primitive's input, so a captured program that takes it as an argument
  draws a new mask at every replay.
* :func:`stop_gradient` is the identity with a zero derivative: batch
  normalization returns its updated running statistics through it, as
  auxiliary outputs that carry no gradient.
"""

from __future__ import annotations

import functools

import numpy as np

from ..autodiff.core import NondiffPrimitive, Primitive, Tracer, getval

__all__ = ["dropout_mask", "moments", "normalize", "stop_gradient"]


def _zeros_like(g):
    return np.zeros(np.shape(getval(g)), getval(g).dtype)


def _identity(x):
    return x


_stop_gradient_p = Primitive(_identity, "stop_gradient")
_stop_gradient_p.defvjp(lambda ans, x: _zeros_like)
_stop_gradient_p.defjvp(lambda g, ans, x: _zeros_like(g))


def stop_gradient(x):
    """``x`` itself, as a value whose derivative with respect to anything is zero."""
    return _stop_gradient_p(x)


def _mask_into(out, rng, shape, p, dtype):
    """The mask drawn into ``out`` (of ``shape`` and ``dtype``): uniforms, then 0 or 1/(1-p) over them, in place."""
    if out.dtype not in (np.float32, np.float64):  # Generator.random draws float32 and float64 only
        out[...] = _mask(rng, shape, p, dtype)
        return out
    rng.random(dtype=out.dtype, out=out)
    np.greater_equal(out, p, out=out)  # each unit kept with probability 1 - p (1.0, else 0.0) ...
    out *= 1.0 / (1.0 - p)  # ... and scaled so that E[mask] = 1
    return out


def _mask(rng, shape, p, dtype):
    if dtype in (np.float32, np.float64):
        return _mask_into(np.empty(shape, dtype), rng, shape, p, dtype)
    keep = rng.random(shape) >= p
    return np.multiply(keep, 1.0 / (1.0 - p), dtype=dtype)


# No derivative rules: the mask is a function of the random state alone, and nothing
# differentiates with respect to a Generator.  When the Generator is an input of a
# captured program it is a traced value, so the draw is a recorded step, made anew per replay
# (into a buffer of the program: no temporaries).
_dropout_mask_p = Primitive(_mask, "dropout_mask")
_dropout_mask_p.into = _mask_into


def dropout_mask(x, rng, p):
    """The mask of inverted dropout for ``x``: 0 with probability ``p``, else ``1/(1-p)``.

    Drawn from ``rng`` (a ``numpy.random.Generator``, advanced by the draw)
    in ``x``'s shape and dtype, by a primitive whose input is the random
    state.  The mask does not depend on the values of ``x``, so
    ``x * dropout_mask(x, rng, p)`` has derivative ``mask`` with respect to ``x``.
    """
    if not isinstance(rng, (np.random.Generator, Tracer)):  # a captured program traces the Generator
        raise TypeError(f"dropout_mask: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    v = getval(x)
    return _dropout_mask_p(rng, tuple(v.shape), float(p), np.dtype(v.dtype))


# ------------------------------------------------------------------ normalization, fused
#
# xhat = (x - mean) / sqrt(var + eps) along an axis is three primitives, so that a first-order
# step (the captured training step) does a handful of NumPy calls and never recomputes the
# statistics, while every order of derivative stays exact:
#
# * ``_moments`` computes [mean, var, sqrt(var + eps)] once (stacked on a new first axis, kept
#   dimensions).  It carries no derivative: it is a value the two others read, never a path
#   along which derivatives flow (batch normalization's running statistics read it too).
# * ``_normalize_p(x, st)`` is xhat; its derivative with respect to x is the whole Jacobian
#   (through the statistics as well), ``J t = s (t - mean(t) - xhat mean(t xhat))`` with
#   s = 1/sqrt(var + eps).  J is symmetric, so one map serves both modes:
# * ``_normalize_jac_p(t, xhat, x, st)`` applies it in ~7 NumPy calls from the saved statistics;
#   its own rules (for second and higher orders) are written with differentiable functions of
#   (t, xhat, x), s recomputed from x, so derivatives of derivatives are those of the formula.


def _kept_shape(x, axis):
    shape = list(x.shape)
    shape[axis] = 1
    return tuple(shape)


@functools.lru_cache(maxsize=32)
def _mean_weights(n, dtype):
    """``n`` weights 1/n of ``dtype`` (read-only): a mean along an axis of a matrix is one BLAS product with them."""
    w = np.full(n, 1.0 / n, dtype)
    w.flags.writeable = False
    return w


def _blas_axis(a, axis):
    """Whether means along ``axis`` of ``a`` are taken as matrix-vector products (a float32 or float64
    matrix): one BLAS call each, where a NumPy reduction along an axis and the scaling are two slower ones."""
    return a.ndim == 2 and a.size and a.dtype.char in "fd" and axis in (0, 1, -1, -2)


def _axis_mean(a, axis, out=None):
    """The mean of the matrix ``a`` along ``axis`` as one BLAS product, a 1-d array (written into ``out``)."""
    w = _mean_weights(a.shape[axis], a.dtype)
    if axis % 2 == 0:
        return w.dot(a) if out is None else np.dot(w, a, out=out)
    return a.dot(w) if out is None else np.dot(a, w, out=out)


def _moments_into(out, x, axis, eps):
    n = x.shape[axis]
    mean, var, std = out[0], out[1], out[2]
    if _blas_axis(x, axis) and out.dtype == x.dtype:
        row = (0, slice(None)) if axis % 2 == 0 else (slice(None), 0)  # the kept axis dropped: a contiguous vector
        _axis_mean(x, axis, mean[row])
        d = np.subtract(x, mean)
        np.multiply(d, d, out=d)
        _axis_mean(d, axis, var[row])
    else:
        np.add.reduce(x, axis=axis, keepdims=True, out=mean)  # np.sum's bits, without its wrapper
        mean *= 1.0 / n
        d = np.subtract(x, mean)
        np.multiply(d, d, out=d)
        np.add.reduce(d, axis=axis, keepdims=True, out=var)
        var *= 1.0 / n
    np.add(var, eps, out=std)
    np.sqrt(std, out=std)
    return out


def _moments_fun(x, axis, eps):
    """``[mean, var, sqrt(var + eps)]`` of ``x`` along ``axis`` (the biased variance), kept dimensions, stacked."""
    return _moments_into(np.empty((3,) + _kept_shape(x, axis), x.dtype), x, axis, eps)


_moments = NondiffPrimitive(_moments_fun, "moments")
_moments.into = _moments_into


def _normalize_into(out, x, st, axis, eps):
    np.subtract(x, st[0], out=out)
    return np.divide(out, st[2], out=out)


def _normalize_fun(x, st, axis, eps):
    return _normalize_into(np.empty(x.shape, np.result_type(x, st)), x, st, axis, eps)


def _jac_into(out, t, xhat, x, st, axis, eps):
    n = xhat.shape[axis]
    np.multiply(t, xhat, out=out)
    if _blas_axis(out, axis) and t.dtype == out.dtype:
        c, m = _axis_mean(out, axis), _axis_mean(t, axis)  # mean(t xhat), mean(t)
        if axis % 2:
            c, m = c[:, None], m[:, None]
    else:
        c = np.add.reduce(out, axis=axis, keepdims=True)
        c *= 1.0 / n  # mean(t xhat)
        m = np.add.reduce(t, axis=axis, keepdims=True)
        m *= 1.0 / n  # mean(t)
    np.multiply(xhat, c, out=out)
    np.add(out, m, out=out)
    np.subtract(t, out, out=out)
    return np.divide(out, st[2], out=out)


def _jac_fun(t, xhat, x, st, axis, eps):
    """``(t - mean(t) - xhat mean(t xhat)) / sqrt(var + eps)``: the normalization's Jacobian applied to ``t``."""
    shape = np.broadcast_shapes(np.shape(t), xhat.shape)
    if np.shape(t) != shape:
        t = np.broadcast_to(t, shape)
    return _jac_into(np.empty(shape, np.result_type(t, xhat, st)), t, xhat, x, st, axis, eps)


def _inv_std(x, axis, eps):
    """1 / sqrt(var + eps) along ``axis``, written with differentiable functions (for higher orders)."""
    from .. import numpy as anp

    d = x - anp.mean(x, axis=axis, keepdims=True)
    return 1.0 / anp.sqrt(anp.mean(d * d, axis=axis, keepdims=True) + eps)


def _mean(v, axis):
    from .. import numpy as anp

    return anp.mean(v, axis=axis, keepdims=True)


_normalize_p = Primitive(_normalize_fun, "normalize")
_normalize_p.into = _normalize_into
_normalize_p.defvjp(lambda ans, x, st, axis, eps: lambda g: _normalize_jac_p(g, ans, x, st, axis, eps))
_normalize_p.defjvp(lambda t, ans, x, st, axis, eps: _normalize_jac_p(t, ans, x, st, axis, eps))

# F = s(x) (t - mean(t) - a mean(t a)) with a = xhat: linear and symmetric in t; in a,
# dF = -s (da mean(t a) + a mean(t da)); in x (through s alone, ds = -s^2 mean(a dx)), dF = -s mean(a dx) F.
_normalize_jac_p = Primitive(_jac_fun, "normalize_jacobian")
_normalize_jac_p.into = _jac_into
_normalize_jac_p.defvjp(
    lambda F, t, a, x, st, axis, eps: lambda u: _normalize_jac_p(u, a, x, st, axis, eps),
    lambda F, t, a, x, st, axis, eps: lambda u: -_inv_std(x, axis, eps) * (u * _mean(t * a, axis)
                                                                           + t * _mean(u * a, axis)),
    lambda F, t, a, x, st, axis, eps: lambda u: -_inv_std(x, axis, eps) * a * _mean(u * F, axis),
)
_normalize_jac_p.defjvp(
    lambda dt, F, t, a, x, st, axis, eps: _normalize_jac_p(dt, a, x, st, axis, eps),
    lambda da, F, t, a, x, st, axis, eps: -_inv_std(x, axis, eps) * (da * _mean(t * a, axis)
                                                                     + a * _mean(t * da, axis)),
    lambda dx, F, t, a, x, st, axis, eps: -_inv_std(x, axis, eps) * _mean(a * dx, axis) * F,
)


def moments(x, axis, eps=1e-5):
    """``[mean, var, sqrt(var + eps)]`` along ``axis`` with kept dimensions, stacked on a new first axis,
    as a value without derivative (what :func:`normalize` computes once and its rules reuse)."""
    return _moments(x, int(axis), float(eps))


def normalize(x, axis, eps=1e-5, stats=None):
    """``(x - mean) / sqrt(var + eps)`` along ``axis`` (the biased variance), differentiable to any order.

    Batch normalization in training is ``axis=0`` (over the samples), layer
    normalization ``axis=1`` (over the features of each sample).  The
    statistics are computed once (``stats``, from :func:`moments` of the same
    ``x``, ``axis`` and ``eps``, when the caller needs them too); the backward
    rule ``(g - mean(g) - xhat mean(g xhat)) / sqrt(var + eps)`` is one node
    that reuses them, instead of the dozens of steps of the composition.
    """
    axis, eps = int(axis), float(eps)
    if stats is None:
        stats = _moments(x, axis, eps)
    return _normalize_p(x, stats, axis, eps)


def _running_average(avg, st, row, momentum, scale):
    """``momentum avg + ((1 - momentum) scale) st[row]``, the row's kept axis dropped: three NumPy calls."""
    out = np.multiply(momentum, avg)
    out += st[row].reshape(np.shape(avg)) * ((1 - momentum) * scale)
    return out


_running_average_p = NondiffPrimitive(_running_average, "running_average")


def running_average(avg, st, row, momentum, scale=1.0):
    """The running average ``avg`` updated with row ``row`` of the :func:`moments` ``st`` (times ``scale``,
    such as n/(n-1) for the unbiased variance): ``momentum avg + (1 - momentum) scale st[row]``, a value
    without derivative, as batch normalization keeps its running statistics."""
    return _running_average_p(avg, st, int(row), float(momentum), float(scale))
