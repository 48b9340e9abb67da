"""Read DICOM headers without pixel data.

Only the tags asked for are kept (``specific_tags``: what the catalog shows, or the fewer
a series needs from each file), and reading stops at (7FE0,0010) Pixel Data. While the file
is open we also note where the pixel data value starts and how long it claims to be, which
lets us reject truncated files before any decoding and lets native (uncompressed) frames be
read straight from their byte offset.

Scanning a series is dominated by pydicom walking element headers, so a standard Part 10
file takes a shorter road (see :func:`_read_part10_header`): pydicom's element generator
reads the file meta and then the data set only up to the end of group (0028) (every tag a
single-frame image needs lies there), and native pixel data is found where it must then be,
at the end of the file, instead of walking the (often long) private groups in between.
Anything unusual is read the general way, as before.

Opening a series then reads a dozen values per file; :meth:`InstanceHeader.get`, ``text``
and ``floats`` convert them from the raw elements with pydicom's value converters, which
costs a fraction of the data set's own conversion and gives the same values. The pydicom
``Dataset`` over the elements is only made when something asks for it.
"""

from __future__ import annotations

import codecs
import datetime
import functools
import io
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

import pydicom
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError as _PydicomInvalidDicomError
from pydicom.filereader import data_element_generator
from pydicom.pixels.utils import get_expected_length
from pydicom.tag import Tag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pydicom.values import convert_value

from workbench.io.errors import InvalidDicomError, PixelDataError, blaming
from workbench.io.sources import DicomFile
from workbench.values import LEFT_TO_DATASET, PLAIN_VRS, raw_element_value, raw_vr

#: What building a series reads from every file (the study and patient attributes come from
#: the series' first file, read in full). Each tag kept costs a little on every file, and a
#: series has hundreds.
SERIES_KEYWORDS: tuple[str, ...] = (
    # instance and series
    "SOPClassUID",
    "SOPInstanceUID",
    "Modality",
    "SeriesInstanceUID",
    "SeriesDescription",
    "InstanceNumber",
    "NumberOfFrames",
    # geometry
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "SliceThickness",
    # image pixel module
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    # modality and VOI LUT
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    # enhanced multi-frame
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
)
#: Tags read by :func:`read_header` by default: what the catalog shows, and everything a
#: series needs.
HEADER_KEYWORDS: tuple[str, ...] = (
    *SERIES_KEYWORDS,
    # patient, study and series
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
    "SeriesNumber",
    "SeriesDate",
    "SeriesTime",
    "BodyPartExamined",
    "Manufacturer",
    "ManufacturerModelName",
    "FrameOfReferenceUID",
    "PatientPosition",
    # instance
    "AcquisitionNumber",
    "ImageType",
    "ContentDate",
    "ContentTime",
    "AcquisitionDateTime",
    "AcquisitionTime",
    # geometry
    "SpacingBetweenSlices",
    "SliceLocation",
    "GantryDetectorTilt",
    # pixels, LUTs and presentation
    "HighBit",
    "ModalityLUTSequence",
    "WindowCenterWidthExplanation",
    "VOILUTFunction",
    "PresentationLUTShape",
    "LossyImageCompression",
)
_SPECIFIC_TAGS = [Tag(keyword) for keyword in HEADER_KEYWORDS]
# How pydicom decodes UIDs and code strings, under the codec's own name (which Python
# looks up faster than pydicom's alias for it).
_DEFAULT_CHARSET = codecs.lookup(default_encoding).name
_KEYWORD_TAGS = dict(zip(HEADER_KEYWORDS, (int(tag) for tag in _SPECIFIC_TAGS), strict=True))


@dataclass(frozen=True)
class _TagSelection:
    """The tags of a keyword selection, in the forms the readers take them."""

    tags: list  # pydicom Tags, for dcmread
    # Plain ints: pydicom tests every element against these, and comparing ints stays in
    # C while Tag comparisons are Python calls.
    ints: list[int]
    # Beyond group (0028), read by walking on to the pixel data.
    later: list[int]
    # Whether a single-frame image's header may stop after group (0028), skipping `later`.
    stops_early: bool


