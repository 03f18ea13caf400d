"""The ``nablanet`` command: train, sweep, compare, explain, surface.

Every subcommand prints aligned tables for people and, with ``--json``, one
JSON document for machines.  Bad flags, unknown data sets and impossible
configurations exit with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import time
import warnings

import numpy as np

from . import validate as V
from .distributed import parallel_choice
from .experiments import DEFAULTS, RUN_FILES, SCHEDULES, SETTINGS, ConfigError, DataNotFoundError, check_config
from .files import atomic_write_json, dumps, remove_stale_temps


class _Parser(argparse.ArgumentParser):
    """Every mistake on the command line, in every subcommand, is one line on stderr and exit status 2.

    Values are read by their flag's check (``type=``, built on nablanet.validate), which names what it
    expected; a flag with ``choices=`` (and the subcommand itself) is answered the same way here, naming
    the flag, the value and the choices; argparse's own messages (a missing value, an unknown flag) are
    kept to one line, without the usage dump.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # values such as "-3,4" (--start, --w-range) are numbers, not flags: argparse's own pattern knows only
        # single negative numbers; no flag of nablanet starts with a digit, so this cannot hide one
        self._negative_number_matcher = re.compile(
            r"^-((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|(?i:inf|infinity|nan))(,[-+]?[\w.+-]+)*$")

    def _check_value(self, action, value):
        if action.choices is None or value in action.choices:
            return
        choices = ", ".join(map(str, action.choices))
        if isinstance(action, argparse._SubParsersAction):
            raise argparse.ArgumentError(None, f"unknown command {value!r}; choose from {choices}")
        raise argparse.ArgumentError(action, f"expected one of {choices}, got {value!r}")

    def error(self, message):
        self.exit(2, None if _other_rank() else f"nablanet: error: {' '.join(str(message).split())}\n")

    def _print_message(self, message, file=None):  # --help, --version: said once under mpiexec, by rank 0
        if not _other_rank():
            super()._print_message(message, file)


def _other_rank():
    """Whether this process is an MPI rank other than 0.  Every rank meets the same bad flag, the same refused
    setting and the same signal, and rank 0 alone says so; what may differ between ranks (a file, the data, a
    module on another machine) each rank still says."""
    from .distributed import launched_rank

    return launched_rank() > 0


# --------------------------------------------------------------------------- flag values
# Each type names what it expects; argparse prefixes the flag: "argument --lr: expected a number > 0, got 'x'".


def _number(kind, lo=None, hi=None, lo_open=False, hi_open=False):
    """An argparse type from nablanet.validate's number checks (the same checks as TOML keys and the Python API)."""
    if kind is int:
        return V.flag(V.Whole(lo, hi))
    return V.flag(V.Number(lo, hi, lo_open, hi_open))


_positive_int = _number(int, 1)
_count = _number(int, 0)
_positive = _number(float, 0, lo_open=True)
_nonnegative = _number(float, 0)
_probability = _number(float, 0, 1, hi_open=True)
_fraction = _number(float, 0, 1, lo_open=True, hi_open=True)


_sizes = V.flag(V.sizes)  # "64,32" or "64x32"; "none" (or "0") for no hidden layer


def _names(valid, what):
    """One name from ``valid``, or a comma-separated list of them (one per hidden layer)."""

    def parse(text):
        bad = [v for v in text.split(",") if v not in valid]
        if bad or not text:
            raise argparse.ArgumentTypeError(f"unknown {what} {(bad or [text])[0]!r}; choose from {', '.join(valid)}")
        return text

    return parse


def _range(text):
    """Two finite numbers LO,HI with LO < HI, e.g. "-4,8"."""
    lo, hi = _floats(2)(text)
    if not lo < hi:
        raise argparse.ArgumentTypeError(f"expected LO < HI, got {text!r}")
    if not np.isfinite(hi - lo):  # -1e308,1e308: the grid's spacing would overflow
        raise argparse.ArgumentTypeError(f"expected a range whose width HI - LO is a finite number, got {text!r}")
    return [lo, hi]


def _floats(n):
    """Exactly ``n`` finite numbers separated by commas, e.g. "-3,4"."""

    def parse(text):
        try:
            vals = [V.finite_number.parse(v) for v in text.split(",")]
        except V.InvalidValueError:
            vals = []
        if len(vals) != n:
            raise argparse.ArgumentTypeError(f"expected {n} finite numbers separated by commas, got {text!r}")
        return vals

    return parse


#: the largest |w| or |b| surface starts from: the picture's window grows to include the start, and beyond this the
#: neuron is saturated over the whole window (1e308 overflowed the grid: "arange: cannot compute length")
SURFACE_START_BOUND = 1e6


def _start(text):
    """``--start W,B``: two numbers within +-:data:`SURFACE_START_BOUND`."""
    w, b = _floats(2)(text)
    if max(abs(w), abs(b)) > SURFACE_START_BOUND:
        raise argparse.ArgumentTypeError(f"expected W,B each within -{SURFACE_START_BOUND:g}..{SURFACE_START_BOUND:g} "
                                         f"(the picture's window grows to include the start), got {text!r}")
    return [w, b]


_plane_sizes = V.flag(V.Sizes(min_len=1, expected="hidden sizes like 16,16 (at least one layer; leave out --plane "
                                                  "for no plane)"))


