"""Layers and models.  Parameters are pytrees; layers are small and explicit.

A layer is a description (sizes, activation, initializer) with three methods:

* ``init(rng, dtype) -> params`` (a dict of arrays; ``{}`` if it has none),
* ``init_state(dtype) -> state`` (running statistics; ``{}`` for most layers),
* ``forward(params, state, x, rng, train, reduce=None) -> (y, new_state)``.

``forward`` is a pure function of its arguments, written with differentiable
functions, so the engine differentiates it with respect to ``params`` (or
``x``) and a captured program replays all of it.  Randomness comes in through
``rng`` (a ``numpy.random.Generator``) and is drawn by a primitive
(:func:`nablanet.nn.functional.dropout_mask`); new running statistics come
out as values (through :func:`~nablanet.nn.functional.stop_gradient`), never
by mutating the layer; a sum over the ranks of a data-parallel run is the
argument ``reduce``, never an attribute set from outside.  Training versus
evaluation is the explicit flag ``train``.  Rows of ``x`` are samples.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import numpy as anp
from .. import validate as V
from ..autodiff.core import getval
from .activations import check_activation, get_activation
from .functional import batch_normalize, dropout_mask, moments, normalize, running_average, stop_gradient
from .init import fan_in_uniform, get_initializer, initializer_config

__all__ = ["Layer", "Dense", "Dropout", "BatchNorm", "LayerNorm", "Activation", "Sequential", "MLP", "ModelSummary",
           "layer_from_config"]


class Layer:
    """Base class: a layer with no parameters and no state."""

    def init(self, rng, dtype):
        return {}

    def init_state(self, dtype):
        return {}

    def forward(self, params, state, x, rng=None, train=False, reduce=None):
        """``(y, new_state)``; ``reduce`` (a differentiable sum over MPI ranks, or None) matters
        only to layers with statistics over the batch."""
        raise NotImplementedError

    def config(self):
        raise NotImplementedError

    def _check_features(self, x, n):
        shape = getval(x).shape
        if len(shape) != 2 or shape[1] != n:
            got = f"{shape[1]} features" if len(shape) == 2 else f"an array of shape {shape}"
            raise ValueError(f"{self!r} got input with {got}; expected (n_samples, {n})")


class Dense(Layer):
    """Fully connected layer ``a = sigma(x W + b)``, W of shape (n_in, n_out).

    With an activation that has a fused primitive, the layer is one node in
    the graph and its backward pass is the delta equations (see
    :mod:`nablanet.nn.activations`).

    Parameters
    ----------
    n_in, n_out : int
        Numbers of input features and of units.
    activation : str, dict or Activation, optional
        sigma; identity by default.
    init : str, dict or callable
        Weight initializer; ``"auto"`` is ``fan_in_uniform``, U(+-1/sqrt(n_in))
        (see :mod:`nablanet.nn.init`).
    bias_init : str, dict or callable
        Bias initializer; ``"auto"`` is ``fan_in_uniform`` when ``init`` is
        ``"auto"`` and zeros otherwise.
    """

    def __init__(self, n_in, n_out, activation=None, init="auto", bias_init="auto"):
        self.n_in, self.n_out = V.positive_int(n_in, "Dense: n_in"), V.positive_int(n_out, "Dense: n_out")
        V.affordable((self.n_in + 1) * self.n_out, 8, f"Dense({self.n_in} -> {self.n_out})")
        self.activation = get_activation(activation)
        self.init_spec = "fan_in_uniform" if init == "auto" else init
        if bias_init == "auto":
            bias_init = "fan_in_uniform" if init == "auto" else "zeros"
        self.bias_init_spec = bias_init
        self._winit = get_initializer(self.init_spec)
        self._binit = get_initializer(bias_init)

    def __repr__(self):
        act = "" if self.activation.name == "identity" else f", {self.activation.name}"
        return f"Dense({self.n_in} -> {self.n_out}{act})"

    def __getstate__(self):
        state = dict(self.__dict__)
        state["init_spec"] = initializer_config(self.init_spec)  # named or described, never a closure
        state["bias_init_spec"] = initializer_config(self.bias_init_spec)
        del state["_winit"], state["_binit"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._winit = get_initializer(self.init_spec)
        self._binit = get_initializer(self.bias_init_spec)

    def init(self, rng, dtype):
        return {
            "W": np.asarray(self._winit((self.n_in, self.n_out), rng, dtype), dtype=dtype),
            "b": np.asarray(self._binit((self.n_out,), rng, dtype, fan_in=self.n_in) if self._binit is fan_in_uniform
                            else self._binit((self.n_out,), rng, dtype), dtype=dtype),
        }

    def forward(self, params, state, x, rng=None, train=False, reduce=None):
        self._check_features(x, self.n_in)
        act = self.activation
        if act.dense is not None:
            return act.dense(x, params["W"], params["b"]), state
        return act(x @ params["W"] + params["b"]), state

    def config(self):
        return {
            "type": "Dense", "n_in": self.n_in, "n_out": self.n_out,
            "activation": self.activation.config(),
            "init": initializer_config(self.init_spec), "bias_init": initializer_config(self.bias_init_spec),
        }


class Activation(Layer):
    """An activation function as a layer of its own (used after batch normalization)."""

    def __init__(self, activation):
        self.activation = get_activation(activation)

    def __repr__(self):
        return f"Activation({self.activation.name})"

    def forward(self, params, state, x, rng=None, train=False, reduce=None):
        return self.activation(x), state

    def config(self):
        return {"type": "Activation", "activation": self.activation.config()}


class Dropout(Layer):
    """Inverted dropout: in training each unit is zeroed with probability ``p`` and
    the survivors are scaled by 1/(1-p); in evaluation it is the identity."""

    def __init__(self, p):
        self.p = V.probability(p, "Dropout: p")

    def __repr__(self):
        return f"Dropout({self.p})"

    def forward(self, params, state, x, rng=None, train=False, reduce=None):
        if not train or self.p == 0.0:
            return x, state
        if rng is None:
            raise ValueError("Dropout in training mode needs rng (a numpy.random.Generator)")
        return x * dropout_mask(x, rng, self.p), state

    def config(self):
        return {"type": "Dropout", "p": self.p}


class BatchNorm(Layer):
    """Batch normalization over the rows: ``y = gamma (x - mu) / sqrt(var + eps) + beta``.

    In training, mu and var are the batch's own (and the gradient flows through
    them); the new running averages ``m <- momentum m + (1 - momentum) batch_stat``
    (the variance unbiased, n/(n-1)) are returned as the new state, through
    ``stop_gradient``: values that carry no derivative.  With ``reduce`` (a
    differentiable sum over the ranks of a data-parallel run) the sums behind
    mu and var, and the count n, are those of the global batch.  In evaluation
    the running averages are used.
    """

    def __init__(self, n, momentum=0.9, eps=1e-5):
        self.n, self.momentum = V.positive_int(n, "BatchNorm: n"), V.probability(momentum, "BatchNorm: momentum")
        self.eps = V.positive_number(eps, "BatchNorm: eps")

    def __repr__(self):
        return f"BatchNorm({self.n})"

    def init(self, rng, dtype):
        return {"gamma": np.ones(self.n, dtype), "beta": np.zeros(self.n, dtype)}

    def init_state(self, dtype):
        return {"mean": np.zeros(self.n, dtype), "var": np.ones(self.n, dtype)}

    def forward(self, params, state, x, rng=None, train=False, reduce=None):
        self._check_features(x, self.n)
        if train:
            if reduce is None:
                n = getval(x).shape[0]
                if n < 2:
                    raise ValueError("BatchNorm in training mode needs at least 2 samples per batch")
                # the batch statistics, computed once: the normalization and its backward rule (the
                # batch-norm backward pass, one primitive) read them, and so do the running averages
                st = moments(x, 0, self.eps)
                m = self.momentum
                state = {"mean": running_average(state["mean"], st, 0, m, 1.0),
                         "var": running_average(state["var"], st, 1, m, n / (n - 1))}
                # gamma xhat + beta with one backward node that reuses the gradients of gamma and beta
                return batch_normalize(x, params["gamma"], params["beta"], self.eps, stats=st), state
            else:  # sums over every rank's shard: the statistics of the global batch
                total = lambda v: reduce(anp.sum(v, axis=0))
                # the global count, computed from x so that a replay recounts it for every batch
                n = total(x[:, 0] * 0.0 + 1.0)
                mu = total(x) / n
                d = x - mu
                var = total(d * d) / n
                xhat = d / anp.sqrt(var + self.eps)
                var = var * (n / (n - 1.0))
            m = self.momentum
            state = {
                "mean": m * state["mean"] + (1 - m) * stop_gradient(mu),
                "var": m * state["var"] + (1 - m) * stop_gradient(var),
            }
            return xhat * params["gamma"] + params["beta"], state
        else:
            d = x - state["mean"]
            var = state["var"]
        return d / anp.sqrt(var + self.eps) * params["gamma"] + params["beta"], state

    def config(self):
        return {"type": "BatchNorm", "n": self.n, "momentum": self.momentum, "eps": self.eps}



class LayerNorm(Layer):
    """Layer normalization over the features of each sample, with learned gain and bias."""

    def __init__(self, n, eps=1e-5):
        self.n, self.eps = V.positive_int(n, "LayerNorm: n"), V.positive_number(eps, "LayerNorm: eps")

    def __repr__(self):
        return f"LayerNorm({self.n})"

    def init(self, rng, dtype):
        return {"gamma": np.ones(self.n, dtype), "beta": np.zeros(self.n, dtype)}

    def forward(self, params, state, x, rng=None, train=False, reduce=None):
        self._check_features(x, self.n)
        return normalize(x, 1, self.eps) * params["gamma"] + params["beta"], state

    def config(self):
        return {"type": "LayerNorm", "n": self.n, "eps": self.eps}


_LAYERS = {"Dense": Dense, "Activation": Activation, "Dropout": Dropout, "BatchNorm": BatchNorm, "LayerNorm": LayerNorm}


def layer_from_config(cfg):
    cfg = dict(cfg)
    kind = cfg.pop("type")
    if kind not in _LAYERS:
        raise ValueError(f"unknown layer type {kind!r} in configuration")
    return _LAYERS[kind](**cfg)


def _size(n_bytes):
    """``16 bytes``, ``795.0 KiB``, ``7.1 MiB``: a model's memory as people read it."""
    if n_bytes < 1024:
        return f"{n_bytes} bytes"
    return f"{n_bytes / 1024:.1f} KiB" if n_bytes < 1024**2 else f"{n_bytes / 1024**2:.1f} MiB"


