"""Linear algebra: products (``matmul``, ``dot``, ``einsum``...) and ``nablanet.numpy.linalg``.

Each primitive's VJP and JVP sit beside it and are written with differentiable
functions, so they can be differentiated again.  The products are re-exported
at the top of :mod:`nablanet.numpy` (``anp.matmul``, ``anp.einsum``); the
``numpy.linalg`` functions live here as ``anp.linalg.inv`` and so on.
"""

from __future__ import annotations

import builtins
import functools
import string

import numpy as _np

from ..autodiff.core import NotDifferentiableError, Primitive, Tracer, getval
from ._primitives import (
    _arraylike,
    _cast_for,
    _contains_tracer,
    _dtype,
    _keep,
    _ndim,
    _shape,
    abs,
    add,
    astype,
    broadcast_to,
    concatenate,
    conj,
    divide,
    expand_dims,
    imag,
    max,
    min,
    moveaxis,
    multiply,
    negative,
    power,
    primitive,
    prod,
    ravel,
    real,
    reshape,
    squeeze,
    stack,
    subtract,
    sum,
    swapaxes,
    transpose,
    unbroadcast,
    where,
)

# nablanet.numpy.linalg, as NumPy's numpy.linalg (other numpy.linalg names come from NumPy; see __getattr__).
__all__ = [
    "cholesky", "cond", "cross", "det", "eig", "eigh", "eigvals", "eigvalsh", "inv", "matrix_norm", "matrix_power",
    "matrix_transpose", "multi_dot", "norm", "pinv", "qr", "slogdet", "solve", "svd", "svdvals", "vecdot", "vector_norm",
]  # fmt: skip

# Functions that belong at the top of nablanet.numpy (anp.matmul, anp.einsum...).
_TOP_LEVEL = ("matmul", "dot", "outer", "inner", "vdot", "einsum", "trace", "tensordot", "kron", "cross")


def _mT(x):
    return swapaxes(x, -1, -2)


# autograd.numpy.linalg's helpers, which code ported from autograd calls: the matrix
# transpose of the last two axes and the batched matrix product.
T = _mT


def _dot(a, b):
    return matmul(a, b)


def _cj(x):
    """conj(x) for complex x; real x unchanged (no extra step on the real path)."""
    return conj(x) if _dtype(x).kind == "c" else x


def _mH(x):
    """The conjugate transpose of a stack of matrices (the transpose for real ones)."""
    return _cj(_mT(x))


def _matmul_vjp_a(ans, a, b):
    an, bn = _ndim(a), _ndim(b)

    def vjp(g):
        if an == 1 and bn == 1:
            return multiply(g, b)
        if bn == 1:
            return unbroadcast(multiply(expand_dims(g, -1), b), _shape(a))
        if an == 1:
            return reshape(unbroadcast(matmul(expand_dims(g, -2), _mT(b)), (1,) + _shape(a)), _shape(a))
        return unbroadcast(matmul(g, _mT(b)), _shape(a))

    return vjp


def _matmul_vjp_b(ans, a, b):
    an, bn = _ndim(a), _ndim(b)

    def vjp(g):
        if an == 1 and bn == 1:
            return multiply(g, a)
        if an == 1:
            return unbroadcast(multiply(expand_dims(a, -1), expand_dims(g, -2)), _shape(b))
        if bn == 1:
            return reshape(unbroadcast(matmul(_mT(a), expand_dims(g, -1)), _shape(b) + (1,)), _shape(b))
        return unbroadcast(matmul(_mT(a), g), _shape(b))

    return vjp


matmul = primitive(_np.matmul, "matmul")
matmul.defvjp(_matmul_vjp_a, _matmul_vjp_b)
matmul.defjvp(lambda g, ans, a, b: matmul(g, b), lambda g, ans, a, b: matmul(a, g))


def dot(a, b):
    """``numpy.dot``: matrix product for 1-d/2-d, sum over a's last and b's second-to-last axis for N-d."""
    an, bn = _ndim(a), _ndim(b)
    if an == 0 or bn == 0:
        return multiply(a, b)
    if an <= 2 and bn <= 2:
        return matmul(a, b)
    return tensordot(a, b, axes=([an - 1], [builtins.max(bn - 2, 0)]))


def outer(a, b):
    """Outer product of two vectors (inputs are flattened, as in NumPy)."""
    return multiply(reshape(a, (-1, 1)), reshape(b, (1, -1)))


def inner(a, b):
    """Sum product over the last axes: ``out[i..., j...] = sum(a[i..., :] * b[j..., :])``."""
    an, bn = _ndim(a), _ndim(b)
    if an == 0 or bn == 0:
        return multiply(a, b)
    return tensordot(a, b, axes=([an - 1], [bn - 1]))


def vdot(a, b):
    """Dot product of the flattened arrays; a complex ``a`` is conjugated first, as in NumPy."""
    if _dtype(a).kind == "c":
        a = conj(a)
    return sum(multiply(ravel(a), ravel(b)))


def tensordot(a, b, axes=2):
    """``numpy.tensordot``: sum products over ``axes`` (an int N: a's last N with b's first N)."""
    an, bn = _ndim(a), _ndim(b)
    if isinstance(axes, (int, _np.integer)):
        ax_a, ax_b = list(range(an - int(axes), an)), list(range(int(axes)))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, (int, _np.integer)) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, (int, _np.integer)) else list(ax_b)
    if len(ax_a) != len(ax_b):
        raise ValueError(f"tensordot: axes {ax_a} of a and {ax_b} of b differ in number")
    ax_a, ax_b = [k % an for k in ax_a], [k % bn for k in ax_b]
    letters = iter(string.ascii_letters)
    sa = [next(letters) for _ in range(an)]
    sb = [next(letters) for _ in range(bn)]
    for i, j in zip(ax_a, ax_b):
        sb[j] = sa[i]
    out = [c for k, c in enumerate(sa) if k not in ax_a] + [c for k, c in enumerate(sb) if k not in ax_b]
    return _einsum_p("".join(sa) + "," + "".join(sb) + "->" + "".join(out), a, b)


def kron(a, b):
    """Kronecker product: blocks ``a[i, j] * b`` (inputs of any number of dimensions)."""
    nd = builtins.max(_ndim(a), _ndim(b))
    sa = (1,) * (nd - _ndim(a)) + tuple(_shape(a))
    sb = (1,) * (nd - _ndim(b)) + tuple(_shape(b))
    a2 = reshape(a, tuple(x for n in sa for x in (n, 1)))
    b2 = reshape(b, tuple(x for n in sb for x in (1, n)))
    return reshape(multiply(a2, b2), tuple(m * n for m, n in zip(sa, sb)))


def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    """Sum along a diagonal (``offset`` above the main one) of the ``axis1``/``axis2`` planes."""
    if not _contains_tracer(a):
        return _np.trace(a, offset, axis1, axis2, dtype=dtype, out=out)
    a = _cast_for("trace", a, dtype, out)
    shape = _shape(a)
    nd = len(shape)
    if nd < 2:
        raise ValueError(f"trace: need an array of at least 2 dimensions, got shape {shape}")
    axis1, axis2 = axis1 % nd, axis2 % nd
    mask_shape = [1] * nd
    mask_shape[axis1], mask_shape[axis2] = shape[axis1], shape[axis2]
    mask = _np.eye(shape[axis1], shape[axis2], k=offset, dtype=_dtype(a))
    if axis1 > axis2:
        mask = mask.T
    r = sum(multiply(a, reshape(mask, tuple(mask_shape))), axis=(axis1, axis2))
    return r


