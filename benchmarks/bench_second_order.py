"""Full-batch curvature methods against first-order ones, and against scikit-learn's solvers.

Two problems:

    logistic   breast cancer (569 x 30, standardized), no hidden layer, binary
               cross-entropy + the L2 penalty of scikit-learn's C = 1 (l2 = 1/(2 n C))
    franke     the Franke function, 500 points, 2-20-20-1 tanh, MSE + l2 = 1e-6

Methods (nablanet): GD (full batch), SGD (batch 32), Adam (batch 32), L-BFGS,
Newton, Hessian-free (Gauss-Newton).  scikit-learn: LogisticRegression's
lbfgs, newton-cg and newton-cholesky solvers (each run again with max_iter = k
to trace its path), and MLPRegressor's lbfgs (max_iter = k), sgd and adam
(``partial_fit`` epoch by epoch), all on the same data, the same network and
penalty.  The cost is the training objective, evaluated exactly on all rows
after every iteration (epoch) and measured against the best value any method
reached; time excludes that evaluation.

Then the cost of one iteration against the number of parameters (a 2-h-1
tanh network on Franke, h = 4 ... 128): Newton forms the Hessian (one
Hessian-vector product per parameter, then Cholesky), Hessian-free does at most
``cg_max_iter`` = 10 products.  The table gives seconds per iteration and the
slope of log(time) against log(parameters): about 1 for Hessian-free (linear),
2 or more for Newton.

Run:  python benchmarks/bench_second_order.py [--plot docs/images/second_order.png] [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits


def _logistic_data():
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y.astype(np.float64)


def _objective_fn(model, loss, X, y, l2):
    """The exact training objective at the model's current parameters."""
    from nablanet.losses import get_loss
    from nablanet.train.fullbatch import network_objective

    L = get_loss(loss)
    yy = y[:, None] if y.ndim == 1 else y

    def value():
        obj, theta = network_objective(model, L, X, yy, l2=l2)
        return obj.value(theta)

    return value


def _trace_nablanet(make_model, loss, X, y, l2, method, iters, **kw):
    """(costs, seconds): the objective after each iteration/epoch and the cumulative training time."""
    from nablanet.train import LambdaCallback, fit

    model = make_model()
    value = _objective_fn(model, loss, X, y, l2)
    costs, times = [value()], [0.0]
    clock = {"t": 0.0, "last": None}

    def begin(tr):
        clock["last"] = time.perf_counter()

    def epoch_end(tr, e, logs):
        now = time.perf_counter()
        clock["t"] += now - clock["last"]
        costs.append(value())
        times.append(clock["t"])
        clock["last"] = time.perf_counter()

    cb = LambdaCallback(on_train_begin=begin, on_epoch_end=epoch_end)
    fit(model, X, y, loss=loss, optimizer=method, epochs=iters, l2=l2, seed=0, callbacks=[cb], **kw)
    return np.array(costs), np.array(times)


def _logistic(iters):
    from sklearn.linear_model import LogisticRegression

    from nablanet import optim
    from nablanet.nn import MLP

    X, y = _logistic_data()
    n = len(X)
    l2 = 1.0 / (2 * n)
    make = lambda: MLP([30, 1], output_activation="sigmoid", seed=0, dtype=np.float64)  # noqa: E731
    out = {}
    out["GD"] = _trace_nablanet(make, "bce", X, y, l2, "gd", iters["first"], lr=1.0)
    out["SGD"] = _trace_nablanet(make, "bce", X, y, l2, "sgd", iters["first"], lr=0.1, batch_size=32)
    out["Adam"] = _trace_nablanet(make, "bce", X, y, l2, "adam", iters["first"], lr=0.05, batch_size=32)
    out["L-BFGS"] = _trace_nablanet(make, "bce", X, y, l2, optim.LBFGS(tol=0.0), iters["lbfgs"])
    out["Newton"] = _trace_nablanet(make, "bce", X, y, l2, optim.Newton(tol=0.0), iters["newton"])
    out["Hessian-free"] = _trace_nablanet(make, "bce", X, y, l2, optim.HessianFree(tol=0.0, gauss_newton=True),
                                          iters["newton"])

    def sk_objective(clf):
        z = X @ clf.coef_[0] + clf.intercept_[0]
        return float(np.mean(np.logaddexp(0, z) - y * z) + l2 * clf.coef_[0] @ clf.coef_[0])

    z0 = float(np.log(2.0))  # all-zero start
    for solver, ks in (("lbfgs", range(1, iters["lbfgs"] + 1, 2)), ("newton-cg", range(1, 16)),
                       ("newton-cholesky", range(1, 12))):
        costs, times = [z0], [0.0]
        for k in ks:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                clf = LogisticRegression(C=1.0, solver=solver, max_iter=k, tol=1e-15).fit(X, y)
                times.append(time.perf_counter() - t0)
            costs.append(sk_objective(clf))
        # each max_iter = k is a fresh fit: its time includes the k - 1 iterations before (smoothed to be monotone)
        out[f"sklearn {solver}"] = (np.array(costs), np.maximum.accumulate(times), np.array([0, *ks]))
    return out


