"""The ``nablanet`` command: train, sweep, compare, explain.

Every subcommand prints aligned tables for people and, with ``--json``, one
JSON document for machines.  Bad flags, unknown data sets and impossible
configurations exit with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .experiments import DEFAULTS, ConfigError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"nablanet: error: {message}\n")


def _floats(s):
    return [float(v) for v in s.split(",") if v]


def _ints(s):
    return [int(v) for v in s.split(",") if v]


def _add_training_flags(p):
    g = p.add_argument_group("model and training (defaults: a 64-64-10 ReLU network on the digits)")
    g.add_argument("--config", metavar="FILE.toml", help="read settings from a TOML file (flags override it)")
    g.add_argument("--data", help="data set: franke, runge, runge2d, polynomial, xor, and, or, breast_cancer, digits, "
                                  "iris, wine, diabetes, mnist, fashion_mnist")
    g.add_argument("--n", type=int, help="number of samples (synthetic sets; first rows of MNIST)")
    g.add_argument("--noise", type=float, help="Gaussian noise on synthetic targets")
    g.add_argument("--data-path", dest="data_path", help="directory with MNIST-format IDX files")
    g.add_argument("--test-size", dest="test_size", type=float)
    g.add_argument("--scale", choices=["standard", "minmax", "none"])
    g.add_argument("--hidden", type=_ints, metavar="N,N,...", help="hidden layer sizes, e.g. 64,32")
    g.add_argument("--activation", help="hidden activation, one name or one per hidden layer (relu,tanh)")
    g.add_argument("--output-activation", dest="output_activation")
    g.add_argument("--loss", help="mse, half_sse, mae, huber, cross_entropy, bce (default: by task)")
    g.add_argument("--optimizer", choices=["sgd", "gd", "adagrad", "rmsprop", "adam", "adamw"])
    g.add_argument("--lr", type=float, help="learning rate")
    g.add_argument("--schedule", choices=["constant", "step", "exponential", "inverse_time", "cosine"])
    g.add_argument("--momentum", type=float)
    g.add_argument("--nesterov", action="store_true", default=None)
    g.add_argument("--l1", type=float)
    g.add_argument("--l2", type=float)
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", dest="batch_size", type=int, help="0 means full batch (gradient descent)")
    g.add_argument("--dropout", type=float)
    g.add_argument("--batch-norm", dest="batch_norm", action="store_true", default=None)
    g.add_argument("--init", help="auto, glorot_normal, he_normal, normal, zeros, ...")
    g.add_argument("--seed", type=int)
    g.add_argument("--patience", type=int, help="early stopping on the held-out cost")


def _config_from(args):
    cfg = {}
    if getattr(args, "config", None):
        cfg.update(_read_toml(args.config))
    for key in DEFAULTS:
        v = getattr(args, key, None)
        if v is not None:
            cfg[key] = v
    if cfg.get("scale") == "none":
        cfg["scale"] = None
    if cfg.get("batch_size") == 0:
        cfg["batch_size"] = None
    return cfg


def _read_toml(path):
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"no configuration file {path!r}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    doc = doc.get("train", doc)
    unknown = set(doc) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    return doc


def _table(rows, cols, fmt=None):
    fmt = fmt or {}
    cells = [[(format(r.get(c), fmt.get(c, ".4g")) if isinstance(r.get(c), float) else str(r.get(c, "")))
              for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    out = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths)))]
    out += ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths)))
            for row in cells]
    return "\n".join(out)


def _emit(args, doc, text):
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    else:
        print(text)


# --------------------------------------------------------------------------- subcommands


def _comm(args):
    """A communicator when launched by mpiexec/srun (or asked with --mpi); None otherwise."""
    from .distributed import get_comm, launched_under_mpi

    if not (getattr(args, "mpi", False) or launched_under_mpi()):
        return None
    try:
        return get_comm()
    except ImportError as e:
        raise ConfigError(str(e)) from None


def cmd_train(args):
    from .experiments import run_training

    cfg = _config_from(args)
    comm = _comm(args)
    if args.resume:
        others = sorted(k for k in cfg if k != "epochs")
        if others:
            raise ConfigError(f"--resume continues a run with its own settings; only --epochs may change "
                              f"(got {', '.join(others)})")
        if not os.path.isfile(os.path.join(args.resume, "checkpoint.npz")):
            raise ConfigError(f"{args.resume!r} holds no checkpoint.npz to resume from")
        out = args.resume
    else:
        out = args.out or os.path.join("runs", f"{cfg.get('data', DEFAULTS['data'])}-{time.strftime('%Y%m%d-%H%M%S')}")
    if comm is not None:  # one folder name for all ranks
        out = comm.bcast_object(out)
    progress = not args.json and not args.no_progress and sys.stderr.isatty()
    res = run_training(cfg, out_dir=out, progress=progress, resume=args.resume, comm=comm)
    if comm is not None and not comm.is_root:
        return
    c = res["config"]
    final = {k: v for k, v in res.items() if k not in ("config", "trainer")}
    arch = "-".join(map(str, [res["trainer"].model.n_inputs] + c["hidden"] + [c["n_outputs"]]))
    lines = [f"trained {arch} ({c['activation']}, output {c['output_activation']}) on {c['data']} with {c['loss']}, "
             f"{c['optimizer']} lr={c['lr']:g}, {res['epochs']} epochs in {res['train_seconds']:.2f} s",
             _table([{"metric": k, "value": v} for k, v in final.items() if k.startswith("test_")], ["metric", "value"],
                    {"value": ".5f"}),
             f"run folder: {out}  (config.json, metrics.csv, metrics.json, checkpoint.npz, plots)"
             + (f"; data-parallel over {res['ranks']} MPI ranks" if res["ranks"] > 1 else "")]
    _emit(args, {"config": c, "final": final}, "\n".join(lines))


def _parse_grid(items):
    grid = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--grid takes NAME=V1,V2,...; got {item!r}")
        name, vals = item.split("=", 1)
        name = name.strip().replace("-", "_")
        default = DEFAULTS.get(name)
        conv = int if name in ("epochs", "batch_size", "seed", "n", "patience") else float
        try:
            if name == "hidden":
                values = [[int(h) for h in v.split("x") if h] for v in vals.split(",")]
            elif isinstance(default, bool):
                values = [{"true": True, "false": False, "1": True, "0": False}[v.lower()] for v in vals.split(",")]
            elif isinstance(default, str) or name in ("activation", "optimizer", "schedule", "init", "scale"):
                values = vals.split(",")
            else:
                values = [conv(v) for v in vals.split(",")]
        except (ValueError, KeyError):
            raise ConfigError(f"--grid {name}: cannot read the values {vals!r}") from None
        # the same meaning as the flags: batch size 0 is the full batch, scale none is no scaling
        if name == "batch_size":
            values = [None if v == 0 else v for v in values]
        if name == "scale":
            values = [None if v == "none" else v for v in values]
        grid[name] = values
    return grid


def cmd_sweep(args):
    from .experiments import sweep

    cfg = _config_from(args)
    grid = _parse_grid(args.grid or [])
    comm = _comm(args)
    out = args.out or os.path.join("runs", f"sweep-{cfg.get('data', DEFAULTS['data'])}-{time.strftime('%Y%m%d-%H%M%S')}")
    if comm is not None:
        out = comm.bcast_object(out)
    progress = not args.json and not args.no_progress and sys.stderr.isatty()
    res = sweep(cfg, grid, out, metric=args.metric, jobs=args.jobs, progress=progress, comm=comm)
    if res is None:  # an MPI rank other than 0
        return
    names, metric = res["names"], res["metric"]
    cols = names + [metric]
    rows = [{k: (json.dumps(v) if isinstance(v, list) else v) for k, v in r.items()} for r in res["results"]]
    best = res["best"]
    text = "\n".join([
        _table(rows, cols, {metric: ".4f"}),
        f"best {metric} = {best[metric]:.4f} at " + ", ".join(f"{n}={best[n]}" for n in names)
        + (f"  ({res['skipped']} points already done, skipped)" if res["skipped"] else ""),
        f"results: {out}/results.csv, {out}/results.json, heatmap: {out}/heatmap.png",
    ])
    _emit(args, {k: v for k, v in res.items()}, text)


def cmd_compare(args):
    from .experiments import compare

    cfg = _config_from(args)
    out = args.out or os.path.join("runs", f"compare-{cfg.get('data', DEFAULTS['data'])}-{time.strftime('%Y%m%d-%H%M%S')}")
    res = compare(cfg, degree=args.degree, out_dir=out)
    cols = list(res["results"][0])
    text = "\n".join([_table(res["results"], cols, {"train_seconds": ".2f"}),
                      f"table and plot: {out}/compare.csv, {out}/compare.png"])
    _emit(args, {"metric": res["metric"], "results": res["results"]}, text)


def cmd_explain(args):
    from .explain import explain_expression, explain_network

    if args.expr is not None:
        graph = args.graph or "graph.png"
        text, rep = explain_expression(args.expr, args.at, graph_path=graph)
        _emit(args, {k: v for k, v in rep.items()}, text + f"\ngraph drawn to {graph}")
    else:
        sizes = args.sizes or [2, 3, 2]
        if len(sizes) < 2:
            raise ConfigError("--sizes needs at least inputs and outputs, e.g. 2,3,2")
        text, rep = explain_network(sizes, activation=args.activation or "sigmoid", seed=args.seed or 0)
        rep = {k: v for k, v in rep.items() if k != "grads"}
        _emit(args, rep, text)


def build_parser():
    p = _Parser(prog="nablanet", description="Feed-forward neural networks on an automatic-differentiation engine.")
    from . import __version__

    p.add_argument("--version", action="version", version=f"nablanet {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    t = sub.add_parser("train", help="train a network and write a run folder")
    _add_training_flags(t)
    t.add_argument("--out", help="run folder (default runs/DATA-TIME)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its checkpoint")
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--mpi", action="store_true", help="train data-parallel over MPI ranks (automatic under mpiexec)")
    t.add_argument("--json", action="store_true", help="print one JSON document")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sweep", help="a grid over two or more settings, in parallel, with a heatmap")
    _add_training_flags(s)
    s.add_argument("--grid", action="append", metavar="NAME=V1,V2,...",
                   help="a setting and its values (repeat for each setting), e.g. --grid lr=1e-4,1e-3,1e-2")
    s.add_argument("--metric", default="auto", help="test_accuracy, test_mse, test_r2, test_loss (default by task)")
    s.add_argument("--jobs", type=int, help="processes (default: all cores)")
    s.add_argument("--out", help="sweep folder; running again skips finished points")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--mpi", action="store_true", help="spread the points over MPI ranks (automatic under mpiexec)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sweep)

    c = sub.add_parser("compare", help="the network against OLS/Ridge/Lasso or logistic regression, "
                                       "scikit-learn's MLP and PyTorch")
    _add_training_flags(c)
    c.add_argument("--degree", type=int, default=5, help="polynomial degree of the linear regression baselines")
    c.add_argument("--out")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_compare)

    e = sub.add_parser("explain", help="forward and backward pass of a small network, or of an expression, "
                                       "number by number")
    e.add_argument("--expr", help='an expression in x, e.g. "sqrt(x**2 + exp(x**2))"')
    e.add_argument("--at", type=float, default=1.0, help="the point x")
    e.add_argument("--graph", help="where to draw the graph (default graph.png)")
    e.add_argument("--sizes", type=_ints, help="network sizes for the network mode, e.g. 2,3,2")
    e.add_argument("--activation")
    e.add_argument("--seed", type=int)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_explain)
    return p


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # bad flags, --help, --version: argparse has printed its line
        return e.code
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        args.func(args)
    except (ConfigError, FileNotFoundError, ValueError, TypeError, ImportError) as e:
        print("nablanet: error: " + " ".join(str(e).split()), file=sys.stderr)  # one line, whatever the message
        return 2
    except KeyboardInterrupt:
        print("nablanet: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
