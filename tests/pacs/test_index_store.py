"""The store keeps its promises: durable ingest, duplicates, overwrite, reconcile, concurrency."""

from __future__ import annotations

import ctypes
import io
import itertools
import mmap
import shutil
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from workbench.pacs import Index, InvalidInstanceError, orthanc_id
from workbench.pacs import store as store_module
from workbench.pacs.errors import StorageWriteError, UnknownResourceError

SMALL_FILE = Path("cr_agfa_mono1_tiny") / "6154"  # 2.3 kB real CR


def make_instance(
    template: Path,
    *,
    patient: str = "P1",
    study: str | None = None,
    series: str | None = None,
    name: str = "Doe^John",
    **attributes,
) -> bytes:
    """A copy of a real file under new identifiers (and ``attributes``), as Part-10 bytes."""
    ds = pydicom.dcmread(template)
    ds.PatientID = patient
    ds.PatientName = name
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = series or generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture
def template(sample_data) -> Path:
    return sample_data / SMALL_FILE


@pytest.fixture
def index(tmp_path, database) -> Index:
    idx = Index(database.config(tmp_path / "store"))
    yield idx
    idx.close()


def test_ids_are_orthanc_sha1():
    assert orthanc_id("") == "da39a3ee-5e6b4b0d-3255bfef-95601890-afd80709"
    import hashlib

    digest = hashlib.sha1(b"A|1.2|1.2.3").hexdigest()
    assert orthanc_id("A", "1.2", "1.2.3").replace("-", "") == digest


def test_ingest_is_durable_and_named_by_uuid(index, template):
    data = template.read_bytes()
    result = index.ingest_bytes(data)
    assert result.status == "Success"
    path = index.instance_path(result.instance_id)
    assert path.read_bytes() == data
    assert path.is_relative_to(index.store.root)
    # The file name is a UUID: no tag value (PatientID 77654033) anywhere in the path.
    assert "77654033" not in str(path) and len(path.name) == 36
    assert list(index.incoming_dir.iterdir()) == []


def test_move_consumes_the_incoming_file(index, template):
    incoming = index.store.new_temp_path()
    incoming.write_bytes(template.read_bytes())
    result = index.ingest_file(incoming, move=True)
    assert not incoming.exists()
    assert index.instance_path(result.instance_id).read_bytes() == template.read_bytes()


def test_batch_under_reserved_names_started_to_disk_is_stored_as_written(index, template):
    datas = [make_instance(template) for _ in range(3)]
    paths, names = [], []
    fresh = index.store.batch_names()
    for data in datas:
        path = index.incoming_dir / f"{uuid.uuid4().hex}.part"
        with open(path, "xb") as handle:
            handle.write(data)
            handle.flush()
            store_module.start_writeback(handle.fileno())
        paths.append(path)
        names.append(next(fresh))
    assert all(index.store.path_of(name).parent.is_dir() for name in names)
    names[1] = None  # given none: a new one
    outcomes = index.ingest_files(paths, names=names)
    stored = [index.instance_path(result.instance_id) for _, result in outcomes]
    assert [path.read_bytes() for path in stored] == datas
    assert [stored[0].name, stored[2].name] == [names[0], names[2]]
    assert stored[1].name not in names
    assert list(index.incoming_dir.iterdir()) == []


def test_batch_names_share_a_directory_a_group_at_a_time(index, template):
    group = store_module.BATCH_DIRECTORY_FILES
    names = list(itertools.islice(index.store.batch_names(), 2 * group))
    assert len(set(names)) == len(names)
    assert {uuid.UUID(name).version for name in names} == {4}  # random UUIDs still
    for start in (0, group):
        directories = {index.store.path_of(name).parent for name in names[start : start + group]}
        assert len(directories) == 1 and directories.pop().is_dir()
    # A batch given no names gets them the same way: its files share directories.
    datas = [make_instance(template) for _ in range(3)]
    paths = [index.store.write_bytes(data) for data in datas]
    outcomes = index.ingest_files(paths)
    stored = [index.instance_path(result.instance_id) for _, result in outcomes]
    assert [path.read_bytes() for path in stored] == datas
    assert len({path.parent for path in stored}) == 1


