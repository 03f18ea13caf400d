"""``flatten``: a pytree of arrays as one vector and back, differentiably (HIPS autograd's ``autograd.misc.flatten``).

>>> import numpy as np
>>> from nablanet.misc import flatten
>>> vec, unflatten = flatten({"W": np.ones((2, 2)), "b": [0.5]})
>>> vec.shape
(5,)
>>> unflatten(vec)["W"].shape
(2, 2)
"""

from __future__ import annotations

import numpy as _np

from . import numpy as anp
from .autodiff.tree import tree_flatten, tree_unflatten

__all__ = ["flatten"]


def flatten(value):
    """``(vector, unflatten)``: the leaves of pytree ``value`` raveled and concatenated in tree order.

    ``unflatten(v)`` rebuilds the structure from a vector of that length (leaves
    reshaped to their shapes).  Both directions are differentiable, so a
    function of the tree can be written as a function of the vector (an
    optimizer's flat parameters, an ODE's arguments) and vice versa.  A
    complex leaf makes the vector complex; a tree without leaves gives an
    empty vector.
    """
    leaves, treedef = tree_flatten(value)
    shapes = [anp.shape(x) for x in leaves]
    ends = _np.cumsum([int(_np.prod(s)) for s in shapes]).tolist()
    vector = anp.concatenate([anp.ravel(x) for x in leaves]) if leaves else _np.zeros(0)

    def unflatten(v):
        if anp.shape(v) != (ends[-1] if ends else 0,):
            raise ValueError(f"unflatten: expected a vector of {ends[-1] if ends else 0} entries, got shape "
                             f"{anp.shape(v)}")
        starts = [0] + ends[:-1]
        return tree_unflatten(treedef, [anp.reshape(v[a:b], s) for a, b, s in zip(starts, ends, shapes)])

    return vector, unflatten
