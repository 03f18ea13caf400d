"""Plots as matplotlib Figures: shown inline in Jupyter, saved as PNG when given a path.

Every function builds one figure with matplotlib's object API
(:class:`matplotlib.figure.Figure`; pyplot is never imported and no global
matplotlib state, such as the backend or the rc parameters, is changed),
saves it to ``path`` when one is given (with its title in the PNG's
metadata), and returns it::

    from nablanet import viz
    fig = viz.learning_curves(history)          # a notebook shows it inline
    viz.learning_curves(history, "curves.png")  # a script saves it

The figures a run folder, a sweep or a comparison writes are laid out with
fixed spaces in inches between panels (room for tick labels, axis labels and
colour bars, so nothing runs into the next panel) and saved with a tight
bounding box (nothing is cut off at the edges): one layout pass instead of
constrained layout's several, which made each PNG cost three times as much.
The cost-surface figures keep constrained layout.  Metric names are written
as people write them (``"test_r2"`` is "test R²", ``"mse"`` is "MSE"), from
one table, :func:`metric_label`.
"""

from __future__ import annotations

import io
import os

import matplotlib.figure
import numpy as np

from . import validate as V

__all__ = ["Figure", "learning_curves", "confusion_matrix", "prediction_1d", "prediction_2d", "heatmap", "line",
           "bar_comparison", "graph", "metric_label", "cost_surface", "loss_plane", "animate_paths"]

_WORDS = {"r2": "R²", "mse": "MSE", "mae": "MAE", "rmse": "RMSE", "loss": "cost", "lr": "learning rate",
          "l1": "L1", "l2": "L2", "val": "validation"}


def metric_label(name):
    """How a metric's key reads on a plot: ``"test_r2"`` -> ``"test R²"``, ``"val_mse"`` -> ``"validation MSE"``."""
    return " ".join(_WORDS.get(w, w) for w in str(name).split("_"))


class Figure(matplotlib.figure.Figure):
    """A :class:`matplotlib.figure.Figure` that Jupyter shows as a PNG even when pyplot was never imported.

    (IPython shows a plain ``Figure`` as a picture only once pyplot has set up
    the inline backend; this one brings its own PNG representation.)
    """

    def _repr_png_(self):
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        return buf.getvalue()


# Spaces in inches, for 10-point text (about 0.085 in a character; titles are 12-point): a y axis's tick
# labels and label take ~0.7 in, a colour bar with its ticks and label ~1 in beyond the panel it belongs to.
_CHAR, _TITLE_CHAR = 0.085, 0.105
_PANEL_GAP, _COLORBAR_GAP = 0.9, 1.0


def _text_width(labels, char=_CHAR):
    return char * max((len(str(x)) for x in labels), default=0)


def _figure(figsize, ncols=1, colorbar=False, suptitle=False, title="", ylabels=(), xlabels=(), layout=None):
    """``(fig, title)``: a Figure of ``ncols`` panels in a row with fixed margins and gaps in inches, with room for
    the longest y tick label of ``ylabels`` and x tick label of ``xlabels``, and ``title`` broken into lines that
    fit above a panel (the whole figure for a ``suptitle``), so one draw lays it out; or matplotlib's
    ``layout="constrained"`` (several layout passes) for the cost-surface figures, their title broken alike (the
    layout makes room for its lines, not for a line wider than the figure)."""
    import textwrap

    w, h = figsize
    half_x = 0.5 * _text_width(xlabels) + 0.1  # the first and last x tick labels are centred on the panel's edges
    left = max(0.55 + max(0.35, _text_width(ylabels)), half_x)
    right = max(0.25 + (_COLORBAR_GAP if colorbar else 0.0), half_x)
    bottom = 0.6 + max(0.0, _text_width(xlabels) - 0.6) * 0.35
    top = 0.45 + (0.35 if suptitle else 0.0)
    gap = _PANEL_GAP + (_COLORBAR_GAP if colorbar else 0.0)
    panel = (w - left - right - (ncols - 1) * gap) / ncols
    lines = textwrap.wrap(title or "", max(12, int((w - 0.4 if suptitle else panel + 0.4) / _TITLE_CHAR))) or [""]
    if layout is not None:
        return Figure(figsize=figsize, layout=layout), "\n".join(lines)
    top += 0.2 * (len(lines) - 1)
    fig = Figure(figsize=(w, h))
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        wspace=gap / max(panel, 0.1))
    return fig, "\n".join(lines)


