"""The slice scrollbar in JupyterLab in headless Chromium: a press on the right edge jumps to
that slice, a drag along it scrolls, and the settled pixels are ``display.render`` of the
slice reached."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.browser.conftest import (
    canvas_state,
    new_page,
    open_and_run,
    status_text,
    wait_for_canvas,
    wait_for_viewer,
)
from tests.browser.test_viewer_pipeline_browser import IMAGE_LAYER_JS, image_layer
from workbench.io import display, open_series
from workbench.widgets import Viewer

pytestmark = pytest.mark.browser


def wait_for_slice(page, number: int, count: int) -> None:
    page.wait_for_function(
        "t => document.querySelector('.wb-viewport-status').textContent.includes(t)",
        arg=f"Im {number}/{count}",
    )


def test_scrollbar_press_jumps_and_drag_scrolls(browser, jupyter_lab, sample_data, artifacts_dir):
    ct_dir = sample_data / "series_ct_philips_ingenuity_5mm"
    cells = [
        "from workbench.widgets import Viewer",
        f"viewer = Viewer({str(ct_dir)!r}, size=(518, 542), thumbnails=False)\nviewer",
    ]
    page = new_page(browser)
    page.add_init_script(IMAGE_LAYER_JS)
    try:
        open_and_run(page, jupyter_lab, "viewer_scrollbar.ipynb", cells, artifacts_dir)
        canvas = wait_for_viewer(page)
        stack = open_series(ct_dir)
        count = stack.sizes["frame"]
        assert f"/{count}" in status_text(page) and f"Im {count}/" not in status_text(page)
        box = canvas.bounding_box()
        edge = box["x"] + box["width"] - 4
        before = canvas_state(page)
        page.mouse.click(edge, box["y"] + box["height"] - 2)  # the bottom of the track
        wait_for_slice(page, count, count)
        at_bottom = wait_for_canvas(page, changed_from=before)

        page.mouse.move(edge, box["y"] + box["height"] - 2)
        page.mouse.down()
        for step in range(1, 11):  # up the track, and off it to the left: still scrolling
            page.mouse.move(edge - 8 * step, box["y"] + box["height"] * (1 - step / 10))
        page.mouse.up()
        wait_for_slice(page, 1, count)
        wait_for_canvas(page, changed_from=at_bottom)

        model = Viewer(ct_dir, size=(518, 542), thumbnails=False)
        try:
            window = model.viewports[0].effective_window()
        finally:
            model.close()
        expected = display.render(stack[0].values, display.frame_attrs(stack, 0), window=window)
        # A cheaper frame may show while the exact one is on its way: wait for the image
        # layer to change until it shows the exact frame, which must come.
        deadline = time.monotonic() + 30
        images, shown = image_layer(page)
        while not np.array_equal(shown, expected) and time.monotonic() < deadline:
            page.wait_for_function("n => window.__images > n", arg=images, timeout=30_000)
            images, shown = image_layer(page)
        page.screenshot(path=str(artifacts_dir / "viewer_scrollbar.png"), clip=box)
        assert np.array_equal(shown, expected), (
            f"differs by up to {np.abs(shown.astype(int) - expected.astype(int)).max()}"
        )
    finally:
        page.context.close()
