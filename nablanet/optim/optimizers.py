"""Optimizers: in-place updates of parameter arrays from their gradients.

An optimizer works on a list of arrays (in training, one flat buffer that all
parameters are views of, so an update is a handful of NumPy calls in all).
``state = opt.init(params)`` makes its slots; ``opt.step(params, grads, state)``
updates ``params`` and ``state`` in place; ``opt.update(tree, grads, state)`` is
the pure form on pytrees.  The step count ``state["t"]`` drives the schedule.

The updates, with g the gradient and eta the learning rate at step t:

==========  ===============================================================
SGD         v <- mu v + g;  x <- x - eta v   (Nesterov: x <- x - eta (g + mu v))
AdaGrad     G <- G + g^2;   x <- x - eta g / (sqrt(G) + eps)
RMSprop     s <- rho s + (1 - rho) g^2;  x <- x - eta g / (sqrt(s) + eps)
Adam        m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
            x <- x - eta/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps)   (Kingma & Ba 2015;
            the slots hold m/(1-b1) and v/(1-b2), which saves passes over memory)
AdamW       x <- x (1 - eta lambda), then Adam   (decoupled weight decay, Loshchilov & Hutter 2019)
==========  ===============================================================

``clip_norm`` rescales the whole gradient when its global 2-norm exceeds it.
"""

from __future__ import annotations

import math

import numpy as np

from ..autodiff.tree import tree_flatten, tree_unflatten
from .schedules import get_schedule

__all__ = ["Optimizer", "SGD", "GD", "Adagrad", "RMSprop", "Adam", "AdamW", "get_optimizer", "OPTIMIZERS"]


