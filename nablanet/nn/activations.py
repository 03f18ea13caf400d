"""Activation functions sigma(z), each with its derivative, and the dense layer fused with it.

Every activation is a differentiable elementwise primitive.  Where sigma'(z)
can be written from the output a = sigma(z) alone (identity, sigmoid, tanh,
ReLU, leaky ReLU, ELU, softplus), the activation also gets a *fused dense
primitive*::

    a = sigma(x W + b)                                  (rows are samples)

whose reverse-mode rule is the notes' delta equations, computed once per layer::

    delta = g * sigma'(z)          (g = dC/da, the adjoint arriving from above)
    dC/dx = delta W^T              (becomes g for the layer below)
    dC/dW = x^T delta
    dC/db = sum of delta over the rows

GELU (``"gelu"``, the exact ``z Phi(z) = z (1 + erf(z / sqrt 2)) / 2``; ``"gelu_tanh"``,
the tanh approximation) and SiLU need z itself, so a dense layer computes them
unfused; each GELU is ``z * gate(z)`` with the gate (erf or tanh) computed once
per step and a derivative of one node.  Convention at z = +-inf: GELU and SiLU
are products z * gate(z) whose gate has saturated to 0 or 1, and IEEE gives
inf * 0 = NaN, so GELU(-inf), SiLU(-inf) and their derivatives at +-inf are NaN
(the limits are 0, 0 and 0 or 1); a step that meets them has diverged already,
and training stops on the NaN cost (``TerminateOnNaN``).  Guarding every call
against it costs 1-4 us per call on small arrays (measured), more than the
activation itself, so it is not done.
The values of sigmoid, softplus, softmax and log-sigmoid come from the one
module of stable kernels, :mod:`nablanet.numpy._kernels`, so z = +-1000
neither overflows nor warns.
"""

from __future__ import annotations

import math

import numpy as np

from .. import numpy as anp
from .. import validate as V
from ..autodiff.core import NondiffPrimitive, Primitive, getval
from ..numpy import _kernels
from ..numpy._primitives import _bcast

__all__ = ["ActivationFunction", "get_activation", "ACTIVATIONS", "sigmoid", "softmax", "log_softmax", "log_sigmoid"]


def _same_dtype(v, ref):
    return v.astype(getval(ref).dtype, copy=False) if hasattr(getval(ref), "dtype") else v


class ActivationFunction:
    """An activation function: ``act(z)`` is differentiable; ``act.dense`` fuses it with a layer.

    (The layer that applies one on its own is :class:`nablanet.nn.Activation`.)
    A user activation is built the same way as the library's, e.g.
    ``ActivationFunction("scaled_tanh", lambda z: 2 * np.tanh(z), lambda a: 2 - a * a / 2)``;
    its own forward and derivative are what every path (engine and capture) runs.

    Parameters
    ----------
    name : str
        The registry name (``"relu"``, ``"tanh"``...).
    forward : callable
        sigma(z) on plain arrays.
    deriv : callable or None
        sigma'(z) as a function of the output a (written with differentiable
        functions so second derivatives work); ``None`` when sigma is a
        composition and needs no rule.
    compose : callable, optional
        For activations built from ``nablanet.numpy`` functions.
    """

    def __init__(self, name, forward=None, deriv=None, compose=None, **params):
        self.name = name
        self.params = params
        self.deriv = deriv
        self._forward = forward
        self._compose = compose
        self.builtin = False  # set by the registry for its own; a user's is never taken for one by name
        if compose is not None:
            self.prim = None
            self.dense = None
            return
        if forward is None or deriv is None:
            raise ValueError(f"activation {name!r}: give forward and deriv, or compose")
        p = Primitive(forward, name)
        p.defvjp(lambda ans, z: lambda g: g * deriv(ans))
        p.defjvp(lambda g, ans, z: g * deriv(ans))
        into = _INTO.get(forward)  # keyed by the function itself: a user's function is never taken for one
        if into is not None:
            p.into = into  # a captured program writes sigma(z) into a buffer
        self.prim = p
        self.dense = _fused_dense(name, forward, deriv)

    def __call__(self, z):
        if self._compose is not None:
            return self._compose(z)
        return self.prim(z)

    def __repr__(self):
        extra = "".join(f", {k}={v}" for k, v in self.params.items())
        return f"ActivationFunction({self.name!r}{extra})"

    def config(self):
        """``{"name": ..., **params}``; only the library's activations can be rebuilt from a name."""
        if not self.builtin:
            raise ValueError(
                f"activation {self.name!r} is user-defined: a configuration (checkpoint) cannot hold its code; "
                f"pickle the model instead, or register it under a name of its own"
            )
        return {"name": self.name, **self.params}

    def __reduce__(self):
        if self.builtin:  # rebuilt from its configuration: its rules are closures
            return get_activation, (self.config(),)
        return _user_activation, (self.name, self._forward, self.deriv, self._compose, self.params)


