"""Experiments: compare trains the same network in every peer; sweeps; run folders."""

import math
import os
import sys

import numpy as np
import pytest

from nablanet import optim
from nablanet.baselines import pytorch, sklearn_mlp
from nablanet.experiments import compare
from nablanet.nn import MLP
from nablanet.train import Trainer

pytest.importorskip("torch")


def _data(task, n=120, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    if task == "regression":
        return X, np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]
    return X, (X[:, 0] * X[:, 1] + X[:, 2] > 0).astype(np.int64)


def _opt(name, schedule):
    lr = {"sgd": 0.05, "adam": 0.01}[name]
    sched = optim.cosine(lr, 8, lr / 10) if schedule == "cosine" else lr
    if name == "sgd":
        return lambda: optim.SGD(sched, momentum=0.9, nesterov=True)
    return lambda: optim.Adam(sched)


@pytest.mark.parametrize("task,loss,out", [("regression", "mse", "identity"), ("classification", "bce", "sigmoid")])
@pytest.mark.parametrize("name", ["sgd", "adam"])
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_peers_follow_nablanet_step_for_step(task, loss, out, name, schedule):
    """Full batch (no shuffling to differ in): same initial weights, penalty, optimizer, schedule -> same network."""
    X, y = _data(task)
    make_opt = _opt(name, schedule)
    model = MLP([3, 8, 6, 1], activation="tanh", output_activation=out, seed=3)
    l2, epochs = 0.05, 8
    trainer = Trainer(model, loss, make_opt(), l2=l2, seed=0)
    initial = MLP([3, 8, 6, 1], activation="tanh", output_activation=out, seed=3)
    before = initial.predict(X)
    trainer.fit(X, y, epochs=epochs, batch_size=None)
    ours = model.predict(X) if task == "regression" else model.apply(model.params, X, logits=True)
    assert not np.allclose(ours, before, atol=1e-2)  # it did train
    kw = dict(task=task, epochs=epochs, batch_size=None, l2=l2, seed=0)
    predict, _, notes = pytorch.train(initial, loss, make_opt(), X, y, **kw)
    assert notes == []
    if task == "regression":
        np.testing.assert_allclose(predict(X), ours, atol=2e-4)
    else:
        assert np.array_equal(predict(X), (ours[:, 0] > 0).astype(np.int64))
    predict, _, notes = sklearn_mlp.train(initial, loss, make_opt(), X, y, **kw)
    if schedule != "constant":
        assert "cosine" in notes[0]
        return
    assert notes == []
    if task == "regression":
        np.testing.assert_allclose(predict(X), ours[:, 0], atol=2e-4)
    else:
        assert np.array_equal(predict(X), (ours[:, 0] > 0).astype(np.int64))


def test_sklearn_alpha_is_nablanet_l2_converted():
    assert sklearn_mlp.alpha_from_l2(1e-3, 32, "regression") == pytest.approx(0.032)
    assert sklearn_mlp.alpha_from_l2(1e-3, 32, "classification") == pytest.approx(0.064)


def test_compare_three_networks_land_close():
    """The issue's case: with --l2 1e-2 on Franke the three networks disagreed (R2 -0.03, 0.58, 0.85)."""
    res = compare({"data": "franke", "n": 500, "hidden": [32], "epochs": 40, "l2": 1e-2, "seed": 1})
    by = {r["model"].split(" (")[0]: r for r in res["results"]}
    nets = [r["test_mse"] for name, r in by.items() if "MLP" in name]
    assert len(nets) == 3
    assert max(nets) / min(nets) < 1.25, res["results"]
    ridge = next(r for r in res["results"] if r["model"].startswith("Ridge"))
    assert "alpha=" in ridge["model"] and "CV" in ridge["model"]


def test_compare_linear_network_meets_its_closed_form():
    """No hidden layer + polynomial features + L2: gradient descent reaches Ridge with alpha = l2 n."""
    res = compare({"data": "franke", "n": 300, "hidden": [], "degree": 3, "optimizer": "sgd", "lr": 0.02,
                   "momentum": 0.9, "batch_size": None, "epochs": 1200, "l2": 1e-2}, include=())
    rows = {r["model"]: r for r in res["results"]}
    net = next(r for n, r in rows.items() if n.startswith("nablanet"))
    ridge = next(r for n, r in rows.items() if "network's penalty" in n)
    assert net["test_mse"] == pytest.approx(ridge["test_mse"], rel=0.01)
    ols = next(r for n, r in rows.items() if n.startswith("OLS"))
    assert abs(ols["test_mse"] - ridge["test_mse"]) > 0.1 * ridge["test_mse"]  # the penalty matters here


