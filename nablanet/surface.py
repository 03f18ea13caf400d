"""Cost surfaces and optimizer paths: the notes' "gradient on a surface", computed.

The notes (004) fit one neuron, y = sigma(w x + b), by gradient descent on

    J(w, b) = 1/m sum_i (y(x_i) - y_i)^2,

where -grad J = -(dJ/dw, dJ/db) points in the direction of steepest descent and
each step is (w, b) <- (w, b) - alpha grad J, until grad J = 0.  This module
computes the pieces of that picture; :mod:`nablanet.viz` draws them.

* :func:`single_neuron` is the notes' J as a function of theta = (w, b), and
  :func:`two_parameters` is the same for any two chosen parameters of any model.
* :func:`cost_grid` evaluates J on a (w, b) grid; :func:`descent_field` gives
  -grad J there, from the engine (one reverse sweep per grid point).
* :func:`optimizer_paths` runs the library's own optimizers (GD, minibatch SGD,
  momentum, Nesterov, AdaGrad, RMSprop, Adam) from one start and records each path.
* :func:`loss_plane` is J on a plane through trained parameters along two
  filter-normalized random directions (Li et al., 2018, "Visualizing the Loss
  Landscape of Neural Nets"), with a training trajectory projected onto it.

Every cost here has the signature ``J(theta, rows=None)``: ``theta`` is a
length-2 array and ``rows`` selects a minibatch of samples (all of them when None).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import numpy as anp
from . import validate as V
from .autodiff import grad, tree_flatten, tree_unflatten

__all__ = [
    "Path",
    "LossPlane",
    "single_neuron",
    "two_parameters",
    "cost_grid",
    "descent_field",
    "optimizer_paths",
    "DEFAULT_OPTIMIZERS",
    "loss_plane",
]


def _as_float_vector(a, name):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of numbers, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} holds values that are not finite")
    return a


def single_neuron(x, y, activation="sigmoid"):
    """The notes' cost of one neuron, ``J(theta, rows=None)`` with theta = (w, b).

    ``J = 1/m sum_i (sigma(w x_i + b) - y_i)^2`` over the selected rows.
    ``activation`` is any name :func:`nablanet.nn.get_activation` knows.
    """
    from .nn import get_activation

    x = _as_float_vector(x, "x")
    y = _as_float_vector(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    sigma = get_activation(activation)
    if getattr(sigma, "name", None) == "softmax":
        raise V.InvalidValueError("activation 'softmax' normalizes over the samples, not one neuron's z; "
                                  "a single neuron takes an elementwise activation such as sigmoid or tanh")

    def J(theta, rows=None):
        xs, ys = (x, y) if rows is None else (x[rows], y[rows])
        r = sigma(theta[0] * xs + theta[1]) - ys
        return anp.mean(r * r)

    J.n_samples = x.size
    return J


def two_parameters(model, X, y, loss, first, second, params=None):
    """J as a function of two chosen scalar parameters of ``model``, the others held fixed.

    ``first`` and ``second`` index the flat list of the model's parameter leaves
    as ``(leaf, flat_index)``, e.g. ``(0, 3)`` for entry 3 of the first weight
    matrix; the leaves are ``nablanet.autodiff.tree_flatten(model.params)[0]``,
    layer by layer (``W`` then ``b`` of a Dense layer), and the error for an
    index out of range lists their sizes.  ``loss`` is a :mod:`nablanet.losses`
    name or loss object; J is the cost training minimizes (of the output after
    the output activation, or of the logits for costs that work from logits).
    """
    from .losses import get_loss

    loss = get_loss(loss)
    base = model.params if params is None else params
    leaves, tree = tree_flatten(base)
    leaves = [np.asarray(p, dtype=np.float64) for p in leaves]
    picks = []
    for name, pick in (("first", first), ("second", second)):
        if (not isinstance(pick, (tuple, list)) or len(pick) != 2
                or not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in pick)):
            raise V.InvalidValueError(f"{name}: expected a pair of integers (leaf, flat_index), got {pick!r}")
        leaf, idx = (int(k) for k in pick)
        if not 0 <= leaf < len(leaves) or not 0 <= idx < leaves[leaf].size:
            raise ValueError(f"{name}=({leaf}, {idx}) is not a parameter of a model with leaves of sizes "
                             f"{[p.size for p in leaves]}")
        picks.append((leaf, idx))
    if picks[0] == picks[1]:
        raise V.InvalidValueError(f"first and second are the same parameter {picks[0]}; choose two different ones")
    from .train import prepare_data

    X, y = prepare_data(model, loss, X, y, where="two_parameters")

    def J(theta, rows=None):
        new = list(leaves)
        for k, (leaf, idx) in enumerate(picks):
            onehot = np.zeros(leaves[leaf].size)
            onehot[idx] = 1.0
            flat = anp.reshape(leaves[leaf], (-1,)) * (1.0 - onehot) + theta[k] * onehot
            new[leaf] = anp.reshape(flat, leaves[leaf].shape)
        Xb, yb = (X, y) if rows is None else (X[rows], y[rows])
        out = model.apply(tree_unflatten(tree, new), Xb, logits=loss.from_logits)
        return loss(out, yb)

    J.n_samples = X.shape[0]
    J.start = np.array([leaves[picks[0][0]].reshape(-1)[picks[0][1]], leaves[picks[1][0]].reshape(-1)[picks[1][1]]])
    return J


def cost_grid(J, w, b):
    """J at every point of the grid ``w x b``; returns an array of shape ``(len(b), len(w))``.

    The layout is matplotlib's: ``contour(w, b, cost_grid(J, w, b))``.
    """
    w = _as_float_vector(w, "w")
    b = _as_float_vector(b, "b")
    out = np.empty((b.size, w.size))
    for i, bi in enumerate(b):
        for j, wj in enumerate(w):
            out[i, j] = J(np.array([wj, bi]))
    return out


def descent_field(J, w, b):
    """-grad J at every grid point, as two arrays ``(-dJ/dw, -dJ/db)`` shaped like :func:`cost_grid`."""
    w = _as_float_vector(w, "w")
    b = _as_float_vector(b, "b")
    dJ = grad(J)
    u = np.empty((b.size, w.size))
    v = np.empty_like(u)
    for i, bi in enumerate(b):
        for j, wj in enumerate(w):
            g = dJ(np.array([wj, bi]))
            u[i, j], v[i, j] = -g[0], -g[1]
    return u, v


@dataclass
class Path:
    """One optimizer's path: ``points[k]`` = theta after k steps, ``costs[k]`` = J(points[k])."""

    name: str
    points: np.ndarray
    costs: np.ndarray
    lr: float
    batch_size: int | None = None

    @property
    def steps(self):
        return len(self.points) - 1

    @property
    def final_cost(self):
        return float(self.costs[-1])

    def __repr__(self):
        return (f"Path({self.name!r}, steps={self.steps}, lr={self.lr:g}, "
                f"start=({self.points[0, 0]:.3g}, {self.points[0, 1]:.3g}), final J={self.final_cost:.4g})")


