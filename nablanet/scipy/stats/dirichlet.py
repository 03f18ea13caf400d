"""The Dirichlet distribution on the simplex: logpdf, pdf (x sums to 1 along the last axis)."""

from ... import numpy as anp
from .. import special
from ._scipy_names import scipy_fallback

__all__ = ["logpdf", "pdf"]


def logpdf(x, alpha):
    return (
        anp.sum((alpha - 1.0) * anp.log(x), axis=-1)
        + special.gammaln(anp.sum(alpha, axis=-1))
        - anp.sum(special.gammaln(alpha), axis=-1)
    )


def pdf(x, alpha):
    return anp.exp(logpdf(x, alpha))


__getattr__ = scipy_fallback("dirichlet")  # rvs, ppf...: SciPy's own (no derivative)
