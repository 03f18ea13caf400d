"""Damaged files: every checkpoint, run-folder file and IDX file that cannot be used gets one error naming it.

Hypothesis generates the damage (truncation, flipped bytes, wrong types in the
metadata, wrong shapes); the property is that loading either succeeds or
raises the one documented error class, never another exception type, and never
calls anything the file names.
"""

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nablanet.nn import MLP
from nablanet.train import Trainer, load
from nablanet.train.checkpoint import CheckpointError
from nablanet.validate import FileFormatError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def _good_checkpoint(batch_norm=True):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    t = Trainer(MLP([3, 5, 2], batch_norm=batch_norm, seed=0), "cross_entropy", "adam", seed=1)
    t.fit(X, y, epochs=1, batch_size=16)
    return t


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    path = folder / "good.npz"
    _good_checkpoint().save(path)
    return path.read_bytes()


def _entries(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n[:-4]: np.lib.format.read_array(z.open(n), allow_pickle=False) for n in z.namelist()}


def _pack(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _load_bytes(tmp_path, data, name="c.npz"):
    p = tmp_path / name
    p.write_bytes(data)
    return load(p)


def _only_checkpoint_errors(tmp_path, data):
    try:
        _load_bytes(tmp_path, data)
    except CheckpointError as e:
        assert "c.npz" in str(e)  # names the file
        assert "\n" not in str(e)


def test_good_checkpoint_loads(tmp_path, good):
    t = _load_bytes(tmp_path, good)
    assert t.epoch == 1


@SETTINGS
@given(cut=st.integers(min_value=0, max_value=10**6))
def test_truncated_checkpoints(tmp_path_factory, good, cut):
    tmp = tmp_path_factory.mktemp("t")
    data = good[: cut % len(good)]
    with pytest.raises(CheckpointError):
        _load_bytes(tmp, data)


@SETTINGS
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4))
def test_flipped_bytes(tmp_path_factory, good, flips):
    tmp = tmp_path_factory.mktemp("f")
    data = bytearray(good)
    for pos, x in flips:
        data[pos % len(data)] ^= x
    _only_checkpoint_errors(tmp, bytes(data))


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


@SETTINGS
@given(data=st.data(), value=_json_values)
def test_wrong_types_anywhere_in_the_metadata(tmp_path_factory, good, data, value):
    tmp = tmp_path_factory.mktemp("m")
    arrays = _entries(good)
    meta = json.loads(str(arrays["meta"]))
    paths = [p for p in _paths(meta) if p]
    where = data.draw(st.sampled_from(paths))
    node = meta
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = value
    arrays["meta"] = np.array(json.dumps(meta))
    _only_checkpoint_errors(tmp, _pack(arrays))


@SETTINGS
@given(data=st.data())
def test_wrong_shapes_and_dtypes_of_entries(tmp_path_factory, good, data):
    tmp = tmp_path_factory.mktemp("s")
    arrays = _entries(good)
    name = data.draw(st.sampled_from(sorted(arrays)))
    shape = tuple(data.draw(st.lists(st.integers(0, 7), max_size=3)))
    dtype = data.draw(st.sampled_from(["float32", "float64", "int64", "uint8", "<U3", "bool"]))
    arrays[name] = np.zeros(shape, dtype=dtype)
    _only_checkpoint_errors(tmp, _pack(arrays))


def test_a_small_file_claiming_huge_layers_is_refused_before_allocating(tmp_path, good):
    arrays = _entries(good)
    meta = json.loads(str(arrays["meta"]))
    meta["model"]["sizes"] = [3, 1_000_000, 1_000_000, 2]
    arrays["meta"] = np.array(json.dumps(meta))
    data = _pack(arrays)
    assert len(data) < 20_000
    with pytest.raises(CheckpointError, match="do not fit"):
        _load_bytes(tmp_path, data)
    # and a forged array header claiming terabytes
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    arrays = _entries(good)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in arrays.items():
            b = io.BytesIO()
            np.lib.format.write_array(b, v)
            z.writestr(k + ".npy", hdr.getvalue() + b"\0" * 64 if k == "params" else b.getvalue())
    with pytest.raises(CheckpointError, match="claims"):
        _load_bytes(tmp_path, buf.getvalue())


