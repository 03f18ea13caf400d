"""HIPS autograd's ``autograd.misc.flatten``: ``flatten`` and ``flatten_func``, a pytree of arrays as one vector.

Also reachable as ``nablanet.misc.flatten`` and ``nablanet.misc.flatten_func`` (the attribute
``nablanet.misc.flatten`` is the function, as ``autograd.misc.flatten`` is after autograd's own
``from .flatten import flatten``); ``from nablanet.misc.flatten import flatten_func`` is autograd's spelling.
"""

from __future__ import annotations

import numpy as _np

from .. import numpy as anp
from ..autodiff.tree import _leaf_path, tree_flatten, tree_unflatten

__all__ = ["flatten", "flatten_func"]


def flatten(value):
    """``(vector, unflatten)``: the leaves of pytree ``value`` raveled and concatenated in tree order.

    ``unflatten(v)`` rebuilds the structure from a vector of that length (leaves
    reshaped to their shapes).  Both directions are differentiable, so a
    function of the tree can be written as a function of the vector (an
    optimizer's flat parameters, an ODE's arguments) and vice versa.  A
    complex leaf makes the vector complex; a tree without leaves gives an
    empty vector.  ``unflatten`` gives each leaf back in its own floating
    dtype (a float32 leaf of a float64 vector is float32 again, as with
    autograd), never a complex value as a real one.  In the vector a dict's entries come in sorted key order,
    as autograd's ``flatten`` puts them (in insertion order when the keys do
    not sort), so the vector is autograd's entry for entry; ``unflatten``
    gives the dicts back with their keys in the original order.
    """
    return _flatten(value)[:2]


def _flatten(value):
    """``(vector, unflatten, layout)``: :func:`flatten`'s pair and what two trees must share for one's vector to
    be read with the other's ``unflatten``: the nesting in vector order (lists and tuples alike, dict keys
    sorted) and the size of each leaf."""
    leaves, treedef = tree_flatten(value)
    for k, leaf in enumerate(leaves):
        if type(leaf) not in _NUMBERS and _kind(leaf) not in "biufc":
            raise TypeError(f"flatten: leaf {_leaf_path(treedef, k) or '(the value itself)'} (a "
                            f"{type(leaf).__name__}{_dtype_note(leaf)}) is not a number or an array of numbers; "
                            f"the containers flatten reads are dicts, lists, tuples and namedtuples")
    # the vector's order: the leaves' numbers read from a copy of the tree with its dicts' keys sorted
    order, sorted_def = tree_flatten(_keys_sorted(tree_unflatten(treedef, list(range(len(leaves))))))
    shapes = [anp.shape(leaves[i]) for i in order]
    ends = _np.cumsum([int(_np.prod(s)) for s in shapes]).tolist()
    vector = anp.concatenate([anp.ravel(leaves[i]) for i in order]) if leaves else _np.zeros(0)
    # unflatten gives a leaf back in its own floating dtype (float32 stays float32, as autograd's does), never
    # from complex to real (nothing is dropped); integer and boolean leaves come back in the vector's type
    dtypes = [_dtype_of(leaves[i]) for i in order]

    def unflatten(v):
        if anp.shape(v) != (ends[-1] if ends else 0,):
            raise ValueError(f"unflatten: expected a vector of {ends[-1] if ends else 0} entries, got shape "
                             f"{anp.shape(v)}")
        starts = [0] + ends[:-1]
        out = [None] * len(order)
        for i, a, b, shape, dtype in zip(order, starts, ends, shapes, dtypes):
            piece = anp.reshape(v[a:b], shape)
            have = anp.result_type(piece)
            if dtype is not None and have != dtype and (dtype.kind, have.kind) in (("f", "f"), ("c", "c")):
                piece = anp.astype(piece, dtype)
            out[i] = piece
        return tree_unflatten(treedef, out)  # the dicts' keys in their original order

    return vector, unflatten, (_nesting(sorted_def), tuple(ends))


_NUMBERS = (float, int, complex, bool)


def _kind(leaf):
    dtype = getattr(leaf, "dtype", None)
    return dtype.kind if isinstance(dtype, _np.dtype) else _np.asarray(leaf).dtype.kind


def _dtype_of(leaf):
    """A leaf's NumPy dtype (``None`` for a Python number, whose flattened form is NumPy's default)."""
    dtype = getattr(leaf, "dtype", None)
    return dtype if isinstance(dtype, _np.dtype) else None


def _dtype_note(leaf):
    dtype = getattr(leaf, "dtype", None)
    return f" of dtype {dtype}" if isinstance(dtype, _np.dtype) else ""


def _nesting(treedef):
    """A treedef with every sequence (list, tuple, namedtuple) as a list."""
    if type(treedef) is not tuple:
        return treedef
    t, keys, children = treedef
    return (dict if t is dict else list, keys, tuple(_nesting(c) for c in children))


def _keys_sorted(tree):
    """``tree`` with each dict's entries in sorted key order (when its keys sort)."""
    t = type(tree)
    if t is dict:
        keys = list(tree)
        try:
            keys.sort()
        except TypeError:  # keys of mixed types: insertion order
            pass
        return {k: _keys_sorted(tree[k]) for k in keys}
    if t is list or t is tuple:
        return t(_keys_sorted(x) for x in tree)
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # namedtuple
        return t(*(_keys_sorted(x) for x in tree))
    return tree


def flatten_func(func, example):
    """``(flat_func, unflatten, flat_example)``: ``func`` of a pytree shaped like ``example`` as a function of
    one vector returning one vector (autograd's ``flatten_func``): ``flat_func(v, *args)`` is
    ``flatten(func(unflatten(v), *args))[0]``, differentiable like ``func``."""
    flat_example, unflatten = flatten(example)

    def flat_func(v, *args):
        return flatten(func(unflatten(v), *args))[0]

    return flat_func, unflatten, flat_example
