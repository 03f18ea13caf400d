"""The multivariate normal N(mean, cov): logpdf, pdf, entropy.

Rows of ``x`` are samples (the last axis is the dimension d).  The value is
computed from ``cov`` itself (``slogdet`` and ``solve``), so the derivative in
``cov`` is exact for any perturbation; for a symmetric ``cov`` the values are
SciPy's.
"""

import math

import numpy as _np

from ... import numpy as anp
from ...autodiff.core import getval
from ._scipy_names import scipy_fallback

__all__ = ["logpdf", "pdf", "entropy"]


def _singular_terms(cov, diff):
    """SciPy's allow_singular route: log pseudo-determinant, Mahalanobis terms and rank, from eigh(cov).

    Eigenvalues at most SciPy's cutoff (1e6 machine epsilons times the largest) are dropped;
    the kept eigenpairs are differentiated as eigh's.
    """
    s, u = anp.linalg.eigh(cov)
    sv = _np.asarray(getval(s))
    keep = sv > 1e6 * _np.finfo(float).eps * _np.max(_np.abs(sv))
    if _np.any(sv[~keep] < -1e6 * _np.finfo(float).eps * _np.max(_np.abs(sv))):
        raise ValueError("multivariate_normal: the covariance matrix must be positive semidefinite")
    s_k, u_k = s[keep], u[:, keep]
    proj = anp.matmul(anp.atleast_2d(diff), u_k)  # (n, rank)
    return anp.sum(anp.log(s_k)), anp.sum(proj**2 / s_k, axis=-1), int(_np.sum(keep))


def logpdf(x, mean=None, cov=1.0, allow_singular=False):
    """log N(x; mean, cov).  ``allow_singular=True`` takes SciPy's route for a singular
    ``cov`` (pseudo-inverse and pseudo-determinant on its range, from ``eigh``; derivatives
    in ``cov`` there are eigh's, exact where the kept eigenvalues are distinct)."""
    d = x.shape[-1] if hasattr(x, "shape") and len(x.shape) else 1
    cov = cov * anp.eye(d) if anp.ndim(cov) == 0 else cov
    diff = x if mean is None else x - mean
    if allow_singular:
        if anp.ndim(cov) != 2:
            raise ValueError("multivariate_normal: allow_singular=True needs one (d, d) covariance matrix")
        logdet, maha, rank = _singular_terms(cov, diff)
        out = -0.5 * (rank * math.log(2.0 * math.pi) + logdet + maha)
        return out[0] if anp.ndim(diff) == 1 else out
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
