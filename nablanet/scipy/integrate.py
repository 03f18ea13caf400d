"""Differentiable ``scipy.integrate.odeint``, as HIPS autograd's ``autograd.scipy.integrate``.

``odeint(func, y0, t, args=(), **kwargs)`` is SciPy's ``odeint`` (LSODA, its
keywords passed through): ``dy/dt = func(y, t, *args)`` for a 1-D state ``y0``,
the solution at the times ``t`` as a ``(len(t), len(y0))`` array.

Reverse mode differentiates it in ``y0``, ``t`` and ``args`` (a pytree of
arrays) by the adjoint method: between consecutive times the adjoint
``a = dL/dy`` and the parameters' and times' adjoints are integrated backwards
with the state, ``da/dt = -a^T df/dy``, again by ``odeint``, with ``func``'s
derivatives from a reverse sweep of ``func`` at each step.  That backward
solve is itself this differentiable ``odeint``, so second derivatives work too.
The derivatives are those of the exact flow, so they agree with finite
differences of the numerical solution to the solver's tolerance (``rtol``,
``atol``).  There is no forward-mode rule.
"""

from __future__ import annotations

import numpy as _np
import scipy.integrate as _si

from .. import numpy as anp
from ..autodiff.core import Primitive, getval
from ..autodiff.transforms import vjp
from ..misc import flatten

__all__ = ["odeint"]


def _solve(y0, t, flat_args, func, unflatten, options):
    def rhs(y, tt):
        return _np.asarray(getval(func(y, tt, *unflatten(flat_args))), dtype=float)

    return _si.odeint(rhs, y0, t, **options)


_odeint = Primitive(_solve, "odeint")


def _one_arg(a):
    return (a,)


def _odeint_vjp(argnums, yt, y0, t, flat_args, func, unflatten, options):
    T, D = anp.shape(yt)

    def f(y, tt, a):
        return func(y, tt, *unflatten(a))

    def augmented(state, tt, a):
        # the state, its adjoint, the adjoint of the start time, the parameters' adjoint
        y, adj = state[:D], state[D : 2 * D]
        dy, back = vjp(f, y, tt, a)
        vy, vt, va = back(-adj)
        return anp.concatenate([dy, vy, anp.reshape(vt, (1,)), va])

    def back(g):
        vjp_y = g[-1]
        vjp_t0 = 0.0
        vjp_a = _np.zeros(anp.size(flat_args))
        time_vjps = []
        for i in range(T - 1, 0, -1):
            here = anp.dot(f(yt[i], t[i], flat_args), g[i])  # moving the i-th time moves y(t_i)
            time_vjps.append(here)
            vjp_t0 = vjp_t0 - here
            state = anp.concatenate([yt[i], vjp_y, anp.reshape(vjp_t0, (1,)), vjp_a])
            sol = _odeint(state, anp.stack([t[i], t[i - 1]]), flat_args,
                          func=augmented, unflatten=_one_arg, options=options)
            vjp_y, vjp_t0, vjp_a = sol[1, D : 2 * D] + g[i - 1], sol[1, 2 * D], sol[1, 2 * D + 1 :]
        time_vjps.append(vjp_t0)
        found = {0: vjp_y, 1: anp.stack(time_vjps[::-1]), 2: vjp_a}
        return [found[i] for i in argnums]

    return back


_odeint.defvjp_argnums(_odeint_vjp)


def odeint(func, y0, t, args=(), **kwargs):
    """SciPy's ``odeint(func, y0, t, args)``, differentiable in ``y0``, ``t`` and ``args`` (reverse mode)."""
    if anp.ndim(y0) != 1:
        raise ValueError(f"odeint: y0 must be a 1-D state vector, got shape {anp.shape(y0)}")
    if anp.ndim(t) != 1:
        raise ValueError(f"odeint: t must be a 1-D array of times, got shape {anp.shape(t)}")
    for k in ("full_output", "tfirst"):
        if kwargs.get(k):
            raise ValueError(f"odeint: {k}=True is not supported (the result must be the solution array)")
    flat, unflatten = flatten(tuple(args) if isinstance(args, (tuple, list)) else (args,))
    if not isinstance(flat, anp.Tracer):
        flat = _np.asarray(flat, dtype=float)  # integer arguments are constants too

    return _odeint(y0 if isinstance(y0, anp.Tracer) else _np.asarray(y0, dtype=float),
                   t if isinstance(t, anp.Tracer) else _np.asarray(t, dtype=float),
                   flat, func=func, unflatten=unflatten, options=kwargs)
