"""Read DICOM headers without pixel data.

Only the tags :mod:`workbench.io` needs are parsed (``specific_tags``), and reading stops at
(7FE0,0010) Pixel Data. While the file is open we also note where the pixel data value starts
and how long it claims to be, which lets us reject truncated files before any decoding and
lets native (uncompressed) frames be read straight from their byte offset.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError as _PydicomInvalidDicomError
from pydicom.pixels.utils import get_expected_length
from pydicom.tag import Tag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from workbench.io.errors import InvalidDicomError, PixelDataError, blaming
from workbench.io.sources import DicomFile

#: Tags read by :func:`read_header` (everything the catalog and series building use).
HEADER_KEYWORDS: tuple[str, ...] = (
    # patient / study / series
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "SeriesDate",
    "SeriesTime",
    "Modality",
    "BodyPartExamined",
    "Manufacturer",
    "ManufacturerModelName",
    "FrameOfReferenceUID",
    "PatientPosition",
    # instance
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "AcquisitionNumber",
    "ImageType",
    "ContentDate",
    "ContentTime",
    "AcquisitionDateTime",
    "AcquisitionTime",
    "NumberOfFrames",
    # geometry
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "SliceLocation",
    "GantryDetectorTilt",
    # image pixel module
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    # modality and VOI LUT, presentation
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "ModalityLUTSequence",
    "WindowCenter",
    "WindowWidth",
    "WindowCenterWidthExplanation",
    "VOILUTFunction",
    "PresentationLUTShape",
    "LossyImageCompression",
    # enhanced multi-frame
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
)
_SPECIFIC_TAGS = [Tag(keyword) for keyword in HEADER_KEYWORDS]

_PIXEL_TAGS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}
_UNDEFINED_LENGTH = 0xFFFFFFFF
_HEADER_CHUNK = 64 * 1024


@dataclass
class InstanceHeader:
    """What one file's header says, plus where its pixel data lives.

    Attributes
    ----------
    file : DicomFile
        The file read.
    dataset : pydicom.dataset.Dataset
        The header elements in :data:`HEADER_KEYWORDS` that the file has.
    transfer_syntax : pydicom.uid.UID
        From the file meta, or inferred from the encoding when the file has none.
    has_file_meta : bool
        Whether the file has a Part 10 file meta header (``DICM`` at offset 128).
    pixel_keyword : str or None
        ``"PixelData"`` (or a float variant) when the file has pixel data, else ``None``.
    pixel_offset : int or None
        Byte offset of the pixel data value, when known.
    pixel_length : int or None
        Declared length of the pixel data value; ``None`` for encapsulated (undefined
        length) data or when unknown.
    """

    file: DicomFile
    dataset: Dataset
    transfer_syntax: UID
    has_file_meta: bool
    pixel_keyword: str | None
    pixel_offset: int | None
    pixel_length: int | None

    @property
    def number_of_frames(self) -> int:
        value = self.dataset.get("NumberOfFrames")
        try:
            return max(int(value), 1) if value not in (None, "") else 1
        except (TypeError, ValueError):
            return 1

    def get(self, keyword: str, default=None):
        """Value of ``keyword`` in the header, or ``default`` when absent or empty."""
        value = self.dataset.get(keyword)
        return default if value is None or value == "" else value


def read_header(
    file: DicomFile, *, full: bool = False, check_pixels: bool = True
) -> InstanceHeader:
    """Read one file's header, never its pixel data.

    Files without a file meta header (raw datasets, usually Implicit VR Little Endian) are
    read when their first bytes look like a DICOM data set.

    Parameters
    ----------
    file : DicomFile
        The file to read.
    full : bool
        Read every element before the pixel data, not only :data:`HEADER_KEYWORDS`.
    check_pixels : bool
        Check that the pixel data the header announces is really in the file.

    Raises
    ------
    InvalidDicomError
        The file is not DICOM or its header is damaged.
    PixelDataError
        ``check_pixels`` is set and the file is shorter than its pixel data needs.
    """
    tags = None if full else _SPECIFIC_TAGS
    try:
        with file.open() as fp:
            # Parsing from memory is much cheaper than pydicom's many small reads and tells on
            # a file; most headers fit in the first chunk. When one does not, parse the file.
            head = fp.read(_HEADER_CHUNK)
            whole_file = len(head) < _HEADER_CHUNK
            parsed = None
            try:
                parsed = _parse(io.BytesIO(head), file, tags)
            except (InvalidDicomError, PixelDataError):
                raise
            except Exception:
                if whole_file:
                    raise
            if not whole_file and (
                parsed is None or parsed[2] is None or parsed[1] == DeflatedExplicitVRLittleEndian
            ):
                fp.seek(0)
                parsed = _parse(fp, file, tags)
            dataset, transfer_syntax, pixel_keyword, offset, length, has_meta = parsed
            # pydicom keeps the file-like it read from; for our in-memory chunk that would
            # pin 64 kB per header (GBs over a large series).
            dataset.buffer = None
    except (InvalidDicomError, PixelDataError):
        raise
    except OSError as exc:
        raise InvalidDicomError(f"cannot read the file: {exc}", file) from exc
    except Exception as exc:  # pydicom raises many kinds on damaged headers
        raise InvalidDicomError(f"damaged or truncated DICOM header ({exc})", file) from exc
    if "SOPInstanceUID" not in dataset and "SOPClassUID" not in dataset:
        raise InvalidDicomError("not a DICOM instance: no (0008,0018) SOP Instance UID", file)
    header = InstanceHeader(file, dataset, transfer_syntax, has_meta, pixel_keyword, offset, length)
    if check_pixels:
        with blaming(file):
            check_pixel_length(header)
    return header


def _parse(fp: BinaryIO, file: DicomFile, tags) -> tuple:
    """(dataset, transfer syntax, pixel keyword, pixel offset, pixel length, has meta)."""
    dataset, has_meta = _read_dataset(fp, file, tags)
    transfer_syntax = _transfer_syntax(dataset, has_meta)
    keyword, offset, length = _locate_pixel_data(fp, dataset, transfer_syntax)
    return dataset, transfer_syntax, keyword, offset, length, has_meta


def _read_dataset(fp: BinaryIO, file: DicomFile, tags) -> tuple[Dataset, bool]:
    try:
        dataset = pydicom.dcmread(fp, stop_before_pixels=True, specific_tags=tags)
        return dataset, True
    except _PydicomInvalidDicomError:
        pass
    fp.seek(0)
    if not _looks_like_raw_dataset(fp.read(8)):
        raise InvalidDicomError(
            "not a DICOM file: no 'DICM' marker at offset 128 and the data does not start "
            "like a DICOM data set",
            file,
        )
    fp.seek(0)
    dataset = pydicom.dcmread(fp, stop_before_pixels=True, specific_tags=tags, force=True)
    return dataset, False


def _looks_like_raw_dataset(first: bytes) -> bool:
    """Whether bytes start like a data set without preamble (group 0002, 0008 or 0010...)."""
    if len(first) < 8:
        return False
    for order in "<>":
        group, element = struct.unpack(f"{order}HH", first[:4])
        if group in (0x0002, 0x0008) and element < 0x0100:
            return True
    return False


def _transfer_syntax(dataset: Dataset, has_meta: bool) -> UID:
    uid = dataset.file_meta.get("TransferSyntaxUID") if dataset.file_meta else None
    if uid:
        return UID(uid)
    implicit, little = dataset.original_encoding
    if implicit or implicit is None:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _locate_pixel_data(
    fp: BinaryIO, dataset: Dataset, transfer_syntax: UID
) -> tuple[str | None, int | None, int | None]:
    """Read the pixel data element's tag and length at the current position."""
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        # The reader inflated the stream elsewhere; positions in fp mean nothing.
        return ("PixelData" if "Rows" in dataset else None), None, None
    start = fp.tell()
    head = fp.read(12)
    if len(head) < 8:
        return None, None, None
    order = "<" if transfer_syntax.is_little_endian else ">"
    group, element = struct.unpack(f"{order}HH", head[:4])
    keyword = _PIXEL_TAGS.get((group << 16) | element)
    if keyword is None:
        return None, None, None
    if transfer_syntax.is_implicit_VR:
        (length,) = struct.unpack(f"{order}L", head[4:8])
        offset = start + 8
    else:
        if len(head) < 12:
            raise PixelDataError("file ends inside the (7FE0,0010) Pixel Data element header")
        (length,) = struct.unpack(f"{order}L", head[8:12])
        offset = start + 12
    return keyword, offset, (None if length == _UNDEFINED_LENGTH else length)


