"""MPR in a real browser: a click with the crosshair in the coronal plane moves the axial one."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import canvas_state, status_text, wait_for_canvas, wait_for_viewer

pytestmark = pytest.mark.browser


def _frame(page, index: int) -> int:
    return int(re.match(r"Im (\d+)/", status_text(page, index)).group(1))


def test_click_in_the_coronal_plane_moves_the_axial_one(
    lab_page, run_notebook, sample_data, artifacts_dir
) -> None:
    ct = sample_data / "series_ct_philips_ingenuity_5mm"
    cells = [
        "from workbench.widgets import Viewer",
        f"viewer = Viewer({str(ct)!r}, size=(900, 420), thumbnails=False)\n"
        "viewer.layout = 'mpr'\nviewer.tool = 'crosshair'\nviewer",
    ]
    page = run_notebook(lab_page, "mpr.ipynb", cells)
    coronal = wait_for_viewer(page, 1)
    for index in (0, 2):
        wait_for_viewer(page, index)
    assert "Coronal (reformatted)" in status_text(page, 1)
    assert "Sagittal (reformatted)" in status_text(page, 2)
    axial_before = wait_for_canvas(page, 0)
    frame_before = _frame(page, 0)

    # Above the middle of the coronal image is towards the head: a higher axial slice.
    box = coronal.bounding_box()
    coronal.hover()
    page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2 - 50)
    page.wait_for_function(
        "([before]) => { const s = document.querySelectorAll('.wb-viewport-status')[0];"
        " const m = /Im (\\d+)\\//.exec(s.textContent); return m && +m[1] > before; }",
        arg=[frame_before],
    )
    axial_after = wait_for_canvas(page, 0, changed_from=axial_before)
    assert axial_after != axial_before and canvas_state(page, 0) == axial_after
    assert _frame(page, 0) > frame_before
    page.screenshot(path=str(artifacts_dir / "mpr_after_click.png"), full_page=True)
