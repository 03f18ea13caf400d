"""Elementwise functions beyond the basic set, their edge points, and the zero-derivative ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy_cases import both_modes_grad, check, rng_for

import nablanet as nb
import nablanet.numpy as anp

# name -> (nablanet function, NumPy reference, (lo, hi, signed))
UNARY = {
    "arccosh": (anp.arccosh, np.arccosh, (1.2, 3, False)),
    "arcsinh": (anp.arcsinh, np.arcsinh, (-2, 2, False)),
    "arccos": (anp.arccos, np.arccos, (-0.8, 0.8, False)),
    "cbrt": (anp.cbrt, np.cbrt, (0.3, 2, True)),
    "deg2rad": (anp.deg2rad, np.deg2rad, (-90, 90, False)),
    "radians": (anp.radians, np.radians, (-90, 90, False)),
    "rad2deg": (anp.rad2deg, np.rad2deg, (-2, 2, False)),
    "degrees": (anp.degrees, np.degrees, (-2, 2, False)),
    "fabs": (anp.fabs, np.fabs, (0.2, 2, True)),
    "positive": (anp.positive, np.positive, (-2, 2, False)),
    "real": (anp.real, np.real, (-2, 2, False)),
    "conj": (anp.conj, np.conj, (-2, 2, False)),
    "conjugate": (anp.conjugate, np.conjugate, (-2, 2, False)),
    "real_if_close": (anp.real_if_close, np.real_if_close, (-2, 2, False)),
    "sinc": (anp.sinc, np.sinc, (0.1, 2.5, True)),
    "sinc_near_0": (anp.sinc, np.sinc, (0.001, 0.04, True)),
    "nan_to_num": (anp.nan_to_num, np.nan_to_num, (-2, 2, False)),
    "np_cbrt": (lambda x: np.cbrt(x), np.cbrt, (0.3, 2, True)),
    "np_arctanh": (lambda x: np.arctanh(x), np.arctanh, (-0.8, 0.8, False)),
    "np_sinc": (lambda x: np.sinc(x), np.sinc, (0.1, 2.5, True)),
}


@pytest.mark.parametrize("shape", [(), (4,), (2, 3)], ids=str)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name, shape):
    f, ref, (lo, hi, signed) = UNARY[name]
    rng = rng_for(name, shape)
    x = rng.uniform(lo, hi, shape) * (rng.choice([-1.0, 1.0], shape) if signed else 1.0)
    check(f, np.asarray(x, dtype=np.float64), ref=ref, rtol=1e-11)


def _pair(rng, sx, sy, name):
    x, y = rng.uniform(-2, 2, sx), rng.uniform(-2, 2, sy)
    if name in ("fmax", "fmin", "np_fmax"):  # no ties: a distance of 0.2 between every broadcast pair
        x = rng.integers(-3, 3, sx) + 0.25
        y = rng.integers(-3, 3, sy) + 0.75
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


BINARY = {
    "arctan2": (anp.arctan2, np.arctan2),
    "hypot": (anp.hypot, np.hypot),
    "logaddexp2": (anp.logaddexp2, np.logaddexp2),
    "fmax": (anp.fmax, np.fmax),
    "fmin": (anp.fmin, np.fmin),
    "np_arctan2": (lambda y, x: np.arctan2(y, x), np.arctan2),
    "np_fmax": (lambda x, y: np.fmax(x, y), np.fmax),
    "np_hypot": (lambda x, y: np.hypot(x, y), np.hypot),
}


@pytest.mark.parametrize("shapes", [((), ()), ((4,), ()), ((), (4,)), ((2, 3), (2, 3)), ((3, 1), (4,)), ((2, 1, 4), (3, 1))],
                         ids=str)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(name, shapes):
    f, ref = BINARY[name]
    x, y = _pair(rng_for(name, shapes), *shapes, name)
    check(f, x, y, ref=ref, rtol=1e-11)


def test_subgradients_at_the_origin():
    for f in (lambda v: anp.arctan2(v[0], v[1]), lambda v: anp.hypot(v[0], v[1])):
        for g in both_modes_grad(f, np.zeros(2)):
            np.testing.assert_array_equal(g, [0.0, 0.0])
        assert np.all(np.isfinite(nb.hessian(f)(np.zeros(2))))
    # away from the origin, the exact partials
    gy, gx = nb.grad(anp.arctan2, argnums=(0, 1))(1.0, 2.0)
    assert (gy, gx) == (pytest.approx(2 / 5), pytest.approx(-1 / 5))
    for g in both_modes_grad(anp.fabs, 0.0):
        assert g == 0.0


def test_fmax_fmin_nan_and_ties():
    x = np.array([1.0, np.nan, 2.0, np.nan])
    y = np.array([np.nan, 3.0, 2.0, 0.5])
    for fun in (anp.fmax, anp.fmin):
        gx, gy = nb.grad(lambda x, y: anp.sum(fun(x, y)), argnums=(0, 1))(x, y)
        np.testing.assert_array_equal(gx, [1.0, 0.0, 0.5, 0.0])
        np.testing.assert_array_equal(gy, [0.0, 1.0, 0.5, 1.0])
        _, t = nb.jvp(lambda x: fun(x, y), (x,), (np.ones(4),))
        np.testing.assert_array_equal(t, [1.0, 0.0, 0.5, 0.0])


def test_nan_to_num_slopes():
    x = np.array([1.5, np.nan, np.inf, -np.inf, -2.0])
    for g in (nb.elementwise_grad(anp.nan_to_num)(x), nb.jvp(anp.nan_to_num, (x,), (np.ones(5),))[1]):
        np.testing.assert_array_equal(g, [1.0, 0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(anp.nan_to_num(x, nan=7.0, posinf=9.0), np.nan_to_num(x, nan=7.0, posinf=9.0))
    y = np.array([0.0, np.nan, np.inf, -np.inf])
    check(lambda x: anp.sin(anp.nan_to_num(x + y)), np.array([0.3, -0.2, 0.5, 1.1]))


def test_sinc_is_smooth_through_zero():
    for g in both_modes_grad(anp.sinc, 0.0):
        assert g == 0.0
    assert nb.grad(nb.grad(anp.sinc))(0.0) == pytest.approx(-math.pi**2 / 3, rel=1e-12)
    assert nb.jvp(nb.grad(anp.sinc), (0.0,), (1.0,))[1] == pytest.approx(-math.pi**2 / 3, rel=1e-12)
    check(anp.sinc, np.array([0.0, 0.049, -0.051, 0.3]))
    # the series and the formula meet at the switch
    a, b = nb.grad(anp.sinc)(0.0499999), nb.grad(anp.sinc)(0.0500001)
    assert a == pytest.approx(b, rel=1e-5)


ZERO_DERIVATIVE = {
    "floor": (anp.floor, np.floor),
    "ceil": (anp.ceil, np.ceil),
    "round": (anp.round, np.round),
    "around": (lambda x: anp.around(x, 1), lambda x: np.around(x, 1)),
    "rint": (anp.rint, np.rint),
    "trunc": (anp.trunc, np.trunc),
    "fix": (anp.fix, np.fix),
    "sign": (anp.sign, np.sign),
    "np_floor": (lambda x: np.floor(x), np.floor),
    "np_sign": (lambda x: np.sign(x), np.sign),
    "floor_divide": (lambda x: x // 0.7, lambda x: x // 0.7),
    "greater": (lambda x: anp.greater(x, 0.1), lambda x: np.greater(x, 0.1)),
    "less_equal": (lambda x: x <= 0.1, lambda x: x <= 0.1),
    "equal": (lambda x: anp.equal(x, x), lambda x: np.equal(x, x)),
    "isnan": (anp.isnan, np.isnan),
    "isinf": (anp.isinf, np.isinf),
    "isfinite": (anp.isfinite, np.isfinite),
    "isneginf": (anp.isneginf, np.isneginf),
    "isposinf": (anp.isposinf, np.isposinf),
    "signbit": (anp.signbit, np.signbit),
    "isreal": (anp.isreal, np.isreal),
    "imag": (anp.imag, np.imag),
    "angle": (anp.angle, np.angle),
    "np_isnan": (lambda x: np.isnan(x), np.isnan),
}


@pytest.mark.parametrize("name", sorted(ZERO_DERIVATIVE))
def test_explicit_zero_derivative(name):
    f, ref = ZERO_DERIVATIVE[name]
    x = np.array([-1.26, -0.4, 0.0, 0.35, 2.71])
    np.testing.assert_array_equal(f(x), ref(x))
    # the value is NumPy's on traced values too, and both modes give exactly 0 at every order
    out, vjp_fn = nb.vjp(lambda x: f(x) * 1.0, x)
    np.testing.assert_array_equal(out, ref(x))
    np.testing.assert_array_equal(vjp_fn(np.ones(5))[0], np.zeros(5))
    np.testing.assert_array_equal(nb.jvp(lambda x: f(x) * 1.0, (x,), (np.ones(5),))[1], np.zeros(5))
    np.testing.assert_array_equal(nb.hessian(lambda x: anp.sum(f(x) * 1.0))(x), np.zeros((5, 5)))
    # as a factor it is a constant: d/dx [x f(x)] = f(x)
    np.testing.assert_array_equal(nb.elementwise_grad(lambda x: x * f(x))(x), np.asarray(ref(x), dtype=float))
