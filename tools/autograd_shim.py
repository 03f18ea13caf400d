"""A stand-in ``autograd`` package served by nablanet, for running HIPS autograd's own test suite.

``tools/autograd_suite.py`` copies this file to ``<tmp>/shim/autograd/__init__.py`` and puts ``<tmp>/shim``
first on ``PYTHONPATH``, so ``import autograd`` in autograd's tests loads this module, never an installed
autograd. It is not part of the nablanet package and nothing in nablanet imports it.

What each ``autograd`` name becomes:

- ``autograd`` (the top level): nablanet's top-level names, the transforms of
  ``nablanet.differential_operators`` (``grad``, ``make_vjp``, ``deriv``, ...) and the container types of
  ``nablanet.builtins`` (``tuple``, ``list``, ``dict``, ``isinstance``), as autograd's top level exports them.
- ``autograd.X`` for a module nablanet has under the same name and role (``numpy``, ``numpy.random``,
  ``numpy.linalg``, ``numpy.fft``, ``scipy.*``, ``extend``, ``builtins``, ``test_util``, ``misc``,
  ``misc.optimizers``, ``misc.fixed_points``, ``differential_operators``): that nablanet module itself,
  registered in ``sys.modules`` under the autograd name (``autograd.numpy is nablanet.numpy``).
- ``autograd.misc.flatten`` (autograd's module holding ``flatten`` and ``flatten_func``): ``nablanet.misc``,
  which holds both. The attribute ``autograd.misc.flatten`` stays the function, as after autograd's own
  ``from .flatten import flatten``.
- autograd's engine internals, which nablanet has no module for, are small modules built here from
  nablanet's public API:

  - ``autograd.core``: ``vspace``, ``VSpace``, ``primitive``, ``defvjp``, ``defjvp`` from ``nablanet.extend``;
    ``make_vjp(fun, x)``, autograd's unary form (a ``vjp`` function of the cotangent, and the value), from
    ``nablanet.vjp``; ``primitive_vjps``, autograd's table of reverse rules keyed by primitive, as a view
    over each primitive's own ``vjps`` (the suite pops a primitive's rules to check that a function never
    differentiates through it, then puts them back).
  - ``autograd.tracer``: ``primitive``, ``isbox``, ``getval`` from ``nablanet.extend``.
  - ``autograd.wrap_util``: ``unary_to_nary``, which makes an operator on a one-argument function into one
    taking ``argnum`` (an int or a tuple of ints), as autograd's does.

Names autograd has and nablanet does not carry are left missing (``autograd.util``, the pre-1.2 wrappers),
so a test needing them fails, visibly; ``tools/autograd_suite.py`` lists those expected failures.
"""

import builtins as _py
import functools
import importlib
import sys
import types

import nablanet
import nablanet.extend as _ext
from nablanet import *  # noqa: F403
from nablanet.builtins import dict, isinstance, list, tuple  # noqa: F401,A004
from nablanet.differential_operators import *  # noqa: F403

# autograd module name -> the nablanet module serving it.
MODULES = {
    "autograd.numpy": "nablanet.numpy",
    "autograd.numpy.random": "nablanet.numpy.random",
    "autograd.numpy.linalg": "nablanet.numpy.linalg",
    "autograd.numpy.fft": "nablanet.numpy.fft",
    "autograd.test_util": "nablanet.test_util",
    "autograd.extend": "nablanet.extend",
    "autograd.builtins": "nablanet.builtins",
    "autograd.misc": "nablanet.misc",
    "autograd.misc.optimizers": "nablanet.misc.optimizers",
    "autograd.misc.flatten": "nablanet.misc",
    "autograd.misc.fixed_points": "nablanet.misc.fixed_points",
    "autograd.differential_operators": "nablanet.differential_operators",
    "autograd.scipy": "nablanet.scipy",
    "autograd.scipy.special": "nablanet.scipy.special",
    "autograd.scipy.stats": "nablanet.scipy.stats",
    "autograd.scipy.stats.multivariate_normal": "nablanet.scipy.stats.multivariate_normal",
    "autograd.scipy.stats.norm": "nablanet.scipy.stats.norm",
    "autograd.scipy.linalg": "nablanet.scipy.linalg",
    "autograd.scipy.signal": "nablanet.scipy.signal",
    "autograd.scipy.integrate": "nablanet.scipy.integrate",
}
for _ag_name, _nb_name in MODULES.items():
    sys.modules[_ag_name] = importlib.import_module(_nb_name)


def _unary_make_vjp(fun, x):
    """autograd.core.make_vjp: ``(vjp, value)`` of the one-argument ``fun`` at ``x``."""
    ans, vjp_fn = nablanet.vjp(fun, x)
    return (lambda g: vjp_fn(g)[0]), ans


class _RuleView:
    """autograd.core.primitive_vjps: ``pop(fun)`` takes a primitive's reverse rules away, ``[fun] = rules``
    puts them back."""

    def pop(self, fun, default=None):
        if not _py.isinstance(fun, _ext.Primitive) or not fun.vjps:
            return default
        rules, fun.vjps = fun.vjps, {}
        return rules

    def __setitem__(self, fun, rules):
        fun.vjps = rules


def _unary_to_nary(unary_operator):
    """autograd.wrap_util.unary_to_nary: ``op(fun, x, ...)`` -> ``op(fun, argnum=0, ...)(*args)``."""

    @functools.wraps(unary_operator)
    def nary_operator(fun, argnum=0, *op_args, **op_kwargs):
        def nary_f(*args, **kwargs):
            def unary_f(x):
                new_args = _py.list(args)
                if _py.isinstance(argnum, int):
                    new_args[argnum] = x
                else:
                    for i, v in zip(argnum, x):
                        new_args[i] = v
                return fun(*new_args, **kwargs)

            x = args[argnum] if _py.isinstance(argnum, int) else _py.tuple(args[i] for i in argnum)
            return unary_operator(unary_f, x, *op_args, **op_kwargs)

        return nary_f

    return nary_operator


def _module(name, **names):
    module = types.ModuleType(name)
    module.__dict__.update(names)
    sys.modules[name] = module
    return module


_module("autograd.core", vspace=_ext.vspace, VSpace=_ext.VSpace, primitive=_ext.primitive,
        primitive_vjps=_RuleView(), make_vjp=_unary_make_vjp, defvjp=_ext.defvjp, defjvp=_ext.defjvp)
_module("autograd.tracer", primitive=_ext.primitive, isbox=_ext.isbox, getval=_ext.getval)
_module("autograd.wrap_util", unary_to_nary=_unary_to_nary)

# Attribute access (autograd.scipy.signal.convolve) as after real imports; autograd.misc.flatten stays
# the function nablanet.misc already holds.
for _name in sorted(sys.modules):
    if _name.startswith("autograd.") and _name != "autograd.misc.flatten":
        _parent, _, _child = _name.rpartition(".")
        if _parent in sys.modules:
            setattr(sys.modules[_parent], _child, sys.modules[_name])
