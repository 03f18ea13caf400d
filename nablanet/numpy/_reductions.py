"""Cumulative functions, differences, weighted averages, ranges and the NaN-ignoring reductions.

``cumsum`` is a primitive (its adjoint is the reversed cumulative sum);
``cumprod`` is one too where no entry is zero, and a chain of products where
one is (so its derivatives stay exact there); the rest are compositions.

NaN-ignoring reductions treat a NaN entry as absent: its derivative is 0, and
the others' derivatives are those of the reduction over the remaining entries
(``nanmax``/``nanmin`` share ties equally, as ``max``/``min`` do; ``nanstd``
has subgradient 0 where it is 0, as ``std``).  Called on plain arrays, each
function returns exactly what NumPy returns.
"""

from __future__ import annotations

import numpy as _np

from ..autodiff.core import getval
from ._primitives import (
    _arraylike,
    _axes,
    _cast_for,
    _contains_tracer,
    _shape,
    _sq_magnitude,
    _std_sqrt,
    broadcast_to,
    concatenate,
    divide,
    getitem,
    max,
    min,
    multiply,
    primitive,
    prod,
    ravel,
    reshape,
    stack,
    subtract,
    sum,
    where,
)

__all__ = [
    "average", "cumprod", "cumsum", "diff", "ediff1d", "nancumprod", "nancumsum", "nanmax", "nanmean", "nanmin",
    "nanprod", "nanstd", "nansum", "nanvar", "ptp", "gradient",
]


def _reversed(x, axis):
    return getitem(x, (slice(None),) * axis + (slice(None, None, -1),))


def _cumsum(x, axis):
    return _np.cumsum(x, axis=axis)


_cumsum_p = primitive(_cumsum, "cumsum")
_cumsum_p.defvjp(lambda ans, x, axis: lambda g: _reversed(_cumsum_p(_reversed(g, axis), axis), axis))
_cumsum_p.defjvp(lambda g, ans, x, axis: _cumsum_p(g, axis))


def _flat_axis(a, axis):
    a = _arraylike(a)
    if axis is None:
        return ravel(a), 0
    return a, axis % len(_shape(a))


def cumsum(a, axis=None, dtype=None, out=None):
    """Cumulative sum along ``axis`` (of the flattened array by default)."""
    if not _contains_tracer(a):
        return _np.cumsum(a, axis=axis, dtype=dtype, out=out)
    a, axis = _flat_axis(_cast_for("cumsum", a, dtype, out), axis)
    return _cumsum_p(a, axis)


def _cumprod(x, axis):
    return _np.cumprod(x, axis=axis)


_cumprod_p = primitive(_cumprod, "cumprod")  # used only where no entry is zero
_cumprod_p.defvjp(
    lambda ans, x, axis: lambda g: divide(_reversed(_cumsum_p(_reversed(multiply(g, ans), axis), axis), axis), x)
)
_cumprod_p.defjvp(lambda g, ans, x, axis: multiply(ans, _cumsum_p(divide(g, x), axis)))


def cumprod(a, axis=None, dtype=None, out=None):
    """Cumulative product along ``axis``; derivatives exact also where entries are zero."""
    if not _contains_tracer(a):
        return _np.cumprod(a, axis=axis, dtype=dtype, out=out)
    a, axis = _flat_axis(_cast_for("cumprod", a, dtype, out), axis)
    if not _np.any(getval(a) == 0):
        return _cumprod_p(a, axis)
    n = _shape(a)[axis]
    pick = lambda k: getitem(a, (slice(None),) * axis + (k,))  # noqa: E731
    run, cols = pick(0), []
    cols.append(run)
    for k in range(1, n):
        run = multiply(run, pick(k))
        cols.append(run)
    return stack(cols, axis=axis)


def diff(a, n=1, axis=-1, prepend=_np._NoValue, append=_np._NoValue):
    """``numpy.diff``: ``n``-th differences along ``axis`` (with optional prepend/append)."""
    if not (_contains_tracer(a) or _contains_tracer(prepend) or _contains_tracer(append)):
        return _np.diff(a, n=n, axis=axis, prepend=prepend, append=append)
    a = _arraylike(a)
    nd = len(_shape(a))
    axis %= nd
    parts = []
    for extra in (prepend, append):
        if extra is _np._NoValue:
            parts.append(None)
            continue
        e = _arraylike(extra)
        if len(_shape(e)) == 0:
            shape = list(_shape(a))
            shape[axis] = 1
            e = broadcast_to(e, tuple(shape))
        parts.append(e)
    a = concatenate([p for p in (parts[0], a, parts[1]) if p is not None], axis=axis)
    head = (slice(None),) * axis
    for _ in range(n):
        a = subtract(getitem(a, head + (slice(1, None),)), getitem(a, head + (slice(None, -1),)))
    return a


