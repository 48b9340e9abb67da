"""From a stored file's header to the values the index keeps (IDs, main tags, syntax).

Headers are read by :func:`workbench.io.headers.read_header`, the reader the viewer's scans
use: the same quick path for standard files, and the same test of a file cut short inside
its pixel data (:func:`workbench.io.headers.truncation`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from workbench.io.errors import InvalidDicomError, PixelDataError
from workbench.io.headers import read_header
from workbench.io.sources import DicomFile

from .errors import InvalidInstanceError
from .ids import resource_ids
from .tags import IDENTIFIER, LEVELS, header_texts, stored_tags


@dataclass
class ParsedInstance:
    """What the index stores of one instance."""

    sop_instance_uid: str
    ids: tuple[str, str, str, str]
    tags: dict[str, dict[str, str | None]]
    transfer_syntax: str | None


def index_in_series(tags: dict[str, str | None]) -> int | None:
    """Position of an instance in its series: InstanceNumber, else ImageIndex."""
    for keyword in ("InstanceNumber", "ImageIndex"):
        text = tags.get(keyword)
        if text:
            try:
                return int(text.split("\\")[0])
            except ValueError:
                continue
    return None


#: Every tag the index stores, and the character set their texts are decoded with.
INDEX_KEYWORDS = (
    *dict.fromkeys(k for level in LEVELS for k in stored_tags(level)),
    "SpecificCharacterSet",
)


@dataclass(frozen=True)
class _Received(DicomFile):
    """Part-10 bytes received over the network, read as a file would be."""

    data: bytes = field(default=b"", repr=False, compare=False)

    def open(self) -> io.BytesIO:
        return io.BytesIO(self.data)

    def size(self) -> int:
        return len(self.data)


def parse_instance(source: Path | bytes, name: str | None = None) -> ParsedInstance:
    """Read the header of a Part-10 file (a path, or its bytes) and extract what the index
    stores.

    Raises
    ------
    InvalidInstanceError
        Naming the file, if it is not a DICOM Part-10 file, ends inside its pixel data, or
        lacks an identifying UID.
    """
    in_memory = isinstance(source, (bytes, bytearray, memoryview))
    label = name or (f"data ({len(source)} bytes)" if in_memory else str(source))
    file = _Received(label, data=bytes(source)) if in_memory else DicomFile(str(source))
    try:
        header = read_header(
            file, check_pixels=False, check_truncation=True, keywords=INDEX_KEYWORDS
        )
    except PixelDataError as exc:
        raise InvalidInstanceError(f"{label}: {exc.reason}") from exc
    except InvalidDicomError as exc:
        raise InvalidInstanceError(f"{label}: cannot read it as DICOM, {exc.reason}") from exc
    if not header.has_file_meta:
        raise InvalidInstanceError(
            f"{label}: not a DICOM Part-10 file (no file meta information with its "
            "TransferSyntaxUID)"
        )
    try:
        values = header_texts(header, INDEX_KEYWORDS)
    except Exception as exc:  # pydicom converts lazily: a damaged value surfaces here
        raise InvalidInstanceError(f"{label}: cannot decode an attribute ({exc})") from exc
    tags = {level: {k: values[k] for k in stored_tags(level)} for level in LEVELS}
    for level in ("Study", "Series", "Instance"):
        keyword = IDENTIFIER[level]
        if not tags[level].get(keyword):
            raise InvalidInstanceError(f"{label}: missing {keyword}, cannot index the instance")
    patient_id = tags["Patient"].get("PatientID") or ""
    uids = (
        tags["Study"]["StudyInstanceUID"],
        tags["Series"]["SeriesInstanceUID"],
        tags["Instance"]["SOPInstanceUID"],
    )
    return ParsedInstance(
        sop_instance_uid=uids[2],
        ids=resource_ids(patient_id, *uids),
        tags=tags,
        transfer_syntax=str(header.transfer_syntax),
    )
