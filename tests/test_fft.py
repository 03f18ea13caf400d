"""nablanet.numpy.fft: every transform in both modes to second order, real and complex inputs.

The rules are checked against central differences (check_grads, along real and
imaginary directions for complex inputs) for every ``n``/``s`` that pads or cuts,
every ``norm``, several axes and shapes; the values against NumPy's; and two
identities that do not go through the rules' own formulas (Parseval, and a real
convolution computed through the FFT against the same convolution in real arithmetic).
"""

from __future__ import annotations

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp
from tests.numpy_cases import rng_for

F = anp.fft
NORMS = [None, "ortho", "forward", "backward"]


def data(kind, shape, *key):
    rng = rng_for(kind, shape, *key)
    x = rng.standard_normal(shape)
    return x + 1j * rng.standard_normal(shape) if kind == "c" else x


def same_as_numpy_and_check(f, npf, x):
    np.testing.assert_allclose(f(x), npf(x), rtol=1e-12, atol=1e-12)
    out, _ = nb.vjp(f, x)
    np.testing.assert_allclose(out, npf(x), rtol=1e-12, atol=1e-12)
    nb.check_grads(f, (x,), order=2)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("n", [None, 3, 5, 8])
@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("kind", ["r", "c"])
@pytest.mark.parametrize("name", ["fft", "ifft"])
def test_fft_ifft(name, kind, axis, n, norm):
    x = data(kind, (5, 4), name, axis, n, norm)
    same_as_numpy_and_check(lambda a: getattr(F, name)(a, n, axis, norm),
                            lambda a: getattr(np.fft, name)(a, n, axis, norm), x)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("n", [None, 3, 4, 7, 10])
@pytest.mark.parametrize("shape, axis", [((6,), 0), ((5, 4), 0), ((3, 5), -1), ((2, 3, 4), 1)])
def test_rfft(shape, axis, n, norm):
    x = data("r", shape, axis, n, norm)
    same_as_numpy_and_check(lambda a: F.rfft(a, n, axis, norm), lambda a: np.fft.rfft(a, n, axis, norm), x)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("n", [None, 3, 4, 7, 10])
@pytest.mark.parametrize("kind", ["r", "c"])
@pytest.mark.parametrize("shape, axis", [((5,), 0), ((4, 3), 0), ((3, 4), -1)])
def test_irfft(shape, axis, kind, n, norm):
    x = data(kind, shape, axis, n, norm)
    same_as_numpy_and_check(lambda a: F.irfft(a, n, axis, norm), lambda a: np.fft.irfft(a, n, axis, norm), x)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("kind", ["r", "c"])
@pytest.mark.parametrize("s, axes", [(None, None), ((3, 6), (1, 2)), (None, (0, 2)), ((4,), (1,)), ((2, 5), (-1, 0))])
@pytest.mark.parametrize("name", ["fftn", "ifftn"])
def test_fftn_ifftn(name, kind, s, axes, norm):
    x = data(kind, (3, 4, 2), name, s, axes, norm)
    same_as_numpy_and_check(lambda a: getattr(F, name)(a, s, axes, norm),
                            lambda a: getattr(np.fft, name)(a, s, axes, norm), x)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("s", [None, (3, 5)])
@pytest.mark.parametrize("kind", ["r", "c"])
@pytest.mark.parametrize("name", ["fft2", "ifft2"])
def test_fft2_ifft2(name, kind, s, norm):
    x = data(kind, (2, 4, 4), name, s, norm)
    same_as_numpy_and_check(lambda a: getattr(F, name)(a, s, norm=norm),
                            lambda a: getattr(np.fft, name)(a, s, norm=norm), x)


@pytest.mark.parametrize("axes", [None, 0, 1, (0, 1), (-1,)])
@pytest.mark.parametrize("kind", ["r", "c"])
@pytest.mark.parametrize("name", ["fftshift", "ifftshift"])
def test_shifts(name, kind, axes):
    x = data(kind, (5, 4), name, axes)
    same_as_numpy_and_check(lambda a: getattr(F, name)(a, axes), lambda a: getattr(np.fft, name)(a, axes), x)


