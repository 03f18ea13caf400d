"""HIPS autograd's ``autograd.misc``: ``flatten``, ``flatten_func``, ``const_graph`` and ``misc.optimizers``.

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

from .flatten import flatten, flatten_func
from .tracers import const_graph

__all__ = ["flatten", "flatten_func", "const_graph"]
