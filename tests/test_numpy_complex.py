"""Complex numbers, with HIPS autograd's convention.

For a real ``f`` of ``z = x + iy``, ``grad(f)(z) = df/dx - i df/dy`` (``grad`` of a complex output
is refused, as in autograd; ``holomorphic_grad(f)`` is ``grad`` of ``Re f``, ``f'(z)`` for a
holomorphic ``f``); forward mode pushes complex tangents ``dz = dx + i dy``.  These tests check both
against central differences taken along the real and the imaginary direction of
every input entry (written out here, independently of ``check_grads``), then every
rule that can meet a complex value with ``check_grads`` to second order, on scalar,
vector, matrix and broadcast shapes, and the refusals that remain (a complex tangent for a real input).
"""

from __future__ import annotations

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp
from tests.numpy_cases import rng_for

C = 1 + 0.2j
H = 1e-6


def crandn(rng, shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def fd_grad(f, z):
    """du/dx - i du/dy of the real part u of scalar f, entry by entry, by central differences."""
    z = np.asarray(z, dtype=complex)
    g = np.zeros(z.shape, complex)
    for k in np.ndindex(z.shape):
        e = np.zeros(z.shape, complex)
        e[k] = 1.0
        dx = (np.real(f(z + H * e)) - np.real(f(z - H * e))) / (2 * H)
        dy = (np.real(f(z + 1j * H * e)) - np.real(f(z - 1j * H * e))) / (2 * H)
        g[k] = dx - 1j * dy
    return g


def fd_dir(f, z, v):
    return (np.asarray(f(z + H * v)) - np.asarray(f(z - H * v))) / (2 * H)


# ---- the convention, in closed form ---------------------------------------------


def test_grad_is_du_dx_minus_i_du_dy():
    z = 1.0 + 2.0j
    assert nb.grad(lambda z: anp.abs(z) ** 2)(z) == pytest.approx(2 * np.conj(z))  # 2x - 2iy
    assert nb.grad(anp.angle)(z) == pytest.approx(-1j * np.conj(z) / abs(z) ** 2)  # -y/r^2 - i x/r^2
    assert nb.grad(anp.real)(z) == 1.0
    assert nb.grad(anp.imag)(z) == pytest.approx(-1j)
    assert nb.grad(lambda z: anp.real(anp.conj(z) * 1j))(z) == pytest.approx(-1j)  # u = y


def test_holomorphic_functions_give_the_complex_derivative():
    z = 0.3 - 0.7j
    assert nb.holomorphic_grad(anp.exp)(z) == pytest.approx(np.exp(z))
    assert nb.holomorphic_grad(lambda z: z**3)(z) == pytest.approx(3 * z**2)
    assert nb.holomorphic_grad(anp.sin)(z) == pytest.approx(np.cos(z))
    assert nb.holomorphic_grad(lambda x: x * C)(1.0 + 0j) == pytest.approx(C)
    assert nb.jvp(anp.log, (z,), (1j,))[1] == pytest.approx(1j / z)  # f'(z) dz


def test_grad_of_a_complex_output_is_refused_as_in_autograd():
    # the example: grad needs a real output (it used to return 1.0 silently)
    with pytest.raises(TypeError, match=r"complex value \(dtype complex128\).*holomorphic_grad"):
        nb.grad(lambda x: x * C)(1.0)
    with pytest.raises(TypeError, match="holomorphic_grad"):
        nb.value_and_grad(anp.exp)(1j)


def test_real_input_complex_intermediate_follows_the_convention():
    g = nb.grad(lambda x: anp.real(x * C))(1.0)  # the real part, explicitly
    assert g == 1.0 and np.isrealobj(g)
    g = nb.grad(lambda x: anp.abs(x * C))(1.0)
    assert g == pytest.approx(abs(C)) and np.isrealobj(g)
    # forward mode carries the complex tangent
    out, t = nb.jvp(lambda x: anp.exp(x * C), (1.0,), (1.0,))
    assert t == pytest.approx(C * np.exp(C))
    # the derivative of abs at a complex point is real in forward mode too (it was complex before)
    _, t = nb.jvp(anp.abs, (1 + 2j,), (1.0 + 0j,))
    assert np.isrealobj(t) and t == pytest.approx(1 / np.sqrt(5))


def test_real_function_through_complex_intermediates_equals_the_real_one():
    x = np.array([0.4, -1.3, 2.2])
    f_complex = lambda x: anp.sum(anp.abs(x * anp.exp(1j * x)) ** 2)  # = sum(x^2)
    g = nb.grad(f_complex)(x)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, 2 * x, rtol=1e-12)
    np.testing.assert_allclose(nb.hessian(f_complex)(x), 2 * np.eye(3), atol=1e-12)


