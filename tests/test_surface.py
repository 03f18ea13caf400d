"""Cost surfaces and optimizer paths (nablanet.surface)."""

import json

import numpy as np
import pytest

import nablanet as nb
from nablanet import surface


@pytest.fixture(scope="module")
def neuron():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 40)
    y = 1 / (1 + np.exp(-(2.0 * x - 0.5))) + 0.02 * rng.standard_normal(40)
    return surface.single_neuron(x, y), x, y


def test_single_neuron_is_the_notes_cost(neuron):
    J, x, y = neuron
    w, b = 0.7, -0.3
    expected = np.mean((1 / (1 + np.exp(-(w * x + b))) - y) ** 2)
    assert J(np.array([w, b])) == pytest.approx(expected, rel=1e-12)
    rows = np.array([1, 5, 7])
    assert J(np.array([w, b]), rows) == pytest.approx(np.mean((1 / (1 + np.exp(-(w * x[rows] + b))) - y[rows]) ** 2))


def test_arrows_equal_engine_gradient_and_central_differences_of_the_plotted_grid(neuron):
    J, _, _ = neuron
    w = np.linspace(-3, 5, 9)
    b = np.linspace(-4, 3, 8)
    u, v = surface.descent_field(J, w, b)
    Z = surface.cost_grid(J, w, b)
    assert Z.shape == u.shape == v.shape == (8, 9)
    for i in range(1, 7):
        for j in range(1, 8):
            g = nb.grad(J)(np.array([w[j], b[i]]))
            assert (-u[i, j], -v[i, j]) == pytest.approx(tuple(g), rel=1e-12)
            h = 1e-6
            fd_w = (J(np.array([w[j] + h, b[i]])) - J(np.array([w[j] - h, b[i]]))) / (2 * h)
            fd_b = (J(np.array([w[j], b[i] + h])) - J(np.array([w[j], b[i] - h]))) / (2 * h)
            assert -u[i, j] == pytest.approx(fd_w, rel=1e-6, abs=1e-9)
            assert -v[i, j] == pytest.approx(fd_b, rel=1e-6, abs=1e-9)
    # the grid's own central differences agree with the arrows to the grid's resolution
    dZdw = (Z[:, 2:] - Z[:, :-2]) / (w[2:] - w[:-2])
    assert np.corrcoef(dZdw.ravel(), -u[:, 1:-1].ravel())[0, 1] > 0.95


def test_every_path_starts_at_the_start_and_records_full_cost(neuron):
    J, _, _ = neuron
    start = np.array([-2.0, 2.0])
    paths = surface.optimizer_paths(J, start, steps=30)
    assert set(paths) == set(surface.DEFAULT_OPTIMIZERS)
    for p in paths.values():
        assert np.array_equal(p.points[0], start)
        assert p.points.shape == (31, 2) and p.costs.shape == (31,)
        assert p.costs[k := 7] == pytest.approx(J(p.points[k]))
        assert p.final_cost < p.costs[0], p
    assert "final J" in repr(paths["Adam"])


def test_small_step_gradient_descent_decreases_monotonically(neuron):
    J, _, _ = neuron
    paths = surface.optimizer_paths(J, [-2.0, 2.0], {"GD": ("sgd", {"lr": 0.5}, False)}, steps=200)
    c = paths["GD"].costs
    assert np.all(np.diff(c) <= 0)
    assert c[-1] < 0.2 * c[0]


def test_gd_step_is_the_notes_update(neuron):
    J, _, _ = neuron
    p = surface.optimizer_paths(J, [0.3, 0.1], {"GD": ("sgd", {"lr": 0.25}, False)}, steps=1)["GD"]
    g = nb.grad(J)(np.array([0.3, 0.1]))
    np.testing.assert_allclose(p.points[1], np.array([0.3, 0.1]) - 0.25 * g, rtol=1e-12)