def _new_folder(name):
    """The default output folder runs/NAME-DATE-TIME, with -2, -3, ... when one of that second exists already."""
    base = os.path.join("runs", f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    out, k = base, 1
    while os.path.exists(out):
        k += 1
        out = f"{base}-{k}"
    return out


def _activations():
    from .nn.activations import ACTIVATIONS

    return ACTIVATIONS


def _default(key):
    v = DEFAULTS[key]
    if key == "hidden":
        return ",".join(map(str, v)) or "none"
    if key == "batch_size" and v is None:
        return "0"
    return "none" if v is None else str(v).lower() if isinstance(v, bool) else v


def _add_training_flags(p):
    from .data import DATASETS
    from .losses import LOSSES
    from .nn.activations import ACTIVATIONS
    from .nn.init import INITIALIZERS
    from .optim.optimizers import OPTIMIZERS

    d = _default
    g = p.add_argument_group("data")
    g.add_argument("--config", metavar="FILE.toml",
                   help="read settings from a TOML file (a [train] table or top-level keys named like the flags); "
                        "flags override it (default: none)")
    g.add_argument("--data", choices=list(DATASETS), metavar="NAME",
                   help=f"data set, one of {', '.join(DATASETS)} (default: {d('data')})")
    g.add_argument("--n", type=_positive_int, help="number of samples (synthetic sets; a random subset of the "
                                                   "scikit-learn sets; first rows of MNIST) (default: the whole set, "
                                                   "1000 for synthetic ones)")
    g.add_argument("--noise", type=_nonnegative, help=f"standard deviation of Gaussian noise on the targets of "
                                                      f"synthetic and regression sets (default: {d('noise')})")
    g.add_argument("--data-path", dest="data_path", metavar="DIR",
                   help="directory with the MNIST/Fashion-MNIST IDX files (default: ~/.nablanet/mnist, "
                        "~/.nablanet/fashion_mnist, or $NABLANET_MNIST)")
    g.add_argument("--test-size", dest="test_size", type=_fraction,
                   help=f"fraction of rows held out as the test split (default: {d('test_size')})")
    g.add_argument("--scale", type=V.flag(V.Choice(("standard", "minmax", "none"))), metavar="NAME",
                   help=f"feature scaling fitted on the training split: standard (mean 0, std 1), minmax ([0, 1]) or none "
                        f"(default: {d('scale')})")
    g.add_argument("--degree", type=_positive_int,
                   help="replace the features by their polynomial design matrix of this degree (x, y, x^2, xy, ...); "
                        "with --hidden none this is the course's OLS (and Ridge with --l2) by gradient descent "
                        "(default: none, the raw features)")
    g = p.add_argument_group("network")
    g.add_argument("--hidden", type=_sizes, metavar="N,N,...",
                   help=f"hidden layer sizes, e.g. 64,32; none (or 0) = no hidden layer: linear (or logistic) "
                        f"regression (default: {d('hidden')})")
    acts = [a for a in ACTIVATIONS if a != "softmax"]
    g.add_argument("--activation", type=_names(acts, "activation"), metavar="NAME[,NAME...]",
                   help=f"hidden activation, one name or one per hidden layer: {', '.join(acts)} "
                        f"(default: {d('activation')})")
    g.add_argument("--output-activation", dest="output_activation", choices=["auto", *ACTIVATIONS], metavar="NAME",
                   help="activation of the output layer; auto = identity for regression, sigmoid/softmax for "
                        f"classification (default: {d('output_activation')})")
    g.add_argument("--init", type=_names(["auto", *INITIALIZERS], "initializer"), metavar="NAME",
                   help=f"weight initializer; auto = fan_in_uniform, U(+-1/sqrt(fan_in)), for the weights and the "
                        f"biases (a named one starts the biases at zero); one of "
                        f"{', '.join(INITIALIZERS)} (default: {d('init')})")
    g.add_argument("--dropout", type=_probability, help=f"dropout probability after each hidden layer "
                                                        f"(default: {d('dropout')})")
    g.add_argument("--batch-norm", dest="batch_norm", action=argparse.BooleanOptionalAction, default=None,
                   help="batch normalization before each hidden activation; --no-batch-norm turns off a TOML's "
                        "(default: off)")
    g = p.add_argument_group("training")
    g.add_argument("--loss", choices=["auto", *LOSSES], metavar="NAME",
                   help=f"cost, one of {', '.join(LOSSES)}; auto = mse for regression, bce for two classes, "
                        f"cross_entropy otherwise (default: {d('loss')})")
    g.add_argument("--optimizer", choices=list(OPTIMIZERS), metavar="NAME",
                   help=f"optimizer, one of {', '.join(OPTIMIZERS)} (default: {d('optimizer')})")
    g.add_argument("--lr", type=_positive, help=f"learning rate (default: {d('lr')})")
    g.add_argument("--schedule", choices=list(SCHEDULES), metavar="NAME",
                   help=f"learning-rate schedule over the run, one of {', '.join(SCHEDULES)} (step is step_decay) "
                        f"(default: {d('schedule')})")
    g.add_argument("--momentum", type=_probability, help=f"momentum of sgd/gd, in [0, 1) (default: {d('momentum')})")
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None,
                   help="Nesterov momentum (sgd/gd with --momentum); --no-nesterov turns off a TOML's (default: off)")
    g.add_argument("--l1", type=_nonnegative, help=f"L1 penalty l1*sum|W| on the weights (default: {d('l1')})")
    g.add_argument("--l2", type=_nonnegative, help=f"L2 penalty l2*sum(W^2) on the weights, added to the mean "
                                                   f"cost (default: {d('l2')})")
    g.add_argument("--epochs", type=_positive_int, help=f"passes over the training data (default: {d('epochs')})")
    g.add_argument("--batch-size", dest="batch_size", type=_count,
                   help=f"minibatch size; 0 = the full batch (gradient descent) (default: {d('batch_size')})")
    g.add_argument("--seed", type=V.flag(SETTINGS["seed"]), help=f"seed of the data, split, initialization and shuffling "
                                               f"(default: {d('seed')})")
    g.add_argument("--patience", type=_positive_int,
                   help="stop early after this many epochs without improvement of the cost on 10%% of the "
                        "training split (default: none, no early stopping)")
    _typed_from_settings(p)