def test_descent_along_the_conjugate_gradient_minimises_a_real_loss():
    target = np.array([1 - 2j, 0.5j, 3.0])
    loss = lambda z: anp.sum(anp.abs(z - target) ** 2)
    z = np.zeros(3, complex)
    for _ in range(60):
        z = z - 0.1 * np.conj(nb.grad(loss)(z))
    np.testing.assert_allclose(z, target, atol=1e-5)


# ---- against central differences along the real and imaginary directions -------------

SCALAR_FUNS = {
    "abs2": lambda z: anp.sum(anp.abs(z) ** 2),
    "abs": lambda z: anp.sum(anp.abs(z)),
    "angle": lambda z: anp.sum(anp.angle(z)),
    "angle_deg": lambda z: anp.sum(anp.angle(z, deg=True)),
    "exp_real": lambda z: anp.sum(anp.real(anp.exp(z))),
    "log_imag": lambda z: anp.sum(anp.imag(anp.log(z))),
    "holomorphic_sum": lambda z: anp.sum(anp.sin(z) * anp.sqrt(z) / (z + 2.0)),
    "conj_product": lambda z: anp.sum(z * anp.conj(z + 1j)),
    "var": lambda z: anp.var(z),
    "std": lambda z: anp.std(z),
    "norm": lambda z: anp.linalg.norm(z),
    "vdot": lambda z: anp.vdot(z, z * 1j + 1.0),
    "power": lambda z: anp.sum(z**2.5),
    "complex_power": lambda z: anp.sum(anp.power(1.5 + 0.5j, z)),
    "tanh_cosh": lambda z: anp.sum(anp.tanh(z) + anp.cosh(z)),
    "prod": lambda z: anp.prod(z),
    "mean_of_product": lambda z: anp.mean(z * (2 - 1j)),
}


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)], ids=str)
@pytest.mark.parametrize("name", sorted(SCALAR_FUNS))
def test_grad_and_jvp_against_finite_differences(name, shape):
    f = SCALAR_FUNS[name]
    z = crandn(rng_for(name, shape), shape) + 0.5  # away from 0 and the branch cut of log/sqrt
    g = nb.grad(lambda z: anp.real(f(z)))(z)  # grad needs a real output; fd_grad takes the real part too
    np.testing.assert_allclose(g, fd_grad(f, z), rtol=1e-6, atol=1e-7)
    for v in (np.ones(shape), 1j * np.ones(shape)):  # along the real, then the imaginary direction
        _, t = nb.jvp(f, (z,), (v + 0j,))
        np.testing.assert_allclose(t, fd_dir(f, z, v), rtol=1e-6, atol=1e-7)
        # reverse and forward agree: dL along v is Re(grad . v)
        np.testing.assert_allclose(np.real(np.sum(g * v)), np.real(t), rtol=1e-9, atol=1e-12)


# ---- every rule that can meet a complex value, both modes, to second order ----------

