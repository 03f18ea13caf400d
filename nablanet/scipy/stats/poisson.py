"""The Poisson distribution: logpmf, pmf (differentiable in the rate ``mu``)."""

from ... import numpy as anp
from .. import special

__all__ = ["logpmf", "pmf"]


def logpmf(k, mu, loc=0):
    k = k - loc
    return special.xlogy(k, mu) - mu - special.gammaln(k + 1.0)


def pmf(k, mu, loc=0):
    return anp.exp(logpmf(k, mu, loc))
