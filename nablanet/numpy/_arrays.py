"""Shapes and selection: functions that move, pick or copy entries.

Each is a composition of the primitives in :mod:`._primitives` (mostly
indexing, whose adjoint scatters back with ``np.add.at``, and reshapes), so
both modes and every order of derivative come from those rules.  Called on
plain arrays they return exactly what NumPy returns.
"""

from __future__ import annotations

import numpy as _np

from ..autodiff.core import Tracer, getval
from ._primitives import (
    _arraylike,
    _contains_tracer,
    _nondiff,
    _plain_or,
    _shape,
    add,
    astype,
    atleast_3d,
    broadcast_to,
    concatenate,
    divide,
    expand_dims,
    getitem,
    moveaxis,
    multiply,
    ravel,
    reshape,
    subtract,
    transpose,
    where,
)

__all__ = [
    "append", "array_split", "column_stack", "diag", "diagflat", "diagonal", "dsplit", "dstack", "flip", "fliplr",
    "flipud", "full", "hsplit", "make_diagonal", "pad", "repeat", "roll", "rot90", "select", "split", "take",
    "take_along_axis", "tile", "tril", "triu", "vsplit", "rollaxis", "linspace",
]


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


def _indices(indices):
    """Entry numbers as an array; a captured one (computed from the inputs under nablanet.jit) stays traced."""
    return indices if isinstance(indices, Tracer) else _np.asarray(indices)


def _axis_index(indices, axis):
    """The index that reads ``indices`` along ``axis``."""
    return (slice(None),) * axis + (indices,)


# Built as recorded steps, so that an index computed from a captured input is one traced value (the index of
# the getitem and of its adjoint's untake), never a tuple holding one that a plain call would convert.
_along_index_p = _nondiff(_along_index)
_axis_index_p = _nondiff(_axis_index)


def take_along_axis(arr, indices, axis=-1):
    """``numpy.take_along_axis``: pick ``indices`` along ``axis`` (repeated picks add up in the gradient)."""
    if not _contains_tracer(arr):
        return _np.take_along_axis(arr, indices, axis=axis)
    arr = _arraylike(arr)
    indices = _indices(indices)
    if axis is None:
        arr, axis = ravel(arr), 0
    if indices.ndim != len(_shape(arr)):
        raise ValueError(
            f"take_along_axis: indices have {indices.ndim} dimensions but the array has {len(_shape(arr))}"
        )
    return getitem(arr, _along_index_p(indices, axis, _shape(arr)))


def take(a, indices, axis=None, out=None, mode="raise"):
    """``numpy.take``: entries at ``indices`` along ``axis`` (of the flattened array by default)."""
    if not _contains_tracer(a):
        return _np.take(a, indices, axis=axis, out=out, mode=mode)
    if out is not None or mode != "raise":
        raise NotImplementedError("nablanet.numpy.take on traced values supports neither out= nor mode=")
    a = _arraylike(a)
    indices = _indices(indices)
    if axis is None:
        return getitem(ravel(a), indices)
    return getitem(a, _axis_index_p(indices, axis % len(_shape(a))))


def append(arr, values, axis=None):
    """``numpy.append``: ``values`` joined after ``arr`` (both flattened when ``axis=None``)."""
    if not (_contains_tracer(arr) or _contains_tracer(values)):
        return _np.append(arr, values, axis=axis)
    arr, values = _arraylike(arr), _arraylike(values)
    if axis is None:
        return concatenate([ravel(arr), ravel(values)])
    return concatenate([arr, values], axis=axis)


# ----------------------------------------------------------------------------
# Gathers: a function that only moves, copies or zero-fills entries is NumPy's
# own function applied to an array of entry numbers, then one indexing of the
# flattened input (whose adjoint adds back with np.add.at).
# ----------------------------------------------------------------------------


def _gather(x, fn, fill=None):
    """``fn(x)`` for an ``fn`` that only rearranges entries (and writes ``fill`` values where it pads).

    ``fill`` is a 1-d array of the values ``fn`` may write (their slots are
    numbered 0..k-1 and the entries of ``x`` k, k+1, ...); ``fn`` receives
    the entry numbers and ``k``.
    """
    x = _arraylike(x)
    shape = _shape(x)
    n = int(_np.prod(shape))
    if fill is None:
        return getitem(ravel(x), fn(_np.arange(n, dtype=_np.intp).reshape(shape), 0))
    k = len(fill)
    flat = concatenate([_np.asarray(fill, dtype=_np.result_type(getval(x), 0.0)), ravel(x)])
    return getitem(flat, fn(_np.arange(k, k + n, dtype=_np.intp).reshape(shape), k))


