"""Plain data for what a user draws and how an image is displayed.

These objects are shared by the viewer (which edits them), GSPS reading and writing (which
stores them as DICOM presentation states) and notebooks (which tabulate them). They hold no
pixels and no widgets, so they pickle, compare and serialize as ordinary data.

Coordinates are image pixel coordinates ``(column, row)`` as floats, where ``(0, 0)`` is the
centre of the top-left pixel (numpy's convention). GSPS PIXEL units put ``0\0`` at the top-left
*corner* of that pixel, so its centre is ``0.5\0.5``; :mod:`workbench.io.gsps` converts, in one
place.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from dataclasses import asdict, dataclass, field
from typing import Literal

AnnotationKind = Literal[
    "length",
    "angle",
    "cobb",
    "ellipse",
    "rectangle",
    "probe",
    "arrow",
    "text",
    "polyline",
    "point",
    "vhs",
]

ANNOTATION_KINDS: tuple[str, ...] = AnnotationKind.__args__  # type: ignore[attr-defined]

#: How many points an annotation of each kind has. The kinds missing here, ``polyline`` and
#: ``vhs``, take any number of points from two on.
POINT_COUNTS: dict[str, int] = {
    "length": 2,
    "angle": 3,
    "cobb": 4,
    "ellipse": 2,
    "rectangle": 2,
    "probe": 1,
    "point": 1,
    "arrow": 2,
    "text": 1,
}

Point = tuple[float, float]


@dataclass
class ImageReference:
    """The image (and frame, for multi-frame objects) an annotation or state applies to.

    Parameters
    ----------
    sop_class_uid, sop_instance_uid
        (0008,0016) and (0008,0018) of the referenced image.
    frame_number
        1-based frame number within a multi-frame image, or ``None`` for the whole image.
    """

    sop_class_uid: str
    sop_instance_uid: str
    frame_number: int | None = None


@dataclass
class Annotation:
    """One measurement or mark drawn on an image.

    Parameters
    ----------
    kind
        What the user drew; decides how ``points`` are read (two points for a length, three
        for an angle, four for a Cobb angle, two opposite corners for a rectangle or an
        ellipse's bounding box, ...; see :data:`POINT_COUNTS`).
    points
        ``(column, row)`` image pixel coordinates.
    image
        The image the annotation belongs to.
    text
        Free text (arrow label, text note) or the rendered measurement label.
    values
        Computed values keyed by name (``{"length_mm": 42.1}``, ``{"mean": 35.2, ...}``),
        with ``units`` giving each value's unit.
    """

    kind: AnnotationKind
    points: list[Point]
    image: ImageReference | None = None
    text: str = ""
    values: dict[str, float] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    layer: str = "ANNOTATIONS"
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if self.kind not in ANNOTATION_KINDS:
            raise ValueError(f"kind must be one of {ANNOTATION_KINDS}, not {self.kind!r}")
        self.points = [(float(c), float(r)) for c, r in self.points]

    def as_record(self) -> dict:
        """A flat dict for ``pandas.DataFrame`` rows (values spread into columns)."""
        record = asdict(self)
        record.pop("values")
        record.pop("units")
        image = record.pop("image") or {}
        record.update({f"image_{k}": v for k, v in image.items()})
        record.update(self.values)
        return record


@dataclass
class VoiLut:
    """A VOI lookup table (PS3.3 C.11.2), for states whose VOI is a table, not a window.

    Parameters
    ----------
    first_mapped
        Stored value mapped to ``data[0]`` (second value of LUT Descriptor); smaller values
        map to ``data[0]``, larger values past the table to ``data[-1]``.
    bits
        Bits per output entry (third value of LUT Descriptor): outputs span ``0 .. 2**bits-1``.
    data
        The table.
    explanation
        LUT Explanation, shown to users.
    """

    first_mapped: int
    bits: int
    data: tuple[int, ...]
    explanation: str = ""

    def __post_init__(self) -> None:
        self.data = tuple(int(v) for v in self.data)
        if not self.data:
            raise ValueError("a VOI LUT needs at least one entry")


@dataclass
class DisplaySettings:
    """How an image is shown: the display part of a presentation state.

    Parameters
    ----------
    window
        ``(center, width)`` of a linear VOI window in modality units, or ``None`` for the
        image's default.
    invert
        Presentation LUT Shape INVERSE when true.
    rotation
        Clockwise rotation in degrees, one of 0, 90, 180, 270 (applied after ``flip``).
    flip
        Horizontal flip (mirror left-right) before rotation. DICOM spatial transformation
        (PS3.3 C.10.6) rotates first, then flips; :mod:`workbench.io.gsps` converts.
    zoom
        Display pixels per image pixel; ``None`` means fit to the viewport.
    center
        Image point ``(column, row)`` shown at the middle of the viewport; ``None`` means the
        image centre.
    voi_lut
        A VOI lookup table used instead of ``window`` (states written by other software).
    area
        ``(left, top, right, bottom)`` image pixel coordinates (pixel centres, inclusive) of a
        region to scale to fit the viewport, when ``zoom`` is ``None`` (a GSPS Displayed Area
        in SCALE TO FIT mode); ``None`` means the whole image.
    """

    window: tuple[float, float] | None = None
    invert: bool = False
    rotation: int = 0
    flip: bool = False
    zoom: float | None = None
    center: Point | None = None
    voi_lut: VoiLut | None = None
    area: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.rotation not in (0, 90, 180, 270):
            raise ValueError(f"rotation must be 0, 90, 180 or 270, not {self.rotation!r}")
        if self.window is not None:
            center, width = (float(v) for v in self.window)
            if width < 1:
                raise ValueError(f"window width must be >= 1, not {width}")
            self.window = (center, width)
        if self.zoom is not None and self.zoom <= 0:
            raise ValueError(f"zoom must be positive, not {self.zoom}")


@dataclass
class PresentationState:
    """A named, saved set of annotations and display settings (one GSPS object).

    Parameters
    ----------
    name
        Content Label / Description shown to users ("Vertebral Heart Score", "Findings").
    annotations
        What is drawn.
    display
        How the referenced images are shown.
    images
        The images (frames) the state applies to.
    creator
        Content Creator's Name.
    created
        Presentation Creation Date/Time.
    sop_instance_uid
        The GSPS object's own UID once saved or loaded.
    not_shown
        Parts of a state read from other software that the viewer cannot show (shutters,
        display-anchored text, ...), described for the user.
    """

    name: str
    annotations: list[Annotation] = field(default_factory=list)
    display: DisplaySettings = field(default_factory=DisplaySettings)
    images: list[ImageReference] = field(default_factory=list)
    creator: str = ""
    created: _dt.datetime = field(default_factory=_dt.datetime.now)
    description: str = ""
    sop_instance_uid: str | None = None
    not_shown: list[str] = field(default_factory=list)
