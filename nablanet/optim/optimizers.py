"""Optimizers: in-place updates of parameter arrays from their gradients.

An optimizer works on any pytree of arrays (an array, lists, dicts, tuples,
nested ones such as a model's ``params``), as optax does::

    state = opt.init(model.params)
    params, state = opt.update(model.params, grads, state)   # pure: new params and state

``opt.step(params, grads, state)`` is the in-place form that training uses (on
one flat buffer that all parameters are views of, so an update is a handful of
NumPy calls in all).  The state holds the step count ``state["t"]``, which
drives the schedule, and one array per parameter leaf for each slot.

The updates, with g the gradient and eta the learning rate at step t:

==========  ===============================================================
optimizer   update
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

Every update is elementwise, a few NumPy calls each one pass over memory.  A
large array (the training's flat buffer of a model with 0.5M+ float32
parameters) is updated in chunks of ``CHUNK_BYTES`` per array, all passes over
one chunk before the next, so that the parameters, gradient, slots and scratch
of a chunk stay in a core's L2 cache between passes instead of each pass
streaming the whole arrays from memory; the operations are correctly rounded,
so the result is the same to the bit as one update of the whole array.
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from .. import validate as V
from ..autodiff.tree import _leaf_path, _tree_difference, tree_flatten, tree_unflatten
from .schedules import Schedule, get_schedule

__all__ = ["Optimizer", "SGD", "GD", "Adagrad", "RMSprop", "Adam", "AdamW", "get_optimizer", "OPTIMIZERS"]

# Bytes of each array per chunk of an update, and the size from which an array is cut into chunks.
# Measured in the training loop of benchmarks/bench_step.py (1 thread, 1 MiB of L2 per core): Adam on
# the 784-1024-1024-10 network's 1.8M parameters (7.3 MB per array) takes 9-11% less time in chunks of
# 128-256 KiB than in whole-array passes, 8% more in chunks of 64 KiB (NumPy's per-call cost); on
# 784-128-64-10's 109,386 (437 KB per array, the arrays in L3 anyway) two chunks took 13% more.
CHUNK_BYTES = 1 << 18
CHUNK_FROM = 8  # chunks: arrays of fewer than CHUNK_FROM * CHUNK_BYTES bytes are updated whole


def _chunks(p, g, slots):
    """``(p, g, slots)`` as consecutive pieces of ``CHUNK_BYTES`` each (views; the last one shorter), or whole.

    Only large arrays of one shape, all C-contiguous, are cut (their flat views
    are views); anything else is one piece.
    """
    size = CHUNK_BYTES // p.itemsize
    n = p.size
    if n < CHUNK_FROM * size or type(g) is not np.ndarray or g.shape != p.shape or not p.flags.c_contiguous \
            or not g.flags.c_contiguous or any(s.shape != p.shape or not s.flags.c_contiguous for s in slots):
        return ((p, g, slots),)
    pf, gf, sf = p.reshape(-1), g.reshape(-1), [s.reshape(-1) for s in slots]
    return [(pf[a:a + size], gf[a:a + size], [s[a:a + size] for s in sf]) for a in range(0, n, size)]


class Optimizer:
    """Base class.  ``weight_decay`` (lambda) adds ``lambda x`` to each gradient before the update, as
    PyTorch's optimizers do (for plain SGD the same as an L2 penalty ``lambda/2 sum x^2`` on every
    parameter, biases included); :class:`AdamW` decays the parameters directly instead."""

    slots = ()
    _coupled_decay = True

    def __init__(self, lr=0.01, clip_norm=None, weight_decay=0.0):
        self.lr = get_schedule(lr)
        self.clip_norm = V.Optional(V.positive_number)(clip_norm, "clip_norm")
        self.weight_decay = V.non_negative_number(weight_decay, "weight_decay")
        self._scratch = {}

    def __repr__(self):
        show = lambda v: f"{v.params['lr']:g}" if isinstance(v, Schedule) and v.name == "constant" else (
            f"{v:g}" if isinstance(v, float) else repr(v))
        items = {**self.hyper(), **({"clip_norm": self.clip_norm} if getattr(self, "clip_norm", None) is not None else {})}
        return f"{type(self).__name__}({', '.join(f'{k}={show(v)}' for k, v in items.items())})"

    def hyper(self):
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def config(self):
        cfg = {k: v for k, v in self.hyper().items() if k != "lr"}
        return {"name": type(self).__name__.lower(), "lr": self.lr.config(), "clip_norm": self.clip_norm, **cfg}

    # -- state
    def init(self, params):
        """The optimizer's state for ``params``, any pytree (an array, a list, a dict, nested ones, a model's
        ``params``): the step count ``"t"`` and, per slot, one zero array for each leaf (in leaf order)."""
        return {"t": 0, **{s: [np.zeros_like(p) for p in _float_leaves(params, "params")] for s in self.slots}}

    def _check_state(self, state, params):
        """Refuse, in one message, a state that :meth:`init` of this optimizer for ``params`` (the leaves) did not
        make: another optimizer's (other slots), another pytree's (other arrays), or a damaged one."""
        name = type(self).__name__
        remake = f"make it with {name}'s init() of these parameters"
        if type(state) is not dict or state.keys() != {"t", *self.slots}:
            def slots(keys):
                keys = [repr(k) for k in keys if k != "t"]
                return f"the slots {', '.join(keys)}" if keys else "no slots"

            found = (slots(state) + ("" if "t" in state else " and no step count 't'")
                     if isinstance(state, dict) else f"a {type(state).__name__}")
            raise V.InvalidValueError(f"{name}: the state must be a dict of the step count 't' and "
                                      f"{slots(self.slots)}; got {found}; {remake}")
        t = state["t"]
        if type(t) is not int or t < 0:
            state["t"] = V.non_negative_int(t, f"{name}: state['t']")
        for s in self.slots:
            arrays = state[s]
            if not isinstance(arrays, list) or len(arrays) != len(params):
                held = f"{len(arrays)} arrays" if isinstance(arrays, list) else f"a {type(arrays).__name__}"
                raise V.InvalidValueError(f"{name}: the state holds {held} in slot {s!r} for {len(params)} "
                                          f"parameter arrays; {remake}")
            for i, (a, p) in enumerate(zip(arrays, params)):
                if getattr(a, "shape", None) != p.shape:
                    raise V.InvalidValueError(f"{name}: the state's {s!r}[{i}] has shape {getattr(a, 'shape', None)} "
                                              f"but parameter array {i} has shape {p.shape}; {remake}")

    def _tmp(self, p, k=0):
        key = (p.shape, p.dtype.str, k)
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = np.empty_like(p)
        return buf

    # -- updates
    def step(self, params, grads, state):
        """Update the arrays of ``params`` in place from ``grads`` (a pytree of the same structure; in training,
        one flat buffer); advances ``state["t"]``."""
        if not (type(params) is list and type(grads) is list and all(type(p) is np.ndarray for p in params)):
            params, grads = _matching_leaves(params, grads)
            for i, p in enumerate(params):
                if not isinstance(p, np.ndarray) or not p.flags.writeable:
                    raise TypeError(f"step updates the parameters in place, but leaf {i} is a {type(p).__name__}, "
                                    f"not a writeable array; use update(), which returns new parameters")
        self._check_state(state, params)
        self._step(params, grads, state)

    def _step(self, params, grads, state):
        """:meth:`step` on lists of arrays and a state already checked: the trainer's per-step call (its state is
        its own, made by :meth:`init`; checking it at each step cost 5% of a small network's step)."""
        lr = self.lr(state["t"])
        state["t"] += 1
        if self.clip_norm is not None:
            norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
            if norm > self.clip_norm:
                grads = [g * (self.clip_norm / norm) for g in grads]
        t = state["t"]
        wd = self.weight_decay if self._coupled_decay else 0.0
        for i, (p, g) in enumerate(zip(params, grads)):
            slots = [state[s][i] for s in self.slots]
            pieces = ((p, g, slots),) if p.size < CHUNK_FROM * CHUNK_BYTES // p.itemsize else _chunks(p, g, slots)
            # In chunks (many calls) the factors are 0-d arrays of the arrays' dtype, when every array they
            # scale has it: the value NumPy casts a Python float to, and a ufunc call with one costs half
            # as much (0.2 against 0.5 us).  Whole, Python floats (making the arrays costs more).
            dtype = p.dtype if len(pieces) > 1 and p.dtype.kind == "f" and all(s.dtype == p.dtype for s in slots) \
                else None
            coef = self._coefficients(lr, t, dtype)
            for pc, gc, sc in pieces:
                if wd:
                    d = self._tmp(pc, 1)
                    np.multiply(pc, wd, out=d)
                    d += gc
                    gc = d
                self._update(pc, gc, sc, coef)

    def update(self, params, grads, state):
        """Pure form on any pytree: returns ``(new_params, new_state)`` with the structure of the inputs;
        ``params``, ``grads`` and ``state`` are not modified."""
        leaves, treedef = tree_flatten(params)
        gleaves = _matching_leaves(params, grads)[1]
        new = [a.copy() for a in _float_leaves(params, "params")]
        self._check_state(state, new)
        st = {"t": state["t"], **{s: [np.array(a, copy=True) for a in state[s]] for s in self.slots}}
        self._step(new, [np.asarray(g) for g in gleaves], st)
        return tree_unflatten(treedef, new), st

    def _coefficients(self, lr, t, dtype):
        """What :meth:`_update` needs of the step ``t`` and its learning rate ``lr``, computed once per
        parameter array (an update may be applied to it in chunks).  ``dtype``, when not None, is the
        dtype of the parameters and of every slot, to give the factors (see :func:`_factors`)."""
        return lr

    def _update(self, p, g, slots, coef):
        """Update ``p`` (and the ``slots``) in place from ``g``; elementwise, so that chunks of the arrays
        may be given one after another."""
        raise NotImplementedError