# Optimizer paths drawn over viridis contours: each line has a dark outline, so that no colour melts into the
# background (Set1's yellow vanished on viridis' yellow, where the paths start; its green and blue on the green/blue).
_PATH_COLORS = ["#e41a1c", "#ff7f00", "#ffff33", "#f781bf", "#a65628", "#984ea3", "#4daf4a", "#377eb8"]


def _outline():
    from matplotlib import patheffects

    return [patheffects.Stroke(linewidth=3.0, foreground="black", alpha=0.7), patheffects.Normal()]


_OUTLINE = _outline()


def _colorbar(fig, mappable, ax, label):
    """A colour bar in the panel's own slot (a thin strip on its right); its ticks and label use the gap after it."""
    return fig.colorbar(mappable, ax=ax, label=label, fraction=0.05, pad=0.03)


def _signed(z):
    """How a signed quantity (an error, a difference) is coloured: a diverging map with zero at its neutral middle,
    limits +-max|z| over the finite values (+-1 when all are zero), so that blue and red mean below and above zero."""
    finite = np.abs(z[np.isfinite(z)])
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return {"cmap": "coolwarm", "vmin": -top, "vmax": top}


def _whole_ticks(axis):
    """Ticks at whole numbers only on ``axis`` (an x or y axis of epochs or another count): none at epoch 2.5."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _points(name, a, ndim=1):
    """``a`` as a float array of ``ndim`` dimensions with at least one entry, or one error naming it."""
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError):
        raise V.InvalidTypeError(f"{name}: expected numbers, got {a!r:.60}") from None
    if ndim == 1:
        arr = np.ravel(arr) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != ndim or arr.size == 0:
        raise V.InvalidValueError(f"{name}: expected a non-empty {ndim}-d array of numbers, got shape {arr.shape}")
    return arr


def _same_length(**arrays):
    """Refuse arrays (or label lists) of different lengths, naming each with its length (zip would cut silently)."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise V.InvalidValueError("expected the same length: " + ", ".join(f"{k} has {n}" for k, n in lengths.items()))


def _finish(fig, path, title, suptitle=False, tight=False):
    """Save ``fig`` to ``path`` (when given) as PNG with its title in the metadata; ``tight`` crops to what is drawn
    (a second layout pass, for figures whose labels have no bound, such as model names)."""
    if suptitle:
        fig.suptitle(title)
    if path is not None:
        if not isinstance(path, (str, os.PathLike)):
            raise V.InvalidTypeError(f"path: expected a file path, got {path!r:.60}")
        path = os.fspath(path)
        if os.path.isdir(path):
            raise V.InvalidValueError(f"path: {path!r} is a folder; give a file name such as plot.png")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=100, bbox_inches="tight" if tight or fig.get_layout_engine() else None, pad_inches=0.08,
                    metadata={"Title": " ".join((title or "").split()), "Software": "nablanet"})
    return fig


_HELD_OUT = V.Choice(("validation", "test"))


