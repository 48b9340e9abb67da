"""Keyboard shortcuts, the toolbar and the viewer's size in JupyterLab, in headless Chromium."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import status_text, wait_for_canvas, wait_for_viewer
from workbench.io import open_series
from workbench.widgets.presets import window_presets

pytestmark = pytest.mark.browser


def wait_status(page, predicate_js: str, index: int = 0) -> None:
    """Wait until ``predicate_js`` (a JS expression of ``t``, the status text) holds."""
    page.wait_for_function(
        f"([i]) => {{ const s = document.querySelectorAll('.wb-viewport-status')[i];"
        f" const t = s ? s.textContent : ''; return {predicate_js}; }}",
        arg=[index],
    )


def frame_number(page, index: int = 0) -> int:
    return int(re.match(r"Im (\d+)/", status_text(page, index)).group(1))


def zoom(page, index: int = 0) -> float:
    return float(re.search(r"Zoom ([\d.]+)×", status_text(page, index)).group(1))


def test_keyboard_shortcuts(lab_page, run_notebook, sample_data, artifacts_dir) -> None:
    ct = sample_data / "series_ct_philips_ingenuity_5mm"
    cells = [
        "from workbench.widgets import Viewer",
        f"viewer = Viewer({str(ct)!r}, thumbnails=False)\nviewer",
    ]
    page = run_notebook(lab_page, "shortcuts.ipynb", cells)
    canvas = wait_for_viewer(page)
    canvas.hover()
    assert "W 80 L 40" in status_text(page)

    page.keyboard.press("i")
    wait_status(page, "t.includes('Inverted')")
    # Presets by their number in the menu: the file's window, then the CT reading windows.
    presets = list(window_presets(open_series(ct).attrs).items())
    for key in ("3", "6"):
        name, (center, width) = presets[int(key) - 1]
        page.keyboard.press(key)
        wait_status(page, f"t.includes('W {width:.0f} L {center:.0f}')")
        menu = page.locator(".wb-presets select").inner_text().replace("\xa0", " ")
        assert f"{key} {name}" in menu
    fit = zoom(page)
    page.keyboard.press("+")
    wait_status(page, f"!t.includes('Zoom {fit:.2f}×')")
    assert zoom(page) == pytest.approx(fit * 1.25, abs=0.01)
    page.keyboard.press("End")
    wait_status(page, "t.startsWith('Im 28/28')")
    page.keyboard.press("PageUp")
    wait_status(page, "t.startsWith('Im 18/28')")
    page.keyboard.press("r")
    wait_status(page, "!t.includes('Inverted') && t.includes('W 80 L 40')")
    assert frame_number(page) == 18  # reset is about the display, not the frame

    # Space plays cine from the frame on screen, space again stops it where it is.
    page.keyboard.press(" ")
    wait_status(page, "t.startsWith('Im 20/28')")
    page.locator(".wb-cine", has_text="fps").wait_for()  # the rate reached
    page.keyboard.press(" ")
    page.wait_for_function(
        "() => !document.querySelector('.wb-cine').classList.contains('mod-active')"
    )
    # A frame sent just before the stop may still be drawn after it; then nothing moves.
    stopped = frame_number(page)
    page.wait_for_timeout(300)  # a running cine would have moved on by now
    if frame_number(page) == stopped + 1:
        stopped += 1
        page.wait_for_timeout(300)
    assert frame_number(page) == stopped and stopped != 1

    # None of these keys reached JupyterLab: both cells are still code cells, none was cut.
    assert page.locator(".jp-Notebook .jp-CodeCell").count() == 2
    page.screenshot(path=str(artifacts_dir / "viewer_shortcuts.png"))


LABELS_CELL = """
import json
from workbench.io.presentation import Annotation
from workbench.widgets import overlay
viewport = viewer.viewports[0]
viewport.window = (40, 400)
viewport.zoom = 1.0
for kind, points in [
    ("ellipse", [(200, 150), (265, 215)]),        # the aorta, in the mediastinum
    ("length", [(180, 140), (330, 140)]),         # across the mediastinum
    ("rectangle", [(225, 300), (272, 350)]),      # the vertebral body
    ("length", [(228, 296), (278, 362)]),         # crossing it
    ("angle", [(40, 330), (75, 360), (110, 330)]),  # on a rib
    ("probe", [(250, 106)]),                      # the sternum
]:
    viewer.annotations.add(viewer.model.measure(
        Annotation(kind, points, image=viewport.image_reference()), viewport))
