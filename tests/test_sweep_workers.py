"""Sweep workers: the same results as one process, a few workers reused for every point, and BLAS/OpenMP
thread limits inherited from the sweep (its own limits and environment as they were afterwards)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from nablanet import experiments as E
from nablanet.validate import NablanetError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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


def _record_contexts(monkeypatch):
    """The multiprocessing contexts the sweeps make (each keeps the worker processes started through it)."""
    made = []

    class Recording(E._RecordingContext):
        def __init__(self, ctx):
            super().__init__(ctx)
            made.append(self)

    monkeypatch.setattr(E, "_RecordingContext", Recording)
    return made


@pytest.mark.parametrize("threads", [None, 2])
def test_jobs_2_is_this_process_and_one_worker_training_every_point_as_one_process_with_their_thread_limit(
        tmp_path, monkeypatch, threads):
    """``jobs=2`` starts one worker, once, and trains in this process too: the two train all 6 points, each with
    the sweep's thread limit (``threads``, else the cores divided among the 2 processes), the worker without
    starting a BLAS thread pool; the rows equal ``jobs=1``'s.  (Two workers were started, and this process
    waited for them.)"""
    log = tmp_path / "points.jsonl"
    _record_points(monkeypatch, log)
    made = _record_contexts(monkeypatch)
    env = {k: os.environ.get(k) for k in E.THREAD_ENV}
    before = _limits()
    two = E.sweep(BASE, GRID, tmp_path / "two", jobs=2, threads=threads)
    assert _limits(before) == before and {k: os.environ.get(k) for k in E.THREAD_ENV} == env  # restored
    assert len(made) == 1 and len(made[0].processes) == 1
    worker = made[0].processes[0].pid
    recs = _records(log)
    assert len(recs) == 6 and {r["pid"] for r in recs} <= {os.getpid(), worker}
    assert os.getpid() in {r["pid"] for r in recs}  # this process trained some of the points itself
    want = threads or E.default_threads(2)
    assert all(r["threads"] == [want] for r in recs), recs
    if sys.platform.startswith("linux"):
        # the worker's main thread and its parent watchdog: the limit set in the worker would have restarted
        # OpenBLAS's pool, stopped by the fork (a thread per library, busy-waiting its first ~0.1 s)
        assert all(r["os_threads"] == 2 for r in recs if r["pid"] == worker), recs
    log.unlink()
    one = E.sweep(BASE, GRID, tmp_path / "one", jobs=1, threads=threads)
    assert {r["pid"] for r in _records(log)} == {os.getpid()} and len(made) == 1  # no pool at all
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
    """Points are trained in the order of their estimated cost (epochs, steps, rows times weights), longest
    first, so the sweep does not end waiting for a long point started last; the rows stay in grid order."""
    log = tmp_path / "points.jsonl"
    _record_points(monkeypatch, log)
    grid = {"epochs": [1, 6], "hidden": [[2], [64, 64]]}
    res = E.sweep({"data": "breast_cancer"}, grid, tmp_path / "s", jobs=2)
    started = [(r["point"]["epochs"], tuple(r["point"]["hidden"])) for r in _records(log)]
    # this process and the worker take the first two at once, then the others as they free up
    assert set(started[:2]) == {(6, (64, 64)), (6, (2,))} and set(started[2:]) == {(1, (64, 64)), (1, (2,))}, started
    assert [(r["epochs"], r["hidden"]) for r in res["results"]] == [(1, [2]), (1, [64, 64]), (6, [2]), (6, [64, 64])]
    cost = lambda e, h: E._point_cost({"data": "breast_cancer", "epochs": e, "hidden": list(h)})  # noqa: E731
    assert cost(6, (64, 64)) > cost(6, (2,)) > cost(1, (64, 64)) > cost(1, (2,)) > 0
    E._DATA_CACHE.clear()


class _Bar:
    """A progress bar that keeps what it is shown."""

    def __init__(self, total, desc=None, unit=None, initial=0):
        self.total, self.n, self.steps, self.closed = total, initial, [], False

    def update(self, k=1):
        self.steps.append(k)
        self.n += k

    def close(self):
        self.closed = True


def test_twenty_points_are_each_trained_once_by_this_process_or_the_worker_with_jobs_1s_results(
        tmp_path, monkeypatch):
    """Both processes claim the next point when free: each of 20 points is trained exactly once (a record, a
    file), most by each process, and the progress bar counts each point once; the numbers are ``jobs=1``'s,
    exactly (the same seeds)."""
    import nablanet.train.callbacks as C

    log = tmp_path / "points.jsonl"
    _record_points(monkeypatch, log)
    made = _record_contexts(monkeypatch)
    bars = []
    monkeypatch.setattr(C, "progress_bar", lambda *a, **k: bars.append(_Bar(*a, **k)) or bars[-1])
    grid = {"lr": [1e-3, 2e-3, 3e-3, 5e-3, 1e-2], "l2": [0.0, 1e-4, 1e-3, 1e-2]}
    base = {**BASE, "epochs": 3}
    two = E.sweep(base, grid, tmp_path / "two", jobs=2, progress=True)
    recs = _records(log)
    key = lambda p: json.dumps([p["lr"], p["l2"]])  # noqa: E731
    assert len(recs) == 20 and len({key(r["point"]) for r in recs}) == 20  # every point once, none twice
    by = {pid: sum(r["pid"] == pid for r in recs) for pid in (os.getpid(), made[0].processes[0].pid)}
    assert sum(by.values()) == 20 and by[os.getpid()] > 0, by
    files = sorted(os.listdir(tmp_path / "two" / "points"))
    assert len(files) == 20 and all(f.endswith(".json") for f in files)
    bar = bars[0]
    assert bar.total == 20 and bar.n == 20 and bar.closed and all(k >= 0 for k in bar.steps), bar.steps
    log.unlink()
    one = E.sweep(base, grid, tmp_path / "one", jobs=1)
    rows = lambda res: {key(r): {k: v for k, v in r.items() if k.startswith("test_")} for r in res["results"]}  # noqa: E731
    assert rows(two) == rows(one) and len(rows(one)) == 20
    timeless = lambda r: {k: v for k, v in r.items() if k != "train_seconds"}  # noqa: E731
    assert timeless(two["best"]) == timeless(one["best"]) and two["plots"] == one["plots"]


def test_a_sweep_with_spawned_workers_gets_the_same_results(tmp_path, monkeypatch):
    """Where workers are spawned (macOS, Windows), the shared claims reach them when they start: the worker
    trains points too (this process waits in its first point until the worker has written one), every point
    is trained once, with ``jobs=1``'s results."""
    import multiprocessing

    real = multiprocessing.get_context
    monkeypatch.setattr(multiprocessing, "get_context", lambda method=None: real(method or "spawn"))
    made = _record_contexts(monkeypatch)
    pdir = tmp_path / "two" / "points"
    run, waited = E._run_point, []

    def _run_point(args):  # runs in this process only: a spawned worker imports the module afresh
        deadline = time.monotonic() + 120
        while not waited and not os.listdir(pdir) and time.monotonic() < deadline:
            time.sleep(0.02)
        waited.append(len(os.listdir(pdir)))
        return run(args)

    monkeypatch.setattr(E, "_run_point", _run_point)
    grid = {"lr": [1e-3, 3e-3, 1e-2], "l2": [0.0, 1e-3]}
    two = E.sweep(BASE, grid, tmp_path / "two", jobs=2)
    assert made[0].get_start_method() == "spawn" and len(made[0].processes) == 1
    assert waited[0] >= 1 and 1 <= len(waited) < 6  # the worker trained the others
    monkeypatch.setattr(E, "_run_point", run)
    one = E.sweep(BASE, grid, tmp_path / "one", jobs=1)
    timeless = lambda res: [{k: v for k, v in r.items() if k != "train_seconds"} for r in res["results"]]  # noqa: E731
    assert timeless(two) == timeless(one) and len(os.listdir(pdir)) == 6