# Tags beyond group (0028) that a single-frame image's header may go without: the functional
# groups exist only in multi-frame objects, and a series takes (2050,0020) Presentation LUT
# Shape from its first file's full header.
_SINGLE_FRAME_SKIPS = frozenset({0x52009229, 0x52009230, 0x20500020})


@functools.cache
def _selection(keywords: tuple[str, ...], stop_early: bool = True) -> _TagSelection:
    tags = [Tag(keyword) for keyword in keywords]
    ints = [int(tag) for tag in tags]
    later = [tag for tag in ints if tag > 0x0028FFFF]
    return _TagSelection(tags, ints, later, stop_early and set(later) <= _SINGLE_FRAME_SKIPS)


_NUMBER_OF_FRAMES = 0x00280008
_SOP_CLASS_UID, _SOP_INSTANCE_UID = 0x00080016, 0x00080018
_ROWS = 0x00280010
_TRANSFER_SYNTAX_UID = 0x00020010

_PIXEL_TAGS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}
_UNDEFINED_LENGTH = 0xFFFFFFFF
_HEADER_CHUNK = 64 * 1024
# The groups up to (0028) of an image header take a few kB; bigger headers (enhanced
# multi-frame, long private groups before the pixel data) are read the general way.
_PART10_CHUNK = 16 * 1024
# At offset 128 of a standard file: the magic, then (0002,0000) File Meta Information Group
# Length in explicit VR little endian.
_PART10_MAGIC = b"DICM\x02\x00\x00\x00UL\x04\x00"
# (FFFE,E0DD) Sequence Delimitation Item: the end of encapsulated pixel data.
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_ITEM = (0xFFFE, 0xE000)  # (FFFE,E000) Item: one fragment
_NATIVE_SYNTAXES = {ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian}


