"""Code written for HIPS autograd runs on nablanet: its transform names, argnum, and check_grads."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp
import nablanet.numpy.random as npr
from nablanet.test_util import check_grads, combo_check


def test_check_grads_curried_like_autograd():
    x = np.array([0.3, -1.2, 2.0])
    check_grads(anp.tanh)(x)
    check_grads(anp.tanh, modes=["rev"], order=1)(x)
    check_grads(lambda x, y: x * anp.sin(y), (0, 1), ["fwd", "rev"], order=2)(x, 0.7)
    check_grads(anp.sum, argnum=0)(np.ones((2, 3)), axis=1, keepdims=True)
    check_grads(anp.append, argnum=(0, 1))([1.0, 2.0, 3.0], 4.0)
    nb.check_grads(anp.exp, (x,), 2, ("fwd",))  # nablanet's own positional form still works


def test_check_grads_curried_still_catches_wrong_rules():
    bad = nb.extend.primitive(np.sin)
    nb.extend.defvjp(bad, lambda ans, x: lambda g: g * anp.cos(x) * 1.01)
    nb.extend.defjvp(bad, lambda g, ans, x: g * anp.cos(x))
    with pytest.raises(nb.GradientCheckError, match="reverse"):
        check_grads(bad)(np.array([0.4, 1.0]))
    with pytest.raises(nb.GradientCheckError):
        check_grads(lambda x, y: bad(x) * y, argnum=(0, 1))(np.array([0.4]), 2.0)


def test_combo_check_runs_every_combination():
    seen = []

    def f(x, axis=None, keepdims=False):
        seen.append((np.shape(x), axis, keepdims))
        return anp.sum(x, axis=axis, keepdims=keepdims)

    combo_check(f, (0,), modes=["rev"], order=1)([np.ones((2, 3)), np.ones((1, 3))], axis=[None, 0], keepdims=[True, False])
    assert {(s, a, k) for s, a, k in seen} == {(s, a, k) for s in [(2, 3), (1, 3)] for a in (None, 0) for k in (True, False)}


def test_argnum_spelling():
    f = lambda x, y: x * y**2
    assert nb.grad(f, argnum=1)(2.0, 3.0) == 12.0
    assert nb.grad(f, 1)(2.0, 3.0) == 12.0
    assert nb.value_and_grad(f, argnum=0)(2.0, 3.0) == (18.0, 9.0)
    np.testing.assert_array_equal(nb.elementwise_grad(f, argnum=1)(2.0, np.array([1.0, 2.0])), [4.0, 8.0])
    np.testing.assert_array_equal(nb.jacobian(f, argnum=1)(2.0, np.array([1.0, 2.0])), np.diag([4.0, 8.0]))
    assert nb.hessian(f, argnum=1)(2.0, 3.0) == 4.0


def test_autograd_transform_names():
    x = np.array([0.5, -1.0, 2.0])
    cube = lambda x: anp.sum(x**3)
    vjp_fn, value = nb.make_vjp(anp.sin)(x)
    np.testing.assert_allclose(value, np.sin(x))
    np.testing.assert_allclose(vjp_fn(np.ones(3)), np.cos(x))
    value, tangent = nb.make_jvp(anp.sin)(x)(np.ones(3))
    np.testing.assert_allclose(tangent, np.cos(x))
    np.testing.assert_allclose(nb.make_jvp(lambda a, b: a * b, (0, 1))(x, x)((np.ones(3), np.ones(3)))[1], 2 * x)
    np.testing.assert_allclose(nb.deriv(anp.sin)(x), np.cos(x))
    g, aux = nb.grad_and_aux(lambda x: (cube(x), "aux"))(x)
    np.testing.assert_allclose(g, 3 * x**2)
    assert aux == "aux"
    np.testing.assert_allclose(nb.holomorphic_grad(lambda x: x**3)(2.0), 12.0)
    v = np.array([1.0, 0.0, 2.0])
    hvp_fn, gradient = nb.make_hvp(cube)(x)
    np.testing.assert_allclose(gradient, 3 * x**2)
    np.testing.assert_allclose(hvp_fn(v), 6 * x * v)
    np.testing.assert_allclose(nb.hessian_tensor_product(cube)(x, v), 6 * x * v)
    np.testing.assert_allclose(nb.hessian_vector_product(cube)(x, v), 6 * x * v)
    np.testing.assert_allclose(nb.tensor_jacobian_product(anp.sin)(x, v), np.cos(x) * v)
    J = np.outer(np.ones(3), 1.0) * 0 + np.diag(x)  # d outer(x, x)[i, k] / dx_j
    M = nb.vector_jacobian_product(lambda x: anp.outer(x, x))(x, v)
    np.testing.assert_allclose(M, np.outer(x, v) + np.eye(3) * (v @ x) + 0 * J)


def test_numpy_random_is_numpy_random():
    npr.seed(3)
    a = npr.randn(2, 3)
    np.random.seed(3)
    np.testing.assert_array_equal(a, np.random.randn(2, 3))
    assert anp.random is np.random or anp.random.randn is np.random.randn


@pytest.mark.parametrize("op", ["==", "!=", "<=", ">=", "<", ">"])
def test_grad_of_a_comparison_is_refused_and_its_derivative_inside_is_zero(op):
    f = eval(f"lambda x, y: x {op} y")
    with pytest.raises(TypeError, match="must return a float"):  # a bool has no gradient (autograd's TypeError)
        nb.grad(f)(0.7, 1.8)
    g = eval(f"lambda x, y: anp.sum((x {op} y) * 1.0)")  # a comparison inside a float computation
    assert nb.grad(g)(0.7, 1.8) == 0.0
    assert nb.grad(g, 1)(0.7, 1.8) == 0.0


def test_grad_of_a_traced_integer_output_still_raises():
    with pytest.raises(TypeError, match="must return a float"):
        nb.grad(lambda x: anp.astype(x, int))(1.5)
    assert nb.grad(lambda x, y: x % y, 1)(0.7, 1.8) == 0.0  # floor(0.7/1.8) = 0


def test_extend_argnum_forms():
    from nablanet.extend import defjvp_argnum, defvjp_argnum, primitive

    @primitive
    def scaled(x, y, scale=1.0):
        return scale * x * y

    defvjp_argnum(scaled, lambda argnum, ans, args, kw: lambda g: g * kw.get("scale", 1.0) * args[1 - argnum])
    defjvp_argnum(scaled, lambda argnum, g, ans, args, kw: g * kw.get("scale", 1.0) * args[1 - argnum])
    x, y = np.array([0.5, -1.0]), np.array([2.0, 3.0])
    check_grads(lambda x, y: scaled(x, y, scale=1.5), argnum=(0, 1))(x, y)
    np.testing.assert_allclose(nb.grad(lambda x: anp.sum(scaled(x, y, scale=2.0)))(x), 2.0 * y)


def test_extend_defvjp_argnums_takes_autograds_form():
    # autograd's maker is (argnums, ans, args, kwargs); nablanet.extend spread the arguments (an IndexError)
    from nablanet.extend import defjvp, defvjp_argnums, primitive

    @primitive
    def scaled_mul(x, y, scale=1.0):
        return scale * x * y

    seen = []

    def vjps(argnums, ans, args, kwargs):
        seen.append(tuple(argnums))
        x, y = args
        s = kwargs.get("scale", 1.0)
        return lambda g: [g * s * (y if n == 0 else x) for n in argnums]

    defvjp_argnums(scaled_mul, vjps)
    defjvp(scaled_mul, lambda g, ans, x, y, scale=1.0: g * scale * y, lambda g, ans, x, y, scale=1.0: g * scale * x)
    x, y = np.array([0.5, -1.5]), np.array([2.0, 0.25])
    assert nb.grad(lambda a, b: anp.sum(scaled_mul(a, b, scale=3.0)), argnums=(0, 1))(x, y)[1].tolist() == \
        (3.0 * x).tolist()
    assert seen[-1] == (0, 1)
    check_grads(lambda a, b: scaled_mul(a, b, scale=3.0), modes=["fwd", "rev"], order=2)(x, y)
    autograd = pytest.importorskip("autograd")
    agx = pytest.importorskip("autograd.extend")
    agnp = pytest.importorskip("autograd.numpy")

    @agx.primitive
    def ag_scaled_mul(x, y, scale=1.0):
        return scale * x * y

    agx.defvjp_argnums(ag_scaled_mul, vjps)  # the same maker, in both libraries
    assert np.array_equal(autograd.grad(lambda a: agnp.sum(ag_scaled_mul(a, y, scale=3.0)))(x),
                          nb.grad(lambda a: anp.sum(scaled_mul(a, y, scale=3.0)))(x))


def test_integer_casts_of_traced_values_like_autograd():
    W = np.arange(20.0).reshape(5, 4) / 7.0
    W[:, -1] = [0, 1, 2, 1, 0]

    def fun(W):
        idx = anp.int64(W[:, -1])  # an integer carries no derivative: a plain int64 array
        assert not isinstance(idx, nb.extend.Tracer) and idx.dtype == np.int64 and idx.dtype == anp.int64
        return anp.sum(W[:, :-1][idx] ** 2)

    expected = np.zeros_like(W)
    np.add.at(expected[:, :-1], [0, 1, 2, 1, 0], 2 * W[[0, 1, 2, 1, 0], :-1])
    np.testing.assert_allclose(nb.grad(fun)(W), expected)
    assert np.dtype(anp.int32) == np.int32 and np.zeros(2, anp.int64).dtype == np.int64
    assert anp.int64(3) == 3 and anp.uint8([1.7, 2.2]).tolist() == [1, 2]
    assert isinstance(np.int64(3), anp.int64) and issubclass(np.int32, anp.int32) and not isinstance(3.0, anp.int64)


def test_numpy_own_function_on_a_list_of_traced_values_says_what_to_write():
    # NumPy converts the list itself before any dispatch, so nablanet cannot route it: one clear error
    with pytest.raises(nb.NotDifferentiableError, match=r"np\.mean\(\[x, y\]\).*anp\.mean\(\[x, y\]\)"):
        nb.grad(lambda x: np.mean([x, 2 * x]))(1.0)
    with pytest.raises(nb.NotDifferentiableError, match=r"np\.float64\(x\)"):
        nb.grad(lambda x: anp.sum(np.float64(x)))(np.ones(2))
    # what the message suggests works, and so does NumPy's function on a stacked traced array
    assert nb.grad(lambda x: anp.mean([x, 2 * x]))(1.0) == 1.5
    assert nb.grad(lambda x: np.mean(anp.stack([x, 2 * x])))(1.0) == 1.5


# ---------------------------------------------------------------------------
# Found by running HIPS autograd's own test suite against nablanet (issue 9 review).
# ---------------------------------------------------------------------------


def test_check_grads_second_order_checks_the_derivative_in_the_cotangent():
    # foo is linear, so its VJP's own derivative is reached only through the cotangent g:
    # a wrong rule there (bar's) went unnoticed at order 2 when g was held fixed.
    bar = nb.extend.primitive(lambda x: x)
    nb.extend.defvjp(bar, lambda ans, x: lambda g: g * 1.001)
    nb.extend.defjvp(bar, lambda g, ans, x: g * 1.001)
    foo = nb.extend.primitive(lambda x: x * 2.0)
    foo.__name__ = "foo"
    nb.extend.defvjp(foo, lambda ans, x: lambda g: bar(g) * 2)
    nb.extend.defjvp(foo, lambda g, ans, x: bar(g) * 2)
    with pytest.raises(nb.GradientCheckError, match=r"\(VJP\) check of vjp_foo failed"):
        check_grads(foo, modes=["rev"])(1.0)
    with pytest.raises(nb.GradientCheckError, match=r"\(JVP\) check of jvp_foo failed"):
        check_grads(foo, modes=["fwd"])(1.0)
    check_grads(foo, modes=["fwd", "rev"], order=1)(1.0)  # first order is right


def test_check_grads_names_the_failed_check_as_autograd_does():
    foo = nb.extend.primitive(lambda x: x * 2.0)
    foo.__name__ = "foo"
    nb.extend.defvjp(foo, lambda ans, x: lambda g: g * 2.001)
    with pytest.raises(AssertionError, match=r"\(VJP\) check of foo failed.*reverse-mode \(VJP\).*argument 0"):
        check_grads(foo, modes=["rev"])(1.0)


def test_grad_refuses_an_output_that_is_not_a_float():
    x = np.array([1.0, 2.0, 3.0])
    for f in (lambda x: anp.allclose(x, (x * 3.0) / 3.0), lambda x: x[0] > 0, lambda x: 0):
        with pytest.raises(TypeError, match="must return a float"):
            nb.grad(f)(x)
    assert np.array_equal(nb.grad(lambda x: 1.0)(x), np.zeros(3))  # a float constant: gradient 0


def test_a_primitive_without_rules_raises_not_implemented_as_autograd():
    f = nb.extend.primitive(lambda x: 2.0 * x)
    with pytest.raises(NotImplementedError):
        nb.grad(f)(1.0)
    with pytest.raises(NotImplementedError):
        nb.deriv(f)(1.0)
    with pytest.raises(TypeError):  # still a TypeError as before
        nb.grad(f)(1.0)


def test_grad_names_its_result_as_autograd():
    def foo(x):
        """foo's doc"""
        return x

    assert nb.grad.__name__ == "grad"
    assert nb.grad.__doc__.startswith("\n    Returns a function which")
    assert nb.grad(foo, 1).__name__ == "grad_of_foo_wrt_argnum_1"
    assert nb.grad(foo, 1).__doc__.startswith("    grad of function foo with")


