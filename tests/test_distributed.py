"""Data-parallel training and sweeps over MPI: `mpiexec -n 2` in a subprocess, with a timeout."""

import json
import os
import re
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


def mpirun(n, args, cwd, timeout=180, stderr=False, returncode=0):
    """Run under ``mpiexec -n n``; a hang fails the test instead of stalling CI.  The output (and the errors)."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    try:
        r = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mpiexec -n {n} did not finish in {timeout} s (a deadlock?)")
    assert r.returncode == returncode, r.stderr[-3000:]
    return (r.stdout, r.stderr) if stderr else r.stdout


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
    t = Trainer(m, "cross_entropy", "adam", lr=1e-2, l2=1e-3, seed=0, comm=comm, parallel="shard")
    h = t.fit(X, y, epochs=4, batch_size=20)
    assert t.parallel_mode == "shard" and t.parallel_timing is None
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
    from nablanet.train import load

    run = tmp_path / "run"
    args = ["-m", "nablanet.cli", "train", "--data", "breast_cancer", "--hidden", "8", "--dropout", "0.2", "--json"]
    out, err = mpirun(2, [*args, "--epochs", "3", "--out", str(run)], tmp_path, stderr=True)
    docs = [json.loads(out)]  # exactly one JSON document: rank 1 prints nothing
    assert docs[0]["final"]["ranks"] == 2 and docs[0]["final"]["epochs"] == 3
    mode = docs[0]["final"]["parallel"]  # what --parallel auto chose, said on stderr and kept in the checkpoint
    assert mode in ("shard", "lead") and set(docs[0]["final"]["parallel_timing"]) == {"shard", "lead"}
    assert err.count(f"--parallel auto chose {mode}") == 1
    assert load(run / "checkpoint.npz").parallel_mode == mode
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
    assert json.loads(out)["final"]["parallel"] == mode and "parallel_timing" not in json.loads(out)["final"]
    # the resumed run continued in the mode it had chosen: bit for bit the run pinned to it from the start
    mpirun(2, [*args, "--epochs", "5", "--parallel", mode, "--threads", "3", "--out", str(tmp_path / "pinned")],
           tmp_path)
    resumed, pinned = load(run / "checkpoint.npz"), load(tmp_path / "pinned" / "checkpoint.npz")
    np.testing.assert_array_equal(resumed.get_flat_params(), pinned.get_flat_params())
    assert resumed.parallel_mode == pinned.parallel_mode == mode and pinned.parallel == mode


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
    import json, sys
    import numpy as np
    from nablanet.distributed import get_comm
    from nablanet.nn import MLP
    from nablanet.train import Trainer

    comm = get_comm()
    X = np.column_stack([np.arange(21.0), np.random.default_rng(comm.rank).standard_normal((21, 2))])
    y = np.arange(21) % 3
    seen = []
    t = Trainer(MLP([3, 8, 3], output_activation="softmax", dropout=0.3, batch_norm=True, seed=None),
                "cross_entropy", seed=None, comm=comm, parallel=sys.argv[1])  # no seed: the ranks' generators differ
    step = t.train_step
    t.train_step = lambda Xb, yb, n: (seen.append(Xb[:, 0].astype(int).tolist()), step(Xb, yb, n))[1]
    X[:, 1:] = comm.bcast_object(X[:, 1:])  # the same data on every rank
    t.fit(X, y, epochs=3, batch_size=10)  # batches of 10, 11 (batch norm: a last batch of 1 joins the one before)
    everything = comm.comm.gather(seen, root=0)
    params = comm.comm.gather(t.get_flat_params().tolist(), root=0)
    if comm.is_root:
        print(json.dumps({"world_size": comm.size, "seen": everything, "mode": t.parallel_mode,
                          "same_params": params[0] == params[1]}))
    """)


@pytest.mark.parametrize("mode", ["shard", "lead"])
def test_every_epoch_covers_each_row_once_and_small_batches_do_not_hang(tmp_path, mode):
    script = tmp_path / "cover.py"
    script.write_text(COVERAGE)
    doc = json.loads(mpirun(2, [str(script), mode], tmp_path, timeout=120).strip().splitlines()[-1])
    assert doc["world_size"] == 2 and doc["mode"] == mode
    assert doc["same_params"]  # dropout included: sharded ranks seed their masks from rank 0's stream; lead sends it
    per_rank = doc["seen"]
    assert len(per_rank[0]) == 6  # 2 batches per epoch, 3 epochs
    assert len(per_rank[1]) == (6 if mode == "shard" else 0)  # lead: rank 1 computes nothing
    for epoch in range(3):
        if mode == "shard":  # the ranks' shards partition the rows
            rows = [r for rank in per_rank for batch in rank[2 * epoch:2 * epoch + 2] for r in batch]
            assert sorted(rows) == list(range(21))
        else:  # rank 0 every row, as one process
            assert sorted(r for batch in per_rank[0][2 * epoch:2 * epoch + 2] for r in batch) == list(range(21))



MODES = textwrap.dedent("""
    import json, sys
    import numpy as np
    from nablanet.distributed import get_comm
    from nablanet.nn import MLP
    from nablanet.train import Callback, Trainer

    comm = get_comm()
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((90, 5)), rng.integers(0, 3, 90)
    CASES = {"plain": (False, 0.0), "batch norm": (True, 0.0), "dropout": (False, 0.3), "both": (True, 0.3)}


    class Record(Callback):  # lead: callbacks run on rank 0 only
        costs = []  # of every step, on this rank

        def on_batch_end(self, trainer, epoch, batch, cost):
            self.costs.append(cost)


    def train(case, comm=None, parallel="auto", callbacks=(), prefer=None, knock=False):
        bn, p = CASES[case]
        m = MLP([5, 12, 3], output_activation="softmax", batch_norm=bn, dropout=p, seed=0, dtype=np.float64)
        t = Trainer(m, "cross_entropy", "adam", lr=1e-2, l2=1e-3, seed=0, comm=comm, parallel=parallel)
        if knock and comm.rank == 1:  # rank 1's parameters and random stream knocked off: rank 0's state wins
            t.get_flat_params()[:] += 0.01
            t.rng = np.random.default_rng(99)
        if prefer is not None:  # the timing runs, then reports the mode asked for as the faster
            real = t._time_modes
            t._time_modes = lambda *a: {**real(*a), prefer: 0.0}
        h = t.fit(X, y, epochs=3, batch_size=16, callbacks=callbacks)
        state = np.concatenate([np.ravel(a) for s in m.state for a in s.values()] + [np.zeros(0)])
        return t, np.concatenate([t.get_flat_params(), state, [h["loss"][-1]]])


    def same_on_all_ranks(t, v):
        got = comm.comm.allgather((t.parallel_mode, v.tobytes()))
        return all(g == got[0] for g in got)


    out = {}
    for case in CASES:
        one = train(case)[1]  # one process, in this process (the same BLAS threads as the ranks)
        t, rep = train(case, comm, "lead")
        t2, rep_perturbed = train(case, comm, "lead", [Record()], knock=True)
        costs = comm.comm.allgather(Record.costs)  # 6 steps an epoch
        Record.costs = []
        histories = comm.comm.allgather((t2.history.history, t2.epoch, t2.opt_state["t"],
                                         t2.rng.bit_generator.state, t2.interrupted))
        a, auto = train(case, comm, "auto")
        pinned = train(case, comm, a.parallel_mode)[1]
        b, auto_shard = train(case, comm, "auto", prefer="shard")
        shard = train(case, comm, "shard")[1]
        self_comm = get_comm(comm.MPI.COMM_SELF)  # one rank: the option has no effect
        s1, solo = train(case, self_comm, "lead")
        solo_shard = train(case, self_comm, "shard")[1]
        out[case] = {
            "lead_is_one_process": rep.tobytes() == one.tobytes(),
            "lead_close": float(np.max(np.abs(rep - one))),
            "lead_mode": t.parallel_mode, "lead_agree": same_on_all_ranks(t, rep),
            "perturbed_agree": same_on_all_ranks(t2, rep_perturbed),
            "perturbed_is_unperturbed": rep_perturbed.tobytes() == rep.tobytes(),
            "callback_steps": [len(c) for c in costs],
            "histories_agree": all(h == histories[0] for h in histories),
            "auto_mode": a.parallel_mode, "auto_timing": a.parallel_timing, "auto_agree": same_on_all_ranks(a, auto),
            "auto_is_pinned": auto.tobytes() == pinned.tobytes(),
            "auto_shard_mode": b.parallel_mode, "auto_shard_is_shard": auto_shard.tobytes() == shard.tobytes(),
            "one_rank_mode": s1.parallel_mode, "one_rank_unchanged": solo.tobytes() == solo_shard.tobytes(),
        }
    if comm.is_root:
        print(json.dumps({"world_size": comm.size, "cases": out}))
    """)