@pytest.mark.parametrize("data", ["breast_cancer", "iris"])
def test_compare_logistic_regression_names_its_c_and_meets_the_networks_own_penalty(data):
    """The logistic-regression row says its C (it was scikit-learn's C=1, unnamed); a network without hidden layers
    and with l2 is logistic regression with C = 1/(2 n l2), and Newton's method on it lands on that row."""
    res = compare({"data": data, "hidden": [], "optimizer": "newton", "epochs": 30, "l2": 1e-2}, include=())
    rows = {r["model"]: r for r in res["results"]}
    n = round(0.8 * {"breast_cancer": 569, "iris": 150}[data])
    assert "logistic regression (C=1)" in rows
    own = next(r for name, r in rows.items() if "network's penalty" in name)
    assert f"C = 1/(2 n l2) = {1 / (2 * n * 1e-2):.4g}" in next(name for name in rows if "network's penalty" in name)
    net = next(r for name, r in rows.items() if name.startswith("nablanet"))
    assert net["test_accuracy"] == own["test_accuracy"]


@pytest.mark.parametrize("data,loss", [("breast_cancer", "auto"), ("breast_cancer", "cross_entropy"),
                                       ("iris", "auto")])
def test_the_logistic_regression_at_the_networks_penalty_is_the_network(data, loss):
    """The row's C is the one at which scikit-learn's logistic regression is the network's minimum: its decision
    function is the network's logits (not only its accuracy, which two different C share). A softmax over two
    classes (--loss cross_entropy on breast cancer) penalizes both columns, w1 - w0 is the logistic weight, and
    its C is 1/(n l2), not 1/(2 n l2): the row named the wrong C and was another model."""
    import re
    import warnings

    from sklearn.linear_model import LogisticRegression

    from nablanet.experiments import _load_data, run_training

    config = {"data": data, "hidden": [], "optimizer": "newton", "epochs": 40, "l2": 3e-2, "loss": loss}
    res = compare(config, include=())
    named = [r["model"] for r in res["results"] if "network's penalty" in r["model"]]
    assert len(named) == 1, [r["model"] for r in res["results"]]
    C = float(re.search(r"= ([0-9.e+-]+)\)$", named[0]).group(1))
    from nablanet.experiments import DEFAULTS

    ds, Xtr, Xte, ytr, yte, _ = _load_data({**DEFAULTS, **config})
    net = run_training(config)["trainer"].model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = LogisticRegression(C=C, max_iter=10000, tol=1e-10).fit(Xtr, ytr)
    logits = np.asarray(net.apply(net.params, Xtr, logits=True), dtype=np.float64)
    if logits.shape[1] == 2:  # binary: the logistic weight is the difference of the two columns
        logits = logits[:, 1] - logits[:, 0]
    elif logits.shape[1] == 1:
        logits = logits[:, 0]
    else:  # multinomial: logits up to a constant per row
        logits = logits - logits.mean(axis=1, keepdims=True)
    got = lr.decision_function(Xtr)
    if got.ndim == 2:
        got = got - got.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(got, logits, atol=2e-3 * (1 + np.abs(logits).max()))


def test_compare_closed_forms_only_for_the_cost_they_solve():
    """Ridge and Lasso at the network's penalty solve the mean squared error; a network trained on another cost
    (mae, huber, half_sse) is not that model, so compare names no closed form for it."""
    for loss in ("mae", "huber", "half_sse"):
        res = compare({"data": "runge", "n": 200, "hidden": [], "epochs": 2, "l2": 1e-3, "loss": loss}, include=())
        assert not [r["model"] for r in res["results"] if "network's penalty" in r["model"]], loss
    res = compare({"data": "runge", "n": 200, "hidden": [], "epochs": 2, "l2": 1e-3}, include=())
    assert [r["model"] for r in res["results"] if "network's penalty" in r["model"]]


