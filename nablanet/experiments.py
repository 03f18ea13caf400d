"""Experiments: a training run from a configuration, grid sweeps, and baseline comparisons.

A configuration is a flat dict (see :data:`DEFAULTS`); :func:`resolve` fills in
what depends on the data (output layer, cost) and rejects impossible
combinations with one clear sentence (:class:`ConfigError`).  The command line
(:mod:`nablanet.cli`) is a thin layer over these functions.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import time

import numpy as np

__all__ = ["DEFAULTS", "ConfigError", "DataNotFoundError", "resolve", "run_training", "sweep", "compare", "write_run"]

DEFAULTS = {
    "data": "digits", "n": None, "noise": 0.0, "data_path": None, "test_size": 0.2, "scale": "standard",
    "hidden": [64], "activation": "relu", "output_activation": "auto", "loss": "auto",
    "optimizer": "adam", "lr": 3e-3, "schedule": "constant", "momentum": 0.0, "nesterov": False,
    "l1": 0.0, "l2": 0.0, "epochs": 30, "batch_size": 32, "dropout": 0.0, "batch_norm": False,
    "init": "auto", "seed": 0, "patience": None, "degree": None,
}
SCHEDULES = ("constant", "step", "exponential", "inverse_time", "cosine")


class ConfigError(ValueError):
    """A configuration that cannot run, said in one sentence."""


class DataNotFoundError(ConfigError):
    """A data set whose files are not where the configuration's ``data_path`` (or the default place) says."""


def _load_data(cfg):
    from .data import load_dataset, split_scale

    try:
        ds = load_dataset(cfg["data"], n=cfg["n"], noise=cfg["noise"], seed=cfg["seed"], path=cfg["data_path"])
    except FileNotFoundError as e:
        raise DataNotFoundError(str(e)) from None
    except ValueError as e:
        raise ConfigError(str(e)) from None
    features = None
    if cfg.get("degree"):
        ds, features = _polynomial(ds, int(cfg["degree"]))
    Xtr, Xte, ytr, yte, scaler = split_scale(ds, test_size=cfg["test_size"], scale=cfg["scale"], seed=cfg["seed"])
    if features is not None:  # new points go through the same design matrix, then the same scaling
        from sklearn.pipeline import Pipeline

        scaler = Pipeline([("polynomial", features)] + ([("scale", scaler)] if scaler is not None else []))
    return ds, Xtr, Xte, ytr, yte, scaler


def _polynomial(ds, degree):
    """The data set with its features replaced by the polynomial design matrix of ``degree`` (no constant column:
    the network's bias is the intercept)."""
    import dataclasses

    from sklearn.preprocessing import PolynomialFeatures

    if degree < 1:
        raise ConfigError(f"degree must be at least 1, got {degree}")
    poly = PolynomialFeatures(degree, include_bias=False).fit(ds.X)
    if poly.n_output_features_ > 5000:
        raise ConfigError(f"degree {degree} on {ds.X.shape[1]} features makes {poly.n_output_features_} columns; "
                          f"use a lower degree")
    test = None if ds.X_test is None else poly.transform(ds.X_test)
    return dataclasses.replace(ds, X=poly.transform(ds.X), X_test=test), poly


