"""Storage recycling as Orthanc: oldest unprotected patients go first; protected never."""

from __future__ import annotations

import pytest

from tests.pacs.test_index_store import SMALL_FILE, make_instance
from workbench.pacs import Index, StorageFullError
from workbench.pacs.recycle import MB


@pytest.fixture
def template(sample_data):
    return sample_data / SMALL_FILE


@pytest.fixture
def make_index(tmp_path, database):
    """Open an index with ``options`` (on each kind of database); closed after the test."""
    opened: list[Index] = []

    def make(**options) -> Index:
        opened.append(Index(database.config(tmp_path / "store", **options)))
        return opened[-1]

    yield make
    for index in opened:
        index.close()


def _patients(index: Index) -> list[str]:
    return [index.main_dicom_tags("Patient", p)["PatientID"] for p in index.list_ids("Patient")]


def test_patient_count_recycles_the_oldest(make_index, template):
    index = make_index(MaximumPatientCount=2)
    for patient in ("A", "B", "C"):
        index.ingest_bytes(make_instance(template, patient=patient))
    assert _patients(index) == ["B", "C"]
    assert len(list(index.store.iter_uuids())) == 2  # A's file is gone too


def test_new_instance_of_a_patient_makes_it_recent(make_index, template):
    index = make_index(MaximumPatientCount=2)
    index.ingest_bytes(make_instance(template, patient="A"))
    index.ingest_bytes(make_instance(template, patient="B"))
    index.ingest_bytes(make_instance(template, patient="A"))  # A is fed again
    index.ingest_bytes(make_instance(template, patient="C"))
    assert sorted(_patients(index)) == ["A", "C"]


def test_protected_patients_are_never_recycled(make_index, template):
    index = make_index(MaximumPatientCount=2)
    a = index.ingest_bytes(make_instance(template, patient="A"))
    index.ingest_bytes(make_instance(template, patient="B"))
    index.set_protected(a.patient_id, True)
    index.ingest_bytes(make_instance(template, patient="C"))
    assert sorted(_patients(index)) == ["A", "C"]
    assert index.is_protected(a.patient_id)


def test_full_store_refuses_and_loses_nothing(make_index, template):
    index = make_index(MaximumPatientCount=2)
    stored = [index.ingest_bytes(make_instance(template, patient=p)) for p in ("A", "B")]
    for result in stored:
        index.set_protected(result.patient_id, True)
    before = {r.instance_id: index.instance_path(r.instance_id).read_bytes() for r in stored}
    with pytest.raises(StorageFullError, match="MaximumPatientCount=2") as caught:
        index.ingest_bytes(make_instance(template, patient="C"))
    assert caught.value.http_status == 507 and caught.value.dimse_status == 0xA700
    after = {i: index.instance_path(i).read_bytes() for i in index.list_ids("Instance")}
    assert after == before
    assert list(index.incoming_dir.iterdir()) == []
    assert len(list(index.store.iter_uuids())) == 2
    # More instances for a patient already stored are still welcome.
    assert index.ingest_bytes(make_instance(template, patient="A")).status == "Success"


def test_storage_size_recycles_by_bytes(make_index, sample_data):
    big = (
        sample_data
        / "nema_ct1_ge"
        / next(iter(p.name for p in (sample_data / "nema_ct1_ge").iterdir()))
    )
    size = big.stat().st_size
    limit_mb = 1
    per_mb = MB // size
    assert per_mb >= 1
    index = make_index(MaximumStorageSize=limit_mb)
    count = per_mb + 2
    for n in range(count):
        index.ingest_bytes(make_instance(big, patient=f"P{n:02d}"))
    stats = index.statistics()
    assert int(stats["TotalDiskSize"]) <= limit_mb * MB
    kept = _patients(index)
    # The newest patients survive; the oldest were recycled first.
    assert kept == [f"P{n:02d}" for n in range(count - len(kept), count)]
    assert len(kept) < count


def test_instance_larger_than_the_limit_is_refused(make_index, sample_data, template):
    index = make_index(MaximumStorageSize=1)
    index.ingest_bytes(make_instance(template, patient="A"))
    huge = max((p for p in sample_data.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    assert huge.stat().st_size > MB
    with pytest.raises(StorageFullError, match="larger than MaximumStorageSize"):
        index.ingest_file(huge)
    assert _patients(index) == ["A"]
