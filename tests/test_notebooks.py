"""Notebook files as JupyterLab opens them (issue 9, item c).

Every notebook in `nbs/` names its kernel, so JupyterLab opens it on `python3` (the project's venv,
registered by `scripts/setup.sh`) instead of asking "Select Kernel"; and `nbdev-clean` keeps that.
nbdev-clean rewrites `display_name` to the kernel's name, so the file says `"display_name": "python3"`;
JupyterLab shows the installed kernelspec's own display name ("Python 3 (ipykernel)") either way.
"""
import copy
import json
from pathlib import Path

import pytest
from nbdev.clean import clean_nb
from nbdev.config import get_config

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT/"nbs").glob("*.ipynb")) + sorted((ROOT/"nbs"/"pipelines").glob("*.ipynb"))
KERNELSPEC = {"display_name": "python3", "language": "python", "name": "python3"}


def test_notebooks_found():
    names = [p.name for p in NOTEBOOKS]
    assert "00_core.ipynb" in names and "train.ipynb" in names, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT/"nbs")))
def test_notebook_names_its_kernel(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"].get("kernelspec") == KERNELSPEC, (
        f"{path.relative_to(ROOT)}: metadata.kernelspec is {nb['metadata'].get('kernelspec')!r}; "
        f"set it to {KERNELSPEC} (JupyterLab asks 'Select Kernel' without it)")


@pytest.mark.parametrize("path", NOTEBOOKS[:1] + NOTEBOOKS[-1:], ids=lambda p: p.name)
def test_nbdev_clean_keeps_kernelspec(path):
    "nbdev-clean with this project's [tool.nbdev] settings leaves the kernelspec (and cell tags) alone."
    cfg = get_config(path=ROOT)
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["metadata"]["kernelspec"]["display_name"] = "Python 3 (ipykernel)"  # what JupyterLab writes on save
    cleaned = copy.deepcopy(nb)
    clean_nb(cleaned, allowed_metadata_keys=cfg.get("allowed_metadata_keys") or [],
             allowed_cell_metadata_keys=cfg.get("allowed_cell_metadata_keys") or [], clean_ids=cfg.clean_ids)
    assert cleaned["metadata"]["kernelspec"] == KERNELSPEC
    tags = [c["metadata"].get("tags") for c in nb["cells"]]
    assert [c["metadata"].get("tags") for c in cleaned["cells"]] == tags
