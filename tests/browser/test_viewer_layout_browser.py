"""Thumbnails, drag from the panel, layouts, keyboard and toolbar in a real browser."""

from __future__ import annotations

import pytest

from tests.browser.conftest import status_text, wait_for_viewer

pytestmark = pytest.mark.browser


def wait_status(page, index: int, prefix: str) -> None:
    page.wait_for_function(
        "([i, p]) => { const s = document.querySelectorAll('.wb-viewport-status')[i];"
        " return s && s.textContent.startsWith(p); }",
        arg=[index, prefix],
    )


def test_thumbnails_layout_drag_keys(lab_page, run_notebook, sample_data, artifacts_dir) -> None:
    ct = sample_data / "series_ct_philips_ingenuity_5mm"
    mr = sample_data / "series_mr_siemens_t1_sag_HFS"
    cells = [
        "from workbench.widgets import Viewer",
        f"viewer = Viewer([{str(ct)!r}, {str(mr)!r}], layout=(1, 2), size=(900, 480))\nviewer",
    ]
    page = run_notebook(lab_page, "layout.ipynb", cells)
    wait_for_viewer(page, 0)
    wait_for_viewer(page, 1)
    frames = sorted(status_text(page, i).split(" ")[1] for i in (0, 1))
    assert frames == ["1/28", "1/35"]  # each viewport got its own series

    # Both previews arrive (rendered in the background, then cached).
    page.wait_for_function(
        "() => { const imgs = [...document.querySelectorAll('.wb-thumbnail img')];"
        " return imgs.length === 2 && imgs.every(i => i.naturalWidth > 0); }"
    )

    # Drag the CT thumbnail onto the viewport showing the MR.
    mr_viewport = 0 if status_text(page, 0).startswith("Im 1/35") else 1
    ct_thumbnail = page.locator(".wb-thumbnail", has_text="CT").first
    target = page.locator(".wb-viewport").nth(mr_viewport).locator(".wb-surface").bounding_box()
    thumb = ct_thumbnail.bounding_box()
    page.mouse.move(thumb["x"] + 40, thumb["y"] + 40)
    page.mouse.down()
    page.mouse.move(target["x"] + 100, target["y"] + 100, steps=8)
    page.mouse.up()
    wait_status(page, mr_viewport, "Im 15/28")  # on the slice its thumbnail shows

    # Keyboard over a viewport: End jumps to the last frame, Home back to the first.
    canvas = page.locator(".wb-viewport").nth(mr_viewport).locator(".wb-surface")
    canvas.hover()
    page.keyboard.press("End")
    wait_status(page, mr_viewport, "Im 28/28")
    page.keyboard.press("PageUp")
    wait_status(page, mr_viewport, "Im 18/28")

    # Toolbar: invert and rotate show in the status line; the layout menu makes a 2×2 grid.
    page.locator(".wb-action-invert").click()
    page.locator(".wb-view select").select_option("Rotate 90° clockwise")
    page.wait_for_function(
        "([i]) => { const t = document.querySelectorAll('.wb-viewport-status')[i].textContent;"
        " return t.includes('Rot 90°') && t.includes('Inverted'); }",
        arg=[mr_viewport],
    )
    page.locator(".wb-layout select").select_option("2×2")
    page.wait_for_function("() => document.querySelectorAll('.wb-viewport').length === 4")
    # Both series are already on screen, so the new viewports start empty. Clicking one
    # makes it active; clicking a thumbnail then shows that stack there.
    wait_status(page, 3, "empty")
    page.locator(".wb-viewport").nth(3).locator(".wb-surface").click()
    page.locator(".wb-thumbnail", has_text="MR").first.click()
    wait_status(page, 3, "Im 18/35")
    page.screenshot(path=str(artifacts_dir / "viewer_layout_2x2.png"), full_page=True)
