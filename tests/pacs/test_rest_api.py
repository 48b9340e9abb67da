"""REST routes on real data: upload, archive and media round trips, anonymization, previews."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from PIL import Image
from pydicom.fileset import FileSet

from tests.pacs.test_index_store import SMALL_FILE, make_instance
from workbench.pacs import importing

SERIES_DIR = "series_mr_siemens_t1_sag_HFS"


def _study_of(base: str, folder: Path) -> str:
    """Orthanc ID of the study of the first file in ``folder``."""
    ds = pydicom.dcmread(sorted(folder.iterdir())[0], stop_before_pixels=True)
    found = requests.post(f"{base}/tools/lookup", data=ds.StudyInstanceUID, timeout=30).json()
    assert len(found) == 1 and found[0]["Type"] == "Study"
    return found[0]["ID"]


def _uids(folder: Path) -> set[str]:
    return {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        for p in folder.iterdir()
        if p.is_file()
    }


def _text_values(ds: pydicom.Dataset) -> list[str]:
    """Every UI/PN/LO value of a dataset, sequences included."""
    values: list[str] = []
    ds.walk(
        lambda _, elem: (
            values.append(str(elem.value)) if elem.VR in ("UI", "PN", "LO") and elem.value else None
        )
    )
    return values


def test_archive_round_trip(live_server, data_root):
    study = _study_of(live_server, data_root / SERIES_DIR)
    response = requests.get(f"{live_server}/studies/{study}/archive", timeout=60)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        datasets = [pydicom.dcmread(io.BytesIO(archive.read(n))) for n in names]
    assert {str(ds.SOPInstanceUID) for ds in datasets} == _uids(data_root / SERIES_DIR)
    assert all(name.endswith(".dcm") and name.count("/") == 3 for name in names)
    # Bytes are the stored bytes: pixel data survives unchanged.
    originals = {
        str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p).PixelData
        for p in (data_root / SERIES_DIR).iterdir()
    }
    assert all(ds.PixelData == originals[str(ds.SOPInstanceUID)] for ds in datasets)


def test_media_round_trip_has_a_readable_dicomdir(live_server, data_root, tmp_path):
    study = _study_of(live_server, data_root / SERIES_DIR)
    response = requests.get(f"{live_server}/studies/{study}/media", timeout=60)
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        archive.extractall(tmp_path)
        names = archive.namelist()
    assert "DICOMDIR" in names
    # PS3.10/PS3.11 file IDs: components of at most 8 upper-case letters, digits or "_".
    for name in names:
        for part in name.split("/"):
            assert len(part) <= 8 and part == part.upper(), name
    fileset = FileSet(tmp_path / "DICOMDIR")
    instances = fileset.find()
    assert len(instances) == len(_uids(data_root / SERIES_DIR))
    assert {i.SOPInstanceUID for i in instances} == _uids(data_root / SERIES_DIR)
    loaded = instances[0].load()
    assert loaded.Rows > 0 and loaded.pixel_array.size > 0


def test_anonymize_study_leaves_no_identity(fresh_server, sample_data):
    base = fresh_server.url
    folder = sample_data / SERIES_DIR
    originals = [pydicom.dcmread(p) for p in sorted(folder.iterdir())[:6]]
    for ds in originals:
        # Distinctive identity so a leak can be found in the raw bytes.
        ds.PatientName = "Leakcheck^Marguerite"
        ds.PatientID = "ORIG-ID-80417"
        ds.PatientBirthDate = "19570312"
        ds.InstitutionName = "Hospital of Leakcheck"
        buffer = io.BytesIO()
        ds.save_as(buffer)
        assert requests.post(f"{base}/instances", data=buffer.getvalue(), timeout=30).ok
    study = _study_of(base, folder)
    response = requests.post(f"{base}/studies/{study}/anonymize", json={}, timeout=60)
    assert response.status_code == 200
    answer = response.json()
    assert answer["Type"] == "Study" and answer["ID"] != study
    assert answer["Path"] == f"/studies/{answer['ID']}"

    new_instances = requests.get(f"{base}/studies/{answer['ID']}/instances", timeout=30).json()
    assert len(new_instances) == len(originals)
    original_uids = set()
    for ds in originals:
        ds.walk(
            lambda _, elem: (
                original_uids.add(str(elem.value)) if elem.VR == "UI" and elem.value else None
            )
        )
    original_uids = {u for u in original_uids if not u.startswith("1.2.840.10008.")}
    identity = {"Leakcheck", "Marguerite", "ORIG-ID-80417", "19570312"}
    new_study_uids, new_series_uids = set(), set()
    for resource in new_instances:
        data = requests.get(f"{base}/instances/{resource['ID']}/file", timeout=30).content
        ds = pydicom.dcmread(io.BytesIO(data))
        found = _text_values(ds)
        assert not original_uids & set(found)
        assert not any(word in value for value in found for word in identity)
        for text in identity:
            assert text.encode() not in data
        assert ds.PatientIdentityRemoved == "YES"
        new_study_uids.add(ds.StudyInstanceUID)
        new_series_uids.add(ds.SeriesInstanceUID)
    # New UIDs are consistent across the study: one study, one series, as in the original.
    assert len(new_study_uids) == 1 and len(new_series_uids) == 1
    # The original is untouched.
    assert requests.get(f"{base}/studies/{study}", timeout=30).status_code == 200


def test_upload_zip_delete_and_changes(fresh_server, sample_data):
    base = fresh_server.url
    template = sample_data / SMALL_FILE
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(3):
            archive.writestr(
                f"dir/{n}.dcm",
                make_instance(template, patient="ZIP", study="1.2.3.4", series="1.2.3.4.1"),
            )
        archive.writestr("README.txt", "not dicom")
    answers = requests.post(f"{base}/instances", data=buffer.getvalue(), timeout=30).json()
    assert [a["Status"] for a in answers] == ["Success"] * 3
    study = answers[0]["ParentStudy"]
    assert requests.get(f"{base}/statistics", timeout=30).json()["CountInstances"] == 3
    changes = requests.get(f"{base}/changes?limit=100", timeout=30).json()
    kinds = [c["ChangeType"] for c in changes["Changes"]]
    assert kinds.count("NewInstance") == 3 and kinds.count("NewStudy") == 1
    assert changes["Done"] is True and changes["Last"] == changes["Changes"][-1]["Seq"]
    page = requests.get(f"{base}/changes?since=2&limit=2", timeout=30).json()
    assert [c["Seq"] for c in page["Changes"]] == [3, 4] and page["Done"] is False

    deleted = requests.delete(f"{base}/instances/{answers[0]['ID']}", timeout=30).json()
    assert deleted["RemainingAncestor"]["Type"] == "Series"
    assert requests.delete(f"{base}/studies/{study}", timeout=30).json() == {
        "RemainingAncestor": None
    }
    assert requests.get(f"{base}/studies/{study}", timeout=30).status_code == 404
    assert requests.get(f"{base}/patients", timeout=30).json() == []


def test_zip_upload_makes_its_members_durable_together(
    fresh_server, sample_data, monkeypatch, syncs
):
    monkeypatch.setattr(importing, "BATCH_FILES", 8)
    members = [make_instance(sample_data / SMALL_FILE, patient="ZIP") for _ in range(19)]
    bare = pydicom.dcmread(io.BytesIO(members[-1]))
    del bare.file_meta  # a data set without its Part-10 header, stored as Part-10
    bare.preamble = None
    bare_bytes = io.BytesIO()
    bare.save_as(bare_bytes, implicit_vr=True, little_endian=True)
    members[-1] = bare_bytes.getvalue()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n, data in enumerate(members):
            archive.writestr(f"{n}.dcm", data)
        archive.writestr("README.txt", "not dicom")
    syncs.single.clear()
    answers = requests.post(f"{fresh_server.url}/instances", data=buffer.getvalue(),
                            timeout=60).json()  # fmt: skip
    assert [a["Status"] for a in answers] == ["Success"] * len(members)
    # 20 members, 8 at a time, extracted under their store names: one sync per batch.
    assert len(syncs.filesystem) == 3
    assert len(syncs.single) < len(members)  # fan-out directories only, no file on its own
    assert fresh_server.index.statistics()["CountInstances"] == len(members)
    assert not list(fresh_server.index.incoming_dir.iterdir())


def test_a_corrupt_zip_member_fails_the_upload_and_leaves_no_file(
    fresh_server, sample_data, monkeypatch
):
    monkeypatch.setattr(importing, "BATCH_FILES", 8)
    members = [make_instance(sample_data / SMALL_FILE, patient="ZIP") for _ in range(19)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # stored: the member's bytes as they are
        for n, data in enumerate(members):
            archive.writestr(f"{n:02}.dcm", data)
    body = bytearray(buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(body))) as archive:
        info = archive.getinfo("11.dcm")  # in the second batch of eight
    # A byte of its data changed: its CRC no longer matches.
    body[info.header_offset + 30 + len(info.filename) + 500] ^= 0xFF
    answer = requests.post(f"{fresh_server.url}/instances", data=bytes(body), timeout=60)
    assert answer.status_code == 400
    assert "corrupt at '11.dcm'" in answer.json()["Details"]
    index = fresh_server.index
    assert index.statistics()["CountInstances"] == 8  # the first batch, indexed before
    assert set(index.store.iter_uuids()) == set(index.stored_files())  # no copy left over


def test_protection_over_rest(fresh_server, sample_data):
    base = fresh_server.url
    answer = requests.post(
        f"{base}/instances", data=make_instance(sample_data / SMALL_FILE), timeout=30
    ).json()
    url = f"{base}/patients/{answer['ParentPatient']}/protected"
    assert requests.get(url, timeout=30).text == "0"
    assert requests.put(url, data="1", timeout=30).status_code == 200
    assert requests.get(url, timeout=30).text == "1"
    assert fresh_server.index.is_protected(answer["ParentPatient"])


def test_previews_are_pngs_of_the_image(live_server, loaded_index):
    multiframe = loaded_index.find("Instance", {"NumberOfFrames": "2"})
    assert multiframe
    instance = multiframe[0]
    assert requests.get(f"{live_server}/instances/{instance}/frames", timeout=30).json() == [0, 1]
    for url in (f"/instances/{instance}/preview", f"/instances/{instance}/frames/1/preview"):
        response = requests.get(live_server + url, timeout=30)
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        image = np.asarray(Image.open(io.BytesIO(response.content)))
        assert image.ndim in (2, 3) and image.std() > 0  # a real picture, not a blank
    small = requests.get(f"{live_server}/instances/{instance}/preview?size=32", timeout=30)
    assert max(Image.open(io.BytesIO(small.content)).size) <= 32
    missing = requests.get(f"{live_server}/instances/{instance}/frames/9/preview", timeout=30)
    # A frame out of range is a parameter out of range, as in Orthanc.
    assert missing.status_code == 400 and "no frame 9" in missing.json()["Details"]


@pytest.mark.parametrize("path", ["/content/0010-0010", "/content"])
def test_content_paths(live_server, loaded_index, path):
    instance = loaded_index.find("Instance", {"PatientName": "Doe^Archibald"})[0]
    response = requests.get(f"{live_server}/instances/{instance}{path}", timeout=30)
    assert response.status_code == 200
    if path.endswith("0010-0010"):
        assert response.text == "Doe^Archibald"
    else:
        assert "0010-0010" in response.json()


def test_find_expand_limit_since(live_server):
    body = {"Level": "Series", "Query": {}, "Limit": 3}
    first = requests.post(f"{live_server}/tools/find", json=body, timeout=30).json()
    second = requests.post(
        f"{live_server}/tools/find", json={**body, "Since": 3}, timeout=30
    ).json()
    assert len(first) == 3 and len(second) == 3 and not set(first) & set(second)
    expanded = requests.post(
        f"{live_server}/tools/find", json={**body, "Expand": True}, timeout=30
    ).json()
    assert [r["ID"] for r in expanded] == first and expanded[0]["Type"] == "Series"


def test_concurrent_uploads_over_rest(fresh_server, sample_data):
    from concurrent.futures import ThreadPoolExecutor

    base = fresh_server.url
    template = sample_data / SMALL_FILE
    payloads = [make_instance(template, patient=f"C{n % 8}") for n in range(64)]

    def send(data: bytes) -> int:
        return requests.post(f"{base}/instances", data=data, timeout=60).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, payloads))
    assert statuses == [200] * 64
    stats = requests.get(f"{base}/statistics", timeout=30).json()
    assert (stats["CountInstances"], stats["CountPatients"]) == (64, 8)
    assert int(stats["TotalDiskSize"]) == sum(len(p) for p in payloads)


def test_header_and_metadata(live_server, loaded_index):
    instance = loaded_index.find("Instance", {"PatientName": "Doe^Archibald"})[0]
    header = requests.get(f"{live_server}/instances/{instance}/header", timeout=30).json()
    assert header["0002,0010"]["Value"] == "1.2.840.10008.1.2.1"
    assert all(key.startswith("0002,") for key in header)
    metadata = requests.get(
        f"{live_server}/instances/{instance}/metadata?expand", timeout=30
    ).json()
    assert metadata["TransferSyntax"] == "1.2.840.10008.1.2.1"
    assert metadata["SopClassUid"] == "1.2.840.10008.5.1.4.1.1.1"
    origin = requests.get(f"{live_server}/instances/{instance}/metadata/Origin", timeout=30)
    assert origin.text == metadata["Origin"]
