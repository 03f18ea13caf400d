"""The automatic-differentiation engine: forward and reverse mode, any order."""

from .core import NotDifferentiableError, Primitive, Tracer, getval
from .transforms import elementwise_grad, grad, hessian, hvp, jacobian, jvp, value_and_grad, vjp
from .tree import tree_flatten, tree_leaves, tree_map, tree_structure, tree_unflatten

__all__ = [
    "NotDifferentiableError",
    "Primitive",
    "Tracer",
    "elementwise_grad",
    "getval",
    "grad",
    "hessian",
    "hvp",
    "jacobian",
    "jvp",
    "tree_flatten",
    "tree_leaves",
    "tree_map",
    "tree_structure",
    "tree_unflatten",
    "value_and_grad",
    "vjp",
]
