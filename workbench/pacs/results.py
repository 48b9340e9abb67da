"""Plain results handed back by the index: an ingest's outcome, a reconcile report."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IngestResult:
    """Outcome of storing one instance (Orthanc's answer to ``POST /instances``)."""

    status: str  # "Success" | "AlreadyStored"
    instance_id: str
    series_id: str
    study_id: str
    patient_id: str
    sop_instance_uid: str

    def to_json(self) -> dict[str, str]:
        """The Orthanc JSON answer of ``POST /instances``."""
        return {
            "ID": self.instance_id,
            "ParentPatient": self.patient_id,
            "ParentSeries": self.series_id,
            "ParentStudy": self.study_id,
            "Path": f"/instances/{self.instance_id}",
            "Status": self.status,
        }


@dataclass
class ReconcileReport:
    """What the start-up consistency check found and repaired."""

    incomplete_writes_removed: list[str] = field(default_factory=list)
    rows_without_file_removed: list[str] = field(default_factory=list)
    files_reindexed: list[str] = field(default_factory=list)
    unreadable_files_quarantined: list[str] = field(default_factory=list)

    @property
    def repaired(self) -> bool:
        """True when anything had to be repaired."""
        return any(vars(self).values())

    def summary(self) -> str:
        """One line for the log."""
        return (
            f"{len(self.incomplete_writes_removed)} incomplete write(s) removed, "
            f"{len(self.rows_without_file_removed)} row(s) without file removed, "
            f"{len(self.files_reindexed)} file(s) without row re-indexed, "
            f"{len(self.unreadable_files_quarantined)} unreadable file(s) quarantined"
        )
