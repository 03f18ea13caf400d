"""nablanet.files: atomic writes, and which of them are flushed to the disk."""

import errno
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from nablanet import files
from nablanet.experiments import run_training

CFG = {"data": "franke", "n": 60, "hidden": [4], "epochs": 2}


def test_a_run_folder_flushes_to_disk_the_state_it_resumes_from_not_its_outputs(tmp_path, monkeypatch):
    """config.json and the checkpoint (what --resume reads) are flushed (fsync) before their rename and their folder
    after it; the metrics and plots, which --resume writes again, are renamed into place without the flushes; every
    file is whole either way, and none is left half written."""
    import nablanet.files as files

    flushed, on_main = [], []
    real = os.fsync

    def fsync(fd):
        flushed.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        on_main.append(threading.current_thread() is threading.main_thread())
        real(fd)

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc to name the file behind a descriptor")
    monkeypatch.setattr(files.os, "fsync", fsync)
    out = tmp_path / "run"
    run_training({"data": "breast_cancer", "hidden": [4], "epochs": 2}, out_dir=str(out), plots=True)
    renamed = [n.split("-", 3)[-1] for n in flushed if n.startswith(files.TEMP_PREFIX)]
    assert sorted(renamed) == ["checkpoint.npz", "config.json"], flushed
    assert flushed.count("run") == 2  # the folder, after each of the two renames
    assert not any(on_main)  # while the model trained and the metrics were written (files.flushing_in_background)
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "config.json", "confusion_matrix.png", "learning_curves.png",
                                       "metrics.csv", "metrics.json"]
    assert json.loads((out / "metrics.json").read_text())["final"]["epochs"] == 2


def test_atomic_writes_without_the_flushes_still_replace_whole_files(tmp_path, monkeypatch):
    import nablanet.files as files

    calls = []
    monkeypatch.setattr(files.os, "fsync", lambda fd: calls.append(fd))
    path = tmp_path / "a.json"
    files.atomic_write_json(path, {"a": 1}, durable=False)
    assert calls == [] and json.loads(path.read_text()) == {"a": 1}
    files.atomic_write_json(path, {"a": 2})
    assert len(calls) == 2 and json.loads(path.read_text()) == {"a": 2}
    with pytest.raises(RuntimeError):
        with files.atomic_path(path, durable=False) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("stopped while writing")
    assert json.loads(path.read_text()) == {"a": 2} and os.listdir(tmp_path) == ["a.json"]


def _slow_disk(monkeypatch, gate=None, seconds=0.0):
    """fsync waits for ``gate`` (an Event) or ``seconds``, then flushes; returns the list of (file, on the main
    thread) it was called for."""
    real, calls = os.fsync, []

    def fsync(fd):
        if gate is not None:
            assert gate.wait(30)
        time.sleep(seconds)
        calls.append((os.path.basename(os.readlink(f"/proc/self/fd/{fd}")),
                      threading.current_thread() is threading.main_thread()))
        real(fd)

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc to name the file behind a descriptor")
    monkeypatch.setattr(files.os, "fsync", fsync)
    return calls


def test_a_background_write_lands_before_the_next_write_and_settle_waits_for_it(tmp_path, monkeypatch):
    """durable="background": written now, flushed and renamed on another thread; this thread's next write
    (durable or not) and settle() wait for it first, so the files land in the order written."""
    gate = threading.Event()
    calls = _slow_disk(monkeypatch, gate)
    order, real_replace = [], os.replace
    monkeypatch.setattr(files.os, "replace", lambda a, b: (order.append(os.path.basename(b)), real_replace(a, b)))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    files.atomic_write_json(a, {"a": 1}, durable="background")
    assert not a.exists() and len(os.listdir(tmp_path)) == 1  # written, not yet flushed nor in its place
    threading.Timer(0.2, gate.set).start()
    files.atomic_write_json(b, {"b": 1}, durable=False)  # waits for a first
    assert order == ["a.json", "b.json"] and [main for _, main in calls] == [False, False]  # a, then its folder
    files.atomic_write_json(a, {"a": 2}, durable="background")
    files.settle()
    files.settle()  # nothing pending: returns at once
    assert json.loads(a.read_text()) == {"a": 2} and json.loads(b.read_text()) == {"b": 1}
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json"]
    with pytest.raises(ValueError, match="durable"):
        files.atomic_write_json(a, {}, durable="later")


