"""The engine's transforms: the notes' examples, composition, pytrees, errors."""

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp
from nablanet.extend import defjvp, defvjp, primitive

XS = [-1.3, -0.4, 0.0, 0.7, 1.5, 2.2]


def f_notes1(x):
    return anp.exp(x**2)


def f_notes2(x):
    return anp.sqrt(x**2 + anp.exp(x**2))


def rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.maximum(np.abs(b), 1e-300))


# ---------------------------------------------------------------- the notes' examples


@pytest.mark.parametrize("x", XS)
def test_notes_exp_x2_both_modes(x):
    exact = 2 * x * np.exp(x**2)
    assert rel(nb.grad(f_notes1)(x), exact) <= 1e-12
    assert rel(nb.jvp(f_notes1, (x,), (1.0,))[1], exact) <= 1e-12
    assert rel(nb.jvp(f_notes1, (x,), (1.0,))[0], np.exp(x**2)) <= 1e-15


@pytest.mark.parametrize("x", XS)
def test_notes_sqrt_example_both_modes(x):
    b = np.exp(x**2)
    d = np.sqrt(x**2 + b)
    exact = x * (1 + b) / d
    assert rel(nb.grad(f_notes2)(x), exact) <= 1e-12 or abs(exact) < 1e-300
    assert rel(nb.jvp(f_notes2, (x,), (1.0,))[1], exact) <= 1e-12 or abs(exact) < 1e-300


def test_notes_examples_on_arrays():
    x = np.array(XS)
    b = np.exp(x**2)
    exact = x * (1 + b) / np.sqrt(x**2 + b)
    np.testing.assert_allclose(nb.elementwise_grad(f_notes2)(x), exact, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(nb.jvp(f_notes2, (x,), (np.ones_like(x),))[1], exact, rtol=1e-12)


# ---------------------------------------------------------------- higher order and composition


def test_second_derivative_closed_form():
    for x in XS:
        exact = (2 + 4 * x**2) * np.exp(x**2)
        assert rel(nb.grad(nb.grad(f_notes1))(x), exact) <= 1e-12
        # forward over reverse and reverse over forward
        fwd_rev = nb.jvp(nb.grad(f_notes1), (x,), (1.0,))[1]
        rev_fwd = nb.grad(lambda y: nb.jvp(f_notes1, (y,), (1.0,))[1])(x)
        assert rel(fwd_rev, exact) <= 1e-12
        assert rel(rev_fwd, exact) <= 1e-12


def test_third_derivative():
    x = 0.8
    exact = (12 * x + 8 * x**3) * np.exp(x**2)
    assert rel(nb.grad(nb.grad(nb.grad(f_notes1)))(x), exact) <= 1e-12


def test_hessian_closed_form():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))
    A = A + A.T
    b = rng.standard_normal(4)
    x = rng.standard_normal(4)

    # f(x) = 1/2 x^T A x + b.x + sum(sin x): H = A - diag(sin x)
    def f(x):
        return 0.5 * x @ A @ x + b @ x + anp.sum(anp.sin(x))

    H = nb.hessian(f)(x)
    np.testing.assert_allclose(H, A - np.diag(np.sin(x)), rtol=1e-12, atol=1e-12)
    v = rng.standard_normal(4)
    np.testing.assert_allclose(nb.hvp(f, x, v), (A - np.diag(np.sin(x))) @ v, rtol=1e-12, atol=1e-12)
    # reverse over reverse gives the same matrix
    np.testing.assert_allclose(nb.jacobian(nb.grad(f))(x), H, rtol=1e-12, atol=1e-12)


def test_jacobian_modes_agree_and_shapes():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((3, 2, 4))

    def f(x):
        return anp.tanh(anp.einsum("ijk,jk->ij", W, x)) * anp.sum(x**2)

    x = rng.standard_normal((2, 4))
    Jr = nb.jacobian(f, mode="rev")(x)
    Jf = nb.jacobian(f, mode="fwd")(x)
    assert Jr.shape == (3, 2, 2, 4)
    np.testing.assert_allclose(Jr, Jf, rtol=1e-12, atol=1e-14)
    # against central differences, entry by entry
    eps = 1e-6
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = eps
        col = (f(x + e) - f(x - e)) / (2 * eps)
        np.testing.assert_allclose(Jr[(...,) + idx], col, rtol=1e-6, atol=1e-8)


