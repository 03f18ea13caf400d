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
import zipfile

import numpy as np

from ..autodiff.tree import tree_flatten, tree_unflatten
from ..distributed import FORMER_MODES, PARALLEL_MODES
from ..files import atomic_path
from ..losses import LOSSES
from ..nn.layers import Sequential
from ..optim import OPTIMIZERS, get_optimizer
from ..validate import (
    MODEL_DTYPES,
    Choice,
    FileFormatError,
    InvalidTypeError,
    InvalidValueError,
    MissingFileError,
    Optional,
    Sizes,
    Whole,
    boolean,
    non_negative_number,
)
from .callbacks import STATE_SCHEMAS, History

__all__ = ["save", "restore", "snapshot", "save_snapshot", "restore_snapshot", "FORMAT", "CheckpointError", "BIT_GENERATORS"]

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
    _check_path(path)
    _write(path, _contents(trainer))


def snapshot(trainer):
    """What :func:`save` would write now, held in memory (the arrays copied, the history by its length) for
    :func:`save_snapshot` to write later, as if it had been saved now: how :class:`Checkpoint` saves the state at
    the last epoch boundary when training is interrupted in the middle of an epoch."""
    meta, arrays = _contents(trainer, copy=True)
    meta["history"] = {k: len(v) for k, v in meta["history"].items()}  # append-only: its length now is its state
    return meta, arrays, trainer.history.history


def save_snapshot(snap, path):
    """Write a :func:`snapshot` to ``path`` (atomically, as :func:`save`)."""
    meta, arrays, history = snap
    _check_path(path)
    _write(path, ({**meta, "history": {k: history[k][:n] for k, n in meta["history"].items()}}, arrays))


def restore_snapshot(trainer, snap):
    """Put the state a :func:`snapshot` of a trainer of the same model and optimizer took into ``trainer``: the
    parameters, optimizer slots and step, running statistics, random stream, epoch, mode, history and callbacks'
    state (how ranks that waited while rank 0 trained alone take its state, ``parallel="lead"``)."""
    import copy as copying

    meta, arrays, history = snap
    trainer.set_flat_params(arrays["params"])
    for slot in trainer.optimizer.slots:
        trainer.opt_state[slot][0][...] = arrays[f"opt/{slot}"]
    trainer.opt_state["t"] = meta["step"]
    leaves, treedef = tree_flatten(trainer.model.state)
    if leaves:
        trainer.model.state = tree_unflatten(treedef, [np.array(arrays[f"state/{i}"], dtype=leaf.dtype)
                                                       for i, leaf in enumerate(leaves)])
    if type(trainer.rng.bit_generator).__name__ == meta["rng_type"]:
        trainer.rng.bit_generator.state = meta["rng"]  # the caller's Generator object, if it gave one, stays
    else:
        bitgen = BIT_GENERATORS[meta["rng_type"]]()
        bitgen.state = meta["rng"]
        trainer.rng = np.random.Generator(bitgen)
    trainer.epoch = meta["epoch"]
    trainer.parallel_mode = meta["parallel_mode"]
    trainer.parallel_batch_size = meta["parallel_batch_size"]
    records = trainer.history.history  # the History object a caller holds stays (fit returns it)
    records.clear()
    records.update({k: list(history[k][:n]) for k, n in meta["history"].items()})
    trainer.history.solver = copying.deepcopy(meta["solver"])
    trainer.callback_state = copying.deepcopy(meta["callbacks"])
    kept = {}
    for name, a in arrays.items():
        if name.startswith("callbacks/"):
            key, _, i = name[len("callbacks/"):].rpartition("/")
            kept.setdefault(key, {})[int(i)] = np.array(a, copy=True)
    trainer.callback_arrays = {key: [got[i] for i in range(len(got))] for key, got in kept.items()}


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidTypeError(f"checkpoint path: expected a file path, got {path!r:.80}")
    if os.path.isdir(path):
        raise InvalidValueError(f"{os.fspath(path)}: is a folder; give a checkpoint file name (e.g. checkpoint.npz)")


