"""Where image pixels land on a viewport, and back.

The display transform of a viewport is: stretch rows by the pixel aspect ratio (``aspect``:
a pixel's height over its width, from Pixel Spacing, so that anatomy keeps its shape), mirror
(``flip``), rotate clockwise (``rotation``), scale (``zoom`` display pixels per image column),
then shift so that the image centre sits at the viewport centre plus ``pan`` (display
pixels). Image points are ``(column, row)`` with ``(0, 0)`` the centre of the top-left pixel;
display points are canvas coordinates with ``(0, 0)`` the top-left corner of the canvas.

Everything here is plain arithmetic so that drawing, mouse hit-testing and GSPS Displayed Area
conversions agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Point = tuple[float, float]


@dataclass(frozen=True)
class DisplayTransform:
    """The mapping between image pixel coordinates and viewport (canvas) coordinates.

    Parameters
    ----------
    image_size
        ``(columns, rows)`` of the image.
    viewport_size
        ``(width, height)`` of the canvas in display pixels.
    zoom
        Display pixels per image pixel.
    pan
        Offset in display pixels of the image centre from the viewport centre.
    rotation
        Clockwise rotation in degrees (0, 90, 180, 270).
    flip
        Horizontal mirror, applied before rotation.
    aspect
        Height of an image pixel over its width (row spacing over column spacing); 1 for
        square pixels.
    """

    image_size: tuple[int, int]
    viewport_size: tuple[int, int]
    zoom: float
    pan: Point = (0.0, 0.0)
    rotation: int = 0
    flip: bool = False
    aspect: float = 1.0

    @property
    def _quarter_turns(self) -> int:
        return (self.rotation // 90) % 4

    @property
    def image_centre(self) -> Point:
        columns, rows = self.image_size
        return ((columns - 1) / 2.0, (rows - 1) / 2.0)

    @property
    def displayed_image_size(self) -> tuple[float, float]:
        """``(width, height)`` of the image after rotation, in image columns (before zoom)."""
        columns, rows = self.image_size
        height = rows * self.aspect
        return (height, columns) if self._quarter_turns % 2 else (columns, height)

    @property
    def pixel_scale(self) -> float:
        """Display pixels along the longer side of an image pixel on screen."""
        return self.zoom * max(self.aspect, 1.0)

    @property
    def _oriented_pixel_size(self) -> tuple[float, float]:
        """``(width, height)`` on screen, in image columns, of one pixel of the oriented image."""
        return (self.aspect, 1.0) if self._quarter_turns % 2 else (1.0, self.aspect)

    def to_display(self, points) -> np.ndarray:
        """Map image points ``(column, row)`` (N×2 or one point) to canvas coordinates."""
        p = np.asarray(points, dtype=float)
        single = p.ndim == 1
        p = np.atleast_2d(p) - self.image_centre
        x, y = p[:, 0].copy(), p[:, 1] * self.aspect
        if self.flip:
            x = -x
        for _ in range(self._quarter_turns):
            x, y = -y, x
        width, height = self.viewport_size
        out = np.column_stack(
            [width / 2.0 + self.pan[0] + self.zoom * x, height / 2.0 + self.pan[1] + self.zoom * y]
        )
        return out[0] if single else out

    def to_image(self, points) -> np.ndarray:
        """Map canvas coordinates (N×2 or one point) back to image points ``(column, row)``."""
        p = np.asarray(points, dtype=float)
        single = p.ndim == 1
        p = np.atleast_2d(p)
        width, height = self.viewport_size
        x = (p[:, 0] - width / 2.0 - self.pan[0]) / self.zoom
        y = (p[:, 1] - height / 2.0 - self.pan[1]) / self.zoom
        for _ in range(self._quarter_turns):
            x, y = y, -x
        if self.flip:
            x = -x
        cx, cy = self.image_centre
        out = np.column_stack([x + cx, y / self.aspect + cy])
        return out[0] if single else out

    def orient(self, pixels: np.ndarray) -> np.ndarray:
        """Apply flip and rotation to an image array (rows first), as it will be displayed."""
        if self.flip:
            pixels = pixels[:, ::-1]
        turns = self._quarter_turns
        # np.rot90 turns counter-clockwise for positive k.
        return np.rot90(pixels, k=-turns, axes=(0, 1)) if turns else pixels

    def visible_grid(self) -> tuple[int, int, int, int, np.ndarray, np.ndarray] | None:
        """The canvas rectangle covered by the image and, per display pixel, its source pixel.

        Returns
        -------
        tuple or None
            ``(x0, y0, width, height, rows, cols)``: the top-left corner and size (display
            pixels) of the visible part of the oriented image, and index arrays into the
            oriented image (nearest neighbour) for its rows and columns. ``None`` when the
            image lies entirely outside the viewport.
        """
        columns, rows = self.image_size
        out_columns, out_rows = (rows, columns) if self._quarter_turns % 2 else (columns, rows)
        shown_width, shown_height = self.displayed_image_size
        pixel_width, pixel_height = self._oriented_pixel_size
        width, height = self.viewport_size
        # Top-left corner of the oriented image on the canvas (pixel corners, not centres).
        left = width / 2.0 + self.pan[0] - self.zoom * shown_width / 2.0
        top = height / 2.0 + self.pan[1] - self.zoom * shown_height / 2.0
        x0 = max(0, int(np.floor(left)))
        y0 = max(0, int(np.floor(top)))
        x1 = min(width, int(np.ceil(left + self.zoom * shown_width)))
        y1 = min(height, int(np.ceil(top + self.zoom * shown_height)))
        if x1 <= x0 or y1 <= y0:
            return None
        # Sample each display pixel at its centre.
        step_x, step_y = self.zoom * pixel_width, self.zoom * pixel_height
        cols = np.floor((np.arange(x0, x1) + 0.5 - left) / step_x).astype(np.intp)
        rows = np.floor((np.arange(y0, y1) + 0.5 - top) / step_y).astype(np.intp)
        np.clip(cols, 0, out_columns - 1, out=cols)
        np.clip(rows, 0, out_rows - 1, out=rows)
        return x0, y0, x1 - x0, y1 - y0, rows, cols


def fit_zoom(
    image_size: tuple[int, int],
    viewport_size: tuple[int, int],
    rotation: int = 0,
    aspect: float = 1.0,
) -> float:
    """The zoom at which the whole (rotated) image fits the viewport."""
    columns, rows = image_size[0], image_size[1] * aspect
    if (rotation // 90) % 2:
        columns, rows = rows, columns
    width, height = viewport_size
    return max(min(width / max(columns, 1), height / max(rows, 1)), 1e-6)
