"""Image ↔ display mapping: drawing, hit-testing and pixel placement must agree."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.widgets.geometry import DisplayTransform, fit_zoom

TRANSFORMS = [
    DisplayTransform(
        (300, 200), (400, 360), zoom=z, pan=pan, rotation=rot, flip=flip, aspect=aspect
    )
    for z in (0.731, 1.0, 2.317)
    for pan in ((0.0, 0.0), (37.0, -12.0))
    for rot in (0, 90, 180, 270)
    for flip in (False, True)
    for aspect in (1.0, 2.0, 0.625)  # square, tall and wide pixels
]


@pytest.mark.parametrize("t", TRANSFORMS)
def test_round_trip(t: DisplayTransform) -> None:
    points = np.array([[0.0, 0.0], [299.0, 199.0], [12.5, 150.25]])
    np.testing.assert_allclose(t.to_image(t.to_display(points)), points, atol=1e-9)


@pytest.mark.parametrize("t", TRANSFORMS)
def test_sampled_pixels_are_the_ones_under_each_display_pixel(t: DisplayTransform) -> None:
    """Each canvas pixel shows the image pixel that the inverse transform finds under it."""
    columns, rows = t.image_size
    index = np.arange(rows * columns).reshape(rows, columns)
    grid = t.visible_grid()
    assert grid is not None
    x0, y0, width, height, rr, cc = grid
    drawn = t.orient(index)[np.ix_(rr, cc)]
    for yi in range(0, height, 7):
        for xi in range(0, width, 11):
            c, r = t.to_image((x0 + xi + 0.5, y0 + yi + 0.5))
            if max(abs((c + 0.5) % 1 - 0.5), abs((r + 0.5) % 1 - 0.5)) > 0.5 - 1e-9:
                continue  # exactly on a pixel edge: either neighbour is right
            c, r = int(np.floor(c + 0.5)), int(np.floor(r + 0.5))
            if 0 <= c < columns and 0 <= r < rows:
                assert drawn[yi, xi] == index[r, c], (xi, yi)


def test_fit_zoom_uses_rotated_size() -> None:
    assert fit_zoom((512, 256), (512, 512)) == 1.0
    assert fit_zoom((512, 256), (256, 512), rotation=90) == 1.0
    assert fit_zoom((2048, 2048), (512, 512)) == 0.25


def test_rectangular_pixels_keep_their_shape_on_screen() -> None:
    """Rows 1 mm apart and columns 0.5 mm apart: a pixel is drawn twice as tall as wide."""
    t = DisplayTransform((100, 100), (400, 400), zoom=2.0, aspect=2.0)
    step_right = t.to_display((1.0, 0.0)) - t.to_display((0.0, 0.0))
    step_down = t.to_display((0.0, 1.0)) - t.to_display((0.0, 0.0))
    np.testing.assert_allclose(step_right, (2.0, 0.0))
    np.testing.assert_allclose(step_down, (0.0, 4.0))
    assert t.visible_grid()[:4] == (100, 0, 200, 400)
    turned = DisplayTransform((100, 100), (400, 400), zoom=2.0, aspect=2.0, rotation=90)
    assert turned.visible_grid()[2:4] == (400, 200)
    assert fit_zoom((100, 100), (400, 400), aspect=2.0) == 2.0
    assert fit_zoom((100, 100), (400, 400), rotation=90, aspect=2.0) == 2.0
    assert fit_zoom((100, 100), (400, 100), aspect=2.0) == 0.5


def test_image_outside_viewport_has_no_grid() -> None:
    t = DisplayTransform((64, 64), (100, 100), zoom=1.0, pan=(500.0, 0.0))
    assert t.visible_grid() is None