def test_a_claim_waits_out_a_lock_its_dead_holder_never_released():
    """A worker killed while it held the claims' lock never gives it back: the sweep process, wanting the next
    point, calls its check every 0.1 s (which raises the pool's error) instead of waiting forever; the workers
    still alive are stopped by the sweep."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    claims = E._Claims(ctx, 3)
    assert claims.claim() == 0 and claims.claim() == 1

    def hold_and_die():
        claims._shared.get_lock().acquire()
        os._exit(0)

    p = ctx.Process(target=hold_and_die)
    p.start()
    p.join(30)
    calls = []

    def waiting():
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("a worker died")

    with pytest.raises(RuntimeError, match="a worker died"):
        claims.claim(waiting)
    assert len(calls) == 3


def test_ctrl_c_while_this_process_trains_a_point_stops_the_worker(tmp_path, monkeypatch):
    """SIGINT arriving while the sweep process trains one of its points and the worker another: the
    KeyboardInterrupt stops the worker, leaves no temporary file, restores the thread limits; the point the
    worker finished stays, and the same sweep run again trains only the others."""
    import multiprocessing
    import signal

    out = tmp_path / "s"
    parent = os.getpid()
    started = tmp_path / "worker-in-its-second-point"
    run, calls = E._run_point, []

    def _run_point(args):
        if os.getpid() != parent:  # the worker: its first point, then a second it is in when the signal comes
            calls.append(args)
            if len(calls) == 1:
                return run(args)
            started.touch()
            time.sleep(60)
            raise AssertionError("the worker was not stopped")
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(parent, signal.SIGINT)  # Ctrl-C, in the middle of this process's point
        time.sleep(5)
        raise AssertionError("no KeyboardInterrupt")

    _run_point.__module__, _run_point.__qualname__ = run.__module__, run.__qualname__
    monkeypatch.setattr(E, "_run_point", _run_point)
    made = _record_contexts(monkeypatch)
    env = {k: os.environ.get(k) for k in E.THREAD_ENV}
    before = _limits()
    grid = {"lr": [1e-3, 2e-3, 3e-3, 5e-3]}
    with pytest.raises(KeyboardInterrupt):
        E.sweep(BASE, grid, out, jobs=2)
    assert started.exists() and not made[0].processes[0].is_alive() and multiprocessing.active_children() == []
    assert [n for d in (out, out / "points") for n in os.listdir(d) if n.startswith(".nablanet-tmp-")] == []
    assert _limits(before) == before and {k: os.environ.get(k) for k in E.THREAD_ENV} == env
    assert len(os.listdir(out / "points")) == 1  # the worker's first point
    monkeypatch.undo()
    log = tmp_path / "points.jsonl"
    _record_points(monkeypatch, log)
    res = E.sweep(BASE, grid, out, jobs=1)
    assert res["skipped"] == 1 and len(_records(log)) == 3
    assert [r["lr"] for r in res["results"]] == grid["lr"] and all("error" not in r for r in res["results"])


@pytest.mark.parametrize("setting,value", [("jobs", -1), ("jobs", 0), ("threads", -2), ("threads", 0),
                                           ("threads", 1.5)])
def test_sweep_refuses_a_bad_worker_or_thread_count_before_any_training(tmp_path, setting, value):
    """jobs=-1 ran no point and failed on a KeyError ('lr=0.001'); threads=-2 went into OMP_NUM_THREADS."""
    with pytest.raises(NablanetError, match=setting):
        E.sweep(BASE, {"lr": [1e-3, 1e-2]}, tmp_path / "s", **{setting: value})
    assert not (tmp_path / "s" / "points").exists() or not os.listdir(tmp_path / "s" / "points")


def _stray_then_die(monkeypatch, pdir):
    """The worker's first point dies (as the out-of-memory killer would end it) in the middle of writing a file of
    the sweep folder; the sweep process's first point waits for that (so the worker has a point to die in)."""
    from nablanet.files import atomic_path

    run, parent = E._run_point, os.getpid()

    def _run_point(args):
        if os.getpid() != parent:
            with atomic_path(os.path.join(pdir, "half.json")) as tmp:
                with open(tmp, "w") as f:
                    f.write('{"lr": ')
                os._exit(3)
        deadline = time.monotonic() + 60
        while os.path.isdir(pdir) and not any(n.endswith("half.json") for n in os.listdir(pdir)) \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        return run(args)

    _run_point.__module__, _run_point.__qualname__ = run.__module__, run.__qualname__
    monkeypatch.setattr(E, "_run_point", _run_point)