def _contents(trainer, copy=False):
    """``(meta, arrays)`` of ``trainer``'s checkpoint; with ``copy`` nothing in them is shared with the trainer."""
    import copy as copying

    keep = (lambda a: np.array(a, copy=True)) if copy else (lambda a: a)
    flat = keep(trainer.get_flat_params())
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
        "parallel": trainer.parallel,  # what was asked, and what the ranks did (None: not over several ranks yet)
        "parallel_mode": trainer.parallel_mode,
        "parallel_batch_size": trainer.parallel_batch_size,  # what auto chose the mode for (another size: again)
    }
    if trainer.run_config is not None:  # the settings of the run that trains it (run_training), checked on resume
        meta["run"] = trainer.run_config
    if copy:  # the configurations are built afresh by each call; the callbacks' filed states may be their own
        # (not "run": run_training sets it once, a JSON copy of the settings, and nothing changes it; an empty
        # state, as most are, becomes a new empty one, at less cost: a snapshot is taken at every epoch's end)
        meta.update({k: copying.deepcopy(v) if v else type(v)() if v is not None else None
                     for k, v in (("callbacks", meta["callbacks"]), ("solver", meta["solver"]))})
    arrays = {"params": flat}
    for slot in trainer.optimizer.slots:
        arrays[f"opt/{slot}"] = keep(trainer.opt_state[slot][0])
    state = trainer.model.state
    stateless = type(state) is list and all(type(s) is dict and not s for s in state)  # (no BatchNorm: no leaves)
    state_leaves = [] if stateless else tree_flatten(state)[0]
    for i, a in enumerate(state_leaves):
        arrays[f"state/{i}"] = keep(a)
    for key, kept in trainer.callback_arrays.items():  # a callback's arrays (EarlyStopping's best epoch), in order
        for i, a in enumerate(kept):
            arrays[f"callbacks/{key}/{i}"] = keep(a)
    return meta, arrays


def _write(path, contents):
    meta, arrays = contents
    arrays = {"meta": np.array(json.dumps(meta, default=_jsonable)), **arrays}
    for name, a in arrays.items():  # never a diverged model over the last good checkpoint (load refuses one)
        if name != "meta" and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise InvalidValueError(f"{os.fspath(path)}: not saved: {name} holds NaN or infinite values (training "
                                    f"diverged); the previous checkpoint, if any, is kept")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


# --------------------------------------------------------------------------------------------- reading

#: The bit generators a checkpoint may name: an allow-list, never a lookup by the file's string.
BIT_GENERATORS = {c.__name__: c for c in (np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937,
                                           np.random.Philox, np.random.SFC64)}
_DTYPES = MODEL_DTYPES
_COUNT = Whole(0, 2**63 - 1)  # epoch and step counters: an int64 (a step of 10**400 overflows the optimizer's float)
_ARRAY_KINDS = "fiub"  # numbers only (the metadata entry is the one unicode array)
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
_MAX_INFLATION = 1100  # deflate never expands more than ~1032:1; a claim beyond that is forged


class CheckpointError(FileFormatError):
    """A checkpoint file that cannot be loaded: the message names the file and what is wrong in it."""


def _fail(path, problem):
    return CheckpointError(path, problem)


