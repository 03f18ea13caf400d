"""Run HIPS autograd's own test suite against nablanet, in two modes: through a module shim, and renamed.

autograd's tests (from its source distribution) are run with pytest, in either or both of two modes:

- ``shim``: ``import autograd`` is served by ``tools/autograd_shim.py``, a pure module mapping (``autograd`` is
  ``nablanet``, each ``autograd.X`` module is ``nablanet.X``; see that file's docstring), never by any
  installed autograd.
- ``rename``: every word ``autograd`` in the test sources is replaced by ``nablanet`` (``from autograd.core
  import make_vjp`` becomes ``from nablanet.core import make_vjp``), no shim: what an outside evaluator
  mapping autograd to nablanet the simplest way runs. A run that imports autograd anyway fails.

For each mode the script prints the passed/failed/skipped figure and every failure, and compares the failures
with ``EXPECTED_FAILURES`` below, the ones the README documents with their reasons (the same in both modes).

Run (from the repository root; ``make autograd-suite`` does the first):

    python tools/autograd_suite.py                     # both modes; pip downloads the autograd 1.9.1 sdist
    python tools/autograd_suite.py --rename            # the rename mode only (--shim: the shim mode only)
    python tools/autograd_suite.py --sdist autograd-1.9.1.tar.gz
    python tools/autograd_suite.py --sdist path/to/autograd/tests     # an unpacked tests directory
    python tools/autograd_suite.py -- -k fft -x        # arguments after -- go to pytest

Exit status: 0 when every failure is an expected one, 1 when a test fails unexpectedly, 2 when the suite
could not be run (no sdist, the shim not the ``autograd`` imported, another nablanet than this checkout's,
pytest itself failing). An expected failure that passes is reported (update the list and the README), not an
error. The 13 tests of ``test_ufunc_dispatch.py`` are skipped unless xarray is installed.

Not part of the nablanet package nor of ``make test``; it needs pytest and, without ``--sdist``, pip and
access to the package index.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIM = Path(__file__).resolve().with_name("autograd_shim.py")
DEFAULT_VERSION = "1.9.1"
MODES = ["shim", "rename"]
WORD = re.compile(r"\bautograd\b")

# pytest node id -> why it fails against nablanet (README, "autograd's own test suite").
EXPECTED_FAILURES = {
    "test_fft.py::test_rfftn_odd_not_implemented": "odd-length rfftn is computed (and differentiated), not refused",
}

# A pytest plugin loaded into the run (-p): refuses to start unless nablanet is this checkout's and, in the shim
# mode, ``autograd`` is the shim (that is, nablanet itself); in the rename mode, fails the run if anything
# imported autograd. It records each test's outcome, as JSON lines, in the file named by AGSUITE_REPORT.
PLUGIN = '''
import json
import os
import sys
from pathlib import Path

import pytest

_outcomes = {}
_MODE = os.environ["AGSUITE_MODE"]


def pytest_configure(config):
    import nablanet
    import nablanet.numpy

    repo = Path(os.environ["AGSUITE_REPO"]).resolve()
    if Path(nablanet.__file__).resolve().parent.parent != repo:
        raise pytest.UsageError(f"nablanet was imported from {nablanet.__file__}, not from {repo}")
    if _MODE == "shim":
        import autograd
        import autograd.numpy

        if autograd is not nablanet or autograd.numpy is not nablanet.numpy:
            raise pytest.UsageError(f"autograd was imported from {autograd.__file__}, not the shim in "
                                    f"{os.environ['AGSUITE_SHIM']}")


_RANK = {"passed": 0, "skipped": 1, "failed": 2}


def _note(nodeid, outcome, message):  # a test's outcome is its worst phase's (setup, call, teardown)
    previous = _outcomes.get(nodeid)
    if previous is None or _RANK[outcome] > _RANK[previous[0]]:
        _outcomes[nodeid] = (outcome, message)


def _message(report):
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (file, line, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and crash.message:
        return crash.message.splitlines()[0]
    lines = str(longrepr or "").strip().splitlines()
    return lines[-1] if lines else ""


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        _note(report.nodeid, report.outcome, "" if report.outcome == "passed" else _message(report))


def pytest_collectreport(report):
    if report.outcome == "failed":
        _note(report.nodeid or "<collection>", "failed", "collection error: " + _message(report))


def pytest_sessionfinish(session):
    if _MODE == "rename":
        leaked = sorted(m for m in sys.modules if m == "autograd" or m.startswith("autograd."))
        if leaked:
            _note("<rename: autograd imported>", "failed", "the renamed suite imported " + ", ".join(leaked))
    with open(os.environ["AGSUITE_REPORT"], "w") as out:
        for nodeid, (outcome, message) in _outcomes.items():
            out.write(json.dumps({"nodeid": nodeid, "outcome": outcome, "message": message}) + "\\n")
'''


def fail(message: str) -> None:
    print(f"autograd_suite: {message}", file=sys.stderr)
    raise SystemExit(2)


def download_sdist(version: str, dest: Path) -> Path:
    print(f"==> downloading the autograd {version} sdist with pip", flush=True)
    cmd = [sys.executable, "-m", "pip", "download", f"autograd=={version}", "--no-binary", ":all:", "--no-deps",
           "--quiet", "-d", str(dest)]
    if subprocess.run(cmd).returncode != 0:
        fail(f"pip could not download the autograd {version} sdist; give one with --sdist")
    found = sorted(dest.glob("autograd-*.tar.gz"))
    if not found:
        fail(f"pip left no autograd-*.tar.gz in {dest}")
    return found[0]


def unpack_tests(sdist: Path, dest: Path) -> tuple[Path, str]:
    """The tests directory of ``sdist`` (tarball, unpacked sdist or tests directory) as ``dest``; its name."""
    if sdist.is_dir():
        source = sdist / "tests" if (sdist / "tests").is_dir() else sdist
        if not any(source.glob("test_*.py")):
            fail(f"{sdist} holds no test_*.py files (give autograd's tests directory or its sdist)")
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        named = [p.name for p in (sdist.resolve(), source.resolve().parent) if p.name.startswith("autograd-")]
        return dest, "autograd " + named[0].removeprefix("autograd-") if named else "autograd"
    if not tarfile.is_tarfile(sdist):
        fail(f"{sdist} is neither a directory nor a tar archive")
    with tarfile.open(sdist) as tar:
        # only <top>/tests/...: autograd's own package, also in the sdist, is never unpacked
        members = [m for m in tar.getmembers() if len(Path(m.name).parts) > 2 and Path(m.name).parts[1] == "tests"]
        if not members:
            fail(f"{sdist} has no tests/ directory")
        top = Path(members[0].name).parts[0]
        for member in members:
            member.name = str(Path(*Path(member.name).parts[2:]))
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, members=members, **kwargs)
    return dest, "autograd " + top.removeprefix("autograd-")


def write_shim(dest: Path) -> Path:
    """The shim package in ``dest``, the directory to put first on PYTHONPATH."""
    (dest / "autograd").mkdir(parents=True)
    shutil.copyfile(SHIM, dest / "autograd" / "__init__.py")
    return dest


def rename_autograd(tests: Path) -> int:
    """Replace the word ``autograd`` by ``nablanet`` in every .py file under ``tests``; the number of files changed."""
    changed = 0
    for path in sorted(tests.rglob("*.py")):
        text = path.read_text()
        renamed = WORD.sub("nablanet", text)
        if renamed != text:
            path.write_text(renamed)
            changed += 1
    return changed


def run_mode(mode: str, tests_source: Path, label: str, tmp: Path, pytest_args: list[str]) -> list[dict]:
    """Run autograd's tests (a copy of ``tests_source``) in ``mode``; each test's outcome."""
    work = tmp / mode
    tests = work / "tests"
    shutil.copytree(tests_source, tests)
    (work / "_agsuite_plugin.py").write_text(PLUGIN)
    ini = work / "pytest.ini"  # autograd's own pytest settings need pytest-cov and xdist: not used
    ini.write_text("[pytest]\n")
    report = work / "outcomes.jsonl"
    path = [str(work), str(REPO)]
    env = dict(os.environ, AGSUITE_MODE=mode, AGSUITE_REPO=str(REPO), AGSUITE_REPORT=str(report))
    if mode == "shim":
        shim = write_shim(work / "shim")
        path.insert(0, str(shim))
        env["AGSUITE_SHIM"] = str(shim)
        how = "import autograd served by the shim tools/autograd_shim.py"
    else:
        how = f"'autograd' renamed 'nablanet' in {rename_autograd(tests)} test files, no shim"
    env["PYTHONPATH"] = os.pathsep.join(path)
    cmd = [sys.executable, "-m", "pytest", str(tests), "-c", str(ini), "--rootdir", str(tests),
           "-p", "no:cacheprovider", "-p", "_agsuite_plugin", "-q", "--tb=no", "--no-header", *pytest_args]
    print(f"\n==> [{mode}] {label} tests against nablanet ({REPO}): {how}", flush=True)
    code = subprocess.run(cmd, cwd=work, env=env).returncode
    if code not in (0, 1) or not report.exists():  # 0 all passed, 1 some failed; else pytest itself failed
        fail(f"[{mode}] pytest exited with status {code} without running the suite")
    return [json.loads(line) for line in report.read_text().splitlines()]


def summarize(mode: str, label: str, outcomes: list[dict]) -> int:
    """Print the figure and the failures of one mode; the number of unexpected failures."""
    counts = Counter(o["outcome"] for o in outcomes)
    failed = [o for o in outcomes if o["outcome"] == "failed"]
    unexpected = [o for o in failed if o["nodeid"] not in EXPECTED_FAILURES]
    ran = {o["nodeid"]: o["outcome"] for o in outcomes}
    now_passing = [n for n in EXPECTED_FAILURES if ran.get(n) == "passed"]

    print(f"\n[{mode}] {label} test suite against nablanet: {len(outcomes)} tests, {counts['passed']} passed, "
          f"{counts['failed']} failed, {counts['skipped']} skipped")
    for reason, n in Counter(o["message"] for o in outcomes if o["outcome"] == "skipped").most_common():
        print(f"  skipped {n}: {reason}")
    print(f"[{mode}] {len(failed)} failures ({len(failed) - len(unexpected)} expected):")
    for o in failed:
        why = EXPECTED_FAILURES.get(o["nodeid"])
        tag = f"expected: {why}" if why else f"UNEXPECTED: {o['message']}"
        print(f"  {o['nodeid']}  [{tag}]")
    if now_passing:
        print(f"[{mode}] expected to fail but passed (update EXPECTED_FAILURES and the README):")
        for n in now_passing:
            print(f"  {n}")
    return len(unexpected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sdist", type=Path, help="autograd sdist tarball, unpacked sdist or tests directory "
                        "(default: pip downloads the sdist of --version)")
    parser.add_argument("--version", default=DEFAULT_VERSION, help=f"autograd version to download "
                        f"(default {DEFAULT_VERSION}, the one EXPECTED_FAILURES is for)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--shim", dest="modes", action="store_const", const=["shim"],
                      help="the shim mode only (import autograd served by tools/autograd_shim.py)")
    only.add_argument("--rename", dest="modes", action="store_const", const=["rename"],
                      help="the rename mode only ('autograd' renamed 'nablanet' in the test sources)")
    parser.add_argument("pytest_args", nargs="*", help="after --: extra pytest arguments (-k, -x, ...)")
    args = parser.parse_args(argv)
    modes = args.modes or MODES

    with tempfile.TemporaryDirectory(prefix="agsuite-") as tmp_name:
        tmp = Path(tmp_name)
        sdist = args.sdist if args.sdist is not None else download_sdist(args.version, tmp / "download")
        if not sdist.exists():
            fail(f"--sdist {sdist}: no such file or directory")
        tests, label = unpack_tests(sdist, tmp / "tests")
        results = {mode: run_mode(mode, tests, label, tmp, args.pytest_args) for mode in modes}

    unexpected = {mode: summarize(mode, label, outcomes) for mode, outcomes in results.items()}
    if len(results) > 1:
        print()
        for mode, outcomes in results.items():
            counts = Counter(o["outcome"] for o in outcomes)
            print(f"{mode:>6}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped, "
                  f"{unexpected[mode]} unexpected")
    if any(unexpected.values()):
        print(f"\nunexpected failure(s): {unexpected}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
