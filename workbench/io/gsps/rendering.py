"""Show an image through a presentation state's display settings.

The grayscale pipeline of PS3.4 N.2 after the modality LUT: the state's VOI (window or table),
its polarity, then the spatial transformation and the displayed area. The result has one output
pixel per image pixel (magnification is the viewer's business); parts of the displayed area
beyond the image are black, as the default shutter presentation value asks (PS3.3 C.7.6.11).
The mapping itself is :func:`workbench.io.display.render`, so that a state looks the same here,
in the viewer and in thumbnails.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from workbench.io.gsps import geometry
from workbench.io.presentation import DisplaySettings


def render(frame: np.ndarray, attrs: Mapping, display: DisplaySettings) -> np.ndarray:
    """Render one frame of modality values as a GSPS display shows it.

    Parameters
    ----------
    frame
        2-D array of modality values (after rescale), as :func:`workbench.io.open_series`
        gives by default.
    attrs
        The series attributes from :func:`workbench.io.open_series` (photometric
        interpretation, the image's own windows and VOI LUTs).
    display
        The state's display settings. A ``window`` or ``voi_lut`` replaces the image's own VOI;
        with neither, the image's default VOI applies.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of the displayed area after rotation and flip.
    """
    from workbench.io import display as io_display

    attrs = dict(attrs)
    # The state's Presentation LUT replaces the image's own (PS3.4 N.2.1.1).
    attrs["PresentationLUTShape"] = None
    window = display.window
    if window is not None:
        attrs["VOILUTFunction"] = "LINEAR"
    if display.voi_lut is not None:
        lut = display.voi_lut
        attrs["voi_lut"] = [
            {
                "first_mapped": lut.first_mapped,
                "bits": lut.bits,
                "data": np.asarray(lut.data, dtype=np.uint16 if lut.bits > 8 else np.uint8),
                "explanation": lut.explanation,
            }
        ]
        attrs["WindowCenter"], attrs["WindowWidth"] = [], []
        window = None
    shown = io_display.render(np.asarray(frame), attrs, window=window, invert=display.invert)
    rows, columns = shown.shape[:2]
    region = geometry.displayed_region(display, columns, rows)
    return geometry.orient_pixels(_crop(shown, region), display.rotation, display.flip)


def _crop(pixels: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    """``pixels[top:bottom+1, left:right+1]``, black where the region leaves the image."""
    left, top, right, bottom = region
    rows, columns = pixels.shape[:2]
    out = np.zeros((bottom - top + 1, right - left + 1, *pixels.shape[2:]), dtype=pixels.dtype)
    src_top, src_left = max(top, 0), max(left, 0)
    src_bottom, src_right = min(bottom, rows - 1), min(right, columns - 1)
    if src_top <= src_bottom and src_left <= src_right:
        out[src_top - top : src_bottom - top + 1, src_left - left : src_right - left + 1] = pixels[
            src_top : src_bottom + 1, src_left : src_right + 1
        ]
    return out
