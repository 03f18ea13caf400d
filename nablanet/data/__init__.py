"""Data sets: synthetic (Franke, Runge, polynomial, logic gates), real (IDX/MNIST, scikit-learn's bundled sets), a registry,
and the polynomial design matrix for linear regression."""

from .features import design_matrix
from .real import (
    FASHION_MNIST_DEBIAN_DIR,
    MNIST_DEFAULT_DIR,
    SKLEARN_DATASETS,
    load_fashion_mnist,
    load_mnist,
    load_sklearn,
    read_idx,
)
from .registry import DATASETS, Dataset, load_dataset, split_scale
from .synthetic import franke, franke_function, logic_gate, polynomial, runge, runge2d, runge2d_function, runge_function

__all__ = [
    "DATASETS",
    "FASHION_MNIST_DEBIAN_DIR",
    "MNIST_DEFAULT_DIR",
    "SKLEARN_DATASETS",
    "Dataset",
    "design_matrix",
    "franke",
    "franke_function",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "load_sklearn",
    "logic_gate",
    "polynomial",
    "read_idx",
    "runge",
    "runge2d",
    "runge2d_function",
    "runge_function",
    "split_scale",
]
