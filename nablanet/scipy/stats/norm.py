"""The normal distribution N(loc, scale^2): pdf, logpdf, cdf, logcdf, sf, logsf, ppf."""

import math

from ... import numpy as anp
from .. import special
from ._scipy_names import scipy_fallback

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "ppf"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def logpdf(x, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return -0.5 * z * z - _HALF_LOG_2PI - anp.log(scale)


def pdf(x, loc=0.0, scale=1.0):
    return anp.exp(logpdf(x, loc, scale))


def cdf(x, loc=0.0, scale=1.0):
    return special.ndtr((x - loc) / scale)


def logcdf(x, loc=0.0, scale=1.0):
    return special.log_ndtr((x - loc) / scale)


def sf(x, loc=0.0, scale=1.0):
    return special.ndtr((loc - x) / scale)


def logsf(x, loc=0.0, scale=1.0):
    return special.log_ndtr((loc - x) / scale)


def ppf(q, loc=0.0, scale=1.0):
    return loc + scale * special.ndtri(q)


__getattr__ = scipy_fallback("norm")  # rvs, ppf...: SciPy's own (no derivative)
