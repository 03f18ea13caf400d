"""The beta distribution on (0, 1): logpdf, pdf."""

from ... import numpy as anp
from .. import special
from ._scipy_names import scipy_fallback

__all__ = ["logpdf", "pdf", "cdf"]


def logpdf(x, a, b, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return special.xlogy(a - 1.0, z) + special.xlog1py(b - 1.0, -z) - special.betaln(a, b) - anp.log(scale)


def pdf(x, a, b, loc=0.0, scale=1.0):
    return anp.exp(logpdf(x, a, b, loc, scale))


def cdf(x, a, b, loc=0.0, scale=1.0):
    """P(X <= x): the regularized incomplete beta at (a, b, z); differentiable in x, loc, scale."""
    return special.betainc(a, b, anp.clip((x - loc) / scale, 0.0, 1.0))


__getattr__ = scipy_fallback("beta")  # rvs, ppf...: SciPy's own (no derivative)
