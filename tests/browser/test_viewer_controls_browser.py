"""Keyboard shortcuts, the toolbar and the viewer's size in JupyterLab, in headless Chromium."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import status_text, wait_for_viewer
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


def test_keyboard_shortcuts(lab_page, run_notebook, shared_data, artifacts_dir) -> None:
    ct = shared_data / "series_ct_philips_ingenuity_5mm"
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
    page.locator(".wb-cine-rate").filter(has_text="fps").wait_for()
    page.keyboard.press(" ")
    page.wait_for_function(
        "() => !document.querySelector('.wb-cine').classList.contains('mod-active')"
    )
    stopped = frame_number(page)
    page.wait_for_timeout(300)  # a running cine would have moved on by now
    assert frame_number(page) == stopped and stopped != 1

    # None of these keys reached JupyterLab: both cells are still code cells, none was cut.
    assert page.locator(".jp-Notebook .jp-CodeCell").count() == 2
    page.screenshot(path=str(artifacts_dir / "viewer_shortcuts.png"))
