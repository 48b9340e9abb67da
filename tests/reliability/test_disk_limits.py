"""Storage recycling under concurrent ingest (``MaximumPatientCount``, ``MaximumStorageSize``),
and the refusal a sender gets when nothing can be recycled (HTTP 507, DIMSE 0xA700)."""

from __future__ import annotations

import threading
from collections import defaultdict

import pytest
import requests
from pydicom.uid import generate_uid

from tests.reliability.support import (
    associate,
    client_ae,
    make_instance,
    patient_series,
    start_server,
    store_status,
    stored_files,
    template,
    to_bytes,
)

pytestmark = pytest.mark.slow  # filling storage to its limits under concurrent ingest

MAX_PATIENTS = 6
WRITERS = 4  # half REST, half DIMSE
PATIENTS_PER_WRITER = 6
INSTANCES_PER_PATIENT = 8
OUT_OF_RESOURCES = 0xA700


@pytest.fixture(scope="module")
def base():
    return template()


def _patient_id(server, patient: str) -> str:
    found = server.post("/tools/lookup", data=patient).json()
    return next(item["ID"] for item in found if item["Type"] == "Patient")


def _protect(server, base, patient: str, count: int = 3) -> list[str]:
    uids = []
    for ds in patient_series(base, patient, count):
        answer = server.post("/instances", data=to_bytes(ds))
        assert answer.status_code == 200, answer.text
        uids.append(str(ds.SOPInstanceUID))
    assert server.put(f"/patients/{_patient_id(server, patient)}/protected", data="1").ok
    return uids


def _present_by_patient(server) -> dict[str, set[str]]:
    present: dict[str, set[str]] = defaultdict(set)
    for patient in server.get("/patients", params={"expand": "1"}).json():
        for item in server.get(f"/patients/{patient['ID']}/instances").json():
            present[patient["MainDicomTags"]["PatientID"]].add(
                item["MainDicomTags"]["SOPInstanceUID"]
            )
    return present


def _check_consistent(server) -> dict:
    statistics = server.get("/statistics").json()
    files = stored_files(server.storage)
    assert statistics["CountInstances"] == len(files), "rows and files disagree"
    assert int(statistics["TotalDiskSize"]) == sum(path.stat().st_size for path in files)
    assert not list((server.storage / "incoming").iterdir())
    return statistics


def _writer(server, base, name: str, use_dimse: bool, acks: dict, errors: list) -> None:
    """Send PATIENTS_PER_WRITER patients one after the other; record each acknowledgement."""
    assoc = associate(client_ae(), server.dicom_port) if use_dimse else None
    session = requests.Session()
    try:
        for p in range(PATIENTS_PER_WRITER):
            patient = f"{name}-{p}"
            for ds in patient_series(base, patient, INSTANCES_PER_PATIENT):
                if assoc is not None:
                    status = store_status(assoc, ds)
                    ok = status == 0
                    detail = f"status {status}"
                else:
                    answer = session.post(server.url + "/instances", data=to_bytes(ds), timeout=60)
                    ok = answer.status_code == 200
                    detail = answer.text[:200]
                if ok:
                    acks[patient].append(str(ds.SOPInstanceUID))
                else:
                    errors.append(f"{patient}: {detail}")
    finally:
        session.close()
        if assoc is not None:
            assoc.release()


