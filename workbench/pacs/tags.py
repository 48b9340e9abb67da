"""Orthanc's main DICOM tags per level and how a tag value becomes index text.

The index keeps, for each level, the "main DICOM tags" Orthanc 1.10 keeps, as columns of that
level's table. Values are stored as the text Orthanc shows: decoded with the instance's
Specific Character Set, multiple values joined with a backslash, padding removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.multival import MultiValue

from workbench.io.headers import InstanceHeader
from workbench.values import raw_vr

LEVELS = ("Patient", "Study", "Series", "Instance")
#: Each level's plural: its REST path ("/studies/{id}"), its list key in a parent's JSON
#: ("Studies") and its table name.
PLURAL = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}

#: Orthanc 1.10's main DICOM tags of each level (``DicomMap.cpp``).
MAIN_TAGS: dict[str, tuple[str, ...]] = {
    "Patient": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "OtherPatientIDs"),
    "Study": (
        "StudyDate",
        "StudyTime",
        "StudyID",
        "StudyDescription",
        "AccessionNumber",
        "StudyInstanceUID",
        "RequestedProcedureDescription",
        "InstitutionName",
        "RequestingPhysician",
        "ReferringPhysicianName",
    ),
    "Series": (
        "SeriesDate",
        "SeriesTime",
        "Modality",
        "Manufacturer",
        "StationName",
        "SeriesDescription",
        "BodyPartExamined",
        "SequenceName",
        "ProtocolName",
        "SeriesNumber",
        "CardiacNumberOfImages",
        "ImagesInAcquisition",
        "NumberOfTemporalPositions",
        "NumberOfSlices",
        "NumberOfTimeSlices",
        "SeriesInstanceUID",
        "ImageOrientationPatient",
        "SeriesType",
        "OperatorsName",
        "PerformedProcedureStepDescription",
        "AcquisitionDeviceProcessingDescription",
        "ContrastBolusAgent",
    ),
    "Instance": (
        "InstanceCreationDate",
        "InstanceCreationTime",
        "AcquisitionNumber",
        "ImageIndex",
        "InstanceNumber",
        "NumberOfFrames",
        "TemporalPositionIdentifier",
        "SOPInstanceUID",
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "ImageComments",
    ),
}

#: Tags the index keeps beyond Orthanc's main tags, because queries need them.
EXTRA_TAGS: dict[str, tuple[str, ...]] = {
    "Patient": (),
    # Like Orthanc, each study keeps the patient tags of its own instances: studies filed
    # under one PatientID may disagree on the name, and PatientMainDicomTags shows the study's.
    "Study": MAIN_TAGS["Patient"],
    "Series": (),
    "Instance": ("SOPClassUID",),
}

#: The DICOM identifier of each level (the tag whose value names a resource).
IDENTIFIER = {
    "Patient": "PatientID",
    "Study": "StudyInstanceUID",
    "Series": "SeriesInstanceUID",
    "Instance": "SOPInstanceUID",
}

#: Orthanc drops values longer than this from its main tags (ORTHANC_MAXIMUM_TAG_LENGTH).
MAXIMUM_TAG_LENGTH = 256

# Text VRs whose leading spaces are significant (PS3.5 6.2): only trailing padding goes.
_KEEP_LEADING = {"LT", "ST", "UT", "UC", "PN"}
# VRs of the default character repertoire whose values print as stored, padding aside.
_VERBATIM_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"})


def normalize_level(level: str) -> str:
    """Return the canonical level name for "patients", "Study", "IMAGE", "series"...

    Raises
    ------
    ValueError
        If ``level`` names none of the four levels.
    """
    key = level.strip().lower()
    aliases = {
        "patient": "Patient",
        "patients": "Patient",
        "study": "Study",
        "studies": "Study",
        "series": "Series",
        "instance": "Instance",
        "instances": "Instance",
        "image": "Instance",
    }
    if key not in aliases:
        raise ValueError(
            f"Unknown resource level {level!r}; use Patient, Study, Series or Instance"
        )
    return aliases[key]


def stored_tags(level: str) -> tuple[str, ...]:
    """All tag keywords the index stores at ``level`` (main tags, then extras)."""
    return MAIN_TAGS[level] + EXTRA_TAGS[level]


def vr_of(keyword: str) -> str:
    """The dictionary VR of a keyword ("" when the keyword is unknown)."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        return ""
    try:
        return dictionary_VR(tag)
    except KeyError:
        return ""