def _plain_or_gather(npfun, zero_fill=False):
    """A differentiable version of NumPy's ``npfun`` (which only moves entries, or fills zeros)."""
    return _plain_or(
        npfun,
        lambda a, *args, **kwargs: _gather(a, lambda idx, k: npfun(idx, *args, **kwargs), [0.0] if zero_fill else None),
        doc=f"``numpy.{npfun.__name__}``, differentiable: the entries it moves carry their derivatives.",
    )


tile = _plain_or_gather(_np.tile)
repeat = _plain_or_gather(_np.repeat)
roll = _plain_or_gather(_np.roll)
flip = _plain_or_gather(_np.flip)
fliplr = _plain_or_gather(_np.fliplr)
flipud = _plain_or_gather(_np.flipud)
rot90 = _plain_or_gather(_np.rot90)
diagonal = _plain_or_gather(_np.diagonal)
tril = _plain_or_gather(_np.tril, zero_fill=True)
triu = _plain_or_gather(_np.triu, zero_fill=True)
diagflat = _plain_or_gather(_np.diagflat, zero_fill=True)


def diag(v, k=0):
    """``numpy.diag``: the ``k``-th diagonal of a matrix, or a matrix with ``v`` on it."""
    if not _contains_tracer(v):
        return _np.diag(v, k)
    return _gather(v, lambda idx, slots: _np.diag(idx, k), [0.0] if len(_shape(_arraylike(v))) == 1 else None)


def _splitter(npfun):
    def traced(ary, indices_or_sections, *args, **kwargs):
        shape = _shape(ary)
        pieces = npfun(_np.arange(int(_np.prod(shape)), dtype=_np.intp).reshape(shape), indices_or_sections,
                       *args, **kwargs)
        flat = ravel(ary)
        return [getitem(flat, p) for p in pieces]

    return _plain_or(npfun, traced, doc=f"``numpy.{npfun.__name__}``, differentiable in every piece.")


split = _splitter(_np.split)
array_split = _splitter(_np.array_split)
hsplit = _splitter(_np.hsplit)
vsplit = _splitter(_np.vsplit)
dsplit = _splitter(_np.dsplit)

_PAD_GATHERS = ("constant", "edge", "reflect", "symmetric", "wrap")


def pad(array, pad_width, mode="constant", **kwargs):
    """``numpy.pad``; differentiable for the modes that copy entries or write constants.

    Modes constant (``constant_values`` plain numbers), edge, reflect,
    symmetric and wrap; the padded entries carry the derivatives of the
    entries they copy, and constants carry none.
    """
    if not _contains_tracer(array):
        return _np.pad(array, pad_width, mode=mode, **kwargs)
    if mode not in _PAD_GATHERS:
        raise NotImplementedError(f"nablanet.numpy.pad: mode {mode!r} on traced values; use one of {_PAD_GATHERS}")
    array = _arraylike(array)
    if mode != "constant":
        return _gather(array, lambda idx, k: _np.pad(idx, pad_width, mode=mode, **kwargs))
    nd = len(_shape(array))
    values = _np.broadcast_to(_np.asarray(kwargs.get("constant_values", 0), dtype=float), (nd, 2)) if nd else \
        _np.zeros((0, 2))
    slots = _np.arange(values.size, dtype=_np.intp).reshape(values.shape)
    return _gather(array, lambda idx, k: _np.pad(idx, pad_width, mode="constant", constant_values=slots),
                   values.ravel() if values.size else [0.0])


def select(condlist, choicelist, default=0):
    """``numpy.select``: the first choice whose condition holds, else ``default``."""
    if not (_contains_tracer(choicelist) or _contains_tracer(default)):
        return _np.select([getval(c) for c in condlist], choicelist, default)
    if len(condlist) != len(choicelist):
        raise ValueError("select: condlist and choicelist must be the same length")
    out = _arraylike(default)
    for cond, choice in reversed(list(zip(condlist, choicelist))):
        out = where(_np.asarray(getval(cond), dtype=bool), _arraylike(choice), out)
    if not _contains_tracer(out):
        return out
    shape = _np.broadcast_shapes(*[_np.shape(getval(c)) for c in condlist], *[_shape(_arraylike(c)) for c in choicelist])
    return broadcast_to(out, shape) if _shape(out) != shape else out


