"""The Poisson distribution: logpmf, pmf (differentiable in the rate ``mu``)."""

from ... import numpy as anp
from .. import special
from ._scipy_names import scipy_fallback

__all__ = ["logpmf", "pmf", "cdf"]


def logpmf(k, mu, loc=0):
    k = k - loc
    return special.xlogy(k, mu) - mu - special.gammaln(k + 1.0)


def pmf(k, mu, loc=0):
    return anp.exp(logpmf(k, mu, loc))


def cdf(k, mu, loc=0):
    """P(K <= k) = Q(floor(k) + 1, mu), the regularized upper incomplete gamma; differentiable in ``mu``."""
    k = anp.floor(anp.asarray(k) - loc)
    return anp.where(k >= 0, special.gammaincc(anp.maximum(k, 0.0) + 1.0, mu), 0.0)


__getattr__ = scipy_fallback("poisson")  # rvs, ppf...: SciPy's own (no derivative)
