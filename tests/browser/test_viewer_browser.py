"""The viewer in JupyterLab, in headless Chromium: pixels, W/L drag, wheel scroll, a length."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import (
    canvas_state,
    draw_length,
    new_page,
    open_and_run,
    status_text,
    wait_for_canvas,
    wait_for_viewer,
)
from workbench.io import display, open_series

pytestmark = pytest.mark.browser

CT_SPACING = 0.451171875  # mm, series_ct_philips_ingenuity_5mm


def screenshot(page, canvas, path) -> np.ndarray:
    """The canvas area of the page as an RGB array (both layers composited)."""
    box = canvas.bounding_box()
    png = page.screenshot(clip=box, path=str(path))
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture(scope="module")
def ct_series(sample_data):
    return sample_data / "series_ct_philips_ingenuity_5mm"


@pytest.fixture(scope="module")
def viewer_page(browser, jupyter_lab, ct_series, artifacts_dir):
    """One notebook for the module's tests, which run in order on the same viewer (the
    pixel check first, while the viewer shows its default display)."""
    # size=(518, 542) gives one 512×512 viewport: one screen pixel per image pixel.
    cells = [
        "from workbench.widgets import Viewer",
        f"viewer = Viewer({str(ct_series)!r}, size=(518, 542), thumbnails=False)\nviewer",
    ]
    page = new_page(browser)
    open_and_run(page, jupyter_lab, "viewer.ipynb", cells, artifacts_dir)
    canvas = wait_for_viewer(page)
    yield page, canvas
    page.context.close()


def test_canvas_shows_the_frame(viewer_page, ct_series, artifacts_dir) -> None:
    page, canvas = viewer_page
    shot = screenshot(page, canvas, artifacts_dir / "viewer_ct_frame1.png")
    assert shot.shape[:2] == (512, 512)
    grey = shot.mean(axis=-1)
    assert grey.std() > 20, "the canvas is blank"
    stack = open_series(ct_series)
    expected = display.render(stack[0].values, stack.attrs).astype(float)
    # Overlay text and letters cover a few percent of the canvas; the rest must match.
    close = np.abs(grey - expected) <= 8
    assert close.mean() > 0.93, f"only {close.mean():.1%} of pixels match the rendered frame"
    assert np.median(np.abs(grey - expected)) <= 2


def test_drag_changes_window_and_pixels(viewer_page, ct_series, artifacts_dir) -> None:
    page, canvas = viewer_page
    before = screenshot(page, canvas, artifacts_dir / "viewer_wl_before.png")
    drawn_before = canvas_state(page)
    assert "W 80 L 40" in status_text(page)
    box = canvas.bounding_box()
    x, y = box["x"] + 256, box["y"] + 256
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x + 20 * step, y + 4 * step)
    page.mouse.up()
    page.wait_for_function(
        "() => !document.querySelector('.wb-viewport-status').textContent.includes('W 80 L 40')"
    )
    wait_for_canvas(page, changed_from=drawn_before)
    after = screenshot(page, canvas, artifacts_dir / "viewer_wl_after.png")
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=-1) > 10
    # The phantom is mostly air: the plastic and water parts (a few percent) turn grey.
    assert changed.mean() > 0.02, "W/L drag did not change the image"
    # And the new picture is the frame rendered with the window the status line reports.
    width, level = (float(v) for v in re.search(r"W (\S+) L (\S+)", status_text(page)).groups())
    stack = open_series(ct_series)
    expected = display.render(stack[0].values, stack.attrs, window=(level, width)).astype(float)
    close = np.abs(after.mean(axis=-1) - expected) <= 8
    assert close.mean() > 0.93


def test_wheel_scrolls_frames(viewer_page, artifacts_dir) -> None:
    page, canvas = viewer_page
    assert status_text(page).startswith("Im 1/28")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 200, box["y"] + 200)
    drawn = canvas_state(page)
    for frame in (2, 3, 4):
        page.mouse.wheel(0, 100)
        page.wait_for_function(
            "([n]) => document.querySelector('.wb-viewport-status').textContent"
            ".startsWith(`Im ${n}/28`)",
            arg=[frame],
        )
    wait_for_canvas(page, changed_from=drawn)
    screenshot(page, canvas, artifacts_dir / "viewer_scrolled.png")
    page.mouse.wheel(0, -100)
    page.wait_for_function(
        "() => document.querySelector('.wb-viewport-status').textContent.startsWith('Im 3/28')"
    )


def test_draw_a_length_and_read_it(viewer_page, artifacts_dir) -> None:
    page, canvas = viewer_page
    text = draw_length(page, canvas).inner_text()
    value = float(text.split(":")[1].split("mm")[0])
    assert value == pytest.approx(200 * CT_SPACING, abs=2 * CT_SPACING), text
    screenshot(page, canvas, artifacts_dir / "viewer_length.png")
