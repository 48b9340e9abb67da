"""Start-up consistency check of the store: files without rows, rows without files."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .errors import InvalidInstanceError, UnknownResourceError
from .results import ReconcileReport

if TYPE_CHECKING:
    from .index import Index

log = logging.getLogger(__name__)


def reconcile(index: Index) -> ReconcileReport:
    """Bring files and rows back in agreement after a crash or a manual intervention.

    - leftovers of interrupted writes in :attr:`incoming_dir` are removed (they were never
      acknowledged);
    - rows whose file is missing are removed (with their empty parents);
    - files without a row are indexed again; unreadable ones are moved to
      ``<StorageDirectory>/quarantine`` for a human to look at.

    Returns
    -------
    ReconcileReport
        What was repaired; also logged.
    """
    report = ReconcileReport()
    report.incomplete_writes_removed = [p.name for p in index.store.clear_incoming()]
    known = index.stored_files()
    on_disk = set(index.store.iter_uuids())
    for file_uuid, public_id in known.items():
        if file_uuid not in on_disk:
            try:
                index.delete("Instance", public_id)
            except UnknownResourceError:
                continue
            report.rows_without_file_removed.append(public_id)
    for file_uuid in sorted(on_disk - set(known)):
        try:
            if index.reindex_stored_file(file_uuid) is not None:
                report.files_reindexed.append(file_uuid)
        except InvalidInstanceError:
            quarantine = index.store.root / "quarantine"
            quarantine.mkdir(exist_ok=True)
            index.store.path_of(file_uuid).replace(quarantine / file_uuid)
            report.unreadable_files_quarantined.append(file_uuid)
    if report.repaired:
        log.warning("Store reconciled: %s", report.summary())
    return report