def expected_pixel_bytes(header: InstanceHeader) -> int | None:
    """Bytes of native pixel data the image needs, or ``None`` if it cannot be computed."""
    ds = header.dataset
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        samples, bits = int(ds.get("SamplesPerPixel") or 1), int(ds.BitsAllocated)
        photometric = str(ds.get("PhotometricInterpretation", ""))
    except Exception:
        return None
    if bits % 8 or photometric.endswith("_422"):
        # Bit-packed and sub-sampled layouts have their own rules; pydicom knows them.
        try:
            return int(get_expected_length(ds, "bytes"))
        except Exception:
            return None
    return rows * columns * samples * (bits // 8) * header.number_of_frames


def check_pixel_length(header: InstanceHeader) -> None:
    """Raise if the file is shorter than its pixel data, or native data is too short.

    Raises
    ------
    PixelDataError
        An image without pixel data (cut short), a file that ends before its declared pixel
        data does, or native pixel data holding fewer bytes than (0028,0010) Rows x
        (0028,0011) Columns x samples x frames need.
    """
    if header.pixel_keyword is None:
        sop_class = header.dataset.get("SOPClassUID")
        sop_name = str(getattr(sop_class, "name", "") or "")
        # Pixel Data is Type 1 in every image IOD: an image without it was cut short.
        if "Rows" in header.dataset or sop_name.endswith("Image Storage"):
            raise PixelDataError(
                f"no (7FE0,0010) Pixel Data although the file is a {sop_name or 'image'}: "
                "the file is truncated or incomplete",
                header.file,
            )
        return
    missing = [k for k in ("Rows", "Columns") if header.dataset.get(k) in (None, "")]
    if missing:
        raise PixelDataError(
            f"pixel data without {' and '.join(missing)}: the image size is unknown",
            header.file,
        )
    if header.pixel_offset is None:
        return
    size = header.file.size()
    if header.pixel_length is not None and header.pixel_offset + header.pixel_length > size:
        raise PixelDataError(
            f"file is truncated: (7FE0,0010) Pixel Data declares {header.pixel_length} bytes "
            f"but only {size - header.pixel_offset} follow",
            header.file,
        )
    if header.pixel_length is None or header.transfer_syntax.is_compressed:
        return
    if header.pixel_keyword != "PixelData":
        return
    needed = expected_pixel_bytes(header)
    if needed is not None and header.pixel_length < needed:
        ds = header.dataset
        raise PixelDataError(
            f"(7FE0,0010) Pixel Data holds {header.pixel_length} bytes but "
            f"{ds.get('Rows')} rows x {ds.get('Columns')} columns x "
            f"{ds.get('SamplesPerPixel', 1)} samples x {header.number_of_frames} frames at "
            f"{ds.get('BitsAllocated')} bits need {needed}",
            header.file,
        )
