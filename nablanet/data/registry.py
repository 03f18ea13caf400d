"""One entry point for every data set: :func:`load_dataset` by name, and :func:`split_scale`.

``DATASETS`` maps each name to ``(loader, task, description)``. Every loader
takes the keyword arguments ``n, noise, seed, path`` and returns
``(X, y, X_test, y_test)`` (the test arrays are ``None`` unless the data set
comes with its own test split).

Semantics of the options, per family:

* synthetic (franke, runge, runge2d, polynomial): ``n`` points (default
  1000) drawn with ``seed``; ``noise`` is the standard deviation of Gaussian
  noise added to ``y``.
* logic gates (xor, and, or): always the 4 rows; ``n`` must be ``None`` or 4,
  ``noise`` must be 0.
* scikit-learn sets (breast_cancer, digits, iris, wine, diabetes): the whole
  set, or with ``n`` a random subset of ``n`` rows chosen by ``seed`` (kept in
  the original order). ``noise`` is allowed only for the regression set
  diabetes (Gaussian noise on ``y``, drawn with ``seed``).
* mnist, fashion_mnist: read from IDX files (``path`` = their directory, see
  :func:`nablanet.data.real.load_mnist`); ``n`` keeps the first ``n``
  training rows while the predefined 10000-row test split is always kept
  whole (slice ``ds.X_test`` yourself for a smaller one); ``noise`` must be 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import validate as V
from . import synthetic
from .real import SKLEARN_DATASETS, load_mnist, load_sklearn

__all__ = ["DATASETS", "Dataset", "load_dataset", "split_scale"]

_GATES = ("xor", "and", "or")


@dataclass(repr=False)
class Dataset:
    """A loaded data set.

    Attributes
    ----------
    name : str
        Registry name.
    X : numpy.ndarray, shape (n, d)
        Features, rows are samples (the training part when ``X_test`` is set).
    y : numpy.ndarray, shape (n,)
        float64 targets (regression) or int64 labels 0..n_classes-1 (classification).
    task : {"regression", "classification"}
        What ``y`` is.
    n_classes : int or None
        Number of classes; ``None`` for regression.
    description : str
        One line saying what the data are.
    X_test, y_test : numpy.ndarray or None
        A predefined test split (MNIST-like sets); ``None`` otherwise.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    task: str
    n_classes: int | None
    description: str
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    def __repr__(self):
        test = "" if self.X_test is None else f", X_test={self.X_test.shape}"
        classes = "" if self.n_classes is None else f", n_classes={self.n_classes}"
        return f"Dataset({self.name!r}, {self.task}, X={self.X.shape} {self.X.dtype}{test}{classes})"


# ---------------------------------------------------------------------------------------------------------------------
# loaders: (n, noise, seed, path) -> (X, y, X_test, y_test)


def _synthetic(fn):
    def loader(n=None, noise=0.0, seed=0, path=None):
        X, y = fn(n=1000 if n is None else n, noise=noise, seed=seed)
        return X, y, None, None

    loader.__name__ = f"load_{fn.__name__}"
    return loader


def _gate(kind):
    def loader(n=None, noise=0.0, seed=0, path=None):
        if n is not None and n != 4:
            raise ValueError(f"the {kind!r} gate has exactly 4 rows; got n={n}")
        if noise:
            raise ValueError(f"noise does not apply to the {kind!r} gate (classification)")
        X, y = synthetic.logic_gate(kind)
        return X, y, None, None

    loader.__name__ = f"load_{kind}_gate"
    return loader


def _sklearn(name):
    def loader(n=None, noise=0.0, seed=0, path=None):
        regression = SKLEARN_DATASETS[name] == "regression"
        if noise and not regression:
            raise ValueError(f"noise applies only to regression data sets; {name!r} is a classification set")
        X, y = load_sklearn(name)
        rng = np.random.default_rng(seed)
        if n is not None:
            if not 0 < n <= len(X):
                raise ValueError(f"n must be in 1..{len(X)} for {name!r}, got {n}")
            rows = np.sort(rng.choice(len(X), size=n, replace=False))
            X, y = X[rows], y[rows]
        if noise:
            y = y + noise * rng.standard_normal(len(y))
        return X, y, None, None

    loader.__name__ = f"load_{name}"
    return loader