def test_make_ggnvp_is_jt_h_j_v():
    rng = np.random.default_rng(0)
    A, x, v = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=3)

    def f(x):
        return anp.tanh(anp.dot(A, x))

    J = nb.jacobian(f)(x)
    np.testing.assert_allclose(nb.make_ggnvp(f)(x)(v), J.T @ J @ v, rtol=1e-12)  # default g: H = I

    def g(y):
        return anp.sum(anp.exp(y))

    H = np.diag(np.exp(f(x)))
    np.testing.assert_allclose(nb.make_ggnvp(f, g)(x)(v), J.T @ H @ J @ v, rtol=1e-12)
    check_grads(lambda x: nb.make_ggnvp(f, g)(x)(v), modes=["rev"], order=1)(x)


def test_checkpoint_recomputes_and_differentiates_at_any_order():
    calls = []

    def block(a, w):
        calls.append(1)
        return anp.sin(a**2 * w + 1.0)

    cblock = nb.checkpoint(block)
    x, w = np.array([0.3, -0.8, 1.1]), 0.7

    def loss(x, w, blk):
        for _ in range(3):
            x = blk(x, w)
        return anp.sum(x**2)

    calls.clear()
    g = nb.grad(loss, (0, 1))(x, w, cblock)
    assert len(calls) == 6  # three forward calls, three recomputes in the sweep
    g_plain = nb.grad(loss, (0, 1))(x, w, block)
    np.testing.assert_allclose(g[0], g_plain[0], rtol=1e-13)
    np.testing.assert_allclose(g[1], g_plain[1], rtol=1e-13)
    check_grads(lambda x, w: loss(x, w, cblock), (0, 1), order=2)(x, w)
    np.testing.assert_allclose(nb.hessian(lambda x: loss(x, w, cblock))(x),
                               nb.hessian(lambda x: loss(x, w, block))(x), rtol=1e-12)


