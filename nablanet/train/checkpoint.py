"""Checkpoints: one ``.npz`` file, written atomically, read without unpickling.

The file holds arrays only: the flat parameter buffer, the optimizer's slots,
the layers' running statistics, and a JSON document (stored as a unicode
array) with the model and optimizer configurations, the loss, penalties, the
epoch and step counters, the RNG state and the history.  ``np.load`` reads it
with ``allow_pickle=False``: loading never runs code from the file.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

from ..autodiff.tree import tree_flatten, tree_unflatten
from ..losses import LOSSES
from ..nn.layers import Sequential
from ..optim import get_optimizer
from .callbacks import History

__all__ = ["save", "restore", "FORMAT"]

FORMAT = "nablanet-checkpoint"
VERSION = 1


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"cannot store {type(v).__name__} in a checkpoint")


def save(trainer, path):
    """Write ``trainer`` (model, optimizer state, counters, RNG, history) to ``path``.

    The file is first written next to ``path`` and then renamed over it, so
    an interrupted save never leaves a half-written checkpoint behind.
    """
    loss_name = trainer.loss.name
    if LOSSES.get(loss_name) is not trainer.loss:
        loss_name = None  # a custom callable: given again to load()
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": trainer.model.config(),
        "optimizer": trainer.optimizer.config(),
        "loss": loss_name,
        "l1": trainer.l1,
        "l2": trainer.l2,
        "penalize_bias": trainer.penalize_bias,
        "epoch": trainer.epoch,
        "step": trainer.opt_state["t"],
        "rng": trainer.rng.bit_generator.state,
        "rng_type": type(trainer.rng.bit_generator).__name__,
        "history": trainer.history.history,
        "callbacks": trainer.callback_state,
        "solver": trainer.history.solver,
    }
    arrays = {"meta": np.array(json.dumps(meta, default=_jsonable)), "params": trainer.get_flat_params()}
    for slot in trainer.optimizer.slots:
        arrays[f"opt/{slot}"] = trainer.opt_state[slot][0]
    state_leaves = tree_flatten(trainer.model.state)[0]
    for i, a in enumerate(state_leaves):
        arrays[f"state/{i}"] = a
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".nablanet-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path!r} is not a nablanet checkpoint (not a readable .npz file: {e})") from None
    if "meta" not in arrays or "params" not in arrays:
        raise ValueError(f"{path!r} is not a nablanet checkpoint (no 'meta' and 'params' entries)")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path!r}: the checkpoint's metadata is corrupt ({e})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a nablanet checkpoint (format {meta.get('format')!r})")
    if meta.get("version", 0) > VERSION:
        raise ValueError(f"{path!r} was written by a newer nablanet (checkpoint version {meta['version']})")
    return meta, arrays


def restore(path, make_trainer, loss=None):
    """Rebuild the trainer saved at ``path``, ready to continue training.

    ``make_trainer`` is the trainer class (:meth:`nablanet.train.Trainer.load`
    passes it, so this module never imports the loop: no import cycle).
    ``loss`` is needed only when the checkpoint was trained with a custom
    loss function (which a file of arrays cannot hold).
    """
    Trainer = make_trainer
    meta, arrays = _read(path)
    model = Sequential.from_config(meta["model"])
    if meta["loss"] is None and loss is None:
        raise ValueError(f"{path!r} was trained with a custom loss; pass it again: load(path, loss=fn)")
    trainer = Trainer(
        model, loss if loss is not None else meta["loss"], get_optimizer(meta["optimizer"]),
        l1=meta["l1"], l2=meta["l2"], penalize_bias=meta["penalize_bias"],
    )
    flat = arrays["params"]
    if flat.shape != trainer.get_flat_params().shape or flat.dtype != trainer.get_flat_params().dtype:
        raise ValueError(
            f"{path!r}: the parameters ({flat.shape[0]} values, {flat.dtype}) do not fit the model its "
            f"configuration describes ({trainer.get_flat_params().shape[0]}, {trainer.get_flat_params().dtype})"
        )
    trainer.set_flat_params(flat)
    for slot in trainer.optimizer.slots:
        trainer.opt_state[slot][0][...] = arrays[f"opt/{slot}"]
    trainer.opt_state["t"] = int(meta["step"])
    leaves, treedef = tree_flatten(model.state)
    model.state = tree_unflatten(treedef, [arrays[f"state/{i}"].copy() for i in range(len(leaves))])
    bitgen = getattr(np.random, meta["rng_type"])()
    bitgen.state = meta["rng"]
    trainer.rng = np.random.Generator(bitgen)
    trainer.epoch = int(meta["epoch"])
    trainer.history = History(meta["history"])
    trainer.callback_state = meta.get("callbacks", {})
    trainer.history.solver = meta.get("solver")
    return trainer
