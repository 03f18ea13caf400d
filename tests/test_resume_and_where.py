"""Resuming a run folder stopped before its first checkpoint (config.json is its start), and where of Python values
under jit: each of these failed on an earlier version (found by review)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPIEXEC = shutil.which("mpiexec") or os.path.join(os.path.dirname(sys.executable), "mpiexec")


# --- where of Python values: the conversion runs inside the primitive, on unboxed (traced) values ---------------

def test_jit_of_grad_through_where_with_a_list_condition_and_a_python_float():
    """jit traces Python float leaves; inside the primitive they arrive unboxed, so where([True, False], x, 0.0)
    returns a *list* node and the backward sweep fails (TypeError: Field elements must be 2- or 3-tuples).
    Worked before 2ab89a3; works without jit; autograd converts only when no argument is boxed."""
    f = lambda x: anp.sum(anp.where([True, False], x, 0.0))
    assert nb.grad(f)(3.0) == 1.0
    assert nb.jit(nb.grad(f))(3.0) == 1.0


def test_jit_of_jacobian_and_vjp_through_where_with_a_list_condition():
    g = lambda x: anp.where([True, False], x, 0.0)
    np.testing.assert_array_equal(nb.jit(nb.jacobian(g))(3.0), [1.0, 0.0])
    assert nb.jit(lambda x: nb.vjp(g, x)[1](np.ones(2)))(3.0)[0] == 1.0


def test_jit_gives_the_types_the_unjitted_transform_gives():
    """value_and_grad / jvp of where(True, x, 0.0) at x=3.0: (array(3.), array(1.)) plain, but under jit the
    value (and the jvp's tangent) is a Python float 3.0 (jit's contract: same results, outputs fresh arrays)."""
    f = lambda x: anp.where(True, x, 0.0)
    plain, jitted = nb.value_and_grad(f)(3.0), nb.jit(nb.value_and_grad(f))(3.0)
    assert [type(v) for v in jitted] == [type(v) for v in plain], (plain, jitted)
    plain = nb.jvp(f, (3.0,), (1.0,))
    jitted = nb.jit(lambda a, b: nb.jvp(f, (a,), (b,)))(3.0, 1.0)
    assert [type(v) for v in jitted] == [type(v) for v in plain], (plain, jitted)


# --- resume from config.json ----------------------------------------------------------------------------------

def _cli(*args, cwd, prefix=(), timeout=300):
    env = {**os.environ, "PYTHONPATH": ROOT, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*prefix, sys.executable, "-m", "nablanet.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("optimizer", ["lbfgs", "newton", "hessian_free"])
def test_a_full_batch_run_stopped_before_its_first_checkpoint_resumes(tmp_path, optimizer):
    """config.json holds lr (the default, 0.003) and resolve() refuses "lr" given with a full-batch optimizer,
    so --resume of such a run is refused ('lbfgs takes no learning rate or schedule'), from its config.json as
    from a checkpoint (the latter since 705b252)."""
    args = ["--data", "breast_cancer", "--hidden", "4", "--epochs", "2", "--optimizer", optimizer, "--no-progress",
            "--no-plots"]
    r = _cli("train", *args, "--out", "full", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (tmp_path / "killed").mkdir()
    shutil.copy(tmp_path / "full" / "config.json", tmp_path / "killed" / "config.json")  # what kill -9 leaves
    r = _cli("train", "--resume", "killed", "--no-progress", "--no-plots", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _cli("train", "--resume", "full", "--epochs", "3", "--no-progress", "--no-plots", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def _mpi_ready():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return os.path.exists(MPIEXEC)


@pytest.mark.skipif(not _mpi_ready(), reason="needs mpi4py and mpiexec")
def test_a_named_parallel_mode_survives_a_kill_before_the_first_checkpoint(tmp_path):
    """--parallel shard, kill -9 before the first (time-based) checkpoint: --resume trains from config.json, which
    does not record the mode, so auto chooses (lead here) and the result is not the unbroken run's; before
    5b27163 the start checkpoint of a distributed run recorded 'shard'."""
    from nablanet.train import load

    args = ["--data", "digits", "--hidden", "32", "--batch-size", "64", "--seed", "1", "--no-progress", "--no-plots",
            "--epochs", "300", "--parallel", "shard"]
    mpi = [MPIEXEC, "-n", "2"]
    env = {**os.environ, "PYTHONPATH": ROOT, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([*mpi, sys.executable, "-m", "nablanet.cli", "train", *args, "--out", "broken"],
                         cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    t0 = time.monotonic()
    while not (tmp_path / "broken" / "config.json").exists() and time.monotonic() - t0 < 60 and p.poll() is None:
        time.sleep(0.01)
    time.sleep(0.3)
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait(30)
    # (on main the folder now holds config.json alone: the kill came before the first checkpoint, 30 s by default)
    r = _cli("train", *args, "--out", "full", cwd=tmp_path, prefix=mpi)
    assert r.returncode == 0, r.stderr[-3000:]
    r = _cli("train", "--resume", "broken", "--no-progress", "--no-plots", cwd=tmp_path, prefix=mpi)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = load(tmp_path / "full" / "checkpoint.npz"), load(tmp_path / "broken" / "checkpoint.npz")
    assert (b.parallel, b.parallel_mode) == (a.parallel, a.parallel_mode) == ("shard", "shard")
    np.testing.assert_array_equal(a.get_flat_params(), b.get_flat_params())


def test_a_run_saved_with_dropout_and_no_hidden_layer_still_resumes_and_loads(tmp_path):
    """Such a setting was accepted (and did nothing) before it was refused: the run folder and checkpoint of one
    still resume and load, with a warning that it is left out."""
    import json
    import zipfile

    from nablanet.experiments import run_training
    from nablanet.train import load

    run = tmp_path / "r"
    cfg = {"data": "breast_cancer", "hidden": [], "epochs": 2}
    run_training(cfg, out_dir=run, plots=False)
    saved = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**saved, "dropout": 0.2}))
    with zipfile.ZipFile(run / "checkpoint.npz") as z:  # the checkpoint an older version wrote
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(np.load(run / "checkpoint.npz")["meta"].item())
    meta["model"]["dropout"] = 0.2
    import io

    buf = io.BytesIO()
    np.save(buf, np.array(json.dumps(meta)))
    members["meta.npy"] = buf.getvalue()
    with zipfile.ZipFile(run / "checkpoint.npz", "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    with pytest.warns(UserWarning, match="acts on hidden layers"):
        assert load(run / "checkpoint.npz").model.config()["dropout"] == 0.0
    with pytest.warns(UserWarning, match=r"config.json: dropout=0.2 acts on hidden layers, .* left out"):
        res = run_training({"epochs": 4}, resume=run, plots=False)
    assert res["epochs"] == 4
    whole = run_training({**cfg, "epochs": 4})
    assert res["test_loss"] == whole["test_loss"]  # the run that was never stopped


# --- resume: config.json and the checkpoint describe one training; epochs may only grow -------------------------

def _rewrite_meta(path, edit):
    """Rewrite the metadata of the checkpoint at ``path`` with ``edit(meta)`` (as a hand edit, or an older version,
    would leave it)."""
    import io
    import json
    import zipfile

    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(np.load(path)["meta"].item())
    edit(meta)
    buf = io.BytesIO()
    np.save(buf, np.array(json.dumps(meta)))
    members["meta.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    from nablanet.experiments import run_training

    run = tmp_path_factory.mktemp("runs") / "run"
    run_training({"data": "franke", "n": 60, "hidden": [3], "epochs": 2, "batch_size": 16}, out_dir=run, plots=False)
    return run


def _folder(run):
    return {f: (run / f).read_bytes() for f in sorted(os.listdir(run))}


@pytest.mark.parametrize("key, value, said", [
    ("optimizer", "sgd", "optimizer: 'sgd' here, 'adam' in the checkpoint"),
    ("lr", 0.01, "lr: 0.01 here, 0.003 in the checkpoint"),
    ("schedule", "cosine", "schedule: 'cosine' here, 'constant' in the checkpoint"),
    ("loss", "mae", "loss: 'mae' here, 'mse' in the checkpoint"),
    ("l2", 0.5, "l2: 0.5 here, 0.0 in the checkpoint"),
    ("seed", 1, "seed: 1 here, 0 in the checkpoint"),
    ("n", 70, "n: 70 here, 60 in the checkpoint"),
    ("test_size", 0.3, "test_size: 0.3 here, 0.2 in the checkpoint"),
    ("scale", "minmax", "scale: 'minmax' here, 'standard' in the checkpoint"),
    ("batch_size", 8, "batch_size: 8 here, 16 in the checkpoint"),
    ("noise", 0.1, "noise: 0.1 here, 0.0 in the checkpoint"),
])
def test_resume_refuses_a_config_json_whose_training_differs_from_the_checkpoint(tmp_path, small_run, key, value,
                                                                                  said):
    """A hand-edited config.json trained on with the checkpoint's optimizer while the folder said another, or on
    another train/test split (test rows trained on); refused before anything is written."""
    import json

    from nablanet.experiments import run_training
    from nablanet.validate import FileFormatError

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, key: value}))
    before = _folder(run)
    with pytest.raises(FileFormatError, match="config.json: describes another training than checkpoint.npz") as e:
        run_training({"epochs": 3}, resume=run, plots=False)
    assert said in str(e.value) and "\n" not in str(e.value)
    assert _folder(run) == before


def test_resume_compares_a_checkpoint_from_before_the_run_settings_on_what_it_holds(tmp_path, small_run):
    import json

    from nablanet.experiments import run_training
    from nablanet.train import load
    from nablanet.validate import FileFormatError

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    assert load(run / "checkpoint.npz").run_config["n"] == 60
    _rewrite_meta(run / "checkpoint.npz", lambda meta: meta.pop("run"))  # as an older version wrote it
    assert load(run / "checkpoint.npz").run_config is None
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "optimizer": "sgd", "momentum": 0.9}))
    with pytest.raises(FileFormatError, match="optimizer: 'sgd' here, 'adam' in the checkpoint"):
        run_training({"epochs": 3}, resume=run, plots=False)
    (run / "config.json").write_text(json.dumps({**cfg, "l1": 0.25}))
    with pytest.raises(FileFormatError, match=r"l1: 0.25 here, 0.0 in the checkpoint\)"):
        run_training({"epochs": 3}, resume=run, plots=False)
    (run / "config.json").write_text(json.dumps(cfg))  # untouched: it resumes, and its checkpoint now records them
    assert run_training({"epochs": 3}, resume=run, plots=False)["epochs"] == 3
    assert load(run / "checkpoint.npz").run_config == {**cfg, "epochs": 3}


def test_resume_with_fewer_epochs_than_trained_is_refused_and_leaves_the_folder(tmp_path, small_run):
    """--epochs below the epochs trained rewrote config.json's epochs while the metrics and checkpoint said more."""
    from nablanet.cli import main
    from nablanet.experiments import run_training
    from nablanet.validate import ConfigError

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    before = _folder(run)
    with pytest.raises(ConfigError, match="the run has already trained 2 epochs; give --epochs 2 or more"):
        run_training({"epochs": 1}, resume=run, plots=False)
    assert main(["train", "--resume", str(run), "--epochs", "1", "--no-plots"]) == 2
    assert _folder(run) == before
    assert run_training({"epochs": 2}, resume=run, plots=False)["epochs"] == 2  # as many: finished, written again
    assert run_training({"epochs": 4}, resume=run, plots=False)["epochs"] == 4  # more: the one setting it may change


