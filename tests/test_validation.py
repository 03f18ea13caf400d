"""Bad input gets one clear answer, the same from every entry point (nablanet.validate)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nablanet import validate as V
from nablanet.cli import main
from nablanet.experiments import SETTINGS, check_config
from nablanet.nn import MLP, Dense, Dropout
from nablanet.optim import SGD, Adam, get_optimizer
from nablanet.train import Trainer, fit

X = np.random.default_rng(0).standard_normal((16, 3))
Y = X.sum(1)

NON_FINITE = [float("nan"), float("inf"), -float("inf")]


@pytest.mark.parametrize("check, good, bad", [
    (V.positive_number, [1e-9, 3, np.float32(0.5)], [0, -1, *NON_FINITE, "1", None, True]),
    (V.non_negative_number, [0, 2.5], [-1e-12, *NON_FINITE, "0"]),
    (V.probability, [0, 0.99], [1, -0.1, *NON_FINITE]),
    (V.open_fraction, [0.2], [0, 1, float("nan")]),
    (V.positive_int, [1, np.int64(7)], [0, -5, 2.5, 2.0, "3", True, float("nan")]),
    (V.sizes, [[64, 32], (8,), [], 5], [[64, -1], [2.5], "64", [0], {"a": 1}]),
    (V.boolean, [True, np.bool_(False)], ["no", "false", 0, 1, None]),
    (V.seed, [None, 0, 2**40, np.random.default_rng(0)], [-1, 1.5, "seed"]),
])
def test_each_kind_accepts_what_it_should_and_names_what_it_refuses(check, good, bad):
    for v in good:
        check(v, "x")
    for v in bad:
        with pytest.raises((V.InvalidValueError, V.InvalidTypeError), match=r"^x: expected .*, got "):
            check(v, "x")


@pytest.mark.parametrize("text, sizes", [("64,32", [64, 32]), ("16x32", [16, 32]), (" 8 ", [8]), ("none", []),
                                         ("", []), ("0", [])])
def test_layer_sizes_text_reads_each_size_once(text, sizes):
    assert V.sizes.parse(text, "hidden") == sizes


@pytest.mark.parametrize("text", [",", "x", "64,,32", "64,", "16xx32", ",64"])
def test_layer_sizes_text_with_an_empty_size_is_refused(text):
    """A stray comma or x was dropped: ',' or 'x' was no hidden layer at all (linear regression, silently)."""
    with pytest.raises(V.InvalidValueError, match="hidden: expected layer sizes"):
        V.sizes.parse(text, "hidden")


@pytest.mark.parametrize("value, says", [("none", r"\[\] for none"), ("64,32", r"\[64, 32\]"), (0, r"\[\] for none"),
                                          ([0], r"\[\] for none")])
def test_layer_sizes_as_values_say_how_to_write_them(value, says):
    """A configuration file's (or the API's) sizes are a list: 'none' and '64,32' as strings, or 0, were refused with
    'expected layer sizes like 64,32 (or none)', the very spellings refused; the message says how to write them."""
    with pytest.raises((V.InvalidValueError, V.InvalidTypeError), match=says):
        V.sizes(value, "hidden")


def test_errors_are_value_or_type_errors_and_one_family():
    assert issubclass(V.InvalidValueError, ValueError) and issubclass(V.InvalidTypeError, TypeError)
    assert issubclass(V.ConfigError, V.NablanetError) and issubclass(V.FileFormatError, ValueError)
    assert issubclass(V.MissingFileError, FileNotFoundError) and issubclass(V.MissingFileError, ValueError)


def test_no_silent_truncation_or_nan_models_in_the_python_api():
    for kw in ({"lr": float("nan")}, {"lr": float("inf")}, {"l2": float("nan")}, {"l1": -1.0}, {"batch_size": 2.5},
               {"epochs": 2.5}, {"epochs": -1}, {"seed": -3}, {"validation_split": 1.0}):
        with pytest.raises((ValueError, TypeError), match=next(iter(kw)).replace("lr", "learning rate")):
            fit(MLP([3, 4, 1], seed=0), X, Y, optimizer="sgd", **{"lr": 0.01, "epochs": 1, **kw})
    for make in (lambda: MLP([3, 2.5, 1]), lambda: MLP([3, -4, 1]), lambda: Dense(3, 0), lambda: Dropout(float("nan")),
                 lambda: SGD(lr=0.1, momentum=float("nan")), lambda: Adam(beta1=1.0), lambda: Adam(eps=0),
                 lambda: get_optimizer("adam", lr=-1), lambda: Trainer(MLP([3, 1]), l2=float("inf"))):
        with pytest.raises((ValueError, TypeError)):
            make()


@settings(max_examples=80, deadline=None)
@given(key=st.sampled_from(sorted(SETTINGS)),
       value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, -1), st.text(max_size=5),
                       st.booleans(), st.lists(st.integers(-3, 3), max_size=3), st.just(2.5)))
def test_any_configuration_value_is_accepted_normalized_or_refused_naming_its_key(key, value):
    try:
        cfg = check_config({key: value})
    except (V.InvalidValueError, V.InvalidTypeError) as e:
        assert f"setting {key}:" in str(e) and repr(value)[:20].strip("'") in str(e)
        return
    v = cfg[key]  # accepted: then it is of the kind the setting holds, never NaN or a truncated count
    if isinstance(v, float):
        assert math.isfinite(v)
    if key in ("epochs", "n", "patience", "seed", "degree") and v is not None:
        assert isinstance(v, int) and v == value


BAD_TOML = [
    ('lr = "fast"', "setting lr: expected a number > 0, got 'fast'"),
    ("lr = nan", "setting lr: expected a number > 0, got nan"),
    ('batch_norm = "no"', "setting batch_norm: expected true or false, got 'no'"),
    ("epochs = 2.7", "setting epochs: expected an integer >= 1, got 2.7"),
    ("batch_size = 2.5", "setting batch_size: expected an integer >= 0 or none, got 2.5"),
    ("hidden = [64, -1]", "setting hidden: expected layer sizes"),
    ("patience = -1", "setting patience: expected an integer >= 1 or none, got -1"),
    ('optimizer = "adamm"', "setting optimizer: expected one of sgd, "),
    ("bogus = 1", "unknown setting\\(s\\) bogus"),
    ("lr = ", "not valid TOML"),
]


@pytest.mark.parametrize("text, message", BAD_TOML)
def test_toml_values_are_checked_like_flags_naming_file_key_value(tmp_path, capsys, text, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text + "\n")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(cfg) in err
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "r").exists()  # refused before anything was written


@pytest.mark.parametrize("argv, message", [
    (["train", "--n", "-5", "--data", "franke"], "--n: expected an integer >= 1, got -5"),
    (["train", "--patience", "-1"], "--patience: expected an integer >= 1, got -1"),
    (["train", "--batch-size", "2.5"], "--batch-size: expected an integer >= 0"),
    (["train", "--lr", "inf"], "--lr: expected a number > 0, got inf"),
    (["train", "--config", "."], "is a folder"),
    (["explain", "--expr", "x**1000", "--at", "10"], "'x\\*\\*1000' at x = 10"),
    (["explain", "--expr", "1/x", "--at", "0"], "at x = 0"),
    (["sweep", "--metric", "test_acuracy", "--grid", "lr=0.1,0.2"], "--metric: expected one of"),
    (["sweep", "--data", "iris", "--metric", "test_mse", "--grid", "lr=0.1,0.2", "--epochs", "1"],
     "--metric: expected one of test_accuracy, test_loss, got 'test_mse'"),
    (["sweep", "--data", "iris", "--grid", "lr=0.1,nan"], "argument --grid: lr: expected a number > 0, got nan"),
    (["sweep", "--data", "iris", "--grid", "loss=mse,cross_entropy", "--epochs", "1"],
     "grid point loss=mse: iris is a classification data set"),
])
def test_bad_flags_and_mistakes_found_before_training(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nablanet: error:"), err
    import re

    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing written


def test_out_onto_a_file_and_unexpected_errors_are_one_line(tmp_path, monkeypatch, capsys):
    f = tmp_path / "f"
    f.write_text("x")
    assert main(["train", "--out", str(f)]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err

    def boom(args):
        raise RuntimeError("something nobody expected")

    import nablanet.cli as cli

    monkeypatch.setattr(cli, "cmd_explain", boom)
    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), boom))
    assert main(["explain"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "RuntimeError: something nobody expected" in err


def _with_func(parser, func):
    for action in parser._actions:
        if getattr(action, "choices", None) and "explain" in action.choices:
            action.choices["explain"].set_defaults(func=func)
    return parser


def test_diverging_training_stops_with_one_line_and_no_warnings(tmp_path, capsys, recwarn):
    code = main(["train", "--data", "franke", "--n", "200", "--optimizer", "sgd", "--lr", "1e6", "--epochs", "3",
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and ("epoch" in err or "diverged" in err), err
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_an_idx_file_with_zero_images_is_refused_naming_it(tmp_path):
    import struct

    from nablanet.data import load_mnist

    (tmp_path / "train-images-idx3-ubyte").write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, 0, 28, 28))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 0))
    with pytest.raises(V.FileFormatError, match="train-images-idx3-ubyte: holds no images"):
        load_mnist(tmp_path)


def test_damaged_run_and_sweep_files_are_one_error_naming_them(tmp_path, capsys):
    run = tmp_path / "r"
    base = ["train", "--data", "xor", "--hidden", "4", "--epochs", "2", "--no-progress"]
    assert main(base + ["--out", str(run)]) == 0
    capsys.readouterr()
    (run / "config.json").write_text("")  # with a checkpoint, which holds the settings: resumed from them
    with pytest.warns(UserWarning, match="read from its checkpoint"):
        assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    (run / "config.json").write_text("")
    (run / "checkpoint.npz").rename(run / "kept.npz")  # without one: the error naming the file
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "config.json: damaged run configuration (it is empty)" in err
    (run / "kept.npz").rename(run / "checkpoint.npz")
    (run / "config.json").write_text('{"lr": "fast"}')
    assert main(["train", "--resume", str(run)]) == 2
    assert "config.json: damaged run configuration" in capsys.readouterr().err
    (run / "stray").mkdir()
    (run / ".nablanet-tmp-abc-checkpoint.npz").write_bytes(b"half")
    assert main(base + ["--out", str(run), "--overwrite"]) == 0
    assert not (run / ".nablanet-tmp-abc-checkpoint.npz").exists() and (run / "stray").is_dir()


# ------------------------------------------------------------------ initializers' parameters


@pytest.mark.parametrize("spec, message", [
    ({"name": "normal", "std": float("nan")}, "initializer normal: std: expected a number >= 0, got nan"),
    ({"name": "normal", "std": -1}, "initializer normal: std: expected a number >= 0, got -1"),
    ({"name": "normal", "std": 0.1, "mean": float("inf")}, "initializer normal: mean: expected a finite number"),
    ({"name": "uniform", "low": 1, "high": 0}, "initializer uniform: expected low <= high, got low=1, high=0"),
    ({"name": "uniform", "low": float("-inf")}, "initializer uniform: low: expected a finite number"),
    ({"name": "constant", "value": float("nan")}, "initializer constant: value: expected a finite number"),
    ({"name": "normal", "sd": 1}, "initializer 'normal': unknown parameter(s) sd; it takes std, mean"),
    ({"std": 1}, "initializer: a dict needs a 'name'"),
])
def test_every_initializer_parameter_is_checked_when_the_network_is_built(spec, message):
    from nablanet.nn import MLP

    # std=nan was accepted: predictions were NaN, and fit then blamed the learning rate
    with pytest.raises((ValueError, TypeError)) as e:
        MLP([3, 4, 1], init=spec)
    assert message in str(e.value), str(e.value)
    assert MLP([3, 4, 1], init={"name": "normal", "std": 0.5, "mean": -1}).n_params == 21


def test_seeds_numpy_takes_and_equal_uniform_bounds_are_accepted():
    """A SeedSequence or a bit generator seeds a network as an int does (numpy.random.default_rng takes them; they
    worked before seeds were checked); uniform(a, a) is the equal weights, as normal(std=0) is."""
    import numpy as np

    from nablanet.nn import MLP

    for seed in (np.random.SeedSequence(3), np.random.PCG64(3)):
        a = MLP([3, 4, 1], seed=seed)
        b = MLP([3, 4, 1], seed=np.random.default_rng(np.random.SeedSequence(3)))
        np.testing.assert_array_equal(a.params[0]["W"], b.params[0]["W"])
    w = MLP([3, 4, 1], init={"name": "uniform", "low": 0.1, "high": 0.1}).params[0]["W"]
    assert (w == np.float32(0.1)).all()