def test_where_of_python_values_alone_gives_python_values_as_autograd():
    """HIPS autograd's where: from bools, numbers and lists of them alone, Python values (its own tests ask for
    this); anything NumPy among the arguments (an array, a NumPy scalar) gives NumPy's result, and traced values
    are differentiated as ever."""
    for args, want in [((True, 1, 2), 1), ((True, 3.0, 4.0), 3.0), ((False, 1, 2.0), 2.0),
                       ((True, [1, 2], [3, 4]), [1, 2]), (([True, False], [1.0, 2.0], 3.0), [1.0, 3.0])]:
        got = anp.where(*args)
        assert got == want and type(got) is type(want), (args, got)
    assert isinstance(anp.where(True, np.float32(1.0), 2.0), np.ndarray)
    assert anp.where(np.array([True, False]), 1.0, 2.0).tolist() == [1.0, 2.0]
    assert nb.grad(lambda x: anp.where(False, x * x, 2.0 * x))(3.0) == 2.0
    assert nb.grad(nb.grad(lambda x: anp.where(True, x**3, 2.0)))(2.0) == 12.0


def test_where_takes_numpys_one_argument_and_keyword_forms():
    c = [True, False, True]
    x, y = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    assert np.array_equal(anp.where(c)[0], [0, 2])
    np.testing.assert_array_equal(anp.where(c, x, y=y), [1.0, 5.0, 3.0])
    with pytest.raises(ValueError, match="both or neither"):
        anp.where(np.array(c), x)
    # a traced value passed by keyword reaches the rules (it was silently dropped: [1, 0, 1])
    np.testing.assert_array_equal(nb.grad(lambda x: anp.sum(anp.where(c, x, y=x**2)))(x), [1.0, 4.0, 1.0])
    assert nb.jvp(lambda x: anp.sum(anp.where(c, x, y=x**2)), (x,), (np.ones(3),))[1] == 6.0
    check_grads(lambda x: anp.where(c, x, y=anp.sin(x)))(x)
    with pytest.raises(nb.NotDifferentiableError, match="argument 2 of primitive 'clip'"):  # no rule: an error, not a 0
        nb.grad(lambda x: anp.sum(anp.clip(x, 1.5, a_max=x * 0.9)))(x)


def test_autograd_spellings_row_stack_and_linalg_helpers():
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    np.testing.assert_array_equal(anp.row_stack((a, b)), np.vstack((a, b)))
    check_grads(lambda a: anp.row_stack((a, b)))(a)
    m = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(anp.linalg.T(m), m.T)
    np.testing.assert_allclose(anp.linalg._dot(anp.linalg.T(m), m), m.T @ m)
    check_grads(lambda m: anp.linalg.pinv(anp.linalg._dot(anp.linalg.T(m), m) + np.eye(3)), order=1)(m)


def test_scalar_close_and_check_equivalent():
    from nablanet.test_util import check_equivalent, scalar_close

    assert scalar_close(1.0, 1.0 + 1e-9) and not scalar_close(1.0, 1.1)
    check_equivalent({"a": np.ones(2), "b": (1.0,)}, {"a": np.ones(2), "b": (1.0 + 1e-9,)})
    for y in ({"a": np.ones(2), "b": (1.1,)}, {"a": np.ones(3), "b": (1.0,)}, {"a": np.ones(2)}):
        with pytest.raises(AssertionError):
            check_equivalent({"a": np.ones(2), "b": (1.0,)}, y)