@dataclass
class InstanceHeader:
    """What one file's header says, plus where its pixel data lives.

    Attributes
    ----------
    file : DicomFile
        The file read.
    elements : dict
        The header's elements as read (pydicom's raw elements, and ``DataElement`` for
        undefined-length sequences) by tag as a plain ``int``: looking one up then never
        calls pydicom's ``Tag.__eq__``. Only the selected keywords (:data:`HEADER_KEYWORDS`
        unless told otherwise) that the file has.
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
    file_size : int or None
        Size of the file in bytes, when it was learned while reading the header.
    read_encoding : tuple of bool
        (implicit VR, little endian) of the data set as read.

    Notes
    -----
    For a single-frame image the header stops after group (0028), so (2050,0020)
    Presentation LUT Shape is only in headers read with ``full=True``.
    """

    file: DicomFile
    elements: dict
    transfer_syntax: UID
    has_file_meta: bool
    pixel_keyword: str | None
    pixel_offset: int | None
    pixel_length: int | None
    file_size: int | None = None
    read_encoding: tuple[bool, bool] = (False, True)
    # The pydicom data set over `elements`, made when first asked for: most headers of a
    # series are only ever read through get/text/floats.
    _dataset: Dataset | None = field(default=None, repr=False, compare=False)
    # Values read through get() and text(), by keyword.
    _values: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _texts: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _character_set: str | list[str] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @classmethod
    def from_dataset(
        cls,
        file: DicomFile,
        dataset: Dataset,
        transfer_syntax: UID,
        has_file_meta: bool,
        pixel_keyword: str | None,
        pixel_offset: int | None,
        pixel_length: int | None,
    ) -> InstanceHeader:
        """The header of a data set pydicom read in full."""
        header = cls(
            file,
            {int(tag): element for tag, element in dataset.items()},
            transfer_syntax,
            has_file_meta,
            pixel_keyword,
            pixel_offset,
            pixel_length,
            read_encoding=dataset.original_encoding,
        )
        header._dataset = dataset
        return header

    @property
    def dataset(self) -> Dataset:
        """The header as a pydicom ``Dataset``, over a copy of :attr:`elements`."""
        if self._dataset is None:
            dataset = Dataset({Tag(tag): element for tag, element in self.elements.items()})
            dataset.set_original_encoding(*self.read_encoding, self.character_set())
            self._dataset = dataset
        return self._dataset

    def character_set(self) -> str | list[str]:
        """The encodings of text values, from (0008,0005) Specific Character Set."""
        if self._character_set is None:
            if self._dataset is not None:  # read by pydicom, which worked it out
                self._character_set = self._dataset.original_character_set
            else:
                self._character_set = convert_encodings(self.get("SpecificCharacterSet"))
        return self._character_set

    @property
    def number_of_frames(self) -> int:
        value = self.get("NumberOfFrames")
        try:
            return max(int(value), 1) if value is not None else 1
        except (TypeError, ValueError):
            return 1

    def get(self, keyword: str, default=None):
        """Value of ``keyword`` in the header, or ``default`` when absent or empty.

        The value is the one ``dataset[keyword].value`` gives. Numbers, UIDs, dates, code
        strings and text not yet read are converted by pydicom's value converter and kept
        here, without storing a converted element in the data set: opening a series reads a
        dozen such values per file, and the data set's own conversion (element objects,
        validation, hooks) would cost several times more than reading the header did.
        """
        value = self._values.get(keyword, _UNREAD)
        if value is _UNREAD:
            value = self._values[keyword] = self._convert(keyword)
        return default if value is None or value == "" else value

    def floats(self, keyword: str) -> tuple[float, ...] | None:
        """The values of a numeric element as floats, or ``None`` when absent or empty.

        Decimal and integer strings are read with :func:`float`, which is what pydicom's
        ``DSfloat`` and ``IS`` do with each value after splitting at ``\\``; a value
        :func:`float` does not take is left to :meth:`get`.
        """
        _, element, vr = self._element(keyword)
        if vr in ("DS", "IS") and element.value is not None:
            items = element.value.rstrip(b" \x00").split(b"\\")
            try:
                return tuple(map(float, items)) if items != [b""] else None
            except ValueError:
                pass
        value = self.get(keyword)
        if value is None:
            return None
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            value = [value]
        try:
            return tuple(float(v) for v in value)
        except (TypeError, ValueError):
            return None

    def text(self, keyword: str, default: str = "") -> str:
        """``str`` of the value of ``keyword``, or ``default`` when absent or empty.

        A single UID or code string is decoded as pydicom's converters do (default
        character repertoire, trailing padding and nulls removed; a UID also loses leading
        spaces), without building a ``UID``; anything else goes through :meth:`get`.
        """
        text = self._texts.get(keyword)
        if text is None:
            text = self._texts[keyword] = self._convert_text(keyword)
        return text or default

    def _convert_text(self, keyword: str) -> str:
        _, element, vr = self._element(keyword)
        if vr in ("UI", "CS") and element.value is not None:
            text = element.value.decode(_DEFAULT_CHARSET).rstrip(" \x00")
            if "\\" not in text:  # one value
                return text.strip() if vr == "UI" else text
        value = self.get(keyword)
        return "" if value is None else str(value)

    def _convert(self, keyword: str):
        """The value of ``keyword`` (``None`` when absent), as the data set would give it."""
        tag, element, vr = self._element(keyword)
        if element is None:
            return None
        if vr is None:  # converted already
            value = element.value
        elif vr in PLAIN_VRS:
            value = _plain_value(vr, element)
        else:
            value = raw_element_value(element, vr, self.character_set)
        return self.dataset[tag].value if value is LEFT_TO_DATASET else value

    def _element(self, keyword: str) -> tuple[int, object, str | None]:
        """(tag, element or ``None``, VR when the element is not converted yet)."""
        tag = _KEYWORD_TAGS.get(keyword) or tag_for_keyword(keyword)
        if tag is None:  # not a keyword: absent, as for Dataset.get
            return 0, None, None
        element = self.elements.get(tag)
        if isinstance(element, RawDataElement):
            return tag, element, raw_vr(tag, element)
        return tag, element, None


