"""One training step (forward, backward, Adam update), float32, side by side.

Networks (the performance issue's set):

    tiny    2-16-16-1    batch 32   MSE            (a Franke-style regression)
    digits  64-64-10     batch 32   cross-entropy
    mnist   784-128-64-10 batch 128 cross-entropy
    wide    784-1024-1024-10 batch 256 cross-entropy

Model rows (the same shapes with the layers that used to leave the fast path):

    digits-bn / mnist-bn   ReLU hidden layers as Dense -> BatchNorm -> ReLU -> Dropout(0.1)
    digits-ln / mnist-ln   hidden layers as Dense -> LayerNorm -> GELU (tanh form)

For these rows the column ``plain`` is nablanet's plain MLP step of the same
shape, so ``vs plain`` is what the extra layers cost; PyTorch builds the same
layers; the other peers are skipped.

Systems: nablanet (``Trainer.train_step``), PyTorch eager (CPU), JAX with the
whole step under ``jax.jit``, HIPS autograd
with a NumPy Adam, scikit-learn's MLP (``partial_fit`` on one batch), and the
*floor*: the matrix products any implementation must do (forward x W, weight
gradient a^T delta, input gradient delta W^T), timed alone.  Peers that are not
installed are skipped.  Repetitions are interleaved system by system so that
drift of the machine hits all alike; the figure is the median.

Run:  python benchmarks/bench_step.py [--nets tiny,digits] [--threads 1,2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings

import numpy as np

NETS = {
    "tiny": ([2, 16, 16, 1], 32, "mse"),
    "digits": ([64, 64, 10], 32, "ce"),
    "mnist": ([784, 128, 64, 10], 128, "ce"),
    "wide": ([784, 1024, 1024, 10], 256, "ce"),
    "digits-bn": ([64, 64, 10], 32, "ce", "dropout_bn"),
    "mnist-bn": ([784, 128, 64, 10], 128, "ce", "dropout_bn"),
    "digits-ln": ([64, 64, 10], 32, "ce", "ln_gelu"),
    "mnist-ln": ([784, 128, 64, 10], 128, "ce", "ln_gelu"),
}


def _only_plain(model):
    if model != "plain":
        raise NotImplementedError(f"no {model} model for this system")


def _data(sizes, bs, kind, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((bs, sizes[0])).astype(np.float32)
    y = rng.standard_normal((bs, 1)).astype(np.float32) if kind == "mse" else rng.integers(0, sizes[-1], bs)
    return X, y


def make_nablanet(sizes, bs, kind, model="plain"):
    from nablanet.nn import MLP, Activation, Dense, LayerNorm, Sequential
    from nablanet.train import Trainer

    out = "identity" if kind == "mse" else "softmax"
    if model == "ln_gelu":
        layers = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            layers += [Dense(a, b), LayerNorm(b), Activation("gelu_tanh")]  # as PyTorch's GELU(approximate="tanh")
        m = Sequential(*layers, Dense(sizes[-2], sizes[-1]), output_activation=out, seed=0)
    else:
        bn = model == "dropout_bn"
        m = MLP(sizes, activation="relu", output_activation=out, dropout=0.1 if bn else 0.0, batch_norm=bn, seed=0)
    tr = Trainer(m, "mse" if kind == "mse" else "cross_entropy", "adam", lr=1e-3, seed=0)
    X, y = _data(sizes, bs, kind)
    return lambda: tr.train_step(X, y)


def make_plain(sizes, bs, kind, model="plain"):
    """nablanet's plain MLP of the same shape, beside a model row."""
    if model == "plain":
        raise NotImplementedError("the plain row is the nablanet column itself")
    return make_nablanet(sizes, bs, kind)


def make_usercode(sizes, bs, kind, model="plain"):
    """The network written as user code: a loss over nablanet.numpy, jit(value_and_grad(loss)), hand-written SGD."""
    import nablanet as nb
    import nablanet.numpy as anp

    if model != "plain":
        raise NotImplementedError("the user-code row is written for the plain MLPs")
    rng = np.random.default_rng(0)
    params = [(rng.standard_normal((a, b)).astype(np.float32) * np.float32(np.sqrt(2 / a)), np.zeros(b, np.float32))
              for a, b in zip(sizes[:-1], sizes[1:])]
    X, y = _data(sizes, bs, kind)
    t = y if kind == "mse" else np.eye(sizes[-1], dtype=np.float32)[y]

    def loss(params, X, t):
        a = X
        for W, b in params[:-1]:
            a = anp.maximum(a @ W + b, 0.0)
        z = a @ params[-1][0] + params[-1][1]
        if kind == "mse":
            return anp.mean((z - t) ** 2)
        return anp.mean(anp.logsumexp(z, axis=1) - anp.sum(z * t, axis=1))

    step = nb.jit(nb.value_and_grad(loss))
    t0 = time.perf_counter()
    step(params, X, t)
    TRACE_COST[tuple(sizes)] = (time.perf_counter() - t0) * 1e6
    lr = np.float32(1e-3)

    def run():
        _, grads = step(params, X, t)
        for (W, b), (gW, gb) in zip(params, grads):
            W -= lr * gW
            b -= lr * gb

    return run


