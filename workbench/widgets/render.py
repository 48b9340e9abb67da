"""From a viewport's state to the pixels and bytes sent to the browser.

Only what the viewport shows is computed and sent: the visible part of the image, sampled at
display resolution (nearest neighbour, so magnified pixels stay sharp), then windowed with
:func:`workbench.io.display.render` and PNG-encoded losslessly at a fast compression level.
A 2048² radiograph shown in a 512² viewport thus costs a 512² window and about 100 kB, not a
2048² window and 4 MB.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from workbench.io import display
from workbench.widgets.model import Viewport

#: zlib level for PNG frames: level 1 is about 3× faster than PIL's default (6) for a few
#: percent more bytes, which matters more while dragging the window.
PNG_COMPRESS_LEVEL = 1
#: JPEG quality of the frames shown while input keeps coming (the exact PNG follows): a
#: 512² chest CT in a mediastinal window is about 34 kB (45 kB at quality 85) instead of
#: 105 kB of PNG, and encodes in under 1 ms.
PREVIEW_JPEG_QUALITY = 75


@dataclass(frozen=True)
class RenderedFrame:
    """Display-ready pixels of a viewport: where they go and what they are."""

    x: int
    y: int
    pixels: np.ndarray

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def render_viewport(viewport: Viewport) -> RenderedFrame | None:
    """The uint8 pixels (``(h, w)`` or ``(h, w, 3)``) to draw at ``(x, y)`` on the canvas.

    ``None`` for an empty viewport or when the image is panned entirely out of view.
    """
    if viewport.stack is None:
        return None
    transform = viewport.transform()
    grid = transform.visible_grid()
    if grid is None:
        return None
    x0, y0, _, _, rows, cols = grid
    attrs = display.frame_attrs(viewport.stack, viewport.frame)
    oriented = transform.orient(viewport.pixels())
    # Blocks no larger than the part of the image under one screen pixel, in both directions.
    scale = transform.pixel_scale
    factor = int(1.0 / scale) if scale <= 0.5 else 1
    if factor >= 2 and attrs.get("palette") is None:  # palette indices cannot be averaged
        # Each screen pixel covers several image pixels: show their mean rather than one
        # of them, so a radiograph at "fit" is not aliased. The reduced frame is kept, so
        # W/L drags do not average again.
        reduced = _reduced(viewport, oriented, factor, transform)
        sampled = reduced[np.ix_(rows // factor, cols // factor)]
    else:
        sampled = oriented[np.ix_(rows, cols)]
    window = viewport.window
    if window is None and not uses_voi_lut(attrs):
        # The default window comes from the whole frame, not just the part on screen.
        window = viewport.effective_window()
    pixels = _render_through_lut(sampled, attrs, window, viewport.invert)
    if pixels is None:
        pixels = display.render(sampled, attrs, window=window, invert=viewport.invert)
    return RenderedFrame(x0, y0, np.ascontiguousarray(pixels))


_REDUCED: dict[tuple, np.ndarray] = {}


def _reduced(viewport: Viewport, oriented: np.ndarray, factor: int, transform) -> np.ndarray:
    """``oriented`` averaged over ``factor``×``factor`` blocks, remembered for the last view.

    Block ``(i, j)`` holds the mean of rows ``i*factor...`` and columns ``j*factor...``, so
    an index into the full image divided by ``factor`` finds the block containing it. The
    mean is rounded back to the frame's dtype so integer frames keep the fast LUT path.
    """
    from workbench.widgets.cache import stack_key

    key = (id(viewport), stack_key(viewport.stack), viewport.frame, viewport.slab, factor,
           transform.rotation, transform.flip)  # fmt: skip
    cached = _REDUCED.get(key)
    if cached is not None:
        return cached
    rows, cols = oriented.shape[:2]
    pad_rows, pad_cols = -rows % factor, -cols % factor
    padding = [(0, pad_rows), (0, pad_cols)] + [(0, 0)] * (oriented.ndim - 2)
    padded = np.pad(oriented, padding, mode="edge") if pad_rows or pad_cols else oriented
    blocks = padded.reshape(
        padded.shape[0] // factor, factor, padded.shape[1] // factor, factor, *padded.shape[2:]
    )
    mean = blocks.mean(axis=(1, 3), dtype=np.float64)
    if oriented.dtype.kind in "iu":
        mean = np.rint(mean).astype(oriented.dtype)
    else:
        mean = mean.astype(oriented.dtype, copy=False)
    # One reduced frame per viewport is enough: it serves every redraw until the frame,
    # zoom step or orientation changes.
    for old in [k for k in _REDUCED if k[0] == id(viewport)]:
        del _REDUCED[old]
    _REDUCED[key] = mean
    while len(_REDUCED) > 16:  # viewers come and go in a notebook; keep memory bounded
        del _REDUCED[next(iter(_REDUCED))]
    return mean


def uses_voi_lut(attrs) -> bool:
    """Whether the image's default display is its (0028,3010) VOI LUT Sequence."""
    return bool(attrs.get("voi_lut")) and not attrs.get("WindowCenter")


def _render_through_lut(
    values: np.ndarray, attrs, window: tuple[float, float] | None, invert: bool
) -> np.ndarray | None:
    """Grayscale integer frames: render each distinct value once, then look pixels up.

    :func:`workbench.io.display.render` stays the one definition of how values become grey
    levels (window, VOI LUT, MONOCHROME1, invert); it is just applied to the few thousand
    possible values instead of every pixel, which makes a W/L redraw several times cheaper.
    """
    if values.ndim != 2 or values.dtype.kind not in "iu" or attrs.get("palette") is not None:
        return None
    low, high = int(values.min()), int(values.max())
    if high - low > 65535:
        return None
    levels = np.arange(low, high + 1, dtype=np.int64)[None, :]
    lut = display.render(levels, attrs, window=window, invert=invert)[0]
    return lut[values.astype(np.intp) - low]


def encode_png(pixels: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """Lossless PNG bytes of uint8 grayscale or RGB pixels."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def encode_jpeg(pixels: np.ndarray, quality: int = PREVIEW_JPEG_QUALITY) -> bytes:
    """Lossy JPEG bytes of uint8 grayscale or RGB pixels, for frames shown only briefly."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
