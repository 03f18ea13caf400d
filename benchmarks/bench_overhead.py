"""Overhead around training, measured as ratios (the machine is shared: medians of repeats).

Besides wall time, each case reports CPU seconds (this process, and its worker processes): on a machine
whose cores other jobs hold, the wall time of parallel work says little, while CPU seconds change little
with the load.  ``idle_estimate_2_over_1`` is what ``jobs=2`` would gain on 2 free cores: the one-process
sweep's CPU time over the parallel one's critical path, the longer of the two processes that train side by
side (the sweep process, and its one worker).
The sweep cases run in turn, one of each per round (the machine's speed drifts: measured one case after
the other, the drift fell on one case; ``speedup_2_over_1_per_round`` is the median of the rounds' ratios),
and each sweep is followed by half a second idle; ``*_cpu_seconds_after`` is this process's CPU time in it
(a sweep with workers restores this process's BLAS limits at its end, which restarts the BLAS threads the
fork stopped; they busy-wait before they sleep).

1. Run folder: a 30-epoch breast-cancer fit through ``run_training`` (what
   ``nablanet train`` runs) with no folder, with a folder (configuration,
   metrics, checkpoints on the default cadence) and with its plots too;
   ``folder_overhead_per_pair``: the median difference of fits without and
   with a folder run in turn, over the median fit without.
2. Parallel sweep: 20 small points (breast cancer, 16 hidden units) as a
   plain loop, with ``--jobs 1`` and ``--jobs 2`` (the sweep process and one
   worker); at 10 epochs a point (about 10 ms, where a worker's fixed costs
   weigh most) and at the default 30 (``--sweep-epochs`` sets them).
3. MPI: ``nablanet train --hidden 256,128 --epochs 20`` in one process and
   under ``mpiexec -n 2`` (each rank limits BLAS to its share of the cores;
   rank 0 leading, ``lead``, takes the machine's for its fit), with
   ``--parallel auto`` (the default; which mode it chose) and with each mode
   (shard, lead) named, against one process with its default threads (all cores) and
   with one thread (``*_over_best_1``: against the faster of the two); the runs
   of one round are interleaved.

Run:  python benchmarks/bench_overhead.py [--json] [--repeats 5] [--skip-mpi | --only-mpi]
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

try:
    import resource
except ImportError:  # not on Windows
    resource = None


def _cpu():
    """CPU seconds (user + system) of this process and of its waited-for children."""
    if resource is None:
        return time.process_time(), 0.0
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def measure(fn, repeats, settle=0.0, after=None):
    """Medians over ``repeats`` of wall seconds, this process's CPU seconds and its children's.

    With ``settle``, each call is followed by that many idle seconds, so what it leaves running (BLAS
    threads busy-waiting before they sleep) does not slow the next call; the CPU seconds this process
    spends in them are appended to the list ``after``."""
    wall, cpu, kids = [], [], []
    for _ in range(repeats):
        c0, t0 = _cpu(), time.perf_counter()
        fn()
        t1, c1 = time.perf_counter(), _cpu()
        wall.append(t1 - t0)
        cpu.append(c1[0] - c0[0])
        if settle:
            time.sleep(settle)
            c2 = _cpu()
            if after is not None:
                after.append(c2[0] - c1[0])
            kids.append(c2[1] - c0[1])  # a sweep's workers are reaped after it returns: counted once they are
        else:
            kids.append(c1[1] - c0[1])
    return statistics.median(wall), statistics.median(cpu), statistics.median(kids)


def median_time(fn, repeats):
    return measure(fn, repeats)[0]


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

    for name, fn in (("fit", lambda: run_training(cfg)), ("fit_with_folder", lambda: with_folder(False)),
                     ("fit_with_folder_and_plots", lambda: with_folder(True))):
        out[f"{name}_seconds"], out[f"{name}_cpu_seconds"], _ = measure(fn, repeats)
    out["folder_overhead"] = out["fit_with_folder_seconds"] / out["fit_seconds"] - 1
    # the folder's few milliseconds beside the machine's drift: pairs, one fit without and one with, in turn
    # (10 per repeat), and the median of their differences, over the median fit without
    pairs = [(median_time(lambda: run_training(cfg), 1), median_time(lambda: with_folder(False), 1))
             for _ in range(10 * repeats)]
    out["folder_seconds_per_pair"] = statistics.median(b - a for a, b in pairs)
    out["folder_overhead_per_pair"] = out["folder_seconds_per_pair"] / statistics.median(a for a, _ in pairs)
    out["plots_overhead"] = out["fit_with_folder_and_plots_seconds"] / out["fit_seconds"] - 1
    out["plots_cpu_seconds"] = out["fit_with_folder_and_plots_cpu_seconds"] - out["fit_with_folder_cpu_seconds"]
    return out


def parallel_sweep(repeats, epochs=10):
    from nablanet.experiments import run_training, sweep

    base = {"data": "breast_cancer", "hidden": [16], "epochs": epochs}
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

    cases = (("plain_loop", loop), ("jobs1", lambda: swept(1)), ("jobs2", lambda: swept(2)))
    got, after = {name: [] for name, _ in cases}, {name: [] for name, _ in cases}
    for _ in range(repeats):  # one of each in turn: the shared machine's drift in speed falls on all three alike
        for name, fn in cases:
            got[name].append(measure(fn, 1, settle=0.5, after=after[name]))
    out = {}
    for name, _ in cases:
        out[f"{name}_seconds"] = statistics.median(g[0] for g in got[name])
        out[f"{name}_cpu_seconds"] = statistics.median(g[1] for g in got[name])
        out[f"{name}_cpu_seconds_after"] = statistics.median(after[name])
    out["jobs2_workers_cpu_seconds"] = statistics.median(g[2] for g in got["jobs2"])
    out["speedup_2_over_1"] = out["jobs1_seconds"] / out["jobs2_seconds"]
    out["speedup_2_over_1_per_round"] = statistics.median(a[0] / b[0] for a, b in zip(got["jobs1"], got["jobs2"]))
    out["speedup_2_over_loop"] = out["plain_loop_seconds"] / out["jobs2_seconds"]
    out["idle_estimate_2_over_1"] = out["jobs1_cpu_seconds"] / max(out["jobs2_cpu_seconds"],
                                                                   out["jobs2_workers_cpu_seconds"])
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
        final = json.loads(res.stdout)["final"]
        return final["train_seconds"], final.get("parallel")

    cases = {"one_process": args, "one_process_1_thread": args + ["--threads", "1"],
             "mpiexec_n2": [mpiexec, "-n", "2"] + args}
    cases.update({f"mpiexec_n2_{m}": [mpiexec, "-n", "2"] + args + ["--parallel", m] for m in ("shard", "lead")})
    times, chose = {k: [] for k in cases}, []
    for _ in range(repeats):
        for k, cmd in cases.items():
            seconds, mode = once(cmd)
            times[k].append(seconds)
            if k == "mpiexec_n2":
                chose.append(mode)
    out = {f"{k}_train_seconds": statistics.median(v) for k, v in times.items()}
    out["auto_chose"] = ",".join(chose)
    best = min(out["one_process_train_seconds"], out["one_process_1_thread_train_seconds"])
    for k in cases:
        if k.startswith("mpiexec_"):
            out[f"ratio_{k.removeprefix('mpiexec_')}_over_1"] = out[f"{k}_train_seconds"] / out["one_process_train_seconds"]
            out[f"ratio_{k.removeprefix('mpiexec_')}_over_best_1"] = out[f"{k}_train_seconds"] / best
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--skip-mpi", action="store_true")
    p.add_argument("--only-mpi", action="store_true")
    p.add_argument("--sweep-epochs", default="10,30", help="the sweep points' epochs, one sweep case each")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    res = {"cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
           "load_average_before": os.getloadavg()[0]}
    if not a.only_mpi:
        res["run_folder"] = run_folder(a.repeats)
        for ep in map(int, a.sweep_epochs.split(",")):
            res[f"parallel_sweep_{ep}_epochs"] = parallel_sweep(max(1, a.repeats // 2), ep)
    if not a.skip_mpi:
        res["mpi"] = mpi(max(1, a.repeats // 2))
    res["load_average_after"] = os.getloadavg()[0]
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
