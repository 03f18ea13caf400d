"""Data-parallel training and sweeps over MPI: `mpiexec -n 2` in a subprocess, with a timeout."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nablanet.nn import MLP
from nablanet.train import Trainer

mpi4py = pytest.importorskip("mpi4py", reason="the optional extra 'mpi' is not installed")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
if MPIEXEC is None:
    pytest.skip("no mpiexec found", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mpirun(n, args, cwd, timeout=180):
    """Run under ``mpiexec -n n``; a hang fails the test instead of stalling CI."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    try:
        r = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mpiexec -n {n} did not finish in {timeout} s (a deadlock?)")
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from nablanet.distributed import get_comm
    from nablanet.nn import MLP
    from nablanet.train import Trainer

    comm = get_comm()
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((102, 5)), rng.integers(0, 3, 102)
    m = MLP([5, 16, 3], output_activation="softmax", batch_norm=sys.argv[1] == "bn", seed=0, dtype=np.float64)
    t = Trainer(m, "cross_entropy", "adam", lr=1e-2, l2=1e-3, seed=0, comm=comm)
    h = t.fit(X, y, epochs=4, batch_size=20)
    if comm.is_root:
        np.save(sys.argv[2], t.get_flat_params())
        print(json.dumps({"world_size": comm.size, "loss": h["loss"]}))
    """)


def _single(batch_norm):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((102, 5)), rng.integers(0, 3, 102)
    m = MLP([5, 16, 3], output_activation="softmax", batch_norm=batch_norm, seed=0, dtype=np.float64)
    t = Trainer(m, "cross_entropy", "adam", lr=1e-2, l2=1e-3, seed=0)
    h = t.fit(X, y, epochs=4, batch_size=20)
    return t.get_flat_params(), h["loss"]


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batch norm over the global batch"])
def test_two_ranks_train_like_one(tmp_path, batch_norm):
    script = tmp_path / "dp.py"
    script.write_text(SCRIPT)
    out = mpirun(2, [str(script), "bn" if batch_norm else "plain", str(tmp_path / "p.npy")], tmp_path)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, out  # only rank 0 reports
    doc = json.loads(lines[0])
    assert doc["world_size"] == 2  # a silent fallback to two single processes must fail
    params, loss = _single(batch_norm)
    # (biases in front of batch normalization have zero gradient: their values are rounding noise that
    # Adam scales up to ~1e-9 per step, and one process and two sum their shards in different orders)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), params, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(doc["loss"], loss, rtol=1e-10)


def test_cli_train_under_mpiexec_writes_once(tmp_path):
    run = tmp_path / "run"
    out = mpirun(2, ["-m", "nablanet.cli", "train", "--data", "breast_cancer", "--hidden", "8", "--epochs", "3",
                     "--out", str(run), "--json"], tmp_path)
    docs = [json.loads(out)]  # exactly one JSON document: rank 1 prints nothing
    assert docs[0]["final"]["ranks"] == 2 and docs[0]["final"]["epochs"] == 3
    from nablanet.experiments import default_threads

    # each rank limits BLAS/OpenMP to its share of the cores, as the libraries report it during the training
    assert docs[0]["final"]["threads_per_process"] == default_threads(2)
    assert 0 <= docs[0]["final"]["communication_fraction"] <= 1
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.npz", "config.json", "confusion_matrix.png",
                                                    "learning_curves.png", "metrics.csv", "metrics.json"]
    # resuming broadcasts rank 0's checkpoint and continues
    out = mpirun(2, ["-m", "nablanet.cli", "train", "--resume", str(run), "--epochs", "5", "--threads", "3", "--json"],
                 tmp_path)
    assert json.loads(out)["final"]["epochs"] == 5
    assert json.loads(out)["final"]["threads_per_process"] == 3  # --threads overrides the share


def test_sweep_over_ranks_equals_local_sweep(tmp_path):
    from nablanet.experiments import sweep

    args = ["--data", "runge", "--n", "200", "--hidden", "8", "--epochs", "5", "--grid", "lr=0.001,0.01",
            "--grid", "l2=0,0.001", "--json"]
    out = mpirun(2, ["-m", "nablanet.cli", "sweep", *args, "--out", str(tmp_path / "mpi")], tmp_path)
    res = json.loads(out)
    local = sweep({"data": "runge", "n": 200, "hidden": [8], "epochs": 5}, {"lr": [0.001, 0.01], "l2": [0.0, 0.001]},
                  str(tmp_path / "local"), jobs=1)
    assert [r["test_mse"] for r in res["results"]] == pytest.approx([r["test_mse"] for r in local["results"]], rel=1e-6)
    assert (tmp_path / "mpi" / "heatmap_test_mse.png").exists()
    again = json.loads(mpirun(2, ["-m", "nablanet.cli", "sweep", *args, "--out", str(tmp_path / "mpi")], tmp_path))
    assert again["skipped"] == 4


def test_missing_mpi_gives_one_clear_line(monkeypatch, capsys):
    from nablanet import distributed
    from nablanet.cli import main

    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r'pip install "nablanet\[mpi\]"'):
        distributed.get_comm()
    assert main(["train", "--mpi", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nablanet[mpi]" in err[0]


def test_shards_cover_the_batch():
    from nablanet.distributed import Communicator

    c = Communicator.__new__(Communicator)
    for size in (1, 2, 3, 7):
        c.size = size
        parts = []
        for rank in range(size):
            c.rank = rank
            parts.append(c.shard(10, 33))
        assert parts[0][0] == 10 and parts[-1][1] == 33
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
        assert max(b - a for a, b in parts) - min(b - a for a, b in parts) <= 1


COVERAGE = textwrap.dedent("""
    import json
    import numpy as np
    from nablanet.distributed import get_comm
    from nablanet.nn import MLP
    from nablanet.train import Trainer

    comm = get_comm()
    X = np.column_stack([np.arange(21.0), np.random.default_rng(comm.rank).standard_normal((21, 2))])
    y = np.arange(21) % 3
    seen = []
    t = Trainer(MLP([3, 8, 3], output_activation="softmax", dropout=0.3, batch_norm=True, seed=None),
                "cross_entropy", seed=None, comm=comm)  # no seed: the ranks' generators differ from the start
    step = t.train_step
    t.train_step = lambda Xb, yb, n: (seen.append(Xb[:, 0].astype(int).tolist()), step(Xb, yb, n))[1]
    X[:, 1:] = comm.bcast_object(X[:, 1:])  # the same data on every rank
    t.fit(X, y, epochs=3, batch_size=10)  # batches of 10, 11 (a last batch of 1 joins the one before)
    everything = comm.comm.gather(seen, root=0)
    if comm.is_root:
        print(json.dumps({"world_size": comm.size, "seen": everything}))
    """)


def test_every_epoch_covers_each_row_once_and_small_batches_do_not_hang(tmp_path):
    script = tmp_path / "cover.py"
    script.write_text(COVERAGE)
    doc = json.loads(mpirun(2, [str(script)], tmp_path, timeout=120).strip().splitlines()[-1])
    assert doc["world_size"] == 2
    per_rank = doc["seen"]
    steps = len(per_rank[0])
    assert steps == len(per_rank[1]) == 6  # 2 batches per epoch, 3 epochs, on both ranks
    for epoch in range(3):
        rows = [r for rank in per_rank for batch in rank[2 * epoch:2 * epoch + 2] for r in batch]
        assert sorted(rows) == list(range(21))
