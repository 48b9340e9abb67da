"""Read a presentation state object, ours or another program's, into a :class:`PresentationState`.

Reading never fails on content the viewer cannot show: shutters, overlays, graphics in display
or matrix units, compound graphics, presentation LUT tables and the like are described in
``state.not_shown`` instead. It fails (with :class:`~workbench.io.errors.InvalidDicomError`)
only when the input is not a DICOM presentation state at all.

Objects written by :mod:`workbench.io.gsps.writer` read back exactly: a Graphic Group labelled
with an annotation kind holds one annotation, its description the measurement values, and the
objects' Tracking ID the annotation's ``uid``. Graphics from other software become
``polyline``, ``ellipse``, ``point``, ``text`` or (text with a visible anchor line) ``arrow``
annotations.
"""

from __future__ import annotations

import datetime as _dt
import io
import math
import os
import re
import uuid
import warnings
from collections.abc import Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError as _PydicomInvalidDicomError

from workbench.io.errors import InvalidDicomError
from workbench.io.gsps import geometry
from workbench.io.gsps.identity import MANUFACTURER
from workbench.io.presentation import (
    ANNOTATION_KINDS,
    Annotation,
    DisplaySettings,
    ImageReference,
    PresentationState,
    VoiLut,
)

#: SOP classes whose annotations and display settings we can read (PS3.4 B.5).
PRESENTATION_STATE_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.11.1": "Grayscale Softcopy Presentation State",
    "1.2.840.10008.5.1.4.1.1.11.2": "Color Softcopy Presentation State",
    "1.2.840.10008.5.1.4.1.1.11.3": "Pseudo-Color Softcopy Presentation State",
    "1.2.840.10008.5.1.4.1.1.11.4": "Blending Softcopy Presentation State",
}
GRAYSCALE = "1.2.840.10008.5.1.4.1.1.11.1"

#: What malformed values raise while we convert them; caught per part, noted, never fatal.
_MALFORMED = (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError)

_VALUE_LINE = re.compile(r"^\s*(\S+)\s*=\s*(\S+)\s*(.*?)\s*$")
_ELLIPSE_SAMPLES = 64


def read(
    source: Dataset | str | os.PathLike[str] | bytes,
    *,
    photometric: str | None = None,
    image_size: tuple[int, int] | None = None,
) -> PresentationState:
    """Read a presentation state into annotations and display settings.

    Parameters
    ----------
    source
        A dataset, a path to a DICOM file, or the file's bytes.
    photometric
        (0028,0004) Photometric Interpretation of the referenced image, if known. A GSPS's
        Presentation LUT Shape sets polarity regardless of the image, so INVERSE on a
        MONOCHROME1 image is its *normal* look; knowing the image tells the two apart. When
        ``None``, MONOCHROME2 is assumed.
    image_size
        ``(columns, rows)`` of the referenced image, if known: a displayed area covering exactly
        the whole image then reads as the default display (``area=None``) rather than as an
        explicit area.

    Returns
    -------
    PresentationState
        With ``sop_instance_uid`` set and anything not representable listed in ``not_shown``.

    Raises
    ------
    workbench.io.errors.InvalidDicomError
        If ``source`` is not a readable DICOM presentation state.
    """
    ds, path = _load(source)
    with warnings.catch_warnings():
        # Other software's objects often bend value lengths (a 20-character SH); we read
        # them as they are.
        warnings.filterwarnings("ignore", message="The value length .* exceeds the maximum")
        return _read(ds, path, photometric, image_size)


