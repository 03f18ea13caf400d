"""Faults: real processes killed at (seeded) random moments, compared with unbroken runs.

* ``nablanet train`` killed with SIGKILL mid-run, then ``--resume``d, ends with
  the same parameters, bit for bit, as a run that was never stopped, and leaves
  no temporary file behind;
* a process killed in the middle of writing a checkpoint leaves the previous
  checkpoint intact, and the next start removes its temporary file;
* ``nablanet sweep`` killed with SIGKILL leaves no worker behind; SIGTERM and
  Ctrl-C stop it with one line; started again, it finishes as an unbroken sweep.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = [sys.executable, "-c", "import sys; from nablanet.cli import main; sys.exit(main())"]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and POSIX signals")

TRAIN = ["train", "--data", "runge", "--n", "300", "--hidden", "16", "--activation", "tanh", "--epochs", "12",
         "--batch-size", "16", "--no-progress"]


def _env():
    return {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _run(args, cwd, timeout=120):
    return subprocess.run(CLI + args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


def _start(args, cwd):
    return subprocess.Popen(CLI + args, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _params(path):
    from nablanet.train import load

    t = load(path)
    return t.get_flat_params().copy(), t.epoch, t.history["loss"]


def _children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.append(int(d))
    return kids


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _temps(folder):
    return [n for n in os.listdir(folder) if n.startswith(".nablanet-")]


def test_train_killed_at_random_moments_resumes_to_the_unbroken_result(tmp_path):
    full = _run(TRAIN + ["--out", "full"], tmp_path)
    assert full.returncode == 0, full.stderr
    expected, epochs, losses = _params(tmp_path / "full" / "checkpoint.npz")
    assert epochs == 12
    rng = random.Random(11)  # the moments are random but fixed
    out = tmp_path / "broken"
    for attempt in range(2):
        args = TRAIN + (["--out", "broken"] if attempt == 0 or not (out / "checkpoint.npz").exists()
                        else ["--resume", "broken"])
        if attempt and not (out / "checkpoint.npz").exists():
            args.append("--overwrite")
        p = _start(args, tmp_path)
        time.sleep(rng.uniform(1.5, 3.5))
        p.send_signal(signal.SIGKILL)
        p.wait(30)
    if (out / "checkpoint.npz").exists():
        r = _run(["train", "--resume", "broken", "--no-progress"], tmp_path)
    else:  # killed before the first checkpoint every time: nothing to resume, start again
        r = _run(TRAIN + ["--out", "broken", "--overwrite"], tmp_path)
    assert r.returncode == 0, r.stderr
    got, got_epochs, got_losses = _params(out / "checkpoint.npz")
    assert got_epochs == 12 and got_losses == losses
    np.testing.assert_array_equal(got, expected)
    assert _temps(out) == []
    # a finished run is not overwritten by accident
    again = _run(TRAIN + ["--out", "broken"], tmp_path)
    assert again.returncode == 2 and "--resume" in again.stderr and "--overwrite" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


_KILL_MID_SAVE = """
import os, sys
import numpy as np
from nablanet.nn import MLP
from nablanet.train import Trainer

X = np.random.default_rng(0).standard_normal((32, 2)); y = X.sum(1)
t = Trainer(MLP([2, 4, 1], seed=0), "mse", "adam", seed=0)
t.fit(X, y, epochs=1)
t.save(sys.argv[1])
real = np.savez
def dying(f, **arrays):
    real(f, **arrays)
    f.flush()
    f.truncate(f.tell() // 2)  # half of the new file is on disk ...
    os._exit(9)                # ... when the process dies
np.savez = dying
t.fit(X, y, epochs=1)
t.save(sys.argv[1])
"""


def test_a_process_killed_while_saving_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "run" / "checkpoint.npz"
    r = subprocess.run([sys.executable, "-c", _KILL_MID_SAVE, str(path)], env=_env(), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 9, r.stderr
    assert len(_temps(path.parent)) == 1  # the half-written temporary file, never the checkpoint itself
    _, epoch, _ = _params(path)
    assert epoch == 1  # the previous checkpoint, intact
    from nablanet.files import remove_stale_temps

    assert len(remove_stale_temps(path.parent)) == 1 and _temps(path.parent) == []


SWEEP = ["sweep", "--data", "runge", "--n", "200", "--hidden", "16", "--activation", "tanh", "--epochs", "25",
         "--batch-size", "8", "--grid", "lr=0.001,0.003,0.01,0.03", "--grid", "l2=0,0.001", "--jobs", "2",
         "--no-progress", "--json"]


def _wait_for_workers(p, n=2, timeout=30):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        kids = _children(p.pid)
        if len(kids) >= n:
            return kids
        time.sleep(0.1)
    raise AssertionError("the sweep started no workers")


def _gone(pids, timeout=10):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not any(_alive(k) for k in pids):
            return True
        time.sleep(0.1)
    return False


def test_sweep_workers_die_with_their_parent_and_the_sweep_finishes_as_unbroken(tmp_path):
    p = _start(SWEEP + ["--out", "sw"], tmp_path)
    kids = _wait_for_workers(p)
    time.sleep(random.Random(5).uniform(0.5, 2.0))
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    assert _gone(kids), "sweep workers outlived their parent"
    r = _run(SWEEP + ["--out", "sw"], tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    resumed = json.loads(r.stdout)
    assert _temps(tmp_path / "sw") == [] and _temps(tmp_path / "sw" / "points") == []
    unbroken = json.loads(_run(SWEEP + ["--out", "sw2"], tmp_path, timeout=300).stdout)
    key = lambda rows: sorted((r["lr"], r["l2"], r["test_mse"]) for r in rows)
    assert key(resumed["results"]) == key(unbroken["results"])


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sweep_stopped_by_a_signal_stops_its_workers_with_one_line(tmp_path, sig, code):
    p = _start(SWEEP + ["--out", "sw"], tmp_path)
    kids = _wait_for_workers(p)
    time.sleep(0.5)
    p.send_signal(sig)
    _, err = p.communicate(timeout=30)
    assert p.returncode == code
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert _gone(kids), "sweep workers outlived the stopped sweep"