def test_parallel_modes_lead_auto_and_the_state_sent_at_the_end(tmp_path):
    """lead trains what one process trains (bit for bit: rank 0 runs one process's program), with batch norm
    and dropout; a rank knocked off before the fit ends with rank 0's state (parameters, history, epoch, step,
    random stream), and callbacks run on rank 0 alone; auto times both without changing anything (the run equals
    one pinned to its choice, whichever it is) and every rank takes rank 0's choice; with one rank the option
    does nothing."""
    script = tmp_path / "modes.py"
    script.write_text(MODES)
    doc = json.loads(mpirun(2, [str(script)], tmp_path, timeout=300).strip().splitlines()[-1])
    assert doc["world_size"] == 2
    for case, r in doc["cases"].items():
        assert r["lead_mode"] == "lead" and r["lead_agree"], case
        assert r["lead_close"] < 1e-12, case
        assert r["lead_is_one_process"], case
        assert r["perturbed_agree"] and r["perturbed_is_unperturbed"], case
        assert r["callback_steps"] == [18, 0] and r["histories_agree"], case
        assert r["auto_mode"] in ("shard", "lead") and r["auto_agree"], case
        assert set(r["auto_timing"]) == {"shard", "lead"} and all(v > 0 for v in r["auto_timing"].values())
        assert r["auto_is_pinned"], case
        assert r["auto_shard_mode"] == "shard" and r["auto_shard_is_shard"], case
        assert r["one_rank_mode"] is None and r["one_rank_unchanged"], case


SMALL_BATCHES = textwrap.dedent("""
    import json
    import numpy as np
    from nablanet.distributed import get_comm
    from nablanet.nn import MLP
    from nablanet.train import Trainer

    comm = get_comm()
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((33, 4)), rng.integers(0, 3, 33)


    def train(comm, parallel, batch_size, bn=False):
        m = MLP([4, 8, 3], output_activation="softmax", batch_norm=bn, dropout=0.2, seed=0, dtype=np.float64)
        t = Trainer(m, "cross_entropy", "adam", lr=1e-2, seed=0, comm=comm, parallel=parallel)
        try:
            h = t.fit(X, y, epochs=2, batch_size=batch_size)
        except ValueError as e:
            return t, str(e)
        return t, np.concatenate([t.get_flat_params(), h["loss"]]).tobytes().hex()


    out = {}
    for bs, bn in ((1, False), (16, False), (2, True), (16, True)):  # 33 rows: a last batch of 1 row
        one = train(None, "auto", bs, bn)[1]
        key = f"{bs}{' bn' if bn else ''}"
        for mode in ("lead", "auto", "shard"):
            t, got = train(comm, mode, bs, bn)
            out[f"{key} {mode}"] = {"mode": t.parallel_mode, "is_one_process": got == one,
                                    "error": got if len(got) < 300 else None}
    if comm.is_root:
        print(json.dumps(out))
    """)


def test_lead_takes_any_batch_one_process_takes(tmp_path):
    """Rank 0 leading does not split the batches: a batch with fewer rows than ranks (batch_size=1) trains as
    in one process, and so does a last batch of fewer rows than ranks (sharded training joins it to the batch
    before it); auto leads when the batches are too small to shard."""
    script = tmp_path / "small.py"
    script.write_text(SMALL_BATCHES)
    doc = json.loads(mpirun(2, [str(script)], tmp_path, timeout=300).strip().splitlines()[-1])
    for key in ("1", "16", "2 bn", "16 bn"):
        assert doc[f"{key} lead"] == {"mode": "lead", "is_one_process": True, "error": None}, key
    assert doc["1 auto"] == {"mode": "lead", "is_one_process": True, "error": None}
    assert doc["2 bn auto"]["error"] is None  # shardable (a row per rank): timed, either mode
    assert "2 MPI ranks need a row each" in doc["1 shard"]["error"]
    assert doc["16 shard"]["error"] is None and doc["16 auto"]["error"] is None


def test_a_refusal_under_mpiexec_is_said_once(tmp_path):
    """Every rank meets the same bad flag and the same refused setting: rank 0 says it, once (each rank printed
    its own copy of the line).  (A SIGTERM is said once the same way, by rank 0 when it is stopped: see
    test_a_rank_stopped_between_steps_ends_the_job.)"""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "nablanet.cli", "train"]
    for args, said in ((["--parallel", "fast"], "argument --parallel: expected one of auto, shard, lead"),
                       (["--data", "runge", "--n", "20", "--batch-size", "1", "--parallel", "shard", "--epochs", "1",
                         "--no-plots", "--out", str(tmp_path / "r")], "2 MPI ranks need a row each")):
        r = subprocess.run(cmd + args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
        assert r.returncode == 2 and r.stdout == ""
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("nablanet")]
        assert len(lines) == 1 and said in lines[0], r.stderr


def _rank_pids(root_pid):
    """{rank: pid} of the Python processes under the launcher ``root_pid`` (their PMI_RANK)."""
    found, todo = {}, [root_pid]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                todo += [int(c) for c in f.read().split()]
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        except OSError:
            continue
        if b"PMI_RANK" in env and b"nablanet.cli" in open(f"/proc/{pid}/cmdline", "rb").read():
            found[int(env[b"PMI_RANK"])] = pid
    return found


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="finds the ranks' processes in /proc")
@pytest.mark.parametrize("rank", [0, 1])
def test_a_rank_stopped_between_steps_ends_the_job(tmp_path, rank):
    """SIGTERM reaching one rank between sharded steps (a signal finds each rank where it is) leaves the other
    waiting in the step's Allreduce, out of reach of signals; the job hung in MPI's finalization. Now rank 0
    writes its checkpoint (the last whole epoch) and ends the job; another rank gives it some seconds, then
    ends the job itself (rank 0, waiting in the Allreduce, had nothing to write)."""
    from nablanet.train import load

    returncode, err, _, run = _signal_a_run(tmp_path, "SIGTERM", (rank,), parallel="shard", more=())  # this rank alone
    assert returncode == 143, err
    # one line, from the rank stopped (another rank ended the job without a word: found by review)
    said = [line for line in err.splitlines() if line.startswith("nablanet:")]
    assert said == ["nablanet: stopped (SIGTERM)" + (" on rank 1 alone, which ends the job" if rank else "")
                    + "; a run continues from its last checkpoint (or its start) with --resume"], err
    # rank 0 stopped writes the last whole epoch; stuck in the Allreduce, it writes nothing: the last save stays
    assert load(run / "checkpoint.npz").epoch > 0 or rank == 1