def test_misc_flatten_round_trips_and_differentiates():
    from nablanet.misc import flatten

    r = np.random.default_rng(3).normal
    x = (1.0, r(size=(2, 3)), [r(size=(1, 4)), {"x": 2.0, "y": r(size=(4, 2))}], ())
    vec, unflatten = flatten(x)
    assert vec.shape == (20,) and vec[0] == 1.0
    np.testing.assert_array_equal(flatten(unflatten(vec))[0], vec)
    assert unflatten(vec)[2][1]["y"].shape == (4, 2) and unflatten(vec)[3] == ()
    assert flatten((1.0, 2j))[0].dtype == np.complex128
    assert flatten(((), []))[0].shape == (0,)
    # both directions inside differentiated code
    g = nb.grad(lambda a, b: anp.sum(flatten([a, {"b": b}])[0] ** 2), (0, 1))(r(size=3), 2.0)
    assert g[0].shape == (3,) and g[1] == 4.0
    w = r(size=20)
    check_grads(lambda v: anp.sum(unflatten(v)[1] * 3.0) + unflatten(v)[2][1]["x"] ** 2)(w)
    with pytest.raises(ValueError, match="vector of 20 entries"):
        unflatten(np.zeros(19))


def test_builtins_isinstance_sees_through_traced_values():
    from nablanet import dict as nb_dict  # autograd's spellings
    from nablanet import isinstance as nb_isinstance
    from nablanet import tuple as nb_tuple

    seen = []

    def f(x, y):
        seen.append((nb_isinstance(x, np.ndarray), nb_isinstance(y, float), isinstance(x, np.ndarray)))
        return anp.sum(x) * y

    nb.grad(f, (0, 1))(np.zeros(2), 1.5)
    nb.jvp(f, (np.zeros(2), 1.5), (np.ones(2), 1.0))
    assert seen == [(True, True, False)] * 2  # the builtin sees a Tracer; nablanet.isinstance its value
    assert nb_tuple is tuple and nb_dict is dict and nb_isinstance([], list) and not nb_isinstance((), list)


def test_builtins_type_sees_through_traced_values():
    from nablanet import type as nb_type  # autograd's `from autograd.builtins import type`

    seen = []

    def f(x, y):
        seen.append((nb_type(x), nb_type(y), type(x) is np.ndarray))
        return anp.sum(x) * y

    nb.grad(f, (0, 1))(np.zeros(2), 1.5)
    nb.grad(nb.grad(lambda y: f(np.ones(2), y)))(2.0)
    assert seen[0] == (np.ndarray, np.float64, False) and seen[1][:2] == (np.ndarray, np.float64)
    assert nb_type("C", (), {"k": 1}).k == 1 and nb_type(3) is int


def test_extend_isbox():
    from nablanet.extend import isbox

    seen = []
    nb.grad(lambda x: seen.append(isbox(x)) or anp.sum(x))(np.ones(2))
    assert seen == [True] and not isbox(np.ones(2))


def _lists(x):
    return [[x, 1.0], [2.0, x * 3.0]]


LIST_CASES = {  # each takes its matrix/vector arguments as nested lists holding a traced value
    "dot": lambda x, c: anp.dot(c(_lists(x)), c([1.0, x])),
    "inner": lambda x, c: anp.inner(c([x, 1.0]), c([2.0, x])),
    "vdot": lambda x, c: anp.vdot(c([x, 1.0]), c([2.0, x])),
    "kron": lambda x, c: anp.kron(c(_lists(x)), c(_lists(x))),
    "tensordot": lambda x, c: anp.tensordot(c(_lists(x)), c(_lists(x))),
    "trace": lambda x, c: anp.trace(c(_lists(x))),
    "cross": lambda x, c: anp.cross(c([x, 1.0, 2.0]), c([1.0, x, 0.0])),
    "einsum": lambda x, c: anp.einsum("ij,jk", c(_lists(x)), c(_lists(x))),
    "det": lambda x, c: anp.linalg.det(c(_lists(x))),
    "inv": lambda x, c: anp.linalg.inv(c(_lists(x))),
    "solve": lambda x, c: anp.linalg.solve(c(_lists(x)), c([1.0, x])),
    "slogdet": lambda x, c: anp.linalg.slogdet(c(_lists(x)))[1],
    "eigh": lambda x, c: anp.linalg.eigh(c([[4.0 + x, 1.0], [1.0, 3.0]]))[0],
    "svd": lambda x, c: anp.linalg.svd(c(_lists(x)))[1],
    "norm": lambda x, c: anp.linalg.norm(c(_lists(x))),
    "matrix_power": lambda x, c: anp.linalg.matrix_power(c(_lists(x)), 3),
    "pinv": lambda x, c: anp.linalg.pinv(c(_lists(x))),
    "multi_dot": lambda x, c: anp.linalg.multi_dot([c(_lists(x)), c(_lists(x)), c([[1.0], [x]])]),
    "operator": lambda x, c: (x * np.ones(2)) * c([x, 1.0]) + c([2.0, x]) @ (x * np.ones(2)),
}


@pytest.mark.parametrize("name", sorted(LIST_CASES))
def test_lists_of_traced_values_where_numpy_takes_array_likes(name):
    # these read shapes before their primitives ran, so a list holding a traced value raised
    f = LIST_CASES[name]
    as_array = lambda v: anp.array(v)  # noqa: E731
    for mode in (nb.grad, lambda g: (lambda x: nb.jvp(g, (x,), (1.0,))[1])):
        ours = mode(lambda x: anp.sum(f(x, lambda v: v)))(0.7)
        ref = mode(lambda x: anp.sum(f(x, as_array)))(0.7)
        np.testing.assert_allclose(ours, ref, rtol=1e-12)
    check_grads(lambda x: f(x, lambda v: v))(0.7)


class _Labelled(np.lib.mixins.NDArrayOperatorsMixin):
    """A foreign array container in the style of xarray's DataArray: NumPy's operator mixin and
    an __array_ufunc__ that computes on .data and wraps the result."""

    def __init__(self, data):
        self.data = data

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = [i.data if isinstance(i, _Labelled) else i for i in inputs]
        return _Labelled(getattr(ufunc, method)(*inputs, **kwargs))