def test_a_worker_that_dies_stops_the_sweep_with_one_clear_error_and_leaves_only_whole_files(tmp_path, monkeypatch):
    """The error says a worker died and where the finished points are (it said "A process in the process pool
    was terminated abruptly"); no worker is left, no temporary file, the thread limits are restored; the
    sweep run again goes on from the finished points."""
    import multiprocessing

    out = tmp_path / "s"
    _stray_then_die(monkeypatch, str(out / "points"))
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


def test_the_exit_code_of_a_dead_worker_is_reported_when_the_pools_thread_reaps_it_first():
    """The race behind a flaky "died (killed: ...)": the pool's own thread joins a dead worker while the sweep
    stops the pool, so the sweep's poll of it finds no child; the worker looks alive, is "killed" to no effect,
    and its exit code (3) arrives a moment later.  It was left out of the error as killed by the sweep."""
    import signal

    class Reaped:  # a worker that died with exit code 3, reaped by another thread that records the code late
        def __init__(self):
            self.known = time.monotonic() + 0.05
            self.signals = []

        @property
        def exitcode(self):
            return 3 if time.monotonic() >= self.known else None

        def is_alive(self):
            return self.exitcode is None

        def join(self, timeout=None):
            pass  # as ``Popen.wait`` when ``waitpid`` finds no child: returns at once, the code not yet known

        def terminate(self):
            self.signals.append(signal.SIGTERM)

        def kill(self):
            self.signals.append(signal.SIGKILL)

    class Pool:
        def shutdown(self, wait=True, cancel_futures=False):
            pass

    dead = Reaped()
    assert E._stop_workers(Pool(), [dead]) == [3]
    assert dead.signals == [signal.SIGTERM, signal.SIGKILL]  # both to no effect: it was gone