class Optimizer:
    slots = ()

    def __init__(self, lr=0.01, clip_norm=None):
        self.lr = get_schedule(lr)
        if clip_norm is not None and clip_norm <= 0:
            raise ValueError(f"clip_norm must be positive, got {clip_norm}")
        self.clip_norm = clip_norm
        self._scratch = {}

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.hyper().items())})"

    def hyper(self):
        return {"lr": self.lr}

    def config(self):
        cfg = {k: v for k, v in self.hyper().items() if k != "lr"}
        return {"name": type(self).__name__.lower(), "lr": self.lr.config(), "clip_norm": self.clip_norm, **cfg}

    # -- state
    def init(self, params):
        leaves = params if isinstance(params, list) else tree_flatten(params)[0]
        return {"t": 0, **{s: [np.zeros_like(p) for p in leaves] for s in self.slots}}

    def _tmp(self, p, k=0):
        key = (p.shape, p.dtype.str, k)
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = np.empty_like(p)
        return buf

    # -- updates
    def step(self, params, grads, state):
        """Update the arrays in ``params`` (a list) in place from ``grads``; advances ``state["t"]``."""
        lr = self.lr(state["t"])
        state["t"] += 1
        if self.clip_norm is not None:
            norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
            if norm > self.clip_norm:
                grads = [g * (self.clip_norm / norm) for g in grads]
        t = state["t"]
        for i, (p, g) in enumerate(zip(params, grads)):
            self._update(p, g, [state[s][i] for s in self.slots], lr, t)

    def update(self, params, grads, state):
        """Pure form on pytrees: returns ``(new_params, new_state)``; the inputs are not modified."""
        leaves, treedef = tree_flatten(params)
        new = [np.array(p, copy=True) for p in leaves]
        st = {"t": state["t"], **{s: [np.array(a, copy=True) for a in state[s]] for s in self.slots}}
        self.step(new, tree_flatten(grads)[0], st)
        return tree_unflatten(treedef, new), st

    def _update(self, p, g, slots, lr, t):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum; full batch is plain gradient descent."""

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, clip_norm=None):
        super().__init__(lr, clip_norm)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slots = ("velocity",) if momentum else ()

    def hyper(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov}

    def _update(self, p, g, slots, lr, t):
        if not self.momentum:
            p -= lr * g
            return
        (v,) = slots
        v *= self.momentum
        v += g
        if self.nesterov:
            d = self._tmp(p)
            np.multiply(v, self.momentum, out=d)
            d += g
            d *= lr
            p -= d
        else:
            d = self._tmp(p)
            np.multiply(v, lr, out=d)
            p -= d


GD = SGD


class Adagrad(Optimizer):
    slots = ("sum_sq",)

    def __init__(self, lr=0.01, eps=1e-8, clip_norm=None):
        super().__init__(lr, clip_norm)
        self.eps = float(eps)

    def hyper(self):
        return {"lr": self.lr, "eps": self.eps}

    def _update(self, p, g, slots, lr, t):
        (G,) = slots
        d = self._tmp(p)
        np.multiply(g, g, out=d)
        G += d
        np.sqrt(G, out=d)
        d += self.eps
        np.divide(g, d, out=d)
        d *= lr
        p -= d


class RMSprop(Optimizer):
    slots = ("mean_sq",)

    def __init__(self, lr=0.001, rho=0.9, eps=1e-8, clip_norm=None):
        super().__init__(lr, clip_norm)
        self.rho, self.eps = float(rho), float(eps)

    def hyper(self):
        return {"lr": self.lr, "rho": self.rho, "eps": self.eps}

    def _update(self, p, g, slots, lr, t):
        (s,) = slots
        d = self._tmp(p)
        np.multiply(g, g, out=d)
        d *= 1.0 - self.rho
        s *= self.rho
        s += d
        np.sqrt(s, out=d)
        d += self.eps
        np.divide(g, d, out=d)
        d *= lr
        p -= d


class Adam(Optimizer):
    slots = ("m", "v")

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, clip_norm=None):
        super().__init__(lr, clip_norm)
        for name, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {b}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def hyper(self):
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _update(self, p, g, slots, lr, t):
        # The slots hold the moments scaled by 1/(1 - beta): m_s = m / (1 - b1), v_s = v / (1 - b2),
        # so that each moment update is two passes over memory instead of three.  With
        # c = sqrt((1 - b2) / (1 - b2^t)) the step is Adam's exactly:
        #   lr/(1 - b1^t) m / (sqrt(v)/sqrt(1 - b2^t) + eps) = k m_s / (sqrt(v_s) + eps/c),
        #   k = lr (1 - b1) / ((1 - b1^t) c)
        m, v = slots
        b1, b2 = self.beta1, self.beta2
        c = math.sqrt((1.0 - b2) / (1.0 - b2**t))
        k = lr * (1.0 - b1) / ((1.0 - b1**t) * c)
        d = self._tmp(p)
        m *= b1
        m += g
        np.multiply(g, g, out=d)
        v *= b2
        v += d
        np.sqrt(v, out=d)
        d += self.eps / c
        np.divide(m, d, out=d)
        d *= k
        p -= d


class AdamW(Adam):
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, clip_norm=None):
        super().__init__(lr, beta1, beta2, eps, clip_norm)
        self.weight_decay = float(weight_decay)

    def hyper(self):
        return {**super().hyper(), "weight_decay": self.weight_decay}

    def _update(self, p, g, slots, lr, t):
        p *= 1.0 - lr * self.weight_decay
        super()._update(p, g, slots, lr, t)


OPTIMIZERS = {"sgd": SGD, "gd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def get_optimizer(spec, **kwargs):
    """An optimizer from a name (``"adam"``, keyword hyperparameters) or a config dict."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        name = spec.pop("name")
        spec.update(kwargs)
        return get_optimizer(name, **spec)
    if isinstance(spec, str):
        key = spec.lower()
        if key not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {spec!r}; choose from {', '.join(OPTIMIZERS)}")
        if "lr" in kwargs and isinstance(kwargs["lr"], dict):
            kwargs["lr"] = get_schedule(kwargs["lr"])
        return OPTIMIZERS[key](**kwargs)
    raise TypeError(f"optimizer must be a name or an Optimizer, not {type(spec).__name__}")