_UNREAD = object()
# Values of plain VRs (numbers, codes, UIDs, dates) converted so far, by VR, raw bytes and
# byte order: the files of a series repeat most of theirs (size, spacing, orientation,
# rescale, windows), and looking one up costs a fraction of converting it again. Only
# immutable values are kept, so that no header can change another's; the pydicom settings
# that change what a number converts to are part of the key.
_PLAIN_VALUES: dict[tuple, object] = {}
_PLAIN_VALUES_KEPT = 4096
_IMMUTABLE = (int, float, str, bytes, datetime.date, datetime.time)


def _plain_value(vr: str, element: RawDataElement):
    """The value of a raw element of a VR in :data:`~workbench.values.PLAIN_VRS`."""
    key = (
        vr,
        element.value,
        element.is_little_endian,
        pydicom.config.use_DS_decimal,
        pydicom.config.use_DS_numpy,
        pydicom.config.use_IS_numpy,
    )
    value = _PLAIN_VALUES.get(key, _UNREAD)
    if value is _UNREAD:
        value = raw_element_value(element, vr, default_encoding)  # no text: no character set
        if isinstance(value, _IMMUTABLE):
            if len(_PLAIN_VALUES) >= _PLAIN_VALUES_KEPT:
                _PLAIN_VALUES.clear()
            _PLAIN_VALUES[key] = value
    return value


def read_header(
    file: DicomFile,
    *,
    full: bool = False,
    check_pixels: bool = True,
    check_truncation: bool = False,
    keywords: tuple[str, ...] = HEADER_KEYWORDS,
    every_keyword: bool = False,
) -> InstanceHeader:
    """Read one file's header, never its pixel data.

    Files without a file meta header (raw datasets, usually Implicit VR Little Endian) are
    read when their first bytes look like a DICOM data set.

    Parameters
    ----------
    file : DicomFile
        The file to read.
    full : bool
        Read every element before the pixel data, not only ``keywords``.
    check_pixels : bool
        Check that the pixel data the header announces is really in the file
        (:func:`truncation`) and holds what the image needs (:func:`check_pixel_length`).
    check_truncation : bool
        Only check that the file does not end inside its pixel data (implied by
        ``check_pixels``).
    keywords : tuple of str
        The elements to keep: :data:`HEADER_KEYWORDS` (what the catalog shows), or
        :data:`SERIES_KEYWORDS` (what building a series needs from each file).
    every_keyword : bool
        Read every one of ``keywords`` that the file has, even in a single-frame image,
        whose header is otherwise read only up to group (0028) (see
        :class:`InstanceHeader`): a file shown on its own needs its (2050,0020)
        Presentation LUT Shape.

    Raises
    ------
    InvalidDicomError
        The file is not DICOM or its header is damaged.
    PixelDataError
        ``check_pixels`` or ``check_truncation`` is set and the file is shorter than its pixel
        data needs.
    """
    checked = False  # whether the pixel data is known to fit the image
    selection = _selection(keywords, not every_keyword)
    try:
        with file.open() as fp:
            header = None if full else _read_part10_header(fp, file, selection)
            if header is None:
                fp.seek(0)
                header = _read_any_header(fp, file, None if full else selection.tags)
            else:
                checked = header.file_size is not None
            cut_short = truncation(header, fp) if check_pixels or check_truncation else None
    except (InvalidDicomError, PixelDataError):
        raise
    except OSError as exc:
        raise InvalidDicomError(f"cannot read the file: {exc}", file) from exc
    except Exception as exc:  # pydicom raises many kinds on damaged headers
        raise InvalidDicomError(f"damaged or truncated DICOM header ({exc})", file) from exc
    if _SOP_INSTANCE_UID not in header.elements and _SOP_CLASS_UID not in header.elements:
        raise InvalidDicomError("not a DICOM instance: no (0008,0018) SOP Instance UID", file)
    if cut_short:
        raise PixelDataError(cut_short, file)
    if check_pixels and not checked:
        with blaming(file):
            check_pixel_length(header)
    return header


