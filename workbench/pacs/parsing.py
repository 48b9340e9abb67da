"""From a stored file's header to the values the index keeps (IDs, main tags, syntax)."""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.errors import InvalidDicomError

from .errors import InvalidInstanceError
from .ids import resource_ids
from .tags import IDENTIFIER, LEVELS, extract_all, stored_tags


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


_ALL_KEYWORDS = tuple(dict.fromkeys(k for level in LEVELS for k in stored_tags(level)))
_PARSED_TAGS = sorted(
    {tag_for_keyword(k) for level in LEVELS for k in stored_tags(level)}
    | {tag_for_keyword("SpecificCharacterSet")}
)


_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_TAIL = 64 * 1024


def _truncation(fp: BinaryIO, ds: pydicom.Dataset, size: int) -> str | None:
    """How the file ends inside its pixel data, or ``None`` if it does not.

    ``fp`` is where ``dcmread(stop_before_pixels=True)`` left it: at the pixel data element.
    A defined length is compared with the file size; encapsulated data must end with its
    sequence delimiter near the end of the file. Nothing is decoded or read into memory.
    """
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None or not syntax.is_transfer_syntax or syntax.is_deflated:
        return None
    start = fp.tell()
    head = fp.read(12)
    if len(head) < 8:
        return None
    order = "<" if syntax.is_little_endian else ">"
    group, element = struct.unpack(order + "HH", head[:4])
    if (group << 16 | element) not in _PIXEL_TAGS:
        return None
    header = 8 if syntax.is_implicit_VR else 12
    (length,) = struct.unpack(order + "I", head[header - 4:header])
    if length != 0xFFFFFFFF:
        end = start + header + length
        return None if end <= size else (
            f"ends at byte {size} inside (7FE0,0010) Pixel Data, which needs {end} bytes")
    fp.seek(max(start, size - _TAIL))
    if _SEQUENCE_DELIMITER not in fp.read():
        return "ends inside its encapsulated (7FE0,0010) Pixel Data (no sequence delimiter)"
    return None


def parse_instance(source: Path | bytes, name: str | None = None) -> ParsedInstance:
    """Read the header of a Part-10 file (a path, or its bytes) and extract what the index
    stores.

    Raises
    ------
    InvalidInstanceError
        Naming the file, if it is not a DICOM Part-10 file or lacks an identifying UID.
    """
    in_memory = isinstance(source, (bytes, bytearray, memoryview))
    label = name or (f"data ({len(source)} bytes)" if in_memory else str(source))
    try:
        # Only the indexed attributes are decoded; the rest is skipped over, not parsed.
        with io.BytesIO(source) if in_memory else open(source, "rb") as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, specific_tags=_PARSED_TAGS)
            size = len(source) if in_memory else os.fstat(fp.fileno()).st_size
            cut_short = _truncation(fp, ds, size)
    except InvalidDicomError as exc:
        raise InvalidInstanceError(f"{label}: not a DICOM Part-10 file ({exc})") from exc
    except Exception as exc:  # pydicom raises many kinds on corrupt input
        raise InvalidInstanceError(f"{label}: cannot read DICOM header ({exc})") from exc
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        raise InvalidInstanceError(f"{label}: no file meta information (TransferSyntaxUID)")
    if cut_short:
        raise InvalidInstanceError(f"{label}: truncated, the file {cut_short}")
    try:
        values = extract_all(ds, _ALL_KEYWORDS)
        tags = {level: {k: values[k] for k in stored_tags(level)} for level in LEVELS}
    except Exception as exc:
        raise InvalidInstanceError(f"{label}: cannot decode an attribute ({exc})") from exc
    for level in ("Study", "Series", "Instance"):
        keyword = IDENTIFIER[level]
        if not tags[level].get(keyword):
            raise InvalidInstanceError(f"{label}: missing {keyword}, cannot index the instance")
    patient_id = tags["Patient"].get("PatientID") or ""
    uids = (tags["Study"]["StudyInstanceUID"], tags["Series"]["SeriesInstanceUID"],
            tags["Instance"]["SOPInstanceUID"])
    return ParsedInstance(
        sop_instance_uid=uids[2],
        ids=resource_ids(patient_id, *uids),
        tags=tags,
        transfer_syntax=str(meta.TransferSyntaxUID),
    )
