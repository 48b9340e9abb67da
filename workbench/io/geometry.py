"""Per-frame geometry and value transforms, and how frames stack into a volume.

Patient coordinates are DICOM LPS millimetres. For enhanced multi-frame objects the values
come from the per-frame functional groups, falling back to the shared ones (PS3.3 C.7.6.16).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from pydicom.dataset import Dataset

from workbench.io.headers import InstanceHeader

# Tolerances for calling a stack regular: scanners write positions to ~1e-3 mm precision.
_SPACING_TOLERANCE_MM = 0.01
_SPACING_TOLERANCE_REL = 0.001
_ORIENTATION_TOLERANCE = 1e-4
# (5200,9230) Per-frame and (5200,9229) Shared Functional Groups Sequence
_PER_FRAME_GROUPS, _SHARED_GROUPS = 0x52009230, 0x52009229


@dataclass(frozen=True)
class FrameInfo:
    """What one frame's header says about where it is and how to read its values."""

    instance_number: int | None
    frame_number: int  # 1-based, inside its file
    sop_instance_uid: str
    sop_class_uid: str
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    rescale_slope: float
    rescale_intercept: float
    rescale_type: str | None
    window_center: float | None
    window_width: float | None
    spacing_source: str | None = None  # "PixelSpacing", "ImagerPixelSpacing" or None


def _first(seq_owner: Dataset | None, keyword: str) -> Dataset | None:
    if seq_owner is None:
        return None
    seq = seq_owner.get(keyword)
    return seq[0] if seq else None


def _group(header: InstanceHeader, index: int, keyword: str) -> Dataset | None:
    """Functional group macro ``keyword`` for frame ``index`` (per-frame, else shared)."""
    ds = header.dataset
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and index < len(per_frame):
        item = _first(per_frame[index], keyword)
        if item is not None:
            return item
    return _first(_first(ds, "SharedFunctionalGroupsSequence"), keyword)


def _floats(value, n: int) -> tuple[float, ...] | None:
    if value is None or value == "":
        return None
    try:
        values = tuple(float(v) for v in (value if hasattr(value, "__len__") else [value]))
    except (TypeError, ValueError):
        return None
    return values if len(values) == n and all(math.isfinite(v) for v in values) else None


def _float(value) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) or (
        hasattr(value, "__len__") and not isinstance(value, str)
    ):
        value = value[0] if len(value) else None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _integer(numbers: tuple[float, ...] | None) -> int | None:
    """The first of ``numbers`` (an IS value read as floats) as pydicom's ``IS`` gives it:
    truncated when it is not a whole number (pydicom warns about those)."""
    return int(numbers[0]) if numbers and math.isfinite(numbers[0]) else None


def frame_infos(header: InstanceHeader) -> list[FrameInfo]:
    """One :class:`FrameInfo` per frame of the file."""
    get = header.get
    enhanced = _PER_FRAME_GROUPS in header.elements or _SHARED_GROUPS in header.elements
    instance_number = _integer(header.floats("InstanceNumber"))
    sop_instance_uid = header.text("SOPInstanceUID")
    sop_class_uid = header.text("SOPClassUID")
    imager_spacing = None
    infos = []
    for index in range(header.number_of_frames):
        if index and not enhanced:  # every frame of a classic image shares its header
            infos.append(replace(infos[0], frame_number=index + 1))
            continue
        if enhanced:
            groups = {
                "position": _group(header, index, "PlanePositionSequence"),
                "orientation": _group(header, index, "PlaneOrientationSequence"),
                "measures": _group(header, index, "PixelMeasuresSequence"),
                "rescale": _group(header, index, "PixelValueTransformationSequence"),
                "window": _group(header, index, "FrameVOILUTSequence"),
            }

            # Enhanced objects may still carry top-level values (some writers do); use them
            # when the functional groups are silent.
            def pick(key: str, keyword: str, text: bool = False, groups=groups):
                item = groups[key]
                value = item.get(keyword) if item is not None else None
                if value not in (None, ""):
                    return value
                return get(keyword) if text else header.floats(keyword)

        else:

            def pick(key: str, keyword: str, text: bool = False):
                return get(keyword) if text else header.floats(keyword)

        slope = _float(pick("rescale", "RescaleSlope"))
        intercept = _float(pick("rescale", "RescaleIntercept"))
        spacing = _floats(pick("measures", "PixelSpacing"), 2)
        spacing_source = "PixelSpacing" if spacing else None
        if spacing is None:
            # Projection radiographs often give only the detector-plane spacing; it is what
            # viewers measure with (labelled as such) when nothing better is known.
            if imager_spacing is None:
                imager_spacing = (_floats(header.floats("ImagerPixelSpacing"), 2),)
            spacing = imager_spacing[0]
            spacing_source = "ImagerPixelSpacing" if spacing else None
        rescale_type = pick("rescale", "RescaleType", text=True)
        infos.append(
            FrameInfo(
                instance_number=instance_number,
                frame_number=index + 1,
                sop_instance_uid=sop_instance_uid,
                sop_class_uid=sop_class_uid,
                position=_floats(pick("position", "ImagePositionPatient"), 3),
                orientation=_floats(pick("orientation", "ImageOrientationPatient"), 6),
                pixel_spacing=spacing,
                slice_thickness=_float(pick("measures", "SliceThickness")),
                rescale_slope=1.0 if slope is None else slope,
                rescale_intercept=0.0 if intercept is None else intercept,
                rescale_type=str(rescale_type) if rescale_type else None,
                window_center=_float(pick("window", "WindowCenter")),
                window_width=_float(pick("window", "WindowWidth")),
                spacing_source=spacing_source,
            )
        )
    return infos