def _read(
    ds: Dataset, path: str | None, photometric: str | None, image_size: tuple[int, int] | None
) -> PresentationState:
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class not in PRESENTATION_STATE_CLASSES:
        raise InvalidDicomError(
            f"not a presentation state: SOP Class UID is {sop_class or 'missing'}, expected one "
            "of the Softcopy Presentation State Storage classes (PS3.4 B.5)",
            path,
        )
    notes: list[str] = []
    if sop_class != GRAYSCALE:
        notes.append(
            f"{PRESENTATION_STATE_CLASSES[sop_class]}: only its annotations and "
            "spatial settings are applied, not its color handling"
        )
    ours = str(ds.get("Manufacturer", "")) == MANUFACTURER
    images = _guarded(lambda: _referenced_images(ds), [], "referenced images", notes)
    annotations = _guarded(lambda: _annotations(ds, images, ours, notes), [], "annotations",
                           notes)  # fmt: skip
    display = _guarded(
        lambda: _display(ds, photometric, image_size, notes), DisplaySettings(),
        "display settings", notes,
    )  # fmt: skip
    _guarded(lambda: _note_unsupported_modules(ds, notes), None, "other modules", notes)
    return PresentationState(
        name=str(ds.get("ContentDescription", "") or ds.get("ContentLabel", "") or "Unnamed"),
        annotations=annotations,
        display=display,
        images=images,
        creator=str(ds.get("ContentCreatorName", "") or "").rstrip("^"),
        created=_created(ds),
        sop_instance_uid=str(ds.SOPInstanceUID) if "SOPInstanceUID" in ds else None,
        not_shown=notes,
    )


def _unreadable(what: str, error: Exception) -> str:
    return f"unreadable {what} ({type(error).__name__}: {error})"


def _guarded(read_part, fallback, what: str, notes: list[str]):
    """``read_part()``, or ``fallback`` with a note when the object's values are malformed."""
    try:
        return read_part()
    except _MALFORMED as error:
        notes.append(_unreadable(what, error))
        return fallback


def _load(source) -> tuple[Dataset, str | None]:
    if isinstance(source, Dataset):
        return source, getattr(source, "filename", None)
    path = None
    try:
        if isinstance(source, (bytes, bytearray)):
            return pydicom.dcmread(io.BytesIO(source), force=True), None
        path = os.fspath(source)
        return pydicom.dcmread(path), path
    except (_PydicomInvalidDicomError, EOFError, OSError, ValueError) as exc:
        raise InvalidDicomError(f"cannot read presentation state: {exc}", path) from exc


def _created(ds: Dataset) -> _dt.datetime:
    date = str(ds.get("PresentationCreationDate", "") or "")
    time = str(ds.get("PresentationCreationTime", "") or "")
    try:
        day = _dt.datetime.strptime(date[:8], "%Y%m%d")
    except ValueError:
        return _dt.datetime.now()
    time = time.replace(":", "")
    whole, _, fraction = time.partition(".")
    whole = (whole + "000000")[:6] if whole else "000000"
    try:
        moment = _dt.datetime.strptime(whole, "%H%M%S")
    except ValueError:
        return day
    microseconds = int((fraction + "000000")[:6]) if fraction.isdigit() else 0
    return day.replace(
        hour=moment.hour, minute=moment.minute, second=moment.second, microsecond=microseconds
    )


def _image_refs(items: Sequence[Dataset]) -> list[ImageReference]:
    refs = []
    for item in items:
        frames = item.get("ReferencedFrameNumber")
        if frames is None or frames == "":
            frames = [None]
        elif not isinstance(frames, Sequence) or isinstance(frames, str):
            frames = [frames]
        for frame in frames:
            refs.append(
                ImageReference(
                    str(item.get("ReferencedSOPClassUID", "")),
                    str(item.get("ReferencedSOPInstanceUID", "")),
                    None if frame is None else int(frame),
                )
            )
    return refs


def _referenced_images(ds: Dataset) -> list[ImageReference]:
    refs = []
    for series in ds.get("ReferencedSeriesSequence", []):
        refs.extend(_image_refs(series.get("ReferencedImageSequence", [])))
    return refs


# --- display ----------------------------------------------------------------------------


