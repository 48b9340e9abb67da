"""Storage recycling as Orthanc does it: drop the least recently fed unprotected patients.

``MaximumStorageSize`` (MB) and ``MaximumPatientCount`` bound the store; 0 disables a bound.
When a new instance would exceed a bound, the unprotected patients that received nothing for
the longest time are deleted first, never the patient the new instance belongs to. When even
deleting every candidate would not make room, nothing is deleted and the instance is refused.
"""

from __future__ import annotations

import sqlalchemy as sa

from .errors import StorageFullError
from .schema import instances, patients, series, studies

MB = 1024 * 1024


def plan_recycling(
    conn: sa.Connection,
    *,
    max_storage_mb: int,
    max_patients: int,
    disk_size: int,
    incoming_size: int,
    incoming_patient_pk: int | None,
) -> list[int]:
    """Return the primary keys of the patients to delete so the new instance fits.

    Parameters
    ----------
    conn : Connection
        Open connection inside the ingest transaction.
    max_storage_mb, max_patients : int
        The configured bounds (0 = unbounded).
    disk_size : int
        Bytes currently stored.
    incoming_size : int
        Bytes of the instance about to be stored.
    incoming_patient_pk : int or None
        The patient receiving the instance, or ``None`` when it is a new patient.

    Raises
    ------
    StorageFullError
        If the bounds cannot be met by deleting unprotected patients.
    """
    bytes_over = 0
    if max_storage_mb > 0:
        bytes_over = disk_size + incoming_size - max_storage_mb * MB
        if incoming_size > max_storage_mb * MB:
            raise StorageFullError(
                f"The instance ({incoming_size} bytes) is larger than MaximumStorageSize "
                f"({max_storage_mb} MB)"
            )
    patients_over = 0
    if max_patients > 0 and incoming_patient_pk is None:
        count = conn.execute(sa.select(sa.func.count()).select_from(patients)).scalar_one()
        patients_over = count + 1 - max_patients
    if bytes_over <= 0 and patients_over <= 0:
        return []

    candidates = conn.execute(
        sa.select(patients.c.pk)
        .where(patients.c.protected.is_(False))
        .where(patients.c.pk != (incoming_patient_pk or -1))
        .order_by(patients.c.recycling_order)
    ).scalars()
    chosen: list[int] = []
    freed = 0
    for patient_pk in candidates:
        if bytes_over <= freed and patients_over <= len(chosen):
            break
        chosen.append(patient_pk)
        if bytes_over > freed:
            freed += patient_disk_size(conn, patient_pk)
    if bytes_over > freed or patients_over > len(chosen):
        raise StorageFullError(
            "The storage is full (MaximumStorageSize="
            f"{max_storage_mb} MB, MaximumPatientCount={max_patients}) and every patient that "
            "could be recycled is protected or receiving this instance"
        )
    return chosen


def patient_disk_size(conn: sa.Connection, patient_pk: int) -> int:
    """Bytes stored for one patient."""
    query = (
        sa.select(sa.func.coalesce(sa.func.sum(instances.c.file_size), 0))
        .select_from(
            instances.join(series, instances.c.parent_pk == series.c.pk).join(
                studies, series.c.parent_pk == studies.c.pk
            )
        )
        .where(studies.c.parent_pk == patient_pk)
    )
    return int(conn.execute(query).scalar_one())