def test_a_background_flush_that_fails_is_raised_by_settle_naming_the_file_and_leaves_the_old_one(tmp_path,
                                                                                                  monkeypatch):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    files.atomic_write_json(a, {"a": 0})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    files.atomic_write_json(a, {"a": 1}, durable="background")
    with pytest.raises(OSError, match="No space left on device") as err:
        files.atomic_write_json(b, {"b": 1}, durable=False)  # the earlier write's error, before this one
    assert err.value.filename == str(a) and err.value.errno == errno.ENOSPC
    assert json.loads(a.read_text()) == {"a": 0} and os.listdir(tmp_path) == ["a.json"]
    files.settle()  # raised once


def test_ctrl_c_while_settle_waits_still_lets_the_background_write_land(tmp_path):
    """The flush thread is never waited for with Thread.join (on CPython 3.11 a Ctrl-C there takes the running
    thread for ended, and the process exits without it: found by review); the process exits once it is done."""
    script = r"""
import os, signal, sys, threading, time
from nablanet import files
real = os.fsync
os.fsync = lambda fd: (time.sleep(1.0), real(fd))[1]  # a slow disk
files.atomic_write_json(sys.argv[1], {"a": 1}, durable="background")
threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    files.settle()
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path / "a.json")], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))})
    assert "interrupted" in r.stdout, r.stderr
    assert os.listdir(tmp_path) == ["a.json"] and json.loads((tmp_path / "a.json").read_text()) == {"a": 1}


def test_a_forked_process_does_not_wait_for_its_parents_background_write(tmp_path, monkeypatch):
    gate = threading.Event()
    _slow_disk(monkeypatch, gate)
    files.atomic_write_json(tmp_path / "a.json", {"a": 1}, durable="background")
    pid = os.fork()
    if pid == 0:  # the child: its own write goes ahead (it has no flush thread to wait for)
        try:
            gate.set()  # (the child's copy: its own durable write's flushes)
            files.atomic_write_json(tmp_path / "child.json", {"c": 1}, durable=False)
            files.settle()
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0 and (tmp_path / "child.json").exists()
    gate.set()
    files.settle()
    assert json.loads((tmp_path / "a.json").read_text()) == {"a": 1}


def test_checkpoints_faster_than_the_disk_leave_one_pending_at_most(tmp_path, monkeypatch):
    """Each checkpoint waits for the one before: one temporary checkpoint at most besides the one being written
    (found by review: they queued up, 40 at once)."""
    _slow_disk(monkeypatch, seconds=0.03)
    out, peak, stop = tmp_path / "run", [0], threading.Event()

    def watch():
        while not stop.is_set():
            with __import__("contextlib").suppress(OSError):
                peak[0] = max(peak[0], sum(n.startswith(files.TEMP_PREFIX) for n in os.listdir(out)))
            time.sleep(0.002)

    threading.Thread(target=watch, daemon=True).start()
    run_training({**CFG, "epochs": 20}, out_dir=out, plots=False, checkpoint_seconds=0)
    stop.set()
    assert peak[0] <= 2 and not [n for n in os.listdir(out) if n.startswith(files.TEMP_PREFIX)]


def test_the_metrics_are_written_once_the_run_folders_state_is_in_place(tmp_path, monkeypatch):
    """kill -9 at any moment leaves a folder that --resume (or a new run) takes: the metrics, not flushed, are
    renamed only after config.json and the last checkpoint are in place (found by review: metrics.json before
    config.json, a folder neither --resume nor --out took)."""
    import nablanet.experiments as E

    _slow_disk(monkeypatch, seconds=0.05)
    seen, real = [], E.write_run
    monkeypatch.setattr(E, "write_run", lambda out_dir, *a, **k: (seen.append(sorted(os.listdir(out_dir))),
                                                                    real(out_dir, *a, **k))[1])
    run_training(CFG, out_dir=tmp_path / "run", plots=False)
    assert seen == [["checkpoint.npz", "config.json"]]


def test_a_failed_flush_of_the_only_checkpoint_leaves_no_run(tmp_path, monkeypatch):
    """A full disk found by the last checkpoint's flush is the save's error, as when it was flushed at once: a
    new run with no checkpoint in place leaves no run (config.json removed), and no metrics."""
    real = os.fsync

    def fsync(fd):
        if "checkpoint.npz" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc to name the file behind a descriptor")
    monkeypatch.setattr(files.os, "fsync", fsync)
    with pytest.raises(OSError, match="No space left") as err:
        run_training(CFG, out_dir=tmp_path / "run", plots=False)
    assert err.value.filename == str(tmp_path / "run" / "checkpoint.npz")
    assert os.listdir(tmp_path / "run") == []


def test_checkpoint_durable_is_checked():
    from nablanet.train import Checkpoint
    from nablanet.validate import InvalidValueError

    assert Checkpoint("c.npz", durable="background").durable == "background"
    with pytest.raises(InvalidValueError, match="durable"):
        Checkpoint("c.npz", durable="later")
