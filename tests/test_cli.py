"""The `nablanet` command and the plots it writes."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from png_files import png_title

from nablanet.cli import main
from nablanet.train import load


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_writes_a_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", "--epochs", "3", "--out", str(out), "--no-progress")
    assert code == 0, err
    assert "test_accuracy" in stdout and "64-64-10" in stdout
    for f in ("config.json", "metrics.csv", "metrics.json", "checkpoint.npz", "learning_curves.png",
              "confusion_matrix.png"):
        assert (out / f).exists(), f
    assert "confusion matrix" in png_title(out / "confusion_matrix.png")
    assert "learning curves" in png_title(out / "learning_curves.png")
    m = json.loads((out / "metrics.json").read_text())
    assert len(m["history"]["loss"]) == 3 and 0.5 < m["final"]["test_accuracy"] <= 1
    assert (out / "metrics.csv").read_text().splitlines()[0].startswith("epoch,loss")


def test_train_json_and_toml_config(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[train]\ndata = "runge"\nn = 300\nhidden = [16, 16]\nactivation = "tanh"\nepochs = 5\nlr = 0.01\n')
    code, stdout, _ = run(capsys, "train", "--config", str(cfg), "--epochs", "4", "--out", str(tmp_path / "r"), "--json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["config"]["data"] == "runge" and doc["config"]["hidden"] == [16, 16] and doc["config"]["epochs"] == 4
    assert doc["final"]["epochs"] == 4 and "test_r2" in doc["final"]
    assert "prediction" in png_title(tmp_path / "r" / "prediction.png")


def test_flags_turn_off_a_tomls_switches(tmp_path, capsys):
    """'flags win' over TOML for the on/off settings too (--batch-norm and --nesterov could only switch on)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('data = "runge"\nn = 100\nhidden = [4]\nepochs = 1\noptimizer = "sgd"\nmomentum = 0.9\n'
                   'nesterov = true\nbatch_norm = true\n')
    code, stdout, err = run(capsys, "train", "--config", str(cfg), "--no-nesterov", "--no-batch-norm",
                            "--out", str(tmp_path / "r"), "--json", "--no-plots")
    assert code == 0, err
    doc = json.loads(stdout)["config"]
    assert doc["nesterov"] is False and doc["batch_norm"] is False


def test_train_franke_draws_the_surface(tmp_path, capsys):
    code, _, _ = run(capsys, "train", "--data", "franke", "--n", "300", "--hidden", "8", "--epochs", "2",
                     "--out", str(tmp_path / "f"), "--no-progress")
    assert code == 0
    assert "franke" in png_title(tmp_path / "f" / "prediction.png")


@pytest.mark.parametrize("extra", [[], ["--degree", "1"], ["--degree", "5", "--hidden", "none"],
                                   ["--degree", "3", "--scale", "minmax"], ["--scale", "none", "--degree", "2"]])
def test_the_runge_prediction_is_drawn_over_the_datas_own_x(tmp_path, capsys, monkeypatch, extra):
    """One feature: the prediction plot's x axis is the data's x (not the scaled feature, not the design matrix),
    also with --degree, where the run folder had no prediction plot (degree 1 ended on an AttributeError)."""
    from nablanet import viz
    from nablanet.data import load_dataset

    drawn, draw = [], viz.prediction_1d

    def spy(x, y, pred, *a, **k):
        drawn.append((np.asarray(x), y, pred))
        return draw(x, y, pred, *a, **k)

    monkeypatch.setattr(viz, "prediction_1d", spy)
    code, _, err = run(capsys, "train", "--data", "runge", "--n", "200", "--hidden", "4", "--epochs", "1",
                       "--out", str(tmp_path / "r"), "--no-progress", *extra)
    assert code == 0, err
    assert len(drawn) == 1
    x, y, pred = drawn[0]
    raw = load_dataset("runge", n=200, seed=0).X[:, 0]
    assert len(x) == 40 and np.abs(x[:, None] - raw[None, :]).min(axis=1).max() < 1e-5  # test rows, raw units
    np.testing.assert_allclose(y, 1 / (1 + 25 * x**2), atol=1e-5)  # the truth at those x
    assert np.shape(pred) in ((40,), (40, 1))


@pytest.mark.parametrize("extra,held_out", [([], "test"), (["--patience", "3"], "validation")])
def test_the_run_folders_learning_curves_name_their_held_out_split(tmp_path, capsys, monkeypatch, extra, held_out):
    """The curve beside training is the test split, or with --patience the 10% of the training part that early
    stopping watches: the legend and the metric panel say which."""
    from nablanet import viz

    figs, draw = [], viz.learning_curves
    monkeypatch.setattr(viz, "learning_curves", lambda *a, **k: figs.append(draw(*a, **k)) or figs[-1])
    code, _, err = run(capsys, "train", "--data", "breast_cancer", "--hidden", "4", "--epochs", "4",
                       "--out", str(tmp_path / "r"), "--no-progress", *extra)
    assert code == 0, err
    assert len(figs) == 1
    for ax in figs[0].axes:
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training", held_out], ax.get_title()


