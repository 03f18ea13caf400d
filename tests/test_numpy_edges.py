"""The awkward points of nablanet.numpy: each bug once seen, and the documented subgradients.

Every case is checked against NumPy's value and by ``check_grads`` in both
modes to second order; where a function has no derivative at a point, the
value nablanet returns there is pinned down exactly, in both modes.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
from numpy_cases import both_modes_grad, check, rng_for

import nablanet as nb
import nablanet.numpy as anp

# ----------------------------------------------------------------------------
# NumPy functions without a rule: NumPy's behaviour on plain values
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, expected",
    [
        (lambda: anp.zeros((2, 3)), np.zeros((2, 3))),
        (lambda: anp.ones((5, 6)), np.ones((5, 6))),
        (lambda: anp.full((2, 2), 1.0), np.full((2, 2), 1.0)),
        (lambda: anp.tile(anp.ones(2), (2, 1)), np.ones((2, 2))),
        (lambda: anp.linspace(0, 1, 3), np.linspace(0, 1, 3)),
        (lambda: anp.histogram([1.0, 2.0, 2.5], bins=2)[0], np.array([1, 2])),
        (lambda: anp.interp([0.5], [0.0, 1.0], [[0.0, 2.0]][0]), np.array([1.0])),
    ],
    ids=["zeros", "ones", "full", "tile", "linspace", "histogram", "interp"],
)
def test_plain_calls_behave_like_numpy(call, expected):
    np.testing.assert_array_equal(call(), expected)


@pytest.mark.parametrize("wrap", [lambda x: x, lambda x: [x], lambda x: [[1.0, x]], lambda x: (np.ones(2), [x])],
                         ids=["bare", "list", "nested", "tuple_of_list"])
def test_function_without_rule_names_itself_when_a_traced_value_is_inside(wrap):
    with pytest.raises(nb.NotDifferentiableError, match="histogram"):
        nb.grad(lambda x: anp.sum(anp.histogram(wrap(x))[0] * x))(1.0)


# ----------------------------------------------------------------------------
# mod, remainder, fmod and %: d/dx = 1, d/dy = -floor(x/y) (trunc for fmod)
# ----------------------------------------------------------------------------

MODS = {
    "mod": (anp.mod, np.mod, np.floor),
    "remainder": (anp.remainder, np.remainder, np.floor),
    "fmod": (anp.fmod, np.fmod, np.trunc),
    "op_mod": (operator.mod, np.mod, np.floor),
    "np_mod": (lambda x, y: np.mod(x, y), np.mod, np.floor),
    "np_fmod": (lambda x, y: np.fmod(x, y), np.fmod, np.trunc),
}
MOD_SHAPES = [((), ()), ((4,), ()), ((), (4,)), ((2, 3), (2, 3)), ((3, 1), (4,))]


def _reduce_to(a, shape):
    """Sum a broadcast array back to ``shape`` (the reference for the adjoint of broadcasting)."""
    a = np.asarray(a)
    a = a.sum(axis=tuple(range(a.ndim - len(shape))))
    return a.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True).reshape(shape)


@pytest.mark.parametrize("shapes", MOD_SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(MODS))
def test_mod_family(name, shapes):
    f, ref, rounding = MODS[name]
    sx, sy = shapes
    rng = rng_for(name, shapes)
    while True:  # draw until every x/y is at least 0.05 away from the jumps (x/y an integer)
        y = rng.uniform(0.7, 1.9, sy) * rng.choice([-1.0, 1.0], sy)
        x = rng.uniform(-4, 4, sx)
        q = np.asarray(x / y)
        if np.all(np.abs(q - np.round(q)) > 0.05):
            break
    check(f, x, y, ref=ref)
    gx, gy = nb.grad(lambda x, y: anp.sum(f(x, y)), argnums=(0, 1))(x, y)
    shape = np.broadcast_shapes(sx, sy)
    np.testing.assert_allclose(gx, _reduce_to(np.ones(shape), sx))
    np.testing.assert_allclose(gy, _reduce_to(-rounding(np.broadcast_to(x / y, shape)), sy))


def test_mod_seen_on_main():
    assert np.array_equal(nb.grad(lambda x: anp.sum(anp.mod(x, 1.7)))(np.array([0.4, 2.5])), [1.0, 1.0])
    assert np.array_equal(nb.grad(lambda x: anp.sum(x % 1.7))(np.array([0.4, 2.5])), [1.0, 1.0])
    assert nb.grad(lambda y: 5.0 % y)(1.5) == -3.0
    assert nb.grad(lambda y: anp.fmod(-5.0, y))(1.5) == 3.0  # trunc(-5/1.5) = -3
    assert nb.grad(lambda y: anp.mod(-5.0, y))(1.5) == 4.0  # floor(-5/1.5) = -4


def test_mod_at_a_jump_takes_the_piece_the_point_is_on():
    # x/y = 2 exactly: NumPy's floor gives q = 2 there, so d/dy = -2 (the piece to the right in x)
    for mode_grad in both_modes_grad(lambda y: anp.mod(3.0, y), 1.5):
        assert mode_grad == -2.0
    for mode_grad in both_modes_grad(lambda x: anp.mod(x, 1.5), 3.0):
        assert mode_grad == 1.0


def test_floordiv_and_divmod_on_traced_values():
    x = np.array([2.5, -1.2])
    f = lambda x: anp.sum((x // 0.7) * x + divmod(x, 0.7)[1])
    np.testing.assert_allclose(nb.grad(f)(x), x // 0.7 + 1.0)


# ----------------------------------------------------------------------------
# order statistics differentiate through the entries they select
# ----------------------------------------------------------------------------


def _distinct(rng, shape):
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.3 + rng.uniform(0, 0.03, n)).reshape(shape)


ORDER = {
    "sort": (lambda x: anp.sort(x), lambda x: np.sort(x)),
    "sort_axis0": (lambda x: anp.sort(x, axis=0), lambda x: np.sort(x, axis=0)),
    "sort_none": (lambda x: anp.sort(x, axis=None), lambda x: np.sort(x, axis=None)),
    "np_sort": (lambda x: np.sort(x), lambda x: np.sort(x)),
    "partition": (lambda x: anp.partition(x, 1)[..., 1], lambda x: np.partition(x, 1)[..., 1]),
    "partition_axis0": (lambda x: anp.partition(x, 0, axis=0)[0], lambda x: np.partition(x, 0, axis=0)[0]),
    "unique": (lambda x: anp.unique(x), np.unique),
    "unique_axis0": (lambda x: anp.unique(x, axis=0), lambda x: np.unique(x, axis=0)),
    "median": (anp.median, np.median),
    "median_axis": (lambda x: anp.median(x, axis=-1), lambda x: np.median(x, axis=-1)),
    "median_keepdims": (lambda x: anp.median(x, axis=0, keepdims=True), lambda x: np.median(x, axis=0, keepdims=True)),
    "np_median": (lambda x: np.median(x, axis=0), lambda x: np.median(x, axis=0)),
    "quantile": (lambda x: anp.quantile(x, 0.3), lambda x: np.quantile(x, 0.3)),
    "quantile_q_array": (lambda x: anp.quantile(x, [0.1, 0.5, 0.95], axis=-1),
                         lambda x: np.quantile(x, [0.1, 0.5, 0.95], axis=-1)),
    "quantile_keepdims": (lambda x: anp.quantile(x, [[0.2], [0.7]], axis=0, keepdims=True),
                          lambda x: np.quantile(x, [[0.2], [0.7]], axis=0, keepdims=True)),
    "quantile_lower": (lambda x: anp.quantile(x, 0.4, method="lower"), lambda x: np.quantile(x, 0.4, method="lower")),
    "quantile_higher": (lambda x: anp.quantile(x, 0.4, method="higher"), lambda x: np.quantile(x, 0.4, method="higher")),
    "quantile_nearest": (lambda x: anp.quantile(x, 0.4, method="nearest"), lambda x: np.quantile(x, 0.4, method="nearest")),
    "quantile_midpoint": (lambda x: anp.quantile(x, 0.4, axis=0, method="midpoint"),
                          lambda x: np.quantile(x, 0.4, axis=0, method="midpoint")),
    "take_along_axis": (lambda x: anp.take_along_axis(x, np.argsort(x, axis=0)[::-1], axis=0),
                        lambda x: np.take_along_axis(x, np.argsort(x, axis=0)[::-1], axis=0)),
    "take_along_axis_none": (lambda x: anp.take_along_axis(x, np.array([0, 0, -1]), axis=None),
                             lambda x: np.take_along_axis(x, np.array([0, 0, -1]), axis=None)),
    "take": (lambda x: anp.take(x, [0, -1, 0]), lambda x: np.take(x, [0, -1, 0])),
    "take_axis": (lambda x: anp.take(x, [[0, 0]], axis=-1), lambda x: np.take(x, [[0, 0]], axis=-1)),
    "percentile": (lambda x: anp.percentile(x, [25, 75], axis=0), lambda x: np.percentile(x, [25, 75], axis=0)),
    "np_percentile": (lambda x: np.percentile(x, 40), lambda x: np.percentile(x, 40)),
}


@pytest.mark.parametrize("shape", [(1,), (5,), (4, 3), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("name", sorted(ORDER))
def test_order_statistics(name, shape):
    f, ref = ORDER[name]
    if name.startswith("partition") and shape[-1 if name == "partition" else 0] < 2:
        pytest.skip("partition index beyond a length-1 axis")
    x = _distinct(rng_for(name, shape), shape)
    check(f, x, ref=ref, rtol=1e-12)


def test_quantile_axis_tuple_and_plain_call():
    x = _distinct(rng_for("qt"), (2, 3, 4))
    check(lambda x: anp.quantile(x, 0.6, axis=(0, 2)), x, ref=lambda x: np.quantile(x, 0.6, axis=(0, 2)))
    np.testing.assert_array_equal(anp.quantile(x, 0.6), np.quantile(x, 0.6))


def test_sort_seen_on_main_and_ties():
    for g in both_modes_grad(lambda x: anp.sort(x)[0], np.array([3.0, 1.0, 2.0])):
        np.testing.assert_array_equal(g, [0.0, 1.0, 0.0])
    # ties: the stable order gives the lower rank to the earlier entry
    x = np.array([2.0, 1.0, 2.0, 1.0])
    for g in both_modes_grad(lambda x: anp.sort(x)[0], x):
        np.testing.assert_array_equal(g, [0.0, 1.0, 0.0, 0.0])
    for g in both_modes_grad(lambda x: anp.sort(x)[3], x):
        np.testing.assert_array_equal(g, [0.0, 0.0, 1.0, 0.0])
    # the weighted sum of sorted entries: each entry gets the weight of its rank
    w = np.arange(1.0, 5.0)
    for g in both_modes_grad(lambda x: anp.sum(anp.sort(x) * w), x):
        np.testing.assert_array_equal(g, [3.0, 1.0, 4.0, 2.0])


def test_unique_and_median_conventions():
    x = np.array([3.0, 1.0, 2.0, 1.0, 3.0])
    for g in both_modes_grad(lambda x: anp.sum(anp.unique(x) * np.array([1.0, 10.0, 100.0])), x):
        np.testing.assert_array_equal(g, [100.0, 1.0, 10.0, 0.0, 0.0])  # first occurrences
    values, index, inverse, counts = anp.unique(x, return_index=True, return_inverse=True, return_counts=True)
    ref = np.unique(x, return_index=True, return_inverse=True, return_counts=True)
    for a, b in zip((values, index, inverse, counts), ref):
        np.testing.assert_array_equal(a, b)
    traced, _ = nb.vjp(lambda x: anp.unique(x, return_index=True)[0], x)
    np.testing.assert_array_equal(traced, [1.0, 2.0, 3.0])
    # median of an even count: the two middle entries share equally
    for g in both_modes_grad(anp.median, np.array([4.0, 1.0, 3.0, 2.0])):
        np.testing.assert_array_equal(g, [0.0, 0.0, 0.5, 0.5])
    # median of tied middle entries: still the two stable-order middle ranks
    for g in both_modes_grad(anp.median, np.array([2.0, 2.0, 2.0])):
        np.testing.assert_array_equal(g, [0.0, 1.0, 0.0])


# ----------------------------------------------------------------------------
# std and var: one element, ddof, constants
# ----------------------------------------------------------------------------


def test_std_seen_on_main():
    for g in both_modes_grad(anp.std, np.array([0.5])):
        np.testing.assert_array_equal(g, [0.0])
    J = nb.jacobian(lambda x: anp.std(x, axis=0))(np.ones((1, 3)))
    np.testing.assert_array_equal(J, np.zeros((3, 1, 3)))
    J = nb.jacobian(lambda x: anp.std(x, axis=0), mode="fwd")(np.ones((1, 3)))
    np.testing.assert_array_equal(J, np.zeros((3, 1, 3)))


@pytest.mark.parametrize("ddof", [0, 1])
def test_std_of_equal_entries_has_subgradient_zero_to_second_order(ddof):
    x = np.full(4, 1.5)
    assert anp.std(x, ddof=ddof) == 0.0
    for g in both_modes_grad(lambda x: anp.std(x, ddof=ddof), x):
        np.testing.assert_array_equal(g, np.zeros(4))
    H = nb.hessian(lambda x: anp.std(x, ddof=ddof))(x)
    assert np.all(np.isfinite(H))
    np.testing.assert_allclose(nb.hessian(lambda x: anp.var(x, ddof=ddof))(x),
                               2 * (np.eye(4) - 1 / 4) / (4 - ddof), rtol=1e-14)


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("shape, axis, ddof", [((3,), None, 1), ((3, 4), 1, 2), ((1, 3), None, 1), ((2, 3), 0, 1),
                                              ((3,), 0, 0), ((2, 1), -1, 0)], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_var_std_ddof_forms(name, shape, axis, ddof, keepdims):
    x = rng_for(name, shape, axis, ddof).uniform(-2, 2, shape)
    n = int(np.prod(shape)) if axis is None else shape[axis]
    f, ref = getattr(anp, name), getattr(np, name)
    if n == 1 and name == "std":  # std of one entry is 0: pinned above, finite differences see a kink
        g = nb.grad(lambda x: anp.sum(f(x, axis=axis, ddof=ddof, keepdims=keepdims)))(x)
        np.testing.assert_array_equal(g, np.zeros(shape))
        return
    check(lambda x: f(x, axis=axis, ddof=ddof, keepdims=keepdims), x,
          ref=lambda x: ref(x, axis=axis, ddof=ddof, keepdims=keepdims), rtol=1e-11)


# ----------------------------------------------------------------------------
# power at its edge points
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "f, x, expected",
    [
        (lambda x: anp.power(x, 0.0), 0.0, 0.0),  # x^0 = 1: slope 0, also at x = 0
        (lambda x: x**0, 0.0, 0.0),
        (lambda x: anp.power(x, np.array(0.0)), 0.0, 0.0),
        (lambda x: anp.power(x, 0.0), 2.0, 0.0),
        (lambda x: x**1.0, 0.0, 1.0),
        (lambda x: x**2.0, 0.0, 0.0),
        (lambda x: x**3, 0.0, 0.0),
        (lambda x: x**2, -1.5, -3.0),  # negative base, integer exponent
        (lambda y: anp.power(0.0, y), 2.0, 0.0),  # d/dy 0^y = 0 for y > 0
        (lambda y: anp.power(0.0, y), 0.0, 0.0),  # documented: 0 at x = y = 0
        (lambda y: anp.power(-2.0, y), 2.0, 0.0),  # documented: log of a negative base taken as 0
        (lambda y: anp.power(2.0, y), 0.0, np.log(2.0)),
    ],
    ids=["pow0_at0", "op_pow0_at0", "array_exp0_at0", "pow0_at2", "pow1_at0", "pow2_at0", "cube_at0", "neg_base",
         "dy_base0", "dy_base0_exp0", "dy_neg_base", "dy_base2"],
)
def test_power_edge_points(f, x, expected):
    for g in both_modes_grad(f, x):
        assert g == expected
    assert np.isfinite(nb.grad(nb.grad(f))(x))


def test_power_zero_exponent_array_mixed():
    x = np.array([0.0, 0.0, 2.0, 0.0])
    y = np.array([0.0, 2.0, 0.0, 1.0])
    gx, gy = nb.grad(lambda x, y: anp.sum(x**y), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(gy, [0.0, 0.0, np.log(2.0), 0.0])
    _, t = nb.jvp(lambda x: x**y, (x,), (np.ones(4),))
    np.testing.assert_array_equal(t, [0.0, 0.0, 0.0, 1.0])
    # the exponent traced, x fixed away from 0: the mixed second derivative d/dy (y x^(y-1)) at y = 0 is 1/x
    assert nb.grad(lambda y: nb.grad(lambda x: x**y)(2.0))(0.0) == pytest.approx(0.5, rel=1e-14)


# ----------------------------------------------------------------------------
# lists and tuples of traced values wherever NumPy takes an array-like
# ----------------------------------------------------------------------------

LISTS = {
    "mean": (lambda x, y: anp.mean([x, y]), lambda x, y: np.mean([x, y])),
    "mean_axis": (lambda x, y: anp.mean([x, y], axis=0), lambda x, y: np.mean([x, y], axis=0)),
    "sum_nested": (lambda x, y: anp.sum([[x, y], [y, x]], axis=1), lambda x, y: np.sum([[x, y], [y, x]], axis=1)),
    "array": (lambda x, y: anp.array([x, y]), lambda x, y: np.array([x, y])),
    "array_nested_mixed": (lambda x, y: anp.array([[x, 1.0 + 0 * y], [y, x * y]]),
                           lambda x, y: np.array([[x, 1.0 + 0 * y], [y, x * y]])),
    "stack": (lambda x, y: anp.stack([x, y], axis=-1), lambda x, y: np.stack([x, y], axis=-1)),
    "concatenate": (lambda x, y: anp.concatenate([[x, y], [y]]), lambda x, y: np.concatenate([[x, y], [y]])),
    "exp": (lambda x, y: anp.exp((x, y)), lambda x, y: np.exp((x, y))),
    "maximum": (lambda x, y: anp.maximum([x, y], 0.0), lambda x, y: np.maximum([x, y], 0.0)),
    "var": (lambda x, y: anp.var([x, y, x * y]), lambda x, y: np.var([x, y, x * y])),
    "std_ddof": (lambda x, y: anp.std([x, y, x * y], ddof=1), lambda x, y: np.std([x, y, x * y], ddof=1)),
    "sort": (lambda x, y: anp.sort([x, y, x * y]), lambda x, y: np.sort([x, y, x * y])),
    "matmul": (lambda x, y: anp.matmul([x, y], [y, x]), lambda x, y: np.matmul([x, y], [y, x])),
    "where": (lambda x, y: anp.where([[True], [False]], [x, y], 0.0),
              lambda x, y: np.where([[True], [False]], [x, y], 0.0)),
}


@pytest.mark.parametrize("shape", [(), (3,)], ids=str)
@pytest.mark.parametrize("name", sorted(LISTS))
def test_lists_of_traced_values(name, shape):
    f, ref = LISTS[name]
    rng = rng_for(name, shape)
    x, y = rng.uniform(0.5, 1.5, shape), rng.uniform(-1.5, -0.5, shape)
    if name == "matmul" and shape:
        pytest.skip("case written for scalars")
    check(f, x, y, ref=ref)


def test_mean_of_list_seen_on_main():
    for g in both_modes_grad(lambda x: anp.mean([x, 2 * x]), 1.0):
        assert g == 1.5


def test_plain_ndarray_dot_of_a_traced_value_says_what_to_write():
    a = np.arange(6.0).reshape(2, 3)
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(nb.NotDifferentiableError, match=r"ndarray\.dot.*np\.dot\(a, x\)"):
        nb.grad(lambda x: anp.sum(a.dot(x)))(x)
    for f in (lambda x: np.dot(a, x), lambda x: a @ x, lambda x: anp.dot(a, x)):
        np.testing.assert_allclose(nb.grad(lambda x: anp.sum(f(x)))(x), a.sum(axis=0))


# ----------------------------------------------------------------------------
# casts: to an integer or bool dtype the derivative is 0 (as floor/trunc), to float/complex it passes
# ----------------------------------------------------------------------------

CAST_X = np.array([0.7, -1.3, 2.6])

# (f, the cast's value as a constant c so that d/dx sum(c * x) = c)
INTEGER_CASTS = {
    "method_int": lambda x: x.astype(int),
    "method_bool": lambda x: x.astype(bool),
    "method_str_i8": lambda x: x.astype("i8"),
    "method_int32": lambda x: x.astype(np.int32),
    "function_uint8": lambda x: anp.astype(x, np.uint8),
    "numpy_function_uint8": lambda x: np.astype(x, np.uint8),
    "asarray_int": lambda x: anp.asarray(x, dtype=int),
    "array_bool": lambda x: anp.array(x, dtype=bool),
    "anp_int64": lambda x: anp.int64(x),
    "comparison": lambda x: x > 0,
}


def _cast_plain(name):
    f = INTEGER_CASTS[name]
    return np.asarray(f(CAST_X))


@pytest.mark.parametrize("name", sorted(INTEGER_CASTS))
def test_cast_to_integer_or_bool_has_zero_derivative(name):
    f = INTEGER_CASTS[name]
    c = _cast_plain(name).astype(float)
    loss = lambda x: anp.sum(f(x) * x)  # noqa: E731  d/dx = c (the cast is a constant)
    for g in both_modes_grad(loss, CAST_X):
        np.testing.assert_array_equal(g, c)
    # the cast alone: forward tangent 0, and at second order too
    _, t = nb.jvp(lambda x: anp.sum(f(x) * 1.0), (CAST_X,), (np.ones(3),))
    assert t == 0.0
    h = nb.hessian(lambda x: anp.sum(f(x) * x**2))(CAST_X)
    np.testing.assert_array_equal(h, np.diag(2.0 * c))


def test_cast_to_integer_seen_on_main():
    assert list(nb.grad(lambda x: anp.sum(x.astype(int) * x))(CAST_X)) == [0.0, -1.0, 2.0]  # was [0.7 -2.3 4.6]
    assert list(nb.grad(lambda x: anp.sum(x.astype(bool) * x))(CAST_X)) == [1.0, 1.0, 1.0]  # was [1.7 -0.3 3.6]
    assert nb.jvp(lambda x: anp.sum(x.astype(np.int32) * 1.0), (CAST_X,), (np.ones(3),))[1] == 0.0  # was 3.0
    assert nb.grad(lambda x: anp.sum(x, dtype=int) * 1.0)(1.7) == 0.0  # a reduction's dtype keyword casts too


def test_cast_to_integer_of_a_scalar_output_still_refused_by_grad():
    with pytest.raises(TypeError, match="must return a float"):
        nb.grad(lambda x: x.astype(int))(1.5)


@pytest.mark.parametrize(
    "f",
    [lambda x: anp.astype(x, np.float32) * x, lambda x: (x.astype(np.float32).astype(np.float64)) ** 2,
     lambda x: anp.real(x.astype(complex) * (1 + 2j) * x), lambda x: anp.abs(anp.asarray(x, dtype=complex)) ** 2],
    ids=["to_float32", "float32_roundtrip", "to_complex", "asarray_complex"],
)
def test_cast_to_float_or_complex_passes_the_derivative(f):
    loss = lambda x: anp.sum(f(x))  # noqa: E731  quadratic: central differences are exact up to rounding
    num = np.array([(loss(CAST_X + 1e-2 * e) - loss(CAST_X - 1e-2 * e)) / 2e-2 for e in np.eye(3)])
    for g in both_modes_grad(loss, CAST_X):
        np.testing.assert_allclose(g, num, rtol=1e-4)


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")
def test_cast_complex_to_real_keeps_the_real_part_as_numpy_does():
    z = np.array([1.0 + 2.0j, -0.5 + 1.0j])
    with pytest.warns(np.exceptions.ComplexWarning):
        np.testing.assert_array_equal(anp.astype(z, float), z.real)
    # the derivative is that of the real part: grad (convention d/du - i d/dv) and jvp
    np.testing.assert_allclose(nb.grad(lambda z: anp.sum(z.astype(float) ** 2))(z), 2 * z.real + 0j)
    t = np.array([1.0 + 1.0j, 2.0 - 1.0j])
    np.testing.assert_allclose(nb.jvp(lambda z: z.astype(float) ** 2, (z,), (t,))[1], 2 * z.real * t.real)


def test_cast_of_a_traced_value_to_a_non_numeric_dtype_is_refused():
    with pytest.raises(nb.NotDifferentiableError, match="cannot be cast to dtype"):
        nb.grad(lambda x: anp.sum(x.astype(str) == "1.0") * x)(1.0)
    assert anp.astype(np.array([1.5]), str)[0] == "1.5"  # plain values: NumPy's cast


# ----------------------------------------------------------------------------
# a traced value stored into a plain NumPy array: one clear error, whichever way NumPy converts it
# ----------------------------------------------------------------------------


def _store_one(x):
    out = np.zeros(2)
    out[0] = x[0]  # NumPy calls float() and reported "setting an array element with a sequence"
    return anp.sum(out)


def _store_int(x):
    out = np.zeros(2, dtype=int)
    out[1] = x[1]
    return anp.sum(out) * 1.0


def _store_complex(x):
    out = np.zeros(2, dtype=complex)
    out[1] = x[1]
    return anp.sum(anp.real(out))


def _store_slice(x):
    out = np.zeros((2, 3))
    out[0, :] = x  # NumPy calls __array__
    return anp.sum(out)


STORES = {"element": _store_one, "int_element": _store_int, "complex_element": _store_complex,
          "slice": _store_slice}


@pytest.mark.parametrize("name", sorted(STORES))
@pytest.mark.parametrize("transform", ["grad", "jvp", "hessian", "jit"])
def test_storing_a_traced_value_into_a_numpy_array_is_one_clear_error(name, transform):
    f = STORES[name]
    x = np.array([0.7, -1.3, 2.6])
    call = {"grad": lambda: nb.grad(f)(x), "jvp": lambda: nb.jvp(f, (x,), (x,)),
            "hessian": lambda: nb.hessian(f)(x), "jit": lambda: nb.jit(f)(x)}[transform]
    with pytest.raises(nb.NotDifferentiableError, match=r"cannot be stored into a plain NumPy array .*anp\.stack") as e:
        call()
    assert "sequence" not in str(e.value)
    assert any(entry.name == f.__name__ for entry in e.traceback)  # the traceback shows the assignment


def test_storing_into_a_numpy_array_outside_differentiation_is_numpy_s_own():
    out = np.zeros(2)
    out[0] = np.float64(1.5)
    with pytest.raises(ValueError, match="sequence"):
        out[1] = [1.0, 2.0]
    np.testing.assert_array_equal(out, [1.5, 0.0])
