"""Cumulative functions, differences, averages, ranges and NaN-ignoring reductions, every axis form."""

from __future__ import annotations

import numpy as np
import pytest
from numpy_cases import both_modes_grad, check, rng_for

import nablanet as nb
import nablanet.numpy as anp

AXES = [None, 0, 1, -1]


def _x(name, shape=(3, 4), distinct=False):
    rng = rng_for(name, shape)
    if distinct:
        n = int(np.prod(shape))
        return ((rng.permutation(n) - n / 2) * 0.3 + rng.uniform(0, 0.03, n)).reshape(shape)
    return rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", ["cumsum", "cumprod", "nancumsum", "nancumprod"])
def test_cumulative(name, axis):
    x = _x(name)
    check(lambda x: getattr(anp, name)(x, axis=axis), x, ref=lambda x: getattr(np, name)(x, axis=axis))


def test_cumulative_vectors_and_methods():
    x = _x("cv", (5,))
    check(anp.cumsum, x, ref=np.cumsum)
    check(lambda x: np.cumsum(x), x, ref=np.cumsum)
    check(lambda x: np.cumprod(x, axis=0), x, ref=lambda x: np.cumprod(x, axis=0))


@pytest.mark.parametrize("zeros", [[1], [0], [4], [1, 3]], ids=str)
def test_cumprod_with_zeros_is_exact(zeros):
    x = _x("cz", (5,))
    x[zeros] = 0.0
    check(anp.cumprod, x, ref=np.cumprod)
    # d cumprod(x)[-1] / dx_j = product of the others
    g = nb.grad(lambda x: anp.cumprod(x)[-1])(x)
    expected = [np.prod(np.delete(x, j)) for j in range(5)]
    np.testing.assert_allclose(g, expected, atol=1e-15)


DIFFS = {
    "diff": (lambda x: anp.diff(x), lambda x: np.diff(x)),
    "diff_n2": (lambda x: anp.diff(x, n=2, axis=0), lambda x: np.diff(x, n=2, axis=0)),
    "diff_prepend": (lambda x: anp.diff(x, prepend=0.5), lambda x: np.diff(x, prepend=0.5)),
    "diff_append_array": (lambda x: anp.diff(x, axis=0, append=x[:1]), lambda x: np.diff(x, axis=0, append=x[:1])),
    "np_diff": (lambda x: np.diff(x, axis=1), lambda x: np.diff(x, axis=1)),
    "ediff1d": (anp.ediff1d, np.ediff1d),
    "ediff1d_ends": (lambda x: anp.ediff1d(x, to_end=[1.0, 2.0], to_begin=-1.0),
                     lambda x: np.ediff1d(x, to_end=[1.0, 2.0], to_begin=-1.0)),
    "ptp": (anp.ptp, np.ptp),
    "gradient_axis": (lambda x: anp.gradient(x, axis=1), lambda x: np.gradient(x, axis=1)),
    "gradient_spacing": (lambda x: anp.gradient(x, 0.5, axis=0), lambda x: np.gradient(x, 0.5, axis=0)),
    "gradient_all": (lambda x: anp.stack(anp.gradient(x, 2.0, 0.5)), lambda x: np.stack(np.gradient(x, 2.0, 0.5))),
    "ptp_axis": (lambda x: anp.ptp(x, axis=1, keepdims=True), lambda x: np.ptp(x, axis=1, keepdims=True)),
    "average": (anp.average, np.average),
    "average_axis": (lambda x: anp.average(x, axis=0), lambda x: np.average(x, axis=0)),
    "average_weights": (lambda x: anp.average(x, weights=np.arange(1.0, 13.0).reshape(3, 4)),
                        lambda x: np.average(x, weights=np.arange(1.0, 13.0).reshape(3, 4))),
    "average_weights_1d": (lambda x: anp.average(x, axis=1, weights=[1.0, 2.0, 0.5, 3.0]),
                           lambda x: np.average(x, axis=1, weights=[1.0, 2.0, 0.5, 3.0])),
    "average_keepdims": (lambda x: anp.average(x, axis=0, weights=[1.0, 2.0, 3.0], keepdims=True),
                         lambda x: np.average(x, axis=0, weights=[1.0, 2.0, 3.0], keepdims=True)),
}