@pytest.mark.parametrize("mode", ["shard", "lead"])
def test_resume_with_dropout_is_the_unbroken_run_in_either_mode(tmp_path, mode):
    """3 epochs, then --resume to 5, equals 5 epochs in one go, bit for bit, with dropout. Sharded ranks drew
    their masks from generators of their own that only rank 0's checkpoint could not restore (rank 1 resumed
    with rank 0's stream): parameters 0.012 apart. Each epoch they now seed their mask streams from the one
    stream all ranks share, which the checkpoint keeps."""
    from nablanet.train import load

    args = ["-m", "nablanet.cli", "train", "--data", "breast_cancer", "--hidden", "8", "--dropout", "0.3",
            "--no-plots", "--parallel", mode]
    mpirun(2, [*args, "--epochs", "3", "--out", str(tmp_path / "run")], tmp_path)
    mpirun(2, ["-m", "nablanet.cli", "train", "--resume", str(tmp_path / "run"), "--epochs", "5"], tmp_path)
    mpirun(2, [*args, "--epochs", "5", "--out", str(tmp_path / "whole")], tmp_path)
    resumed, whole = load(tmp_path / "run" / "checkpoint.npz"), load(tmp_path / "whole" / "checkpoint.npz")
    assert resumed.epoch == whole.epoch == 5
    np.testing.assert_array_equal(resumed.get_flat_params(), whole.get_flat_params())


STOPPED_WHILE_TIMING = textwrap.dedent("""
    import json, os, sys
    from nablanet.distributed import get_comm
    from nablanet.experiments import run_training
    from nablanet.train import Trainer

    comm = get_comm()
    out = sys.argv[1]


    def interrupted(self, *args, **kwargs):  # Ctrl-C while auto times the two modes, on every rank
        raise KeyboardInterrupt


    timing, Trainer._time_modes = Trainer._time_modes, interrupted
    cfg = {"data": "breast_cancer", "hidden": [8], "epochs": 3}
    try:
        run_training(cfg, out_dir=out, comm=comm, plots=False)
    except KeyboardInterrupt:
        pass
    comm.barrier()  # (the ranks stopped without meeting)
    left = sorted(os.listdir(out)) if comm.is_root else None
    Trainer._time_modes = timing
    res = run_training(cfg, resume=out, comm=comm, plots=False)  # what the stopped command says to do
    if comm.is_root:
        print(json.dumps({"left": left, "epochs": res["epochs"]}))
    """)


def test_a_run_stopped_while_auto_times_the_modes_can_be_resumed(tmp_path):
    """Ctrl-C during auto's timing, before the first epoch: the run folder holds its config.json, its start, and
    --resume trains the run from its beginning over the ranks (config.json alone was once refused)."""
    script = tmp_path / "stopped.py"
    script.write_text(STOPPED_WHILE_TIMING)
    doc = json.loads(mpirun(2, [str(script), str(tmp_path / "run")], tmp_path).strip().splitlines()[-1])
    assert doc["left"] == ["config.json"] and doc["epochs"] == 3


LEAD_ENDINGS = textwrap.dedent("""
    import json, os, signal, sys, time
    import numpy as np
    from nablanet.distributed import LeadFailed, get_comm
    from nablanet.nn import MLP
    from nablanet.train import Callback, Trainer

    comm = get_comm()
    pids = comm.comm.allgather(os.getpid())
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)


    class Events(Callback):  # on rank 0 (lead): signals the others, interrupts or fails itself
        def __init__(self, case):
            self.case = case

        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 1 and self.case in ("ctrl-c to all", "ctrl-c to the waiting rank"):
                os.kill(pids[1], signal.SIGINT)  # while it waits; rank 0 trains on for two more epochs
                time.sleep(0.3)
            if epoch == 1 and self.case == "ctrl-c to all":  # (the waiting rank's word is left for the handoff)
                raise KeyboardInterrupt
            if epoch == 3 and self.case == "error":
                raise ValueError("boom at epoch 4")


    out = {}
    for case in ("ctrl-c to all", "ctrl-c to the waiting rank", "error", "lbfgs"):
        opt = "lbfgs" if case == "lbfgs" else "adam"
        t = Trainer(MLP([4, 8, 3], output_activation="softmax", seed=0, dtype=np.float64), "cross_entropy", opt,
                    seed=0, comm=comm, parallel="auto" if case == "lbfgs" else "lead")
        if comm.rank == 1:
            t.get_flat_params()[:] = 0.5  # rank 0's state must replace it
        try:
            t.fit(X, y, epochs=6, batch_size=None if case == "lbfgs" else 16, callbacks=[Events(case)])
            ended = "returned"
        except KeyboardInterrupt:
            ended = "KeyboardInterrupt"
        except (ValueError, LeadFailed) as e:
            ended = f"{type(e).__name__}: {e}"
        got = comm.comm.allgather((t.get_flat_params().tobytes(), t.epoch, t.history.history, t.interrupted,
                                   t.parallel_mode, t.history.solver))
        one = Trainer(MLP([4, 8, 3], output_activation="softmax", seed=0, dtype=np.float64), "cross_entropy", opt,
                      seed=0)
        if case == "lbfgs":
            one.fit(X, y, epochs=6)
        out[case] = {"ended": comm.comm.allgather(ended), "same": all(g == got[0] for g in got[1:]),
                     "epochs": [g[1] for g in got], "interrupted": [g[3] for g in got], "mode": got[0][4],
                     "one_process": one.get_flat_params().tobytes() == got[0][0] if case == "lbfgs" else None}
    if comm.is_root:
        print(json.dumps(out))
    """)


def test_rank_0_leading_always_releases_the_waiting_ranks(tmp_path):
    """lead: Ctrl-C reaching every rank (the waiting one first) leaves the waiting rank waiting for rank 0's
    word; it takes rank 0's state, then raises KeyboardInterrupt. A Ctrl-C reaching only the waiting rank stops
    rank 0 at the end of its epoch (it let rank 0 finish, then the waiting rank raised while rank 0 went on
    alone), and no word of it is left for the next fit; rank 0 failing makes the others raise one error naming
    its error;
    a full-batch method (lbfgs) trains on rank 0 alone, as one process. No case hangs."""
    script = tmp_path / "endings.py"
    script.write_text(LEAD_ENDINGS)
    doc = json.loads(mpirun(2, [str(script)], tmp_path, timeout=180).strip().splitlines()[-1])
    r = doc["ctrl-c to all"]
    assert r["ended"] == ["KeyboardInterrupt"] * 2 and r["same"] and r["epochs"] == [2, 2], r
    assert r["interrupted"] == [True, True]
    # rank 0 hears of it, and stops at the end of an epoch before its 6th: the second or third, or later when the
    # waiting rank, slow on a busy machine, was not yet waiting (it then tells rank 0 as its wait begins)
    r = doc["ctrl-c to the waiting rank"]
    assert r["ended"] == ["KeyboardInterrupt"] * 2 and r["same"] and 2 <= r["epochs"][0] < 6, r
    assert r["interrupted"] == [True, True]
    r = doc["error"]
    assert r["ended"][0] == "ValueError: boom at epoch 4", r
    assert r["ended"][1] == "LeadFailed: rank 0 failed while it trained alone (parallel='lead'): ValueError: boom " \
                            "at epoch 4", r
    r = doc["lbfgs"]
    assert r["mode"] == "lead" and r["ended"] == ["returned"] * 2 and r["same"] and r["one_process"], r


