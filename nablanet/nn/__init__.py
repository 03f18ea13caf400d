"""Networks: layers, activations, initializers, models."""

from . import init
from .activations import ACTIVATIONS, get_activation, log_softmax, softmax
from .layers import MLP, Activation, BatchNorm, Dense, Dropout, Layer, LayerNorm, Sequential, layer_from_config

__all__ = [
    "ACTIVATIONS", "MLP", "Activation", "BatchNorm", "Dense", "Dropout", "Layer", "LayerNorm", "Sequential",
    "get_activation", "init", "layer_from_config", "log_softmax", "softmax",
]
