"""Plots: matplotlib Figures from the object API, saved only when asked, no global matplotlib state touched."""

import os
import subprocess
import sys

import matplotlib
import matplotlib.figure
import numpy as np
from png_files import PNG_MAGIC, png_title

from nablanet import viz
from nablanet.train.callbacks import History


def history(metric="accuracy"):
    h = History()
    for e in range(3):
        h.append({"epoch": e + 1, "loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1), metric: 0.5 + 0.1 * e,
                  f"val_{metric}": 0.4 + 0.1 * e})
    return h


def all_plots(path=None):
    p = (lambda name: None) if path is None else (lambda name: path / name)
    return {
        "curves": viz.learning_curves(history(), p("a.png")),
        "cm": viz.confusion_matrix([0, 1, 2, 1], [0, 2, 2, 1], p("b.png")),
        "p1": viz.prediction_1d(np.linspace(-1, 1, 20), np.sin(np.linspace(-1, 1, 20)), np.zeros(20), p("c.png")),
        "p2": viz.prediction_2d(lambda P: P[:, 0], lambda P: P[:, 1], p("d.png")),
        "hm": viz.heatmap(np.arange(6.0).reshape(2, 3), [1, 2], ["a", "b", "c"], p("e.png"), "lr", "l2", "test_r2"),
        "bar": viz.bar_comparison(["x", "y"], [0.5, 0.7], p("f.png"), "test_accuracy"),
        "graph": viz.graph([{"label": "x", "parents": []}, {"label": "exp(x)", "parents": [0]}], p("g.png")),
        "line": viz.line([1e-4, 1e-3, 1e-2], [0.3, 0.2, 0.4], p("h.png"), "lr", "test_mse", spread=[0.01, 0.02, 0.05]),
    }


def labels(fig):
    return [(ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]


def test_every_plot_returns_a_figure_and_saves_only_when_given_a_path(tmp_path):
    made = all_plots()
    assert all(isinstance(f, matplotlib.figure.Figure) for f in made.values())
    assert os.listdir(tmp_path) == []
    saved = all_plots(tmp_path)
    for f in "abcdefgh":
        assert png_title(tmp_path / f"{f}.png")
    assert png_title(tmp_path / "a.png") == "Learning curves"
    assert labels(made["curves"]) == labels(saved["curves"])
    assert ("cost", "epoch", "cost") in labels(made["curves"])
    assert any(ax[1] == "predicted class" and ax[2] == "true class" for ax in labels(made["cm"]))
    assert any(ax[1] == "L2" and ax[2] == "learning rate" for ax in labels(made["hm"]))
    assert any(ax[1] == "x" and ax[2] == "y" for ax in labels(made["p2"]))
    assert any(ax[2] == "test accuracy" for ax in labels(made["bar"]))
    assert made["line"].axes[0].get_xscale() == "log" and made["line"].axes[0].get_ylabel() == "test MSE"


def test_r2_is_written_as_r_squared_and_the_held_out_curve_says_what_it_is():
    fig = viz.learning_curves(history("r2"), held_out="test")
    ax_r2 = fig.axes[1]
    assert ax_r2.get_ylabel() == "R²" and ax_r2.get_title() == "R²"
    assert [t.get_text() for t in ax_r2.get_legend().get_texts()] == ["training", "test"]
    fig = viz.learning_curves(history("r2"))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["training", "validation"]
    hm = viz.heatmap(np.eye(2), [1, 2], [3, 4], metric="test_r2")
    assert hm.axes[-1].get_ylabel() == "test R²"  # the colour bar
    assert viz.metric_label("val_mse") == "validation MSE"


def _overlap(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_colour_bars_and_their_labels_do_not_run_into_the_next_panel():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = viz.prediction_2d(lambda P: P[:, 0] * P[:, 1], lambda P: P[:, 0], n=10)
    FigureCanvasAgg(fig).draw()
    r = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(panels) == 3 and len(bars) == 3
    for bar, nxt in zip(bars[:2], panels[1:]):
        assert not _overlap(bar.get_tightbbox(r), nxt.get_tightbbox(r))


def test_a_figure_shows_itself_as_png_without_pyplot():
    data = viz.bar_comparison(["a"], [1.0])._repr_png_()
    assert data[:8] == PNG_MAGIC


def test_plotting_changes_no_global_matplotlib_state(tmp_path):
    code = (
        "import sys, matplotlib, numpy as np\n"
        "backend = matplotlib.get_backend(); rc = dict(matplotlib.rcParams)\n"
        "from nablanet import viz\n"
        "viz.heatmap(np.eye(2), [1, 2], [3, 4]); viz.prediction_1d([0, 1], [0, 1], [0, 1])\n"
        "from nablanet import surface\n"  # the surfaces too: a 3-D axes, contours, a GIF through Pillow
        "J = surface.single_neuron([0.1, 0.5, 0.9], [0.2, 0.3, 0.5])\n"
        "w, b = np.linspace(-2, 2, 5), np.linspace(-2, 2, 4)\n"
        "Z = surface.cost_grid(J, w, b); paths = surface.optimizer_paths(J, [1.0, 1.0], steps=3)\n"
        "viz.cost_surface(w, b, Z, surface.descent_field(J, w, b), paths)\n"
        "viz.loss_plane(surface.LossPlane(w, w, np.outer(w, w) ** 2))\n"
        f"viz.animate_paths(w, b, Z, paths, {str(tmp_path / 'p.gif')!r})\n"
        "assert matplotlib.get_backend() == backend, matplotlib.get_backend()\n"
        "assert dict(matplotlib.rcParams) == rc\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "MPLBACKEND": "svg"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr


def test_heatmap_shows_missing_cells_as_a_dash():
    fig = viz.heatmap([[1.0, np.nan]], [1], ["a", "b"])
    assert "-" in [t.get_text() for t in fig.axes[0].texts]