@pytest.mark.parametrize("name", sorted(DIFFS))
def test_differences_and_averages(name):
    f, ref = DIFFS[name]
    check(f, _x(name, distinct=name.startswith("ptp")), ref=ref)


def test_average_differentiates_the_weights_and_returned():
    x = _x("aw")
    w = np.abs(_x("w")) + 0.1
    check(lambda x, w: anp.average(x, axis=0, weights=w), x, w, ref=lambda x, w: np.average(x, axis=0, weights=w))
    avg, total = anp.average(x, axis=1, weights=w, returned=True)
    ref_avg, ref_total = np.average(x, axis=1, weights=w, returned=True)
    np.testing.assert_allclose(avg, ref_avg)
    np.testing.assert_allclose(total, ref_total)
    out, _ = nb.vjp(lambda x: anp.average(x, returned=True)[1], x)
    np.testing.assert_array_equal(out, np.average(x, returned=True)[1])


NANS = ["nansum", "nanmean", "nanmax", "nanmin", "nanvar", "nanstd", "nanprod"]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", NANS)
def test_nan_reductions(name, axis, keepdims):
    x = _x(name, distinct=name in ("nanmax", "nanmin"))
    x[0, 1] = x[2, 3] = np.nan
    f = lambda x: getattr(anp, name)(x, axis=axis, keepdims=keepdims)
    ref = lambda x: getattr(np, name)(x, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(f(x), ref(x))
    out, vjp_fn = nb.vjp(f, x)
    np.testing.assert_allclose(out, ref(x), rtol=1e-12)
    g = vjp_fn(np.ones(np.shape(out)))[0]
    assert g[0, 1] == 0.0 and g[2, 3] == 0.0 and np.all(np.isfinite(g))
    # the derivative at the other entries: that of the plain reduction over them (NaN entries 0 in both modes)
    holes = np.isnan(x)
    filled = np.where(holes, 0.0, x)
    nb.check_grads(lambda v: f(np.where(holes, np.nan, 0.0) + v), (filled,), order=2)


@pytest.mark.parametrize("name", ["nanvar", "nanstd"])
@pytest.mark.parametrize("ddof", [0, 1])
def test_nanvar_nanstd_ddof(name, ddof):
    x = _x(name, (5,))
    x[2] = np.nan
    check(lambda v: getattr(anp, name)(v, ddof=ddof), _x(name + "c", (5,)),
          ref=lambda v: getattr(np, name)(v, ddof=ddof))
    np.testing.assert_allclose(getattr(anp, name)(x, ddof=ddof), getattr(np, name)(x, ddof=ddof))


def test_nan_conventions():
    x = np.array([1.0, np.nan, 3.0, 3.0])
    for g in both_modes_grad(anp.nanmax, x):
        np.testing.assert_array_equal(g, [0.0, 0.0, 0.5, 0.5])
    for g in both_modes_grad(anp.nanmean, x):
        np.testing.assert_allclose(g, [1 / 3, 0.0, 1 / 3, 1 / 3])
    for g in both_modes_grad(anp.nanstd, np.array([2.0, np.nan, 2.0])):
        np.testing.assert_array_equal(g, [0.0, 0.0, 0.0])
    # an all-NaN slice gives NaN, as NumPy's does
    assert np.isnan(nb.vjp(lambda x: anp.nanmax(x, axis=0), np.array([[np.nan, 1.0]]))[0][0])


def test_reductions_take_numpys_other_keywords():
    # dtype/where/initial/out were refused with TypeError even on plain arrays; NumPy's own now,
    # and on traced values dtype casts while anything else is refused by name (never dropped)
    a = np.arange(6.0).reshape(2, 3)
    cases = [
        lambda m: m.sum(a, dtype=np.float32), lambda m: m.sum(a, where=a > 1), lambda m: m.max(a, initial=10.0),
        lambda m: m.min(a, axis=1, initial=-1.0, keepdims=True), lambda m: m.mean(a, where=a > 1),
        lambda m: m.prod(a, dtype=int), lambda m: m.std(a, where=a > 1, ddof=1),
        lambda m: m.var(a, axis=0, dtype=np.float32), lambda m: m.sum(a, axis=0, out=np.zeros(3)),
    ]
    for f in cases:
        ours, theirs = f(anp), f(np)
        assert type(ours) is type(theirs) and ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_array_equal(nb.grad(lambda x: anp.sum(x**2, dtype=np.float64))(x), 2 * x)
    assert nb.grad(lambda x: anp.mean(x, dtype=np.float32))(x).dtype == np.float64  # the input's dtype
    for f in (lambda x: anp.sum(x, where=x > 0), lambda x: anp.max(x, initial=0.0)):
        with pytest.raises(nb.NotDifferentiableError, match="not supported on traced values"):
            nb.grad(f)(x)


# the dtype keyword of the cumulative, nan- and trace reductions: on traced values it casts first, as NumPy
# computes in it (an integer dtype: a constant, derivative 0); it was dropped, so cumsum(x, dtype=int) was the
# float cumsum with its derivative. out= is refused by name (it was dropped too).
DTYPE_KEYWORD = {
    "cumsum": lambda m, x: m.cumsum(x, dtype=int),
    "cumsum_axis": lambda m, x: m.cumsum(x, axis=1, dtype=np.int32),
    "cumprod": lambda m, x: m.cumprod(x, axis=1, dtype=int),
    "nansum": lambda m, x: m.nansum(x, axis=0, dtype=int),
    "nanprod": lambda m, x: m.nanprod(x, dtype=np.int64),
    "nancumsum": lambda m, x: m.nancumsum(x, dtype=int),
    "nancumprod": lambda m, x: m.nancumprod(x, dtype=int),
    "trace": lambda m, x: m.trace(x, dtype=int),
    "method_cumsum": lambda m, x: (x if m is np else anp.asarray(x)).cumsum(dtype=int),
}


@pytest.mark.parametrize("name", sorted(DTYPE_KEYWORD))
def test_integer_dtype_keyword_gives_a_constant(name):
    f = DTYPE_KEYWORD[name]
    x = np.array([[0.7, -1.3], [2.6, 1.9]])
    c = np.sum(f(np, x))  # NumPy's value
    assert np.sum(nb.vjp(lambda x: f(anp, x), x)[0]) == c
    for g in both_modes_grad(lambda x: anp.sum(f(anp, x)) * anp.sum(x), x):  # d/dx [c * sum(x)] = c
        np.testing.assert_array_equal(g, np.full((2, 2), float(c)))


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "nansum", "nanprod", "nancumsum", "nanmean", "trace"])
def test_float_dtype_keyword_keeps_the_derivative(name):
    x = np.array([[0.7, -1.3], [2.6, 1.9]])
    f = lambda x: anp.sum(getattr(anp, name)(x, dtype=np.float64) * 1.0) * anp.sum(x)  # noqa: E731
    nb.check_grads(f, (x,))


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "nancumsum", "nanmax", "nanmin", "nansum", "trace"])
def test_out_keyword_on_traced_values_is_refused_by_name(name):
    x = np.array([[0.7, -1.3], [2.6, 1.9]])
    with pytest.raises(nb.NotDifferentiableError, match=rf"{name}: keyword 'out' is not supported"):
        nb.grad(lambda x: anp.sum(getattr(anp, name)(x, out=np.zeros(4))))(x)