def learning_curves(history, path=None, title="Learning curves", held_out="validation"):
    """Training and held-out cost, and each metric, per epoch.

    Parameters
    ----------
    history : nablanet.train.History or dict of lists (or arrays)
        Needs ``loss``; ``epoch`` is 1, 2, ... when left out (a Keras ``history.history`` has none); ``val_*``
        columns are the held-out curves.
    path : str or os.PathLike, optional
        Save the figure there as PNG.
    held_out : str
        What the ``val_*`` columns were measured on, for the legend:
        ``"validation"`` (data held out of training) or ``"test"``.
    """
    held_out = _HELD_OUT(held_out, "held_out")
    h = history.history if hasattr(history, "history") else history
    columns = isinstance(h, dict) and all(isinstance(v, (list, tuple, np.ndarray)) for v in h.values())
    if not columns or "loss" not in h or len(h["loss"]) == 0:
        raise V.InvalidValueError("history: expected a History (or dict of lists) with a 'loss' column of at least "
                                  "one epoch")
    h = {k: list(v) for k, v in h.items()}
    h.setdefault("epoch", list(range(1, len(h["loss"]) + 1)))
    _same_length(**{f"history[{k!r}]": v for k, v in h.items()})
    metrics = [k for k in h if k not in ("epoch", "loss", "val_loss", "lr", "time") and not k.startswith("val_")
               and any(v is not None for v in h[k])]
    fig, title = _figure((5.0 * (1 + len(metrics)), 3.8), ncols=1 + len(metrics), suptitle=bool(metrics), title=title)
    axes = fig.subplots(1, 1 + len(metrics), squeeze=False)[0]
    epochs = h["epoch"]

    def curves(ax, key):
        ax.plot(epochs, h[key], label="training")
        if f"val_{key}" in h and any(v is not None for v in h[f"val_{key}"]):
            ax.plot(epochs, h[f"val_{key}"], label=held_out)
        ax.set(title=metric_label(key), xlabel="epoch", ylabel=metric_label(key))
        _whole_ticks(ax.xaxis)
        ax.legend()

    curves(axes[0], "loss")
    finite = [v for v in h["loss"] if v is not None]
    if finite and min(finite) > 0:
        axes[0].set_yscale("log")
    for ax, m in zip(axes[1:], metrics):
        curves(ax, m)
    if len(axes) == 1:
        axes[0].set_title(title)
    return _finish(fig, path, title, suptitle=len(axes) > 1)


def confusion_matrix(y_true, y_pred, path=None, labels=None, title="Confusion matrix (test set)"):
    """Counts of true class (rows) against predicted class (columns), annotated."""
    from sklearn.metrics import confusion_matrix as cm

    classes = np.unique(np.concatenate([np.asarray(y_true), np.asarray(y_pred)])) if labels is None else labels
    M = cm(y_true, y_pred, labels=classes)
    fig, title = _figure((2.6 + 0.55 * len(classes), 1.6 + 0.5 * len(classes)), colorbar=True, title=title,
                  ylabels=classes, xlabels=classes)
    ax = fig.add_subplot()
    im = ax.imshow(M, cmap="Blues")
    _colorbar(fig, im, ax, "samples")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xticklabels=classes, yticklabels=classes,
           xlabel="predicted class", ylabel="true class", title=title)
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            ax.text(j, i, M[i, j], ha="center", va="center", color="white" if M[i, j] > M.max() / 2 else "black",
                    fontsize=8)
    return _finish(fig, path, title)


def prediction_1d(x, y_true, y_pred, path=None, title="Prediction against truth", xlabel="x", ylabel="y"):
    """A 1-d regression: the targets and the network's prediction against x (give x in the data's own units)."""
    x, y_true, y_pred = _points("x", x), _points("y_true", y_true), _points("y_pred", y_pred)
    _same_length(x=x, y_true=y_true, y_pred=y_pred)
    order = np.argsort(x)
    fig, title = _figure((6, 4), title=title)
    ax = fig.add_subplot()
    ax.scatter(x, np.ravel(y_true), s=8, alpha=0.5, label="truth")
    ax.plot(x[order], np.ravel(y_pred)[order], color="C3", lw=2, label="network")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    return _finish(fig, path, title)


