"""Build a Grayscale Softcopy Presentation State (PS3.3 A.33.1) from a :class:`PresentationState`.

The object is built with highdicom's presentation-state classes; what highdicom does not model
(a Displayed Area other than the whole image, the Spatial Transformation, frame-level
references in the Presentation State Relationship module, our creation date) is set on the
returned dataset afterwards.

How annotations are stored, so that they read back exactly and other software still shows them:

- Each :class:`Annotation` becomes one item of the Graphic Annotation Sequence in the Graphic
  Layer named after ``annotation.layer``, with its own Graphic Group (PS3.3 C.10.5a): the group
  label is the annotation kind (``length``, ``ellipse``...), the group description lists its
  measurement values one per line as ``name = value unit``. Every graphic and text object of
  the annotation carries the annotation's ``uid`` as Tracking ID (and a matching Tracking UID).
- Shapes: lengths, angles and free polylines are POLYLINEs, a Cobb angle two POLYLINEs, a
  rectangle a closed POLYLINE, an ellipse an ELLIPSE (major then minor axis end points), points
  and probes POINTs, an arrow a POLYLINE shaft plus two short POLYLINEs for its head.
- ``annotation.text`` (a measurement label, an arrow's or a note's text) is a text object
  anchored in PIXEL units, with a bounding box placed beside the anchor where the image has
  room for one.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import math
import re
import unicodedata
import warnings
from collections.abc import Sequence

import highdicom as hd
import numpy as np
from highdicom import pr
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from workbench.io import derived
from workbench.io.gsps import geometry
from workbench.io.gsps.identity import (
    DEFAULT_SERIES_NUMBER,
    MANUFACTURER,
    MODEL_NAME,
    SERIES_DESCRIPTION,
)
from workbench.io.presentation import (
    POINT_COUNTS,
    Annotation,
    ImageReference,
    PresentationState,
    VoiLut,
)

_CS_ALLOWED = re.compile(r"[^A-Z0-9 _]")
_CS_MAX = 16
_LO_MAX = 64


def content_label(name: str) -> str:
    """A valid Content Label (CS: ``A-Z``, digits, space, ``_``; at most 16 characters) for a name.

    Examples
    --------
    >>> content_label("Vertebral Heart Score")
    'VERTEBRAL_HEART_'
    >>> content_label("Größe 2")
    'GROSSE_2'
    """
    # Accents are dropped rather than replaced ("Größe" -> "GROSSE").
    upper = unicodedata.normalize("NFKD", name.strip().upper()).encode("ascii", "ignore").decode()
    label = _CS_ALLOWED.sub("_", upper.replace(" ", "_"))
    label = re.sub("_+", "_", label).strip("_")[:_CS_MAX].rstrip("_ ")
    return label or "UNNAMED"


def layer_name(layer: str) -> str:
    """A Graphic Layer name (CS) for one of our layer names."""
    return content_label(layer) if layer else "ANNOTATIONS"


def write(
    state: PresentationState,
    referenced_images: Sequence[Dataset],
    *,
    series_instance_uid: str | None = None,
    series_number: int = DEFAULT_SERIES_NUMBER,
    instance_number: int = 1,
    sop_instance_uid: str | None = None,
    creator: str | None = None,
    institution_name: str | None = None,
) -> Dataset:
    """Build a GSPS object for ``state``, applying to ``referenced_images``.

    Parameters
    ----------
    state
        Name, annotations and display settings to save. ``state.images`` selects the images
        (frames) the state applies to; when empty it applies to every referenced image.
    referenced_images
        Datasets of the images the state refers to (headers suffice; read them with
        ``stop_before_pixels=True``). They must share Rows and Columns and one study, and be
        single-sample (grayscale) images.
    series_instance_uid
        Series to put the GSPS in; a new series of the images' study when ``None``. Pass the
        UID of an existing presentation-state series to keep several states together.
    series_number, instance_number
        (0020,0011) and (0020,0013) of the new object.
    sop_instance_uid
        UID of the new object; generated when ``None`` (and ``state.sop_instance_uid`` is unset).
    creator
        Content Creator's Name; defaults to ``state.creator``, else the login name.
    institution_name
        (0008,0080) Institution Name, if known.

    Returns
    -------
    pydicom.Dataset
        The presentation state, with file meta, ready for ``ds.save_as(path)``.

    Raises
    ------
    ValueError
        If there are no referenced images, the name is empty or longer than 64 characters, an
        annotation refers to an image not in ``referenced_images``, or an annotation has the
        wrong number of points for its kind.
    """
    if not referenced_images:
        raise ValueError("a presentation state needs at least one referenced image")
    name = state.name.strip()
    if not name:
        raise ValueError("a presentation state needs a name (Content Description)")
    if len(name) > _LO_MAX:
        raise ValueError(
            f"state name is {len(name)} characters; at most {_LO_MAX} fit in "
            "(0070,0081) Content Description"
        )
    # highdicom copies patient and study from the first image; only its values need to be
    # made valid (and warned about), the others give references and display values.
    images = [_complete_header(ds, copied=n == 0) for n, ds in enumerate(referenced_images)]
    by_uid = {str(ds.SOPInstanceUID): ds for ds in images}
    first = images[0]
    columns, rows = int(first.Columns), int(first.Rows)

    layers, annotations, groups = _graphics(state, by_uid, columns, rows)
    creator_name = creator or state.creator or getpass.getuser()
    with warnings.catch_warnings():
        # highdicom doubts single-word patient names copied from the images; they are as
        # the modality wrote them and not ours to change.
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person")
        gsps = pr.GrayscaleSoftcopyPresentationState(
            referenced_images=images,
            series_instance_uid=series_instance_uid or hd.UID(),
            series_number=series_number,
            sop_instance_uid=sop_instance_uid or state.sop_instance_uid or hd.UID(),
            instance_number=instance_number,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=MODEL_NAME,
            software_versions=_version(),
            device_serial_number="",
            content_label=content_label(name),
            content_description=name,
            graphic_annotations=annotations or None,
            graphic_layers=layers or None,
            graphic_groups=groups or None,
            institution_name=institution_name,
            content_creator_name=_person_name(creator_name),
            modality_lut_transformation=_modality_lut(state, first),
            voi_lut_transformations=_voi(state, images),
            presentation_lut_transformation=hd.PresentationLUTTransformation(
                presentation_lut_shape=_presentation_lut_shape(state, first)
            ),
            specific_character_set=derived.character_set(
                first, [*_texts(state, creator_name), institution_name or ""]
            ),
        )
    gsps.SeriesDescription = SERIES_DESCRIPTION
    created = state.created or _dt.datetime.now()
    gsps.PresentationCreationDate = created.strftime("%Y%m%d")
    gsps.PresentationCreationTime = created.strftime("%H%M%S.%f")
    _set_frame_references(gsps, state)
    _set_spatial_transformation(gsps, state)
    _set_displayed_area(gsps, state, first, columns, rows)
    derived.follow_images(gsps, images)
    return gsps


# --- headers ----------------------------------------------------------------------------


def _complete_header(ds: Dataset, *, copied: bool) -> Dataset:
    """A header copy with the Type 2 patient/study attributes highdicom reads present.

    With ``copied`` (the image highdicom copies patient and study from) their values are
    made valid first (:func:`workbench.io.derived.valid_header`).
    """
    header = derived.valid_header(ds) if copied else derived.shallow_copy(ds)
    for tag in [elem.tag for elem in header if elem.tag.group == 0x7FE0]:
        del header[tag]
    for keyword in (
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "PatientSex",
        "AccessionNumber",
        "StudyID",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
    ):
        if keyword not in header:
            setattr(header, keyword, "")
    missing = [
        k
        for k in (
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "SOPInstanceUID",
            "SOPClassUID",
            "Rows",
            "Columns",
        )
        if k not in header
    ]
    if missing:
        names = ", ".join(derived.tag_name(tag_for_keyword(k)) for k in missing)
        raise ValueError(f"{derived.source_name(ds)}: the image lacks {names}")
    if int(header.get("NumberOfFrames") or 1) > 1:
        # highdicom looks into the functional groups of multi-frame images; a header built
        # from what a viewer knows may have none.
        for keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
            if keyword not in header:
                setattr(header, keyword, [Dataset()] if keyword.startswith("Shared") else [])
    if "SamplesPerPixel" not in header:
        header.SamplesPerPixel = 1
    if int(header.SamplesPerPixel) != 1:
        raise ValueError(
            f"{derived.source_name(ds)}: image {header.SOPInstanceUID} has "
            f"{header.SamplesPerPixel} samples per pixel; a grayscale presentation state "
            "applies to grayscale images"
        )
    return header


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("workbench")
    except Exception:  # running from a source tree without package metadata
        return "0"


def _texts(state: PresentationState, creator: str) -> list[str]:
    """Every text of ours the presentation state holds (for its character set)."""
    texts = [state.name, creator, SERIES_DESCRIPTION]
    for annotation in state.annotations:
        texts += [annotation.text, annotation.layer, *annotation.units.values()]
    return texts


def _person_name(name: str) -> str:
    """A PN value; a single word (a login name) is a family name, marked by a trailing ``^``."""
    name = name.replace("\\", "/").strip()[:63]
    return name if "^" in name or "=" in name else f"{name}^"


# --- annotations ------------------------------------------------------------------------


def _graphics(state: PresentationState, by_uid: dict[str, Dataset], columns: int, rows: int):
    layer_names: list[str] = []
    annotations: list[pr.GraphicAnnotation] = []
    groups: list[pr.GraphicGroup] = []
    for number, annotation in enumerate(state.annotations, start=1):
        layer = layer_name(annotation.layer)
        if layer not in layer_names:
            layer_names.append(layer)
        group = pr.GraphicGroup(
            graphic_group_id=number,
            label=annotation.kind,
            description=format_values(annotation) or None,
        )
        graphic_objects, text_objects = _objects(annotation, group, columns, rows)
        if not graphic_objects and not text_objects:
            warnings.warn(
                f"{annotation.kind} annotation {annotation.uid} has nothing to draw "
                "(a text without text?); it is not saved",
                stacklevel=3,
            )
            continue
        groups.append(group)
        referenced, frames = _annotation_images(annotation, state, by_uid)
        annotations.append(
            pr.GraphicAnnotation(
                referenced_images=referenced,
                graphic_layer=pr.GraphicLayer(layer, order=layer_names.index(layer) + 1),
                referenced_frame_number=frames,
                graphic_objects=graphic_objects or None,
                text_objects=text_objects or None,
            )
        )
    layers = [
        pr.GraphicLayer(name, order=order, description=_layer_description(name, state))
        for order, name in enumerate(layer_names, start=1)
    ]
    return layers, annotations, groups


def _layer_description(layer: str, state: PresentationState) -> str | None:
    originals = {a.layer for a in state.annotations if layer_name(a.layer) == layer}
    original = originals.pop() if len(originals) == 1 else None
    return original[:_LO_MAX] if original and original != layer else None


def _annotation_images(
    annotation: Annotation, state: PresentationState, by_uid: dict[str, Dataset]
) -> tuple[list[Dataset], int | list[int] | None]:
    """The referenced image datasets (and frames) an annotation is drawn on."""
    if annotation.image is not None:
        refs = [annotation.image]
    elif state.images:
        refs = list(state.images)
    else:
        refs = [ImageReference(str(ds.SOPClassUID), uid) for uid, ds in by_uid.items()]
    missing = [r.sop_instance_uid for r in refs if r.sop_instance_uid not in by_uid]
    if missing:
        raise ValueError(
            f"annotation {annotation.uid} ({annotation.kind}) refers to image "
            f"{missing[0]}, which is not among the referenced images"
        )
    datasets = list({r.sop_instance_uid: by_uid[r.sop_instance_uid] for r in refs}.values())
    frames = sorted({r.frame_number for r in refs if r.frame_number is not None})
    if frames and len(datasets) > 1:
        raise ValueError(
            f"annotation {annotation.uid} refers to frames of several images; "
            "give it one multi-frame image"
        )
    if not frames:
        return datasets, None
    return datasets, frames[0] if len(frames) == 1 else frames


def format_values(annotation: Annotation) -> str:
    """Measurement values as Graphic Group Description lines ``name = value unit``."""
    lines = []
    for key, value in annotation.values.items():
        unit = annotation.units.get(key, "")
        lines.append(f"{key} = {float(value)!r} {unit}".rstrip())
    return "\n".join(lines)


def _tracking(annotation: Annotation) -> dict:
    """Tracking ID/UID that tie every object of one annotation together."""
    try:
        number = int(annotation.uid, 16)
        uid = f"2.25.{number}"
    except ValueError:
        uid = hd.UID()
    return {"tracking_id": annotation.uid[:_LO_MAX], "tracking_uid": uid}


def _clipped(annotation: Annotation, columns: int, rows: int) -> np.ndarray:
    """GSPS PIXEL points of an annotation, pulled inside the image area highdicom accepts."""
    points = geometry.to_gsps_points(annotation.points)
    limits = np.array([columns, rows], dtype=float)
    clipped = np.clip(points, 0.0, limits)
    if not np.array_equal(points, clipped):
        warnings.warn(
            f"{annotation.kind} annotation {annotation.uid} reaches outside the "
            "image; its points were moved to the image border",
            stacklevel=4,
        )
    return clipped


def _objects(annotation: Annotation, group: pr.GraphicGroup, columns: int, rows: int):
    kind = annotation.kind
    expected = POINT_COUNTS.get(kind)
    count = len(annotation.points)
    if expected is not None and count != expected:
        raise ValueError(
            f"a {kind} annotation needs {expected} points, annotation {annotation.uid} has {count}"
        )
    if kind in ("polyline", "vhs") and count < 2:
        raise ValueError(
            f"a {kind} annotation needs at least 2 points, annotation {annotation.uid} has {count}"
        )
    p = _clipped(annotation, columns, rows)
    common = {
        "units": pr.AnnotationUnitsValues.PIXEL,
        "graphic_group": group,
        **_tracking(annotation),
    }

    def graphic(graphic_type: str, data: np.ndarray, **kwargs) -> pr.GraphicObject:
        return pr.GraphicObject(graphic_type, np.asarray(data, dtype=float), **common, **kwargs)

    graphics: list[pr.GraphicObject] = []
    if kind in ("length", "angle", "polyline"):
        graphics.append(graphic("POLYLINE", p))
    elif kind == "vhs":
        # Segments drawn as consecutive point pairs (heart axes, vertebral lengths).
        graphics.extend(graphic("POLYLINE", p[i : i + 2]) for i in range(0, count - 1, 2))
        if count % 2:
            graphics.append(graphic("POINT", p[-1:]))
    elif kind == "cobb":
        graphics += [graphic("POLYLINE", p[0:2]), graphic("POLYLINE", p[2:4])]
    elif kind == "rectangle":
        (c1, r1), (c2, r2) = p
        corners = np.array([[c1, r1], [c2, r1], [c2, r2], [c1, r2], [c1, r1]])
        graphics.append(graphic("POLYLINE", corners))
    elif kind == "ellipse":
        graphics.append(graphic("ELLIPSE", _ellipse_axes(p)))
    elif kind in ("probe", "point"):
        graphics.append(graphic("POINT", p[:1]))
    elif kind == "arrow":
        graphics.append(graphic("POLYLINE", p))
        graphics.extend(graphic("POLYLINE", barb) for barb in _arrow_head(p, columns, rows))
    texts = []
    if annotation.text:
        anchor = _text_anchor(kind, p)
        texts.append(
            pr.TextObject(
                text_value=annotation.text[:1024],
                bounding_box=_text_box(annotation.text, anchor, columns, rows),
                anchor_point=tuple(float(v) for v in anchor),
                # The line from the text to its anchor is the arrow's own shaft.
                anchor_point_visible=False,
                text_justification=pr.TextJustificationValues.LEFT,
                **common,
            )
        )
    return graphics, texts


def _ellipse_axes(corners: np.ndarray) -> np.ndarray:
    """ELLIPSE graphic data (major axis end points, then minor) for a bounding box."""
    (c1, r1), (c2, r2) = corners
    cx, cy, rx, ry = (c1 + c2) / 2, (r1 + r2) / 2, abs(c2 - c1) / 2, abs(r2 - r1) / 2
    horizontal = [[cx - rx, cy], [cx + rx, cy]]
    vertical = [[cx, cy - ry], [cx, cy + ry]]
    return np.array(horizontal + vertical if rx >= ry else vertical + horizontal)


def _arrow_head(p: np.ndarray, columns: int, rows: int) -> list[np.ndarray]:
    """Two barbs at the arrow's head (its last point), 30° off the shaft."""
    tail, head = p[0], p[-1]
    direction = tail - head
    length = float(np.hypot(*direction))
    if length == 0:
        return []
    size = min(length / 3, max(columns, rows) / 40)
    angle = math.atan2(direction[1], direction[0])
    barbs = []
    for turn in (-math.pi / 6, math.pi / 6):
        end = head + size * np.array([math.cos(angle + turn), math.sin(angle + turn)])
        barbs.append(np.array([head, np.clip(end, 0, [columns, rows])]))
    return barbs


