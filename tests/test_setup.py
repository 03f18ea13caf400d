"""Set-up: `make demo` installs only what the demo needs and says what it does; `make test` adds the test and peer
extras; pyproject.toml builds without setuptools' license deprecation warning."""

import os
import pathlib
import re
import subprocess
import sys
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOT_AT_RUN_TIME = ("torch", "mpi4py", "mpich", "pytest", "hypothesis", "autograd", "jax", "ipykernel", "nbclient",
                   "ipywidgets", "IPython")


def makefile_rules():
    """{target: (prerequisites, recipe lines)} of the Makefile, with its variables (:= and ?=) expanded."""
    text = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+)\s*[:?]?=\s*(.*)$", text, re.M))

    def expand(s):
        for _ in range(5):
            s = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), s)
        return s

    rules, target = {}, None
    for line in text.splitlines():
        if line.startswith("\t") and target is not None:
            rules[target][1].append(expand(line.strip()))
        elif re.match(r"^[^\s#=][^=]*:(?!=)", line) and not line.startswith("."):
            head, _, prereqs = line.partition(":")
            target = expand(head.strip())
            rules[target] = ([expand(p) for p in prereqs.replace("|", " ").split()], [])
        elif not line.strip() or line.startswith("#"):
            continue
        else:
            target = None
    return rules


def installs(rules, target, seen=None):
    """Every `pip install` line that making ``target`` may run (its recipes and its prerequisites')."""
    seen = set() if seen is None else seen
    if target in seen or target not in rules:
        return []
    seen.add(target)
    prereqs, recipe = rules[target]
    lines = [r for r in recipe if "pip install" in r]
    for p in prereqs:
        lines += installs(rules, p, seen)
    return lines


def project():
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_make_demo_installs_the_run_time_dependencies_only_and_make_test_the_extras():
    rules = makefile_rules()
    demo = installs(rules, "demo")
    assert demo and all(re.search(r"pip install .*-e \.$", line) for line in demo), demo  # no [extras]
    assert all("--progress-bar on" in line for line in demo), demo  # pip's progress, not silence
    deps = " ".join(project()["project"]["dependencies"]).lower()
    assert not [name for name in NOT_AT_RUN_TIME if name.lower() in deps], deps
    runtime = next(t for t in rules if ".runtime-" in t)
    assert any(r.startswith("@echo") for r in rules[runtime][1]), "the install step says what it installs"
    test = " ".join(installs(rules, "test"))
    assert all(extra in test for extra in ("dev", "peers", "mpi")), test


def test_the_demo_imports_nothing_beyond_the_run_time_dependencies(tmp_path):
    """What `make demo` runs (the default training and the notes' example) never imports a test or peer package."""
    code = (
        "import runpy, sys\n"
        "from nablanet.cli import main\n"
        f"assert main(['train', '--out', {str(tmp_path / 'demo')!r}, '--no-progress']) == 0\n"
        f"runpy.run_path({str(ROOT / 'examples' / 'notes_autodiff.py')!r}, run_name='__main__')\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({NOT_AT_RUN_TIME!r})))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout


def test_pyproject_builds_without_the_license_deprecation_warning(monkeypatch):
    """An SPDX `license = "MIT"` (setuptools >= 77), not the deprecated table `{text = "MIT"}` or a License
    classifier: reading the configuration as setuptools does raises no warning at all."""
    pytest.importorskip("setuptools")
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    meta = project()
    assert isinstance(meta["project"]["license"], str)
    assert not [c for c in meta["project"].get("classifiers", []) if c.startswith("License ::")]
    assert any(re.fullmatch(r"setuptools>=(7[7-9]|[89]\d)(\.\d+)*", r) for r in meta["build-system"]["requires"])
    monkeypatch.chdir(ROOT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist = apply_configuration(Distribution(), str(ROOT / "pyproject.toml"))
    assert dist.get_name() == "nablanet"
