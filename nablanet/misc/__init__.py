"""HIPS autograd's ``autograd.misc``: ``flatten``, ``const_graph`` and ``misc.optimizers``.

``flatten`` gives a pytree of arrays as one vector and back, differentiably;
``const_graph`` records a function once and replays the record (it is
:func:`nablanet.jit` with some arguments fixed); :mod:`nablanet.misc.optimizers`
has autograd's optimization loops ``sgd``, ``rmsprop`` and ``adam``, and
:mod:`nablanet.misc.fixed_points` its implicitly differentiated ``fixed_point``.

>>> import numpy as np
>>> from nablanet.misc import flatten
>>> vec, unflatten = flatten({"W": np.ones((2, 2)), "b": [0.5]})
>>> vec.shape
(5,)
>>> unflatten(vec)["W"].shape
(2, 2)
"""

from __future__ import annotations

import functools

import numpy as _np

from .. import numpy as anp
from ..autodiff.capture import jit
from ..autodiff.tree import tree_flatten, tree_unflatten

__all__ = ["flatten", "const_graph"]


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


def const_graph(fun, *args, **kwargs):
    """``fun`` with ``args``/``kwargs`` fixed, recorded on its first call and replayed after (autograd's name).

    The arguments given here come first, as with :func:`functools.partial`;
    they are constants of the record, so the work that depends only on them
    is done once, while recording.  The returned function takes the remaining
    positional arguments; its first call runs ``fun`` (tracing it), later
    calls replay the recorded NumPy calls without running ``fun``'s Python
    code.  It is :func:`nablanet.jit` of that partial function, with jit's
    contract: a call with new shapes or dtypes records once more, and Python
    control flow on the inputs is guarded, never replayed stale.

    >>> import nablanet as nb, nablanet.numpy as anp
    >>> f = const_graph(lambda w, x: anp.tanh(w * x), 2.0)
    >>> float(f(0.25)) == float(anp.tanh(0.5))
    True

    The result is a :class:`~nablanet.autodiff.capture.Jitted`: ``.traces``
    counts the recordings and ``.program(*rest)`` shows one.
    """

    def call(*rest):
        return fun(*args, *rest, **kwargs)

    return jit(functools.update_wrapper(call, fun))
