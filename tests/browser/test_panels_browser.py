"""The side panels in JupyterLab, in headless Chromium: many series in the thumbnail panel,
the saved-states list across slices, saving from the quickstart, folders with non-image
objects."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.browser.conftest import wait_for_viewer

pytestmark = pytest.mark.browser

SERIES_COUNT = 22


@pytest.fixture()
def many_series(jupyter_lab, sample_data) -> Path:
    """22 MR series (the sample 64² MR under new series UIDs and numbers): one image each,
    three slices in the last."""
    folder = jupyter_lab.root / "many-series"
    folder.mkdir(exist_ok=True)
    source = pydicom.dcmread(sample_data / "nema_mr1_small_transcodes" / "MR_small.dcm")
    z = float(source.ImagePositionPatient[2])
    for number in range(1, SERIES_COUNT + 1):
        source.SeriesInstanceUID = generate_uid()
        source.SeriesNumber = number
        source.SeriesDescription = f"copy {number}"
        for slice_number in range(1, 4 if number == SERIES_COUNT else 2):
            source.SOPInstanceUID = source.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            source.InstanceNumber = slice_number
            source.ImagePositionPatient[2] = z + 5 * slice_number
            source.save_as(folder / f"series{number:02}-{slice_number}.dcm")
    return folder


def test_many_series_scroll_and_keep_their_size(lab_page, run_notebook, many_series,
                                                artifacts_dir) -> None:  # fmt: skip
    cells = [
        "from workbench.widgets import Viewer",
        f"viewer = Viewer({str(many_series)!r}, size=(480, 480))\nviewer",
    ]
    page = run_notebook(lab_page, "many-series.ipynb", cells)
    wait_for_viewer(page)
    page.wait_for_function(
        f"() => {{ const imgs = [...document.querySelectorAll('.wb-thumbnail img')];"
        f" return imgs.length === {SERIES_COUNT} && imgs.every(i => i.naturalWidth > 0); }}"
    )
    boxes = page.evaluate(
        "() => [...document.querySelectorAll('.wb-thumbnail')].map(t => {"
        " const r = t.getBoundingClientRect(), i = t.querySelector('img').getBoundingClientRect();"
        " return [r.height, i.width, i.height, t.innerText]; })"
    )
    page.screenshot(path=str(artifacts_dir / "thumbnails_many_series.png"))
    assert len(boxes) == SERIES_COUNT
    for height, image_width, image_height, _label in boxes:
        assert (image_width, image_height) == (96, 96)
        assert height > 96 + 10  # the preview and its label, never squashed
    labels = [label for *_, label in boxes]
    assert labels[0].startswith("#1 MR · copy 1") and labels[-1].startswith("#22 MR · copy 22")
    panel = page.evaluate(
        "() => { const p = document.querySelector('.wb-thumbnails');"
        " return [p.scrollHeight, p.clientHeight, getComputedStyle(p).overflowY]; }"
    )
    scroll_height, client_height, overflow = panel
    assert overflow == "auto" and scroll_height > client_height
    assert scroll_height >= SERIES_COUNT * 106
    # The last one scrolls into view and opens.
    last = page.locator(".wb-thumbnail").nth(SERIES_COUNT - 1)
    last.scroll_into_view_if_needed()
    assert "3 fr" in last.inner_text()
    last.click()
    # It opens on the slice its thumbnail shows: the middle one.
    page.wait_for_function(
        "() => document.querySelector('.wb-viewport-status').textContent.startsWith('Im 2/3')"
    )
    page.screenshot(path=str(artifacts_dir / "thumbnails_scrolled.png"))
