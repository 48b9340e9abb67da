"""StableSeries, StableStudy and StablePatient in the change log, as a real Orthanc logs them."""

from __future__ import annotations

import time

import requests

from tests.pacs.test_index_store import SMALL_FILE, make_instance
from workbench.pacs import Config, Index
from workbench.pacs.server import serve

STABLE = ("StableSeries", "StableStudy", "StablePatient")


def _stable_changes(changes: list[dict], ids: set[str]) -> list[tuple[str, str, str]]:
    return [
        (c["ChangeType"], c["ResourceType"], c["ID"])
        for c in changes
        if c["ChangeType"] in STABLE and c["ID"] in ids
    ]


def _wait_for_stable(read_changes, ids: set[str], timeout: float = 20.0) -> list[dict]:
    """The change log once the three Stable* changes of ``ids`` are in it."""
    deadline = time.monotonic() + timeout
    while True:
        changes = read_changes()
        if len(_stable_changes(changes, ids)) >= 3 or time.monotonic() > deadline:
            return changes
        time.sleep(0.1)


def _index_changes(index: Index) -> list[dict]:
    return index.changes(limit=1000)["Changes"]


def test_resources_become_stable_once_instances_stop_arriving(tmp_path, sample_data, database):
    index = Index(database.config(tmp_path / "store", StableAge=2))
    try:
        template = sample_data / SMALL_FILE
        same_series = {"patient": "S", "study": "1.2.9", "series": "1.2.9.1"}
        first = index.ingest_bytes(make_instance(template, **same_series))
        time.sleep(1.0)
        second = index.ingest_bytes(make_instance(template, **same_series))
        time.sleep(1.5)
        ids = {first.series_id, first.study_id, first.patient_id}
        # 2.5 s after the first instance, but the second one restarted the clock.
        assert _stable_changes(_index_changes(index), ids) == []
        assert index.resource("Study", first.study_id)["IsStable"] is False

        changes = _wait_for_stable(lambda: _index_changes(index), ids)
        assert _stable_changes(changes, ids) == [
            ("StableSeries", "Series", second.series_id),
            ("StableStudy", "Study", second.study_id),
            ("StablePatient", "Patient", second.patient_id),
        ]
        last_new = max(c["Seq"] for c in changes if c["ChangeType"] == "NewInstance")
        assert min(c["Seq"] for c in changes if c["ChangeType"] in STABLE) > last_new
        assert index.resource("Study", first.study_id)["IsStable"] is True
        time.sleep(2.5)  # announced once, not again
        assert len(_stable_changes(_index_changes(index), ids)) == 3
    finally:
        index.close()


def test_resources_deleted_before_they_settle_are_not_announced(tmp_path, sample_data, database):
    index = Index(database.config(tmp_path / "store", StableAge=1))
    try:
        kept = index.ingest_bytes(make_instance(sample_data / SMALL_FILE, patient="KEPT"))
        gone = index.ingest_bytes(make_instance(sample_data / SMALL_FILE, patient="GONE"))
        index.delete("Patient", gone.patient_id)
        changes = _wait_for_stable(
            lambda: _index_changes(index), {kept.series_id, kept.study_id, kept.patient_id}
        )
        gone_ids = {gone.series_id, gone.study_id, gone.patient_id}
        assert _stable_changes(changes, gone_ids) == []
    finally:
        index.close()


def test_stable_changes_match_a_real_orthanc(orthanc, tmp_path, sample_data):
    """The same two instances sent to both servers (Orthanc runs with StableAge 1)."""
    handle = serve(
        Config(StorageDirectory=str(tmp_path / "store"), HttpPort=0, StableAge=1), dicom=False
    )
    template = sample_data / SMALL_FILE
    study = "1.2.826.0.1.3680043.8.498.77"
    instances = [
        make_instance(template, patient="STABLE-PARITY", study=study, series=study + ".1")
        for _ in range(2)
    ]
    answers: dict[str, dict] = {}
    try:
        for name, post in (("ours", handle.url), ("orthanc", orthanc.url)):
            for data in instances:
                answer = requests.post(f"{post}/instances", data=data, timeout=30).json()
                assert answer["Status"] == "Success"
            answers[name] = answer
        ids = {answers["ours"][key] for key in ("ParentSeries", "ParentStudy", "ParentPatient")}
        assert ids == {
            answers["orthanc"][key] for key in ("ParentSeries", "ParentStudy", "ParentPatient")
        }

        def read(url):
            return lambda: requests.get(f"{url}/changes?limit=1000", timeout=30).json()["Changes"]

        ours = _stable_changes(_wait_for_stable(read(handle.url), ids), ids)
        theirs = _stable_changes(_wait_for_stable(read(orthanc.url), ids), ids)
        assert len(theirs) == 3
        assert ours == theirs
    finally:
        handle.stop()
        if "orthanc" in answers:  # the session's Orthanc is shared with other tests
            orthanc.delete(f"/patients/{answers['orthanc']['ParentPatient']}")