def test_resume_continues_exactly(tmp_path, capsys):
    args = ["--data", "breast_cancer", "--hidden", "8", "--batch-size", "64", "--seed", "3", "--no-progress"]
    assert run(capsys, "train", *args, "--epochs", "4", "--out", str(tmp_path / "full"))[0] == 0
    assert run(capsys, "train", *args, "--epochs", "2", "--out", str(tmp_path / "half"))[0] == 0
    # (--parallel: how MPI ranks share the steps; accepted in one process, where it changes nothing)
    code, stdout, err = run(capsys, "train", "--resume", str(tmp_path / "half"), "--epochs", "4", "--no-progress",
                            "--parallel", "lead")
    assert code == 0, err
    a, b = load(tmp_path / "full" / "checkpoint.npz"), load(tmp_path / "half" / "checkpoint.npz")
    assert a.epoch == b.epoch == 4
    assert np.array_equal(a.get_flat_params(), b.get_flat_params())
    assert (a.parallel, b.parallel, b.parallel_mode) == ("auto", "lead", None)  # a mode named is kept


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_its_start(tmp_path, capsys):
    """No checkpoint at the start of a run: its config.json is its start, and --resume of a folder killed before
    the first checkpoint (checkpoints by time: 30 s by default) trains the whole run, the one never stopped."""
    args = ["--data", "breast_cancer", "--hidden", "8", "--batch-size", "64", "--seed", "3", "--no-progress",
            "--no-plots", "--epochs", "3"]
    assert run(capsys, "train", *args, "--out", str(tmp_path / "full"))[0] == 0
    killed = tmp_path / "killed"
    killed.mkdir()
    shutil.copy(tmp_path / "full" / "config.json", killed / "config.json")  # what SIGKILL in epoch 1 leaves
    assert sorted(os.listdir(tmp_path / "full")) == ["checkpoint.npz", "config.json", "metrics.csv", "metrics.json"]
    code, _, err = run(capsys, "train", "--resume", str(killed), "--no-progress", "--no-plots")
    assert code == 0, err
    a, b = load(tmp_path / "full" / "checkpoint.npz"), load(killed / "checkpoint.npz")
    assert a.epoch == b.epoch == 3
    assert np.array_equal(a.get_flat_params(), b.get_flat_params())
    same = lambda h: {k: v for k, v in h.history.items() if k != "time"}  # (seconds per epoch)
    assert same(a.history) == same(b.history)
    # a folder with no run in it is still refused, naming what is missing
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "train", "--resume", str(tmp_path / "empty"), "--no-progress")
    assert code == 2 and "no config.json" in err


def test_resuming_a_run_that_stopped_early_trains_no_further(tmp_path, capsys):
    """A run early stopping ended is finished: --resume (after a stop during its plots, say) rewrites its outputs
    and trains nothing; it trained on from the restored best epoch, 18 epochs more, and reported another model."""
    args = ["--data", "breast_cancer", "--hidden", "8", "--batch-size", "32", "--lr", "0.01", "--patience", "5",
            "--epochs", "200", "--no-progress", "--no-plots"]
    assert run(capsys, "train", *args, "--out", str(tmp_path / "r"))[0] == 0
    done = load(tmp_path / "r" / "checkpoint.npz")
    assert done.epoch < 200
    code, _, err = run(capsys, "train", "--resume", str(tmp_path / "r"), "--no-progress", "--no-plots")
    assert code == 0, err
    again = load(tmp_path / "r" / "checkpoint.npz")
    assert again.epoch == done.epoch and np.array_equal(again.get_flat_params(), done.get_flat_params())