def test_a_foreign_array_container_wraps_the_traced_value():
    # x * container gave a traced value holding the container ('RTracer' has no attribute 'data');
    # the container now computes on its data with the traced value inside, as with autograd
    base = np.array([1.0, 2.0, 3.0])
    cases = [
        (lambda x: anp.sum((x * _Labelled(base)).data), np.sum(base)),
        (lambda x: anp.sum((_Labelled(base) * x).data), np.sum(base)),
        (lambda x: anp.sum((x * (_Labelled(base) * x)).data), 2 * 2.0 * np.sum(base)),
        (lambda x: anp.sum(np.abs(_Labelled(-base) * x).data), np.sum(base)),
    ]
    for f, want in cases:
        assert nb.grad(f)(2.0) == want
        check_grads(f)(2.0)
    assert (2.0 * _Labelled(base)).data.tolist() == [2.0, 4.0, 6.0]  # plain values: unchanged


def test_conversions_of_a_traced_value_name_the_conversion():
    # complex(x), int(x) and x.item() were all reported as "float()"
    for conv, what in ((float, r"float\(\)"), (int, r"int\(\)"), (complex, r"complex\(\)"),
                       (lambda x: x.item(), r"\.item\(\)"), (lambda x: [0, 1][x], r"an index \(operator\.index\)")):
        with pytest.raises(TypeError, match=f"nablanet: {what} of a traced value"):
            nb.grad(lambda x, conv=conv: conv(x) * x)(1.0)


def test_const_graph_records_once_and_replays_without_running_python():
    from nablanet.misc import const_graph

    calls, processed = [], []

    @nb.extend.primitive
    def process(v, label):  # a primitive with a side effect: shows which steps a replay runs
        processed.append(label)
        return v

    nb.extend.defvjp(process, lambda ans, v, label: lambda g: g)

    def f(x, y, z):
        calls.append(None)
        return process(x, "x") + 2.0 * process(y, "y") + 3.0 * anp.sin(process(z, "z"))

    g = const_graph(f, 1.0, z=np.array([0.5, 2.0]))  # x and z fixed: the steps on them are folded in
    assert calls == [] and processed == []
    for y in [2.0, -1.5, 0.25]:
        np.testing.assert_allclose(g(y), 1.0 + 2.0 * y + 3.0 * np.sin([0.5, 2.0]), rtol=1e-15)
    assert len(calls) == 1 and processed == ["x", "y", "z", "y", "y"]  # traced once, then only y's step
    assert g.traces == 1 and g.__name__ == "f"
    # a derivative inside is recorded too; a new shape is recorded once more (jit's contract)
    dg = const_graph(lambda w, x: nb.grad(lambda t: anp.sum(anp.tanh(w * t)))(x), 3.0)
    for x in [np.array([0.1, -0.2]), np.array([0.4, 0.3]), np.linspace(-1, 1, 5)]:
        np.testing.assert_allclose(dg(x), 3.0 / np.cosh(3.0 * x) ** 2, rtol=1e-13)
    assert dg.traces == 2
    # control flow on the input is guarded, never replayed stale
    h = const_graph(lambda x: x * 2.0 if x > 0 else -x)
    assert (h(3.0), h(-3.0), h(1.0), h(-1.0)) == (6.0, 3.0, 2.0, 1.0)


def test_const_graph_takes_keywords_at_the_call_as_partial_does():
    # the keyword was refused with "k() got an unexpected keyword argument 'power'", naming a function that has it
    from nablanet.misc import const_graph

    def k(x, scale=1.0, power=2):
        return anp.sum(x**power) * scale

    g = const_graph(k, scale=3.0)
    x = np.array([1.0, 2.0])
    assert (g(x), g(x, power=3), g(x, scale=0.5), g(x, scale=0.25), g(x, power=3)) == (15.0, 27.0, 2.5, 1.25, 27.0)
    assert g.traces == 3  # a float keyword is traced (0.25 replays 0.5's record); an int one is static
    np.testing.assert_array_equal(nb.grad(g)(x, power=3), 9.0 * x**2)


def test_differential_operators_alias_the_transforms():
    import nablanet.autodiff.transforms as transforms
    import nablanet.differential_operators as ops

    assert ops.__all__ and all(getattr(ops, n) is getattr(transforms, n) for n in ops.__all__)
    assert all(getattr(nb, n) is getattr(ops, n) for n in ops.__all__)


def test_grad_named_and_multigrad_dict():
    def f(x, y, scale=2.0, *rest, **named):
        return scale * x * y**2 + anp.sum(anp.stack(rest)) * named["w"] if rest else scale * x * y**2

    assert nb.grad_named(f, "y")(1.5, 3.0) == 2.0 * 1.5 * 2 * 3.0
    assert nb.grad_named(f, "scale")(1.5, 3.0, 4.0) == 1.5 * 9.0
    with pytest.raises(ValueError, match="no positional parameter 'z'"):
        nb.grad_named(f, "z")
    g = nb.multigrad_dict(f)(1.5, 3.0)
    assert g == {"x": 18.0, "y": 18.0, "scale": 13.5, "rest": (), "named": {}}
    g = nb.multigrad_dict(f)(1.5, 3.0, 1.0, 2.0, 5.0, w=4.0)
    assert g == {"x": 9.0, "y": 9.0, "scale": 13.5, "rest": (4.0, 4.0), "named": {"w": 7.0}}
    check_grads(lambda x, y: nb.multigrad_dict(f)(x, y, 0.5)["y"], modes=["rev"], order=1)(0.3, 1.7)
    # (autograd 1.9's own multigrad_dict imports the long-gone funcsigs package: there is no peer to compare with)
    autograd = pytest.importorskip("autograd")
    agnp = pytest.importorskip("autograd.numpy")
    assert nb.grad_named(lambda x, y: anp.sin(x) * y**2, "x")(0.3, 1.7) == \
        autograd.grad_named(lambda x, y: agnp.sin(x) * y**2, "x")(0.3, 1.7)


def test_grad_named_and_multigrad_dict_name_themselves_in_their_errors():
    # a builtin without a signature gave inspect's "no signature found for builtin"; a missing argument Python's
    # "missing a required argument: 'n'", neither naming the transform
    with pytest.raises(TypeError, match=r"grad_named: the parameters of 'max' cannot be read .*grad\(fun, argnum\)"):
        nb.grad_named(max, "a")
    with pytest.raises(TypeError, match="multigrad_dict: the parameters of 'max' cannot be read"):
        nb.multigrad_dict(max)
    with pytest.raises(TypeError, match="multigrad_dict: '<lambda>' missing a required argument: 'n'"):
        nb.multigrad_dict(lambda x, n: x * n)(2.0)