def test_patient_count_recycling_under_concurrent_ingest(tmp_path_factory, base):
    server = start_server(tmp_path_factory.mktemp("max-patients"), MaximumPatientCount=MAX_PATIENTS)
    try:
        protected = _protect(server, base, "PROTECTED")
        acks: dict[str, list[str]] = defaultdict(list)
        errors: list[str] = []
        threads = [
            threading.Thread(target=_writer, args=(server, base, f"W{i}", i % 2 == 1, acks, errors))
            for i in range(WRITERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert not errors, errors[:10]  # recycling always had room: nothing refused

        statistics = _check_consistent(server)
        assert statistics["CountPatients"] <= MAX_PATIENTS
        present = _present_by_patient(server)
        assert present["PROTECTED"] == set(protected), "a protected patient was recycled"
        for patient, sent in acks.items():
            kept = present.get(patient, set())
            # Recycling removes whole patients; a patient fed again after that starts over.
            # So what is left of a patient is exactly its last acknowledged instances: an
            # instance deleted while its patient was still being written would break this.
            assert kept == set(sent[len(sent) - len(kept) :]), (
                f"{patient}: kept {len(kept)} of {len(sent)}, not the most recent ones"
            )
        # The most recently fed patients are the ones kept.
        assert sum(1 for p in acks if present.get(p)) >= 1
    finally:
        server.stop()


def test_storage_size_recycling_and_refusal_when_nothing_can_go(tmp_path_factory, base):
    server = start_server(tmp_path_factory.mktemp("max-size"), MaximumStorageSize=1)
    try:
        size = len(to_bytes(base))
        per_megabyte = (1024 * 1024) // size
        protected = _protect(server, base, "KEEP", count=per_megabyte // 2)
        # Fill well past the limit with other patients: older ones are recycled.
        for p in range(6):
            for ds in patient_series(base, f"FILL-{p}", per_megabyte // 4):
                answer = server.post("/instances", data=to_bytes(ds))
                assert answer.status_code == 200, answer.text
        statistics = _check_consistent(server)
        assert int(statistics["TotalDiskSize"]) <= 1024 * 1024
        present = _present_by_patient(server)
        assert present["KEEP"] == set(protected)
        assert present.get("FILL-5"), "the newest patient was recycled"
        assert not present.get("FILL-0"), "the oldest patient was not recycled"

        # Protect everyone left: now nothing can be recycled.
        for patient in present:
            server.put(f"/patients/{_patient_id(server, patient)}/protected", data="1")
        before = _check_consistent(server)
        newcomer = make_instance(
            base, patient="NO-ROOM", study=generate_uid(), series=generate_uid()
        )
        # Whatever headroom is left takes a few more (protected) patients, then none fits.
        answer = server.post("/instances", data=to_bytes(newcomer))
        while answer.status_code == 200:  # the last bytes of headroom
            newcomer = make_instance(
                base,
                patient=f"NO-ROOM-{generate_uid()[-6:]}",
                study=generate_uid(),
                series=generate_uid(),
            )
            server.put(f"/patients/{answer.json()['ParentPatient']}/protected", data="1")
            answer = server.post("/instances", data=to_bytes(newcomer))
        assert answer.status_code == 507, answer.text
        assert "MaximumStorageSize" in answer.json()["Details"]
        before = _check_consistent(server)

        assoc = associate(client_ae(), server.dicom_port)
        status = store_status(
            assoc,
            make_instance(
                base, patient="NO-ROOM-DIMSE", study=generate_uid(), series=generate_uid()
            ),
        )
        assoc.release()
        assert status == OUT_OF_RESOURCES
        after = _check_consistent(server)
        assert after == before, "a refused instance changed the store"
    finally:
        server.stop()


def test_patient_count_refusal_when_every_patient_is_protected(tmp_path_factory, base):
    server = start_server(tmp_path_factory.mktemp("all-protected"), MaximumPatientCount=2)
    try:
        first = _protect(server, base, "ONE", count=2)
        _protect(server, base, "TWO", count=2)
        newcomer = make_instance(base, patient="THREE", study=generate_uid(), series=generate_uid())
        answer = server.post("/instances", data=to_bytes(newcomer))
        assert answer.status_code == 507, answer.text
        assert answer.json()["HttpStatus"] == 507
        assoc = associate(client_ae(), server.dicom_port)
        assert store_status(assoc, newcomer) == OUT_OF_RESOURCES
        # A known patient still receives: the patient count does not grow.
        more = make_instance(base, patient="ONE", study=generate_uid(), series=generate_uid())
        assert store_status(assoc, more) == 0
        assoc.release()
        statistics = _check_consistent(server)
        assert statistics["CountPatients"] == 2
        assert statistics["CountInstances"] == 5
        assert set(first) <= _present_by_patient(server)["ONE"]
    finally:
        server.stop()
