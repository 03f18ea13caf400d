"""Metrics by name, on model outputs: accuracy, R², mean squared and mean absolute error.

They are scikit-learn's ``accuracy_score``, ``r2_score``, ``mean_squared_error`` and ``mean_absolute_error``
(several outputs: the mean over the outputs; R² of a constant target: 1 for an exact prediction, else 0; R² of
fewer than two samples: NaN), computed with the same NumPy reductions in the same order, so they agree to the bit
(``tests/test_losses_optim.py`` checks it), without scikit-learn's checks of its arguments: about 0.2-0.3 ms a
call, which training pays for every metric on every split each epoch (a fifth of a 30-epoch breast-cancer fit).
"""

from __future__ import annotations

import numpy as np

__all__ = ["METRICS", "accuracy", "check_metric", "check_metrics", "compute_metric", "mae", "mse", "r2", "to_labels"]

METRICS = ("accuracy", "r2", "mse", "mae")


def _same_length(a, b, what):
    if len(a) != len(b):
        raise ValueError(f"{what}: {len(a)} targets and {len(b)} predictions (one per sample each)")


def accuracy(y, labels):
    """The fraction of samples whose predicted label equals the target label (NaN for no sample)."""
    y, labels = np.asarray(y).reshape(-1), np.asarray(labels).reshape(-1)
    _same_length(y, labels, "accuracy")
    return float(np.average(y == labels)) if len(y) else float("nan")


def _columns(y, pred, what):
    """Targets and predictions as float64 columns (one per output), of one shape."""
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    y, pred = (a.reshape(-1, 1) if a.ndim == 1 else a for a in (y, pred))
    _same_length(y, pred, what)
    if y.shape != pred.shape:
        raise ValueError(f"{what}: targets of shape {y.shape} and predictions of shape {pred.shape}")
    return y, pred


def mse(y, pred):
    """Mean squared error; with several outputs, the mean of each output's."""
    y, pred = _columns(y, pred, "mse")
    return float(np.average(np.average((y - pred) ** 2, axis=0)))


def mae(y, pred):
    """Mean absolute error; with several outputs, the mean of each output's."""
    y, pred = _columns(y, pred, "mae")
    return float(np.average(np.average(np.abs(y - pred), axis=0)))


def r2(y, pred):
    """The coefficient of determination 1 - SS_res / SS_tot; with several outputs, the mean of each output's.

    A constant target (SS_tot = 0) scores 1 when predicted exactly and 0 otherwise; fewer than two samples, NaN."""
    y, pred = _columns(y, pred, "r2")
    if len(y) < 2:
        return float("nan")
    num = ((y - pred) ** 2).sum(axis=0)
    den = ((y - np.average(y, axis=0)) ** 2).sum(axis=0)
    score = np.ones(y.shape[1])
    valid = (den != 0) & (num != 0)
    score[valid] = 1 - num[valid] / den[valid]
    score[(num != 0) & (den == 0)] = 0.0
    return float(np.average(score))


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


def check_metrics(metrics, task, name="metrics"):
    """``metrics`` as a list of metric names, each checked (:func:`check_metric`): one name (``"r2"``) is one
    metric, never its letters; ``None`` is none; anything else but a list of names is refused, naming ``name``."""
    from ..validate import InvalidTypeError

    if metrics is None:
        return []
    if isinstance(metrics, str):
        metrics = [metrics]
    elif isinstance(metrics, (dict, bytes)) or not hasattr(metrics, "__iter__"):
        raise InvalidTypeError(f"{name}: expected a metric name ({', '.join(METRICS)}) or a list of them, "
                               f"got {metrics!r:.60}")
    metrics = list(metrics)
    for m in metrics:
        if not isinstance(m, str):
            raise InvalidTypeError(f"{name}: expected metric names ({', '.join(METRICS)}), got {m!r:.60}")
        check_metric(m, task)
    return metrics


def compute_metric(name, outputs, y, task):
    """``name`` of the model's ``outputs`` (after the output activation) against targets ``y``."""
    if not np.isfinite(np.asarray(outputs, dtype=np.float64)).all():
        raise FloatingPointError(f"the network's outputs are NaN or infinite, so {name} cannot be computed: "
                                 f"training diverged; lower the learning rate, scale the inputs, or clip the gradients")
    if name == "accuracy":
        if task == "regression":
            raise ValueError("accuracy is a classification metric; use r2, mse or mae for regression")
        yt = y if np.ndim(y) == 1 else (np.asarray(y).argmax(1) if np.shape(y)[1] > 1 else np.ravel(y))
        return accuracy(np.asarray(yt).astype(np.int64), to_labels(outputs))
    outputs = np.asarray(outputs, dtype=np.float64).reshape(np.shape(y))
    if name in ("r2", "mse", "mae"):
        return {"r2": r2, "mse": mse, "mae": mae}[name](y, outputs)
    raise ValueError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
