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
* :func:`moments`, :func:`normalize` and :func:`batch_normalize` are the
  normalizations as a few fused primitives (the statistics once, each
  backward rule one node), exact to every order of derivative.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import validate as V
from ..autodiff.core import NondiffPrimitive, Primitive, Tracer, getval

__all__ = ["batch_normalize", "dropout_mask", "moments", "normalize", "stop_gradient"]


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
    p = V.probability(p, "dropout_mask: p")  # in [0, 1): p = 1 divided by zero, p > 1 or < 0 made nonsense masks
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
    """The statistics of the data shifted by its first sample along ``axis``, then in two passes: with
    d = x - x_0, mean = x_0 + mean(d) and var = mean((d - mean(d))^2).  The sums run over values of the
    size of the spread, not of the offset: a float32 batch of 4096 rows around 1e4 keeps its mean to
    the rounding of the result and its variance to a few ulps (summing x itself lost 1e-2 of the mean,
    and a constant column got a variance of ~1e-2 and |xhat| up to 1); a constant column is exactly
    (mean 0, var 0, xhat 0)."""
    n = x.shape[axis]
    mean, var, std = out[0], out[1], out[2]
    first = x[(slice(None),) * (axis % x.ndim) + (slice(0, 1),)] if n else np.zeros((), x.dtype)
    d = np.subtract(x, first)
    if _blas_axis(x, axis) and out.dtype == x.dtype:
        row = (0, slice(None)) if axis % 2 == 0 else (slice(None), 0)  # the kept axis dropped: a contiguous vector
        _axis_mean(d, axis, mean[row])
        np.subtract(d, mean, out=d)
        np.multiply(d, d, out=d)
        _axis_mean(d, axis, var[row])
    else:
        np.add.reduce(d, axis=axis, keepdims=True, out=mean)  # np.sum's bits, without its wrapper
        mean *= 1.0 / n
        np.subtract(d, mean, out=d)
        np.multiply(d, d, out=d)
        np.add.reduce(d, axis=axis, keepdims=True, out=var)
        var *= 1.0 / n
    mean += first
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


def _jac_into(out, t, xhat, x, st, axis, eps, scale=None, sums=None):
    """``(t - mean(t) - xhat mean(t xhat)) / sqrt(var + eps)`` into ``out``, times ``scale`` (a factor constant
    along ``axis``, one multiply with ``scale / sqrt(var + eps)``); ``sums = (sum(t xhat), sum(t))`` along
    ``axis`` (that axis dropped) when the caller has them, instead of taking them again."""
    n = xhat.shape[axis]
    if sums is not None:
        c, m = sums[0] * (1.0 / n), sums[1] * (1.0 / n)
        if axis % xhat.ndim:  # (without the leading axis they broadcast as they are)
            c, m = c.reshape(_kept_shape(xhat, axis)), m.reshape(_kept_shape(xhat, axis))
    else:
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
    if scale is None:
        return np.divide(out, st[2], out=out)
    return np.multiply(out, np.divide(scale, st[2]), out=out)


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


# ------------------------------------------------------------------ batch normalization's affine step, fused
#
# y = gamma xhat + beta over the rows (axis 0; gamma and beta one per column) is one primitive,
# ``_bn_affine_p(x, xhat, st, gamma, beta, eps)``, so that its reverse rule shares the two column
# sums of the backward pass: dbeta = sum(g), dgamma = sum(g xhat), and
#     dx = gamma s (g - dbeta/n - xhat dgamma/n)          (s = 1/sqrt(var + eps)),
# one node (``_bn_dx_p``: the normalization's Jacobian kernel given the two sums and the factor
# gamma, constant along the rows), where the composition multiplies g by gamma and the
# normalization's rule takes two more means.  xhat comes in as a value without derivative (``_normalize_value``, the
# normalization's own function): the x argument carries the whole derivative, through xhat too.
# The rules read xhat again through ``normalize`` (differentiable; a captured program merges the
# two calls), and ``_bn_dx_p``'s own rules are those of ``_normalize_jacobian(gamma g, xhat, x)``
# (its sums, functions of g and xhat alone, get none), so every order stays exact.

_normalize_value = NondiffPrimitive(_normalize_fun, "normalize")
_normalize_value.into = _normalize_into


def _bn_affine_into(out, x, a, st, gamma, beta, eps):
    np.multiply(a, gamma, out=out)
    return np.add(out, beta, out=out)


def _bn_affine_fun(x, a, st, gamma, beta, eps):
    """``xhat * gamma + beta`` (the same bits as the two products)."""
    return _bn_affine_into(np.empty(np.broadcast_shapes(a.shape, np.shape(gamma), np.shape(beta)),
                                    np.result_type(a, gamma, beta)), x, a, st, gamma, beta, eps)


def _bn_dx_into(out, g, a, x, st, gamma, gg, gb, eps):
    return _jac_into(out, g, a, x, st, 0, eps, gamma, (gg, gb))


def _bn_dx_fun(g, a, x, st, gamma, gg, gb, eps):
    """``gamma s (g - gb/n - a gg/n)``: batch normalization's dx from the column sums gg = sum(g a), gb = sum(g)."""
    shape = np.broadcast_shapes(np.shape(g), a.shape)
    if np.shape(g) != shape:
        g = np.broadcast_to(g, shape)
    return _bn_dx_into(np.empty(shape, np.result_type(g, a, st, gamma)), g, a, x, st, gamma, gg, gb, eps)