def _einsum_parse(subscripts, shapes):
    """Explicit subscripts (``'ij,jk->ik'``) with any ``...`` spelled out as letters."""
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        ins, out = subscripts.split("->")
        ins = ins.split(",")
    else:
        ins = subscripts.split(",")
        letters = "".join(ins).replace(".", "")
        out = ("..." if any("..." in s for s in ins) else "") + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if len(ins) != len(shapes):
        raise ValueError(f"einsum: {len(ins)} operands in the subscripts but {len(shapes)} given")
    if any("..." in s for s in ins) or "..." in out:
        used = set("".join(ins) + out)
        free = [c for c in string.ascii_letters if c not in used]
        nell = 0
        for s, shp in zip(ins, shapes):
            if "..." in s:
                nell = builtins.max(nell, len(shp) - (len(s) - 3))
        ell = "".join(free[:nell])
        ins = [s.replace("...", ell[nell - (len(shp) - (len(s) - 3)) :]) if "..." in s else s for s, shp in zip(ins, shapes)]
        out = out.replace("...", ell)
    return ins, out


def _einsum(subscripts, *operands):
    return _np.einsum(subscripts, *operands)


def _einsum_vjp(argnum, ans, subscripts, *operands):
    i = argnum - 1
    ins, out = _einsum_parse(subscripts, [_shape(o) for o in operands])
    target = ins[i]
    shape_i = _shape(operands[i])
    size = {c: shape_i[k] for k, c in enumerate(target)}
    uniq = "".join(dict.fromkeys(target))  # letters of this operand, each once
    others = [s for k, s in enumerate(ins) if k != i]
    reachable = set(out).union(*others) if others else set(out)
    kept = "".join(c for c in uniq if c in reachable)

    def vjp(g):
        spec = ",".join([out] + others) + "->" + kept
        r = _einsum_p(spec, g, *[o for k, o in enumerate(operands) if k != i])
        r = unbroadcast(r, tuple(size[c] for c in kept))  # size-1 '...' axes
        if kept != uniq:  # letters summed in this operand alone: broadcast back
            r = reshape(r, tuple(size[c] if c in kept else 1 for c in uniq))
            r = broadcast_to(r, tuple(size[c] for c in uniq))
        if uniq != target:  # a repeated letter ('ii'): put r back on that diagonal
            used = set("".join(ins) + out)
            fresh = iter(c for c in string.ascii_letters if c not in used)
            spelled, deltas, seen = [], [], set()
            for c in target:
                if c in seen:
                    d = next(fresh)
                    deltas.append(c + d)
                    spelled.append(d)
                else:
                    seen.add(c)
                    spelled.append(c)
            eyes = [_np.eye(size[d[0]], dtype=_dtype(operands[i])) for d in deltas]
            r = _einsum_p(",".join([uniq] + deltas) + "->" + "".join(spelled), r, *eyes)
        return r

    return vjp


_einsum_p = primitive(_einsum, "einsum")
_einsum_p.vjps["*"] = _einsum_vjp
_einsum_p.jvps["*"] = lambda argnum, g, ans, subscripts, *ops: _einsum_p(
    subscripts, *[g if k == argnum - 1 else o for k, o in enumerate(ops)]
)


def _sublist_subscripts(args):
    """NumPy's operand-list form ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` as a subscripts string."""
    args = list(args)
    out = args.pop() if len(args) % 2 == 1 else None
    ops, subs = args[0::2], args[1::2]

    def spell(sub):
        return "".join("..." if k is Ellipsis else string.ascii_letters[int(k)] for k in sub)

    spec = ",".join(spell(s) for s in subs)
    return (spec if out is None else spec + "->" + spell(out)), ops


def einsum(*operands, **kwargs):
    """Einstein summation, differentiable in every operand, to any order.

    Both NumPy forms work: ``einsum('ij,jk->ik', a, b)`` and the operand-list form
    ``einsum(a, [0, 1], b, [1, 2], [0, 2])``; repeated letters within one operand
    (``'ii->i'``, ``'ii'``) and ``...`` included.  ``optimize`` is accepted and
    ignored (it changes only the order of the products, not the result).
    """
    kwargs.pop("optimize", None)
    if kwargs:
        raise TypeError(f"nablanet.numpy.einsum: unsupported keyword arguments {sorted(kwargs)}")
    if not operands:
        raise TypeError("nablanet.numpy.einsum: no operands given")
    if isinstance(operands[0], str):
        subscripts, ops = operands[0], operands[1:]
    else:
        subscripts, ops = _sublist_subscripts(operands)
    return _einsum_p(subscripts, *ops)


# ----------------------------------------------------------------------------
# numpy.linalg
# ----------------------------------------------------------------------------
# Shapes follow NumPy: matrices are the last two axes, any leading axes are a
# stack ("batch").  Every rule below is written with differentiable functions
# (matmul, solve, inv, where...), so second and higher derivatives come from the
# same rules.

_SVDResult = type(_np.linalg.svd(_np.eye(2)))
_EighResult = type(_np.linalg.eigh(_np.eye(2)))
_EigResult = type(_np.linalg.eig(_np.eye(2)))
_QRResult = type(_np.linalg.qr(_np.eye(2)))
_SlogdetResult = type(_np.linalg.slogdet(_np.eye(2)))


def _traced(*xs):
    return builtins.any(isinstance(x, Tracer) for x in xs)


def _square(a, fname):
    shape = _shape(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"nablanet.numpy.linalg.{fname}: needs square matrices in the last two axes, got shape {shape}")


def _eye(n, like):
    return _np.eye(n, dtype=_np.result_type(_dtype(like), _np.float64) if _dtype(like).kind != "f" else _dtype(like))


def _sym(x):
    """The symmetric part (x + x^T) / 2 of a stack of matrices."""
    return multiply(add(x, _mT(x)), 0.5)


def _mdiag(v):
    """Stack of diagonal matrices from a stack of vectors: (..., n) -> (..., n, n)."""
    n = _shape(v)[-1]
    return multiply(expand_dims(v, -1), _np.eye(n, dtype=_dtype(v)))


def _mdiagonal(m):
    """The diagonals of a stack of matrices: (..., n, n) -> (..., n)."""
    return _einsum_p("...ii->...i", m)


def _pack(*parts, nmat):
    """Several outputs of one primitive as one array: each flattened over its own trailing axes."""
    lead = len(_shape(parts[0])) - nmat[0]
    flat = [reshape(p, tuple(_shape(p)[:lead]) + (-1,)) for p in parts]
    return concatenate(flat, axis=-1) if len(flat) > 1 else flat[0]


def _unpack(packed, shapes):
    """Inverse of :func:`_pack`: ``shapes`` are the trailing shapes of the parts."""
    lead = tuple(_shape(packed)[:-1])
    out, start = [], 0
    for shp in shapes:
        n = int(_np.prod(shp))
        out.append(reshape(packed[..., start : start + n], lead + tuple(shp)))
        start += n
    return out