def value_text(value: Any, vr: str) -> str:
    """Render a decoded pydicom value as the text Orthanc shows for it."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(value_text(item, vr) for item in value)
    # DSfloat/IS keep the string read from the file; str() gives it back unchanged.
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    text = text.rstrip(" \x00")
    return text if vr in _KEEP_LEADING else text.lstrip(" ")


def header_texts(header: InstanceHeader, keywords: Iterable[str]) -> dict[str, str | None]:
    """``{keyword: text or None}`` of a header read by :func:`workbench.io.headers.read_header`.

    ``None`` means the attribute is absent (or a sequence, or too long to keep); ``""`` means
    present and empty, a distinction Orthanc keeps (absent tags are not listed in
    ``MainDicomTags``). Values are converted from the raw elements, each once.
    """
    result: dict[str, str | None] = {}
    encoding = None  # of the text VRs, once one is met
    for keyword in keywords:
        tag = _TAGS.get(keyword) or tag_for_keyword(keyword)
        elem = header.elements.get(tag)
        is_raw = isinstance(elem, RawDataElement)
        vr = raw_vr(tag, elem) if is_raw else getattr(elem, "VR", None)
        if elem is None or vr == "SQ":
            result[keyword] = None
            continue
        text = None
        if is_raw and vr in _VERBATIM_VRS:
            # The stored characters are the text: converting each value to a pydicom
            # object (with its validation) only to print it back costs half the parse.
            text = (elem.value or b"").decode("latin-1")
            text = (
                "\\".join(item.rstrip(" \x00").lstrip(" ") for item in text.split("\\"))
                if "\\" in text
                else text.rstrip(" \x00").lstrip(" ")
            )
        elif is_raw and vr in _PLAIN_TEXT_VRS:
            if encoding is None:
                encoding = _first_encoding(header)
            text = _plain_text(elem.value or b"", vr, encoding)
        if text is None:
            text = value_text(header.get(keyword), vr)
        # Identifiers are kept whole whatever their length: they name the resource.
        keep = len(text) <= MAXIMUM_TAG_LENGTH or keyword in _IDENTIFIERS
        result[keyword] = text if keep else None
    return result


# Text VRs whose values (``\\``-separated, but LT, ST and UT) print as decoded: what
# pydicom's text converters do, without their per-value validation.
_PLAIN_TEXT_VRS = frozenset({"LO", "SH", "UC", "LT", "ST", "UT", "PN"})
_ESC = 0x1B


def _first_encoding(header: InstanceHeader) -> str:
    encodings = header.character_set()
    return encodings if isinstance(encodings, str) else encodings[0]


def _plain_text(raw: bytes, vr: str, encoding: str) -> str | None:
    """The text of a raw text element decoded as pydicom's ``decode_bytes`` does when there
    is no escape sequence (with the first encoding); ``None`` to leave it to pydicom (escape
    sequences, undecodable bytes, an unknown encoding: its warnings and fallbacks)."""
    if _ESC in raw:
        return None
    try:
        text = raw.decode(encoding)
    except (UnicodeError, LookupError):
        return None
    if vr == "PN":  # values keep their leading spaces, as pydicom's PersonName does
        return "\\".join(item.rstrip(" \x00") for item in text.rstrip(" \x00").split("\\"))
    if vr in _KEEP_LEADING:  # LT, ST, UT: one value, backslashes included
        return text.rstrip(" \x00")
    return "\\".join(item.rstrip(" \x00").lstrip(" ") for item in text.split("\\"))


_IDENTIFIERS = frozenset(IDENTIFIER.values())
_TAGS = {
    keyword: tag_for_keyword(keyword)
    for level in LEVELS
    for keyword in MAIN_TAGS[level] + EXTRA_TAGS[level]
}


def keyword_of(name: str) -> str:
    """Accept a keyword ("PatientID") or a tag ("0010,0020", "00100020") and return the keyword.

    Raises
    ------
    ValueError
        If ``name`` is neither a known keyword nor a tag in the DICOM dictionary.
    """
    text = name.strip()
    if tag_for_keyword(text) is not None:
        return text
    hex_digits = text.replace(",", "").replace("(", "").replace(")", "").replace("|", "")
    if len(hex_digits) == 8:
        try:
            keyword = keyword_for_tag(int(hex_digits, 16))
        except ValueError:
            keyword = ""
        if keyword:
            return keyword
    raise ValueError(f"Unknown DICOM tag {name!r}")
