"""Shapes and selection: functions that move, pick or copy entries.

Each is a composition of the primitives in :mod:`._primitives` (mostly
indexing, whose adjoint scatters back with ``np.add.at``, and reshapes), so
both modes and every order of derivative come from those rules.  Called on
plain arrays they return exactly what NumPy returns.
"""

from __future__ import annotations

import numpy as _np

from ._primitives import _arraylike, _contains_tracer, _shape, concatenate, getitem, ravel

__all__ = ["append", "take", "take_along_axis"]


def _along_index(indices, axis, shape):
    """The full fancy index that ``take_along_axis(x, indices, axis)`` reads."""
    nd = len(shape)
    axis %= nd
    grid = []
    for k in range(nd):
        if k == axis:
            grid.append(indices)
        else:
            grid.append(_np.arange(shape[k]).reshape([-1 if j == k else 1 for j in range(nd)]))
    return tuple(grid)


def take_along_axis(arr, indices, axis=-1):
    """``numpy.take_along_axis``: pick ``indices`` along ``axis`` (repeated picks add up in the gradient)."""
    if not _contains_tracer(arr):
        return _np.take_along_axis(arr, indices, axis=axis)
    arr = _arraylike(arr)
    indices = _np.asarray(indices)
    if axis is None:
        arr, axis = ravel(arr), 0
    if indices.ndim != len(_shape(arr)):
        raise ValueError(
            f"take_along_axis: indices have {indices.ndim} dimensions but the array has {len(_shape(arr))}"
        )
    return getitem(arr, _along_index(indices, axis, _shape(arr)))


def take(a, indices, axis=None, out=None, mode="raise"):
    """``numpy.take``: entries at ``indices`` along ``axis`` (of the flattened array by default)."""
    if not _contains_tracer(a):
        return _np.take(a, indices, axis=axis, out=out, mode=mode)
    if out is not None or mode != "raise":
        raise NotImplementedError("nablanet.numpy.take on traced values supports neither out= nor mode=")
    a = _arraylike(a)
    indices = _np.asarray(indices)
    if axis is None:
        return getitem(ravel(a), indices)
    return getitem(a, (slice(None),) * (axis % len(_shape(a))) + (indices,))


def append(arr, values, axis=None):
    """``numpy.append``: ``values`` joined after ``arr`` (both flattened when ``axis=None``)."""
    if not (_contains_tracer(arr) or _contains_tracer(values)):
        return _np.append(arr, values, axis=axis)
    arr, values = _arraylike(arr), _arraylike(values)
    if axis is None:
        return concatenate([ravel(arr), ravel(values)])
    return concatenate([arr, values], axis=axis)
