"""Differentiable ``scipy.special``: ``import nablanet.scipy.special as special``.

Each function is SciPy's own (SciPy is imported with this module, never by
``import nablanet``), with its derivative written with differentiable functions, so
every order works.  Derivatives are with respect to the continuous arguments;
integer orders (``polygamma``'s n, ``jn``'s n, ``multigammaln``'s d) are constants.
Once this module is imported, SciPy's own ufuncs called on traced values
(``scipy.special.erf(x)``) reach the same rules.
"""

from __future__ import annotations

import math

import numpy as _np
import scipy.special as _sp

from ..autodiff.core import Primitive, getval
from ..numpy import _primitives as _p
from ..numpy._primitives import (
    _bcast,
    _shape,
    add,
    divide,
    exp,
    log,
    multiply,
    negative,
    square,
    subtract,
    sum,
    unbroadcast,
    where,
)

__all__ = [
    "erf", "erfc", "erfinv", "erfcinv", "expit", "logit", "logsumexp", "softmax", "log_softmax",
    "gamma", "gammaln", "gammasgn", "rgamma", "digamma", "psi", "polygamma", "multigammaln",
    "beta", "betaln", "betainc", "gammainc", "gammaincc", "xlogy", "xlog1py", "ndtr", "log_ndtr", "ndtri",
    "i0", "i1", "iv", "ive", "j0", "j1", "jv", "jn", "y0", "y1", "yv", "yn",
]  # fmt: skip


def _unary(name, deriv):
    """SciPy's elementwise ``name`` with derivative ``deriv(ans, x)``."""
    return _p._elementwise(getattr(_sp, name), deriv, name)


def _order_first(name, deriv):
    """f(n, x) with a constant order n and derivative ``deriv(ans, n, x)`` in x."""
    prim = Primitive(getattr(_sp, name), name)
    prim.defvjp(None, lambda ans, n, x: lambda g: unbroadcast(multiply(g, deriv(ans, n, x)), _shape(x)))
    prim.defjvp(None, lambda g, ans, n, x: _bcast(multiply(g, deriv(ans, n, x)), ans))
    return prim


def _binary(name, dx, dy):
    """SciPy's ``name(x, y)`` with partial derivatives ``dx(ans, x, y)`` and ``dy(ans, x, y)``."""
    return _p._binary(getattr(_sp, name), name, dx, dy)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_2PI = math.sqrt(2.0 * math.pi)

# ---- error function and the normal distribution --------------------------------

erf = _unary("erf", lambda ans, x: multiply(_TWO_OVER_SQRT_PI, exp(negative(square(x)))))
erfc = _unary("erfc", lambda ans, x: multiply(-_TWO_OVER_SQRT_PI, exp(negative(square(x)))))
erfinv = _unary("erfinv", lambda ans, x: multiply(1.0 / _TWO_OVER_SQRT_PI, exp(square(ans))))
erfcinv = _unary("erfcinv", lambda ans, x: multiply(-1.0 / _TWO_OVER_SQRT_PI, exp(square(ans))))
ndtr = _unary("ndtr", lambda ans, x: divide(exp(multiply(-0.5, square(x))), _SQRT_2PI))
log_ndtr = _unary("log_ndtr", lambda ans, x: divide(exp(subtract(multiply(-0.5, square(x)), ans)), _SQRT_2PI))
ndtri = _unary("ndtri", lambda ans, x: multiply(_SQRT_2PI, exp(multiply(0.5, square(ans)))))

# ---- logistic --------------------------------------------------------------------

expit = _unary("expit", lambda ans, x: multiply(ans, subtract(1.0, ans)))
logit = _unary("logit", lambda ans, x: divide(1.0, multiply(x, subtract(1.0, x))))

# ---- gamma family ------------------------------------------------------------------

polygamma = _order_first("polygamma", lambda ans, n, x: polygamma(_np.add(n, 1), x))
digamma = _unary("digamma", lambda ans, x: polygamma(1, x))
psi = digamma
gammaln = _unary("gammaln", lambda ans, x: digamma(x))
gamma = _unary("gamma", lambda ans, x: multiply(ans, digamma(x)))
rgamma = _unary("rgamma", lambda ans, x: negative(multiply(ans, digamma(x))))
gammasgn = _unary("gammasgn", lambda ans, x: _np.zeros(_np.shape(getval(x))))


def _beta_d(ans, a, b, scale):
    return multiply(scale, subtract(digamma(a), digamma(add(a, b))))


beta = _binary("beta", lambda ans, a, b: _beta_d(ans, a, b, ans), lambda ans, a, b: _beta_d(ans, b, a, ans))
betaln = _binary("betaln", lambda ans, a, b: _beta_d(ans, a, b, 1.0), lambda ans, a, b: _beta_d(ans, b, a, 1.0))


def multigammaln(a, d):
    """log of the multivariate gamma function of dimension ``d`` (an integer)."""
    d = int(d)
    if d < 1:
        raise ValueError(f"multigammaln: d must be a positive integer, got {d}")
    out = d * (d - 1) / 4.0 * math.log(math.pi)
    for j in range(d):
        out = add(out, gammaln(subtract(a, j / 2.0)))
    return out


# ---- x log y -------------------------------------------------------------------------


def _x_over(x, y):
    """x / y, taken as 0 where x == 0 (so 0 log 0 = 0 also has derivative 0 in y)."""
    z = getval(x) == 0
    return where(z, 0.0, divide(x, where(z, 1.0, y)))


