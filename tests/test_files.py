"""nablanet.files: atomic writes, and which of them are flushed to the disk."""

import errno
import json
import os
import time

import pytest

from nablanet import files
from nablanet.experiments import run_training

CFG = {"data": "franke", "n": 60, "hidden": [4], "epochs": 2}


def test_a_run_folder_flushes_to_disk_the_state_it_resumes_from_not_its_outputs(tmp_path, monkeypatch):
    """The checkpoint (what --resume reads; it holds the run's settings too) is flushed (fsync) before its rename,
    not its folder after it; config.json, the metrics and plots are renamed into place without the flush
    (--resume reads the settings from the checkpoint when a crash left config.json empty); every file is whole
    either way, and none is left half written."""
    import nablanet.files as files

    flushed = []
    real = os.fsync

    def fsync(fd):
        flushed.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc to name the file behind a descriptor")
    monkeypatch.setattr(files.os, "fsync", fsync)
    out = tmp_path / "run"
    run_training({"data": "breast_cancer", "hidden": [4], "epochs": 2}, out_dir=str(out), plots=True)
    renamed = [n.split("-", 3)[-1] for n in flushed if n.startswith(files.TEMP_PREFIX)]
    assert renamed == ["checkpoint.npz"], flushed
    assert "run" not in flushed  # not the folder (the renames reach the disk with the next commit)
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
    assert len(calls) == 1 and json.loads(path.read_text()) == {"a": 2}  # the file, not its folder
    with pytest.raises(RuntimeError):
        with files.atomic_path(path, durable=False) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("stopped while writing")
    assert json.loads(path.read_text()) == {"a": 2} and os.listdir(tmp_path) == ["a.json"]


def test_the_metrics_are_written_once_the_run_folders_state_is_in_place(tmp_path, monkeypatch):
    """kill -9 at any moment leaves a folder that --resume (or a new run) takes: the metrics, not flushed, are
    renamed only after config.json and the last checkpoint are in place, even on a slow disk (a version that
    flushed on a thread renamed metrics.json first: a folder neither --resume nor --out took)."""
    import nablanet.experiments as E

    real_fsync = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (time.sleep(0.05), real_fsync(fd))[1])
    seen, real = [], E.write_run
    monkeypatch.setattr(E, "write_run", lambda out_dir, *a, **k: (seen.append(sorted(os.listdir(out_dir))),
                                                                    real(out_dir, *a, **k))[1])
    run_training(CFG, out_dir=tmp_path / "run", plots=False)
    assert seen == [["checkpoint.npz", "config.json"]]


def test_a_failed_flush_of_the_only_checkpoint_leaves_no_run(tmp_path, monkeypatch):
    """A full disk found by the last checkpoint's flush is the save's error: a new run with no checkpoint in
    place leaves no run (config.json removed), and no metrics."""
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


def test_json_files_are_laid_out_one_member_a_line_with_lists_of_values_on_one_line():
    """files.dumps: what json.dumps(indent=2) reads as (the same document), each list of numbers on one line
    (a history of many epochs is one line per metric); non-string keys and ``default=`` as json.dumps has them."""
    doc = {"final": {"loss": 0.5, "ok": True, "none": None, "empty": {}, "nothing": []},
           "history": {"loss": [0.3, 0.2, float("inf")], "acc": [0.5, 0.75]},
           "rows": [{"lr": 1e-3, "hidden": [16, 8]}, {"lr": 1e-2}], "grid": [[1, 2], [3]], "name": "é"}
    text = files.dumps(doc)
    assert json.loads(text) == json.loads(json.dumps(doc))
    lines = text.splitlines()
    assert '    "loss": [0.3, 0.2, Infinity],' in lines and '      "hidden": [16, 8]' in lines
    assert lines[0] == "{" and lines[1] == '  "final": {' and lines[-1] == "}"
    assert text.isascii()  # as json.dumps: \u00e9
    assert json.loads(files.dumps({1: "a", "b": [1]})) == {"1": "a", "b": [1]}
    assert json.loads(files.dumps({"when": object}, default=lambda o: "obj")) == {"when": "obj"}
    assert files.dumps([]) == "[]" and files.dumps({}) == "{}" and files.dumps(3) == "3"


def test_json_layout_takes_jsons_options_and_refuses_its_own_layout_options():
    """sort_keys and ensure_ascii hold for the whole document (found by review: only for the innermost values);
    indent, separators and cls are refused; a cycle is json's ValueError."""
    doc = {"b": {"d": 1, "c": [2, 1]}, "a": {"\u00e9": "\u00f1"}}
    text = files.dumps(doc, sort_keys=True)
    assert json.loads(text) == doc and text.index('"a"') < text.index('"b"') and text.index('"c"') < text.index('"d"')
    text = files.dumps(doc, ensure_ascii=False)
    assert "\u00e9" in text and "\u00f1" in text and json.loads(text) == doc
    for bad in ({"indent": 4}, {"separators": (",", ":")}, {"cls": json.JSONEncoder}):
        with pytest.raises(TypeError, match=next(iter(bad))):
            files.dumps(doc, **bad)
    loop = []
    loop.append([loop])
    with pytest.raises(ValueError, match="Circular"):
        files.dumps(loop)