# name -> (optimizer name, hyperparameters, minibatch?)  The learning rates suit the notes' single
# neuron on data x in [-1, 1] (the tutorial's and the CLI's); each optimizer gets its own, as the notes' comparison does.
DEFAULT_OPTIMIZERS = {
    "GD": ("sgd", {"lr": 2.0}, False),
    "SGD (minibatch)": ("sgd", {"lr": 2.0}, True),
    "momentum": ("sgd", {"lr": 1.0, "momentum": 0.9}, False),
    "Nesterov": ("sgd", {"lr": 1.0, "momentum": 0.9, "nesterov": True}, False),
    "AdaGrad": ("adagrad", {"lr": 0.5}, False),
    "RMSprop": ("rmsprop", {"lr": 0.05}, False),
    "Adam": ("adam", {"lr": 0.1}, False),
}


def optimizer_paths(J, start, optimizers=None, steps=100, batch_size=None, seed=0):
    """Run each optimizer from ``start`` for ``steps`` steps on ``J`` and record its path.

    ``optimizers`` maps a label to ``(name, hyperparameters, minibatch)`` as in
    :data:`DEFAULT_OPTIMIZERS` (the default).  Minibatch entries draw
    ``batch_size`` rows per step (default 8, or all of them when the data has
    fewer; never more than the data has) without replacement within an epoch
    (seeded by ``seed``); the recorded cost is always the full-data J.  A path that
    diverges stops at its first non-finite cost (fewer steps, final J inf or
    nan).  Returns a dict label -> :class:`Path`.
    """
    from .optim import get_optimizer

    start = _as_float_vector(start, "start")
    if start.size != 2:
        raise ValueError(f"start must hold two numbers (w, b), got {start.size}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, got {steps!r}")
    specs = DEFAULT_OPTIMIZERS if optimizers is None else optimizers
    # every step's (w, b) is kept, for each path: refused before the first step when it cannot fit
    V.affordable((int(steps) + 1) * 2 * max(len(specs), 1) if hasattr(specs, "__len__") else 0, 8,
                 f"optimizer paths of {steps} steps")
    given = batch_size is not None
    batch_size = V.positive_int(batch_size, "batch_size") if given else 8
    V.Seed(allow_generator=False)(seed, "seed")
    n = getattr(J, "n_samples", None)
    if n and not given:
        batch_size = min(batch_size, n)
    dJ = grad(J)
    paths = {}
    for label, spec in specs.items():
        where = f"optimizers[{label!r}]"
        if not (isinstance(spec, (tuple, list)) and len(spec) == 3 and isinstance(spec[1], dict)):
            raise V.InvalidValueError(f"{where}: expected (name, hyperparameters, minibatch) as in "
                                      f"DEFAULT_OPTIMIZERS, got {spec!r}")
        name, hyper, minibatch = spec
        if minibatch and not n:
            raise ValueError(f"{label}: minibatches need a cost with n_samples (from single_neuron or two_parameters)")
        if minibatch and batch_size > n:
            raise V.InvalidValueError(f"batch_size {batch_size} exceeds the {n} samples of the cost ({where})")
        try:
            opt = get_optimizer(name, **hyper)
        except (ValueError, TypeError) as e:
            raise type(e)(f"{where}: {e}") from None
        theta = start.copy()
        state = opt.init([theta])
        rng = np.random.default_rng(seed)
        order, pos = np.arange(n or 0), n or 0
        points, costs = [theta.copy()], [float(J(theta))]
        # a learning rate too large for the surface diverges: the path stops at its first non-finite
        # point (its final J says so) instead of stepping on through a flood of overflow warnings
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for _ in range(steps):
                if not (np.isfinite(costs[-1]) and np.all(np.isfinite(theta))):
                    break
                rows = None
                if minibatch:
                    if pos + batch_size > n:
                        order, pos = rng.permutation(n), 0
                    rows, pos = order[pos:pos + batch_size], pos + batch_size
                g = dJ(theta) if rows is None else dJ(theta, rows)  # a cost written by hand may take theta alone
                opt.step([theta], [np.asarray(g, dtype=np.float64)], state)
                points.append(theta.copy())
                costs.append(float(J(theta)))
        paths[label] = Path(label, np.array(points), np.array(costs), float(opt.lr(0)) if opt.lr is not None else np.nan,
                            batch_size if minibatch else None)
    return paths