def _die_in_worker_after(monkeypatch, name):
    """``E.<name>`` runs as it would, then, in a worker, the worker dies (exit code 3) before it can answer."""
    real, parent = getattr(E, name), os.getpid()

    def dying(*args):
        out = real(*args)
        if os.getpid() != parent:
            os._exit(3)
        return out

    dying.__module__, dying.__qualname__ = real.__module__, real.__qualname__  # pickled by name
    monkeypatch.setattr(E, name, dying)


@pytest.mark.parametrize("name", ["_train_claimed_points", "_sweep_plot_job"])
def test_a_worker_that_dies_once_its_work_is_done_loses_nothing(tmp_path, monkeypatch, name):
    """A worker that dies after writing every point it trained (or after drawing its plot, before answering)
    loses nothing: the sweep reads its points from their files (draws the plot itself), warns once, and ends
    with the same results and plots as one process.  It failed with "died ... while training"."""
    import multiprocessing

    base = {"data": "franke", "n": 60, "hidden": [4], "epochs": 2}  # regression: 3 metrics, one plot a worker's
    grid = {"lr": [1e-3, 3e-3, 1e-2, 3e-2]}
    one = E.sweep(base, grid, tmp_path / "one", jobs=1)
    _die_in_worker_after(monkeypatch, name)
    with pytest.warns(RuntimeWarning, match=r"sweep worker process died \(exit code 3\)") as caught:
        two = E.sweep(base, grid, tmp_path / "two", jobs=2)
    assert len(caught) == 1
    timeless = lambda res: [{k: v for k, v in r.items() if k != "train_seconds"} for r in res["results"]]  # noqa: E731
    assert timeless(two) == timeless(one) and two["plots"] == one["plots"]
    assert all(os.path.exists(tmp_path / "two" / p) for p in two["plots"])
    assert multiprocessing.active_children() == []
    for d in (tmp_path / "two", tmp_path / "two" / "points"):
        assert not [n for n in os.listdir(d) if n.startswith(".nablanet-tmp-")]