def _mnist(fashion):
    name = "fashion_mnist" if fashion else "mnist"

    def loader(n=None, noise=0.0, seed=0, path=None):
        if noise:
            raise ValueError(f"noise does not apply to {name!r} (classification)")
        X, y = load_mnist(path, kind="train", fashion=fashion)
        if n is not None:
            if not 0 < n <= len(X):
                raise ValueError(f"n must be in 1..{len(X)} for {name!r}, got {n}")
            X, y = X[:n].copy(), y[:n].copy()
        X_test, y_test = load_mnist(path, kind="test", fashion=fashion)
        return X, y, X_test, y_test

    loader.__name__ = f"load_{name}"
    return loader


#: name -> (loader, task, one-line description)
DATASETS = {
    "franke": (_synthetic(synthetic.franke), "regression", "Franke function on [0,1]^2: 2 features, smooth surface"),
    "runge": (_synthetic(synthetic.runge), "regression", "Runge function 1/(1+25x^2) on [-1,1]: 1 feature"),
    "runge2d": (_synthetic(synthetic.runge2d), "regression", "2-d Runge function on [0,1]^2: 2 features"),
    "polynomial": (_synthetic(synthetic.polynomial), "regression", "quadratic 2 - x + 0.5x^2 on [-1,1]: 1 feature"),
    "xor": (_gate("xor"), "classification", "XOR gate: 4 rows, 2 binary inputs, 2 classes"),
    "and": (_gate("and"), "classification", "AND gate: 4 rows, 2 binary inputs, 2 classes"),
    "or": (_gate("or"), "classification", "OR gate: 4 rows, 2 binary inputs, 2 classes"),
    "breast_cancer": (_sklearn("breast_cancer"), "classification", "Wisconsin breast cancer: 569 x 30, 2 classes"),
    "digits": (_sklearn("digits"), "classification", "8x8 handwritten digits: 1797 x 64, 10 classes"),
    "iris": (_sklearn("iris"), "classification", "Fisher's iris: 150 x 4, 3 classes"),
    "wine": (_sklearn("wine"), "classification", "wine recognition: 178 x 13, 3 classes"),
    "diabetes": (_sklearn("diabetes"), "regression", "diabetes progression: 442 x 10, real-valued target"),
    "mnist": (_mnist(False), "classification", "MNIST handwritten digits from IDX files: 60000+10000 x 784, 10 classes"),
    "fashion_mnist": (_mnist(True), "classification", "Fashion-MNIST from IDX files: 60000+10000 x 784, 10 classes"),
}

_FIXED_N_CLASSES = {"mnist": 10, "fashion_mnist": 10, "xor": 2, "and": 2, "or": 2}


def load_dataset(name, n=None, noise=0.0, seed=0, path=None):
    """Load a data set by name.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS` (case-insensitive; ``-`` is read as ``_``).
    n : int, optional
        Number of rows; see the module docstring for its meaning per family
        (synthetic: points drawn, default 1000; scikit-learn sets: a seeded
        random subset; mnist/fashion_mnist: the first ``n`` training rows,
        test split kept whole; gates: must be 4 or ``None``).
    noise : float
        Standard deviation of Gaussian noise on ``y``; regression sets only.
    seed : int or numpy.random.Generator
        Seed for drawing points, subsets and noise.
    path : str or os.PathLike, optional
        Directory of the IDX files for ``mnist`` / ``fashion_mnist``.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        For an unknown name (the message lists the available ones) or an
        option that does not apply.
    FileNotFoundError
        When the IDX files of an MNIST-like set are not found.

    Examples
    --------
    >>> ds = load_dataset("franke", n=200, noise=0.1, seed=1)
    >>> ds.X.shape, ds.task
    ((200, 2), 'regression')
    """
    key = str(name).lower().replace("-", "_")
    if key not in DATASETS:
        raise V.InvalidValueError(f"unknown data set {name!r}; available: {', '.join(DATASETS)}")
    n = V.Optional(V.positive_int)(n, "n")
    if n is not None:  # a synthetic set draws n rows of a few float64 columns: refused before, not after, swapping
        V.affordable(n, 64, f"{key} with n={n}")
    noise = V.non_negative_number(noise, "noise")
    seed = V.seed(seed, "seed")
    loader, task, description = DATASETS[key]
    X, y, X_test, y_test = loader(n=n, noise=noise, seed=seed, path=path)
    n_classes = None
    if task == "classification":
        n_classes = _FIXED_N_CLASSES.get(key)
        if n_classes is None:
            n_classes = int(max(y.max(), -1 if y_test is None else y_test.max())) + 1
    return Dataset(key, X, y, task, n_classes, description, X_test, y_test)