def _display(
    ds: Dataset, photometric: str | None, image_size: tuple[int, int] | None, notes: list[str]
) -> DisplaySettings:
    window, voi_lut = _guarded(lambda: _voi(ds, notes), (None, None), "VOI", notes)
    invert = _guarded(lambda: _invert(ds, photometric, notes), False, "presentation LUT", notes)
    flip = str(ds.get("ImageHorizontalFlip", "N")).upper() == "Y"
    gsps_rotation = _guarded(
        lambda: int(ds.get("ImageRotation", 0) or 0) % 360, 0, "image rotation", notes
    )
    if gsps_rotation % 90:
        notes.append(f"image rotation of {gsps_rotation}° (only quarter turns are shown)")
        gsps_rotation = (90 * round(gsps_rotation / 90)) % 360
    rotation = geometry.from_gsps_rotation(gsps_rotation, flip)
    zoom, center, area = _guarded(
        lambda: _displayed_area(ds, image_size, notes), (None, None, None), "displayed area",
        notes,
    )  # fmt: skip
    try:
        DisplaySettings(window=window, zoom=zoom)
    except ValueError as error:  # a zero zoom, a window narrower than 1...
        notes.append(_unreadable("display values", error))
        window, zoom, center = None, None, None
    return DisplaySettings(
        window=window,
        invert=invert,
        rotation=rotation,
        flip=flip,
        zoom=zoom,
        center=center,
        voi_lut=voi_lut,
        area=area,
    )


def _voi(ds: Dataset, notes: list[str]) -> tuple[tuple[float, float] | None, VoiLut | None]:
    items = list(ds.get("SoftcopyVOILUTSequence", []))
    if not items:
        return None, None
    if len(items) > 1:
        notes.append(f"{len(items)} image-specific VOI settings; the first is applied to all")
    item = items[0]
    if item.get("VOILUTSequence"):
        lut = item.VOILUTSequence[0]
        descriptor = [int(v) for v in lut.LUTDescriptor]
        data = _lut_data(lut, descriptor)
        return None, VoiLut(
            descriptor[1], descriptor[2], tuple(data), str(lut.get("LUTExplanation", "") or "")
        )
    if "WindowCenter" in item and "WindowWidth" in item:
        center, width = _first(item.WindowCenter), _first(item.WindowWidth)
        function = str(item.get("VOILUTFunction", "LINEAR") or "LINEAR")
        if function != "LINEAR":
            notes.append(f"VOI LUT Function {function} (shown as LINEAR)")
        if width < 1:
            notes.append(f"window width {width} (below 1, not applied)")
            return None, None
        return (center, width), None
    return None, None


def _first(value) -> float:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return float(value[0])
    return float(value)


def _lut_data(lut: Dataset, descriptor: list[int]) -> list[int]:
    entries = descriptor[0] or 65536
    raw = lut.LUTData
    if isinstance(raw, (bytes, bytearray)):
        dtype = "<u1" if descriptor[2] <= 8 and len(raw) == entries else "<u2"
        return np.frombuffer(bytes(raw), dtype=dtype)[:entries].astype(int).tolist()
    values = raw if isinstance(raw, Sequence) else [raw]
    return [int(v) for v in values][:entries]


def _invert(ds: Dataset, photometric: str | None, notes: list[str]) -> bool:
    monochrome1 = (photometric or "MONOCHROME2").upper() == "MONOCHROME1"
    if "PresentationLUTSequence" in ds:
        notes.append("presentation LUT table (shown with an identity presentation LUT)")
        return monochrome1
    shape = str(ds.get("PresentationLUTShape", "IDENTITY") or "IDENTITY").upper()
    return (shape == "INVERSE") != monochrome1