def test_batch_whose_files_cannot_be_made_durable_keeps_nothing(index, template):
    # A file stands where a fan-out directory should be: the batch cannot be placed.
    (index.store.root / "ee").write_bytes(b"not a directory")
    datas = [make_instance(template) for _ in range(3)]
    paths = [index.store.write_bytes(data) for data in datas]
    # The first is placed (under a name of another directory: a fresh name could draw
    # "ee" too), the others cannot be.
    names = ["00" + str(uuid.uuid4())[2:], *("ee" + str(uuid.uuid4())[2:] for _ in datas[1:])]
    outcomes = index.ingest_files(paths, names=names)
    assert all(isinstance(result, StorageWriteError) for _, result in outcomes)
    assert "could not be made durable" in str(outcomes[1][1])
    assert index.statistics()["CountInstances"] == 0
    assert list(index.store.iter_uuids()) == []
    assert list(index.incoming_dir.iterdir()) == []


def test_batch_without_syncfs_keeps_the_names_its_rows_have(index, template, monkeypatch):
    # As on a platform without syncfs: each file is committed on its own, under its name.
    monkeypatch.setattr(store_module, "_syncfs", lambda path: False)
    datas = [make_instance(template) for _ in range(3)]
    paths = [index.store.write_bytes(data) for data in datas]
    outcomes = index.ingest_files(paths)
    assert [index.instance_path(r.instance_id).read_bytes() for _, r in outcomes] == datas


def test_duplicate_keeps_the_first(index, template):
    first = index.ingest_file(template)
    second = index.ingest_file(template)
    assert (first.status, second.status) == ("Success", "AlreadyStored")
    assert second.instance_id == first.instance_id
    assert index.statistics()["CountInstances"] == 1
    # No orphan file was left behind by the refused copy.
    assert len(list(index.store.iter_uuids())) == 1


def test_overwrite_instances_replaces(tmp_path, template, database):
    index = Index(database.config(tmp_path / "s", OverwriteInstances=True))
    first = index.ingest_file(template)
    old_uuid = index.resource("Instance", first.instance_id)["FileUuid"]
    again = index.ingest_file(template)
    assert again.status == "Success"
    assert index.resource("Instance", first.instance_id)["FileUuid"] != old_uuid
    assert index.statistics()["CountInstances"] == 1
    assert len(list(index.store.iter_uuids())) == 1


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"", "not a DICOM"),
        (b"hello world" * 20, "not a DICOM"),
        (b"\0" * 128 + b"DICM" + b"\x02\x00", "cannot read"),
    ],
)
def test_invalid_data_is_refused_and_nothing_stored(index, payload, reason):
    with pytest.raises(InvalidInstanceError, match="uploaded data"):
        index.ingest_bytes(payload)
    assert index.statistics()["CountInstances"] == 0
    assert list(index.incoming_dir.iterdir()) == []


def test_missing_uid_is_refused_with_its_name(index, template):
    ds = pydicom.dcmread(template)
    del ds.SeriesInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with pytest.raises(InvalidInstanceError, match="SeriesInstanceUID"):
        index.ingest_bytes(buffer.getvalue())


def test_received_file_is_stored_durably_and_left_to_its_writer(index, template, tmp_path):
    # As pynetdicom's C-STORE data set: a file its writer deletes once the handler returns.
    received = tmp_path / "received.dcm"
    data = make_instance(template)
    received.write_bytes(data)
    result = index.ingest_received(received, remote_aet="MODALITY")
    assert result.status == "Success"
    assert index.instance_path(result.instance_id).read_bytes() == data
    assert received.read_bytes() == data  # still the writer's, unchanged
    assert index.instance_info(result.instance_id)["RemoteAET"] == "MODALITY"
    again = index.ingest_received(received)
    assert again.status == "AlreadyStored"
    assert len(list(index.store.iter_uuids())) == 1  # the copy stored for nothing is gone


