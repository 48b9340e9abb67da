"""The index answers the same whether its hot statements run on the DBAPI cursor or, with a
SQLAlchemy lacking the undocumented names that path uses, through ``Connection.execute``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pydicom

from workbench.pacs import Index
from workbench.pacs.index import prepared

LEVELS = ("patients", "studies", "series", "instances")


def _what_the_index_knows(index: Index, files: list[Path]) -> dict[str, Any]:
    """Ingest one by one and in a batch, again (duplicates), delete a study; then read back."""
    singles, batch = files[:4], files[4:]
    stored = [index.ingest_bytes(path.read_bytes()).to_json() for path in singles]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # vendor files break VR length rules; not our concern
        summary = index.import_path(*batch, progress=False)
    assert not summary.errors, summary.errors
    again = [index.ingest_bytes(path.read_bytes()).status for path in singles[:2]]
    deleted_study = index.list_ids("studies")[-1]
    index.delete("studies", deleted_study)
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    uids = {
        "Study": header.StudyInstanceUID,
        "Series": header.SeriesInstanceUID,
        "Instance": header.SOPInstanceUID,
    }
    found = index.by_uids("instances", uids)
    return {
        "stored": stored,
        "again": again,
        "ids": {level: index.list_ids(level) for level in LEVELS},
        "tags": {i: index.main_dicom_tags("instances", i) for i in index.list_ids("instances")},
        "statistics": index.statistics(),
        "changes": [
            (change["ChangeType"], change["ID"])
            for change in index.changes(limit=10_000)["Changes"]
        ],
        "by_uids": found[0] if found else None,
    }


def test_statements_through_sqlalchemy_give_the_same_index(
    tmp_path, database, pacs_files, monkeypatch
):
    files = pacs_files[:16]
    known = {}
    for on_cursor in (True, False):
        monkeypatch.setattr(prepared, "ON_CURSOR", on_cursor)
        index = Index(database.config(tmp_path / f"on-cursor-{on_cursor}"))
        try:
            known[on_cursor] = _what_the_index_knows(index, files)
        finally:
            index.close()

    assert known[True]["again"] == ["AlreadyStored", "AlreadyStored"]
    assert len(known[True]["ids"]["instances"]) > 4
    assert known[True]["by_uids"] == known[True]["stored"][0]["ID"]
    assert known[False] == known[True]


def test_the_cursor_path_is_taken_with_the_installed_sqlalchemy():
    # Falling back silently would cost ingest speed unnoticed: the names are still there.
    assert prepared.ON_CURSOR