# ---- inv ---------------------------------------------------------------------

_inv_p = primitive(_np.linalg.inv, "inv")
_inv_p.defvjp(lambda ans, a: lambda g: negative(matmul(_mT(ans), matmul(g, _mT(ans)))))
_inv_p.defjvp(lambda g, ans, a: negative(matmul(ans, matmul(g, ans))))


def inv(a):
    """Inverse of a (stack of) square matrices; ``d inv(A) = -inv(A) dA inv(A)``."""
    _square(a, "inv")
    return _inv_p(a)


# ---- solve -------------------------------------------------------------------


def _solve_vjp_a(ans, a, b):
    def vjp(g):
        gb = _solve_p(_mT(a), g)
        return unbroadcast(negative(matmul(gb, _mT(ans))), _shape(a))

    return vjp


_solve_p = primitive(_np.linalg.solve, "solve")
_solve_p.defvjp(_solve_vjp_a, lambda ans, a, b: lambda g: unbroadcast(_solve_p(_mT(a), g), _shape(b)))
_solve_p.defjvp(
    lambda g, ans, a, b: negative(_solve_p(a, matmul(g, ans))),
    lambda g, ans, a, b: _solve_p(a, broadcast_to(g, _shape(b)) if _shape(g) != _shape(b) else g),
)


def solve(a, b):
    """Solve ``a x = b`` for x.  As in NumPy 2, a 1-d ``b`` is one right-hand side; otherwise
    ``b`` is a (stack of) matrices whose columns are right-hand sides."""
    _square(a, "solve")
    if _ndim(b) == 1:
        return _solve_p(a, expand_dims(b, -1))[..., 0]
    return _solve_p(a, b)


# ---- det, slogdet --------------------------------------------------------------

_MINORS_MAX = 24  # cofactors of singular matrices up to this size come from minors (exact to any order)


def _cofactor(a):
    """The cofactor matrix C (d det(A) = sum(C * dA)), differentiably.

    Away from singular matrices ``C = det(A) inv(A)^T``.  At (or near) singular
    ones that formula breaks down, so C is formed from the minors themselves,
    ``C_ij = (-1)^(i+j) det(A without row i and column j)`` (the adjugate); for
    matrices larger than ``_MINORS_MAX`` from the SVD ``A = U S V^T`` as
    ``det(U) det(V) U diag(prod_{j != i} s_j) V^T``.
    """
    v = getval(a)
    n = _shape(a)[-1]
    if n == 1:
        return _np.ones(_shape(a), _dtype(a))
    if _np.all(_np.isfinite(v)):
        with _np.errstate(all="ignore"):
            cond = _np.linalg.cond(v)
        if _np.all(cond < 1e8):
            return multiply(expand_dims(expand_dims(det(a), -1), -1), _mT(_inv_p(a)))
    if n <= _MINORS_MAX:
        keep = _np.array([[j for j in range(n) if j != i] for i in range(n)])
        minors = a[..., keep[:, None, :, None], keep[None, :, None, :]]  # (..., n, n, n-1, n-1)
        signs = (-1.0) ** _np.add.outer(_np.arange(n), _np.arange(n))
        return multiply(det(minors), signs.astype(_dtype(a)))
    u, s, vh = svd(a)
    sign = _np.linalg.det(getval(u)) * _np.linalg.det(getval(vh))
    ex = [prod(concatenate([s[..., :i], s[..., i + 1 :]], axis=-1), axis=-1) for i in range(n)]
    others = stack(ex, axis=-1)
    # C = det(A) A^-T = det(U) det(Vh) conj(U) diag(others) conj(Vh) (U, Vh unitary; conj is a no-op when real)
    return multiply(matmul(multiply(_cj(u), expand_dims(others, -2)), _cj(vh)), sign[..., None, None])


_det_p = primitive(_np.linalg.det, "det")
_det_p.defvjp(lambda ans, a: lambda g: multiply(expand_dims(expand_dims(g, -1), -1), _cofactor(a)))
_det_p.defjvp(lambda g, ans, a: sum(multiply(_cofactor(a), g), axis=(-2, -1)))


def det(a):
    """Determinant of a (stack of) square matrices.

    Its derivative is the cofactor matrix (the transposed adjugate), which exists
    everywhere, also at singular matrices; there it is computed from the minors,
    not from ``inv``, so it is exact (and differentiable again) at rank n-1, n-2...
    """
    _square(a, "det")
    return _det_p(a)


def _logabsdet(a):
    return _np.linalg.slogdet(a)[1]


def _inv_T_checked(a):
    if _np.any(_np.linalg.slogdet(getval(a))[0] == 0):
        raise ValueError("nablanet.numpy.linalg.slogdet: log|det| is -inf at a singular matrix and has no derivative there")
    return _mT(_inv_p(a))


_logabsdet_p = primitive(_logabsdet, "slogdet")
_logabsdet_p.defvjp(lambda ans, a: lambda g: multiply(expand_dims(expand_dims(g, -1), -1), _inv_T_checked(a)))
# For complex a, logabsdet = Re(log det a): the same adjoint (autograd's convention), the real part of the tangent
_logabsdet_p.defjvp(lambda g, ans, a: real(sum(multiply(_inv_T_checked(a), g), axis=(-2, -1))))


def _sign_of_det(a):
    return _np.linalg.slogdet(a)[0]


# For complex a the sign is the phase of det a, s = exp(i Im log det a): ds = s i Im tr(inv(A) dA).
# Its adjoint (L = Re(g s)): i Im(g s) inv(A)^T.
_sign_p = primitive(_sign_of_det, "slogdet")
_sign_p.defjvp(lambda g, ans, a: multiply(ans, multiply(1j, imag(sum(multiply(_inv_T_checked(a), g), axis=(-2, -1))))))
_sign_p.defvjp(
    lambda ans, a: lambda g: multiply(
        expand_dims(expand_dims(multiply(1j, imag(multiply(g, ans))), -1), -1), _inv_T_checked(a)
    )
)


def slogdet(a):
    """``(sign, logabsdet)`` of det(a); ``d logabsdet = Re tr(inv(A) dA)``.

    A real matrix's sign is constant; a complex matrix's is the phase of its
    determinant, ``d sign = sign * i Im tr(inv(A) dA)``.  At a singular matrix
    logabsdet is -inf and differentiating either raises ValueError.
    """
    _square(a, "slogdet")
    if not _traced(a):
        return _np.linalg.slogdet(a)
    sign = _sign_p(a) if _dtype(a).kind == "c" else _np.linalg.slogdet(getval(a))[0]
    return _SlogdetResult(sign, _logabsdet_p(a))


# ---- cholesky ----------------------------------------------------------------


def _phi(x):
    """Lower triangle of x with the diagonal halved."""
    n = _shape(x)[-1]
    return multiply(x, (_np.tril(_np.ones((n, n))) - 0.5 * _np.eye(n)).astype(_dtype(x)))


def _herm(x):
    """The Hermitian part (x + x^H) / 2 (the symmetric part for real x)."""
    return multiply(add(x, _mH(x)), 0.5)


def _cholesky_jvp(g, ans, a):
    # A = L L^H  =>  dL = L phi(L^-1 dA L^-H), with dA taken Hermitian (symmetric when real)
    z = _solve_p(ans, _herm(g))
    return matmul(ans, _phi(_mH(_solve_p(ans, _mH(z)))))


