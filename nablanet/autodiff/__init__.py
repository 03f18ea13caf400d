"""The automatic-differentiation engine: forward and reverse mode, any order.

The public names are those of its modules' ``__all__`` lists (the transforms,
capture, the tape, pytrees) plus the primitive and tracer types; each list is
written once, in its module.
"""

from . import transforms, tree
from .capture import ConcretizationError, jit
from .core import NotDifferentiableError, Primitive, Tracer, getval
from .tape import Node, Tape, trace
from .transforms import *  # noqa: F403 - re-exported; the list is transforms.__all__
from .tree import *  # noqa: F403 - re-exported; the list is tree.__all__

__all__ = [
    "ConcretizationError", "jit", "Node", "Tape", "trace",
    "NotDifferentiableError", "Primitive", "Tracer", "getval",
    *transforms.__all__,
    *tree.__all__,
]
