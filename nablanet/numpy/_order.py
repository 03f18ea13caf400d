"""Order statistics: sort, partition, unique, median, percentile, quantile.

Each selects entries of its input, so each is differentiated through the
entries it selects: ``sort(x) = take_along_axis(x, argsort(x))``, and a
quantile is a weighted sum of the (one or two) sorted entries it interpolates
between.  The derivative flows to exactly those entries.

Ties: sorting is stable, so among equal entries the one that comes first in
the input takes the lower rank.  That entry receives the gradient of the
rank it was given; this is one valid subgradient of the (non-differentiable
at ties) sort.  ``unique`` gives each distinct value's gradient to its first
occurrence.  Called on plain arrays, each returns exactly what NumPy returns.
"""

from __future__ import annotations

import numpy as _np

from ..autodiff.core import getval
from ._arrays import take, take_along_axis
from ._primitives import (
    _arraylike,
    _axes,
    _contains_tracer,
    _nondiff,
    _shape,
    add,
    getitem,
    multiply,
    ravel,
    reshape,
    subtract,
    transpose,
)

__all__ = ["sort", "partition", "unique", "quantile", "percentile", "median"]

# The orders as primitives without derivative: a capture (nablanet.jit) records them, so a replay sorts its
# own input (NumPy's functions called on a capture tracer raised ConcretizationError).
_argsort = _nondiff(_np.argsort)
_argpartition = _nondiff(_np.argpartition)
_unique = _nondiff(_np.unique)


def sort(a, axis=-1, kind=None, order=None):
    """Sorted copy of ``a`` along ``axis`` (flattened when ``axis=None``); ties keep input order."""
    if not _contains_tracer(a):
        return _np.sort(a, axis=axis, kind=kind, order=order)
    a = _arraylike(a)
    if axis is None:
        a, axis = ravel(a), 0
    return take_along_axis(a, _argsort(getval(a), axis=axis, kind="stable"), axis)


def partition(a, kth, axis=-1, kind="introselect", order=None):
    """``numpy.partition``: the ``kth`` entries in sorted place, smaller before, larger after."""
    if not _contains_tracer(a):
        return _np.partition(a, kth, axis=axis, kind=kind, order=order)
    a = _arraylike(a)
    if axis is None:
        a, axis = ravel(a), 0
    return take_along_axis(a, _argpartition(getval(a), kth, axis=axis), axis)


def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *, equal_nan=True):
    """``numpy.unique``; each distinct value is differentiated at its first occurrence."""
    if not _contains_tracer(ar):
        return _np.unique(ar, return_index, return_inverse, return_counts, axis, equal_nan=equal_nan)
    ar = _arraylike(ar)
    res = _unique(getval(ar), True, return_inverse, return_counts, axis, equal_nan=equal_nan)
    values = take(ar, res[1], axis=axis)
    extra = [res[1]] if return_index else []
    extra += list(res[2:])
    return (values, *extra) if extra else values


_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")


def _positions(q, n, method):
    """Sorted positions ``lo``, ``hi`` and weight ``w``: the quantile is ``(1 - w) s[lo] + w s[hi]``."""
    pos = q * (n - 1)
    lo = _np.floor(pos)
    if method == "linear":
        w = pos - lo
        hi = _np.minimum(lo + 1, n - 1)
    elif method == "lower":
        w, hi = _np.zeros_like(pos), lo
    elif method == "higher":
        lo = hi = _np.ceil(pos)
        w = _np.zeros_like(pos)
    elif method == "nearest":
        lo = hi = _np.around(pos)
        w = _np.zeros_like(pos)
    else:  # midpoint
        hi = _np.ceil(pos)
        w = _np.where(hi > lo, 0.5, 0.0)
    return lo.astype(_np.intp), hi.astype(_np.intp), w


def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *,
             weights=None):
    """``numpy.quantile``, differentiable in ``a`` (``q`` is a constant).

    The result interpolates between the sorted entries at ``floor(q (n-1))``
    and the next one; its derivative is ``1 - w`` and ``w`` at those entries
    (ties: see the module's note).  ``method`` is one of linear, lower,
    higher, nearest, midpoint.
    """
    if not _contains_tracer(a):
        return _np.quantile(a, q, axis=axis, out=out, overwrite_input=overwrite_input, method=method,
                            keepdims=keepdims, weights=weights)
    if out is not None or weights is not None:
        raise NotImplementedError("nablanet.numpy.quantile on traced values takes neither out= nor weights=")
    if method not in _METHODS:
        raise ValueError(f"quantile: method must be one of {', '.join(_METHODS)} for traced values, not {method!r}")
    a = _arraylike(a)
    q = _np.asarray(getval(q), dtype=float)
    if _np.any((q < 0) | (q > 1)):
        raise ValueError("quantile: q must be in [0, 1]")
    shape = _shape(a)
    nd = len(shape)
    red = _axes(axis, nd)
    rest = [k for k in range(nd) if k not in red]
    n = int(_np.prod([shape[k] for k in red]))
    x = reshape(transpose(a, rest + list(red)), tuple(shape[k] for k in rest) + (n,))
    s = sort(x, axis=-1)
    lo, hi, w = _positions(q, n, method)
    vlo = getitem(s, (Ellipsis, lo))
    if _np.any(w):
        w = w.astype(_np.result_type(getval(a), 0.5))
        r = add(vlo, multiply(w, subtract(getitem(s, (Ellipsis, hi)), vlo)))
    else:
        r = vlo
    # r has shape rest + q.shape; NumPy puts q's axes first
    nr, nq = len(rest), q.ndim
    r = transpose(r, list(range(nr, nr + nq)) + list(range(nr)))
    if keepdims:
        r = reshape(r, q.shape + tuple(1 if k in red else shape[k] for k in range(nd)))
    return r


def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *,
               weights=None):
    """``numpy.percentile``: :func:`quantile` with ``q`` in percent."""
    if not _contains_tracer(a):
        return _np.percentile(a, q, axis=axis, out=out, overwrite_input=overwrite_input, method=method,
                              keepdims=keepdims, weights=weights)
    return quantile(a, _np.asarray(getval(q), dtype=float) / 100.0, axis, out, overwrite_input, method, keepdims,
                    weights=weights)


def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """``numpy.median``; with an even count the two middle entries share the gradient equally."""
    if not _contains_tracer(a):
        return _np.median(a, axis=axis, out=out, overwrite_input=overwrite_input, keepdims=keepdims)
    if out is not None:
        raise NotImplementedError("nablanet.numpy.median on traced values takes no out=")
    return quantile(a, 0.5, axis=axis, keepdims=keepdims)