def _typed_from_settings(parser):
    """Every flag that sets a configuration key reads its value with that key's check (experiments.SETTINGS,
    built from nablanet.validate), as the TOML reader and sweep grids do; argparse names the flag in errors."""
    for a in parser._actions:  # flags with their own type (built on nablanet.validate too) keep it
        if a.dest in SETTINGS and a.nargs != 0 and a.type is None:
            a.type, a.choices = V.flag(SETTINGS[a.dest]), None  # choices= too: the setting's Choice reads them


def _config_from(args):
    cfg = {}
    if getattr(args, "config", None):
        cfg.update(_read_toml(args.config))
    for key in DEFAULTS:
        v = getattr(args, key, None)
        if v is not None:
            cfg[key] = v
    return check_config(cfg)


def _read_toml(path):
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        V.existing_file(path, "--config")
    except V.MissingFileError:
        raise ConfigError(f"no configuration file {path!r}") from None
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the configuration file ({e.strerror or e})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    if "train" in doc:  # a [train] table, and nothing beside it that would be silently ignored
        others = sorted(k for k in doc if k != "train")
        if others:
            raise ConfigError(f"{path}: settings outside the [train] table ({', '.join(others)}) would be ignored; "
                              f"put them in [train] or remove the table")
        doc = doc["train"]
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: train must be a table of settings ([train]), got {doc!r:.60}")
    return check_config(doc, where=path)  # each key checked as its flag is, naming the key, value and expectation


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
        print(dumps(doc, default=str))
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


def _thread_limit(args, comm):
    """BLAS/OpenMP threads for this process: --threads, else its share of the cores (MPI ranks on this machine)."""
    from .experiments import thread_limit

    return thread_limit(args.threads, comm)


def _communication_note(ranks, fraction, mode="shard"):
    """A note when ranks that shared the steps (``mode`` "shard") spent so much of the training communicating
    that one process would have been faster, else None.

    One process computes what the ranks computed, each rank's share of the time outside communication
    (1 - ``fraction`` on average), at most: ``ranks * (1 - fraction)`` of the time taken, less than all of
    it once ``fraction`` exceeds ``1 - 1 / ranks`` (a half for 2 ranks).  With rank 0 leading ("lead") it
    trains as one process and the others wait asleep: the note is moot."""
    if ranks < 2 or fraction is None or fraction <= 1 - 1 / ranks or mode == "lead":
        return None
    return (f"nablanet: note: the {ranks} ranks spent {fraction:.0%} of the training in collective communication "
            f"(waiting for each other included), so one process would have been faster: each step computes too "
            f"little to share (or the cores are busy); run it without mpiexec, or with --parallel lead")


def _parallel_note(res):
    """What ``--parallel auto`` chose and why (the seconds per step it compared), else None."""
    timing, mode = res.get("parallel_timing"), res.get("parallel")
    if not timing or mode is None:
        return None
    whole, shard = (f"{timing[k] * 1e6:,.0f} µs" for k in ("lead", "shard"))
    why = (f"a step of the whole batch took {whole} on the slowest rank, a step of its shard with the Allreduce "
           f"{shard}")
    if mode == "lead":
        threads = res.get("lead_threads")
        with_threads = f" with {threads} BLAS thread(s)" if threads else ""
        return (f"nablanet: note: --parallel auto chose lead ({why}): rank 0 trained alone{with_threads}, as one "
                f"process would, while the other ranks waited asleep and took its state at the end, so the ranks "
                f"train as fast as one process, not faster; sharding pays with larger batches or layers")
    return f"nablanet: note: --parallel auto chose shard ({why})"


def cmd_train(args):
    from .experiments import run_training

    cfg = _config_from(args)
    comm = _comm(args)
    if args.resume:
        others = sorted(k for k in cfg if k != "epochs")
        if others:
            raise ConfigError(f"--resume continues a run with its own settings; only --epochs may change "
                              f"(got {', '.join(others)})")
        if args.overwrite:
            raise ConfigError("--resume continues a run and --overwrite replaces it; give one of them")
        if not os.path.isfile(os.path.join(args.resume, "config.json")):
            raise ConfigError(f"{args.resume!r} holds no run to resume (no config.json)")
        out = args.resume
    else:
        out = args.out or _new_folder(cfg.get("data", DEFAULTS["data"]))
    if comm is not None:  # one folder name for all ranks
        out = comm.bcast_object(out)
    progress = not args.json and not args.no_progress and sys.stderr.isatty()
    with _thread_limit(args, comm):
        from .distributed import threads_in_use

        threads = threads_in_use()  # as the libraries say
        res = run_training(cfg, out_dir=out, progress=progress, resume=args.resume, comm=comm,
                           checkpoint_every=args.checkpoint_every,
                           checkpoint_seconds=30.0 if args.checkpoint_seconds is None else args.checkpoint_seconds,
                           plots=not args.no_plots, overwrite=args.overwrite, parallel=args.parallel,
                           threads=args.threads)
    if comm is not None and not comm.is_root:
        return
    c = res["config"]
    final = {k: v for k, v in res.items() if k not in ("config", "trainer")}
    final["threads_per_process"] = threads
    for note in (_parallel_note(res), _communication_note(res["ranks"], res.get("communication_fraction"),
                                                          res.get("parallel"))):
        if note:
            print(note, file=sys.stderr)
    from .optim import FULL_BATCH

    arch = "-".join(map(str, [res["trainer"].model.n_inputs] + c["hidden"] + [c["n_outputs"]]))
    act = c["activation"] if c["hidden"] else "no hidden layer"
    opt = c["optimizer"] if c["optimizer"] in FULL_BATCH else f"{c['optimizer']} lr={c['lr']:g}" + (
        f" ({c['schedule']})" if c.get("schedule", "constant") != "constant" else "")
    epochs = f"{res['epochs']} epoch" + ("" if res["epochs"] == 1 else "s")
    lines = [f"trained {arch} ({act}, output {c['output_activation']}) on {c['data']} with {c['loss']}, "
             f"{opt}, {epochs} in {res['train_seconds']:.2f} s",
             _table([{"metric": k, "value": v} for k, v in final.items() if k.startswith("test_")], ["metric", "value"],
                    {"value": "#.5g"}),
             f"run folder: {out}  ({', '.join(f for f in RUN_FILES if os.path.exists(os.path.join(out, f)))})"
             + (f"; data-parallel over {res['ranks']} MPI ranks (parallel={res.get('parallel')}), " + (
                 f"rank 0 alone with {res['lead_threads']} BLAS thread(s)" if res.get("lead_threads")
                 else f"{threads} BLAS thread(s) each") if res["ranks"] > 1 else "")]
    _emit(args, {"config": c, "final": final}, "\n".join(lines))


