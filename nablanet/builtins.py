"""HIPS autograd's ``autograd.builtins`` names, for code ported from it.

nablanet differentiates through Python's own containers (they are pytrees), so
``tuple``, ``list`` and ``dict`` are Python's.  ``isinstance`` and ``type`` look
through traced values at what they stand for, as autograd's do: a traced array
is an ``np.ndarray``.  One difference: a Python ``float`` argument is traced
as an ``np.float64``, so ``type`` gives ``np.float64`` where autograd's gives
``float`` (``isinstance(x, float)`` holds in both: ``np.float64`` is a float).
"""

from __future__ import annotations

import builtins as _builtins

from .autodiff.core import Tracer

__all__ = ["tuple", "list", "dict", "isinstance", "type"]

tuple = _builtins.tuple
list = _builtins.list
dict = _builtins.dict


def isinstance(x, classinfo):
    """``builtins.isinstance`` of the value under any traced wrappers."""
    while _builtins.isinstance(x, Tracer):
        x = x._value
    return _builtins.isinstance(x, classinfo)


def type(x, *rest):
    """``builtins.type`` of the value under any traced wrappers (the three-argument form is Python's)."""
    if rest:
        return _builtins.type(x, *rest)
    while _builtins.isinstance(x, Tracer):
        x = x._value
    return _builtins.type(x)