def _displayed_area(ds: Dataset, image_size: tuple[int, int] | None, notes: list[str]):
    """``(zoom, center, area)`` of DisplaySettings from the first Displayed Area item."""
    items = list(ds.get("DisplayedAreaSelectionSequence", []))
    if not items:
        return None, None, None
    if len(items) > 1:
        notes.append(f"{len(items)} image-specific displayed areas; the first is applied to all")
    item = items[0]
    if (
        "DisplayedAreaTopLeftHandCorner" not in item
        or "DisplayedAreaBottomRightHandCorner" not in item
    ):
        return None, None, None
    region = geometry.region_from_corners(
        item.DisplayedAreaTopLeftHandCorner, item.DisplayedAreaBottomRightHandCorner
    )
    center = geometry.region_center(region)
    mode = str(item.get("PresentationSizeMode", "SCALE TO FIT")).upper()
    if mode == "MAGNIFY" and "PresentationPixelMagnificationRatio" in item:
        return float(item.PresentationPixelMagnificationRatio), center, None
    if mode == "TRUE SIZE":
        notes.append("true-size display (shown scaled to fit)")
    if image_size is not None and region == (0, 0, image_size[0] - 1, image_size[1] - 1):
        return None, None, None
    return None, None, tuple(float(v) for v in region)


def _note_unsupported_modules(ds: Dataset, notes: list[str]) -> None:
    shape = ds.get("ShutterShape")
    shutters = [
        str(v)
        for v in (
            shape
            if isinstance(shape, Sequence) and not isinstance(shape, str)
            else [shape]
            if shape
            else []
        )
    ]
    if shutters:
        notes.append(f"display shutter ({', '.join(shutters).lower()})")
    if (
        "ShutterPresentationValue" in ds
        and not shutters
        and any((elem.tag.group, elem.tag.element) == (0x0070, 0x1001) for elem in ds)
    ):
        notes.append("bitmap display shutter")
    overlay_groups = sorted(
        {
            elem.tag.group
            for elem in ds
            if 0x6000 <= elem.tag.group <= 0x601E and elem.tag.group % 2 == 0
        }
    )
    if overlay_groups:
        notes.append(f"{len(overlay_groups)} overlay plane(s)")
    if "MaskSubtractionSequence" in ds:
        notes.append("mask subtraction")
    if "ModalityLUTSequence" in ds:
        notes.append("modality LUT table (the image's own modality LUT is used)")


# --- annotations ------------------------------------------------------------------------


def _annotations(
    ds: Dataset, images: list[ImageReference], ours: bool, notes: list[str]
) -> list[Annotation]:
    groups = {
        int(g.GraphicGroupID): g
        for g in ds.get("GraphicGroupSequence", [])
        if "GraphicGroupID" in g
    }
    layer_names = {}
    for layer in ds.get("GraphicLayerSequence", []):
        name = str(layer.get("GraphicLayer", "") or "")
        description = str(layer.get("GraphicLayerDescription", "") or "")
        layer_names[name] = description if ours and description else name
    annotations: list[Annotation] = []
    # Our annotations, keyed by (item, group), with the graphic data of their objects.
    grouped: dict[tuple[int, int], tuple[Annotation, list]] = {}
    for number, item in enumerate(ds.get("GraphicAnnotationSequence", [])):
        layer_cs = str(item.get("GraphicLayer", ""))
        layer = layer_names.get(layer_cs, layer_cs)
        try:
            image = _single_image(_image_refs(item.get("ReferencedImageSequence", [])))
        except _MALFORMED as error:
            notes.append(_unreadable("image reference of a graphic annotation", error))
            image = None
        objects = [("graphic", o) for o in item.get("GraphicObjectSequence", [])]
        objects += [("text", o) for o in item.get("TextObjectSequence", [])]
        for what, obj in objects:
            try:
                _read_object(what, obj, groups, number, image, layer, grouped, annotations, notes)
            except _MALFORMED as error:
                notes.append(_unreadable(f"{what} object", error))
        compound = item.get("CompoundGraphicSequence", [])
        if compound:
            types = sorted({str(c.get("CompoundGraphicType", "?")) for c in compound})
            notes.append(f"{len(compound)} compound graphic(s) ({', '.join(types)})")
    finished = []
    graphics_of = {id(a): g for a, g in grouped.values()}
    for annotation in annotations:
        try:
            if id(annotation) in graphics_of:
                _finish_grouped(annotation, graphics_of[id(annotation)])
        except _MALFORMED as error:
            notes.append(_unreadable(f"{annotation.kind} annotation", error))
            continue
        if not annotation.points:
            notes.append(f"{annotation.kind} annotation without points")
            continue
        finished.append(annotation)
    return finished


