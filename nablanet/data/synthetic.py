"""Synthetic data sets from the course, seeded: Franke, Runge, polynomials, logic gates.

Each function returns ``(X, y)`` with rows as samples; ``noise`` adds Gaussian
noise of that standard deviation to ``y``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["franke_function", "franke", "runge_function", "runge", "runge2d_function", "runge2d", "polynomial", "logic_gate"]


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def franke_function(x, y):
    """The Franke function on [0, 1]^2."""
    t1 = 0.75 * np.exp(-((9 * x - 2) ** 2) / 4 - ((9 * y - 2) ** 2) / 4)
    t2 = 0.75 * np.exp(-((9 * x + 1) ** 2) / 49 - (9 * y + 1) / 10)
    t3 = 0.5 * np.exp(-((9 * x - 7) ** 2) / 4 - ((9 * y - 3) ** 2) / 4)
    t4 = -0.2 * np.exp(-((9 * x - 4) ** 2) - (9 * y - 7) ** 2)
    return t1 + t2 + t3 + t4


def franke(n=1000, noise=0.0, seed=None):
    """``n`` points (x, y) uniform on [0, 1]^2 with targets F(x, y) (+ noise); X is (n, 2), y is (n,)."""
    rng = _rng(seed)
    X = rng.uniform(0.0, 1.0, size=(n, 2))
    z = franke_function(X[:, 0], X[:, 1])
    return X, z + noise * rng.standard_normal(n) if noise else z


def runge_function(x):
    """The 1-d Runge function 1 / (1 + 25 x^2)."""
    return 1.0 / (1.0 + 25.0 * x**2)


def runge(n=1000, noise=0.0, seed=None):
    """``n`` points uniform on [-1, 1] with targets 1/(1 + 25x^2) (+ noise); X is (n, 1)."""
    rng = _rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n, 1))
    y = runge_function(x[:, 0])
    return x, y + noise * rng.standard_normal(n) if noise else y


def runge2d_function(x, y):
    """The 2-d Runge function 1 / ((10x - 5)^2 + (10y - 5)^2 + 1)."""
    return 1.0 / ((10 * x - 5) ** 2 + (10 * y - 5) ** 2 + 1)


def runge2d(n=1000, noise=0.0, seed=None):
    """``n`` points uniform on [0, 1]^2 with targets of the 2-d Runge function (+ noise)."""
    rng = _rng(seed)
    X = rng.uniform(0.0, 1.0, size=(n, 2))
    y = runge2d_function(X[:, 0], X[:, 1])
    return X, y + noise * rng.standard_normal(n) if noise else y


def polynomial(n=1000, coefs=(2.0, -1.0, 0.5), noise=0.0, seed=None, low=-1.0, high=1.0):
    """``y = sum_k coefs[k] x^k`` at ``n`` points uniform on [low, high]; X is (n, 1)."""
    rng = _rng(seed)
    x = rng.uniform(low, high, size=(n, 1))
    y = np.polynomial.polynomial.polyval(x[:, 0], coefs)
    return x, y + noise * rng.standard_normal(n) if noise else y


def logic_gate(kind="xor"):
    """The four rows of a two-input gate: ``"xor"``, ``"and"`` or ``"or"``; y holds 0/1 labels."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    ops = {"xor": np.logical_xor, "and": np.logical_and, "or": np.logical_or}
    if kind not in ops:
        raise ValueError(f"unknown gate {kind!r}; choose from xor, and, or")
    return X, ops[kind](X[:, 0], X[:, 1]).astype(np.int64)
