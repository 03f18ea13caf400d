"""Training: the loop, callbacks, metrics and checkpoints."""

from .callbacks import Callback, Checkpoint, EarlyStopping, History, ProgressBar, TerminateOnNaN
from .checkpoint import save
from .loop import Trainer, evaluate, fit, load, predict, prepare_data
from .metrics import METRICS, compute_metric

__all__ = [
    "Callback", "Checkpoint", "EarlyStopping", "History", "ProgressBar", "TerminateOnNaN",
    "METRICS", "Trainer", "compute_metric", "evaluate", "fit", "load", "predict", "prepare_data", "save",
]