@dataclass
class LossPlane:
    """J on the plane theta* + alpha d1 + beta d2 through trained parameters theta*.

    ``cost[i, j]`` is J at (alpha[j], beta[i]); ``trajectory`` (k, 2) holds the
    projections of recorded parameter vectors onto (d1, d2), relative to theta*.
    """

    alpha: np.ndarray
    beta: np.ndarray
    cost: np.ndarray
    trajectory: np.ndarray | None = None
    directions: tuple = field(default=(), repr=False)
    kind: str = "random"
    center: float | None = None  # J(theta*), evaluated at theta* itself (the grid need not pass through it)

    def __repr__(self):
        return (f"LossPlane({self.kind} directions, {self.cost.shape[1]}x{self.cost.shape[0]} grid, J in "
                f"[{self.cost.min():.4g}, {self.cost.max():.4g}], J(theta*)={self.center_cost:.4g})")

    @property
    def center_cost(self):
        """J(theta*), the cost at the centre of the plane."""
        if self.center is not None:
            return float(self.center)
        i = int(np.argmin(np.abs(self.beta)))
        j = int(np.argmin(np.abs(self.alpha)))
        return float(self.cost[i, j])


def _filter_normalized(leaves, rng):
    """A random direction with each filter (column of a weight matrix) scaled to its parameter's norm.

    Li et al. (2018): d_ij <- d_ij / ||d_ij|| * ||theta_ij|| per filter j of layer i, so that
    planes of networks with different weight scales are comparable.  Biases and other 1-D
    leaves get zero direction, as in the paper.
    """
    out = []
    for p in leaves:
        if p.ndim < 2:
            out.append(np.zeros_like(p))
            continue
        d = rng.standard_normal(p.shape)
        dn = np.linalg.norm(d, axis=0, keepdims=True)
        pn = np.linalg.norm(p, axis=0, keepdims=True)
        out.append(d * (pn / np.where(dn > 0, dn, 1.0)))
    return out


