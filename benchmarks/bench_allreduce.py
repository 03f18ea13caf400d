"""Communication against compute per training step, for the benchmark networks: one process against N ranks.

Data-parallel training all-reduces one flat buffer per step: the gradient,
4 bytes per parameter (float32), plus the cost.  Under ``mpiexec -n N`` this
script measures, for each network, the time of that ``Allreduce`` alone and of
one whole data-parallel step (each rank differentiates its shard of the global
batch, one Allreduce, the update), and puts them beside one step of the whole
batch in one process (``--baseline``, the ``--json`` output of a run without
``mpiexec``), so a user can see where adding ranks stops paying.  Beside the
sharded step (``parallel="shard"``) it times rank 0 leading (``"lead"``: rank 0
steps on the whole batch with the threads of the machine's ranks, the others wait) and the one ``parallel="auto"`` chooses.  Every
process limits its BLAS/OpenMP threads to its share of the cores
(threadpoolctl; ``--threads`` overrides): one process gets all cores, each of
N ranks on the machine a 1/N share.

Run:  python benchmarks/bench_allreduce.py --json > one.json
      mpiexec -n 2 python benchmarks/bench_allreduce.py --baseline one.json [--plot docs/images/mpi_comm_compute.png] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time

import numpy as np

NETS = {"tiny": ([2, 16, 16, 1], 32), "digits": ([64, 64, 10], 32), "mnist": ([784, 128, 64, 10], 128),
        "wide": ([784, 1024, 1024, 10], 256)}


def n_params(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def step_time(sizes, bs, comm=None, reps=20, parallel="shard"):
    """Seconds of one training step on a global batch of ``bs`` rows: the median of ``reps`` steps, each
    started together on every rank (a barrier before it), and the mean over ``reps`` steps in a row, as a
    training takes them (a rank that falls behind makes the others wait in the next Allreduce).  With
    ``comm`` (more than one rank) and ``parallel="shard"`` each rank takes its shard and the step includes the
    Allreduce, as in ``nablanet train`` under mpiexec; with "lead" rank 0 alone steps on the whole batch, with
    the threads one process on the machine would use (the others wait in the barriers);
    with "auto" the trainer chooses (a one-step fit first).  Returns the two times, the CPU seconds per step
    in a row (the most of any rank: on a machine shared with other jobs, what the step would take with a free
    core each; waits in MPI poll, so they count) and the mode."""
    from nablanet.nn import MLP
    from nablanet.train import Trainer

    rng = np.random.default_rng(0)
    X = rng.standard_normal((bs, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], bs) if sizes[-1] > 1 else rng.standard_normal((bs, 1)).astype(np.float32)
    t = Trainer(MLP(sizes, output_activation="softmax" if sizes[-1] > 1 else "identity", seed=0),
                "cross_entropy" if sizes[-1] > 1 else "mse", seed=0, comm=comm, parallel=parallel)
    if comm is not None and parallel == "auto":
        t.fit(X, y, epochs=1, batch_size=bs, shuffle=False)
    if comm is not None and t.parallel_mode == "shard":
        lo, hi = comm.shard(0, bs)
        X, y = X[lo:hi], y[lo:hi]
    from nablanet.distributed import thread_limit

    idle = comm is not None and t.parallel_mode == "lead" and not comm.is_root  # waits while rank 0 steps
    step = (lambda: None) if idle else (lambda: t.train_step(X, y, bs))
    lead = thread_limit() if comm is not None and t.parallel_mode == "lead" and comm.is_root else contextlib.nullcontext()
    with lead:
        for _ in range(3):
            step()
        times = []
        for _ in range(reps):
            if comm is not None:
                comm.barrier()
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        if comm is not None:
            comm.barrier()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            step()
        cpu = (time.process_time() - c0) / reps
    if comm is not None:
        comm.barrier()
        cpu = comm.comm.allreduce(cpu, op=comm.MPI.MAX)
    return statistics.median(times), (time.perf_counter() - t0) / reps, cpu, t.parallel_mode


def allreduce_time(comm, n):
    buf = np.ones(n, np.float32)
    for _ in range(5):
        comm.allreduce_sum_(buf)
    times = []
    for _ in range(200 if n < 1e6 else 30):
        comm.barrier()
        t0 = time.perf_counter()
        comm.allreduce_sum_(buf)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def plot(rows, ranks, path, note=""):
    """Bars per network: one process, N ranks sharding and replicating, and the Allreduce alone; object API, no
    pyplot.  CPU seconds per step when the rows have them (what a step takes with a free core each: on a shared
    machine the wall clock says more about the other jobs), else wall time."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    cpu = all(r.get(k) is not None for r in rows for k in ("cpu_us_one_process", "cpu_us_ranks"))
    in_a_row = all(r.get("step_us_ranks_in_a_row") is not None and r.get("step_us_one_process_in_a_row")
                   is not None for r in rows)  # steps as a training takes them, waits included
    kind, tail = ("cpu_us", "") if cpu else ("step_us", "_in_a_row" if in_a_row else "")
    series = [(f"{kind}_one_process{tail}", "one process: a step of the whole batch", "C0"),
              (f"{kind}_ranks{tail}", f"{ranks} ranks, shard: each its shard + Allreduce", "C1"),
              (f"{kind}_lead{tail}", f"{ranks} ranks, lead: rank 0 the whole batch", "C3"),
              ("allreduce_us", f"the Allreduce over {ranks} ranks alone (timed apart, median wall time)", "C2")]
    series = [s for s in series if all(r.get(s[0]) is not None for r in rows)]
    w = 0.8 / len(series)
    for k, (key, label, color) in enumerate(series):
        ax.bar(x + (k - (len(series) - 1) / 2) * w, [r[key] for r in rows], w, label=label, color=color)
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{r['net']} ({r['params']:,} parameters)\n{r['bytes_allreduced'] / 1024:,.0f} KiB a step"
                      for r in rows], fontsize=8)
    ylabel = ("CPU microseconds per training step (the most of any rank)" if cpu else
              "microseconds per training step" + (" (steps in a row)" if in_a_row else " (median)"))
    ax.set(ylabel=ylabel, title="Communication against compute per step" + note)
    ax.legend(fontsize=8, loc="upper left")
    fig.savefig(path, dpi=100, metadata={"Title": "Communication against compute per step"})


