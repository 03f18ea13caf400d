"""Bad input, by class: every flag of every subcommand, every explain mode, the Python API's odd values.

Each class is closed by one mechanism (the parser's error(), explain's floating-point guard, the
shared checks of nablanet.validate); these tests walk the whole surface rather than a few examples.
"""

import argparse
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
    (["sweep", "--schedule", "x"], "argument --schedule: expected one of constant, step, .*cosine, got 'x'$"),
    (["compare", "--scale", "q"], "argument --scale: expected one of standard, minmax, none, got 'q'$"),
    (["surface", "--directions", "x"], "argument --directions: expected one of random, pca, got 'x'$"),
    (["surface", "--data", "nosuch"], "argument --data: expected one of neuron, franke, .*, got 'nosuch'$"),
    (["surface", "--plane-data", "nosuch"], "argument --plane-data: expected a data set: .*, got 'nosuch'$"),
    (["surface", "--w-range", "5,1"], "argument --w-range: expected LO < HI, got '5,1'$"),
    (["train", "--lr"], "argument --lr: expected one argument"),
    (["train", "--epochs", "3", "--nosuch", "1"], "unrecognized arguments: --nosuch 1"),
    (["explain", "--sizes", "2,1000,2"], "argument --sizes: .*at most 64 units each.*, got '2,1000,2'"),
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


@pytest.mark.parametrize("expr, at", [("x**1000", 10.0), ("1/x", 0.0), ("log(x)", -1.0), ("exp(x)", 1000.0)])
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