def _text_anchor(kind: str, p: np.ndarray) -> np.ndarray:
    """Where a label is attached: line end, angle vertex, arrow tail, shape corner, point."""
    if kind == "angle":
        return p[1]
    if kind in ("ellipse", "rectangle"):
        return np.array([max(p[0][0], p[1][0]), min(p[0][1], p[1][1])])
    if kind == "arrow":
        return p[0]
    if kind in ("text", "probe", "point"):
        return p[0]
    return p[-1]


def _text_box(text: str, anchor: np.ndarray, columns: int, rows: int):
    """A bounding box beside ``anchor`` sized for ``text`` at ~3% of the image height per line.

    Returns ``None`` (anchor only) when the image is too small to hold a sensible box.
    """
    lines = text.splitlines() or [text]
    line_height = max(rows, columns) * 0.03
    width = line_height * 0.6 * max(len(line) for line in lines)
    height = line_height * len(lines)
    width, height = min(width, columns - 1.0), min(height, rows - 1.0)
    if width < 2 or height < 2:
        return None
    left = min(max(anchor[0] + line_height / 2, 0.0), columns - width)
    top = min(max(anchor[1] - height / 2, 0.0), rows - height)
    return (float(left), float(top), float(left + width), float(top + height))


# --- display ----------------------------------------------------------------------------


