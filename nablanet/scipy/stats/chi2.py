"""The chi-squared distribution with ``df`` degrees of freedom: logpdf, pdf."""

import math

from ... import numpy as anp
from .. import special

__all__ = ["logpdf", "pdf"]


def logpdf(x, df, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    k = df / 2.0
    return special.xlogy(k - 1.0, z) - z / 2.0 - k * math.log(2.0) - special.gammaln(k) - anp.log(scale)


def pdf(x, df, loc=0.0, scale=1.0):
    return anp.exp(logpdf(x, df, loc, scale))