def _user_activation(name, forward, deriv, compose, params):
    return ActivationFunction(name, forward, deriv, compose, **params)


def _fused_dense(name, forward, deriv):
    identity = forward is _identity  # the library's identity only, never a user's function of that name
    into = _INTO.get(forward)  # keyed by the function itself: a user's function is never taken for one

    def dense(x, W, b):
        z = x @ W
        z += b
        return z if identity else forward(z)

    p = Primitive(dense, f"dense[{name}]")
    if identity or into is not None:
        def dense_into(out, x, W, b):
            """``dense`` computed in ``out`` (a captured program's buffer, or the caller's array)."""
            np.matmul(x, W, out=out)
            out += b
            return out if identity else into(out, out)

        p.into = dense_into

    def vjp(argnums, a, x, W, b):
        def pull(g):
            delta = g if identity else g * deriv(a)
            out = []
            for i in argnums:
                if i == 0:
                    out.append(delta @ W.T)
                elif i == 1:
                    out.append(x.T @ delta)
                else:
                    out.append(delta.sum(0))
            return out

        return pull

    def jvp_factor(a, t):
        return t if identity else deriv(a) * t

    p.defvjp_argnums(vjp)
    p.defjvp(
        lambda t, a, x, W, b: jvp_factor(a, t @ W),
        lambda t, a, x, W, b: jvp_factor(a, x @ t),
        lambda t, a, x, W, b: jvp_factor(a, _bcast(t, a)),
    )
    return p


# --------------------------------------------------------------------- the functions


def _leaky_forward(alpha):
    return lambda z: np.where(z > 0, z, alpha * z)


def _leaky_deriv(alpha):
    return lambda a: _same_dtype(np.where(getval(a) > 0, 1.0, alpha), a)


def _elu_forward(alpha):
    return lambda z: np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))


def _elu_deriv(alpha):
    # for z <= 0, a = alpha (e^z - 1) so sigma'(z) = alpha e^z = a + alpha
    return lambda a: anp.where(getval(a) > 0, 1.0, a + alpha)


# GELU, exact (``z Phi(z)``) or in the tanh form (``z (1 + tanh(u)) / 2``, u = c (z + 0.044715 z^3)),
# is z g(z) for a gate g, built as three primitives (``_gated``) so that a step computes the gate
# (erf or tanh) once: the gate is a value without derivative that the forward and the derivative
# both read, ``z * gate`` is the activation with derivative ``g + z g'`` (one node, computed in
# place from z and the gate), and that node's own rule (the second derivative) is written with
# differentiable functions, so every order is exact.
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_C = math.sqrt(2.0 / math.pi)
_TANH_A = 0.044715


def _gated(name, gate_into, deriv_into, second, gate_name, deriv_name):
    """``z -> z * gate(z)`` from the gate computed into an array, the derivative ``(z, gate) -> g + z g'``
    computed into an array, and the second derivative written with differentiable functions of z."""
    def gate_fun(z):
        return gate_into(np.empty(np.shape(z), np.result_type(z, 1.0)), z)

    def deriv_fun(z, gate):
        return deriv_into(np.empty(np.broadcast_shapes(np.shape(z), np.shape(gate)), np.result_type(z, gate)), z, gate)

    gate_p = NondiffPrimitive(gate_fun, gate_name)
    gate_p.into = gate_into
    deriv_p = Primitive(deriv_fun, deriv_name)
    deriv_p.into = deriv_into
    deriv_p.defvjp(lambda ans, z, gate: lambda g: g * second(z))
    deriv_p.defjvp(lambda t, ans, z, gate: t * second(z))
    prod_p = Primitive(np.multiply, name)  # z * gate: a ufunc, so a captured program writes it into a buffer
    prod_p.defvjp(lambda ans, z, gate: lambda g: g * deriv_p(z, gate))
    prod_p.defjvp(lambda t, ans, z, gate: t * deriv_p(z, gate))

    def act(z):
        return prod_p(z, gate_p(z))

    return act