def test_minibatch_path_differs_from_full_batch_and_is_seeded(neuron):
    J, _, _ = neuron
    spec = {"SGD": ("sgd", {"lr": 1.0}, True), "GD": ("sgd", {"lr": 1.0}, False)}
    a = surface.optimizer_paths(J, [0.0, 0.0], spec, steps=10, batch_size=5, seed=1)
    b = surface.optimizer_paths(J, [0.0, 0.0], spec, steps=10, batch_size=5, seed=1)
    assert np.array_equal(a["SGD"].points, b["SGD"].points)
    assert not np.allclose(a["SGD"].points, a["GD"].points)


def test_single_neuron_refuses_softmax():
    """softmax of one neuron's z over the samples is not a neuron: it normalizes across the data set."""
    with pytest.raises(ValueError, match="activation 'softmax'"):
        surface.single_neuron([0.1, 0.5, 0.9], [0.2, 0.3, 0.5], activation="softmax")


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="same length"):
        surface.single_neuron([1.0, 2.0], [1.0])
    J = surface.single_neuron([0.1, 0.2], [0.0, 1.0])
    with pytest.raises(ValueError, match="start"):
        surface.optimizer_paths(J, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="steps"):
        surface.optimizer_paths(J, [1.0, 2.0], steps=2.5)


