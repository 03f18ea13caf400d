"""Differentiable log-densities and densities of common distributions, as ``scipy.stats`` spells them.

``nablanet.scipy.stats.norm.logpdf(x, loc, scale)`` and so on, written with
``nablanet.numpy`` and ``nablanet.scipy.special`` functions, so they are
differentiable in every continuous argument to any order.  Modules (as HIPS
autograd has them): ``norm``, ``t``, ``multivariate_normal``, ``dirichlet``,
``gamma``, ``beta``, ``chi2``, ``poisson``.
"""

from . import beta, chi2, dirichlet, gamma, multivariate_normal, norm, poisson, t

__all__ = ["norm", "t", "multivariate_normal", "dirichlet", "gamma", "beta", "chi2", "poisson"]