def test_the_rng_type_is_an_allow_list_never_a_lookup(tmp_path, good, monkeypatch):
    called = []
    monkeypatch.setattr(np.random, "seed", lambda *a: called.append(a))
    arrays = _entries(good)
    meta = json.loads(str(arrays["meta"]))
    meta["rng_type"] = "seed"
    arrays["meta"] = np.array(json.dumps(meta))
    with pytest.raises(CheckpointError, match="rng_type"):
        _load_bytes(tmp_path, _pack(arrays))
    assert called == []


def test_pickles_folders_and_other_formats_are_refused(tmp_path):
    evil = tmp_path / "evil.npz"
    np.savez(evil, meta=np.array([{"format": "nablanet-checkpoint"}], dtype=object), params=np.zeros(2))
    with pytest.raises(CheckpointError, match="never pickled"):
        load(evil)
    with pytest.raises(CheckpointError, match="folder"):
        load(tmp_path)
    assert issubclass(CheckpointError, FileFormatError) and issubclass(CheckpointError, ValueError)


def test_load_reads_one_version_of_a_checkpoint_replaced_while_reading(tmp_path, monkeypatch):
    """A training process renames a new checkpoint over the old one while another process loads it (the
    fault test's poll loop, --resume while a run is saving): the reader sees the old file or the new one,
    never the headers of one with the bytes of the other ('Bad CRC-32', or worse, a wrong array)."""
    import os

    from nablanet.train import checkpoint

    def trainer(epochs):
        tr = Trainer(MLP([3, 4, 1], seed=0, dtype=np.float64), "mse", "sgd", lr=0.1, seed=0)
        X = np.random.default_rng(0).standard_normal((20, 3))
        tr.fit(X, X[:, :1], epochs=epochs)
        return tr

    old, new = trainer(1), trainer(3)
    path, newer = tmp_path / "checkpoint.npz", tmp_path / "newer.npz"
    old.save(path)
    new.save(newer)
    real = zipfile.ZipFile
    opened = []

    def zip_file(file, *args, **kwargs):
        z = real(file, *args, **kwargs)
        if not opened:  # the writer's rename lands just after the reader first opened the file
            opened.append(file)
            os.replace(newer, path)
        return z

    monkeypatch.setattr(checkpoint.zipfile, "ZipFile", zip_file)
    got = load(path)
    assert got.epoch == old.epoch
    np.testing.assert_array_equal(got.get_flat_params(), old.get_flat_params())


@pytest.fixture(scope="module")
def with_callback_state(tmp_path_factory):
    """A checkpoint carrying the states of ReduceLROnPlateau and LearningRateScheduler."""
    from nablanet.train.callbacks import LearningRateScheduler, ReduceLROnPlateau

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = X.sum(1)
    t = Trainer(MLP([3, 4, 1], seed=0), "mse", "sgd", seed=0)
    t.fit(X, y, epochs=3, batch_size=20, callbacks=[LearningRateScheduler(lambda e: 0.01 / (1 + e)),
                                                   ReduceLROnPlateau("loss", patience=1)])
    path = tmp_path_factory.mktemp("cb") / "cb.npz"
    t.save(path)
    return path.read_bytes()


