"""Metrics by name, computed with scikit-learn on model outputs."""

from __future__ import annotations

import numpy as np

__all__ = ["METRICS", "check_metric", "compute_metric", "to_labels"]

METRICS = ("accuracy", "r2", "mse", "mae")


def to_labels(outputs):
    """Class labels from network outputs: the arg-max row-wise, or a 0.5 threshold on one column."""
    outputs = np.asarray(outputs)
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        return outputs.argmax(axis=1)
    return (outputs.reshape(-1) > 0.5).astype(np.int64)


def check_metric(name, task):
    """Fail early, before training, on an unknown metric or one that does not fit the task."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    if name == "accuracy" and task == "regression":
        raise ValueError("accuracy is a classification metric; use r2, mse or mae for regression")


def compute_metric(name, outputs, y, task):
    """``name`` of the model's ``outputs`` (after the output activation) against targets ``y``."""
    from sklearn import metrics as skm

    if not np.isfinite(np.asarray(outputs, dtype=np.float64)).all():
        raise FloatingPointError(f"the network's outputs are NaN or infinite, so {name} cannot be computed: "
                                 f"training diverged; lower the learning rate, scale the inputs, or clip the gradients")
    if name == "accuracy":
        if task == "regression":
            raise ValueError("accuracy is a classification metric; use r2, mse or mae for regression")
        yt = y if np.ndim(y) == 1 else (np.asarray(y).argmax(1) if np.shape(y)[1] > 1 else np.ravel(y))
        return float(skm.accuracy_score(np.asarray(yt).astype(np.int64), to_labels(outputs)))
    outputs = np.asarray(outputs, dtype=np.float64).reshape(np.shape(y))
    if name == "r2":
        return float(skm.r2_score(y, outputs))
    if name == "mse":
        return float(skm.mean_squared_error(y, outputs))
    if name == "mae":
        return float(skm.mean_absolute_error(y, outputs))
    raise ValueError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