TRACE_COST = {}  # us of the first (tracing) call of the user-code row, by network


def make_torch(sizes, bs, kind, model="plain"):
    import torch

    torch.manual_seed(0)
    layers = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        if model == "ln_gelu":
            layers += [torch.nn.Linear(a, b), torch.nn.LayerNorm(b), torch.nn.GELU(approximate="tanh")]
        elif model == "dropout_bn":
            layers += [torch.nn.Linear(a, b), torch.nn.BatchNorm1d(b), torch.nn.ReLU(), torch.nn.Dropout(0.1)]
        else:
            layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(sizes[-2], sizes[-1]))
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    Xn, yn = _data(sizes, bs, kind)
    X = torch.from_numpy(Xn)
    y = torch.from_numpy(yn) if kind == "mse" else torch.from_numpy(yn.astype(np.int64))
    lossf = torch.nn.MSELoss() if kind == "mse" else torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(X), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def make_autograd(sizes, bs, kind, model="plain"):
    _only_plain(model)
    import autograd
    import autograd.numpy as agnp
    from autograd.scipy.special import logsumexp

    rng = np.random.default_rng(0)
    params = [(rng.standard_normal((a, b)).astype(np.float32) * np.float32(np.sqrt(2 / a)), np.zeros(b, np.float32))
              for a, b in zip(sizes[:-1], sizes[1:])]
    X, y = _data(sizes, bs, kind)
    onehot = None if kind == "mse" else np.eye(sizes[-1], dtype=np.float32)[y]

    def loss(params):
        a = X
        for W, b in params[:-1]:
            a = agnp.maximum(agnp.dot(a, W) + b, 0.0)
        z = agnp.dot(a, params[-1][0]) + params[-1][1]
        if kind == "mse":
            return agnp.mean((z - y) ** 2)
        return agnp.mean(logsumexp(z, axis=1) - agnp.sum(z * onehot, axis=1))

    g = autograd.grad(loss)
    flat_m = [np.zeros_like(p) for pair in params for p in pair]
    flat_v = [np.zeros_like(p) for pair in params for p in pair]
    state = {"t": 0}

    def step():
        grads = g(params)
        state["t"] += 1
        t = state["t"]
        i = 0
        for pair, gpair in zip(params, grads):
            for p, gp in zip(pair, gpair):
                m, v = flat_m[i], flat_v[i]
                m[...] = 0.9 * m + 0.1 * gp
                v[...] = 0.999 * v + 0.001 * gp * gp
                p -= 1e-3 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
                i += 1

    return step


def make_jax(sizes, bs, kind, model="plain"):
    """The whole step (forward, backward, Adam) compiled once with jax.jit."""
    _only_plain(model)
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    params = [(jnp.asarray(rng.standard_normal((a, b)) * np.sqrt(2 / a), jnp.float32), jnp.zeros(b, jnp.float32))
              for a, b in zip(sizes[:-1], sizes[1:])]
    Xn, yn = _data(sizes, bs, kind)
    X = jnp.asarray(Xn)
    y = jnp.asarray(yn) if kind == "mse" else jax.nn.one_hot(jnp.asarray(yn), sizes[-1], dtype=jnp.float32)

    def loss(params):
        a = X
        for W, b in params[:-1]:
            a = jax.nn.relu(a @ W + b)
        z = a @ params[-1][0] + params[-1][1]
        if kind == "mse":
            return jnp.mean((z - y) ** 2)
        return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.sum(z * y, axis=1))

    @jax.jit
    def step(params, m, v, t):
        g = jax.grad(loss)(params)
        m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
        bc1, bc2 = 1 - 0.9**t, 1 - 0.999**t
        params = jax.tree_util.tree_map(lambda p, m, v: p - 1e-3 * (m / bc1) / (jnp.sqrt(v / bc2) + 1e-8), params, m, v)
        return params, m, v

    state = {"p": params, "m": jax.tree_util.tree_map(jnp.zeros_like, params),
             "v": jax.tree_util.tree_map(jnp.zeros_like, params), "t": 0}

    def run():
        state["t"] += 1
        state["p"], state["m"], state["v"] = step(state["p"], state["m"], state["v"], jnp.float32(state["t"]))
        jax.block_until_ready(state["p"])

    return run