def truncation(header: InstanceHeader, fp: BinaryIO) -> str | None:
    """How a file ends inside its pixel data, or ``None`` when the pixel data is all there.

    The one test of a file cut short, for the viewer and the index alike: the declared length
    of the pixel data must fit in the file, and encapsulated pixel data must reach its
    sequence delimiter before the file ends. Nothing is decoded: only the end of the file
    and, when the delimiter is not there, the headers of the fragments are read. Fragments
    damaged otherwise are left for decoding to report.

    Parameters
    ----------
    header : InstanceHeader
        The file's header.
    fp : file object
        The open file, positioned anywhere.
    """
    if header.pixel_offset is None:
        return None
    size = header.file_size if header.file_size is not None else fp.seek(0, io.SEEK_END)
    if header.pixel_length is not None:
        if header.pixel_offset + header.pixel_length <= size:
            return None
        return (
            f"file is truncated: (7FE0,0010) Pixel Data declares {header.pixel_length} bytes "
            f"but only {size - header.pixel_offset} follow"
        )
    fp.seek(max(header.pixel_offset, size - len(_SEQUENCE_DELIMITER)))
    if fp.read() == _SEQUENCE_DELIMITER:  # where writers put it
        return None
    # Elements after the pixel data: follow the fragments (always little endian) to the end.
    position = header.pixel_offset
    while position + 8 <= size:
        fp.seek(position)
        group, element, length = struct.unpack("<HHL", fp.read(8))
        if (group, element) != _ITEM:
            return None  # the delimiter, or damage that is not a cut
        position += 8 + length
        if position > size:
            return (
                "file is truncated: a fragment of its encapsulated (7FE0,0010) Pixel Data "
                "runs past the end of the file"
            )
    return (
        "file is truncated: its encapsulated (7FE0,0010) Pixel Data ends without a sequence "
        "delimiter"
    )


def _read_any_header(fp: BinaryIO, file: DicomFile, tags) -> InstanceHeader:
    """Read a header with pydicom's general reader, up to the pixel data."""
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
    return InstanceHeader.from_dataset(
        file, dataset, transfer_syntax, has_meta, pixel_keyword, offset, length
    )


def _past_syntax(tag, vr, length) -> bool:
    """``stop_when`` for pydicom's reader: past (0002,0010) Transfer Syntax UID."""
    return int(tag) > _TRANSFER_SYNTAX_UID


def _stop_after_group_0028(stopped_at: list[int]):
    """``stop_when`` for pydicom's reader: stop at the first tag after group (0028), noting
    it in ``stopped_at``. pydicom calls it for every element, hence the bare minimum."""

    def stop(tag, vr, length) -> bool:
        if int(tag) > 0x0028FFFF:  # int comparisons stay in C; pydicom's Tag compares in Python
            stopped_at.append(int(tag))
            return True
        return False

    return stop


def _stop_at_pixel_data(stopped_at: list[int]):
    """``stop_when`` for pydicom's reader: stop at the pixel data, noting its tag."""

    def stop(tag, vr, length) -> bool:
        if int(tag) in _PIXEL_TAGS:
            stopped_at.append(int(tag))
            return True
        return False

    return stop


def _read_part10_header(
    fp: BinaryIO, file: DicomFile, selection: _TagSelection
) -> InstanceHeader | None:
    """The header of a standard Part 10 file, read only as far as needed.

    Returns ``None`` when the file is not laid out the usual way or anything looks odd
    (no ``DICM``, deflated, header longer than the first chunk, an encoding other than the
    declared one, pixel data not where it should be...): the general reader then reads it,
    and reports (or warns about) what is wrong.
    """
    try:
        return _try_part10_header(fp, file, selection)
    except Exception:
        return None