def _read_object(what, obj, groups, number, image, layer, grouped, annotations, notes) -> None:
    """Add what one graphic or text object shows to ``annotations`` (or a note)."""
    units = str(
        obj.get("GraphicAnnotationUnits", "")
        or obj.get("AnchorPointAnnotationUnits", "")
        or obj.get("BoundingBoxAnnotationUnits", "")
        or "PIXEL"
    ).upper()
    if units != "PIXEL":
        notes.append(_describe_unshown(what, obj, units))
        return
    group = groups.get(int(obj.get("GraphicGroupID", 0) or 0))
    kind = str(group.get("GraphicGroupLabel", "")) if group is not None else ""
    if kind in ANNOTATION_KINDS:
        key = (number, int(group.GraphicGroupID))
        if key not in grouped:
            grouped[key] = (_new_grouped(kind, group, obj, image, layer), [])
            annotations.append(grouped[key][0])
        _add_to_grouped(*grouped[key], what, obj)
        return
    annotation = _foreign(what, obj, image, layer, notes)
    if annotation is not None:
        annotations.append(annotation)


def _single_image(refs: list[ImageReference]) -> ImageReference | None:
    """The one image an annotation item is drawn on; ``None`` when it covers several."""
    return refs[0] if len(refs) == 1 else None


def _describe_unshown(what: str, obj: Dataset, units: str) -> str:
    if what == "text":
        text = str(obj.get("UnformattedTextValue", "")).replace("\n", " ")
        return f"text {text!r} in {units.lower()} coordinates"
    return f"{str(obj.get('GraphicType', 'graphic')).lower()} in {units.lower()} coordinates"


def _tracking_uid(obj: Dataset) -> str:
    value = obj.get("TrackingID")
    return str(value) if value else uuid.uuid4().hex


def _new_grouped(kind: str, group: Dataset, obj: Dataset, image, layer: str) -> Annotation:
    values, units = _parse_values(str(group.get("GraphicGroupDescription", "") or ""))
    # Points come from all the group's graphic objects, set by _finish_grouped.
    return Annotation(
        kind, [], image=image, values=values, units=units, layer=layer, uid=_tracking_uid(obj)
    )


def _parse_values(description: str) -> tuple[dict[str, float], dict[str, str]]:
    values: dict[str, float] = {}
    units: dict[str, str] = {}
    for line in description.splitlines():
        match = _VALUE_LINE.match(line)
        if not match:
            continue
        name, number, unit = match.groups()
        try:
            values[name] = float(number)
        except ValueError:
            continue
        if unit:
            units[name] = unit
    return values, units


def _add_to_grouped(annotation: Annotation, graphics: list, what: str, obj: Dataset) -> None:
    if what == "text":
        annotation.text = str(obj.get("UnformattedTextValue", ""))
        where = obj.get("AnchorPoint") or obj.get("BoundingBoxTopLeftHandCorner")
        if annotation.kind == "text" and where is not None:
            graphics.append(("POINT", where))
        return
    data = obj.get("GraphicData")
    if data is None:
        return
    graphics.append((str(obj.get("GraphicType", "")), data))


def _finish_grouped(annotation: Annotation, graphics: list) -> None:
    """Points of one of our annotations from the graphic objects of its group."""
    kind = annotation.kind
    if not graphics:
        return
    first_type, first_data = graphics[0]
    points = geometry.from_gsps_points(first_data)
    if kind in ("cobb", "vhs"):
        points = [p for _, data in graphics for p in geometry.from_gsps_points(data)]
    elif kind == "rectangle":
        points = [points[0], points[2]]
    elif kind == "ellipse" and first_type == "ELLIPSE":
        points = _ellipse_box(points)
    elif kind == "arrow":
        points = points[:2]
    annotation.points = points


