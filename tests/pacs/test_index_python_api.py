"""The notebook API: import folders and ZIPs, open a stored series lazily, anonymize; the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.pacs.test_index_store import SMALL_FILE, make_instance
from workbench.io import open_series
from workbench.pacs import Config, Index, importing
from workbench.pacs.errors import BadRequestError
from workbench.pacs.incoming import Refused

SERIES_DIR = "series_ct_philips_ingenuity_5mm"
REPO = Path(__file__).resolve().parents[2]


def test_import_folder_and_zip_then_open_series(tmp_path, sample_data, database):
    folder = sample_data / SERIES_DIR
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.iterdir())[:5]:
            zf.write(path, f"zipped/{path.name}")
        zf.writestr("notes.txt", "not DICOM")
    index = Index(database.config(tmp_path / "store"))
    from_zip = index.import_path(archive, progress=False)
    assert (from_zip.stored, len(from_zip.errors)) == (5, 1)
    assert "notes.txt" in next(iter(from_zip.errors))
    from_folder = index.import_path(folder, progress=False)
    count = len(list(folder.iterdir()))
    assert (from_folder.stored, from_folder.already_stored) == (count - 5, 5)

    (series_id,) = index.list_ids("Series")
    volume = index.open_series(series_id)
    reference = open_series(folder)
    assert volume.sizes["frame"] == count
    assert list(volume.coords["sop_instance_uid"].values) == list(
        reference.coords["sop_instance_uid"].values
    )
    np.testing.assert_array_equal(volume[count // 2].values, reference[count // 2].values)


def test_import_makes_many_files_durable_per_sync(
    tmp_path, sample_data, database, monkeypatch, syncs
):
    monkeypatch.setattr(importing, "BATCH_FILES", 4)
    files = sorted((sample_data / SERIES_DIR).iterdir())
    folder = tmp_path / "in"
    folder.mkdir()
    for path in files:
        (folder / path.name).symlink_to(path)
    gone = tmp_path / "gone"
    gone.symlink_to(tmp_path / "nowhere")  # cannot be read
    (folder / "notes.txt").write_text("not DICOM")
    index = Index(database.config(tmp_path / "store"))
    refused_name = files[0].name
    refused_uid = str(pydicom.dcmread(files[0]).SOPInstanceUID)

    def refuse_one(instance):
        if instance.tags["SOPInstanceUID"] == refused_uid:
            raise Refused("not this one")

    index.incoming_filter = refuse_one
    syncs.single.clear()
    summary = index.import_path(folder, gone, progress=False)
    assert summary.stored == len(files) - 1
    assert set(summary.errors) == {str(folder / refused_name), str(folder / "notes.txt"), str(gone)}
    assert "cannot read it" in summary.errors[str(gone)]
    assert "not this one" in summary.errors[str(folder / refused_name)]
    batches = -(-(len(files) + 1) // 4)  # the readable sources, four at a time
    # The copies are written under their store names: their data and names made durable
    # together, once per batch (a batch with nothing to store, none).
    assert batches - 1 <= len(syncs.filesystem) <= batches
    assert len(syncs.single) < batches  # no file synced on its own (fan-out directories aside)
    assert len(index.list_ids("Instance")) == len(files) - 1
    # The refused instance's copy is gone; nothing passed through the incoming directory.
    assert set(index.store.iter_uuids()) == set(index.stored_files())
    assert not list(index.incoming_dir.iterdir())
    index.close()


def test_an_import_stopped_midway_leaves_no_staged_copy(
    tmp_path, sample_data, database, monkeypatch
):
    # The next batch is copied while one is indexed: stopping after the first batch leaves
    # the one staged ahead, which must go.
    monkeypatch.setattr(importing, "BATCH_FILES", 3)
    index = Index(database.config(tmp_path / "store"))
    batches = []

    def ingest_then_stop(paths, **options):
        batches.append(list(paths))
        deadline = time.monotonic() + 30
        while len(list(index.store.iter_uuids())) < 6:  # the next batch staged too
            assert time.monotonic() < deadline, "the next batch was not staged"
            time.sleep(0.01)
        raise KeyboardInterrupt

    monkeypatch.setattr(index, "ingest_files", ingest_then_stop)
    with pytest.raises(KeyboardInterrupt):
        index.import_path(sample_data / SERIES_DIR, progress=False)
    assert len(batches) == 1 and len(batches[0]) == 3
    # The batch handed over is the caller's to consume; the one staged ahead is gone.
    assert set(index.store.iter_uuids()) == {path.name for path in batches[0]}
    index.close()
    # Copies are written under their store names: a process killed before their rows were
    # committed leaves them for the next start, which indexes the whole ones and quarantines
    # one cut short (none of them had been acknowledged).
    cut_short = batches[0][0]
    cut_short.write_bytes(cut_short.read_bytes()[: cut_short.stat().st_size // 2])
    index = Index(database.config(tmp_path / "store"))
    report = index.last_reconcile
    assert sorted(report.files_reindexed) == sorted(path.name for path in batches[0][1:])
    assert report.unreadable_files_quarantined == [cut_short.name]
    assert len(index.list_ids("Instance")) == 2
    index.close()


def _count_directory_reads(monkeypatch) -> list[int]:
    reads: list[int] = []
    real = zipfile.ZipFile._RealGetContents
    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents",
                        lambda self: (reads.append(1), real(self))[1])  # fmt: skip
    return reads


def _archive_of(path: Path, instances: list[bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for n, instance in enumerate(instances):
            archive.writestr(f"{n}.dcm", instance)
    return path


def test_import_of_a_zip_by_threads_reads_its_directory_once(
    tmp_path, sample_data, database, monkeypatch
):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))  # no copying process
    instances = [make_instance(sample_data / SMALL_FILE) for _ in range(40)]
    archive_path = _archive_of(tmp_path / "study.zip", instances)
    reads = _count_directory_reads(monkeypatch)
    index = Index(database.config(tmp_path / "store"))
    summary = index.import_path(archive_path, progress=False)
    assert summary.stored == 40 and not summary.errors
    assert len(reads) <= 3  # is_zipfile aside: listed once, read once (41 times before)
    index.close()


def test_the_copying_process_reads_a_zip_directory_once(tmp_path, sample_data, monkeypatch):
    import io

    from workbench.pacs import file_copier

    instances = [make_instance(sample_data / SMALL_FILE) for _ in range(40)]
    members = importing.zip_members(_archive_of(tmp_path / "study.zip", instances))
    reads = _count_directory_reads(monkeypatch)
    requests = "".join(  # two requests, as two windows of an import
        json.dumps([[importing._described(member), str(tmp_path / f"copy-{n}")]
                    for n, (_, member) in enumerate(members) if n % 2 == half]) + "\n"
        for half in (0, 1))  # fmt: skip
    replies = io.StringIO()
    file_copier.serve(io.StringIO(requests), replies, threads=2)
    assert [len(json.loads(line)) for line in replies.getvalue().splitlines()] == [20, 20]
    assert len(reads) == 1
    assert [(tmp_path / f"copy-{n}").read_bytes() for n in range(40)] == instances


def test_import_of_a_zip_keeps_two_members_of_one_name(tmp_path, sample_data, database):
    archive_path = tmp_path / "twice.zip"
    with zipfile.ZipFile(archive_path, "w") as archive, pytest.warns(UserWarning, match="Dup"):
        for _ in range(2):
            archive.writestr("image.dcm", make_instance(sample_data / SMALL_FILE))
    index = Index(database.config(tmp_path / "store"))
    summary = index.import_path(archive_path, progress=False)
    assert summary.stored == 2 and summary.already_stored == 0
    index.close()


def test_a_folder_import_opens_the_archives_it_holds_whatever_their_names(
    tmp_path, sample_data, database
):
    folder = tmp_path / "in"
    folder.mkdir()
    with zipfile.ZipFile(folder / "export.bin", "w") as archive:  # a ZIP by its first bytes
        archive.writestr("a.dcm", make_instance(sample_data / SMALL_FILE))
    (folder / "image.zip").write_bytes(make_instance(sample_data / SMALL_FILE))  # not a ZIP
    index = Index(database.config(tmp_path / "store"))
    summary = index.import_path(folder, progress=False)
    assert summary.stored == 2 and not summary.errors
    index.close()


def test_the_copying_process_copies_and_names_what_it_cannot_read(tmp_path, sample_data):
    source = tmp_path / os.fsdecode(b"scan-\xff.dcm")  # a name that is not UTF-8
    source.write_bytes(make_instance(sample_data / SMALL_FILE))
    missing = tmp_path / "missing.dcm"
    process = importing.CopyingProcess()
    try:
        size, error = process.copy([(source, tmp_path / "copy"), (missing, tmp_path / "lost")])
        assert size == source.stat().st_size
        assert (tmp_path / "copy").read_bytes() == source.read_bytes()
        assert isinstance(error, OSError) and "missing.dcm" in str(error)
        assert not (tmp_path / "lost").exists()
        process._process.kill()
        with pytest.raises(OSError, match="process copying the files ended"):
            process.copy([(source, tmp_path / "again")])
    finally:
        process.close()


def test_files_are_copied_by_threads_where_no_process_can_start(
    tmp_path, sample_data, database, monkeypatch
):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    index = Index(database.config(tmp_path / "store"))
    summary = index.import_path(sample_data / SERIES_DIR, progress=False)
    assert summary.stored == len(list((sample_data / SERIES_DIR).iterdir()))
    index.close()


def test_anonymize_from_python(tmp_path, sample_data, database):
    index = Index(database.config(tmp_path / "store"))
    source = sorted((sample_data / SERIES_DIR).iterdir())[0]
    original = pydicom.dcmread(source)
    result = index.ingest_file(source)
    answer = index.anonymize("Instance", result.instance_id, patient_id="RESEARCH-001")
    copy = pydicom.dcmread(index.instance_path(answer["ID"]))
    assert copy.PatientID == "RESEARCH-001"
    assert copy.SOPInstanceUID != original.SOPInstanceUID
    assert copy.StudyInstanceUID != original.StudyInstanceUID
    assert "PatientBirthDate" not in copy or not copy.PatientBirthDate
    origin = index.server_metadata("Instance", answer["ID"])
    assert origin == {"AnonymizedFrom": result.instance_id}


def test_modify_and_anonymize_series_from_python(tmp_path, sample_data, database):
    """The index's own calls take Orthanc's bodies; where copies come from is kept, and the
    anonymized patients are numbered across restarts."""
    config = database.config(tmp_path / "store")
    index = Index(config)
    files = sorted((sample_data / SERIES_DIR).iterdir())[:3]
    results = [index.ingest_file(path) for path in files]
    series = results[0].series_id
    answer = index.modify("Series", series, {"Replace": {"SeriesDescription": "Edited"},
                                             "Remove": ["StationName"]})  # fmt: skip
    assert answer["Type"] == "Series" and answer["InstancesCount"] == 3
    assert index.server_metadata("Series", answer["ID"]) == {"ModifiedFrom": series}
    copies = [pydicom.dcmread(path) for _, path in index.instance_files("Series", answer["ID"])]
    assert {ds.SeriesDescription for ds in copies} == {"Edited"}
    assert len({ds.SeriesInstanceUID for ds in copies}) == 1
    assert {ds.StudyInstanceUID for ds in copies} == {pydicom.dcmread(files[0]).StudyInstanceUID}
    assert not any("StationName" in ds for ds in copies)
    with pytest.raises(BadRequestError, match="Force"):
        index.modify("Series", series, {"Replace": {"SeriesInstanceUID": "1.2.3"}})

    names = [index.resource("Patient", index.anonymize("Study", results[0].study_id)[
        "PatientID"])["MainDicomTags"]["PatientName"] for _ in range(2)]  # fmt: skip
    index.close()
    reopened = Index(config)
    third = reopened.anonymize("Series", series, {"KeepSource": False})
    names.append(reopened.resource("Patient", third["PatientID"])["MainDicomTags"]["PatientName"])
    assert names == ["Anonymized1", "Anonymized2", "Anonymized3"]
    assert not reopened.exists("Series", series)  # KeepSource false
    reopened.close()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow  # runs the command line in new interpreters
def test_cli_import_and_ls(tmp_path, sample_data):
    store = str(tmp_path / "store")
    done = _cli("import", "--storage", store, "-q", str(sample_data / SERIES_DIR), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    count = len(list((sample_data / SERIES_DIR).iterdir()))
    assert f"{count} stored, 0 already stored, 0 refused" in done.stdout
    listed = _cli("ls", "--storage", store, "series", "Modality=CT", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("\n") == 1 and "CT" in listed.stdout
    nothing = _cli("ls", "--storage", store, "studies", "StudyDate=19000101-19001231", cwd=tmp_path)
    assert nothing.returncode == 0 and nothing.stdout == ""
    bad = _cli("ls", "--storage", store, "studies", "Nonsense=1", cwd=tmp_path)
    assert bad.returncode != 0 and "Unknown DICOM tag" in bad.stderr


def test_cli_import_interrupted_says_what_was_stored(tmp_path, sample_data, monkeypatch, capsys):
    import psutil

    from workbench import cli

    monkeypatch.setattr(importing, "BATCH_FILES", 4)
    real = Index.ingest_files
    calls = []

    def ingest_then_interrupt(self, paths, **options):
        calls.append(len(paths))
        if len(calls) == 2:  # Ctrl-C while the second batch is stored
            raise KeyboardInterrupt
        return real(self, paths, **options)

    monkeypatch.setattr(Index, "ingest_files", ingest_then_interrupt)
    store = tmp_path / "store"
    code = cli.main(["import", "--storage", str(store), "-q", str(sample_data / SERIES_DIR)])
    assert code == 130
    assert "interrupted after 4 instance(s) were stored" in capsys.readouterr().err

    def command(child: psutil.Process) -> str:
        try:
            return " ".join(child.cmdline())
        except psutil.Error:  # gone, or a zombie: not running anyway
            return ""

    # The copying process ended with the import (other children belong to other fixtures).
    assert not [child for child in psutil.Process().children() if "file_copier" in command(child)]
    monkeypatch.undo()
    # The batch in hand when it stopped was copied, not indexed: the next start indexes it.
    index = Index(Config.load(StorageDirectory=str(store)))
    assert len(index.last_reconcile.files_reindexed) == 4
    assert len(index.list_ids("Instance")) == 8
    index.close()


def test_by_uids_finds_each_level_within_its_parents(tmp_path, sample_data, database):
    index = Index(database.config(tmp_path / "store"))
    first, second = sorted((sample_data / SERIES_DIR).iterdir())[:2]
    index.import_path(first, progress=False)
    index.import_path(second, progress=False)
    header = pydicom.dcmread(second, stop_before_pixels=True)
    uids = {
        "Study": header.StudyInstanceUID,
        "Series": header.SeriesInstanceUID,
        "Instance": header.SOPInstanceUID,
    }
    (instance_id,) = index.find("Instance", {"SOPInstanceUID": header.SOPInstanceUID})
    found_id, path = index.by_uids("Instance", uids)
    assert found_id == instance_id and path == index.instance_path(instance_id)
    assert pydicom.dcmread(path).SOPInstanceUID == header.SOPInstanceUID
    (series_id,) = index.list_ids("Series")
    assert index.by_uids("Series", uids) == (series_id, None)
    assert index.by_uids("Study", uids) == (index.list_ids("Study")[0], None)
    # The right UID under another study, or a UID nothing has: nothing.
    assert index.by_uids("Instance", {**uids, "Study": "1.2.3"}) is None
    assert index.by_uids("Series", {**uids, "Series": uids["Study"]}) is None
    # Looked up many times, no read is left open: the index still takes writes.
    for _ in range(50):
        index.by_uids("Instance", uids)
    index.delete("Instance", instance_id)
    assert index.by_uids("Instance", uids) is None