def test_jacobian_of_jacobian():
    x = np.array([0.3, -0.7])

    def f(x):
        return anp.stack([x[0] ** 2 * x[1], anp.sin(x[0]) + x[1] ** 3])

    JJ = nb.jacobian(nb.jacobian(f, mode="rev"), mode="fwd")(x)
    exact = np.zeros((2, 2, 2))
    exact[0] = [[2 * x[1], 2 * x[0]], [2 * x[0], 0]]
    exact[1] = [[-np.sin(x[0]), 0], [0, 6 * x[1]]]
    np.testing.assert_allclose(JJ, exact, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(nb.jacobian(nb.jacobian(f))(x), exact, rtol=1e-12, atol=1e-14)


def test_jacobian_argnums_tuple():
    f = lambda x, y: x * y
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    jx, jy = nb.jacobian(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(jx, np.diag(y))
    np.testing.assert_allclose(jy, np.diag(x))
    jx2, jy2 = nb.jacobian(f, argnums=(0, 1), mode="fwd")(x, y)
    np.testing.assert_allclose(jx2, np.diag(y))
    np.testing.assert_allclose(jy2, np.diag(x))


def test_closure_over_outer_tracer_no_perturbation_confusion():
    # d/dx [x * d/dy (x + y)] = d/dx [x] = 1  (a classic perturbation-confusion trap)
    f = lambda x: x * nb.grad(lambda y: x + y)(1.0)
    assert nb.grad(f)(2.0) == pytest.approx(1.0, abs=0)
    g = lambda x: x * nb.jvp(lambda y: x * y, (1.0,), (1.0,))[1]  # = x * x
    assert nb.grad(g)(3.0) == pytest.approx(6.0, abs=1e-15)


def test_long_chain_is_iterative():
    def chain(x):
        for _ in range(100_000):
            x = anp.sin(x)
        return x

    x0 = 0.5
    # derivative by hand: product of cos over the chain
    v, d = x0, 1.0
    for _ in range(100_000):
        d *= np.cos(v)
        v = np.sin(v)
    assert rel(nb.grad(chain)(x0), d) <= 1e-9
    assert rel(nb.jvp(chain, (x0,), (1.0,))[1], d) <= 1e-9


# ---------------------------------------------------------------- pytrees, argnums, aux


def test_grad_of_dict_returns_same_structure():
    params = {"W": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([0.5, -0.5]), "extra": [np.array(2.0)]}
    x = np.array([1.0, -1.0])

    def loss(p):
        return anp.sum((x @ p["W"] + p["b"]) ** 2) * p["extra"][0]

    g = nb.grad(loss)(params)
    assert set(g) == {"W", "b", "extra"} and isinstance(g["extra"], list)
    z = x @ params["W"] + params["b"]
    np.testing.assert_allclose(g["b"], 2 * z * 2.0)
    np.testing.assert_allclose(g["W"], np.outer(x, 2 * z * 2.0))
    np.testing.assert_allclose(g["extra"][0], np.sum(z**2))


def test_unused_input_gets_zero_gradient_of_its_shape():
    f = lambda p: anp.sum(p["used"] ** 2)
    g = nb.grad(f)({"used": np.ones(3), "unused": np.ones((2, 5), dtype=np.float32)})
    assert g["unused"].shape == (2, 5) and g["unused"].dtype == np.float32 and not g["unused"].any()
    # output independent of the input at all
    assert nb.grad(lambda x: 3.0)(np.ones(4)).tolist() == [0.0] * 4
    t = nb.jvp(lambda x: np.ones(3), (np.ones(2),), (np.ones(2),))[1]
    assert t.tolist() == [0.0, 0.0, 0.0]


def test_argnums_and_value_and_grad_and_aux():
    f = lambda x, y, z: x * y**2 + z
    assert nb.grad(f, argnums=1)(2.0, 3.0, 1.0) == pytest.approx(12.0)
    gx, gz = nb.grad(f, argnums=(0, 2))(2.0, 3.0, 1.0)
    assert (gx, gz) == (pytest.approx(9.0), pytest.approx(1.0))
    v, g = nb.value_and_grad(f)(2.0, 3.0, 1.0)
    assert v == pytest.approx(19.0) and g == pytest.approx(9.0)
    (v, aux), g = nb.value_and_grad(lambda x: (x**2, {"twice": 2 * x}), has_aux=True)(3.0)
    assert v == pytest.approx(9.0) and aux["twice"] == pytest.approx(6.0) and g == pytest.approx(6.0)
    g, aux = nb.grad(lambda x: (x**2, x), has_aux=True)(3.0)
    assert g == pytest.approx(6.0) and aux == pytest.approx(3.0)


def test_vjp_pytree_output_and_repeated_calls_do_not_accumulate():
    x = np.array([1.0, 2.0, 3.0])
    out, vjp_fn = nb.vjp(lambda x: {"a": x**2, "b": anp.sum(x)}, x)
    ct = {"a": np.array([1.0, 0.0, 1.0]), "b": np.array(2.0)}
    (g1,) = vjp_fn(ct)
    (g2,) = vjp_fn(ct)
    np.testing.assert_allclose(g1, 2 * x * ct["a"] + 2.0)
    np.testing.assert_allclose(g2, g1)
    grad_f = nb.grad(lambda x: anp.sum(x**3))
    np.testing.assert_allclose(grad_f(x), grad_f(x))
    np.testing.assert_allclose(grad_f(x), 3 * x**2)


def test_jvp_pytree_inputs():
    p = {"a": np.array([1.0, 2.0]), "b": 3.0}
    t = {"a": np.array([1.0, 0.0]), "b": 1.0}
    out, tan = nb.jvp(lambda p: p["a"] * p["b"], (p,), (t,))
    np.testing.assert_allclose(out, [3.0, 6.0])
    np.testing.assert_allclose(tan, [1.0 * 3.0 + 1.0 * 1.0, 0.0 + 2.0])


# ---------------------------------------------------------------- dtypes and errors


def test_float32_stays_float32_and_float64_stays_float64():
    for dt in (np.float32, np.float64):
        x = np.linspace(0.1, 1.0, 5, dtype=dt)
        f = lambda x: anp.sum(anp.tanh(x) * 2.0 + anp.exp(x) / 3.0)
        assert nb.grad(f)(x).dtype == dt
        assert nb.jvp(f, (x,), (np.ones_like(x),))[1].dtype == dt
        assert nb.hessian(f)(x).dtype == dt


def test_integer_input_raises_clear_error():
    with pytest.raises(TypeError, match="argument 0 has dtype int64.*floating-point"):
        nb.grad(lambda x: x * 2.0)(np.arange(3))
    with pytest.raises(TypeError, match="floating-point"):
        nb.grad(lambda x: x**2)(3)
    # an integer leaf of a pytree argument is named by its place (it said "argument 0", the whole dict)
    with pytest.raises(TypeError, match=r"grad: argument 0\['n'\] has dtype int64"):
        nb.grad(lambda d: d["x"] ** d["n"])({"x": 2.0, "n": 3})
    with pytest.raises(TypeError, match=r"multigrad_dict|grad: argument 0\['n'\] has dtype int64"):
        nb.multigrad_dict(lambda x, n: x**n)(2.0, 3)
    with pytest.raises(TypeError, match=r"jvp: argument 0\[1\] has dtype int64"):
        nb.jvp(lambda p: p[1] * 1.0, ([1.0, np.arange(2)],), ([1.0, np.arange(2)],))
    with pytest.raises(TypeError, match="floating-point"):
        nb.jvp(lambda x: x, (np.arange(2),), (np.ones(2),))


def test_grad_of_non_scalar_output_raises():
    with pytest.raises(TypeError, match="must return a scalar.*shape \\(3,\\)"):
        nb.grad(lambda x: x * 2.0)(np.ones(3))


@pytest.mark.parametrize(
    "call, where",
    [(lambda: nb.grad(lambda x: None)(1.0), "grad"),
     (lambda: nb.grad(lambda x: (None, x), has_aux=True)(1.0), "grad"),
     (lambda: nb.value_and_grad(lambda x: None)(1.0), "grad"),
     (lambda: nb.vjp(lambda x: None, 1.0), "vjp"),
     (lambda: nb.elementwise_grad(lambda x: None)(np.ones(2)), "elementwise_grad")],
    ids=["grad", "grad_has_aux", "value_and_grad", "vjp", "elementwise_grad"],
)
def test_function_returning_none_is_named(call, where):
    # it said "the cotangent's structure does not match the output's"
    with pytest.raises(TypeError, match=rf"^{where}: the function returned None.*must return .*return statement"):
        call()


def test_jvp_shape_mismatch_raises():
    with pytest.raises(ValueError, match="tangent has shape"):
        nb.jvp(lambda x: x, (np.ones(3),), (np.ones(2),))


def test_unsupported_numpy_function_names_itself():
    with pytest.raises(nb.NotDifferentiableError, match="linalg.*lstsq|lstsq.*not differentiable"):
        nb.grad(lambda x: anp.sum(np.linalg.lstsq(x, np.ones(2))[0]))(np.eye(2))
    with pytest.raises(nb.NotDifferentiableError, match="convolve"):
        nb.grad(lambda x: anp.sum(np.convolve(x, x)))(np.ones(3))
    with pytest.raises(nb.NotDifferentiableError, match="convolve.*not differentiable"):
        nb.grad(lambda x: anp.sum(anp.convolve(x, x)))(np.ones(3))
    with pytest.raises(TypeError, match="float\\(\\)"):
        nb.grad(lambda x: float(x))(1.0)


def test_plain_numpy_ufuncs_are_routed_to_rules():
    x = np.array([0.2, 0.4])
    np.testing.assert_allclose(nb.grad(lambda x: np.sum(np.exp(x) * np.sin(x)))(x), np.exp(x) * (np.sin(x) + np.cos(x)))


# ---------------------------------------------------------------- extend and check_grads


def _make_logsigmoid(wrong_vjp=False, wrong_jvp=False):
    @primitive
    def logsigmoid(x):
        return -np.logaddexp(0.0, -x)

    d = lambda x: anp.exp(-anp.logaddexp(0.0, x))  # sigmoid(-x)
    if wrong_vjp:
        defvjp(logsigmoid, lambda ans, x: lambda g: g * d(x) * 1.01)
    else:
        defvjp(logsigmoid, lambda ans, x: lambda g: g * d(x))
    if wrong_jvp:
        defjvp(logsigmoid, lambda g, ans, x: g * d(-x))
    else:
        defjvp(logsigmoid, lambda g, ans, x: g * d(x))
    return logsigmoid


def test_extend_user_primitive_both_modes_order2():
    ls = _make_logsigmoid()
    x = np.array([-2.0, -0.3, 0.5, 3.0])
    nb.check_grads(ls, (x,), order=2)
    np.testing.assert_allclose(nb.elementwise_grad(ls)(x), 1 / (1 + np.exp(x)), rtol=1e-14)


def test_check_grads_catches_wrong_vjp():
    ls = _make_logsigmoid(wrong_vjp=True)
    with pytest.raises(nb.GradientCheckError, match="reverse-mode \\(VJP\\).*argument 0") as e:
        nb.check_grads(ls, (np.array([0.3, 1.2]),), order=1)
    assert "analytic" in str(e.value) and "numerical" in str(e.value)
    nb.check_grads(ls, (np.array([0.3, 1.2]),), order=1, modes=("fwd",))  # forward rule is right


def test_check_grads_catches_wrong_jvp():
    ls = _make_logsigmoid(wrong_jvp=True)
    with pytest.raises(nb.GradientCheckError, match="forward-mode \\(JVP\\)"):
        nb.check_grads(ls, (np.array([0.3, 1.2]),), order=1)
    nb.check_grads(ls, (np.array([0.3, 1.2]),), order=1, modes=("rev",))


def test_check_grads_catches_a_derivative_of_the_wrong_shape():
    """A cotangent (tangent) of the wrong shape fails even when its pairing with the tangent (cotangent) is
    right: a scalar argument broadcast over c columns whose rule returns the c column sums, unsummed."""
    @primitive
    def scale(x, s):
        return x * s

    defvjp(scale, lambda ans, x, s: lambda g: g * s, lambda ans, x, s: lambda g: np.sum(g * x, axis=0))
    defjvp(scale, lambda g, ans, x, s: g * s, lambda g, ans, x, s: g * x)
    x = np.array([[0.3, 1.2, -0.5], [2.0, 0.1, 0.7]])
    with pytest.raises(nb.GradientCheckError, match=r"reverse-mode \(VJP\).*argument 1.*shapes \[\(3,\)\], "
                                                     r"expected \[\(\)\]"):
        nb.check_grads(scale, (x, np.float64(1.5)), order=1)

    @primitive
    def first_row(x):
        return x[0]

    defvjp(first_row, lambda ans, x: lambda g: np.zeros_like(x) + np.eye(len(x), 1)[:, 0][:, None] * g)
    defjvp(first_row, lambda g, ans, x: g[:1])  # shape (1, c): the values of the row, one axis too many
    with pytest.raises(nb.GradientCheckError, match=r"forward-mode \(JVP\).*shapes \[\(1, 3\)\], "
                                                     r"expected \[\(3,\)\]"):
        nb.check_grads(first_row, (x,), order=1)


def test_check_grads_catches_wrong_second_derivative():
    @primitive
    def cube(x):
        return x**3

    # first derivative right on the values, but the rule uses a constant where
    # it must use a differentiable function: its own derivative is then wrong.
    defvjp(cube, lambda ans, x: lambda g: g * 3.0 * np.asarray(nb.autodiff.getval(x)) ** 2)
    defjvp(cube, lambda g, ans, x: g * 3.0 * np.asarray(nb.autodiff.getval(x)) ** 2)
    nb.check_grads(cube, (np.array([0.5, 1.5]),), order=1)
    with pytest.raises(nb.GradientCheckError, match="order 2"):
        nb.check_grads(cube, (np.array([0.5, 1.5]),), order=2)


def test_missing_rule_raises_clear_error():
    @primitive
    def twice(x):
        return 2 * x

    defvjp(twice, lambda ans, x: lambda g: 2 * g)
    assert nb.grad(lambda x: anp.sum(twice(x)))(np.ones(2)).tolist() == [2.0, 2.0]
    with pytest.raises(nb.NotDifferentiableError, match="no JVP rule for argument 0 of primitive 'twice'"):
        nb.jvp(twice, (np.ones(2),), (np.ones(2),))


def test_check_grads_multiple_args_and_pytrees():
    f = lambda p, x: anp.tanh(x @ p["W"] + p["b"])
    rng = np.random.default_rng(3)
    p = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    nb.check_grads(f, (p, rng.standard_normal((4, 3))), order=2)


def test_numpy_scalar_gradient_keeps_input_dtype():
    assert nb.grad(lambda x: x * np.float64(2.0))(np.float32(1.0)).dtype == np.float32


def test_prod_derivatives_at_zeros():
    x = np.array([0.0, 2.0, 3.0])
    np.testing.assert_allclose(nb.grad(anp.prod)(x), [6.0, 0.0, 0.0])
    np.testing.assert_allclose(nb.hessian(anp.prod)(x), [[0, 3, 2], [3, 0, 0], [2, 0, 0]])
    X = np.array([[0.0, 2.0], [1.5, 0.0], [0.5, 3.0]])
    for axis in (0, 1, None, (0, 1)):
        nb.check_grads(lambda x: anp.prod(x, axis=axis), (X,), order=2)
        np.testing.assert_allclose(nb.jvp(lambda x: anp.prod(x, axis=axis), (X,), (np.ones_like(X),))[1],
                                   nb.jacobian(lambda x: anp.prod(x, axis=axis))(X).reshape(np.size(np.prod(X, axis)), -1).sum(1)
                                   .reshape(np.shape(np.prod(X, axis))))


# ---------------------------------------------------------------- the gradient belongs to the caller


def test_gradient_leaves_are_distinct_writable_arrays():
    # add's rule hands its cotangent to both arguments: two leaves of the gradient were one array,
    # so an in-place step on one (g["a"] *= lr) changed the other; a sum's gradient was a read-only
    # broadcast view (g *= 2 raised).  autograd returns separate, writable arrays.
    x, y = np.array([0.3, -1.2, 2.0]), np.array([1.1, 0.4, -0.7])
    want = 1 - np.tanh(x + y) ** 2

    def f(p):
        return anp.sum(anp.tanh(p["a"] + p["b"]))

    two = nb.grad(lambda a, b: f({"a": a, "b": b}), argnums=(0, 1))(x, y)
    _, vg = nb.value_and_grad(f)({"a": x, "b": y})
    for g in (nb.grad(f)({"a": x, "b": y}), dict(zip("ab", two)), vg,
              dict(zip("ab", nb.vjp(lambda a, b: anp.tanh(a + b), x, y)[1](np.ones(3))))):
        assert not np.shares_memory(g["a"], g["b"])
        g["a"] *= 2.0
        np.testing.assert_allclose(g["a"], 2 * want, rtol=1e-15)
        np.testing.assert_allclose(g["b"], want, rtol=1e-15)
    for fun in (anp.sum, anp.mean, lambda a: anp.sum(a + 1.0)):
        g = nb.grad(fun)(np.ones((2, 3)))
        ref = g.copy()
        g[0, 0] += 1.0  # one entry, not every entry of a broadcast
        assert g.flags.writeable and g[0, 0] == ref[0, 0] + 1.0 and np.all(g.ravel()[1:] == ref.ravel()[1:])