ELEMENTWISE = ["exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh", "sqrt", "square", "reciprocal",
               "expm1", "log1p", "log2", "log10", "exp2", "arcsin", "arccos", "arctan", "arcsinh", "arccosh",
               "arctanh", "negative", "abs", "real", "imag", "conj", "angle", "positive", "sinc"]


@pytest.mark.parametrize("shape", [(), (4,), (2, 3)], ids=str)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_at_complex_points(name, shape):
    z = crandn(rng_for(name, shape), shape) * 0.4 + (0.3 + 0.2j)
    nb.check_grads(getattr(anp, name), (z,), order=2)
    np.testing.assert_allclose(getattr(anp, name)(z), getattr(np, name)(z))


BINARY = {
    "add": anp.add, "subtract": anp.subtract, "multiply": anp.multiply, "divide": anp.divide,
    "power": anp.power, "where": lambda a, b: anp.where(np.real(a) > 0, a, b),
}
SHAPES = [((), ()), ((3,), (3,)), ((2, 3), (3,)), ((3, 1), (1, 4)), ((2, 3), ())]


@pytest.mark.parametrize("kinds", ["cc", "rc", "cr"])
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_with_real_and_complex_arguments(name, shapes, kinds):
    rng = rng_for(name, shapes, kinds)
    args = [crandn(rng, s) * 0.3 + 1.2 if k == "c" else rng.uniform(0.5, 1.5, s) for s, k in zip(shapes, kinds)]
    nb.check_grads(BINARY[name], args, order=2)
    g = nb.grad(lambda *a: anp.sum(anp.abs(BINARY[name](*a))), argnums=(0, 1))(*args)
    for gi, a in zip(g, args):  # a real argument's derivative is real, a complex one's complex
        assert np.iscomplexobj(gi) == np.iscomplexobj(a) and np.shape(gi) == np.shape(a)


REDUCTIONS_AND_SHAPES = {
    "sum_axis": lambda z: anp.sum(z, axis=0),
    "mean_keepdims": lambda z: anp.mean(z, axis=1, keepdims=True),
    "var_axis": lambda z: anp.var(z, axis=1),
    "std_ddof": lambda z: anp.std(z, axis=0, ddof=1),
    "prod": lambda z: anp.prod(z, axis=1),
    "cumsum": lambda z: anp.cumsum(z, axis=1),
    "cumprod": lambda z: anp.cumprod(z),
    "transpose_reshape": lambda z: anp.reshape(z.T, (-1,)),
    "getitem": lambda z: z[1, ::2] * z[0, 1::2],
    "concatenate_real": lambda z: anp.concatenate([z, anp.abs(z)]),
    "stack_list": lambda z: anp.stack([z[0], z[1] * 2j]),
    "roll_flip": lambda z: anp.flip(anp.roll(z, 1, axis=1)),
    "tril_pad": lambda z: anp.pad(anp.tril(z), 1),
    "astype": lambda z: anp.real(z).astype(complex) * 1j + anp.imag(z),
    "real_attr": lambda z: z.real * z.imag + z.conj(),
    "diff": lambda z: anp.diff(z, axis=1),
    "max_abs": lambda z: anp.max(anp.abs(z), axis=0),
    "norm_rows": lambda z: anp.linalg.norm(z, axis=1),
    "norm_fro": lambda z: anp.linalg.norm(z, "fro"),
    "norm_inf": lambda z: anp.linalg.norm(z, np.inf),
    "norm_1_vec": lambda z: anp.linalg.norm(z[0], 1),
    "real_if_close": lambda z: anp.real_if_close(z * 2.0),
    "nanvar": lambda z: anp.nanvar(z, axis=1),
    "nanstd_ddof": lambda z: anp.nanstd(z, ddof=1),
    "nanmean": lambda z: anp.nanmean(z, axis=0),
    "average_weights": lambda z: anp.average(z, axis=1, weights=np.arange(1.0, 5.0)),
    "logsumexp": lambda z: anp.logsumexp(z, axis=1),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS_AND_SHAPES))
