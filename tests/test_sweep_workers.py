"""Sweep workers: the same results as one process, a few workers reused for every point, and BLAS/OpenMP
thread limits inherited from the sweep (its own limits and environment as they were afterwards)."""

import json
import os
import sys

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from nablanet import experiments as E
from nablanet.validate import NablanetError

BASE = {"data": "breast_cancer", "hidden": [4], "epochs": 2}
GRID = {"lr": [1e-3, 3e-3, 1e-2], "l2": [0.0, 1e-3]}  # 6 points


def _limits(libs=None):
    """Threads per loaded BLAS/OpenMP library (those of ``libs``, another call's answer, when given)."""
    now = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()}
    return now if libs is None else {k: now[k] for k in libs}


def _record_points(monkeypatch, log):
    """The sweep's point runner, first noting in ``log`` which process runs the point, its BLAS/OpenMP threads
    and how many threads the process has (forked workers run the patched module's function)."""
    run = E._run_point

    def _run_point(args):
        tasks = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
        rec = {"pid": os.getpid(), "threads": sorted({lib["num_threads"] for lib in threadpool_info()}),
               "os_threads": tasks, "point": args[1]}
        with open(log, "a") as f:
            f.write(json.dumps(rec) + "\n")
        return run(args)

    _run_point.__module__, _run_point.__qualname__ = run.__module__, run.__qualname__  # pickled by name
    monkeypatch.setattr(E, "_run_point", _run_point)


def _records(log):
    with open(log) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("threads", [None, 2])
def test_two_workers_train_every_point_as_one_process_and_inherit_their_thread_limit(tmp_path, monkeypatch, threads):
    """2 workers, started once, train all 6 points; each has the sweep's thread limit (``threads``, else the
    cores divided among the workers) without starting a BLAS thread pool; the rows equal ``jobs=1``'s."""
    log = tmp_path / "points.jsonl"
    _record_points(monkeypatch, log)
    env = {k: os.environ.get(k) for k in E.THREAD_ENV}
    before = _limits()
    two = E.sweep(BASE, GRID, tmp_path / "two", jobs=2, threads=threads)
    assert _limits(before) == before and {k: os.environ.get(k) for k in E.THREAD_ENV} == env  # restored
    recs = _records(log)
    assert len(recs) == 6 and len({r["pid"] for r in recs}) == 2 and os.getpid() not in {r["pid"] for r in recs}
    want = threads or E.default_threads(2)
    assert all(r["threads"] == [want] for r in recs), recs
    if sys.platform.startswith("linux"):
        # the main thread and the parent watchdog: the limit set in the worker would have restarted OpenBLAS's
        # pool, stopped by the fork (a thread per library, busy-waiting its first ~0.1 s)
        assert all(r["os_threads"] == 2 for r in recs), recs
    log.unlink()
    one = E.sweep(BASE, GRID, tmp_path / "one", jobs=1, threads=threads)
    assert {r["pid"] for r in _records(log)} == {os.getpid()}
    key = lambda r: json.dumps([r["lr"], r["l2"]])  # noqa: E731
    rows = lambda res: {key(r): {k: v for k, v in r.items() if k.startswith("test_")} for r in res["results"]}  # noqa: E731
    assert rows(two) == rows(one) and len(rows(one)) == 6


def test_thread_limit_for_workers_is_set_and_restored(monkeypatch):
    """The limit (runtime and environment) holds inside, and every variable and limit is as it was after,
    an error included: a variable that was unset is unset again."""
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    with threadpool_limits(1):
        before = _limits()
        with pytest.raises(KeyError), E.limit_threads_for_workers(3):
            assert {lib["num_threads"] for lib in threadpool_info()} == {3}
            assert all(os.environ[k] == "3" for k in E.THREAD_ENV)
            raise KeyError("stop")
        assert _limits(before) == before
    assert os.environ["OMP_NUM_THREADS"] == "7" and "OPENBLAS_NUM_THREADS" not in os.environ


def _blas_threads():
    return sorted({lib["num_threads"] for lib in threadpool_info()})


