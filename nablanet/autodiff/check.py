"""Gradient checking: both modes against central differences, to any order."""

from __future__ import annotations

import numpy as np

from .transforms import jvp, vjp
from .tree import tree_flatten, tree_map, tree_unflatten

__all__ = ["check_grads", "GradientCheckError"]

_MODE_NAMES = {"fwd": "forward-mode (JVP)", "rev": "reverse-mode (VJP)"}


class GradientCheckError(AssertionError):
    """A derivative rule disagrees with central finite differences."""


def _is_float_tree(x):
    leaves = tree_flatten(x)[0]
    return bool(leaves) and all(np.result_type(v).kind in "fc" for v in leaves)


def _to64(x):
    def up(v):
        kind = np.result_type(v).kind
        return np.asarray(v, dtype=np.float64 if kind == "f" else np.complex128) if kind in "fc" else v

    return tree_map(up, x)


def _flat(tree):
    """The leaves in one vector: float64, or complex128 when a leaf is complex."""
    leaves = tree_flatten(tree)[0]
    if not leaves:
        return np.zeros(0)
    dt = np.complex128 if any(np.result_type(v).kind == "c" for v in leaves) else np.float64
    return np.concatenate([np.ravel(np.asarray(v, dtype=dt)) for v in leaves])


def _real_view(v):
    """A complex vector as its real and imaginary parts side by side (so both are compared)."""
    v = np.atleast_1d(v)
    return np.concatenate([v.real, v.imag]) if np.iscomplexobj(v) else v


def _check_shapes(got, like, what, report):
    """A derivative has the structure and leaf shapes of what it is the derivative of: ``_compare`` and ``_pair``
    flatten and broadcast, so a cotangent of the wrong shape (c column sums for a scalar) would pass them."""
    (gl, gd), (ll, ld) = tree_flatten(got), tree_flatten(like)
    shapes, want = [np.shape(v) for v in gl], [np.shape(v) for v in ll]
    if gd != ld or shapes != want:
        raise GradientCheckError(f"{report}: the {what} has shapes {shapes}, expected {want}")


def _pair(a, b):
    """Re(sum(a * b)): the real pairing of a cotangent with a tangent (autograd's convention)."""
    return np.real(np.sum(a * b))


def _random_like(tree, rng):
    """A random direction like ``tree``: complex leaves move along their real and imaginary parts."""
    leaves, treedef = tree_flatten(tree)

    def one(v):
        r = rng.standard_normal(np.shape(v))
        return r + 1j * rng.standard_normal(np.shape(v)) if np.result_type(v).kind == "c" else r

    return tree_unflatten(treedef, [one(v) for v in leaves])


def _axpy(a, x, y):
    return tree_map(lambda xi, yi: yi + a * xi, x, y)


def _compare(analytic, numeric, rtol, atol, report):
    if np.iscomplexobj(analytic) or np.iscomplexobj(numeric):  # compare real and imaginary parts
        analytic, numeric = np.asarray(analytic, complex), np.asarray(numeric, complex)
    analytic, numeric = _real_view(analytic), _real_view(numeric)
    err = np.abs(analytic - numeric)
    bad = err > atol + rtol * np.maximum(np.abs(analytic), np.abs(numeric))
    if np.any(bad) or not np.all(np.isfinite(analytic)):
        k = int(np.argmax(np.where(np.isfinite(err), err, np.inf)))
        rel = err[k] / max(np.abs(numeric[k]), 1e-300)
        raise GradientCheckError(
            f"{report}\n"
            f"  analytic : {np.array2string(analytic[:8], precision=10)}\n"
            f"  numerical: {np.array2string(numeric[:8], precision=10)}\n"
            f"  worst entry {k}: analytic {analytic[k]:.10g}, numerical {numeric[k]:.10g}, "
            f"abs error {err[k]:.3g}, rel error {rel:.3g}"
        )


