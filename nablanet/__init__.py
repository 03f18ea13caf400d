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
from .differential_operators import *  # noqa: F401,F403  (the names HIPS-autograd code calls)

__version__ = "0.1.0"


def __getattr__(name):
    if name in ("tuple", "list", "dict", "isinstance", "type"):  # autograd's `from autograd import tuple, isinstance`
        from . import builtins

        return getattr(builtins, name)
    # The network layers load on first use, so `import nablanet` stays light for engine users.
    if name in ("nn", "losses", "optim", "train", "init", "extend", "data", "estimators", "test_util"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'nablanet' has no attribute {name!r}")

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
    "tree_flatten",
    "tree_map",
    "tree_unflatten",
    "value_and_grad",
    "vjp",
]