def _rescale(ds: Dataset, frame: int) -> tuple[float, float, str] | None:
    """(slope, intercept, type) of an image frame: top level, else its functional groups."""
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        return float(ds.RescaleSlope), float(ds.RescaleIntercept), str(ds.get("RescaleType", ""))
    groups = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if 0 < frame <= len(per_frame):
        groups.append(per_frame[frame - 1])
    groups.extend(ds.get("SharedFunctionalGroupsSequence") or [])
    for group in groups:
        for item in group.get("PixelValueTransformationSequence") or []:
            if "RescaleSlope" in item and "RescaleIntercept" in item:
                kind = str(item.get("RescaleType", ""))
                return float(item.RescaleSlope), float(item.RescaleIntercept), kind
    return None


def _modality_lut(state: PresentationState, image: Dataset) -> hd.ModalityLUTTransformation | None:
    """The image's rescale as the state's Modality LUT (PS3.3 C.11.1).

    Passed explicitly rather than left to highdicom, which cannot take it from per-frame
    functional groups or from several multi-frame images; the frame on screen (the first
    referenced) decides.
    """
    frames = [
        r.frame_number
        for r in state.images
        if r.sop_instance_uid == str(image.SOPInstanceUID) and r.frame_number
    ]
    rescale = _rescale(image, frames[0] if frames else 1)
    if rescale is None:
        return None
    slope, intercept, kind = rescale
    modality = str(image.get("Modality", ""))
    for rescale_type in (kind, "HU" if modality == "CT" else "US", "US"):
        if not rescale_type:
            continue
        try:
            return hd.ModalityLUTTransformation(
                rescale_intercept=intercept, rescale_slope=slope, rescale_type=rescale_type
            )
        except ValueError:
            continue
    return None


