"""Features for linear regression: the polynomial design matrix of the course's OLS and Ridge exercises."""

from __future__ import annotations

import math

import numpy as np

from .. import validate as V

__all__ = ["design_matrix"]

#: More columns than this is refused (a degree that high is a typing mistake, and the matrix would not fit).
MAX_COLUMNS = 5000


def design_matrix(X, degree, intercept=True):
    """The polynomial design matrix of ``X`` up to ``degree``: every product of the features of total
    degree 0 (the column of ones, with ``intercept``) to ``degree``, by scikit-learn's ``PolynomialFeatures``.

    For one feature x the columns are ``1, x, x², ..., x^degree``; for two features (x, y), as in the Franke
    exercises, ``1, x, y, x², xy, y², x³, x²y, ...``.  OLS is then ``beta = pinv(X) @ z`` (or
    ``sklearn.linear_model.LinearRegression(fit_intercept=False)``), Ridge ``solve(X.T X + lambda I, X.T z)``.
    A network without hidden layers on ``design_matrix(X, degree, intercept=False)`` (its bias is the
    intercept) is the same model trained by gradient descent (``nablanet train --hidden none --degree D``).

    Parameters
    ----------
    X : array_like, shape (n,) or (n, d)
        Rows are samples; a 1-d array is one feature.
    degree : int
        Highest total degree, at least 1.
    intercept : bool
        Include the column of ones first.

    Returns
    -------
    numpy.ndarray, shape (n, n_columns), float64

    Examples
    --------
    >>> design_matrix([[1.0, 2.0], [3.0, 4.0]], 2)
    array([[ 1.,  1.,  2.,  1.,  2.,  4.],
           [ 1.,  3.,  4.,  9., 12., 16.]])
    """
    from sklearn.preprocessing import PolynomialFeatures

    degree = V.positive_int(degree, "degree")
    intercept = V.boolean(intercept, "intercept")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] == 0:
        raise V.InvalidValueError(f"design_matrix: X must be a 1-d or 2-d array with rows, got shape {X.shape}")
    # counted before scikit-learn builds anything: every monomial of total degree 0..degree in d features
    columns = math.comb(X.shape[1] + degree, min(X.shape[1], degree)) - (not intercept)
    if columns > MAX_COLUMNS:
        shown = columns if columns < 10**15 else f"{float(columns):.3g}"
        raise V.InvalidValueError(f"degree {degree} on {X.shape[1]} features makes {shown} "
                                  f"columns (at most {MAX_COLUMNS}); use a lower degree")
    poly = PolynomialFeatures(degree, include_bias=intercept).fit(X[:1])
    return poly.transform(X)
