"""HIPS autograd's ``autograd.misc.fixed_points``: a fixed point, differentiated implicitly.

``fixed_point(f, a, x0, distance, tol)`` iterates ``x <- f(a)(x)`` from ``x0``
until ``distance(x, x_prev) <= tol`` and returns ``x*`` (with ``x* = f(a)(x*)``).
Its derivative with respect to ``a`` does not go back through the iterations:
by the implicit function theorem the adjoint ``w`` of ``x*`` solves
``w = g + (df/dx)^T w`` and the tangent ``t`` solves ``t = (df/dx) t + (df/da) da``,
each itself found as a fixed point (with the same ``distance`` and ``tol``),
so memory does not grow with the iteration count.  It converges where the
forward iteration does (``df/dx`` a contraction at ``x*``).  The fixed point
does not depend on the start ``x0`` (its derivative there is zero, as in
autograd), so ``x0`` may be computed from ``a``.

An iteration that does not converge is an error, never a result:
:class:`FixedPointError` when ``distance`` becomes infinite or NaN (the
iterates diverged) or is still above ``tol`` after ``max_iter`` steps (an
extra keyword, autograd has none: its loop runs forever), for the forward
iteration and for the derivative's.  ``distance`` must return one number.

>>> import nablanet as nb
>>> newton_sqrt = lambda a: lambda x: 0.5 * (x + a / x)
>>> dist = lambda x, y: abs(x - y)
>>> round(float(fixed_point(newton_sqrt, 2.0, 1.0, dist, 1e-12)) ** 2, 12)
2.0
>>> round(float(nb.grad(lambda a: fixed_point(newton_sqrt, a, 1.0, dist, 1e-12))(4.0)), 12)  # 1 / (2 sqrt(a))
0.25
"""

from __future__ import annotations

import math

from .. import numpy as anp
from .. import validate as V
from ..autodiff.core import Primitive
from ..autodiff.transforms import jvp, vjp
from ..extend import vspace

__all__ = ["fixed_point", "FixedPointError"]

#: the iterations allowed by default (``max_iter=``)
MAX_ITER = 10_000


class FixedPointError(V.NablanetError, ArithmeticError):
    """A fixed-point iteration diverged (infinite or NaN distance) or did not reach ``tol`` in ``max_iter`` steps."""


def _iterate(f, a, x0, distance, tol, max_iter=MAX_ITER):
    tol = V.non_negative_number(tol, "fixed_point: tol")
    max_iter = V.positive_int(max_iter, "fixed_point: max_iter")
    step, done = f(a), 0
    try:
        x, x_prev = step(x0), x0
        for done in range(1, max_iter + 1):
            d = distance(x, x_prev)
            shape = d.shape if hasattr(d, "shape") else ()
            if shape != ():
                if math.prod(shape) != 1:
                    raise V.InvalidValueError(
                        f"fixed_point: distance(x, x_prev) returned an array of shape {shape}; it must return one "
                        f"number, e.g. anp.max(anp.abs(x - x_prev))")
                d = anp.reshape(d, ())  # one number in an array of shape (1,) or (1, 1)
            if d <= tol:
                return x
            if not d < math.inf:
                raise FixedPointError(
                    f"fixed_point: {_what(f)} diverged: distance(x, x_prev) is {float(d)} after {done} steps "
                    f"(the map is not a contraction there: its iterates grew without bound or became NaN)")
            if done < max_iter:
                x, x_prev = step(x), x
    except OverflowError as e:  # Python floats overflow with an error where arrays become inf
        raise FixedPointError(f"fixed_point: {_what(f)} diverged: its iterates overflowed after {done} steps "
                              f"(the map is not a contraction there)") from e
    raise FixedPointError(
        f"fixed_point: {_what(f)} did not converge: distance(x, x_prev) = {float(d):.3g} > tol = {tol:.3g} after "
        f"{max_iter} steps; the map may not be a contraction (oscillating or wandering iterates), or it converges "
        f"slowly: pass max_iter= to allow more steps")


fixed_point = Primitive(_iterate, "fixed_point")


def _what(f):
    if f is _adjoint_step:
        return "the reverse-mode derivative's iteration (w = g + (df/dx)^T w at the fixed point)"
    if f is _tangent_step:
        return "the forward-mode derivative's iteration (t = (df/dx) t + (df/da) da at the fixed point)"
    return f"the iteration x <- f(a)(x) of f = {getattr(f, '__qualname__', f)!r}"


def _adjoint_step(params):
    f, a, x_star, x_bar = params
    _, vjp_x = vjp(f(a), x_star)
    vs = vspace(x_star)
    return lambda w: vs.add(vjp_x(w)[0], x_bar)


def _tangent_step(params):
    f, a, x_star, t_a = params
    vs = vspace(x_star)
    return lambda t: vs.add(jvp(f(a), (x_star,), (t,))[1], t_a)


def _vjp_a(ans, f, a, x0, distance, tol, **kw):
    _, vjp_a = vjp(lambda a_: f(a_)(ans), a)

    def back(g):
        w = fixed_point(_adjoint_step, (f, a, ans, g), vspace(ans).zeros(), distance, tol, **kw)
        return vjp_a(w)[0]

    return back


def _jvp_a(da, ans, f, a, x0, distance, tol, **kw):
    t_a = jvp(lambda a_: f(a_)(ans), (a,), (da,))[1]
    return fixed_point(_tangent_step, (f, a, ans, t_a), vspace(ans).zeros(), distance, tol, **kw)


# x* does not move with the start x0 (autograd's None rule: a zero derivative)
fixed_point.defvjp(None, _vjp_a, lambda ans, f, a, x0, *rest, **kw: lambda g: vspace(x0).zeros())
fixed_point.defjvp(None, _jvp_a, lambda g, ans, *args, **kw: vspace(ans).zeros())