def _voi(state: PresentationState, images: Sequence[Dataset]):
    """The Softcopy VOI LUT items: the state's window or table, else each image's own default."""
    display = state.display
    if display.voi_lut is not None:
        return [pr.SoftcopyVOILUTTransformation(voi_luts=[_voi_lut(display.voi_lut)])]
    if display.window is not None:
        center, width = display.window
        return [pr.SoftcopyVOILUTTransformation(window_center=center, window_width=width)]
    items = []
    for ds in images:
        item = _image_default_voi(ds)
        if item is None:
            continue
        item.ReferencedImageSequence = hd.ReferencedImageSequence(referenced_images=[ds])
        items.append(item)
    if not items:
        return None
    return items if len(items) > 1 else [_without_references(items[0])]


def _without_references(item: pr.SoftcopyVOILUTTransformation):
    del item.ReferencedImageSequence
    return item


def _image_default_voi(ds: Dataset) -> pr.SoftcopyVOILUTTransformation | None:
    """The first VOI the image itself offers (PS3.3 C.11.2), as a softcopy VOI item."""
    if "VOILUTSequence" in ds and ds.VOILUTSequence:
        item = ds.VOILUTSequence[0]
        first_mapped, bits = int(item.LUTDescriptor[1]), int(item.LUTDescriptor[2])
        explanation = str(item.get("LUTExplanation", ""))
        lut = VoiLut(first_mapped, bits, tuple(_lut_values(item)), explanation)
        return pr.SoftcopyVOILUTTransformation(voi_luts=[_voi_lut(lut)])
    if "WindowCenter" in ds and "WindowWidth" in ds:
        center = _first(ds.WindowCenter)
        width = _first(ds.WindowWidth)
        if width >= 1:
            function = ds.get("VOILUTFunction")
            return pr.SoftcopyVOILUTTransformation(
                window_center=center,
                window_width=width,
                voi_lut_function=function if function else None,
            )
    return None


