"""From a stored file's header to the values the index keeps (IDs, main tags, syntax)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


def parse_instance(path: Path, name: str | None = None) -> ParsedInstance:
    """Read the header of a Part-10 file and extract what the index stores.

    Raises
    ------
    InvalidInstanceError
        Naming the file, if it is not a DICOM Part-10 file or lacks an identifying UID.
    """
    label = name or str(path)
    try:
        # Only the indexed attributes are decoded; the rest is skipped over, not parsed.
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_PARSED_TAGS)
    except InvalidDicomError as exc:
        raise InvalidInstanceError(f"{label}: not a DICOM Part-10 file ({exc})") from exc
    except Exception as exc:  # pydicom raises many kinds on corrupt input
        raise InvalidInstanceError(f"{label}: cannot read DICOM header ({exc})") from exc
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        raise InvalidInstanceError(f"{label}: no file meta information (TransferSyntaxUID)")
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
