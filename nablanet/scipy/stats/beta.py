"""The beta distribution on (0, 1): logpdf, pdf."""

from ... import numpy as anp
from .. import special

__all__ = ["logpdf", "pdf"]


def logpdf(x, a, b, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return special.xlogy(a - 1.0, z) + special.xlog1py(b - 1.0, -z) - special.betaln(a, b) - anp.log(scale)


def pdf(x, a, b, loc=0.0, scale=1.0):
    return anp.exp(logpdf(x, a, b, loc, scale))
