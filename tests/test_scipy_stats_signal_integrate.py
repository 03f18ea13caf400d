"""nablanet.scipy beyond special: distribution cdfs and SciPy's other names, signal.convolve, integrate.odeint.

Found missing by running HIPS autograd's test_scipy.py against nablanet (its imports of
autograd.scipy.signal and autograd.scipy.integrate failed, so none of its 89 tests ran).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate as si
import scipy.signal as ssig
import scipy.stats as ss

import nablanet as nb
import nablanet.numpy as anp
import nablanet.scipy.stats as st
from nablanet.scipy.integrate import odeint
from nablanet.scipy.signal import convolve

RNG = np.random.default_rng(20261202)
R = RNG.normal


def test_cdfs_match_scipy_and_differentiate():
    x, a, b, u = R(size=4) ** 2 + 1.1, R(size=4) ** 2 + 1.1, R(size=4) ** 2 + 1.1, RNG.uniform(0, 1, 4)
    k = np.array([-1.0, 0.0, 2.5, 4.0])
    pairs = [
        (st.chi2.cdf(x, 3), ss.chi2.cdf(x, 3)),
        (st.chi2.cdf(x, 3, 0.5, 2.0), ss.chi2.cdf(x, 3, 0.5, 2.0)),
        (st.gamma.cdf(x - 2, a, 0.3, 1.5), ss.gamma.cdf(x - 2, a, 0.3, 1.5)),  # some below loc: 0
        (st.beta.cdf(2 * u - 0.5, a, b), ss.beta.cdf(2 * u - 0.5, a, b)),  # some outside [0, 1]
        (st.poisson.cdf(k, x), ss.poisson.cdf(k, x)),
        (st.poisson.cdf(np.array([3.0, 1.0]), 2.0, loc=1), ss.poisson.cdf(np.array([3.0, 1.0]), 2.0, loc=1)),
    ]
    for got, want in pairs:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    nb.check_grads(lambda x: st.chi2.cdf(x, 3), (x,))
    nb.check_grads(lambda x, loc, scale: st.gamma.cdf(x, a, loc, scale), (x, 0.2, 1.3))
    nb.check_grads(lambda u: st.beta.cdf(u, a, b), (u,))
    counts = np.round(R(size=(4, 3)) ** 2)
    nb.check_grads(lambda mu: st.poisson.cdf(counts, mu), (R(size=(4, 1)) ** 2 + 1.1,))


def test_other_scipy_names_of_a_distribution_are_scipys_and_refuse_traced_values():
    np.testing.assert_array_equal(st.dirichlet.rvs(np.ones(3), size=2, random_state=0),
                                  ss.dirichlet.rvs(np.ones(3), size=2, random_state=0))
    assert st.gamma.ppf(0.3, 2.0) == ss.gamma.ppf(0.3, 2.0)
    with pytest.raises(nb.NotDifferentiableError, match=r"scipy\.stats\.norm\.rvs"):
        nb.grad(lambda m: anp.sum(st.norm.rvs(m, size=2)))(0.0)
    with pytest.raises(AttributeError):
        st.norm.no_such_function  # noqa: B018


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
def test_convolve_matches_scipy_and_differentiates(mode):
    for a, b in [(R(size=5), R(size=3)), (R(size=3), R(size=6)), (R(size=(4, 3)), R(size=(2, 2))),
                 (R(size=(6, 7)), R(size=(4, 1)))]:
        want = ssig.convolve(a, b, mode, method="direct")
        got = convolve(a, b, mode=mode)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-12)
        nb.check_grads(lambda a, b: convolve(a, b, mode=mode), (a, b))
    with pytest.raises(ValueError, match="mode 'valid'|mode must be"):
        convolve(R(size=(4, 2)), R(size=(2, 4)), mode="valid") if mode == "valid" else convolve(1.0, 1.0, mode="x")


def test_convolve_axes_and_dot_axes():
    a35, a34, a342 = R(size=(3, 5)), R(size=(3, 4)), R(size=(3, 4, 2))
    a2543, a24232 = R(size=(2, 5, 4, 3)), R(size=(2, 4, 2, 3, 2))
    for mode in ("valid", "full"):
        out = convolve(a35, a342, axes=([1], [2]), dot_axes=([0], [0]), mode=mode)
        np.testing.assert_allclose(out[2], sum(ssig.convolve(a35[i], a342[i, 2], mode) for i in range(3)))
        np.testing.assert_allclose(convolve(a35, a34, axes=([], []), dot_axes=([0], [0]), mode=mode),
                                   np.tensordot(a35, a34, axes=([0], [0])))
        out = convolve(a2543, a24232, axes=([1, 2], [2, 4]), dot_axes=([0, 3], [0, 3]), mode=mode)
        want = sum(ssig.convolve(a2543[i, :, :, j], a24232[i, 2, :, j, :], mode) for i in range(2) for j in range(3))
        np.testing.assert_allclose(out[2], want)
    nb.check_grads(lambda a, b: convolve(a, b, axes=([1], [1]), dot_axes=([0], [2]), mode="same"),
                   (R(size=(3, 3, 2)), R(size=(3, 2, 3))))
    z, w = R(size=4) + 1j * R(size=4), R(size=3)  # complex inputs use complex FFTs
    np.testing.assert_allclose(convolve(z, w), np.convolve(z, w))


def _dynamics(y, t, arg1, arg2):
    return -anp.sqrt(t) - y + arg1 - anp.mean((y + arg2) ** 2)


def test_odeint_matches_scipy_and_differentiates_to_second_order():
    y0, t, a1, a2 = R(size=3), np.linspace(0.1, 0.2, 4), R(size=3), R(size=3)
    want = si.odeint(lambda y, t: _dynamics(y, t, a1, a2), y0, t)
    np.testing.assert_allclose(odeint(_dynamics, y0, t, (a1, a2)), want, rtol=1e-12)
    nb.check_grads(lambda y0, t, a1, a2: odeint(_dynamics, y0, t, (a1, a2)), (y0, t, a1, a2), order=1, modes=("rev",))
    nb.check_grads(lambda y0, args: odeint(_dynamics, y0, t, args), (y0, (a1, a2)), order=2, modes=("rev",))


def test_odeint_gradient_of_a_linear_system_is_exact():
    # y' = -k y: y(T) = y0 exp(-k T), so d y(T)/dk = -T y0 exp(-k T), d y(T)/d y0 = exp(-k T)
    t = np.array([0.0, 0.5, 2.0])
    g = nb.grad(lambda y0, k: odeint(lambda y, t, k: -k * y, y0, t, (k,), rtol=1e-12, atol=1e-12)[-1, 0],
                (0, 1))(np.array([1.5]), 0.7)
    np.testing.assert_allclose(g[0], [np.exp(-0.7 * 2.0)], rtol=1e-8)
    np.testing.assert_allclose(g[1], -2.0 * 1.5 * np.exp(-0.7 * 2.0), rtol=1e-8)
    with pytest.raises(ValueError, match="1-D state"):
        odeint(lambda y, t: -y, np.ones((2, 2)), t)


def test_mvn_allow_singular_is_honoured():
    # allow_singular was accepted and ignored: a singular cov raised LinAlgError
    import nablanet.scipy.stats.multivariate_normal as mvn

    cov = np.zeros((4, 4))
    cov[0, 0] = cov[1, 1] = 1.0
    x, m = np.r_[R(size=2), 0.0, 0.0], np.r_[R(size=2), 0.0, 0.0]
    np.testing.assert_allclose(mvn.logpdf(x, m, cov, allow_singular=True),
                               ss.multivariate_normal.logpdf(x, m, cov, allow_singular=True), rtol=1e-12)
    a = R(size=(4, 2))
    X = R(size=(5, 2)) @ a.T
    np.testing.assert_allclose(mvn.pdf(X, np.zeros(4), a @ a.T, allow_singular=True),
                               ss.multivariate_normal.pdf(X, np.zeros(4), a @ a.T, allow_singular=True), rtol=1e-10)
    nb.check_grads(lambda x, m: mvn.logpdf(anp.concatenate([x[:2], m[2:]]), m, cov, allow_singular=True), (x, m))
    c = a @ a.T + np.diag([1.0, 2.0, 3.0, 4.0])  # distinct eigenvalues: exact in cov too, to order 2
    nb.check_grads(lambda c: mvn.logpdf(X, None, 0.5 * (c + c.T), allow_singular=True), (c,))
    with pytest.raises(np.linalg.LinAlgError):
        mvn.logpdf(x, m, cov)  # without it, as SciPy, a singular cov is refused


def test_solve_banded_is_scipys_and_differentiates():
    import scipy.linalg as sla

    import nablanet.scipy.linalg as spla

    for lu, n in [((1, 1), 5), ((2, 0), 4), ((0, 2), 6), ((1, 2), 3)]:
        ab = R(size=(sum(lu) + 1, n))
        ab[lu[1]] += 4.0  # a dominant diagonal
        for b in (R(size=n), R(size=(n, 2))):
            want = sla.solve_banded(lu, ab, b)
            np.testing.assert_array_equal(spla.solve_banded(lu, ab, b), want)  # plain: SciPy's own
            traced, _ = nb.vjp(lambda ab: spla.solve_banded(lu, ab, b), ab)
            np.testing.assert_allclose(traced, want, rtol=1e-12)
            nb.check_grads(lambda ab, b: spla.solve_banded(lu, ab, b), (ab, b))
    with pytest.raises(ValueError, match="needs 3"):
        nb.grad(lambda ab: anp.sum(spla.solve_banded((1, 1), ab, np.ones(3))))(np.ones((2, 3)))
