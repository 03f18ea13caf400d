"""nablanet.numpy.linalg and the products (dot, tensordot, einsum...), checked in both modes.

One table of cases, one checker: each case is ``(function of a namespace, inputs)``;
the same function runs on NumPy (the value reference), on nablanet (values plus
``check_grads`` in both modes to order 2) and, where HIPS autograd has the function,
on autograd (reverse-mode gradients compared).  Edge points (singular matrices,
repeated eigen/singular values, norms at zero) are pinned down below the table.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp
from nablanet.autodiff.core import NotDifferentiableError, Tracer
from nablanet.autodiff.tree import tree_flatten
from tests.numpy_cases import both_modes_grad

try:
    import autograd
    import autograd.numpy as agnp
except ImportError:  # pragma: no cover - autograd is a test extra
    autograd = agnp = None


def rng_for(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def sym(m, a):
    """The symmetric part, written with namespace ``m`` (so it is traced too)."""
    return (a + m.swapaxes(a, -1, -2)) / 2.0


def spd(rng, shape):
    """A well-conditioned symmetric positive-definite (stack of) matrix."""
    x = rng.standard_normal(shape)
    n = shape[-1]
    return x @ np.swapaxes(x, -1, -2) / n + np.eye(n)


def spread(rng, shape):
    """A matrix with well separated singular values (so U, V are locally unique)."""
    m, n = shape[-2:]
    k = min(m, n)
    u = np.linalg.qr(rng.standard_normal(shape[:-2] + (m, m)))[0][..., :k]
    v = np.linalg.qr(rng.standard_normal(shape[:-2] + (n, n)))[0][..., :k]
    s = np.linspace(3.0, 1.0, k)
    return (u * s) @ np.swapaxes(v, -1, -2)


def gen(kind, shape):
    rng = rng_for(kind, shape)
    if kind == "n":
        return rng.standard_normal(shape)
    if kind == "spd":
        return spd(rng, shape)
    if kind == "wc":  # well conditioned general square
        return rng.standard_normal(shape) * 0.3 + 2.0 * np.eye(shape[-1])
    if kind == "sv":
        return spread(rng, shape)
    raise ValueError(kind)


# id -> (fun(m, *xs), [(kind, shape), ...], compare with autograd?)
CASES = {
    # products (autograd's einsum has no rule for a letter repeated within one operand)
    "matmul_nd": (lambda m, a, b: m.matmul(a, b), [("n", (2, 1, 3, 4)), ("n", (3, 4, 2))], True),
    "dot_2d": (lambda m, a, b: m.dot(a, b), [("n", (3, 4)), ("n", (4, 2))], True),
    "dot_nd_vec": (lambda m, a, b: m.dot(a, b), [("n", (2, 3, 4)), ("n", (4,))], True),
    "dot_nd_nd": (lambda m, a, b: m.dot(a, b), [("n", (2, 3, 4)), ("n", (5, 4, 2))], True),
    "dot_vec_nd": (lambda m, a, b: m.dot(a, b), [("n", (3,)), ("n", (2, 3, 4))], True),
    "inner_nd": (lambda m, a, b: m.inner(a, b), [("n", (2, 3, 4)), ("n", (5, 4))], True),
    "vdot": (lambda m, a, b: m.vdot(a, b), [("n", (2, 3)), ("n", (6,))], False),
    "outer_nd": (lambda m, a, b: m.outer(a, b), [("n", (2, 3)), ("n", (4,))], False),
    "kron_2d": (lambda m, a, b: m.kron(a, b), [("n", (2, 3)), ("n", (2, 2))], True),
    "kron_mixed": (lambda m, a, b: m.kron(a, b), [("n", (3,)), ("n", (2, 2))], True),
    "kron_3d": (lambda m, a, b: m.kron(a, b), [("n", (2, 1, 2)), ("n", (1, 3, 2))], False),
    "tensordot_2": (lambda m, a, b: m.tensordot(a, b), [("n", (2, 3, 4)), ("n", (3, 4, 2))], True),
    "tensordot_0": (lambda m, a, b: m.tensordot(a, b, axes=0), [("n", (2, 3)), ("n", (2,))], True),
    "tensordot_1": (lambda m, a, b: m.tensordot(a, b, 1), [("n", (2, 3)), ("n", (3, 2))], True),
    "tensordot_pairs": (lambda m, a, b: m.tensordot(a, b, axes=([0, 2], [2, 0])), [("n", (2, 3, 4)), ("n", (4, 5, 2))], True),
    "tensordot_ints": (lambda m, a, b: m.tensordot(a, b, axes=(1, 0)), [("n", (2, 3)), ("n", (3, 4))], True),
    "trace": (lambda m, a: m.trace(a), [("n", (3, 4))], True),
    "trace_offset": (lambda m, a: m.trace(a, 1), [("n", (3, 4))], True),
    "trace_neg_offset": (lambda m, a: m.trace(a, offset=-1), [("n", (3, 4))], True),
    "trace_axes": (lambda m, a: m.trace(a, 0, 1, 2), [("n", (2, 3, 4))], False),
    "trace_axes_rev": (lambda m, a: m.trace(a, offset=1, axis1=2, axis2=0), [("n", (3, 2, 4))], False),
    "einsum_trace": (lambda m, a: m.einsum("ii->", a), [("n", (3, 3))], False),
    "einsum_diag": (lambda m, a: m.einsum("ii->i", a), [("n", (3, 3))], False),
    "einsum_implicit_trace": (lambda m, a: m.einsum("ii", a), [("n", (3, 3))], False),
    "einsum_repeat_3": (lambda m, a, b: m.einsum("iij,jk->ik", a, b), [("n", (2, 2, 3)), ("n", (3, 2))], False),
    "einsum_repeat_two_ops": (lambda m, a, b: m.einsum("ij,jj->i", a, b), [("n", (2, 3)), ("n", (3, 3))], False),
    "einsum_batched_diag": (lambda m, a: m.einsum("...ii->...i", a), [("n", (2, 3, 3))], False),
    "einsum_ellipsis_mid": (lambda m, a, b: m.einsum("i...j,j...->i...", a, b), [("n", (2, 3, 4)), ("n", (4, 3))], True),
    "einsum_sublist": (lambda m, a, b: m.einsum(a, [0, 1], b, [1, 2], [0, 2]), [("n", (2, 3)), ("n", (3, 4))], True),
    "einsum_sublist_implicit": (lambda m, a, b: m.einsum(a, [0, 1], b, [1, 2]), [("n", (2, 3)), ("n", (3, 4))], False),
    "einsum_sublist_ellipsis": (lambda m, a: m.einsum(a, [Ellipsis, 0, 0], [Ellipsis, 0]), [("n", (2, 3, 3))], False),
    "einsum_three": (lambda m, a, b, c: m.einsum("ij,jk,kl->il", a, b, c), [("n", (2, 3)), ("n", (3, 4)), ("n", (4, 2))], True),
    # numpy.linalg
    "inv": (lambda m, a: m.linalg.inv(a), [("wc", (3, 3))], True),
    "inv_batched": (lambda m, a: m.linalg.inv(a), [("wc", (2, 2, 3, 3))], True),
    "solve_vec": (lambda m, a, b: m.linalg.solve(a, b), [("wc", (3, 3)), ("n", (3,))], True),
    "solve_mat": (lambda m, a, b: m.linalg.solve(a, b), [("wc", (3, 3)), ("n", (3, 2))], True),
    "solve_batched": (lambda m, a, b: m.linalg.solve(a, b), [("wc", (2, 3, 3)), ("n", (2, 3, 2))], True),
    "solve_batched_vec": (lambda m, a, b: m.linalg.solve(a, b), [("wc", (2, 3, 3)), ("n", (3,))], False),
    "solve_broadcast_b": (lambda m, a, b: m.linalg.solve(a, b), [("wc", (2, 3, 3)), ("n", (3, 2))], False),
    "det": (lambda m, a: m.linalg.det(a), [("n", (3, 3))], True),
    "det_batched": (lambda m, a: m.linalg.det(a), [("n", (2, 3, 3))], True),
    "det_1x1": (lambda m, a: m.linalg.det(a), [("n", (2, 1, 1))], True),
    "slogdet": (lambda m, a: m.linalg.slogdet(a)[1], [("n", (3, 3))], True),
    "slogdet_neg": (lambda m, a: m.linalg.slogdet(-a)[1], [("wc", (3, 3))], True),
    "slogdet_batched": (lambda m, a: m.linalg.slogdet(a)[1], [("spd", (2, 3, 3))], True),
    "cholesky": (lambda m, a: m.linalg.cholesky(sym(m, a)), [("spd", (3, 3))], True),
    "cholesky_batched": (lambda m, a: m.linalg.cholesky(sym(m, a)), [("spd", (2, 4, 4))], True),
    "cholesky_reparam": (
        lambda m, a: m.linalg.norm(m.dot(m.linalg.cholesky(sym(m, a)), np.arange(1.0, 4.0))),
        [("spd", (3, 3))],
        True,
    ),
    "eigh": (lambda m, a: m.linalg.eigh(sym(m, a)), [("spd", (3, 3))], True),
    "eigh_upper": (lambda m, a: m.linalg.eigh(sym(m, a), "U"), [("spd", (4, 4))], True),
    "eigh_batched": (lambda m, a: m.linalg.eigh(sym(m, a)), [("spd", (2, 3, 3))], True),
    "eigvalsh": (lambda m, a: m.linalg.eigh(sym(m, a))[0], [("spd", (3, 3))], True),
    "svd_square": (lambda m, a: tuple(m.linalg.svd(a, full_matrices=False)), [("sv", (3, 3))], True),
    "svd_tall": (lambda m, a: tuple(m.linalg.svd(a, full_matrices=False)), [("sv", (4, 2))], True),
    "svd_wide": (lambda m, a: tuple(m.linalg.svd(a, full_matrices=False)), [("sv", (2, 4))], True),
    "svd_batched": (lambda m, a: tuple(m.linalg.svd(a, full_matrices=False)), [("sv", (2, 3, 2))], True),
    "svd_s_only": (lambda m, a: m.linalg.svd(a, compute_uv=False), [("sv", (2, 4, 3))], True),
    "svd_full_square": (lambda m, a: tuple(m.linalg.svd(a)), [("sv", (3, 3))], False),
    # the extra columns of a full U are any basis of the complement: check what is unique about them
    "svd_full_tall": (
        lambda m, a: (lambda u, s, vh: (u[:, :2], s, vh, m.dot(u[:, 2:], u[:, 2:].T)))(*m.linalg.svd(a)),
        [("sv", (4, 2))],
        False,
    ),
    "svd_full_wide": (
        lambda m, a: (lambda u, s, vh: (u, s, vh[:2], m.dot(vh[2:].T, vh[2:])))(*m.linalg.svd(a, full_matrices=True)),
        [("sv", (2, 5))],
        False,
    ),
    "pinv_tall": (lambda m, a: m.linalg.pinv(a), [("sv", (4, 2))], True),
    "pinv_wide": (lambda m, a: m.linalg.pinv(a), [("sv", (2, 3))], True),
    "pinv_batched": (lambda m, a: m.linalg.pinv(a), [("sv", (2, 3, 3))], True),
    "qr_square": (lambda m, a: tuple(m.linalg.qr(a)), [("wc", (3, 3))], False),
    "qr_tall": (lambda m, a: tuple(m.linalg.qr(a)), [("sv", (4, 2))], False),
    "qr_wide": (lambda m, a: tuple(m.linalg.qr(a)), [("sv", (2, 4))], False),
    "qr_batched": (lambda m, a: tuple(m.linalg.qr(a)), [("sv", (2, 3, 2))], False),
    "qr_r": (lambda m, a: m.linalg.qr(a, mode="r"), [("sv", (3, 2))], False),
    "qr_complete_wide": (lambda m, a: tuple(m.linalg.qr(a, mode="complete")), [("sv", (2, 3))], False),
    "matrix_power_0": (lambda m, a: m.linalg.matrix_power(a, 0) * a, [("n", (3, 3))], False),
    "matrix_power_1": (lambda m, a: m.linalg.matrix_power(a, 1), [("n", (3, 3))], False),
    "matrix_power_3": (lambda m, a: m.linalg.matrix_power(a, 3), [("n", (3, 3))], False),
    "matrix_power_6_batched": (lambda m, a: m.linalg.matrix_power(a, 6), [("wc", (2, 2, 2))], False),
    "matrix_power_neg": (lambda m, a: m.linalg.matrix_power(a, -2), [("wc", (3, 3))], False),
}

CASES.update(
    {
        "multi_dot": (lambda m, a, b, c: m.linalg.multi_dot([a, b, c]), [("n", (3,)), ("n", (3, 4)), ("n", (4, 2))], True),
        "cond": (lambda m, a: m.linalg.cond(a), [("sv", (3, 3))], False),
        "cond_-2": (lambda m, a: m.linalg.cond(a, -2), [("sv", (2, 3, 3))], False),
        "cond_fro": (lambda m, a: m.linalg.cond(a, "fro"), [("wc", (3, 3))], False),
        "cond_1": (lambda m, a: m.linalg.cond(a, 1), [("wc", (3, 3))], False),
        "cross_3": (lambda m, a, b: m.cross(a, b), [("n", (4, 3)), ("n", (3,))], False),  # autograd: no unbroadcast
        "cross_2": (lambda m, a, b: m.cross(a, b), [("n", (4, 2)), ("n", (4, 2))], False),
        "cross_23": (lambda m, a, b: m.cross(a, b), [("n", (2,)), ("n", (3,))], False),
        "cross_axes": (lambda m, a, b: m.cross(a, b, axisa=0, axisb=1, axisc=0), [("n", (3, 4)), ("n", (4, 3))], False),
        "cross_axis": (lambda m, a, b: m.cross(a, b, axis=0), [("n", (3, 2)), ("n", (3, 2))], False),
    }
)

# norms: every ord NumPy has for real input, with the axis and keepdims forms
VECTOR_ORDS = [None, 2, 1, np.inf, -np.inf, 0, 3, 0.5, -1.5]
MATRIX_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]
for _o in VECTOR_ORDS:
    CASES[f"norm_vec_ord={_o}"] = (lambda m, x, o=_o: m.linalg.norm(x, ord=o), [("n", (5,))], _o in (None, 2, 3))
    CASES[f"norm_axis_ord={_o}"] = (lambda m, x, o=_o: m.linalg.norm(x, ord=o, axis=1, keepdims=True), [("n", (2, 4, 3))], False)
for _o in MATRIX_ORDS:
    CASES[f"norm_mat_ord={_o}"] = (lambda m, x, o=_o: m.linalg.norm(x, o), [("sv", (3, 4))], _o in (None, "fro", "nuc"))
    CASES[f"norm_axes_ord={_o}"] = (lambda m, x, o=_o: m.linalg.norm(x, ord=o, axis=(2, 0)), [("n", (3, 2, 4))], False)
    CASES[f"norm_axes_keep_ord={_o}"] = (
        lambda m, x, o=_o: m.linalg.norm(x, ord=o, axis=(-1, 1), keepdims=True),
        [("n", (2, 3, 4))],
        False,
    )
CASES["norm_all"] = (lambda m, x: m.linalg.norm(x), [("n", (2, 3, 4))], True)
CASES["norm_all_keepdims"] = (lambda m, x: m.linalg.norm(x, keepdims=True), [("n", (2, 3))], False)
CASES["norm_axis_neg"] = (lambda m, x: m.linalg.norm(x, axis=-1), [("n", (3, 4))], True)
CASES["vector_norm"] = (lambda m, x: m.linalg.vector_norm(x, axis=(0, 2), ord=3), [("n", (2, 3, 4))], False)
CASES["matrix_norm"] = (lambda m, x: m.linalg.matrix_norm(x, ord="nuc"), [("sv", (2, 3, 2))], False)


def _flat(out):
    return np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in tree_flatten(out)[0]])


@pytest.mark.parametrize("name", sorted(CASES))
def test_linalg_case(name):
    fun, spec, with_autograd = CASES[name]
    xs = [gen(kind, shape) for kind, shape in spec]
    expected = fun(np, *xs)
    got = fun(anp, *xs)  # plain arrays: exactly NumPy's values
    np.testing.assert_allclose(_flat(got), _flat(expected), rtol=1e-12, atol=1e-12)
    traced, pullback = nb.vjp(lambda *a: fun(anp, *a), *xs)
    assert not isinstance(tree_flatten(traced)[0][0], Tracer)
    np.testing.assert_allclose(_flat(traced), _flat(expected), rtol=1e-10, atol=1e-12)
    nb.check_grads(lambda *a: fun(anp, *a), tuple(xs), order=2, modes=("fwd", "rev"))
    if with_autograd and autograd is not None:
        weights = [rng_for("w", name, i).standard_normal(np.shape(v)) for i, v in enumerate(tree_flatten(expected)[0])]

        def scalar(m, *a):
            out = fun(m, *a)
            parts = [out[k] for k in range(len(weights))] if isinstance(expected, tuple) else [out]
            return sum(m.sum(p * w) for p, w in zip(parts, weights))

        for i in range(len(xs)):
            ours = nb.grad(lambda *a: scalar(anp, *a), argnums=i)(*xs)
            theirs = autograd.grad(lambda *a: scalar(agnp, *a), i)(*xs)
            np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10)


def test_matrix_rank_accepts_traced_values():
    assert nb.grad(lambda x: anp.sum(x) * np.linalg.matrix_rank(x))(np.eye(3))[0, 0] == 3.0


def test_numpy_functions_reach_the_rules():
    a = gen("wc", (3, 3))
    for f in (np.linalg.inv, np.linalg.det, lambda x: np.linalg.slogdet(x)[1], np.linalg.norm, np.linalg.pinv):
        np.testing.assert_allclose(nb.grad(lambda x: np.sum(f(x)))(a), nb.grad(lambda x: anp.sum(f(anp.asarray(x) * 1.0)))(a))
    u, s, vh = np.linalg.svd(a)
    np.testing.assert_allclose(nb.grad(lambda x: np.sum(np.linalg.svd(x)[1]))(a), u @ vh)  # d nuclear = U V^T
    r = nb.grad(lambda x: np.linalg.norm(x, ord=2, axis=None))(a)
    np.testing.assert_allclose(r, np.outer(u[:, 0], vh[0]))  # d sigma_max = u1 v1^T
    res = nb.value_and_grad(lambda x: np.linalg.eigh(x).eigenvalues.sum())(spd(rng_for(1), (3, 3)))
    np.testing.assert_allclose(res[1], np.eye(3), atol=1e-12)  # d trace = I
    assert hasattr(anp.linalg.qr(np.eye(2)), "Q") and hasattr(nb.vjp(lambda x: anp.linalg.qr(x).R, np.eye(2))[0], "shape")


# ----------------------------------------------------------------------------
# edge points
# ----------------------------------------------------------------------------


def _adjugate_T(a):
    """Cofactor matrix from explicit minors (an independent reference)."""
    n = a.shape[0]
    c = np.empty_like(a)
    for i in range(n):
        for j in range(n):
            c[i, j] = (-1) ** (i + j) * np.linalg.det(np.delete(np.delete(a, i, 0), j, 1))
    return c


@pytest.mark.parametrize("rank", [0, 1, 2, 3])
def test_det_at_singular_matrices(rank):
    rng = rng_for("sing", rank)
    a = rng.standard_normal((4, rank)) @ rng.standard_normal((rank, 4))
    g = nb.grad(anp.linalg.det)(a)
    np.testing.assert_allclose(g, _adjugate_T(a), atol=1e-10)
    nb.check_grads(anp.linalg.det, (a,), order=2)
    if autograd is not None and rank == 3:  # autograd's inv-based rule gives NaN/inf here; ours is finite
        assert np.all(np.isfinite(g))


def test_det_of_large_singular_matrix_uses_the_svd():
    rng = rng_for("big")
    a = rng.standard_normal((30, 29)) @ rng.standard_normal((29, 30)) / 6.0
    g = nb.grad(anp.linalg.det)(a)
    # cofactor of a rank n-1 matrix: det' * u_n v_n^T (the null vectors), scale from the other singular values
    u, s, vh = np.linalg.svd(a)
    expected = np.linalg.det(u) * np.linalg.det(vh) * np.prod(s[:-1]) * np.outer(u[:, -1], vh[-1])
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-8 * np.abs(expected).max())
    nb.check_grads(anp.linalg.det, (a,), order=1, rtol=1e-4)


def test_slogdet_at_a_singular_matrix_refuses_the_derivative():
    with pytest.raises(ValueError, match="singular"):
        nb.grad(lambda x: anp.linalg.slogdet(x)[1])(np.ones((2, 2)))


@pytest.mark.parametrize("ord", [None, 2, 3, 0.5, "fro"])
def test_norm_at_zero_has_subgradient_zero(ord):
    x = np.zeros((3, 2)) if ord == "fro" else np.zeros(4)
    for f in (lambda x: anp.linalg.norm(x, ord=ord), lambda x: np.linalg.norm(x, ord)):
        g = nb.grad(f)(x)
        np.testing.assert_array_equal(g, np.zeros_like(x))
        assert np.all(np.isfinite(nb.hessian(f)(x)))
        _, t = nb.jvp(f, (x,), (np.ones_like(x),))
        assert t == 0.0


def test_norm_rows_with_a_zero_row():
    x = np.array([[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(nb.grad(lambda x: anp.sum(anp.linalg.norm(x, axis=1)))(x), [[0, 0], [0.6, 0.8]])


def test_eigh_repeated_eigenvalues_give_finite_exact_spectral_derivatives():
    a = np.diag([1.0, 1.0, 2.0])
    g = nb.grad(lambda x: anp.sum(anp.linalg.eigh(x)[0] ** 2))(a)
    np.testing.assert_allclose(g, 2 * a, atol=1e-12)  # sum w^2 = ||A||_F^2
    h = nb.hessian(lambda x: anp.sum(anp.linalg.eigh(x)[0]))(a)
    assert np.all(np.isfinite(h))
    np.testing.assert_allclose(h, 0.0, atol=1e-12)  # sum w = trace: linear


def test_cholesky_gradients_are_symmetric_and_eigh_gradients_live_on_the_triangle_read():
    a = spd(rng_for("symg"), (4, 4))
    w = rng_for("w").standard_normal((4, 4))
    g = nb.grad(lambda x: anp.sum(anp.linalg.cholesky(x) * w))(a)
    np.testing.assert_allclose(g, g.T, atol=1e-12)
    # eigh reads one triangle (as NumPy): its derivative is that of the function NumPy computes (autograd's)
    f = lambda x, uplo: anp.sum(anp.linalg.eigh(x, uplo)[1] ** 3 * w)
    for uplo, other in (("L", np.triu), ("U", np.tril)):
        g = nb.grad(f)(a, uplo)
        np.testing.assert_array_equal(other(g, 1 if uplo == "L" else -1), 0.0)
        nb.check_grads(lambda x: f(x, uplo), (a + np.triu(w, 1),), order=2)  # not symmetric: one triangle counts
        # along a symmetric direction it is the derivative of the symmetric matrix
        d = w + w.T
        _, t = nb.jvp(lambda x: f(x, uplo), (a,), (d,))
        np.testing.assert_allclose(np.sum(g * d), t, rtol=1e-10)


def test_cholesky_and_qr_tangents_keep_the_triangles():
    a = spd(rng_for("tri"), (4, 4))
    d = rng_for("d").standard_normal((4, 4))
    _, t = nb.jvp(anp.linalg.cholesky, (a,), (d,))
    np.testing.assert_array_equal(np.triu(t, 1), 0.0)
    _, t = nb.jvp(lambda x: anp.linalg.qr(x)[1], (gen("sv", (4, 3)),), (d[:, :3],))
    np.testing.assert_allclose(np.tril(t, -1), 0.0, atol=1e-14)


def test_svd_at_repeated_and_zero_singular_values():
    eye = np.eye(3)
    np.testing.assert_allclose(nb.grad(lambda x: anp.linalg.norm(x, "nuc"))(eye), eye, atol=1e-12)
    low = np.outer([1.0, 2.0, 2.0], [2.0, 1.0, 0.0])  # rank 1: two zero singular values
    g = nb.grad(lambda x: anp.sum(anp.linalg.svd(x, compute_uv=False)))(low)
    assert np.all(np.isfinite(g))
    u, s, vh = np.linalg.svd(low)
    np.testing.assert_allclose(g, u @ vh, atol=1e-12)  # the subgradient U V^T of the nuclear norm (norm 1)
    assert np.linalg.norm(g, 2) <= 1 + 1e-12


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="square"):
        nb.grad(lambda x: anp.sum(anp.linalg.inv(x)))(np.ones((2, 3)))
    with pytest.raises(ValueError, match="invalid norm order"):
        nb.grad(lambda x: anp.linalg.norm(x, "nuc"))(np.ones(3))
    with pytest.raises(NotDifferentiableError, match="complete"):
        nb.grad(lambda x: anp.sum(anp.linalg.qr(x, mode="complete")[0]))(np.ones((3, 2)))


def test_norm_of_a_list_of_traced_values():
    # d/dx sqrt(x^2 + (x + 2)^2) at 0 is 2 / 2 = 1, in both modes
    for g in both_modes_grad(lambda x: anp.linalg.norm([x, x + 2.0]), 0.0):
        assert g == pytest.approx(1.0)
    assert nb.grad(lambda x: anp.linalg.norm((x, 2 * x), 1))(1.5) == pytest.approx(3.0)
