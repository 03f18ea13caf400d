"""More elementwise functions, each a primitive with its derivative beside it.

Conventions at the points where a function has no derivative (all tested):

* ``arctan2(y, x)`` at the origin and ``hypot(x, y)`` at ``x = y = 0``: 0 for both
  partial derivatives (a subgradient; never NaN).
* ``fmax``/``fmin``: the gradient goes to the argument that is returned; where
  one argument is NaN it goes to the other; ties split it equally, as in
  ``maximum``/``minimum``.
* ``nan_to_num``: slope 1 at finite entries, 0 at the NaN/inf entries it replaces.
* ``sinc`` is smooth at 0 (its derivatives there come from its Taylor series).
"""

from __future__ import annotations

import math

import numpy as _np

from ..autodiff.core import getval
from ._primitives import (
    _binary,
    _elementwise,
    _over_nonzero,
    cos,
    exp2,
    multiply,
    primitive,
    sqrt,
    subtract,
    where,
)

__all__ = [
    "arccosh",
    "arctan2",
    "cbrt",
    "deg2rad",
    "degrees",
    "fabs",
    "fmax",
    "fmin",
    "hypot",
    "logaddexp2",
    "nan_to_num",
    "positive",
    "rad2deg",
    "radians",
    "sinc",
]


def _r2(x, y):
    return x * x + y * y


arctan2 = _binary(
    _np.arctan2, "arctan2",
    lambda ans, y, x: _over_nonzero(x, _r2(x, y)),  # d/dy atan2(y, x) = x / (x^2 + y^2)
    lambda ans, y, x: _over_nonzero(-y, _r2(x, y)),
)
hypot = _binary(
    _np.hypot, "hypot",
    lambda ans, x, y: _over_nonzero(x, ans),
    lambda ans, x, y: _over_nonzero(y, ans),
)
logaddexp2 = _binary(
    _np.logaddexp2, "logaddexp2",
    lambda ans, x, y: exp2(subtract(x, ans)),
    lambda ans, x, y: exp2(subtract(y, ans)),
)


def _f_weight(x, y, greater):
    """fmax/fmin: 1 where x is returned, 0 where y is, 0.5 at ties; NaN loses."""
    xv, yv = getval(x), getval(y)
    win = (xv > yv) if greater else (xv < yv)
    w = win + 0.5 * (xv == yv)
    w = _np.where(_np.isnan(yv), 1.0, _np.where(_np.isnan(xv), 0.0, w))
    return _np.asarray(w, dtype=_np.result_type(xv, yv, 0.5))


fmax = _binary(_np.fmax, "fmax", lambda ans, x, y: _f_weight(x, y, True), lambda ans, x, y: _f_weight(y, x, True))
fmin = _binary(_np.fmin, "fmin", lambda ans, x, y: _f_weight(x, y, False), lambda ans, x, y: _f_weight(y, x, False))

# 1/sqrt(x - 1)/sqrt(x + 1), not 1/sqrt(x^2 - 1): the same for real x >= 1, and the principal branch for complex x
arccosh = _elementwise(_np.arccosh, lambda ans, x: 1.0 / (sqrt(x - 1.0) * sqrt(x + 1.0)), "arccosh")
cbrt = _elementwise(_np.cbrt, lambda ans, x: 1.0 / (3.0 * ans * ans), "cbrt")
deg2rad = _elementwise(_np.deg2rad, lambda ans, x: math.pi / 180.0, "deg2rad")
rad2deg = _elementwise(_np.rad2deg, lambda ans, x: 180.0 / math.pi, "rad2deg")
radians, degrees = deg2rad, rad2deg
fabs = _elementwise(_np.fabs, lambda ans, x: _np.sign(getval(x)), "fabs")  # sign(0) = 0: the subgradient at 0
positive = _elementwise(_np.positive, lambda ans, x: 1.0, "positive")
_SERIES = 0.05  # |x| below this: sinc'(x) from its Taylor series (smooth through 0)


def _sinc_deriv(ans, x):
    """d/dx sin(pi x)/(pi x) = (cos(pi x) - sinc(x)) / x, and its series near 0."""
    v = getval(x)
    small = _np.abs(v) < _SERIES
    p2 = math.pi**2
    xs = where(small, x, 0.0) if _np.any(~small) else x
    x2 = xs * xs
    # sinc'(x) = sum_{k>=1} (-1)^k 2k pi^(2k) x^(2k-1) / (2k+1)!
    series = xs * (-2 * p2 / 6 + x2 * (4 * p2**2 / 120 + x2 * (-6 * p2**3 / 5040 + x2 * 8 * p2**4 / 362880)))
    if _np.all(small):
        return series
    xl = where(small, 1.0, x)
    formula = (cos(math.pi * xl) - sinc(xl)) / xl
    return where(small, series, formula)


sinc = _elementwise(_np.sinc, _sinc_deriv, "sinc")


def _nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    return _np.nan_to_num(x, copy=copy, nan=nan, posinf=posinf, neginf=neginf)


def _finite(x):
    v = getval(x)
    return _np.asarray(_np.isfinite(v), dtype=v.dtype if v.dtype.kind == "f" else float)


_nan_to_num_p = primitive(_nan_to_num, "nan_to_num")
_nan_to_num_p.defvjp(lambda ans, x, *a, **k: lambda g: multiply(g, _finite(x)))
_nan_to_num_p.defjvp(lambda g, ans, x, *a, **k: multiply(g, _finite(x)))


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """``numpy.nan_to_num``; slope 1 at finite entries and 0 where NaN/inf are replaced."""
    return _nan_to_num_p(x, copy=copy, nan=nan, posinf=posinf, neginf=neginf)