def _try_part10_header(
    fp: BinaryIO, file: DicomFile, selection: _TagSelection
) -> InstanceHeader | None:
    head = fp.read(_PART10_CHUNK)
    if head[128:140] != _PART10_MAGIC:
        return None
    body_start = 144 + int.from_bytes(head[140:144], "little")
    if head[body_start : body_start + 2] in (b"", b"\x02\x00"):  # meta longer than declared
        return None
    stream = io.BytesIO(head)
    stream.seek(144)
    transfer_syntax, implicit, little = _meta_transfer_syntax(stream)
    if transfer_syntax is None or _looks_implicit(head, body_start) != implicit:
        return None
    stream.seek(body_start)

    # The elements go straight into a dict, as pydicom's read_dataset puts them; the data
    # set over them is only made if someone asks for it.
    stopped_at: list[int] = []
    elements = {
        int(element.tag): element
        for element in data_element_generator(
            stream,
            implicit,
            little,
            stop_when=_stop_after_group_0028(stopped_at),
            specific_tags=selection.ints,
        )
    }
    if not stopped_at:
        return None  # the chunk ended first (or the file has no pixel data): read it all
    header = InstanceHeader(
        file, elements, transfer_syntax, True, None, None, None, read_encoding=(implicit, little)
    )
    if stopped_at[0] not in _PIXEL_TAGS:
        # A single-frame image: its pixel data, if native, ends the file. A multi-frame
        # one has its functional groups further on.
        later = stream.tell()
        if (
            transfer_syntax in _NATIVE_SYNTAXES
            and _NUMBER_OF_FRAMES not in elements
            and _find_pixel_data_at_end(fp, header, after=later)
            and (selection.stops_early or _lacks_tags(fp, head, later, header, selection.later))
        ):
            return header
        # Otherwise walk on to the pixel data, keeping the later tags we read.
        stream = _walk_to_pixel_data(stream, fp, header, selection, len(head) < _PART10_CHUNK)
    keyword, offset, length = _locate_pixel_data(stream, header.elements, transfer_syntax)
    header.pixel_keyword, header.pixel_offset, header.pixel_length = keyword, offset, length
    return header


def _lacks_tags(
    fp: BinaryIO, head: bytes, start: int, header: InstanceHeader, tags: list[int]
) -> bool:
    """Whether none of ``tags`` is an element between ``start`` and the pixel data, found
    without reading the elements: the bytes of each tag appear nowhere there. (They may
    appear inside some value, and then the elements are read as usual.)"""
    end = header.pixel_offset - (8 if header.transfer_syntax.is_implicit_VR else 12)
    if end <= len(head):
        region = head[start:end]
    else:
        fp.seek(start)
        region = fp.read(end - start)
    order = "<" if header.transfer_syntax.is_little_endian else ">"
    return not any(struct.pack(f"{order}HH", tag >> 16, tag & 0xFFFF) in region for tag in tags)


def _walk_to_pixel_data(
    chunk: BinaryIO, fp: BinaryIO, header: InstanceHeader, selection: _TagSelection, whole: bool
) -> BinaryIO:
    """Read the tags of ``selection`` beyond group (0028) into ``header``, from the position
    of ``chunk`` (the file's first bytes; ``whole`` when they are all of it) up to the pixel
    data, and return the stream left at the pixel data (or at the end of a data set without
    any).

    Private groups before the pixel data can be longer than the chunk (Siemens' CSA headers
    are tens of kB): the walk then goes on from the same place in the file itself, rather
    than reading the whole header again the general way.
    """
    start = chunk.tell()
    try:
        if _read_later_tags(chunk, header, selection) or whole:
            return chunk
    except Exception:
        if whole:
            raise
    fp.seek(start)  # the chunk ended first, maybe inside an element
    _read_later_tags(fp, header, selection)
    return fp


def _read_later_tags(stream: BinaryIO, header: InstanceHeader, selection: _TagSelection) -> bool:
    """Read on from the stream's position to the pixel data; whether it was reached."""
    stopped_at: list[int] = []
    for element in data_element_generator(
        stream,
        *header.read_encoding,
        stop_when=_stop_at_pixel_data(stopped_at),
        encoding=header.character_set(),
        specific_tags=selection.later,
    ):
        header.elements[int(element.tag)] = element
    return bool(stopped_at)


def _looks_implicit(head: bytes, start: int) -> bool:
    """Whether the data set at ``start`` is implicit VR: its first element has no VR (two
    capital letters) after the tag. The test pydicom makes before reading a data set."""
    vr = head[start + 4 : start + 6]
    return not (len(vr) == 2 and 0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B)


