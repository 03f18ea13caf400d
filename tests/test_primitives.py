"""Every differentiable function in ``nablanet.numpy``, checked in both modes.

Each case first compares the value computed on traced inputs with NumPy's, then
runs ``check_grads(order=2, modes=("fwd", "rev"))``: forward and reverse mode
against central differences, and all four second-order combinations
(fwd-over-fwd, rev-over-fwd, fwd-over-rev, rev-over-rev) the same way.  Inputs
are drawn from a seeded generator inside each function's safe domain, away from
kinks and singularities.  The behaviours around the rules (non-differentiable
functions, ties, dtypes, stability) are pinned down with exact values.
"""

from __future__ import annotations

import operator
import zlib

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nablanet as nb
import nablanet.numpy as anp
from nablanet.autodiff.core import Primitive, Tracer, getval

MODES = ("fwd", "rev")
HYPOTHESIS = settings(max_examples=25, deadline=None, derandomize=True, database=None)


def check(f, *args, ref=None, rtol=1e-12, atol=1e-12):
    """``f(*args)`` on traced inputs equals ``ref(*args)``; its derivatives pass check_grads to order 2."""
    if ref is not None:
        expected = ref(*args)
        plain = f(*args)
        assert not isinstance(plain, Tracer)
        np.testing.assert_allclose(plain, expected, rtol=rtol, atol=atol)
        traced, _ = nb.vjp(f, *args)  # every argument traced at once
        assert np.shape(traced) == np.shape(expected)
        np.testing.assert_allclose(traced, expected, rtol=rtol, atol=atol)
        _, tangent = nb.jvp(f, args, tuple(np.ones_like(a) for a in args))
        assert np.shape(tangent) == np.shape(expected)
    nb.check_grads(f, args, order=2, modes=MODES)


