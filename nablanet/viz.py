"""Plots, saved as PNG without a display (matplotlib's Agg backend).

Every function draws one figure, saves it to ``path`` with its title in the
PNG's metadata, closes it, and returns the figure's labels, so callers (and
tests) can check what was drawn.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["learning_curves", "confusion_matrix", "prediction_1d", "prediction_2d", "heatmap", "bar_comparison", "graph",
           "cost_surface", "loss_plane", "animate_paths"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, title):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Title": title, "Software": "nablanet"})
    labels = {"title": title, "axes": [(ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]}
    _plt().close(fig)
    return labels


def learning_curves(history, path, title="Learning curves"):
    """Training (and validation) cost, and metrics, per epoch."""
    plt = _plt()
    h = history.history if hasattr(history, "history") else history
    metrics = [k for k in h if k not in ("epoch", "loss", "val_loss", "lr", "time") and not k.startswith("val_")]
    fig, axes = plt.subplots(1, 1 + len(metrics), figsize=(5.5 * (1 + len(metrics)), 4), squeeze=False)
    epochs = h["epoch"]
    ax = axes[0, 0]
    ax.plot(epochs, h["loss"], label="training")
    if "val_loss" in h and any(v is not None for v in h["val_loss"]):
        ax.plot(epochs, h["val_loss"], label="validation")
    ax.set(title="cost", xlabel="epoch", ylabel="cost")
    if min(v for v in h["loss"] if v is not None) > 0:
        ax.set_yscale("log")
    ax.legend()
    for ax, m in zip(axes[0, 1:], metrics):
        ax.plot(epochs, h[m], label="training")
        if f"val_{m}" in h:
            ax.plot(epochs, h[f"val_{m}"], label="validation")
        ax.set(title=m, xlabel="epoch", ylabel=m)
        ax.legend()
    fig.suptitle(title)
    return _save(fig, path, title)


def confusion_matrix(y_true, y_pred, path, labels=None, title="Confusion matrix (test set)"):
    """Counts of true class (rows) against predicted class (columns), annotated."""
    from sklearn.metrics import confusion_matrix as cm

    plt = _plt()
    classes = np.unique(np.concatenate([np.asarray(y_true), np.asarray(y_pred)])) if labels is None else labels
    M = cm(y_true, y_pred, labels=classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(classes), 1 + 0.5 * len(classes)))
    im = ax.imshow(M, cmap="Blues")
    fig.colorbar(im, ax=ax, label="samples")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xticklabels=classes, yticklabels=classes,
           xlabel="predicted class", ylabel="true class", title=title)
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            ax.text(j, i, M[i, j], ha="center", va="center", color="white" if M[i, j] > M.max() / 2 else "black",
                    fontsize=8)
    return _save(fig, path, title)


def prediction_1d(x, y_true, y_pred, path, title="Prediction against truth", xlabel="x", ylabel="y"):
    """A 1-d regression: the targets and the network's prediction against x."""
    plt = _plt()
    x = np.ravel(x)
    order = np.argsort(x)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(x, np.ravel(y_true), s=8, alpha=0.5, label="truth")
    ax.plot(x[order], np.ravel(y_pred)[order], color="C3", lw=2, label="network")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    return _save(fig, path, title)


def prediction_2d(f_true, f_pred, path, title="Prediction against truth", n=60):
    """A 2-d regression on [0, 1]^2: truth, prediction and their difference as maps.

    ``f_true`` and ``f_pred`` map an (m, 2) array of points to m values.
    """
    plt = _plt()
    g = np.linspace(0, 1, n)
    xx, yy = np.meshgrid(g, g)
    P = np.column_stack([xx.ravel(), yy.ravel()])
    zt = np.asarray(f_true(P)).reshape(n, n)
    zp = np.asarray(f_pred(P)).reshape(n, n)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    vmin, vmax = min(zt.min(), zp.min()), max(zt.max(), zp.max())
    for ax, z, name in ((axes[0], zt, "truth"), (axes[1], zp, "network")):
        im = ax.pcolormesh(xx, yy, z, vmin=vmin, vmax=vmax, cmap="viridis", shading="auto")
        fig.colorbar(im, ax=ax, label="f(x, y)")
        ax.set(title=name, xlabel="x", ylabel="y")
    im = axes[2].pcolormesh(xx, yy, zp - zt, cmap="coolwarm", shading="auto")
    fig.colorbar(im, ax=axes[2], label="network - truth")
    axes[2].set(title="error", xlabel="x", ylabel="y")
    fig.suptitle(title)
    return _save(fig, path, title)


