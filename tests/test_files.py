"""nablanet.files: atomic writes, and which of them are flushed to the disk."""

import json
import os

import pytest

from nablanet.experiments import run_training


def test_a_run_folder_flushes_to_disk_the_state_it_resumes_from_not_its_outputs(tmp_path, monkeypatch):
    """config.json and the checkpoint (what --resume reads) are flushed (fsync) before their rename and their folder
    after it; the metrics and plots, which --resume writes again, are renamed into place without the flushes; every
    file is whole either way, and none is left half written."""
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
    assert sorted(renamed) == ["checkpoint.npz", "config.json"], flushed
    assert flushed.count("run") == 2  # the folder, after each of the two renames
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
