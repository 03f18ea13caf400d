"""A notebook that fits with a progress bar and plots: the outputs hold a PNG image, and no warning or stderr."""

import os

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

CELLS = [
    "import numpy as np\nfrom nablanet import viz\nfrom nablanet.nn import MLP\nfrom nablanet.train import fit\n"
    "X = np.random.default_rng(0).uniform(-1, 1, (64, 1)); y = X[:, 0] ** 2",
    "h = fit(MLP([1, 8, 1], activation='tanh', seed=0), X, y, epochs=3, progress=True, metrics=['r2'])\nh",
    "viz.learning_curves(h)",
]


def test_a_notebook_fits_with_progress_and_shows_a_png_without_warnings(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    # the kernel imports this tree's nablanet
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells for o in c.outputs]
    assert not [o for o in outputs if o.get("name") == "stderr" or o.get("output_type") == "error"], outputs
    assert not [o for o in outputs if "Warning" in str(o.get("text", ""))]
    assert any("image/png" in o.get("data", {}) for o in nb.cells[2].outputs)
    assert "History(3 epochs" in str(nb.cells[1].outputs)
    progress = [o for o in nb.cells[1].outputs if o.get("output_type") in ("display_data", "stream")]
    assert progress  # a widget, or text on stdout without ipywidgets
    try:
        import ipywidgets  # noqa: F401  (the kernel runs this interpreter)
    except ImportError:
        return
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in progress), progress
