"""Full-batch methods that use curvature: L-BFGS, damped Newton, Hessian-free."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler

import nablanet as nb
from nablanet import optim
from nablanet.data import franke, runge
from nablanet.losses import get_loss
from nablanet.nn import MLP
from nablanet.train import Checkpoint, EarlyStopping, Trainer, fit, load
from nablanet.train.fullbatch import network_objective

pytestmark = pytest.mark.usefixtures("one_blas_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y.astype(np.float64)


def _logistic(method, X, y, C=1.0, epochs=15, **opts):
    """Logistic regression (no hidden layer) with the L2 penalty of scikit-learn's C.

    scikit-learn minimizes C sum_i logloss_i + 1/2 |w|^2 (intercept unpenalized);
    nablanet minimizes mean_i logloss_i + l2 |W|^2.  Dividing the first by n C
    gives the second with l2 = 1 / (2 n C).
    """
    m = MLP([X.shape[1], 1], output_activation="sigmoid", seed=0, dtype=np.float64)
    opt = optim.get_optimizer(method, **opts)
    h = fit(m, X, y, loss="bce", optimizer=opt, epochs=epochs, l2=1.0 / (2 * len(X) * C))
    return m, h


def _grad_norm(m, X, y, loss, l2):
    """The gradient of the training cost at the model's parameters, from the engine (not the solver's report)."""
    obj, theta = network_objective(m, get_loss(loss), X, y[:, None] if y.ndim == 1 else y, l2=l2)
    return float(np.linalg.norm(obj.value_and_grad(theta)[1]))


# ---------------------------------------------------------------- what must hold


def test_newton_logistic_regression_matches_sklearn(cancer):
    X, y = cancer
    C = 0.5
    m, h = _logistic("newton", X, y, C=C, epochs=15)
    assert h.solver["converged"] and h.solver["n_iter"] <= 15
    assert _grad_norm(m, X, y, "bce", 1.0 / (2 * len(X) * C)) < 1e-10
    ref = LogisticRegression(C=C, tol=1e-12, max_iter=1000, solver="newton-cholesky").fit(X, y)
    np.testing.assert_allclose(m.params[-1]["W"][:, 0], ref.coef_[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(m.params[-1]["b"], ref.intercept_, rtol=0, atol=1e-6)
    # the history: one record per iteration, falling cost, the reason it stopped
    assert len(h) == h.solver["n_iter"] and np.all(np.diff(h["loss"]) <= 1e-15)
    assert "tol" in h.solver["stop_reason"]


@pytest.mark.parametrize("gauss_newton", [False, True])
def test_hessian_free_reaches_newtons_optimum(cancer, gauss_newton):
    X, y = cancer
    newton, _ = _logistic("newton", X, y, epochs=15)
    tol = 1e-9
    hf, h = _logistic("hessian_free", X, y, epochs=50, tol=tol, gauss_newton=gauss_newton)
    assert h.solver["converged"] and h.solver["grad_norm"] <= tol
    # documented: |theta - theta*| <= about tol / m, m the smallest Hessian eigenvalue at the optimum
    obj, theta = network_objective(newton, get_loss("bce"), X, y[:, None], l2=1.0 / (2 * len(X)))
    m_min = np.linalg.eigvalsh(obj.hessian(theta))[0]
    dist = np.linalg.norm(np.r_[hf.params[-1]["W"][:, 0] - newton.params[-1]["W"][:, 0],
                                hf.params[-1]["b"] - newton.params[-1]["b"]])
    assert dist <= 2 * tol / m_min
    # each iteration costs at most cg_max_iter curvature products (the whole point: no Hessian)
    assert h.solver["n_hvp"] <= h.solver["n_iter"] * 50 + 50


def _sklearn_lbfgs_from(m, alpha, budget):
    """scikit-learn's MLPRegressor(solver="lbfgs") set to start from the weights of ``m`` (through warm_start)."""
    sk = MLPRegressor(hidden_layer_sizes=tuple(m.sizes[1:-1]), activation="tanh", solver="lbfgs", alpha=alpha,
                      max_iter=budget, warm_start=True)
    sk.coefs_ = [p["W"].copy() for p in m.params]
    sk.intercepts_ = [p["b"].copy() for p in m.params]
    sk.n_outputs_, sk.n_layers_, sk.out_activation_ = 1, len(m.sizes), "identity"
    return sk