def _grid_axis(item):
    """One --grid NAME=V1,V2,... read at parse time: each value by the setting's own check, as its flag is."""
    if "=" not in item:
        raise argparse.ArgumentTypeError(f"expected NAME=V1,V2,..., got {item!r}")
    name, vals = item.split("=", 1)
    name = name.strip().replace("-", "_")
    if name not in SETTINGS:
        raise argparse.ArgumentTypeError(f"unknown setting {name!r}; choose from {', '.join(SETTINGS)}")
    if not vals.strip():
        raise argparse.ArgumentTypeError(f"{item} has no value; give {name}=V1,V2,...")
    if any(not v.strip() for v in vals.split(",")):  # '16,,32' or '16,': a stray comma, not a value
        try:  # the hint only where none is a value of the setting (no hidden layer, no limit, the full batch)
            SETTINGS[name].parse("none", name)
            meaning = {"hidden": "no hidden layer", "batch_size": "the full batch", "scale": "no scaling",
                       "n": "every row", "patience": "no early stopping", "degree": "the features themselves"}
            hint = f"; where you mean {meaning.get(name, 'none')}, write none"
        except (V.InvalidValueError, V.InvalidTypeError, V.MissingFileError):
            hint = ""
        raise argparse.ArgumentTypeError(f"{item} has an empty value (a stray comma){hint}")
    # ',' separates the values, so one value's list is joined otherwise: 16,32x32 (layer sizes), tanh+relu,tanh
    # (per-layer activations)
    join = (lambda v: v.replace("+", ",")) if name == "activation" else (lambda v: v)
    try:
        values = [SETTINGS[name].parse(join(v.strip()), name) for v in vals.split(",")]
    except (V.InvalidValueError, V.InvalidTypeError, V.MissingFileError) as e:
        hint = " (in a --grid value, join one network's per-layer names with +: tanh+relu)" if name == "activation" else ""
        raise argparse.ArgumentTypeError(str(e) + hint) from None
    # the same meaning as the flags: batch size 0 is the full batch, scale none is no scaling
    if name == "batch_size":
        values = [None if v == 0 else v for v in values]
    if name == "scale":
        values = [None if v == "none" else v for v in values]
    return name, values


def _parse_grid(items):
    grid = {}
    for item in items:
        name, values = item if isinstance(item, tuple) else _grid_axis(item)
        if name in grid:
            raise ConfigError(f"--grid: {name} is given twice; put all its values in one --grid {name}=V1,V2,...")
        grid[name] = values
    return grid


def cmd_sweep(args):
    from .experiments import _point_label, _show_value, sweep

    cfg = _config_from(args)
    grid = _parse_grid(args.grid or [])
    comm = _comm(args)
    out = args.out or _new_folder(f"sweep-{cfg.get('data', DEFAULTS['data'])}")
    if comm is not None:
        out = comm.bcast_object(out)
    args.out = out  # named by the line of a stopped sweep
    progress = not args.json and not args.no_progress and sys.stderr.isatty()
    res = sweep(cfg, grid, out, metric=args.metric, jobs=args.jobs, progress=progress, comm=comm,
                seeds=args.seeds or 1, threads=args.threads)
    if res is None:  # an MPI rank other than 0
        return
    names, metric = res["names"], res["metric"]
    cols = names + [metric] + ([metric + "_std"] if res["seeds"] > 1 else [])
    cols += [c for c in ("error", "note") if any(c in r for r in res["results"])]  # why a cell is blank
    rows = [{k: _show_value(v) for k, v in r.items()} for r in res["results"]]
    best = res["best"]
    spread = f" +- {best[metric + '_std']:.4g} over {res['seeds']} seeds" if res["seeds"] > 1 else ""
    text = "\n".join([
        _table(rows, cols, {metric: "#.4g", metric + "_std": "#.4g"}),
        f"best {metric} = {best[metric]:.4g}{spread} at " + _point_label({n: best[n] for n in names})
        + (f"  ({res['skipped']} runs already done, skipped)" if res["skipped"] else ""),
        f"results: {out}/results.csv, {out}/results.json; plots: " + ", ".join(f"{out}/{p}" for p in res["plots"]),
    ])
    _emit(args, {k: v for k, v in res.items()}, text)


