"""Optimizers and learning-rate schedules, pure updates on arrays and pytrees."""

from .optimizers import GD, OPTIMIZERS, SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, get_optimizer
from .schedules import (
    RUN_SCHEDULES,
    Schedule,
    constant,
    cosine,
    exponential,
    for_run,
    get_schedule,
    inverse_time,
    step_decay,
    warmup,
)

__all__ = [
    "GD", "OPTIMIZERS", "SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "get_optimizer",
    "RUN_SCHEDULES", "Schedule", "for_run", "constant", "cosine", "exponential", "get_schedule", "inverse_time",
    "step_decay", "warmup",
]