def main(argv=None):
    from threadpoolctl import threadpool_limits

    from nablanet.distributed import get_comm
    from nablanet.experiments import _ranks_on_this_node, default_threads

    ap = argparse.ArgumentParser(description="all-reduce against compute per step, one process against N ranks")
    ap.add_argument("--baseline", help="--json output of a run without mpiexec (one process, all cores)")
    ap.add_argument("--threads", type=int, help="BLAS threads per process (default: the cores / ranks here)")
    ap.add_argument("--plot")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    comm = get_comm()
    threads = args.threads or default_threads(_ranks_on_this_node(comm))
    load = os.getloadavg()[0]
    rows = []
    with threadpool_limits(threads):
        for net, (sizes, bs) in NETS.items():
            n = n_params(sizes) + 1
            row = {"net": net, "params": n - 1, "bytes_allreduced": 4 * n}
            reps = 200 if n < 1e5 else 20
            if comm.size == 1:
                med, mean, cpu, _ = step_time(sizes, bs, reps=reps)
                row["step_us_one_process"], row["step_us_one_process_in_a_row"] = med * 1e6, mean * 1e6
                row["cpu_us_one_process"] = cpu * 1e6
            else:
                row["allreduce_us"] = allreduce_time(comm, n) * 1e6
                for mode, key in (("shard", "ranks"), ("lead", "lead"), ("auto", "auto")):
                    med, mean, cpu, chosen = step_time(sizes, bs, comm, reps=reps, parallel=mode)
                    row[f"step_us_{key}"], row[f"step_us_{key}_in_a_row"] = med * 1e6, mean * 1e6
                    row[f"cpu_us_{key}"] = cpu * 1e6
                row["auto_chose"] = chosen
            rows.append(row)
    if not comm.is_root:
        return
    if args.baseline:
        base = {r["net"]: r for r in json.load(open(args.baseline))["rows"]}
        for r in rows:
            for k in ("step_us_one_process", "step_us_one_process_in_a_row", "cpu_us_one_process"):
                r[k] = base[r["net"]].get(k)
    out = {"ranks": comm.size, "threads_per_process": threads, "cores": os.cpu_count(),
           "load_average": [load, os.getloadavg()[0]], "rows": rows}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        cols = [k for k in ("step_us_one_process", "step_us_one_process_in_a_row", "step_us_ranks",
                            "step_us_ranks_in_a_row", "step_us_lead", "step_us_lead_in_a_row",
                            "step_us_auto", "step_us_auto_in_a_row", "allreduce_us", "cpu_us_one_process",
                            "cpu_us_ranks", "cpu_us_lead", "cpu_us_auto") if rows[0].get(k) is not None]
        print(f"{comm.size} process(es), {threads} thread(s) each, load average {load:.1f}")
        print(f"{'net':<8}{'parameters':>12}{'bytes/step':>12}" + "".join(f"{c.replace('step_us_', ''):>22}" for c in cols)
              + ("  auto chose" if comm.size > 1 else ""))
        for r in rows:
            print(f"{r['net']:<8}{r['params']:>12}{r['bytes_allreduced']:>12}" + "".join(f"{r[c]:>22.1f}" for c in cols)
                  + (f"  {r['auto_chose']}" if comm.size > 1 else ""))
    if args.plot:
        plot(rows, comm.size, args.plot, note=f"\n(2 cores shared with other jobs, load average {load:.0f})")


if __name__ == "__main__":
    main()