def test_reductions_and_shapes_at_complex_points(name):
    z = crandn(rng_for(name), (3, 4)) + 0.5
    nb.check_grads(REDUCTIONS_AND_SHAPES[name], (z,), order=2)
    out = REDUCTIONS_AND_SHAPES[name](z)  # plain values: NumPy's own results (var of complex is real)
    for o in (out if isinstance(out, tuple) else (out,)):
        assert np.all(np.isfinite(o))


def test_nan_reductions_of_complex_values_match_numpy():
    z = crandn(rng_for("nan"), (3, 4))
    z[1, 2] = np.nan
    for name in ("nanvar", "nanstd", "nanmean", "nansum"):
        traced, _ = nb.vjp(lambda z: getattr(anp, name)(z, axis=1), z)
        np.testing.assert_allclose(traced, getattr(np, name)(z, axis=1), rtol=1e-12)
        assert np.asarray(traced).dtype == getattr(np, name)(z, axis=1).dtype


LINALG = {
    "matmul": (lambda a, b: a @ b, [(3, 3), (3, 2)]),
    "matmul_batch": (lambda a, b: anp.matmul(a, b), [(2, 3, 3), (3,)]),
    "dot": (lambda a, b: anp.dot(a, b), [(3, 3), (3,)]),
    "einsum": (lambda a, b: anp.einsum("ij,jk->ik", a, b), [(3, 3), (3, 2)]),
    "einsum_trace": (lambda a, b: anp.einsum("ii,j->j", a, b), [(3, 3), (2,)]),
    "tensordot": (lambda a, b: anp.tensordot(a, b, axes=([1], [0])), [(3, 3), (3, 2)]),
    "inner_outer": (lambda a, b: anp.inner(a, a) + anp.sum(anp.outer(b, b)), [(3, 3), (2,)]),
    "kron": (lambda a, b: anp.kron(a, b), [(3, 3), (2,)]),
    "trace": (lambda a, b: anp.trace(a) * b, [(3, 3), (2,)]),
    "vdot": (lambda a, b: anp.vdot(a, a * 1j), [(3, 3), (2,)]),
    "inv": (lambda a, b: anp.linalg.inv(a), [(3, 3), (2,)]),
    "solve": (lambda a, b: anp.linalg.solve(a, b), [(3, 3), (3,)]),
    "solve_matrix": (lambda a, b: anp.linalg.solve(a, b), [(3, 3), (3, 2)]),
    "det": (lambda a, b: anp.linalg.det(a), [(3, 3), (2,)]),
    "det_batch": (lambda a, b: anp.linalg.det(a), [(2, 3, 3), (2,)]),
    "slogdet": (lambda a, b: anp.linalg.slogdet(a)[1], [(3, 3), (2,)]),
    "matrix_power": (lambda a, b: anp.linalg.matrix_power(a, -2), [(3, 3), (2,)]),
    "pinv_square": (lambda a, b: anp.linalg.pinv(a), [(3, 3), (2,)]),
    "pinv_tall": (lambda a, b: anp.linalg.pinv(b), [(3, 3), (4, 3)]),
    "pinv_wide_batched": (lambda a, b: anp.linalg.pinv(b), [(3, 3), (2, 2, 3)]),
    # a rank-2 3x3 matrix that stays rank 2 under any perturbation of b
    "pinv_low_rank": (lambda a, b: anp.linalg.pinv(anp.matmul(anp.conj(anp.swapaxes(b, -1, -2)), b)), [(3, 3), (2, 3)]),
}


@pytest.mark.parametrize("kinds", ["cc", "rc", "cr"])
@pytest.mark.parametrize("name", sorted(LINALG))
def test_linalg_with_complex_matrices(name, kinds):
    f, shapes = LINALG[name]
    rng = rng_for(name, kinds)
    args = [crandn(rng, s) if k == "c" else rng.standard_normal(s) for s, k in zip(shapes, kinds)]
    args[0] = args[0] + 3 * np.eye(shapes[0][-1])  # well conditioned
    np.testing.assert_allclose(f(*args), f(*[a for a in args]))
    nb.check_grads(f, args, order=2)


