"""New DICOM instances from JSON tags and a picture or a PDF, as Orthanc's
``/tools/create-dicom`` makes them.

A PNG or JPEG becomes a Secondary Capture image (its pixels decoded, stored uncompressed), a
PDF an Encapsulated PDF, tags alone a Raw Data object. UIDs, dates and the character set are
filled in as Orthanc does, the modules' type 2 attributes are added empty and their type 1
ones given defaults, so that what is made validates (dciodvfy) where Orthanc's output names
no SOP class at all. The REST route (:mod:`workbench.pacs.rest.creation`) reads the request
and the parent; this module only builds data sets.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from pydicom.datadict import dictionary_VR, private_dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import (
    EncapsulatedPDFStorage,
    ExplicitVRLittleEndian,
    RawDataStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from workbench import __version__

from .dicomjson import dataset_from_json
from .errors import BadRequestError, PacsError, UnsupportedMediaTypeError

#: Media types of ``Content`` and what each becomes.
IMAGE_TYPES = frozenset({"image/png", "image/jpeg"})
PDF_TYPE = "application/pdf"
#: The UIDs only ``Force`` lets a request set (Orthanc: they tie the instance to others).
FORCED_ONLY = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")

_DATA_URI = re.compile(r"data:(?P<mime>[^;,]*)(?P<params>(;[^;,]*)*?)(?P<base64>;base64)?,",
                       re.IGNORECASE)  # fmt: skip


class CreateError(BadRequestError):
    """A request that cannot become a DICOM instance; ``orthanc_status`` is Orthanc's code
    for the same refusal."""

    def __init__(self, message: str, orthanc_status: int = 8) -> None:
        super().__init__(message)
        self.orthanc_status = orthanc_status


class OverrideError(CreateError):
    """A tag that the parent resource (or the instance's identity) fixes."""

    def __init__(self, keyword: str, why: str) -> None:
        super().__init__(f"{keyword}: {why}", orthanc_status=2020)


class UnknownParentError(PacsError):
    """``Parent`` names no patient, study or series (Orthanc: 400)."""

    http_status = 400
    orthanc_status = 2024


def decode_data_uri(text: str, what: str) -> tuple[str, bytes]:
    """The media type and bytes of a ``data:`` URI (base64 or percent-encoded)."""
    match = _DATA_URI.match(text) if isinstance(text, str) else None
    if match is None:
        raise CreateError(f"{what} must be a data URI (data:<media type>;base64,<data>)", 15)
    payload = text[match.end() :]
    try:
        if match.group("base64"):
            data = base64.b64decode(payload, validate=False)
        else:
            from urllib.parse import unquote_to_bytes

            data = unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise CreateError(f"{what}: the data URI cannot be decoded ({exc})", 15) from exc
    return match.group("mime").strip().lower(), data


@dataclass(frozen=True)
class Options:
    """How a request asks its tags to be read."""

    force: bool = False
    private_creator: str | None = None
    interpret_binary: bool = True


def tags_dataset(tags: dict, options: Options) -> Dataset:
    """The attributes of a request's ``Tags``: keywords or ``gggg,eeee`` to text, sequences as
    lists of such objects, private tags under ``PrivateCreator``, data URIs as binary values
    (``InterpretBinaryTags``)."""
    if not isinstance(tags, dict):
        raise CreateError('"Tags" must be a JSON object of DICOM tags')
    ds = Dataset()
    plain: dict = {}
    for name, value in tags.items():
        tag = _private_tag(name)
        if tag is not None:
            _add_private(ds, tag, name, value, options)
        elif options.interpret_binary and isinstance(value, str) and value.startswith("data:"):
            keyword_tag = _public_tag(name)
            vr = dictionary_VR(keyword_tag).split(" or ")[0]
            ds.add_new(keyword_tag, vr, decode_data_uri(value, name)[1])
        else:
            plain[name] = value
    try:
        ds.update(dataset_from_json(plain))
    except ValueError as exc:
        message = str(exc)
        code = 27 if message.startswith("Unknown DICOM tag") else 5
        raise CreateError(message, code) from exc
    if not options.force:
        for keyword in FORCED_ONLY:
            if keyword in ds:
                raise OverrideError(keyword, '"Force": true is needed to choose this UID')
    return ds


def _public_tag(name: str) -> Tag:
    from .tags import keyword_of

    try:
        return Tag(keyword_of(name))
    except ValueError as exc:
        raise CreateError(str(exc), 27) from exc


def _private_tag(name: str) -> Tag | None:
    digits = name.replace(",", "").replace("(", "").replace(")", "").strip()
    if len(digits) != 8 or not re.fullmatch(r"[0-9a-fA-F]{8}", digits):
        return None
    tag = Tag(int(digits, 16))
    return tag if tag.is_private else None


def _add_private(ds: Dataset, tag: Tag, name: str, value: object, options: Options) -> None:
    if tag.is_private_creator:
        ds.add_new(tag, "LO", value)
        return
    creator = options.private_creator
    if not creator:
        raise CreateError(f'{name} is a private tag: give its "PrivateCreator"')
    block = (tag.group << 16) | (tag.element >> 8)
    ds.add_new(block, "LO", creator)
    try:
        vr = private_dictionary_VR(tag, creator)
    except KeyError:
        vr = "UN"
    if isinstance(value, str) and options.interpret_binary and value.startswith("data:"):
        payload: object = decode_data_uri(value, name)[1]
        if len(payload) % 2:
            payload += b"\0"
    elif isinstance(value, str):
        # Unknown to the dictionary: kept as the text's bytes, padded to an even length.
        payload = value.encode("utf-8") if vr == "UN" else value
        if vr == "UN" and len(payload) % 2:
            payload += b" "
    else:
        raise CreateError(f"{name} must be given as text, not {type(value).__name__}", 5)
    ds.add_new(tag, vr.split(" or ")[0], payload)


def image_pixels(data: bytes, mime: str) -> dict[str, object]:
    """The Image Pixel module of a PNG or JPEG: 8-bit gray, 16-bit gray or RGB (alpha and
    palettes are resolved as a viewer would show the picture)."""
    from PIL import Image, UnidentifiedImageError

    try:
        picture = Image.open(io.BytesIO(data))
        picture.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise CreateError(f"The {mime} content cannot be decoded ({exc})", 15) from exc
    if picture.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(picture)
        if array.min() < 0 or array.max() > 65535:
            raise CreateError("The picture's values do not fit in 16 bits", 15)
        array, bits, photometric = array.astype("<u2"), 16, "MONOCHROME2"
    elif picture.mode in ("1", "L", "LA"):
        array, bits, photometric = np.asarray(picture.convert("L")), 8, "MONOCHROME2"
    else:
        array, bits, photometric = np.asarray(picture.convert("RGB")), 8, "RGB"
    module: dict[str, object] = {
        "SamplesPerPixel": 3 if photometric == "RGB" else 1,
        "PhotometricInterpretation": photometric,
        "Rows": array.shape[0],
        "Columns": array.shape[1],
        "BitsAllocated": bits,
        "BitsStored": bits,
        "HighBit": bits - 1,
        "PixelRepresentation": 0,
    }
    if photometric == "RGB":
        module["PlanarConfiguration"] = 0
    module["PixelData"] = np.ascontiguousarray(array).tobytes()
    return module


def _now_texts(now: datetime) -> tuple[str, str]:
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")


def _set_default(ds: Dataset, keyword: str, value: object) -> None:
    if keyword not in ds:
        setattr(ds, keyword, value)


#: Attributes of every object made: type 2 ones empty unless given (Patient, General Study,
#: General Series, General Equipment).
TYPE_2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
          "ReferringPhysicianName", "StudyID", "AccessionNumber", "Manufacturer")  # fmt: skip