text = overlay.layout(viewport, list(viewer.annotations), viewer.model.label_offsets)
print(json.dumps([[b.box.x, b.box.y, b.box.width, b.box.height] for b in (
    [label.block for label in text.labels])]))
"""


def test_labels_readable_on_bone(lab_page, run_notebook, sample_data, artifacts_dir) -> None:
    """On a chest CT, every label sits on its dark box beside its shape, readable over bone."""
    import io
    import json

    import numpy as np
    from PIL import Image

    ct = sample_data / "nema_ct1_ge"
    cells = [
        "from workbench.widgets import Viewer",
        f"viewer = Viewer({str(ct)!r}, thumbnails=False, size=(518, 542))\nviewer",
        LABELS_CELL,
    ]
    page = run_notebook(lab_page, "labels.ipynb", cells)
    canvas = wait_for_viewer(page)
    wait_status(page, "t.includes('Zoom 1.00')")
    boxes = json.loads(page.locator(".jp-OutputArea-output pre").last.inner_text())
    assert len(boxes) == 6
    wait_for_canvas(page)  # the overlay layer follows the status line
    png = page.screenshot(clip=canvas.bounding_box(), path=str(artifacts_dir / "labels_on_ct.png"))
    shot = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)
    for x, y, w, h in boxes:
        region = shot[int(y) + 1 : int(y + h) - 1, int(x) + 1 : int(x + w) - 1]
        grey = region.mean(axis=-1)
        yellow = (region[..., 0] > 180) & (region[..., 1] > 150) & (region[..., 2] < 110)
        # Text in the label colour on a background darker than the image's mid-grey.
        assert yellow.mean() > 0.03, f"no label text in {x, y, w, h}"
        assert np.median(grey[~yellow]) < 100, f"label background too light in {x, y, w, h}"


ROW_JS = """() => {
  const row = document.querySelector('.wb-toolbar-row');
  const items = [...row.children].filter(c => c.offsetParent !== null);
  const boxes = items.map(c => c.getBoundingClientRect());
  const tools = [...document.querySelectorAll('.wb-tools button')];
  const untitled = [...row.querySelectorAll('button, select, input')]
    .filter(e => e.offsetParent !== null && !(e.title || e.closest('[title]')));
  return {
    row: row.getBoundingClientRect().toJSON(),
    tops: boxes.map(b => Math.round(b.top)), rights: boxes.map(b => Math.round(b.right)),
    active: tools.filter(b => b.classList.contains('mod-active')).map(b => b.title),
    activeBg: getComputedStyle(document.querySelector('.wb-tools .mod-active')).backgroundColor,
    otherBg: getComputedStyle(tools.find(b => !b.classList.contains('mod-active'))).backgroundColor,
    untitled: untitled.map(e => e.outerHTML.slice(0, 80)),
  };
}"""


@pytest.fixture()
def small_window(browser, jupyter_lab, sample_data, artifacts_dir):
    """``open(name, arguments)``: a CT and an MR in a viewer, in a 1000×800 window."""
    from tests.browser.conftest import open_and_run

    context = browser.new_context(viewport={"width": 1000, "height": 800}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(60_000)
    ct = sample_data / "series_ct_philips_ingenuity_5mm"
    mr = sample_data / "series_mr_siemens_t1_sag_HFS"

    def open_viewer(name: str, arguments: str = ""):
        cells = [
            "from workbench.widgets import Viewer",
            f"viewer = Viewer([{str(ct)!r}, {str(mr)!r}]{arguments})\nviewer",
        ]
        open_and_run(page, jupyter_lab, name, cells, artifacts_dir)
        return page

    yield open_viewer
    context.close()


def test_toolbar_is_one_row_at_1000_px(small_window, artifacts_dir) -> None:
    page = small_window("toolbar.ipynb")
    # The file browser folded away, as one reads a notebook in a narrow window.
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
    wait_for_viewer(page)
    page.wait_for_function(
        "() => document.querySelector('.wb-viewer').getBoundingClientRect().left < 200"
    )
    page.screenshot(path=str(artifacts_dir / "toolbar_1000px.png"))
    measured = page.evaluate(ROW_JS)
    assert max(measured["tops"]) - min(measured["tops"]) < 8, measured
    assert measured["row"]["height"] <= 40, measured
    assert max(measured["rights"]) <= 1000
    # The tool in use stands out; every control says what it does when hovered.
    assert measured["active"] and measured["active"][0].startswith("Window/level")
    assert measured["activeBg"] != measured["otherBg"]
    assert not measured["untitled"], measured["untitled"]

    # The help lists the shortcuts.
    page.locator(".wb-help-button").click()
    help_panel = page.locator(".wb-help")
    help_panel.wait_for(state="visible")
    assert "space" in help_panel.inner_text() and "Esc" in help_panel.inner_text()
    # Drawn over the image, not clipped away by the toolbar.
    box = help_panel.bounding_box()
    top = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).closest('.wb-help') !== null",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert top, "the help panel is hidden behind something"
    page.screenshot(path=str(artifacts_dir / "toolbar_help.png"))
    page.locator(".wb-help-button").click()
    help_panel.wait_for(state="hidden")


FIT_JS = """() => {
  const viewer = document.querySelector('.wb-viewer').getBoundingClientRect();
  const area = document.querySelector('.wb-viewer').closest('.jp-OutputArea-output')
    .getBoundingClientRect();
  const canvases = [...document.querySelectorAll('.wb-viewport canvas')].map(c => {
    const r = c.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width,
            height: r.height, pixels: [c.width, c.height]};
  });
  return {viewer: viewer.toJSON(), area: area.toJSON(), canvases,
          window: [window.innerWidth, window.innerHeight]};
}"""

SHARP_JS = """([i]) => {
  const c = document.querySelectorAll('.wb-viewport canvas')[i];
  const r = c.getBoundingClientRect();
  return Math.abs(c.width - r.width) <= 1 && Math.abs(c.height - r.height) <= 1;
}"""


def test_viewer_fits_the_window_and_maximises(small_window, artifacts_dir) -> None:
    """A 2×2 grid fits a 1000 px window beside the file browser; full-window mode fills it,
    and Esc leaves it."""
    page = small_window("fit.ipynb", ", layout=(2, 2)")
    wait_for_viewer(page, 0)
    wait_for_viewer(page, 1)
    shown = page.evaluate(FIT_JS)
    assert shown["viewer"]["right"] <= shown["area"]["right"] + 1, shown
    for canvas in shown["canvases"]:
        assert canvas["right"] <= shown["area"]["right"] + 1, shown
        # Scaled, never stretched: the shown shape is the drawn shape.
        ratio = canvas["pixels"][0] / canvas["pixels"][1]
        assert canvas["width"] / canvas["height"] == pytest.approx(ratio, rel=0.02)
    # Once the pointer comes over a viewport, it is redrawn at the size shown.
    page.locator(".wb-viewport .wb-surface").nth(0).hover()
    page.wait_for_function(SHARP_JS, arg=[0])
    page.screenshot(path=str(artifacts_dir / "viewer_2x2_1000px.png"))

    page.locator(".wb-maximise").click()
    page.wait_for_function(
        "() => { const r = document.querySelector('.wb-viewer').getBoundingClientRect();"
        " return r.left === 0 && r.top === 0 && r.width === window.innerWidth; }"
    )
    page.mouse.move(5, 790)
    page.locator(".wb-viewport .wb-surface").nth(3).hover()
    page.wait_for_function(SHARP_JS, arg=[3])
    full = page.evaluate(FIT_JS)
    bottom = max(c["bottom"] for c in full["canvases"])
    assert bottom <= 800 and full["canvases"][3]["right"] > 900, full
    assert full["canvases"][0]["width"] > 1.5 * shown["canvases"][0]["width"]
    page.screenshot(path=str(artifacts_dir / "viewer_maximised.png"))
    page.keyboard.press("Escape")  # the pointer is over a viewport: Esc leaves full window
    page.wait_for_function(
        "() => document.querySelector('.wb-viewer').getBoundingClientRect().top > 50"
    )