def _open(path):
    """The .npz at ``path`` as an open ZipFile: opened once, so a checkpoint renamed over it meanwhile is not mixed in."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
        raise _fail(path, f"is not a nablanet checkpoint (not a readable .npz file: {e})") from None


def _entries(path, zf):
    """The arrays of the open .npz ``zf``, read without unpickling, each header checked before its data is read."""
    infos = [i for i in zf.infolist() if not i.is_dir()]
    size = os.fstat(zf.fp.fileno()).st_size  # of the file opened, whatever is at path now
    budget = max(64 << 20, _MAX_INFLATION * size)
    claimed = 0
    headers = {}
    for info in infos:
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if name in headers:
            raise _fail(path, f"is damaged: the entry {name!r} appears twice")
        try:
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version not in _HEADER_READERS:
                    raise ValueError(f"unsupported .npy format version {version}")
                shape, fortran, dtype = _HEADER_READERS[version](f)
        except Exception as e:  # noqa: BLE001 - any failure to read a header is a damaged file
            raise _fail(path, f"is not a nablanet checkpoint (entry {name!r} is not a readable array: "
                              f"{type(e).__name__}: {e})") from None
        if dtype.hasobject or (dtype.kind not in _ARRAY_KINDS and not (name == "meta" and dtype.kind == "U")):
            raise _fail(path, f"is not a nablanet checkpoint (entry {name!r} has dtype {dtype}; "
                              f"only numeric arrays are read, never pickled objects)")
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if nbytes > info.file_size:
            raise _fail(path, f"is damaged: entry {name!r} claims shape {tuple(shape)} of {dtype} "
                              f"({nbytes} bytes) but holds {info.file_size}")
        claimed += nbytes
        if claimed > budget:
            raise _fail(path, f"is damaged: its entries claim {claimed} bytes, more than a file of "
                              f"{size} bytes can hold")
        headers[name] = (info, tuple(shape), dtype)
    if "meta" not in headers or "params" not in headers:
        raise _fail(path, "is not a nablanet checkpoint (no 'meta' and 'params' entries)")
    return headers


def _read_entry(path, zf, info, name):
    try:
        with zf.open(info) as f:
            a = np.lib.format.read_array(f, allow_pickle=False)
            f.read()  # to the end of the entry: the zip's CRC check runs there
    except Exception as e:  # noqa: BLE001 - truncation, CRC mismatch, bad compression: a damaged file
        raise _fail(path, f"is damaged: entry {name!r} cannot be read ({type(e).__name__}: {e})") from None
    return a


def _read(path):
    """``(meta, headers, reader)``: the checked metadata, the array headers, and a function reading one entry."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidTypeError(f"checkpoint path: expected a file path, got {path!r:.80}")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise _fail(path, "is a folder, not a checkpoint file")
    if not os.path.isfile(path):
        raise MissingFileError(f"no checkpoint at {path!r}")
    zf = _open(path)
    try:
        headers = _entries(path, zf)
    except BaseException:
        zf.close()
        raise

    def reader(name):
        return _read_entry(path, zf, headers[name][0], name)

    info, shape, dtype = headers["meta"]
    if shape != () or dtype.kind != "U":
        zf.close()
        raise _fail(path, f"is not a nablanet checkpoint (the 'meta' entry is {dtype} of shape {shape}, not a string)")
    try:
        meta = json.loads(str(reader("meta")))
    except (json.JSONDecodeError, RecursionError) as e:
        zf.close()
        raise _fail(path, f"the checkpoint's metadata is corrupt ({e})") from None
    except BaseException:
        zf.close()
        raise
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        zf.close()
        fmt = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise _fail(path, f"is not a nablanet checkpoint (format {fmt!r})")
    return meta, headers, reader, zf


def _meta_field(path, meta, key, check):
    if key not in meta:
        raise _fail(path, f"the metadata has no {key!r}")
    try:
        return check(meta[key], f"metadata {key!r}")
    except (InvalidValueError, InvalidTypeError) as e:
        raise _fail(path, str(e)) from None