def test_nanmean_of_a_traced_value_refuses_an_integer_dtype_as_numpy_does():
    x = np.array([0.7, -1.3])
    with pytest.raises(TypeError, match="dtype must be inexact"):
        np.nanmean(x, dtype=int)
    with pytest.raises(TypeError, match="dtype must be inexact"):
        nb.grad(lambda x: anp.nanmean(x, dtype=int) * 1.0)(x)


@pytest.mark.parametrize("name", ["mean", "var", "std", "sum", "prod"])
def test_integer_dtype_reduction_of_a_traced_value_is_numpys_constant(name):
    # NumPy computes mean(x, dtype=int) in integers (0 here); on a traced value it was the mean of the cast
    # input (0.5), a value that differed from the plain call's
    x = np.array([0.7, -1.3, 2.6, 1.2])
    f = lambda x: getattr(anp, name)(x, dtype=int)  # noqa: E731
    c = getattr(np, name)(x, dtype=int)
    assert nb.vjp(f, x)[0] == c and nb.jvp(f, (x,), (x,))[1] == 0
    for g in both_modes_grad(lambda x: f(x) * anp.sum(x), x):
        np.testing.assert_array_equal(g, np.full(4, float(c)))
    assert nb.jit(f)(x + 10.0) == getattr(np, name)(x + 10.0, dtype=int)  # recomputed on replay
