"""HIPS autograd's ``autograd.misc.fixed_points``: a fixed point, differentiated implicitly.

``fixed_point(f, a, x0, distance, tol)`` iterates ``x <- f(a)(x)`` from ``x0``
until ``distance(x, x_prev) <= tol`` and returns ``x*`` (with ``x* = f(a)(x*)``).
Its derivative with respect to ``a`` does not go back through the iterations:
by the implicit function theorem the adjoint ``w`` of ``x*`` solves
``w = g + (df/dx)^T w`` and the tangent ``t`` solves ``t = (df/dx) t + (df/da) da``,
each itself found as a fixed point (with the same ``distance`` and ``tol``),
so memory does not grow with the iteration count.  It converges where the
forward iteration does (``df/dx`` a contraction at ``x*``).

>>> import nablanet as nb
>>> newton_sqrt = lambda a: lambda x: 0.5 * (x + a / x)
>>> dist = lambda x, y: abs(x - y)
>>> round(float(fixed_point(newton_sqrt, 2.0, 1.0, dist, 1e-12)) ** 2, 12)
2.0
>>> round(float(nb.grad(lambda a: fixed_point(newton_sqrt, a, 1.0, dist, 1e-12))(4.0)), 12)  # 1 / (2 sqrt(a))
0.25
"""

from __future__ import annotations

from ..autodiff.core import Primitive
from ..autodiff.transforms import jvp, vjp
from ..extend import vspace

__all__ = ["fixed_point"]


def _iterate(f, a, x0, distance, tol):
    step = f(a)
    x, x_prev = step(x0), x0
    while distance(x, x_prev) > tol:
        x, x_prev = step(x), x
    return x


fixed_point = Primitive(_iterate, "fixed_point")


def _adjoint_step(params):
    f, a, x_star, x_bar = params
    _, vjp_x = vjp(f(a), x_star)
    vs = vspace(x_star)
    return lambda w: vs.add(vjp_x(w)[0], x_bar)


def _tangent_step(params):
    f, a, x_star, t_a = params
    vs = vspace(x_star)
    return lambda t: vs.add(jvp(f(a), (x_star,), (t,))[1], t_a)


def _vjp_a(ans, f, a, x0, distance, tol):
    _, vjp_a = vjp(lambda a_: f(a_)(ans), a)

    def back(g):
        w = fixed_point(_adjoint_step, (f, a, ans, g), vspace(ans).zeros(), distance, tol)
        return vjp_a(w)[0]

    return back


def _jvp_a(da, ans, f, a, x0, distance, tol):
    t_a = jvp(lambda a_: f(a_)(ans), (a,), (da,))[1]
    return fixed_point(_tangent_step, (f, a, ans, t_a), vspace(ans).zeros(), distance, tol)


fixed_point.defvjp(None, _vjp_a)
fixed_point.defjvp(None, _jvp_a)