def test_compare_without_torch_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.warns(UserWarning, match="torch is not installed"):
        res = compare({"data": "iris", "hidden": [8], "epochs": 3}, include=("torch",))
    assert [r["model"] for r in res["results"]][0].startswith("nablanet")
    assert len(res["skipped"]) == 1 and "pip install" in res["skipped"][0]


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_sweep_point_is_the_run_it_stands_for_bit_for_bit(tmp_path, jobs):
    """Sweep points train without per-epoch curves, on data split once per process (read-only): the same
    network and test metrics as ``run_training`` of that point, exactly, in the sweep process and in workers."""
    from nablanet import experiments as E

    base = {"data": "breast_cancer", "hidden": [8], "epochs": 3, "dropout": 0.1, "seed": 3}
    grid = {"lr": [1e-3, 1e-2], "batch_size": [16, 64]}
    res = E.sweep(base, grid, tmp_path / f"s{jobs}", jobs=jobs)
    assert E._DATA_CACHE == {}  # nothing kept after the sweep
    for row in res["results"]:
        alone = E.run_training({**base, "lr": row["lr"], "batch_size": row["batch_size"]})
        for k in ("test_loss", "test_accuracy"):
            assert row[k] == alone[k], (row, k)
    data = E._cached_data(base)
    assert not data[1].flags.writeable and E._cached_data(dict(base)) is data  # loaded once, not writable
    with pytest.raises(ValueError):
        data[1][0, 0] = 0.0
    E._DATA_CACHE.clear()


def test_a_point_file_a_machine_crash_emptied_is_trained_again_and_a_foreign_one_is_refused(tmp_path):
    """Points are written without a flush to the disk: a crash of the machine can leave one empty (or cut). The sweep
    run again warns, trains that point again and ends whole; a readable point of other settings is still refused."""
    import json

    from nablanet import experiments as E
    from nablanet.validate import FileFormatError

    base = {"data": "breast_cancer", "hidden": [4], "epochs": 2}
    grid = {"lr": [1e-3, 1e-2]}
    out = tmp_path / "s"
    first = E.sweep(base, grid, out, jobs=1)
    points = sorted((out / "points").iterdir())
    assert len(points) == 2
    points[0].write_text("")
    points[1].write_text('{"lr": 0.01, "test_acc')
    with pytest.warns(RuntimeWarning, match="empty or damaged") as caught:
        again = E.sweep(base, grid, out, jobs=1)
    assert len([w for w in caught if "empty or damaged" in str(w.message)]) == 2
    assert again["skipped"] == 0

    def metrics(res):
        return [{k: v for k, v in r.items() if k != "train_seconds"} for r in res["results"]]

    assert metrics(again) == metrics(first)
    assert all(json.loads(p.read_text())["lr"] in grid["lr"] for p in points)  # written whole again
    rec = json.loads(points[0].read_text())
    points[0].write_text(json.dumps({**rec, "lr": 0.5}))  # JSON, but not this point's: not what a crash leaves
    with pytest.raises(FileFormatError, match="damaged sweep point"):
        E.sweep(base, grid, out, jobs=1)


def test_the_pytorch_peer_leaves_the_callers_torch_state_alone():
    """compare() from a notebook: torch's global RNG and thread count are as they were (manual_seed reset them)."""
    import torch

    X, y = _data("classification", n=40)
    model = MLP([3, 4, 1], activation="tanh", output_activation="sigmoid", seed=0)
    torch.manual_seed(1234)
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    pytorch.train(model, "bce", optim.Adam(0.01), X, y, task="classification", epochs=2, batch_size=8, l2=0.0, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state) and torch.get_num_threads() == threads


def test_a_sweep_grid_of_single_values_or_bad_seeds_is_one_clear_error(tmp_path):
    from nablanet import experiments as E
    from nablanet.validate import ConfigError

    with pytest.raises(ConfigError, match=r"grid lr: expected a list of values, got 0.001"):
        E.sweep({}, {"lr": 1e-3}, tmp_path / "a")
    with pytest.raises(ConfigError, match=r"grid hidden: .*a list of lists, \[\[16\], \[32, 32\]\]"):
        E.sweep({}, {"hidden": 16}, tmp_path / "b")
    with pytest.raises(ConfigError, match="a dict of each setting's values"):
        E.sweep({}, [("lr", [1e-3])], tmp_path / "c")
    with pytest.raises(TypeError, match="seeds: expected an integer >= 1, got 'two'"):
        E.sweep({}, {"lr": [1e-3]}, tmp_path / "d", seeds="two")
    assert not any((tmp_path / n).exists() for n in "abcd")  # refused before any folder is made


