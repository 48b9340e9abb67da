"""The Orthanc JSON of the index's answers: resources, statistics, changes, references.

Pure functions of rows (plus the child and parent IDs a resource's JSON lists), so that what
``GET /studies/{id}`` shows is decided in one place.
"""

from __future__ import annotations

import re
import time
from typing import Any

import sqlalchemy as sa

from ..recycle import MB
from ..schema import CHILD, PARENT
from ..tags import MAIN_TAGS, PLURAL
from . import labels as label_rows
from . import reads


def reference(level: str, public_id: str) -> dict[str, str]:
    """``{"ID", "Path", "Type"}`` of a resource, as Orthanc names one in an answer."""
    return {"ID": public_id, "Path": f"/{PLURAL[level]}/{public_id}", "Type": level}


def main_tags(level: str, row: Any) -> dict[str, str]:
    """The main DICOM tags of a resource's row at its own level, absent ones left out."""
    mapping = row._mapping
    return {k: mapping[k] for k in sorted(MAIN_TAGS[level]) if mapping[k] is not None}


def resource(conn: sa.Connection, level: str, row: Any, stable_age: float,
             labels: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """The JSON of ``GET /{level}/{id}``; a resource untouched for ``stable_age`` seconds
    is stable. ``labels``: the resource's, when the caller read them for many rows."""
    if labels is None:
        labels = label_rows.of_rows(conn, level, [row.pk]).get(row.pk, [])
    result: dict[str, Any] = {
        "ID": row.public_id,
        "Labels": labels,  # Orthanc 1.12
        "MainDicomTags": main_tags(level, row),
        "Type": level,
    }
    if level != "Instance":
        result["IsStable"] = (time.time() - row.last_update_ts) >= stable_age
        result["LastUpdate"] = row.last_update
        result[PLURAL[CHILD[level]].capitalize()] = reads.child_ids(conn, level, row.pk)
    if level in PARENT:
        parent_level = PARENT[level]
        result[f"Parent{parent_level}"] = reads.public_id_of(conn, parent_level, row.parent_pk)
        if level == "Study":
            result["PatientMainDicomTags"] = main_tags("Patient", row)
    if level == "Series":
        expected = expected_instances(row._mapping)
        result["ExpectedNumberOfInstances"] = expected
        result["Status"] = (
            "Unknown" if expected is None
            else series_status(reads.indexes_in_series(conn, row.pk), expected)
        )  # fmt: skip
    if level == "Instance":
        result["FileSize"] = row.file_size
        result["FileUuid"] = row.file_uuid
        result["IndexInSeries"] = row.index_in_series  # null when not numbered
    return dict(sorted(result.items()))


def _count(text: str | None) -> int | None:
    """An integer attribute's value, or ``None`` when absent or not a plain integer."""
    if text is None or not re.fullmatch(r"[+-]?\d+", text):
        return None
    return int(text)


def expected_instances(tags: Any) -> int | None:
    """How many instances a series announces, as Orthanc reads it from the series' main
    tags: ImagesInAcquisition x NumberOfTemporalPositions, else NumberOfSlices x
    NumberOfTimeSlices (cardiac PET), else CardiacNumberOfImages; ``None`` when none of
    these pairs is there or the count is not positive."""
    for first, second in (("ImagesInAcquisition", "NumberOfTemporalPositions"),
                          ("NumberOfSlices", "NumberOfTimeSlices"),
                          ("CardiacNumberOfImages", None)):  # fmt: skip
        if tags.get(first) is None or (second is not None and tags.get(second) is None):
            continue
        # Orthanc stops at the first pair present, even when its values are no numbers.
        counts = [_count(tags.get(first)), _count(tags.get(second)) if second else 1]
        if None in counts:
            return None
        total = counts[0] * counts[1]
        return total if total > 0 else None
    return None


def series_status(indexes: list[int], expected: int) -> str:
    """Orthanc's status of a series from its instances' indexes in series: ``Complete`` when
    each of 1..expected is there once, ``Inconsistent`` for an index out of that range or
    twice, ``Missing`` otherwise."""
    if len(set(indexes)) != len(indexes) or any(not 0 < i <= expected for i in indexes):
        return "Inconsistent"
    return "Complete" if len(indexes) == expected else "Missing"


def instance_info(row: Any) -> dict[str, Any]:
    """Internal facts of an instance: transfer syntax, SOP class, reception, origin."""
    return {
        "TransferSyntax": row.transfer_syntax,
        "SopClassUid": row.SOPClassUID,
        "ReceptionDate": row.received,
        "RemoteAET": row.remote_aet,
        "Origin": row.origin,
        "IndexInSeries": row.index_in_series,
    }


def statistics(counts: dict[str, int], size: int) -> dict[str, Any]:
    """The JSON of ``GET /statistics``."""
    return {
        "CountInstances": counts["Instance"],
        "CountPatients": counts["Patient"],
        "CountSeries": counts["Series"],
        "CountStudies": counts["Study"],
        "TotalDiskSize": str(size),
        "TotalDiskSizeMB": size // MB,
        "TotalUncompressedSize": str(size),
        "TotalUncompressedSizeMB": size // MB,
    }


def resource_statistics(
    level: str, count: int, size: int, n_series: int, n_studies: int
) -> dict[str, Any]:
    """The JSON of ``GET /{level}/{id}/statistics``."""
    result: dict[str, Any] = {
        "CountInstances": count,
        # Files are stored as received: DICOM size = disk size = uncompressed size.
        "DicomDiskSize": str(size),
        "DicomDiskSizeMB": size // MB,
        "DicomUncompressedSize": str(size),
        "DicomUncompressedSizeMB": size // MB,
        "DiskSize": str(size),
        "DiskSizeMB": size // MB,
        "UncompressedSize": str(size),
        "UncompressedSizeMB": size // MB,
    }
    if level in ("Patient", "Study"):
        result["CountSeries"] = n_series
    if level == "Patient":
        result["CountStudies"] = n_studies
    return dict(sorted(result.items()))


def changes(rows: list[Any], done: bool, last_seq: int) -> dict[str, Any]:
    """The JSON of ``GET /changes`` from the change log's rows (``done``: no rows after
    them); ``Last`` is the last row's sequence number, or with no rows the last one ever
    given, as Orthanc answers."""
    items = [
        {
            "ChangeType": row.change_type,
            "Date": row.date,
            "ID": row.public_id,
            "Path": f"/{PLURAL[row.resource_type]}/{row.public_id}",
            "ResourceType": row.resource_type,
            "Seq": row.seq,
        }
        for row in rows
    ]
    return {"Changes": items, "Done": done, "Last": rows[-1].seq if rows else last_seq}
