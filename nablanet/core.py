"""HIPS autograd's ``autograd.core`` names, for code (and test suites) that import them from there.

A compatibility module at the top of the package: nothing in nablanet imports it. What it holds:

- ``vspace``, ``VSpace``, ``defvjp``, ``defjvp``, ``defvjp_argnum``, ``defvjp_argnums``, ``defjvp_argnum``,
  ``defjvp_argnums``, ``def_linear``: those of :mod:`nablanet.extend`, re-exported.
- ``make_vjp(fun, x)`` and ``make_jvp(fun, x)``: autograd's *unary* forms, differentiating a function of
  one argument.  ``make_vjp(fun, x)`` is ``(vjp, fun(x))`` with ``vjp(g)`` the cotangent of ``x``;
  ``make_jvp(fun, x)`` is ``jvp`` with ``jvp(v) = (fun(x), J v)``.  The top level's ``nablanet.make_vjp``
  and ``make_jvp`` are the n-ary ones (``make_vjp(fun, argnum)(*args)``), as in autograd.
- ``primitive_vjps`` and ``primitive_jvps``: autograd's tables of rules keyed by primitive, here live views
  over each primitive's own rules (``p.vjps``, ``p.jvps``): ``primitive_vjps.pop(p)`` takes ``p``'s reverse
  rules away (differentiating through ``p`` then raises) and returns them, ``primitive_vjps[p] = rules``
  puts them back (or installs autograd's ``maker(argnums, ans, args, kwargs)`` form), ``p in primitive_vjps``
  says whether ``p`` has any.  The engine reads ``p.vjps`` at every step, so an edit takes effect at once.
  They cannot be listed: nablanet keeps no registry of every primitive.
- ``primitive``: autograd's ``autograd.core.primitive`` (also its top-level ``autograd.primitive``), which
  makes a :class:`LegacyPrimitive`: a :class:`nablanet.extend.Primitive` that also answers autograd's
  pre-1.2 methods, each with a ``DeprecationWarning``: ``p.defgrad(maker, argnum=0)``,
  ``p.defvjp(fun(g, ans, vs, gvs, *args), argnum=0)`` and ``p.defvjp_is_zero(argnums=(0,))``.  New code
  uses :func:`nablanet.extend.primitive` and :func:`nablanet.extend.defvjp` (one way to define a rule).

Not carried: autograd's tracing machinery (``VJPNode``, ``JVPNode``, ``backward_pass``, ``SparseObject``),
which has no counterpart in nablanet's tape-based engine.
"""

from __future__ import annotations

import warnings

from .autodiff.core import Primitive
from .autodiff.transforms import jvp as _jvp
from .autodiff.transforms import vjp as _vjp
from .extend import (
    VSpace,
    def_linear,
    defjvp,
    defjvp_argnum,
    defjvp_argnums,
    defvjp,
    defvjp_argnum,
    defvjp_argnums,
    getval,
    vspace,
)

__all__ = [
    "vspace", "VSpace", "primitive", "LegacyPrimitive", "defvjp", "defjvp", "defvjp_argnum", "defvjp_argnums",
    "defjvp_argnum", "defjvp_argnums", "def_linear", "make_vjp", "make_jvp", "primitive_vjps", "primitive_jvps",
]

#: autograd 1.9.1's public modules (its private ``numpy_*`` modules aside), each served by nablanet's module of the
#: same name (``autograd.misc.flatten`` -> ``nablanet.misc.flatten``): the layout ``tools/autograd_shim.py`` maps
#: and ``tests/test_autograd_layout.py`` checks against an installed autograd.
AUTOGRAD_MODULES = (
    "builtins", "core", "differential_operators", "extend", "test_util", "tracer", "util", "wrap_util",
    "misc", "misc.fixed_points", "misc.flatten", "misc.optimizers", "misc.tracers",
    "numpy", "numpy.fft", "numpy.linalg", "numpy.random",
    "scipy", "scipy.integrate", "scipy.linalg", "scipy.signal", "scipy.special",
    "scipy.stats", "scipy.stats.beta", "scipy.stats.chi2", "scipy.stats.dirichlet", "scipy.stats.gamma",
    "scipy.stats.multivariate_normal", "scipy.stats.norm", "scipy.stats.poisson", "scipy.stats.t",
)


def make_vjp(fun, x):
    """autograd's unary ``make_vjp``: ``(vjp, fun(x))``, where ``vjp(g)`` is the cotangent of ``x`` for the
    cotangent ``g`` of ``fun(x)`` (zeros of ``x``'s space when the result does not depend on ``x``)."""
    ans, vjp_fn = _vjp(fun, x)
    return (lambda g: vjp_fn(g)[0]), ans


def make_jvp(fun, x):
    """autograd's unary ``make_jvp``: a function ``jvp(v) -> (fun(x), J v)``, the value and the directional
    derivative of ``fun`` at ``x`` along the tangent ``v`` (forward mode, one sweep per call)."""

    def jvp(v):
        return _jvp(fun, (x,), (v,))

    return jvp