def test_a_sweep_written_when_step_decay_was_called_step_goes_on_and_the_alias_is_one_point(tmp_path):
    """The schedule step_decay had the name step: a folder that an earlier sweep wrote with it (in its settings and
    in its points' files and records) is the same sweep, its points are not trained again, and step and step_decay
    in one grid name one point."""
    import json

    from nablanet import experiments as E
    from nablanet.validate import ConfigError

    base = {"data": "breast_cancer", "hidden": [4], "epochs": 2}
    out = tmp_path / "s"
    first = E.sweep({**base, "schedule": "step_decay"}, {"lr": [1e-3, 1e-2]}, out / "a", jobs=1)
    meta = json.loads((out / "a" / "sweep.json").read_text())
    meta["base"]["schedule"] = "step"  # as the earlier version wrote it
    (out / "a" / "sweep.json").write_text(json.dumps(meta))
    again = E.sweep({**base, "schedule": "step"}, {"lr": [1e-3, 1e-2]}, out / "a", jobs=1)
    assert again["skipped"] == 2 and again["best"] == first["best"]
    E.sweep(base, {"schedule": ["step_decay", "cosine"]}, out / "b", jobs=1)
    points = out / "b" / "points"
    rec = json.loads((points / "schedule=step_decay.json").read_text())
    (points / "schedule=step_decay.json").unlink()
    (points / "schedule=step.json").write_text(json.dumps({**rec, "schedule": "step"}))
    res = E.sweep(base, {"schedule": ["step_decay", "cosine"]}, out / "b", jobs=1)
    assert res["skipped"] == 2 and sorted(os.listdir(points)) == ["schedule=cosine.json", "schedule=step.json"]
    with pytest.raises(ConfigError, match="name one point"):
        E.sweep(base, {"schedule": ["step", "step_decay"]}, out / "c", jobs=1)


def test_a_sweep_folder_whose_description_is_gone_is_refused_not_mixed_with_other_settings(tmp_path):
    from nablanet import experiments as E
    from nablanet.validate import ConfigError

    out = tmp_path / "s"
    E.sweep({"data": "iris", "hidden": [4], "epochs": 1}, {"lr": [0.1, 0.01]}, out, jobs=1)
    (out / "sweep.json").unlink()
    with pytest.raises(ConfigError, match="holds 2 sweep points but .*sweep.json is missing"):
        E.sweep({"data": "wine", "hidden": [16], "epochs": 3}, {"lr": [0.1, 0.01]}, out, jobs=1)


def test_a_sweep_over_epochs_with_early_stopping_resumes_and_keeps_the_epochs_trained(tmp_path):
    """Early stopping trains fewer epochs than the grid's: the record keeps the grid value (its file is that
    point's) and the epochs trained beside it; the sweep run again reads it back (it said "damaged")."""
    from nablanet import experiments as E

    base = {"data": "breast_cancer", "hidden": [4], "patience": 1, "lr": 0.3}
    first = E.sweep(base, {"epochs": [2, 40]}, tmp_path / "s", jobs=1)
    rows = {r["epochs"]: r for r in first["results"]}
    assert set(rows) == {2, 40} and rows[40]["epochs_trained"] < 40
    again = E.sweep(base, {"epochs": [2, 40]}, tmp_path / "s", jobs=1)
    assert again["skipped"] == 2 and again["results"] == first["results"]


def test_a_point_whose_metric_is_nan_is_never_the_best(tmp_path):
    import json

    from nablanet import experiments as E

    base = {"data": "breast_cancer", "hidden": [4], "epochs": 2}
    out = tmp_path / "s"
    E.sweep(base, {"lr": [1e-3, 1e-2, 0.1]}, out, jobs=1)
    for lr in (0.1, 1e-3):  # first and last in the grid: the place of a NaN never decides
        path = out / "points" / f"lr={lr}.json"
        rec = json.loads(path.read_text())
        path.write_text(json.dumps({**rec, "test_accuracy": float("nan")}))
        res = E.sweep(base, {"lr": [1e-3, 1e-2, 0.1]}, out, jobs=1)
        assert res["best"]["lr"] != lr and math.isfinite(res["best"]["test_accuracy"])
        path.write_text(json.dumps(rec))