# Raw (0002,0010) values seen -> what _meta_transfer_syntax returns for them; a handful.
_SYNTAXES: dict[bytes, tuple] = {}


def _meta_transfer_syntax(stream: BinaryIO) -> tuple[UID | None, bool, bool]:
    """(Transfer Syntax UID, implicit VR, little endian) from the file meta elements at the
    stream's position, the UID ``None`` when it is missing, unknown or deflated.

    Only the elements up to (0002,0010) are read, and no data set is built for them.
    Remembered by raw value: the files of a series share one.
    """
    elements = list(data_element_generator(stream, False, True, stop_when=_past_syntax))
    element = elements[-1] if elements else None  # (0002,0010), if the meta has one
    if element is None or element.tag != _TRANSFER_SYNTAX_UID:
        return None, False, False
    known = _SYNTAXES.get(element.value)
    if known is not None:
        return known
    uid = UID(str(convert_value("UI", element) or ""))
    if uid == DeflatedExplicitVRLittleEndian or not uid.is_transfer_syntax:
        known = (None, False, False)
    else:
        known = (uid, uid.is_implicit_VR, uid.is_little_endian)
    if len(_SYNTAXES) < 32:
        _SYNTAXES[element.value] = known
    return known


def _find_pixel_data_at_end(fp: BinaryIO, header: InstanceHeader, after: int) -> bool:
    """Whether native (7FE0,0010) Pixel Data of exactly the size the image needs ends the
    file (at or after offset ``after``); if so, note its offset, length and the file size.

    This is where writers put it; a file cut short, padded, or with elements after its
    pixel data fails the test and is read element by element instead.
    """
    needed = expected_pixel_bytes(header)
    if not needed:
        return False
    length = needed + needed % 2  # values have even length
    implicit = header.transfer_syntax.is_implicit_VR
    element_header = 8 if implicit else 12
    size = fp.seek(0, io.SEEK_END)
    start = size - length - element_header
    if start < after:
        return False
    fp.seek(start)
    found = fp.read(element_header)
    order = "<" if header.transfer_syntax.is_little_endian else ">"
    if implicit:
        group, element, declared = struct.unpack(f"{order}HHL", found)
    else:
        group, element, vr, reserved, declared = struct.unpack(f"{order}HH2sHL", found)
        if vr not in (b"OB", b"OW") or reserved:
            return False
    if (group, element) != (0x7FE0, 0x0010) or declared != length:
        return False
    header.pixel_keyword, header.pixel_length = "PixelData", length
    header.pixel_offset, header.file_size = start + element_header, size
    return True


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
    fp: BinaryIO, elements: Dataset | dict, transfer_syntax: UID
) -> tuple[str | None, int | None, int | None]:
    """Read the pixel data element's tag and length at the current position.

    ``elements`` is the header read so far (a data set, or its elements by tag).
    """
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        # The reader inflated the stream elsewhere; positions in fp mean nothing.
        return ("PixelData" if _ROWS in elements else None), None, None
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
    get = header.get
    try:
        rows, columns = int(get("Rows")), int(get("Columns"))
        samples, bits = int(get("SamplesPerPixel") or 1), int(get("BitsAllocated"))
        photometric = header.text("PhotometricInterpretation")
    except Exception:
        return None
    if bits % 8 or photometric.endswith("_422"):
        # Bit-packed and sub-sampled layouts have their own rules; pydicom knows them.
        try:
            return int(get_expected_length(header.dataset, "bytes"))
        except Exception:
            return None
    return rows * columns * samples * (bits // 8) * header.number_of_frames


def check_pixel_length(header: InstanceHeader) -> None:
    """Raise if an image has no pixel data, or native data is too short for the image.

    Whether the file ends inside its pixel data is :func:`truncation`'s question.

    Raises
    ------
    PixelDataError
        An image without pixel data (cut short), or native pixel data holding fewer bytes
        than (0028,0010) Rows x (0028,0011) Columns x samples x frames need.
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
    missing = [k for k in ("Rows", "Columns") if header.get(k) is None]
    if missing:
        raise PixelDataError(
            f"pixel data without {' and '.join(missing)}: the image size is unknown",
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