def heatmap(values, row_labels, col_labels, path, row_name, col_name, metric, title=None, fmt=".3g"):
    """The course's figure: a metric over a grid of two settings, every cell annotated."""
    plt = _plt()
    V = np.asarray(values, dtype=float)
    title = title or f"{metric} over {row_name} and {col_name}"
    fig, ax = plt.subplots(figsize=(1.5 + 1.0 * len(col_labels), 1.2 + 0.7 * len(row_labels)))
    im = ax.imshow(V, cmap="viridis", aspect="auto")
    fig.colorbar(im, ax=ax, label=metric)
    ax.set(xticks=range(len(col_labels)), yticks=range(len(row_labels)), xticklabels=[str(c) for c in col_labels],
           yticklabels=[str(r) for r in row_labels], xlabel=col_name, ylabel=row_name, title=title)
    finite = V[np.isfinite(V)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0
    for i in range(V.shape[0]):
        for j in range(V.shape[1]):
            txt = "-" if not np.isfinite(V[i, j]) else format(V[i, j], fmt)
            ax.text(j, i, txt, ha="center", va="center", color="white" if V[i, j] < mid else "black", fontsize=9)
    return _save(fig, path, title)


def bar_comparison(names, values, path, metric, title="Comparison on the same split"):
    """One bar per model for ``metric``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.5 + 1.1 * len(names), 4))
    bars = ax.bar(range(len(names)), values, color=[f"C{i}" for i in range(len(names))])
    ax.set(xticks=range(len(names)), title=title, ylabel=metric, xlabel="model")
    ax.set_xticklabels(names, rotation=20, ha="right")
    for b, v in zip(bars, values):
        ax.annotate(format(v, ".4g"), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                    fontsize=8)
    return _save(fig, path, title)


def graph(nodes, path, title="Computational graph"):
    """Draw a computational graph: ``nodes`` is a list of dicts with ``name``, ``label``
    and ``parents`` (indices into the list), in evaluation order."""
    plt = _plt()
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
    fig, ax = plt.subplots(figsize=(2.6 * (max(depth) + 1) + 1, 1.6 * max(len(v) for v in levels.values()) + 1.5))
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
    return _save(fig, path, title)


# -- Cost surfaces and optimizer paths (nablanet.surface) -------------------------------------------
# Built with matplotlib's object API: a Figure is returned (it shows inline in Jupyter) and pyplot's
# global state is never touched; ``path`` saves a PNG as well.


def _figure(**kw):
    from matplotlib.figure import Figure

    return Figure(**kw)


def _maybe_save(fig, path, title):
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Title": title, "Software": "nablanet"})
    return fig


def cost_surface(w, b, cost, field=None, paths=None, path=None, title="Cost J(w, b) with -grad J and optimizer paths",
                 surface3d=True, every=3):
    """The notes' "gradient on a surface": J over a (w, b) grid as a contour map (left) and a 3-D
    surface (right), -grad J as arrows, and each optimizer's path with its steps and final J.

    ``cost`` comes from :func:`nablanet.surface.cost_grid`, ``field`` (u, v) from
    :func:`~nablanet.surface.descent_field`, ``paths`` from :func:`~nablanet.surface.optimizer_paths`.
    Arrows are drawn at every ``every``-th grid point. Returns the Figure.
    """
    w, b, cost = np.asarray(w), np.asarray(b), np.asarray(cost)
    fig = _figure(figsize=(13 if surface3d else 7, 5.5), layout="constrained")
    ax = fig.add_subplot(1, 2 if surface3d else 1, 1)
    levels = np.quantile(cost, np.linspace(0, 1, 25))
    cs = ax.contourf(w, b, cost, levels=np.unique(levels), cmap="viridis")
    fig.colorbar(cs, ax=ax, label="J(w, b)")
    if field is not None:
        u, v = field
        s = slice(None, None, every)
        ax.quiver(w[s], b[s], u[s, s], v[s, s], color="white", alpha=0.7, angles="xy")
    colors = ["#e41a1c", "#ff7f00", "#ffff33", "#f781bf", "#a65628", "#984ea3", "#4daf4a", "#377eb8"]
    for k, p in enumerate((paths or {}).values()):
        c = colors[k % len(colors)]
        ax.plot(p.points[:, 0], p.points[:, 1], "-", color=c, lw=1.6,
                label=f"{p.name}: {p.steps} steps, lr {p.lr:g}, final J {p.final_cost:.3g}")
        ax.plot(*p.points[-1], "o", color=c, ms=5)
    if paths:
        start = next(iter(paths.values())).points[0]
        ax.plot(*start, "k*", ms=12, label="start")
        ax.legend(fontsize=7, loc="upper right", framealpha=0.85)
    ax.set(xlabel="w", ylabel="b", title="contours of J and -grad J", xlim=(w[0], w[-1]), ylim=(b[0], b[-1]))
    if surface3d:
        ax3 = fig.add_subplot(1, 2, 2, projection="3d")
        Wg, Bg = np.meshgrid(w, b)
        ax3.plot_surface(Wg, Bg, cost, cmap="viridis", alpha=0.8, linewidth=0)
        for k, p in enumerate((paths or {}).values()):
            ax3.plot(p.points[:, 0], p.points[:, 1], p.costs, color=colors[k % len(colors)], lw=1.6)
        ax3.set(xlabel="w", ylabel="b", zlabel="J", title="J(w, b)")
    fig.suptitle(title)
    return _maybe_save(fig, path, title)


def loss_plane(plane, path=None, title="Loss on a plane through the trained parameters"):
    """Contours of J on a filter-normalized random plane (:func:`nablanet.surface.loss_plane`), with the
    training trajectory projected onto it. Returns the Figure."""
    fig = _figure(figsize=(6.5, 5.5), layout="constrained")
    ax = fig.add_subplot()
    cost = plane.cost
    levels = np.unique(np.quantile(cost, np.linspace(0, 1, 25)))
    cs = ax.contourf(plane.alpha, plane.beta, cost, levels=levels, cmap="viridis")
    ax.contour(plane.alpha, plane.beta, cost, levels=levels, colors="k", linewidths=0.3)
    fig.colorbar(cs, ax=ax, label="J")
    if plane.trajectory is not None:
        t = plane.trajectory
        ax.plot(t[:, 0], t[:, 1], "w.-", lw=1.2, label="training trajectory (projected)")
        ax.plot(t[0, 0], t[0, 1], "w*", ms=11, label="first recorded epoch")
        ax.legend(fontsize=8)
    ax.plot(0, 0, "r+", ms=12, mew=2)
    ax.set(xlabel="direction 1 (filter-normalized)", ylabel="direction 2 (filter-normalized)", title=title)
    return _maybe_save(fig, path, title)


def animate_paths(w, b, cost, paths, path, fps=12, title="Optimizer paths on J(w, b)"):
    """A GIF of the optimizer paths growing step by step over the contours of J (Pillow writer).

    Writes ``path`` and returns the Figure of the last frame.
    """
    from matplotlib.animation import FuncAnimation, PillowWriter

    fig = _figure(figsize=(6.5, 5.5), layout="constrained")
    ax = fig.add_subplot()
    ax.contourf(w, b, cost, levels=np.unique(np.quantile(cost, np.linspace(0, 1, 25))), cmap="viridis")
    ax.set(xlabel="w", ylabel="b", title=title)
    lines = [ax.plot([], [], "-o", ms=2, lw=1.5, label=p.name)[0] for p in paths.values()]
    ax.legend(fontsize=7, loc="upper right")
    n = max(p.steps for p in paths.values()) + 1

    def frame(k):
        for line, p in zip(lines, paths.values()):
            line.set_data(p.points[: k + 1, 0], p.points[: k + 1, 1])
        return lines

    anim = FuncAnimation(fig, frame, frames=n, blit=False)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    anim.save(path, writer=PillowWriter(fps=fps))
    return fig