class ModelSummary:
    """A model's layers as a table; ``rows`` are ``(layer, output shape, parameter shapes, parameters)``."""

    columns = ("layer", "output", "parameter shapes", "parameters")

    def __init__(self, name, rows, footer):
        self.name, self.rows, self.footer = name, rows, footer

    @property
    def n_params(self):
        return sum(r[3] for r in self.rows)

    def __str__(self):
        cells = [self.columns] + [(a, b, c, f"{d:,}") for a, b, c, d in self.rows]
        w = [max(len(str(r[i])) for r in cells) for i in range(4)]
        line = lambda r: f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:<{w[2]}}  {r[3]:>{w[3]}}"
        rule = "-" * (sum(w) + 6)
        return "\n".join([self.name, rule, line(cells[0]), rule, *map(line, cells[1:]), rule, self.footer])

    __repr__ = __str__

    def _repr_html_(self):
        from html import escape

        head = "".join(f"<th>{c}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in (a, b, c, f"{d:,}")) + "</tr>"
                       for a, b, c, d in self.rows)
        return (f"<b>{escape(self.name)}</b><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                f"<p>{escape(self.footer)}</p>")


def _as_rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class Sequential:
    """Layers applied in order, then an output activation.

    The model owns its parameters (``model.params``, a list with one dict per
    layer) and running statistics (``model.state``), created at construction
    from ``seed`` (an int or a ``numpy.random.Generator``).  The same seed
    gives the same model, bit for bit.

    ``apply(params, x, ...)`` is the pure, differentiable forward pass;
    ``predict(x)`` (or ``model(x)``) is inference on plain arrays.

    Parameters
    ----------
    *layers : Layer
    output_activation : str, optional
        Applied after the last layer.  Losses that work from logits
        (cross-entropies) take the output before it.
    seed : int or numpy.random.Generator, optional
    dtype : numpy dtype
        float32 by default; float64 on request (nothing else: see :data:`nablanet.validate.MODEL_DTYPES`).
    """

    def __init__(self, *layers, output_activation=None, seed=None, dtype=np.float32):
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        self.layers = list(layers)
        self.output_activation = get_activation(output_activation)
        self.dtype = V.model_dtype(dtype, f"{type(self).__name__}: dtype")  # what training and checkpoints take
        seed = V.seed(seed, f"{type(self).__name__}: seed")  # (V.seed's words, never NumPy's)
        self.seed = seed if isinstance(seed, (int, np.integer)) or seed is None else None
        rng = _as_rng(seed)
        self.params = [layer.init(rng, self.dtype) for layer in self.layers]
        self.state = [layer.init_state(self.dtype) for layer in self.layers]

    # -- shape facts
    @property
    def n_inputs(self):
        """Features per row: the size of the first layer that has one (Dropout and Activation keep any width);
        ``None`` for a model whose layers never fix it."""
        return next((n for n in (getattr(la, "n_in", None) or getattr(la, "n", None) for la in self.layers) if n), None)

    @property
    def n_outputs(self):
        for layer in reversed(self.layers):
            n = getattr(layer, "n_out", None) or getattr(layer, "n", None)
            if n:
                return n
        raise ValueError("the model has no layer with a known output size")

    @property
    def n_params(self):
        return int(sum(np.size(v) for p in self.params for v in p.values()))

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        out = "" if self.output_activation.name == "identity" else f", output={self.output_activation.name}"
        return f"{type(self).__name__}({inner}{out})"

    def summary(self):
        """The layers as a table (layer, output shape, parameter shapes, parameter count) with the totals.

        Returns a :class:`ModelSummary`, which prints as a text table (and shows
        as an HTML table in a notebook); its ``rows`` hold the same facts.
        """
        rows, width = [], self.n_inputs or "?"
        for layer, p in zip(self.layers, self.params):
            width = getattr(layer, "n_out", None) or getattr(layer, "n", None) or width
            shapes = ", ".join(f"{k} {'x'.join(str(d) for d in np.shape(v))}" for k, v in p.items())
            rows.append((repr(layer), f"(n, {width})", shapes or "-", int(sum(np.size(v) for v in p.values()))))
        n_bytes = self.n_params * self.dtype.itemsize
        foot = (f"input (n, {self.n_inputs or '?'}), output activation {self.output_activation.name}; "
                f"{self.n_params:,} parameters ({self.dtype.name}, {_size(n_bytes)})")
        return ModelSummary(type(self).__name__, rows, foot)

    # -- the forward pass
    def apply(self, params, x, *, state=None, train=False, rng=None, logits=False, return_state=False, reduce=None):
        """The forward pass with ``params`` (differentiable in them and in ``x``): a pure function.

        Returns the outputs (the logits before the output activation if
        ``logits=True``), and the updated running statistics as a second value
        if ``return_state=True`` (``self.state`` is never changed here).
        ``rng`` draws dropout masks; ``reduce`` is a differentiable sum over
        the ranks of a data-parallel run (batch statistics of the global batch).
        """
        state = self.state if state is None else state
        new_state = []
        for layer, p, s in zip(self.layers, params, state):
            x, s = layer.forward(p, s, x, rng, train, reduce)
            new_state.append(s)
        if not logits:
            x = self.output_activation(x)
        return (x, new_state) if return_state else x

    def predict(self, X):
        """Outputs for ``X`` in evaluation mode (probabilities under softmax/sigmoid)."""
        X = self._as_input(X)
        return self.apply(self.params, X)

    __call__ = predict

    def _as_input(self, X, where="X"):
        X = V.as_array(X, where)
        if X.ndim == 1 and self.n_inputs == 1:
            X = X[:, None]
        if X.dtype.kind not in "biuf":
            raise TypeError(f"{where} must be numeric, got dtype {X.dtype}")
        return V.finite_array(X, where, self.dtype)  # NaN, inf, or beyond the dtype's range: refused, named

    # -- configuration (for checkpoints)
    def config(self):
        return {
            "type": "Sequential", "layers": [layer.config() for layer in self.layers],
            "output_activation": self.output_activation.config(), "dtype": self.dtype.name, "seed": self.seed,
        }

    @staticmethod
    def from_config(cfg):
        if cfg.get("type") == "MLP":
            return MLP(**{k: v for k, v in cfg.items() if k != "type"})
        layers = [layer_from_config(c) for c in cfg["layers"]]
        return Sequential(*layers, output_activation=cfg["output_activation"], seed=cfg.get("seed"), dtype=cfg["dtype"])


class MLP(Sequential):
    """A feed-forward network of any depth and width: the notes' network.

    ``sizes = [n_inputs, hidden..., n_outputs]``.  Each hidden layer is
    ``Dense`` with the hidden activation (then ``Dropout`` if asked); with
    ``batch_norm=True`` it is ``Dense -> BatchNorm -> activation``.  The last
    layer is linear, followed by ``output_activation``.  ``MLP([n_in, n_out])``
    has no hidden layer: linear regression, or logistic regression with a
    sigmoid or softmax output.

    Parameters
    ----------
    sizes : sequence of int
    activation : str or sequence of str
        One activation for every hidden layer, or one per hidden layer.
    output_activation : str
        ``"identity"`` (regression), ``"sigmoid"`` or ``"softmax"`` (classification), ...
    init : str, dict or callable
        Weight initializer; ``"auto"`` = ``fan_in_uniform`` for weights and
        biases (see :mod:`nablanet.nn.init`).  A named ``"he_uniform"`` puts
        Glorot on the linear output layer.
    bias_init : str, dict or callable
        ``"auto"``: ``fan_in_uniform`` with ``init="auto"``, zeros otherwise.
    dropout : float
        Dropout probability after each hidden layer (0 = none).
    batch_norm : bool
    seed : int or numpy.random.Generator
    dtype : numpy dtype (float32 by default, or float64)
    """

    def __init__(self, sizes, activation="relu", output_activation="identity", init="auto", bias_init="auto",
                 dropout=0.0, batch_norm=False, seed=None, dtype=np.float32):
        sizes = V.Sizes(min_len=2, expected="at least 2 layer sizes (inputs, ..., outputs), all integers >= 1")(
            sizes, "MLP: sizes")
        dtype = V.model_dtype(dtype, "MLP: dtype")
        V.affordable(sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:])), 8, f"MLP({sizes})")
        dropout, batch_norm = V.probability(dropout, "MLP: dropout"), V.boolean(batch_norm, "MLP: batch_norm")
        seed = V.seed(seed, "MLP: seed")
        n_hidden = len(sizes) - 2
        if isinstance(activation, (list, tuple)):  # one per hidden layer
            acts = list(activation)
            for i, a in enumerate(acts):
                check_activation(a, f"MLP: activation (item {i})")
        else:  # one for every hidden layer (checked even when there is none: a bad value is never ignored)
            check_activation(activation, "MLP: activation")
            acts = [activation] * n_hidden
        if len(acts) != n_hidden:
            raise ValueError(f"MLP: {len(acts)} activations given for {n_hidden} hidden layers")
        if not n_hidden and (dropout or batch_norm):  # read by hidden layers only: left out, never silently
            # (a warning, not an error: a model saved before this check, with such a setting, still loads)
            given = ", ".join(f"{k}={v}" for k, v in (("dropout", dropout), ("batch_norm", batch_norm)) if v)
            warnings.warn(f"MLP: {given} acts on hidden layers, and MLP({sizes}) has none: left out", UserWarning,
                          stacklevel=2)
            dropout, batch_norm = 0.0, False
        layers = []
        for n_in, n_out, act in zip(sizes[:-2], sizes[1:-1], acts):
            if batch_norm:
                # batch normalization subtracts the bias again (beta takes its place): it starts, and stays, at zero
                bn_bias = "zeros" if bias_init == "auto" else bias_init
                layers += [Dense(n_in, n_out, None, init, bn_bias), BatchNorm(n_out), Activation(act)]
            else:
                layers.append(Dense(n_in, n_out, act, init, bias_init))
            if dropout:
                layers.append(Dropout(dropout))
        out_init = "glorot_uniform" if init == "he_uniform" else init
        layers.append(Dense(sizes[-2], sizes[-1], None, out_init, bias_init))
        self.sizes = sizes
        self._cfg = {
            "type": "MLP", "sizes": sizes, "activation": activation if isinstance(activation, (str, dict)) else acts,
            "output_activation": output_activation, "init": init, "bias_init": bias_init, "dropout": float(dropout),
            "batch_norm": bool(batch_norm),
            "seed": seed if isinstance(seed, (int, np.integer)) or seed is None else None, "dtype": np.dtype(dtype).name,
        }
        super().__init__(*layers, output_activation=output_activation, seed=seed, dtype=dtype)

    def __repr__(self):
        c = self._cfg
        # the hidden layers' activations: in the Activation layers with batch normalization, else in the Dense ones
        acts = ([la.activation for la in self.layers if isinstance(la, Activation)] if c["batch_norm"]
                else [la.activation for la in self.layers if isinstance(la, Dense)][:-1])
        names = [f"{a.name}({', '.join(f'{k}={v}' for k, v in a.params.items())})" if a.params else a.name for a in acts]
        act = (f"activation={names[0] if len(set(names)) == 1 else '[' + '; '.join(names) + ']'}, "
               if names else "")
        init = c["init"] if isinstance(c["init"], str) else getattr(c["init"], "__name__", repr(c["init"]))
        extra = "".join(f", {k}={v}" for k, v in (("init", init), ("dropout", c["dropout"]), ("batch_norm", c["batch_norm"]))
                        if v not in ("auto", 0.0, False))
        return (f"MLP({' -> '.join(map(str, self.sizes))}, {act}"
                f"output_activation={self.output_activation.name}{extra}; {self.n_params:,} parameters)")

    def config(self):
        """The JSON-able description a checkpoint holds (a custom initializer function cannot be saved: refused here,
        not when the network is built)."""
        c = dict(self._cfg)
        c["init"] = initializer_config(c["init"]) if c["init"] != "auto" else "auto"
        c["bias_init"] = initializer_config(c["bias_init"])
        return c
