"""``nablanet.numpy.random`` is NumPy's ``numpy.random`` (random numbers carry no derivative).

It exists so that code written for ``autograd.numpy.random`` (``npr.randn``,
``npr.seed``, ``npr.RandomState``...) runs unchanged with nablanet.
"""

from numpy.random import *  # noqa: F401,F403
from numpy.random import __all__  # noqa: F401
