"""Every tutorial notebook runs headless, top to bottom, at small settings (MFNET_NOTEBOOK_SMALL=1)."""

import json
import os

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")
NAMES = sorted(n for n in os.listdir(NOTEBOOKS) if n.endswith(".ipynb"))


def test_the_five_tutorials_are_there_with_badges_and_no_outputs():
    assert NAMES == [
        "01_quickstart.ipynb",
        "02_pack_and_train.ipynb",
        "03_pretrained_finetune_export.ipynb",
        "04_inside_mfnet.ipynb",
        "05_own_videos.ipynb",
    ]
    for name in NAMES:
        with open(os.path.join(NOTEBOOKS, name)) as f:
            cells = json.load(f)["cells"]
        assert "colab.research.google.com" in "".join(cells[0]["source"]) and name in "".join(cells[0]["source"])
        assert "google.colab" in "".join(cells[1]["source"])  # the install cell
        for cell in cells:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, f"{name}: outputs not stripped"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, tmp_path, monkeypatch):
    monkeypatch.setenv("MFNET_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MFNET_NOTEBOOK_WORKDIR", str(tmp_path))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}})
    client.execute()  # raises CellExecutionError, naming the cell, when any cell fails
    images = sum(1 for cell in notebook.cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {}))
    assert images >= 1, "no plot was shown inline"
