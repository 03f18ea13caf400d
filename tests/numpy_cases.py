"""Shared helpers for the tests of nablanet.numpy: one checker for a table of cases."""

from __future__ import annotations

import zlib

import numpy as np

import nablanet as nb
from nablanet.autodiff.core import Tracer

MODES = ("fwd", "rev")


def rng_for(*key):
    """A generator seeded from a test's parameters, so every case is reproducible."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def check(f, *args, ref=None, rtol=1e-12, atol=1e-12, order=2):
    """``f`` on plain and on traced inputs equals ``ref`` (NumPy); both modes pass check_grads to ``order``."""
    if ref is not None:
        expected = ref(*args)
        plain = f(*args)
        assert not isinstance(plain, Tracer)
        np.testing.assert_allclose(plain, expected, rtol=rtol, atol=atol)
        traced, _ = nb.vjp(f, *args)
        assert np.shape(traced) == np.shape(expected)
        np.testing.assert_allclose(traced, expected, rtol=rtol, atol=atol)
        _, tangent = nb.jvp(f, args, tuple(np.ones_like(a) for a in args))
        assert np.shape(tangent) == np.shape(expected)
    nb.check_grads(f, args, order=order, modes=MODES)


def both_modes_grad(f, x):
    """The gradient of scalar ``f`` at ``x`` by reverse mode and by forward mode (column by column)."""
    rev = nb.grad(f)(x)
    fwd = nb.jacobian(f, mode="fwd")(x)
    return np.asarray(rev), np.asarray(fwd)
