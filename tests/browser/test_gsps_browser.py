"""Saving and loading annotations in JupyterLab, in headless Chromium.

Save a named state (dialog, confirmation popup, "A" badge), reopen the notebook, load the
state by its checkbox (graphics) and radio (display), then delete it with confirmation.
"""

from __future__ import annotations

import io
import shutil
import time

import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.browser.conftest import draw_length, status_text, wait_for_viewer

pytestmark = pytest.mark.browser

CT_SERIES = "series_ct_philips_ingenuity_5mm"


def grey(page, canvas, path) -> np.ndarray:
    png = page.screenshot(clip=canvas.bounding_box(), path=str(path))
    return np.asarray(Image.open(io.BytesIO(png)).convert("L")).astype(float)


@pytest.fixture()
def study_folder(jupyter_lab, sample_data):
    """Three CT slices in a folder of the lab's root (states never go there)."""
    folder = jupyter_lab.root / "gsps-study"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for path in sorted(p for p in (sample_data / CT_SERIES).iterdir() if p.is_file())[:3]:
        shutil.copy(path, folder / path.name)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def grey_once_changed(page, canvas, previous: np.ndarray, path, timeout: float = 30.0):
    """The canvas in grey levels, once it differs from ``previous`` (PNGs are decoded by the
    browser after the update that carries them)."""
    deadline = time.monotonic() + timeout
    while True:
        now = grey(page, canvas, path)
        if np.abs(now - previous).mean() > 5:
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"the canvas did not change within {timeout} s")


def wait_for_status(page, text: str, present: bool) -> None:
    """Wait until the status line under the canvas does (or does not) say ``text``; the
    canvas is drawn in the same update."""
    page.wait_for_function(
        "([t, p]) => document.querySelector('.wb-viewport-status').textContent.includes(t) === p",
        arg=[text, present],
    )


def open_viewer(page, run_notebook, folder, state_dir):
    cells = [
        "from workbench.widgets import Viewer",
        f"viewer = Viewer({str(folder)!r}, size=(518, 542), state_dir={str(state_dir)!r})\nviewer",
    ]
    run_notebook(page, "gsps.ipynb", cells)
    return wait_for_viewer(page)


def test_save_reload_load_and_delete(lab_page, run_notebook, study_folder, artifacts_dir, tmp_path):
    page = lab_page
    images = sorted(study_folder.iterdir())
    state_dir = tmp_path / "states"
    canvas = open_viewer(page, run_notebook, study_folder, state_dir)
    draw_length(page, canvas)
    before = grey(page, canvas, artifacts_dir / "gsps_before.png")
    page.locator(".wb-action-invert").click()
    wait_for_status(page, "Inverted", True)
    inverted = grey_once_changed(page, canvas, before, artifacts_dir / "gsps_inverted.png")

    page.locator(".wb-save-annotations").click()
    page.locator(".wb-save-name input").fill("Teaching case")
    page.locator(".wb-save-ok").click()
    popup = page.locator(".wb-save-confirm")
    popup.wait_for()
    assert "Teaching case" in popup.inner_text()
    page.locator(".wb-has-states .wb-badge").wait_for()
    page.screenshot(path=str(artifacts_dir / "gsps_saved.png"))
    page.locator(".wb-popup-ok").click()
    popup.wait_for(state="detached")
    assert sorted(study_folder.iterdir()) == images
    (saved,) = state_dir.rglob("PR_*.dcm")
    assert pydicom.dcmread(saved).ContentDescription == "Teaching case"

    # Reopen: a new viewer on the same folder knows nothing but what was saved.
    canvas = open_viewer(page, run_notebook, study_folder, state_dir)
    page.locator(".wb-has-states .wb-badge").wait_for()
    assert page.locator(".wb-annotations li[data-kind='length']").count() == 0
    normal = grey(page, canvas, artifacts_dir / "gsps_reopened.png")
    assert np.abs(normal - inverted).mean() > 20  # reopened with the default display

    page.locator(".wb-load-annotations").click()
    panel = page.locator(".wb-annotations-panel")
    panel.wait_for(state="visible")
    assert not page.locator(".wb-thumbnails").is_visible()
    row = panel.locator(".wb-state-row")
    assert row.count() == 1 and "Teaching case" in row.inner_text()

    row.locator(".wb-state-graphics input").check()
    page.locator(".wb-annotations li[data-kind='length']").wait_for()
    row.locator(".wb-state-display").click()
    wait_for_status(page, "Inverted", True)
    applied = grey_once_changed(page, canvas, normal, artifacts_dir / "gsps_applied.png")
    assert np.abs(applied - inverted).mean() < np.abs(applied - normal).mean()
    row.locator(".wb-state-display").click()  # deselect: back to the original display
    wait_for_status(page, "Inverted", False)
    back = grey_once_changed(page, canvas, applied, artifacts_dir / "gsps_deselected.png")
    assert np.abs(back - normal).mean() < np.abs(back - inverted).mean()
    assert "Im 1/3" in status_text(page)
    page.screenshot(path=str(artifacts_dir / "gsps_panel.png"))

    row.locator(".wb-state-delete").click()
    page.locator(".wb-delete-dialog").wait_for()
    page.locator(".wb-confirm-cancel").click()
    assert saved.exists() and panel.locator(".wb-state-row").count() == 1
    row.locator(".wb-state-delete").click()
    page.locator(".wb-confirm-ok").click()
    panel.locator(".wb-state-row").wait_for(state="detached")
    assert not saved.exists()
    page.locator(".wb-has-states").wait_for(state="detached")
    page.locator(".wb-close-annotations").click()
    page.locator(".wb-thumbnails").wait_for(state="visible")
