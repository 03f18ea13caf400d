"""Training: the loop, callbacks, metrics and checkpoints."""

from .callbacks import (
    Callback,
    Checkpoint,
    CSVLogger,
    EarlyStopping,
    History,
    LambdaCallback,
    LearningRateScheduler,
    ProgressBar,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from .checkpoint import save
from .loop import Trainer, evaluate, fit, load, predict, prepare_data
from .metrics import METRICS, compute_metric

__all__ = [
    "Callback", "Checkpoint", "EarlyStopping", "History", "ProgressBar", "TerminateOnNaN",
    "CSVLogger", "LambdaCallback", "LearningRateScheduler", "ReduceLROnPlateau",
    "METRICS", "Trainer", "compute_metric", "evaluate", "fit", "load", "predict", "prepare_data", "save",
]
