"""Networks: layers, activations, initializers, models."""

from . import init
from .activations import ACTIVATIONS, ActivationFunction, get_activation, log_sigmoid, log_softmax, sigmoid, softmax
from .layers import MLP, Activation, BatchNorm, Dense, Dropout, Layer, LayerNorm, Sequential, layer_from_config

__all__ = [
    "ACTIVATIONS", "MLP", "Activation", "ActivationFunction", "BatchNorm", "Dense", "Dropout", "Layer", "LayerNorm", "Sequential",
    "get_activation", "init", "layer_from_config", "log_sigmoid", "log_softmax", "sigmoid", "softmax",
]
