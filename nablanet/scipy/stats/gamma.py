"""The gamma distribution with shape ``a``: logpdf, pdf."""

from ... import numpy as anp
from .. import special
from ._scipy_names import scipy_fallback

__all__ = ["logpdf", "pdf", "cdf"]


def logpdf(x, a, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return special.xlogy(a - 1.0, z) - z - special.gammaln(a) - anp.log(scale)


def pdf(x, a, loc=0.0, scale=1.0):
    return anp.exp(logpdf(x, a, loc, scale))


def cdf(x, a, loc=0.0, scale=1.0):
    """P(X <= x): the regularized lower incomplete gamma at (a, z); differentiable in x, loc, scale."""
    return special.gammainc(a, anp.maximum((x - loc) / scale, 0.0))


__getattr__ = scipy_fallback("gamma")  # rvs, ppf...: SciPy's own (no derivative)
