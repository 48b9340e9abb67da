"""The export log: which instances were sent to which modality (Orthanc's ``/exports``).

Kept only with ``LogExportedResources`` (off by default, as in Orthanc: a busy router would
log everything it forwards). Each resource a store was asked for (a patient, study, series or
instance) gets a row with its identifiers, so the log still says what was sent after it is
deleted here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..schema import exports
from ..tags import PLURAL

#: The identifiers kept of an exported resource (those of its level and above).
_IDENTIFIERS = {
    "patient_id": "PatientID",
    "study_instance_uid": "StudyInstanceUID",
    "series_instance_uid": "SeriesInstanceUID",
    "sop_instance_uid": "SOPInstanceUID",
}


def log(conn: sa.Connection, modality: str, resources: list[tuple[str, str, dict[str, str]]],
        date: str) -> None:  # fmt: skip
    """Add one row per resource sent: (level, ID, its tags merged with its parents')."""
    if not resources:
        return
    conn.execute(
        exports.insert(),
        [
            {
                "resource_type": level,
                "public_id": public_id,
                "remote_modality": modality,
                "date": date,
                **{column: tags.get(keyword) for column, keyword in _IDENTIFIERS.items()},
            }
            for level, public_id, tags in resources
        ],
    )


def page(conn: sa.Connection, *, since: int, limit: int, last: bool) -> dict[str, Any]:
    """The JSON of ``GET /exports``: entries after ``since`` (or the last one), paged as
    ``/changes``."""
    last_seq = conn.execute(sa.select(sa.func.max(exports.c.seq))).scalar() or 0
    if last:
        query = sa.select(exports).order_by(exports.c.seq.desc()).limit(1)
    else:
        query = sa.select(exports).where(exports.c.seq > since).order_by(exports.c.seq)
        query = query.limit(limit)
    rows = list(conn.execute(query))
    return {
        "Done": last or not rows or rows[-1].seq >= last_seq,
        "Exports": [_entry(row) for row in rows],
        "Last": rows[-1].seq if rows else (last_seq if last else since),
    }


def _entry(row: Any) -> dict[str, Any]:
    entry = {
        "Date": row.date,
        "ID": row.public_id,
        "Path": f"/{PLURAL[row.resource_type]}/{row.public_id}",
        "RemoteModality": row.remote_modality,
        "ResourceType": row.resource_type,
        "Seq": row.seq,
        "PatientID": row.patient_id,
        "StudyInstanceUID": row.study_instance_uid,
        "SeriesInstanceUID": row.series_instance_uid,
        "SOPInstanceUID": row.sop_instance_uid,
    }
    return {key: value for key, value in entry.items() if value is not None}


def clear(conn: sa.Connection) -> None:
    conn.execute(exports.delete())