def _make_scaler(scale):
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    if scale is None or scale == "none":  # (the command line's --scale none)
        return None
    if scale == "standard":
        return StandardScaler()
    if scale == "minmax":
        return MinMaxScaler()
    raise ValueError(f"scale must be 'standard', 'minmax' or None ('none'), got {scale!r}")


def check_split(ds, test_size):
    """Refuse a split of ``ds`` that leaves fewer than 2 rows on a side (one row has no spread: R², accuracy
    and scaling mean nothing), naming the data set, the rows and ``test_size``; sets with their own test
    split (MNIST) or none (the logic gates) always pass."""
    if ds.X_test is not None or ds.name in _GATES:
        return
    n = len(ds.X)
    n_test = test_size if isinstance(test_size, int) else int(np.ceil(test_size * n))  # scikit-learn's count
    if n_test < 2 or n - n_test < 2:
        raise V.InvalidValueError(f"{ds.name}: {n} rows split with test_size={test_size} leave {n - n_test} for "
                                  f"training and {n_test} for testing; each side needs at least 2 (more rows, "
                                  f"n, or another test_size)")


def split_scale(ds, test_size=0.2, scale="standard", seed=0):
    """Split a :class:`Dataset` into train and test parts and scale the features.

    * A data set with a predefined test split (``ds.X_test`` set, e.g. MNIST)
      uses it; ``test_size`` and ``seed`` are then ignored.
    * The logic gates (xor, and, or) are not split: with only 4 rows, train
      and test are both the same 4 rows (copies).
    * Otherwise scikit-learn's ``train_test_split`` with ``random_state=seed``,
      stratified by label for classification whenever every class has enough
      rows for that (else an unstratified split).

    The scaler is fitted on the training part only and then applied to both
    parts, so nothing about the test rows leaks into the training features.
    Targets are never scaled.

    Parameters
    ----------
    ds : Dataset
        From :func:`load_dataset`.
    test_size : float or int
        Fraction (or number) of rows for the test part.
    scale : {"standard", "minmax", None}
        ``StandardScaler`` (mean 0, std 1 per feature on the training part),
        ``MinMaxScaler`` ([0, 1] on the training part) or no scaling (None,
        or ``"none"`` as on the command line).
    seed : int
        ``random_state`` of the split.

    Returns
    -------
    X_train, X_test, y_train, y_test : numpy.ndarray
    scaler : sklearn.preprocessing.StandardScaler or MinMaxScaler or None
        The fitted scaler (``scaler.transform`` new data the same way), or
        ``None`` when ``scale`` is ``None``.
    """
    from sklearn.model_selection import train_test_split

    if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        test_size = V.Whole(1, len(ds.X) - 1)(test_size, "test_size")
    else:
        test_size = V.open_fraction(test_size, "test_size")
    scaler = _make_scaler(scale)
    if ds.X_test is not None:
        X_train, X_test, y_train, y_test = ds.X, ds.X_test, ds.y, ds.y_test
    elif ds.name in _GATES:
        X_train, X_test, y_train, y_test = ds.X.copy(), ds.X.copy(), ds.y.copy(), ds.y.copy()
    else:
        check_split(ds, test_size)
        parts = None
        if ds.task == "classification":
            try:
                parts = train_test_split(ds.X, ds.y, test_size=test_size, random_state=seed, stratify=ds.y)
            except ValueError:  # a class too small to appear on both sides
                parts = None
        if parts is None:
            parts = train_test_split(ds.X, ds.y, test_size=test_size, random_state=seed)
        X_train, X_test, y_train, y_test = parts
    if scaler is not None:
        X_train = scaler.fit_transform(X_train)
        X_test = scaler.transform(X_test)
    return X_train, X_test, y_train, y_test, scaler