def _signal_a_run(tmp_path, sig, ranks, parallel="lead", more=("--checkpoint-seconds", "0")):
    """Start `nablanet train --parallel PARALLEL` under mpiexec -n 2, send ``sig`` to ``ranks`` (in that order)
    some epochs in; returns the exit status, stderr, the seconds from the signal to the end, and the run folder."""
    import signal
    import time

    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    run = tmp_path / "run"
    p = subprocess.Popen([MPIEXEC, "-n", "2", sys.executable, "-m", "nablanet.cli", "train", "--data", "breast_cancer",
                          "--hidden", "8", "--epochs", "100000", "--parallel", parallel, "--no-plots", *more,
                          "--out", str(run)],
                         cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoint.npz").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # some epochs in
        pids = _rank_pids(p.pid)
        assert sorted(pids) == [0, 1], pids
        for rank in ranks:
            os.kill(pids[rank], getattr(signal, sig))
        t0 = time.monotonic()
        try:
            _, err = p.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the job went on (or hung) after {sig} reached rank(s) {ranks}")
        return p.returncode, err, time.monotonic() - t0, run
    finally:
        p.kill()
        p.wait()


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="finds the ranks' processes in /proc")
@pytest.mark.parametrize("sig, code, said", [("SIGINT", 130, "nablanet: interrupted"),
                                             ("SIGTERM", 143, "nablanet: stopped (SIGTERM)")])
def test_a_signal_to_every_rank_while_rank_0_leads_ends_the_job_once(tmp_path, sig, code, said):
    """The command line with --parallel lead, stopped by a signal reaching both ranks (what mpiexec forwards):
    rank 0 writes its checkpoint and says so once, the job ends with the signal's code, and --resume goes on."""
    from nablanet.train import load

    returncode, err, _, run = _signal_a_run(tmp_path, sig, (1, 0))
    assert returncode == code, err
    assert err.count(said) == 1 and "Traceback" not in err, err
    assert load(run / "checkpoint.npz").epoch > 0


LEAD_FAILS_ON_THE_COMMAND_LINE = textwrap.dedent("""
    import sys
    from nablanet.cli import main
    from nablanet.distributed import get_comm
    from nablanet.train import Trainer

    comm = get_comm()
    real = Trainer._run_epochs


    def failing(self, *args):
        if comm.is_root:
            raise RuntimeError("the disk is on fire")
        return real(self, *args)


    Trainer._run_epochs = failing
    code = main(["train", "--data", "runge", "--n", "60", "--hidden", "4", "--epochs", "2", "--parallel", "lead",
                 "--no-plots", "--no-progress", "--out", sys.argv[1]])
    print(f"rank {comm.rank} exit {code}")
    """)


def test_rank_0_failing_while_it_leads_is_said_once(tmp_path):
    """The waiting rank raises LeadFailed, which the command line leaves to rank 0 to say (every rank printed
    an 'unexpected' line of its own)."""
    script = tmp_path / "fails.py"
    script.write_text(LEAD_FAILS_ON_THE_COMMAND_LINE)
    out, err = mpirun(2, [str(script), str(tmp_path / "run")], tmp_path, stderr=True)
    # (the ranks' lines may come joined: mpiexec merges their output in chunks)
    assert sorted(re.findall(r"rank \d exit \d+", out)) == ["rank 0 exit 2", "rank 1 exit 2"], out
    lines = [ln for ln in err.splitlines() if ln.startswith("nablanet")]
    assert len(lines) == 1 and "the disk is on fire" in lines[0], err


REDECIDE = textwrap.dedent("""
    import json, sys
    import numpy as np
    from nablanet.distributed import get_comm
    from nablanet.nn import MLP
    from nablanet.train import Trainer, load

    comm = get_comm()
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)
    timed = []


    def rig(t, prefer):  # the timing runs, then reports the mode asked for as the faster
        real = Trainer._time_modes.__get__(t)

        def timing(*a):
            timed.append(prefer)
            return {**real(*a), prefer: 0.0}
        t._time_modes = timing


    def trainer(prefer):
        t = Trainer(MLP([4, 8, 3], output_activation="softmax", seed=0, dtype=np.float64), "cross_entropy", seed=0,
                    comm=comm)
        rig(t, prefer)
        return t


    out = []
    t = trainer("shard")
    for bs in (1, 16, 16, 32):  # 1: lead untimed (fewer rows than ranks); 16: timed; 16 again: kept; 32: timed
        rig(t, "lead" if bs == 32 else "shard")
        t.fit(X, y, epochs=1, batch_size=bs)
        out.append([bs, t.parallel_mode, len(timed)])
    t.save(sys.argv[1])  # the mode (lead) chosen for batches of 32, kept for them on resume
    comm.barrier()
    for bs in (32, 16):
        r = load(sys.argv[1])
        r.comm = comm
        r._connect()
        rig(r, "shard")
        r.fit(X, y, epochs=1, batch_size=bs)
        out.append([bs, r.parallel_mode, len(timed)])
    if comm.is_root:
        print(json.dumps(out))
    """)


def test_auto_decides_again_for_another_batch_size(tmp_path):
    """auto's choice holds for the batch size it was made for: a later fit with other batches times again (it
    kept the first choice, "lead" for batches of 1 row included, whatever the batches); a checkpoint's choice
    holds on resume for its own batch size."""
    script = tmp_path / "redecide.py"
    script.write_text(REDECIDE)
    doc = json.loads(mpirun(2, [str(script), str(tmp_path / "c.npz")], tmp_path).strip().splitlines()[-1])
    assert doc == [[1, "lead", 0], [16, "shard", 1], [16, "shard", 1], [32, "lead", 2],
                   [32, "lead", 2], [16, "shard", 3]], doc


DIFFERENT_DATA = textwrap.dedent("""
    import json
    import numpy as np
    from nablanet.distributed import get_comm
    from nablanet.nn import MLP
    from nablanet.train import Trainer

    comm = get_comm()
    base = np.random.default_rng(5).standard_normal((40, 3))
    y = np.arange(40) % 2
    out = {}
    for case, X in {"same": base, "other rows": base[: 40 - 4 * comm.rank],
                    "other values": base + 0.5 * comm.rank, "other labels": base}.items():
        Xr, yr = X, y[: len(X)]
        if case == "other labels":
            yr = (y + comm.rank) % 2
        for mode in ("shard", "auto", "lead"):
            t = Trainer(MLP([3, 4, 2], output_activation="softmax", seed=0), "cross_entropy", seed=0, comm=comm,
                        parallel=mode)
            try:
                t.fit(Xr, yr, epochs=1, batch_size=8)
                out[f"{case} {mode}"] = None
            except ValueError as e:
                out[f"{case} {mode}"] = str(e)
    if comm.is_root:
        print(json.dumps(out))
    """)