xlogy = _binary("xlogy", lambda ans, x, y: log(y), lambda ans, x, y: _x_over(x, y))
xlog1py = _binary("xlog1py", lambda ans, x, y: _p.log1p(y), lambda ans, x, y: _x_over(x, add(y, 1.0)))

# ---- Bessel functions (derivatives in x; the order is a constant) -------------------

iv = _order_first("iv", lambda ans, v, x: multiply(0.5, add(iv(_np.subtract(v, 1), x), iv(_np.add(v, 1), x))))
ive = _order_first(
    "ive",
    lambda ans, v, x: subtract(
        multiply(0.5, add(ive(_np.subtract(v, 1), x), ive(_np.add(v, 1), x))), multiply(_np.sign(getval(x)), ans)
    ),
)
jv = _order_first("jv", lambda ans, v, x: multiply(0.5, subtract(jv(_np.subtract(v, 1), x), jv(_np.add(v, 1), x))))
yv = _order_first("yv", lambda ans, v, x: multiply(0.5, subtract(yv(_np.subtract(v, 1), x), yv(_np.add(v, 1), x))))
jn = _order_first("jn", lambda ans, n, x: multiply(0.5, subtract(jv(_np.subtract(n, 1), x), jv(_np.add(n, 1), x))))
yn = _order_first("yn", lambda ans, n, x: multiply(0.5, subtract(yv(_np.subtract(n, 1), x), yv(_np.add(n, 1), x))))
# ---- incomplete gamma and beta functions (derivatives in x; the shape parameters are constants) ---------


def _gamma_density(a, x):
    """x^(a-1) e^-x / Gamma(a), the derivative of the regularized lower incomplete gamma in x."""
    return exp(subtract(subtract(xlogy(_np.subtract(a, 1.0), x), x), _sp.gammaln(a)))


gammainc = _order_first("gammainc", lambda ans, a, x: _gamma_density(a, x))
gammaincc = _order_first("gammaincc", lambda ans, a, x: negative(_gamma_density(a, x)))


def _betainc_dx(a, b, x):
    """x^(a-1) (1-x)^(b-1) / B(a, b), the derivative of the regularized incomplete beta in x."""
    log_d = add(xlogy(_np.subtract(a, 1.0), x), xlog1py(_np.subtract(b, 1.0), negative(x)))
    return exp(subtract(log_d, _sp.betaln(a, b)))


betainc = Primitive(_sp.betainc, "betainc")
betainc.defvjp(None, None, lambda ans, a, b, x: lambda g: unbroadcast(multiply(g, _betainc_dx(a, b, x)), _shape(x)))
betainc.defjvp(None, None, lambda g, ans, a, b, x: _bcast(multiply(g, _betainc_dx(a, b, x)), ans))

i0 = _unary("i0", lambda ans, x: i1(x))
i1 = _unary("i1", lambda ans, x: multiply(0.5, add(i0(x), iv(2, x))))
j0 = _unary("j0", lambda ans, x: negative(j1(x)))
j1 = _unary("j1", lambda ans, x: multiply(0.5, subtract(j0(x), jv(2, x))))
y0 = _unary("y0", lambda ans, x: negative(y1(x)))
y1 = _unary("y1", lambda ans, x: multiply(0.5, subtract(y0(x), yv(2, x))))

# ---- log-sum-exp and softmax -----------------------------------------------------------


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """``log(sum(b * exp(a)))`` over ``axis`` without overflow, as ``scipy.special.logsumexp``.

    With ``b`` (weights, broadcast against ``a``) the result is differentiable in
    both ``a`` and ``b``; a negative weighted sum gives NaN as in SciPy unless
    ``return_sign=True``, which returns ``(log|sum|, sign)``.
    """
    if b is None and not return_sign:
        return _p.logsumexp(a, axis=axis, keepdims=keepdims)
    av = _np.asarray(getval(a))
    m = _np.max(av, axis=axis, keepdims=True) if av.size else _np.zeros((1,) * av.ndim)
    m = _np.where(_np.isfinite(m), m, 0.0)
    terms = exp(subtract(a, m))
    if b is not None:
        terms = multiply(b, terms)
    s = sum(terms, axis=axis, keepdims=True)
    if return_sign:
        sign = _np.sign(getval(s))
        out = add(log(multiply(s, _np.where(sign == 0, 1.0, sign))), m)
    else:
        with _np.errstate(invalid="ignore"):
            out = add(log(s), m)
    if not keepdims:
        out = _p.squeeze(out, axis=axis) if axis is not None else _p.reshape(out, ())
        if return_sign:
            sign = _np.squeeze(sign, axis=axis) if axis is not None else sign.reshape(())
    return (out, sign) if return_sign else out


def log_softmax(x, axis=None):
    """``x - logsumexp(x, axis, keepdims=True)``: log-probabilities along ``axis``."""
    return subtract(x, _p.logsumexp(x, axis=axis, keepdims=True))


def softmax(x, axis=None):
    """``exp(log_softmax(x, axis))``: probabilities along ``axis`` (all elements by default)."""
    return exp(log_softmax(x, axis))


def _register_numpy_dispatch():
    """SciPy's ufuncs on traced values reach these rules (scipy.special.erf(tracer))."""
    from ..numpy import _DISPATCH

    for name in __all__:
        ours = globals()[name]
        theirs = getattr(_sp, name, None)
        if theirs is not None and isinstance(ours, Primitive):
            _DISPATCH[theirs] = ours


_register_numpy_dispatch()
