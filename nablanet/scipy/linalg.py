"""Differentiable ``scipy.linalg`` functions that NumPy lacks: ``solve_triangular``, ``solve_banded``,
``solve_sylvester``, ``sqrtm``.

(``inv``, ``det``, ``solve``, ``svd``... are in :mod:`nablanet.numpy.linalg`.)
Every rule is written with differentiable functions, so every order works.
"""

import numpy as _np
import scipy.linalg as _sla

from ..autodiff.core import Primitive, getval
from ..numpy import _primitives as _p
from ..numpy import linalg as _la

__all__ = ["solve_triangular", "solve_banded", "solve_sylvester", "sqrtm"]


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, **kwargs):
    """Solve ``op(T) x = b`` where T is the lower or upper triangle of ``a`` (the other one is not read).

    ``trans`` is 0/'N' (T), 1/'T' or 2/'C' (T transposed; the same for real input).
    """
    n = _p._shape(a)[-1]
    mask = _np.tril(_np.ones((n, n))) if lower else _np.triu(_np.ones((n, n)))
    t = _p.multiply(a, mask)
    if unit_diagonal:
        t = _p.add(_p.multiply(t, 1.0 - _np.eye(n)), _np.eye(n))
    if trans in (1, 2, "T", "C"):
        t = _p.swapaxes(t, -1, -2)
    elif trans not in (0, "N"):
        raise ValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', got {trans!r}")
    return _la.solve(t, b)


def solve_banded(l_and_u, ab, b, overwrite_ab=False, overwrite_b=False, check_finite=True):
    """Solve ``A x = b`` for A given by its diagonals in SciPy's banded layout, ``ab[u + i - j, j] = A[i, j]``.

    On plain values it is SciPy's own.  With traced ``ab`` or ``b`` the band is
    placed in a dense matrix and solved with :func:`nablanet.numpy.linalg.solve`
    (the same values to rounding; ``O(n^3)`` rather than the band's ``O(n)``),
    differentiable in both, to any order; entries of ``ab`` outside the band
    are not read and get derivative 0.
    """
    if not _p._contains_tracer((ab, b)):
        return _sla.solve_banded(l_and_u, ab, b, overwrite_ab=overwrite_ab, overwrite_b=overwrite_b,
                                 check_finite=check_finite)
    lower, upper = (int(k) for k in l_and_u)
    rows, n = _p._shape(ab)
    if rows != lower + upper + 1:
        raise ValueError(f"solve_banded: ab has {rows} rows, but (l, u) = ({lower}, {upper}) needs {lower + upper + 1}")
    i, j = _np.indices((n, n))
    r = upper + i - j
    inside = (r >= 0) & (r < rows)
    dense = _p.where(inside, _p.getitem(ab, (_np.clip(r, 0, rows - 1), j)), 0.0)
    return _la.solve(dense, b)


def solve_sylvester(a, b, q):
    """X with ``a X + X b = q``, from the Kronecker form ``(a (x) I + I (x) b^T) vec X = vec q``."""
    m, n = _p._shape(q)[-2:]
    big = _p.add(_la.kron(a, _np.eye(n)), _la.kron(_np.eye(m), _p.transpose(b)))
    return _p.reshape(_la.solve(big, _p.reshape(q, (m * n,))), (m, n))


def _sqrtm(a):
    s = _sla.sqrtm(a)
    if _np.iscomplexobj(s) and not _np.iscomplexobj(a) and not _np.any(_np.imag(s)):
        s = _np.real(s)
    return s  # complex where the principal root is (negative eigenvalues), as SciPy's


_sqrtm_p = Primitive(_sqrtm, "sqrtm")
# S S = A  =>  S dS + dS S = dA (a Sylvester equation); its adjoint uses S^T (sqrtm is holomorphic, so
# for complex S the transposes, not conjugate transposes, are autograd's convention)
_sqrtm_p.defjvp(lambda g, ans, a: solve_sylvester(ans, ans, g))
_sqrtm_p.defvjp(lambda ans, a: lambda g: solve_sylvester(_p.transpose(ans), _p.transpose(ans), g))


def sqrtm(a, disp=True, blocksize=64):
    """The principal square root S of a matrix (``S @ S = a``); complex where it is (negative eigenvalues)."""
    shape = _p._shape(getval(a))
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"nablanet.scipy.linalg.sqrtm: needs one square matrix, got shape {shape}")
    return _sqrtm_p(a)
