"""Display mapping: modality values to 8-bit pixels ready to draw.

Pure functions over numpy arrays and the display attributes of an array from
:func:`~workbench.io.open_series` (:func:`display_attrs`: its ``attrs`` with its
:class:`DisplayTables`), shared by the viewer, previews and notebooks. The order is
the standard grayscale pipeline (PS3.3 C.11): modality LUT (already applied by
``open_series``) -> VOI LUT (window or LUT) -> presentation LUT (identity or inverse).

:func:`is_inverted` is the one place that decides whether an image is shown inverted
(MONOCHROME1, Presentation LUT Shape INVERSE, the user's invert toggle).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np
from pydicom.pixels import convert_color_space

if TYPE_CHECKING:
    from workbench.io.presentation import VoiLut

_WINDOW_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
# The key of an array's ``encoding`` that holds its DisplayTables.
DISPLAY_TABLES = "dicom_display"


@dataclass(frozen=True, eq=False)
class DisplayTables:
    """How an array's values become display values, beside its attributes.

    Kept in ``array.encoding[DISPLAY_TABLES]``, not in ``attrs``: tables and flags about how
    the values were decoded are no attributes netCDF or Zarr can store, and writing the array
    there leaves them behind (the values written are the modality values, or stored ones).

    Attributes
    ----------
    raw : bool
        The values are stored values (``open_series(..., raw=True)``): rescale not applied.
    palette : numpy.ndarray or None
        The ``(n, 3)`` palette of a PALETTE COLOR image, indexed by stored value.
    palette_bits : int or None
        Bits per palette entry (8 or 16).
    voi_luts : tuple of dict
        The (0028,3010) VOI LUT Sequence: ``first_mapped``, ``bits``, ``data``,
        ``explanation`` per item.
    """

    raw: bool = False
    palette: np.ndarray | None = None
    palette_bits: int | None = None
    voi_luts: tuple[dict[str, Any], ...] = ()

    def as_attrs(self) -> dict[str, Any]:
        """The tables under the keys :func:`render` reads (``raw``, ``palette``, ``voi_lut``)."""
        return {
            "raw": self.raw,
            "palette": self.palette,
            "palette_bits": self.palette_bits,
            "voi_lut": list(self.voi_luts) or None,
        }


def display_attrs(array) -> dict[str, Any]:
    """``array.attrs`` with the array's :class:`DisplayTables`: what :func:`render` takes.

    Parameters
    ----------
    array : xarray.DataArray
        From :func:`~workbench.io.open_series` (or a selection of one); any other array
        gets no tables.
    """
    tables = array.encoding.get(DISPLAY_TABLES) or DisplayTables()
    return {**array.attrs, **tables.as_attrs()}


#: Images of at least this many integer pixels are windowed through a lookup table.
_TABLE_MIN_SIZE = 4096


def apply_window(
    values: np.ndarray, center: float, width: float, function: str = "LINEAR"
) -> np.ndarray:
    """Map values through a window to uint8, per PS3.3 C.11.2.1.2 and C.11.2.1.3.

    Parameters
    ----------
    values : numpy.ndarray
        Modality values (e.g. HU).
    center, width : float
        (0028,1050) Window Center and (0028,1051) Window Width.
    function : {"LINEAR", "LINEAR_EXACT", "SIGMOID"}
        (0028,1056) VOI LUT Function.

    Returns
    -------
    numpy.ndarray
        uint8, same shape as ``values``; 0 is black before any presentation inversion.

    Raises
    ------
    ValueError
        An unknown function, or a width below 1 (LINEAR) or not above 0 (others).
    """
    function = (function or "LINEAR").strip().upper()
    if function not in _WINDOW_FUNCTIONS:
        raise ValueError(
            f"unsupported (0028,1056) VOI LUT Function {function!r}; "
            f"expected one of {', '.join(_WINDOW_FUNCTIONS)}"
        )
    center, width = float(center), float(width)
    if function == "SIGMOID":
        if width <= 0:
            raise ValueError(f"(0028,1051) Window Width must be > 0 for SIGMOID, got {width}")
    elif function == "LINEAR":
        if width < 1:
            raise ValueError(f"(0028,1051) Window Width must be >= 1 for LINEAR, got {width}")
    elif width <= 0:
        raise ValueError(f"(0028,1051) Window Width must be > 0 for LINEAR_EXACT, got {width}")
    values = np.asarray(values)
    if values.dtype.kind in "iu" and values.dtype.itemsize <= 4 and values.size >= _TABLE_MIN_SIZE:
        # Stored integers: map each distinct value once through a table, the same result
        # at a fraction of the cost of the float arithmetic on every pixel.
        low, high = int(values.min()), int(values.max())
        if high - low < values.size:
            domain = np.arange(low, high + 1, dtype=np.float64)
            table = _window(domain, center, width, function)
            return table[values.astype(np.intp, copy=False) - low]
    return _window(values.astype(np.float64, copy=False), center, width, function)


def _window(x: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """:func:`apply_window` on float values, parameters already checked."""
    y_max = 255.0
    if function == "SIGMOID":
        with np.errstate(over="ignore"):  # exp overflow far below the window means 0
            out = y_max / (1.0 + np.exp(-4.0 * (x - center) / width))
    else:
        if function == "LINEAR":
            # C.11.2.1.2.1: the LINEAR window is defined on (center - 0.5, width - 1).
            center, width = center - 0.5, width - 1.0
        if width == 0:  # LINEAR with width 1: a threshold at the center
            out = np.where(x <= center, 0.0, y_max)
        else:
            out = ((x - center) / width + 0.5) * y_max
            out = np.where(x <= center - width / 2, 0.0, out)
            out = np.where(x > center + width / 2, y_max, out)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def apply_voi_lut(values: np.ndarray, lut: Mapping[str, Any]) -> np.ndarray:
    """Map values through one item of a (0028,3010) VOI LUT Sequence to uint8.

    ``lut`` is one of :attr:`DisplayTables.voi_luts`: ``first_mapped`` (the input value of the
    first entry), ``bits`` (output bit depth from the LUT Descriptor) and ``data``. Values
    below / above the table take its first / last entry (PS3.3 C.11.2.1.1).
    """
    data = np.asarray(lut["data"])
    index = np.asarray(values, dtype=np.float64) - float(lut["first_mapped"])
    index = np.clip(np.rint(index), 0, len(data) - 1).astype(np.intp)
    out = data[index].astype(np.float64)
    top = float(2 ** int(lut.get("bits") or 8) - 1)
    # Some writers declare 16 bits but fill only 12; scaling to the declared depth is what
    # the standard says, so do that.
    return np.clip(np.rint(out * (255.0 / top)), 0, 255).astype(np.uint8)


def default_window(attrs: Mapping[str, Any], frame: np.ndarray) -> tuple[float, float]:
    """The window to show an image with when the user has not chosen one.

    The first window preset in ``attrs`` (``WindowCenter`` / ``WindowWidth``), else one
    covering the frame's full range of values.
    """
    centers, widths = attrs.get("WindowCenter") or [], attrs.get("WindowWidth") or []
    centers = [centers] if np.isscalar(centers) else list(centers)
    widths = [widths] if np.isscalar(widths) else list(widths)
    if (
        centers
        and widths
        and np.isfinite(centers[0])
        and np.isfinite(widths[0])
        and float(widths[0]) > 0
    ):
        return float(centers[0]), max(float(widths[0]), 1.0)
    values = np.asarray(frame)
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    # LINEAR with this (center, width) maps low -> 0 and high -> 255.
    width = max(high - low + 1.0, 1.0)
    return low + width / 2.0, width


def lut_window(lut: VoiLut) -> tuple[float, float]:
    """The linear window closest to a VOI LUT (the viewer shows windows, not tables).

    The window maps the last input still at the table's bottom to black and the first input
    at its top to white, as PS3.3 C.11.2.1.2.1 LINEAR does for ``(center, width)``. A falling
    table gives the same span (its inversion is not kept).
    """
    data = np.asarray(lut.data)
    low, high = data.min(), data.max()
    if low == high:
        return lut.first_mapped + len(data) / 2.0, float(max(len(data), 1))
    if data[0] <= data[-1]:
        start, end = int(np.argmax(data > low)) - 1, int(np.argmax(data >= high))
    else:
        start, end = int(np.argmax(data < high)) - 1, int(np.argmax(data <= low))
    start = max(start, 0)
    width = float(end - start + 1)
    return lut.first_mapped + (start + end) / 2.0 + 0.5, width


def is_inverted(attrs: Mapping[str, Any], invert: bool = False) -> bool:
    """Whether to show the image with black and white swapped.

    MONOCHROME1 images show their minimum as white (PS3.3 C.7.6.3.1.2). A Presentation LUT
    Shape of INVERSE on a MONOCHROME2 image does the same; on a MONOCHROME1 image INVERSE is
    what the standard requires for it and means the same single inversion. ``invert`` is the
    user's toggle, applied on top.
    """
    photometric = (
        str(
            attrs.get("StoredPhotometricInterpretation")
            or attrs.get("PhotometricInterpretation")
            or ""
        )
        .strip()
        .upper()
    )
    shape = str(attrs.get("PresentationLUTShape") or "").strip().upper()
    inverted = photometric == "MONOCHROME1" or shape == "INVERSE"
    return inverted != bool(invert)


def apply_palette(indices: np.ndarray, palette: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Map palette-colour indices to uint8 RGB.

    ``palette`` is :attr:`DisplayTables.palette`: an ``(n, 3)`` table indexed by stored value (built
    with pydicom's :func:`~pydicom.pixels.apply_color_lut`, so segmented and first-mapped
    tables are already expanded).
    """
    table = np.asarray(palette)
    index = np.clip(np.asarray(indices).astype(np.intp), 0, len(table) - 1)
    rgb = table[index]
    bits = bits or (16 if table.dtype.itemsize > 1 else 8)
    return _to_uint8(rgb, bits)


