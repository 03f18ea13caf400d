"""Engine overhead per traced primitive: nablanet against HIPS autograd.

The workload is a chain of small elementwise operations (forward and backward)
on a small array, where NumPy's own work is tiny and what is left is each
engine's bookkeeping: tracing a call, recording it, and running its rule on
the way back.  The systems are timed interleaved, repetition by repetition, in
one process, so that drift of the machine hits all of them alike.

    overhead per op = (time of grad) / ops  -  (time of the same forward and
                      backward written by hand in NumPy) / ops

Run:  python benchmarks/bench_engine.py [--json] [--reps 15] [--clock cpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np

import nablanet as nb
import nablanet.numpy as anp

N_ITER = 250  # each iteration is 4 primitives: tanh, multiply, multiply, add
OPS = 4 * N_ITER + 1
SHAPE = (16,)


def chain(np_):
    def f(x):
        for _ in range(N_ITER):
            x = np_.tanh(x) * 0.9 + x * 0.1
        return np_.sum(x)

    return f


def by_hand(x):
    """The same forward and backward in plain NumPy: the floor for any engine."""
    ys = []
    for _ in range(N_ITER):
        y = np.tanh(x)
        ys.append(y)
        x = y * 0.9 + x * 0.1
    g = np.ones_like(x)
    for y in reversed(ys):
        g = g * 0.9 * (1.0 - y * y) + g * 0.1
    return g


def _time(fn, x, inner=3, clock=time.perf_counter):
    t0 = clock()
    for _ in range(inner):
        fn(x)
    return (clock() - t0) / inner


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall time, or the process's CPU time (on a shared machine: without the time spent "
                         "waiting for the core)")
    args = ap.parse_args(argv)
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    x = np.linspace(0.1, 0.9, SHAPE[0])
    systems = {"numpy by hand": by_hand, "nablanet": nb.grad(chain(anp))}
    try:
        import autograd
        import autograd.numpy as agnp

        systems["autograd"] = autograd.grad(chain(agnp))
    except ImportError:
        pass
    ref = by_hand(x)
    for name, fn in systems.items():
        if not np.allclose(fn(x), ref, rtol=1e-12, atol=0):
            raise SystemExit(f"{name} computes a different gradient")
    times = {k: [] for k in systems}
    for _ in range(args.reps):
        for name, fn in systems.items():
            times[name].append(_time(fn, x, clock=clock))
    med = {k: statistics.median(v) for k, v in times.items()}
    per_op = {k: v / OPS * 1e6 for k, v in med.items()}
    floor = per_op["numpy by hand"]
    overhead = {k: per_op[k] - floor for k in systems if k != "numpy by hand"}
    result = {
        "benchmark": "engine overhead per traced primitive (forward + backward)",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "array_shape": SHAPE,
        "ops": OPS,
        "clock": args.clock,
        "us_per_op": per_op,
        "overhead_us_per_op": overhead,
    }
    if "autograd" in overhead:
        result["overhead_ratio_nablanet_over_autograd"] = overhead["nablanet"] / overhead["autograd"]
    if args.json:
        print(json.dumps(result, indent=2))
        return result
    print(f"engine overhead per primitive, {OPS} ops on shape {SHAPE}, median of {args.reps}, {args.clock} clock")
    print(f"{'system':<16}{'total us/op':>14}{'overhead us/op':>17}")
    for k, v in per_op.items():
        print(f"{k:<16}{v:>14.2f}{overhead.get(k, 0.0):>17.2f}")
    if "overhead_ratio_nablanet_over_autograd" in result:
        print(f"\nnablanet / autograd overhead ratio: {result['overhead_ratio_nablanet_over_autograd']:.3f}")
    return result


if __name__ == "__main__":
    main()
