"""The Orthanc JSON of the index's answers: resources, statistics, changes, references.

Pure functions of rows (plus the child and parent IDs a resource's JSON lists), so that what
``GET /studies/{id}`` shows is decided in one place.
"""

from __future__ import annotations

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
        result["ExpectedNumberOfInstances"] = row.expected_instances
        result["Status"] = "Unknown"
    if level == "Instance":
        result["FileSize"] = row.file_size
        result["FileUuid"] = row.file_uuid
        result["IndexInSeries"] = row.index_in_series  # null when not numbered
    return dict(sorted(result.items()))


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


def changes(rows: list[Any], last_seq: int, *, since: int, last: bool) -> dict[str, Any]:
    """The JSON of ``GET /changes`` from the change log's rows."""
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
    done = last or not rows or rows[-1].seq >= last_seq
    return {
        "Changes": items,
        "Done": done,
        "Last": rows[-1].seq if rows else (last_seq if last else since),
    }
