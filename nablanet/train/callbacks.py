"""Callbacks: things that happen around the training loop, and its history."""

from __future__ import annotations

import math
import sys

import numpy as np

from ..autodiff.tree import tree_map

__all__ = ["Callback", "History", "EarlyStopping", "Checkpoint", "ProgressBar", "TerminateOnNaN"]


class History:
    """Per-epoch records: ``history["loss"]``, ``history["val_accuracy"]``, ...

    Keys: ``epoch``, ``loss`` (mean training cost over the epoch's batches,
    penalties included), ``val_loss``, each metric and ``val_`` metric, ``lr``
    (learning rate at the epoch's last step) and ``time`` (seconds).  With a
    full-batch method (``lbfgs``, ``newton``, ``hessian_free``) each record is
    one iteration, with ``grad_norm``, and ``solver`` says how the last run
    ended: ``{"method", "n_iter", "n_fev", "n_hvp", "stop_reason", "converged",
    "value", "grad_norm"}``.
    """

    def __init__(self, records=None):
        self.history = {k: list(v) for k, v in (records or {}).items()}
        self.solver = None

    def append(self, logs):
        n = len(self.history.get("epoch", []))
        for k, v in logs.items():
            self.history.setdefault(k, [None] * n).append(v)
        for col in self.history.values():
            if len(col) < n + 1:
                col.append(None)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __len__(self):
        return len(self.history.get("epoch", []))

    def keys(self):
        return self.history.keys()

    def last(self):
        return {k: v[-1] for k, v in self.history.items() if v}

    def __repr__(self):
        return f"History({len(self)} epochs: {', '.join(self.history)})"


class Callback:
    """Override what you need; return True from ``on_epoch_end`` to stop training."""

    def on_train_begin(self, trainer):
        pass

    def on_batch_end(self, trainer, epoch, batch, loss):
        pass

    def on_epoch_end(self, trainer, epoch, logs):
        return False

    def on_train_end(self, trainer):
        pass


class TerminateOnNaN(Callback):
    """Stop with a clear message, naming epoch and batch, when the cost is NaN or infinite."""

    def on_batch_end(self, trainer, epoch, batch, loss):
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"the training cost became {loss} at epoch {epoch + 1}, batch {batch + 1}; "
                f"lower the learning rate, scale the inputs, or clip the gradients (clip_norm)"
            )


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best=True`` the parameters and running statistics of the
    best epoch are put back.
    """

    def __init__(self, monitor="val_loss", patience=10, min_delta=0.0, mode="auto", restore_best=True):
        self.monitor, self.patience, self.min_delta, self.restore_best = monitor, int(patience), float(min_delta), restore_best
        if mode == "auto":
            mode = "max" if any(s in monitor for s in ("accuracy", "r2")) else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min', 'max' or 'auto', not {mode!r}")
        self.mode = mode

    def on_train_begin(self, trainer):
        self.best, self.best_epoch, self.wait, self._best_params, self.stopped_epoch = None, None, 0, None, None
        self._best_state = None

    def _better(self, v):
        if self.best is None:
            return True
        return v < self.best - self.min_delta if self.mode == "min" else v > self.best + self.min_delta

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs or logs[self.monitor] is None:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r} but the logs hold {sorted(logs)}; "
                f"give validation data or monitor 'loss'"
            )
        v = logs[self.monitor]
        if self._better(v):
            self.best, self.best_epoch, self.wait = v, epoch, 0
            if self.restore_best:
                self._best_params = trainer.get_flat_params().copy()
                self._best_state = tree_map(np.copy, trainer.model.state)  # running statistics of that epoch
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, trainer):
        if self.restore_best and self._best_params is not None:
            trainer.set_flat_params(self._best_params)
            trainer.model.state = self._best_state


class Checkpoint(Callback):
    """Save the trainer (parameters, optimizer state, RNG, history) every ``every`` epochs,
    or only when ``monitor`` improves if ``save_best_only``."""

    def __init__(self, path, every=1, save_best_only=False, monitor="val_loss", mode="auto"):
        self.path, self.every, self.save_best_only = path, int(every), save_best_only
        self._tracker = EarlyStopping(monitor, patience=1 << 30, mode=mode, restore_best=False) if save_best_only else None

    def on_train_begin(self, trainer):
        if self._tracker:
            self._tracker.on_train_begin(trainer)

    def on_epoch_end(self, trainer, epoch, logs):
        if self._tracker is not None:
            before = self._tracker.best_epoch
            self._tracker.on_epoch_end(trainer, epoch, logs)
            if self._tracker.best_epoch != before:
                trainer.save(self.path)
        elif (epoch + 1) % self.every == 0:
            trainer.save(self.path)
        return False


class ProgressBar(Callback):
    """A tqdm bar over the epochs with the cost and metrics; silent unless stderr is a terminal
    (or ``force=True``)."""

    def __init__(self, force=False, file=None):
        self.force, self.file, self._bar = force, file, None

    def on_train_begin(self, trainer):
        file = self.file or sys.stderr
        if not trainer.is_root or not (self.force or (hasattr(file, "isatty") and file.isatty())):
            self._bar = None
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(total=trainer._epochs_planned, initial=0, unit="epoch", file=file, leave=True, dynamic_ncols=True)

    def on_epoch_end(self, trainer, epoch, logs):
        if self._bar is not None:
            show = {k: v for k, v in logs.items() if k not in ("epoch", "time", "lr") and isinstance(v, float)}
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in show.items()}, refresh=False)
            self._bar.update(1)
        return False

    def on_train_end(self, trainer):
        if self._bar is not None:
            self._bar.close()