def test_extend_same_def_linear_defjvp_argnums_and_notrace_like_autograd():
    from nablanet.extend import Box, def_linear, defjvp, defjvp_argnums, defvjp, notrace_primitive, primitive

    @primitive
    def scale_rows(x, w):  # linear in x and in w (bilinear)
        return x * w[:, None]

    defvjp(scale_rows, lambda ans, x, w: lambda g: g * w[:, None], lambda ans, x, w: lambda g: anp.sum(g * x, 1))
    defjvp(scale_rows, "same", "same")  # autograd's spelling for "linear in this argument"
    x, w = np.array([[1.0, 2.0], [3.0, -1.0]]), np.array([0.5, -2.0])
    check_grads(scale_rows, modes=["fwd", "rev"], order=2)(x, w)

    @primitive
    def scale_rows2(x, w):
        return x * w[:, None]

    defvjp(scale_rows2, lambda ans, x, w: lambda g: g * w[:, None], lambda ans, x, w: lambda g: anp.sum(g * x, 1))
    def_linear(scale_rows2)
    check_grads(scale_rows2, modes=["fwd", "rev"], order=2)(x, w)

    @primitive
    def cube(x):
        return x**3

    defvjp(cube, lambda ans, x: lambda g: 3 * g * x**2)
    defjvp_argnums(cube, lambda argnums, gs, ans, args, kwargs: 3 * gs[0] * args[0] ** 2)
    check_grads(cube, modes=["fwd", "rev"], order=2)(np.array([0.3, -1.2]))
    with pytest.raises(ValueError, match="'linear' for argument 0 of cube is not a rule"):
        defjvp(cube, "linear")

    seen = []
    peek = notrace_primitive(lambda v: seen.append(type(v)) or float(np.sum(v)))
    assert nb.grad(lambda v: anp.sum(v**2) * peek(v))(np.ones(3)).tolist() == [6.0, 6.0, 6.0]
    assert seen == [np.ndarray] and Box is nb.extend.Tracer
    assert nb.grad(lambda v: seen.append(isinstance(v, Box)) or anp.sum(v))(1.0) == 1.0 and seen[-1] is True


@pytest.mark.parametrize("name, settings", [("adam", {"step_size": 0.01}), ("rmsprop", {"step_size": 0.01}),
                                            ("sgd", {"step_size": 0.01, "mass": 0.9}), ("sgd", {"step_size": 0.01, "mass": 0.0})])