def test_det_gradient_is_the_cofactor_transposed_convention():
    a = crandn(rng_for("det"), (3, 3)) + 2 * np.eye(3)
    # holomorphic: the adjoint of det is det(a) inv(a)^T (transpose, not conjugate transpose)
    np.testing.assert_allclose(nb.holomorphic_grad(anp.linalg.det)(a), np.linalg.det(a) * np.linalg.inv(a).T,
                               rtol=1e-10)
    np.testing.assert_allclose(nb.holomorphic_grad(anp.linalg.det)(a), fd_grad(np.linalg.det, a), rtol=1e-6)


def test_jacobian_and_hessian_of_complex_functions():
    z = np.array([0.5 + 1j, -0.3 + 0.2j])
    j = nb.jacobian(anp.exp)(z)  # rows: gradients of the real parts, du_k/dx - i du_k/dy
    np.testing.assert_allclose(j, np.diag(np.exp(z)), rtol=1e-12)
    np.testing.assert_allclose(nb.jacobian(anp.exp, mode="fwd")(z), np.diag(np.exp(z)), rtol=1e-12)
    assert nb.hessian(lambda x: anp.abs(x * 1j) ** 2)(1.0) == pytest.approx(2.0)
    np.testing.assert_allclose(nb.hvp(lambda x: anp.sum(anp.abs(x * C) ** 2), np.ones(2), np.ones(2)),
                               2 * abs(C) ** 2 * np.ones(2))


def test_vjp_with_a_complex_cotangent_and_pytrees():
    z = np.array([1 + 1j, 2 - 1j])
    out, fn = nb.vjp(lambda z: z * 1j, z)
    np.testing.assert_allclose(fn(np.array([1.0 + 0j, 1j]))[0], [1j, -1])  # g * d(iz)/dz = i g
    g = nb.grad(lambda p: anp.abs(p["a"]) + p["b"])({"a": 1j, "b": 1.0})
    assert g["a"] == pytest.approx(-1j) and g["b"] == 1.0


# ---- decompositions of complex matrices: svd and eig ---------------------------------
# A singular pair (u_i, v_i) and an eigenvector are defined up to a phase that NumPy picks, so
# the functions checked are those that do not depend on it: s, |U|, |V|, U S V^H, w, |V|.

SVD_FUNS = {
    "s": lambda a, fm: anp.linalg.svd(a, full_matrices=fm)[1],
    "abs_u": lambda a, fm: anp.abs(anp.linalg.svd(a, full_matrices=fm)[0]),
    "abs_vh": lambda a, fm: anp.abs(anp.linalg.svd(a, full_matrices=fm)[2]),
    "reconstruction": lambda a, fm: (lambda u, s, vh: anp.matmul(u[..., :, : s.shape[-1]] * s[..., None, :],
                                                                 vh[..., : s.shape[-1], :]))(
        *anp.linalg.svd(a, full_matrices=fm)),
    "svdvals": lambda a, fm: anp.linalg.svdvals(a),
    "norm_nuc": lambda a, fm: anp.linalg.norm(a, "nuc", axis=(-2, -1)),
    "norm_2": lambda a, fm: anp.linalg.norm(a, 2, axis=(-2, -1)),
}


@pytest.mark.parametrize("fm", [False, True])
@pytest.mark.parametrize("shape", [(3, 4), (4, 3), (3, 3), (2, 4, 3)], ids=str)
@pytest.mark.parametrize("name", sorted(SVD_FUNS))
def test_svd_of_complex_matrices(name, shape, fm):
    a = crandn(rng_for("svd", name, shape, fm), shape)
    u, s, vh = anp.linalg.svd(a, full_matrices=fm)
    assert s.dtype == np.float64  # the singular values stay real
    nb.check_grads(lambda a: SVD_FUNS[name](a, fm), (a,), order=2)
    out, _ = nb.vjp(lambda a: anp.linalg.svd(a, full_matrices=fm)[1], a)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, s)