@pytest.mark.parametrize("key, field, value, message", [
    ("ReduceLROnPlateau", "scale", "x", ": scale: expected a number in \\(0, 1\\], got 'x'"),
    ("ReduceLROnPlateau", "scale", float("nan"), ": scale: expected a number in \\(0, 1\\], got nan"),
    ("ReduceLROnPlateau", "wait", 2.5, ": wait: expected an integer >= 0"),
    ("ReduceLROnPlateau", "best", float("inf"), ": best: expected a finite number or none"),
    ("ReduceLROnPlateau", "reductions", -1, ": reductions: expected an integer >= 0, got -1"),
    ("ReduceLROnPlateau", "wait", None, ": wait: expected an integer >= 0"),
    ("ReduceLROnPlateau", None, [1, 2], "'ReduceLROnPlateau': expected a table of scale, best"),
    ("ReduceLROnPlateau", "extra", 1, "; unknown extra"),
    ("LearningRateScheduler", "lr", 0.0, "'LearningRateScheduler': lr: expected a number > 0, got 0.0"),
    ("LearningRateScheduler", "lr", float("-inf"), "lr: expected a number > 0, got -inf"),
])
def test_callback_state_is_checked_against_its_schema_naming_file_and_key(tmp_path, with_callback_state, key, field,
                                                                          value, message):
    import re

    good = _load_bytes(tmp_path, with_callback_state, "ok.npz")
    assert set(good.callback_state) == {"ReduceLROnPlateau", "LearningRateScheduler"}
    arrays = _entries(with_callback_state)
    meta = json.loads(str(arrays["meta"]))
    if field is None:
        meta["callbacks"][key] = value
    else:
        meta["callbacks"][key][field] = value
    arrays["meta"] = np.array(json.dumps(meta))
    with pytest.raises(CheckpointError) as e:
        _load_bytes(tmp_path, _pack(arrays))
    text = str(e.value)
    assert "c.npz" in text and key in text and "\n" not in text, text
    assert re.search(message, text), text


def test_a_missing_key_of_a_callback_state_is_named(tmp_path, with_callback_state):
    arrays = _entries(with_callback_state)
    meta = json.loads(str(arrays["meta"]))
    del meta["callbacks"]["ReduceLROnPlateau"]["cooling"]
    arrays["meta"] = np.array(json.dumps(meta))
    with pytest.raises(CheckpointError, match="c.npz: .*'ReduceLROnPlateau': expected the keys .*; missing cooling"):
        _load_bytes(tmp_path, _pack(arrays))


def test_a_loaded_state_continues_the_callback(tmp_path, with_callback_state):
    """The checked state is the state: a ReduceLROnPlateau given to the loaded trainer takes up its counters."""
    from nablanet.train.callbacks import ReduceLROnPlateau

    t = _load_bytes(tmp_path, with_callback_state, "ok.npz")
    saved = t.callback_state["ReduceLROnPlateau"]
    cb = ReduceLROnPlateau("loss", patience=1)
    assert cb.restore_state(t) and cb.state_dict() == saved


@pytest.mark.parametrize("column", [["x", 0.5], [None, {"a": 1}], [True], [[1.0]]])
def test_history_records_that_are_not_numbers_are_refused(tmp_path, good, column):
    # a history of strings loaded and training appended numbers after them: metrics.csv and the plots then broke
    arrays = _entries(good)
    meta = json.loads(str(arrays["meta"]))
    meta["history"]["loss"] = column
    arrays["meta"] = np.array(json.dumps(meta))
    with pytest.raises(CheckpointError, match="'history' entry 'loss' must hold numbers"):
        _load_bytes(tmp_path, _pack(arrays))


@pytest.mark.parametrize("key, value", [("parallel", "fastest"), ("parallel", None), ("parallel_mode", "auto"),
                                        ("parallel_mode", 3), ("parallel_batch_size", 0),
                                        ("parallel_batch_size", "32")])
