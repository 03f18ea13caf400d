"""Primitives that make a layer's side effects explicit values.

A layer is a pure function of ``(params, state, x, rng, train)``: what it
draws at random and what it remembers go in and come out as values computed
by primitives, so the engine records them, and a captured program
(:func:`nablanet.jit`) recomputes them at every replay instead of baking the
first step's values in as constants.

* :func:`dropout_mask` draws the scaled keep-mask of inverted dropout from the
  random state it is given (a ``numpy.random.Generator``), as a node of the
  graph that depends on ``x`` (for its shape and dtype) but passes no
  derivative back to it.
* :func:`stop_gradient` is the identity with a zero derivative: batch
  normalization returns its updated running statistics through it, as
  auxiliary outputs that carry no gradient.
"""

from __future__ import annotations

import numpy as np

from ..autodiff.core import Primitive, Tracer, getval

__all__ = ["dropout_mask", "stop_gradient"]


def _zeros_like(g):
    return np.zeros(np.shape(getval(g)), getval(g).dtype)


def _identity(x):
    return x


_stop_gradient_p = Primitive(_identity, "stop_gradient")
_stop_gradient_p.defvjp(lambda ans, x: _zeros_like)
_stop_gradient_p.defjvp(lambda g, ans, x: _zeros_like(g))


def stop_gradient(x):
    """``x`` itself, as a value whose derivative with respect to anything is zero."""
    return _stop_gradient_p(x)


def _mask(x, rng, p):
    dt = x.dtype
    u = rng.random(x.shape, dtype=dt if dt in (np.float32, np.float64) else np.float64)
    keep = u >= p  # each unit kept with probability 1 - p ...
    return np.multiply(keep, 1.0 / (1.0 - p), dtype=dt)  # ... and scaled so that E[mask] = 1


_dropout_mask_p = Primitive(_mask, "dropout_mask")
_dropout_mask_p.defvjp(lambda ans, x, rng, p: lambda g: _zeros_like(x))
_dropout_mask_p.defjvp(lambda g, ans, x, rng, p: _zeros_like(ans))


def dropout_mask(x, rng, p):
    """The mask of inverted dropout for ``x``: 0 with probability ``p``, else ``1/(1-p)``.

    Drawn from ``rng`` (a ``numpy.random.Generator``, advanced by the draw)
    in ``x``'s dtype.  The mask is a function of the random state, not of the
    values of ``x``: its derivative with respect to ``x`` is zero, and
    ``x * dropout_mask(x, rng, p)`` has derivative ``mask`` with respect to ``x``.
    """
    if not isinstance(rng, (np.random.Generator, Tracer)):  # a captured program traces the Generator
        raise TypeError(f"dropout_mask: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return _dropout_mask_p(x, rng, float(p))