def loss_plane(model, X, y, loss, params=None, trajectory=None, span=1.0, n=21, seed=0, directions="random"):
    """J on a plane through ``params`` (the model's, by default) along two filter-normalized directions.

    ``trajectory`` is an optional list of parameter pytrees recorded during
    training; each is projected onto the two directions (least squares, since
    the directions need not be orthogonal).  ``span`` sets the half-width of the
    grid in units of the directions, ``n`` (>= 2) its points per side; ``center_cost`` is J at
    ``params`` itself, whether or not the grid passes through it.

    ``directions="pca"`` takes instead the two principal directions of the
    trajectory's steps away from ``params`` (Li et al., section 7): random
    directions in a space of many parameters are nearly orthogonal to the path
    training took, so its projection onto them is a short scribble at the
    centre, while the principal directions show the path itself.
    """
    if directions not in ("random", "pca"):
        raise ValueError(f"directions must be 'random' or 'pca', got {directions!r}")
    if directions == "pca" and (trajectory is None or len(trajectory) < 3):
        raise ValueError("directions='pca' needs a trajectory of at least 3 recorded parameter sets")
    n = V.Whole(2)(n, "n")
    span = V.Number(0, low_open=True)(span, "span")
    seed = V.Seed(allow_generator=False)(seed, "seed")
    from .losses import get_loss

    loss = get_loss(loss)
    base = model.params if params is None else params
    leaves, tree = tree_flatten(base)
    leaves = [np.asarray(p, dtype=np.float64) for p in leaves]
    center = np.concatenate([c.ravel() for c in leaves])
    snaps = None
    if trajectory is not None:
        snaps = []
        for k, snap in enumerate(trajectory):
            flat = np.concatenate([np.asarray(q, dtype=np.float64).ravel() for q in tree_flatten(snap)[0]])
            if flat.shape != center.shape:
                raise V.InvalidValueError(f"trajectory[{k}] holds {flat.size} parameters, the model {center.size}; "
                                          f"record snapshots of this model's params")
            snaps.append(flat)
        snaps = np.array(snaps).reshape(len(snaps), center.size)
        if len(snaps) >= 2 and np.array_equal(snaps, np.broadcast_to(center, snaps.shape)):
            raise V.InvalidValueError(
                f"trajectory: all {len(snaps)} snapshots equal the parameters; training updates the parameter "
                f"arrays in place, so record copies, e.g. [{{k: np.array(v) for k, v in p.items()}} for p in "
                f"model.params]")
    rng = np.random.default_rng(seed)
    if directions == "random":
        d1 = _filter_normalized(leaves, rng)
        d2 = _filter_normalized(leaves, rng)
        f1, f2 = (np.concatenate([u.ravel() for u in d]) for d in (d1, d2))
        n1, n2 = np.linalg.norm(f1), np.linalg.norm(f2)
        if n1 == 0 or n2 == 0 or abs(f1 @ f2) >= (1 - 1e-9) * n1 * n2:
            raise V.InvalidValueError(
                "the two filter-normalized random directions are parallel (or zero): the model has too few weight "
                "filters to span a plane; draw two chosen parameters with two_parameters, or use directions='pca'")
    else:
        steps = snaps - center
        _, S, Vt = np.linalg.svd(steps - steps.mean(axis=0), full_matrices=False)
        if Vt.shape[0] < 2 or not S[0] > 0:
            raise V.InvalidValueError("directions='pca': the trajectory never moves (its snapshots are one point), "
                                      "so it has no principal directions")
        split = np.cumsum([c.size for c in leaves])[:-1]
        d1 = [u.reshape(c.shape) for u, c in zip(np.split(Vt[0], split), leaves)]
        d2 = [u.reshape(c.shape) for u, c in zip(np.split(Vt[1], split), leaves)]
        reach = np.abs(steps @ Vt[:2].T).max()
        span = span * 1.2 * reach
    from .train import prepare_data

    X, y = prepare_data(model, loss, X, y, where="loss_plane")
    alpha = np.linspace(-span, span, n)
    beta = np.linspace(-span, span, n)
    cost = np.empty((n, n))
    for i, bv in enumerate(beta):
        for j, av in enumerate(alpha):
            p = [c + av * u + bv * v for c, u, v in zip(leaves, d1, d2)]
            cost[i, j] = float(loss(model.apply(tree_unflatten(tree, p), X, logits=loss.from_logits), y))
    at_center = float(loss(model.apply(tree_unflatten(tree, leaves), X, logits=loss.from_logits), y))
    proj = None
    if snaps is not None:
        A = np.stack([np.concatenate([u.ravel() for u in d1]), np.concatenate([v.ravel() for v in d2])], axis=1)
        proj = np.linalg.lstsq(A, (snaps - center).T, rcond=None)[0].T
    return LossPlane(alpha, beta, cost, proj, (d1, d2), directions, at_center)
