"""Which DICOM objects are images, and what the others are.

A study folder holds more than images: presentation states, structured reports, key object
selections, segmentations, encapsulated PDFs. Scans list those apart from the image series
(:attr:`workbench.io.catalog.Catalog.objects`) and :func:`~workbench.io.open_series` refuses
them with a message saying what they are and what reads them.

An object is an image when it has pixel data and its SOP class is not one whose pixel data
holds something else (a segmentation's frames are labels, not a picture of the patient).
"""

from __future__ import annotations

from pydicom.uid import UID

#: Kinds of non-image objects by SOP Class UID prefix, most specific first.
_KINDS: tuple[tuple[str, str], ...] = (
    ("1.2.840.10008.5.1.4.1.1.88.59", "key object selection"),
    ("1.2.840.10008.5.1.4.1.1.88.", "structured report"),
    ("1.2.840.10008.5.1.4.1.1.11.", "presentation state"),
    ("1.2.840.10008.5.1.4.1.1.66.4", "segmentation"),
    ("1.2.840.10008.5.1.4.1.1.66.5", "surface segmentation"),
    ("1.2.840.10008.5.1.4.1.1.66", "registration or raw data"),
    ("1.2.840.10008.5.1.4.1.1.104.", "encapsulated document"),
    ("1.2.840.10008.5.1.4.1.1.9.", "waveform"),
    ("1.2.840.10008.5.1.4.1.1.481.3", "RT structure set"),
    ("1.2.840.10008.5.1.4.1.1.481.5", "RT plan"),
    ("1.2.840.10008.5.1.4.1.1.481.8", "RT plan"),
)

#: How to read each kind, for messages.
READ_WITH: dict[str, str] = {
    "presentation state": "workbench.io.gsps.read",
    "segmentation": "highdicom.seg.segread",
    "structured report": "highdicom.sr.srread",
    "key object selection": "highdicom.sr.srread",
    "encapsulated document": "pydicom.dcmread (the document is in EncapsulatedDocument)",
}


def object_kind(sop_class_uid: str, has_pixel_data: bool) -> str | None:
    """What a non-image object is (e.g. ``"presentation state"``); ``None`` for an image.

    Parameters
    ----------
    sop_class_uid
        (0008,0016) SOP Class UID.
    has_pixel_data
        Whether the object carries (7FE0,0010) Pixel Data or its float variants.
    """
    uid = str(sop_class_uid or "")
    for prefix, kind in _KINDS:
        if uid.startswith(prefix):
            return kind
    if has_pixel_data:
        return None
    name = UID(uid).name if uid else ""
    if not name or name == uid:
        return "object without pixels"
    return name.removesuffix(" Storage").lower()


def not_an_image_message(kind: str, what: str, sop_class_uid: str = "") -> str:
    """``what`` (a file, a series) is a ``kind``, not an image: say so, with its SOP class,
    and what reads it."""
    reader = READ_WITH.get(kind)
    advice = f"; read it with {reader}" if reader else ""
    article = "an" if kind[:1] in "aeiou" else "a"
    name = UID(sop_class_uid).name if sop_class_uid else ""
    detail = f" ({name})" if name and name != sop_class_uid else ""
    return f"{what} is {article} {kind}{detail}, not an image{advice}"