def prediction_2d(f_true, f_pred, path=None, title="Prediction against truth", n=60, bounds=((0.0, 1.0), (0.0, 1.0))):
    """A 2-d regression: truth, prediction and their difference as maps over ``bounds`` ([0, 1]^2 by default).

    ``f_true`` and ``f_pred`` map an (m, 2) array of points to m values.
    """
    n = V.Whole(2, 1000)(n, "n")
    if not (callable(f_true) and callable(f_pred)):
        raise V.InvalidTypeError("f_true, f_pred: expected functions of an (m, 2) array of points")
    try:
        (x0, x1), (y0, y1) = [[V.finite_number(v, "bounds") for v in pair] for pair in bounds]
    except (TypeError, ValueError):
        raise V.InvalidValueError(f"bounds: expected ((x0, x1), (y0, y1)) with x0 < x1, y0 < y1, got {bounds!r:.60}") from None
    if not (x0 < x1 and y0 < y1):
        raise V.InvalidValueError(f"bounds: expected ((x0, x1), (y0, y1)) with x0 < x1, y0 < y1, got {bounds!r:.60}")
    xx, yy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    P = np.column_stack([xx.ravel(), yy.ravel()])
    zt = np.asarray(f_true(P)).reshape(n, n)
    zp = np.asarray(f_pred(P)).reshape(n, n)
    fig, title = _figure((15, 4.2), ncols=3, colorbar=True, suptitle=True, title=title)
    axes = fig.subplots(1, 3)
    vmin, vmax = min(zt.min(), zp.min()), max(zt.max(), zp.max())
    # the n x n values as an image over the bounds (one raster: cheaper to draw than a mesh of quadrilaterals)
    dx, dy = (x1 - x0) / (2 * (n - 1)), (y1 - y0) / (2 * (n - 1))
    grid = {"origin": "lower", "aspect": "auto", "interpolation": "nearest", "extent": (x0 - dx, x1 + dx, y0 - dy, y1 + dy)}
    for ax, z, name in ((axes[0], zt, "truth"), (axes[1], zp, "network")):
        im = ax.imshow(z, vmin=vmin, vmax=vmax, cmap="viridis", **grid)
        _colorbar(fig, im, ax, "f(x, y)")
        ax.set(title=name, xlabel="x", ylabel="y")
    err = zp - zt
    im = axes[2].imshow(err, **_signed(err), **grid)
    _colorbar(fig, im, axes[2], "network - truth")
    axes[2].set(title="error", xlabel="x", ylabel="y")
    return _finish(fig, path, title, suptitle=True)


