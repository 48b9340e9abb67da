"""Coordinate conventions between :mod:`workbench.io.presentation` and GSPS attributes.

Every conversion between our image coordinates and the numbers stored in a presentation state
happens here, so that writing, reading and rendering agree:

- Our points are ``(column, row)`` with ``(0, 0)`` the *centre* of the top-left pixel. GSPS
  PIXEL annotation units put ``0\\0`` at the top-left *corner* of that pixel (PS3.3 C.10.5.1.2),
  so a GSPS value is ours plus one half.
- Displayed Area corners (PS3.3 C.10.4) are 1-based pixel indices (``1\\1`` is the top-left
  pixel) naming the pixels that end up top-left and bottom-right *after* the spatial
  transformation, expressed in the coordinates of the untransformed image.
- Our :class:`~workbench.io.presentation.DisplaySettings` mirror first, then rotate clockwise
  (as the viewer's display transform does), whereas a GSPS rotates first, then mirrors
  (PS3.3 C.10.6). Mirroring after a rotation by ``r`` equals rotating by ``-r`` after mirroring.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from workbench.io.presentation import DisplaySettings, Point

#: GSPS PIXEL value of the centre of the top-left pixel.
PIXEL_ORIGIN = 0.5

#: Decimal places kept when reading coordinates: GSPS stores them as 32-bit floats, whose
#: noise (~1e-5 px on a 2000-px image) would otherwise show up as spurious differences.
READ_DECIMALS = 4


def to_gsps_points(points: Iterable[Point]) -> np.ndarray:
    """Our ``(column, row)`` points as an N×2 array of GSPS PIXEL values."""
    return np.asarray(list(points), dtype=float).reshape(-1, 2) + PIXEL_ORIGIN


def from_gsps_points(values: Sequence[float]) -> list[Point]:
    """A flat GSPS PIXEL ``column\\row\\column\\row...`` list as our ``(column, row)`` points."""
    array = np.asarray(list(values), dtype=float).reshape(-1, 2) - PIXEL_ORIGIN
    return [(round(float(c), READ_DECIMALS), round(float(r), READ_DECIMALS)) for c, r in array]


def to_gsps_rotation(rotation: int, flip: bool) -> int:
    """Image Rotation (0070,0042) for our "mirror, then rotate clockwise by ``rotation``"."""
    return (360 - rotation) % 360 if flip else rotation % 360


def from_gsps_rotation(image_rotation: int, horizontal_flip: bool) -> int:
    """Our clockwise rotation for a GSPS "rotate by ``image_rotation``, then mirror"."""
    # The relation is its own inverse.
    return to_gsps_rotation(int(image_rotation) % 360, horizontal_flip)


def _oriented(points: np.ndarray, rotation: int, flip: bool) -> np.ndarray:
    """Points (relative to any centre) after our mirror-then-rotate display transform."""
    x, y = points[:, 0].copy(), points[:, 1].copy()
    if flip:
        x = -x
    for _ in range((rotation // 90) % 4):
        x, y = -y, x
    return np.column_stack([x, y])


def displayed_area_corners(
    region: tuple[int, int, int, int], rotation: int, flip: bool
) -> tuple[list[int], list[int]]:
    """Displayed Area TLHC and BRHC (1-based) for a region of the untransformed image.

    Parameters
    ----------
    region
        ``(left, top, right, bottom)`` 0-based pixel indices, inclusive.
    rotation, flip
        Our display transform (mirror, then rotate clockwise).
    """
    left, top, right, bottom = region
    corners = np.array([[left, top], [right, top], [left, bottom], [right, bottom]], dtype=float)
    shown = _oriented(corners - corners.mean(axis=0), rotation, flip)
    order = shown.sum(axis=1)
    tlhc = corners[int(np.argmin(order))]
    brhc = corners[int(np.argmax(order))]
    return [int(tlhc[0]) + 1, int(tlhc[1]) + 1], [int(brhc[0]) + 1, int(brhc[1]) + 1]


def region_from_corners(tlhc: Sequence[int], brhc: Sequence[int]) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` 0-based inclusive pixel indices of a Displayed Area."""
    (c1, r1), (c2, r2) = (int(v) - 1 for v in tlhc), (int(v) - 1 for v in brhc)
    return min(c1, c2), min(r1, r2), max(c1, c2), max(r1, r2)


def region_around(center: Point, columns: int, rows: int) -> tuple[int, int, int, int]:
    """An image-sized region (0-based, inclusive) whose middle is ``center``.

    Corners are whole pixels, so the middle of a region falls on a pixel centre when its size
    is odd and between two pixels when even; the region is one pixel larger than the image
    where that is needed to centre it on ``center`` to the nearest half pixel.
    """

    def span(middle: float, size: int) -> tuple[int, int]:
        twice = round(2 * middle)
        if (size - 1) % 2 != twice % 2:
            size += 1
        start = (twice - (size - 1)) // 2
        return start, start + size - 1

    left, right = span(center[0], columns)
    top, bottom = span(center[1], rows)
    return left, top, right, bottom


def region_center(region: tuple[int, int, int, int]) -> Point:
    """The middle of a region in our pixel-centre coordinates."""
    left, top, right, bottom = region
    return ((left + right) / 2.0, (top + bottom) / 2.0)


def orient_pixels(pixels: np.ndarray, rotation: int, flip: bool) -> np.ndarray:
    """An image array (rows first) as displayed: mirrored, then rotated clockwise."""
    if flip:
        pixels = pixels[:, ::-1]
    turns = (rotation // 90) % 4
    # np.rot90 turns counter-clockwise for positive k.
    return np.rot90(pixels, k=-turns, axes=(0, 1)) if turns else pixels


def displayed_region(
    display: DisplaySettings, columns: int, rows: int
) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` pixel indices (inclusive) of the displayed area.

    An explicit ``area`` (scale to fit), an image-sized area around ``center`` when zoomed or
    panned (magnify), else the whole image.
    """
    if display.zoom is None and display.area is not None:
        left, top, right, bottom = (round(v) for v in display.area)
        return min(left, right), min(top, bottom), max(left, right), max(top, bottom)
    if display.zoom is not None or display.center is not None:
        center = display.center or ((columns - 1) / 2.0, (rows - 1) / 2.0)
        return region_around(center, columns, rows)
    return 0, 0, columns - 1, rows - 1