@pytest.mark.parametrize("how", ["environment", "initializer"])
def test_a_spawned_worker_gets_the_limit_too(how, monkeypatch):
    """Where workers are not forked (spawn: macOS, Windows), the limit reaches them through the environment
    (NumPy loaded in the worker reads it), and the pool initializer sets it where the environment did not."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if E._cores() < 2:
        pytest.skip("one core: OpenBLAS would take 1 thread whatever the environment says")
    ctx = multiprocessing.get_context("spawn")
    for k in E.THREAD_ENV:
        monkeypatch.setenv(k, "2")  # what the worker would get without the limit (OpenBLAS takes at most the cores)
    if how == "environment":
        with E.limit_threads_for_workers(1), ProcessPoolExecutor(1, mp_context=ctx) as ex:
            assert ex.submit(_blas_threads).result(timeout=120) == [1]
    else:
        with ProcessPoolExecutor(1, mp_context=ctx, initializer=E._limit_worker_threads, initargs=(1, False)) as ex:
            assert ex.submit(_blas_threads).result(timeout=120) == [1]


def test_workers_take_the_longest_points_first(tmp_path, monkeypatch):
    """Points are handed to the workers by their estimated cost (epochs, steps, rows times weights), longest
    first, so the sweep does not end waiting for a long point started last; the rows stay in grid order."""
    log = tmp_path / "points.jsonl"
    _record_points(monkeypatch, log)
    grid = {"epochs": [1, 6], "hidden": [[2], [64, 64]]}
    res = E.sweep({"data": "breast_cancer"}, grid, tmp_path / "s", jobs=2)
    started = [(r["point"]["epochs"], tuple(r["point"]["hidden"])) for r in _records(log)]
    # two workers take the first two at once, then the others as they free up
    assert set(started[:2]) == {(6, (64, 64)), (6, (2,))} and set(started[2:]) == {(1, (64, 64)), (1, (2,))}, started
    assert [(r["epochs"], r["hidden"]) for r in res["results"]] == [(1, [2]), (1, [64, 64]), (6, [2]), (6, [64, 64])]
    cost = lambda e, h: E._point_cost({"data": "breast_cancer", "epochs": e, "hidden": list(h)})  # noqa: E731
    assert cost(6, (64, 64)) > cost(6, (2,)) > cost(1, (64, 64)) > cost(1, (2,)) > 0
    E._DATA_CACHE.clear()


@pytest.mark.parametrize("setting,value", [("jobs", -1), ("jobs", 0), ("threads", -2), ("threads", 0),
                                           ("threads", 1.5)])
def test_sweep_refuses_a_bad_worker_or_thread_count_before_any_training(tmp_path, setting, value):
    """jobs=-1 ran no point and failed on a KeyError ('lr=0.001'); threads=-2 went into OMP_NUM_THREADS."""
    with pytest.raises(NablanetError, match=setting):
        E.sweep(BASE, {"lr": [1e-3, 1e-2]}, tmp_path / "s", **{setting: value})
    assert not (tmp_path / "s" / "points").exists() or not os.listdir(tmp_path / "s" / "points")


def _stray_then_die(monkeypatch, pdir, lr):
    """The point ``lr`` dies in its worker (as the out-of-memory killer would end it) in the middle of writing a
    file of the sweep folder."""
    from nablanet.files import atomic_path

    run = E._run_point

    def _run_point(args):
        if args[1]["lr"] == lr:
            with atomic_path(os.path.join(pdir, "half.json")) as tmp:
                with open(tmp, "w") as f:
                    f.write('{"lr": ')
                os._exit(3)
        return run(args)

    _run_point.__module__, _run_point.__qualname__ = run.__module__, run.__qualname__
    monkeypatch.setattr(E, "_run_point", _run_point)


def test_a_worker_that_dies_stops_the_sweep_with_one_clear_error_and_leaves_only_whole_files(tmp_path, monkeypatch):
    """The error says a worker died and where the finished points are (it said "A process in the process pool
    was terminated abruptly"); no worker is left, no temporary file, the thread limits are restored; the
    sweep run again goes on from the finished points."""
    import multiprocessing

    out = tmp_path / "s"
    _stray_then_die(monkeypatch, str(out / "points"), 2e-3)
    env = {k: os.environ.get(k) for k in E.THREAD_ENV}
    before = _limits()
    grid = {"lr": [1e-3, 2e-3, 3e-3]}
    with pytest.raises(RuntimeError, match=r"sweep worker .*died.*exit code 3.*points") as err:
        E.sweep(BASE, grid, out, jobs=2)
    assert str(out / "points") in str(err.value)
    assert multiprocessing.active_children() == []
    stray = [n for d in (out, out / "points") for n in os.listdir(d) if n.startswith(".nablanet-tmp-")]
    assert stray == []
    assert _limits(before) == before and {k: os.environ.get(k) for k in E.THREAD_ENV} == env
    monkeypatch.undo()
    res = E.sweep(BASE, grid, out, jobs=2)
    assert [r["lr"] for r in res["results"]] == grid["lr"] and all("error" not in r for r in res["results"])


def test_limits_restored_when_stopping_the_workers_is_interrupted(tmp_path, monkeypatch):
    """A second Ctrl-C while the workers are being stopped: the environment and limits are still restored."""
    env = {k: os.environ.get(k) for k in E.THREAD_ENV}
    before = _limits()

    def interrupted(*args):
        raise KeyboardInterrupt  # in the sweep process: the first Ctrl-C, as a result arrives

    def stop(ex, procs, real=E._stop_workers):
        real(ex, procs)
        raise KeyboardInterrupt  # the second one

    monkeypatch.setattr(E, "_stop_workers", stop)
    monkeypatch.setattr(E, "_summarize", interrupted)
    with pytest.raises(KeyboardInterrupt) as err:  # kept, as a notebook keeps the last traceback (and its frames)
        E.sweep(BASE, {"lr": [1e-3, 1e-2]}, tmp_path / "s", jobs=2)
    assert _limits(before) == before and {k: os.environ.get(k) for k in E.THREAD_ENV} == env
    assert err.value.__traceback__ is not None


def test_the_default_thread_limit_honours_the_environment(tmp_path, monkeypatch, capsys):
    """OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS cap the default share of the cores (train and
    sweep raised OPENBLAS_NUM_THREADS=1 to all the cores); --threads still overrides; the number of sweep
    workers is still the cores."""
    from nablanet.cli import main

    for k in E.THREAD_ENV:
        monkeypatch.delenv(k, raising=False)
    share = E.default_threads(1)
    assert share == E._cores()
    monkeypatch.setenv("OMP_NUM_THREADS", str(share + 5))
    assert E.default_threads(1) == share  # the share, when the environment allows more
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert E.default_threads(1) == 1 and E.default_threads(4) == 1
    args = ["train", "--data", "breast_cancer", "--hidden", "4", "--epochs", "1", "--no-plots", "--json"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert json.loads(capsys.readouterr().out)["final"]["threads_per_process"] == 1
    if share > 1:
        assert main(args + ["--out", str(tmp_path / "b"), "--threads", "2"]) == 0
        assert json.loads(capsys.readouterr().out)["final"]["threads_per_process"] == 2


@pytest.mark.parametrize("data,metrics", [("breast_cancer", ["test_accuracy", "test_loss"]),
                                          ("franke", ["test_loss", "test_mse", "test_r2"])])
def test_with_workers_every_metric_gets_its_plot_and_the_workers_are_reaped(tmp_path, data, metrics):
    """With 2 workers the plots are drawn by them side by side: each metric's heatmap is a whole PNG, the
    same files as ``jobs=1`` writes; the workers, told to exit without the sweep
    waiting, are gone soon after it returns."""
    import multiprocessing
    import time

    base = {"data": data, "hidden": [4], "epochs": 1, **({"n": 200} if data == "franke" else {})}
    grid = {"lr": [1e-3, 1e-2], "l2": [0.0, 1e-3]}
    res = {jobs: E.sweep(base, grid, tmp_path / str(jobs), jobs=jobs) for jobs in (1, 2)}
    assert res[2]["plots"] == res[1]["plots"] == [f"heatmap_{m}.png" for m in metrics]
    for name in res[2]["plots"]:
        png = (tmp_path / "2" / name).read_bytes()
        assert png.startswith(b"\x89PNG") and png.endswith(b"IEND\xaeB`\x82")
    deadline = time.monotonic() + 30
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert multiprocessing.active_children() == []