def ediff1d(ary, to_end=None, to_begin=None):
    """``numpy.ediff1d``: differences of the flattened array, with optional ends."""
    if not (_contains_tracer(ary) or _contains_tracer(to_end) or _contains_tracer(to_begin)):
        return _np.ediff1d(ary, to_end=to_end, to_begin=to_begin)
    d = diff(ravel(_arraylike(ary)))
    parts = [ravel(_arraylike(to_begin))] if to_begin is not None else []
    parts.append(d)
    if to_end is not None:
        parts.append(ravel(_arraylike(to_end)))
    return concatenate(parts) if len(parts) > 1 else d


def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    """``numpy.average``: the weighted mean, differentiable in ``a`` and in ``weights``."""
    if not (_contains_tracer(a) or _contains_tracer(weights)):
        return _np.average(a, axis=axis, weights=weights, returned=returned, keepdims=keepdims)
    a = _arraylike(a)
    shape = _shape(a)
    if weights is None:
        total = sum(a, axis=axis, keepdims=keepdims)
        count = int(_np.prod(shape)) if axis is None else int(_np.prod([shape[k] for k in _axes(axis, len(shape))]))
        avg = divide(total, count)
        return (avg, broadcast_to(_np.asarray(float(count)), _shape(avg))) if returned else avg
    w = _arraylike(weights)
    if _shape(w) != shape:
        if axis is None or len(_shape(w)) != 1:
            raise TypeError("average: weights differ in shape from a; give axis with 1-d weights")
        ax = axis % len(shape)
        w = reshape(w, tuple(-1 if k == ax else 1 for k in range(len(shape))))
        w = broadcast_to(w, shape)
    wsum = sum(w, axis=axis, keepdims=keepdims)
    avg = divide(sum(multiply(a, w), axis=axis, keepdims=keepdims), wsum)
    return (avg, wsum) if returned else avg


def ptp(a, axis=None, keepdims=False):
    """Range (maximum minus minimum) along ``axis``; ties share the gradient as in max and min."""
    if not _contains_tracer(a):
        return _np.ptp(a, axis=axis, keepdims=keepdims)
    a = _arraylike(a)
    return subtract(max(a, axis=axis, keepdims=keepdims), min(a, axis=axis, keepdims=keepdims))


# ----------------------------------------------------------------------------
# NaN-ignoring reductions
# ----------------------------------------------------------------------------


def _nan_mask(a):
    return _np.isnan(getval(a))


def _fill_nan(a, value):
    mask = _nan_mask(a)
    return where(mask, value, a) if _np.any(mask) else a


def nansum(a, axis=None, dtype=None, out=None, keepdims=False):
    """Sum treating NaN as zero (NaN entries get derivative 0)."""
    if not _contains_tracer(a):
        return _np.nansum(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims)
    a = _cast_for("nansum", a, dtype, out)
    return sum(_fill_nan(a, 0.0), axis=axis, keepdims=keepdims)


def nanprod(a, axis=None, dtype=None, out=None, keepdims=False):
    """Product treating NaN as one."""
    if not _contains_tracer(a):
        return _np.nanprod(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims)
    a = _cast_for("nanprod", a, dtype, out)
    return prod(_fill_nan(a, 1.0), axis=axis, keepdims=keepdims)


def nancumsum(a, axis=None, dtype=None, out=None):
    if not _contains_tracer(a):
        return _np.nancumsum(a, axis=axis, dtype=dtype, out=out)
    return cumsum(_fill_nan(_cast_for("nancumsum", a, dtype, out), 0.0), axis=axis)


def nancumprod(a, axis=None, dtype=None, out=None):
    if not _contains_tracer(a):
        return _np.nancumprod(a, axis=axis, dtype=dtype, out=out)
    return cumprod(_fill_nan(_cast_for("nancumprod", a, dtype, out), 1.0), axis=axis)