def _check(f, args, order, modes, eps, rtol, atol, rng, name, chain):
    for i, x in enumerate(args):
        if not _is_float_tree(x):
            continue

        def f_i(xi, i=i):
            a = list(args)
            a[i] = xi
            return f(*a)

        v = _random_like(x, rng)
        numeric = (_flat(f_i(_axpy(eps, v, x))) - _flat(f_i(_axpy(-eps, v, x)))) / (2 * eps)
        where = (
            f"check_grads: ({{}}) check of {name} failed: the {{}} derivative with respect to argument {i} "
            f"(shape {np.shape(x) if not isinstance(x, (dict, list, tuple)) else 'pytree'}) "
            f"disagrees with central differences"
            + (f" (order {len(chain) + 1}, differentiating: {' -> '.join(chain)})" if chain else "")
        )
        u = None
        if "fwd" in modes:
            out, t = jvp(f_i, (x,), (v,))
            _check_shapes(t, out, "tangent of the output", where.format("JVP", _MODE_NAMES["fwd"]))
            _compare(_flat(t), numeric, rtol, atol, where.format("JVP", _MODE_NAMES["fwd"]))
        if "rev" in modes:
            out, vjp_fn = vjp(f_i, x)
            u = _random_like(out, rng)
            ct = vjp_fn(u)[0]
            _check_shapes(ct, x, "cotangent of the argument", where.format("VJP", _MODE_NAMES["rev"]))
            _compare(_pair(_flat(ct), _flat(v)), _pair(_flat(u), numeric), rtol, atol, where.format("VJP", _MODE_NAMES["rev"]))
        if order > 1:
            # As autograd's check: the derivative function (x, v) -> J v, or (x, u) -> u^T J, is
            # checked with respect to x and to the tangent/cotangent too, so a rule whose own
            # derivative in g is wrong (reached in second-order code whenever g depends on x)
            # is caught even on a linear primitive.
            for mode in modes:
                if mode == "fwd":

                    def df(*a, i=i):
                        *a, t = a
                        return jvp(lambda xi: f(*a[:i], xi, *a[i + 1 :]), (a[i],), (t,))[1]

                    extra, prefix = v, "jvp"
                else:
                    if u is None:
                        u = _random_like(vjp(f_i, x)[0], rng)

                    def df(*a, i=i):
                        *a, w = a
                        return vjp(lambda xi: f(*a[:i], xi, *a[i + 1 :]), a[i])[1](w)[0]

                    extra, prefix = u, "vjp"
                _check(df, list(args) + [extra], order - 1, modes, eps, rtol, atol, rng, f"{prefix}_{name}",
                       chain + [_MODE_NAMES[mode]])


def _is_argnum(a):
    """autograd's second positional argument: an argument number or a tuple/list of them."""
    if isinstance(a, bool):
        return False
    if isinstance(a, int):
        return True
    return isinstance(a, (tuple, list)) and bool(a) and all(isinstance(i, int) and not isinstance(i, bool) for i in a)


def check_grads(f, *pos, order=2, modes=("fwd", "rev"), eps=1e-6, rtol=1e-5, atol=1e-6, seed=0, argnum=None):
    """Check ``f``'s derivatives now, ``check_grads(f, args)``, or autograd's way, ``check_grads(f)(*args)``.

    The second form (``check_grads(f, argnum=0, modes=..., order=2)(*args, **kwargs)``,
    with autograd's positional order ``f, argnum, modes``) returns a checker
    that checks the arguments numbered ``argnum`` (the first by default) of
    ``f(*args, **kwargs)``.  See :func:`_check_grads` for what is checked.
    """
    if pos and not _is_argnum(pos[0]):
        args, rest = pos[0], pos[1:]
        if len(rest) > 2:
            raise TypeError("check_grads(f, args, order, modes): too many positional arguments")
        order = rest[0] if rest else order
        modes = rest[1] if len(rest) > 1 else modes
        return _check_grads(f, args, order, modes, eps, rtol, atol, seed)
    if len(pos) > 2:
        raise TypeError("check_grads(f, argnum, modes): too many positional arguments")
    nums = pos[0] if pos else (0 if argnum is None else argnum)
    modes = pos[1] if len(pos) > 1 else modes

    def checker(*args, **kwargs):
        sel = (nums,) if isinstance(nums, int) else tuple(nums)
        sel = tuple(i % len(args) for i in sel)

        def g(*xs):
            a = list(args)
            for i, x in zip(sel, xs):
                a[i] = x
            return f(*a, **kwargs)

        g.__name__ = getattr(f, "__name__", "function")
        _check_grads(g, tuple(args[i] for i in sel), order, modes, eps, rtol, atol, seed)

    return checker


def _check_grads(f, args, order=2, modes=("fwd", "rev"), eps=1e-6, rtol=1e-5, atol=1e-6, seed=0):
    """Check ``f``'s derivatives in both modes against central differences.

    Every floating-point argument (converted to float64, or complex128) is
    checked along a random direction ``v`` (complex arguments along random real
    and imaginary parts): forward mode compares ``J v`` with
    ``(f(x + eps v) - f(x - eps v)) / (2 eps)``, reverse mode compares
    ``u . (J^T ...)`` pairs ``Re<vjp(u), v>`` with ``Re<u, J v>`` (for
    complex values this is autograd's convention: ``vjp(u)`` is the adjoint of
    the real loss ``Re(sum(u * f(x)))``).  With
    ``order=k`` the derivative functions themselves are checked the same way,
    in every combination of modes, down to order ``k``.

    Parameters
    ----------
    f : callable
        The function; outputs may be arrays or pytrees.
    args : tuple
        Its positional arguments (a single array is taken as one argument).
        Integer arguments are passed through unchecked.
    order : int
        Highest order of derivative to check.
    modes : tuple of {"fwd", "rev"}
        Which modes to check.

    Raises
    ------
    GradientCheckError
        Naming the mode, the argument and the order, with the analytic and
        numerical values side by side.
    """
    if not isinstance(args, (tuple, list)):
        args = (args,)
    for m in modes:
        if m not in _MODE_NAMES:
            raise ValueError(f"check_grads: unknown mode {m!r}; use 'fwd' and/or 'rev'")
    if order < 1:
        raise ValueError("check_grads: order must be at least 1")
    args = [_to64(a) for a in args]
    name = getattr(f, "__name__", None) or repr(f)
    _check(f, args, order, tuple(modes), eps, rtol, atol, np.random.default_rng(seed), name, [])