def test_svd_gradient_of_the_nuclear_norm_is_u_vh_conjugated():
    a = crandn(rng_for("nuc"), (3, 4))
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    # ||A||_* = sum s; du/dx - i du/dy of it is conj(U V^H) (its gradient in the conjugate convention is U V^H)
    np.testing.assert_allclose(nb.grad(lambda a: anp.linalg.norm(a, "nuc"))(a), np.conj(u @ vh), rtol=1e-10)
    np.testing.assert_allclose(nb.grad(lambda a: anp.linalg.norm(a, "nuc"))(a),
                               fd_grad(lambda a: np.linalg.norm(a, "nuc"), a), rtol=1e-6)


EIG_FUNS = {
    "w": lambda a: anp.linalg.eig(a)[0],
    "abs_v": lambda a: anp.abs(anp.linalg.eig(a)[1]),
    "both": lambda a: (anp.linalg.eig(a)[0], anp.abs(anp.linalg.eig(a)[1])),
    "eigvals_sum_sq": lambda a: anp.sum(anp.linalg.eigvals(a) ** 2),
    "reconstruction": lambda a: (lambda w, v: anp.matmul(v * w[..., None, :], anp.linalg.inv(v)))(*anp.linalg.eig(a)),
}


@pytest.mark.parametrize("kind", ["complex", "real", "real_symmetric"])
@pytest.mark.parametrize("shape", [(3, 3), (4, 4), (2, 3, 3)], ids=str)
@pytest.mark.parametrize("name", sorted(EIG_FUNS))
def test_eig(name, shape, kind):
    rng = rng_for("eig", name, shape, kind)
    a = crandn(rng, shape) if kind == "complex" else rng.standard_normal(shape)
    if kind == "real_symmetric":  # real eigenvalues: NumPy returns real w and V, and so does nablanet
        a = a + np.swapaxes(a, -1, -2)
    w, v = anp.linalg.eig(a)
    traced_w, _ = nb.vjp(lambda a: anp.linalg.eig(a)[0], a)
    assert traced_w.dtype == w.dtype
    np.testing.assert_allclose(traced_w, w)
    nb.check_grads(EIG_FUNS[name], (a,), order=2)


EIGH_FUNS = {
    "w": lambda a, uplo: anp.linalg.eigh(a, uplo)[0],
    "abs_v": lambda a, uplo: anp.abs(anp.linalg.eigh(a, uplo)[1]),
    "eigvalsh_sq": lambda a, uplo: anp.linalg.eigvalsh(a, uplo) ** 2,
    "reconstruction": lambda a, uplo: (lambda w, v: anp.matmul(v * w[..., None, :], anp.conj(anp.swapaxes(v, -1, -2))))(
        *anp.linalg.eigh(a, uplo)),
}