def _inexact(dtype):
    """``dtype`` for nanmean/nanvar/nanstd of a traced (floating) value: NumPy refuses an integer one."""
    if dtype is not None and _np.dtype(dtype).kind not in "fc":
        raise TypeError("If a is inexact, then dtype must be inexact")
    return dtype


def _nan_count(a, axis, keepdims):
    """How many entries are not NaN, in the input's real floating dtype (float32 stays float32, complex128
    counts in float64, so nanvar of complex values is real as NumPy's)."""
    dt = _np.finfo(_np.result_type(getval(a), 0.0)).dtype
    return _np.asarray(_np.sum(~_nan_mask(a), axis=axis, keepdims=keepdims), dtype=dt)


def nanmean(a, axis=None, dtype=None, out=None, keepdims=False):
    """Mean over the entries that are not NaN."""
    if not _contains_tracer(a):
        return _np.nanmean(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims)
    a = _cast_for("nanmean", a, _inexact(dtype), out)
    return divide(nansum(a, axis=axis, keepdims=keepdims), _nan_count(a, axis, keepdims))


def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    """Variance over the entries that are not NaN, with ``ddof``."""
    if not _contains_tracer(a):
        return _np.nanvar(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims)
    a = _cast_for("nanvar", a, _inexact(dtype), out)
    d = _fill_nan(subtract(a, nanmean(a, axis=axis, keepdims=True)), 0.0)
    return divide(sum(_sq_magnitude(d), axis=axis, keepdims=keepdims), _nan_count(a, axis, keepdims) - ddof)


def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    """Standard deviation over the entries that are not NaN (subgradient 0 where it is 0)."""
    if not _contains_tracer(a):
        return _np.nanstd(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims)
    return _std_sqrt(nanvar(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims))


def _nanext(a, axis, keepdims, ext, fill):
    a = _arraylike(a)
    mask = _nan_mask(a)
    r = ext(_fill_nan(a, fill), axis=axis, keepdims=keepdims)
    allnan = _np.all(mask, axis=None if axis is None else axis, keepdims=keepdims)
    return where(allnan, _np.nan, r) if _np.any(allnan) else r


def nanmax(a, axis=None, out=None, keepdims=False):
    """Maximum ignoring NaN (an all-NaN slice gives NaN, as in NumPy)."""
    if not _contains_tracer(a):
        return _np.nanmax(a, axis=axis, out=out, keepdims=keepdims)
    return _nanext(_cast_for("nanmax", a, None, out), axis, keepdims, max, -_np.inf)


def nanmin(a, axis=None, out=None, keepdims=False):
    """Minimum ignoring NaN (an all-NaN slice gives NaN, as in NumPy)."""
    if not _contains_tracer(a):
        return _np.nanmin(a, axis=axis, out=out, keepdims=keepdims)
    return _nanext(_cast_for("nanmin", a, None, out), axis, keepdims, min, _np.inf)




def gradient(f, *varargs, axis=None, edge_order=1):
    """``numpy.gradient`` with uniform spacings (scalars), differentiable in ``f``.

    Central differences inside, one-sided first-order differences at the
    edges (``edge_order=1``), the same linear map NumPy applies.
    """
    if not _contains_tracer(f):
        return _np.gradient(f, *varargs, axis=axis, edge_order=edge_order)
    f = _arraylike(f)
    nd = len(_shape(f))
    axes = list(range(nd)) if axis is None else [a % nd for a in ((axis,) if isinstance(axis, int) else axis)]
    if edge_order != 1 or any(_np.ndim(v) != 0 for v in varargs):
        raise NotImplementedError("nablanet.numpy.gradient on traced values: scalar spacings and edge_order=1")
    h = list(varargs) if len(varargs) == len(axes) else [varargs[0] if varargs else 1.0] * len(axes)
    out = []
    for ax, dx in zip(axes, h):
        if _shape(f)[ax] < 2:
            raise ValueError("gradient: each axis needs at least 2 samples")
        sl = lambda a, b: getitem(f, (slice(None),) * ax + (slice(a, b),))  # noqa: E731
        first = divide(subtract(sl(1, 2), sl(0, 1)), dx)
        last = divide(subtract(sl(-1, None), sl(-2, -1)), dx)
        parts = [first]
        if _shape(f)[ax] > 2:
            parts.append(divide(subtract(sl(2, None), sl(None, -2)), 2.0 * dx))
        parts.append(last)
        out.append(concatenate(parts, axis=ax))
    return out[0] if len(out) == 1 else tuple(out)