def rng_for(*key):
    """A generator seeded from the test's parameters, so every case is reproducible."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def draw(rng, shape, lo, hi, signed=False):
    """Uniform values in [lo, hi], or in [-hi, -lo] U [lo, hi] when ``signed``."""
    x = rng.uniform(lo, hi, shape)
    if signed:
        x = x * rng.choice([-1.0, 1.0], shape)
    return np.asarray(x, dtype=np.float64)


def separated_pair(rng, sx, sy):
    """x, y with |x - y| >= 0.3 for every broadcast pair (no ties for maximum/minimum)."""
    x = rng.integers(-3, 3, sx) + 0.25 + rng.uniform(-0.1, 0.1, sx)
    y = rng.integers(-3, 3, sy) + 0.75 + rng.uniform(-0.1, 0.1, sy)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def distinct(rng, shape, spacing=0.25):
    """Values that are pairwise at least ``spacing`` apart (no ties for max/min)."""
    n = int(np.prod(shape))
    v = (rng.permutation(n) - n / 2) * spacing + rng.uniform(0, spacing / 10, n)
    return v.reshape(shape)


# ----------------------------------------------------------------------------
# unary elementwise functions and operators
# ----------------------------------------------------------------------------

# name -> (nablanet function, NumPy reference, (lo, hi, signed))
UNARY = {
    "exp": (anp.exp, np.exp, (-2, 2, False)),
    "expm1": (anp.expm1, np.expm1, (-2, 2, False)),
    "exp2": (anp.exp2, np.exp2, (-2, 2, False)),
    "log": (anp.log, np.log, (0.3, 3, False)),
    "log1p": (anp.log1p, np.log1p, (-0.6, 2, False)),
    "log2": (anp.log2, np.log2, (0.3, 3, False)),
    "log10": (anp.log10, np.log10, (0.3, 3, False)),
    "sqrt": (anp.sqrt, np.sqrt, (0.3, 3, False)),
    "square": (anp.square, np.square, (-2, 2, False)),
    "reciprocal": (anp.reciprocal, np.reciprocal, (0.4, 2, True)),
    "abs": (anp.abs, np.abs, (0.2, 2, True)),
    "absolute": (anp.absolute, np.absolute, (0.2, 2, True)),
    "sign": (anp.sign, np.sign, (0.2, 2, True)),
    "negative": (anp.negative, np.negative, (-2, 2, False)),
    "sin": (anp.sin, np.sin, (-3, 3, False)),
    "cos": (anp.cos, np.cos, (-3, 3, False)),
    "tan": (anp.tan, np.tan, (-1.2, 1.2, False)),
    "arcsin": (anp.arcsin, np.arcsin, (-0.8, 0.8, False)),
    "arccos": (anp.arccos, np.arccos, (-0.8, 0.8, False)),
    "arctan": (anp.arctan, np.arctan, (-3, 3, False)),
    "sinh": (anp.sinh, np.sinh, (-2, 2, False)),
    "cosh": (anp.cosh, np.cosh, (-2, 2, False)),
    "tanh": (anp.tanh, np.tanh, (-2, 2, False)),
    "arcsinh": (anp.arcsinh, np.arcsinh, (-3, 3, False)),
    "arctanh": (anp.arctanh, np.arctanh, (-0.8, 0.8, False)),
    # operators and methods on traced values
    "op_neg": (lambda x: -x, np.negative, (-2, 2, False)),
    "op_pos": (lambda x: +x, lambda x: x, (-2, 2, False)),
    "op_abs": (lambda x: abs(x), np.abs, (0.2, 2, True)),
    "op_rsub": (lambda x: 2.0 - x, lambda x: 2.0 - x, (-2, 2, False)),
    "op_radd": (lambda x: 2.0 + x, lambda x: 2.0 + x, (-2, 2, False)),
    "op_rmul": (lambda x: 3.0 * x, lambda x: 3.0 * x, (-2, 2, False)),
    "op_rtruediv": (lambda x: 2.0 / x, lambda x: 2.0 / x, (0.4, 2, True)),
    "op_rpow": (lambda x: 2.0**x, lambda x: 2.0**x, (-2, 2, False)),
    "op_pow_int": (lambda x: x**3, lambda x: x**3, (-2, 2, False)),
    "op_pow_neg_int": (lambda x: x**-2, lambda x: x**-2, (0.4, 2, True)),
    "op_pow_float": (lambda x: x**2.5, lambda x: x**2.5, (0.3, 2, False)),
    "op_pow_half": (lambda x: x**0.5, np.sqrt, (0.3, 2, False)),
    # plain NumPy ufuncs on traced values are routed to nablanet's rules
    "np_exp": (lambda x: np.exp(x), np.exp, (-2, 2, False)),
    "np_tanh": (lambda x: np.tanh(x), np.tanh, (-2, 2, False)),
    "np_abs": (lambda x: np.abs(x), np.abs, (0.2, 2, True)),
    "np_log": (lambda x: np.log(x), np.log, (0.3, 3, False)),
}
UNARY_SHAPES = [(), (4,), (2, 3)]


@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name, shape):
    f, ref, (lo, hi, signed) = UNARY[name]
    x = draw(rng_for(name, shape), shape, lo, hi, signed)
    check(f, x, ref=ref)


@pytest.mark.parametrize(
    "f, x, expected",
    [
        (anp.sin, 0.5, np.cos(0.5)),
        (anp.exp, 1.5, np.exp(1.5)),
        (anp.log, 2.0, 0.5),
        (anp.sqrt, 4.0, 0.25),
        (anp.tanh, 0.3, 1 - np.tanh(0.3) ** 2),
        (anp.arcsin, 0.6, 1 / np.sqrt(1 - 0.36)),
        (lambda x: x**3, -2.0, 12.0),
    ],
    ids=["sin", "exp", "log", "sqrt", "tanh", "arcsin", "cube"],
)
def test_python_float_inputs_closed_form(f, x, expected):
    assert nb.grad(f)(x) == pytest.approx(expected, rel=1e-13)
    _, t = nb.jvp(f, (x,), (1.0,))
    assert t == pytest.approx(expected, rel=1e-13)


def test_second_derivative_closed_form():
    # d^2/dx^2 exp(x^2) = (2 + 4 x^2) exp(x^2), through every pair of modes
    f = lambda x: anp.exp(x**2)
    x = 0.7
    exact = (2 + 4 * x**2) * np.exp(x**2)
    rev_rev = nb.grad(nb.grad(f))(x)
    fwd_rev = nb.jvp(nb.grad(f), (x,), (1.0,))[1]
    rev_fwd = nb.grad(lambda x: nb.jvp(f, (x,), (1.0,))[1])(x)
    fwd_fwd = nb.jvp(lambda x: nb.jvp(f, (x,), (1.0,))[1], (x,), (1.0,))[1]
    for v in (rev_rev, fwd_rev, rev_fwd, fwd_fwd):
        assert v == pytest.approx(exact, rel=1e-13)


# ----------------------------------------------------------------------------
# binary elementwise functions and operators, with broadcasting
# ----------------------------------------------------------------------------

_ANY = (-2, 2, False)
_AWAY = (0.4, 2, True)
_POS = (0.3, 2, False)

# name -> (nablanet function, NumPy reference, domain of x, domain of y); domain None: separated pair
BINARY = {
    "add": (anp.add, np.add, _ANY, _ANY),
    "subtract": (anp.subtract, np.subtract, _ANY, _ANY),
    "multiply": (anp.multiply, np.multiply, _ANY, _ANY),
    "divide": (anp.divide, np.divide, _ANY, _AWAY),
    "true_divide": (anp.true_divide, np.true_divide, _ANY, _AWAY),
    "power": (anp.power, np.power, _POS, _ANY),
    "logaddexp": (anp.logaddexp, np.logaddexp, _ANY, _ANY),
    "maximum": (anp.maximum, np.maximum, None, None),
    "minimum": (anp.minimum, np.minimum, None, None),
    "op_add": (operator.add, np.add, _ANY, _ANY),
    "op_sub": (operator.sub, np.subtract, _ANY, _ANY),
    "op_mul": (operator.mul, np.multiply, _ANY, _ANY),
    "op_truediv": (operator.truediv, np.divide, _ANY, _AWAY),
    "op_pow": (operator.pow, np.power, _POS, _ANY),
    "np_maximum": (lambda x, y: np.maximum(x, y), np.maximum, None, None),
    "np_multiply": (lambda x, y: np.multiply(x, y), np.multiply, _ANY, _ANY),
}
BINARY_SHAPES = [
    ((), ()),
    ((4,), ()),
    ((), (4,)),
    ((4,), (4,)),
    ((2, 3), (2, 3)),
    ((3, 1), (4,)),
    ((2, 3, 4), (3, 1)),
    ((1, 4), (3, 1)),
    ((2, 1, 4), (3, 1)),
]


def binary_args(name, sx, sy, rng):
    _, _, dx, dy = BINARY[name]
    if dx is None:
        return separated_pair(rng, sx, sy)
    return draw(rng, sx, *dx), draw(rng, sy, *dy)


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=lambda s: f"{s[0]}-{s[1]}")
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(name, shapes):
    f, ref, _, _ = BINARY[name]
    x, y = binary_args(name, *shapes, rng_for(name, shapes))
    check(f, x, y, ref=ref)


@HYPOTHESIS
@given(
    name=st.sampled_from(sorted(BINARY)),
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_binary_random_broadcasting(name, shapes, seed):
    f, ref, _, _ = BINARY[name]
    x, y = binary_args(name, *shapes.input_shapes, np.random.default_rng(seed))
    assert np.shape(ref(x, y)) == shapes.result_shape
    check(f, x, y, ref=ref)


@pytest.mark.parametrize(
    "shapes",
    [((4,), (4,), (4,)), ((3, 1), (4,), ()), ((2, 3, 4), (3, 1), (4,)), ((), (2, 3), (3,)), ((2, 1), (1, 3), (2, 3))],
    ids=str,
)
def test_where(shapes):
    sc, sx, sy = shapes
    rng = rng_for("where", shapes)
    cond = rng.uniform(size=sc) > 0.5
    x, y = draw(rng, sx, -2, 2), draw(rng, sy, -2, 2)
    check(lambda x, y: anp.where(cond, x, y), x, y, ref=lambda x, y: np.where(cond, x, y))
    check(lambda x: anp.where(cond, x, 0.0), x, ref=lambda x: np.where(cond, x, 0.0))
    check(lambda y: np.where(cond, 1.5, y), y, ref=lambda y: np.where(cond, 1.5, y))


def test_where_condition_from_traced_comparison():
    x = np.array([-1.5, -0.5, 0.5, 2.0])
    f = lambda x: anp.sum(anp.where(x > 0, x**2, anp.sin(x)))
    np.testing.assert_allclose(nb.grad(f)(x), np.where(x > 0, 2 * x, np.cos(x)), rtol=1e-14)
    check(lambda x: anp.where(x > 0, x**2, anp.sin(x)), x)


def _clip_input(rng, shape):
    """Values in [-1, -0.6] U [-0.4, 0.4] U [0.6, 1]: never near the bounds +-0.5."""
    x = rng.uniform(-0.4, 0.4, shape)
    outside = rng.uniform(size=shape) < 0.5
    return np.where(outside, np.sign(x) * (0.6 + np.abs(x)), x)


@pytest.mark.parametrize(
    "f, ref",
    [
        (lambda x: anp.clip(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5)),
        (lambda x: anp.clip(x, -0.5, None), lambda x: np.clip(x, -0.5, None)),
        (lambda x: anp.clip(x, None, 0.5), lambda x: np.clip(x, None, 0.5)),
        (lambda x: x.clip(-0.5, 0.5), lambda x: x.clip(-0.5, 0.5)),
        (lambda x: np.clip(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5)),
        (lambda x: anp.clip(x, np.full(3, -0.5), 0.5), lambda x: np.clip(x, np.full(3, -0.5), 0.5)),
    ],
    ids=["both", "lower", "upper", "method", "np_clip", "array_bound"],
)
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)], ids=str)
def test_clip(f, ref, shape):
    x = _clip_input(rng_for("clip", shape), shape)
    check(f, x, ref=ref)
    inside = (x > -0.5) & (x < 0.5)
    np.testing.assert_array_equal(nb.elementwise_grad(lambda x: anp.clip(x, -0.5, 0.5))(x), inside.astype(float))


# ----------------------------------------------------------------------------
# reductions
# ----------------------------------------------------------------------------


def _reduction_input(name, shape, rng):
    if name in ("max", "min", "amax", "amin", "np_max"):
        return distinct(rng, shape)
    if name == "prod":
        return draw(rng, shape, 0.5, 1.5, signed=True)
    return draw(rng, shape, -2, 2)


# name -> (nablanet reduction, NumPy reference); both take (x, axis, keepdims)
REDUCTIONS = {
    "sum": (anp.sum, lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims)),
    "mean": (anp.mean, lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims)),
    "prod": (anp.prod, lambda x, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims)),
    "max": (anp.max, lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims)),
    "min": (anp.min, lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims)),
    "amax": (anp.amax, lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims)),
    "amin": (anp.amin, lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims)),
    "var": (anp.var, lambda x, axis, keepdims: np.var(x, axis=axis, keepdims=keepdims)),
    "std": (anp.std, lambda x, axis, keepdims: np.std(x, axis=axis, keepdims=keepdims)),
    "logsumexp": (
        anp.logsumexp,
        lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)),
    ),
    "method_sum": (
        lambda x, axis, keepdims: x.sum(axis=axis, keepdims=keepdims),
        lambda x, axis, keepdims: x.sum(axis=axis, keepdims=keepdims),
    ),
    "np_max": (
        lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims),
        lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims),
    ),
    "np_mean": (
        lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims),
        lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims),
    ),
}
AXES_3D = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]


def _reduction_case(name, shape, axis, keepdims, rng):
    f, ref = REDUCTIONS[name]
    x = _reduction_input(name, shape, rng)
    check(
        lambda x: f(x, axis=axis, keepdims=keepdims),
        x,
        ref=lambda x: ref(x, axis, keepdims),
        rtol=1e-11,
    )


@pytest.mark.parametrize("keepdims", [False, True], ids=["drop", "keepdims"])
@pytest.mark.parametrize("axis", AXES_3D, ids=lambda a: f"axis={a}")
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_3d(name, axis, keepdims):
    _reduction_case(name, (2, 3, 4), axis, keepdims, rng_for(name, axis, keepdims))


SMALL_CASES = [
    (name, shape, axis)
    for name in sorted(REDUCTIONS)
    for shape, axis in [((5,), None), ((5,), 0), ((5,), -1), ((), None), ((1, 4), 0), ((3, 1), -1)]
    # (std over a single value is sqrt(0), where the derivative is infinite)
    if name != "std" or (int(np.prod(shape)) if axis is None else shape[axis]) >= 2
]


@pytest.mark.parametrize("name, shape, axis", SMALL_CASES, ids=[f"{n}-{s}-axis={a}" for n, s, a in SMALL_CASES])
def test_reduction_small_shapes(name, shape, axis):
    _reduction_case(name, shape, axis, False, rng_for(name, shape, axis))


@pytest.mark.parametrize("ddof", [0, 1, 2])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)], ids=lambda a: f"axis={a}")
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_ddof(name, axis, ddof):
    x = draw(rng_for(name, axis, ddof), (3, 4, 5), -2, 2)
    f, ref = getattr(anp, name), getattr(np, name)
    check(lambda x: f(x, axis=axis, ddof=ddof), x, ref=lambda x: ref(x, axis=axis, ddof=ddof), rtol=1e-11)
    check(lambda x: getattr(x, name)(axis=axis, ddof=ddof, keepdims=True), x)


@pytest.mark.parametrize(
    "method",
    ["sum", "mean", "max", "min", "prod", "var", "std"],
)
def test_reduction_methods(method):
    x = _reduction_input(method, (3, 4), rng_for("method", method))
    check(lambda x: getattr(x, method)(axis=1), x, ref=lambda x: getattr(x, method)(axis=1), rtol=1e-11)
    check(lambda x: getattr(x, method)(), x, ref=lambda x: getattr(x, method)(), rtol=1e-11)


@HYPOTHESIS
@given(
    name=st.sampled_from(sorted(REDUCTIONS)),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
    data=st.data(),
    keepdims=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_reduction_random_axes(name, shape, data, keepdims, seed):
    nd = len(shape)
    axis = data.draw(
        st.none()
        | st.integers(-nd, nd - 1)
        | st.lists(st.integers(-nd, nd - 1), min_size=1, max_size=nd, unique_by=lambda a: a % nd).map(tuple),
        label="axis",
    )
    axes = range(nd) if axis is None else [a % nd for a in np.atleast_1d(axis)]
    count = int(np.prod([shape[a] for a in axes]))
    assume(name != "std" or count >= 2)
    _reduction_case(name, shape, axis, keepdims, np.random.default_rng(seed))


# ----------------------------------------------------------------------------
# shapes: transposes, reshapes, joins, casts
# ----------------------------------------------------------------------------

_X3 = (2, 3, 4)

# name -> (function, reference, argument shapes)
SHAPE_OPS = {
    "transpose": (anp.transpose, np.transpose, [_X3]),
    "transpose_axes": (lambda x: anp.transpose(x, (1, 0, 2)), lambda x: np.transpose(x, (1, 0, 2)), [_X3]),
    "transpose_neg_axes": (lambda x: anp.transpose(x, (-1, 0, 1)), lambda x: np.transpose(x, (-1, 0, 1)), [_X3]),
    "transpose_1d": (anp.transpose, np.transpose, [(4,)]),
    "method_T": (lambda x: x.T, lambda x: x.T, [_X3]),
    "method_mT": (lambda x: x.mT, lambda x: np.swapaxes(x, -1, -2), [_X3]),
    "method_transpose": (lambda x: x.transpose(2, 0, 1), lambda x: x.transpose(2, 0, 1), [_X3]),
    "np_transpose": (lambda x: np.transpose(x), np.transpose, [(2, 3)]),
    "swapaxes": (lambda x: anp.swapaxes(x, 0, -1), lambda x: np.swapaxes(x, 0, -1), [_X3]),
    "method_swapaxes": (lambda x: x.swapaxes(1, 2), lambda x: x.swapaxes(1, 2), [_X3]),
    "moveaxis": (lambda x: anp.moveaxis(x, 0, -1), lambda x: np.moveaxis(x, 0, -1), [_X3]),
    "moveaxis_neg": (lambda x: anp.moveaxis(x, -1, 1), lambda x: np.moveaxis(x, -1, 1), [_X3]),
    "reshape": (lambda x: anp.reshape(x, (6, 4)), lambda x: np.reshape(x, (6, 4)), [_X3]),
    "reshape_minus1": (lambda x: anp.reshape(x, (4, -1, 2)), lambda x: np.reshape(x, (4, -1, 2)), [_X3]),
    "reshape_scalar": (lambda x: anp.reshape(x, (1, 1)), lambda x: np.reshape(x, (1, 1)), [()]),
    "method_reshape": (lambda x: x.reshape(3, 8), lambda x: x.reshape(3, 8), [_X3]),
    "method_reshape_tuple": (lambda x: x.reshape((24,)), lambda x: x.reshape((24,)), [_X3]),
    "np_reshape": (lambda x: np.reshape(x, (4, 6)), lambda x: np.reshape(x, (4, 6)), [_X3]),
    "ravel": (anp.ravel, np.ravel, [_X3]),
    "method_ravel": (lambda x: x.ravel(), np.ravel, [_X3]),
    "method_flatten": (lambda x: x.flatten(), np.ravel, [_X3]),
    "squeeze": (anp.squeeze, np.squeeze, [(2, 1, 3, 1)]),
    "squeeze_axis": (lambda x: anp.squeeze(x, 1), lambda x: np.squeeze(x, 1), [(2, 1, 3, 1)]),
    "squeeze_neg_axis": (lambda x: anp.squeeze(x, -1), lambda x: np.squeeze(x, -1), [(2, 1, 3, 1)]),
    "method_squeeze": (lambda x: x.squeeze(), np.squeeze, [(1, 3)]),
    "expand_dims": (lambda x: anp.expand_dims(x, 0), lambda x: np.expand_dims(x, 0), [(2, 3)]),
    "expand_dims_neg": (lambda x: anp.expand_dims(x, -1), lambda x: np.expand_dims(x, -1), [(2, 3)]),
    "expand_dims_tuple": (lambda x: anp.expand_dims(x, (0, 2)), lambda x: np.expand_dims(x, (0, 2)), [(2, 3)]),
    "broadcast_to_row": (lambda x: anp.broadcast_to(x, (2, 3)), lambda x: np.broadcast_to(x, (2, 3)), [(3,)]),
    "broadcast_to_col": (lambda x: anp.broadcast_to(x, _X3), lambda x: np.broadcast_to(x, _X3), [(3, 1)]),
    "broadcast_to_scalar": (lambda x: anp.broadcast_to(x, (2, 2)), lambda x: np.broadcast_to(x, (2, 2)), [()]),
    "concatenate": (lambda x, y: anp.concatenate([x, y]), lambda x, y: np.concatenate([x, y]), [(2, 3), (4, 3)]),
    "concatenate_axis1": (
        lambda x, y, z: anp.concatenate([x, y, z], axis=1),
        lambda x, y, z: np.concatenate([x, y, z], axis=1),
        [(2, 3), (2, 1), (2, 2)],
    ),
    "concatenate_neg_axis": (
        lambda x, y: anp.concatenate((x, y), axis=-1),
        lambda x, y: np.concatenate((x, y), axis=-1),
        [(2, 3, 1), (2, 3, 2)],
    ),
    "concatenate_none": (
        lambda x, y: anp.concatenate([x, y], axis=None),
        lambda x, y: np.concatenate([x, y], axis=None),
        [(2, 3), (4,)],
    ),
    "concatenate_with_constant": (
        lambda x: anp.concatenate([x, np.ones((1, 3)), x]),
        lambda x: np.concatenate([x, np.ones((1, 3)), x]),
        [(2, 3)],
    ),
    "np_concatenate": (lambda x, y: np.concatenate([x, y]), lambda x, y: np.concatenate([x, y]), [(3,), (2,)]),
    "stack": (lambda x, y: anp.stack([x, y]), lambda x, y: np.stack([x, y]), [(2, 3), (2, 3)]),
    "stack_axis1": (lambda x, y, z: anp.stack([x, y, z], axis=1), lambda x, y, z: np.stack([x, y, z], axis=1), [(2, 3)] * 3),
    "stack_neg_axis": (lambda x, y: anp.stack((x, y), axis=-1), lambda x, y: np.stack((x, y), axis=-1), [(2, 3), (2, 3)]),
    "stack_scalars": (lambda x, y: anp.stack([x, y, x * y]), lambda x, y: np.stack([x, y, x * y]), [(), ()]),
    "hstack_1d": (lambda x, y: anp.hstack([x, y]), lambda x, y: np.hstack([x, y]), [(3,), (2,)]),
    "hstack_2d": (lambda x, y: anp.hstack([x, y]), lambda x, y: np.hstack([x, y]), [(2, 3), (2, 1)]),
    "hstack_scalars": (lambda x, y: anp.hstack([x, y]), lambda x, y: np.hstack([x, y]), [(), ()]),
    "vstack_1d": (lambda x, y: anp.vstack([x, y]), lambda x, y: np.vstack([x, y]), [(3,), (3,)]),
    "vstack_2d": (lambda x, y: anp.vstack([x, y]), lambda x, y: np.vstack([x, y]), [(2, 3), (1, 3)]),
    "atleast_1d": (anp.atleast_1d, np.atleast_1d, [()]),
    "atleast_2d_scalar": (anp.atleast_2d, np.atleast_2d, [()]),
    "atleast_2d_vector": (anp.atleast_2d, np.atleast_2d, [(3,)]),
    "astype": (lambda x: anp.astype(x, np.float64), lambda x: x.astype(np.float64), [(2, 3)]),
    "method_astype": (lambda x: x.astype("float64"), lambda x: x.astype("float64"), [(2, 3)]),
    # ndarray methods on traced values: nablanet.numpy's function of the same name
    "method_cumsum": (lambda x: x.cumsum(axis=1), lambda x: np.cumsum(x, axis=1), [(2, 3)]),
    "method_cumprod": (lambda x: x.cumprod(), lambda x: np.cumprod(x), [(2, 3)]),
    "method_trace": (lambda x: x.trace(1), lambda x: np.trace(x, 1), [(3, 3)]),
    "method_diagonal": (lambda x: x.diagonal(), lambda x: np.diagonal(x), [(2, 3)]),
    "method_repeat": (lambda x: x.repeat(2, axis=0), lambda x: np.repeat(x, 2, axis=0), [(2, 3)]),
    "method_take": (lambda x: x.take([2, 0, 2]), lambda x: np.take(x, [2, 0, 2]), [(2, 3)]),
    "method_copy": (lambda x: x.copy() * x, lambda x: x * x, [(2, 3)]),
    "copy": (anp.copy, np.copy, [(2, 3)]),
    "np_copy": (lambda x: np.copy(x, order="F"), lambda x: np.copy(x, order="F"), [(2, 3)]),
    "method_round": (lambda x: x.round(1) * x, lambda x: np.round(x, 1) * x, [(2, 3)]),
    "method_nondiff": (
        lambda x: x * (x.argsort() + x.all() + x.any(axis=0) + x.nonzero()[0][:3].sum() + x[0].searchsorted(0.0)),
        lambda x: x * (np.argsort(x) + x.all() + x.any(axis=0) + x.nonzero()[0][:3].sum() + np.searchsorted(x[0], 0.0)),
        [(2, 3)],
    ),
    "array_of_traced": (
        lambda x, y: anp.array([[x[0], y], [2.0, x[1] * y]]),
        lambda x, y: np.array([[x[0], y], [2.0, x[1] * y]]),
        [(2,), ()],
    ),
    "array_of_rows": (lambda x, y: anp.array([x, y, x * y]), lambda x, y: np.array([x, y, x * y]), [(3,), (3,)]),
    "array_dtype": (lambda x: anp.array([x, x], dtype=np.float64), lambda x: np.array([x, x]), [(2,)]),
    "asarray": (lambda x: anp.asarray([x[1], x[0]]), lambda x: np.asarray([x[1], x[0]]), [(2,)]),
    "iterate": (
        lambda x: anp.stack([r * i for i, r in enumerate(x)]),
        lambda x: np.stack([r * i for i, r in enumerate(x)]),
        [(3, 2)],
    ),
}


@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
def test_shape_op(name):
    f, ref, shapes = SHAPE_OPS[name]
    rng = rng_for(name)
    args = [draw(rng, s, -2, 2) for s in shapes]
    check(f, *args, ref=ref)


def test_array_of_plain_values_is_plain():
    a = anp.array([[1.0, 2.0], [3.0, 4.0]])
    assert isinstance(a, np.ndarray) and a.shape == (2, 2)


# ----------------------------------------------------------------------------
# indexing and slicing
# ----------------------------------------------------------------------------

_MASK_ROWS = np.array([True, False, True, True])
_MASK_2D = np.array([[True, False, True, False, True], [False, False, True, True, False]] * 2)

INDICES = {
    "int": 0,
    "neg_int": -1,
    "element": (1, 2),
    "slice": slice(1, 3),
    "slice_step": (slice(None), slice(None, None, 2)),
    "reverse": slice(None, None, -1),
    "ellipsis": (Ellipsis, 1),
    "newaxis": (None, slice(1, 3)),
    "mixed_basic": (slice(None), None, 1),
    "empty_tuple": (),
    "int_array_repeated": [0, 0, 2],
    "int_array_2d": np.array([[0, 1], [1, 1]]),
    "int_array_pairs_repeated": (np.array([1, 1, 0, 3]), np.array([2, 2, 0, 2])),
    "slice_then_array": (slice(None), [0, 2, 2]),
    "array_then_slice": ([3, 3, 0], slice(1, 4)),
    "ellipsis_array": (Ellipsis, [1, 1, 4]),
    "negative_array": np.array([-1, -1, 0]),
    "bool_rows": _MASK_ROWS,
    "bool_2d": _MASK_2D,
    "bool_list": [True, False, False, True],
    "bool_and_slice": (slice(None), np.array([False, True, True, False, True])),
}


@pytest.mark.parametrize("name", sorted(INDICES))
def test_indexing(name):
    idx = INDICES[name]
    x = draw(rng_for("index", name), (4, 5), -2, 2)
    check(lambda x: x[idx], x, ref=lambda x: x[idx])
    # the adjoint of indexing adds up repeated picks: count how often each entry is picked
    picked = np.arange(x.size).reshape(x.shape)[idx]
    expected = np.bincount(np.ravel(picked), minlength=x.size).reshape(x.shape).astype(float)
    np.testing.assert_array_equal(nb.grad(lambda x: anp.sum(x[idx]))(x), expected)


def test_indexing_with_mask_from_traced_comparison():
    x = draw(rng_for("mask"), (3, 4), 0.3, 2, signed=True)
    check(lambda x: x[x > 0] ** 2, x, ref=lambda x: x[x > 0] ** 2)
    np.testing.assert_allclose(nb.grad(lambda x: anp.sum(x[x > 0] ** 2))(x), np.where(x > 0, 2 * x, 0.0), rtol=1e-15)


def test_indexing_repeated_index_gradient_counts():
    x = np.array([1.0, 2.0, 3.0])
    f = lambda x: anp.sum(x[[0, 0, 0, 2]] ** 2)
    np.testing.assert_allclose(nb.grad(f)(x), [6.0, 0.0, 6.0])
    _, t = nb.jvp(lambda x: x[[0, 0, 2]], (x,), (np.array([1.0, 10.0, 100.0]),))
    np.testing.assert_allclose(t, [1.0, 1.0, 100.0])
    np.testing.assert_allclose(nb.hessian(f)(x), np.diag([6.0, 0.0, 2.0]))


def test_getitem_and_untake_are_each_others_adjoint():
    idx = [2, 0, 2]
    g = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(anp.untake(g, idx, (4,), np.float64), [2.0, 0.0, 4.0, 0.0])
    check(lambda g: anp.untake(g, idx, (4,), np.float64), g)
    check(lambda x: anp.getitem(x, idx), np.arange(4.0), ref=lambda x: x[idx])


# ----------------------------------------------------------------------------
# linear algebra
# ----------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((2, 3, 4), (4, 5)),
    ((4,), (2, 4, 5)),
    ((4,), (3, 2, 4, 2)),
    ((2, 3, 4), (4,)),
    ((2, 1, 3, 4), (4,)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((1, 3, 4), (2, 4, 5)),
    ((3, 4), (2, 4, 5)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=lambda s: f"{s[0]}@{s[1]}")
@pytest.mark.parametrize(
    "f", [anp.matmul, operator.matmul, lambda a, b: np.matmul(a, b)], ids=["matmul", "operator", "np_matmul"]
)
def test_matmul(f, shapes):
    rng = rng_for("matmul", shapes)
    a, b = (draw(rng, s, -1, 1) for s in shapes)
    check(f, a, b, ref=np.matmul)


@pytest.mark.parametrize(
    "shapes", [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((), (2, 3)), ((2, 3), ())], ids=str
)
@pytest.mark.parametrize("f", [anp.dot, lambda a, b: np.dot(a, b)], ids=["dot", "np_dot"])
def test_dot(f, shapes):
    rng = rng_for("dot", shapes)
    a, b = (draw(rng, s, -1, 1) for s in shapes)
    check(f, a, b, ref=np.dot)


def test_dot_method():
    rng = rng_for("dot_method")
    a, b = draw(rng, (2, 3), -1, 1), draw(rng, (3, 2), -1, 1)
    # (ndarray.dot(tracer) is NumPy's own method and bypasses dispatch, so only the tracer's method is used)
    check(lambda a: a.dot(b), a, ref=lambda a: np.dot(a, b))


@pytest.mark.parametrize(
    "name, shapes",
    [
        ("outer", ((3,), (4,))),
        ("outer", ((2, 2), (3,))),
        ("outer", ((), (3,))),
        ("inner", ((3,), (3,))),
        ("inner", ((2, 3), (3,))),
        ("inner", ((3,), (2, 3))),
        ("inner", ((2, 3), (4, 3))),
        ("inner", ((3, 3), (3, 3))),
        ("inner", ((2, 3), (4, 5, 3))),
        ("inner", ((), (2, 3))),
        ("vdot", ((3,), (3,))),
        ("vdot", ((2, 3), (2, 3))),
        ("vdot", ((2, 3), (6,))),
    ],
    ids=str,
)
def test_products(name, shapes):
    rng = rng_for(name, shapes)
    a, b = (draw(rng, s, -1, 1) for s in shapes)
    check(getattr(anp, name), a, b, ref=getattr(np, name))


EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij->", [(2, 3)]),
    ("ij->j", [(2, 3)]),
    ("ij->ji", [(2, 3)]),
    ("i,i->", [(3,), (3,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij,ij->i", [(2, 3), (2, 3)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("i,i", [(3,), (3,)]),
    ("ij,k->i", [(2, 3), (4,)]),
    ("ij,jk->i", [(2, 3), (3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("...ij,jk->...ik", [(2, 3, 4), (4, 5)]),
    ("...ij,jk->...ik", [(2, 2, 3, 4), (4, 5)]),
    ("...ij,jk->...ik", [(3, 4), (4, 5)]),
    ("...ij,jk", [(2, 3, 4), (4, 5)]),
    ("...i,...i->...", [(2, 3), (2, 3)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(1, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(3, 4), (2, 4, 5)]),
    (" ij , jk -> ik ", [(2, 3), (3, 4)]),
]


@pytest.mark.parametrize("spec, shapes", EINSUM, ids=[f"{s.strip()}:{sh}" for s, sh in EINSUM])
def test_einsum(spec, shapes):
    rng = rng_for("einsum", spec, shapes)
    args = [draw(rng, s, -1, 1) for s in shapes]
    check(lambda *ops: anp.einsum(spec, *ops), *args, ref=lambda *ops: np.einsum(spec, *ops))
    check(lambda *ops: np.einsum(spec, *ops), *args, ref=lambda *ops: np.einsum(spec, *ops))


def test_einsum_repeated_index_in_one_operand():
    np.testing.assert_array_equal(nb.grad(lambda x: anp.einsum("ii->", x))(np.ones((2, 2))), np.eye(2))


@pytest.mark.parametrize("shape", [(3, 3), (3, 4), (4, 2)], ids=str)
def test_trace(shape):
    x = draw(rng_for("trace", shape), shape, -2, 2)
    check(anp.trace, x, ref=np.trace)
    np.testing.assert_array_equal(nb.grad(anp.trace)(x), np.eye(*shape))


# ----------------------------------------------------------------------------
# every exported differentiable function is covered above
# ----------------------------------------------------------------------------

REQUIRED = set(
    "exp log log1p expm1 exp2 log2 log10 sqrt square reciprocal abs sign sin cos tan arcsin arccos arctan sinh "
    "cosh tanh arcsinh arctanh logaddexp maximum minimum where clip power sum mean prod max min var std dot "
    "matmul outer inner vdot einsum transpose swapaxes moveaxis reshape ravel squeeze expand_dims broadcast_to "
    "concatenate stack hstack vstack astype logsumexp trace array add subtract multiply divide negative getitem".split()
)
COVERED = (
    set(UNARY)
    | set(BINARY)
    | set(REDUCTIONS)
    | set(SHAPE_OPS)
    | {"where", "clip", "dot", "outer", "inner", "vdot", "einsum", "trace", "matmul", "getitem", "untake"}
    | {"array", "broadcast_to", "concatenate", "expand_dims", "squeeze", "stack", "hstack", "vstack", "atleast_2d"}
    # cases in tests/test_numpy_edges.py
    | {"mod", "remainder", "fmod", "sort", "partition", "unique", "median", "percentile", "quantile"}
    | {"take", "take_along_axis", "append"}
    # cases in tests/test_numpy_elementwise.py
    | set("arccosh arctan2 cbrt conj conjugate deg2rad degrees fabs fmax fmin hypot logaddexp2 nan_to_num positive "
          "rad2deg radians real real_if_close sinc".split())
    # cases in tests/test_numpy_shapes.py
    | set("array_split column_stack diag diagflat diagonal dsplit dstack flip fliplr flipud full hsplit make_diagonal "
          "pad repeat roll rot90 select split tile tril triu vsplit atleast_1d atleast_3d".split())
    # cases in tests/test_numpy_reductions.py
    | set("average cumprod cumsum diff ediff1d nancumprod nancumsum nanmax nanmean nanmin nanprod nanstd nansum nanvar "
          "ptp gradient".split())
    | {"rollaxis", "linspace"}
    | {"tensordot", "kron", "cross"}  # checked in tests/test_linalg.py
    | {"imag", "angle"}  # checked in tests/test_numpy_complex.py (with real, conj, abs at complex points)
    | {"row_stack"}  # checked in tests/test_numpy_autograd_api.py
)
NOT_FUNCTIONS = {"NotDifferentiableError", "Primitive", "Tracer", "getval"}


def test_every_differentiable_export_has_a_case():
    exported = {k for k in anp._DIFFERENTIABLE if k not in NOT_FUNCTIONS}
    assert REQUIRED <= exported, f"nablanet.numpy lacks {sorted(REQUIRED - exported)}"
    assert exported <= set(anp.__all__)
    missing = exported - COVERED
    assert not missing, f"no test case for {sorted(missing)}"


# ----------------------------------------------------------------------------
# behaviour around the rules
# ----------------------------------------------------------------------------


def _capture(fun, x):
    """Run ``fun`` on ``x`` traced in reverse and then in forward mode; return what it saw."""
    seen = []

    def f(x):
        seen.append(fun(x))
        return anp.sum(x)

    nb.grad(f)(x)
    nb.jvp(f, (x,), (np.ones_like(x),))
    return seen


@pytest.mark.parametrize(
    "fun, ref",
    [
        (lambda x: x > 0, lambda x: x > 0),
        (lambda x: x >= 0.5, lambda x: x >= 0.5),
        (lambda x: x < 0, lambda x: x < 0),
        (lambda x: x <= -0.5, lambda x: x <= -0.5),
        (lambda x: x == x[0], lambda x: x == x[0]),
        (lambda x: x != x[::-1], lambda x: x != x[::-1]),
        (lambda x: 0 < x, lambda x: 0 < x),
        (lambda x: np.ones(4) > x, lambda x: np.ones(4) > x),
        (lambda x: np.greater(x, 0), lambda x: np.greater(x, 0)),
        (lambda x: anp.less_equal(x, 0.1), lambda x: np.less_equal(x, 0.1)),
        (lambda x: anp.isfinite(x), np.isfinite),
        (lambda x: anp.argmax(x), np.argmax),
        (lambda x: x.argmin(), np.argmin),
        (lambda x: anp.floor(x), np.floor),
        (lambda x: anp.round(x), np.round),
        (lambda x: anp.zeros_like(x), np.zeros_like),
        (lambda x: anp.shape(x), np.shape),
    ],
    ids=[
        "gt",
        "ge",
        "lt",
        "le",
        "eq",
        "ne",
        "reflected",
        "ndarray_lhs",
        "np_greater",
        "anp_less_equal",
        "isfinite",
        "argmax",
        "argmin_method",
        "floor",
        "round",
        "zeros_like",
        "shape",
    ],
)
def test_comparisons_and_nondiff_functions_return_plain_values(fun, ref):
    x = np.array([-1.25, 0.5, 2.0, -0.75])
    seen = _capture(fun, x)
    assert len(seen) == 2
    for r in seen:
        assert not isinstance(r, Tracer)
        assert not any(isinstance(v, Tracer) for v in np.ravel(np.asarray(r, dtype=object)))
        np.testing.assert_array_equal(r, ref(x))


def test_nondiff_results_carry_no_derivative():
    x = np.array([-1.25, 0.5, 2.7])
    # floor(x) and (x > 0) are constants: d/dx [x * floor(x) + x * (x > 0)] = floor(x) + (x > 0)
    f = lambda x: anp.sum(x * anp.floor(x) + x * (x > 0))
    expected = np.floor(x) + (x > 0)
    np.testing.assert_allclose(nb.grad(f)(x), expected)
    np.testing.assert_allclose(nb.jvp(f, (x,), (np.ones(3),))[1], expected.sum())


def test_sign_has_zero_derivative():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    f = lambda x: anp.sum(anp.sign(x))
    np.testing.assert_array_equal(nb.grad(f)(x), np.zeros(5))
    np.testing.assert_array_equal(nb.jvp(anp.sign, (x,), (np.ones(5),))[1], np.zeros(5))
    np.testing.assert_array_equal(nb.elementwise_grad(anp.sign)(x), np.zeros(5))
    np.testing.assert_array_equal(nb.hessian(f)(x), np.zeros((5, 5)))
    # sign is a constant factor: d/dx [x sign(x)] = sign(x)
    np.testing.assert_array_equal(nb.grad(lambda x: anp.sum(x * anp.sign(x)))(x), np.sign(x))


@pytest.mark.parametrize("fun", [anp.maximum, anp.minimum], ids=["maximum", "minimum"])
def test_maximum_minimum_ties_split_the_gradient(fun):
    x = np.array([1.0, -2.0, 3.0])
    y = np.array([1.0, 0.0, 3.0])  # tied at 0 and 2
    win_x = (x > y) if fun is anp.maximum else (x < y)
    expected_x = np.where(x == y, 0.5, win_x.astype(float))
    gx, gy = nb.grad(lambda x, y: anp.sum(fun(x, y)), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, expected_x)
    np.testing.assert_array_equal(gy, 1.0 - expected_x)
    _, tx = nb.jvp(fun, (x, y), (np.ones(3), np.zeros(3)))
    _, ty = nb.jvp(fun, (x, y), (np.zeros(3), np.ones(3)))
    np.testing.assert_array_equal(tx, expected_x)
    np.testing.assert_array_equal(ty, 1.0 - expected_x)
    # the same point passed twice: both halves come back to it
    np.testing.assert_array_equal(nb.grad(lambda x: anp.sum(fun(x, x)))(x), np.ones(3))
    # a broadcast scalar tied with some entries
    # (x = [1, -2, 3] against s = 1: s wins once, ties once, loses once, for maximum and minimum alike)
    assert nb.grad(lambda s: anp.sum(fun(x, s)))(1.0) == 1.5
    assert nb.jvp(lambda s: anp.sum(fun(x, s)), (1.0,), (1.0,))[1] == 1.5


@pytest.mark.parametrize("fun", [anp.max, anp.min], ids=["max", "min"])
def test_max_min_ties_share_the_gradient(fun):
    x = np.array([[3.0, 1.0, 3.0], [-1.0, -1.0, -1.0]]) * (1 if fun is anp.max else -1)
    np.testing.assert_allclose(nb.grad(lambda x: fun(x))(x), [[0.5, 0, 0.5], [0, 0, 0]])
    np.testing.assert_allclose(nb.grad(lambda x: anp.sum(fun(x, axis=1)))(x), [[0.5, 0, 0.5], [1 / 3] * 3])
    _, t = nb.jvp(lambda x: fun(x, axis=1), (x,), (np.arange(6.0).reshape(2, 3),))
    np.testing.assert_allclose(t, [1.0, 4.0])


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda x: np.linalg.lstsq(x, x)[0], "lstsq"),
        (lambda x: np.linalg.tensorinv(x, ind=1), "tensorinv"),
        (lambda x: np.convolve(x[0], x[1]), "convolve"),
        (lambda x: anp.convolve(x[0], x[1]), "convolve"),
        (lambda x: anp.histogram(x)[0], "histogram"),
        (lambda x: np.unwrap(x), "unwrap"),
        (lambda x: np.spacing(x), "spacing"),
        (lambda x: anp.spacing(x), "spacing"),
        (lambda x: np.exp(x, out=np.empty((2, 2))), "exp"),
        (lambda x: np.add.reduce(x), "reduce"),
        (lambda x: np.asarray(x), "asarray|converted"),
    ],
    ids=[
        "np_linalg_lstsq",
        "np_linalg_tensorinv",
        "np_convolve",
        "anp_convolve",
        "anp_histogram",
        "np_unwrap",
        "np_spacing",
        "anp_spacing",
        "ufunc_out",
        "ufunc_reduce",
        "np_asarray",
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_function_without_rule_raises_naming_it(call, name, mode):
    x = np.array([[2.0, 1.0], [1.0, 3.0]])
    f = lambda x: anp.sum(call(x))
    with pytest.raises(nb.NotDifferentiableError, match=name) as info:
        if mode == "rev":
            nb.grad(f)(x)
        else:
            nb.jvp(f, (x,), (np.ones_like(x),))
    assert isinstance(info.value, TypeError)


def test_guarded_numpy_functions_work_on_plain_arrays():
    np.testing.assert_array_equal(anp.cumsum(np.array([1.0, 2.0, 3.0])), [1.0, 3.0, 6.0])
    assert anp.pi == np.pi
    np.testing.assert_array_equal(anp.zeros(2), np.zeros(2))


@pytest.mark.parametrize(
    "f, df",
    [
        (lambda x: np.exp(x), np.exp),
        (lambda x: np.sin(x) * np.cos(x), lambda x: np.cos(2 * x)),
        (lambda x: np.sum(np.tanh(x), axis=0), lambda x: 1 - np.tanh(x) ** 2),
        (lambda x: np.mean(np.square(x)), lambda x: 2 * x / x.size),
        (lambda x: np.dot(x, np.arange(3.0)), lambda x: np.broadcast_to(np.arange(3.0), x.shape)),
        (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
        (lambda x: np.where(x > 0, np.log(np.abs(x)), 0.0), lambda x: np.where(x > 0, 1 / x, 0.0)),
    ],
    ids=["exp", "sin_cos", "sum_tanh", "mean_square", "dot", "maximum", "where_log_abs"],
)
def test_plain_numpy_functions_route_to_nablanet(f, df):
    x = np.array([[0.5, -1.2, 0.8], [1.5, 0.3, -0.4]])
    seen = []

    def traced(x):
        out = f(x)
        seen.append(isinstance(out, Tracer))
        return out

    np.testing.assert_allclose(nb.elementwise_grad(traced)(x), df(x), rtol=1e-13, atol=1e-15)
    assert seen == [True]
    check(traced, x, ref=f)


F32_CASES = {
    "exp": anp.exp,
    "log": anp.log,
    "tanh": anp.tanh,
    "sqrt": anp.sqrt,
    "abs": anp.abs,
    "exp2": anp.exp2,
    "arcsin": anp.arcsin,
    "power_float": lambda x: x**2.5,
    "rpow": lambda x: 2.0**x,
    "divide": lambda x: 1.5 / x,
    "maximum": lambda x: anp.maximum(x, 0.6),
    "minimum": lambda x: anp.minimum(x, 0.6),
    "max": lambda x: anp.max(x, axis=0),
    "min": lambda x: anp.min(x),
    "mean": lambda x: anp.mean(x, axis=1),
    "std": anp.std,
    "logsumexp": lambda x: anp.logsumexp(x, axis=-1),
    "prod": anp.prod,
    "matmul": lambda x: x @ x.T,
    "einsum": lambda x: anp.einsum("ij,ij->i", x, x),
    "getitem": lambda x: x[[0, 0, 1], [2, 2, 0]],
    "where": lambda x: anp.where(x > 0.6, x, -x),
    "clip": lambda x: anp.clip(x, 0.3, 0.7),
    "logaddexp": lambda x: anp.logaddexp(x, 0.5),
    "concatenate": lambda x: anp.concatenate([x, x * 2]),
    "trace": lambda x: anp.trace(x[:, :2]),
    "astype_roundtrip": lambda x: anp.astype(anp.astype(x, np.float64) * 3.0, np.float32),
}


@pytest.mark.parametrize("name", sorted(F32_CASES))
def test_float32_inputs_give_float32_derivatives(name):
    f = F32_CASES[name]
    x64 = np.array([[0.2, 0.45, 0.9], [0.75, 0.35, 0.55]])
    x = x64.astype(np.float32)
    loss = lambda x: anp.sum(f(x) ** 2)
    results = {
        "value": f(x),
        "grad": nb.grad(loss)(x),
        "elementwise_grad": nb.elementwise_grad(f)(x),
        "jvp": nb.jvp(f, (x,), (np.ones_like(x),))[1],
        "hvp": nb.hvp(loss, x, np.ones_like(x)),
    }
    expected = {
        "value": f(x64),
        "grad": nb.grad(loss)(x64),
        "elementwise_grad": nb.elementwise_grad(f)(x64),
        "jvp": nb.jvp(f, (x64,), (np.ones_like(x64),))[1],
        "hvp": nb.hvp(loss, x64, np.ones_like(x64)),
    }
    for key, value in results.items():
        assert np.asarray(value).dtype == np.float32, f"{key} of {name} is {np.asarray(value).dtype}"
        np.testing.assert_allclose(value, expected[key], rtol=2e-4, atol=1e-5, err_msg=key)


def test_float32_scalar_input():
    g = nb.grad(lambda x: anp.maximum(x, 0.5) ** 2.5 + anp.sin(x))(np.float32(0.7))
    assert np.asarray(g).dtype == np.float32
    assert float(g) == pytest.approx(2.5 * 0.7**1.5 + np.cos(0.7), rel=1e-5)


@pytest.mark.parametrize(
    "assign",
    [
        lambda x: x.__setitem__(0, 1.0),
        lambda x: x.__setitem__(slice(None), 0.0),
        lambda x: x.__setitem__(np.array([True, False, True]), x[0]),
    ],
    ids=["int", "slice", "mask"],
)
@pytest.mark.parametrize("mode", MODES)
def test_inplace_assignment_on_tracer_raises(assign, mode):
    x = np.array([1.0, 2.0, 3.0])

    def f(x):
        assign(x)
        return anp.sum(x)

    with pytest.raises(TypeError, match="in-place"):
        if mode == "rev":
            nb.grad(f)(x)
        else:
            nb.jvp(f, (x,), (np.ones(3),))


def test_inplace_statement_on_tracer_raises():
    def f(x):
        x[0] = 1.0
        return anp.sum(x)

    def g(x):
        x[1:] += 1.0
        return anp.sum(x)

    for fun in (f, g):
        with pytest.raises(TypeError):
            nb.grad(fun)(np.zeros(3))
    x = np.zeros(3)
    f(x)  # plain arrays are untouched by nablanet
    assert x[0] == 1.0


@pytest.mark.parametrize("shift", [1000.0, -1000.0, 0.0])
def test_logsumexp_is_stable(shift):
    base = np.array([0.5, -0.3, 0.0, 1.2])
    x = base + shift
    p = np.exp(base) / np.sum(np.exp(base))
    lse = shift + np.log(np.sum(np.exp(base)))
    value, g = nb.value_and_grad(anp.logsumexp)(x)
    assert np.isfinite(value) and np.all(np.isfinite(g))
    assert value == pytest.approx(lse, rel=1e-15, abs=1e-12)
    np.testing.assert_allclose(g, p, rtol=1e-11)
    _, t = nb.jvp(anp.logsumexp, (x,), (np.arange(4.0),))
    assert t == pytest.approx(p @ np.arange(4.0), rel=1e-11)
    np.testing.assert_allclose(nb.hessian(anp.logsumexp)(x), np.diag(p) - np.outer(p, p), atol=1e-14)
    # along an axis, rows at different scales
    X = np.stack([base + shift, base - shift, base])
    np.testing.assert_allclose(anp.logsumexp(X, axis=1) - np.array([shift, -shift, 0.0]), lse - shift, atol=1e-11)
    G = nb.grad(lambda X: anp.sum(anp.logsumexp(X, axis=1, keepdims=True)))(X)
    assert np.all(np.isfinite(G))
    np.testing.assert_allclose(G, np.tile(p, (3, 1)), rtol=1e-11)
    nb.check_grads(lambda X: anp.logsumexp(X, axis=-1), (X,), order=2, modes=MODES)


def test_logsumexp_with_minus_infinity():
    x = np.array([0.0, -np.inf, np.log(3.0)])
    assert anp.logsumexp(x) == pytest.approx(np.log(4.0))
    np.testing.assert_allclose(nb.grad(anp.logsumexp)(x), [0.25, 0.0, 0.75])


# ----------------------------------------------------------------------------
# the checks themselves can fail
# ----------------------------------------------------------------------------


def _sin_with(vjp=None, jvp=None):
    p = Primitive(np.sin, "sin_under_test")
    p.defvjp(vjp or (lambda ans, x: lambda g: g * anp.cos(x)))
    p.defjvp(jvp or (lambda g, ans, x: g * anp.cos(x)))
    return p


@pytest.mark.parametrize(
    "prim, mode",
    [
        (_sin_with(vjp=lambda ans, x: lambda g: g * anp.cos(x) * 1.001), "reverse"),
        (_sin_with(jvp=lambda g, ans, x: g * anp.cos(x) * 1.001), "forward"),
        # right first derivatives whose rule is not differentiable (cos taken as a constant)
        (_sin_with(vjp=lambda ans, x: lambda g: g * np.cos(getval(x))), "order 2"),
        (_sin_with(jvp=lambda g, ans, x: g * np.cos(getval(x))), "order 2"),
    ],
    ids=["bad_vjp", "bad_jvp", "bad_second_rev", "bad_second_fwd"],
)
def test_check_grads_catches_wrong_rules(prim, mode):
    x = np.array([0.3, -1.1, 2.0])
    if mode == "order 2":
        nb.check_grads(prim, (x,), order=1, modes=MODES)  # the first derivatives are right
    with pytest.raises(nb.GradientCheckError, match=mode):
        nb.check_grads(prim, (x,), order=2, modes=MODES)


# ----------------------------------------------------------------------------
# ndarray methods a traced value cannot have: one clear error naming the method
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, error, match",
    [(lambda x: x.tolist(), TypeError, r"\.tolist\(\) of a traced value would cut it out of the derivative"),
     (lambda x: x.tobytes(), TypeError, r"\.tobytes\(\) of a traced value would cut it out"),
     (lambda x: x.sort(), nb.NotDifferentiableError, r"ndarray\.sort changes the array in place.*anp|numpy\.sort"),
     (lambda x: x.partition(1), nb.NotDifferentiableError, r"ndarray\.partition changes the array in place"),
     (lambda x: x.fill(0.0), nb.NotDifferentiableError, r"ndarray\.fill changes the array in place.*full_like"),
     (lambda x: x.put([0], 1.0), nb.NotDifferentiableError, r"ndarray\.put changes the array in place.*where"),
     (lambda x: x.resize((3,)), nb.NotDifferentiableError, r"ndarray\.resize changes the array in place"),
     (lambda x: x.view(np.int64), AttributeError, r"ndarray\.view is not available on a traced value"),
     (lambda x: x.flat, AttributeError, r"ndarray\.flat is not available on a traced value"),
     (lambda x: x.compress([True, False]), AttributeError, r"ndarray\.compress is not available"),
     (lambda x: x.no_such_thing, AttributeError, r"^'RTracer' object has no attribute 'no_such_thing'$")],
    ids=["tolist", "tobytes", "sort", "partition", "fill", "put", "resize", "view", "flat", "compress", "unknown"],
)
def test_ndarray_methods_without_meaning_on_traced_values_say_why(method, error, match):
    x = np.array([0.7, -1.3, 2.6])
    with pytest.raises(error, match=match):  # it was AttributeError: 'RTracer' object has no attribute 'tolist'
        nb.grad(lambda x: (method(x), anp.sum(x))[1])(x)
    if error is not AttributeError or "available" in match:
        method(x.copy())  # on a plain array: NumPy's own method


def test_static_array_attributes_on_traced_values():
    x = np.ones((2, 3), np.float32)
    assert nb.grad(lambda x: anp.sum(x) * (x.nbytes + x.itemsize))(x)[0, 0] == 28.0
    assert nb.grad(lambda x: anp.sum(x) * hasattr(x, "flat") * hasattr(x, "__array_interface__"))(x)[0, 0] == 0.0