def test_a_worker_dying_mid_point_when_older_files_of_the_point_exist_is_still_the_error(tmp_path, monkeypatch):
    """Failed points are tried again, and their files of the earlier sweep (errors) are still there: a worker
    that dies inside one of them fails the sweep; the old records are not its results (found by review: the
    sweep passed them off as "whole")."""
    from concurrent.futures.process import BrokenProcessPool

    base = {"data": "franke", "n": 60, "hidden": [4], "epochs": 2}
    grid = {"lr": [1e-3, 3e-3, 1e-2, 3e-2]}
    real = E._run_point
    monkeypatch.setattr(E, "_run_point", lambda args: real(args) if args[1]["lr"] == 1e-3 else {"error": "OSError"})
    assert ["error" in r for r in E.sweep(base, grid, tmp_path, jobs=1)["results"]] == [False, True, True, True]
    monkeypatch.setattr(E, "_run_point", real)
    real_rw, parent = E._run_and_write_point, os.getpid()

    def rw(args):
        if os.getpid() != parent:
            os._exit(3)  # the worker dies in its first point
        time.sleep(0.5)  # (the sweep process slow: the worker, however late it starts, claims a point)
        return real_rw(args)

    rw.__module__, rw.__qualname__ = real_rw.__module__, real_rw.__qualname__
    monkeypatch.setattr(E, "_run_and_write_point", rw)
    with pytest.raises(BrokenProcessPool, match=r"died \(exit code 3"):
        E.sweep(base, grid, tmp_path, jobs=2)


def test_a_worker_that_dies_idle_before_the_plots_are_dealt_is_one_warning_and_the_plots_are_drawn(
        tmp_path, monkeypatch):
    """The worker answered with its points, then died idle before the plots were dealt: the sweep process
    draws them all, with one warning (it was silent, and the broken pool kept)."""
    import threading

    base = {"data": "franke", "n": 60, "hidden": [4], "epochs": 2}
    grid = {"lr": [1e-3, 3e-3, 1e-2, 3e-2]}
    real = E._train_claimed_points
    died = str(tmp_path / "died")

    def answer_then_die():
        def die():
            time.sleep(0.2)  # once the answer is sent
            open(died, "w").close()
            os._exit(3)

        out = real()
        threading.Thread(target=die, daemon=True).start()
        return out

    answer_then_die.__module__, answer_then_die.__qualname__ = real.__module__, real.__qualname__
    monkeypatch.setattr(E, "_train_claimed_points", answer_then_die)
    real_sum = E._summarize

    def summarize(*args):  # the plots are dealt after this: once the worker is dead
        deadline = time.monotonic() + 30
        while not os.path.exists(died) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        return real_sum(*args)

    monkeypatch.setattr(E, "_summarize", summarize)
    with pytest.warns(RuntimeWarning, match=r"died \(exit code 3\)") as caught:
        res = E.sweep(base, grid, tmp_path / "s", jobs=2)
    assert len(caught) == 1 and len(res["plots"]) == 3
    assert all(os.path.exists(tmp_path / "s" / p) for p in res["plots"])


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


_SIGNAL_TO_ANOTHER_THREAD = """
import os, signal, sys, threading, time
from concurrent.futures import Future
from nablanet.experiments import _result

threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # a thread that takes SIGINT
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # ... the only one: this one blocks it from now on
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()  # (made here: it blocks it too)
try:
    _result(Future())  # a worker's result that never comes
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="needs pthread_sigmask")
def test_a_sweep_waiting_for_its_workers_acts_on_a_signal_another_thread_received():
    """The kernel gives a process's SIGINT to any thread that does not block it; Python runs the handler on the
    main thread, but a main thread blocked on a lock (a worker's result, without a timeout) is not woken: a
    Ctrl-C to a sweep waiting for its workers was lost and the sweep hung. It waits in slices now."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        r = subprocess.run([sys.executable, "-c", _SIGNAL_TO_ANOTHER_THREAD], env=env, capture_output=True,
                           text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the wait ignored the signal (hung)")
    assert r.stdout.strip() == "interrupted", r.stderr[-2000:]


def test_a_sweep_with_forkserver_workers_finishes(tmp_path, monkeypatch):
    """A forkserver worker's parent is the fork server, not the sweep: _worker_init's check that its parent is
    the sweep made every worker exit 1, and the sweep, after training every point itself, failed with "a sweep
    worker process died (exit code 1: out of memory ...)". Such a worker watches the sweep by its id now."""
    import multiprocessing

    get = multiprocessing.get_context
    monkeypatch.setattr(multiprocessing, "get_context", lambda method=None: get("forkserver"))
    grid = {"lr": [1e-3, 2e-3, 3e-3, 4e-3]}
    res = E.sweep(BASE, grid, tmp_path / "s", jobs=2)
    assert [r["lr"] for r in res["results"]] == grid["lr"] and all("error" not in r for r in res["results"])