def _gelu_cdf_into(out, z):
    from scipy.special import erf  # SciPy loads on first use, not with nablanet

    np.multiply(z, _INV_SQRT2, out=out)
    erf(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def _gelu_deriv_into(out, z, cdf):
    """GELU's derivative ``Phi(z) + z phi(z)`` from ``cdf`` = Phi(z)."""
    np.multiply(z, z, out=out)
    out *= -0.5
    np.exp(out, out=out)
    out *= z
    out *= _INV_SQRT2PI
    out += cdf
    return out


def _gelu_second(z):
    """phi(z) (2 - z^2)."""
    return anp.exp(-0.5 * z * z) * (_INV_SQRT2PI * (2.0 - z * z))


def _gelu_tanh_gate_into(out, z):
    """``(1 + tanh(c (z + 0.044715 z^3))) / 2``, the products in the order the composition makes them."""
    np.multiply(z, _TANH_A, out=out)
    out *= z
    out *= z
    out += z
    out *= _TANH_C
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def _gelu_tanh_deriv_into(out, z, gate):
    """``g + z g'`` from the gate g = (1 + tanh u) / 2: g' = (1 - tanh^2 u) u' / 2 = 2 g (1 - g) u',
    with u' = c (1 + 3 * 0.044715 z^2).  The factor g (1 - g) z comes first: it is 0 where the gate
    saturates, so z^2 or z^3 never overflows (2c (z^2 + 3 * 0.044715 z^3) overflowed from |z| = 1.5e13
    in float32, and inf * 0 made the derivative nan where it is 1 or 0)."""
    h = np.subtract(1.0, gate)
    h *= gate
    h *= z  # g (1 - g) z
    np.multiply(h, z, out=out)
    out *= z
    out *= 3.0 * _TANH_A
    out += h
    out *= 2.0 * _TANH_C  # 2 g (1 - g) z u'
    out += gate
    return out


def _gelu_tanh_second(z):
    """(1 - t^2) (u' - z t u'^2 + z u''/2) with t = tanh u, written with differentiable functions."""
    u1 = _TANH_C * (1.0 + 3.0 * _TANH_A * z * z)
    t = anp.tanh(_TANH_C * (z + _TANH_A * z * z * z))
    q = 1.0 - t * t  # 0 where the gate saturates: the factor that every term takes first, so no power of z overflows
    qz = q * z
    return q * u1 - qz * t * u1 * u1 + (3.0 * _TANH_A * _TANH_C) * qz * z


_gelu = _gated("gelu", _gelu_cdf_into, _gelu_deriv_into, _gelu_second, "gelu_cdf", "gelu_derivative")
_gelu.__doc__ = "``z Phi(z) = z (1 + erf(z / sqrt 2)) / 2``."
_gelu_tanh = _gated("gelu_tanh", _gelu_tanh_gate_into, _gelu_tanh_deriv_into, _gelu_tanh_second, "gelu_tanh_gate",
                    "gelu_tanh_derivative")
_gelu_tanh.__doc__ = "``z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) / 2``."


def _silu(z):
    return z * _SIGMOID(z)


_softmax_p = Primitive(_kernels.softmax, "softmax")
_softmax_p.defvjp(lambda a, z, axis=-1: lambda g: a * (g - anp.sum(g * a, axis=axis, keepdims=True)))
_softmax_p.defjvp(lambda t, a, z, axis=-1: a * (t - anp.sum(t * a, axis=axis, keepdims=True)))


def softmax(z, axis=-1):
    """exp(z) / sum(exp(z)) along ``axis``, computed with the maximum subtracted."""
    return _softmax_p(z, axis=axis)


def log_softmax(z, axis=-1):
    """z - logsumexp(z) along ``axis``."""
    return z - anp.logsumexp(z, axis=axis, keepdims=True)


def log_sigmoid(z):
    """``log sigmoid(z) = -softplus(-z)``, exact in both tails; its derivative is ``sigmoid(-z)``."""
    return _log_sigmoid_p(z)


_log_sigmoid_p = Primitive(_kernels.log_sigmoid, "log_sigmoid")
_log_sigmoid_p.defvjp(lambda ans, z: lambda g: g * sigmoid(-z))
_log_sigmoid_p.defjvp(lambda g, ans, z: g * sigmoid(-z))

_SIGMOID = None  # set below; SiLU and sigmoid() refer to it


def _identity(z):
    return z


def _relu(z):
    """``max(z, 0)``; see :func:`_relu_into`."""
    if type(z) is np.ndarray and z.size >= 4096 and z.dtype.kind == "f":
        return np.maximum(z, np.zeros(z.shape[-1], z.dtype))
    return np.maximum(z, 0)


def _relu_into(out, z):
    """``max(z, 0)`` in ``out``.  For a float array of some size the 0 is a row of zeros broadcast along
    the last axis, the same bits: NumPy's ``maximum`` with a scalar operand runs a loop 2-3x slower than
    with two arrays (89 against 31 us on a 256x1024 float32 block, 6.3 against 3.6 on 128x128; NumPy 2.4)."""
    if z.size >= 4096 and z.dtype.kind == "f":
        return np.maximum(z, np.zeros(z.shape[-1], z.dtype), out=out)
    return np.maximum(z, 0, out=out)


# sigma(z) written into an array (which may be z's own memory), the same calls as the forward functions make
_INTO = {_relu: _relu_into, np.tanh: lambda out, z: np.tanh(z, out=out)}


def _one(a):
    return 1.0


def _build(name, **params):
    act = _build_unmarked(name, **params)
    act.builtin = True
    return act


def _build_unmarked(name, **params):
    if name in ("identity", "linear", None):
        return ActivationFunction("identity", _identity, _one)
    if name == "sigmoid":
        return ActivationFunction("sigmoid", _kernels.sigmoid, lambda a: a * (1.0 - a))
    if name == "tanh":
        return ActivationFunction("tanh", np.tanh, lambda a: 1.0 - a * a)
    if name == "relu":
        return ActivationFunction("relu", _relu, lambda a: getval(a) > 0)
    if name == "leaky_relu":
        alpha = float(params.get("alpha", 0.01))
        if alpha <= 0:
            raise ValueError(f"leaky_relu: alpha must be positive, got {alpha}")
        return ActivationFunction("leaky_relu", _leaky_forward(alpha), _leaky_deriv(alpha), alpha=alpha)
    if name == "elu":
        alpha = float(params.get("alpha", 1.0))
        if alpha <= 0:
            raise ValueError(f"elu: alpha must be positive, got {alpha}")
        return ActivationFunction("elu", _elu_forward(alpha), _elu_deriv(alpha), alpha=alpha)
    if name == "softplus":
        return ActivationFunction("softplus", _kernels.softplus, lambda a: -anp.expm1(-a))
    if name == "gelu":
        return ActivationFunction("gelu", compose=_gelu)
    if name == "gelu_tanh":
        return ActivationFunction("gelu_tanh", compose=_gelu_tanh)
    if name == "silu":
        return ActivationFunction("silu", compose=_silu)
    if name == "softmax":
        return ActivationFunction("softmax", compose=softmax)
    raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")


ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "softplus", "softmax")
_SIGMOID = _build("sigmoid")


