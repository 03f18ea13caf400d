"""The multivariate normal N(mean, cov): logpdf, pdf, entropy.

Rows of ``x`` are samples (the last axis is the dimension d).  The value is
computed from ``cov`` itself (``slogdet`` and ``solve``), so the derivative in
``cov`` is exact for any perturbation; for a symmetric ``cov`` the values are
SciPy's.
"""

import math

from ... import numpy as anp
from ._scipy_names import scipy_fallback

__all__ = ["logpdf", "pdf", "entropy"]


def logpdf(x, mean=None, cov=1.0, allow_singular=False):
    d = x.shape[-1] if hasattr(x, "shape") and len(x.shape) else 1
    cov = cov * anp.eye(d) if anp.ndim(cov) == 0 else cov
    diff = x if mean is None else x - mean
    sol = anp.linalg.solve(cov, anp.swapaxes(anp.atleast_2d(diff), -1, -2))  # (d, n)
    maha = anp.sum(anp.atleast_2d(diff) * anp.swapaxes(sol, -1, -2), axis=-1)
    out = -0.5 * (d * math.log(2.0 * math.pi) + anp.linalg.slogdet(cov)[1] + maha)
    return out[0] if anp.ndim(diff) == 1 else out


def pdf(x, mean=None, cov=1.0, allow_singular=False):
    return anp.exp(logpdf(x, mean, cov, allow_singular))


def entropy(mean=None, cov=1.0):
    cov = anp.atleast_2d(cov)
    d = cov.shape[-1]
    return 0.5 * (d * (1.0 + math.log(2.0 * math.pi)) + anp.linalg.slogdet(cov)[1])


__getattr__ = scipy_fallback("multivariate_normal")  # rvs, ppf...: SciPy's own (no derivative)
