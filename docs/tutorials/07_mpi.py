# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Scaling out: data-parallel training and sweeps over MPI
#
# When one process is not enough, nablanet splits every global minibatch
# into one shard per MPI rank. Each rank differentiates the cost of its shard
# (weighted by its share of the batch), one `Allreduce` per step sums the flat
# gradient buffer, and every rank applies the same update, so the ranks hold
# the same parameters at every step (`parallel="shard"`). When a step is too
# small to share, rank 0 trains alone instead, as one process would, with the
# cores of its machine's ranks, while the others wait asleep and take its
# state at the end (`parallel="lead"`; callbacks run on rank 0 only); the
# default, `"auto"`, times both on the first batch and keeps the faster. Sweeps spread their
# points over the ranks. The same commands run under `mpiexec` (or `srun` on
# a cluster):
#
# ```bash
# pip install "nablanet[mpi]"        # mpi4py and MPICH from PyPI
# mpiexec -n 4 nablanet train --data fashion_mnist --hidden 256,128 --epochs 20
# mpiexec -n 8 nablanet sweep --grid lr=1e-4,1e-3,1e-2 --grid l2=0,1e-4,1e-3
# ```
#
# From Python, a `Trainer` takes the communicator:
# `Trainer(model, ..., comm=nablanet.distributed.get_comm())`. Below we run a
# script under `mpiexec -n 2` from this notebook and check the central claim:
# two ranks train the same parameters as one process, to float rounding.

# %%
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

bindir = pathlib.Path(sys.executable).parent
mpiexec = bindir / "mpiexec"
print("mpiexec:", mpiexec, "found" if mpiexec.exists() else "missing (pip install 'nablanet[mpi]')")

script = r'''
import json, sys, time
import numpy as np
from nablanet.data import load_dataset, split_scale
from nablanet.distributed import get_comm
from nablanet.nn import MLP
from nablanet.train import Trainer

comm = get_comm() if len(sys.argv) > 2 and sys.argv[2] == "mpi" else None
ds = load_dataset("digits")
Xtr, Xte, ytr, yte, _ = split_scale(ds, seed=0)
model = MLP([64, 128, 64, 10], activation="relu", output_activation="softmax", seed=0, dtype=np.float64)
trainer = Trainer(model, "cross_entropy", "sgd", lr=0.05, seed=0, comm=comm)
t0 = time.perf_counter()
hist = trainer.fit(Xtr, ytr, epochs=10, batch_size=64, validation_data=(Xte, yte), metrics=["accuracy"])
seconds = time.perf_counter() - t0
if comm is None or comm.is_root:
    flat = np.concatenate([np.ravel(v) for p in model.params for v in p.values()])
    np.save(sys.argv[1] + ".npy", flat)
    json.dump({"seconds": seconds, "val_accuracy": hist["val_accuracy"][-1]}, open(sys.argv[1] + ".json", "w"))
'''
work = pathlib.Path(tempfile.mkdtemp())
(work / "train.py").write_text(script)
env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
runs = {}
for name, out, launch in (("1 process", "one", [sys.executable]),
                          ("2 ranks", "two", [str(mpiexec), "-n", "2", sys.executable])):
    cmd = [*launch, str(work / "train.py"), str(work / out), *(["mpi"] if "ranks" in name else [])]
    subprocess.run(cmd, check=True, env=env, cwd=work, timeout=300)
    runs[name] = json.loads((work / f"{out}.json").read_text())
    print(f"{name:10s} training {runs[name]['seconds']:.2f} s, test accuracy {runs[name]['val_accuracy']:.4f}")

# %%
one, two = np.load(work / "one.npy"), np.load(work / "two.npy")
diff = np.max(np.abs(one - two)) / np.max(np.abs(one))
print(f"parameters after 10 epochs: largest relative difference between 1 process and 2 ranks = {diff:.1e}")
assert diff < 1e-10
assert abs(runs["1 process"]["val_accuracy"] - runs["2 ranks"]["val_accuracy"]) < 1e-9

# %% [markdown]
# ## When ranks pay
#
# A sharded step all-reduces 4 bytes per parameter (8 in float64) and every
# rank still runs the optimizer over all parameters and the per-step Python
# cost; only the work that grows with the batch (the matrix products, the
# elementwise passes) is divided. For a network this small, on a machine
# this small, the fixed cost dominates and sharding would make two ranks
# slower than one; `parallel="auto"` then lets rank 0 lead (the timings
# above), and `trainer.parallel_mode` says which it chose. For large layers the products dominate and sharding pays
# until each rank's share of them nears the all-reduce; the README's table
# (`benchmarks/bench_allreduce.py`) puts numbers on that for four networks.
# `nablanet train` under `mpiexec` limits each rank's BLAS threads to its
# share of the cores, so adding ranks on one machine never oversubscribes it;
# a script of your own, like this one, does not: wrap its training in
# `with thread_limit(None, comm):` (from `nablanet.distributed`), or set
# `OMP_NUM_THREADS` / `OPENBLAS_NUM_THREADS` as above. (Rank 0 leading raises
# its limit to one process's for the fit, within those variables.)
