"""The teaching case as a stand-alone Voilà page in headless Chromium: the learner scrolls and
draws with the mouse; Reveal draws the teacher's GSPS annotations on the image and shows the
answer with feedback on the learner's mark; the quiz answers."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import wait_for_canvas

pytestmark = pytest.mark.browser

#: The viewer draws annotations of loaded presentation states in this colour (#3fd0ff).
GROUP_RGB = np.array([0x3F, 0xD0, 0xFF])


def group_coloured_pixels(png: bytes) -> int:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    return int((np.abs(pixels - GROUP_RGB).max(axis=-1) <= 40).sum())


def test_reveal_shows_the_teachers_findings_in_voila(
    browser, voila_teaching_case, artifacts_dir
) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(voila_teaching_case.url)
        reveal = page.locator(".wb-case-reveal")
        reveal.wait_for()
        viewport = page.locator(".wb-viewport").first
        page.wait_for_function(
            "() => /Im \\d+\\//.test(document.querySelector('.wb-viewport-status')"
            "?.textContent || '')"
        )
        # No code is shown in the stand-alone page, only the case.
        assert page.locator("text=History.").count() == 1
        assert "def write_teacher_state" not in page.locator("body").inner_text()
        before = group_coloured_pixels(viewport.screenshot())
        assert page.locator(".wb-annotations li").count() == 0
        assert "Im 1/" in page.locator(".wb-viewport-status").first.inner_text()

        # The learner scrolls to the key slice and draws an ellipse on the square insert.
        canvas = viewport.locator("canvas").first
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for frame in range(2, 16):
            page.mouse.wheel(0, 100)
            page.wait_for_function(
                "([n]) => document.querySelector('.wb-viewport-status').textContent"
                ".startsWith(`Im ${n}/`)",
                arg=[frame],
            )
        page.locator(".wb-tools button[title^='Ellipse']").click()
        zoom = min(box["width"], box["height"]) / 512  # a 512² image fitted to the viewport
        left = box["x"] + (box["width"] - 512 * zoom) / 2
        top = box["y"] + (box["height"] - 512 * zoom) / 2
        page.mouse.move(left + 278 * zoom, top + 188 * zoom)
        page.mouse.down()
        for step in range(1, 9):
            page.mouse.move(left + (278 + 2 * step) * zoom, top + (188 + 2 * step) * zoom)
        page.mouse.up()
        page.locator(".wb-annotations li[data-kind='ellipse'][data-state='done']").wait_for()
        assert page.locator(".wb-annotations li").count() == 1

        drawn = wait_for_canvas(page)
        reveal.click()
        page.locator(".wb-case-answer", has_text="Four inserts").wait_for()
        assert "on the square insert: well done" in page.locator(".wb-case-answer").inner_text()
        page.wait_for_function("() => document.querySelectorAll('.wb-annotations li').length === 5")
        # The key image (slice 15) is shown with the teacher's annotations drawn on it.
        page.wait_for_function(
            "() => /Im 15\\//.test(document.querySelector('.wb-viewport-status').textContent)"
        )
        labels = page.locator(".wb-annotations li").all_inner_texts()
        assert any("square insert" in label for label in labels), labels
        wait_for_canvas(page, changed_from=drawn)  # the overlay layer has painted them
        after = group_coloured_pixels(viewport.screenshot())
        assert after > before + 300, (before, after)
        assert page.locator(".wb-case-reveal").is_disabled()

        page.get_by_text("4", exact=True).first.click()
        page.get_by_role("button", name="Check").first.click()
        page.locator(".wb-quiz-feedback", has_text="Correct").wait_for()
        page.screenshot(
            path=str(artifacts_dir / "teaching-case-voila-revealed.png"), full_page=True
        )
    except Exception:
        page.screenshot(path=str(artifacts_dir / "teaching-case-voila-failure.png"), full_page=True)
        raise
    finally:
        context.close()
