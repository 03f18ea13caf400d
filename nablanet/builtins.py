"""HIPS autograd's ``autograd.builtins`` names, for code ported from it.

nablanet differentiates through Python's own containers (they are pytrees), so
``tuple``, ``list`` and ``dict`` are Python's.  ``isinstance`` looks through
traced values at what they stand for: a traced array is an ``np.ndarray``, a
traced scalar an ``np.float64``, as autograd's does.
"""

from __future__ import annotations

import builtins as _builtins

from .autodiff.core import Tracer

__all__ = ["tuple", "list", "dict", "isinstance"]

tuple = _builtins.tuple
list = _builtins.list
dict = _builtins.dict


def isinstance(x, classinfo):
    """``builtins.isinstance`` of the value under any traced wrappers."""
    while _builtins.isinstance(x, Tracer):
        x = x._value
    return _builtins.isinstance(x, classinfo)
