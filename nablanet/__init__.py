"""nablanet: feed-forward neural networks on an automatic-differentiation engine.

The engine's transforms live at the top level::

    import nablanet as nb
    import nablanet.numpy as anp

    f = lambda x: anp.sqrt(x**2 + anp.exp(x**2))
    nb.grad(f)(1.5)                       # reverse mode
    nb.jvp(f, (1.5,), (1.0,))             # forward mode
"""

from . import numpy  # noqa: F401  (attaches operators to traced values)
from .autodiff import (
    ConcretizationError,
    NotDifferentiableError,
    elementwise_grad,
    grad,
    hessian,
    hvp,
    jacobian,
    jit,
    jvp,
    tree_flatten,
    tree_map,
    tree_unflatten,
    value_and_grad,
    vjp,
)
from .autodiff.check import GradientCheckError, check_grads
from .differential_operators import (  # noqa: F401  (autograd's differential operators, at its top level too)
    checkpoint,
    deriv,
    grad_and_aux,
    grad_named,
    hessian_tensor_product,
    hessian_vector_product,
    holomorphic_grad,
    make_ggnvp,
    make_hvp,
    make_jvp,
    make_vjp,
    multigrad_dict,
    tensor_jacobian_product,
    vector_jacobian_product,
)

__version__ = "0.1.0"


# Names autograd's top level has that would shadow Python's builtins under `from nablanet import *`: attributes
# (`from nablanet import tuple, isinstance` works, as `from autograd import ...` does) but never in __all__.
_BUILTINS = ("tuple", "list", "dict", "isinstance", "type")
# Submodules loaded on first use, so `import nablanet` stays light for engine users: the network layers, and
# the autograd-compatibility modules (`nablanet.core`, `.tracer`, `.wrap_util`, `.util`: autograd's layout).
_LAZY = ("nn", "losses", "optim", "train", "init", "extend", "data", "estimators", "test_util", "builtins",
         "differential_operators", "core", "tracer", "wrap_util", "util", "misc", "scipy")


def __getattr__(name):
    if name in _BUILTINS:
        from . import builtins

        return getattr(builtins, name)
    if name == "primitive":  # autograd's top-level primitive: autograd.core's, with the pre-1.2 methods
        from .core import primitive

        return primitive
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'nablanet' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_BUILTINS) | {"primitive"} | set(_LAZY))


__all__ = [
    "ConcretizationError",
    "GradientCheckError",
    "NotDifferentiableError",
    "check_grads",
    "elementwise_grad",
    "grad",
    "hessian",
    "hvp",
    "jacobian",
    "jit",
    "jvp",
    "primitive",
    "tree_flatten",
    "tree_map",
    "tree_unflatten",
    "value_and_grad",
    "vjp",
    # autograd's differential operators (nablanet.differential_operators), as `from autograd import *` gives them
    "checkpoint",
    "deriv",
    "grad_and_aux",
    "grad_named",
    "hessian_tensor_product",
    "hessian_vector_product",
    "holomorphic_grad",
    "make_ggnvp",
    "make_hvp",
    "make_jvp",
    "make_vjp",
    "multigrad_dict",
    "tensor_jacobian_product",
    "vector_jacobian_product",
]
