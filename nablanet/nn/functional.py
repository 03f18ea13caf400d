"""Primitives that make a layer's side effects explicit values.

A layer is a pure function of ``(params, state, x, rng, train)``: what it
draws at random and what it remembers go in and come out as values computed
by primitives, so the engine records them, and a captured program
(:func:`nablanet.jit`) recomputes them at every replay instead of baking the
first step's values in as constants.

* :func:`dropout_mask` draws the scaled keep-mask of inverted dropout from the
  random state it is given (a ``numpy.random.Generator``): the Generator is
  the primitive's input, so a captured program that takes it as an argument
  draws a new mask at every replay.
* :func:`stop_gradient` is the identity with a zero derivative: batch
  normalization returns its updated running statistics through it, as
  auxiliary outputs that carry no gradient.
"""

from __future__ import annotations

import numpy as np

from ..autodiff.core import Primitive, Tracer, getval

__all__ = ["dropout_mask", "normalize", "stop_gradient"]


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


def _mask(rng, shape, p, dtype):
    u = rng.random(shape, dtype=dtype if dtype in (np.float32, np.float64) else np.float64)
    keep = u >= p  # each unit kept with probability 1 - p ...
    return np.multiply(keep, 1.0 / (1.0 - p), dtype=dtype)  # ... and scaled so that E[mask] = 1


# No derivative rules: the mask is a function of the random state alone, and nothing
# differentiates with respect to a Generator.  When the Generator is an input of a
# captured program it is a traced value, so the draw is a recorded step, made anew per replay.
_dropout_mask_p = Primitive(_mask, "dropout_mask")


def dropout_mask(x, rng, p):
    """The mask of inverted dropout for ``x``: 0 with probability ``p``, else ``1/(1-p)``.

    Drawn from ``rng`` (a ``numpy.random.Generator``, advanced by the draw)
    in ``x``'s shape and dtype, by a primitive whose input is the random
    state.  The mask does not depend on the values of ``x``, so
    ``x * dropout_mask(x, rng, p)`` has derivative ``mask`` with respect to ``x``.
    """
    if not isinstance(rng, (np.random.Generator, Tracer)):  # a captured program traces the Generator
        raise TypeError(f"dropout_mask: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    v = getval(x)
    return _dropout_mask_p(rng, tuple(v.shape), float(p), np.dtype(v.dtype))


# ------------------------------------------------------------------ normalization, fused


def _normalize(x, axis, eps):
    n = x.shape[axis]
    d = x - np.sum(x, axis=axis, keepdims=True) * (1.0 / n)
    var = np.sum(d * d, axis=axis, keepdims=True) * (1.0 / n)
    var += eps
    return d / np.sqrt(var, out=var)


def _inv_std(x, axis, eps):
    """1 / sqrt(var + eps) along ``axis``, written with differentiable functions (for higher orders)."""
    from .. import numpy as anp

    d = x - anp.mean(x, axis=axis, keepdims=True)
    return 1.0 / anp.sqrt(anp.mean(d * d, axis=axis, keepdims=True) + eps)


def _normalize_rule(ans, x, axis, eps):
    """The Jacobian of xhat = (x - mean) / sqrt(var + eps) along ``axis`` is symmetric:
    ``J t = inv (t - mean(t) - xhat mean(t xhat))``; the same map serves both modes."""
    from .. import numpy as anp

    inv = _inv_std(x, axis, eps)
    return lambda t: inv * (t - anp.mean(t, axis=axis, keepdims=True)
                            - ans * anp.mean(t * ans, axis=axis, keepdims=True))


_normalize_p = Primitive(_normalize, "normalize")
_normalize_p.defvjp(lambda ans, x, axis, eps: _normalize_rule(ans, x, axis, eps))
_normalize_p.defjvp(lambda t, ans, x, axis, eps: _normalize_rule(ans, x, axis, eps)(t))


def normalize(x, axis, eps=1e-5):
    """``(x - mean) / sqrt(var + eps)`` along ``axis`` (the biased variance), as one primitive.

    Batch normalization in training is ``axis=0`` (over the samples), layer
    normalization ``axis=1`` (over the features of each sample).  One node:
    its backward rule is ``inv (g - mean(g) - xhat mean(g xhat))`` instead of
    the dozens of steps of the composition.
    """
    return _normalize_p(x, int(axis), float(eps))