def heatmap(values, row_labels, col_labels, path=None, row_name="rows", col_name="columns", metric="value", title=None,
            fmt=".3g"):
    """The course's figure: a metric over a grid of two settings, every cell annotated (``nan`` shows as "-")."""
    values = _points("values", values, ndim=2)
    if values.shape != (len(row_labels), len(col_labels)):
        raise V.InvalidValueError(f"values: shape {values.shape} does not fit {len(row_labels)} row labels and "
                                  f"{len(col_labels)} column labels")
    label = metric_label(metric)
    title = title or f"{label} over {metric_label(row_name)} and {metric_label(col_name)}"
    fig, title = _figure((3.2 + 1.0 * len(col_labels), 1.6 + 0.6 * len(row_labels)), colorbar=True, title=title,
                  ylabels=row_labels, xlabels=col_labels)
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap="viridis", aspect="auto")
    _colorbar(fig, im, ax, label)
    ax.set(xticks=range(len(col_labels)), yticks=range(len(row_labels)), xticklabels=[str(c) for c in col_labels],
           yticklabels=[str(r) for r in row_labels], xlabel=metric_label(col_name), ylabel=metric_label(row_name),
           title=title)
    finite = values[np.isfinite(values)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            txt = "-" if not np.isfinite(values[i, j]) else format(values[i, j], fmt)
            ax.text(j, i, txt, ha="center", va="center", color="white" if values[i, j] < mid else "black", fontsize=9)
    return _finish(fig, path, title)


def line(x_values, values, path=None, x_name="setting", metric="value", spread=None, title=None, logx="auto",
         spread_label="± spread"):
    """A metric along one setting (a 1-d sweep), with an optional band of +-``spread`` (e.g. over seeds), named in
    the legend by ``spread_label`` (a sweep says what it is: "± standard deviation over 3 seeds").

    ``logx="auto"`` uses a log axis when the settings are positive numbers spanning more than a factor 20.
    """
    x = np.asarray(x_values)
    y = _points("values", values)
    if x.ndim != 1:
        raise V.InvalidValueError(f"x_values: expected a 1-d list of settings, got shape {x.shape}")
    _same_length(x_values=x, values=y, **({} if spread is None else {"spread": np.ravel(spread)}))
    numeric = x.dtype.kind in "iuf"
    pos = np.arange(len(x)) if not numeric else x.astype(float)
    label = metric_label(metric)
    title = title or f"{label} over {metric_label(x_name)}"
    fig, title = _figure((6, 4), title=title, xlabels=[] if numeric else x)
    ax = fig.add_subplot()
    ax.plot(pos, y, marker="o")
    if spread is not None:
        s = np.asarray(spread, dtype=float)
        ax.fill_between(pos, y - s, y + s, alpha=0.25, label=str(spread_label))
        ax.legend()
    if not numeric:
        ax.set_xticks(pos, [str(v) for v in x])
    elif logx is True or (logx == "auto" and np.all(pos > 0) and pos.max() / pos.min() > 20):
        ax.set_xscale("log")
    elif x.dtype.kind in "iu":  # a whole-number setting (epochs, a batch size): no tick between two of its values
        _whole_ticks(ax.xaxis)
    ax.set(title=title, xlabel=metric_label(x_name), ylabel=label)
    return _finish(fig, path, title)


def bar_comparison(names, values, path=None, metric="value", title="Comparison on the same split"):
    """One bar per model for ``metric``."""
    values = _points("values", values)
    _same_length(names=list(names), values=values)
    fig, title = _figure((2.0 + 1.1 * len(names), 4), title=title)
    ax = fig.add_subplot()
    bars = ax.bar(range(len(names)), values, color=[f"C{i}" for i in range(len(names))])
    ax.set(xticks=range(len(names)), title=title, ylabel=metric_label(metric), xlabel="model")
    ax.set_xticklabels(names, rotation=20, ha="right")
    for b, v in zip(bars, values):
        ax.annotate(format(v, ".4g"), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                    fontsize=8)
    return _finish(fig, path, title, tight=True)  # model names of any length, rotated


def graph(nodes, path=None, title="Computational graph"):
    """Draw a computational graph: ``nodes`` is a list of dicts with ``label``
    and ``parents`` (indices into the list), in evaluation order."""
    if not isinstance(nodes, (list, tuple)) or not nodes:
        raise V.InvalidValueError(f"nodes: expected a non-empty list of dicts with label and parents, got {nodes!r:.60}")
    for i, nd in enumerate(nodes):
        if not (isinstance(nd, dict) and "label" in nd and isinstance(nd.get("parents"), (list, tuple))
                and all(isinstance(p, int) and 0 <= p < i for p in nd["parents"])):
            raise V.InvalidValueError(f"nodes[{i}]: expected a dict with a label and parents (indices of earlier "
                                      f"nodes), got {nd!r:.60}")
    depth = []
    for nd in nodes:
        depth.append(1 + max((depth[p] for p in nd["parents"]), default=-1))
    levels = {}
    for i, d in enumerate(depth):
        levels.setdefault(d, []).append(i)
    pos = {}
    for d, idx in levels.items():
        for k, i in enumerate(idx):
            pos[i] = (d, -(k - (len(idx) - 1) / 2))
    fig, title = _figure((2.6 * (max(depth) + 1) + 1, 1.6 * max(len(v) for v in levels.values()) + 1.5), title=title,
                         layout="constrained")
    ax = fig.add_subplot()
    for i, nd in enumerate(nodes):
        for p in nd["parents"]:
            ax.annotate("", xy=pos[i], xytext=pos[p], arrowprops={"arrowstyle": "->", "color": "0.4",
                        "shrinkA": 30, "shrinkB": 34, "lw": 1.2,
                        "mutation_scale": 14})
    for i, nd in enumerate(nodes):
        x, y = pos[i]
        ax.text(x, y, nd["label"], ha="center", va="center", fontsize=8, family="monospace",
                bbox={"boxstyle": "round,pad=0.4", "fc": "#e8f0fe" if nd["parents"] else "#fde8e8", "ec": "0.3"})
    ax.set_xlim(-0.7, max(depth) + 0.7)
    ys = [p[1] for p in pos.values()]
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.set(title=title, xlabel="evaluation order (inputs left, output right)")
    ax.set_yticks([])
    ax.set_xticks([])
    return _finish(fig, path, title)


# -- Cost surfaces and optimizer paths (nablanet.surface) -------------------------------------------


def _grid(w, b, cost, names=("w", "b")):
    """The axes and values of a cost grid, checked: 1-D ordered axes of >= 2 finite points, ``cost`` of shape
    ``(len(b), len(w))`` (matplotlib's layout, as :func:`nablanet.surface.cost_grid` makes it), finite."""
    axes = []
    for name, a in zip(names, (w, b)):
        a = np.asarray(a, dtype=float)
        if a.ndim != 1 or a.size < 2 or not np.all(np.isfinite(a)):
            raise ValueError(f"{name}: expected a 1-D array of at least 2 finite numbers, got shape {a.shape}")
        if not (np.all(np.diff(a) > 0) or np.all(np.diff(a) < 0)):
            raise ValueError(f"{name}: expected grid coordinates in increasing (or decreasing) order, as "
                             f"np.linspace gives them")
        axes.append(a)
    cost = np.asarray(cost, dtype=float)
    want = (axes[1].size, axes[0].size)
    if cost.shape != want:
        raise ValueError(f"cost has shape {cost.shape}; expected (len({names[1]}), len({names[0]})) = {want}, "
                         f"as surface.cost_grid({names[0]}, {names[1]}) returns it")
    if not np.all(np.isfinite(cost)):
        raise ValueError(f"cost holds values that are not finite ({int(np.sum(~np.isfinite(cost)))} of {cost.size}); "
                         f"narrow the grid to where J is finite")
    return axes[0], axes[1], cost


def _levels(cost):
    """Contour levels at the quantiles of J (so flat valleys and steep walls both show), or a band around a flat J."""
    levels = np.unique(np.quantile(cost, np.linspace(0, 1, 25)))
    if levels.size < 2:
        c = float(levels[0])
        levels = np.array([c - 0.5 * max(abs(c), 1e-12), c + 0.5 * max(abs(c), 1e-12)])
    return levels


def _paths(paths):
    """Optimizer paths as a list: a dict label -> Path (what surface.optimizer_paths returns), or Paths."""
    if paths is None:
        return []
    items = list(paths.values()) if isinstance(paths, dict) else list(paths) if hasattr(paths, "__iter__") else None
    if items is None or not all(hasattr(p, "points") and hasattr(p, "costs") for p in items):
        raise ValueError(f"paths: expected a dict of label -> Path (from surface.optimizer_paths) or a list of "
                         f"Paths, got {type(paths).__name__}")
    return items


def _path_label(p):
    return f"{p.name}: {p.steps} steps, lr {p.lr:g}, final J {p.final_cost:.3g}"


def cost_surface(w, b, cost, field=None, paths=None, path=None, title="Cost J(w, b) with -grad J and optimizer paths",
                 surface3d=True, every=3):
    """The notes' "gradient on a surface": J over a (w, b) grid as a contour map (left) and a 3-D
    surface (right), -grad J as arrows, and each optimizer's path with its steps and final J.

    ``cost`` comes from :func:`nablanet.surface.cost_grid`, ``field`` (u, v) from
    :func:`~nablanet.surface.descent_field`, ``paths`` from :func:`~nablanet.surface.optimizer_paths`.
    Arrows are drawn at every ``every``-th grid point. Returns the Figure.
    """
    from . import validate as V

    w, b, cost = _grid(w, b, cost)
    every = V.positive_int(every, "every")
    paths = _paths(paths)
    if field is not None:
        try:
            u, v = (np.asarray(a, dtype=float) for a in field)
        except (TypeError, ValueError):
            u = v = None
        if u is None or u.shape != cost.shape or v.shape != cost.shape:
            raise ValueError(f"field: expected two arrays (u, v) of shape {cost.shape}, as "
                             f"surface.descent_field(J, w, b) returns them")
    fig, title = _figure((13 if surface3d else 7, 5.5), ncols=2 if surface3d else 1, colorbar=True, suptitle=True,
                         title=title, layout="constrained")
    ax = fig.add_subplot(1, 2 if surface3d else 1, 1)
    cs = ax.contourf(w, b, cost, levels=_levels(cost), cmap="viridis")
    fig.colorbar(cs, ax=ax, label="J(w, b)")
    if field is not None:
        u, v = field
        s = slice(None, None, every)
        ax.quiver(w[s], b[s], u[s, s], v[s, s], color="white", alpha=0.7, angles="xy")
    colors = _PATH_COLORS
    for k, p in enumerate(paths):
        c = colors[k % len(colors)]
        ax.plot(p.points[:, 0], p.points[:, 1], "-", color=c, lw=1.6, label=_path_label(p),
                path_effects=_OUTLINE)
        ax.plot(*p.points[-1], "o", color=c, ms=5)
    if paths:
        start = paths[0].points[0]
        ax.plot(*start, "k*", ms=12, label="start")
        ax.legend(fontsize=7, loc="upper right", framealpha=0.85)
    ax.set(xlabel="w", ylabel="b", title="contours of J and -grad J", xlim=(w[0], w[-1]), ylim=(b[0], b[-1]))
    if surface3d:
        ax3 = fig.add_subplot(1, 2, 2, projection="3d")
        Wg, Bg = np.meshgrid(w, b)
        ax3.plot_surface(Wg, Bg, cost, cmap="viridis", alpha=0.8, linewidth=0)
        for k, p in enumerate(paths):
            ax3.plot(p.points[:, 0], p.points[:, 1], p.costs, color=colors[k % len(colors)], lw=1.6)
        ax3.set(xlabel="w", ylabel="b", zlabel="J", title="J(w, b)")
    fig.suptitle(title)
    return _finish(fig, path, title)


def loss_plane(plane, path=None, title="Loss on a plane through the trained parameters"):
    """Contours of J on a filter-normalized random plane (:func:`nablanet.surface.loss_plane`), with the
    training trajectory projected onto it. Returns the Figure."""
    fig, title = _figure((6.5, 5.5), colorbar=True, title=title, layout="constrained")
    ax = fig.add_subplot()
    alpha, beta, cost = _grid(plane.alpha, plane.beta, plane.cost, names=("alpha", "beta"))
    levels = _levels(cost)
    cs = ax.contourf(alpha, beta, cost, levels=levels, cmap="viridis")
    ax.contour(alpha, beta, cost, levels=levels, colors="k", linewidths=0.3)
    fig.colorbar(cs, ax=ax, label="cost J")
    if plane.trajectory is not None:
        t = plane.trajectory
        ax.plot(t[:, 0], t[:, 1], "w.-", lw=1.2, label="training trajectory (projected)")
        ax.plot(t[0, 0], t[0, 1], "w*", ms=11, label="first recorded parameters")
        ax.legend(fontsize=8)
    ax.plot(0, 0, "r+", ms=12, mew=2)
    words = "filter-normalized random" if getattr(plane, "kind", "random") == "random" else "principal, of the trajectory"
    ax.set(xlabel=f"direction 1 ({words})", ylabel=f"direction 2 ({words})", title=title)
    return _finish(fig, path, title)


def animate_paths(w, b, cost, paths, path, fps=12, title="Optimizer paths on J(w, b)"):
    """A GIF of the optimizer paths growing step by step over the contours of J (Pillow writer).

    Writes ``path`` and returns the Figure of the last frame.
    """
    from matplotlib.animation import FuncAnimation, PillowWriter

    from . import validate as V

    w, b, cost = _grid(w, b, cost)
    fps = V.positive_number(fps, "fps")
    if not os.fspath(path).lower().endswith(".gif"):
        raise ValueError(f"path: the animation is a GIF (matplotlib's Pillow writer); give a file name ending in "
                         f".gif, got {os.fspath(path)!r}")
    paths = _paths(paths)
    if not paths:
        raise ValueError("paths: expected at least one optimizer path (from surface.optimizer_paths), got none")
    fig, title = _figure((6.5, 5.5), title=title, layout="constrained")
    ax = fig.add_subplot()
    ax.contourf(w, b, cost, levels=_levels(cost), cmap="viridis")
    ax.set(xlabel="w", ylabel="b", title=title)
    lines = [ax.plot([], [], "-o", ms=2, lw=1.5, label=_path_label(p), color=_PATH_COLORS[k % len(_PATH_COLORS)],
                     path_effects=_OUTLINE)[0] for k, p in enumerate(paths)]
    ax.legend(fontsize=7, loc="upper right")
    n = max(p.steps for p in paths) + 1

    def frame(k):
        for line, p in zip(lines, paths):
            line.set_data(p.points[: k + 1, 0], p.points[: k + 1, 1])
        return lines

    anim = FuncAnimation(fig, frame, frames=n, blit=False)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    anim.save(path, writer=PillowWriter(fps=fps))
    return fig