@pytest.mark.parametrize("uplo", ["L", "U"])
@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4)], ids=str)
@pytest.mark.parametrize("name", sorted(EIGH_FUNS))
def test_eigh_of_complex_matrices_reads_one_triangle(name, shape, uplo):
    # any complex matrix: NumPy reads the triangle UPLO and the real diagonal, and so does the derivative
    a = crandn(rng_for("eigh", name, shape, uplo), shape)
    w, _ = anp.linalg.eigh(a, uplo)
    assert w.dtype == np.float64
    nb.check_grads(lambda a: EIGH_FUNS[name](a, uplo), (a,), order=2)


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4)], ids=str)
def test_cholesky_of_hermitian_matrices(shape):
    rng = rng_for("chol", shape)
    b = crandn(rng, shape)
    a = b @ np.conj(np.swapaxes(b, -1, -2)) + shape[-1] * np.eye(shape[-1]) + 0.1 * crandn(rng, shape)
    herm = lambda x: (x + anp.conj(anp.swapaxes(x, -1, -2))) / 2
    np.testing.assert_allclose(anp.linalg.cholesky(herm(a)), np.linalg.cholesky((a + np.conj(np.swapaxes(a, -1, -2))) / 2))
    nb.check_grads(lambda x: anp.linalg.cholesky(herm(x)), (a,), order=2)
    # Hermitian-input convention: only the Hermitian part of a perturbation counts; the gradient is Hermitian
    h = herm(a)
    g = nb.grad(lambda x: anp.sum(anp.abs(anp.linalg.cholesky(x)) ** 2 * np.arange(1.0, shape[-1] + 1)))(h)
    np.testing.assert_allclose(g, np.conj(np.swapaxes(g, -1, -2)), atol=1e-12)


QR_FUNS = {
    "q": lambda a: anp.linalg.qr(a)[0],
    "r": lambda a: anp.linalg.qr(a)[1],
    "mode_r": lambda a: anp.linalg.qr(a, mode="r"),
    "both": lambda a: tuple(anp.linalg.qr(a)),
}


@pytest.mark.parametrize("shape", [(3, 3), (4, 3), (3, 5), (2, 4, 3)], ids=str)
@pytest.mark.parametrize("name", sorted(QR_FUNS))
def test_qr_of_complex_matrices(name, shape):
    # LAPACK's R has a real diagonal, which fixes the phases: Q and R themselves are differentiable
    a = crandn(rng_for("qr", name, shape), shape)
    q, r = anp.linalg.qr(a)
    np.testing.assert_allclose(np.imag(np.diagonal(r, axis1=-2, axis2=-1)), 0.0, atol=1e-12)
    nb.check_grads(QR_FUNS[name], (a,), order=2)


def test_eig_of_a_real_matrix_gives_real_gradients_of_complex_eigenvalues():
    a = np.array([[0.0, -1.0], [1.0, 0.5]])  # eigenvalues 0.25 +- i sqrt(0.9375)
    g = nb.grad(lambda a: anp.sum(anp.imag(anp.linalg.eigvals(a)) ** 2))(a)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, np.real(fd_grad(lambda a: np.sum(np.imag(np.linalg.eigvals(a)) ** 2), a)),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.linalg.eigvals(a), anp.linalg.eigvals(a))


# ---- what is refused or plain --------------------------------------------------------

def test_sign_of_complex_values_is_z_over_abs_z():
    z = np.array([1 + 2j, -0.5 + 0.1j, 0j, 3.0 + 0j])
    np.testing.assert_allclose(anp.sign(z), np.sign(z))
    traced, _ = nb.vjp(anp.sign, z)
    np.testing.assert_allclose(traced, np.sign(z))
    nb.check_grads(anp.sign, (z[:2],), order=2)
    # the subgradient 0 at z = 0, never NaN
    g = nb.grad(lambda z: anp.sum(anp.real(anp.sign(z)) + anp.imag(anp.sign(z))))(z)
    assert np.all(np.isfinite(g)) and g[2] == 0
    assert nb.grad(lambda x: anp.sign(x) * x)(-2.0) == -1.0  # real: piecewise constant


def test_a_complex_tangent_for_a_real_input_is_refused():
    with pytest.raises(TypeError, match=r"tangent of argument 0 is complex.*argument is real"):
        nb.jvp(anp.exp, (1.0,), (1j,))


def test_complex_arguments_not_differentiated_pass_through_plain_code():
    # a complex array that never meets a traced value is ordinary NumPy
    z = np.array([1 + 1j, 2 - 1j])
    g = nb.grad(lambda x, z: anp.sum(x**2) + 0 * np.abs(z).sum(), argnums=0)(np.ones(2), z)
    np.testing.assert_array_equal(g, [2.0, 2.0])
    assert np.array_equal(anp.abs(z), np.abs(z))
    assert np.array_equal(anp.angle(z), np.angle(z)) and np.array_equal(anp.imag(z), np.imag(z))


