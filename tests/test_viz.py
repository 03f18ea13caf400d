"""Plots: matplotlib Figures from the object API, saved only when asked, no global matplotlib state touched."""

import os
import subprocess
import sys

import matplotlib
import matplotlib.figure
import numpy as np
import pytest
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


def _hard_cases():
    """Figures with long titles, long tick labels, many classes and several panels, as run folders, sweeps and
    comparisons draw them."""
    long_rows = ["16", "32x32", "64x64x64", "128x128x128x128"]
    return {
        "curves": viz.learning_curves(history(), title="breast_cancer_with_a_long_name: learning curves"),
        "curves1": viz.learning_curves({"epoch": [1, 2], "loss": [1e-5, 2e-6]}, title="runge: learning curves"),
        "cm2": viz.confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0], title="breast_cancer: confusion matrix (test set)"),
        "cm10": viz.confusion_matrix(np.arange(10), np.arange(10)[::-1]),
        "cm_names": viz.confusion_matrix(["setosa", "versicolor"], ["setosa", "virginica_long_name"]),
        "p1": viz.prediction_1d(np.linspace(-1, 1, 9), np.zeros(9), np.ones(9) * 1e4, title="runge: prediction (test set)"),
        "p2": viz.prediction_2d(lambda P: 1e3 * P[:, 0], lambda P: P[:, 1], n=8, title="franke: prediction against truth"),
        "hm": viz.heatmap(np.random.default_rng(0).random((4, 3)), long_rows, [1e-4, 1e-3, 1e-2], None, "hidden", "lr",
                          "test_r2", title="franke: test R² (mean over 3 seeds), best over l2, dropout"),
        "line": viz.line(long_rows, [0.1, 0.2, 0.3, 0.4], None, "hidden", "test_accuracy", spread=[0.01] * 4),
        "bar": viz.bar_comparison(["Ridge (degree 5 features, alpha=0.0001 by leave-one-out CV)", "PyTorch MLP"],
                                  [0.002, 0.008], None, "test_mse"),
    }