def cmd_compare(args):
    from .experiments import compare

    cfg = _config_from(args)
    out = args.out or _new_folder(f"compare-{cfg.get('data', DEFAULTS['data'])}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a peer that cannot run is listed under the table instead
        with _thread_limit(args, None):
            res = compare(cfg, degree=args.linear_degree, out_dir=out, overwrite=args.overwrite)
    cols = [c for c in res["results"][0] if c != "note"]
    notes = [f"{r['model']}: {r['note']}" for r in res["results"] if r["note"]] + res["skipped"]
    text = "\n".join([_table(res["results"], cols, {"train_seconds": ".2f"}), *notes,
                      f"table and plot: {out}/compare.csv, {out}/compare.png"])
    _emit(args, {"metric": res["metric"], "results": res["results"], "skipped": res["skipped"]}, text)


def cmd_explain(args):
    from .explain import explain_expression, explain_network

    if args.expr is not None:
        graph = V.output_file(args.graph or "graph.png", "--graph")
        from matplotlib.backend_bases import FigureCanvasBase

        kinds = FigureCanvasBase.get_supported_filetypes()
        if os.path.splitext(graph)[1].lower().lstrip(".") not in kinds:
            raise ConfigError(f"--graph {graph!r}: matplotlib cannot write this kind of file; "
                              f"end the name with one of .{', .'.join(sorted(kinds))}")
        remove_stale_temps(os.path.dirname(os.path.abspath(graph)))  # an interrupted earlier drawing's
        # every mode answers an overflow or invalid value with one ExpressionError (a ValueError): one line
        text, rep = explain_expression(args.expr, args.at, graph_path=graph)
        _emit(args, {k: v for k, v in rep.items()}, text + f"\ngraph drawn to {graph}")
    else:
        text, rep = explain_network(args.sizes or [2, 3, 2], activation=args.activation or "sigmoid",
                                    seed=args.seed or 0)
        rep = {k: v for k, v in rep.items() if k != "grads"}
        _emit(args, rep, text)


def cmd_surface(args):
    """The notes' "gradient on a surface": J(w, b) of one neuron with -grad J and optimizer paths, and with
    ``--plane`` the loss of a trained network on a filter-normalized random plane."""
    with _thread_limit(args, None):
        _surface(args)


def _surface(args):
    from . import surface, viz
    from .data import load_dataset

    out = args.out or _new_folder(f"surface-{args.data}")
    if args.data == "neuron":
        rng = np.random.default_rng(args.seed)
        x = rng.uniform(-1, 1, 60)
        y = 1 / (1 + np.exp(-(3 * x - 1))) + 0.01 * rng.standard_normal(60)
    else:
        ds = load_dataset(args.data, seed=args.seed)
        if ds.X.shape[1] != 1 or ds.y.ndim != 1:
            raise ConfigError(f"--data: a single neuron y = sigma(w x + b) needs one feature and one target; "
                              f"{args.data} has {ds.X.shape[1]} features (use --plane for a network on it)")
        x, y = ds.X[:, 0], ds.y.astype(float)
    os.makedirs(out, exist_ok=True)
    remove_stale_temps(out)  # what an interrupted earlier run into this folder left
    J = surface.single_neuron(x, y, activation=args.activation)
    os.makedirs(out, exist_ok=True)
    start = np.array(args.start)
    w = np.linspace(min(args.w_range[0], start[0]), max(args.w_range[1], start[0]), args.grid)
    b = np.linspace(min(args.b_range[0], start[1]), max(args.b_range[1], start[1]), args.grid)
    chosen = {k: v for k, v in surface.DEFAULT_OPTIMIZERS.items() if k.split(" ")[0].lower() in args.optimizers.split(",")}
    paths = surface.optimizer_paths(J, start, chosen, steps=args.steps, batch_size=args.batch_size, seed=args.seed)
    cost = surface.cost_grid(J, w, b)
    viz.cost_surface(w, b, cost, surface.descent_field(J, w, b), paths, path=os.path.join(out, "cost_surface.png"))
    files = ["cost_surface.png"]
    if args.gif:
        viz.animate_paths(w, b, cost, paths, os.path.join(out, "paths.gif"))
        files.append("paths.gif")
    rows = [{"optimizer": p.name, "lr": p.lr, "steps": p.steps, "final_J": p.final_cost,
             "w": float(p.points[-1, 0]), "b": float(p.points[-1, 1])} for p in paths.values()]
    doc = {"data": args.data, "start": start.tolist(), "paths": rows,
           "points": {p.name: p.points.tolist() for p in paths.values()}}
    if args.plane:
        doc["plane"] = _plane(args, out)
        files.append("loss_plane.png")
    atomic_write_json(os.path.join(out, "paths.json"), doc)
    text = "\n".join([f"J(w, b) = mean (sigma(w x + b) - y)^2 on {args.data}, from (w, b) = ({start[0]:g}, {start[1]:g})",
                      _table(rows, ["optimizer", "lr", "steps", "final_J", "w", "b"],
                             {"final_J": ".4g", "w": ".4f", "b": ".4f"}),
                      f"pictures: {', '.join(os.path.join(out, f) for f in files)}"])
    _emit(args, {k: v for k, v in doc.items() if k != "points"}, text)


def _plane(args, out):
    """Train the --plane network on --plane-data and draw J on a filter-normalized plane with its trajectory."""
    from . import surface, viz
    from .data import load_dataset, split_scale
    from .nn import MLP
    from .train import fit
    from .train.callbacks import Callback

    ds = load_dataset(args.plane_data, seed=args.seed)
    Xtr, _, ytr, _, _ = split_scale(ds, seed=args.seed)
    classify = ds.task == "classification"
    k = int(np.max(ytr)) + 1 if classify else (1 if ytr.ndim == 1 else ytr.shape[1])
    model = MLP([Xtr.shape[1], *args.plane, k], activation="tanh", seed=args.seed, dtype=np.float64,
                output_activation="softmax" if classify else "identity")
    loss = "cross_entropy" if classify else "mse"
    snaps = [[{n: np.array(v) for n, v in p.items()} for p in model.params]]  # the start, then every epoch

    class Snapshot(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            snaps.append([{n: np.array(v) for n, v in p.items()} for p in trainer.model.params])

    fit(model, Xtr, ytr, loss=loss, optimizer="adam", lr=1e-2, epochs=30, batch_size=32, seed=args.seed,
        callbacks=[Snapshot()])
    plane = surface.loss_plane(model, Xtr, ytr, loss, trajectory=snaps, n=21, seed=args.seed, directions=args.directions)
    viz.loss_plane(plane, path=os.path.join(out, "loss_plane.png"),
                   title=f"{args.plane_data}: {'-'.join(map(str, model_sizes(model)))} network, J on the plane of "
                         + ("two filter-normalized random directions" if args.directions == "random"
                            else "the trajectory's two principal directions"))
    return {"data": args.plane_data, "J_min": float(plane.cost.min()), "J_center": plane.center_cost}


def model_sizes(model):
    return [model.n_inputs, *[layer.n_out for layer in model.layers if hasattr(layer, "n_out")]]


def build_parser():
    from .data import DATASETS

    p = _Parser(prog="nablanet", description="Feed-forward neural networks on an automatic-differentiation engine.")
    from . import __version__

    p.add_argument("--version", action="version", version=f"nablanet {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    def common(q, out_help, progress=True, mpi=None):
        q.add_argument("--out", metavar="DIR", type=V.flag(V.output_dir), help=out_help)
        if progress:
            q.add_argument("--no-progress", action="store_true",
                           help="no progress bar (default: a bar when stderr is a terminal)")
        if mpi:
            q.add_argument("--mpi", action="store_true", help=mpi + " (default: off; on when started by mpiexec/srun)")
        q.add_argument("--threads", type=_positive_int, metavar="N",
                       help="BLAS/OpenMP threads per process (default: the cores divided among the processes "
                            "of this run: MPI ranks on this machine, or a sweep's --jobs; at most OMP_NUM_THREADS, "
                            "OPENBLAS_NUM_THREADS or MKL_NUM_THREADS when set)")
        q.add_argument("--json", action="store_true", help="print one JSON document (default: tables for people)")

    t = sub.add_parser("train", help="train a network and write a run folder")
    _add_training_flags(t)
    common(t, "run folder (default: runs/DATA-DATE-TIME)", mpi="train data-parallel over MPI ranks")
    t.add_argument("--parallel", type=V.flag(parallel_choice()), metavar="MODE",
                   help="how MPI ranks share the steps: shard = each rank its shard of every batch, one Allreduce "
                        "per step; lead = rank 0 trains alone, as one process with the threads of its machine's "
                        "ranks, while the others wait asleep and take its state at the end; auto = the faster of "
                        "the two, timed on the first batch (lead for batches with fewer rows than ranks and for "
                        "full-batch optimizers; runs may differ in the last bits; name a mode for bitwise "
                        "reproducibility); no effect without MPI (default: auto; on --resume, the mode the run used)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (default: refuse, and offer --resume)")
    t.add_argument("--resume", metavar="RUN_DIR", type=V.flag(V.existing_dir),
                   help="continue a stopped run from its last checkpoint (from its start, config.json, when it "
                        "stopped before its first one); only --epochs "
                                                         "may change (default: a new run)")
    t.add_argument("--no-plots", dest="no_plots", action="store_true",
                   help="write no PNG plots into the run folder (default: learning curves and a prediction or "
                        "confusion-matrix plot)")
    t.add_argument("--checkpoint-every", dest="checkpoint_every", type=_positive_int, metavar="EPOCHS",
                   help="also save a checkpoint every EPOCHS epochs (default: by time only, see --checkpoint-seconds)")
    t.add_argument("--checkpoint-seconds", dest="checkpoint_seconds", type=_nonnegative, metavar="S",
                   help="save a checkpoint when S seconds have passed since the last one; 0 = every epoch; always "
                        "at the end and on Ctrl-C or SIGTERM (then the end of the last whole epoch); a run stopped "
                        "before its first checkpoint resumes from its start (config.json) (default: 30)")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sweep", help="a grid over one or more settings, in parallel, with line plots or heatmaps")
    _add_training_flags(s)
    s.add_argument("--grid", action="append", metavar="NAME=V1,V2,...", type=_grid_axis,
                   help="a setting and its values; repeat for each axis, e.g. --grid lr=1e-4,1e-3,1e-2 "
                        "--grid hidden=16,32x32 (hidden sizes of several layers joined by x; per-layer activations by +, "
                        "activation=tanh+relu,tanh) (default: none; required)")
    s.add_argument("--seeds", type=_positive_int, metavar="N",
                   help="train each point with N seeds (seed, seed+1, ...) and report the mean and standard "
                        "deviation (default: 1)")
    s.add_argument("--metric", default="auto", metavar="NAME",
                   type=V.flag(V.Choice(("auto", "test_accuracy", "test_loss", "test_mse", "test_r2"))),
                   help="the metric that picks the best point: test_accuracy, test_mse, test_r2, test_loss; auto = "
                        "test_accuracy for classification, test_mse for regression (default: auto)")
    s.add_argument("--jobs", type=_positive_int, metavar="N",
                   help="processes that train the points: this one and N-1 workers; 1 = no worker (default: all cores)")
    common(s, "sweep folder; running again skips the finished points (default: runs/sweep-DATA-DATE-TIME)",
           mpi="spread the points over MPI ranks")
    s.set_defaults(func=cmd_sweep)

    c = sub.add_parser("compare", help="the same network in nablanet, scikit-learn and PyTorch, against "
                                       "OLS/RidgeCV/LassoCV or logistic regression")
    _add_training_flags(c)
    c.add_argument("--linear-degree", dest="linear_degree", type=_positive_int, metavar="D",
                   help="polynomial degree of the linear regression baselines (default: 5; 1 with --degree, "
                        "whose design matrix they then share with the network)")
    c.add_argument("--overwrite", action="store_true",
                   help="replace the comparison already in --out, or write beside a run there (default: refuse)")
    common(c, "folder for compare.csv/json/png (default: runs/compare-DATA-DATE-TIME)", progress=False)
    c.set_defaults(func=cmd_compare)

    from .explain import SIZES as explain_sizes

    e = sub.add_parser("explain", help="forward and backward pass of a small network, or of an expression, "
                                       "number by number")
    e.add_argument("--expr", help='an expression in x, e.g. "sqrt(x**2 + exp(x**2))" (default: the network mode)')
    e.add_argument("--at", type=_number(float), default=1.0, help="the point x of --expr (default: 1.0)")
    e.add_argument("--graph", metavar="FILE.png", type=V.flag(V.output_file),
                   help="where to draw the graph of --expr (default: graph.png)")
    e.add_argument("--sizes", type=V.flag(explain_sizes), metavar="N,N,...",
                   help="layer sizes of the network mode, inputs to outputs (default: 2,3,2)")
    e.add_argument("--activation", type=_names([a for a in _activations() if a != "softmax"], "activation"),
                   metavar="NAME", help="activation of the network mode (default: sigmoid)")
    e.add_argument("--seed", type=_count, help="seed of the network's weights (default: 0)")
    e.add_argument("--json", action="store_true", help="print one JSON document (default: text for people)")
    e.set_defaults(func=cmd_explain)

    u = sub.add_parser("surface", help="the cost J(w, b) of one neuron as a surface, with -grad J and the paths of "
                                       "seven optimizers; --plane adds a network's loss on a random plane")
    u.add_argument("--data", default="neuron", metavar="NAME",
                   type=V.flag(V.Choice(("neuron", *DATASETS), normalize=lambda s: s.lower().replace("-", "_"))),
                   help="x and y of the neuron: 'neuron' (60 points of sigma(3x - 1) + noise) or a one-feature "
                        "regression set such as runge (default: neuron)")
    u.add_argument("--activation", default="sigmoid", type=_names([a for a in _activations() if a != "softmax"],
                   "activation"), metavar="NAME", help="the neuron's activation sigma (default: sigmoid)")
    u.add_argument("--start", type=_start, default=[-3.0, 4.0], metavar="W,B",
                   help="where every optimizer starts (default: -3,4)")
    u.add_argument("--steps", type=_positive_int, default=150, metavar="N", help="steps per optimizer (default: 150)")
    u.add_argument("--optimizers", type=_names(["gd", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"],
                   "optimizer"), default="gd,sgd,momentum,nesterov,adagrad,rmsprop,adam",
                   metavar="A,B,...", help="which paths to draw, from gd, sgd (minibatch), momentum, nesterov, adagrad, "
                                           "rmsprop, adam (default: all seven)")
    u.add_argument("--batch-size", dest="batch_size", type=_positive_int, default=8, metavar="N",
                   help="minibatch size of the sgd path (default: 8)")
    u.add_argument("--w-range", dest="w_range", type=_range, default=[-4.0, 8.0], metavar="LO,HI",
                   help="w axis of the grid (default: -4,8)")
    u.add_argument("--b-range", dest="b_range", type=_range, default=[-6.0, 5.0], metavar="LO,HI",
                   help="b axis of the grid (default: -6,5)")
    u.add_argument("--grid", type=_number(int, 5, 400), default=41, metavar="N", help="grid points per axis (default: 41)")
    u.add_argument("--gif", action="store_true", help="also write paths.gif, the paths step by step (default: off)")
    u.add_argument("--plane", type=_plane_sizes, metavar="N,N,...",
                   help="also train a tanh network with these hidden sizes on --plane-data and draw its loss on a "
                        "plane through the trained parameters along two filter-normalized random directions "
                        "(Li et al. 2018), with the training trajectory (default: off)")
    u.add_argument("--directions", choices=["random", "pca"], default="random",
                   help="the plane of --plane: two filter-normalized random directions, or the two principal "
                        "directions of the training trajectory, which show the path itself (default: random)")
    u.add_argument("--plane-data", dest="plane_data", default="franke", metavar="NAME", type=V.flag(SETTINGS["data"]),
                   help="data set of --plane (default: franke)")
    u.add_argument("--seed", type=V.flag(SETTINGS["seed"]), default=0,
                   help="seed of the data, the minibatches and the plane (default: 0)")
    common(u, "folder for cost_surface.png, paths.json (and paths.gif, loss_plane.png) "
              "(default: runs/surface-DATA-DATE-TIME)", progress=False)
    u.set_defaults(func=cmd_surface)
    return p


def _how_to_go_on(args):
    """What a stopped command leaves to go on from, for its one line."""
    if args.func is cmd_train:
        return "; a run continues from its last checkpoint (or its start) with --resume"
    if args.func is cmd_sweep and getattr(args, "out", None):
        return f"; the finished points are kept: the same sweep with --out {args.out} goes on from them"
    return ""


def main(argv=None):
    """Run one ``nablanet`` command and return its exit status.

    The ``nablanet`` console script calls it; from Python,
    ``main(["train", "--data", "digits", "--epochs", "5"])`` runs a command in this process.  Like
    ``nablanet train`` without ``--out``, that example also writes a new run folder (configuration,
    metrics, checkpoints, plots) at ``runs/digits-YYYYMMDD-HHMMSS`` under the current directory;
    ``--out DIR`` names the folder instead.
    ``nablanet --help`` lists the commands and ``nablanet COMMAND --help`` each one's flags.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program's name; None (the default) reads ``sys.argv[1:]``.

    Returns
    -------
    int
        0 when the command ran (and after ``--help`` or ``--version``); 2 after a bad flag, a
        refused setting, missing data or a file that cannot be read or written, said in one line
        on stderr, never a traceback (``NABLANET_DEBUG=1`` raises an unexpected error instead);
        130 after Ctrl-C and 143 after SIGTERM, with a line on how to go on (``--resume``);
        128 + SIGPIPE, silently, when the reader of a piped output went away.  Under ``mpiexec``
        an interrupted rank ends its process with that status instead of returning.
    """
    from .distributed import LeadFailed

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # bad flags, --help, --version: argparse has printed its line
        return e.code
    if not getattr(args, "func", None):
        return _fail("give a command: train, sweep, compare, explain or surface (nablanet --help describes them)",
                     quiet=_other_rank())
    previous = _on_sigterm_raise()
    try:
        shown = warnings.formatwarning  # how a warning is written (recorded ones, as pytest's, are left alone)
        warnings.formatwarning = _format_warning
        try:
            args.func(args)
        finally:
            warnings.formatwarning = shown  # (main may run inside a notebook)
        sys.stdout.flush()  # here, so that a closed pipe is met below rather than at exit
    except DataNotFoundError as e:
        return _fail(f"{e} On the command line: --data-path DIR.")
    except (ConfigError, FileNotFoundError, ValueError, TypeError, ImportError) as e:
        return _fail(e, quiet=_other_rank() and not isinstance(e, (OSError, ImportError)))
    except LeadFailed as e:  # rank 0 failed while it trained alone, and says why itself
        return _fail(e, quiet=_other_rank())
    except _Terminated:
        return _end_interrupted_rank(143, "stopped (SIGTERM)", _how_to_go_on(args))
    except KeyboardInterrupt:
        return _end_interrupted_rank(130, "interrupted", _how_to_go_on(args))
    except OSError as e:  # a path that cannot be read or written, a full disk, a closed pipe
        if isinstance(e, BrokenPipeError) and _stdout_is_pipe():
            # the reader of the output went away (`nablanet ... | head`): stop quietly, as a Unix tool killed
            # by SIGPIPE does, and send what Python still flushes at exit nowhere
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 128 + signal.SIGPIPE
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        return _fail(f"{where}{e.strerror or e}")
    except Exception as e:  # noqa: BLE001 - never a traceback on the command line (NABLANET_DEBUG=1 shows it)
        if os.environ.get("NABLANET_DEBUG"):
            raise
        return _fail(f"unexpected {type(e).__name__}: {e} (NABLANET_DEBUG=1 shows the traceback)")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


#: seconds an interrupted MPI rank other than 0 waits for rank 0 to write its checkpoint and end the job
RANK_GRACE_SECONDS = 10.0


def _end_interrupted_rank(code, what, go_on=""):
    """The one line of a stopped command (``what`` happened, how to ``go_on``), then ``code``; under MPI, the
    process ends here, without MPI's finalization.

    A signal stops each rank where it finds it: a rank stopped between steps leaves the others waiting in the
    step's collective, where no signal reaches Python, and finalizing waits for them, so the job hung.  Rank 0
    (its checkpoint written by now) says the line, ends at once and the launcher ends the others; another rank
    gives rank 0 ``RANK_GRACE_SECONDS`` to do so, then ends itself, which ends a rank 0 stuck in a collective,
    and says the line itself: rank 0 was not stopped.
    """
    from .distributed import launched_rank, launched_under_mpi

    if not _other_rank():
        print(f"nablanet: {what}{go_on}", file=sys.stderr)
    if not launched_under_mpi():
        return code
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    if _other_rank():
        for sig in (signal.SIGTERM, signal.SIGINT):  # a second signal ends this rank at once
            signal.signal(sig, signal.SIG_DFL)
        time.sleep(RANK_GRACE_SECONDS)
        with contextlib.suppress(Exception):
            print(f"nablanet: {what} on rank {launched_rank()} alone, which ends the job{go_on}", file=sys.stderr,
                  flush=True)
    os._exit(code)


def _stdout_is_pipe():
    import stat

    try:
        return stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):  # no real file behind sys.stdout (a notebook, a test's capture)
        return False


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that the command stops the way Ctrl-C stops it."""


def _on_sigterm_raise():
    """While the command runs, SIGTERM raises _Terminated (cleanup runs: temporary files, sweep workers)."""
    def handler(signum, frame):
        raise _Terminated()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (the CLI called from a thread): leave signals alone
        return None


def _format_warning(message, category, filename, lineno, line=None):
    """A warning on the command line: one line, as an error is, not Python's file and line."""
    return "nablanet: warning: " + " ".join(str(message).split()) + "\n"


def _fail(e, quiet=False):
    if not quiet:
        print("nablanet: error: " + " ".join(str(e).split()), file=sys.stderr)  # one line, whatever the message
    return 2


if __name__ == "__main__":
    sys.exit(main())