def test_the_parallel_mode_of_a_checkpoint_is_checked(tmp_path, good, key, value):
    arrays = _entries(good)
    meta = json.loads(str(arrays["meta"]))
    assert meta["parallel"] == "auto" and meta["parallel_mode"] is None  # trained in one process
    meta[key] = value
    arrays["meta"] = np.array(json.dumps(meta))
    with pytest.raises(CheckpointError, match=f"metadata '{key}'"):
        _load_bytes(tmp_path, _pack(arrays))
    meta["parallel_batch_size"] = None
    meta["parallel"], meta["parallel_mode"] = "auto", "lead"  # what MPI ranks chose, kept for --resume
    arrays["meta"] = np.array(json.dumps(meta))
    t = _load_bytes(tmp_path, _pack(arrays))
    assert (t.parallel, t.parallel_mode) == ("auto", "lead")
    for asked in ("auto", "replicate"):  # written before "lead" replaced "replicate", which trained the same bits
        meta["parallel"], meta["parallel_mode"] = asked, "replicate"
        arrays["meta"] = np.array(json.dumps(meta))
        t = _load_bytes(tmp_path, _pack(arrays))
        assert (t.parallel, t.parallel_mode) == (asked.replace("replicate", "lead"), "lead")
    del meta["parallel"], meta["parallel_mode"]  # a file from before the modes: auto, not chosen yet
    arrays["meta"] = np.array(json.dumps(meta))
    t = _load_bytes(tmp_path, _pack(arrays))
    assert (t.parallel, t.parallel_mode) == ("auto", None)


def _with_meta(good, edit):
    arrays = _entries(good)
    meta = json.loads(str(arrays["meta"]))
    edit(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def test_a_negative_batch_norm_running_variance_is_refused_naming_the_entry(tmp_path, good):
    # it loaded, and every prediction was NaN
    t = _load_bytes(tmp_path, good)
    var = [i for i, layer in enumerate(t.model.layers) if type(layer).__name__ == "BatchNorm"]
    assert var and isinstance(t.model.state[var[0]], dict)  # state/0 its mean, state/1 its variance
    arrays = _entries(good)
    arrays["state/1"] = arrays["state/1"].copy()
    arrays["state/1"][2] = -1.0
    with pytest.raises(CheckpointError, match=r"c.npz: entry 'state/1' \(a BatchNorm's running variance\) holds "
                                              r"negative values"):
        _load_bytes(tmp_path, _pack(arrays))
    arrays = _entries(good)
    arrays["state/0"] = -np.abs(arrays["state/0"]) - 1  # a negative mean is a mean
    assert _load_bytes(tmp_path, _pack(arrays)).epoch == 1


def test_history_columns_of_different_lengths_are_refused(tmp_path, good):
    # they loaded, and training went on appending to each: metrics.csv's rows no longer lined up with the epochs
    arrays = _with_meta(good, lambda meta: meta["history"].update(loss=meta["history"]["loss"] * 2))
    with pytest.raises(CheckpointError, match=r"c.npz: the metadata 'history' columns must be of one length "
                                              r"\(one entry per epoch\), got epoch 1, loss 2, lr 1"):
        _load_bytes(tmp_path, _pack(arrays))


@pytest.mark.parametrize("key", ["step", "epoch"])
def test_counters_beyond_an_int64_are_refused(tmp_path, good, key):
    # a step of 10**400 loaded, and fit then failed with a bare OverflowError
    arrays = _with_meta(good, lambda meta: meta.update({key: 10**400}))
    with pytest.raises(CheckpointError, match=f"c.npz: metadata '{key}': expected an integer in 0..{2**63 - 1}"):
        _load_bytes(tmp_path, _pack(arrays))


def test_the_run_settings_of_a_checkpoint_are_optional_and_checked(tmp_path, good):
    assert _load_bytes(tmp_path, good).run_config is None  # a trainer's own checkpoint: no run
    arrays = _with_meta(good, lambda meta: meta.update(run=["adam"]))
    with pytest.raises(CheckpointError, match="c.npz: the metadata 'run' must map settings to values, got list"):
        _load_bytes(tmp_path, _pack(arrays))
    t = _load_bytes(tmp_path, _pack(_with_meta(good, lambda meta: meta.update(run={"seed": 3}))))
    t.save(tmp_path / "again.npz")
    assert load(tmp_path / "again.npz").run_config == {"seed": 3}  # carried on by what it saves
