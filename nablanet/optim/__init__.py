"""Optimizers and learning-rate schedules, pure updates on arrays and pytrees."""

from .optimizers import GD, OPTIMIZERS, SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, get_optimizer
from .schedules import (
    RUN_SCHEDULE_ALIASES,
    RUN_SCHEDULES,
    Schedule,
    constant,
    cosine,
    exponential,
    for_run,
    get_schedule,
    inverse_time,
    run_schedule,
    step_decay,
    warmup,
)
from .second_order import FULL_BATCH, LBFGS, FullBatchOptimizer, HessianFree, Newton, Objective

OPTIMIZERS.update(FULL_BATCH)  # the full-batch methods by name too: get_optimizer("lbfgs")

__all__ = [
    "GD", "OPTIMIZERS", "SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "get_optimizer",
    "RUN_SCHEDULES", "RUN_SCHEDULE_ALIASES", "run_schedule", "Schedule", "for_run", "constant", "cosine",
    "exponential", "get_schedule", "inverse_time", "step_decay", "warmup",
    "FULL_BATCH", "FullBatchOptimizer", "LBFGS", "Newton", "HessianFree", "Objective",
]