def resolve(cfg, ds):
    """Fill the data-dependent settings and check the whole configuration."""
    from .optim import FULL_BATCH

    given = cfg
    cfg = {**DEFAULTS, **{k: v for k, v in cfg.items() if k != "n_outputs"}}  # n_outputs is derived
    if cfg["optimizer"] in FULL_BATCH:  # lbfgs, newton, hessian_free: all rows, steps from a line search
        if given.get("batch_size") is not None:
            raise ConfigError(f"{cfg['optimizer']} is a full-batch method; leave out the batch size (or give 0)")
        if "lr" in given or cfg["schedule"] != "constant":
            raise ConfigError(f"{cfg['optimizer']} takes no learning rate or schedule: its steps come from a line search")
        cfg["batch_size"] = None
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    if isinstance(cfg["hidden"], (int, np.integer)):
        cfg["hidden"] = [int(cfg["hidden"])]
    cfg["hidden"] = [int(h) for h in cfg["hidden"]]
    if any(h < 1 for h in cfg["hidden"]):
        raise ConfigError(f"hidden layer sizes must be positive, got {cfg['hidden']}")
    if int(cfg["epochs"]) < 1:
        raise ConfigError(f"epochs must be at least 1, got {cfg['epochs']}")
    if cfg["lr"] <= 0:
        raise ConfigError(f"the learning rate must be positive, got {cfg['lr']}")
    if cfg["batch_size"] is not None and int(cfg["batch_size"]) < 1:
        raise ConfigError(f"batch_size must be positive, got {cfg['batch_size']}")
    if not 0 <= cfg["dropout"] < 1:
        raise ConfigError(f"dropout must be in [0, 1), got {cfg['dropout']}")
    if cfg["noise"] is None or cfg["noise"] < 0:
        raise ConfigError(f"noise is a standard deviation and must be >= 0, got {cfg['noise']}")
    if cfg["schedule"] not in SCHEDULES:
        raise ConfigError(f"unknown schedule {cfg['schedule']!r}; choose from {', '.join(SCHEDULES)}")
    if ds.task == "classification":
        k = int(ds.n_classes)
        loss = cfg["loss"] if cfg["loss"] != "auto" else ("bce" if k == 2 else "cross_entropy")
        if loss in ("mse", "mae", "huber", "half_sse"):
            raise ConfigError(f"{cfg['data']} is a classification data set; use loss cross_entropy or bce, not {loss}")
        if loss in ("bce", "binary_cross_entropy"):
            if k != 2:
                raise ConfigError(f"binary cross-entropy needs 2 classes but {cfg['data']} has {k}; use cross_entropy")
            n_out, out_act = 1, "sigmoid"
        elif loss in ("cross_entropy", "softmax_cross_entropy"):
            n_out, out_act = k, "softmax"
        else:
            raise ConfigError(f"unknown loss {loss!r}")
        if cfg["output_activation"] not in ("auto", out_act):
            raise ConfigError(
                f"loss {loss} works from logits and needs output activation {out_act}, not {cfg['output_activation']}"
            )
    else:
        loss = cfg["loss"] if cfg["loss"] != "auto" else "mse"
        if loss in ("cross_entropy", "softmax_cross_entropy", "bce", "binary_cross_entropy"):
            raise ConfigError(f"{loss} needs class labels, but {cfg['data']} is a regression data set; use mse")
        n_out = 1 if ds.y.ndim == 1 else ds.y.shape[1]
        out_act = "identity" if cfg["output_activation"] == "auto" else cfg["output_activation"]
        if out_act == "softmax" and n_out == 1:
            raise ConfigError("a softmax over one output unit is constant 1; use identity or sigmoid")
    cfg["loss"], cfg["output_activation"], cfg["n_outputs"] = loss, out_act, n_out
    return cfg