def slice_normal(orientation: tuple[float, ...]) -> np.ndarray:
    """Unit normal of the image plane: row direction x column direction."""
    row, col = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    normal = np.cross(row, col)
    return normal / (np.linalg.norm(normal) or 1.0)


@dataclass
class StackGeometry:
    """How a sorted list of frames sits in patient space."""

    order: list[int]
    position: np.ndarray  # mm along the slice normal, NaN when unknown
    affine: np.ndarray  # 4x4, (x, y, frame, 1) -> LPS mm
    is_volume: bool
    gantry_tilt: float  # degrees between the stacking direction and the normal
    uneven_spacing: bool
    slice_spacing: float | None


def stack_geometry(frames: list[FrameInfo]) -> StackGeometry:
    """Sort frames and describe the stack.

    Frames are ordered by position along the slice normal when every frame has a position,
    they share one orientation, and no two share a position (a volume). Otherwise they keep
    (instance number, frame number) order, which is what a cine, a time series or a set of
    unrelated images expects. Nothing is resampled: irregular stacks are flagged.
    """
    n = len(frames)
    orientation = frames[0].orientation if frames else None
    same_orientation = (
        orientation is not None
        and all(f.orientation is not None for f in frames)
        and np.allclose([f.orientation for f in frames], [orientation], atol=_ORIENTATION_TOLERANCE)
    )
    have_positions = all(f.position is not None for f in frames)
    normal = slice_normal(orientation) if orientation is not None else np.array([0, 0, 1.0])
    if have_positions and same_orientation:
        position = np.array([f.position for f in frames], dtype=float) @ normal
    else:
        position = np.full(n, np.nan)

    def fallback_key(i: int):
        f = frames[i]
        return (
            f.instance_number if f.instance_number is not None else math.inf,
            f.sop_instance_uid,
            f.frame_number,
        )

    distinct = (
        bool(n)
        and not np.isnan(position).any()
        and (n == 1 or np.min(np.diff(np.sort(position))) > _SPACING_TOLERANCE_MM / 10)
    )
    if distinct:
        order = sorted(range(n), key=lambda i: (position[i], fallback_key(i)))
    else:
        order = sorted(range(n), key=fallback_key)
    position = position[order]

    first = frames[order[0]] if n else None
    spacing = (first.pixel_spacing if first and first.pixel_spacing else None) or (1.0, 1.0)
    row_dir = np.asarray(orientation[:3]) if orientation is not None else np.array([1.0, 0, 0])
    col_dir = np.asarray(orientation[3:]) if orientation is not None else np.array([0, 1.0, 0])
    origin = np.asarray(first.position) if first and first.position is not None else np.zeros(3)

    tilt, uneven, slice_spacing = 0.0, False, None
    step = normal * (first.slice_thickness or 1.0 if first else 1.0)
    if distinct and n > 1:
        points = np.array([frames[i].position for i in order])
        gaps = np.diff(position)
        slice_spacing = float(np.mean(gaps))
        tolerance = max(_SPACING_TOLERANCE_MM, _SPACING_TOLERANCE_REL * abs(slice_spacing))
        uneven = bool(np.max(np.abs(gaps - slice_spacing)) > tolerance)
        step = (points[-1] - points[0]) / (n - 1)
        cos = abs(float(np.dot(step, normal))) / (np.linalg.norm(step) or 1.0)
        tilt = float(np.degrees(np.arccos(min(1.0, cos))))
    affine = np.eye(4)
    # PS3.3 C.7.6.2.1.1: column index i moves along the row direction by the column spacing
    # (PixelSpacing[1]); row index j moves along the column direction by PixelSpacing[0].
    affine[:3, 0] = row_dir * spacing[1]
    affine[:3, 1] = col_dir * spacing[0]
    affine[:3, 2] = step
    affine[:3, 3] = origin
    return StackGeometry(
        order=order,
        position=position,
        affine=affine,
        is_volume=distinct and n > 1,
        gantry_tilt=tilt if tilt > 0.01 else 0.0,
        uneven_spacing=uneven,
        slice_spacing=slice_spacing,
    )
