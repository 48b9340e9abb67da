"""The slice scrollbar: its geometry, and presses and drags on a real viewer's viewport."""

from __future__ import annotations

import pytest

from workbench.widgets import Viewer
from workbench.widgets.scrollbar import HIT_WIDTH, Scrollbar


def test_thumb_follows_the_frame_and_a_position_gives_its_frame_back() -> None:
    bar = Scrollbar(512, 512, 28)
    first, last = bar.thumb(0), bar.thumb(27)
    x, y, width, height = bar.track
    assert first[1] == y and last[1] + last[3] == pytest.approx(y + height)
    assert first[0] == x and first[2] == width and x + width <= 512
    for frame in range(28):
        top, thumb = bar.thumb(frame)[1], bar.thumb(frame)[3]
        assert bar.frame_at(top + thumb / 2) == frame
    assert bar.frame_at(-50) == 0 and bar.frame_at(5000) == 27


def test_only_the_right_edge_of_a_stack_is_a_scrollbar() -> None:
    bar = Scrollbar(300, 200, 10)
    assert bar.hit(300 - HIT_WIDTH / 2, 100) and not bar.hit(300 - 2 * HIT_WIDTH, 100)
    assert not Scrollbar(300, 200, 1).hit(299, 100), "one frame: nothing to scroll"


def test_press_and_drag_on_the_scrollbar_scroll_the_viewport(ct_dir) -> None:
    viewer = Viewer(ct_dir, size=(512, 540), thumbnails=False)
    try:
        view, viewport = viewer.views[0], viewer.viewports[0]
        bar = view.scrollbar()
        assert bar.count == viewport.frame_count > 1
        x = viewport.size[0] - 3
        view._on_event({"type": "mousedown", "relativeX": x, "relativeY": 0, "button": 0})
        assert viewport.frame == 0
        bottom = viewport.size[1] - 1
        view._on_event({"type": "mousemove", "relativeX": x - 100, "relativeY": bottom})
        assert viewport.frame == viewport.frame_count - 1, "the drag goes on off the strip"
        window = viewport.effective_window()
        view._on_event({"type": "mouseup", "relativeX": x - 100, "relativeY": bottom})
        view._on_event({"type": "mousemove", "relativeX": x - 100, "relativeY": 10})
        assert viewport.frame == viewport.frame_count - 1, "released: moves no longer scroll"
        assert viewport.effective_window() == window, "no W/L change from the scrollbar"
    finally:
        viewer.close()


def test_the_release_sets_the_frame_where_the_thumb_was_let_go(ct_dir) -> None:
    """Moves are throttled in the browser, so the last ones of a fast drag may never arrive:
    the release alone must bring the stack to where it happened."""
    viewer = Viewer(ct_dir, size=(512, 540), thumbnails=False)
    try:
        view, viewport = viewer.views[0], viewer.viewports[0]
        x, bottom = viewport.size[0] - 3, viewport.size[1] - 1
        view._on_event({"type": "mousedown", "relativeX": x, "relativeY": bottom, "button": 0})
        assert viewport.frame == viewport.frame_count - 1
        view._on_event({"type": "mousemove", "relativeX": x - 20, "relativeY": bottom / 2})
        assert 0 < viewport.frame < viewport.frame_count - 1
        view._on_event({"type": "mouseup", "relativeX": x - 80, "relativeY": 0})
        assert viewport.frame == 0
    finally:
        viewer.close()


def test_the_readout_waits_for_the_release_of_a_drag(ct_dir) -> None:
    """While a button is held the readout is not redrawn (nor for a window change, which
    leaves the value under the pointer as it was); it comes back at the release."""
    viewer = Viewer(ct_dir, size=(512, 540), thumbnails=False)
    try:
        view = viewer.views[0]
        shown: list[int] = []
        view._readout.action = lambda: shown.append(1)
        view._readout.interval = 0.0
        view._on_event({"type": "mousemove", "relativeX": 100, "relativeY": 100})
        assert len(shown) == 1
        view._on_event({"type": "mousedown", "relativeX": 100, "relativeY": 100, "button": 0})
        window = viewer.viewports[0].effective_window()
        for step in range(1, 6):  # a W/L drag
            view._on_event({"type": "mousemove", "relativeX": 100 + 9 * step, "relativeY": 100})
        assert viewer.viewports[0].effective_window() != window
        assert len(shown) == 1
        view._on_event({"type": "mouseup", "relativeX": 145, "relativeY": 100})
        assert len(shown) == 2
    finally:
        viewer.close()