#: This software as the creator of Raw Data objects (the same UID for the same version).
CREATOR_VERSION_UID = generate_uid(entropy_srcs=["workbench", __version__])


def build_instance(tags: Dataset, content: tuple[str, bytes] | None, *,
                   inherited: Dataset | None = None, now: datetime | None = None,
                   position: tuple[int, int] | None = None) -> Dataset:  # fmt: skip
    """A new instance: ``inherited`` (the parent's modules), then ``tags`` over it, then the
    content and what the IOD needs that neither gave.

    Parameters
    ----------
    tags : Dataset
        The request's attributes (:func:`tags_dataset`).
    content : (media type, bytes), optional
        A PNG/JPEG (Secondary Capture) or a PDF (Encapsulated PDF); none: Raw Data.
    inherited : Dataset, optional
        The patient/study/series attributes of the parent resource.
    position : (number, count), optional
        The instance's number and how many the new series holds (a ``Content`` list).
    """
    now = now or datetime.now()
    ds = Dataset()
    if inherited is not None:
        ds.update(inherited)
    ds.update(tags)
    today, time = _now_texts(now)
    if content is None:
        sop_class = RawDataStorage
    elif content[0] in IMAGE_TYPES:
        sop_class = SecondaryCaptureImageStorage
    elif content[0] == PDF_TYPE:
        sop_class = EncapsulatedPDFStorage
    else:
        raise UnsupportedMediaTypeError(
            f"Content of type {content[0] or 'unknown'!r}: give a PNG, a JPEG or a PDF "
            "(image/png, image/jpeg, application/pdf)")  # fmt: skip
    _set_default(ds, "SOPClassUID", sop_class)
    for keyword in FORCED_ONLY:
        _set_default(ds, keyword, generate_uid())
    for prefix in ("Study", "Series", "Content", "InstanceCreation"):
        _set_default(ds, f"{prefix}Date", today)
        _set_default(ds, f"{prefix}Time", time)
    for keyword in TYPE_2:
        _set_default(ds, keyword, "")
    _set_default(ds, "SeriesNumber", "1")
    if position is not None:
        # As Orthanc numbers the instances of a Content list, whatever their tags say.
        ds.InstanceNumber = str(position[0])
        ds.ImagesInAcquisition = str(position[1])
        ds.NumberOfTemporalPositions = "1"
    _set_default(ds, "InstanceNumber", "1")
    if content is not None and content[0] in IMAGE_TYPES:
        _set_default(ds, "AcquisitionDate", today)
        _set_default(ds, "AcquisitionTime", time)
        _set_default(ds, "Modality", "OT")
        _set_default(ds, "ConversionType", "WSD")
        _set_default(ds, "PatientOrientation", "")
        _set_default(ds, "Laterality", "")  # type 2C: a picture's body part is unknown
        for keyword, value in image_pixels(content[1], content[0]).items():
            setattr(ds, keyword, value)
        ds["PixelData"].VR = "OW" if ds.BitsAllocated == 16 else "OB"
    elif content is not None:
        _add_pdf(ds, content[1])
    else:
        _set_default(ds, "Modality", "OT")
        _set_default(ds, "Laterality", "")
        _set_default(ds, "AcquisitionContextSequence", Sequence())
        _set_default(ds, "CreatorVersionUID", CREATOR_VERSION_UID)
    _set_character_set(ds)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    return ds