def _cached_pages(path: Path) -> int:
    """How many of the file's pages are in the page cache (Linux ``mincore``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long)  # fmt: skip
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    with open(path, "rb") as handle:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, handle.fileno(), 0)
    assert address not in (None, ctypes.c_void_p(-1).value)
    try:
        vector = ctypes.create_string_buffer(pages)
        assert libc.mincore(address, size, vector) == 0, ctypes.get_errno()
        return sum(byte & 1 for byte in vector.raw)
    finally:
        libc.munmap(address, size)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page cache advice: Linux")
@pytest.mark.parametrize("path_taken", ["batch", "received", "bytes"])
def test_stored_files_leave_the_page_cache_from_a_size_on(
    index, template, tmp_path, monkeypatch, path_taken
):
    def store(data: bytes) -> Path:
        if path_taken == "batch":
            incoming = index.store.new_temp_path()
            incoming.write_bytes(data)
            ((_, result),) = index.ingest_files([incoming])
        elif path_taken == "received":
            received = tmp_path / f"{uuid.uuid4().hex}.dcm"
            received.write_bytes(data)
            result = index.ingest_received(received)
        else:
            result = index.ingest_bytes(data)
        return index.instance_path(result.instance_id)

    small = store(make_instance(template))  # 2.3 kB, under the size: left in the cache
    assert _cached_pages(small) > 0
    monkeypatch.setattr(store_module, "DROP_CACHED_BYTES", 1024)
    data = make_instance(template)
    stored = store(data)
    assert _cached_pages(stored) == 0
    assert stored.read_bytes() == data


def test_received_file_refused_leaves_nothing_in_the_store(index, tmp_path):
    received = tmp_path / "received.dcm"
    received.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    with pytest.raises(InvalidInstanceError, match="received from X"):
        index.ingest_received(received, label="data set received from X")
    assert list(index.store.iter_uuids()) == []
    assert received.exists()


def test_received_file_on_another_filesystem_is_copied(index, template):
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == index.store.root.stat().st_dev:
        pytest.skip("needs /dev/shm on a filesystem other than the store's")
    data = make_instance(template)
    with tempfile.NamedTemporaryFile(dir=shm, suffix=".dcm") as received:
        received.write(data)
        received.flush()
        result = index.ingest_received(received.name)
        stored = index.instance_path(result.instance_id)
        assert stored.read_bytes() == data
        assert stored.stat().st_dev != Path(received.name).stat().st_dev
    assert list(index.incoming_dir.iterdir()) == []


@pytest.mark.parametrize("received", [False, True], ids=["bytes", "received file"])
def test_fan_out_directories_removed_by_hand_are_made_again(
    index, template, monkeypatch, tmp_path, received
):
    # File UUIDs chosen so that each ingest meets a directory removed after the first one
    # (received files share the first one's directories, their names' last digits differ).
    names = iter(
        [
            "abcd0000-0000-4000-8000-000000000000",
            "abef0000-0000-4000-8000-000000000001",
            "abcd1111-0000-4000-8000-000000000002",
        ]
    )
    monkeypatch.setattr(store_module.uuid, "uuid4", lambda: uuid.UUID(next(names)))

    def ingest(data: bytes):
        if not received:
            return index.ingest_bytes(data)
        path = tmp_path / "received.dcm"
        path.write_bytes(data)
        return index.ingest_received(path)

    first = ingest(make_instance(template))
    shutil.rmtree(index.instance_path(first.instance_id).parents[1])  # root/ab
    for _ in range(2):  # a new root/ab/ef (received: root/ab/cd), then root/ab/cd it knew
        data = make_instance(template)
        result = ingest(data)
        assert index.instance_path(result.instance_id).read_bytes() == data


def test_delete_removes_files_and_empty_parents(index, template):
    study = generate_uid()
    a = index.ingest_bytes(make_instance(template, study=study))
    b = index.ingest_bytes(make_instance(template, study=study))
    path_a = index.instance_path(a.instance_id)
    remaining = index.delete("Series", a.series_id)
    assert remaining == {"ID": a.study_id, "Path": f"/studies/{a.study_id}", "Type": "Study"}
    assert not path_a.exists()
    assert index.delete("Instance", b.instance_id) is None  # patient went with it
    assert index.statistics()["CountPatients"] == 0
    assert index.statistics()["TotalDiskSize"] == "0"
    with pytest.raises(UnknownResourceError):
        index.delete("Study", a.study_id)


def test_reconcile_repairs_rows_and_files(tmp_path, template, database):
    config = database.config(tmp_path / "store")
    index = Index(config)
    kept = index.ingest_bytes(make_instance(template, patient="KEPT"))
    lost = index.ingest_bytes(make_instance(template, patient="LOST"))
    index.instance_path(lost.instance_id).unlink()  # a file lost behind our back
    stray = index.ingest_bytes(make_instance(template, patient="STRAY"))
    stray_bytes = index.instance_path(stray.instance_id).read_bytes()
    index.close()
    # A file without a row (crash between rename and commit), an interrupted write and junk.
    import sqlalchemy as sa

    engine = sa.create_engine(config.database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("DELETE FROM instances WHERE public_id = :id"), {"id": stray.instance_id}
        )
    engine.dispose()
    (index.store.incoming_dir / "half.part").write_bytes(stray_bytes[:100])
    junk = index.store.path_of("12345678-1234-5678-1234-567812345678")
    junk.parent.mkdir(parents=True, exist_ok=True)
    junk.write_bytes(b"not dicom")

    reopened = Index(config)
    report = reopened.last_reconcile
    assert report.rows_without_file_removed == [lost.instance_id]
    assert len(report.files_reindexed) == 1
    assert report.incomplete_writes_removed == ["half.part"]
    assert report.unreadable_files_quarantined == ["12345678-1234-5678-1234-567812345678"]
    assert set(reopened.list_ids("Instance")) == {kept.instance_id, stray.instance_id}
    assert reopened.instance_path(stray.instance_id).read_bytes() == stray_bytes
    assert reopened.statistics()["CountPatients"] == 2
    assert not reopened.reconcile().repaired  # a second pass finds nothing


def test_concurrent_ingest_from_eight_threads(index, template):
    payloads = [
        [
            make_instance(template, patient=f"T{t}", study=f"1.2.3.{t}", series=f"1.2.3.{t}.1")
            for _ in range(25)
        ]
        for t in range(8)
    ]
    results: list = []
    errors: list = []

    def worker(items):
        for data in items:
            try:
                results.append(index.ingest_bytes(data))
            except Exception as exc:  # any failure (e.g. "database is locked") is a defect
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(items,)) for items in payloads]
    for thread in threads:
        thread.start()
    # Readers run at the same time as the writers.
    for _ in range(20):
        index.find("Study", {"PatientID": "T*"})
        index.statistics()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 200 and all(r.status == "Success" for r in results)
    stats = index.statistics()
    assert (stats["CountInstances"], stats["CountSeries"], stats["CountPatients"]) == (200, 8, 8)
    assert len(set(index.list_ids("Instance"))) == 200
    assert len(list(index.store.iter_uuids())) == 200


def test_second_process_does_not_reconcile_a_store_in_use(tmp_path, template, database):
    config = database.config(tmp_path / "store")
    running = Index(config)
    in_flight = running.store.new_temp_path()  # a receiver is writing this file right now
    in_flight.write_bytes(template.read_bytes()[:100])
    script = (
        "import sys; from workbench.pacs import Config, Index; "
        f"index = Index(Config(StorageDirectory={config.StorageDirectory!r}, "
        f"DatabaseUrl={config.DatabaseUrl!r})); "
        "print(index.last_reconcile is None)"
    )
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.stdout.strip() == "True", done.stderr
    assert in_flight.exists()
    running.close()
    reopened = Index(config)  # alone now: reconciles and removes the leftover
    assert reopened.last_reconcile.incomplete_writes_removed == [in_flight.name]


def test_records_indexed_in_bulk_across_batches_and_again(tmp_path, database):
    def records(patients: range):
        for p in patients:
            for s in range(2):
                for i in range(3):
                    yield {
                        "PatientID": f"BULK{p}",
                        "PatientName": f"Bulk^{p}",
                        "StudyInstanceUID": f"1.2.3.{p}",
                        "SeriesInstanceUID": f"1.2.3.{p}.{s}",
                        "SOPInstanceUID": f"1.2.3.{p}.{s}.{i}",
                        "Modality": "CT",
                    }

    index = Index(database.config(tmp_path / "store"))
    try:
        # Batches of 4 split patients, studies and series: later batches find their parents.
        assert index.index_records(records(range(3)), batch_size=4) == 18
        assert index.index_records(records(range(2, 5)), batch_size=5) == 12  # 2 known
        statistics = index.statistics()
        assert (statistics["CountPatients"], statistics["CountStudies"]) == (5, 5)
        assert (statistics["CountSeries"], statistics["CountInstances"]) == (10, 30)
        (series,) = index.find("Series", {"SeriesInstanceUID": "1.2.3.4.1"})
        instances = index.find("Instance", {"SeriesInstanceUID": "1.2.3.4.1"})
        assert {index.ancestor("Instance", i, "Series") for i in instances} == {series}
        assert len(index.find("Study", {"PatientName": "bulk^*"})) == 5
    finally:
        index.close()