def test_different_data_on_different_ranks_is_one_clear_error(tmp_path):
    """Sharded ranks that loaded other data trained on a mix of both, said nothing (or hung when their batch
    counts differed); rank 0 leading uses its data alone, and says nothing."""
    script = tmp_path / "data.py"
    script.write_text(DIFFERENT_DATA)
    doc = json.loads(mpirun(2, [str(script)], tmp_path, timeout=120).strip().splitlines()[-1])
    for mode in ("shard", "auto", "lead"):
        assert doc[f"same {mode}"] is None
    assert doc["other rows lead"] is None and doc["other values lead"] is None
    for mode in ("shard", "auto"):
        assert "rank 1" in doc[f"other rows {mode}"] and "40 rows x 3 columns" in doc[f"other rows {mode}"]
        assert "36 rows x 3 columns" in doc[f"other rows {mode}"], doc
        assert "rank 1's X" in doc[f"other values {mode}"] and "other values" in doc[f"other values {mode}"], doc
        assert "rank 1's y" in doc[f"other labels {mode}"], doc  # (it said "training data" whatever differed)


def test_help_under_mpiexec_is_printed_once(tmp_path):
    """Every rank printed its copy of --help (and of a command's help, and --version)."""
    for args in (["--help"], ["train", "--help"], ["--version"]):
        out = mpirun(2, ["-m", "nablanet.cli", *args], tmp_path)
        first = out.splitlines()[0]
        assert out.count(first) == 1 and out.strip(), out


LEAD_THREADS = textwrap.dedent("""
    import json
    import numpy as np
    from threadpoolctl import threadpool_info
    from nablanet.distributed import get_comm, thread_limit
    from nablanet.nn import MLP
    from nablanet.train import Trainer

    comm = get_comm()
    X, y = np.random.default_rng(0).standard_normal((32, 3)), np.arange(32) % 2
    out = {}
    with thread_limit(None, comm):  # as the command line: each rank its share of the cores
        share = max(lib["num_threads"] for lib in threadpool_info())
        for threads in (None, 3):
            t = Trainer(MLP([3, 4, 2], output_activation="softmax", seed=0), "cross_entropy", seed=0, comm=comm,
                        parallel="lead", threads=threads)
            t.fit(X, y, epochs=2, batch_size=8)
            after = max(lib["num_threads"] for lib in threadpool_info())
            out[str(threads)] = {"share": share, "trained_with": t.lead_threads, "after": after}
    if comm.is_root:
        print(json.dumps(out))
    """)


def test_rank_0_leading_trains_with_the_threads_of_its_machine(tmp_path):
    """Rank 0 raises its BLAS limit from its share of the cores to what one process uses (all of them), or to
    ``threads``, for the fit, and restores its share after."""
    from nablanet.distributed import _cores

    script = tmp_path / "threads.py"
    script.write_text(LEAD_THREADS)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                            "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    r = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    share = max(1, _cores() // 2)
    assert doc["None"] == {"share": share, "trained_with": _cores(), "after": share}, doc
    assert doc["3"] == {"share": share, "trained_with": 3, "after": share}, doc


SIGNAL_IN_THE_HANDOFF = textwrap.dedent("""
    import json, os, sys, time
    import numpy as np
    from nablanet.distributed import get_comm
    from nablanet.nn import MLP
    from nablanet.train import Trainer

    comm = get_comm()
    where, pidfile = sys.argv[1], sys.argv[2]
    X, y = np.random.default_rng(0).standard_normal((64, 3)), np.arange(64) % 2
    t = Trainer(MLP([3, 4, 2], output_activation="softmax", seed=0), "cross_entropy", seed=0, comm=comm,
                parallel="lead")
    follow = Trainer._follow


    def late(self, *args, **kwargs):  # rank 1 comes late to the handoff: rank 0 waits in it
        time.sleep(6)
        return follow(self, *args, **kwargs)


    if comm.rank == 1:
        if where == "before the fit":
            time.sleep(6)
        else:
            Trainer._follow = late
    else:
        with open(pidfile + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(pidfile + ".tmp", pidfile)
    cpu = time.process_time()
    try:
        t.fit(X, y, epochs=3, batch_size=32)
        ended = "returned"
    except KeyboardInterrupt:
        ended = "KeyboardInterrupt"
    ends = comm.comm.allgather({"rank": comm.rank, "ended": ended, "cpu": time.process_time() - cpu})
    if comm.is_root:
        print(json.dumps(ends))
    """)


@pytest.mark.parametrize("where", ["in the handoff", "before the fit"])
def test_ctrl_c_to_rank_0_while_it_waits_for_the_others_ends_every_rank(tmp_path, where):
    """Ctrl-C to rank 0 alone while it waits for a late rank (at the start of a lead fit, or in the handoff at
    its end): it raised KeyboardInterrupt (signal masks hold only the calling thread; MPI's threads took the
    signal) and left the other rank blocked forever; and it spun a core in a blocking MPI wait. Now every
    rank stops with KeyboardInterrupt, and rank 0 waits asleep."""
    import signal
    import time

    script, pidfile = tmp_path / "handoff.py", tmp_path / "rank0.pid"
    script.write_text(SIGNAL_IN_THE_HANDOFF)
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    p = subprocess.Popen([MPIEXEC, "-n", "2", sys.executable, str(script), where, str(pidfile)], cwd=tmp_path,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(3)  # rank 0 waits for rank 1 (6 s late)
        os.kill(int(pidfile.read_text()), signal.SIGINT)
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("a rank hung after Ctrl-C reached rank 0 alone")
    finally:
        p.kill()
        p.wait()
    ends = {d["rank"]: d for d in json.loads(out.strip().splitlines()[-1])}
    assert sorted(ends) == [0, 1] and all(d["ended"] == "KeyboardInterrupt" for d in ends.values()), (out, err)
    assert ends[0]["cpu"] < 2.0, ends  # asleep, not spinning, for 6 s


RANKS_DISAGREE = textwrap.dedent("""
    import json
    import numpy as np
    from nablanet.distributed import get_comm
    from nablanet.nn import MLP
    from nablanet.train import Trainer

    comm = get_comm()
    r = comm.rank
    X, y = np.random.default_rng(0).standard_normal((64, 3)), np.arange(64) % 2
    bad = X.copy()
    bad[3, 1] = np.nan
    cases = {  # (parallel, {fit arguments of rank 0}, {of rank 1})
        "epochs lead": ("lead", {"epochs": 0}, {"epochs": 3}),
        "epochs auto": ("auto", {"epochs": 3}, {"epochs": 0}),
        "batch size auto": ("auto", {"batch_size": 1}, {"batch_size": 64}),
        "batch_size 0 on rank 1": ("lead", {}, {"batch_size": 0}),
        "NaN on rank 0": ("lead", {"X": bad}, {}),
        "unknown metric on rank 1": ("lead", {}, {"metrics": ["no_such_metric"]}),
        "the same": ("lead", {}, {}),
        "a NumPy batch size": ("auto", {"batch_size": np.int64(16)}, {"batch_size": 16}),
    }
    out = {}
    for case, (parallel, *mine) in cases.items():
        t = Trainer(MLP([3, 4, 2], output_activation="softmax", seed=0), "cross_entropy", seed=0, comm=comm,
                    parallel=parallel)
        args = {"X": X, "y": y, "epochs": 2, "batch_size": 16, **mine[r]}
        try:
            t.fit(**args)
            ended = "returned"
        except Exception as e:
            ended = f"{type(e).__name__}: {e}"
        out[case] = comm.comm.allgather(ended)
    if r == 0:
        print(json.dumps(out))
    """)


def test_ranks_that_disagree_when_a_fit_starts_raise_one_error_each(tmp_path):
    """Ranks that called fit with other epochs or batch sizes, or with arguments one rank alone refused, hung
    with no error (each in another collective, or the others waiting for a lead that never came). Now each
    raises one error: the refused rank its own, the others one naming it; different settings are named."""
    script = tmp_path / "disagree.py"
    script.write_text(RANKS_DISAGREE)
    doc = json.loads(mpirun(2, [str(script)], tmp_path, timeout=120).strip().splitlines()[-1])
    for case in ("epochs lead", "epochs auto"):
        assert all(e.startswith("ValueError") and "epochs: rank 0" in e for e in doc[case]), doc[case]
    assert all("batch size: rank 0 1, rank 1 64" in e for e in doc["batch size auto"]), doc
    a, b = doc["batch_size 0 on rank 1"]
    assert "batch_size" in b and a.startswith("ValueError: MPI rank 1 could not start the fit") and b[-40:] in a
    a, b = doc["NaN on rank 0"]
    assert b.startswith("ValueError: MPI rank 0 could not start the fit") and a[a.index(":") + 2:] in b, doc
    a, b = doc["unknown metric on rank 1"]
    assert "no_such_metric" in b and "MPI rank 1" in a and "no_such_metric" in a, doc
    assert doc["the same"] == ["returned", "returned"], doc
    assert doc["a NumPy batch size"] == ["returned", "returned"], doc  # np.int64(16) and 16 are one batch size


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="finds the ranks' processes in /proc")
@pytest.mark.parametrize("sig, code, said", [("SIGINT", 130, "nablanet: interrupted"),
                                             ("SIGTERM", 143, "nablanet: stopped (SIGTERM)")])
