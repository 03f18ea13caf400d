"""HIPS autograd's ``autograd.misc.optimizers``: ``sgd``, ``rmsprop`` and ``adam`` as loops over a gradient function.

Each is ``opt(grad, x0, callback=None, num_iters=..., step_size=..., ...)``:
``grad(x, i)`` is the gradient at parameters ``x`` (any pytree of arrays,
``x0``'s structure) on iteration ``i``, ``callback(x, i, g)`` is called before
each step, and the parameters after ``num_iters`` steps are returned (in
``x0``'s structure, scalars as 0-d arrays).  The parameters are handled as one
vector (:func:`nablanet.misc.flatten`), as autograd does, and each iteration's
``x`` is a new array, so a callback may keep it.  Unlike autograd's, the
loops cannot be differentiated (with respect to ``x0`` or a setting, for
meta-optimization): a traced argument is an error naming it.

>>> import numpy as np, nablanet as nb
>>> from nablanet.misc.optimizers import adam
>>> loss = lambda p, i: (p["w"] - 3.0) ** 2 + (p["b"] + 1.0) ** 2
>>> p = adam(nb.grad(loss), {"w": 0.0, "b": 0.0}, num_iters=2000, step_size=0.05)
>>> round(float(p["w"]), 4), round(float(p["b"]), 4)
(3.0, -1.0)

The updates are those of :mod:`nablanet.optim`, one implementation of each:

* ``adam(step_size, b1, b2, eps)`` is ``optim.Adam(lr=step_size, beta1=b1, beta2=b2, eps=eps)``;
* ``rmsprop(step_size, gamma, eps)`` is ``optim.RMSprop(lr=step_size, rho=gamma, eps=eps)`` with the
  running mean square started at ones, as autograd starts it;
* ``sgd(step_size, mass)`` is autograd's damped momentum ``v <- mass v - (1 - mass) g``,
  ``x <- x + step_size v``: ``optim.SGD(lr=step_size (1 - mass), momentum=mass)``, whose velocity is
  autograd's scaled by ``-1 / (1 - mass)`` (the same iterates, up to rounding).
"""

from __future__ import annotations

import numpy as np

from .. import validate as V
from ..autodiff.core import NotDifferentiableError, Tracer
from ..autodiff.tree import tree_leaves
from ..optim.optimizers import SGD, Adam, RMSprop
from .flatten import _flatten

__all__ = ["sgd", "rmsprop", "adam"]


def _untraced(where, x, **settings):
    """Refuse traced arguments by name: the loops are not differentiable (autograd's are)."""
    traced = [name for name, v in settings.items() if isinstance(v, Tracer)]
    if any(isinstance(leaf, Tracer) for leaf in tree_leaves(x)):
        traced.insert(0, "x")
    if traced:
        raise NotDifferentiableError(
            f"{where}: {traced[0]} is a traced value, but nablanet.misc.optimizers run nablanet.optim's in-place "
            f"updates and cannot be differentiated (autograd's can); for meta-optimization write the loop with "
            f"nablanet.numpy operations")


def _run(opt, grad, x0, callback, num_iters, where, state_start=None):
    num_iters = V.non_negative_int(num_iters, f"{where}: num_iters")
    x, unflatten, layout = _flatten(x0)
    if x.dtype.kind not in "biuf":
        raise V.InvalidTypeError(f"{where}: x0 has {x.dtype} entries; the optimizers take real parameters "
                                 f"(give a complex parameter as its real and imaginary parts)")
    x = np.array(x, dtype=np.result_type(x, np.float64) if x.dtype.kind in "biu" else x.dtype, copy=True)
    state = opt.init([x])
    if state_start:
        state_start(state)
    for i in range(num_iters):
        g, _, g_layout = _flatten(grad(unflatten(x), i))
        g = np.asarray(g, dtype=x.dtype)
        if g.shape != x.shape:
            raise ValueError(f"{where}: grad(x, {i}) has {g.size} entries for {x.size} parameters; it must return "
                             f"a gradient of x's structure")
        if g_layout != layout and len(g_layout[1]) > 1:  # one flat array of the right size is taken as it is
            raise ValueError(f"{where}: grad(x, {i}) returned a tree of another structure than x (its nesting, dict "
                             f"keys or leaf sizes differ), so its entries would be matched to the wrong parameters; "
                             f"it must return a gradient of x's structure")
        if callback:
            callback(unflatten(x), i, unflatten(g))
        x = x.copy()  # the callback may keep the last one
        opt.step([x], [g], state)
    return unflatten(x)


def sgd(grad, x, callback=None, num_iters=200, step_size=0.1, mass=0.9):
    """Gradient descent with autograd's damped momentum ``mass`` (0 is plain gradient descent)."""
    _untraced("sgd", x, step_size=step_size, mass=mass)
    step_size = V.positive_number(step_size, "sgd: step_size")
    mass = float(V.probability(mass, "sgd: mass"))  # [0, 1): at 1 the velocity never leaves zero
    return _run(SGD(lr=step_size * (1.0 - mass), momentum=mass), grad, x, callback, num_iters, "sgd")


def rmsprop(grad, x, callback=None, num_iters=100, step_size=0.1, gamma=0.9, eps=1e-8):
    """RMSprop: steps scaled by a running root mean square of the gradient (decay ``gamma``)."""
    _untraced("rmsprop", x, step_size=step_size, gamma=gamma, eps=eps)
    opt = RMSprop(lr=V.positive_number(step_size, "rmsprop: step_size"), rho=V.probability(gamma, "rmsprop: gamma"),
                  eps=V.positive_number(eps, "rmsprop: eps"))

    def start_at_ones(state):
        for s in state["mean_sq"]:
            s[...] = 1.0

    return _run(opt, grad, x, callback, num_iters, "rmsprop", start_at_ones)


def adam(grad, x, callback=None, num_iters=100, step_size=0.001, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma & Ba 2015) with autograd's defaults."""
    _untraced("adam", x, step_size=step_size, b1=b1, b2=b2, eps=eps)
    opt = Adam(lr=V.positive_number(step_size, "adam: step_size"), beta1=V.probability(b1, "adam: b1"),
               beta2=V.probability(b2, "adam: b2"), eps=V.positive_number(eps, "adam: eps"))
    return _run(opt, grad, x, callback, num_iters, "adam")
