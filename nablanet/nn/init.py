"""Weight initializers.  Each is ``init(shape, rng, dtype) -> array`` with
``shape = (fan_in, fan_out)`` for a dense layer's W.

As the notes point out, equal weights never break the symmetry between hidden
units (every unit computes, and is updated, the same), so weights start
random, scaled by the layer's fan-in/fan-out:

=================  ==================================================
name               weights and biases
=================  ==================================================
fan_in_uniform     U(-1/sqrt(fan_in), 1/sqrt(fan_in)), Var = 1/(3 fan_in),
                   for the weights and the biases (nablanet's default
                   ``"auto"``, and PyTorch's ``nn.Linear`` default)
glorot / xavier    Var W = 2 / (fan_in + fan_out)   (tanh, sigmoid)
he / kaiming       Var W = 2 / fan_in               (ReLU family)
lecun              Var W = 1 / fan_in               (SELU-style)
=================  ==================================================

The default is the one that trains best on the course's problems at the
default budget (``benchmarks/bench_defaults.py``: Franke, Runge, breast
cancer, digits); its small weights and non-zero biases suit the shallow
networks used there.  For deep ReLU stacks He keeps the activations' scale
from layer to layer (Var W = 2/fan_in); name it (``init="he_uniform"``), and
the biases then start at zero.
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from .. import validate as V

__all__ = [
    "zeros", "ones", "constant", "normal", "uniform", "fan_in_uniform",
    "glorot_normal", "glorot_uniform", "xavier_normal", "xavier_uniform",
    "he_normal", "he_uniform", "kaiming_normal", "kaiming_uniform", "lecun_normal",
    "get_initializer", "INITIALIZERS",
]


def _fans(shape):
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], shape[-1]


def constant(value):
    """Every entry equal to ``value`` (a finite number)."""
    value = V.finite_number(value, "initializer constant: value")
    def init(shape, rng, dtype=np.float32):
        return np.full(shape, value, dtype=dtype)
    init.config = {"name": "constant", "value": float(value)}
    return init


def zeros(shape, rng=None, dtype=np.float32):
    return np.zeros(shape, dtype=dtype)


def ones(shape, rng=None, dtype=np.float32):
    return np.ones(shape, dtype=dtype)


def normal(std=0.01, mean=0.0):
    """Gaussian entries N(mean, std^2); ``std`` >= 0 (0: every entry ``mean``, the equal weights whose symmetry
    the notes show) and ``mean`` finite."""
    std = V.non_negative_number(std, "initializer normal: std")
    mean = V.finite_number(mean, "initializer normal: mean")
    def init(shape, rng, dtype=np.float32):
        return (mean + std * rng.standard_normal(shape)).astype(dtype)
    init.config = {"name": "normal", "std": float(std), "mean": float(mean)}
    return init


def uniform(low=-0.05, high=0.05):
    """Uniform entries on [low, high), finite bounds with ``low <= high`` (equal: every entry ``low``, the equal
    weights whose symmetry the notes show)."""
    low = V.finite_number(low, "initializer uniform: low")
    high = V.finite_number(high, "initializer uniform: high")
    if not low <= high:
        raise V.InvalidValueError(f"initializer uniform: expected low <= high, got low={low:g}, high={high:g}")
    def init(shape, rng, dtype=np.float32):
        return rng.uniform(low, high, size=shape).astype(dtype)
    init.config = {"name": "uniform", "low": float(low), "high": float(high)}
    return init


def _scaled_normal(var_of_fans):
    def init(shape, rng, dtype=np.float32):
        return (math.sqrt(var_of_fans(*_fans(shape))) * rng.standard_normal(shape)).astype(dtype)
    return init


def _scaled_uniform(var_of_fans):
    def init(shape, rng, dtype=np.float32):
        limit = math.sqrt(3.0 * var_of_fans(*_fans(shape)))  # Var U(-l, l) = l^2 / 3
        return rng.uniform(-limit, limit, size=shape).astype(dtype)
    return init


def fan_in_uniform(shape, rng, dtype=np.float32, fan_in=None):
    """Entries uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)] (Var = 1/(3 fan_in)).

    For a weight matrix of shape (fan_in, fan_out); for a bias (a 1-d shape)
    give its layer's ``fan_in`` (:class:`~nablanet.nn.Dense` does).
    """
    if fan_in is None:
        if len(shape) < 2:
            raise ValueError(f"fan_in_uniform of shape {shape}: a bias needs its layer's fan_in")
        fan_in = shape[0]
    limit = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


glorot_normal = xavier_normal = _scaled_normal(lambda i, o: 2.0 / (i + o))
glorot_uniform = xavier_uniform = _scaled_uniform(lambda i, o: 2.0 / (i + o))
he_normal = kaiming_normal = _scaled_normal(lambda i, o: 2.0 / i)
he_uniform = kaiming_uniform = _scaled_uniform(lambda i, o: 2.0 / i)
lecun_normal = _scaled_normal(lambda i, o: 1.0 / i)

INITIALIZERS = {
    "zeros": zeros, "ones": ones, "normal": normal(), "uniform": uniform(), "fan_in_uniform": fan_in_uniform,
    "glorot_normal": glorot_normal, "glorot_uniform": glorot_uniform,
    "xavier_normal": xavier_normal, "xavier_uniform": xavier_uniform,
    "he_normal": he_normal, "he_uniform": he_uniform,
    "kaiming_normal": kaiming_normal, "kaiming_uniform": kaiming_uniform,
    "lecun_normal": lecun_normal,
}
_FACTORIES = {"constant": constant, "normal": normal, "uniform": uniform}


def get_initializer(spec):
    """An initializer from a name, a dict such as ``{"name": "normal", "std": 0.1}``, or a callable."""
    if callable(spec):
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        name = spec.pop("name", None)
        if not isinstance(name, str):
            raise V.InvalidValueError(f"initializer: a dict needs a 'name' (one of {', '.join(INITIALIZERS)} or "
                                      f"constant), got {spec!r:.80}")
        if name in _FACTORIES:
            known = list(inspect.signature(_FACTORIES[name]).parameters)
            unknown = sorted(str(k) for k in spec if k not in known)
            if unknown:
                raise V.InvalidValueError(f"initializer {name!r}: unknown parameter(s) {', '.join(unknown)}; "
                                          f"it takes {', '.join(known)}")
            return _FACTORIES[name](**spec)  # each factory checks its parameters' values
        if spec:
            raise ValueError(f"initializer {name!r} takes no parameters, got {sorted(spec)}")
        spec = name
    if isinstance(spec, str) and spec in INITIALIZERS:
        return INITIALIZERS[spec]
    raise ValueError(f"unknown initializer {spec!r}; choose from {', '.join(INITIALIZERS)} or constant")


def initializer_config(spec):
    """A JSON-able description of an initializer spec (for checkpoints)."""
    if isinstance(spec, (str, dict)):
        return spec
    cfg = getattr(spec, "config", None)
    if cfg is not None:
        return cfg
    for name, f in INITIALIZERS.items():
        if f is spec:
            return name
    raise ValueError("a custom initializer function cannot be saved in a checkpoint; use a name or a dict")
