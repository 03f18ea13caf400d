"""Student's t distribution with ``df`` degrees of freedom: pdf, logpdf, cdf, logcdf.

The cdf is differentiable in x, loc and scale; not in ``df`` (its derivative
there needs the incomplete beta function's parameter derivative).
"""

import math

import scipy.stats as _st

from ... import numpy as anp
from ...autodiff.core import Primitive
from ...numpy._primitives import _bcast, _shape, unbroadcast
from .. import special
from ._scipy_names import scipy_fallback

__all__ = ["pdf", "logpdf", "cdf", "logcdf"]


def logpdf(x, df, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return (
        special.gammaln((df + 1.0) / 2.0)
        - special.gammaln(df / 2.0)
        - 0.5 * anp.log(df * math.pi)
        - anp.log(scale)
        - (df + 1.0) / 2.0 * anp.log1p(z * z / df)
    )


def pdf(x, df, loc=0.0, scale=1.0):
    return anp.exp(logpdf(x, df, loc, scale))


def _cdf(x, df, loc, scale):
    return _st.t.cdf(x, df, loc, scale)


def _dx(ans, x, df, loc, scale):
    return pdf(x, df, loc, scale)


_cdf_p = Primitive(_cdf, "t.cdf")
_cdf_p.defvjp(
    lambda ans, x, df, loc, scale: lambda g: unbroadcast(g * _dx(ans, x, df, loc, scale), _shape(x)),
    None,
    lambda ans, x, df, loc, scale: lambda g: unbroadcast(-g * _dx(ans, x, df, loc, scale), _shape(loc)),
    lambda ans, x, df, loc, scale: lambda g: unbroadcast(-g * _dx(ans, x, df, loc, scale) * (x - loc) / scale, _shape(scale)),
)
_cdf_p.defjvp(
    lambda g, ans, x, df, loc, scale: _bcast(g * _dx(ans, x, df, loc, scale), ans),
    None,
    lambda g, ans, x, df, loc, scale: _bcast(-g * _dx(ans, x, df, loc, scale), ans),
    lambda g, ans, x, df, loc, scale: _bcast(-g * _dx(ans, x, df, loc, scale) * (x - loc) / scale, ans),
)


def cdf(x, df, loc=0.0, scale=1.0):
    return _cdf_p(x, df, loc, scale)


def logcdf(x, df, loc=0.0, scale=1.0):
    return anp.log(cdf(x, df, loc, scale))


__getattr__ = scipy_fallback("t")  # rvs, ppf...: SciPy's own (no derivative)