def test_ctrl_c_to_a_waiting_rank_alone_stops_the_lead_run_at_the_end_of_an_epoch(tmp_path, sig, code, said):
    """Ctrl-C reaching only a rank that waits while rank 0 leads was deferred until rank 0 finished the whole
    fit; then that rank ended the job while rank 0 still had metrics to write. Now it tells rank 0, which stops
    at the end of the epoch as on its own Ctrl-C: one "interrupted" line, exit 130, a checkpoint to resume."""
    from nablanet.train import load

    returncode, err, took, run = _signal_a_run(tmp_path, sig, (1,))
    assert returncode == code and took < 10, (returncode, took, err)
    assert err.count(said) == 1 and "Traceback" not in err, err
    assert load(run / "checkpoint.npz").epoch > 0


SIGNAL_AS_THE_LEAD_STARTS_OR_ENDS = textwrap.dedent("""
    import json, signal, sys
    import numpy as np
    from nablanet.distributed import get_comm
    from nablanet.nn import MLP
    from nablanet.train import Trainer

    comm = get_comm()
    where = sys.argv[1]
    X, y = np.random.default_rng(0).standard_normal((64, 3)), np.arange(64) % 2
    agree, release = Trainer._check_ranks_agree, Trainer._release


    def agreed(self, *args, **kwargs):  # Ctrl-C the moment the start-of-fit agreement has ended
        out = agree(self, *args, **kwargs)
        if where == f"rank {comm.rank} after the agreement":
            signal.raise_signal(signal.SIGINT)
        return out


    def releasing(self, *args, **kwargs):  # Ctrl-C as rank 0, its training over, sets out to release the others
        signal.raise_signal(signal.SIGINT)
        return release(self, *args, **kwargs)


    Trainer._check_ranks_agree = agreed
    if where == "rank 0 as it releases":
        Trainer._release = releasing
    t = Trainer(MLP([3, 4, 2], output_activation="softmax", seed=0), "cross_entropy", seed=0, comm=comm,
                parallel="lead")
    try:  # (only a stop relayed by rank 1 ends a million epochs)
        t.fit(X, y, epochs=3 if where == "rank 0 as it releases" else 10**6, batch_size=16)
        ended = "returned"
    except KeyboardInterrupt:
        ended = "KeyboardInterrupt"
    Trainer._check_ranks_agree, Trainer._release = agree, release
    got = comm.comm.allgather((t.get_flat_params().tobytes(), t.epoch, t.interrupted))
    t.fit(X, y, epochs=1, batch_size=16)  # nothing of the stop is left for the next fit
    if comm.is_root:
        print(json.dumps({"ended": comm.comm.gather(ended), "same": all(g[0] == got[0][0] for g in got),
                          "epochs": [g[1] for g in got], "interrupted": [g[2] for g in got], "next": t.epoch}))
    else:
        comm.comm.gather(ended)
    """)


@pytest.mark.parametrize("where", ["rank 1 after the agreement", "rank 0 after the agreement",
                                   "rank 0 as it releases"])
def test_a_signal_between_the_agreement_and_the_handoff_stops_every_rank(tmp_path, where):
    """lead: a signal reaching a rank after the start-of-fit agreement had ended (its handlers put back) and
    before that rank caught signals again (a waiting rank's wait, rank 0's release of the others) raised there:
    a waiting rank left the fit without telling rank 0, which then waited for it forever in its release; rank 0
    left the fit without releasing the others, who waited for it forever. Now signals are caught over the whole
    span, the one to a waiting rank is sent on to rank 0, and every rank stops as on a signal during the wait."""
    script = tmp_path / "span.py"
    script.write_text(SIGNAL_AS_THE_LEAD_STARTS_OR_ENDS)
    doc = json.loads(mpirun(2, [str(script), where], tmp_path, timeout=120).strip().splitlines()[-1])
    assert doc["ended"] == ["KeyboardInterrupt"] * 2 and doc["same"], doc
    assert doc["interrupted"] == [True, True], doc
    # rank 0 trained until rank 1's word came, stopped before its first epoch, or had trained its 3 epochs
    epochs = {"rank 1 after the agreement": range(1, 10**6), "rank 0 after the agreement": [0],
              "rank 0 as it releases": [3]}[where]
    assert doc["epochs"][0] in epochs and doc["epochs"][1] == doc["epochs"][0], doc
    assert doc["next"] == doc["epochs"][0] + 1, doc


SIGNAL_AFTER_THE_AGREEMENT_ON_THE_COMMAND_LINE = textwrap.dedent("""
    import signal, sys
    from nablanet.cli import main
    from nablanet.distributed import get_comm
    from nablanet.train import Trainer

    comm = get_comm()
    agree = Trainer._check_ranks_agree


    def agreed(self, *args, **kwargs):  # the signal reaches the waiting rank the moment the agreement has ended
        out = agree(self, *args, **kwargs)
        if comm.rank == 1:
            signal.raise_signal(getattr(signal, sys.argv[1]))
        return out


    Trainer._check_ranks_agree = agreed
    sys.exit(main(["train", "--data", "breast_cancer", "--hidden", "8", "--epochs", "100000", "--parallel", "lead",
                   "--no-plots", "--checkpoint-seconds", "0", "--out", sys.argv[2]]))
    """)