def sigmoid(z):
    """``1 / (1 + e^-z)``, differentiable, from the stable kernel (never overflows)."""
    return _SIGMOID(z)

_CACHE = {}


def get_activation(spec):
    """An :class:`ActivationFunction` from a name (``"relu"``), a dict (``{"name": "elu", "alpha": 0.5}``),
    or an ActivationFunction (returned as is).  ``"linear"`` and ``None`` mean identity."""
    if isinstance(spec, ActivationFunction):
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        return _build(spec.pop("name"), **spec)
    if spec is None or isinstance(spec, str):
        key = "identity" if spec in (None, "linear") else spec
        if key not in _CACHE:
            _CACHE[key] = _build(key)
        return _CACHE[key]
    check_activation(spec, "activation")  # raises: not a name, a dict or an ActivationFunction


_ACTIVATION_KINDS = ("a name ({names}), a dict such as {{'name': 'elu', 'alpha': 0.5}}, or an ActivationFunction "
                     "(a function of your own: ActivationFunction('name', forward, deriv))")


def check_activation(spec, name="activation"):
    """Refuse, naming ``name``, what :func:`get_activation` cannot build an activation from; returns ``spec``.

    Accepted: a name, a dict ``{"name": ..., **params}``, ``None`` (identity) or an :class:`ActivationFunction`.
    A bare Python function is refused with the way to wrap it (its derivative is needed).
    """
    if spec is None or isinstance(spec, (str, ActivationFunction)):
        return spec
    expected = _ACTIVATION_KINDS.format(names=", ".join(ACTIVATIONS))
    if isinstance(spec, dict):
        if not isinstance(spec.get("name"), str):
            raise V.InvalidValueError(f"{name}: a dict needs a 'name' (one of {', '.join(ACTIVATIONS)}), got {spec!r:.80}")
        return spec
    what = "a function" if callable(spec) else repr(spec)[:60]
    raise V.InvalidTypeError(f"{name}: expected {expected}; got {what}")
