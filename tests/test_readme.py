"""The README's Python examples run as written: every ```python block, in order, in one namespace (as a reader
pastes them into one session), in a fresh folder.  So the API tour cannot drift from the code."""

import pathlib
import re
from decimal import Decimal

import matplotlib.figure
import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def test_every_python_example_in_the_readme_runs(tmp_path, monkeypatch):
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 8, "README.md lost its Python examples"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    ns = {"__name__": "__readme__"}
    for i, code in enumerate(blocks, 1):
        first = code.strip().splitlines()[0]
        try:
            exec(compile(code, f"README.md python block {i} ({first})", "exec"), ns)
        except Exception as e:  # name the block, so a drifted example is found at once
            raise AssertionError(f"README.md python block {i} ({first}) failed: {type(e).__name__}: {e}") from e
    # what the tour says it shows
    np.testing.assert_allclose(ns["params"]["w"], [1.0, -2.0, 0.5], atol=1e-6)
    assert ns["history"]["val_accuracy"][-1] > 0.95
    assert ns["D_train"].shape == (400, 21) and np.all(ns["D_train"][:, 0] == 1)
    assert ns["test_mse"]["OLS"] < 0.02 and ns["test_mse"]["Ridge"] < 0.02  # noise 0.1: MSE near 0.01
    assert ns["run"]["test_accuracy"] > 0.9 and (tmp_path / "runs" / "bc" / "learning_curves.png").exists()
    assert ns["res"]["plots"] == ["heatmap_test_accuracy.png", "heatmap_test_loss.png"]
    assert (tmp_path / "runs" / "bc-sweep" / "heatmap_test_accuracy.png").exists()
    assert isinstance(ns["fig"], matplotlib.figure.Figure) and (tmp_path / "curves.png").exists()


def test_the_readmes_nablanet_train_outputs_are_what_it_prints(tmp_path, capsys, monkeypatch):
    """Each `$ nablanet train ...` quoted with its output in the README prints that output today: the summary line
    (up to the time it took) and every test metric to the digits shown. The quoted outputs had drifted when the
    defaults changed (lr=0.001 and 0.969 printed where the defaults give lr=0.003 and 0.975)."""
    import shlex

    from nablanet.cli import main

    monkeypatch.chdir(tmp_path)
    runs = []
    for block in re.findall(r"^```text\n(.*?)^```", README.read_text(), re.S | re.M):
        for cmd, out in re.findall(r"^\$ (nablanet train[^\n]*)\n(.*?)(?=^\$ |\Z)", block, re.S | re.M):
            runs.append((cmd, out))
    assert len(runs) >= 2, "README.md lost its nablanet train examples"
    for i, (cmd, out) in enumerate(runs):
        assert main(shlex.split(cmd)[1:] + ["--out", str(tmp_path / f"r{i}"), "--no-plots", "--no-progress"]) == 0
        printed = capsys.readouterr().out
        quoted = dict(re.findall(r"^(test_\w+)\s+(\S+)$", out, re.M))
        assert quoted, cmd
        got = dict(re.findall(r"^(test_\w+)\s+(\S+)$", printed, re.M))
        assert {k: got.get(k) for k in quoted} == quoted, (cmd, printed)
        summary = [line for line in out.splitlines() if line.startswith("trained ")]
        for line in summary:
            assert printed.splitlines()[0].split(" in ")[0] == line.split(" in ")[0], (cmd, printed)


def _compare_mismatches(tables, computed):
    """What the quoted compare tables show that ``computed`` (compare's results, by command) does not: each value of
    the nablanet and linear rows must be the computed one rounded to the digits shown (within half a unit of its
    last digit), every row present."""
    wrong = []
    for cmd, out in tables:
        got = {r["model"]: r for r in computed[cmd]["results"]}
        header, *lines = [line for line in out.splitlines() if line.strip()]
        cols = header.split()[1:]  # model, then the metric columns
        for line in lines:
            name, values = re.match(r"^(.*?)\s{2,}(\S.*)$", line).groups()
            if name.startswith(("scikit-learn", "PyTorch")):
                continue
            if name not in got:
                wrong.append((cmd, name, "no such row", list(got)))
                continue
            for col, shown in zip(cols, values.split()):
                if col != "train_seconds":
                    half = 0.5 * 10.0 ** Decimal(shown).as_tuple().exponent
                    if not abs(got[name][col] - float(shown)) <= half * (1 + 1e-9):
                        wrong.append((cmd, name, col, shown, got[name][col]))
    return wrong


def test_the_readmes_nablanet_compare_tables_are_what_it_computes():
    """Each `$ nablanet compare ...` table in the README: the nablanet network's row and the linear baselines' rows
    (OLS, Ridge and Lasso with the alpha they name) are what compare computes today, to the digits shown. The peers'
    rows are left out (they need PyTorch; tests/test_experiments.py holds them to nablanet's). A value off by two in
    its last digit is caught (a tolerance of 6e-5 passed 0.01398 for 0.01396 and 0.00222 for 0.002178)."""
    import shlex

    from nablanet.cli import _config_from, build_parser
    from nablanet.experiments import compare

    tables = re.findall(r"^\$ (nablanet compare[^\n]*)\n(.*?)^```", README.read_text(), re.S | re.M)
    assert len(tables) >= 2, "README.md lost its nablanet compare examples"
    computed = {}
    for cmd, _ in tables:
        args = build_parser().parse_args(shlex.split(cmd)[1:])
        computed[cmd] = compare(_config_from(args), degree=args.linear_degree, include=())
    assert _compare_mismatches(tables, computed) == []
    cmd, out = tables[0]  # the nablanet row's first value, two units off in its last digit: found
    line = next(line for line in out.splitlines() if line.startswith("nablanet"))
    value = line.split()[3]
    exp = Decimal(value).as_tuple().exponent
    wrong = line.replace(value, str(Decimal(value) + 2 * Decimal(10) ** exp), 1)
    assert _compare_mismatches([(cmd, out.replace(line, wrong))], computed), wrong


def test_the_readmes_nablanet_sweep_outputs_are_what_it_prints(tmp_path, capsys, monkeypatch):
    """Each `$ nablanet sweep ...` in the README prints the lines quoted under it (the table rows and the best point;
    '...' stands for lines left out)."""
    import shlex

    from nablanet.cli import main

    monkeypatch.chdir(tmp_path)
    runs = []
    for block in re.findall(r"^```text\n(.*?)^```", README.read_text(), re.S | re.M):
        runs += re.findall(r"^\$ (nablanet sweep[^\n]*)\n(.*?)(?=^\$ |\Z)", block, re.S | re.M)
    assert len(runs) >= 2, "README.md lost its nablanet sweep examples"
    for i, (cmd, out) in enumerate(runs):
        argv = shlex.split(cmd)[1:] + ["--out", str(tmp_path / f"s{i}"), "--jobs", "1", "--no-progress"]
        assert main(argv) == 0
        printed = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
        quoted = [" ".join(line.split()) for line in out.splitlines() if line.strip() and line.strip() != "..."]
        assert quoted, cmd
        for line in quoted:
            assert line in printed, (cmd, line, printed)