def test_nothing_is_cut_off_and_no_panel_runs_into_another(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    assert viz.learning_curves(history()).get_layout_engine() is None  # one layout pass: no engine
    for name, fig in _hard_cases().items():
        canvas = FigureCanvasAgg(fig)
        fig.set_dpi(100)
        canvas.draw()  # as the files are written: one draw at the figure's own size
        r = canvas.get_renderer()
        box = fig.bbox
        tight = name == "bar"  # saved with a tight bounding box: cropped to what is drawn, whatever sticks out
        drawn = [(f"panel {ax.get_title()!r}", ax.get_tightbbox(r)) for ax in fig.axes]  # ticks, labels, title
        drawn += [(repr(t.get_text()), t.get_window_extent(r)) for t in fig.get_children()
                  if isinstance(t, Text) and t.get_visible() and t.get_text()]  # the figure's own title
        for what, e in [] if tight else drawn:
            assert e.x0 >= box.x0 - 1 and e.x1 <= box.x1 + 1 and e.y0 >= box.y0 - 1 and e.y1 <= box.y1 + 1, \
                f"{name}: {what} is cut off ({e} outside {box})"
        axes = fig.axes
        for i, a in enumerate(axes):
            for b in axes[i + 1:]:
                if a.get_label() == "<colorbar>" or b.get_label() == "<colorbar>":
                    # a colour bar sits beside its own panel; only its labels must stay off the next panel
                    bars = [x for x in (a, b) if x.get_label() == "<colorbar>"]
                    other = [x for x in (a, b) if x.get_label() != "<colorbar>"]
                    if not other or other[0].get_position().x0 < bars[0].get_position().x0:
                        continue
                    assert not _overlap(bars[0].get_tightbbox(r), other[0].get_tightbbox(r)), name
                else:
                    assert not _overlap(a.get_tightbbox(r), b.get_tightbbox(r)), f"{name}: panels overlap"


def test_a_seeded_sweep_says_what_its_band_is(tmp_path):
    """The band of a 1-d sweep over seeds is the standard deviation; its legend says so (it said '± spread')."""
    from nablanet import experiments

    drawn = []

    class Spy:
        metric_label = staticmethod(viz.metric_label)

        def line(self, *a, **k):
            drawn.append(viz.line(*a, **k))
            return drawn[-1]

    rows = [{"lr": 0.1, "test_mse": 1.0, "test_mse_std": 0.1}, {"lr": 0.01, "test_mse": 2.0, "test_mse_std": 0.2}]
    experiments._sweep_plot(Spy(), str(tmp_path), "runge", {"lr": [0.1, 0.01]}, ["lr"], rows, "test_mse", 3)
    texts = [t.get_text() for t in drawn[0].axes[0].get_legend().get_texts()]
    assert texts == ["± standard deviation over 3 seeds"]


def test_learning_curves_of_a_plain_dict_of_columns():
    """A dict of lists or arrays without 'epoch' (Keras' history.history) is drawn over epochs 1, 2, ...; columns of
    different lengths are refused naming them (matplotlib's 'x and y must have same first dimension' before)."""
    fig = viz.learning_curves({"loss": np.array([1.0, 0.5, 0.25]), "val_loss": [1.1, 0.6, 0.3]})
    assert list(fig.axes[0].lines[0].get_xdata()) == [1, 2, 3]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["training", "validation"]
    with pytest.raises(ValueError, match=r"history\['val_loss'\] has 2"):
        viz.learning_curves({"loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.6]})


def test_a_signed_error_map_is_centred_at_zero():
    """A diverging colour map of a signed error puts zero at its neutral middle: symmetric limits +-max|error|
    (the runge2d error map ran from -0.4 to 0.08, so zero showed red)."""
    fig = viz.prediction_2d(lambda P: np.zeros(len(P)), lambda P: 0.08 - 0.48 * P[:, 0], n=11)
    error = fig.axes[2].images[0]  # truth, network, error (then their colour bars)
    assert error.get_cmap().name == "coolwarm"
    assert error.get_clim() == pytest.approx((-0.4, 0.4))
    flat = viz.prediction_2d(lambda P: P[:, 0], lambda P: P[:, 0], n=5).axes[2].images[0]  # no error at all
    lo, hi = flat.get_clim()
    assert lo == -hi and hi > 0


def test_held_out_is_one_of_the_documented_names():
    with pytest.raises(viz.V.InvalidValueError, match="held_out: expected one of validation, test, got 'bogus'"):
        viz.learning_curves(history(), held_out="bogus")
    with pytest.raises(viz.V.InvalidTypeError, match="held_out"):
        viz.learning_curves(history(), held_out=None)


def test_epoch_axes_have_whole_numbers_only():
    """Learning curves of a short run put no tick at epoch 2.5; nor does a sweep over a whole-number setting."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def ticks(ax):
        FigureCanvasAgg(ax.figure).draw()
        lo, hi = ax.get_xlim()
        return [t for t in ax.get_xticks() if lo <= t <= hi]

    for n in (2, 3, 7, 12):
        fig = viz.learning_curves({"loss": list(np.linspace(1.0, 0.1, n)), "accuracy": list(np.linspace(0.5, 0.9, n))})
        for ax in fig.axes:
            assert ticks(ax) and all(t == int(t) for t in ticks(ax)), (n, ticks(ax))
    assert all(t == int(t) for t in ticks(viz.line([1, 2, 3], [0.3, 0.2, 0.1], x_name="epochs").axes[0]))
    fractions = ticks(viz.line([0.0, 0.5, 1.0], [0.3, 0.2, 0.1], x_name="dropout").axes[0])
    assert any(t != int(t) for t in fractions)  # a setting of fractions keeps its fractional ticks


def _outside(fig):
    """What a figure drawn at its own size puts outside itself: titles, labels, colour bars and their labels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    FigureCanvasAgg(fig).draw()
    r, box = fig.canvas.get_renderer(), fig.bbox
    flat = [ax for ax in fig.axes if ax.name != "3d"]  # a 3-D axes keeps unused tick labels far away, undrawn
    in_3d = {id(t) for ax in fig.axes if ax.name == "3d" for t in ax.findobj(Text)}
    drawn = [(f"panel {ax.get_title()!r}", ax.get_tightbbox(r)) for ax in flat]
    drawn += [(repr(t.get_text()), t.get_window_extent(r)) for t in fig.findobj(Text)
              if t.get_visible() and t.get_text() and id(t) not in in_3d]
    return [what for what, e in drawn
            if not (e.x0 >= box.x0 - 1 and e.x1 <= box.x1 + 1 and e.y0 >= box.y0 - 1 and e.y1 <= box.y1 + 1)]


def test_long_titles_of_the_surface_figures_wrap_inside_them(tmp_path):
    """The cost-surface figures (constrained layout) break a long title into lines that fit, as the others do; the
    loss plane's title ran past both edges of the figure, and its colour bar is labelled in words."""
    from nablanet import surface

    long = "franke: 2-64-64-64-1 network, J on the plane of two filter-normalized random directions"
    w = np.linspace(-2, 2, 5)
    plane = viz.loss_plane(surface.LossPlane(w, w, np.outer(w, w) ** 2 + 1.0), title=long)
    assert _outside(plane) == [] and "\n" in plane.axes[0].get_title()
    assert plane.axes[1].get_ylabel() == "cost J"
    J = surface.single_neuron([0.1, 0.5, 0.9], [0.2, 0.3, 0.5])
    Z = surface.cost_grid(J, w, w)
    paths = surface.optimizer_paths(J, [1.0, 1.0], {"GD": ("sgd", {"lr": 1.0}, False)}, steps=3)
    for fig in (viz.cost_surface(w, w, Z, None, paths, title=long + long, surface3d=False),
                viz.cost_surface(w, w, Z, None, paths, title=long + long),
                viz.animate_paths(w, w, Z, paths, tmp_path / "p.gif", title=long),
                viz.graph([{"label": "x", "parents": []}, {"label": "exp(x)", "parents": [0]}], title=long)):
        assert _outside(fig) == []
    viz.loss_plane(surface.LossPlane(w, w, np.outer(w, w) ** 2 + 1.0), tmp_path / "plane.png", title=long)
    assert png_title(tmp_path / "plane.png") == long  # the metadata keeps the title in one line
