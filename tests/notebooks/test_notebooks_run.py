"""Every notebook runs top to bottom on the vendored sample data with no error cell.

The notebooks are executed by nbclient in a kernel of this interpreter (the project's .venv),
from the notebooks folder, as JupyterLab would. Where a notebook waits for a click (the
teaching case) the test adds a cell that does what the learner would and checks the result.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from tests.objects import add_non_image_objects

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
#: Seconds any one cell may take (the slowest starts a dask cluster or Orthanc).
CELL_TIMEOUT = 240

LEARNER_CHECKS = {
    "03-teaching-case.ipynb": """
from workbench.io.presentation import Annotation
assert viewport.frame == 0 and not viewer.annotations.groups
viewport.frame = KEY_SLICE
viewer.annotations.add(Annotation("ellipse", [(276, 186), (296, 206)],
                                  image=viewport.image_reference()))
reveal_button.click()
assert reveal_button.disabled
assert viewport.frame == KEY_SLICE and viewport.window == TEACHER_WINDOW
shown = viewer.annotations.visible_on(viewport.image_reference())
assert len(shown) == 1 + len(FINDINGS), shown
assert "Four inserts" in answer.value and "well done" in answer.value, answer.value
first, second = quiz
first.children[1].value = "3"
first.children[2].children[0].click()
assert "Not quite" in first.children[2].children[1].value
first.children[1].value = "4"
first.children[2].children[0].click()
assert "Correct" in first.children[2].children[1].value
""",
}


#: Notebooks that run DCMTK tools or start Orthanc when they are installed.
WITH_PEERS = {"02-your-own-pacs.ipynb", "05-gsps-round-trip.ipynb"}


def notebook_names() -> list[str]:
    return sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))


def notebook_params() -> list:
    """Each notebook, marked ``slow`` (a kernel each) and ``peers`` where it uses them."""
    return [
        pytest.param(name, marks=[pytest.mark.slow] + [pytest.mark.peers] * (name in WITH_PEERS))
        for name in notebook_names()
    ]


def test_all_five_notebooks_are_there_and_saved_without_outputs() -> None:
    names = notebook_names()
    assert [name[:2] for name in names] == ["01", "02", "03", "04", "05"]
    for name in names:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, name


def run_notebook(path: Path, extra_source: str | None = None) -> nbformat.NotebookNode:
    """Execute a notebook in its folder; return it with outputs (raises on an error cell)."""
    notebook = nbformat.read(path, as_version=4)
    if extra_source:
        notebook.cells.append(new_code_cell(extra_source))
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return notebook


def outputs_text(notebook: nbformat.NotebookNode) -> str:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


@pytest.mark.parametrize("name", notebook_params())
def test_notebook_runs_top_to_bottom(name: str) -> None:
    notebook = run_notebook(NOTEBOOKS / name, LEARNER_CHECKS.get(name))
    errors = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]
    assert not errors
    # Each notebook shows real results, not just runs: a few things every reader sees.
    text = outputs_text(notebook)
    expected = {
        "01-quickstart.ipynb": ["STD BRAIN 5MM", "28 slices", "Bone"],
        "02-your-own-pacs.ipynb": [
            "storescu exit status: 0",
            "35 completed, 0 failed",
            "DICOMDIR: 35 instances",
            "HU min -",
            "forwarded: 1 instance(s) to PEER",
        ],
        "04-batch-analysis.ipynb": ["read on worker"],
        "05-gsps-round-trip.ipynb": ["GraphicAnnotationSequence", "found on the other node"],
    }.get(name, [])
    for snippet in expected:
        assert snippet in text, f"{name} did not print {snippet!r}"


@pytest.fixture(scope="module")
def checkout_with_objects(tmp_path_factory) -> Path:
    """The notebooks and the sample data copied, with a real and our own presentation state,
    a report, a segmentation, a key object selection and a PDF in the CT folder they open."""
    root = tmp_path_factory.mktemp("checkout-with-objects")
    shutil.copytree(REPO / "data" / "sample", root / "data" / "sample")
    shutil.copytree(NOTEBOOKS, root / "notebooks")
    add_non_image_objects(root / "data" / "sample" / "series_ct_philips_ingenuity_5mm")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", notebook_names())
def test_notebook_runs_with_non_image_objects_beside_the_images(
    name: str, checkout_with_objects: Path
) -> None:
    notebook = run_notebook(checkout_with_objects / "notebooks" / name, LEARNER_CHECKS.get(name))
    errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.output_type == "error"]  # fmt: skip
    assert not errors
