"""Define your own differentiable primitives, the way nablanet defines its own.

>>> from nablanet.extend import primitive, defvjp, defjvp
>>> import numpy as np
>>> @primitive
... def logsigmoid(x):
...     return -np.logaddexp(0.0, -x)
>>> defvjp(logsigmoid, lambda ans, x: lambda g: g * np.exp(-np.logaddexp(0.0, x)))
>>> defjvp(logsigmoid, lambda g, ans, x: g * np.exp(-np.logaddexp(0.0, x)))

The conventions are HIPS autograd's: one maker per positional argument; a VJP
maker is ``(ans, *args, **kwargs) -> (g -> contribution to that argument)``
and a JVP maker is ``(g, ans, *args, **kwargs) -> contribution to the output's
tangent``.  ``None`` leaves an argument without a rule (differentiating with
respect to it then raises).  Write the rules with ``nablanet.numpy`` functions
and they can be differentiated again.
"""

from .autodiff.core import NotDifferentiableError, Primitive, Tracer, getval
from .numpy._primitives import unbroadcast

__all__ = [
    "primitive", "defvjp", "defvjp_argnums", "defjvp", "defvjp_argnum", "defjvp_argnum",
    "Primitive", "Tracer", "getval", "isbox", "unbroadcast", "NotDifferentiableError",
]


def isbox(x):
    """Whether ``x`` is a traced value (autograd's name for its boxes)."""
    return isinstance(x, Tracer)


def primitive(fun):
    """Wrap ``fun`` (a function on plain arrays) as a primitive that can carry rules."""
    return Primitive(fun)


def defvjp(fun, *makers, argnums=None):
    """Attach reverse-mode rules to primitive ``fun``, one maker per positional argument."""
    _require_primitive(fun, "defvjp").defvjp(*makers, argnums=argnums)


def defvjp_argnums(fun, maker):
    """One reverse-mode rule for all arguments: ``maker(argnums, ans, *args)`` returns
    ``g -> contributions``, one per argument number in ``argnums``."""
    _require_primitive(fun, "defvjp_argnums").defvjp_argnums(maker)


def defjvp(fun, *makers, argnums=None):
    """Attach forward-mode rules to primitive ``fun``, one maker per positional argument."""
    _require_primitive(fun, "defjvp").defjvp(*makers, argnums=argnums)


def _require_primitive(fun, where):
    if not isinstance(fun, Primitive):
        raise TypeError(f"{where}: {fun!r} is not a primitive; wrap it with nablanet.extend.primitive first")
    return fun


def defvjp_argnum(fun, maker):
    """autograd's form: one maker for every argument, ``maker(argnum, ans, args, kwargs) -> (g -> contribution)``."""
    _require_primitive(fun, "defvjp_argnum").vjps["*"] = lambda argnum, ans, *args, **kw: maker(argnum, ans, args, kw)


def defjvp_argnum(fun, maker):
    """autograd's form: one maker for every argument, ``maker(argnum, g, ans, args, kwargs) -> tangent contribution``."""
    _require_primitive(fun, "defjvp_argnum").jvps["*"] = lambda argnum, g, ans, *args, **kw: maker(argnum, g, ans, args, kw)