def test_resume_from_a_checkpoint_with_misaligned_history_is_refused_naming_it(tmp_path, small_run, capsys):
    """History columns of different lengths loaded, trained on, overwrote the metrics and the checkpoint, and then
    failed with a message that named no file."""
    from nablanet.cli import main

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    _rewrite_meta(run / "checkpoint.npz", lambda meta: meta["history"].update(loss=meta["history"]["loss"][:1]))
    before = _folder(run)
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.npz: the metadata 'history' columns must be of one length" in err, err
    assert _folder(run) == before


def test_resume_reads_the_settings_from_the_checkpoint_when_a_crash_left_config_json_empty(tmp_path):
    """config.json is not flushed to the disk (the checkpoints, which are, hold the same settings): a machine crash
    soon after a run began can leave it empty, and --resume then goes on from the checkpoint's settings."""
    from nablanet.experiments import run_training
    from nablanet.validate import FileFormatError

    cfg = {"data": "breast_cancer", "hidden": [8], "epochs": 2, "lr": 0.01}
    run = tmp_path / "r"
    run_training(cfg, out_dir=run, plots=False)
    (run / "config.json").write_text("")
    with pytest.warns(UserWarning, match=r"config.json: damaged run configuration \(it is empty\).*from its checkpoint"):
        res = run_training({"epochs": 4}, resume=run, plots=False)
    assert res["test_loss"] == run_training({**cfg, "epochs": 4})["test_loss"]  # the run that was never stopped
    assert json.loads((run / "config.json").read_text())["lr"] == 0.01  # written again, whole
    bare = tmp_path / "b"
    run_training(cfg, out_dir=bare, plots=False)
    (bare / "config.json").write_text("")
    (bare / "checkpoint.npz").unlink()  # nothing to go on from: the error, as before
    with pytest.raises(FileFormatError, match="damaged run configuration"):
        run_training({}, resume=bare, plots=False)
