"""Overhead around training, measured as ratios (the machine is shared: medians of repeats).

1. Run folder: a 30-epoch breast-cancer fit through ``run_training`` (what
   ``nablanet train`` runs) with no folder, with a folder (configuration,
   metrics, checkpoints on the default cadence) and with its plots too.
2. Parallel sweep: 20 small points (breast cancer, 16 hidden units, 10
   epochs) as a plain loop, with ``--jobs 1`` and ``--jobs 2``.
3. MPI: ``nablanet train --hidden 256,128 --epochs 20`` in one process and
   under ``mpiexec -n 2`` (each rank limits BLAS to its share of the cores).

Run:  python benchmarks/bench_overhead.py [--json] [--repeats 5] [--skip-mpi]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_folder(repeats):
    from nablanet.experiments import run_training

    cfg = {"data": "breast_cancer", "epochs": 30}
    run_training(cfg)  # warm caches and imports
    out = {}

    def with_folder(plots):
        d = tempfile.mkdtemp()
        try:
            r = run_training(cfg, out_dir=d, plots=plots)
        finally:
            shutil.rmtree(d)
        return r

    out["fit_seconds"] = median_time(lambda: run_training(cfg), repeats)
    out["fit_with_folder_seconds"] = median_time(lambda: with_folder(False), repeats)
    out["fit_with_folder_and_plots_seconds"] = median_time(lambda: with_folder(True), repeats)
    out["folder_overhead"] = out["fit_with_folder_seconds"] / out["fit_seconds"] - 1
    out["plots_overhead"] = out["fit_with_folder_and_plots_seconds"] / out["fit_seconds"] - 1
    return out


def parallel_sweep(repeats):
    from nablanet.experiments import run_training, sweep

    base = {"data": "breast_cancer", "hidden": [16], "epochs": 10}
    grid = {"lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], "l2": [0.0, 1e-4, 1e-3, 1e-2]}  # 20 points

    def loop():
        for lr in grid["lr"]:
            for l2 in grid["l2"]:
                run_training({**base, "lr": lr, "l2": l2})

    def swept(jobs):
        d = tempfile.mkdtemp()
        try:
            sweep(base, grid, d, jobs=jobs)
        finally:
            shutil.rmtree(d)

    out = {"plain_loop_seconds": median_time(loop, repeats), "jobs1_seconds": median_time(lambda: swept(1), repeats),
           "jobs2_seconds": median_time(lambda: swept(2), repeats)}
    out["speedup_2_over_1"] = out["jobs1_seconds"] / out["jobs2_seconds"]
    out["speedup_2_over_loop"] = out["plain_loop_seconds"] / out["jobs2_seconds"]
    return out


def mpi(repeats):
    mpiexec = shutil.which("mpiexec") or os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.path.exists(mpiexec):
        return {"skipped": "no mpiexec"}
    args = [sys.executable, "-m", "nablanet.cli", "train", "--hidden", "256,128", "--epochs", "20", "--no-progress",
            "--no-plots", "--json"]

    def once(cmd):
        d = tempfile.mkdtemp()
        try:
            res = subprocess.run(cmd + ["--out", d], capture_output=True, text=True, check=True, timeout=900)
        finally:
            shutil.rmtree(d)
        return json.loads(res.stdout)["final"]["train_seconds"]

    one = statistics.median(once(args) for _ in range(repeats))
    two = statistics.median(once([mpiexec, "-n", "2"] + args) for _ in range(repeats))
    return {"one_process_train_seconds": one, "mpiexec_n2_train_seconds": two, "ratio_n2_over_1": two / one}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--skip-mpi", action="store_true")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    res = {"cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
           "load_average": os.getloadavg()[0], "run_folder": run_folder(a.repeats),
           "parallel_sweep": parallel_sweep(max(1, a.repeats // 2))}
    if not a.skip_mpi:
        res["mpi"] = mpi(max(1, a.repeats // 2))
    if a.json:
        print(json.dumps(res, indent=2))
        return
    for section, vals in res.items():
        if isinstance(vals, dict):
            print(section)
            for k, v in vals.items():
                print(f"  {k:36s} {v:.3f}" if isinstance(v, float) else f"  {k:36s} {v}")
        else:
            print(f"{section}: {vals}")


if __name__ == "__main__":
    main()
