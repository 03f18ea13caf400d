"""The gamma distribution with shape ``a``: logpdf, pdf."""

from ... import numpy as anp
from .. import special

__all__ = ["logpdf", "pdf"]


def logpdf(x, a, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return special.xlogy(a - 1.0, z) - z - special.gammaln(a) - anp.log(scale)


def pdf(x, a, loc=0.0, scale=1.0):
    return anp.exp(logpdf(x, a, loc, scale))