def _factors(dtype, *values):
    """The Python floats ``values`` as 0-d arrays of ``dtype`` (as they are when they scale an array of that
    dtype), or as they are when ``dtype`` is None."""
    return values if dtype is None else tuple(np.array(x, dtype) for x in values)


def _float_leaves(tree, what):
    """The leaves of a pytree as float arrays (integers and Python numbers become float64)."""
    out = []
    for i, p in enumerate(tree_flatten(tree)[0]):
        a = np.asarray(p)
        if a.dtype.kind not in "f":
            if a.dtype.kind not in "biu":
                raise TypeError(f"{what}: leaf {i} is not numeric (dtype {a.dtype}, a {type(p).__name__})")
            a = a.astype(np.float64)
        out.append(a)
    return out


def _matching_leaves(params, grads):
    """The leaves of ``params`` and ``grads``, after checking that the two pytrees match leaf for leaf."""
    leaves, treedef = tree_flatten(params)
    gleaves, gdef = tree_flatten(grads)
    if gdef != treedef:
        at, p_has, g_has = _tree_difference(treedef, gdef)
        raise ValueError(f"grads do not have the structure of params: at {at or 'the root'} params has {p_has} "
                         f"and grads {g_has}; take the gradient with respect to the same pytree")
    for i, (p, g) in enumerate(zip(leaves, gleaves)):
        if np.shape(p) != np.shape(g):
            raise ValueError(f"grads{_leaf_path(treedef, i)} has shape {np.shape(g)} but the parameter has "
                             f"shape {np.shape(p)}")
    return leaves, gleaves


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum; full batch is plain gradient descent."""

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, clip_norm=None):
        super().__init__(lr, clip_norm, weight_decay)
        momentum, nesterov = V.probability(momentum, "momentum"), V.boolean(nesterov, "nesterov")
        if nesterov and momentum == 0.0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slots = ("velocity",) if momentum else ()

    def hyper(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def _update(self, p, g, slots, lr):
        if not self.momentum:
            d = self._tmp(p)  # lr g in the scratch buffer: no temporary the size of the parameters
            np.multiply(g, lr, out=d)
            p -= d
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
    """AdaGrad (Duchi, Hazan & Singer 2011): each parameter's step is divided by the root of the sum of its
    squared gradients so far, ``G <- G + g^2;  x <- x - eta g / (sqrt(G) + eps)``.

    Parameters
    ----------
    lr : float or Schedule
        The step eta (default 0.01).
    eps : float
        Added to ``sqrt(G)``, so the first steps stay finite (positive; default 1e-8).
    weight_decay : float
        lambda: ``lambda x`` is added to each gradient before the update (an L2 penalty of ``lambda/2 |x|^2``).
    clip_norm : float, optional
        The whole gradient is rescaled when its global 2-norm exceeds it.
    """

    slots = ("sum_sq",)

    def __init__(self, lr=0.01, eps=1e-8, weight_decay=0.0, clip_norm=None):
        super().__init__(lr, clip_norm, weight_decay)
        self.eps = V.positive_number(eps, "eps")

    def hyper(self):
        return {"lr": self.lr, "eps": self.eps, "weight_decay": self.weight_decay}

    def _update(self, p, g, slots, lr):
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
    """RMSprop (Tieleman & Hinton 2012): each parameter's step is divided by the root of a running mean of
    its squared gradients, ``s <- rho s + (1 - rho) g^2;  x <- x - eta g / (sqrt(s) + eps)``.

    Parameters
    ----------
    lr : float or Schedule
        The step eta (default 0.001).
    rho : float
        The running mean's decay, in [0, 1) (default 0.9).
    eps : float
        Added to ``sqrt(s)`` (positive; default 1e-8).
    weight_decay : float
        lambda: ``lambda x`` is added to each gradient before the update (an L2 penalty of ``lambda/2 |x|^2``).
    clip_norm : float, optional
        The whole gradient is rescaled when its global 2-norm exceeds it.
    """

    slots = ("mean_sq",)

    def __init__(self, lr=0.001, rho=0.9, eps=1e-8, weight_decay=0.0, clip_norm=None):
        super().__init__(lr, clip_norm, weight_decay)
        self.rho, self.eps = V.probability(rho, "rho"), V.positive_number(eps, "eps")

    def hyper(self):
        return {"lr": self.lr, "rho": self.rho, "eps": self.eps, "weight_decay": self.weight_decay}

    def _update(self, p, g, slots, lr):
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
    """Adam (Kingma & Ba 2015).  The default step, 3e-3, is three times the paper's: with the default
    initialization it trains the course's networks further in the same epochs
    (``benchmarks/bench_defaults.py``)."""

    slots = ("m", "v")

    def __init__(self, lr=0.003, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, clip_norm=None):
        super().__init__(lr, clip_norm, weight_decay)
        self.beta1, self.beta2 = V.probability(beta1, "beta1"), V.probability(beta2, "beta2")
        self.eps = V.positive_number(eps, "eps")

    def hyper(self):
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "weight_decay": self.weight_decay}

    def _coefficients(self, lr, t, dtype):
        # The slots hold the moments scaled by 1/(1 - beta): m_s = m / (1 - b1), v_s = v / (1 - b2),
        # so that each moment update is two passes over memory instead of three.  With
        # c = sqrt((1 - b2) / (1 - b2^t)) the step is Adam's exactly:
        #   lr/(1 - b1^t) m / (sqrt(v)/sqrt(1 - b2^t) + eps) = k m_s / (sqrt(v_s) + eps/c),
        #   k = lr (1 - b1) / ((1 - b1^t) c)
        b1, b2 = self.beta1, self.beta2
        c = math.sqrt((1.0 - b2) / (1.0 - b2**t))
        k = lr * (1.0 - b1) / ((1.0 - b1**t) * c)
        return _factors(dtype, b1, b2, self.eps / c, k)

    def _update(self, p, g, slots, coef):
        m, v = slots
        b1, b2, e, k = coef
        d = self._tmp(p)
        mul, add = np.multiply, np.add
        mul(m, b1, m)
        add(m, g, m)
        mul(g, g, d)
        mul(v, b2, v)
        add(v, d, v)
        np.sqrt(v, d)
        add(d, e, d)
        np.divide(m, d, d)
        mul(d, k, d)
        np.subtract(p, d, p)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019).

    Each step first shrinks every parameter (biases included) by the same fraction,
    ``x <- x (1 - eta lambda)`` with eta the learning rate of that step and lambda
    ``weight_decay``, then takes Adam's step on the gradient alone.  Adam's own
    ``weight_decay`` adds ``lambda x`` to the gradient instead, which Adam's division
    by ``sqrt(v)`` then rescales parameter by parameter; here the decay does not pass
    through the moments.  With ``weight_decay=0`` the steps are Adam's, bit for bit.

    Parameters
    ----------
    lr : float, Schedule or dict
        The learning rate eta: a positive number, a :class:`~nablanet.optim.Schedule`
        or a schedule's config dict (see :func:`~nablanet.optim.get_schedule`).  It scales the decay too,
        so a decaying schedule decays the shrinking with it.
    beta1, beta2 : float
        Decay rates of the moving averages of the gradient and of its square, in [0, 1).
    eps : float
        Positive; added to the bias-corrected ``sqrt(v)`` in the step's denominator.
    weight_decay : float
        lambda, the fraction of each parameter removed per unit of learning rate; >= 0.
    clip_norm : float or None
        When given, a gradient whose global 2-norm (over all parameters) exceeds it is
        rescaled to that norm before the step.
    """

    _coupled_decay = False

    def __init__(self, lr=0.003, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, clip_norm=None):
        super().__init__(lr, beta1, beta2, eps, weight_decay=weight_decay, clip_norm=clip_norm)

    def _coefficients(self, lr, t, dtype):
        return _factors(dtype, 1.0 - lr * self.weight_decay) + super()._coefficients(lr, t, dtype)

    def _update(self, p, g, slots, coef):
        np.multiply(p, coef[0], p)
        super()._update(p, g, slots, coef[1:])


