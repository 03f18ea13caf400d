"""Experiments: a training run from a configuration, grid sweeps, and baseline comparisons.

A configuration is a flat dict (see :data:`DEFAULTS`); :func:`resolve` fills in
what depends on the data (output layer, cost) and rejects impossible
combinations with one clear sentence (:class:`ConfigError`).  The command line
(:mod:`nablanet.cli`) is a thin layer over these functions.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import math
import os
import time
import warnings

import numpy as np

from . import validate as V
from .distributed import THREAD_ENV, _cores, _ranks_on_this_node, default_threads, thread_limit  # noqa: F401 - at home in distributed (the trainer's lead mode uses them too)
from .files import atomic_path, atomic_write_json, atomic_write_text, read_json, remove_stale_temps
from .optim.schedules import RUN_SCHEDULE_ALIASES, RUN_SCHEDULES, run_schedule
from .validate import ConfigError

__all__ = ["DEFAULTS", "SETTINGS", "ConfigError", "DataNotFoundError", "check_config", "resolve", "run_training",
           "sweep", "compare", "write_run"]

DEFAULTS = {
    "data": "digits", "n": None, "noise": 0.0, "data_path": None, "test_size": 0.2, "scale": "standard",
    "hidden": [64], "activation": "relu", "output_activation": "auto", "loss": "auto",
    "optimizer": "adam", "lr": 3e-3, "schedule": "constant", "momentum": 0.0, "nesterov": False,
    "l1": 0.0, "l2": 0.0, "epochs": 30, "batch_size": 32, "dropout": 0.0, "batch_norm": False,
    "init": "auto", "seed": 0, "patience": None, "degree": None,
}
SCHEDULES = RUN_SCHEDULES  # the named schedules of fit, Trainer and the estimators (and their aliases)


class _Activations(V.Check):
    """One hidden activation name, or one per hidden layer (a list, or names separated by commas)."""

    def __init__(self, names):
        self.names = tuple(names)
        self.expected = f"an activation ({', '.join(self.names)}) or one per hidden layer, separated by commas"

    def __call__(self, value, name=None):
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items or not all(isinstance(a, str) for a in items):
            raise self.bad(value, name, V.InvalidTypeError)
        if any(a.strip() not in self.names for a in items):
            raise self.bad(value, name)
        return value if isinstance(value, str) else list(value)


def _settings():
    """What each setting accepts: one check (nablanet.validate) per key of DEFAULTS, used by resolve(), the
    TOML reader, the flags (argparse ``type=``) and sweep grids, so they all answer a bad value the same way."""
    from .data import DATASETS
    from .losses import LOSSES
    from .nn.activations import ACTIVATIONS
    from .nn.init import INITIALIZERS
    from .optim import OPTIMIZERS

    acts = tuple(a for a in ACTIVATIONS if a != "softmax") + ("linear",)
    return {
        "data": V.Choice(DATASETS, normalize=lambda s: s.lower().replace("-", "_"), what="a data set:"),
        "n": V.Optional(V.positive_int), "noise": V.non_negative_number, "data_path": V.Optional(V.existing_dir),
        "test_size": V.open_fraction, "scale": V.Optional(V.Choice(("standard", "minmax"))),
        "hidden": V.sizes, "activation": _Activations(acts),
        "output_activation": V.Choice(("auto",) + tuple(ACTIVATIONS)), "loss": V.Choice(("auto",) + tuple(LOSSES)),
        "optimizer": V.Choice(OPTIMIZERS), "lr": V.positive_number, "schedule": run_schedule,
        "momentum": V.probability, "nesterov": V.boolean, "l1": V.non_negative_number, "l2": V.non_negative_number,
        "epochs": V.positive_int, "batch_size": V.Optional(V.non_negative_int),  # 0: the full batch
        "dropout": V.probability, "batch_norm": V.boolean, "init": V.Choice(("auto",) + tuple(INITIALIZERS)),
        "seed": V.Seed(allow_generator=False, high=2**32 - 1),  # it seeds scikit-learn's splits too
        "patience": V.Optional(V.positive_int),
        "degree": V.Optional(V.positive_int),
    }


SETTINGS = _settings()


def check_config(cfg, where=None):
    """Validate and normalize a configuration dict (every key named in an error); unknown keys are refused.

    ``batch_size`` 0 becomes None (the full batch), ``scale`` ``"none"`` becomes None.
    """
    cfg = dict(cfg)
    if cfg.get("scale") == "none":
        cfg["scale"] = None
    cfg = V.check_settings(cfg, {**SETTINGS, "n_outputs": V.positive_int}, where)
    if cfg.get("batch_size") == 0:
        cfg["batch_size"] = None
    return cfg


class SettingNotTaken(ConfigError):
    """A setting that this configuration would never read: ``momentum`` with ``optimizer="adam"``, a learning rate
    with ``lbfgs``, ``dropout`` with no hidden layer.  Refused, never dropped silently; a sweep leaves out the grid
    points where it happens (the product of ``optimizer=sgd,adam`` and ``momentum=0,0.9``)."""


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

    from .data import design_matrix

    try:
        X = design_matrix(ds.X, degree, intercept=False)
    except V.InvalidValueError as e:
        raise ConfigError(str(e)) from None
    test = None if ds.X_test is None else design_matrix(ds.X_test, degree, intercept=False)
    # the same columns for new points, in front of the scaler (design_matrix is this transform, fitted)
    return dataclasses.replace(ds, X=X, X_test=test), PolynomialFeatures(degree, include_bias=False).fit(ds.X[:1])


def resolve(cfg, ds):
    """Fill the data-dependent settings and check the whole configuration."""
    from .optim import FULL_BATCH

    given = cfg
    cfg = {**DEFAULTS, **check_config({k: v for k, v in cfg.items() if k != "n_outputs"})}  # n_outputs is derived
    if cfg["optimizer"] in FULL_BATCH:  # lbfgs, newton, hessian_free: all rows, steps from a line search
        if given.get("batch_size") is not None:
            raise SettingNotTaken(f"{cfg['optimizer']} is a full-batch method; leave out the batch size (or give 0)")
        if "lr" in given or cfg["schedule"] != "constant":
            raise SettingNotTaken(f"{cfg['optimizer']} takes no learning rate or schedule: its steps come from a line "
                                  f"search")
        cfg["batch_size"] = None
    if cfg["optimizer"] not in ("sgd", "gd") and (cfg["momentum"] or cfg["nesterov"]):
        # as fit(optimizer="adam", momentum=0.9) does: a setting the optimizer would never read is not dropped silently
        given_ = ", ".join(f"{k}={cfg[k]}" for k in ("momentum", "nesterov") if cfg[k])
        raise SettingNotTaken(f"{given_} is a setting of sgd and gd; optimizer {cfg['optimizer']} does not take it "
                          f"(leave it out, or use optimizer sgd)")
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    if isinstance(cfg["hidden"], (int, np.integer)):
        cfg["hidden"] = [int(cfg["hidden"])]
    cfg["hidden"] = [int(h) for h in cfg["hidden"]]
    if any(h < 1 for h in cfg["hidden"]):
        raise ConfigError(f"hidden layer sizes must be positive, got {cfg['hidden']}")
    acts = cfg["activation"].split(",") if isinstance(cfg["activation"], str) else list(cfg["activation"])
    n_hidden = len(cfg["hidden"])
    if len(acts) > 1 and len(acts) != n_hidden:  # one name is for every hidden layer (or none)
        sizes = ",".join(map(str, cfg["hidden"])) or "none"
        raise ConfigError(f"activation: {len(acts)} activations ({','.join(a.strip() for a in acts)}) for {n_hidden} "
                          f"hidden layer{'' if n_hidden == 1 else 's'} (hidden {sizes}); give one activation for all, "
                          f"or {n_hidden}" + (" (one per hidden layer)" if n_hidden else ""))
    if not n_hidden and (cfg["dropout"] or cfg["batch_norm"]):  # read by hidden layers only: never dropped silently
        given_ = ", ".join(f"{k}={cfg[k]}" for k in ("dropout", "batch_norm") if cfg[k])
        raise SettingNotTaken(f"{given_} acts on hidden layers, and this network has none (hidden none); leave it "
                              f"out, or give hidden sizes")
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
    sched = optim.for_run(cfg["schedule"], lr, total, steps_per_epoch)
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
    from .train import evaluate
    from .train.metrics import accuracy, mse, r2, to_labels

    with np.errstate(over="ignore", invalid="ignore"):
        out = model.predict(Xte)
    if not np.isfinite(np.asarray(out, dtype=np.float64)).all():
        raise ConfigError("the trained network predicts NaN or infinite values on the test split: training "
                          "diverged; lower the learning rate, scale the inputs, or clip the gradients")
    res = {"test_loss": evaluate(model, Xte, yte, loss=loss)["loss"]}
    if task == "classification":
        res["test_accuracy"] = accuracy(yte, to_labels(out))
    else:
        pred = out.reshape(np.shape(yte)).astype(np.float64)
        res["test_mse"], res["test_r2"] = mse(yte, pred), r2(yte, pred)
    return res


RUN_FILES = ("config.json", "checkpoint.npz", "metrics.csv", "metrics.json", "learning_curves.png",
             "confusion_matrix.png", "prediction.png")


def holds_run(folder):
    """Whether ``folder`` holds (part of) a training run."""
    return any(os.path.exists(os.path.join(folder, f)) for f in ("config.json", "checkpoint.npz", "metrics.json"))


def prepare_run_folder(out_dir, resume=False, overwrite=False):
    """Check ``out_dir`` before any training: a folder (or none yet), not holding another run unless asked.

    Removes the temporary files an interrupted write left there.  With
    ``overwrite``, the files of the previous run are deleted first (only
    those, never anything else in the folder).
    """
    out_dir = V.output_dir(out_dir, "run folder")
    if resume:
        V.existing_dir(out_dir, "run folder")
        if not os.path.isfile(os.path.join(out_dir, "config.json")):
            raise ConfigError(f"{out_dir!r} holds no run to resume (no config.json)"
                              + ("; start it again with --overwrite" if holds_run(out_dir) else ""))
    elif holds_run(out_dir):
        if not overwrite:
            raise ConfigError(f"{out_dir!r} already holds a run; continue it with --resume {out_dir} "
                              f"or replace it with --overwrite")
        for f in RUN_FILES:
            if os.path.isfile(os.path.join(out_dir, f)):
                os.unlink(os.path.join(out_dir, f))
    remove_stale_temps(out_dir)
    return out_dir


COMPARE_FILES = ("compare.json", "compare.csv", "compare.png")


def prepare_compare_folder(out_dir, overwrite=False):
    """Check ``out_dir`` before :func:`compare` trains anything, as :func:`prepare_run_folder` does for a run.

    A folder holding a training run or an earlier comparison is refused unless ``overwrite``; then the earlier
    comparison's files are deleted (only those: a run's files are never touched; the comparison goes beside it).
    """
    out_dir = V.output_dir(out_dir, "compare folder")
    earlier = [f for f in COMPARE_FILES if os.path.isfile(os.path.join(out_dir, f))]
    if not overwrite:
        if holds_run(out_dir):
            raise ConfigError(f"{out_dir!r} already holds a training run; give compare another --out, or write "
                              f"its results beside the run with --overwrite")
        if earlier:
            raise ConfigError(f"{out_dir!r} already holds the results of a comparison; give another --out or "
                              f"replace them with --overwrite")
    for f in earlier:
        os.unlink(os.path.join(out_dir, f))
    remove_stale_temps(out_dir)
    return out_dir


def run_training(config, out_dir=None, progress=False, resume=None, comm=None, data=None, checkpoint_every=None,
                 checkpoint_seconds=30.0, plots=True, overwrite=False, curves=True, parallel=None, threads=None):
    """Train one network from ``config``; returns a dict of results.

    With ``out_dir``, writes the run folder (configuration, per-epoch metrics
    as CSV and JSON, checkpoints, plots).  Checkpoints are written every
    ``checkpoint_every`` epochs and whenever ``checkpoint_seconds``
    have passed since the last one (0: every epoch), at the end, and on an
    interrupt, the end of the last whole epoch (:class:`nablanet.train.Checkpoint`); the configuration,
    written before the first epoch, is the run's start (its seed makes the initial weights).  ``plots=False``
    leaves out the PNG plots (they take longer than a small fit itself).  ``resume`` is a run
    folder to continue from its checkpoint up to the configured epochs, or from its beginning when it was
    stopped before its first checkpoint: either way the run that was never stopped.
    ``comm`` (a :class:`nablanet.distributed.Communicator`) trains
    data-parallel over MPI ranks; only rank 0 writes; ``parallel`` is how (``"auto"``, ``"shard"``,
    ``"lead"``: see :mod:`nablanet.distributed`; None: auto, or on resume the mode the run used), and the
    result's ``"parallel"`` says what the ranks did (None in one process), ``"lead_threads"`` the BLAS threads
    rank 0 trained with when it led (``threads``, else what one process on its machine uses).  ``data`` is what
    ``_load_data`` returned for this configuration, when the caller has it already.
    ``curves=False`` computes no per-epoch metrics on the training and test data (a sweep point reports only
    its final test metrics; early stopping still watches its validation cost): the same training, bit for bit,
    without the per-epoch evaluation.
    """
    from .distributed import parallel_choice
    from .optim import FULL_BATCH
    from .train import Checkpoint, EarlyStopping, Trainer, load

    parallel = V.Optional(parallel_choice())(parallel, "parallel")
    if resume is not None:
        root_rank = comm is None or comm.is_root
        resume = prepare_run_folder(resume, resume=True) if root_rank else resume
        cfg_path = os.path.join(resume, "config.json")
        try:
            saved = read_json(cfg_path, "run configuration", expect=dict)
        except V.FileFormatError as e:
            saved = _settings_in_checkpoint(resume)
            if saved is None:
                raise
            warnings.warn(f"{e} (a crash of the machine soon after the run began can leave it so); the run's "
                          f"settings are read from its checkpoint, which holds them", UserWarning, stacklevel=2)
        saved = {k: v for k, v in saved.items() if k in DEFAULTS}
        if saved.get("optimizer") in FULL_BATCH:  # resolved: the default lr it holds was never given
            saved.pop("lr", None)
        try:
            saved = check_config(saved)
        except (V.InvalidValueError, V.InvalidTypeError) as e:
            raise V.FileFormatError(cfg_path, f"damaged run configuration ({e})") from None
        if saved.get("hidden") == [] and (saved.get("dropout") or saved.get("batch_norm")):
            # a run made before such settings were refused: they did nothing, and are left out (as MLP does)
            warnings.warn(f"{cfg_path}: " + ", ".join(f"{k}={saved[k]}" for k in ("dropout", "batch_norm")
                                                      if saved.get(k)) + " acts on hidden layers, and this run's "
                          "network has none: left out", UserWarning, stacklevel=2)
            saved.update(dropout=0.0, batch_norm=False)
        config = {**saved, **{k: v for k, v in config.items() if k == "epochs"}}
        out_dir = resume
    elif out_dir and (comm is None or comm.is_root):
        out_dir = prepare_run_folder(out_dir, overwrite=overwrite)
    raw = {**DEFAULTS, **config}
    ds, Xtr, Xte, ytr, yte, scaler = data if data is not None else _load_data(raw)
    cfg = resolve(config, ds)
    if cfg["patience"] and round(len(Xtr) * 0.1) < 2:  # before anything is written
        raise ConfigError(f"patience watches 10% of the {len(Xtr)} training rows, fewer than 2; give more rows "
                          f"(n) or leave out patience")
    metrics = ["accuracy"] if ds.task == "classification" else ["r2"]
    n_batches = 1 if cfg["batch_size"] is None else -(-len(Xtr) // int(cfg["batch_size"]))
    from_checkpoint = resume is not None and os.path.isfile(os.path.join(resume, "checkpoint.npz"))
    if resume is not None and comm is not None:  # rank 0's answer on every rank: the two ways differ in collectives
        from_checkpoint = comm.bcast_object(from_checkpoint)
    if from_checkpoint:
        trainer = load(os.path.join(resume, "checkpoint.npz"))
        # config.json and the checkpoint must describe one network: the data and schedule come from the one, the
        # weights from the other, and a mismatch would train a model its run folder misdescribes
        want, have = _model(cfg, Xtr.shape[1]).config(), trainer.model.config()
        differ = [k for k in want if k != "seed" and want[k] != have.get(k)]
        if differ:
            raise V.FileFormatError(os.path.join(resume, "config.json"), "describes another network than "
                                    "checkpoint.npz (" + "; ".join(f"{k}: {want[k]!r} here, {have.get(k)!r} in the "
                                                                   f"checkpoint" for k in differ) + ")")
        # and one training: the optimizer, cost and data the checkpoint went on with (epochs alone may grow)
        differ = _training_differences(cfg, trainer, n_batches)
        if differ:
            raise V.FileFormatError(os.path.join(resume, "config.json"), "describes another training than "
                                    "checkpoint.npz (" + "; ".join(f"{k}: {a!r} here, {b!r} in the checkpoint"
                                                                   for k, a, b in differ) + ")")
        if int(cfg["epochs"]) < trainer.epoch:  # before anything is written: the folder stays as it is
            raise ConfigError(f"{resume}: the run has already trained {trainer.epoch} epochs; give --epochs "
                              f"{trainer.epoch} or more")
        trainer.comm = comm
        if parallel is not None:  # else the mode the run recorded (auto: chosen at its first fit, and kept)
            trainer.parallel = parallel
        trainer.threads = threads
        trainer._connect()  # rank 0's state on every rank
        if comm is not None:  # every rank has read the checkpoint and config.json before rank 0 writes them again
            comm.barrier()  # (rank 0 leading waits for no one until its fit ends, and wrote the next epoch's)
        # the schedule for the configured length (it may have grown); slots and step count carry on
        trainer.optimizer.lr = _optimizer(cfg, n_batches).lr
    else:
        model = _model(cfg, Xtr.shape[1])
        try:
            trainer = Trainer(model, cfg["loss"], _optimizer(cfg, n_batches), l1=cfg["l1"], l2=cfg["l2"],
                              seed=cfg["seed"], comm=comm, parallel=parallel or "auto", threads=threads)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if getattr(trainer.optimizer, "full_batch", False):  # dropout, batch norm, size: refused before the folder
            from .train.fullbatch import check_fits

            try:
                check_fits(trainer, len(Xtr), len(Xtr))
            except ValueError as e:
                raise ConfigError(str(e)) from None
    trainer.run_config = _as_json(cfg)  # its checkpoints carry the settings, for --resume to compare
    root = trainer.is_root
    callbacks = []
    if out_dir and root:
        os.makedirs(out_dir, exist_ok=True)
        # not flushed to the disk (durable=False): the checkpoints, which are, hold the same settings, and --resume
        # reads them when a crash of the machine left config.json empty (a crash before the first checkpoint
        # leaves nothing trained to go on from)
        atomic_write_json(os.path.join(out_dir, "config.json"), cfg, durable=False)
        # no checkpoint at the start: config.json is the run's start (--resume of a run stopped before its first
        # checkpoint trains it from its beginning), one file less to write
        if resume is None and trainer._distributed and trainer.parallel != "auto":
            # a mode named over several ranks is in the checkpoint, not in config.json: saved at once, so that a
            # run stopped before its first checkpoint resumes in it (auto chooses again, by timing)
            trainer.save(os.path.join(out_dir, "checkpoint.npz"))
        callbacks.append(Checkpoint(os.path.join(out_dir, "checkpoint.npz"), every=checkpoint_every,
                                    seconds=checkpoint_seconds, at_start=False))
    validation = {"validation_data": (Xte, yte)} if curves else {}  # curves on the test split, for looking at
    if not curves:
        metrics = []
    if cfg["patience"]:
        # stopping chooses a model, so it must not look at the test split: it watches 10% of the training part
        callbacks.append(EarlyStopping("val_loss", patience=int(cfg["patience"])))
        validation = {"validation_split": 0.1}
    remaining = int(cfg["epochs"]) - trainer.epoch
    if cfg["patience"] and trainer.callback_state.get("EarlyStopping", {}).get("stopped"):
        remaining = 0  # early stopping ended this run: it is finished (resumed for its outputs), not trained on
    comm_seconds = comm.seconds if comm is not None else 0.0
    t0 = time.perf_counter()
    try:
        trainer.fit(Xtr, ytr, epochs=max(remaining, 0), batch_size=cfg["batch_size"], callbacks=callbacks,
                    metrics=metrics, progress=progress, **validation)
    except FloatingPointError as e:
        raise ConfigError(str(e)) from None
    except (ValueError, TypeError, OSError):  # refused, or failed (a full disk) before its first checkpoint: no run
        if out_dir and root and resume is None and not os.path.exists(os.path.join(out_dir, "checkpoint.npz")):
            for f in ("config.json", "checkpoint.npz"):  # what this call wrote; the folder stays usable
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(out_dir, f))
        raise
    if out_dir and root and cfg["patience"]:
        trainer.save(os.path.join(out_dir, "checkpoint.npz"))  # the restored best epoch, the model reported
    seconds = time.perf_counter() - t0
    result = {"data": cfg["data"], "task": ds.task, "epochs": trainer.epoch, "train_seconds": seconds,
              "n_params": trainer.model.n_params, **_test_metrics(trainer.model, cfg["loss"], Xte, yte, ds.task)}
    if comm is not None and comm.size > 1:  # the ranks' mean share of the training spent communicating
        share = (comm.seconds - comm_seconds) / seconds if seconds > 0 else 0.0
        result["communication_fraction"] = comm.comm.allreduce(min(share, 1.0)) / comm.size
        if trainer.parallel_timing is not None:  # what the "auto" choice compared: seconds per step, slowest rank
            result["parallel_timing"] = dict(trainer.parallel_timing)
    result["parallel"] = trainer.parallel_mode if comm is not None and comm.size > 1 else None
    if trainer.lead_threads is not None and result["parallel"] == "lead":
        result["lead_threads"] = trainer.lead_threads
    if out_dir and root:
        write_run(out_dir, trainer, cfg, result, ds, Xte, yte, scaler, plots=plots)
    if out_dir:
        result["run_dir"] = out_dir
    result["ranks"] = 1 if comm is None else comm.size
    result["config"] = cfg
    result["trainer"] = trainer
    return result


#: The length-dependent values of a run's schedules (they follow the epochs, the one setting a resume may change).
_SCHEDULE_LENGTH = {"step_decay": ("step_size",), "exponential": ("gamma",), "cosine": ("total_steps",)}


def _as_json(cfg):
    """``cfg`` as config.json (and a checkpoint's metadata) holds it: lists, not tuples."""
    return json.loads(json.dumps(cfg, default=str))


def _training_differences(cfg, trainer, n_batches):
    """``(setting, in cfg, in the checkpoint)`` for each training setting where ``cfg`` (config.json, resolved)
    and the checkpoint ``trainer`` came from differ: its optimizer, schedule, cost and penalties, and the run
    settings its checkpoint recorded (``run_config``: the data, split and scaling, seed, batch size, ...; none in
    files from before it).  The epochs may differ, and the data's path (the same data moved)."""
    from .losses import get_loss

    differ = []
    want, have = _optimizer(cfg, n_batches).config(), trainer.optimizer.config()
    if want["name"] != have["name"]:
        differ.append(("optimizer", want["name"], have["name"]))
    else:
        differ += [(k, want[k], have.get(k)) for k in want if k not in ("name", "lr") and want[k] != have.get(k)]
        ws, hs = want.get("lr"), have.get("lr")
        if isinstance(ws, dict) and isinstance(hs, dict):
            if ws["name"] != hs["name"]:
                differ.append(("schedule", ws["name"], hs["name"]))
            else:
                differ += [(k if k == "lr" else f"schedule {k}", ws[k], hs.get(k)) for k in ws
                           if k not in ("name", *_SCHEDULE_LENGTH.get(ws["name"], ())) and ws[k] != hs.get(k)]
    if get_loss(cfg["loss"]) is not trainer.loss:
        differ.append(("loss", cfg["loss"], trainer.loss.name))
    differ += [(k, cfg[k], getattr(trainer, k)) for k in ("l1", "l2") if float(cfg[k]) != getattr(trainer, k)]
    if trainer.penalize_bias:  # a run penalizes the weights only
        differ.append(("penalize_bias", False, True))
    said = {k for k, _, _ in differ}
    here = _as_json(cfg)
    for k, v in (trainer.run_config or {}).items():
        if k not in ("epochs", "data_path") and k not in said and here.get(k) != v:
            differ.append((k, here.get(k), v))
    return differ


def _settings_in_checkpoint(folder):
    """The run settings the checkpoint in run ``folder`` holds (checkpoints of ``run_training`` carry them), or
    None when it has none or cannot be loaded."""
    from .train import load
    from .train.checkpoint import CheckpointError

    path = os.path.join(folder, "checkpoint.npz")
    if not os.path.isfile(path):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (the load of the run itself, later, says what it has to)
            run = load(path).run_config
    except (CheckpointError, OSError):
        return None
    return dict(run) if isinstance(run, dict) else None


def write_run(out_dir, trainer, cfg, result, ds, Xte, yte, scaler=None, plots=True):
    """The run folder: metrics.csv, metrics.json, plots (the checkpoint is written by the callback)."""

    h = trainer.history.history
    keys = list(h)
    # every file of the run folder is written atomically (temporary file, rename): never half a file; these
    # outputs, which --resume writes again, without the flushes to the disk that config.json and the
    # checkpoint, the state a run resumes from, have (files.atomic_path)
    atomic_write_text(os.path.join(out_dir, "metrics.csv"), _csv([keys, *zip(*(h[k] for k in keys))]), durable=False)
    atomic_write_json(os.path.join(out_dir, "metrics.json"),
                      {"final": {k: v for k, v in result.items() if k not in ("config", "trainer")}, "history": h},
                      durable=False)
    if not plots:
        return
    from . import viz
    from .train.metrics import to_labels

    with atomic_path(os.path.join(out_dir, "learning_curves.png"), durable=False) as tmp:
        viz.learning_curves(trainer.history, tmp,
                        title=f"{cfg['data']}: learning curves", held_out="validation" if cfg["patience"] else "test")
    model = trainer.model
    if ds.task == "classification":
        with atomic_path(os.path.join(out_dir, "confusion_matrix.png"), durable=False) as tmp:
            viz.confusion_matrix(yte, to_labels(model.predict(Xte)), tmp, title=f"{cfg['data']}: confusion matrix (test set)")
    elif (x := _raw_features(scaler, Xte)).shape[1] == 1:  # in the data's own units, also under --degree
        with atomic_path(os.path.join(out_dir, "prediction.png"), durable=False) as tmp:
            viz.prediction_1d(x[:, 0], yte, model.predict(Xte), tmp, title=f"{cfg['data']}: prediction against truth (test set)")
    elif cfg["data"] in ("franke", "runge2d"):  # two raw features (before any polynomial design matrix)
        from .data import franke_function, runge2d_function

        f = franke_function if cfg["data"] == "franke" else runge2d_function
        tr = (lambda P: P) if scaler is None else scaler.transform
        with atomic_path(os.path.join(out_dir, "prediction.png"), durable=False) as tmp:
            viz.prediction_2d(lambda P: f(P[:, 0], P[:, 1]), lambda P: model.predict(tr(P))[:, 0], tmp,
                              title=f"{cfg['data']}: prediction against truth")


def _raw_features(scaler, X):
    """The rows ``X`` as the network sees them (design matrix, scaling) back in the data's own features: what
    ``_load_data``'s ``scaler`` (None, a scaler, or a Pipeline of the polynomial features and a scaler) undoes."""
    if scaler is None:
        return X
    steps = getattr(scaler, "named_steps", {})
    if "polynomial" not in steps:
        return scaler.inverse_transform(X)
    Z = steps["scale"].inverse_transform(X) if "scale" in steps else X
    return Z[:, :steps["polynomial"].n_features_in_]  # a design matrix without its constant starts with the features


def _csv(rows, fieldnames=None):
    """CSV text of ``rows`` (lists, or dicts with ``fieldnames``), for one atomic write."""
    import io

    buf = io.StringIO(newline="")
    if fieldnames is None:
        csv.writer(buf).writerows(rows)
    else:
        w = csv.DictWriter(buf, fieldnames=fieldnames)
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------- sweeps


def _grid_points(grid):
    names = list(grid)
    return names, [dict(zip(names, vals)) for vals in itertools.product(*(grid[n] for n in names))]


def _point_key(point):
    return "_".join(f"{k}={v}" for k, v in point.items()).replace("/", "-").replace(" ", "")


def _normalized(settings):
    """``settings`` as :func:`check_config` normalizes them (an alias by its name), or as given when they no longer
    pass it (an earlier sweep's, compared with this one's)."""
    try:
        return json.loads(json.dumps(check_config(settings), default=str))
    except (ConfigError, V.InvalidValueError, V.InvalidTypeError):
        return settings


def _holds_json(path):
    """Whether the file at ``path`` parses as JSON (False for an empty or cut one; True when it cannot be read:
    :func:`read_json` says why)."""
    try:
        with open(path, "rb") as f:
            json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    except OSError:
        return True
    return True


def _canonical(name, value):
    """A setting's value as its check normalizes it (``step`` is ``step_decay``), or as it is when it does not pass."""
    try:
        return SETTINGS[name](value, name)
    except (V.InvalidValueError, V.InvalidTypeError, V.MissingFileError):
        return value


def _show_value(v):
    """A grid value as the command line writes it: hidden sizes ``32x32`` (``none``: no hidden layer)."""
    if isinstance(v, (list, tuple)):
        return "x".join(map(str, v)) or "none"
    return v


def _point_label(point):
    """A grid point for people: ``optimizer=adam, momentum=0.9``."""
    return ", ".join(f"{k}={_show_value(v)}" for k, v in point.items())


@contextlib.contextmanager
def limit_threads_for_workers(threads):
    """BLAS/OpenMP limited to ``threads`` threads in this process and in the processes it starts inside.

    Worker processes inherit the limit instead of setting it themselves: a forked worker holds a copy of
    the limits set here (threadpoolctl), a spawned one reads them from the environment (``THREAD_ENV``)
    when it loads NumPy.  Setting them in the worker would cost it a tenth of a second: the fork stops
    OpenBLAS's thread pool (its ``pthread_atfork`` handler), and ``openblas_set_num_threads`` in the child
    starts it again, threads that busy-wait ~0.1 s of CPU before they sleep, on the cores the workers
    need.  The environment and the limits are restored on exit.
    """
    old = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update({k: str(int(threads)) for k in THREAD_ENV})
    try:
        with thread_limit(int(threads)):
            yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _limit_worker_threads(threads, forked):
    """Pool initializer: this worker's BLAS and OpenMP pools get ``threads`` threads for its whole life.

    A worker ``forked`` inside :func:`limit_threads_for_workers` already has them, and is left alone (see
    there why); one started otherwise sets them where the environment did not."""
    if forked:
        return
    from .distributed import thread_pools

    global _WORKER_LIMITS
    if any(lib["num_threads"] != threads for lib in thread_pools()):
        _WORKER_LIMITS = thread_limit(threads)  # kept alive: the limit lasts as long as the worker


_WORKER_LIMITS = None


_DATA_CACHE = {}  # data key -> what _load_data returned, in this process (a sweep's points share their data)
_DATA_CACHE_BYTES = 512 * 2**20


def _cached_data(cfg):
    """``_load_data(cfg)``, loaded once per process for each data configuration (data set, size, noise, seed,
    path, degree, split, scaling); the arrays are read-only, so no run can change another's data.  The
    oldest entries go when they hold more than 512 MB together."""
    raw = {**DEFAULTS, **cfg}
    key = json.dumps([raw[k] for k in ("data", "n", "noise", "seed", "data_path", "degree", "test_size", "scale")],
                     default=str)
    if key not in _DATA_CACHE:
        data = _load_data(raw)
        for a in data[1:5]:
            a.flags.writeable = False
        _DATA_CACHE[key] = data
        while len(_DATA_CACHE) > 1 and sum(a.nbytes for d in _DATA_CACHE.values() for a in d[1:5]) > _DATA_CACHE_BYTES:
            del _DATA_CACHE[next(iter(_DATA_CACHE))]
    return _DATA_CACHE[key]


def _point_cost(cfg):
    """A rough cost in seconds of training the point ``cfg`` (its data already in this process's cache), so the
    sweep's processes can take the longest points first: ~3 ms a run (its capture, set-up and test metrics), ~45 us a
    step and ~0.2 ns per training row and weight each epoch (forward and backward), as measured on small
    networks here.  A point whose data failed to load costs nothing: it fails at once."""
    raw = {**DEFAULTS, **cfg}
    try:
        Xtr, ytr = _cached_data(cfg)[1], _cached_data(cfg)[3]
    except Exception:  # noqa: BLE001 - the point reports it in its row
        return 0.0
    n, d = Xtr.shape
    if np.ndim(ytr) == 2:  # regression with several outputs
        outs = ytr.shape[1]
    else:  # class labels: one output per class; one regression output
        outs = max(2, int(np.max(ytr)) + 1) if np.issubdtype(ytr.dtype, np.integer) and len(ytr) else 1
    hidden = raw["hidden"] if isinstance(raw["hidden"], (list, tuple)) else [raw["hidden"]]
    sizes = [d, *map(int, hidden), outs]
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    bs = raw["batch_size"] or n
    return 3e-3 + float(raw["epochs"]) * (-(-n // int(bs)) * 45e-6 + 0.2e-9 * n * weights)


def _run_point(args):
    base, point = args
    try:
        cfg = {**base, **point}
        res = run_training(cfg, data=_cached_data(cfg), curves=False)
        return {k: v for k, v in res.items() if k.startswith("test_") or k in ("epochs", "train_seconds")}
    except Exception as e:  # noqa: BLE001 - one bad point is reported in its row, the sweep goes on
        return {"error": " ".join(f"{type(e).__name__}: {e}".split())}


def _write_point(pdir, p, res):
    # not flushed to the disk (durable=False): a crash of the machine soon after can leave the file empty, and the
    # sweep run again trains such a point again (_read_point); a flush per point cost the sweep more than a point's
    # training when the disk was busy
    atomic_write_json(os.path.join(pdir, _point_key(p) + ".json"), res, durable=False)
    return res


def _run_and_write_point(args):
    """Train one point and write its record to ``pdir`` where it runs (a worker's write is off the sweep
    process's path); returns the record."""
    pdir, base, point = args
    res = _run_point((base, point))  # (epochs trained, under early stopping, beside a grid over epochs: _trained)
    return _write_point(pdir, point, {**point, **{f"{k}_trained" if k in point else k: v for k, v in res.items()}})


def _read_point(path, point, names, lost_ok=False):
    """A finished point's record, checked: the grid values it was run with and numbers for its results.

    With ``lost_ok``, a file that is empty or not JSON (what a crash of the machine can leave of a point written
    just before it: points are not flushed to the disk) is a point not finished: None, with a warning."""
    try:
        rec = read_json(path, "sweep point", expect=dict)
    except V.FileFormatError:
        if lost_ok and not _holds_json(path):
            warnings.warn(f"{path}: the sweep point's file is empty or damaged (as a crash of the machine can leave "
                          f"a point written just before it); the point is trained again", RuntimeWarning,
                          stacklevel=3)
            return None
        raise

    def same(n):  # as each setting's check reads it (a value by an alias, schedule step, is its name's: step_decay)
        return json.dumps(_canonical(n, rec.get(n))) == json.dumps(_canonical(n, point[n]))

    ok = all(same(n) for n in names) and (
        "error" in rec or all(isinstance(v, (int, float)) and not isinstance(v, bool)
                              for k, v in rec.items() if k.startswith("test_")))
    if not ok:
        raise V.FileFormatError(path, "damaged sweep point (its settings or results are not what this sweep "
                                      "wrote); delete it to run the point again")
    return rec


#: The metrics a sweep can rank by, per task.
SWEEP_METRICS = {"classification": ("test_accuracy", "test_loss"), "regression": ("test_mse", "test_r2", "test_loss")}


def _check_sweep(base, grid, points):
    """Every setting, grid value and combination checked before any training (data loaded once per set).

    Returns the tasks of the grid's data sets and ``{point key: why}`` for the points with a setting they would
    not read (:class:`SettingNotTaken`: ``optimizer=adam`` with ``momentum=0.9``): they are left out, as long as some
    point is not; any other mistake, at any point, is an error."""
    from .data import load_dataset
    from .data.registry import check_split

    check_config(base, "sweep settings")
    for name, values in grid.items():
        seen = {}
        for v in values:
            checked = SETTINGS[name](v, f"grid {name}")  # (a name's alias is the name: schedule step is step_decay)
            key = _point_key({name: checked if isinstance(checked, str) else v})  # the point's file: one per value
            if key in seen:
                same = f"the value {v!r} is given twice" if json.dumps(v, default=str) == json.dumps(
                    seen[key], default=str) else f"the values {seen[key]!r} and {v!r} name one point ({key})"
                raise ConfigError(f"grid {name}: {same} (each point would be trained twice and reported once); "
                                  f"give each value once")
            seen[key] = v
    loaded, inapplicable = {}, {}
    for p in points:
        cfg = check_config({**base, **p})
        raw = {**DEFAULTS, **cfg}
        key = json.dumps([raw[k] for k in ("data", "n", "noise", "seed", "data_path")], default=str)
        if key not in loaded:
            try:
                loaded[key] = load_dataset(raw["data"], n=raw["n"], noise=raw["noise"], seed=raw["seed"],
                                           path=raw["data_path"])
            except FileNotFoundError as e:
                raise DataNotFoundError(str(e)) from None
            except (ValueError, TypeError, OSError) as e:
                raise ConfigError(f"grid point {_point_label(p)}: {e}") from None
        try:
            resolve(cfg, loaded[key])
            check_split(loaded[key], {**DEFAULTS, **cfg}["test_size"])
        except SettingNotTaken as e:  # a setting the point would not read: the point is left out
            inapplicable[_point_key(p)] = f"{_point_label(p)}: {e}"
        except (ConfigError, V.InvalidValueError) as e:
            raise ConfigError(f"grid point {_point_label(p)}: {e}") from None
    if len(inapplicable) == len(points):
        raise ConfigError(f"no grid point applies: grid point {next(iter(inapplicable.values()))}")
    return {ds.task for ds in loaded.values()}, inapplicable


def _worker_init(parent_pid, threads, forked, work=None):
    """Runs first in every sweep worker: it dies with the sweep, whatever kills the sweep.

    On Linux the kernel sends the worker SIGKILL when its parent dies
    (``prctl(PR_SET_PDEATHSIG)``); everywhere, a watchdog thread exits when the
    parent is gone.  A worker a fork server started (the ``forkserver`` start
    method) has the server for its parent, not the sweep: it watches the sweep
    by its process id instead.  Ctrl-C reaches the whole process group: workers ignore it
    and are stopped by the parent, which then exits with one line.  ``work`` is
    what :func:`_train_claimed_points` trains (inherited by a forked worker, sent
    once to a spawned one).
    """
    global _SWEEP_WORK
    import signal
    import sys
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the command's handler: the parent's terminate() ends it quietly
    if os.getppid() == parent_pid:  # forked or spawned by the sweep
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
            except (OSError, AttributeError):
                pass

        def gone():
            return os.getppid() != parent_pid  # (also: the sweep died before the prctl above)
    else:  # started by a fork server (or the sweep is gone already): the sweep watched by its id

        def gone():
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                return True
            except OSError:  # (EPERM: a process there, not ours to signal)
                return False
            return False

    if gone():
        os._exit(1)

    def watchdog():
        while True:
            time.sleep(0.5)
            if gone():
                os._exit(1)

    threading.Thread(target=watchdog, name="nablanet-watchdog", daemon=True).start()
    _limit_worker_threads(threads, forked)
    _SWEEP_WORK = work


_SWEEP_WORK = None  # in a sweep worker: (claims, points folder, base settings, the points in order)


class _Claims:
    """Which of ``n`` points is trained next, shared by the sweep process and its workers.

    Each process, when free, claims the next index under one lock, so every point is trained once, by the first
    process free for it, in the sweep's order (the longest first), and no process waits while a point is
    left: a point handed to a worker ahead of time (a process pool queues one more call than it has workers, and
    such a call can no longer be cancelled) kept the sweep process waiting for the worker's last points at the
    end.  Also counts the points the workers have finished, for the progress bar."""

    def __init__(self, ctx, n):
        self.n = n
        self._shared = ctx.Array("q", 2)  # the next index to claim; the points the workers have finished

    def claim(self, waiting=None):
        """The next index, or None when every point is claimed.  While the lock is held elsewhere, ``waiting``
        is called every 0.1 s: a worker killed while it held the lock never gives it back, and ``waiting``
        raises the pool's error instead of waiting forever."""
        lock = self._shared.get_lock()
        while not lock.acquire(timeout=0.1):
            if waiting is not None:
                waiting()
        try:
            shared = self._shared.get_obj()
            i = shared[0]
            if i >= self.n:
                return None
            shared[0] = i + 1
            return i
        finally:
            lock.release()

    def finished_one(self):
        with self._shared.get_lock():
            self._shared.get_obj()[1] += 1

    def finished(self):
        """The points the workers have finished (read without the lock: for display)."""
        return self._shared.get_obj()[1]


def _train_claimed_points():
    """A sweep worker's one task: train the points it claims (each written to its file at once), until none is
    left; returns {index: record}."""
    claims, pdir, base, order = _SWEEP_WORK
    done = {}
    while (i := claims.claim()) is not None:
        done[i] = _run_and_write_point((pdir, base, order[i]))
        claims.finished_one()
    return done


class _RecordingContext:
    """A multiprocessing context that keeps every process it makes: a pool drops a worker that died from its
    own list (its thread may do so before the sweep asks), and with it the exit code the error reports."""

    def __init__(self, ctx):
        self._ctx, self.processes = ctx, []

    def __getattr__(self, name):
        return getattr(self._ctx, name)

    def Process(self, *args, **kwargs):  # noqa: N802 - multiprocessing's name
        p = self._ctx.Process(*args, **kwargs)
        self.processes.append(p)
        return p


def _stop_workers(ex, procs):
    """Stop a process pool now: terminate its workers ``procs``, wait briefly, kill what is left.  Returns the
    exit codes of the workers that ended otherwise (a negative code: the signal that ended it), not stopped
    here."""
    import signal

    procs = list(procs)
    for p in procs:
        if p.is_alive():
            p.terminate()
    ex.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + 5.0
    killed = set()
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)
            killed.add(p)
    codes = [(p, _exit_code(p)) for p in procs]
    return [c for p, c in codes
            if c not in (None, 0, -signal.SIGTERM) and not (p in killed and c == -signal.SIGKILL)]


def _stop_pool(ex, ctx, *folders):
    """Stop the sweep's pool ``ex`` (:func:`_stop_workers`) and remove the temporary files its workers left,
    stopped or killed in the middle of a write, in ``folders``: they hold only whole files.  Returns the exit
    codes of the workers that ended otherwise."""
    died = _stop_workers(ex, ctx.processes)
    for folder in folders:
        remove_stale_temps(folder)
    return died


def _without_pool(ex, ctx, folders, what):
    """A worker of pool ``ex`` died, and nothing is lost: the pool is stopped (:func:`_stop_pool`, ``folders``)
    and a warning says ``what`` happened."""
    died = _stop_pool(ex, ctx, *folders)
    warnings.warn(f"a sweep worker process died ({_how_ended(died)}) {what}", RuntimeWarning, stacklevel=3)


def _how_ended(codes):
    """Exit codes as words ("exit code 3, killed by signal 9"); "killed" when none is known."""
    return ", ".join(f"exit code {c}" if c > 0 else f"killed by signal {-c}" for c in codes) or "killed"


def _exit_code(p, wait=1.0):
    """``p.exitcode``, once known.  The pool's own thread reaps a dead worker too (it joins them when the pool
    breaks): when its ``waitpid`` wins, ours finds no child, and ``p`` looks alive with no exit code until that
    thread records it, a moment later.  So a dead worker may also have been "killed" above, to no effect."""
    deadline = time.monotonic() + wait
    while (code := p.exitcode) is None and time.monotonic() < deadline:
        time.sleep(0.005)
    return code


def default_metric(task):
    return ("test_accuracy", "max") if task == "classification" else ("test_mse", "min")


def _mode(metric):
    return "max" if any(s in metric for s in ("accuracy", "r2")) else "min"


def _summarize(names, points, runs, seeds, left_out=None):
    """One row per grid point: each metric's mean over the seeds, and its standard deviation with several seeds
    (a count the same for every seed, such as the epochs trained, stays a whole number); a point ``left_out``
    (key -> why) has a row with its ``note``."""
    rows = []
    for p in points:
        if left_out and _point_key(p) in left_out:
            rows.append({**p, "note": f"left out: {left_out[_point_key(p)]}"})
            continue
        done = [runs[_point_key({**p, **s})] for s in seeds]
        row = dict(p)
        errors = [r["error"] for r in done if "error" in r]
        ok = [r for r in done if "error" not in r]
        for k in sorted({k for r in ok for k in r} - set(names) - {"seed"}):
            vals = [r[k] for r in ok if isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)]
            if not vals:
                continue
            same_count = all(isinstance(v, int) or float(v).is_integer() for v in vals) and len(set(vals)) == 1
            row[k] = int(vals[0]) if same_count and not k.startswith("test_") else float(np.mean(vals))
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
    that is stopped and started again skips what it has done (a point's file
    that a crash of the machine left empty is trained again, with a warning);
    a folder is refused only when it holds a sweep whose settings outside the
    grid differ.
    Writes ``results.csv``, ``results.json`` and one plot per metric
    (``heatmap_METRIC.png`` or ``line_METRIC.png``); returns the rows and the
    best point by ``metric``.  ``jobs`` processes train the points (default:
    all cores): this one and ``jobs - 1`` worker processes, started once, each
    taking the next point (the longest first) whenever it is free, and each
    drawing some of the plots; each limits BLAS/OpenMP to ``threads`` threads
    (default: the cores divided among the ``jobs`` processes, at most what
    ``OMP_NUM_THREADS`` and the like ask for).  ``jobs=1`` trains in this
    process alone, with no worker.  With ``comm`` (MPI), the ranks share the
    runs instead of local processes; rank 0 writes the tables and returns
    them, the other ranks return None.
    """
    from . import viz  # noqa: F401 - matplotlib loaded once, here: this process and forked workers draw with it
    from .data import DATASETS

    if not isinstance(grid, dict) or not grid:
        raise ConfigError("a sweep needs a grid, a dict of each setting's values, e.g. {'lr': [1e-3, 1e-2]} "
                          "(--grid lr=1e-3,1e-2, and more --grid for more axes)")
    if not isinstance(base, dict):
        raise ConfigError(f"base: expected a dict of settings, got {type(base).__name__}")
    for name, values in grid.items():
        if name not in DEFAULTS:
            raise ConfigError(f"cannot sweep over unknown setting {name!r}; choose from {', '.join(DEFAULTS)}")
        if not isinstance(values, (list, tuple)):
            raise ConfigError(f"grid {name}: expected a list of values, got {values!r:.60}"
                              f"{' (hidden sizes: a list of lists, [[16], [32, 32]])' if name == 'hidden' else ''}")
        if not values:
            raise ConfigError(f"no values given for {name}")
    jobs = V.Optional(V.positive_int)(jobs, "jobs")
    threads = V.Optional(V.positive_int)(threads, "threads")
    seeds = V.positive_int(seeds, "seeds")
    if seeds > 1 and "seed" in grid:
        raise ConfigError("give either a grid over seed or seeds > 1, not both")
    data = base.get("data", DEFAULTS["data"])
    if data not in DATASETS:
        raise ConfigError(f"unknown data set {data!r}; choose from {', '.join(DATASETS)}")
    if "data" in grid:
        data = ", ".join(map(str, grid["data"]))  # (the plots' titles)
    names, points = _grid_points(grid)
    tasks, inapplicable = _check_sweep(base, grid, points)  # everything that can be checked, before any training
    if inapplicable:
        warnings.warn(f"{len(inapplicable)} of the {len(points)} grid points are left out, their settings do not "
                      f"go together: " + "; ".join(inapplicable.values()), UserWarning, stacklevel=2)
    if len(tasks) > 1:  # (their test_loss is another cost for each: no point of one is better than one of the other)
        raise ConfigError(f"the grid's data sets are of {len(tasks)} tasks ({', '.join(sorted(tasks))}), whose "
                          f"metrics and costs differ: sweep each task on its own")
    if metric == "auto":
        metric, mode = default_metric(next(iter(tasks)))
    else:
        metric = V.Choice(sorted(set.intersection(*(set(SWEEP_METRICS[t]) for t in tasks))))(metric, "--metric")
        mode = _mode(metric)
    seed0 = int(base.get("seed", DEFAULTS["seed"]))
    seed_points = [{}] if seeds == 1 else [{"seed": seed0 + k} for k in range(seeds)]
    runs_todo = [{**p, **s} for p in points if _point_key(p) not in inapplicable for s in seed_points]
    out_dir = V.output_dir(out_dir, "sweep folder")
    pdir = os.path.join(out_dir, "points")
    os.makedirs(pdir, exist_ok=True)
    if comm is None or comm.is_root:
        remove_stale_temps(out_dir)
        remove_stale_temps(pdir)
    meta_path = os.path.join(out_dir, "sweep.json")
    fixed = set(grid) | ({"seed"} if seeds > 1 else set())
    if os.path.exists(meta_path):
        old = read_json(meta_path, "sweep description", expect=dict)
        old_base, new_base = old.get("base", {}), json.loads(json.dumps(base))
        old_all, new_all = ({**DEFAULTS, **_normalized(b)} for b in (old_base, new_base))
        differ = sorted(k for k in (set(old_base) | set(new_base)) - fixed if old_all.get(k) != new_all.get(k))
        if differ:
            raise ConfigError(f"{out_dir} holds a sweep with other settings outside the grid "
                              f"({', '.join(f'{k}={old_base.get(k, DEFAULTS.get(k))!r}' for k in differ)}); "
                              f"give another --out to start a new one")
    elif os.path.isdir(pdir) and (kept := [f for f in os.listdir(pdir) if f.endswith(".json")]):
        raise ConfigError(f"{pdir} holds {len(kept)} sweep points but {meta_path} is missing: the settings they were "
                          f"trained with are unknown; give another --out, or remove {pdir} to train them again")
    if comm is not None:
        comm.barrier()  # every rank has read the old settings before rank 0 writes
    if comm is None or comm.is_root:
        atomic_write_json(meta_path, {"base": base, "grid": grid, "metric": metric, "seeds": seeds})
    runs, todo = {}, []
    for r in runs_todo:
        path = os.path.join(pdir, _point_key(r) + ".json")
        if not os.path.exists(path):  # a point written when its schedule went by an alias (step for step_decay)
            path = next((q for q in (os.path.join(pdir, _point_key({**r, "schedule": a}) + ".json")
                                     for a, name in RUN_SCHEDULE_ALIASES.items() if r.get("schedule") == name)
                         if os.path.exists(q)), path)
        done = None
        if os.path.exists(path):
            done = _read_point(path, r, names, lost_ok=True)
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
        with thread_limit(threads, comm):
            for i, r in enumerate(todo):
                if i % comm.size == comm.rank:
                    _run_and_write_point((pdir, base, r))
        comm.barrier()
        _DATA_CACHE.clear()
        if not comm.is_root:
            return None
        for r in todo:
            runs[_point_key(r)] = _read_point(os.path.join(pdir, _point_key(r) + ".json"), r, names)
        todo = []
    from concurrent.futures.process import BrokenProcessPool

    jobs = min(jobs or _cores(), len(todo)) if todo else 0
    ex = ctx = None
    limits = contextlib.ExitStack()
    try:
        for r in todo:  # each data configuration split and scaled once, here; forked workers inherit it
            try:
                _cached_data({**base, **r})
            except Exception:  # noqa: BLE001 - the point reports it in its row
                pass
        if jobs == 1:  # one process: no pool to start, the same thread limit as one worker
            with thread_limit(threads):
                for r in todo:
                    runs[_point_key(r)] = _run_and_write_point((pdir, base, r))
                    if bar:
                        bar.update(1)
        elif jobs > 1:  # this process and jobs - 1 workers, each training the next point when it is free
            import multiprocessing
            from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

            import sklearn.metrics  # noqa: F401 - imported once here, not in every worker (they are forked from here)

            from . import train  # noqa: F401

            per_worker = threads or default_threads(jobs)
            # this process trains with the limit too, and the workers inherit it (see limit_threads_for_workers);
            # it is kept until they are done: restoring it sooner would restart this process's BLAS threads,
            # stopped by the fork, to spin beside them
            limits.enter_context(limit_threads_for_workers(per_worker))
            # workers die with the sweep (kill -9 included); Ctrl-C or SIGTERM stops them before the sweep exits
            ctx = _RecordingContext(multiprocessing.get_context())
            # the longest points first: the last to finish are short ones, and no process idles long at the end
            order = sorted(todo, key=lambda r: -_point_cost({**base, **r}))
            claims = _Claims(ctx, len(order))
            ex = ProcessPoolExecutor(max_workers=jobs - 1, mp_context=ctx, initializer=_worker_init,
                                     initargs=(os.getpid(), per_worker, ctx.get_start_method() == "fork",
                                               (claims, pdir, base, order)))
            workers = [ex.submit(_train_claimed_points) for _ in range(jobs - 1)]

            def check_workers():  # what a worker raised (BrokenProcessPool: one died) stops the sweep at once
                for f in workers:
                    if f.done():
                        f.result()

            def show(own):
                if bar:
                    bar.update(skipped + own + claims.finished() - bar.n)

            own = 0
            try:
                while (i := claims.claim(check_workers)) is not None:
                    runs[_point_key(order[i])] = _run_and_write_point((pdir, base, order[i]))
                    own += 1
                    check_workers()
                    show(own)
                pending = set(workers)
                while pending:  # in slices (see _result)
                    done, pending = wait(pending, timeout=_SLICE, return_when=FIRST_EXCEPTION)
                    for f in done:
                        runs.update((_point_key(order[i]), rec) for i, rec in f.result().items())
                    show(own)
            except BrokenProcessPool:
                # a worker died; when every point of this sweep was finished all the same (it died once its work
                # was done: each point is counted once written), nothing is lost and the sweep goes on without
                # the pool, else the error below (an earlier sweep's file of a failed point, tried again, is not
                # a finished point)
                if own + claims.finished() < len(order):
                    raise
                _without_pool(ex, ctx, (pdir, out_dir), "after every point was finished; the results are whole")
                ex = None
                for r in order:
                    if (k := _point_key(r)) not in runs:
                        runs[k] = _read_point(os.path.join(pdir, k + ".json"), r, names)
        if bar:
            bar.close()
        rows = _summarize(names, points, runs, seed_points, inapplicable)
        cols = names + sorted({k for r in rows for k in r} - set(names))
        table = os.path.join(out_dir, "results.csv")
        ok = [r for r in rows if metric in r and math.isfinite(r[metric])]  # (R² of one test row is NaN)
        if not ok:
            atomic_write_text(table, _csv(rows, cols), durable=False)
            first = next((r["error"] for r in rows if "error" in r), f"no point reported {metric}")
            raise ConfigError(f"no grid point finished with {metric}: {first}")
        best = (max if mode == "max" else min)(ok, key=lambda r: r[metric])
        metrics = sorted(k for k in ok[0] if k.startswith("test_") and not k.endswith("_std"))
        jobs_plots = [(out_dir, data, grid, names, ok, m, seeds) for m in metrics]
        # one plot per metric, dealt round the processes: the workers draw theirs while this process writes the
        # table and draws its own (the first of each round); without workers, all here
        procs = jobs if ex is not None else 1
        drawing, plots, broke = {}, [None] * len(jobs_plots), False
        try:
            for k, a in enumerate(jobs_plots):
                if k % procs:
                    drawing[k] = ex.submit(_sweep_plot_job, a)
        except BrokenProcessPool:  # a worker died since it trained
            broke = True
        atomic_write_text(table, _csv(rows, cols), durable=False)  # made again from the points by a sweep run again
        for k, a in enumerate(jobs_plots):
            if k not in drawing:
                plots[k] = _sweep_plot_job(a)
        try:
            for k, f in drawing.items():
                plots[k] = _result(f)
        except BrokenProcessPool:  # a worker died drawing
            broke = True
        if broke:  # the results are whole: the plots the workers did not hand back are drawn here
            _without_pool(ex, ctx, (pdir, out_dir),
                          "after the points were finished; its plots are drawn by the sweep process")
            ex = None
            for k, a in enumerate(jobs_plots):
                if plots[k] is None:
                    plots[k] = _sweep_plot_job(a)
    except BaseException as e:
        try:
            if ex is not None:
                died = _stop_pool(ex, ctx, pdir, out_dir)
                if isinstance(e, BrokenProcessPool):
                    done = sum(os.path.exists(os.path.join(pdir, _point_key(r) + ".json")) for r in runs_todo)
                    raise BrokenProcessPool(
                        f"a sweep worker process died ({_how_ended(died)}: out of memory, or a crash in native "
                        f"code) while training; the {done} finished points are kept in {pdir}, and the same sweep "
                        f"run again goes on from them") from e
        finally:
            limits.close()  # even when stopping the workers is interrupted (a second Ctrl-C)
        raise
    finally:
        _DATA_CACHE.clear()
    with limits:  # restored last: it restarts this process's BLAS threads, which busy-wait before they sleep
        if ex is not None:  # idle workers told to exit; the pool's own thread reaps them, the sweep does not wait
            ex.shutdown(wait=False)
        result = {"metric": metric, "mode": mode, "best": best, "results": rows, "skipped": skipped,
                  "names": names, "seeds": seeds, "plots": plots}
        atomic_write_json(os.path.join(out_dir, "results.json"), {k: v for k, v in result.items() if k != "names"},
                          durable=False)
    return result


#: How long the sweep process waits for its workers at a time: the main thread blocked on a lock is not woken by
#: a signal the kernel gives another thread (Linux hands a process's SIGINT or SIGTERM to any thread that does not
#: block it: the pool's own threads), so Ctrl-C is acted on between slices (it hung the sweep for good).
_SLICE = 0.1


def _result(future):
    """``future.result()``, waited for in slices of ``_SLICE`` seconds."""
    from concurrent.futures import wait

    while not wait([future], timeout=_SLICE).done:
        pass
    return future.result()


def _sweep_plot_job(args):
    from . import viz

    return _sweep_plot(viz, *args)


def _sweep_plot(viz, out_dir, data, grid, names, rows, metric, seeds):
    """``line_METRIC.png`` over a 1-d grid (with the spread over seeds), else ``heatmap_METRIC.png`` over the
    first two settings with the best value over any further ones; returns the file name."""
    mode = _mode(metric)
    spread = f" (mean over {seeds} seeds)" if seeds > 1 else ""
    if len(names) == 1:
        a = names[0]
        by = {json.dumps(r[a]): r for r in rows}
        xs = [v for v in grid[a] if json.dumps(v) in by]
        labels = [_show_value(v) for v in xs]
        ys = [by[json.dumps(v)][metric] for v in xs]
        sd = [by[json.dumps(v)].get(metric + "_std", 0.0) for v in xs] if seeds > 1 else None
        fname = f"line_{metric}.png"
        with atomic_path(os.path.join(out_dir, fname), durable=False) as tmp:
            viz.line(labels, ys, tmp, a, metric, spread=sd, title=f"{data}: {viz.metric_label(metric)}{spread}",
                     spread_label=f"± standard deviation over {seeds} seeds")
        return fname
    a, b = names[0], names[1]
    va, vb = [json.dumps(v) for v in grid[a]], [json.dumps(v) for v in grid[b]]
    V = np.full((len(va), len(vb)), np.nan)
    for r in rows:
        i, j = va.index(json.dumps(r[a])), vb.index(json.dumps(r[b]))
        cur = V[i, j]
        if np.isnan(cur) or (r[metric] > cur if mode == "max" else r[metric] < cur):
            V[i, j] = r[metric]
    extra = f", best over {', '.join(map(viz.metric_label, names[2:]))}" if len(names) > 2 else ""
    fname = f"heatmap_{metric}.png"
    with atomic_path(os.path.join(out_dir, fname), durable=False) as tmp:
        viz.heatmap(V, [_show_value(v) for v in grid[a]], [_show_value(v) for v in grid[b]], tmp, a, b, metric,
                    title=f"{data}: {viz.metric_label(metric)}{spread}{extra}")
    return fname


# ------------------------------------------------------------------------------------------- comparisons


def compare(config, degree=None, out_dir=None, include=("sklearn", "torch"), overwrite=False):
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

    ``out_dir`` is refused before any training when it holds a run or an earlier comparison, unless
    ``overwrite`` (see :func:`prepare_compare_folder`).
    """
    from sklearn import linear_model
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    from . import baselines
    from .train.metrics import accuracy, mse, r2, to_labels

    raw = {**DEFAULTS, **config}
    overwrite = V.boolean(overwrite, "overwrite")
    if out_dir:
        out_dir = prepare_compare_folder(out_dir, overwrite)
    if raw.get("patience"):  # the peers cannot stop early: the same budget means the same epochs on the same rows
        raise ConfigError(f"compare trains every network for the same epochs on the same rows; patience="
                          f"{raw['patience']} would stop nablanet's early on 90% of them: leave out patience")
    data = _load_data(raw)
    ds, Xtr, Xte, ytr, yte, _ = data
    cfg = resolve(config, ds)
    classify = ds.task == "classification"
    rows = []

    def add(name, predict_fn, seconds, note=""):
        out = predict_fn(Xte)
        row = {"model": name}
        if classify:
            row["test_accuracy"] = accuracy(yte, out)
        else:
            out = np.asarray(out, dtype=np.float64).reshape(np.shape(yte))
            if not np.isfinite(out).all():  # a baseline that cannot fit (an ill-conditioned design): said, not a crash
                rows.append({**row, "test_mse": float("nan"), "test_r2": float("nan"), "train_seconds": seconds,
                             "note": "predictions are not finite (the fit is ill-conditioned; lower the degree)"})
                return
            row.update(test_mse=mse(yte, out), test_r2=r2(yte, out))
        rows.append({**row, "train_seconds": seconds, "note": note})

    n_batches = 1 if cfg["batch_size"] is None else -(-len(Xtr) // int(cfg["batch_size"]))
    initial = _model(cfg, Xtr.shape[1])  # the same seed builds the same network, bit for bit, as run_training
    res = run_training(config, data=data)
    net = res["trainer"].model
    label = f"nablanet MLP {'-'.join(map(str, [Xtr.shape[1]] + cfg['hidden'] + [cfg['n_outputs']]))}"
    add(label, (lambda X: to_labels(net.predict(X))) if classify else net.predict, res["train_seconds"])

    linear = []
    if classify:
        linear.append(("logistic regression (C=1)", linear_model.LogisticRegression(max_iter=5000), ""))
        if not cfg["hidden"] and cfg["l2"] and not cfg["l1"]:  # mean cost + l2 |w|^2 == (C sum cost + |w|^2 / 2) / (C n)
            # a softmax over two classes penalizes both columns; the logistic weight is their difference w1 - w0,
            # and at the minimum w1 = -w0, so |w0|^2 + |w1|^2 = |w1 - w0|^2 / 2: half the penalty, twice the C
            two = cfg["n_outputs"] == 2
            C = 1 / ((1 if two else 2) * len(Xtr) * cfg["l2"])
            linear.append((f"logistic regression, the network's penalty (C = 1/({'' if two else '2 '}n l2) = {C:.4g})",
                           linear_model.LogisticRegression(C=C, max_iter=5000), ""))
    else:
        deg = degree if degree is not None else (1 if cfg.get("degree") else 5)
        poly = (lambda m: make_pipeline(PolynomialFeatures(deg), m)) if deg > 1 else (lambda m: m)
        tag = f"degree {deg}" if deg > 1 else (f"degree {cfg['degree']} features" if cfg.get("degree") else "linear")
        linear += [(f"OLS ({tag})", poly(linear_model.LinearRegression()), ""),
                   ("RidgeCV", poly(linear_model.RidgeCV(alphas=np.logspace(-10, 2, 49))), tag),
                   ("LassoCV", poly(linear_model.LassoCV(cv=5, alphas=30, max_iter=5000, random_state=cfg["seed"])),
                    tag)]
        if not cfg["hidden"] and (cfg["l2"] or cfg["l1"]) and cfg["loss"] == "mse":  # the cost they solve
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
        remove_stale_temps(out_dir)
        atomic_write_json(os.path.join(out_dir, "compare.json"), {"config": cfg, "results": rows, "skipped": skipped})
        atomic_write_text(os.path.join(out_dir, "compare.csv"), _csv(rows, list(rows[0])))
        with atomic_path(os.path.join(out_dir, "compare.png")) as tmp:
            viz.bar_comparison([r["model"] for r in rows], [r[metric] for r in rows], tmp, metric,
                               title=f"{cfg['data']}: {viz.metric_label(metric)} on the same test split")
    return {"metric": metric, "results": rows, "skipped": skipped, "config": cfg}
