"""The chi-squared distribution with ``df`` degrees of freedom: logpdf, pdf."""

import math

from ... import numpy as anp
from .. import special
from ._scipy_names import scipy_fallback

__all__ = ["logpdf", "pdf", "cdf"]


def logpdf(x, df, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    k = df / 2.0
    return special.xlogy(k - 1.0, z) - z / 2.0 - k * math.log(2.0) - special.gammaln(k) - anp.log(scale)


def pdf(x, df, loc=0.0, scale=1.0):
    return anp.exp(logpdf(x, df, loc, scale))


def cdf(x, df, loc=0.0, scale=1.0):
    """P(X <= x): the regularized lower incomplete gamma at (df/2, z/2); differentiable in x, loc, scale."""
    return special.gammainc(anp.asarray(df) / 2.0, anp.maximum((x - loc) / scale, 0.0) / 2.0)


__getattr__ = scipy_fallback("chi2")  # rvs, ppf...: SciPy's own (no derivative)