def _add_pdf(ds: Dataset, data: bytes) -> None:
    if not data.startswith(b"%PDF"):
        raise CreateError("The application/pdf content is not a PDF (no %PDF header)", 15)
    _set_default(ds, "Modality", "OT")
    _set_default(ds, "ConversionType", "WSD")
    _set_default(ds, "AcquisitionDateTime", "")
    # Whether the document identifies the patient cannot be told: say it may.
    _set_default(ds, "BurnedInAnnotation", "YES")
    _set_default(ds, "DocumentTitle", "")
    _set_default(ds, "ConceptNameCodeSequence", Sequence())
    ds.MIMETypeOfEncapsulatedDocument = PDF_TYPE
    ds.EncapsulatedDocumentLength = len(data)
    ds.EncapsulatedDocument = data + (b"\0" if len(data) % 2 else b"")


def _texts(ds: Dataset) -> Iterable[str]:
    for elem in ds.iterall():
        if elem.VR in ("PN", "LO", "SH", "ST", "LT", "UT", "UC") and elem.value:
            values = elem.value if elem.VM > 1 else [elem.value]
            yield from (str(value) for value in values)


def _set_character_set(ds: Dataset) -> None:
    """Latin-1 (Orthanc's default) when every text fits in it, else UTF-8; a character set
    the request gave is kept."""
    if "SpecificCharacterSet" in ds:
        return
    try:
        for text in _texts(ds):
            text.encode("latin-1")
        ds.SpecificCharacterSet = "ISO_IR 100"
    except UnicodeEncodeError:
        ds.SpecificCharacterSet = "ISO_IR 192"


def instance_bytes(ds: Dataset) -> bytes:
    """The Part-10 file of a built instance."""
    buffer = io.BytesIO()
    try:
        ds.save_as(buffer, enforce_file_format=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise CreateError(f"The instance cannot be written: {exc}", 2000) from exc
    return buffer.getvalue()