def _sizes_of(path, cfg):
    """(number of parameters, sizes of the running-statistics arrays) of the model ``cfg`` describes.

    Computed from the configuration alone, before anything is built or
    allocated, so a small file that claims huge layers is refused cheaply.
    """
    def need(cond, what):
        if not cond:
            raise _fail(path, f"the model configuration is invalid: {what}")

    need(isinstance(cfg, dict), f"expected a dict, got {type(cfg).__name__}")
    need(cfg.get("dtype") in _DTYPES, f"dtype must be one of {', '.join(_DTYPES)}, got {cfg.get('dtype')!r}")
    if cfg.get("type") == "MLP":
        try:
            sz = Sizes(min_len=2)(cfg.get("sizes"), "sizes")
        except (InvalidValueError, InvalidTypeError) as e:
            raise _fail(path, f"the model configuration is invalid: {e}") from None
        bn = cfg.get("batch_norm", False)
        need(isinstance(bn, bool), f"batch_norm must be true or false, got {bn!r}")
        n = sum(a * b + b for a, b in zip(sz[:-1], sz[1:]))
        hidden = sz[1:-1]
        if bn:
            n += sum(2 * h for h in hidden)
        return n, ([h for h in hidden for _ in range(2)] if bn else [])
    need(cfg.get("type") == "Sequential", f"type must be 'MLP' or 'Sequential', got {cfg.get('type')!r}")
    layers = cfg.get("layers")
    need(isinstance(layers, list) and layers, "layers must be a non-empty list")
    n, state = 0, []
    whole = Whole(1)
    for i, layer in enumerate(layers):
        need(isinstance(layer, dict), f"layer {i} is not a dict")
        kind = layer.get("type")
        try:
            if kind == "Dense":
                a, b = whole(layer.get("n_in"), f"layer {i} n_in"), whole(layer.get("n_out"), f"layer {i} n_out")
                n += a * b + b
            elif kind in ("BatchNorm", "LayerNorm"):
                k = whole(layer.get("n"), f"layer {i} n")
                n += 2 * k
                if kind == "BatchNorm":
                    state += [k, k]
            elif kind not in ("Dropout", "Activation"):
                need(False, f"layer {i} has unknown type {kind!r}")
        except (InvalidValueError, InvalidTypeError) as e:
            raise _fail(path, f"the model configuration is invalid: {e}") from None
    return n, state


