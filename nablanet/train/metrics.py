"""Metrics by name, on model outputs: accuracy, R², mean squared and mean absolute error.

They are scikit-learn's ``accuracy_score``, ``r2_score``, ``mean_squared_error`` and ``mean_absolute_error``
(several outputs: the mean over the outputs; R² of a constant target: 1 for an exact prediction, else 0; R² of
fewer than two samples: NaN), computed with the same NumPy reductions in the same order and dtype, so they agree to the bit
(``tests/test_losses_optim.py`` checks it), and refusing what scikit-learn refuses (NaN, no sample, complex
numbers, a shape other than one value or row per sample, labels that are not whole numbers) with a few checks
of their own instead of its general ones: those cost 0.2-0.3 ms a call, which training pays for every metric on
every split each epoch (a fifth of a 30-epoch breast-cancer fit).
"""

from __future__ import annotations

import numpy as np

from .. import validate as V

__all__ = ["METRICS", "accuracy", "check_metric", "check_metrics", "compute_metric", "mae", "mse", "r2", "to_labels"]

METRICS = ("accuracy", "r2", "mse", "mae")


def _same_length(a, b, what):
    if len(a) != len(b):
        raise V.InvalidValueError(f"{what}: {len(a)} targets and {len(b)} predictions (one per sample each)")


def _checked(a, what, side):
    """``a`` as an array of numbers, 1-D or 2-D with some samples and outputs, finite: what scikit-learn refuses
    is refused (its message, in nablanet's words), never turned into a number."""
    a = np.asarray(a)
    if a.dtype.kind == "c" or a.dtype.kind not in "biuf" and not _numbers(a):
        raise V.InvalidValueError(f"{what}: the {side} must be real numbers, got dtype {a.dtype}")
    if a.ndim not in (1, 2) or a.size == 0:
        raise V.InvalidValueError(f"{what}: the {side} must be one value (or row of values) per sample, with at "
                                  f"least one sample, got shape {a.shape}")
    return a


def _numbers(a):
    try:
        a.astype(np.float64)
    except (TypeError, ValueError):
        return False
    return True


def accuracy(y, labels):
    """The fraction of samples whose predicted label equals the target label; one label per sample (one-hot rows:
    compare their arg-max), whole numbers or strings, alike on both sides."""
    arrays = []
    for a, side in ((y, "targets"), (labels, "predicted labels")):
        a = np.asarray(a)
        text = a.dtype.kind in "USO"
        if not text:
            a = _checked(a, "accuracy", side)
        if a.ndim not in (1, 2) or a.ndim == 2 and a.shape[1] != 1 or a.size == 0:
            raise V.InvalidValueError(f"accuracy: the {side} must be one label per sample, got shape {a.shape} "
                                      f"(for one-hot or probability rows, give their arg-max)")
        if a.dtype.kind == "f" and not (np.isfinite(a).all() and (a == np.round(a)).all()):
            raise V.InvalidValueError(f"accuracy: the {side} must be class labels (whole numbers); a value is not")
        arrays.append((a.reshape(-1), text))
    (y, y_text), (labels, labels_text) = arrays
    if y_text != labels_text:
        raise V.InvalidValueError(f"accuracy: targets of dtype {y.dtype} and labels of dtype {labels.dtype} cannot "
                                  f"be compared (numbers on one side, strings on the other)")
    _same_length(y, labels, "accuracy")
    return float(np.average(y == labels))


def _columns(y, pred, what):
    """Targets and predictions as float columns (one per output), of one shape: float32 when both are, else
    float64 (as scikit-learn computes)."""
    y, pred = _checked(y, what, "targets"), _checked(pred, what, "predictions")
    dtype = np.float32 if y.dtype == np.float32 and pred.dtype == np.float32 else np.float64
    y, pred = (a.astype(dtype, copy=False) for a in (y, pred))
    y, pred = (a.reshape(-1, 1) if a.ndim == 1 else a for a in (y, pred))
    _same_length(y, pred, what)
    if y.shape != pred.shape:
        raise V.InvalidValueError(f"{what}: targets of shape {y.shape} and predictions of shape {pred.shape}")
    for a, side in ((y, "targets"), (pred, "predictions")):
        if not np.isfinite(a).all():
            raise V.InvalidValueError(f"{what}: the {side} hold NaN or infinite values")
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
    score = np.ones(y.shape[1], dtype=y.dtype)
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
    if metrics is None:
        return []
    if isinstance(metrics, str):
        metrics = [metrics]
    elif isinstance(metrics, (dict, bytes)) or not hasattr(metrics, "__iter__"):
        raise V.InvalidTypeError(f"{name}: expected a metric name ({', '.join(METRICS)}) or a list of them, "
                               f"got {metrics!r:.60}")
    metrics = list(metrics)
    for m in metrics:
        if not isinstance(m, str):
            raise V.InvalidTypeError(f"{name}: expected metric names ({', '.join(METRICS)}), got {m!r:.60}")
        check_metric(m, task)
    return metrics


def compute_metric(name, outputs, y, task):
    """``name`` of the model's ``outputs`` (after the output activation) against targets ``y``."""
    outputs = np.asarray(outputs, dtype=np.float64)  # (once: checked here, then labelled or compared)
    if not np.isfinite(outputs).all():
        raise FloatingPointError(f"the network's outputs are NaN or infinite, so {name} cannot be computed: "
                                 f"training diverged; lower the learning rate, scale the inputs, or clip the gradients")
    if name == "accuracy":
        if task == "regression":
            raise ValueError("accuracy is a classification metric; use r2, mse or mae for regression")
        yt = y if np.ndim(y) == 1 else (np.asarray(y).argmax(1) if np.shape(y)[1] > 1 else np.ravel(y))
        return accuracy(np.asarray(yt).astype(np.int64), to_labels(outputs))
    if name in ("r2", "mse", "mae"):
        return {"r2": r2, "mse": mse, "mae": mae}[name](y, outputs.reshape(np.shape(y)))
    raise ValueError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
