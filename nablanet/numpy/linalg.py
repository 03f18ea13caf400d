"""Linear algebra: products (``matmul``, ``dot``, ``einsum``...) and ``nablanet.numpy.linalg``.

Each primitive's VJP and JVP sit beside it and are written with differentiable
functions, so they can be differentiated again.  The products are re-exported
at the top of :mod:`nablanet.numpy` (``anp.matmul``, ``anp.einsum``); the
``numpy.linalg`` functions live here as ``anp.linalg.inv`` and so on.
"""

from __future__ import annotations

import builtins
import string

import numpy as _np

from ._primitives import (
    _dtype,
    _ndim,
    _shape,
    broadcast_to,
    expand_dims,
    multiply,
    primitive,
    ravel,
    reshape,
    sum,
    swapaxes,
    transpose,
    unbroadcast,
)

# Functions that belong at the top of nablanet.numpy (anp.matmul, anp.einsum...).
_TOP_LEVEL = ("matmul", "dot", "outer", "inner", "vdot", "einsum", "trace")



def _mT(x):
    return swapaxes(x, -1, -2)


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
    """Dot product of arrays of at most two dimensions (a scalar operand multiplies)."""
    an, bn = _ndim(a), _ndim(b)
    if an == 0 or bn == 0:
        return multiply(a, b)
    if an > 2 or bn > 2:
        raise NotImplementedError("nablanet.numpy.dot takes arrays of at most 2 dimensions; use matmul or einsum")
    return matmul(a, b)


def outer(a, b):
    """Outer product of two vectors (inputs are flattened, as in NumPy)."""
    return multiply(reshape(a, (-1, 1)), reshape(b, (1, -1)))


def inner(a, b):
    """Sum product over the last axes: ``out[i..., j...] = sum(a[i..., :] * b[j..., :])``."""
    an, bn = _ndim(a), _ndim(b)
    if an == 0 or bn == 0:
        return multiply(a, b)
    a = reshape(a, _shape(a)[:-1] + (1,) * (bn - 1) + _shape(a)[-1:])
    return sum(multiply(a, b), axis=-1)


def vdot(a, b):
    return sum(multiply(ravel(a), ravel(b)))


def _einsum_parse(subscripts, shapes):
    """Explicit subscripts (``'ij,jk->ik'``) with any ``...`` spelled out as letters."""
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        ins, out = subscripts.split("->")
        ins = ins.split(",")
    else:
        ins = subscripts.split(",")
        letters = "".join(ins).replace(".", "")
        out = ("..." if any("..." in s for s in ins) else "") + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1)
        )
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
        ins = [s.replace("...", ell[nell - (len(shp) - (len(s) - 3)):]) if "..." in s else s for s, shp in zip(ins, shapes)]
        out = out.replace("...", ell)
    return ins, out


def _einsum(subscripts, *operands):
    return _np.einsum(subscripts, *operands)


def _einsum_vjp(argnum, ans, subscripts, *operands):
    i = argnum - 1
    ins, out = _einsum_parse(subscripts, [_shape(o) for o in operands])
    target = ins[i]
    if len(set(target)) != len(target):
        raise NotImplementedError(f"einsum: no derivative for a repeated index within one operand ('{target}')")
    others = [s for k, s in enumerate(ins) if k != i]
    reachable = set(out).union(*others) if others else set(out)
    kept = "".join(c for c in target if c in reachable)

    def vjp(g):
        spec = ",".join([out] + others) + "->" + kept
        r = _einsum_p(spec, g, *[o for k, o in enumerate(operands) if k != i])
        r = unbroadcast(r, tuple(_shape(operands[i])[target.index(c)] for c in kept))  # size-1 '...' axes
        if kept != target:  # letters summed in this operand alone: broadcast back
            shape = tuple(_shape(operands[i])[target.index(c)] if c in kept else 1 for c in target)
            r = broadcast_to(reshape(transpose(r, [kept.index(c) for c in target if c in kept]), shape), _shape(operands[i]))
        return r

    return vjp


_einsum_p = primitive(_einsum, "einsum")
_einsum_p.vjps["*"] = _einsum_vjp
_einsum_p.jvps["*"] = lambda argnum, g, ans, subscripts, *ops: _einsum_p(
    subscripts, *[g if k == argnum - 1 else o for k, o in enumerate(ops)]
)


def einsum(subscripts, *operands):
    """Einstein summation, differentiable in every operand."""
    if not isinstance(subscripts, str):
        raise TypeError("nablanet.numpy.einsum takes the subscripts as a string first")
    return _einsum_p(subscripts, *operands)


def trace(a, offset=0, axis1=0, axis2=1):
    if offset or (axis1, axis2) != (0, 1) or _ndim(a) != 2:
        raise NotImplementedError("nablanet.numpy.trace supports the main diagonal of a 2-d array")
    return sum(multiply(a, _np.eye(*_shape(a), dtype=_dtype(a))))


def __getattr__(name):
    """Other ``numpy.linalg`` names come from NumPy (on traced values they raise NotDifferentiableError)."""
    return getattr(_np.linalg, name)