def _optimizer(cfg, steps_per_epoch):
    from . import optim

    lr, total = float(cfg["lr"]), int(cfg["epochs"]) * steps_per_epoch
    sched = {
        "constant": lambda: lr,
        "step": lambda: optim.step_decay(lr, max(1, total // 3), 0.3),
        "exponential": lambda: optim.exponential(lr, 0.01 ** (1.0 / max(total, 1))),
        "inverse_time": lambda: optim.inverse_time(lr * 50 * steps_per_epoch, 50 * steps_per_epoch),
        "cosine": lambda: optim.cosine(lr, total, lr / 100),
    }[cfg["schedule"]]()
    if cfg["optimizer"] in optim.FULL_BATCH:
        return optim.get_optimizer(cfg["optimizer"])
    kw = {"lr": sched}
    if cfg["optimizer"] in ("sgd", "gd"):
        kw.update(momentum=float(cfg["momentum"]), nesterov=bool(cfg["nesterov"]))
    try:
        return optim.get_optimizer(cfg["optimizer"], **kw)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None


def _model(cfg, n_features):
    from .nn import MLP

    acts = cfg["activation"]
    if isinstance(acts, str) and "," in acts:
        acts = acts.split(",")
    try:
        return MLP([n_features] + cfg["hidden"] + [cfg["n_outputs"]], activation=acts,
                   output_activation=cfg["output_activation"], init=cfg["init"], dropout=cfg["dropout"],
                   batch_norm=cfg["batch_norm"], seed=cfg["seed"])
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None


def _test_metrics(model, loss, Xte, yte, task):
    from sklearn.metrics import accuracy_score, mean_squared_error, r2_score

    from .train import evaluate
    from .train.metrics import to_labels

    out = model.predict(Xte)
    res = {"test_loss": evaluate(model, Xte, yte, loss=loss)["loss"]}
    if task == "classification":
        res["test_accuracy"] = float(accuracy_score(yte, to_labels(out)))
    else:
        pred = out.reshape(np.shape(yte)).astype(np.float64)
        res["test_mse"] = float(mean_squared_error(yte, pred))
        res["test_r2"] = float(r2_score(yte, pred))
    return res


def run_training(config, out_dir=None, progress=False, resume=None, comm=None, data=None, checkpoint_every=None,
                 checkpoint_seconds=30.0, plots=True):
    """Train one network from ``config``; returns a dict of results.

    With ``out_dir``, writes the run folder (configuration, per-epoch metrics
    as CSV and JSON, checkpoints, plots).  Checkpoints are written at the
    start, every ``checkpoint_every`` epochs and whenever ``checkpoint_seconds``
    have passed since the last one (0: every epoch), at the end, and on an
    interrupt between epochs (:class:`nablanet.train.Checkpoint`).  ``plots=False``
    leaves out the PNG plots (they take longer than a small fit itself).  ``resume`` is a run
    folder to continue from its checkpoint up to the configured epochs.
    ``comm`` (a :class:`nablanet.distributed.Communicator`) trains
    data-parallel over MPI ranks; only rank 0 writes.  ``data`` is what
    ``_load_data`` returned for this configuration, when the caller has it already.
    """
    from .train import Checkpoint, EarlyStopping, Trainer, load

    if resume is not None:
        with open(os.path.join(resume, "config.json")) as f:
            saved = json.load(f)
        config = {**{k: v for k, v in saved.items() if k in DEFAULTS}, **{k: v for k, v in config.items() if k == "epochs"}}
        out_dir = resume
    raw = {**DEFAULTS, **config}
    ds, Xtr, Xte, ytr, yte, scaler = data if data is not None else _load_data(raw)
    cfg = resolve(config, ds)
    metrics = ["accuracy"] if ds.task == "classification" else ["r2"]
    n_batches = 1 if cfg["batch_size"] is None else -(-len(Xtr) // int(cfg["batch_size"]))
    if resume is not None:
        trainer = load(os.path.join(resume, "checkpoint.npz"))
        trainer.comm = comm
        trainer._connect()  # rank 0's state on every rank
        # the schedule for the configured length (it may have grown); slots and step count carry on
        trainer.optimizer.lr = _optimizer(cfg, n_batches).lr
    else:
        model = _model(cfg, Xtr.shape[1])
        try:
            trainer = Trainer(model, cfg["loss"], _optimizer(cfg, n_batches), l1=cfg["l1"], l2=cfg["l2"],
                              seed=cfg["seed"], comm=comm)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    root = trainer.is_root
    callbacks = []
    if out_dir and root:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        callbacks.append(Checkpoint(os.path.join(out_dir, "checkpoint.npz"), every=checkpoint_every,
                                    seconds=checkpoint_seconds))
    validation = {"validation_data": (Xte, yte)}  # curves on the test split, for looking at
    if cfg["patience"]:
        # stopping chooses a model, so it must not look at the test split: it watches 10% of the training part
        callbacks.append(EarlyStopping("val_loss", patience=int(cfg["patience"])))
        validation = {"validation_split": 0.1}
    remaining = int(cfg["epochs"]) - trainer.epoch
    t0 = time.perf_counter()
    try:
        trainer.fit(Xtr, ytr, epochs=max(remaining, 0), batch_size=cfg["batch_size"], callbacks=callbacks,
                    metrics=metrics, progress=progress, **validation)
    except FloatingPointError as e:
        raise ConfigError(str(e)) from None
    if out_dir and root and cfg["patience"]:
        trainer.save(os.path.join(out_dir, "checkpoint.npz"))  # the restored best epoch, the model reported
    seconds = time.perf_counter() - t0
    result = {"data": cfg["data"], "task": ds.task, "epochs": trainer.epoch, "train_seconds": seconds,
              "n_params": trainer.model.n_params, **_test_metrics(trainer.model, cfg["loss"], Xte, yte, ds.task)}
    if out_dir and root:
        write_run(out_dir, trainer, cfg, result, ds, Xte, yte, scaler, plots=plots)
    if out_dir:
        result["run_dir"] = out_dir
    result["ranks"] = 1 if comm is None else comm.size
    result["config"] = cfg
    result["trainer"] = trainer
    return result


def write_run(out_dir, trainer, cfg, result, ds, Xte, yte, scaler=None, plots=True):
    """The run folder: metrics.csv, metrics.json, plots (the checkpoint is written by the callback)."""

    h = trainer.history.history
    keys = list(h)
    with open(os.path.join(out_dir, "metrics.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys)
        w.writerows(zip(*(h[k] for k in keys)))
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump({"final": {k: v for k, v in result.items() if k not in ("config", "trainer")}, "history": h}, f,
                  indent=2)
    if not plots:
        return
    from . import viz
    from .train.metrics import to_labels

    viz.learning_curves(trainer.history, os.path.join(out_dir, "learning_curves.png"),
                        title=f"{cfg['data']}: learning curves", held_out="validation" if cfg["patience"] else "test")
    model = trainer.model
    if ds.task == "classification":
        viz.confusion_matrix(yte, to_labels(model.predict(Xte)), os.path.join(out_dir, "confusion_matrix.png"),
                             title=f"{cfg['data']}: confusion matrix (test set)")
    elif Xte.shape[1] == 1:
        x = Xte if scaler is None else scaler.inverse_transform(Xte)  # in the data's own units
        viz.prediction_1d(x[:, 0], yte, model.predict(Xte), os.path.join(out_dir, "prediction.png"),
                          title=f"{cfg['data']}: prediction against truth (test set)")
    elif cfg["data"] in ("franke", "runge2d"):  # two raw features (before any polynomial design matrix)
        from .data import franke_function, runge2d_function

        f = franke_function if cfg["data"] == "franke" else runge2d_function
        tr = (lambda P: P) if scaler is None else scaler.transform
        viz.prediction_2d(lambda P: f(P[:, 0], P[:, 1]), lambda P: model.predict(tr(P))[:, 0],
                          os.path.join(out_dir, "prediction.png"), title=f"{cfg['data']}: prediction against truth")


# ------------------------------------------------------------------------------------------- sweeps


def _grid_points(grid):
    names = list(grid)
    return names, [dict(zip(names, vals)) for vals in itertools.product(*(grid[n] for n in names))]


def _point_key(point):
    return "_".join(f"{k}={v}" for k, v in point.items()).replace("/", "-").replace(" ", "")


def default_threads(processes):
    """BLAS/OpenMP threads for each of ``processes`` processes sharing this machine's cores (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, int(processes)))


def _limit_worker_threads(threads):
    """Pool initializer: this worker's BLAS and OpenMP pools get ``threads`` threads for its whole life."""
    from threadpoolctl import threadpool_limits

    global _WORKER_LIMITS
    _WORKER_LIMITS = threadpool_limits(threads)  # kept alive: the limit lasts as long as the worker


_WORKER_LIMITS = None


def _run_point(args):
    base, point = args
    try:
        res = run_training({**base, **point})
        return {k: v for k, v in res.items() if k.startswith("test_") or k in ("epochs", "train_seconds")}
    except Exception as e:  # noqa: BLE001 - one bad point is reported in its row, the sweep goes on
        return {"error": " ".join(f"{type(e).__name__}: {e}".split())}


def _write_point(pdir, p, res):
    tmp = os.path.join(pdir, _point_key(p) + f".json.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(res, f)
    os.replace(tmp, os.path.join(pdir, _point_key(p) + ".json"))
    return res


def default_metric(task):
    return ("test_accuracy", "max") if task == "classification" else ("test_mse", "min")


def _mode(metric):
    return "max" if any(s in metric for s in ("accuracy", "r2")) else "min"


def _summarize(names, points, runs, seeds):
    """One row per grid point: each metric's mean over the seeds, and its standard deviation with several seeds."""
    rows = []
    for p in points:
        done = [runs[_point_key({**p, **s})] for s in seeds]
        row = dict(p)
        errors = [r["error"] for r in done if "error" in r]
        ok = [r for r in done if "error" not in r]
        for k in sorted({k for r in ok for k in r} - set(names) - {"seed"}):
            vals = [r[k] for r in ok if isinstance(r.get(k), (int, float))]
            if not vals:
                continue
            row[k] = float(np.mean(vals))
            if len(seeds) > 1 and k.startswith("test_"):
                row[k + "_std"] = float(np.std(vals))
        if len(seeds) > 1:
            row["seeds"] = len(ok)
        if errors:
            row["error"] = errors[0]
        rows.append(row)
    return rows


def sweep(base, grid, out_dir, metric="auto", jobs=None, progress=False, comm=None, seeds=1, threads=None):
    """Train one network per point of ``grid`` (a dict name -> list of values), in parallel processes.

    ``grid`` may have one axis (a line plot) or more (heatmaps over the first
    two; the best over the others); any setting of :data:`DEFAULTS` can be an
    axis, ``hidden`` with lists of sizes (``[[16], [32, 32]]``).  With
    ``seeds=N`` every point is trained with the seeds ``seed, ..., seed+N-1``
    and its row holds each metric's mean and standard deviation (``_std``).

    Each finished run is written to ``out_dir/points/`` at once, so a sweep
    that is stopped and started again skips what it has done; a folder is
    refused only when it holds a sweep whose settings outside the grid differ.
    Writes ``results.csv``, ``results.json`` and one plot per metric
    (``heatmap_METRIC.png`` or ``line_METRIC.png``); returns the rows and the
    best point by ``metric``.  ``jobs`` worker processes (default: all cores)
    each limit BLAS/OpenMP to ``threads`` threads (default: the cores divided
    among the workers) and train many points each; ``jobs=1`` trains in this
    process.  With ``comm`` (MPI), the ranks share the runs instead of local
    processes; rank 0 writes the tables and returns them, the other ranks return None.
    """
    from . import viz
    from .data import DATASETS

    if not grid:
        raise ConfigError("a sweep needs a grid, e.g. --grid lr=1e-3,1e-2 (and more --grid for more axes)")
    for name, values in grid.items():
        if name not in DEFAULTS:
            raise ConfigError(f"cannot sweep over unknown setting {name!r}; choose from {', '.join(DEFAULTS)}")
        if not values:
            raise ConfigError(f"no values given for {name}")
    seeds = int(seeds)
    if seeds < 1:
        raise ConfigError(f"seeds must be at least 1, got {seeds}")
    if seeds > 1 and "seed" in grid:
        raise ConfigError("give either a grid over seed or seeds > 1, not both")
    data = base.get("data", DEFAULTS["data"])
    if data not in DATASETS:
        raise ConfigError(f"unknown data set {data!r}; choose from {', '.join(DATASETS)}")
    task = DATASETS[data][1]
    if metric == "auto":
        metric, mode = default_metric(task)
    else:
        mode = _mode(metric)
    names, points = _grid_points(grid)
    seed0 = int(base.get("seed", DEFAULTS["seed"]))
    seed_points = [{}] if seeds == 1 else [{"seed": seed0 + k} for k in range(seeds)]
    runs_todo = [{**p, **s} for p in points for s in seed_points]
    pdir = os.path.join(out_dir, "points")
    os.makedirs(pdir, exist_ok=True)
    meta_path = os.path.join(out_dir, "sweep.json")
    fixed = set(grid) | ({"seed"} if seeds > 1 else set())
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            old = json.load(f)
        old_base, new_base = old.get("base", {}), json.loads(json.dumps(base))
        differ = sorted(k for k in (set(old_base) | set(new_base)) - fixed
                        if {**DEFAULTS, **old_base}.get(k) != {**DEFAULTS, **new_base}.get(k))
        if differ:
            raise ConfigError(f"{out_dir} holds a sweep with other settings outside the grid "
                              f"({', '.join(f'{k}={old_base.get(k, DEFAULTS.get(k))!r}' for k in differ)}); "
                              f"give another --out to start a new one")
    if comm is not None:
        comm.barrier()  # every rank has read the old settings before rank 0 writes
    if comm is None or comm.is_root:
        with open(meta_path, "w") as f:
            json.dump({"base": base, "grid": grid, "metric": metric, "seeds": seeds}, f, indent=2)
    runs, todo = {}, []
    for r in runs_todo:
        path = os.path.join(pdir, _point_key(r) + ".json")
        done = None
        if os.path.exists(path):
            with open(path) as f:
                done = json.load(f)
        if done is None or "error" in done:  # failed points are tried again
            todo.append(r)
        else:
            runs[_point_key(r)] = done
    skipped = len(runs_todo) - len(todo)
    bar = None
    if progress and comm is None:
        from .train.callbacks import progress_bar

        bar = progress_bar(len(runs_todo), desc="sweep", unit="run", initial=skipped)
    if comm is not None:  # MPI: rank r runs r, r + size, ...; rank 0 gathers from the files
        from threadpoolctl import threadpool_limits

        with threadpool_limits(threads or default_threads(_ranks_on_this_node(comm))):
            for i, r in enumerate(todo):
                if i % comm.size == comm.rank:
                    _write_point(pdir, r, {**r, **_run_point((base, r))})
        comm.barrier()
        if not comm.is_root:
            return None
        for r in todo:
            with open(os.path.join(pdir, _point_key(r) + ".json")) as f:
                runs[_point_key(r)] = json.load(f)
        todo = []
    jobs = min(int(jobs or default_threads(1)), len(todo)) if todo else 0
    if jobs == 1:  # one process: no pool to start, the same thread limit as one worker
        from threadpoolctl import threadpool_limits

        with threadpool_limits(threads or default_threads(1)):
            for r in todo:
                runs[_point_key(r)] = _write_point(pdir, r, {**r, **_run_point((base, r))})
                if bar:
                    bar.update(1)
    elif jobs > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=jobs, initializer=_limit_worker_threads,
                                 initargs=(threads or default_threads(jobs),)) as ex:
            futures = {ex.submit(_run_point, (base, r)): r for r in todo}
            for fut in as_completed(futures):
                r = futures[fut]
                runs[_point_key(r)] = _write_point(pdir, r, {**r, **fut.result()})
                if bar:
                    bar.update(1)
    if bar:
        bar.close()
    rows = _summarize(names, points, runs, seed_points)
    cols = names + sorted({k for r in rows for k in r} - set(names))
    with open(os.path.join(out_dir, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    ok = [r for r in rows if metric in r]
    if not ok:
        raise ConfigError(f"no grid point finished with {metric}: {rows[0].get('error', 'unknown error')}")
    best = (max if mode == "max" else min)(ok, key=lambda r: r[metric])
    metrics = sorted(k for k in ok[0] if k.startswith("test_") and not k.endswith("_std"))
    plots = [_sweep_plot(viz, out_dir, data, grid, names, ok, m, seeds) for m in metrics]
    result = {"metric": metric, "mode": mode, "best": best, "results": rows, "skipped": skipped, "names": names,
              "seeds": seeds, "plots": plots}
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({k: v for k, v in result.items() if k != "names"}, f, indent=2)
    return result


def _sweep_plot(viz, out_dir, data, grid, names, rows, metric, seeds):
    """``line_METRIC.png`` over a 1-d grid (with the spread over seeds), else ``heatmap_METRIC.png`` over the
    first two settings with the best value over any further ones; returns the file name."""
    mode = _mode(metric)
    spread = f" (mean over {seeds} seeds)" if seeds > 1 else ""
    if len(names) == 1:
        a = names[0]
        by = {json.dumps(r[a]): r for r in rows}
        xs = [v for v in grid[a] if json.dumps(v) in by]
        labels = ["x".join(map(str, v)) if isinstance(v, list) else v for v in xs]
        ys = [by[json.dumps(v)][metric] for v in xs]
        sd = [by[json.dumps(v)].get(metric + "_std", 0.0) for v in xs] if seeds > 1 else None
        fname = f"line_{metric}.png"
        viz.line(labels, ys, os.path.join(out_dir, fname), a, metric, spread=sd, title=f"{data}: {metric}{spread}")
        return fname
    a, b = names[0], names[1]
    va, vb = [json.dumps(v) for v in grid[a]], [json.dumps(v) for v in grid[b]]
    V = np.full((len(va), len(vb)), np.nan)
    for r in rows:
        i, j = va.index(json.dumps(r[a])), vb.index(json.dumps(r[b]))
        cur = V[i, j]
        if np.isnan(cur) or (r[metric] > cur if mode == "max" else r[metric] < cur):
            V[i, j] = r[metric]
    extra = f", best over {', '.join(names[2:])}" if len(names) > 2 else ""
    show = lambda vals: ["x".join(map(str, v)) if isinstance(v, list) else v for v in vals]
    fname = f"heatmap_{metric}.png"
    viz.heatmap(V, show(grid[a]), show(grid[b]), os.path.join(out_dir, fname), a, b, metric,
                title=f"{data}: {metric}{spread}{extra}")
    return fname


def _ranks_on_this_node(comm):
    """How many MPI ranks share this machine (and so its cores)."""
    try:
        return comm.comm.Split_type(comm.MPI.COMM_TYPE_SHARED).Get_size()
    except Exception:  # noqa: BLE001 - an MPI without shared-memory split: assume all ranks on one node
        return comm.size



# ------------------------------------------------------------------------------------------- comparisons


def compare(config, degree=None, out_dir=None, include=("sklearn", "torch")):
    """The network against linear baselines, scikit-learn's MLP and PyTorch, on one split.

    The peer networks are "the same network" (:mod:`nablanet.baselines`): the
    initial weights, the penalty (converted), the optimizer with its settings
    and schedule, the batch size and the epochs are nablanet's.  What a peer
    cannot follow is listed in the row's ``note``.  The linear baselines work
    on polynomial features of ``degree`` (the configuration's own ``degree``
    when it has one, else 5): OLS, and Ridge and Lasso with alpha chosen by
    cross-validation (the row names the alpha).  A network without hidden
    layers is linear regression itself, so it also gets Ridge/Lasso with its
    own ``l2``/``l1`` converted to scikit-learn's alpha: the closed form that
    gradient descent should reach.
    """
    import warnings

    from sklearn import linear_model
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    from . import baselines
    from .train.metrics import to_labels

    raw = {**DEFAULTS, **config}
    data = _load_data(raw)
    ds, Xtr, Xte, ytr, yte, _ = data
    cfg = resolve(config, ds)
    classify = ds.task == "classification"
    rows = []

    def add(name, predict_fn, seconds, note=""):
        out = predict_fn(Xte)
        row = {"model": name}
        if classify:
            from sklearn.metrics import accuracy_score

            row["test_accuracy"] = float(accuracy_score(yte, out))
        else:
            from sklearn.metrics import mean_squared_error, r2_score

            out = np.asarray(out, dtype=np.float64).reshape(np.shape(yte))
            row.update(test_mse=float(mean_squared_error(yte, out)), test_r2=float(r2_score(yte, out)))
        rows.append({**row, "train_seconds": seconds, "note": note})

    n_batches = 1 if cfg["batch_size"] is None else -(-len(Xtr) // int(cfg["batch_size"]))
    initial = _model(cfg, Xtr.shape[1])  # the same seed builds the same network, bit for bit, as run_training
    res = run_training(config, data=data)
    net = res["trainer"].model
    label = f"nablanet MLP {'-'.join(map(str, [Xtr.shape[1]] + cfg['hidden'] + [cfg['n_outputs']]))}"
    add(label, (lambda X: to_labels(net.predict(X))) if classify else net.predict, res["train_seconds"])

    linear = []
    if classify:
        linear.append(("logistic regression", linear_model.LogisticRegression(max_iter=5000), ""))
    else:
        deg = degree if degree is not None else (1 if cfg.get("degree") else 5)
        poly = (lambda m: make_pipeline(PolynomialFeatures(deg), m)) if deg > 1 else (lambda m: m)
        tag = f"degree {deg}" if deg > 1 else (f"degree {cfg['degree']} features" if cfg.get("degree") else "linear")
        linear += [(f"OLS ({tag})", poly(linear_model.LinearRegression()), ""),
                   ("RidgeCV", poly(linear_model.RidgeCV(alphas=np.logspace(-10, 2, 49))), tag),
                   ("LassoCV", poly(linear_model.LassoCV(cv=5, alphas=30, max_iter=5000, random_state=cfg["seed"])),
                    tag)]
        if not cfg["hidden"] and (cfg["l2"] or cfg["l1"]):
            n = len(Xtr)
            if cfg["l2"] and not cfg["l1"]:  # mean cost + l2 |w|^2  ==  (|y - Xw|^2 + alpha |w|^2) / n
                linear.append((f"Ridge, the network's penalty (alpha = l2 n = {cfg['l2'] * n:.4g})",
                               linear_model.Ridge(alpha=cfg["l2"] * n), ""))
            if cfg["l1"] and not cfg["l2"]:  # mean cost + l1 |w|_1  ==  2 (|y - Xw|^2 / 2n + alpha |w|_1)
                linear.append((f"Lasso, the network's penalty (alpha = l1/2 = {cfg['l1'] / 2:.4g})",
                               linear_model.Lasso(alpha=cfg["l1"] / 2, max_iter=50000), ""))
    for name, est, tag in linear:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(Xtr, ytr)
        if name in ("RidgeCV", "LassoCV"):
            fitted = est[-1] if hasattr(est, "steps") else est
            how = "leave-one-out CV" if name == "RidgeCV" else "5-fold CV"
            name = f"{name[:5]} ({tag}, alpha={fitted.alpha_:.3g} by {how})"
        add(name, est.predict, time.perf_counter() - t0)

    peers = []
    if "sklearn" in include:
        peers.append(("scikit-learn MLP", "sklearn_mlp"))
    if "torch" in include:
        peers.append(("PyTorch MLP", "pytorch"))
    skipped = []
    for name, module in peers:
        import importlib

        mod = importlib.import_module(f".{module}", baselines.__name__)
        try:
            pred, secs, notes = mod.train(initial, cfg["loss"], _optimizer(cfg, n_batches), Xtr, ytr, task=ds.task,
                                          epochs=cfg["epochs"], batch_size=cfg["batch_size"], l1=cfg["l1"],
                                          l2=cfg["l2"], seed=cfg["seed"])
        except ImportError as e:  # one line, and the table goes on without the row
            warnings.warn(str(e), stacklevel=2)
            skipped.append(str(e))
            continue
        except ValueError as e:
            skipped.append(f"{name}: not run ({e})")
            continue
        if pred is None:
            skipped.append(f"{name}: not run ({'; '.join(notes)})")
            continue
        add(name, pred, secs, "; ".join(notes))
    metric = "test_accuracy" if classify else "test_mse"
    if out_dir:
        from . import viz

        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "compare.json"), "w") as f:
            json.dump({"config": cfg, "results": rows, "skipped": skipped}, f, indent=2)
        with open(os.path.join(out_dir, "compare.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        viz.bar_comparison([r["model"] for r in rows], [r[metric] for r in rows], os.path.join(out_dir, "compare.png"),
                           metric, title=f"{cfg['data']}: {metric} on the same test split")
    return {"metric": metric, "results": rows, "skipped": skipped, "config": cfg}