def test_two_parameters_of_a_network_and_the_loss_plane():
    from nablanet.nn import MLP
    from nablanet.train import fit

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (64, 2))
    y = (X[:, :1] * X[:, 1:]).astype(np.float64)
    model = MLP([2, 8, 1], activation="tanh", seed=0, dtype=np.float64)
    snaps = []
    from nablanet.train.callbacks import Callback

    class Snap(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            snaps.append([{k: np.array(v) for k, v in p.items()} for p in trainer.model.params])

    fit(model, X, y, loss="mse", optimizer="adam", lr=0.05, epochs=15, batch_size=16, seed=0, callbacks=[Snap()])
    J = surface.two_parameters(model, X, y, "mse", (0, 0), (0, 1))
    full = float(nb.losses.get_loss("mse")(model.apply(model.params, X, logits=True), y))
    assert J(J.start) == pytest.approx(full, rel=1e-10)
    plane = surface.loss_plane(model, X, y, "mse", trajectory=snaps, n=7)
    assert plane.cost.shape == (7, 7)
    assert plane.center_cost == pytest.approx(full, rel=1e-10)
    assert plane.trajectory.shape == (len(snaps), 2)
    np.testing.assert_allclose(plane.trajectory[-1], 0.0, atol=1e-8)  # the last snapshot is theta*
    # filter normalization: each column of a direction has the norm of the matching weight column
    d1 = plane.directions[0]
    W = np.asarray(model.params[0]["W"], dtype=np.float64)
    np.testing.assert_allclose(np.linalg.norm(d1[0], axis=0), np.linalg.norm(W, axis=0), rtol=1e-12)


def test_plots_return_figures_without_touching_pyplot(neuron, tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from nablanet import viz

    J, _, _ = neuron
    backend, n_open = matplotlib.get_backend(), len(plt.get_fignums())
    w, b = np.linspace(-4, 6, 21), np.linspace(-5, 4, 19)
    Z = surface.cost_grid(J, w, b)
    paths = surface.optimizer_paths(J, [-3.0, 3.0], steps=40)
    fig = viz.cost_surface(w, b, Z, surface.descent_field(J, w, b), paths, path=tmp_path / "s.png")
    assert isinstance(fig, Figure) and (tmp_path / "s.png").stat().st_size > 10_000
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(t.startswith("Adam: 40 steps") and "final J" in t for t in legend)
    gif = tmp_path / "paths.gif"
    viz.animate_paths(w, b, Z, {k: paths[k] for k in ("GD", "Adam")}, gif)
    assert gif.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    assert matplotlib.get_backend() == backend and len(plt.get_fignums()) == n_open


def test_pca_plane_shows_the_trajectory_and_cli_surface_writes_its_files(tmp_path):
    import json

    from nablanet.cli import main

    out = tmp_path / "s"
    assert main(["surface", "--out", str(out), "--steps", "20", "--grid", "9", "--optimizers", "gd,adam",
                 "--plane", "4", "--directions", "pca", "--json"]) == 0
    doc = json.loads((out / "paths.json").read_text())
    assert [r["optimizer"] for r in doc["paths"]] == ["GD", "Adam"]
    assert doc["points"]["GD"][0] == [-3.0, 4.0] and len(doc["points"]["Adam"]) == 21
    assert (out / "cost_surface.png").stat().st_size > 10_000 and (out / "loss_plane.png").exists()
    assert doc["plane"]["J_center"] >= doc["plane"]["J_min"]


@pytest.mark.parametrize("argv, words", [
    (["--start", "1"], "2 finite numbers"),
    (["--optimizers", "gd,lbfgs"], "unknown optimizer 'lbfgs'"),
    (["--data", "franke"], "one feature"),
    (["--grid", "2"], "--grid"),
    (["--directions", "up"], "--directions"),
    (["--w-range", "5,1"], "argument --w-range: expected LO < HI, got '5,1'"),
    (["--b-range", "2,2"], "argument --b-range: expected LO < HI, got '2,2'"),
    (["--plane", "4", "--plane-data", "nope"], "argument --plane-data: expected a data set: franke"),
])
def test_cli_surface_bad_flags_one_line(argv, words, tmp_path, capsys):
    from nablanet.cli import main

    assert main(["surface", "--out", str(tmp_path / "x"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err


# -- review of issue 13: inputs a student would give ----------------------------------------------


def _small_net():
    from nablanet.nn import MLP

    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (30, 2))
    y = X[:, :1] * X[:, 1:]
    return MLP([2, 4, 1], activation="tanh", seed=0, dtype=np.float64), X, y


def test_loss_plane_center_cost_is_j_at_theta_star_for_any_grid_size():
    model, X, y = _small_net()
    full = float(nb.losses.get_loss("mse")(model.apply(model.params, X, logits=True), y))
    for n in (2, 4, 20):  # even grids have no point at theta*; the centre is still J(theta*)
        assert surface.loss_plane(model, X, y, "mse", n=n).center_cost == pytest.approx(full, rel=1e-12), n


@pytest.mark.parametrize("kw, words", [
    ({"n": 1}, "n: expected an integer >= 2"),
    ({"n": 0}, "n: expected an integer >= 2"),
    ({"n": 2.5}, "n: expected an integer"),
    ({"span": -1.0}, "span: expected a number > 0"),
    ({"span": float("nan")}, "span: expected a number > 0"),
    ({"seed": -1}, "seed"),
])
def test_loss_plane_refuses_bad_grid_settings_naming_them(kw, words):
    model, X, y = _small_net()
    with pytest.raises(ValueError, match=words):
        surface.loss_plane(model, X, y, "mse", **kw)


def test_loss_plane_refuses_a_degenerate_plane():
    """A model with one weight has one filter: both filter-normalized directions are +-|w|, a line, not a plane."""
    from nablanet.nn import MLP

    model = MLP([1, 1], seed=0, dtype=np.float64)
    X = np.linspace(-1, 1, 10)[:, None]
    with pytest.raises(ValueError, match="parallel"):
        surface.loss_plane(model, X, X, "mse", n=5)
    still = [model.params] * 4  # references to the arrays training updates in place, not copies
    for kind in ("random", "pca"):
        with pytest.raises(ValueError, match="trajectory: all 4 snapshots equal the parameters.*record copies"):
            surface.loss_plane(model, X, X, "mse", n=5, trajectory=still, directions=kind)
    elsewhere = [{k: v + 1.0 for k, v in p.items()} for p in model.params]
    with pytest.raises(ValueError, match="never moves"):  # one point away from theta*: no principal directions
        surface.loss_plane(model, X, X, "mse", n=5, trajectory=[elsewhere] * 3, directions="pca")


def test_loss_plane_trajectory_of_another_model_is_refused_by_index():
    from nablanet.nn import MLP

    model, X, y = _small_net()
    other = MLP([2, 5, 1], seed=0, dtype=np.float64)
    with pytest.raises(ValueError, match=r"trajectory\[1\]"):
        surface.loss_plane(model, X, y, "mse", n=3, trajectory=[model.params, other.params])


def test_path_lr_is_the_optimizers_own_when_not_given(neuron):
    J, _, _ = neuron
    p = surface.optimizer_paths(J, [0.0, 0.0], {"Adam": ("adam", {}, False)}, steps=2)["Adam"]
    from nablanet.optim import Adam

    assert p.lr == Adam().lr(0) and np.isfinite(p.lr)


@pytest.mark.parametrize("kw, words", [
    ({"batch_size": 0}, "batch_size: expected an integer >= 1"),
    ({"batch_size": 2.5}, "batch_size: expected an integer"),
    ({"batch_size": 41}, "batch_size 41 exceeds the 40 samples"),
    ({"seed": -2}, "seed"),
    ({"optimizers": {"S": "adam"}}, r"optimizers\['S'\]: expected \(name, hyperparameters, minibatch\)"),
    ({"optimizers": {"S": ("nope", {}, False)}}, r"optimizers\['S'\]: unknown optimizer 'nope'"),
])
def test_optimizer_paths_refuses_bad_settings_naming_them(neuron, kw, words):
    J, _, _ = neuron
    kw = {"optimizers": {"SGD": ("sgd", {"lr": 1.0}, True)}, **kw}
    with pytest.raises(ValueError, match=words):
        surface.optimizer_paths(J, [0.0, 0.0], steps=2, **kw)


@pytest.mark.parametrize("first, second, words", [
    (0, (0, 1), "first: expected a pair"),
    ((0, 1.5), (0, 1), "first: expected a pair"),
    ((0, 1), (0, 1), "the same parameter"),
])
def test_two_parameters_refuses_bad_indices_naming_them(first, second, words):
    model, X, y = _small_net()
    with pytest.raises(ValueError, match=words):
        surface.two_parameters(model, X, y, "mse", first, second)


def test_plots_refuse_a_grid_that_does_not_match_naming_it(neuron, tmp_path):
    from nablanet import viz

    J, _, _ = neuron
    w, b = np.linspace(-1, 1, 6), np.linspace(-1, 1, 5)
    Z = surface.cost_grid(J, w, b)
    with pytest.raises(ValueError, match=r"cost has shape \(6, 5\); expected \(len\(b\), len\(w\)\) = \(5, 6\)"):
        viz.cost_surface(w, b, Z.T)
    bad = Z.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="cost holds values that are not finite"):
        viz.cost_surface(w, b, bad)
    with pytest.raises(ValueError, match="w: .*at least 2"):
        viz.cost_surface([0.5], b, Z[:, :1])
    shuffled = w[[0, 3, 1, 2, 5, 4]]
    with pytest.raises(ValueError, match="w: expected grid coordinates in increasing"):
        viz.cost_surface(shuffled, b, surface.cost_grid(J, shuffled, b))
    assert viz.cost_surface(w[::-1], b, Z[:, ::-1], surface3d=False).axes  # decreasing is a grid too
    with pytest.raises(ValueError, match="paths: .*at least one"):
        viz.animate_paths(w, b, Z, {}, tmp_path / "p.gif")


def test_plots_draw_a_flat_cost(neuron):
    """A dead ReLU neuron has the same J everywhere on its grid: a picture, not a crash in contourf."""
    from nablanet import viz

    J = surface.single_neuron([0.2, 0.5, 0.9], [0.1, 0.4, 0.2], activation="relu")
    w, b = np.linspace(-3, -1, 5), np.linspace(-3, -1, 4)
    Z = surface.cost_grid(J, w, b)
    assert np.ptp(Z) == 0
    assert viz.cost_surface(w, b, Z, surface.descent_field(J, w, b)).axes
    plane = surface.LossPlane(w, w, np.ones((5, 5)))
    assert viz.loss_plane(plane).axes


def test_the_animation_legend_gives_steps_and_final_cost(neuron, tmp_path):
    from nablanet import viz

    J, _, _ = neuron
    w, b = np.linspace(-4, 4, 6), np.linspace(-4, 4, 5)
    paths = surface.optimizer_paths(J, [-3.0, 3.0], {"GD": ("sgd", {"lr": 1.0}, False)}, steps=4)
    fig = viz.animate_paths(w, b, surface.cost_grid(J, w, b), paths, tmp_path / "p.gif", fps=4)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == [f"GD: 4 steps, lr 1, final J {paths['GD'].final_cost:.3g}"]


def test_cli_surface_reads_negative_numbers_and_leaves_nothing_behind_on_error(tmp_path, capsys):
    """The help's own default, --start -3,4, reads as numbers (argparse took "-3,4" for a flag)."""
    from nablanet.cli import main

    out = tmp_path / "s"
    assert main(["surface", "--out", str(out), "--start", "-2,-1", "--w-range", "-5,-1", "--grid", "5",
                 "--steps", "2", "--optimizers", "gd", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["start"] == [-2.0, -1.0]
    bad = tmp_path / "bad"
    assert main(["surface", "--out", str(bad), "--data", "nope"]) == 2
    assert not bad.exists()


def test_cli_surface_names_the_plane_it_draws(tmp_path):
    from png_files import png_title

    from nablanet.cli import main

    for kind, words in (("pca", "principal"), ("random", "random")):
        out = tmp_path / kind
        assert main(["surface", "--out", str(out), "--steps", "2", "--grid", "5", "--optimizers", "gd",
                     "--plane", "3", "--plane-data", "runge", "--directions", kind]) == 0
        assert words in png_title(out / "loss_plane.png"), png_title(out / "loss_plane.png")


def test_optimizer_paths_take_a_cost_written_by_hand():
    """A student's own J(theta), without the rows argument, runs every full-batch optimizer."""
    J = lambda t: (t[0] - 1.0) ** 2 + 10.0 * (t[1] + 2.0) ** 2  # noqa: E731
    spec = {k: v for k, v in surface.DEFAULT_OPTIMIZERS.items() if not v[2]}
    paths = surface.optimizer_paths(J, [0.0, 0.0], spec, steps=300)
    assert paths["Adam"].final_cost < 1e-3
    with pytest.raises(ValueError, match="n_samples"):
        surface.optimizer_paths(J, [0.0, 0.0], steps=3)


def test_plot_settings_are_checked(neuron, tmp_path):
    from nablanet import viz

    J, _, _ = neuron
    w, b = np.linspace(-1, 1, 6), np.linspace(-1, 1, 5)
    Z = surface.cost_grid(J, w, b)
    u, v = surface.descent_field(J, w, b)
    with pytest.raises(ValueError, match="every: expected an integer >= 1"):
        viz.cost_surface(w, b, Z, (u, v), every=0)
    with pytest.raises(ValueError, match=r"field: expected two arrays \(u, v\) of shape \(5, 6\)"):
        viz.cost_surface(w, b, Z, (u.T, v.T))
    paths = surface.optimizer_paths(J, [0.0, 0.0], {"GD": ("sgd", {"lr": 1.0}, False)}, steps=2)
    with pytest.raises(ValueError, match="fps: expected a number > 0"):
        viz.animate_paths(w, b, Z, paths, tmp_path / "p.gif", fps=0)
    with pytest.raises(ValueError, match="path: the animation is a GIF"):
        viz.animate_paths(w, b, Z, paths, tmp_path / "p.mp4")
    assert not (tmp_path / "p.mp4").exists()


def test_a_diverging_path_stops_quietly_and_still_draws(tmp_path):
    import warnings

    from nablanet import viz

    J = lambda t: (t[0] - 1.0) ** 2 + 10.0 * (t[1] + 2.0) ** 2  # noqa: E731  (GD diverges for lr > 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = surface.optimizer_paths(J, [0.0, 0.0], {"GD": ("sgd", {"lr": 2.0}, False)}, steps=300)["GD"]
        assert p.steps < 300 and not np.isfinite(p.final_cost)
        assert np.all(np.isfinite(p.costs[:-1]))
        w, b = np.linspace(-3, 3, 7), np.linspace(-4, 2, 7)
        fig = viz.cost_surface(w, b, surface.cost_grid(J, w, b), paths={"GD": p}, path=tmp_path / "d.png")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0] == f"GD: {p.steps} steps, lr 2, final J {p.final_cost:.3g}"


def test_filter_normalization_follows_li_et_al_for_biases_and_batch_norm():
    """Li et al. (2018): every filter (a unit's incoming weights, a column of W here) rescaled to the norm of that
    filter of theta*; biases and batch-norm gamma/beta (1-D) get a zero direction; running statistics are state,
    not parameters, and stay as trained."""
    from nablanet.autodiff import tree_flatten
    from nablanet.nn import MLP
    from nablanet.train import fit

    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, (48, 3))
    y = np.sin(X[:, :1]) + X[:, 1:2] ** 2
    model = MLP([3, 6, 5, 1], activation="tanh", batch_norm=True, dropout=0.2, seed=0, dtype=np.float64)
    fit(model, X, y, loss="mse", epochs=3, batch_size=16, seed=0)
    plane = surface.loss_plane(model, X, y, "mse", n=3)
    leaves = tree_flatten(model.params)[0]
    for d in plane.directions:
        assert len(d) == len(leaves)
        for p, u in zip(leaves, d):
            p = np.asarray(p, dtype=np.float64)
            if p.ndim == 1:
                assert not np.any(u)
            else:
                np.testing.assert_allclose(np.linalg.norm(u, axis=0), np.linalg.norm(p, axis=0), rtol=1e-12)
    assert sum(np.ndim(p) == 1 for p in leaves) >= 6  # three biases, two gammas, two betas
    assert not np.allclose(plane.directions[0][0], plane.directions[1][0])
    full = float(nb.losses.get_loss("mse")(model.apply(model.params, X, logits=True), y))
    assert plane.center_cost == pytest.approx(full, rel=1e-12)  # evaluated with the running statistics


def test_default_optimizers_run_on_data_smaller_than_a_minibatch():
    J = surface.single_neuron([0.1, 0.5, 0.9], [0.2, 0.3, 0.5])
    paths = surface.optimizer_paths(J, [1.0, 1.0], steps=3)
    assert paths["SGD (minibatch)"].batch_size == 3 and len(paths) == len(surface.DEFAULT_OPTIMIZERS)


@pytest.mark.parametrize("output_activation, loss", [("sigmoid", "mse"), ("tanh", "half_sse"),
                                                     ("sigmoid", "binary_cross_entropy"), ("identity", "mse")])
def test_surfaces_of_a_network_are_its_training_cost(output_activation, loss):
    """The notes' network ends in a sigmoid under a sum of squares: J is of a^L, not of z^L (only the costs that
    work from logits take z^L). two_parameters and loss_plane must give what training and evaluate() give."""
    from nablanet.nn import MLP
    from nablanet.train import evaluate

    rng = np.random.default_rng(4)
    X = rng.uniform(-1, 1, (30, 2))
    y = (X[:, :1] * X[:, 1:] > 0).astype(float)
    model = MLP([2, 4, 1], activation="tanh", output_activation=output_activation, seed=0, dtype=np.float64)
    expected = evaluate(model, X, y, loss=loss)["loss"]
    J = surface.two_parameters(model, X, y, loss, (0, 0), (2, 0))
    assert J(J.start) == pytest.approx(expected, rel=1e-12)
    assert surface.loss_plane(model, X, y, loss, n=3).center_cost == pytest.approx(expected, rel=1e-12)


def test_arrows_are_central_differences_of_the_plotted_grid_itself(neuron):
    """On a grid fine enough, the arrows at its centre are -(central differences of cost_grid's own values), each
    along its own axis: a transposed grid or field, or a sign slip, fails here."""
    J, _, _ = neuron
    h = 1e-5
    for w0, b0 in ((0.7, -0.3), (-2.0, 1.5), (3.0, 2.0)):
        w, b = w0 + h * np.arange(-1, 2), b0 + 2 * h * np.arange(-1, 2)
        Z = surface.cost_grid(J, w, b)
        u, v = surface.descent_field(J, w, b)
        assert -u[1, 1] == pytest.approx((Z[1, 2] - Z[1, 0]) / (2 * h), rel=1e-6, abs=1e-10)
        assert -v[1, 1] == pytest.approx((Z[2, 1] - Z[0, 1]) / (4 * h), rel=1e-6, abs=1e-10)


def test_cli_surface_honours_threads(tmp_path, monkeypatch):
    """--threads is one of surface's flags: it limits the BLAS threads as in train (it was accepted and ignored)."""
    import contextlib

    from nablanet import cli

    seen = []
    monkeypatch.setattr(cli, "_thread_limit", lambda args, comm: seen.append(args.threads) or contextlib.nullcontext())
    assert cli.main(["surface", "--out", str(tmp_path / "t"), "--threads", "1", "--steps", "2", "--grid", "5",
                     "--optimizers", "gd"]) == 0
    assert seen == [1]


def test_cli_surface_gif_has_a_frame_per_step(tmp_path):
    from PIL import Image

    from nablanet.cli import main

    out = tmp_path / "g"
    assert main(["surface", "--out", str(out), "--steps", "4", "--grid", "5", "--optimizers", "gd,adam", "--gif"]) == 0
    with Image.open(out / "paths.gif") as im:
        assert im.format == "GIF" and im.n_frames == 5  # the start and each of the 4 steps


def test_plots_take_paths_as_a_dict_or_a_list(neuron, tmp_path):
    from nablanet import viz

    J, _, _ = neuron
    w, b = np.linspace(-4, 4, 6), np.linspace(-4, 4, 5)
    Z = surface.cost_grid(J, w, b)
    paths = surface.optimizer_paths(J, [-3.0, 3.0], {"GD": ("sgd", {"lr": 1.0}, False),
                                                      "Adam": ("adam", {"lr": 0.1}, False)}, steps=3)
    texts = lambda fig: [t.get_text() for t in fig.axes[0].get_legend().get_texts()]  # noqa: E731
    assert texts(viz.cost_surface(w, b, Z, paths=[paths["Adam"]])) == texts(
        viz.cost_surface(w, b, Z, paths={"Adam": paths["Adam"]}))
    assert viz.animate_paths(w, b, Z, list(paths.values()), tmp_path / "l.gif", fps=4).axes
    with pytest.raises(ValueError, match="paths: expected a dict of label -> Path"):
        viz.cost_surface(w, b, Z, paths=paths["GD"])


def test_every_optimizer_path_is_outlined_so_no_colour_melts_into_the_contours(neuron):
    """Set1's yellow path vanished on viridis' yellow where the paths start (and its green/blue on green/blue)."""
    from matplotlib import patheffects

    from nablanet import viz

    J, _, _ = neuron
    w, b = np.linspace(-4, 6, 11), np.linspace(-5, 4, 9)
    paths = surface.optimizer_paths(J, [-3.0, 3.0], steps=5)
    fig = viz.cost_surface(w, b, surface.cost_grid(J, w, b), None, paths, surface3d=False)
    drawn = [ln for ln in fig.axes[0].lines if ln.get_label() in {t.get_text() for t in fig.axes[0].get_legend().get_texts()}
             and ln.get_label() != "start"]
    assert len(drawn) == len(paths)
    assert all(any(isinstance(e, patheffects.Stroke) for e in ln.get_path_effects()) for ln in drawn)