def _franke(iters):
    from sklearn.neural_network import MLPRegressor

    from nablanet import optim
    from nablanet.data import franke
    from nablanet.nn import MLP

    X, y = franke(n=500, seed=0)
    l2 = 1e-6
    make = lambda: MLP([2, 20, 20, 1], activation="tanh", seed=0, dtype=np.float64)  # noqa: E731
    out = {}
    out["GD"] = _trace_nablanet(make, "mse", X, y, l2, "gd", iters["first"], lr=0.1)
    out["SGD"] = _trace_nablanet(make, "mse", X, y, l2, "sgd", iters["first"], lr=0.05, batch_size=32)
    out["Adam"] = _trace_nablanet(make, "mse", X, y, l2, "adam", iters["first"], lr=3e-3, batch_size=32)
    out["L-BFGS"] = _trace_nablanet(make, "mse", X, y, l2, optim.LBFGS(tol=0.0), iters["lbfgs"])
    out["Newton"] = _trace_nablanet(make, "mse", X, y, l2, optim.Newton(tol=0.0), iters["newton"])
    out["Hessian-free"] = _trace_nablanet(make, "mse", X, y, l2, optim.HessianFree(tol=0.0, gauss_newton=True),
                                          iters["newton"])

    # scikit-learn from the same weights: its objective is 1/2 ours (alpha = 2 n l2 / 2 ... = n l2 for its alpha/(2n))
    alpha = l2 * len(X)
    init = make()

    def sk_new(**kw):
        sk = MLPRegressor(hidden_layer_sizes=(20, 20), activation="tanh", alpha=alpha, warm_start=True, **kw)
        sk.coefs_ = [p["W"].copy() for p in init.params]
        sk.intercepts_ = [p["b"].copy() for p in init.params]
        sk.n_outputs_, sk.n_layers_, sk.out_activation_ = 1, 4, "identity"
        sk.t_, sk.n_iter_, sk.loss_curve_, sk.best_loss_, sk._no_improvement_count = 0, 0, [], np.inf, 0
        return sk

    def sk_objective(sk):
        pred = sk.predict(X)
        return float(np.mean((pred - y) ** 2) + l2 * sum(float(np.sum(W * W)) for W in sk.coefs_))

    f0 = out["GD"][0][0]
    ks = list(range(5, iters["lbfgs"] + 1, 10))
    costs, times = [f0], [0.0]
    for k in ks:
        sk = sk_new(solver="lbfgs", max_iter=k, tol=0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            sk.fit(X, y)
            times.append(time.perf_counter() - t0)
        costs.append(sk_objective(sk))
    out["sklearn lbfgs"] = (np.array(costs), np.maximum.accumulate(times), np.array([0, *ks]))
    for solver, lr in (("sgd", 0.05), ("adam", 3e-3)):
        sk = sk_new(solver=solver, learning_rate_init=lr, batch_size=32, shuffle=True, random_state=0)
        costs, times, t = [f0], [0.0], 0.0
        for _ in range(iters["first"]):
            t0 = time.perf_counter()
            sk.partial_fit(X, y)
            t += time.perf_counter() - t0
            costs.append(sk_objective(sk))
            times.append(t)
        out[f"sklearn {solver}"] = (np.array(costs), np.array(times))
    return out


def _scaling(widths, reps=3):
    """Seconds per iteration of Newton and Hessian-free for 2-h-1 tanh networks on Franke."""
    from nablanet import optim
    from nablanet.data import franke
    from nablanet.nn import MLP
    from nablanet.train import fit

    X, y = franke(n=500, seed=0)
    rows = []
    for h in widths:
        row = {"h": h, "params": 4 * h + 1}
        for name, method, iters in (("newton", lambda: optim.Newton(tol=0.0), 3),
                                    ("hessian_free", lambda: optim.HessianFree(tol=0.0, cg_max_iter=10), 5)):
            best = np.inf
            for _ in range(reps):
                m = MLP([2, h, 1], activation="tanh", seed=0, dtype=np.float64)
                t0 = time.perf_counter()
                hist = fit(m, X, y, optimizer=method(), epochs=iters)
                best = min(best, (time.perf_counter() - t0) / hist.solver["n_iter"])
            row[name] = best
        rows.append(row)
    return rows


def _slope(x, t):
    return float(np.polyfit(np.log(x), np.log(t), 1)[0])


def _plot(results, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 8.5))
    axes = fig.subplots(2, 2)
    colors = {"GD": "C0", "SGD": "C1", "Adam": "C2", "L-BFGS": "C3", "Newton": "C4", "Hessian-free": "C5"}
    for row, (title, res) in enumerate(results.items()):
        convex = title.startswith("logistic")
        best = min(float(np.min(v[0])) for v in res.values())
        sk_colors = iter(["C6", "C7", "C8", "C9"])
        for name, v in res.items():
            costs, times = v[0], v[1]
            its = v[2] if len(v) > 2 else np.arange(len(costs))
            y = np.maximum(costs - best, 1e-16) if convex else costs
            sk = name.startswith("sklearn")
            style = dict(color=next(sk_colors) if sk else colors[name], lw=1.2 if sk else 1.6, ls="--" if sk else "-",
                         marker="." if sk else None, label=name)
            axes[row, 0].semilogy(its, y, **style)
            axes[row, 1].semilogy(np.maximum(times, 1e-4), y, **style)
        what = "cost - optimal cost" if convex else "training cost (MSE + penalty)"
        axes[row, 0].set(title=f"{title}: against iterations", xlabel="iteration (epoch for GD, SGD, Adam)",
                         ylabel=what)
        axes[row, 1].set(title=f"{title}: against time", xlabel="seconds of training (log)", xscale="log",
                         ylabel=what)
        axes[row, 0].legend(fontsize=7, ncol=2)
        for ax in axes[row]:
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Title": "Full-batch curvature methods against first-order ones"})
    return fig


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plot", help="write the convergence figure to this PNG")
    ap.add_argument("--quick", action="store_true", help="fewer iterations and sizes")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    iters = {"first": 60, "lbfgs": 60, "newton": 15} if args.quick else {"first": 200, "lbfgs": 200, "newton": 25}
    with threadpool_limits(args.threads):
        results = {"logistic regression (breast cancer)": _logistic(iters), "Franke, 2-20-20-1 tanh": _franke(iters)}
        for title, res in results.items():
            best = min(float(np.min(v[0])) for v in res.values())  # (for Franke: the lowest cost any method reached)
            print(f"\n{title}: best cost {best:.10g}")
            print(f"{'method':<22}{'final cost - best':>20}{'iterations':>12}{'seconds':>10}")
            for name, v in res.items():
                its = v[2][-1] if len(v) > 2 else len(v[0]) - 1
                print(f"{name:<22}{v[0][-1] - best:>20.3e}{its:>12d}{v[1][-1]:>10.3f}")
        widths = [8, 32, 128] if args.quick else [16, 64, 256]
        rows = _scaling(widths)
    print("\nseconds per iteration, 2-h-1 tanh on Franke (500 rows)")
    print(f"{'h':>5}{'params':>8}{'newton':>12}{'hessian_free':>14}{'newton / hf':>13}")
    for r in rows:
        print(f"{r['h']:>5}{r['params']:>8}{r['newton']:>12.4f}{r['hessian_free']:>14.4f}"
              f"{r['newton'] / r['hessian_free']:>13.1f}")
    p = [r["params"] for r in rows]
    print(f"slope of log(time) in log(params): newton {_slope(p, [r['newton'] for r in rows]):.2f}, "
          f"hessian_free {_slope(p, [r['hessian_free'] for r in rows]):.2f} (linear = 1)")
    if args.plot:
        _plot(results, args.plot)
        print(f"figure: {args.plot}")


if __name__ == "__main__":
    main()