OPTIMIZERS = {"sgd": SGD, "gd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def settings(name):
    """The settings (keyword arguments) that the optimizer ``name`` takes."""
    return [p for p in inspect.signature(OPTIMIZERS[name.lower()]).parameters]


def _equal(a, b):
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def get_optimizer(spec, _names=None, **kwargs):
    """An optimizer from a name (``"adam"``) and its settings by keyword (``lr``, ``momentum``,
    ``betas=(b1, b2)`` or ``beta1``/``beta2``, ``eps``, ``weight_decay``...), or a config dict.

    An :class:`Optimizer` object is returned as it is; giving settings beside
    it is an error (the object has its own), and so is a setting that the
    named optimizer does not take.  Settings given as ``None`` mean the default.
    ``_names`` maps a setting to the name its caller gives it, for the errors
    (the estimators' ``{"lr": "learning_rate"}``).
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    say = (lambda k: _names.get(k, k)) if _names else (lambda k: k)
    given = lambda keys: ", ".join(f"{say(k)}={kwargs[k]!r}" for k in keys)
    if isinstance(spec, Optimizer):
        if kwargs:
            raise ValueError(
                f"optimizer={spec!r} is an Optimizer object with its own settings, and {given(kwargs)} was given as "
                f"well; put the settings in the object, or name the optimizer "
                f"(optimizer={type(spec).__name__.lower()!r}) and give them beside it")
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        name = spec.pop("name")
        clash = [k for k, v in kwargs.items() if k in spec and not (spec[k] is v or _equal(spec[k], v))]
        if clash:  # one value for one setting: neither silently wins
            raise ValueError(f"optimizer={ {'name': name, **spec}!r} sets {', '.join(clash)}, and "
                             f"{given(clash)} was given as well; give each setting once")
        spec.update(kwargs)
        return get_optimizer(name, _names, **spec)
    if isinstance(spec, str):
        key = spec.lower()
        if key not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {spec!r}; choose from {', '.join(OPTIMIZERS)}")
        betas_given = "betas" in kwargs
        if betas_given:
            betas = kwargs.pop("betas")
            try:
                kwargs["beta1"], kwargs["beta2"] = betas
            except (TypeError, ValueError):
                raise ValueError(f"{say('betas')} must be a pair (beta1, beta2), got {betas!r}") from None
        allowed = settings(key)
        unknown = [k for k in kwargs if k not in allowed]
        if unknown:
            owners = {k: [n for n in OPTIMIZERS if n != "gd" and k in settings(n)] for k in unknown}
            if betas_given and {"beta1", "beta2"} <= set(unknown):  # named as the caller wrote them
                owners = {("betas" if k == "beta1" else k): v for k, v in owners.items() if k != "beta2"}
            names = list(owners)
            hint = "; ".join(f"{say(k)} belongs to {', '.join(v)}" for k, v in owners.items() if v)
            what = "is not a setting" if len(names) == 1 else "are not settings"
            raise TypeError(f"{', '.join(repr(say(k)) for k in names)} {what} of the {key} optimizer "
                            f"(its settings: {', '.join(map(say, allowed))}){'; ' + hint if hint else ''}")
        if "lr" in kwargs and isinstance(kwargs["lr"], dict):
            kwargs["lr"] = get_schedule(kwargs["lr"])
        return OPTIMIZERS[key](**kwargs)
    raise TypeError(f"optimizer must be a name or an Optimizer, not {type(spec).__name__}")