def test_lbfgs_franke_no_worse_than_sklearn_lbfgs():
    """The README's network (2-64-64-1 tanh), the same penalty, iteration budget and starting weights.

    scikit-learn minimizes 1/2 MSE + alpha/(2n) |W|^2, nablanet MSE + l2 |W|^2: the same function up to a
    factor 2 with l2 = alpha / n.  Started from the same weights, both run L-BFGS-B (10 pairs) and part only
    where rounding differences grow; the mean test MSE over 5 seeds must be no worse (2% for that drift).
    """
    X, y = franke(n=300, seed=0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
    alpha, budget = 1e-4, 60
    ours, theirs = [], []
    for seed in range(5):
        m = MLP([2, 64, 64, 1], activation="tanh", seed=seed, dtype=np.float64)
        sk = _sklearn_lbfgs_from(m, alpha, budget)
        h = fit(m, Xtr, ytr, optimizer="lbfgs", epochs=budget, l2=alpha / len(Xtr))
        assert h.solver["n_iter"] <= budget
        ours.append(np.mean((m.predict(Xte)[:, 0] - yte) ** 2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sk.fit(Xtr, ytr)
        theirs.append(np.mean((sk.predict(Xte) - yte) ** 2))
    assert np.mean(ours) <= 1.02 * np.mean(theirs)
    assert np.mean(ours) < 0.01  # and it learned the surface (the variance of y is about 0.08)


def test_lbfgs_minimizes_sklearns_function_with_its_penalty():
    """The penalty of the test above (alpha/n ~ 5e-7) is too weak to show a wrong translation of alpha; with
    alpha = 1 both L-BFGS-B runs (scale-invariant, from the same weights) follow one path only if l2 = alpha / n
    makes the same function: alpha / (2n) or no penalty parts them by more than 0.1 within 15 iterations."""
    X, y = franke(n=200, seed=0)
    m = MLP([2, 16, 16, 1], activation="tanh", seed=0, dtype=np.float64)
    sk = _sklearn_lbfgs_from(m, 1.0, 15)
    fit(m, X, y, optimizer="lbfgs", epochs=15, l2=1.0 / len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.fit(X, y)
    for p, W, b in zip(m.params, sk.coefs_, sk.intercepts_):
        np.testing.assert_allclose(p["W"], W, rtol=0, atol=1e-9)
        np.testing.assert_allclose(p["b"], b, rtol=0, atol=1e-9)


def test_lbfgs_runge_to_1e_6():
    X, y = runge(n=100, seed=0)
    m = MLP([1, 16, 1], activation="tanh", seed=0, dtype=np.float64)
    h = fit(m, X, y, optimizer="lbfgs", epochs=1500)
    assert np.mean((m.predict(X)[:, 0] - y) ** 2) <= 1e-6
    Xt, yt = runge(n=500, seed=1)
    assert np.mean((m.predict(Xt)[:, 0] - yt) ** 2) <= 1e-6  # and between them (1.5e-8 at both)
    assert h.solver["method"] == "lbfgs" and h.solver["n_fev"] >= h.solver["n_iter"]


# ---------------------------------------------------------------- the pieces


def test_gauss_newton_product_is_jt_hc_j():
    """G v against J^T H_C J v built from explicit Jacobians, for MSE and softmax cross-entropy."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 3))
    for loss, k, y in (("mse", 2, rng.standard_normal((7, 2))), ("cross_entropy", 3, rng.integers(0, 3, 7))):
        m = MLP([3, 4, k], activation="tanh", seed=1, dtype=np.float64)
        L = get_loss(loss)
        obj, theta = network_objective(m, L, X, y, l2=0.01)
        v = rng.standard_normal(theta.size)
        # J: d outputs / d theta; H_C: Hessian of the cost in the outputs
        def outputs(t):
            params, off = [], 0
            for p in m.params:
                d = {}
                for key, a in p.items():
                    d[key] = t[off:off + a.size].reshape(a.shape)
                    off += a.size
                params.append(d)
            return m.apply(params, X, logits=L.from_logits)

        out = outputs(theta)
        J = nb.jacobian(outputs)(theta).reshape(out.size, theta.size)
        Hc = nb.hessian(lambda z: L(z, y))(out).reshape(out.size, out.size)
        Pen = np.zeros(theta.size)
        off = 0
        for p in m.params:
            for key, a in p.items():
                if key == "W":
                    Pen[off:off + a.size] = 2 * 0.01
                off += a.size
        np.testing.assert_allclose(obj.gnvp(theta, v), J.T @ Hc @ (J @ v) + Pen * v, rtol=1e-10, atol=1e-12)
        # and the Hessian-vector product against the engine's whole Hessian
        np.testing.assert_allclose(obj.hvp(theta, v), obj.hessian(theta) @ v, rtol=1e-10, atol=1e-12)


def test_l1_lbfgs_is_exact_and_newton_smooths_it(cancer):
    """L-BFGS-B on the split p - q gives exact zeros and meets the L1 optimality conditions."""
    X, y = cancer
    l1 = 0.02
    m = MLP([30, 1], output_activation="sigmoid", seed=0, dtype=np.float64)
    h = fit(m, X, y, loss="bce", optimizer=optim.LBFGS(tol=1e-10), epochs=500, l1=l1)
    w = m.params[-1]["W"][:, 0]
    assert h.solver["converged"]
    assert 3 <= np.sum(w == 0.0) < 30  # sparse, and exactly so
    obj, theta = network_objective(m, get_loss("bce"), X, y[:, None])
    g = obj.value_and_grad(theta)[1]
    gw, gb = g[:30], g[30]
    nz = w != 0
    np.testing.assert_allclose(gw[nz], -l1 * np.sign(w[nz]), atol=1e-6)  # stationarity where w != 0
    assert np.all(np.abs(gw[~nz]) <= l1 + 1e-6)  # subgradient condition where w == 0
    assert abs(gb) < 1e-6
    # Newton with the smoothed L1 (eps = 1e-3) lands close to the same weights, as documented
    m2 = MLP([30, 1], output_activation="sigmoid", seed=0, dtype=np.float64)
    h2 = fit(m2, X, y, loss="bce", optimizer=optim.Newton(tol=1e-9), epochs=150, l1=l1)
    assert h2.solver["converged"]
    np.testing.assert_allclose(m2.params[-1]["W"][:, 0], w, atol=1e-2)


def test_hessian_free_gauss_newton_trains_a_hidden_layer():
    X, y = franke(n=200, seed=1)
    m = MLP([2, 16, 1], activation="tanh", seed=0)
    h = fit(m, X, y, optimizer=optim.HessianFree(gauss_newton=True, cg_max_iter=20), epochs=30)
    assert h["loss"][-1] < 0.1 * h["loss"][0]
    assert m.dtype == np.float32  # the model keeps its dtype; the solver computed in float64


def test_float32_model_solved_in_float64(cancer):
    X, y = cancer
    m = MLP([30, 1], output_activation="sigmoid", seed=0)  # float32
    h = fit(m, X, y, loss="bce", optimizer="newton", epochs=15, l2=1e-3)
    assert h.solver["grad_norm"] < 1e-10 and m.params[-1]["W"].dtype == np.float32


def test_stop_reasons_callbacks_and_checkpoints(tmp_path, cancer):
    X, y = cancer
    m = MLP([30, 1], output_activation="sigmoid", seed=0, dtype=np.float64)
    h = fit(m, X, y, loss="bce", optimizer="lbfgs", epochs=3)
    assert h.solver["stop_reason"] == "max_iter reached" and len(h) == 3 and "grad_norm" in h
    # a callback stops the run; the trainer saves and loads with its method
    tr = Trainer(MLP([30, 1], output_activation="sigmoid", seed=0, dtype=np.float64), "bce", "hessian_free")
    h = tr.fit(X, y, epochs=50, validation_split=0.2, callbacks=[EarlyStopping("loss", patience=1, min_delta=1e-2)])
    assert h.solver["stop_reason"] == "stopped by a callback" and len(h) < 50 and "val_loss" in h
    tr.save(tmp_path / "hf.npz")
    back = load(tmp_path / "hf.npz")
    assert isinstance(back.optimizer, optim.HessianFree) and back.epoch == tr.epoch
    assert back.history.solver == h.solver
    np.testing.assert_array_equal(back.get_flat_params(), tr.get_flat_params())


def test_resuming_a_full_batch_run_from_a_checkpoint(tmp_path):
    """Newton keeps no memory between iterations: 5 + 5 from a checkpoint is 10, bit for bit.  L-BFGS (its pairs
    live inside SciPy) and Hessian-free (its damping) restart their curvature model from the checkpointed
    parameters, as the README says: the resumed run goes on downhill from there, not bit for bit."""
    X, y = franke(n=100, seed=0)
    for method in ("newton", "lbfgs", "hessian_free"):
        def trainer():
            return Trainer(MLP([2, 6, 1], activation="tanh", seed=0, dtype=np.float64), "mse", method, seed=0)

        whole = trainer()
        whole.fit(X, y, epochs=10)
        first = trainer()
        first.fit(X, y, epochs=5, callbacks=[Checkpoint(tmp_path / f"{method}.npz")])
        resumed = load(tmp_path / f"{method}.npz")
        resumed.fit(X, y, epochs=5)
        assert len(resumed.history) == 10 and resumed.history["loss"][:5] == first.history["loss"]
        if method == "newton":
            np.testing.assert_array_equal(resumed.get_flat_params(), whole.get_flat_params())
        else:
            assert max(resumed.history["loss"][5:]) < first.history["loss"][-1]


@pytest.mark.parametrize("method", ["lbfgs", "newton", "hessian_free"])
def test_clear_errors_where_a_method_does_not_fit(method):
    X, y = franke(n=50, seed=0)
    with pytest.raises(ValueError, match="full-batch.*batch_size=None"):
        fit(MLP([2, 4, 1], seed=0), X, y, optimizer=method, batch_size=10, epochs=2)
    with pytest.raises(ValueError, match="Dropout"):
        fit(MLP([2, 4, 1], dropout=0.2, seed=0), X, y, optimizer=method, epochs=2)
    with pytest.raises(ValueError, match="batch normalization"):
        fit(MLP([2, 4, 1], batch_norm=True, seed=0), X, y, optimizer=method, epochs=2)
    with pytest.raises(ValueError, match="no learning rate"):
        fit(MLP([2, 4, 1], seed=0), X, y, optimizer=method, lr=0.1, epochs=2)
    with pytest.raises(TypeError, match="full-batch"):
        optim.get_optimizer(method).step([np.zeros(2)], [np.zeros(2)], {"t": 0})


def test_gauss_newton_needs_a_convex_cost():
    X, y = franke(n=50, seed=0)
    with pytest.raises(ValueError, match="gauss_newton"):
        fit(MLP([2, 4, 1], seed=0), X, y, loss="mae", optimizer=optim.HessianFree(gauss_newton=True), epochs=2)


def test_objective_of_any_function():
    """The methods minimize any function written with nablanet.numpy: Rosenbrock."""
    import nablanet.numpy as anp

    rosen = optim.Objective(lambda x: anp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))
    x0 = np.full(4, -1.0)
    for method in (optim.Newton(tol=1e-10), optim.HessianFree(tol=1e-8), optim.LBFGS(tol=1e-10)):
        x, info = method.minimize(rosen, x0, 500)
        np.testing.assert_allclose(x, np.ones(4), atol=1e-5)
        assert info["converged"], (method, info)


@pytest.mark.parametrize("make", [
    lambda: optim.Newton(damping=float("inf")), lambda: optim.Newton(l1_smoothing=float("inf")),
    lambda: optim.HessianFree(damping=float("inf")), lambda: optim.HessianFree(cg_max_iter=True),
    lambda: optim.HessianFree(gauss_newton="yes"), lambda: optim.LBFGS(ftol=float("inf")),
    lambda: optim.LBFGS(history_size=True), lambda: optim.LBFGS(max_fun=2.0), lambda: optim.LBFGS(tol="x"),
    lambda: optim.Newton(tol=None), lambda: optim.Newton(max_params=0),
])
def test_settings_checked_like_every_other_setting(make):
    """One answer per kind of value (nablanet.validate): NaN/inf, booleans as counts, text as numbers refused."""
    from nablanet.validate import NablanetError

    with pytest.raises(NablanetError, match=r"^(lbfgs|newton|hessian_free) \w+: expected"):
        make()


@pytest.mark.parametrize("method", [optim.LBFGS(), optim.Newton(), optim.HessianFree()])
def test_max_iter_is_a_count(method):
    from nablanet.validate import NablanetError

    obj = optim.Objective(lambda x: (x ** 2).sum())
    for bad in (True, -1, 2.0, None):
        with pytest.raises(NablanetError, match="max_iter"):
            method.minimize(obj, np.ones(3), bad)
    assert method.minimize(obj, np.ones(3), np.int64(0))[1]["n_iter"] == 0


def test_newton_refuses_a_model_whose_hessian_is_too_large():
    """n parameters make an n x n Hessian from n products: past max_params a clear error, not hours or an OOM."""
    obj = optim.Objective(lambda x: (x ** 2).sum())
    with pytest.raises(ValueError, match=r"20 parameters.*max_params=10.*hessian_free"):
        optim.Newton(max_params=10).minimize(obj, np.ones(20), 5)
    assert optim.Newton(max_params=20).minimize(obj, np.ones(20), 5)[1]["converged"]
    X, y = franke(n=20, seed=0)
    with pytest.raises(ValueError, match="5401 parameters"):  # the default limit, 5000, before any Hessian
        fit(MLP([2, 100, 50, 1], seed=0), X, y, optimizer="newton", epochs=1)


def test_hessian_free_uses_the_curvature_it_is_told_to():
    """On logistic regression G = H, so reaching Newton's optimum cannot tell the two apart: count the products."""
    import nablanet.numpy as anp

    calls = {"gn": 0}
    A = np.diag([1.0, 10.0, 100.0])

    def gn(x, v):
        calls["gn"] += 1
        return A @ v

    obj = optim.Objective(lambda x: 0.5 * anp.dot(x, anp.dot(A, x)), gauss_newton_product=gn)
    x, info = optim.HessianFree(gauss_newton=True).minimize(obj, np.ones(3), 20)
    assert info["converged"] and calls["gn"] == info["n_hvp"] > 0
    calls["gn"] = 0
    x, info = optim.HessianFree(gauss_newton=False).minimize(obj, np.ones(3), 20)
    assert info["converged"] and calls["gn"] == 0 and info["n_hvp"] > 0


def test_cli_trains_and_compares_with_the_full_batch_methods(tmp_path, capsys):
    """`nablanet train --optimizer lbfgs|newton|hessian_free` and `compare`; a set-up a method cannot take is
    refused with one line before any run folder is written."""
    import json

    from nablanet.cli import main

    for method in ("lbfgs", "newton", "hessian_free"):
        out = tmp_path / method
        code = main(["train", "--data", "runge", "--n", "200", "--hidden", "8", "--activation", "tanh", "--optimizer",
                     method, "--epochs", "20", "--out", str(out), "--no-progress", "--no-plots", "--json"])
        got = json.loads(capsys.readouterr().out)
        assert code == 0 and got["final"]["test_r2"] > 0.9, (method, got)
        m = json.loads((out / "metrics.json").read_text())
        assert 1 <= len(m["history"]["grad_norm"]) <= 20 and load(out / "checkpoint.npz").optimizer.name == method
    for flags in (["--optimizer", "lbfgs", "--dropout", "0.2"], ["--optimizer", "newton", "--batch-norm"],
                  ["--optimizer", "newton", "--hidden", "80,80"]):
        out = tmp_path / "refused"
        code = main(["train", "--data", "runge", "--n", "50", "--epochs", "2", "--out", str(out), "--no-progress",
                     "--no-plots", *flags])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert not out.exists(), flags  # refused before the run folder
    code = main(["compare", "--data", "franke", "--n", "200", "--optimizer", "lbfgs", "--epochs", "30",
                 "--out", str(tmp_path / "cmp"), "--json"])
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert code == 0
    ours = next(r for k, r in rows.items() if k.startswith("nablanet"))
    sk = next(r for k, r in rows.items() if k.startswith("scikit-learn"))
    assert ours["test_mse"] == pytest.approx(sk["test_mse"], rel=1e-3)  # the same start, function and budget
