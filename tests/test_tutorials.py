"""Every tutorial under docs/tutorials runs top to bottom in a real Jupyter kernel.

The tutorials are jupytext percent scripts; each asserts its own key numbers
inside, so a tutorial whose numbers drift fails here.  Time budget: no cell
may run longer than ``BUDGET`` seconds (nbclient's timeout, a guard against a
hang, not a measurement); on a shared 2-core machine each notebook took under
a minute (the project one longest, ~50 s) and all seven about two minutes.
"""

import pathlib

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = pathlib.Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))
BUDGET = 180


def test_there_is_a_tutorial_per_topic_of_the_notes():
    names = [p.stem for p in TUTORIALS]
    for topic in ("autodiff", "backprop", "surface", "initialization", "dropout_batchnorm", "project", "mpi"):
        assert any(topic in n for n in names), f"no tutorial on {topic}: {names}"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_executes(path, tmp_path):
    nb = jupytext.read(path)
    client = nbclient.NotebookClient(nb, timeout=BUDGET, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"{path.name}: {out.get('ename')}: {out.get('evalue')}"
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                assert "Warning" not in out.get("text", ""), f"{path.name} warned: {out['text'][:300]}"
