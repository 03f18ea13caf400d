"""Sweep workers: the same results as one process, a few workers reused for every point, and BLAS/OpenMP
thread limits inherited from the sweep (its own limits and environment as they were afterwards)."""

import json
import os
import sys

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from nablanet import experiments as E

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

    if E.default_threads(1) < 2:
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