def make_sklearn(sizes, bs, kind, model="plain"):
    _only_plain(model)
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    X, y = _data(sizes, bs, kind)
    cls = MLPRegressor if kind == "mse" else MLPClassifier
    m = cls(hidden_layer_sizes=tuple(sizes[1:-1]), solver="adam", batch_size=bs, learning_rate_init=1e-3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "mse":
            m.partial_fit(X, y[:, 0])
            return lambda: m.partial_fit(X, y[:, 0])
        m.partial_fit(X, y, classes=np.arange(sizes[-1]))
        return lambda: m.partial_fit(X, y)


def make_floor(sizes, bs, kind, model="plain"):
    """Only the matrix products of a step: forward, weight gradients, input gradients."""
    _only_plain(model)
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((a, b)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    X, _ = _data(sizes, bs, kind)
    acts = [X]
    for W in Ws:
        acts.append(acts[-1] @ W)
    deltas = [np.ones_like(a) for a in acts[1:]]
    outs = [np.empty_like(a) for a in acts[1:]]
    gW = [np.empty_like(W) for W in Ws]
    gx = [np.empty_like(a) for a in acts[:-1]]

    def step():
        for i, W in enumerate(Ws):
            np.matmul(acts[i], W, out=outs[i])
        for i in reversed(range(len(Ws))):
            np.matmul(acts[i].T, deltas[i], out=gW[i])
            if i:
                np.matmul(deltas[i], Ws[i].T, out=gx[i])

    return step


SYSTEMS = {
    "nablanet": make_nablanet,
    "plain": make_plain,
    "usercode": make_usercode,
    "torch": make_torch,
    "jax": make_jax,
    "autograd": make_autograd,
    "sklearn": make_sklearn,
    "floor": make_floor,
}


def _set_threads(n):
    from threadpoolctl import threadpool_limits

    limiter = threadpool_limits(limits=n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    return limiter


# PyTorch's OpenMP workers and NumPy's BLAS workers spin while waiting for work; in one
# process on few cores they starve each other.  Passive waiting, set before either loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def bench(nets, threads, reps, min_time, systems, clock=time.perf_counter):
    results = []
    for n_threads in threads:
        limiter = _set_threads(n_threads)
        for net in nets:
            sizes, bs, kind, *model = NETS[net]
            model = model[0] if model else "plain"
            steps = {}
            for name in systems:
                try:
                    steps[name] = SYSTEMS[name](sizes, bs, kind, model)
                except (ImportError, NotImplementedError):
                    continue
            for fn in steps.values():  # warm up, and calibrate the inner loop count
                fn()
            inner = {}
            for name, fn in steps.items():
                t0 = clock()
                k = 0
                while clock() - t0 < min_time:
                    fn()
                    k += 1
                inner[name] = max(1, k)
            times = {name: [] for name in steps}
            for _ in range(reps):
                for name, fn in steps.items():
                    t0 = clock()
                    for _ in range(inner[name]):
                        fn()
                    times[name].append((clock() - t0) / inner[name] * 1e6)
            med = {k: statistics.median(v) for k, v in times.items()}
            row = {"net": net, "model": model, "sizes": sizes, "batch": bs, "threads": n_threads, "us_per_step": med}
            base = med.get("nablanet")
            row["ratios"] = {f"nablanet/{k}": base / v for k, v in med.items() if k != "nablanet" and base}
            if "usercode" in med:
                row["usercode_trace_us"] = TRACE_COST.get(tuple(sizes))
            results.append(row)
        limiter.unregister() if hasattr(limiter, "unregister") else None
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description="one training step, side by side")
    ap.add_argument("--nets", default="tiny,digits,mnist,wide,digits-bn,mnist-bn,digits-ln,mnist-ln")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.2, help="seconds per timed repetition")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall time, or the process's CPU time (on a shared machine, what a 1-thread step costs "
                         "without the time spent waiting for the core; with more threads it sums them)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    results = bench(args.nets.split(","), [int(t) for t in args.threads.split(",")], args.reps, args.min_time,
                    args.systems.split(","), clock)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores", "clock": args.clock,
            "python": platform.python_version(), "numpy": np.__version__}
    try:
        import torch

        meta["torch"] = torch.__version__
    except ImportError:
        pass
    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
        return results
    print(f"one training step (forward + backward + Adam), float32, median us/step; {meta}")
    names = [s for s in SYSTEMS if any(s in r["us_per_step"] for r in results)]
    print(f"{'net':<10}{'thr':>4}" + "".join(f"{n:>11}" for n in names)
          + f"{'vs torch':>10}{'vs jax':>8}{'vs floor':>10}{'vs plain':>10}")
    for r in results:
        us = r["us_per_step"]
        cells = "".join(f"{us[n]:>11.1f}" if n in us else f"{'-':>11}" for n in names)
        vt = r["ratios"].get("nablanet/torch")
        vf = r["ratios"].get("nablanet/floor")
        vj = r["ratios"].get("nablanet/jax")
        vp = r["ratios"].get("nablanet/plain")
        print(f"{r['net']:<10}{r['threads']:>4}{cells}{(f'{vt:.2f}x' if vt else '-'):>10}"
              f"{(f'{vj:.2f}x' if vj else '-'):>8}{(f'{vf:.2f}x' if vf else '-'):>10}{(f'{vp:.2f}x' if vp else '-'):>10}")
    for r in results:
        if "usercode" in r["us_per_step"]:
            uc = r["us_per_step"]["usercode"]
            print(f"user code {r['net']} ({r['threads']} thr): jit(value_and_grad(loss)) + SGD {uc:.1f} us = "
                  f"{uc / r['us_per_step']['nablanet']:.2f}x the Trainer step; first call (trace) "
                  f"{r['usercode_trace_us'] / 1e3:.1f} ms")
    return results


if __name__ == "__main__":
    main()