def test_parseval_gradient():
    x = data("r", (7,), "parseval")
    # sum |fft(x)|^2 = n sum x^2, so the gradient is 2 n x
    g = nb.grad(lambda x: anp.sum(anp.abs(F.fft(x)) ** 2))(x)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, 2 * 7 * x, rtol=1e-12)


def test_circular_convolution_through_the_fft_matches_real_arithmetic():
    rng = rng_for("conv")
    x, k = rng.standard_normal(8), rng.standard_normal(8)

    def via_fft(x, k):
        return anp.sum(anp.tanh(F.irfft(F.rfft(x) * F.rfft(k), 8)))

    def direct(x, k):
        idx = (np.arange(8)[:, None] - np.arange(8)[None, :]) % 8
        return anp.sum(anp.tanh(anp.sum(x[idx] * k[None, :], axis=1)))

    np.testing.assert_allclose(via_fft(x, k), direct(x, k), rtol=1e-12)
    for argnum in (0, 1):
        np.testing.assert_allclose(nb.grad(via_fft, argnum)(x, k), nb.grad(direct, argnum)(x, k), rtol=1e-10)
    np.testing.assert_allclose(nb.hessian(via_fft)(x, k), nb.hessian(direct)(x, k), rtol=1e-8, atol=1e-10)


def test_numpy_fft_functions_reach_the_rules():
    x = data("c", (4, 3), "dispatch")
    g = nb.grad(lambda z: anp.sum(anp.abs(np.fft.fft2(z)) ** 2))(x)
    np.testing.assert_allclose(g, 2 * 12 * np.conj(x), rtol=1e-12)
    nb.check_grads(lambda z: np.fft.ifftshift(np.fft.ifft(z, axis=0)), (x,), order=1)


def test_bad_arguments_are_named():
    x = nb.grad  # any traced call below goes through the checks first
    with pytest.raises(ValueError, match="fft.fft: norm"):
        x(lambda a: anp.sum(anp.abs(F.fft(a, norm="nope"))))(np.ones(3))
    with pytest.raises(ValueError, match="fft.rfft: invalid number of data points 0"):
        x(lambda a: anp.sum(F.rfft(a, 0).real))(np.ones(3))
    with pytest.raises(ValueError, match="fft.fftn: s .* and axes .* differ"):
        x(lambda a: anp.sum(F.fftn(a, (2, 2), (0,)).real))(np.ones((3, 3)))
    with pytest.raises(ValueError, match="fft.ifft: axis 2 is out of range"):
        x(lambda a: anp.sum(F.ifft(a, axis=2).real))(np.ones((3, 3)))
    # plain arrays: exactly NumPy's, errors included
    np.testing.assert_array_equal(F.fftfreq(4), np.fft.fftfreq(4))


@pytest.mark.parametrize("norm", [None, "ortho", "forward"])
@pytest.mark.parametrize("s, axes", [(None, None), ((3, 6), (1, 2)), (None, (0, 2)), ((5,), (1,)), ((2, 5), (-1, 0))])
@pytest.mark.parametrize("name", ["rfftn", "irfftn"])
def test_rfftn_irfftn(name, s, axes, norm):
    x = data("r" if name == "rfftn" else "c", (3, 4, 3), name, s, axes, norm)
    same_as_numpy_and_check(lambda a: getattr(F, name)(a, s, axes, norm),
                            lambda a: getattr(np.fft, name)(a, s, axes, norm), x)


@pytest.mark.parametrize("s", [None, (3, 5), (4, 4)])
@pytest.mark.parametrize("name", ["rfft2", "irfft2"])
def test_rfft2_irfft2(name, s):
    x = data("r" if name == "rfft2" else "c", (2, 4, 3), name, s)
    same_as_numpy_and_check(lambda a: getattr(F, name)(a, s), lambda a: getattr(np.fft, name)(a, s), x)
