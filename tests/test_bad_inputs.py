"""Bad input, by class: every flag of every subcommand, every explain mode, the Python API's odd values.

Each class is closed by one mechanism (the parser's error(), explain's floating-point guard, the
shared checks of nablanet.validate); these tests walk the whole surface rather than a few examples.
"""

import argparse
import os
import re

import numpy as np
import pytest

from nablanet import validate as V
from nablanet.cli import build_parser, main

# flags whose value is free text by design, checked when the command runs (paths, the expression)
FREE_TEXT = {"--out", "--graph", "--expr", "--config", "--resume", "--data-path"}


def _subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def _value_flags():
    for name, sp in _subcommands().items():
        for a in sp._actions:
            if a.option_strings and a.nargs is None and a.option_strings[0] not in FREE_TEXT:
                yield name, a


@pytest.mark.parametrize("command, action", list(_value_flags()),
                         ids=[f"{c} {a.option_strings[0]}" for c, a in _value_flags()])
def test_every_flag_refuses_a_bad_value_in_one_line_naming_flag_and_value(command, action, capsys):
    flag = action.option_strings[0]
    assert action.type is not None or action.choices is not None, f"{command} {flag} reads its value with no check"
    assert main([command, flag, "@@bad"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nablanet: error: argument " + flag), err
    assert "'@@bad'" in lines[0] and "expected" in lines[0] or "choose from" in lines[0], lines[0]


@pytest.mark.parametrize("argv, message", [
    (["bogus"], "unknown command 'bogus'; choose from train, sweep, compare, explain, surface"),
    ([], "give a command: train, sweep"),
    (["train", "--data", "nosuch"], "argument --data: expected a data set: franke, .*mnist.*, got 'nosuch'$"),
    (["sweep", "--schedule", "x"], "argument --schedule: expected one of constant, step_decay, .*cosine, got 'x'$"),
    (["compare", "--scale", "q"], "argument --scale: expected one of standard, minmax, none, got 'q'$"),
    (["surface", "--directions", "x"], "argument --directions: expected one of random, pca, got 'x'$"),
    (["surface", "--data", "nosuch"], "argument --data: expected one of neuron, franke, .*, got 'nosuch'$"),
    (["surface", "--plane-data", "nosuch"], "argument --plane-data: expected a data set: .*, got 'nosuch'$"),
    (["surface", "--w-range", "5,1"], "argument --w-range: expected LO < HI, got '5,1'$"),
    (["train", "--lr"], "argument --lr: expected one argument"),
    (["train", "--epochs", "3", "--nosuch", "1"], "unrecognized arguments: --nosuch 1"),
    (["explain", "--sizes", "2,1000,2"], "argument --sizes: .*at most 64 units each.*, got '2,1000,2'"),
    (["explain", "--expr", "x**2", "--at", "1", "--graph", "g.txt"], "--graph 'g.txt': matplotlib cannot write.*\\.png"),
])
def test_parser_errors_are_one_line_naming_flag_value_and_choices(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nablanet: error: "), err
    assert "usage:" not in err and not out
    assert re.search(message, lines[0]), lines[0]
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_flags_and_toml_read_names_alike(tmp_path, capsys):
    """--data takes the spellings the TOML key takes (one check, experiments.SETTINGS)."""
    args = build_parser().parse_args(["train", "--data", "Breast-Cancer", "--scale", "none"])
    assert args.data == "breast_cancer" and args.scale == "none"


# ------------------------------------------------------------------------------------------- explain


@pytest.mark.parametrize("expr, at", [("x**1000", 10.0), ("1/x", 0.0), ("log(x)", -1.0), ("exp(x)", 1000.0),
                                      ("(-2)**x", 2.0)])  # f = 4 there, but no real value beside it: no f' (was 0)
def test_explain_expression_without_a_finite_value_is_one_error(expr, at, tmp_path):
    from nablanet.explain import ExpressionError, explain_expression

    with pytest.raises(ExpressionError, match=re.escape(repr(expr)) + ".* at x = .*(overflow|division|finite)"):
        explain_expression(expr, at)


def test_explain_network_is_under_the_same_guard(monkeypatch, capsys):
    """A network whose forward pass overflows (weights scaled past float range) is one line, exit 2."""
    import nablanet.nn as nn

    real = nn.MLP

    def huge(*a, **kw):
        m = real(*a, **kw)
        for p in m.params:
            p["W"] *= 1e308
        return m

    monkeypatch.setattr(nn, "MLP", huge)
    assert main(["explain", "--sizes", "2,3,2", "--activation", "relu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(r"network \[2, 3, 2\] .*: (a value is too large|no finite value)", err[0]), err


@pytest.mark.parametrize("kw, error", [
    ({"sizes": [2]}, V.InvalidValueError), ({"sizes": [2, 0, 1]}, V.InvalidValueError),
    ({"sizes": [2, 2.5, 1]}, V.InvalidValueError), ({"sizes": "2,3"}, V.InvalidTypeError),
    ({"sizes": [2, 10**6, 1]}, V.InvalidValueError), ({"activation": "nosuch"}, V.InvalidValueError),
    ({"activation": None}, V.InvalidTypeError), ({"seed": -1}, V.InvalidValueError), ({"seed": 1.5}, V.InvalidValueError),
])
def test_explain_network_checks_its_arguments(kw, error):
    from nablanet.explain import explain_network

    with pytest.raises(error, match=next(iter(kw))):
        explain_network(**kw)


@pytest.mark.parametrize("expr, at, error", [
    (None, 1.0, V.InvalidTypeError), ("x", float("nan"), V.InvalidValueError), ("x", "1", V.InvalidTypeError),
    ("x+" * 300 + "x", 1.0, V.InvalidValueError), ("(" * 150 + "x" + ")" * 150, 1.0, None),
])
def test_explain_expression_checks_its_arguments(expr, at, error):
    from nablanet.explain import explain_expression

    if error is None:
        assert explain_expression(expr, at)[1]["value"] == pytest.approx(1.0)
    else:
        with pytest.raises(error):
            explain_expression(expr, at)


def test_default_output_folders_never_collide(tmp_path, monkeypatch):
    from nablanet.cli import _new_folder

    monkeypatch.chdir(tmp_path)
    first = _new_folder("digits")
    (tmp_path / first).mkdir(parents=True)
    second = _new_folder("digits")
    assert second != first and not (tmp_path / second).exists()


def test_numbers_of_every_check_are_never_nan_or_inf():
    for check in (V.positive_number, V.non_negative_number, V.finite_number, V.probability, V.open_fraction):
        for bad in (float("nan"), float("inf"), -float("inf"), np.float32("nan")):
            with pytest.raises(V.InvalidValueError):
                check(bad, "x")


# ------------------------------------------------------------------------------------------- Python API


def _xy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    return X, X.sum(1)


@pytest.mark.parametrize("which, value, error, message", [
    ("X", lambda X: X * 1e300, V.InvalidValueError, "training data: X holds .* beyond the range of float32"),
    ("y", lambda y: y * 1e300, V.InvalidValueError, "training data: y holds .* beyond the range of float32"),
    ("X", lambda X: None, V.InvalidTypeError, "training data: X must be an array of rows"),
    ("X", lambda X: 3.0, V.InvalidTypeError, "training data: X must be an array of rows"),
    ("X", lambda X: np.where(X > 1, np.inf, X), V.InvalidValueError, "training data: X contains NaN or inf"),
    ("y", lambda y: np.where(y > 1, np.nan, y), V.InvalidValueError, "training data: y contains NaN or inf"),
])
def test_fit_refuses_data_that_is_not_finite_in_the_models_dtype(which, value, error, message):
    """Finite in float64 is not enough: 1e300 becomes inf in a float32 model, and is refused, not trained on."""
    from nablanet.nn import MLP
    from nablanet.train import fit

    X, y = _xy()
    X, y = (value(X), y) if which == "X" else (X, value(y))
    with pytest.raises(error, match=message):
        fit(MLP([3, 4, 1], seed=0), X, y, epochs=1)


@pytest.mark.parametrize("labels, hint", [
    (np.arange(20) % 10, True), ((np.arange(20) % 10).astype(float), True), (np.linspace(0, 1, 20), False),
    (-(np.arange(20) % 10), False),
])
def test_class_labels_under_a_regression_cost_suggest_cross_entropy(labels, hint):
    """Integer labels, a 10-output model and the default loss="mse" said only "y has 1 columns"."""
    from nablanet.nn import MLP
    from nablanet.train import fit

    X = np.random.default_rng(0).standard_normal((20, 4))
    with pytest.raises(ValueError, match="training data: y has 1 columns but the model has 10 outputs") as e:
        fit(MLP([4, 10], output_activation="softmax", seed=0), X, labels, epochs=1)
    said = 'y looks like integer class labels: for classification give loss="cross_entropy" (labels in [0, 10)'
    assert (said in str(e.value)) == hint
    with pytest.raises(ValueError, match=r"y has 1 columns but the model has 1 outputs$|has 2 columns") as e:
        fit(MLP([4, 1], seed=0), X, np.column_stack([labels, labels]), epochs=1)  # one output: no hint


@pytest.mark.parametrize("X", [np.full((2, 3), np.inf), np.full((2, 3), 1e300), np.full((2, 3), np.nan)])
def test_predict_refuses_inputs_without_a_finite_value_in_the_models_dtype(X):
    from nablanet.nn import MLP

    with pytest.raises(V.InvalidValueError, match="^X (contains NaN or inf|holds)"):
        MLP([3, 4, 1], seed=0).predict(X)
    assert np.isfinite(MLP([3, 4, 1], seed=0, dtype=np.float64).predict(np.full((2, 3), 1e30))).all()


def test_sizes_beyond_the_machines_memory_are_refused_before_allocating():
    from nablanet.data import load_dataset
    from nablanet.nn import MLP, Dense

    with pytest.raises(V.InvalidValueError, match=r"MLP\(\[3, 1000000000000, 1\]\) needs .* GiB .* this machine has"):
        MLP([3, 10**12, 1])
    with pytest.raises(V.InvalidValueError, match=r"Dense\(1000000000000 -> 2\) needs"):
        Dense(10**12, 2)
    with pytest.raises(V.InvalidValueError, match="runge with n=10000000000000 needs"):
        load_dataset("runge", n=10**13)


def test_trainer_and_checkpoint_paths_of_the_wrong_kind(tmp_path):
    from nablanet.nn import MLP
    from nablanet.train import Trainer, load

    with pytest.raises(V.InvalidTypeError, match="model: expected a nablanet network"):
        Trainer(5, "mse")
    t = Trainer(MLP([3, 4, 1], seed=0), "mse", seed=0)
    with pytest.raises(V.InvalidValueError, match="is a folder; give a checkpoint file name"):
        t.save(tmp_path)
    for bad in (None, 5):
        with pytest.raises(V.InvalidTypeError, match="checkpoint path: expected a file path"):
            load(bad)
        with pytest.raises(V.InvalidTypeError, match="checkpoint path: expected a file path"):
            t.save(bad)


def test_a_diverged_model_is_never_saved_and_never_loaded(tmp_path):
    """The previous checkpoint stays; a file holding NaN parameters (written by hand) is refused, naming the entry."""
    import json
    import zipfile

    from nablanet.nn import MLP
    from nablanet.train import Trainer, load
    from nablanet.train.checkpoint import CheckpointError

    X, y = _xy()
    t = Trainer(MLP([3, 4, 1], seed=0), "mse", "adam", seed=0)
    t.fit(X, y, epochs=1)
    path = tmp_path / "c.npz"
    t.save(path)
    good = path.read_bytes()
    flat = t.get_flat_params()
    flat[0] = np.nan
    t.set_flat_params(flat)
    with pytest.raises(V.InvalidValueError, match="c.npz: not saved: params holds NaN or infinite values"):
        t.save(path)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["c.npz"]
    with zipfile.ZipFile(path) as z:
        arrays = {n[:-4]: np.lib.format.read_array(z.open(n)) for n in z.namelist()}
    arrays["opt/m"] = np.full_like(arrays["opt/m"], np.inf)
    json.loads(str(arrays["meta"]))  # the rest is the good file
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(CheckpointError, match="bad.npz: entry 'opt/m' holds NaN or infinite values"):
        load(tmp_path / "bad.npz")


@pytest.mark.parametrize("text, message", [
    ("train = 5\n", "c.toml: train must be a table of settings"),
    ("epochs = 1\n[train]\nlr = 0.1\n", r"c.toml: settings outside the \[train\] table \(epochs\) would be ignored"),
    ("[train]\nseed = 99999999999999999999\n", r"c.toml: setting seed: expected an integer in 0..4294967295"),
])
def test_toml_tables_are_read_whole_or_refused(tmp_path, monkeypatch, capsys, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text(text)
    assert main(["train", "--config", "c.toml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


def test_seeds_fit_every_consumer(capsys):
    """A configuration's seed also seeds scikit-learn's splits, which take 0..2**32-1: refused up front, named."""
    assert main(["train", "--seed", str(2**32)]) == 2
    assert "argument --seed: expected an integer in 0..4294967295, got 4294967296" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- plots

_H = {"epoch": [1, 2], "loss": [1.0, 0.5]}


@pytest.mark.parametrize("call, message", [
    (lambda viz, d: viz.learning_curves({"epoch": [], "loss": []}), "history: expected a History"),
    (lambda viz, d: viz.learning_curves(5), "history: expected a History"),
    (lambda viz, d: viz.learning_curves(_H, d), "is a folder; give a file name"),
    (lambda viz, d: viz.learning_curves(_H, 5), "path: expected a file path"),
    (lambda viz, d: viz.prediction_1d([1, 2, 3], [1, 2], [1, 2, 3]), "same length: x has 3, y_true has 2"),
    (lambda viz, d: viz.prediction_1d([], [], []), "x: expected a non-empty 1-d array"),
    (lambda viz, d: viz.prediction_2d(np.sin, np.sin, n=10**5), "n: expected an integer in 2..1000"),
    (lambda viz, d: viz.prediction_2d(5, 5), "f_true, f_pred: expected functions"),
    (lambda viz, d: viz.prediction_2d(np.sin, np.sin, bounds=((1, 0), (0, 1))), "bounds: expected"),
    (lambda viz, d: viz.heatmap(np.ones((2, 3)), ["a"], ["b"]), r"values: shape \(2, 3\) does not fit 1 row"),
    (lambda viz, d: viz.line([1, 2], [1, 2, 3]), "same length: x_values has 2, values has 3"),
    (lambda viz, d: viz.bar_comparison(["a"], [1, 2]), "same length: names has 1, values has 2"),
    (lambda viz, d: viz.graph([{"label": "x", "parents": [3]}]), r"nodes\[0\]: expected a dict"),
])
def test_plots_refuse_bad_arguments_naming_them(call, message, tmp_path):
    """Lengths that differ were cut by zip, a folder as path wrote a sibling file, n=10**5 allocated 75 GiB."""
    from nablanet import viz

    with pytest.raises((V.InvalidValueError, V.InvalidTypeError), match=message):
        call(viz, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_csv_log_is_one_error_naming_it(tmp_path):
    from nablanet.nn import MLP
    from nablanet.train import Trainer
    from nablanet.train.callbacks import CSVLogger

    X, y = _xy()
    t = Trainer(MLP([3, 4, 1], seed=0), "mse", seed=0)
    log = tmp_path / "log.csv"
    t.fit(X, y, epochs=2, callbacks=[CSVLogger(log)])
    log.write_text("epoch,loss\nx,1\n")
    with pytest.raises(V.FileFormatError, match="log.csv: damaged CSV log"):
        t.fit(X, y, epochs=1, callbacks=[CSVLogger(log)])


@pytest.mark.parametrize("argv, message", [
    (["--data", "runge", "--n", "2"], "runge: 2 rows split with test_size=0.2 leave 1 for training and 1 for testing"),
    (["--data", "iris", "--n", "3"], "iris: 3 rows split .* each side needs at least 2"),
    (["--data", "runge", "--n", "20", "--test-size", "0.5", "--patience", "1"],
     "patience watches 10% of the 10 training rows, fewer than 2"),
])
def test_too_few_rows_for_the_split_are_refused_before_anything_is_written(argv, message, tmp_path, capsys):
    """A test split of one row made scikit-learn print UndefinedMetricWarnings and report a meaningless R²."""
    assert main(["train", *argv, "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv", [
    ["--data", "runge", "--n", "10", "--batch-norm", "--batch-size", "1"],
    ["--data", "runge", "--n", "50", "--optimizer", "newton", "--hidden", "200,200"],
])
def test_a_run_refused_at_its_start_leaves_no_run_behind(argv, tmp_path, capsys):
    """Refusals that only training itself can make (batch sizes, a method's limits) left config.json behind,
    so the same command, corrected, was refused as 'already holds a run'."""
    out = tmp_path / "r"
    assert main(["train", *argv, "--epochs", "1", "--no-plots", "--out", str(out)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists() or list(out.iterdir()) == []
    assert main(["train", "--data", "runge", "--n", "50", "--epochs", "1", "--no-plots", "--out", str(out)]) == 0


def test_a_sweep_checks_every_points_split_before_training(tmp_path, capsys):
    assert main(["sweep", "--data", "runge", "--grid", "n=2,100", "--epochs", "1", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "grid point n=2: runge: 2 rows split with test_size=0.2" in err[0], err
    assert not (tmp_path / "s").exists()


# --------------------------------------------------------------------------- found by the hostile review


@pytest.mark.parametrize("check", [V.positive_number, V.non_negative_number, V.finite_number, V.probability])
def test_an_integer_beyond_any_float_is_an_invalid_value_not_an_overflow(check):
    with pytest.raises(V.InvalidValueError, match="lr: expected"):
        check(10**400, "lr")  # float(10**400) raises OverflowError, which is not a ValueError


def test_fit_with_an_integer_learning_rate_beyond_any_float_is_one_value_error():
    from nablanet.nn import MLP
    from nablanet.train import fit

    X, y = _xy()
    with pytest.raises(ValueError, match="expected"):
        fit(MLP([X.shape[1], 3, 1]), X, y, lr=10**400, epochs=1)


@pytest.mark.parametrize("text", ["1_0", "\u0663", "\uff11\uff10", "1_0.5", "\u0661e1"])
@pytest.mark.parametrize("check", [V.positive_int, V.positive_number, V.sizes])
def test_numbers_in_text_are_plain_ascii_never_read_by_pythons_extended_syntax(check, text):
    # int("1_0") is 10 and int("\u0663") is 3 in Python: a typo or a pasted glyph must not become another number
    with pytest.raises((V.InvalidValueError, V.InvalidTypeError)):
        check.parse(text, "n")


@pytest.mark.parametrize("argv, message", [
    (["train", "--lr", "-inf"], "argument --lr: expected a number > 0, got -inf"),
    (["train", "--noise", "-nan"], "argument --noise: expected a number >= 0, got nan"),
    (["surface", "--start", "-inf,3"], "argument --start: expected 2 finite numbers"),
    (["train", "--n", "1_0"], "argument --n: expected an integer >= 1, got '1_0'"),
])
def test_negative_infinity_and_odd_numerals_are_values_named_by_their_flag(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err


@pytest.mark.parametrize("make", [lambda: [[1.0, 2.0], [1.0]], lambda: [[1.0, [2.0]], [3.0, 4.0]]])
def test_ragged_data_is_one_error_naming_it(make):
    from nablanet.nn import MLP
    from nablanet.train import fit

    model = MLP([2, 3, 1])
    with pytest.raises(V.InvalidValueError, match="training data: X cannot be made an array"):
        fit(model, make(), [1.0, 2.0], epochs=1)
    with pytest.raises(V.InvalidValueError, match="X cannot be made an array"):
        model.predict(make())
    with pytest.raises(V.InvalidValueError, match="training data: y cannot be made an array"):
        fit(model, [[1.0, 2.0], [3.0, 4.0]], [[1.0], [2.0, 3.0]], epochs=1)


def test_a_huge_polynomial_degree_is_counted_before_scikit_learn_builds_anything(tmp_path, capsys):
    from nablanet.data import design_matrix

    with pytest.raises(V.InvalidValueError, match="degree 10000000000000000000000 on 2 features makes .* columns"):
        design_matrix(np.ones((3, 2)), 10**22)
    assert main(["train", "--data", "franke", "--n", "40", "--degree", "99999999999999999999999",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "degree 99999999999999999999999 on 2 features makes" in err and "use a lower degree" in err, err


def test_resume_refuses_a_config_json_that_describes_another_network_than_the_checkpoint(tmp_path, capsys):
    import json

    run = tmp_path / "run"
    base = ["train", "--data", "franke", "--n", "40", "--hidden", "2", "--no-plots", "--no-progress"]
    assert main(base + ["--epochs", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-plots"]) == 0  # the untouched folder resumes
    capsys.readouterr()
    cfg = json.loads((run / "config.json").read_text())
    cfg["hidden"] = [5]  # edited by hand: the weights in checkpoint.npz are of a 2-unit network
    (run / "config.json").write_text(json.dumps(cfg))
    before = (run / "checkpoint.npz").read_bytes()
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "config.json: describes another network than checkpoint.npz" in err
    assert "[2, 5, 1] here, [2, 2, 1] in the checkpoint" in err, err
    assert (run / "checkpoint.npz").read_bytes() == before


def test_surface_refuses_paths_that_cannot_fit_and_ranges_whose_width_overflows(tmp_path, capsys):
    # --steps 10**11 ran for hours keeping every point; -1e308,1e308 flooded RuntimeWarnings before its error
    assert main(["surface", "--steps", "100000000000", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "optimizer paths of 100000000000 steps needs" in err, err
    assert main(["surface", "--w-range", "-1e308,1e308", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "argument --w-range: expected a range whose width" in err, err


def test_a_full_disk_at_the_first_checkpoint_names_the_file_and_leaves_no_run_behind(tmp_path, capsys, monkeypatch):
    import errno

    import nablanet.train.checkpoint as ckpt

    real = ckpt.np.savez

    def full(*a, **k):  # what a write to a full disk raises: no file name
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "run"
    argv = ["train", "--data", "franke", "--n", "40", "--hidden", "2", "--epochs", "1", "--no-plots",
            "--out", str(out)]
    monkeypatch.setattr(ckpt.np, "savez", full)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "checkpoint.npz: No space left on device" in err, err
    assert not [f for f in os.listdir(out) if f != "metrics.csv"], os.listdir(out)  # no config without a checkpoint
    monkeypatch.setattr(ckpt.np, "savez", real)
    assert main(argv) == 0, capsys.readouterr().err  # the same command, once there is room, is not 'already a run'


def test_surface_and_explain_remove_the_temporary_files_an_interrupted_earlier_run_left(tmp_path, capsys):
    stale = [tmp_path / "s" / ".nablanet-tmp-0123456789ab-paths.json", tmp_path / ".nablanet-tmp-0123456789ab-g.png"]
    stale[0].parent.mkdir()
    for f in stale:
        f.write_bytes(b"half a file")
    assert main(["surface", "--steps", "2", "--grid", "5", "--optimizers", "gd", "--out", str(tmp_path / "s")]) == 0
    assert main(["explain", "--expr", "x**2", "--graph", str(tmp_path / "g.png")]) == 0
    capsys.readouterr()
    assert not any(f.exists() for f in stale)


def test_a_sweep_value_given_twice_is_refused_before_training(tmp_path, capsys):
    """Each grid value once: lr=0.1,0.1 trained the point twice and reported it once (CLI and Python alike)."""
    from nablanet.experiments import ConfigError, sweep

    assert main(["sweep", "--grid", "lr=0.1,0.01,0.1", "--epochs", "1", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "grid lr: the value 0.1 is given twice" in err[0], err
    assert not (tmp_path / "s" / "points").exists() or not any((tmp_path / "s" / "points").iterdir())
    with pytest.raises(ConfigError, match=r"grid hidden: the value \[16\] is given twice"):
        sweep({"epochs": 1}, {"hidden": [[16], [16]]}, str(tmp_path / "t"))


def test_two_sweep_values_that_name_one_point_file_are_refused(tmp_path):
    """'tanh, relu' and 'tanh,relu' are one point's file (activation=tanh,relu.json): the second row was a copy of
    the first one's result (and two workers wrote the one file)."""
    from nablanet.experiments import ConfigError, sweep

    with pytest.raises(ConfigError, match=r"grid activation: the values 'tanh, relu' and 'tanh,relu' name one point"):
        sweep({"epochs": 1, "hidden": [4, 4]}, {"activation": ["relu,tanh", "tanh, relu", "tanh,relu"]},
              str(tmp_path / "s"))
    assert not (tmp_path / "s" / "points").exists() or not any((tmp_path / "s" / "points").iterdir())


@pytest.mark.parametrize("scale, shift, message", [
    (-5, 0, "y[0, 0] is -5"), (2, 0, "row 0 sums to 2"), (1, 0.5, "row 0 sums to 2.5")])
def test_cross_entropy_targets_that_are_not_probability_rows_are_refused(scale, shift, message):
    from nablanet.nn import MLP
    from nablanet.train import fit

    X = np.random.default_rng(0).normal(size=(12, 3))
    onehot = np.eye(3)[np.arange(12) % 3]
    # -5 * one-hot rows were taken, and the cost reported was negative
    with pytest.raises(ValueError, match=re.escape("training data: cross-entropy targets must be one-hot or "
                                                   "probability rows (entries >= 0, each row summing to 1); " + message)):
        fit(MLP([3, 4, 3], seed=0), X, scale * onehot + shift, loss="cross_entropy", epochs=1)
    smoothed = (0.9 * onehot + 0.1 / 3).astype(np.float32)  # label smoothing in float32: a probability row
    assert fit(MLP([3, 4, 3], seed=0), X, smoothed, loss="cross_entropy", epochs=1).history["loss"][0] > 0
    thirds = np.full((12, 3), 0.333)  # probabilities written to three decimals (rows of 0.999)
    assert fit(MLP([3, 4, 3], seed=0), X, thirds, loss="cross_entropy", epochs=1).history["loss"][0] > 0


def test_explain_evaluates_literals_as_floats_so_huge_powers_overflow_at_once(capsys):
    import time

    start = time.perf_counter()
    assert main(["explain", "--expr", "sin(x)*9**9**9", "--graph", os.devnull + ".png"]) == 2  # hung forever
    err = capsys.readouterr().err.strip().splitlines()
    assert time.perf_counter() - start < 30
    assert len(err) == 1 and "'sin(x)*9**9**9' at x = 1: no finite value (overflow" in err[0], err
    from nablanet.explain import ExpressionError, explain_expression

    with pytest.raises(ExpressionError, match="no finite value"):  # a complex number in Python's arithmetic
        explain_expression("(-8)**0.5 * x", 1.0)


@pytest.mark.parametrize("expr", ["x * 1e309", "x + " + "9" * 400])
def test_explain_refuses_a_literal_beyond_float_range_as_other_non_finite_results(expr, capsys, tmp_path):
    assert main(["explain", "--expr", expr, "--graph", str(tmp_path / "g.png")]) == 2  # printed inf, exit 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is beyond a float's range" in err[0], err
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("expr, at, kind, exact", [
    ("x**1.5", 0.0, "forward", 0.0), ("x**0.5", 1e-7, "central", 0.5 / 1e-7 ** 0.5),
    ("sqrt(x)", 1e-300, "central", 0.5e150), ("sqrt(-x)", -1e-300, "central", -0.5e150),
    ("log(x)", 2.0, "central", 0.5)])
def test_explain_keeps_the_difference_check_inside_the_domain(expr, at, kind, exact, capsys, tmp_path):
    """x**1.5 at 0 said "float() argument must be ... not 'complex'"; sqrt(x) at 1e-300 "no finite value"."""
    from nablanet.explain import explain_expression

    rep = explain_expression(expr, at)[1]
    assert rep["difference"] == kind and rep["reverse"] == pytest.approx(exact, rel=1e-12, abs=1e-12)
    assert rep["central_difference"] == pytest.approx(exact, rel=0.1, abs=2e-3)
    assert main(["explain", "--expr", expr, "--at", repr(at), "--graph", str(tmp_path / "g.png")]) == 0
    out = capsys.readouterr().out
    assert f"{kind} difference" in out and ("(h = " in out) == (at != 2.0), out  # a step other than 1e-6 is said
    assert ("one-sided: f has no finite value at x - h" in out) == (kind == "forward"), out