@pytest.mark.parametrize(
    "argv,match",
    [
        (["train", "--data", "nosuchdata"], "unknown data set|nosuchdata"),
        (["train", "--data", "franke", "--loss", "cross_entropy"], "needs class labels"),
        (["train", "--data", "digits", "--loss", "bce"], "needs 2 classes"),
        (["train", "--data", "digits", "--loss", "mse"], "classification data set"),
        (["train", "--data", "runge", "--output-activation", "softmax"], "softmax over one output"),
        (["train", "--lr", "-1"], "argument --lr: expected a number > 0, got -1"),
        (["train", "--noise", "-1"], "argument --noise: expected a number >= 0"),
        (["train", "--hidden", "2,a"], "argument --hidden: expected layer sizes like 64,32"),
        (["explain", "--sizes", "2,a"], "argument --sizes: expected layer sizes"),
        (["train", "--epochs", "0"], "argument --epochs: expected an integer >= 1, got 0"),
        (["train", "--test-size", "1.5"], "argument --test-size: expected a number in \\(0, 1\\)"),
        (["train", "--loss", "foo"], "argument --loss: expected one of auto, mse, .*cross_entropy.*, got 'foo'$"),
        (["train", "--init", "foo"], "argument --init: unknown initializer 'foo'; choose from auto, .*he_uniform"),
        (["train", "--data", "mnist"],
         r"MNIST.*not found; looked in: \S+ \(default\): no such directory\. To get it: .*--data-path DIR"),
        (["train", "--activation", "relux"], "unknown activation"),
        (["train", "--optimizer", "adamx"], "argument --optimizer: expected one of sgd, .*adam.*, got 'adamx'$"),
        (["train", "--parallel", "fast"], "argument --parallel: expected one of auto, shard, lead, got 'fast'$"),
        (["train", "--config", "/nonexistent.toml"], "no configuration file"),
        (["train", "--resume", "/nonexistent"], "no checkpoint.npz|--resume: no folder '/nonexistent'"),
        (["train", "--data", "mnist", "--data-path", "/nonexistent"], "looked|not found|No such|--data-path: no folder"),
        (["train", "--optimizer", "adam", "--momentum", "0.9"], "momentum=0.9 is a setting of sgd and gd; optimizer adam"),
        (["train", "--optimizer", "rmsprop", "--nesterov"], "nesterov=True is a setting of sgd and gd; optimizer rmsprop"),
        (["sweep", "--grid", "optimizer=rmsprop,adam", "--momentum", "0.9"],
         "no grid point applies: grid point optimizer=rmsprop: momentum=0.9"),
        (["compare", "--data", "runge", "--patience", "3"], "compare trains every network for the same epochs.*patience=3"),
        (["sweep"], "needs a grid"),
        (["sweep", "--grid", "lr=1e-3", "--grid", "bogus=1,2"], "unknown setting 'bogus'; choose from data, .*hidden"),
        (["sweep", "--grid", "seed=1,2", "--seeds", "3"], "either a grid over seed or seeds"),
        (["sweep", "--grid", "hidden=16,,32"], r"--grid: hidden=16,,32 has an empty value .*write none"),
        (["sweep", "--grid", "hidden=16,"], r"--grid: hidden=16, has an empty value"),
        (["sweep", "--grid", "batch_size=0,,16"], r"--grid: batch_size=0,,16 has an empty value"),
        (["sweep", "--grid", "lr=1e-3,"], r"--grid: lr=1e-3, has an empty value \(a stray comma\)$"),  # no 'none'
        (["sweep", "--grid", "lr="], r"--grid: lr= has no value"),
        (["explain", "--expr", "__import__('os')"], "not allowed|unknown name"),
        (["explain", "--expr", "sqrt(x"], "cannot parse"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no MNIST in ~/.nablanet or $NABLANET_MNIST, whatever this machine has
    monkeypatch.delenv("NABLANET_MNIST", raising=False)
    code, _, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nablanet: error:"), err
    assert "Traceback" not in err
    import re

    assert re.search(match, lines[0]), lines[0]


def test_sweep_heatmap_best_and_resume(tmp_path, capsys):
    out = tmp_path / "sw"
    argv = ["sweep", "--data", "runge", "--n", "200", "--hidden", "8", "--activation", "tanh", "--epochs", "5",
            "--grid", "lr=0.001,0.01", "--grid", "l2=0,0.001", "--jobs", "2", "--out", str(out), "--no-progress"]
    code, stdout, err = run(capsys, *argv)
    assert code == 0, err
    assert "best test_mse" in stdout
    res = json.loads((out / "results.json").read_text())
    assert len(res["results"]) == 4 and res["skipped"] == 0
    assert res["best"]["test_mse"] == min(r["test_mse"] for r in res["results"])
    for m, label in (("test_mse", "test MSE"), ("test_r2", "test R²"), ("test_loss", "test cost")):  # one per metric
        assert png_title(out / f"heatmap_{m}.png") == f"runge: {label}"  # a readable label, never the raw key
    assert len((out / "results.csv").read_text().splitlines()) == 5
    code, stdout, _ = run(capsys, *argv[:-1], "--json")
    again = json.loads(stdout)
    assert again["skipped"] == 4 and again["best"] == res["best"]


def test_compare_regression_and_classification(tmp_path, capsys):
    code, stdout, err = run(capsys, "compare", "--data", "franke", "--n", "300", "--hidden", "16", "--epochs", "20",
                            "--out", str(tmp_path / "c"), "--json")
    assert code == 0, err
    names = [r["model"] for r in json.loads(stdout)["results"]]
    assert any("OLS" in n for n in names) and any("Ridge" in n for n in names) and any("Lasso" in n for n in names)
    assert any("scikit-learn MLP" in n for n in names)
    assert png_title(tmp_path / "c" / "compare.png") == "franke: test MSE on the same test split"
    code, stdout, _ = run(capsys, "compare", "--data", "breast_cancer", "--epochs", "20", "--out", str(tmp_path / "d"))
    assert code == 0 and "logistic regression" in stdout
    try:
        import torch  # noqa: F401

        assert "PyTorch MLP" in stdout
    except ImportError:
        pass


def test_explain_expression_matches_closed_form(tmp_path, capsys):
    g = tmp_path / "g.png"
    code, stdout, _ = run(capsys, "explain", "--expr", "sqrt(x**2 + exp(x**2))", "--at", "1.5", "--graph", str(g),
                          "--json")
    assert code == 0
    doc = json.loads(stdout)
    x = 1.5
    b = np.exp(x * x)
    exact = x * (1 + b) / np.sqrt(x * x + b)
    assert abs(doc["forward"] - exact) < 1e-12 and abs(doc["reverse"] - exact) < 1e-12
    assert abs(doc["central_difference"] - exact) < 1e-7
    assert doc["nodes"][0]["adjoint"] == pytest.approx(exact, rel=1e-12)
    assert "sqrt" in png_title(g)


def test_explain_network_checks_itself(capsys):
    code, stdout, _ = run(capsys, "explain", "--sizes", "3,4,2", "--activation", "tanh", "--json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["max_error"] < 1e-8 and doc["max_engine_error"] < 1e-12
    code, stdout, _ = run(capsys, "explain")
    assert "delta" in stdout and "dC/dW" in stdout and "forward pass" in stdout


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "nablanet.cli", "--version"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert r.returncode == 0 and r.stdout.startswith("nablanet")


def test_resume_with_more_epochs_stretches_the_schedule(tmp_path, capsys):
    args = ["--data", "breast_cancer", "--hidden", "8", "--schedule", "cosine", "--no-progress"]
    assert run(capsys, "train", *args, "--epochs", "2", "--out", str(tmp_path / "r"))[0] == 0
    assert run(capsys, "train", "--resume", str(tmp_path / "r"), "--epochs", "4", "--no-progress")[0] == 0
    t = load(tmp_path / "r" / "checkpoint.npz")
    steps_per_epoch = t.opt_state["t"] // 4
    assert t.epoch == 4 and t.optimizer.lr.params["total_steps"] == 4 * steps_per_epoch
    code, _, err = run(capsys, "train", "--resume", str(tmp_path / "r"), "--lr", "0.5")
    assert code == 2 and "only --epochs may change" in err


def test_early_stopping_run_saves_the_model_it_reports(tmp_path, capsys):
    from nablanet.data import load_dataset, split_scale
    from nablanet.train import evaluate

    out = tmp_path / "es"
    code, stdout, _ = run(capsys, "train", "--data", "digits", "--lr", "0.05", "--patience", "2", "--epochs", "40",
                          "--out", str(out), "--json")
    assert code == 0
    final = json.loads(stdout)["final"]
    t = load(out / "checkpoint.npz")
    _, Xte, _, yte, _ = split_scale(load_dataset("digits", seed=0), seed=0)
    assert evaluate(t.model, Xte, yte, loss="cross_entropy")["loss"] == pytest.approx(final["test_loss"], rel=1e-6)


def test_sweep_points_that_fail_do_not_stop_it_and_folders_keep_their_settings(tmp_path, capsys):
    out = tmp_path / "sw"
    base = ["sweep", "--data", "runge", "--n", "100", "--hidden", "4", "--epochs", "2", "--jobs", "1", "--out", str(out),
            "--no-progress", "--json"]
    code, stdout, err = run(capsys, *base, "--grid", "batch_size=0,16", "--grid", "lr=0.01,1e30")  # 1e30 diverges
    assert code == 0, err
    rows = json.loads(stdout)["results"]
    assert sum("error" in r for r in rows) == 2 and all("test_mse" in r for r in rows if r["lr"] == 0.01)
    assert all("epoch" in r["error"] or "diverged" in r["error"] for r in rows if r["lr"] == 1e30)
    assert {r["batch_size"] for r in rows} == {None, 16}  # 0 means the full batch, as with --batch-size
    code, _, err = run(capsys, *base[:-6], "--epochs", "3", "--jobs", "1", "--out", str(out), "--json",
                       "--grid", "batch_size=0,16", "--grid", "lr=0.01,1e30")
    assert code == 2 and "holds a sweep with other settings" in err


def test_a_sweep_over_data_sets_ranks_by_their_task_and_refuses_mixed_tasks_before_training(tmp_path, capsys):
    """The metric comes from the grid's data sets, not the base one (the default, digits, is a classification set:
    a grid of regression sets trained every point and then found no test_accuracy)."""
    base = ["sweep", "--n", "100", "--hidden", "4", "--epochs", "2", "--jobs", "1", "--no-progress", "--json"]
    code, stdout, err = run(capsys, *base, "--grid", "data=franke,runge", "--out", str(tmp_path / "a"))
    assert code == 0, err
    res = json.loads(stdout)
    assert res["metric"] == "test_mse" and {r["data"] for r in res["results"]} == {"franke", "runge"}
    assert png_title(tmp_path / "a" / "line_test_mse.png") == "franke, runge: test MSE"
    for metric in ((), ("--metric", "test_loss")):  # a cost of each task: no point of one is better than the other's
        code, _, err = run(capsys, *base, "--grid", "data=franke,breast_cancer", *metric, "--out", str(tmp_path / "b"))
        assert code == 2 and "2 tasks (classification, regression)" in err and "sweep each task on its own" in err
        assert not (tmp_path / "b" / "points").exists() or not os.listdir(tmp_path / "b" / "points")  # none trained


def test_a_sweep_leaves_out_the_points_whose_settings_do_not_go_together_and_says_so(tmp_path, capsys):
    out = tmp_path / "sw"
    base = ["sweep", "--data", "franke", "--n", "100", "--hidden", "4", "--epochs", "2", "--jobs", "1", "--out",
            str(out), "--no-progress"]
    with pytest.warns(UserWarning, match="1 of the 4 grid points are left out") as caught:  # recorded: not shown
        code, stdout, err = run(capsys, *base, "--grid", "optimizer=sgd,adam", "--grid", "momentum=0,0.9")
    assert code == 0, err
    assert "optimizer=adam, momentum=0.9: momentum=0.9 is a setting of sgd and gd" in str(caught[0].message)
    assert re.search(r"^adam\s+0.9\s+left out: optimizer=adam", stdout, re.M)  # the table says why it is blank
    rows = json.loads((out / "results.json").read_text())["results"]
    left = [r for r in rows if "note" in r]
    assert [(r["optimizer"], r["momentum"]) for r in left] == [("adam", 0.9)] and "test_mse" not in left[0]
    assert all("test_mse" in r for r in rows if "note" not in r) and len(os.listdir(out / "points")) == 3
    assert "best test_mse = " in stdout and "at optimizer=" in stdout
    code, _, err = run(capsys, *base[:-2], str(tmp_path / "none"), "--grid", "optimizer=adam,rmsprop",
                       "--momentum", "0.9")
    assert code == 2 and "no grid point applies" in err and "momentum=0.9 is a setting of sgd" in err


def test_a_warning_on_the_command_line_is_one_line(tmp_path):
    cmd = [sys.executable, "-m", "nablanet.cli", "sweep", "--data", "franke", "--n", "100", "--hidden", "4",
           "--epochs", "2", "--jobs", "1", "--no-progress", "--grid", "optimizer=sgd,adam", "--grid",
           "momentum=0,0.9", "--out", str(tmp_path / "s")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONWARNINGS": ""})
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("nablanet: warning: 1 of the 4 grid points")


def test_sweep_tables_show_settings_as_the_command_line_writes_them_and_counts_as_whole_numbers(tmp_path, capsys):
    out = tmp_path / "sw"
    code, stdout, err = run(capsys, "sweep", "--data", "runge", "--n", "100", "--epochs", "2", "--jobs", "1",
                            "--grid", "hidden=4,3x3", "--out", str(out), "--no-progress")
    assert code == 0, err
    assert re.search(r"^3x3 ", stdout, re.M) and "at hidden=3x3" in stdout or "at hidden=4" in stdout
    rows = json.loads((out / "results.json").read_text())["results"]
    assert all(type(r["epochs"]) is int for r in rows)
    assert (out / "results.csv").read_text().splitlines()[1].split(",")[1] == "2"  # epochs, not 2.0


def test_train_prints_small_test_errors_in_significant_figures_and_names_the_files_it_wrote(tmp_path, capsys):
    out = tmp_path / "r"
    code, stdout, err = run(capsys, "train", "--data", "runge", "--hidden", "32,32", "--activation", "tanh",
                            "--epochs", "60", "--no-plots", "--out", str(out), "--no-progress")
    assert code == 0, err
    mse = json.loads((out / "metrics.json").read_text())["final"]["test_mse"]
    assert mse < 1e-3
    shown = float(re.search(r"^test_mse\s+(\S+)$", stdout, re.M)[1])
    assert shown != 0 and abs(shown - mse) <= 1e-4 * mse  # five significant figures, not five decimals
    line = next(ln for ln in stdout.splitlines() if ln.startswith("run folder:"))
    assert line.endswith("(config.json, checkpoint.npz, metrics.csv, metrics.json)")  # no plots: none named
    code, stdout, _ = run(capsys, "train", "--data", "runge", "--epochs", "2", "--out", str(tmp_path / "p"),
                          "--no-progress")
    assert "learning_curves.png" in stdout and "prediction.png" in stdout


def test_dropout_or_batch_norm_without_a_hidden_layer_is_refused(capsys):
    for flag in (["--dropout", "0.5"], ["--batch-norm"]):
        code, _, err = run(capsys, "train", "--hidden", "none", *flag, "--epochs", "2", "--no-progress")
        assert code == 2 and "acts on hidden layers, and this network has none" in err


def test_help_shows_a_text_and_the_default_of_every_flag():
    from nablanet.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flag = action.option_strings[0]
            assert action.help, f"{name} {flag} has no help text"
            assert "default" in action.help or action.required, f"{name} {flag}: no default shown"
        assert "(default: digits)" in sub.format_help() or name in ("explain", "surface")
    scale = next(a for a in subs.choices["train"]._actions if "--scale" in a.option_strings)
    assert all(choice in scale.help for choice in ("standard", "minmax", "none"))  # the valid names, not only the default


def test_linear_regression_on_polynomial_features_from_the_command_line(tmp_path, capsys):
    code, stdout, err = run(capsys, "train", "--data", "franke", "--n", "200", "--hidden", "none", "--degree", "3",
                            "--optimizer", "sgd", "--lr", "0.05", "--batch-size", "0", "--epochs", "50",
                            "--out", str(tmp_path / "lin"), "--json", "--no-progress")
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["config"]["hidden"] == [] and doc["config"]["degree"] == 3
    assert "trainer" not in doc
    cfg = json.loads((tmp_path / "lin" / "config.json").read_text())
    assert cfg["degree"] == 3
    from nablanet.train import load

    assert load(tmp_path / "lin" / "checkpoint.npz").model.n_inputs == 9  # x, y, x^2, xy, y^2, x^3, ...


@pytest.mark.parametrize("argv,first_line", [
    (["--hidden", "none", "--degree", "2", "--epochs", "1"],
     "trained 5-1 (no hidden layer, output identity) on franke with mse, adam lr=0.003, 1 epoch in "),
    (["--hidden", "4", "--optimizer", "lbfgs", "--epochs", "2"],
     "trained 2-4-1 (relu, output identity) on franke with mse, lbfgs, 2 epochs in "),
    (["--hidden", "4,3", "--activation", "tanh,relu", "--optimizer", "sgd", "--schedule", "cosine", "--epochs", "2"],
     "trained 2-4-3-1 (tanh,relu, output identity) on franke with mse, sgd lr=0.003 (cosine), 2 epochs in "),
])
def test_the_summary_line_says_what_was_trained(tmp_path, capsys, argv, first_line):
    """No activation for a network without hidden layers (it said relu for linear regression), no learning rate
    for a full-batch method that has none (it said 'lbfgs lr=0.003'), the schedule when there is one."""
    code, stdout, err = run(capsys, "train", "--data", "franke", "--n", "100", *argv, "--out", str(tmp_path / "r"),
                            "--no-progress", "--no-plots")
    assert code == 0, err
    assert stdout.splitlines()[0].startswith(first_line), stdout


def test_sweep_one_axis_of_layer_sizes_with_seeds(tmp_path, capsys):
    out = tmp_path / "sw1"
    argv = ["sweep", "--data", "runge", "--n", "120", "--activation", "tanh", "--epochs", "3", "--grid",
            "hidden=4,8x8", "--seeds", "3", "--jobs", "2", "--out", str(out), "--no-progress", "--json"]
    code, stdout, err = run(capsys, *argv)
    assert code == 0, err
    res = json.loads(stdout)
    assert [r["hidden"] for r in res["results"]] == [[4], [8, 8]]
    assert res["plots"] == ["line_test_loss.png", "line_test_mse.png", "line_test_r2.png"]
    assert png_title(out / "line_test_mse.png") == "runge: test MSE (mean over 3 seeds)"
    runs = {p.name: json.loads(p.read_text()) for p in (out / "points").iterdir()}
    assert len(runs) == 6  # 2 points x 3 seeds, each its own run
    for row in res["results"]:
        mine = [r["test_mse"] for r in runs.values() if r["hidden"] == row["hidden"]]
        assert sorted(r["seed"] for r in runs.values() if r["hidden"] == row["hidden"]) == [0, 1, 2]
        assert row["test_mse"] == pytest.approx(np.mean(mine)) and row["test_mse_std"] == pytest.approx(np.std(mine))
        assert row["test_mse_std"] > 0 and row["seeds"] == 3


def test_sweep_axis_of_per_layer_activations(tmp_path, capsys):
    """Per-layer activations as grid values: '+' joins one network's names (',' separates the values), as 'x' joins
    layer sizes; there was no way to write one from the command line."""
    out = tmp_path / "act"
    code, stdout, err = run(capsys, "sweep", "--data", "runge", "--n", "100", "--hidden", "4,3", "--epochs", "2",
                            "--grid", "activation=tanh+relu,tanh", "--jobs", "1", "--out", str(out), "--no-progress",
                            "--json")
    assert code == 0, err
    assert [r["activation"] for r in json.loads(stdout)["results"]] == ["tanh,relu", "tanh"]
    code, _, err = run(capsys, "sweep", "--grid", "activation=tanhxrelu", "--out", str(tmp_path / "bad"))
    assert code == 2 and "join one network's per-layer names with +" in err


@pytest.mark.parametrize("argv,match", [
    (["sweep", "--hidden", "8", "--grid", "activation=tanh+relu,tanh", "--grid", "hidden=16,32x32"],
     r"grid point activation=tanh,relu, hidden=16: activation: 2 activations \(tanh,relu\) for 1 hidden layer "),
    (["sweep", "--hidden", "16x16x16", "--grid", "activation=tanh+relu,relu"], r"2 activations .* for 3 hidden layers"),
    (["sweep", "--hidden", "none", "--grid", "activation=linear+tanh,tanh"], r"2 activations .* for 0 hidden layers"),
    (["train", "--hidden", "16", "--activation", "tanh,relu"], r"activation: 2 activations \(tanh,relu\) for 1 "
                                                              r"hidden layer \(hidden 16\); give one .* or 1"),
])
def test_per_layer_activations_that_miss_the_hidden_layers_are_refused_before_training(tmp_path, capsys, argv, match):
    """As many activations as hidden layers (or one for all), checked with the other settings: a sweep whose grid
    pairs them wrongly trained the other points and left the mismatched ones as error rows, a blank cell in the table
    and exit 0 (or, every point wrong, an error naming MLP, not the settings); nothing is written."""
    out = tmp_path / "o"
    code, _, err = run(capsys, *argv, "--data", "runge", "--n", "50", "--epochs", "1", "--jobs", "1", "--out", str(out),
                       "--no-progress") if argv[0] == "sweep" else run(capsys, *argv, "--data", "runge", "--n", "50",
                                                                         "--epochs", "1", "--out", str(out),
                                                                         "--no-progress")
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and re.search(match, err), err
    assert not out.exists() or not any(out.iterdir())


def test_sweep_folder_refused_only_for_settings_outside_the_grid(tmp_path, capsys):
    out = tmp_path / "sw"
    base = ["sweep", "--data", "runge", "--n", "100", "--hidden", "4", "--jobs", "1", "--out", str(out),
            "--no-progress", "--json"]
    code, _, err = run(capsys, *base, "--epochs", "2", "--grid", "lr=0.01,0.1")
    assert code == 0, err
    # the grid overrides lr, so a base lr does not matter; a new axis value adds points
    code, stdout, err = run(capsys, *base, "--epochs", "2", "--lr", "0.5", "--grid", "lr=0.01,0.1,0.3")
    assert code == 0, err
    assert json.loads(stdout)["skipped"] == 2
    code, _, err = run(capsys, *base, "--epochs", "3", "--grid", "lr=0.01,0.1")
    assert code == 2 and "outside the grid (epochs=2)" in err


def test_kill_9_then_resume_ends_as_the_unbroken_run(tmp_path):
    """Checkpoints on a cadence: a run killed with SIGKILL resumes from its last checkpoint to the same end."""
    import signal
    import time

    args = ["--data", "digits", "--n", "200", "--hidden", "16", "--batch-size", "16", "--seed", "2", "--no-progress",
            "--no-plots", "--epochs", "40"]
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    cmd = [sys.executable, "-m", "nablanet.cli", "train", *args]
    subprocess.run(cmd + ["--out", str(tmp_path / "full")], check=True, env=env, capture_output=True, timeout=300)
    proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "killed"), "--checkpoint-every", "5"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = tmp_path / "killed" / "checkpoint.npz"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ck.exists() and load(ck).epoch >= 5:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = load(ck).epoch
    assert stopped_at % 5 == 0 or stopped_at == 40  # the cadence, never a half-done epoch
    subprocess.run([sys.executable, "-m", "nablanet.cli", "train", "--resume", str(tmp_path / "killed"),
                    "--no-progress", "--no-plots"], check=True, env=env, capture_output=True, timeout=300)
    a, b = load(tmp_path / "full" / "checkpoint.npz"), load(ck)
    assert a.epoch == b.epoch == 40
    assert np.array_equal(a.get_flat_params(), b.get_flat_params())
    assert len(b.history) == 40


def test_every_command_the_tutorials_and_the_readme_quote_parses():
    """A reader copies the commands: each `nablanet ...` in the tutorials and docs, and each command line in the
    README's code blocks, is accepted by the parser (tutorial 2 named a flag, --network, that explain never had)."""
    import pathlib
    import re
    import shlex

    from nablanet.cli import build_parser

    root = pathlib.Path(__file__).resolve().parents[1]
    pat = re.compile(r"(?:^|[`$\s])nablanet ((?:train|sweep|compare|explain|surface)\b[^`\n#]*)")
    quoted = []
    for f in [*sorted((root / "docs").rglob("*.md")), *sorted((root / "docs" / "tutorials").glob("*.py"))]:
        quoted += [(f.name, m.group(1)) for line in f.read_text().splitlines() for m in pat.finditer(line)]
    for line in (root / "README.md").read_text().splitlines():  # the README's code blocks, not its prose
        if re.match(r"\s*(\$ )?(mpiexec -n \d+ )?nablanet ", line):
            quoted += [("README.md", m.group(1)) for m in pat.finditer(line)]
    assert len(quoted) >= 10
    for where, cmd in quoted:
        try:
            build_parser().parse_args(shlex.split(cmd.strip().rstrip(".,;:)")))
        except SystemExit:
            raise AssertionError(f"{where} quotes a command the parser refuses: nablanet {cmd}") from None


@pytest.mark.parametrize("ranks,fraction,noted", [(1, 0.9, False), (2, None, False), (2, 0.45, False),
                                                  (2, 0.55, True), (4, 0.7, False), (4, 0.8, True)])
def test_the_note_that_ranks_lost_to_communication(ranks, fraction, noted):
    """Under mpiexec, train notes that one process would have been faster exactly when the ranks' mean share of
    time outside communication, times the ranks, is under the whole time: fraction > 1 - 1/ranks."""
    from nablanet.cli import _communication_note

    note = _communication_note(ranks, fraction)
    assert (note is not None) == noted
    if noted:
        assert f"{fraction:.0%}" in note and f"the {ranks} ranks" in note and "without mpiexec" in note


@pytest.mark.parametrize("fraction", [0.3, 0.8])
def test_train_prints_the_communication_note_only_when_ranks_lost(tmp_path, capsys, monkeypatch, fraction):
    """The note reaches stderr (stdout keeps the result) when the measured share calls for it, not otherwise."""
    from nablanet import experiments

    real = experiments.run_training

    def as_two_ranks(*args, **kw):  # the share two ranks would have measured
        return {**real(*args, **kw), "ranks": 2, "communication_fraction": fraction}

    monkeypatch.setattr(experiments, "run_training", as_two_ranks)
    code, out, err = run(capsys, "train", "--data", "iris", "--hidden", "4", "--epochs", "1", "--no-plots",
                         "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 0 and "data-parallel over 2 MPI ranks" in out
    assert ("one process would have been faster" in err) == (fraction > 0.5) and "faster" not in out


def test_a_closed_pipe_stops_quietly(tmp_path):
    """`nablanet ... | head -1`: the reader closes the pipe before the output is written. The command stops as
    a Unix tool killed by SIGPIPE does (exit 141, nothing on stderr); it printed 'nablanet: error: Broken
    pipe', or Python's 'Exception ignored ... BrokenPipeError' at exit."""
    import signal

    r, w = os.pipe()
    os.close(r)  # the reader is gone before the command writes anything
    try:
        p = subprocess.run([sys.executable, "-m", "nablanet.cli", "explain"], stdout=w, stderr=subprocess.PIPE,
                           text=True, timeout=300, cwd=tmp_path)
    finally:
        os.close(w)
    assert p.returncode == 128 + signal.SIGPIPE and p.stderr == "", (p.returncode, p.stderr)


def test_parallel_replicate_says_that_lead_replaced_it(tmp_path, capsys):
    """`--parallel replicate` and Trainer(parallel="replicate") said only "expected one of auto, shard, lead":
    now one error says that lead replaced replicate (the same results), with no alias."""
    from nablanet.nn import MLP
    from nablanet.train import Trainer

    code, _, err = run(capsys, "train", "--parallel", "replicate", "--out", str(tmp_path / "r"), "--no-progress")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "'replicate' was replaced by 'lead'" in lines[0], err
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="'replicate' was replaced by 'lead'"):
        Trainer(MLP([2, 1]), parallel="replicate")


@pytest.mark.parametrize("argv, message", [
    (["--start", "1e308,1e308"], "argument --start: expected W,B each within -1e+06..1e+06"),  # was: arange: cannot
    (["--plane", "0"], "argument --plane: expected hidden sizes like 16,16 (at least one layer"),  # drew no plane
])
def test_surface_refuses_a_start_out_of_range_and_an_empty_plane(argv, message, tmp_path, capsys):
    code, _, err = run(capsys, "surface", *argv, "--steps", "2", "--grid", "5", "--out", str(tmp_path / "s"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "s").exists()


def test_compare_protects_its_folder_as_train_does(tmp_path, capsys):
    small = ["--data", "runge", "--n", "60", "--hidden", "4", "--epochs", "2"]
    run_dir, cmp_dir = tmp_path / "run", tmp_path / "cmp"
    assert run(capsys, "train", *small, "--no-plots", "--out", str(run_dir))[0] == 0
    code, _, err = run(capsys, "compare", *small, "--out", str(run_dir))  # wrote beside the run without a word
    assert code == 2 and "already holds a training run; give compare another --out" in err, err
    assert not (run_dir / "compare.csv").exists()
    assert run(capsys, "compare", *small, "--out", str(cmp_dir))[0] == 0
    first = (cmp_dir / "compare.json").read_bytes()
    code, _, err = run(capsys, "compare", *small, "--epochs", "3", "--out", str(cmp_dir))  # overwrote it silently
    assert code == 2 and "already holds the results of a comparison; give another --out or replace them with " \
                         "--overwrite" in err, err
    assert (cmp_dir / "compare.json").read_bytes() == first
    assert run(capsys, "compare", *small, "--epochs", "3", "--out", str(cmp_dir), "--overwrite")[0] == 0
    assert b'"epochs": 3' in (cmp_dir / "compare.json").read_bytes()
    assert run(capsys, "compare", *small, "--out", str(run_dir), "--overwrite")[0] == 0
    assert (run_dir / "config.json").exists() and (run_dir / "compare.csv").exists()  # beside the run, never over it