def test_check_grads_catches_a_wrong_complex_rule():
    bad = nb.extend.primitive(np.conj)  # the rule of the identity: wrong for conj
    nb.extend.defvjp(bad, lambda ans, x: lambda g: g)
    nb.extend.defjvp(bad, lambda g, ans, x: g)
    with pytest.raises(nb.GradientCheckError):
        nb.check_grads(bad, (np.array([1 + 1j, 0.5 - 2j]),), order=1)


def test_jit_captures_complex_code_and_the_real_parts_the_engine_takes():
    f = lambda x: anp.sum(anp.abs(anp.fft.fft(anp.tanh(x) * (1 + 0.5j))[:5]) ** 2)
    plain, captured = nb.value_and_grad(f), nb.jit(nb.value_and_grad(f))
    x = np.linspace(-1, 1, 8)
    for k in range(3):  # traced once, replayed on new values
        (v0, g0), (v1, g1) = plain(x + k), captured(x + k)
        np.testing.assert_allclose(v1, v0, rtol=1e-12)
        np.testing.assert_allclose(g1, g0, rtol=1e-12)
        assert g1.dtype == np.float64
    z = x + 1j * x[::-1]
    g = lambda z: anp.sum(anp.abs(anp.linalg.solve(anp.eye(8) * 3 + anp.outer(z, z), z)))
    jg = nb.jit(nb.grad(g))
    for s in (1.0, 1.1):
        np.testing.assert_allclose(jg(z * s), nb.grad(g)(z * s), rtol=1e-12)


def test_det_of_a_large_singular_complex_matrix():
    # past the size where cofactors come from minors, the SVD: C = det(U) det(Vh) conj(U) diag(prod) conj(Vh)
    rng = rng_for("bigdet")
    a = crandn(rng, (26, 25)) @ crandn(rng, (25, 26)) / 7.0  # rank 25
    g = nb.holomorphic_grad(anp.linalg.det)(a)
    u, s, vh = np.linalg.svd(a)
    expected = np.linalg.det(u) * np.linalg.det(vh) * np.prod(s[:-1]) * np.outer(np.conj(u[:, -1]), np.conj(vh[-1]))
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-8 * np.abs(expected).max())
    nb.check_grads(anp.linalg.det, (a,), order=1, rtol=1e-4)


def test_slogdet_sign_of_a_complex_matrix_is_differentiated():
    # The sign of a complex determinant is its phase and moves with the matrix (it had a zero derivative).
    rng = np.random.default_rng(7)
    a = rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))
    nb.check_grads(lambda a: anp.linalg.slogdet(a)[0], (a,))
    b = rng.normal(size=(2, 3, 3)) + 1j * rng.normal(size=(2, 3, 3))
    nb.check_grads(lambda a: anp.linalg.slogdet(a)[0], (b,))
    g = nb.grad(lambda a: anp.real(anp.linalg.slogdet(a)[0]))(a)
    h = 1e-6
    e = np.zeros((3, 3))
    e[0, 1] = 1.0
    s = lambda a: np.real(np.linalg.slogdet(a)[0])  # noqa: E731
    fd = (s(a + h * e) - s(a - h * e)) / (2 * h) - 1j * (s(a + 1j * h * e) - s(a - 1j * h * e)) / (2 * h)
    assert abs(g[0, 1] - fd) < 1e-6 and abs(fd) > 1e-3
    real = rng.normal(size=(3, 3))  # a real matrix's sign stays a constant
    assert nb.grad(lambda a: anp.linalg.slogdet(a)[0] * anp.sum(a))(real).tolist() == (
        np.full((3, 3), np.linalg.slogdet(real)[0])).tolist()