def _ellipse_box(axes: list[tuple[float, float]]) -> list[tuple[float, float]]:
    xs = [p[0] for p in axes]
    ys = [p[1] for p in axes]
    return [(min(xs), min(ys)), (max(xs), max(ys))]


def _foreign(what: str, obj: Dataset, image, layer: str, notes: list[str]) -> Annotation | None:
    """An annotation for one graphic or text object written by other software."""
    uid = _tracking_uid(obj)
    if what == "text":
        text = str(obj.get("UnformattedTextValue", ""))
        anchor = obj.get("AnchorPoint")
        box = obj.get("BoundingBoxTopLeftHandCorner")
        box_end = obj.get("BoundingBoxBottomRightHandCorner")
        visible = str(obj.get("AnchorPointVisibility", "N")).upper() == "Y"
        if anchor is not None and box is not None and visible:
            # A label with a line to what it describes: our arrow, text at its tail.
            tail = _nearest_box_point(box, box_end, anchor)
            points = geometry.from_gsps_points([*tail, *anchor])
            return Annotation("arrow", points, image=image, text=text, layer=layer, uid=uid)
        where = box if box is not None else anchor
        if where is None:
            notes.append(f"text {text!r} without a position")
            return None
        return Annotation(
            "text", geometry.from_gsps_points(where), image=image, text=text, layer=layer, uid=uid
        )
    graphic_type = str(obj.get("GraphicType", "")).upper()
    data = obj.get("GraphicData")
    if data is None:
        return None
    points = geometry.from_gsps_points(data)
    if graphic_type == "POINT":
        return Annotation("point", points[:1], image=image, layer=layer, uid=uid)
    if graphic_type in ("POLYLINE", "INTERPOLATED") and len(points) >= 2:
        return Annotation("polyline", points, image=image, layer=layer, uid=uid)
    if graphic_type == "CIRCLE" and len(points) == 2:
        (cx, cy), (px, py) = points
        r = math.hypot(px - cx, py - cy)
        return Annotation(
            "ellipse", [(cx - r, cy - r), (cx + r, cy + r)], image=image, layer=layer, uid=uid
        )
    if graphic_type == "ELLIPSE" and len(points) == 4:
        return _foreign_ellipse(points, image, layer, uid)
    notes.append(f"{graphic_type.lower() or 'unknown'} graphic with {len(points)} point(s)")
    return None


def _nearest_box_point(box, box_end, anchor) -> list[float]:
    """The point of a text's bounding box nearest its anchor, where a connecting line starts."""
    x = min(max(float(anchor[0]), float(box[0])), float(box_end[0]))
    y = min(max(float(anchor[1]), float(box[1])), float(box_end[1]))
    return [x, y]


def _foreign_ellipse(points, image, layer, uid) -> Annotation:
    """An axis-aligned ELLIPSE as our bounding-box ellipse; a tilted one as a closed polyline."""
    (a1, a2, b1, b2) = (np.array(p) for p in points)
    center = (a1 + a2) / 2
    major = (a2 - a1) / 2
    minor_length = float(np.hypot(*(b2 - b1))) / 2
    if abs(major[0]) < 1e-6 or abs(major[1]) < 1e-6:
        return Annotation("ellipse", _ellipse_box(points), image=image, layer=layer, uid=uid)
    major_length = float(np.hypot(*major))
    u = major / major_length
    v = np.array([-u[1], u[0]])
    angles = np.linspace(0, 2 * math.pi, _ELLIPSE_SAMPLES + 1)
    outline = [
        tuple(center + major_length * math.cos(t) * u + minor_length * math.sin(t) * v)
        for t in angles
    ]
    return Annotation(
        "polyline", [(float(x), float(y)) for x, y in outline], image=image, layer=layer, uid=uid
    )