@pytest.mark.parametrize("sig, code, said", [("SIGINT", 130, "nablanet: interrupted"),
                                             ("SIGTERM", 143, "nablanet: stopped (SIGTERM)")])
def test_a_signal_to_the_waiting_rank_as_the_agreement_ends_stops_the_lead_run(tmp_path, sig, code, said):
    """The command line, --parallel lead: a signal reaching the waiting rank between the agreement and its wait
    ended that rank alone; rank 0, told nothing, trained on until the rank ended the job, saying nothing. Now
    rank 0 hears of it and stops at the end of its epoch: one line, the signal's exit code, a run to resume."""
    from nablanet.train import load

    script, run = tmp_path / "cli.py", tmp_path / "run"
    script.write_text(SIGNAL_AFTER_THE_AGREEMENT_ON_THE_COMMAND_LINE)
    _, err = mpirun(2, [str(script), sig, str(run)], tmp_path, timeout=120, stderr=True, returncode=code)
    assert err.count(said) == 1 and "Traceback" not in err, err
    epoch = load(run / "checkpoint.npz").epoch
    assert 0 < epoch < 100000
    mpirun(2, ["-m", "nablanet.cli", "train", "--resume", str(run), "--epochs", str(epoch + 1)], tmp_path)
    assert load(run / "checkpoint.npz").epoch == epoch + 1


