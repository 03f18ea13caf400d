"""Communication against compute per training step, for the benchmark networks.

Data-parallel training all-reduces one flat buffer per step: the gradient,
4 bytes per parameter (float32), plus the cost.  This script measures the
time of that ``Allreduce`` under ``mpiexec -n N`` for each network's size, and
puts it beside the time of one training step of the whole global batch on one
rank (from ``bench_step.py --json``, or measured here), so a user can see
where adding ranks stops paying: once the all-reduce costs as much as the
compute it removes.

Run:  mpiexec -n 2 python benchmarks/bench_allreduce.py [--plot docs/images/mpi_comm_compute.png] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

NETS = {"tiny": ([2, 16, 16, 1], 32), "digits": ([64, 64, 10], 32), "mnist": ([784, 128, 64, 10], 128),
        "wide": ([784, 1024, 1024, 10], 256)}


def n_params(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def step_time(sizes, bs, reps=20):
    from nablanet.nn import MLP
    from nablanet.train import Trainer

    rng = np.random.default_rng(0)
    X = rng.standard_normal((bs, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], bs) if sizes[-1] > 1 else rng.standard_normal((bs, 1)).astype(np.float32)
    t = Trainer(MLP(sizes, output_activation="softmax" if sizes[-1] > 1 else "identity", seed=0),
                "cross_entropy" if sizes[-1] > 1 else "mse", seed=0)
    for _ in range(3):
        t.train_step(X, y)
    t0 = time.perf_counter()
    for _ in range(reps):
        t.train_step(X, y)
    return (time.perf_counter() - t0) / reps


def main(argv=None):
    from threadpoolctl import threadpool_limits

    from nablanet.distributed import get_comm

    ap = argparse.ArgumentParser(description="all-reduce against compute per step")
    ap.add_argument("--plot")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    comm = get_comm()
    threadpool_limits(1)
    rows = []
    for net, (sizes, bs) in NETS.items():
        n = n_params(sizes) + 1
        buf = np.ones(n, np.float32)
        for _ in range(5):
            comm.allreduce_sum_(buf)
        comm.barrier()
        reps = 200 if n < 1e6 else 20
        t0 = time.perf_counter()
        for _ in range(reps):
            comm.allreduce_sum_(buf)
        comm_s = (time.perf_counter() - t0) / reps
        comp_s = step_time(sizes, bs) if comm.is_root else None
        rows.append({"net": net, "params": n - 1, "bytes_allreduced": 4 * n, "allreduce_us": comm_s * 1e6,
                     "step_us_one_rank": None if comp_s is None else comp_s * 1e6})
    if not comm.is_root:
        return
    if args.json:
        print(json.dumps({"ranks": comm.size, "rows": rows}, indent=2))
    else:
        print(f"{'net':<8}{'parameters':>12}{'bytes/step':>12}{'allreduce us':>14}{'step us (1 rank)':>18}")
        for r in rows:
            print(f"{r['net']:<8}{r['params']:>12}{r['bytes_allreduced']:>12}{r['allreduce_us']:>14.1f}"
                  f"{r['step_us_one_rank']:>18.1f}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [r["step_us_one_rank"] for r in rows], 0.4, label="compute: one step, whole batch, 1 rank")
        ax.bar(x + 0.2, [r["allreduce_us"] for r in rows], 0.4, label=f"communication: Allreduce over {comm.size} ranks")
        ax.set_yscale("log")
        ax.set_xticks(x)
        ax.set_xticklabels([f"{r['net']}\n{r['bytes_allreduced'] / 1024:.0f} KiB" for r in rows])
        ax.set(ylabel="microseconds per step", xlabel="network (bytes all-reduced per step)",
               title="Communication against compute per training step")
        ax.legend(fontsize=8)
        fig.savefig(args.plot, dpi=110, bbox_inches="tight", metadata={"Title": "Communication against compute"})


if __name__ == "__main__":
    main()