def to_rgb(frame: np.ndarray, photometric: str) -> np.ndarray:
    """Colour frame ``(rows, columns, 3)`` in ``photometric`` to RGB (YBR_FULL[_422]...)."""
    photometric = photometric.strip().upper()
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        return convert_color_space(np.asarray(frame), photometric, "RGB")
    return np.asarray(frame)


def _to_uint8(values: np.ndarray, bits: int) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return values
    top = float(2**bits - 1)
    return np.clip(np.rint(values.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)


def render(
    frame: np.ndarray,
    attrs: Mapping[str, Any],
    *,
    window: tuple[float, float] | None = None,
    invert: bool = False,
    voi_lut_index: int | None = None,
) -> np.ndarray:
    """Turn one frame into uint8 pixels ready to draw.

    Parameters
    ----------
    frame : numpy.ndarray
        One frame from :func:`~workbench.io.open_series` (``(rows, columns)`` or
        ``(rows, columns, 3)``).
    attrs : mapping
        :func:`display_attrs` of the array (or :func:`frame_attrs` for per-frame values).
    window : (center, width), optional
        The user's window; otherwise the VOI LUT Sequence, else the first window preset,
        else the frame's full range.
    invert : bool
        The user's invert toggle (on top of MONOCHROME1 / Presentation LUT Shape).
    voi_lut_index : int, optional
        Use this item of the VOI LUT Sequence (default: the first, when there is no window).

    Returns
    -------
    numpy.ndarray
        uint8 ``(rows, columns)`` for grayscale, ``(rows, columns, 3)`` for colour.
    """
    frame = np.asarray(frame)
    photometric = str(attrs.get("PhotometricInterpretation") or "").strip().upper()
    bits = int(attrs.get("BitsStored") or 8)
    if photometric == "PALETTE COLOR" and attrs.get("palette") is not None:
        out = apply_palette(frame, attrs["palette"], attrs.get("palette_bits"))
        return 255 - out if invert else out
    if frame.ndim == 3:
        out = _to_uint8(to_rgb(frame, photometric), bits)
        return 255 - out if invert else out

    values = frame
    if attrs.get("raw"):
        slope = float(attrs.get("RescaleSlope") or 1.0)
        intercept = float(attrs.get("RescaleIntercept") or 0.0)
        values = values.astype(np.float64) * slope + intercept
    luts = attrs.get("voi_lut") or []
    if window is None and luts and (voi_lut_index is not None or not attrs.get("WindowCenter")):
        out = apply_voi_lut(values, luts[voi_lut_index or 0])
    else:
        center, width = window if window is not None else default_window(attrs, values)
        function = str(attrs.get("VOILUTFunction") or "LINEAR")
        out = apply_window(values, center, width, function)
    return 255 - out if is_inverted(attrs, invert) else out


def frame_attrs(array, index: int) -> dict[str, Any]:
    """:func:`display_attrs` with frame ``index``'s own window and rescale (enhanced multi-frame).

    Parameters
    ----------
    array : xarray.DataArray
        From :func:`~workbench.io.open_series`.
    index : int
        Position along the ``frame`` dimension.
    """
    # Looked up by name: iterating every coordinate builds a DataArray for each (a series
    # has a dozen), which cost more than the rest of a W/L redraw.
    coords = {name: array.coords[name].values for name in _PER_FRAME if name in array.coords}
    return _with_frame_values(display_attrs(array), coords, index)


#: The per-frame coordinates a frame's display depends on.
_PER_FRAME = ("window_center", "window_width", "rescale_slope", "rescale_intercept")


def _with_frame_values(attrs: dict[str, Any], coords: dict[str, np.ndarray], index: int
                       ) -> dict[str, Any]:  # fmt: skip
    """``attrs`` with the window and rescale of frame ``index`` from per-frame ``coords``
    (plain arrays: indexing them costs nothing, unlike xarray's coordinates)."""
    center = float(coords["window_center"][index]) if "window_center" in coords else np.nan
    width = float(coords["window_width"][index]) if "window_width" in coords else np.nan
    if np.isfinite(center) and np.isfinite(width):
        presets = list(
            zip(attrs.get("WindowCenter") or [], attrs.get("WindowWidth") or [], strict=False)
        )
        if not presets or presets[0] != (center, width):
            attrs["WindowCenter"] = [center] + [c for c, _ in presets]
            attrs["WindowWidth"] = [width] + [w for _, w in presets]
    if "rescale_slope" in coords:
        attrs["RescaleSlope"] = float(coords["rescale_slope"][index])
        attrs["RescaleIntercept"] = float(coords["rescale_intercept"][index])
    return attrs


def render_file(
    path: str | PathLike[str],
    frame: int = 0,
    *,
    size: int | tuple[int, int] | None = None,
    window: tuple[float, float] | None = None,
    voi_function: str | None = None,
) -> np.ndarray:
    """Render one frame of one DICOM file to uint8, for previews and thumbnails.

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM file.
    frame : int
        Frame index (0-based) for multi-frame files.
    size : int or (width, height), optional
        Shrink (never enlarge) to fit within this box, keeping the aspect ratio; an int is
        the longest side.
    window : (center, width), optional
        The window to show the frame with instead of the file's (see :func:`render`).
    voi_function : {"LINEAR", "LINEAR_EXACT", "SIGMOID"}, optional
        The VOI LUT Function of that window instead of the file's.

    Raises
    ------
    workbench.io.errors.DicomIOError
        The file cannot be read or has no pixel data.
    IndexError
        ``frame`` is beyond the file's frames.
    """
    from workbench.io.preview import FileDisplay

    # One file read once (its header, then one frame): no series is built around it.
    pixels = FileDisplay.read(path).render(frame, window=window, voi_function=voi_function)
    return _fit(pixels, size) if size is not None else pixels


def _fit(pixels: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    from PIL import Image

    box = (size, size) if isinstance(size, int) else tuple(size)
    image = Image.fromarray(pixels)
    image.thumbnail(box, Image.Resampling.LANCZOS)
    return np.asarray(image)
