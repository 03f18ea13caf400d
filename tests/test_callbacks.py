"""ReduceLROnPlateau, LearningRateScheduler, LambdaCallback, CSVLogger, and resuming them from checkpoints."""

import csv

import numpy as np
import pytest

from nablanet.data import franke
from nablanet.nn import MLP
from nablanet.train import (
    Checkpoint,
    CSVLogger,
    LambdaCallback,
    LearningRateScheduler,
    ReduceLROnPlateau,
    Trainer,
    fit,
    load,
)

pytestmark = pytest.mark.usefixtures("one_blas_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def data():
    X, y = franke(n=120, seed=0)
    return X, y


def _trainer(lr=0.05):
    return Trainer(MLP([2, 8, 1], activation="tanh", seed=0, dtype=np.float64), "mse", "sgd", lr=lr, seed=0)


def test_reduce_lr_on_plateau_counts_and_reduces(data):
    X, y = data
    # a monitored value that improves for 3 epochs, then stalls: with patience 2 the rate drops after the 5th and 7th
    values = iter([5.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0])
    feed = LambdaCallback(on_epoch_end=lambda tr, e, logs: logs.__setitem__("fake", next(values)))
    rop = ReduceLROnPlateau("fake", factor=0.5, patience=2, min_delta=0.0)
    tr = _trainer(0.1)
    h = tr.fit(X, y, epochs=8, callbacks=[feed, rop])
    # the rate logged for an epoch is the one its steps used; the drop shows from the next epoch on
    np.testing.assert_allclose(h["lr"], [0.1] * 5 + [0.05] * 2 + [0.025])
    assert rop.reductions == 2 and rop.scale == 0.25
    assert tr.optimizer.lr(0) == 0.1  # the optimizer's own schedule is back after training


def test_reduce_lr_on_plateau_respects_min_lr_and_cooldown(data):
    X, y = data
    feed = LambdaCallback(on_epoch_end=lambda tr, e, logs: logs.__setitem__("fake", 1.0))
    rop = ReduceLROnPlateau("fake", factor=0.1, patience=1, cooldown=2, min_lr=1e-3)
    h = _trainer(0.1).fit(X, y, epochs=9, callbacks=[feed, rop])
    # epoch 1 sets the best; epoch 2 reduces, 2 epochs cool down, epoch 5 reduces, ...
    assert rop.reductions == 3 and min(h["lr"]) == pytest.approx(1e-3)


def test_learning_rate_scheduler_both_forms(data):
    X, y = data
    h = _trainer().fit(X, y, epochs=4, callbacks=[LearningRateScheduler(lambda e: 0.1 / (e + 1))])
    np.testing.assert_allclose(h["lr"], [0.1, 0.05, 0.1 / 3, 0.025])
    h = _trainer(0.2).fit(X, y, epochs=3, callbacks=[LearningRateScheduler(lambda e, lr: lr * 0.5)])
    np.testing.assert_allclose(h["lr"], [0.1, 0.05, 0.025])
    with pytest.raises(ValueError, match="must be positive"):
        _trainer().fit(X, y, epochs=2, callbacks=[LearningRateScheduler(lambda e: -1.0)])
    with pytest.raises(ValueError, match="full-batch"):
        Trainer(MLP([2, 4, 1], seed=0), "mse", "lbfgs").fit(X, y, epochs=2, callbacks=[LearningRateScheduler(lambda e: 1.0)])


def test_lambda_callback_sees_every_hook_and_can_stop(data):
    X, y = data
    seen = []
    cb = LambdaCallback(on_train_begin=lambda tr: seen.append("begin"),
                        on_batch_end=lambda tr, e, b, loss: seen.append(("batch", e, b)),
                        on_epoch_end=lambda tr, e, logs: seen.append(("epoch", e)) or e == 1,
                        on_train_end=lambda tr: seen.append("end"))
    h = _trainer().fit(X, y, epochs=5, batch_size=60, callbacks=[cb])
    assert len(h) == 2
    assert seen == ["begin", ("batch", 0, 0), ("batch", 0, 1), ("epoch", 0), ("batch", 1, 0), ("batch", 1, 1),
                    ("epoch", 1), "end"]
    with pytest.raises(TypeError, match="on_epoch_end"):
        LambdaCallback(on_epoch_end=3)


def test_csv_logger_writes_the_history(tmp_path, data):
    X, y = data
    path = tmp_path / "log.csv"
    h = _trainer().fit(X, y, epochs=3, validation_split=0.25, callbacks=[CSVLogger(path)])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    np.testing.assert_allclose([float(r["val_loss"]) for r in rows], h["val_loss"])
    # a fresh run starts the file anew
    _trainer().fit(X, y, epochs=2, callbacks=[CSVLogger(path)])
    with open(path, newline="") as f:
        assert len(list(csv.DictReader(f))) == 2


def test_all_resume_from_a_checkpoint_as_if_never_stopped(tmp_path, data):
    """6 epochs in one go == 3 epochs, checkpoint, load, 3 more, with every stateful callback."""
    X, y = data

    def callbacks(folder):
        stall = iter([3.0, 2.0, 2.0, 2.0, 2.0, 2.0])
        return [
            LambdaCallback(on_epoch_end=lambda tr, e, logs: logs.__setitem__("fake", next(stall))),
            LearningRateScheduler(lambda e, lr: lr * 0.9),
            ReduceLROnPlateau("fake", factor=0.5, patience=2, min_delta=0.0),
            CSVLogger(folder / "log.csv"),
            Checkpoint(folder / "ck.npz"),
        ]

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole = _trainer()
    whole.fit(X, y, epochs=6, batch_size=40, callbacks=callbacks(tmp_path / "a"))

    first = _trainer()
    cbs = callbacks(tmp_path / "b")
    first.fit(X, y, epochs=3, batch_size=40, callbacks=cbs)
    # the run "dies" after writing a 4th row to the log but before its checkpoint
    with open(tmp_path / "b" / "log.csv", "a") as f:
        f.write("4,0.0,0.0,0.0,0.0\n")
    resumed = load(tmp_path / "b" / "ck.npz")
    stall = iter([2.0, 2.0, 2.0])
    cbs2 = callbacks(tmp_path / "b")
    cbs2[0] = LambdaCallback(on_epoch_end=lambda tr, e, logs: logs.__setitem__("fake", next(stall)))
    resumed.fit(X, y, epochs=3, batch_size=40, callbacks=cbs2)

    np.testing.assert_array_equal(resumed.get_flat_params(), whole.get_flat_params())
    np.testing.assert_allclose(resumed.history["lr"], whole.history["lr"])
    assert len(set(whole.history["lr"])) == 6 and whole.history["lr"][-1] < 0.5 * 0.9**5 * 0.05  # both acted
    assert cbs2[2].state_dict() == whole.callback_state["ReduceLROnPlateau"]
    with open(tmp_path / "a" / "log.csv") as fa, open(tmp_path / "b" / "log.csv") as fb:
        a, b = list(csv.DictReader(fa)), list(csv.DictReader(fb))
    assert [r["epoch"] for r in b] == ["1", "2", "3", "4", "5", "6"]  # the orphan row 4 was replaced
    np.testing.assert_allclose([float(r["loss"]) for r in b], [float(r["loss"]) for r in a])


def test_reduce_lr_on_plateau_from_fit_improves_a_stalled_run(data):
    """Usable from fit: a too-large constant rate that oscillates is tamed by the reductions."""
    X, y = data
    m1 = MLP([2, 8, 1], activation="tanh", seed=0, dtype=np.float64)
    h1 = fit(m1, X, y, optimizer="sgd", lr=1.5, epochs=60, seed=0)
    m2 = MLP([2, 8, 1], activation="tanh", seed=0, dtype=np.float64)
    h2 = fit(m2, X, y, optimizer="sgd", lr=1.5, epochs=60, seed=0,
             callbacks=[ReduceLROnPlateau("loss", factor=0.5, patience=2)])
    assert min(h2["lr"]) < 1.5
    assert h2["loss"][-1] < h1["loss"][-1]


def test_csv_logger_rewrites_its_log_atomically_on_resume(tmp_path, data, monkeypatch):
    """A resumed logger rewrites the log up to the checkpoint; stopped in the middle of that (a kill, Ctrl-C),
    it leaves the old log whole, never a truncated one (nablanet.files.atomic_path)."""
    X, y = data
    path = tmp_path / "log.csv"
    _trainer().fit(X, y, epochs=3, callbacks=[CSVLogger(path), Checkpoint(tmp_path / "ck.npz")])
    before = path.read_text()
    resumed = load(tmp_path / "ck.npz")

    def interrupted(self, rows):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(csv.DictWriter, "writerows", interrupted)
        with pytest.raises(KeyboardInterrupt):
            resumed.fit(X, y, epochs=2, callbacks=[CSVLogger(path)])
    assert path.read_text() == before
    resumed.fit(X, y, epochs=2, callbacks=[CSVLogger(path)])
    with open(path, newline="") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2", "3", "4", "5"]


def test_two_callbacks_never_file_their_state_under_one_key(tmp_path, data):
    """Two ReduceLROnPlateau in one run filed their state under one name: the second overwrote the first, and a
    resumed run gave both the second's scale.  Now that is refused, and each given its own state_key resumes."""
    X, y = data
    with pytest.raises(ValueError, match="'ReduceLROnPlateau'.*state_key"):
        _trainer().fit(X, y, epochs=1, callbacks=[ReduceLROnPlateau("loss"), ReduceLROnPlateau("loss", patience=3)])

    def callbacks():
        stall = iter([3.0, 2.0, 2.0, 2.0, 2.0, 2.0])
        slow, fast = ReduceLROnPlateau("loss", factor=0.5, patience=100), ReduceLROnPlateau("fake", factor=0.5,
                                                                                           patience=1)
        slow.state_key, fast.state_key = "slow", "fast"
        feed = LambdaCallback(on_epoch_end=lambda tr, e, logs: logs.__setitem__("fake", next(stall)))
        return [feed, slow, fast]

    tr = _trainer()
    cbs = callbacks()
    tr.fit(X, y, epochs=3, callbacks=cbs + [Checkpoint(tmp_path / "ck.npz")])
    assert tr.callback_state["slow"]["scale"] == 1.0 and tr.callback_state["fast"]["scale"] == 0.5
    resumed = load(tmp_path / "ck.npz")
    cbs2 = callbacks()
    resumed.fit(X, y, epochs=1, callbacks=[cbs2[0], cbs2[1], cbs2[2]])
    assert cbs2[1].scale == 1.0 and cbs2[2].scale < 1.0


def test_callbacks_show_their_settings():
    """Each callback's repr is how it was made, as an optimizer's is (the default was <... object at 0x...>)."""
    from nablanet.train import Callback, EarlyStopping, ProgressBar, TerminateOnNaN

    class Snapshot(Callback):  # a user's own callback: its class, with no settings
        pass

    def halve(epoch, lr):
        return lr / 2

    assert repr(EarlyStopping(patience=5)) == \
        "EarlyStopping(monitor='val_loss', patience=5, min_delta=0.0, mode='min', restore_best=True)"
    assert repr(ReduceLROnPlateau("loss", factor=0.5, patience=2)) == \
        "ReduceLROnPlateau(monitor='loss', factor=0.5, patience=2, min_delta=0.0001, cooldown=0, min_lr=0.0, mode='min')"
    assert repr(Checkpoint("run.npz")) == "Checkpoint(path='run.npz', every=1, seconds=None, at_start=True)"
    assert repr(Checkpoint("best.npz", save_best_only=True, monitor="val_accuracy")) == \
        "Checkpoint(path='best.npz', every=1, seconds=None, at_start=True, save_best_only=True, " \
        "monitor='val_accuracy', mode='max')"
    assert repr(LearningRateScheduler(halve)) == "LearningRateScheduler(fn=halve)"
    assert repr(LearningRateScheduler(lambda e: 0.1)) == "LearningRateScheduler(fn=<lambda>)"
    assert repr(LambdaCallback(on_epoch_end=halve)) == "LambdaCallback(on_epoch_end=halve)"
    assert repr(CSVLogger("log.csv")) == "CSVLogger(path='log.csv', separator=',', append=False)"
    assert repr(TerminateOnNaN()) == "TerminateOnNaN()"
    assert repr(ProgressBar(force=True)) == "ProgressBar(force=True, file=None)"
    assert repr(Snapshot()) == "Snapshot()"
    assert "factor=0.123456789," in repr(ReduceLROnPlateau(factor=0.123456789))  # as given, not rounded

    class Keeps(Callback):  # a user's callback that keeps its own `settings`: its repr still works
        def __init__(self):
            self.settings = {"a": 1}

    assert repr(Keeps()) == "Keeps()"
