"""Resuming a run folder stopped before its first checkpoint (config.json is its start), and where of Python values
under jit: each of these failed on an earlier version (found by review)."""

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