def _cholesky_vjp(ans, a):
    def vjp(g):
        p = _phi(matmul(_mT(ans), g))
        y = _mT(_solve_p(_mH(ans), _mT(p)))  # P conj(L)^-1
        return _herm(_solve_p(_mT(ans), y))  # L^-T P conj(L)^-1, Hermitian part

    return vjp


_cholesky_p = primitive(_np.linalg.cholesky, "cholesky")
_cholesky_p.defvjp(_cholesky_vjp)
_cholesky_p.defjvp(_cholesky_jvp)


def cholesky(a):
    """Lower Cholesky factor L of a symmetric (Hermitian) positive-definite a (``a = L L^H``).

    Like NumPy, only the lower triangle of ``a`` is read.  The derivative is that of
    the symmetric (Hermitian) input: only the symmetric (Hermitian) part of a
    perturbation counts, and the gradient returned is a symmetric (Hermitian)
    matrix (autograd's and JAX's convention).
    """
    _square(a, "cholesky")
    return _cholesky_p(a)


# ---- eigh ----------------------------------------------------------------------

_TIE = 1e-9  # relative gap under which two eigenvalues / singular values are taken as equal


def _gap_inverse(d, scale):
    """1/d where |d| > _TIE * scale, else 0 (the convention at repeated values)."""
    v = getval(d)
    ok = _np.abs(v) > _TIE * _np.maximum(getval(scale), _np.finfo(_np.float64).tiny)
    return where(ok, divide(1.0, where(ok, d, 1.0)), 0.0)


def _eigh_F(w):
    diff = subtract(expand_dims(w, -2), expand_dims(w, -1))  # F_ij from w_j - w_i
    scale = _np.max(_np.abs(getval(w)), axis=-1, keepdims=True)[..., None]
    return _gap_inverse(diff, scale)


def _eigh(a, UPLO="L"):
    w, v = _np.linalg.eigh(a, UPLO)
    return _np.concatenate([w[..., None, :], v], axis=-2)


def _eigh_parts(ans):
    w, v = ans[..., 0, :], ans[..., 1:, :]
    return (real(w) if _dtype(w).kind == "c" else w), v


def _triangle(n, UPLO, dtype):
    """The strict triangle NumPy reads besides the diagonal (lower for 'L'), as a 0/1 mask."""
    return (_np.tril if UPLO.upper() == "L" else _np.triu)(_np.ones((n, n), dtype), -1 if UPLO.upper() == "L" else 1)


def _hermitian_from_triangle(g, UPLO):
    """The Hermitian matrix NumPy's eigh sees in ``g``: its triangle, the real diagonal, the mirror."""
    n = _shape(g)[-1]
    t = multiply(g, _triangle(n, UPLO, _np.float64))
    d = multiply(g, _np.eye(n))
    return add(add(t, _mH(t)), real(d) if _dtype(g).kind == "c" else d)


def _onto_triangle(G, UPLO):
    """The adjoint of :func:`_hermitian_from_triangle`: tri(G + G^H) + Re diag(G)."""
    n = _shape(G)[-1]
    d = multiply(G, _np.eye(n))
    return add(multiply(add(G, _mH(G)), _triangle(n, UPLO, _np.float64)), real(d) if _dtype(G).kind == "c" else d)


def _eigh_jvp(g, ans, a, UPLO="L"):
    w, v = _eigh_parts(ans)
    m = matmul(_mH(v), matmul(_hermitian_from_triangle(g, UPLO), v))
    dw = _mdiagonal(m)
    if _dtype(dw).kind == "c":
        dw = real(dw)
    dv = matmul(v, multiply(_eigh_F(w), m))
    return concatenate([expand_dims(dw, -2), dv], axis=-2)


def _eigh_vjp(ans, a, UPLO="L"):
    w, v = _eigh_parts(ans)

    def vjp(g):
        gw, gv = g[..., 0, :], g[..., 1:, :]
        if _dtype(gw).kind == "c":
            gw = real(gw)
        inner_ = add(_mdiag(gw), multiply(_eigh_F(w), matmul(_mT(v), gv)))
        return _onto_triangle(matmul(_cj(v), matmul(inner_, _mT(v))), UPLO)

    return vjp


_eigh_p = primitive(_eigh, "eigh")
_eigh_p.defvjp(_eigh_vjp)
_eigh_p.defjvp(_eigh_jvp)


