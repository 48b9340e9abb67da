"""Frames paced to the browser, in JupyterLab in headless Chromium: after a fast W/L drag the
pixels that stay on screen are exactly ``display.render`` of the final window, and the cursor
readout follows the pointer."""

from __future__ import annotations

import base64
import json
import re
import time

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import new_page, open_and_run, wait_for_viewer
from workbench.io import display, open_series
from workbench.widgets.viewport_view import MOVE_INTERVAL_MS

pytestmark = pytest.mark.browser

#: Keeps the image layer's canvas (the only one ipycanvas draws decoded images into) and
#: counts the images drawn there; keeps the readout's layer and its last text.
IMAGE_LAYER_JS = """
const fillText = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
  if (String(text).includes(' px (')) {
    window.__readoutLayer = this.canvas;
    window.__readout = String(text);
  }
  return fillText.call(this, text, ...rest);
};
window.__images = 0;
const drawImage = CanvasRenderingContext2D.prototype.drawImage;
CanvasRenderingContext2D.prototype.drawImage = function (...args) {
  const result = drawImage.apply(this, args);
  if (args[0] instanceof HTMLImageElement) {
    window.__imageLayer = this.canvas;
    window.__images += 1;
  }
  return result;
};
"""

READ_LAYER_JS = """() => {
  const c = window.__imageLayer;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let s = '';
  for (let i = 0; i < d.length; i += 4) s += String.fromCharCode(d[i]);
  return [window.__images, c.width, c.height, btoa(s)];
}"""


@pytest.fixture(scope="module")
def chest_ct(sample_data):
    return sample_data / "nema_ct1_ge" / "CT1_JLSN.dcm"


@pytest.fixture(scope="module")
def viewer_page(browser, jupyter_lab, chest_ct, artifacts_dir):
    """A 512² chest CT in a 512² viewport, and a line of text reporting the exact window and
    the frames the viewport sent."""
    cells = [
        "import json\nimport ipywidgets as widgets\nfrom workbench.widgets import Viewer",
        f"viewer = Viewer({str(chest_ct)!r}, size=(518, 542), thumbnails=False)\nviewer",
        "state = widgets.HTML()\nstate.add_class('wb-test-state')\n"
        "frames = viewer.views[0].frames\n"
        "drawn = [0]\n"
        "def report(_=None):\n"
        "    state.value = json.dumps({'window': viewer.viewports[0].window, 'drawn': drawn[0],\n"
        "                              'sent': frames.sent, 'previews': frames.previews})\n"
        # The browser's receipts, as the pipeline gets them.
        "acknowledged = frames.acknowledged\n"
        "def receipt(frame):\n"
        "    acknowledged(frame)\n"
        "    drawn[0] = frame\n"
        "    report()\n"
        "frames.acknowledged = receipt\n"
        "viewer.on_change(report, names=['window'])\nreport()\nstate",
    ]
    page = new_page(browser)
    page.add_init_script(IMAGE_LAYER_JS)
    open_and_run(page, jupyter_lab, "viewer_pipeline.ipynb", cells, artifacts_dir)
    canvas = wait_for_viewer(page)
    page.wait_for_function("() => window.__images > 0")
    yield page, canvas
    page.context.close()


def state(page) -> dict:
    return json.loads(page.locator(".wb-test-state").inner_text())


def image_layer(page) -> tuple[int, np.ndarray]:
    """How many images were drawn so far, and the image layer's grey levels."""
    count, width, height, data = page.evaluate(READ_LAYER_JS)
    return count, np.frombuffer(base64.b64decode(data), np.uint8).reshape(height, width)


def test_settled_pixels_are_exact_after_a_fast_drag(viewer_page, chest_ct, artifacts_dir):
    page, canvas = viewer_page
    before = state(page)
    assert json.dumps(before) == page.locator(".wb-test-state").inner_text()
    box = canvas.bounding_box()
    x, y = box["x"] + 200, box["y"] + 200
    page.mouse.move(x, y)
    page.mouse.down()
    moves = 80
    started = time.monotonic()
    for step in range(1, moves + 1):  # as fast as the browser takes them
        page.mouse.move(x + 3 * step, y + step)
    dragged = time.monotonic() - started
    page.mouse.up()
    page.wait_for_function(
        "t => document.querySelector('.wb-test-state').textContent !== t",
        arg=json.dumps(before),
    )
    stack = open_series(chest_ct)
    values = stack[0].values

    def expected() -> np.ndarray:
        center, width = state(page)["window"]
        return display.render(values, stack.attrs, window=(center, width))

    # The browser's receipt of the last frame comes once it is drawn: the image layer then
    # shows it, exactly.
    page.wait_for_function(
        "() => { const s = JSON.parse(document.querySelector('.wb-test-state').textContent);"
        " return s.drawn === s.sent; }",
        timeout=30_000,
    )
    after = state(page)
    _, shown = image_layer(page)
    Image.fromarray(shown).save(artifacts_dir / "viewer_pipeline_settled.png")
    assert np.array_equal(shown, expected()), (
        f"the settled image differs from display.render by up to "
        f"{np.abs(shown.astype(int) - expected().astype(int)).max()} grey levels"
    )
    assert after["window"] != before["window"]
    sent = after["sent"] - before["sent"]
    # The frames were paced: moves reach the kernel at most once per move interval, each
    # makes at most one frame, plus the exact one at the release; the ones during the drag
    # are cheaper. On a loaded machine the browser itself takes the moves slowly, and a gap
    # between two moves longer than the settle time adds that pause's exact frame.
    paced = int(dragged * 1000 / MOVE_INTERVAL_MS) + 3
    assert sent <= min(paced, 2 * moves + 1), (
        f"{sent} frames for {moves} moves in {dragged:.2f} s: more than one per "
        f"{MOVE_INTERVAL_MS} ms"
    )
    assert after["previews"] > before["previews"], "no cheaper frame was sent while dragging"


READOUT_CLEARED_JS = """() => {
  const c = window.__readoutLayer;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return false;
  return true;
}"""


def test_cursor_readout_follows_the_pointer(viewer_page, chest_ct, artifacts_dir):
    page, canvas = viewer_page
    values = open_series(chest_ct)[0].values
    box = canvas.bounding_box()
    for x, y in ((300, 180), (120, 400)):
        page.mouse.move(box["x"] + x, box["y"] + y)
        # The readout names the pixel under the pointer (at zoom 1, display pixel (x, y)
        # covers image pixel (x - 0.5, y - 0.5); the page's layout may shift it by a pixel
        # or two) and that pixel's HU.
        page.wait_for_function(
            "([x, y]) => { const m = /px \\((\\d+), (\\d+)\\)/.exec(window.__readout || '');"
            " return m && Math.abs(m[1] - x) <= 3 && Math.abs(m[2] - y) <= 3; }",
            arg=[x, y],
        )
        text = page.evaluate("() => window.__readout")
        column, row = (int(v) for v in re.search(r"px \((\d+), (\d+)\)", text).groups())
        assert text == f"{float(values[row, column]):.0f} HU  px ({column}, {row})"
    page.screenshot(path=str(artifacts_dir / "viewer_readout.png"), clip=box)
    page.mouse.move(box["x"] + box["width"] + 40, box["y"] + 10)  # off the viewport
    page.wait_for_function(READOUT_CLEARED_JS, polling="raf")
