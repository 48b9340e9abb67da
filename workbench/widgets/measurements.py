"""Measurement arithmetic on image coordinates: lengths, angles, ROI statistics, VHS.

Pure functions of points (``(column, row)`` image pixel coordinates, ``(0, 0)`` the centre of
the top-left pixel), pixel values and a few DICOM attributes. :func:`measure` fills an
:class:`~workbench.io.presentation.Annotation`'s ``values``, ``units`` and ``text`` from its
kind and points; the viewer calls it whenever a measurement is drawn or edited.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from workbench.io.presentation import POINT_COUNTS, Annotation

Point = tuple[float, float]


@dataclass(frozen=True)
class Calibration:
    """Physical size of a pixel.

    Parameters
    ----------
    row_spacing, column_spacing
        Millimetres between row centres and between column centres ((0028,0030) order).
    source
        The attribute the spacing came from; ``"ImagerPixelSpacing"`` means it is measured
        at the detector, not corrected for magnification.
    """

    row_spacing: float
    column_spacing: float
    source: str = "PixelSpacing"

    @property
    def note(self) -> str:
        if self.source == "ImagerPixelSpacing":
            return "at detector"
        return ""


def calibration(attrs: Mapping) -> Calibration | None:
    """The pixel calibration of an image from its attributes, or ``None`` if uncalibrated.

    (0028,0030) Pixel Spacing is preferred; (0018,1164) Imager Pixel Spacing (projection
    radiography) is used when it is the only one, and flagged as measured at the detector.
    """
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = attrs.get(keyword)
        if value is None:
            continue
        try:
            row_spacing, column_spacing = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if row_spacing > 0 and column_spacing > 0:
            return Calibration(row_spacing, column_spacing, keyword)
    return None


def modality_unit(attrs: Mapping) -> str:
    """The unit of stored-then-rescaled pixel values: "HU" for CT, else (0028,1054) or ""."""
    rescale_type = str(attrs.get("RescaleType") or "").strip()
    if rescale_type and rescale_type.upper() != "US":  # "US" = unspecified
        return rescale_type
    return "HU" if attrs.get("Modality") == "CT" else ""


def distance(p0: Point, p1: Point, cal: Calibration | None = None) -> float:
    """Distance between two image points, in mm when calibrated, else in pixels."""
    dc = p1[0] - p0[0]
    dr = p1[1] - p0[1]
    if cal is not None:
        dc *= cal.column_spacing
        dr *= cal.row_spacing
    return math.hypot(dc, dr)


def _physical(p: Point, cal: Calibration | None) -> np.ndarray:
    if cal is None:
        return np.asarray(p, dtype=float)
    return np.array([p[0] * cal.column_spacing, p[1] * cal.row_spacing])


def _angle_between(u: np.ndarray, v: np.ndarray) -> float:
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return float("nan")
    cosine = float(np.clip(np.dot(u, v) / (nu * nv), -1.0, 1.0))
    return math.degrees(math.acos(cosine))


def angle(a: Point, vertex: Point, b: Point, cal: Calibration | None = None) -> float:
    """The angle ``a``-``vertex``-``b`` in degrees (0 to 180), in physical space."""
    v = _physical(vertex, cal)
    return _angle_between(_physical(a, cal) - v, _physical(b, cal) - v)


def cobb_angle(
    line1: Sequence[Point], line2: Sequence[Point], cal: Calibration | None = None
) -> float:
    """Cobb angle in degrees (0 to 90) between two lines (endplate tangents)."""
    u = _physical(line1[1], cal) - _physical(line1[0], cal)
    v = _physical(line2[1], cal) - _physical(line2[0], cal)
    between = _angle_between(u, v)
    return min(between, 180.0 - between)


def roi_mask(shape: tuple[int, int], kind: str, corner0: Point, corner1: Point) -> np.ndarray:
    """Boolean mask of the pixels whose centres lie inside a rectangle or ellipse.

    Parameters
    ----------
    shape
        ``(rows, columns)`` of the image.
    kind
        ``"rectangle"`` or ``"ellipse"`` (the ellipse inscribed in the rectangle).
    corner0, corner1
        Opposite corners of the bounding box, ``(column, row)``.
    """
    rows, columns = shape
    c0, c1 = sorted((corner0[0], corner1[0]))
    r0, r1 = sorted((corner0[1], corner1[1]))
    rr = np.arange(rows, dtype=float)[:, None]
    cc = np.arange(columns, dtype=float)[None, :]
    if kind == "rectangle":
        return (cc >= c0) & (cc <= c1) & (rr >= r0) & (rr <= r1)
    if kind == "ellipse":
        rc, rr_ = (c1 - c0) / 2.0, (r1 - r0) / 2.0
        if rc <= 0 or rr_ <= 0:
            return np.zeros(shape, dtype=bool)
        centre_c, centre_r = (c0 + c1) / 2.0, (r0 + r1) / 2.0
        return ((cc - centre_c) / rc) ** 2 + ((rr - centre_r) / rr_) ** 2 <= 1.0
    raise ValueError(f"ROI kind must be 'rectangle' or 'ellipse', not {kind!r}")


def roi_statistics(
    values: np.ndarray, kind: str, corner0: Point, corner1: Point, cal: Calibration | None = None
) -> dict[str, float]:
    """Area, mean, standard deviation, minimum and maximum of the pixels inside an ROI.

    ``values`` are the frame's modality values (HU for CT); for colour frames the mean of the
    channels is used. ``area`` is the geometric area of the drawn shape (mm² when calibrated,
    else px²); ``pixels`` counts the pixel centres inside it, over which the statistics run.
    """
    values = np.asarray(values)
    if values.ndim == 3:
        values = values.mean(axis=-1)
    mask = roi_mask(values.shape, kind, corner0, corner1)
    width = abs(corner1[0] - corner0[0])
    height = abs(corner1[1] - corner0[1])
    if cal is not None:
        width *= cal.column_spacing
        height *= cal.row_spacing
    area = width * height * (math.pi / 4.0 if kind == "ellipse" else 1.0)
    inside = values[mask].astype(float)
    if inside.size == 0:
        nan = float("nan")
        return {"area": area, "pixels": 0.0, "mean": nan, "std": nan, "min": nan, "max": nan}
    return {
        "area": area,
        "pixels": float(inside.size),
        "mean": float(inside.mean()),
        "std": float(inside.std()),
        "min": float(inside.min()),
        "max": float(inside.max()),
    }


def probe_value(values: np.ndarray, point: Point) -> float | tuple[float, ...] | None:
    """The pixel value (or colour) under an image point, or ``None`` outside the image."""
    column, row = round(point[0]), round(point[1])
    values = np.asarray(values)
    if not (0 <= row < values.shape[0] and 0 <= column < values.shape[1]):
        return None
    v = values[row, column]
    return tuple(float(x) for x in v) if np.ndim(v) else float(v)


def vertebrae_spanned(
    length: float, boundaries: Sequence[Point], cal: Calibration | None = None
) -> float:
    """How many vertebrae a length covers, counted along the spine from the first boundary.

    ``boundaries`` are points on successive vertebral boundaries starting at the cranial edge
    of T4 (at least two). Whole vertebrae are counted along the marked spine and the last one
    is taken as a fraction; past the last marked boundary the mean marked vertebral length
    is used.
    """
    if len(boundaries) < 2:
        raise ValueError("at least two vertebral boundary points are needed")
    segment_lengths = [distance(a, b, cal) for a, b in itertools.pairwise(boundaries)]
    count = 0.0
    remaining = length
    for seg in segment_lengths:
        if seg <= 0:
            continue
        if remaining <= seg:
            return count + remaining / seg
        remaining -= seg
        count += 1.0
    mean = sum(segment_lengths) / len(segment_lengths)
    return count + (remaining / mean if mean > 0 else 0.0)


def vertebral_heart_score(
    long_axis: Sequence[Point],
    short_axis: Sequence[Point],
    boundaries: Sequence[Point],
    cal: Calibration | None = None,
) -> dict[str, float]:
    """Vertebral Heart Score (Buchanan): long + short cardiac axis in vertebral units from T4."""
    long_v = vertebrae_spanned(distance(*long_axis, cal), boundaries, cal)
    short_v = vertebrae_spanned(distance(*short_axis, cal), boundaries, cal)
    return {"long_axis_v": long_v, "short_axis_v": short_v, "vhs": long_v + short_v}


#: Points each measurement kind needs before it has a value (a VHS: both heart axes and the
#: boundaries of at least one vertebra).
REQUIRED_POINTS = {**POINT_COUNTS, "polyline": 2, "vhs": 6}


def measure(annotation: Annotation, values: np.ndarray | None, attrs: Mapping) -> Annotation:
    """Compute an annotation's values, units and label in place, and return it.

    Parameters
    ----------
    annotation
        The annotation; its ``kind`` and ``points`` decide what is computed.
    values
        The modality values of the frame it lies on (needed for ROI and probe).
    attrs
        The stack's attributes (PixelSpacing, Modality, RescaleType...).
    """
    kind, pts = annotation.kind, annotation.points
    if len(pts) < REQUIRED_POINTS.get(kind, 1):
        annotation.values, annotation.units = {}, {}
        return annotation
    cal = calibration(attrs)
    unit = modality_unit(attrs)
    results: dict[str, float] = {}
    units: dict[str, str] = {}
    label = annotation.text
    if kind == "length":
        length = distance(pts[0], pts[1], cal)
        if cal is not None:
            results["length_mm"], units["length_mm"] = length, "mm"
            label = f"{length:.1f} mm" + (f" ({cal.note})" if cal.note else "")
        else:
            results["length_px"], units["length_px"] = length, "px"
            label = f"{length:.1f} px (uncalibrated)"
    elif kind == "angle":
        results["angle_deg"], units["angle_deg"] = angle(pts[0], pts[1], pts[2], cal), "deg"
        label = f"{results['angle_deg']:.1f}°"
    elif kind == "cobb":
        results["cobb_deg"] = cobb_angle(pts[0:2], pts[2:4], cal)
        units["cobb_deg"] = "deg"
        label = f"Cobb {results['cobb_deg']:.1f}°"
    elif kind in ("ellipse", "rectangle"):
        if values is None:
            raise ValueError(f"{kind} ROI statistics need the frame's pixel values")
        stats = roi_statistics(values, kind, pts[0], pts[1], cal)
        area_key = "area_mm2" if cal is not None else "area_px2"
        results[area_key], units[area_key] = stats.pop("area"), "mm²" if cal else "px²"
        results["pixels"], units["pixels"] = stats.pop("pixels"), "px"
        for key, value in stats.items():
            results[key], units[key] = value, unit
        suffix = f" {unit}" if unit else ""
        label = (
            f"area {results[area_key]:.1f} {units[area_key]}\n"
            f"mean {stats['mean']:.1f}{suffix} sd {stats['std']:.1f}\n"
            f"min {stats['min']:.0f} max {stats['max']:.0f}"
        )
    elif kind == "probe":
        value = probe_value(values, pts[0]) if values is not None else None
        if isinstance(value, tuple):
            results.update({f"value_{i}": v for i, v in enumerate(value)})
            label = "(" + ", ".join(f"{v:.0f}" for v in value) + ")"
        elif value is not None:
            results["value"], units["value"] = value, unit
            label = f"{value:.1f}" + (f" {unit}" if unit else "")
        else:
            label = "outside image"
    elif kind == "vhs":
        results = vertebral_heart_score(pts[0:2], pts[2:4], pts[4:], cal)
        units = dict.fromkeys(results, "v")
        label = (
            f"VHS {results['vhs']:.1f} v "
            f"(L {results['long_axis_v']:.1f} + S {results['short_axis_v']:.1f})"
        )
    annotation.values, annotation.units, annotation.text = results, units, label
    return annotation