def _first(value) -> float:
    """The first of a possibly multi-valued DS (images may list several window presets)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return float(value[0])
    return float(value)


def _lut_values(item: Dataset) -> list[int]:
    """LUT Data of a VOI LUT item as integers (8-bit tables may be packed two per word)."""
    entries = int(item.LUTDescriptor[0]) or 65536
    raw = item.LUTData
    if isinstance(raw, bytes):
        dtype = "<u1" if int(item.LUTDescriptor[2]) <= 8 and len(raw) == entries else "<u2"
        return np.frombuffer(raw, dtype=dtype)[:entries].astype(int).tolist()
    return [int(v) for v in (raw if isinstance(raw, Sequence) else [raw])][:entries]


def _voi_lut(lut: VoiLut) -> hd.VOILUT:
    dtype = np.uint8 if lut.bits <= 8 else np.uint16
    # highdicom refuses a negative first mapped value, which modality values such as HU need;
    # the descriptor is set afterwards, signed (SS) in that case (PS3.3 C.11.2.1.1).
    voi = hd.VOILUT(
        first_mapped_value=max(int(lut.first_mapped), 0),
        lut_data=np.asarray(lut.data, dtype=dtype),
        lut_explanation=lut.explanation or None,
    )
    voi.LUTDescriptor = [len(lut.data) % 65536, int(lut.first_mapped), int(lut.bits)]
    voi["LUTDescriptor"].VR = "SS" if lut.first_mapped < 0 else "US"
    return voi


def _presentation_lut_shape(state: PresentationState, image: Dataset) -> str:
    """IDENTITY or INVERSE so that the image shows as the user saw it.

    In a GSPS the Presentation LUT, not the image's Photometric Interpretation, decides
    polarity: a MONOCHROME1 image shows normally (white bone) with INVERSE (PS3.4 N.2.1.1).
    """
    monochrome1 = str(image.get("PhotometricInterpretation", "")) == "MONOCHROME1"
    return "INVERSE" if state.display.invert != monochrome1 else "IDENTITY"


def _set_frame_references(gsps: Dataset, state: PresentationState) -> None:
    """Name the frames of multi-frame images the state is limited to (highdicom names images)."""
    frames: dict[str, set[int]] = {}
    for ref in state.images:
        if ref.frame_number is not None:
            frames.setdefault(ref.sop_instance_uid, set()).add(int(ref.frame_number))
    for series in gsps.ReferencedSeriesSequence:
        for item in series.ReferencedImageSequence:
            numbers = sorted(frames.get(str(item.ReferencedSOPInstanceUID), ()))
            if numbers:
                item.ReferencedFrameNumber = numbers if len(numbers) > 1 else numbers[0]


def _set_spatial_transformation(gsps: Dataset, state: PresentationState) -> None:
    display = state.display
    gsps.ImageRotation = geometry.to_gsps_rotation(display.rotation, display.flip)
    gsps.ImageHorizontalFlip = "Y" if display.flip else "N"


def _set_displayed_area(
    gsps: Dataset, state: PresentationState, image: Dataset, columns: int, rows: int
) -> None:
    """Displayed Area Selection for zoom and pan (highdicom always selects the whole image).

    A zoom is saved as MAGNIFY with the zoom as Presentation Pixel Magnification Ratio and an
    image-sized area centred on the point shown at the viewport's middle; an explicit area as
    SCALE TO FIT of that area; neither as SCALE TO FIT of the whole image.
    """
    display = state.display
    region = geometry.displayed_region(display, columns, rows)
    tlhc, brhc = geometry.displayed_area_corners(region, display.rotation, display.flip)
    item = Dataset()
    item.DisplayedAreaTopLeftHandCorner = tlhc
    item.DisplayedAreaBottomRightHandCorner = brhc
    if display.zoom is not None:
        item.PresentationSizeMode = "MAGNIFY"
        item.PresentationPixelMagnificationRatio = float(display.zoom)
    else:
        item.PresentationSizeMode = "SCALE TO FIT"
    spacing = image.get("PixelSpacing") or image.get("ImagerPixelSpacing")
    if spacing is not None and len(spacing) == 2 and all(float(v) > 0 for v in spacing):
        item.PresentationPixelSpacing = [float(v) for v in spacing]
    else:
        aspect = image.get("PixelAspectRatio")
        item.PresentationPixelAspectRatio = [int(v) for v in aspect] if aspect else [1, 1]
    gsps.DisplayedAreaSelectionSequence = [item]