class _RuleView:
    """A live view of one kind of rule (``"vjps"`` or ``"jvps"``) over every primitive, keyed by primitive."""

    def __init__(self, kind, install):
        self._kind = kind
        self._install = install  # autograd's one-maker-for-all-arguments form -> this kind's rules

    def _rules(self, fun):
        if not isinstance(fun, Primitive) or fun.nondiff:
            return {}
        return getattr(fun, self._kind)

    def __contains__(self, fun):
        return bool(self._rules(fun))

    def __getitem__(self, fun):
        rules = self._rules(fun)
        if not rules:
            raise KeyError(fun)
        return rules

    def get(self, fun, default=None):
        return self._rules(fun) or default

    def pop(self, fun, *default):
        """Take ``fun``'s rules away and return them (``default``, if given, when it has none)."""
        rules = self._rules(fun)
        if not rules:
            if default:
                return default[0]
            raise KeyError(fun)
        setattr(fun, self._kind, {})
        return rules

    def __delitem__(self, fun):
        self.pop(fun)

    def __setitem__(self, fun, rules):
        """Give ``fun`` these rules: a dict as :meth:`pop` returned, or autograd's single maker."""
        if not isinstance(fun, Primitive) or fun.nondiff:
            raise TypeError(f"primitive_{self._kind}[{fun!r}] = ...: not a primitive that carries rules; wrap the "
                            f"function with nablanet.extend.primitive first")
        if isinstance(rules, dict):
            setattr(fun, self._kind, rules)
        elif callable(rules):
            setattr(fun, self._kind, {})
            self._install(fun, rules)
        else:
            raise TypeError(f"primitive_{self._kind}[{fun.name}] = {rules!r}: give a dict of rules (as pop returns) "
                            f"or a function (argnums, ans, args, kwargs) -> rule")

    def __iter__(self):
        raise TypeError(f"primitive_{self._kind} cannot be listed: nablanet keeps no registry of primitives; "
                        f"look a primitive up by itself (primitive_{self._kind}[p], p in primitive_{self._kind})")

    def __repr__(self):
        return f"<nablanet.core.primitive_{self._kind}: a view of each primitive's {self._kind}>"


# autograd's single makers, (argnums, ans, args, kwargs) -> rule and (argnums, gs, ans, args, kwargs) -> tangent
primitive_vjps = _RuleView("vjps", defvjp_argnums)
primitive_jvps = _RuleView("jvps", defjvp_argnums)


# ----------------------------------------------------------------------------
# autograd's pre-1.2 wrappers, deprecated there and here
# ----------------------------------------------------------------------------

_DEPRECATED = ("{} is autograd's pre-1.2 way to define a derivative rule, deprecated there and kept here for "
               "code ported from it; use nablanet.extend.defvjp(fun, *makers), one maker (ans, *args) -> "
               "(g -> contribution) per argument")


class LegacyPrimitive(Primitive):
    """A primitive made by :func:`nablanet.core.primitive`: a :class:`~nablanet.extend.Primitive` with
    autograd's deprecated pre-1.2 methods ``defgrad``, ``defvjp`` (the ``(g, ans, vs, gvs, *args)`` form) and
    ``defvjp_is_zero``.  Module-level :func:`nablanet.extend.defvjp` on it is the current form, as in autograd."""

    def defgrad(self, maker, argnum=0):
        """Deprecated: ``maker(ans, *args, **kwargs) -> (g -> contribution)`` for argument ``argnum``."""
        warnings.warn(_DEPRECATED.format("primitive.defgrad"), DeprecationWarning, stacklevel=2)
        Primitive.defvjp(self, maker, argnums=(argnum,))

    def defvjp(self, vjp, argnum=0):
        """Deprecated: ``vjp(g, ans, vs, gvs, *args, **kwargs) -> contribution`` to argument ``argnum``, with
        ``vs`` the vector space of that argument and ``gvs`` that of ``g``."""
        warnings.warn(_DEPRECATED.format("primitive.defvjp(fun(g, ans, vs, gvs, *args), argnum)"),
                      DeprecationWarning, stacklevel=2)

        def maker(ans, *args, **kwargs):
            return lambda g: vjp(g, ans, vspace(getval(args[argnum])), vspace(getval(g)), *args, **kwargs)

        Primitive.defvjp(self, maker, argnums=(argnum,))

    def defvjp_is_zero(self, argnums=(0,)):
        """Deprecated: the reverse-mode derivative with respect to each argument in ``argnums`` is zero."""
        warnings.warn(_DEPRECATED.format("primitive.defvjp_is_zero"), DeprecationWarning, stacklevel=2)
        nums = tuple(argnums)
        Primitive.defvjp(self, *(_zero_maker(i) for i in nums), argnums=nums)


def _zero_maker(argnum):
    return lambda ans, *args, **kwargs: lambda g: vspace(getval(args[argnum])).zeros()


def primitive(fun):
    """autograd's ``autograd.core.primitive``: ``fun`` as a :class:`LegacyPrimitive` (a primitive that also
    takes autograd's deprecated pre-1.2 ``defgrad``, ``defvjp`` and ``defvjp_is_zero`` methods)."""
    return LegacyPrimitive(fun)
