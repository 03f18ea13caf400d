"""nablanet.scipy.special: values equal SciPy's, derivatives pass check_grads in both modes to order 2.

One table, one checker; where HIPS autograd has the function its reverse-mode
gradient is compared too.  Edge conventions (0 log 0, logsumexp weights,
SciPy's own ufuncs on traced values) are pinned below the table.
"""

from __future__ import annotations

import subprocess
import sys
import zlib

import numpy as np
import pytest
import scipy.special as sp

import nablanet as nb
import nablanet.numpy as anp
import nablanet.scipy.special as special

try:
    import autograd
    import autograd.scipy.special as agsp
except ImportError:  # pragma: no cover
    autograd = agsp = None


def draw(key, shape, lo, hi):
    return np.random.default_rng(zlib.crc32(repr(key).encode())).uniform(lo, hi, shape)


# id -> (fun(namespace, *xs), [(shape, lo, hi)...], compare with autograd?)
CASES = {
    "erf": (lambda s, x: s.erf(x), [((2, 3), -2, 2)], True),
    "erfc": (lambda s, x: s.erfc(x), [((4,), -2, 2)], True),
    "erfinv": (lambda s, x: s.erfinv(x), [((4,), -0.9, 0.9)], True),
    "erfcinv": (lambda s, x: s.erfcinv(x), [((4,), 0.1, 1.9)], True),
    "expit": (lambda s, x: s.expit(x), [((2, 3), -4, 4)], True),
    "logit": (lambda s, x: s.logit(x), [((4,), 0.1, 0.9)], True),
    "gammaln": (lambda s, x: s.gammaln(x), [((4,), 0.3, 4)], True),
    "gamma": (lambda s, x: s.gamma(x), [((4,), 0.3, 3)], True),
    "rgamma": (lambda s, x: s.rgamma(x), [((4,), 0.3, 3)], True),
    "digamma": (lambda s, x: s.digamma(x), [((4,), 0.3, 3)], True),
    "psi": (lambda s, x: s.psi(x), [((4,), 0.3, 3)], True),
    "polygamma": (lambda s, x: s.polygamma(1, x), [((4,), 0.5, 3)], True),
    "polygamma_orders": (lambda s, x: s.polygamma(np.array([0, 1, 2, 3]), x), [((4,), 0.5, 3)], False),
    "multigammaln": (lambda s, x: s.multigammaln(x, 3), [((2, 3), 4, 5)], True),
    "beta": (lambda s, a, b: s.beta(a, b), [((3,), 0.5, 3), ((2, 1), 0.5, 3)], True),
    "betaln": (lambda s, a, b: s.betaln(a, b), [((3,), 0.5, 3), ((3,), 0.5, 3)], True),
    "xlogy": (lambda s, x, y: s.xlogy(x, y), [((2, 3), -1, 2), ((3,), 0.2, 2)], False),
    "xlog1py": (lambda s, x, y: s.xlog1py(x, y), [((3,), -1, 2), ((2, 3), -0.5, 2)], False),
    # incomplete gamma and beta: derivatives in x (the shape parameters are constants, as in autograd)
    "gammainc": (lambda s, x: s.gammainc(np.array([0.5, 1.7, 3.0, 6.0]), x), [((4,), 0.2, 5)], False),
    "gammaincc": (lambda s, x: s.gammaincc(np.array([0.5, 1.7, 3.0, 6.0]), x), [((2, 4), 0.2, 5)], False),
    "betainc": (lambda s, x: s.betainc(np.array([0.7, 2.0, 3.5]), 1.8, x), [((2, 3), 0.05, 0.95)], False),
    "ndtr": (lambda s, x: s.ndtr(x), [((4,), -3, 3)], False),
    "log_ndtr": (lambda s, x: s.log_ndtr(x), [((4,), -30, 3)], False),
    "ndtri": (lambda s, x: s.ndtri(x), [((4,), 0.05, 0.95)], False),
    "i0": (lambda s, x: s.i0(x), [((4,), -3, 3)], True),
    "i1": (lambda s, x: s.i1(x), [((4,), -3, 3)], True),
    "iv": (lambda s, x: s.iv(1.5, x), [((4,), 0.2, 3)], True),
    "ive": (lambda s, x: s.ive(2, x), [((4,), 0.2, 3)], True),
    "j0": (lambda s, x: s.j0(x), [((4,), 0.2, 10)], True),
    "j1": (lambda s, x: s.j1(x), [((4,), 0.2, 10)], True),
    "jn": (lambda s, x: s.jn(2, x), [((4,), 0.2, 10)], True),
    "jv": (lambda s, x: s.jv(0.5, x), [((4,), 0.2, 10)], False),
    "y0": (lambda s, x: s.y0(x), [((4,), 0.2, 10)], True),
    "y1": (lambda s, x: s.y1(x), [((4,), 0.2, 10)], True),
    "yn": (lambda s, x: s.yn(2, x), [((4,), 0.5, 10)], True),
    "yv": (lambda s, x: s.yv(1.5, x), [((4,), 0.5, 10)], False),
    "logsumexp": (lambda s, x: s.logsumexp(x), [((2, 3), -3, 3)], True),
    "logsumexp_axis": (lambda s, x: s.logsumexp(x, axis=1, keepdims=True), [((2, 3, 4), -3, 3)], True),
    "logsumexp_b": (lambda s, x, b: s.logsumexp(x, axis=0, b=b), [((3, 4), -3, 3), ((3, 4), 0.1, 2)], False),
    "logsumexp_b_all_keep": (lambda s, x, b: s.logsumexp(x, b=b, keepdims=True), [((3, 2), -3, 3), ((2,), 0.1, 2)], False),
    "logsumexp_b_axes": (lambda s, x, b: s.logsumexp(x, axis=(0, 2), b=b), [((2, 3, 2), -3, 3), ((2, 1, 2), 0.1, 2)], False),
    "softmax": (lambda s, x: s.softmax(x), [((2, 3), -3, 3)], False),
    "softmax_axis": (lambda s, x: s.softmax(x, axis=-1), [((2, 3), -3, 3)], False),
    "log_softmax": (lambda s, x: s.log_softmax(x, axis=0), [((3, 2), -3, 3)], False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_special_case(name):
    fun, spec, with_autograd = CASES[name]
    xs = [draw((name, i), shape, lo, hi) for i, (shape, lo, hi) in enumerate(spec)]
    expected = fun(sp, *xs)
    np.testing.assert_allclose(fun(special, *xs), expected, rtol=1e-13, atol=0)
    traced, _ = nb.vjp(lambda *a: fun(special, *a), *xs)
    np.testing.assert_allclose(traced, expected, rtol=1e-13, atol=0)
    nb.check_grads(lambda *a: fun(special, *a), tuple(xs), order=2, modes=("fwd", "rev"))
    if with_autograd and autograd is not None:
        w = draw(("w", name), np.shape(expected), -1, 1)
        for i in range(len(xs)):
            ours = nb.grad(lambda *a: anp.sum(fun(special, *a) * w), argnums=i)(*xs)
            theirs = autograd.grad(lambda *a: autograd.numpy.sum(fun(agsp, *a) * w), i)(*xs)
            np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_zero_log_zero_has_finite_derivatives():
    x, y = np.array([0.0, 1.0]), np.array([0.0, 2.0])
    np.testing.assert_array_equal(special.xlogy(x, y), sp.xlogy(x, y))
    gy = nb.grad(lambda y: anp.sum(special.xlogy(x, y)), argnums=0)(y)
    np.testing.assert_allclose(gy, [0.0, 0.5])  # d/dy (0 log y) = 0, also at y = 0
    gy = nb.grad(lambda y: anp.sum(special.xlog1py(x, y - 1.0)))(y)
    np.testing.assert_allclose(gy, [0.0, 0.5])


def test_logsumexp_return_sign_and_negative_weights():
    a, b = np.array([0.5, 1.0, -0.2]), np.array([1.0, -2.0, 0.5])
    out, sign = special.logsumexp(a, b=b, return_sign=True)
    ref = sp.logsumexp(a, b=b, return_sign=True)
    np.testing.assert_allclose(out, ref[0])
    assert sign == ref[1] == -1
    g = nb.grad(lambda a: special.logsumexp(a, b=b, return_sign=True)[0])(a)
    expected = b * np.exp(a) / np.sum(b * np.exp(a))
    np.testing.assert_allclose(g, expected)


def test_scipy_ufuncs_on_traced_values_reach_the_rules():
    x = np.array([0.3, -0.7])
    np.testing.assert_allclose(nb.grad(lambda x: anp.sum(sp.erf(x)))(x), 2 / np.sqrt(np.pi) * np.exp(-(x**2)))
    np.testing.assert_allclose(nb.grad(lambda x: anp.sum(sp.gammaln(x + 2.0)))(x), sp.digamma(x + 2.0))


def test_importing_nablanet_does_not_import_scipy():
    code = "import sys, nablanet, nablanet.numpy, nablanet.numpy.linalg; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ----------------------------------------------------------------------------
# nablanet.scipy.stats: values equal scipy.stats', derivatives in every continuous argument
# ----------------------------------------------------------------------------


def _psd(key, d):
    m = draw(key, (d, d), -1, 1)
    return m @ m.T + np.eye(d)


def _simplex(key, n):
    p = draw(key, (n,), 0.2, 1)
    return p / p.sum()


STATS = {
    # id -> (ours(*xs), scipy's(*xs), inputs, indices of the arguments to differentiate)
    "norm.pdf": ("norm", "pdf", [draw(1, (4, 3), -2, 2), draw(2, (1, 3), -1, 1), draw(3, (4, 1), 0.5, 2)], [0, 1, 2]),
    "norm.logpdf": ("norm", "logpdf", [draw(1, (4,), -2, 2), draw(2, (4,), -1, 1), draw(3, (4,), 0.5, 2)], [0, 1, 2]),
    "norm.cdf": ("norm", "cdf", [draw(1, (4,), -2, 2), draw(2, (4,), -1, 1), draw(3, (4,), 0.5, 2)], [0, 1, 2]),
    "norm.logcdf": ("norm", "logcdf", [draw(1, (4, 3), -2, 2), draw(2, (1, 3), -1, 1), draw(3, (4, 1), 0.5, 2)], [0, 1, 2]),
    "norm.sf": ("norm", "sf", [draw(1, (4,), -2, 2), 0.3, 1.5], [0]),
    "norm.logsf": ("norm", "logsf", [draw(1, (4,), -2, 2), 0.3, 1.5], [0]),
    "norm.ppf": ("norm", "ppf", [draw(1, (4,), 0.1, 0.9), draw(2, (4,), -1, 1), draw(3, (4,), 0.5, 2)], [0, 1, 2]),
    "t.pdf": ("t", "pdf", [draw(1, (4,), -2, 2), draw(2, (4,), 2.1, 5), draw(3, (4,), -1, 1), draw(4, (4,), 1, 2)], [0, 1, 2, 3]),
    "t.logpdf": (
        "t",
        "logpdf",
        [draw(1, (4, 3), -2, 2), draw(2, (1, 3), 2.1, 5), draw(3, (4, 3), -1, 1), draw(4, (4, 1), 1, 2)],
        [0, 1, 2, 3],
    ),
    "t.cdf": ("t", "cdf", [draw(1, (4,), -2, 2), draw(2, (4,), 2.1, 5), draw(3, (4,), -1, 1), draw(4, (4,), 1, 2)], [0, 2, 3]),
    "t.logcdf": (
        "t",
        "logcdf",
        [draw(1, (4, 3), -2, 2), draw(2, (1, 3), 2.1, 5), draw(3, (4, 3), -1, 1), draw(4, (4, 1), 1, 2)],
        [0, 2, 3],
    ),
    "multivariate_normal.logpdf": (
        "multivariate_normal",
        "logpdf",
        [draw(1, (4,), -1, 1), draw(2, (4,), -1, 1), _psd(3, 4)],
        [0, 1, 2],
    ),
    "multivariate_normal.logpdf_rows": (
        "multivariate_normal",
        "logpdf",
        [draw(1, (5, 3), -1, 1), draw(2, (3,), -1, 1), _psd(3, 3)],
        [0, 1, 2],
    ),
    "multivariate_normal.pdf": (
        "multivariate_normal",
        "pdf",
        [draw(1, (3,), -1, 1), draw(2, (3,), -1, 1), _psd(3, 3)],
        [0, 1, 2],
    ),
    "multivariate_normal.entropy": ("multivariate_normal", "entropy", [draw(2, (3,), -1, 1), _psd(3, 3)], [1]),
    "dirichlet.logpdf": ("dirichlet", "logpdf", [_simplex(1, 4), draw(2, (4,), 1.2, 3)], [1]),
    "dirichlet.pdf": ("dirichlet", "pdf", [_simplex(1, 4), draw(2, (4,), 1.2, 3)], [1]),
    "gamma.logpdf": ("gamma", "logpdf", [draw(1, (4,), 0.5, 3), draw(2, (4,), 1.5, 3), 0.1, 1.3], [0, 1, 3]),
    "gamma.pdf": ("gamma", "pdf", [draw(1, (4,), 0.5, 3), draw(2, (4,), 1.5, 3)], [0, 1]),
    "beta.logpdf": ("beta", "logpdf", [draw(1, (4,), 0.1, 0.9), draw(2, (4,), 1.5, 3), draw(3, (4,), 1.5, 3)], [0, 1, 2]),
    "beta.pdf": ("beta", "pdf", [draw(1, (4,), 0.1, 0.9), draw(2, (4,), 1.5, 3), draw(3, (4,), 1.5, 3)], [0, 1, 2]),
    "chi2.logpdf": ("chi2", "logpdf", [draw(1, (4,), 0.5, 3), draw(2, (4,), 1.5, 4)], [0, 1]),
    "chi2.pdf": ("chi2", "pdf", [draw(1, (4,), 0.5, 3), draw(2, (4,), 1.5, 4)], [0, 1]),
    "poisson.logpmf": ("poisson", "logpmf", [np.array([0.0, 1.0, 3.0, 7.0]), draw(2, (4,), 0.5, 4)], [1]),
    "poisson.pmf": ("poisson", "pmf", [np.array([0.0, 1.0, 3.0, 7.0]), draw(2, (4,), 0.5, 4)], [1]),
}


@pytest.mark.parametrize("name", sorted(STATS))
def test_stats_case(name):
    import scipy.stats as st

    import nablanet.scipy.stats as stats

    dist, method, xs, wrt = STATS[name]
    ours, theirs = getattr(getattr(stats, dist), method), getattr(getattr(st, dist), method)
    if dist == "dirichlet":  # SciPy's dirichlet takes one point, not a stack
        expected = theirs(*xs)
    else:
        expected = theirs(*xs)
    np.testing.assert_allclose(ours(*xs), expected, rtol=1e-10, atol=1e-300)
    for i in wrt:

        def f(xi, i=i):
            args = list(xs)
            args[i] = xi
            return ours(*args)

        nb.check_grads(f, (np.asarray(xs[i], dtype=float),), order=2, modes=("fwd", "rev"))


def test_t_cdf_is_not_differentiable_in_df():
    import nablanet.scipy.stats as stats

    with pytest.raises(nb.NotDifferentiableError, match="argument 1"):
        nb.grad(lambda df: anp.sum(stats.t.cdf(0.5, df)))(np.array([3.0]))


# ----------------------------------------------------------------------------
# nablanet.scipy.linalg
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("trans", [0, 1, 2, "N", "T", "C"])
@pytest.mark.parametrize("lower", [True, False])
def test_solve_triangular(trans, lower):
    import scipy.linalg as sla

    import nablanet.scipy.linalg as nla

    a = draw("tri", (4, 4), -1, 1) + 4 * np.eye(4)
    for b in (draw("b1", (4,), -1, 1), draw("b2", (4, 2), -1, 1)):
        expected = sla.solve_triangular(a, b, trans=trans, lower=lower)
        np.testing.assert_allclose(nla.solve_triangular(a, b, trans=trans, lower=lower), expected, rtol=1e-12)
        nb.check_grads(lambda a, b: nla.solve_triangular(a, b, trans=trans, lower=lower), (a, b), order=2)


def test_solve_sylvester_and_sqrtm():
    import scipy.linalg as sla

    import nablanet.scipy.linalg as nla

    a, b, q = draw("sa", (3, 3), -1, 1) + 3 * np.eye(3), draw("sb", (2, 2), -1, 1) + 3 * np.eye(2), draw("q", (3, 2), -1, 1)
    np.testing.assert_allclose(nla.solve_sylvester(a, b, q), sla.solve_sylvester(a, b, q), rtol=1e-10)
    nb.check_grads(nla.solve_sylvester, (a, b, q), order=2)
    m = draw("m", (4, 4), -1, 1)
    spd = m @ m.T + np.eye(4)
    np.testing.assert_allclose(nla.sqrtm(spd), sla.sqrtm(spd), rtol=1e-10)
    nb.check_grads(lambda x: nla.sqrtm((x + x.T) / 2), (spd,), order=2)
    nb.check_grads(nla.sqrtm, (draw("g", (3, 3), -0.3, 0.3) + 2 * np.eye(3),), order=2)  # not symmetric: still exact
    if autograd is not None:
        import autograd.scipy.linalg as agla

        w = draw("w", (4, 4), -1, 1)
        ours = nb.grad(lambda x: anp.sum(nla.sqrtm(x) * w))(spd)
        theirs = autograd.grad(lambda x: autograd.numpy.sum(agla.sqrtm(x) * w))(spd)
        np.testing.assert_allclose(ours, theirs, rtol=1e-8)


def test_sqrtm_of_a_matrix_with_negative_eigenvalues_is_complex_as_scipys():
    # it was refused with ValueError; SciPy (and autograd) return the complex principal root
    import scipy.linalg as sla

    import nablanet.scipy.linalg as nla

    q = np.linalg.qr(draw("q", (3, 3), -1, 1))[0]
    s = q @ np.diag([-1.5, 0.7, 2.0]) @ q.T
    r = nla.sqrtm(s)
    assert r.dtype == np.complex128
    np.testing.assert_allclose(r, sla.sqrtm(s), rtol=1e-10)
    nb.check_grads(lambda x: nla.sqrtm((x + x.T) / 2), (s,), order=2)
    nb.check_grads(nla.sqrtm, (s + 1j * draw("i", (3, 3), -0.3, 0.3),), order=2)  # complex input too
    assert nla.sqrtm(np.eye(2) * 4.0).dtype == np.float64  # a real root stays real