def eigh(a, UPLO="L"):
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix: ``(w, V)``.

    Real symmetric or complex Hermitian.  NumPy reads one triangle (``UPLO``) and
    the real part of the diagonal; the derivative is that of this function (as
    autograd's): a perturbation of the other triangle changes nothing, and the
    gradient lives on the triangle read (off-diagonal entries count twice, as
    they stand for two).  For a symmetric perturbation it is the usual one.
    The phase (sign) of each eigenvector is NumPy's choice and carries no
    derivative: ``w``, ``abs(V)`` and functions of ``V`` up to it are exact.
    At repeated eigenvalues the eigenvectors are not unique: the coupling terms
    1/(w_j - w_i) between (numerically) equal eigenvalues are set to 0 (never
    inf or NaN).  Derivatives of symmetric functions of the eigenvalues (``sum(f(w))``,
    ``trace``, norms) are then exact there; individual eigenvectors of a repeated
    eigenvalue have no derivative, and what is returned for them is this convention.
    """
    _square(a, "eigh")
    if not _traced(a):
        return _np.linalg.eigh(a, UPLO)
    w, v = _eigh_parts(_eigh_p(a, UPLO))
    return _EighResult(w, v)


def eigvalsh(a, UPLO="L"):
    """Eigenvalues of a symmetric matrix (see :func:`eigh` for the conventions)."""
    if not _traced(a):
        return _np.linalg.eigvalsh(a, UPLO)
    return eigh(a, UPLO)[0]


# ---- svd -----------------------------------------------------------------------


def _svd(a, full_matrices=True):
    u, s, vh = _np.linalg.svd(a, full_matrices=full_matrices)
    lead = s.shape[:-1]
    return _np.concatenate([u.reshape(lead + (-1,)), s, vh.reshape(lead + (-1,))], axis=-1)


def _svd_shapes(a, full_matrices):
    m, n = _shape(a)[-2:]
    k = builtins.min(m, n)
    if full_matrices:
        return [(m, m), (k,), (n, n)]
    return [(m, k), (k,), (k, n)]


def _svd_parts(ans, a, full_matrices):
    """U1 (m, k), s (k,), V1 (n, k), and the complements U2, V2 (None when empty)."""
    u, s, vh = _unpack(ans, _svd_shapes(a, full_matrices))
    k = _shape(s)[-1]
    if _dtype(s).kind == "c":  # packed with complex U and V; the singular values are real
        s = real(s)
    v = _mH(vh)
    u1, v1 = u[..., :, :k], v[..., :, :k]
    u2 = u[..., :, k:] if _shape(u)[-1] > k else None
    v2 = v[..., :, k:] if _shape(v)[-1] > k else None
    return u1, s, v1, u2, v2


def _svd_F(s):
    s2 = multiply(s, s)
    diff = subtract(expand_dims(s2, -2), expand_dims(s2, -1))  # s_j^2 - s_i^2
    scale = _np.max(getval(s2), axis=-1, keepdims=True)[..., None]
    return _gap_inverse(diff, scale)


def _s_inverse(s):
    scale = _np.max(getval(s), axis=-1, keepdims=True)
    return _gap_inverse(s, scale)


# The SVD of a complex matrix, A = U S V^H: with dP = U1^H dA V1, the rotations U1^H dU1 and
# V1^H dV1 are skew-Hermitian; off the diagonal they are F o (dP S + S dP^H) and F o (S dP + dP^H S),
# and on it only their difference is fixed, i Im(dP_ii) / s_i (the phase of a singular pair; the
# gauge taken puts it on U, V1^H dV1 has a zero diagonal).  For real matrices the same formulas,
# with ^H = ^T and no phase.  The VJP is the transpose of this map under Re(sum(G * dX)).


def _svd_jvp(g, ans, a, full_matrices=True):
    m, n = _shape(a)[-2:]
    u1, s, v1, u2, v2 = _svd_parts(ans, a, full_matrices)
    cplx = _dtype(a).kind == "c"
    F = _svd_F(s)
    dp = matmul(_mH(u1), matmul(g, v1))
    ds = _mdiagonal(dp)
    srow = expand_dims(s, -2)  # s_j along columns
    dps = multiply(dp, srow)  # dP S
    sdp = multiply(dp, _mT(srow))  # S dP
    du = matmul(u1, multiply(F, add(dps, _mH(dps))))
    dv = matmul(v1, multiply(F, add(sdp, _mH(sdp))))
    sinv = expand_dims(_s_inverse(s), -2)
    if cplx:
        du = add(du, multiply(u1, multiply(multiply(expand_dims(imag(ds), -2), sinv), 1j)))
        ds = real(ds)
    if m > n:
        du = add(du, multiply(subtract(matmul(g, v1), matmul(u1, dp)), sinv))
    if n > m:
        gtu = matmul(_mH(g), u1)
        dv = add(dv, multiply(subtract(gtu, matmul(v1, matmul(_mH(v1), gtu))), sinv))
    # complements (full_matrices): the gauge U2^H dU2 = 0, so dU2 = -U1 dU1^H U2
    if u2 is not None:
        du = concatenate([du, negative(matmul(u1, matmul(_mH(du), u2)))], axis=-1)
    if v2 is not None:
        dv = concatenate([dv, negative(matmul(v1, matmul(_mH(dv), v2)))], axis=-1)
    return _pack(du, ds, _mH(dv), nmat=(2, 1, 2))


def _svd_vjp(ans, a, full_matrices=True):
    m, n = _shape(a)[-2:]
    u1, s, v1, u2, v2 = _svd_parts(ans, a, full_matrices)
    cplx = _dtype(a).kind == "c"

    def vjp(g):
        gu, gs, gvh = _unpack(g, _svd_shapes(a, full_matrices))
        if cplx:
            gs = real(gs)
        gv = _mH(gvh)
        k = _shape(s)[-1]
        gu1, gv1 = gu[..., :, :k], gv[..., :, :k]
        if u2 is not None:  # through dU2 = -U1 dU1^H U2
            gu1 = subtract(gu1, matmul(_cj(u2), matmul(_mH(gu[..., :, k:]), _cj(u1))))
        if v2 is not None:
            gv1 = subtract(gv1, matmul(_cj(v2), matmul(_mH(gv[..., :, k:]), _cj(v1))))
        F = _svd_F(s)
        srow = expand_dims(s, -2)
        utg = matmul(_mT(u1), gu1)
        J = multiply(F, utg)
        K = multiply(F, matmul(_mT(v1), gv1))
        core = add(_mdiag(gs), add(multiply(add(J, _mH(J)), srow), multiply(_mT(srow), add(K, _mH(K)))))
        sinv = expand_dims(_s_inverse(s), -2)
        if cplx:  # the phase term i Im(dP_ii) / s_i
            core = add(core, _mdiag(multiply(multiply(imag(_mdiagonal(utg)), sinv[..., 0, :]), 1j)))
        out = matmul(_cj(u1), matmul(core, _mT(v1)))
        if m > n:
            t = subtract(gu1, matmul(_cj(u1), utg))
            out = add(out, matmul(multiply(t, sinv), _mT(v1)))
        if n > m:
            t = subtract(gv1, matmul(_cj(v1), matmul(_mT(v1), gv1)))
            out = add(out, matmul(_cj(u1), _mH(multiply(t, sinv))))
        return out

    return vjp


_svd_p = primitive(_svd, "svd")
_svd_p.defvjp(_svd_vjp)
_svd_p.defjvp(_svd_jvp)


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """Singular value decomposition ``a = U diag(s) Vh`` (s descending), as NumPy.

    Conventions where the SVD is not unique: between (numerically) equal singular
    values the coupling terms 1/(s_j^2 - s_i^2) are set to 0, and 1/s to 0 for
    zero singular values, so functions of ``s`` alone and of the subspaces are
    exact there (``s`` itself has the subgradient ``U1^T dA V1`` on its diagonal).
    With ``full_matrices=True`` and a non-square matrix the extra columns of U (or
    rows of Vh) are any orthonormal basis of the complement; their derivative is
    taken with the gauge ``U2^T dU2 = 0``.  ``hermitian`` is accepted for NumPy
    compatibility and ignored (the general algorithm gives the same values).
    """
    shape = _shape(a)
    if len(shape) < 2:
        raise ValueError(f"nablanet.numpy.linalg.svd: needs a matrix (at least 2 dimensions), got shape {shape}")
    if not _traced(a):
        return _np.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv, hermitian=hermitian)
    if not compute_uv:
        s = _unpack(_svd_p(a, False), _svd_shapes(a, False))[1]
        return real(s) if _dtype(s).kind == "c" else s
    u, s, vh = _unpack(_svd_p(a, bool(full_matrices)), _svd_shapes(a, bool(full_matrices)))
    if _dtype(s).kind == "c":
        s = real(s)
    return _SVDResult(u, s, vh)


def svdvals(x):
    """Singular values, descending (``svd(x, compute_uv=False)``)."""
    return svd(x, compute_uv=False)


# ---- qr ------------------------------------------------------------------------


def _qr(a):
    q, r = _np.linalg.qr(a, mode="reduced")
    lead = q.shape[:-2]
    return _np.concatenate([q.reshape(lead + (-1,)), r.reshape(lead + (-1,))], axis=-1)


def _qr_shapes(a):
    m, n = _shape(a)[-2:]
    k = builtins.min(m, n)
    return [(m, k), (k, n)]


def _r_inv_right(x, r):
    """x R^-1 for upper-triangular square R."""
    return _mT(_solve_p(_mT(r), _mT(x)))


def _phase_diag(x):
    """i Im(diag(x)) as a diagonal matrix: the phases of a complex QR (R has a real diagonal)."""
    return _mdiag(multiply(imag(_mdiagonal(x)), 1j))


def _qr_square_jvp(dx, q, r):
    """(dQ, dR) for X = Q R with R square (m >= n).

    Q^H dQ = Omega is skew-Hermitian and dR R^-1 upper triangular with a real
    diagonal, so Omega is the strict lower part of M = Q^H dX R^-1 minus its
    conjugate transpose, plus i Im(diag M) for complex X.
    """
    dx_rinv = _r_inv_right(dx, r)
    mm = matmul(_mH(q), dx_rinv)
    low = _tril_strict(mm)
    domega = subtract(low, _mH(low))
    if _dtype(mm).kind == "c":
        domega = add(domega, _phase_diag(mm))
    dq = add(matmul(q, subtract(domega, mm)), dx_rinv)
    dr = matmul(subtract(mm, domega), r)
    return dq, dr


def _tril_strict(x):
    n = _shape(x)[-1]
    return multiply(x, _np.tril(_np.ones((n, n)), -1).astype(_dtype(x)))


def _qr_square_vjp(gq, gr, q, r):
    b = subtract(matmul(_mT(q), gq), matmul(gr, _mT(r)))
    c = subtract(_tril_strict(subtract(b, _mH(b))), b)
    if _dtype(q).kind == "c":
        c = add(c, _phase_diag(b))
    return _mT(_solve_p(r, _mT(add(gq, matmul(_cj(q), c)))))  # (gQ + conj(Q) C) R^-T


def _qr_jvp(g, ans, a):
    m, n = _shape(a)[-2:]
    q, r = _unpack(ans, _qr_shapes(a))
    if m >= n:
        dq, dr = _qr_square_jvp(g, q, r)
    else:
        r1 = r[..., :, :m]
        dq, dr1 = _qr_square_jvp(g[..., :, :m], q, r1)
        y, dy = a[..., :, m:], g[..., :, m:]
        dr2 = add(matmul(_mH(dq), y), matmul(_mH(q), dy))
        dr = concatenate([dr1, dr2], axis=-1)
    return _pack(dq, dr, nmat=(2, 2))


def _qr_vjp(ans, a):
    m, n = _shape(a)[-2:]
    q, r = _unpack(ans, _qr_shapes(a))

    def vjp(g):
        gq, gr = _unpack(g, _qr_shapes(a))
        if m >= n:
            return _qr_square_vjp(gq, gr, q, r)
        y = a[..., :, m:]
        gr1, gr2 = gr[..., :, :m], gr[..., :, m:]
        gx = _qr_square_vjp(add(gq, matmul(_cj(y), _mH(gr2))), gr1, q, r[..., :, :m])
        return concatenate([gx, matmul(_cj(q), gr2)], axis=-1)

    return vjp


_qr_p = primitive(_qr, "qr")
_qr_p.defvjp(_qr_vjp)
_qr_p.defjvp(_qr_jvp)


def qr(a, mode="reduced"):
    """QR decomposition ``a = Q R`` (NumPy's signs: LAPACK's Householder QR).

    ``mode`` 'reduced' (default) and 'r' are differentiable for any shape;
    'complete' when ``m <= n`` (where it equals 'reduced').  The complete Q of a
    tall matrix has extra columns that are any basis of the complement, so it has
    no unique derivative and is refused, as is 'raw' (Householder reflectors).
    """
    shape = _shape(a)
    if len(shape) < 2:
        raise ValueError(f"nablanet.numpy.linalg.qr: needs a matrix (at least 2 dimensions), got shape {shape}")
    if not _traced(a):
        return _np.linalg.qr(a, mode=mode)
    m, n = shape[-2:]
    if mode == "raw" or (mode == "complete" and m > n):
        raise NotDifferentiableError(
            f"nablanet.numpy.linalg.qr: mode={mode!r} has no unique derivative"
            + (" (the complete Q of a tall matrix)" if mode == "complete" else "")
            + "; use mode='reduced'"
        )
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"nablanet.numpy.linalg.qr: unknown mode {mode!r}")
    q, r = _unpack(_qr_p(a), _qr_shapes(a))
    return r if mode == "r" else _QRResult(q, r)


# ---- eig -----------------------------------------------------------------------
#
# A = V diag(w) V^-1 with unit-norm columns of V (NumPy's), for any square matrix; w and V are
# complex in general, also for real A.  With P = V^-1 dA V: dw = diag(P) and, before the
# normalization, dV0 = V (F o P), F_ij = 1/(w_j - w_i) (0 at equal eigenvalues: the convention
# of eigh); keeping |v_j| = 1 removes v_j Re(v_j^H dv_j).  The phase of each eigenvector is
# NumPy's choice and has no derivative (functions of |V|, of w, or of V up to phase are exact).
# All of it is holomorphic in A except the normalization, so the VJP is the transpose map.


def _eig(a):
    w, v = _np.linalg.eig(a)
    return _np.concatenate([w, v.reshape(w.shape[:-1] + (-1,))], axis=-1)


def _eig_parts(ans, a):
    n = _shape(a)[-1]
    return _unpack(ans, [(n,), (n, n)])


def _eig_F(w):
    diff = subtract(expand_dims(w, -2), expand_dims(w, -1))  # w_j - w_i
    scale = _np.max(_np.abs(getval(w)), axis=-1, keepdims=True)[..., None]
    return _gap_inverse(diff, scale)


def _eig_jvp(g, ans, a):
    w, v = _eig_parts(ans, a)
    p = _solve_p(v, matmul(g, v))
    dw = _mdiagonal(p)
    dv = matmul(v, multiply(_eig_F(w), p))
    dv = subtract(dv, multiply(v, expand_dims(real(_mdiagonal(matmul(_mH(v), dv))), -2)))
    return _pack(dw, dv, nmat=(1, 2))


def _eig_vjp(ans, a):
    w, v = _eig_parts(ans, a)
    n = _shape(a)[-1]

    def vjp(g):
        gw, gv = _unpack(g, [(n,), (n, n)])
        gv = subtract(gv, multiply(_cj(v), expand_dims(real(_mdiagonal(matmul(_mT(v), gv))), -2)))
        gp = add(_mdiag(gw), multiply(_eig_F(w), matmul(_mT(v), gv)))
        return _solve_p(_mT(v), matmul(gp, _mT(v)))

    return vjp


_eig_p = primitive(_eig, "eig")
_eig_p.defvjp(_eig_vjp)
_eig_p.defjvp(_eig_jvp)


def eig(a):
    """Eigenvalues and unit-norm eigenvectors ``(w, V)`` of a square matrix, as ``numpy.linalg.eig``.

    Differentiable for real and complex ``a`` where the eigenvalues are distinct
    (coupling terms between numerically equal eigenvalues are set to 0, as in
    :func:`eigh`).  Each eigenvector's phase (sign, for real ones) is NumPy's
    choice and carries no derivative: ``w``, ``abs(V)`` and functions of V up to
    the phase of its columns are exact.  The results are complex unless NumPy
    returns real ones (a real matrix with real eigenvalues).
    """
    _square(a, "eig")
    if not _traced(a):
        return _np.linalg.eig(a)
    w, v = _eig_parts(_eig_p(a), a)
    return _EigResult(w, v)


def eigvals(a):
    """Eigenvalues of a square matrix (``eig(a)[0]``)."""
    return _np.linalg.eigvals(a) if not _traced(a) else eig(a)[0]


# ---- pinv ----------------------------------------------------------------------


def _pinv(a, rcond=None, hermitian=False):
    return _np.linalg.pinv(a, hermitian=hermitian) if rcond is None else _np.linalg.pinv(a, rcond, hermitian)


def _pinv_jvp(g, ans, a, rcond=None, hermitian=False):
    p = ans
    eye_m, eye_n = _eye(_shape(a)[-2], a), _eye(_shape(a)[-1], a)
    t1 = negative(matmul(p, matmul(g, p)))
    t2 = matmul(matmul(p, _mH(p)), matmul(_mH(g), subtract(eye_m, matmul(a, p))))
    t3 = matmul(subtract(eye_n, matmul(p, a)), matmul(_mH(g), matmul(_mH(p), p)))
    return add(t1, add(t2, t3))


def _pinv_vjp(ans, a, rcond=None, hermitian=False):
    p = ans

    def vjp(g):
        eye_m, eye_n = _eye(_shape(a)[-2], a), _eye(_shape(a)[-1], a)
        # the transpose of the tangent map under Re(sum(G * dX)): the terms in dA^H conjugate
        pc, ac = _cj(p), _cj(a)
        t1 = negative(matmul(_mT(p), matmul(g, _mT(p))))
        t2 = matmul(subtract(eye_m, matmul(ac, pc)), matmul(_mH(g), matmul(pc, _mT(p))))
        t3 = matmul(matmul(_mT(p), pc), matmul(_mH(g), subtract(eye_n, matmul(pc, ac))))
        return unbroadcast(add(t1, add(t2, t3)), _shape(a))

    return vjp


_pinv_p = primitive(_pinv, "pinv")
_pinv_p.defvjp(_pinv_vjp)
_pinv_p.defjvp(_pinv_jvp)


def pinv(a, rcond=None, hermitian=False):
    """Moore-Penrose pseudo-inverse.

    Differentiable where the rank is locally constant (full rank, or any fixed
    rank with the small singular values cut by ``rcond``); the rank jumps are
    discontinuities of the pseudo-inverse itself.
    """
    if len(_shape(a)) < 2:
        raise ValueError(f"nablanet.numpy.linalg.pinv: needs a matrix, got shape {_shape(a)}")
    return _pinv_p(a, rcond, hermitian)


# ---- matrix_power ----------------------------------------------------------------


def matrix_power(a, n):
    """``a`` multiplied by itself ``n`` times (repeated squaring); negative n uses inv(a)."""
    _square(a, "matrix_power")
    n = _np.asarray(n)
    if n.dtype.kind not in "iu" or n.ndim:
        raise TypeError(f"nablanet.numpy.linalg.matrix_power: exponent must be an integer, got {n!r}")
    n = int(n)
    if not _traced(a):
        return _np.linalg.matrix_power(a, n)
    if n == 0:
        return broadcast_to(_eye(_shape(a)[-1], a), _shape(a))
    if n < 0:
        a, n = inv(a), -n
    result, base = None, a
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


# ---- norms ---------------------------------------------------------------------


def _l2(x, axis, keepdims):
    sq = x.real * x.real + x.imag * x.imag if _np.iscomplexobj(x) else x * x
    return _np.sqrt(_np.sum(sq, axis=axis, keepdims=keepdims))


def _l2_ratio(ans, x, axis, keepdims):
    """conj(x) / ||x|| with 0 where the norm is 0 (the subgradient chosen at zero)."""
    a = _keep(ans, _shape(x), axis, keepdims)
    zero = getval(a) == 0
    if _dtype(x).kind == "c":
        x = conj(x)
    return where(zero, 0.0, divide(x, where(zero, 1.0, a)))


def _l2_jvp(g, ans, x, axis, keepdims):
    t = multiply(g, _l2_ratio(ans, x, axis, keepdims))
    return sum(real(t) if _dtype(x).kind == "c" else t, axis=axis, keepdims=keepdims)


_l2_p = primitive(_l2, "norm")
_l2_p.defvjp(
    lambda ans, x, axis, keepdims: lambda g: multiply(_keep(g, _shape(x), axis, keepdims), _l2_ratio(ans, x, axis, keepdims))
)
_l2_p.defjvp(_l2_jvp)


def _pnorm(x, p, axis, keepdims):
    """(sum |x|^p)^(1/p) along ``axis`` with derivative 0 at zero entries (p < 1) and at zero."""
    ax = abs(x)
    nz = getval(ax) != 0
    t = where(nz, power(where(nz, ax, 1.0), p), 0.0)
    s = sum(t, axis=axis, keepdims=keepdims)
    zero = getval(s) == 0
    if p < 0:  # NumPy: a zero entry makes the sum infinite and the norm 0
        zero = zero | ~_np.all(nz, axis=axis, keepdims=keepdims)
    return where(zero, 0.0, power(where(zero, 1.0, s), 1.0 / p))


def _vector_norm(x, ord, axis, keepdims):
    if ord is None or ord == 2:
        return _l2_p(x, axis, keepdims)
    if ord == _np.inf:
        return max(abs(x), axis=axis, keepdims=keepdims)
    if ord == -_np.inf:
        return min(abs(x), axis=axis, keepdims=keepdims)
    if ord == 0:
        return _np.sum(getval(x) != 0, axis=axis, keepdims=keepdims).astype(_np.result_type(_dtype(x), _np.float64))
    if ord == 1:
        return sum(abs(x), axis=axis, keepdims=keepdims)
    if isinstance(ord, str):
        raise ValueError(f"nablanet.numpy.linalg.norm: invalid norm order {ord!r} for vectors")
    return _pnorm(x, float(ord), axis, keepdims)


def _matrix_norm(x, ord, row, col, keepdims):
    nd = _ndim(x)
    if ord in (None, "fro", "f"):
        r = _l2_p(x, (row, col), keepdims)
        return r
    if ord in (1, -1, _np.inf, -_np.inf):
        red = max if ord in (1, _np.inf) else min
        sum_ax, ext_ax = (row, col) if ord in (1, -1) else (col, row)
        r = red(sum(abs(x), axis=sum_ax, keepdims=True), axis=ext_ax, keepdims=True)
    elif ord in (2, -2, "nuc"):
        s = svd(_to_last(x, row, col), compute_uv=False)
        r = sum(s, axis=-1) if ord == "nuc" else s[..., 0] if ord == 2 else s[..., -1]
        r = expand_dims(expand_dims(r, -1), -1)
        r = _from_last(r, nd, row, col)
    else:
        raise ValueError(f"nablanet.numpy.linalg.norm: invalid norm order {ord!r} for matrices")
    return r if keepdims else squeeze(r, axis=(row, col))


def _to_last(x, row, col):
    nd = _ndim(x)
    rest = [k for k in range(nd) if k not in (row, col)]
    return transpose(x, rest + [row, col])


def _from_last(r, nd, row, col):
    """Inverse of :func:`_to_last` for an array whose last two axes have size 1."""
    rest = [k for k in range(nd) if k not in (row, col)]
    perm = rest + [row, col]
    return transpose(r, list(_np.argsort(perm)))


def norm(x, ord=None, axis=None, keepdims=False):
    """Vector or matrix norm, exactly as ``numpy.linalg.norm`` (every ``ord``/``axis``).

    Derivatives where the norm is not differentiable follow one convention, the
    subgradient through ``abs`` (derivative 0 at 0): the 2-norm (and 'fro') of a
    zero vector has gradient 0, ``ord=inf``/``-inf``/1 split ties evenly as
    ``max``/``min`` do, ``ord=0`` counts non-zeros and has derivative 0, a general
    ``p`` gives zero entries derivative 0.  Matrix 2/-2/'nuc' norms go through
    :func:`svd` (see its conventions for repeated singular values).
    """
    x = _arraylike(x)  # a list of traced values: norm([x, y])
    if not _traced(x):
        return _np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    nd = _ndim(x)
    if _dtype(x).kind not in "fc":
        x = astype(x, _np.float64)
    if axis is None:
        if ord is None:
            r = _l2_p(x, None, False)
            return reshape(r, (1,) * nd) if keepdims else r
        if nd == 1:
            return _vector_norm(x, ord, 0, keepdims)
        if nd == 2:
            return _matrix_norm(x, ord, 0, 1, keepdims)
        raise ValueError(f"nablanet.numpy.linalg.norm: ord={ord!r} needs a 1-d or 2-d array or an axis, got shape {_shape(x)}")
    if isinstance(axis, (int, _np.integer)):
        axis = (int(axis),)
    axis = tuple(int(k) % nd for k in axis)
    if len(axis) == 1:
        return _vector_norm(x, ord, axis[0], keepdims)
    if len(axis) == 2:
        if axis[0] == axis[1]:
            raise ValueError("nablanet.numpy.linalg.norm: duplicate axes given")
        return _matrix_norm(x, ord, axis[0], axis[1], keepdims)
    raise ValueError(f"nablanet.numpy.linalg.norm: axis must be an int or a pair, got {axis}")


def vector_norm(x, axis=None, keepdims=False, ord=2):
    """``numpy.linalg.vector_norm``: the norm of x as a flat vector (or along ``axis``)."""
    if not _traced(x):
        return _np.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord)
    if axis is None:
        r = _vector_norm(ravel(x), ord, 0, False)
        return reshape(r, (1,) * _ndim(x)) if keepdims else r
    if isinstance(axis, (int, _np.integer)):
        return _vector_norm(x, ord, int(axis) % _ndim(x), keepdims)
    axis = tuple(int(k) % _ndim(x) for k in axis)
    rest = [k for k in range(_ndim(x)) if k not in axis]
    xt = transpose(x, rest + list(axis))
    r = _vector_norm(reshape(xt, tuple(_shape(x)[k] for k in rest) + (-1,)), ord, len(rest), False)
    if keepdims:
        r = reshape(r, tuple(1 if k in axis else _shape(x)[k] for k in range(_ndim(x))))
    return r


def matrix_norm(x, keepdims=False, ord="fro"):
    """``numpy.linalg.matrix_norm``: the norm of each matrix in the last two axes."""
    if not _traced(x):
        return _np.linalg.matrix_norm(x, keepdims=keepdims, ord=ord)
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


def matrix_transpose(x):
    """Swap the last two axes."""
    return _mT(x)


def vecdot(x1, x2, axis=-1):
    """Dot product of vectors along ``axis`` (broadcasting the rest)."""
    return sum(multiply(x1, x2), axis=axis)


def multi_dot(arrays, *, out=None):
    """``A @ B @ C ...`` for a sequence of arrays (the first may be 1-d, as may the last)."""
    if out is not None:
        raise TypeError("nablanet.numpy.linalg.multi_dot: out= is not supported on traced values")
    arrays = list(arrays)
    if len(arrays) < 2:
        raise ValueError("nablanet.numpy.linalg.multi_dot: needs at least two arrays")
    result = arrays[0]
    for a in arrays[1:]:
        result = dot(result, a)
    return result


def cond(x, p=None):
    """Condition number: ``s_max / s_min`` (p None or 2), ``s_min / s_max`` (-2), else ``norm(x, p) norm(inv(x), p)``."""
    if not _traced(x):
        return _np.linalg.cond(x, p)
    if p in (None, 2, -2):
        s = svd(x, compute_uv=False)
        return divide(s[..., 0], s[..., -1]) if p != -2 else divide(s[..., -1], s[..., 0])
    return multiply(norm(x, p, axis=(-2, -1)), norm(inv(x), p, axis=(-2, -1)))


def matrix_rank(A, *args, **kwargs):
    """Rank (an integer: derivative 0); accepts traced values."""
    return _np.linalg.matrix_rank(getval(A), *args, **{k: getval(v) for k, v in kwargs.items()})


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """Cross product of 3-vectors (or the z component for 2-vectors) along the given axes, as ``numpy.cross``."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = moveaxis(a, axisa, -1), moveaxis(b, axisb, -1)
    na, nb = _shape(a)[-1], _shape(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError(f"cross: vectors must have 2 or 3 components, got {na} and {nb}")
    a0, a1 = a[..., 0], a[..., 1]
    b0, b1 = b[..., 0], b[..., 1]
    z = subtract(multiply(a0, b1), multiply(a1, b0))
    if na == 2 and nb == 2:
        return z
    a2 = a[..., 2] if na == 3 else 0.0
    b2 = b[..., 2] if nb == 3 else 0.0
    x = subtract(multiply(a1, b2), multiply(a2, b1))
    y = subtract(multiply(a2, b0), multiply(a0, b2))
    return moveaxis(stack([x, y, z], axis=-1), -1, axisc)


def _lifting_lists(f):
    """``f`` taking (nested) lists or tuples that hold traced values, as NumPy takes array-likes.

    These functions read their arguments' shapes before any primitive sees them, so such a
    list is stacked into a traced array first (plain lists are left to the function).
    """

    @functools.wraps(f)
    def lifted(*args, **kwargs):
        if builtins.any((type(a) is list or type(a) is tuple) and _contains_tracer(a) for a in args):
            args = [_arraylike(a) if type(a) is list or type(a) is tuple else a for a in args]
        return f(*args, **kwargs)

    return lifted


for _name in __all__ + list(_TOP_LEVEL):
    if _name != "multi_dot" and not isinstance(globals()[_name], Primitive):  # multi_dot's list is of arrays
        globals()[_name] = _lifting_lists(globals()[_name])


def __getattr__(name):
    """Other ``numpy.linalg`` names come from NumPy (on traced values they raise NotDifferentiableError)."""
    return getattr(_np.linalg, name)


# NumPy's own functions, routed here by nablanet.numpy's __array_function__ dispatch.
_NUMPY_DISPATCH = {
    getattr(_np.linalg, name): globals()[name]
    for name in (
        "inv solve det slogdet cholesky eig eigvals eigh eigvalsh svd svdvals qr pinv matrix_power norm "
        "vector_norm matrix_norm matrix_transpose vecdot multi_dot cond matrix_rank cross"
    ).split()
    if hasattr(_np.linalg, name)
}
if hasattr(_np.linalg, "matmul"):  # NumPy 2's array-API spellings
    _NUMPY_DISPATCH[_np.linalg.matmul] = matmul
    _NUMPY_DISPATCH[_np.linalg.tensordot] = tensordot
    _NUMPY_DISPATCH[_np.linalg.outer] = outer
    _NUMPY_DISPATCH[_np.linalg.trace] = lambda x, /, *, offset=0, dtype=None: trace(x, offset, -2, -1, dtype)
