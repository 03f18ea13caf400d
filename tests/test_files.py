"""nablanet.files: atomic writes, and which of them are flushed to the disk."""

import errno
import json
import os
import threading

import pytest

from nablanet.experiments import run_training


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


def test_durable_writes_in_a_flushing_block_are_flushed_and_renamed_by_another_thread_in_order(tmp_path, monkeypatch):
    """Inside ``flushing_in_background`` the writer goes on while the disk is slow; the files are renamed in the
    order written, and every one is in its place, whole, once the block is left."""
    import nablanet.files as files

    events, gate = [], threading.Event()
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        assert gate.wait(30)  # a slow disk: the writer goes on meanwhile
        events.append(("fsync", threading.current_thread() is threading.main_thread()))
        real_fsync(fd)

    def replace(a, b):
        events.append(("replace", os.path.basename(b)))
        real_replace(a, b)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os, "replace", replace)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    with files.flushing_in_background():
        files.atomic_write_json(a, {"a": 1})
        files.atomic_write_json(b, {"b": 1})
        files.atomic_write_json(a, {"a": 2})
        assert not a.exists() and not b.exists()  # written, not yet flushed nor renamed
        gate.set()
    assert [e for e in events if e[0] == "replace"] == [("replace", "a.json"), ("replace", "b.json"),
                                                        ("replace", "a.json")]
    assert [e for e in events if e[0] == "fsync"] == [("fsync", False)] * 6  # each file, then its folder
    assert json.loads(a.read_text()) == {"a": 2} and json.loads(b.read_text()) == {"b": 1}
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json"]
    files.wait_for_flushes()  # outside a block: nothing to wait for


def test_a_flush_that_fails_in_the_background_is_raised_once_and_leaves_the_old_file(tmp_path, monkeypatch):
    """A full disk found by the background flush: leaving the block raises it, naming the file; that file keeps
    its old content, the writes after it are dropped, no temporary file is left; an error of the block's own is
    the one raised."""
    import nablanet.files as files

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    files.atomic_write_json(a, {"a": 0})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(OSError, match="No space left on device") as err:
        with files.flushing_in_background():
            files.atomic_write_json(a, {"a": 1})
            files.wait_for_flushes()
            files.atomic_write_json(b, {"b": 1})  # after the error: raised here, at once
    assert err.value.filename == str(a) and err.value.errno == errno.ENOSPC
    assert json.loads(a.read_text()) == {"a": 0} and os.listdir(tmp_path) == ["a.json"]
    with pytest.raises(KeyError):
        with files.flushing_in_background():
            files.atomic_write_json(a, {"a": 1})
            raise KeyError("the block's own")
    assert json.loads(a.read_text()) == {"a": 0} and os.listdir(tmp_path) == ["a.json"]