def restore(path, make_trainer, loss=None):
    """Rebuild the trainer saved at ``path``, ready to continue training.

    ``make_trainer`` is the trainer class (:meth:`nablanet.train.Trainer.load`
    passes it, so this module never imports the loop: no import cycle).
    ``loss`` is needed only when the checkpoint was trained with a custom
    loss function (which a file of arrays cannot hold).

    Loading never runs or looks up anything the file names: layers,
    activations, initializers, losses, optimizers, schedules and bit
    generators come from allow-lists, and every size and shape is checked
    against the file before anything is allocated.  Any problem with the file
    raises one :class:`CheckpointError` (a ``ValueError``) naming the file.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidTypeError(f"checkpoint path: expected a file path, got {path!r:.80}")
    path = os.fspath(path)
    meta, headers, reader, zf = _read(path)
    try:
        return _build(path, meta, headers, reader, loss, make_trainer)
    finally:
        zf.close()


def _build(path, meta, headers, reader, loss, Trainer):
    version = _meta_field(path, meta, "version", Whole(0))
    if version > VERSION:
        raise _fail(path, f"was written by a newer nablanet (checkpoint version {version}; this one reads {VERSION})")
    n_params, state_sizes = _sizes_of(path, meta.get("model"))
    _, pshape, pdtype = headers["params"]
    dtype = meta["model"]["dtype"]
    if pshape != (n_params,) or pdtype.name != dtype:
        raise _fail(path, f"the parameters ({pshape} {pdtype}) do not fit the model its configuration describes "
                          f"(({n_params},) {dtype})")
    for name, (_, shape, dt) in headers.items():
        if name.startswith("opt/") and (shape != pshape or dt != pdtype):
            raise _fail(path, f"the optimizer slot {name[4:]!r} has shape {shape} {dt}, expected {pshape} {pdtype}")
    state_names = sorted((k for k in headers if k.startswith("state/")), key=lambda k: (len(k), k))
    if state_names != [f"state/{i}" for i in range(len(state_sizes))]:
        raise _fail(path, f"expected {len(state_sizes)} running-statistics arrays, found entries {state_names}")
    for name, k in zip(state_names, state_sizes):
        if headers[name][1] != (k,) or headers[name][2] != pdtype:
            raise _fail(path, f"entry {name!r} has shape {headers[name][1]} {headers[name][2]}, expected ({k},) {pdtype}")
    loss_name = meta.get("loss")
    if loss_name is not None and (not isinstance(loss_name, str) or loss_name not in LOSSES):
        raise _fail(path, f"unknown loss {loss_name!r}; known: {', '.join(sorted(LOSSES))}")
    if loss_name is None and loss is None:
        raise _fail(path, "it was trained with a custom loss, which a checkpoint cannot hold; "
                          "pass the function again: load(path, loss=fn)")
    l1 = _meta_field(path, meta, "l1", non_negative_number)
    l2 = _meta_field(path, meta, "l2", non_negative_number)
    penalize_bias = _meta_field(path, meta, "penalize_bias", boolean)
    epoch = _meta_field(path, meta, "epoch", _COUNT)
    step = _meta_field(path, meta, "step", _COUNT)
    rng_type = _meta_field(path, meta, "rng_type", Choice(BIT_GENERATORS))
    # (files from before the data-parallel modes have neither: auto, not yet chosen)
    # (and files from before "lead" say "replicate", which trained what lead trains)
    former = {k: FORMER_MODES.get(meta[k], meta[k]) for k in ("parallel", "parallel_mode")
              if isinstance(meta.get(k), str)}
    parallel = _meta_field(path, {"parallel": "auto", **meta, **former}, "parallel", Choice(PARALLEL_MODES))
    parallel_mode = _meta_field(path, {"parallel_mode": None, **meta, **former}, "parallel_mode",
                                Optional(Choice(PARALLEL_MODES[1:])))
    # (files from before it have none: the recorded mode holds for any batch size, as it did)
    parallel_batch_size = _meta_field(path, {"parallel_batch_size": None, **meta}, "parallel_batch_size",
                                      Optional(Whole(1)))
    history = meta.get("history")
    if not (isinstance(history, dict) and all(isinstance(k, str) and isinstance(v, list) for k, v in history.items())):
        raise _fail(path, f"the metadata 'history' must map names to lists, got {type(history).__name__}")
    for key, col in history.items():  # per-epoch records are numbers (None where an epoch has no value)
        bad = next((v for v in col if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))),
                   None)
        if bad is not None:
            raise _fail(path, f"the metadata 'history' entry {key!r} must hold numbers, got {bad!r:.60}")
    lengths = {len(col) for col in history.values()}
    if len(lengths) > 1:  # one row per epoch in every column: columns of other lengths would be written misaligned
        counts = ", ".join(f"{k} {len(col)}" for k, col in history.items())
        raise _fail(path, f"the metadata 'history' columns must be of one length (one entry per epoch), got {counts}")
    run = meta.get("run")  # (files from before it have none: compared on resume on what they hold)
    if run is not None and not isinstance(run, dict):
        raise _fail(path, f"the metadata 'run' must map settings to values, got {type(run).__name__}")
    opt_cfg = meta.get("optimizer")
    if not isinstance(opt_cfg, dict) or not isinstance(opt_cfg.get("name"), str) or opt_cfg["name"] not in OPTIMIZERS:
        raise _fail(path, f"the metadata 'optimizer' must name one of {', '.join(OPTIMIZERS)}")
    try:  # only allow-listed constructors are reached from here; their own checks speak for bad values
        model = Sequential.from_config(meta["model"])
        trainer = Trainer(model, loss if loss is not None else loss_name, get_optimizer(opt_cfg),
                          l1=l1, l2=l2, penalize_bias=penalize_bias, parallel=parallel)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as e:
        raise _fail(path, f"the metadata does not describe a model nablanet can build ({type(e).__name__}: {e})") from None
    slots = set(trainer.optimizer.slots)
    present = {k[4:] for k in headers if k.startswith("opt/")}
    if slots != present:
        raise _fail(path, f"the optimizer {opt_cfg['name']} keeps slots {sorted(slots)}, the file holds {sorted(present)}")
    if trainer.get_flat_params().shape != pshape:  # the model is built from the same sizes we counted
        raise _fail(path, f"the model built from the metadata has {trainer.get_flat_params().size} parameters, "
                          f"the file {pshape}")
    def finite(name):  # a diverged model is not a model: NaN or inf anywhere refuses the file
        a = reader(name)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise _fail(path, f"entry {name!r} holds NaN or infinite values (saved from a diverged run?)")
        return a

    trainer.set_flat_params(finite("params"))
    for slot in trainer.optimizer.slots:
        trainer.opt_state[slot][0][...] = finite(f"opt/{slot}")
    trainer.opt_state["t"] = step
    leaves, treedef = tree_flatten(model.state)
    arrays = [finite(f"state/{i}") for i in range(len(leaves))]
    if any(a.shape != leaf.shape for a, leaf in zip(arrays, leaves)):
        raise _fail(path, "the running statistics do not fit the model")
    start = 0
    for st in model.state:  # a running variance below zero (edited by hand) would make every prediction NaN
        sub = tree_flatten(st)[0]
        if isinstance(st, dict) and "var" in st:
            i = start + next(j for j, a in enumerate(sub) if a is st["var"])
            if (arrays[i] < 0).any():
                raise _fail(path, f"entry 'state/{i}' (a BatchNorm's running variance) holds negative values")
        start += len(sub)
    model.state = tree_unflatten(treedef, [a.astype(leaf.dtype) for a, leaf in zip(arrays, leaves)])
    bitgen = BIT_GENERATORS[rng_type]()
    try:
        bitgen.state = meta.get("rng")
    except (ValueError, TypeError, KeyError, OverflowError) as e:
        raise _fail(path, f"the saved random-generator state is invalid ({type(e).__name__}: {e})") from None
    trainer.rng = np.random.Generator(bitgen)
    trainer.epoch = epoch
    trainer.parallel_mode = parallel_mode
    trainer.parallel_batch_size = parallel_batch_size
    trainer.history = History(history)
    trainer.run_config = run
    callbacks = meta.get("callbacks", {})
    if not isinstance(callbacks, dict):
        raise _fail(path, f"the metadata 'callbacks' must map names to states, got {type(callbacks).__name__}")
    for key, state in callbacks.items():  # each known callback's state against its own schema
        if key in STATE_SCHEMAS:
            try:
                callbacks[key] = STATE_SCHEMAS[key].check_state(state, f"the metadata 'callbacks' entry {key!r}")
            except (InvalidValueError, InvalidTypeError) as e:
                raise _fail(path, str(e)) from None
    trainer.callback_state = callbacks
    kept = {}
    for name in headers:  # callbacks/KEY/I: the arrays a callback filed, each of the model's dtype
        if name.startswith("callbacks/"):
            key, _, i = name[len("callbacks/"):].rpartition("/")
            if key not in callbacks or not i.isdigit() or headers[name][2] != pdtype:
                raise _fail(path, f"entry {name!r} ({headers[name][2]}) is not an array of a callback's state "
                                  f"(callbacks/KEY/I of {pdtype}, KEY a callback the metadata lists)")
            kept.setdefault(key, {})[int(i)] = finite(name)
    for key, arrays in kept.items():
        if sorted(arrays) != list(range(len(arrays))):
            raise _fail(path, f"the arrays of the callback {key!r} are numbered {sorted(arrays)}, not 0, 1, ...")
    trainer.callback_arrays = {key: [arrays[i] for i in range(len(arrays))] for key, arrays in kept.items()}
    solver = meta.get("solver")
    if solver is not None and not isinstance(solver, (str, dict)):
        raise _fail(path, f"the metadata 'solver' must be a description, got {type(solver).__name__}")
    trainer.history.solver = solver
    return trainer
