"""HIPS autograd's ``autograd.tracer`` names, for code that imports them from there.

A compatibility module at the top of the package (nothing in nablanet imports it); every name is
:mod:`nablanet.extend`'s, re-exported:

- ``primitive(fun)``: ``fun`` as a primitive that carries derivative rules (:func:`nablanet.extend.primitive`;
  unlike :func:`nablanet.core.primitive`, without autograd's deprecated pre-1.2 methods, as in autograd).
- ``notrace_primitive(fun)``: ``fun`` as a function whose result carries no derivative.
- ``Box``: the class of traced values; ``isbox(x)``: whether ``x`` is one; ``getval(x)``: the plain value
  under any traced wrappers.

Not carried: autograd's tracing machinery (``trace``, ``Node``, ``new_box``, ``TraceStack``,
``register_notrace``), which has no counterpart in nablanet's tape-based engine.
"""

from .extend import Box, getval, isbox, notrace_primitive, primitive

__all__ = ["primitive", "notrace_primitive", "Box", "isbox", "getval"]