def full(shape, fill_value, dtype=None, order="C"):
    """``numpy.full``; a traced ``fill_value`` is broadcast (its derivative sums over the copies)."""
    if not _contains_tracer(fill_value):
        return _np.full(shape, fill_value, dtype=dtype, order=order)
    v = _arraylike(fill_value)
    if dtype is not None:
        v = astype(v, dtype)
    return broadcast_to(v, (shape,) if isinstance(shape, int) else tuple(shape))


def dstack(tup):
    """Stack along the third axis (inputs made at least 3-d)."""
    arrs = [atleast_3d(a) for a in tup]
    return concatenate(arrs, axis=2)


def column_stack(tup):
    """Stack 1-d arrays as columns (2-d arrays as they are) into a 2-d array."""
    cols = []
    for a in tup:
        a = _arraylike(a)
        cols.append(reshape(a, (-1, 1)) if len(_shape(a)) < 2 else a)
    return concatenate(cols, axis=1)


def make_diagonal(D, axis1=-1, axis2=-2):
    """autograd's ``make_diagonal``: matrices with the last axis of ``D`` on their diagonals."""
    if {axis1, axis2} != {-1, -2}:
        raise NotImplementedError("make_diagonal: only axis1, axis2 = -1, -2")
    D = _arraylike(D)
    n = _shape(D)[-1]
    return multiply(expand_dims(D, -1), _np.eye(n, dtype=_np.result_type(getval(D), 0.0)))


class _Concatenator:
    """``numpy.r_`` (rows) and ``numpy.c_`` (columns) for pieces that may be traced values."""

    def __init__(self, plain, columns):
        self._plain = plain
        self._columns = columns

    def __getitem__(self, key):
        items = key if isinstance(key, tuple) else (key,)
        if not _contains_tracer(items):
            return self._plain[key]
        if any(isinstance(k, str) for k in items):
            raise NotImplementedError("nablanet.numpy r_/c_ take no string directives on traced values")
        parts = []
        for k in items:
            a = _np.r_[k] if isinstance(k, slice) else _arraylike(k)
            nd = len(_shape(a))
            if self._columns:
                parts.append(reshape(a, (-1, 1)) if nd < 2 else a)
            else:
                parts.append(reshape(a, (1,)) if nd == 0 else a)
        return concatenate(parts, axis=-1 if self._columns else 0)

    def __len__(self):
        return 0


r_ = _Concatenator(_np.r_, columns=False)
c_ = _Concatenator(_np.c_, columns=True)


def rollaxis(a, axis, start=0):
    """``numpy.rollaxis``: move ``axis`` back to position ``start``."""
    a = _arraylike(a)
    nd = len(_shape(a))
    axis %= nd
    start = start + nd if start < 0 else start
    if not 0 <= start <= nd:
        raise ValueError(f"rollaxis: start {start} is out of range for {nd} dimensions")
    if axis < start:
        start -= 1
    if axis == start:
        return a
    axes = [k for k in range(nd) if k != axis]
    axes.insert(start, axis)
    return transpose(a, axes)


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """``numpy.linspace``, differentiable in ``start`` and ``stop`` (the points are start + t (stop - start))."""
    if not (_contains_tracer(start) or _contains_tracer(stop)):
        return _np.linspace(start, stop, num=num, endpoint=endpoint, retstep=retstep, dtype=dtype, axis=axis)
    start, stop = _arraylike(start), _arraylike(stop)
    div = (num - 1) if endpoint else num
    t = _np.arange(num, dtype=float) / div if div > 0 else _np.zeros(num)
    t = t.astype(_np.result_type(getval(start), getval(stop), 0.0))  # float32 ends give float32 points
    span = subtract(stop, start)
    nd = len(_np.broadcast_shapes(_shape(start), _shape(stop)))
    t = t.reshape((num,) + (1,) * nd)
    out = add(multiply(t, span), start)
    if endpoint and num > 1:  # the last point is exactly stop, as in NumPy
        out = concatenate([getitem(out, slice(0, num - 1)), expand_dims(broadcast_to(stop, _shape(out)[1:]), 0)])
    if axis != 0:
        out = moveaxis(out, 0, axis)
    if dtype is not None:
        out = astype(out, dtype)
    if retstep:
        return out, divide(span, div) if div > 0 else _np.nan
    return out