def _colsum(v):
    from .. import numpy as anp

    return anp.sum(v, axis=0)


def _sum_to(s, v):
    """The column sum ``s`` (the output's shape without its leading axis) summed to the shape of ``v``, the
    factor it is the gradient of (one per column as it is; a scalar or a (1, c) row broadcast too)."""
    from ..numpy import reshape
    from ..numpy._primitives import unbroadcast

    shape = np.shape(getval(v))
    return s if np.shape(getval(s)) == shape else unbroadcast(reshape(s, (1,) + np.shape(getval(s))), shape)


def _no_derivative(v):
    return lambda u: np.zeros(np.shape(getval(v)), np.result_type(getval(v)))


_bn_dx_p = Primitive(_bn_dx_fun, "batch_norm_dx")
_bn_dx_p.into = _bn_dx_into
_bn_dx_p.defvjp(
    lambda F, g, a, x, st, gamma, gg, gb, eps: lambda u: gamma * _normalize_jac_p(u, a, x, st, 0, eps),
    lambda F, g, a, x, st, gamma, gg, gb, eps: lambda u: -_inv_std(x, 0, eps) * (u * _mean(g * gamma * a, 0)
                                                                                 + g * gamma * _mean(u * a, 0)),
    lambda F, g, a, x, st, gamma, gg, gb, eps: lambda u: -_inv_std(x, 0, eps) * a * _mean(u * F, 0),
    None,
    lambda F, g, a, x, st, gamma, gg, gb, eps: lambda u: _sum_to(_colsum(u * _normalize_jac_p(g, a, x, st, 0, eps)),
                                                                 gamma),
    lambda F, g, a, x, st, gamma, gg, gb, eps: _no_derivative(gg),
    lambda F, g, a, x, st, gamma, gg, gb, eps: _no_derivative(gb),
)
_bn_dx_p.defjvp(
    lambda dg, F, g, a, x, st, gamma, gg, gb, eps: gamma * _normalize_jac_p(dg, a, x, st, 0, eps),
    lambda da, F, g, a, x, st, gamma, gg, gb, eps: -_inv_std(x, 0, eps) * (da * _mean(g * gamma * a, 0)
                                                                           + a * _mean(g * gamma * da, 0)),
    lambda dx, F, g, a, x, st, gamma, gg, gb, eps: -_inv_std(x, 0, eps) * _mean(a * dx, 0) * F,
    None,
    lambda dgam, F, g, a, x, st, gamma, gg, gb, eps: dgam * _normalize_jac_p(g, a, x, st, 0, eps),
    lambda dv, F, g, a, x, st, gamma, gg, gb, eps: np.zeros(np.shape(getval(F)), np.result_type(getval(F))),
    lambda dv, F, g, a, x, st, gamma, gg, gb, eps: np.zeros(np.shape(getval(F)), np.result_type(getval(F))),
)


def _bn_affine_vjp(argnums, y, x, a, st, gamma, beta, eps):
    def pull(g):
        xhat = normalize(x, 0, eps, stats=st)  # the forward's xhat, differentiable (one call in a captured step)
        gb = _colsum(g) if 0 in argnums or 4 in argnums else None
        gg = _colsum(g * xhat) if 0 in argnums or 3 in argnums else None
        out = []
        for i in argnums:
            if i == 0:
                out.append(_bn_dx_p(g, xhat, x, st, gamma, gg, gb, eps))
            elif i == 3:
                out.append(_sum_to(gg, gamma))
            elif i == 4:
                out.append(_sum_to(gb, beta))
            else:
                raise _bn_affine_p._missing("VJP", i)
        return out

    return pull


def _bn_affine_jvp_beta(t, y, x, a, st, gamma, beta, eps):
    from ..numpy._primitives import _bcast

    return _bcast(t, y)


_bn_affine_p = Primitive(_bn_affine_fun, "batch_norm_affine")
_bn_affine_p.into = _bn_affine_into
_bn_affine_p.defvjp_argnums(_bn_affine_vjp)
_bn_affine_p.defjvp(
    lambda t, y, x, a, st, gamma, beta, eps: gamma * _normalize_jac_p(t, normalize(x, 0, eps, stats=st), x, st, 0, eps),
    None,
    None,
    lambda t, y, x, a, st, gamma, beta, eps: normalize(x, 0, eps, stats=st) * t,
    _bn_affine_jvp_beta,
)


def batch_normalize(x, gamma, beta, eps=1e-5, stats=None):
    """``gamma (x - mean) / sqrt(var + eps) + beta`` over the rows of the matrix ``x`` (the biased variance;
    ``gamma`` and ``beta`` one per column), differentiable to any order in ``x``, ``gamma`` and ``beta``.

    The same values as ``normalize(x, 0, eps) * gamma + beta``, bit for bit; its reverse rule is one node
    for ``dx`` that reuses the column sums ``sum(g)`` and ``sum(g xhat)`` (the gradients of ``beta`` and
    ``gamma``) instead of taking them again.  ``stats``: :func:`moments` of ``x`` along axis 0, when the
    caller needs them too (batch normalization's running averages).
    """
    eps = float(eps)
    if stats is None:
        stats = _moments(x, 0, eps)
    return _bn_affine_p(x, _normalize_value(x, stats, 0, eps), stats, gamma, beta, eps)


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