def test_the_data_fingerprint_hashes_a_bounded_sample_and_sums_the_whole(monkeypatch):
    """The ranks' data check hashed all of X and y with BLAKE2b at every fit (0.16-0.20 s for 60000 x 784
    float32, more than an epoch); now a strided sample of at most FINGERPRINT_BYTES of rows per array, and the
    float64 sum of the whole array, which still sees one value changed outside the sample."""
    import hashlib

    from nablanet.train import loop

    hashed, real = [], hashlib.blake2b

    def counting(data=b"", **kwargs):
        hashed.append(memoryview(data).nbytes)
        return real(data, **kwargs)

    monkeypatch.setattr(hashlib, "blake2b", counting)
    X = np.random.default_rng(0).standard_normal((20000, 100)).astype(np.float32)  # 8 MB
    y = np.arange(20000) % 3
    mine = loop.Trainer._fingerprints(X, y, None)
    assert hashed and max(hashed) <= loop.FINGERPRINT_BYTES, hashed
    loop.Trainer._compare_data([mine, loop.Trainer._fingerprints(X.copy(), y.copy(), None)])
    sampled = set(np.linspace(0, len(X) - 1, loop.FINGERPRINT_BYTES // (100 * 4)).astype(int))
    row = next(r for r in range(len(X)) if r not in sampled)
    X2 = X.copy()
    X2[row, 7] += 0.5
    with pytest.raises(ValueError, match="rank 1"):
        loop.Trainer._compare_data([mine, loop.Trainer._fingerprints(X2, y, None)])


LEAD_CALLBACKS = textwrap.dedent("""
    import json
    import numpy as np
    from nablanet.distributed import get_comm
    from nablanet.nn import MLP
    from nablanet.train import EarlyStopping, ReduceLROnPlateau, Trainer

    comm = get_comm()
    X, y = np.random.default_rng(0).standard_normal((64, 3)), np.arange(64) % 2
    t = Trainer(MLP([3, 4, 2], output_activation="softmax", seed=0), "cross_entropy", seed=0, comm=comm,
                parallel="lead")
    stops = EarlyStopping(monitor="loss", patience=2, min_delta=1e9)  # stops at the third epoch
    goes_on = EarlyStopping(monitor="loss", patience=100)
    goes_on.state_key = "goes on"
    plateau = ReduceLROnPlateau(monitor="loss", patience=1, min_delta=1e9)
    t.fit(X, y, epochs=6, batch_size=16, callbacks=[stops, goes_on, plateau])
    seen = [[getattr(cb, k, "unset") for k in ("best", "best_epoch", "wait", "stopped_epoch")]
            for cb in (stops, goes_on)] + [plateau.state_dict()]
    every = comm.comm.allgather(seen)
    if comm.is_root:
        print(json.dumps({"every": every, "epoch": t.epoch}))
    """)


def test_callbacks_on_the_waiting_ranks_match_rank_0s_after_a_lead_fit(tmp_path):
    """Callbacks run on rank 0 alone under lead; the waiting ranks' callback objects were left unset
    (es.best, es.stopped_epoch raised AttributeError). Now they take rank 0's filed state."""
    script = tmp_path / "callbacks.py"
    script.write_text(LEAD_CALLBACKS)
    doc = json.loads(mpirun(2, [str(script)], tmp_path, timeout=120).strip().splitlines()[-1])
    rank0, rank1 = doc["every"]
    assert doc["epoch"] == 3 and rank0[0][3] == 2 and rank0[1][3] is None, doc
    assert rank1 == rank0, doc


def test_the_data_fingerprint_does_not_depend_on_the_memory_layout():
    """The same standardized data held in Fortran order on one rank was "other values": the float64 sum of the
    whole array rounds otherwise in another layout, and a sum near 0 had no tolerance to absorb it."""
    from nablanet.train import loop

    X = np.random.default_rng(1).standard_normal((100000, 20))
    X = (X - X.mean(0)) / X.std(0)
    y = np.arange(len(X)) % 2
    loop.Trainer._compare_data([loop.Trainer._fingerprints(X, y, None),
                                loop.Trainer._fingerprints(np.asfortranarray(X), y, None)])
    X2 = X.copy()
    X2[12345, 3] += 1e-3
    with pytest.raises(ValueError, match="rank 1's X"):
        loop.Trainer._compare_data([loop.Trainer._fingerprints(X, y, None), loop.Trainer._fingerprints(X2, y, None)])


def test_an_ignored_signal_stays_ignored_while_the_ranks_exchange_state():
    """A SIGINT the program ignores (SIG_IGN, as for a job started with & from a script) was caught during
    the lead handoff and the start-of-fit agreement, and stopped every rank."""
    import signal

    from nablanet.train.loop import _SignalsCaught

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _SignalsCaught() as caught:
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
        assert caught.caught == []
        caught.reraise()  # nothing to act on
    finally:
        signal.signal(signal.SIGINT, previous)


class _DoneRequest:
    def Test(self):  # noqa: N802 - MPI's name
        return True


def test_a_waiting_rank_acts_on_its_signal_when_rank_0_failed():
    """A rank waiting for rank 0 (parallel="lead") that was stopped by Ctrl-C while it waited, and then heard
    that rank 0 failed, raised LeadFailed and dropped the signal (a default SIGTERM never ended it). Now the
    signal is acted on first, whatever rank 0 said."""
    import signal

    from nablanet.nn import MLP
    from nablanet.train import Trainer
    from nablanet.train.loop import _SignalsCaught

    class MPIComm:
        def Ibarrier(self):  # noqa: N802 - MPI's name
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while this rank waits
            return _DoneRequest()

        def gather(self, obj, root=0):
            return None

    class Comm:
        comm = MPIComm()

        def bcast_object(self, obj, root=0):
            return ("error", "rank 0's error"), None

    t = Trainer(MLP([3, 4, 1], seed=0), "mse", seed=0)
    t.comm = Comm()
    with pytest.raises(KeyboardInterrupt), _SignalsCaught() as signals:  # (the fit's block, from its agreement on)
        t._follow((), signals)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_whose_handler_returns_does_not_stop_the_ranks():
    """A SIGTERM handler that only sets a flag (finish gracefully, as on a cluster's preemption) let one
    process train on, but was caught during the lead handoff and the start-of-fit agreement as a stop. Now the
    handler runs when the signal comes, as it would have; only what it raises (or the system's default action)
    stops the ranks, and is raised once."""
    import signal

    from nablanet.train.loop import _SignalsCaught

    flags = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: flags.append(signum))
    try:
        with _SignalsCaught() as caught:
            os.kill(os.getpid(), signal.SIGTERM)
        assert flags == [signal.SIGTERM] and caught.caught == []
        caught.reraise()
        with pytest.raises(KeyboardInterrupt), _SignalsCaught() as caught:
            os.kill(os.getpid(), signal.SIGINT)  # Python's handler: KeyboardInterrupt, kept, raised at the end
        assert caught.caught == [signal.SIGINT]
        caught.reraise()  # once
    finally:
        signal.signal(signal.SIGTERM, previous)


LEAD_WAKE = textwrap.dedent("""
    import errno, json, socket, sys, time
    import numpy as np
    from nablanet import distributed
    from nablanet.distributed import get_comm
    from nablanet.nn import MLP
    from nablanet.train import Trainer, loop

    comm = get_comm()
    case = sys.argv[1]
    waits = []
    real_wait, real_drain, real_follow = loop._wait_asleep, loop._drain, Trainer._follow


    class Counted:  # the barrier a waiting rank tests: once each time it wakes
        def __init__(self, request):
            self.request, self.tests = request, 0

        def Test(self):
            self.tests += 1
            return self.request.Test()


    def counted_wait(request, between=None, *wake):
        if between is None:  # (the agreement's wait, rank 0's in the release)
            return real_wait(request, between, *wake)
        counted, t0, woken = Counted(request), time.perf_counter(), []
        # called when a datagram woke it (after a test of the barrier: not a reading of stale ones first)
        loop._drain = lambda sock: woken.append(counted.tests) or real_drain(sock)
        try:
            return real_wait(counted, between, *wake)
        finally:
            loop._drain = real_drain
            waits.append({"tests": counted.tests, "seconds": time.perf_counter() - t0,
                          "socket": bool(wake) and wake[0] is not None, "woken": any(woken)})


    def late_follow(self, *args, **kwargs):  # the waiting rank reaches its wait after rank 0's short fit ended
        time.sleep(0.05)
        return real_follow(self, *args, **kwargs)


    def trainer(comm):
        return Trainer(MLP([20, 128, 64, 2], output_activation="softmax", seed=0, dtype=np.float64),
                       "cross_entropy", seed=0, comm=comm, parallel="lead")


    loop._wait_asleep = counted_wait
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((2000, 20)), rng.integers(0, 2, 2000)
    t = trainer(comm)
    fits = [30, 30, 30]
    if case == "late":
        Trainer._follow, fits = late_follow, [1] * 4
    if case == "probe failed once":
        distributed._wake_socket()
        real_socket = socket.socket

        class Failing(real_socket):
            def __init__(self, *a, **k):
                raise OSError(errno.EMFILE, "Too many open files")

        if comm.is_root:
            socket.socket = Failing  # rank 0's probe cannot make its socket, this once (the fds ran out)
        t.fit(X, y, epochs=1, batch_size=500)
        socket.socket = real_socket
        waits.clear()
        fits = [1] * 4
    for epochs in fits:
        t.fit(X, y, epochs=epochs, batch_size=32)
    every = comm.comm.gather({"waits": waits, "params": t.get_flat_params().tobytes().hex()})
    if comm.is_root:
        one = trainer(None)
        if case == "probe failed once":
            one.fit(X, y, epochs=1, batch_size=500)
        for epochs in fits:
            one.fit(X, y, epochs=epochs, batch_size=32)
        print(json.dumps({"waits": [e["waits"] for e in every[1:]],
                          "same": all(e["params"] == one.get_flat_params().tobytes().hex() for e in every)}))
    """)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the wake-up socket is in Linux's abstract namespace")
@pytest.mark.parametrize("case, ranks", [("asleep", 2), ("late", 2), ("probe failed once", 2), ("probe failed once", 3)])
def test_a_waiting_rank_sleeps_through_rank_0s_fit_and_wakes_when_released(tmp_path, case, ranks):
    """The rank waiting while rank 0 leads tested its barrier every 2 ms: about 500 wake-ups a second on the
    cores rank 0 trains with, and rank 0's release waited up to 2 ms for it. Now it sleeps on its wake-up
    socket (tests every 50 ms) and rank 0's datagram wakes it as it releases it, in every fit: also a rank that
    reaches its wait after rank 0's short fit has ended (the datagram waiting there is this fit's: stale ones are
    read before the agreement), and after rank 0 failed once to probe its name (EMFILE: not known, so not
    taken for "another machine" for good, which left the ranks to sleep out their 50 ms polls). The ranks end
    with one process's parameters."""
    script = tmp_path / "wake.py"
    script.write_text(LEAD_WAKE)
    doc = json.loads(mpirun(ranks, [str(script), case], tmp_path, timeout=300).strip().splitlines()[-1])
    assert doc["same"], doc
    for waits in doc["waits"]:
        assert len(waits) == (3 if case == "asleep" else 4), doc
        for w in waits:  # 2 ms naps: ~500 tests a second; asleep: 20, and a few once woken (3 ranks: up to ~8)
            assert w["socket"] and w["woken"] and w["tests"] < 10 + w["seconds"] / 0.04, doc


ERROR_THEN_SIGNAL = textwrap.dedent("""
    import json, signal
    import numpy as np
    from nablanet.distributed import get_comm
    from nablanet.nn import MLP
    from nablanet.train import Trainer
    from nablanet.train.callbacks import Callback

    comm = get_comm()

    class Boom(ValueError):
        def __str__(self):  # a Ctrl-C as rank 0 puts its error into words for the others
            signal.raise_signal(signal.SIGINT)
            return "boom"

    class Raise(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 1:
                raise Boom()

    X, y = np.random.default_rng(0).standard_normal((64, 3)), np.arange(64) % 2
    t = Trainer(MLP([3, 4, 2], output_activation="softmax", seed=0), "cross_entropy", seed=0, comm=comm,
                parallel="lead")
    try:
        t.fit(X, y, epochs=5, batch_size=16, callbacks=[Raise()] if comm.is_root else [])
        ended = "returned"
    except BaseException as e:
        ended = f"{type(e).__name__}: {e}"
    print(json.dumps({"rank": comm.rank, "ended": ended}), flush=True)
    """)


def test_a_signal_while_rank_0_words_its_error_still_sends_the_error(tmp_path):
    """While rank 0 made its error into the word for the others a signal stopped it at once (it was still
    training as far as the block knew): the others heard "its training ended without a word" (found by
    review).  Now the signal is recorded, and the others hear the error."""
    (tmp_path / "s.py").write_text(ERROR_THEN_SIGNAL)
    text, out, at = mpirun(2, ["s.py"], tmp_path), [], 0
    while (at := text.find("{", at)) >= 0:  # (the ranks' lines may come on one line of mpiexec's output)
        doc, at = json.JSONDecoder().raw_decode(text, at)
        out.append(doc)
    ended = {r["rank"]: r["ended"] for r in out}
    assert "Boom: boom" in ended[1] and "without a word" not in ended[1], ended