def test_misc_optimizers_take_autograds_steps(name, settings):
    from nablanet.misc import optimizers

    rng = np.random.default_rng(4)
    A, b = rng.normal(size=(6, 3)), rng.normal(size=6)

    def loss(p, i, np_=anp):
        return np_.sum((np_.dot(A, p["w"]) + p["c"] - b) ** 2) + 0.1 * np_.sum(np_.sin(p["w"])) * (1 + i % 2)

    x0 = {"w": np.zeros(3), "c": 0.5}
    seen = []
    out = getattr(optimizers, name)(nb.grad(loss), x0, callback=lambda x, i, g: seen.append((x, i, g)),
                                    num_iters=150, **settings)
    assert set(out) == {"w", "c"} and out["w"].shape == (3,) and np.shape(out["c"]) == ()
    assert [i for _, i, _ in seen] == list(range(150)) and x0["w"].tolist() == [0.0, 0.0, 0.0]
    assert not np.array_equal(seen[3][0]["w"], seen[4][0]["w"])  # each iteration's x is its own array
    np.testing.assert_allclose(seen[7][2]["w"], nb.grad(loss)(seen[7][0], 7)["w"], rtol=1e-15)
    assert loss(out, 0) < 0.5 * loss(x0, 0)
    autograd = pytest.importorskip("autograd")
    agnp = pytest.importorskip("autograd.numpy")
    ag_opt = pytest.importorskip("autograd.misc.optimizers")
    theirs = getattr(ag_opt, name)(autograd.grad(lambda p, i: loss(p, i, agnp)), x0, num_iters=150, **settings)
    np.testing.assert_allclose(out["w"], theirs["w"], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(out["c"], theirs["c"], rtol=1e-11, atol=1e-13)


def test_misc_optimizers_refuse_bad_settings_by_name():
    from nablanet.misc.optimizers import adam, sgd

    g = nb.grad(lambda x, i: anp.sum(x**2))
    with pytest.raises(ValueError, match="mass"):
        sgd(g, np.ones(2), mass=1.0)
    with pytest.raises(ValueError, match="step_size"):
        adam(g, np.ones(2), step_size=-0.1)
    with pytest.raises(ValueError, match="num_iters"):
        adam(g, np.ones(2), num_iters=-1)
    with pytest.raises(ValueError, match=r"grad\(x, 0\) has 1 entries for 2 parameters"):
        adam(lambda x, i: 1.0, np.ones(2))
    assert adam(g, np.ones(2), num_iters=0).tolist() == [1.0, 1.0]


def test_misc_fixed_point_is_differentiated_implicitly_in_both_modes():
    from nablanet.misc.fixed_points import fixed_point

    def newton_root(p):  # x -> x - (x^2 - p["s"]) / (2x), scaled: its fixed point is sqrt(s)
        return lambda x: 0.5 * (x + p["s"] / x) * p["k"] + (1 - p["k"]) * x

    dist = lambda x, y: anp.max(anp.abs(x - y))  # noqa: E731

    def root(s, k=1.0, x0=1.0):
        return fixed_point(newton_root, {"s": s, "k": k}, x0 * anp.ones_like(s), dist, 1e-14)

    for s in [2.0, np.array([0.5, 3.0, 10.0]), np.array([[1.0, 4.0]])]:
        np.testing.assert_allclose(root(s), np.sqrt(s), rtol=1e-13)
        check_grads(root, modes=["fwd", "rev"], order=2)(s)
        check_grads(lambda k: root(s, k), modes=["fwd", "rev"], order=1)(0.8)  # the fixed point does not move
    np.testing.assert_allclose(nb.elementwise_grad(root)(np.array([4.0, 9.0])), [0.25, 1 / 6], rtol=1e-12)
    np.testing.assert_allclose(nb.grad(lambda s: root(s, x0=2.0))(4.0), 0.25, rtol=1e-12)  # x0 is the fixed point
    # the reverse sweep does not record the iterations: one node, whatever the iteration count
    calls = []
    slow = lambda p: lambda x: calls.append(None) or 0.5 * x + 0.5 * p  # noqa: E731  (x* = p, 40+ iterations)
    assert abs(nb.grad(lambda p: fixed_point(slow, p, 0.0, dist, 1e-14))(3.0) - 1.0) < 1e-12
    tape = nb.autodiff.trace(lambda p: fixed_point(slow, p, 0.0, dist, 1e-14), 3.0)
    assert len(calls) > 80 and [n.op for n in tape] == ["input", "fixed_point"]
    autograd = pytest.importorskip("autograd")  # and autograd's value
    agnp = pytest.importorskip("autograd.numpy")
    ag_fp = pytest.importorskip("autograd.misc.fixed_points").fixed_point
    ag_dist = lambda x, y: agnp.max(agnp.abs(x - y))  # noqa: E731
    theirs = autograd.grad(lambda s: ag_fp(newton_root, {"s": s, "k": 0.9}, 1.0, ag_dist, 1e-14))(3.0)
    assert abs(nb.grad(lambda s: root(s, 0.9))(3.0) - theirs) < 1e-13


def test_misc_flatten_refuses_a_leaf_that_is_not_numbers_by_its_place():
    # a string leaf made every number a string (['1.0', '1.0', 'x']); an OrderedDict or a set an object array
    from nablanet.misc import flatten

    for tree, where, what in [([np.ones(2), [1.0, "x"]], r"\[1\]\[1\]", "a str"),
                              ({"a": collections.OrderedDict(b=1.0)}, r"\['a'\]", "an? OrderedDict"),
                              ({"a": {1, 2}}, r"\['a'\]", "a set"),
                              (np.array(["a"]), r"\(the value itself\)", "a ndarray of dtype <U1")]:
        with pytest.raises(TypeError, match=f"flatten: leaf {where} \\({what}\\) is not a number"):
            flatten(tree)
    vec = flatten({"i": np.arange(2), "b": True, "c": 1j})[0]  # numbers of any kind are taken, as autograd takes them
    assert vec.tolist() == [1.0, 1j, 0.0, 1.0]


def test_misc_flatten_orders_dict_entries_as_autograd_and_flatten_func():
    from nablanet.misc import flatten, flatten_func

    r = np.random.default_rng(8).normal
    x = {"w": r(size=3), "b": 1.5, "a": [2.0, {"z": r(size=(2, 2)), "c": 3.0}], "m": (r(size=2),)}
    vec, unflatten = flatten(x)
    want = np.concatenate([[2.0, 3.0], x["a"][1]["z"].ravel(), [1.5], x["m"][0], x["w"]])  # keys sorted, at depth
    np.testing.assert_array_equal(vec, want)
    back = unflatten(vec)
    assert list(back) == ["w", "b", "a", "m"] and list(back["a"][1]) == ["z", "c"]  # the original key order
    assert nb.tree_map(np.array_equal, back, x) == nb.tree_map(lambda a, b: True, x, x)
    np.testing.assert_array_equal(flatten({1: 2.0, "a": np.array([3.0, 4.0])})[0], [2.0, 3.0, 4.0])  # unsortable
    g = nb.grad(lambda v: anp.sum(unflatten(v)["w"] ** 2) + unflatten(v)["a"][1]["c"])(vec)
    np.testing.assert_array_equal(g, np.concatenate([[0.0, 1.0], np.zeros(7), 2 * x["w"]]))

    def f(p, k):
        return {"y": anp.tanh(p["w"]) * k, "s": anp.sum(p["a"][1]["z"]) * p["b"]}

    flat_f, unflatten_f, flat_x = flatten_func(f, x)
    np.testing.assert_array_equal(flat_x, vec)
    out = flat_f(vec, 2.0)
    np.testing.assert_allclose(out, np.concatenate([[np.sum(x["a"][1]["z"]) * 1.5], 2.0 * np.tanh(x["w"])]))
    check_grads(lambda v: flat_f(v, 2.0), modes=["fwd", "rev"], order=2)(vec)
    ag_flatten = pytest.importorskip("autograd.misc.flatten")  # autograd's own vectors, entry for entry
    np.testing.assert_array_equal(ag_flatten.flatten(x)[0], vec)
    ag_f, _, ag_x = ag_flatten.flatten_func(lambda p, k: {"y": np.tanh(p["w"]) * k, "s": 0.0}, x)
    np.testing.assert_array_equal(ag_x, flat_x)


def test_misc_fixed_point_never_returns_a_diverged_or_unconverged_iterate():
    from nablanet.misc.fixed_points import MAX_ITER, FixedPointError, fixed_point

    dist = lambda x, y: anp.max(anp.abs(x - y))  # noqa: E731
    # iterates growing without bound: inf then NaN distances, an error (it returned [inf, inf])
    with pytest.raises(FixedPointError, match="diverged: distance.* is (inf|nan) after"):
        with np.errstate(over="ignore", invalid="ignore"):
            fixed_point(lambda a: lambda x: 2.0 * x + a, np.ones(2), np.ones(2), dist, 1e-8)
    with pytest.raises(FixedPointError, match="diverged"):  # Python floats overflow with an error instead
        fixed_point(lambda a: lambda x: 2.0 * x + a, 1.0, 1.0, lambda x, y: (x - y) ** 2, 1e-8)
    with pytest.raises(FixedPointError, match=r"diverged: distance\(x, x_prev\) is nan after 2 steps"):
        with np.errstate(invalid="ignore", divide="ignore"):
            fixed_point(lambda a: lambda x: a * np.log(x), 1.0, np.array(0.5), dist, 1e-8)  # log of a negative
    # a map that is not a contraction and stays bounded (x -> a - x oscillates): it looped forever
    with pytest.raises(FixedPointError, match=f"did not converge: .* after {MAX_ITER} steps.*max_iter="):
        fixed_point(lambda a: lambda x: a - x, 1.0, 0.0, dist, 1e-8)
    slow = lambda a: lambda x: 0.999 * x + a  # noqa: E731  (x* = 1000 a, some 20,000 steps)
    with pytest.raises(FixedPointError, match="after 50 steps"):
        fixed_point(slow, 1.0, 0.0, dist, 1e-10, max_iter=50)
    assert abs(fixed_point(slow, 1.0, 0.0, dist, 1e-10, max_iter=10**5) - 1000.0) < 1e-6
    assert abs(nb.grad(lambda a: fixed_point(slow, a, 0.0, dist, 1e-10, max_iter=10**5))(1.0) - 1000.0) < 1e-6
    # the forward iteration converges at once (x0 is the fixed point) but the derivative's does not (df/dx = 2)
    expanding = lambda a: lambda x: 2.0 * x - a  # noqa: E731
    with pytest.raises(FixedPointError, match="reverse-mode derivative's iteration .* diverged"):
        with np.errstate(over="ignore", invalid="ignore"):
            nb.grad(lambda a: fixed_point(expanding, a, 1.0, dist, 1e-8))(1.0)
    with pytest.raises(FixedPointError, match="forward-mode derivative's iteration .* diverged"):
        with np.errstate(over="ignore", invalid="ignore"):
            nb.jvp(lambda a: fixed_point(expanding, a, 1.0, dist, 1e-8), (1.0,), (1.0,))
    # bad settings, named
    with pytest.raises(ValueError, match=r"distance\(x, x_prev\) returned an array of shape \(2,\)"):
        fixed_point(lambda a: lambda x: 0.5 * x + a, np.ones(2), np.zeros(2), lambda x, y: abs(x - y), 1e-8)
    with pytest.raises(ValueError, match="fixed_point: tol"):
        fixed_point(lambda a: lambda x: 0.5 * x, 1.0, 1.0, dist, -1.0)
    # one number in an array of shape (1,) is a distance, as before
    half = lambda a: lambda x: 0.5 * x + a  # noqa: E731
    assert abs(fixed_point(half, np.ones(1), np.zeros(1), lambda x, y: abs(x - y), 1e-12)[0] - 2.0) < 1e-11
    assert abs(nb.grad(lambda a: fixed_point(half, a, np.zeros(1), lambda x, y: abs(x - y), 1e-12)[0])(np.ones(1))[0]
               - 2.0) < 1e-11


def test_misc_fixed_point_started_from_its_argument_like_autograd():
    # x* does not depend on the start: a start computed from a contributes zero (autograd's None rule); it raised
    from nablanet.misc.fixed_points import fixed_point

    newton = lambda a: lambda x: 0.5 * (x + a / x)  # noqa: E731
    dist = lambda x, y: anp.max(anp.abs(x - y))  # noqa: E731

    def root(a):
        return fixed_point(newton, a, 2.0 * a, dist, 1e-14)

    a = np.array([0.5, 4.0, 9.0])
    np.testing.assert_allclose(nb.elementwise_grad(root)(a), 0.5 / np.sqrt(a), rtol=1e-12)
    check_grads(root, modes=["fwd", "rev"], order=2)(a)
    autograd = pytest.importorskip("autograd")
    ag_fp = pytest.importorskip("autograd.misc.fixed_points").fixed_point
    assert abs(nb.grad(root)(4.0) - autograd.grad(lambda a: ag_fp(newton, a, 2.0 * a, lambda x, y: abs(x - y),
                                                                  1e-14))(4.0)) < 1e-13


def test_misc_optimizers_refuse_a_gradient_of_another_structure_and_name_their_settings():
    from nablanet.misc.optimizers import adam, rmsprop, sgd

    x0 = {"a": np.ones(2), "b": np.ones(3)}
    # the same number of entries arranged otherwise: it was applied to the wrong parameters without a word
    for wrong in [{"a": np.ones(3), "b": np.ones(2)}, {"a": np.ones(2), "c": np.ones(3)}, [np.ones(3), np.ones(2)]]:
        with pytest.raises(ValueError, match=r"sgd: grad\(x, 0\) returned a tree of another structure than x"):
            sgd(lambda x, i, w=wrong: w, x0, num_iters=1)
    # what matches entry for entry is taken: dict keys in another order, a tuple for a list, one flat vector
    out = sgd(lambda x, i: {"b": np.full(3, 2.0), "a": np.ones(2)}, x0, num_iters=1, mass=0.0, step_size=0.5)
    assert out["a"].tolist() == [0.5, 0.5] and out["b"].tolist() == [0.0, 0.0, 0.0]
    assert sgd(lambda x, i: (1.0, 2.0), [1.0, 1.0], num_iters=1, mass=0.0)[1] == 0.8
    assert sgd(lambda x, i: np.array([1.0, 2.0]), [1.0, 1.0], num_iters=1, mass=0.0)[1] == 0.8
    # settings named as the caller wrote them (it said "beta1", "eps")
    g = lambda x, i: x  # noqa: E731
    for call, name in [(lambda: adam(g, np.ones(2), b1=2.0), "adam: b1"), (lambda: adam(g, np.ones(2), b2=-1), "adam: b2"),
                       (lambda: adam(g, np.ones(2), eps=0.0), "adam: eps"),
                       (lambda: rmsprop(g, np.ones(2), eps=-1.0), "rmsprop: eps")]:
        with pytest.raises(ValueError, match=name):
            call()
    with pytest.raises(TypeError, match="sgd: x0 has complex128 entries; the optimizers take real parameters"):
        sgd(g, np.ones(2) * 1j)  # it said "params: leaf 0 is not numeric"


def test_misc_optimizers_say_they_cannot_be_differentiated():
    # autograd's loops can be; nablanet's run nablanet.optim's in-place updates. It said "step_size: expected a
    # number > 0, got Tracer(...)", or a NumPy-conversion error not naming the optimizer
    from nablanet.misc.optimizers import adam, rmsprop, sgd

    g = lambda x, i: 2.0 * x  # noqa: E731
    for call, name in [(lambda s: sgd(g, np.ones(2), num_iters=3, step_size=s), "sgd: step_size"),
                       (lambda s: adam(g, np.ones(2), num_iters=3, b1=s), "adam: b1"),
                       (lambda s: rmsprop(g, {"w": s * np.ones(2)}, num_iters=3), "rmsprop: x")]:
        with pytest.raises(nb.extend.NotDifferentiableError, match=f"{name} is a traced value.*cannot be differentiated"):
            nb.grad(lambda s: anp.sum(call(s)))(0.1)
