"""STOW-RS against a live server: batch uploads, the PS3.18 answer, refused input stores nothing."""

from __future__ import annotations

import uuid
import warnings

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from tests.data import dicom_files, real_path
from tests.pacs.dicomweb_support import read_corpus, value
from workbench.pacs import Config
from workbench.pacs.dicomweb import stow
from workbench.pacs.dicomweb.stow import NOT_DICOM_REASON
from workbench.pacs.server import serve

CT_SERIES = "series_ct_philips_ingenuity_5mm"
FAILED = "00081198"
REFERENCED = "00081199"
FAILURE_REASON = "00081197"


def _body(parts: list[tuple[str, bytes]], boundary: str) -> bytes:
    chunks = []
    for content_type, data in parts:
        chunks.append(f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode())
        chunks.append(data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


def _post(url: str, parts: list[tuple[str, bytes]], **kwargs) -> requests.Response:
    boundary = uuid.uuid4().hex
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return requests.post(
        url,
        data=_body(parts, boundary),
        headers={"Content-Type": content_type},
        timeout=120,
        **kwargs,
    )


def _dicom(path) -> tuple[str, bytes]:
    return "application/dicom", path.read_bytes()


def _stored_count(server) -> int:
    return len(server.index.list_ids("Instance"))


def _no_stray_files(server) -> bool:
    """Nothing left in the incoming directory, and no file in the store but its instances'
    (parts are written under their store names as they come)."""
    files = list(server.index.store.iter_uuids())
    return not any(server.index.incoming_dir.iterdir()) and len(files) == _stored_count(server)


def test_every_sample_file_in_one_request_is_stored_as_sent(fresh_server, sample_data):
    files = dicom_files(sample_data)
    corpus = read_corpus(files)
    response = _post(f"{fresh_server.url}/dicom-web/studies", [_dicom(p) for p in files])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom+json"
    answer = response.json()
    assert FAILED not in answer
    referenced = answer[REFERENCED]["Value"]
    # Two sample files share one SOP Instance UID: the second is "already stored", a success.
    assert len(referenced) == len(files)
    assert {value(item, "ReferencedSOPInstanceUID") for item in referenced} == set(corpus.paths)
    for item in referenced:
        sop = value(item, "ReferencedSOPInstanceUID")
        assert value(item, "ReferencedSOPClassUID") == corpus.headers[sop].SOPClassUID
        assert value(item, "RetrieveURL").endswith(f"/instances/{sop}")
    assert _stored_count(fresh_server) == len(corpus.paths)
    for sop, path in corpus.paths.items():
        (instance_id,) = fresh_server.index.find("Instance", {"SOPInstanceUID": sop})
        assert fresh_server.index.instance_path(instance_id).read_bytes() == path.read_bytes()
    assert _no_stray_files(fresh_server)


def test_dicomweb_client_stores_then_finds_and_retrieves(fresh_server):
    client = DICOMwebClient(url=f"{fresh_server.url}/dicom-web")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        datasets = [pydicom.dcmread(p) for p in dicom_files(real_path(CT_SERIES))]
    answer = client.store_instances(datasets)  # the response as a pydicom Dataset
    assert len(answer.ReferencedSOPSequence) == len(datasets)
    assert "FailedSOPSequence" not in answer
    study = str(datasets[0].StudyInstanceUID)
    assert answer.RetrieveURL == f"{fresh_server.url}/dicom-web/studies/{study}"
    (found,) = client.search_for_studies(search_filters={"StudyInstanceUID": study})
    assert value(found, "NumberOfStudyRelatedInstances") == len(datasets)
    got = client.retrieve_study(study, media_types=(("application/dicom", "*"),))
    assert {str(ds.SOPInstanceUID) for ds in got} == {str(ds.SOPInstanceUID) for ds in datasets}
    by_uid = {str(ds.SOPInstanceUID): ds for ds in datasets}
    assert all(ds.PixelData == by_uid[str(ds.SOPInstanceUID)].PixelData for ds in got)


def test_a_non_dicom_part_fails_alone(fresh_server):
    good = dicom_files(real_path(CT_SERIES))[0]
    parts = [
        ("application/dicom", b"this is not DICOM at all"),
        _dicom(good),
        ("text/plain", b"hello"),
    ]
    response = _post(f"{fresh_server.url}/dicom-web/studies", parts)
    assert response.status_code == 202
    answer = response.json()
    assert len(answer[REFERENCED]["Value"]) == 1
    failed = answer[FAILED]["Value"]
    assert len(failed) == 2
    assert all(item[FAILURE_REASON]["Value"][0] >= 0xC000 for item in failed)
    warnings_ = response.headers["warning"]
    assert "part 1" in warnings_ and "text/plain" in warnings_
    assert _stored_count(fresh_server) == 1
    assert _no_stray_files(fresh_server)


@pytest.mark.parametrize(
    "limits",
    [
        {"SPOOL_BYTES": 1000},  # every part streams to its file, read back from there
        {"MAX_PENDING_BYTES": 0},  # the receiver waits for each file to be written
        # each file's pages given back as soon as it is written
        {"WRITEBACK_BYTES": 0, "RELEASE_AFTER_FILES": 0},
    ],
)
def test_parts_streamed_to_disk_or_waited_for_are_stored_as_sent(fresh_server, monkeypatch, limits):
    for name, limit in limits.items():
        monkeypatch.setattr(stow, name, limit)
    files = dicom_files(real_path(CT_SERIES))[:3]
    parts = [_dicom(files[0]), ("application/dicom", b"not DICOM " * 200), _dicom(files[1])]
    parts += [("text/plain", b"hello " * 500), _dicom(files[2])]
    response = _post(f"{fresh_server.url}/dicom-web/studies", parts)
    assert response.status_code == 202, response.text
    failed = response.json()[FAILED]["Value"]
    assert [item[FAILURE_REASON]["Value"][0] for item in failed] == [0xC210, NOT_DICOM_REASON]
    assert "part 2" in response.headers["warning"] and "part 4" in response.headers["warning"]
    for path in files:
        sop = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        (instance_id,) = fresh_server.index.find("Instance", {"SOPInstanceUID": sop})
        assert fresh_server.index.instance_path(instance_id).read_bytes() == path.read_bytes()
    assert _stored_count(fresh_server) == 3
    assert _no_stray_files(fresh_server)


def test_instances_of_another_study_are_refused(fresh_server):
    files = dicom_files(real_path(CT_SERIES))[:2]
    response = _post(f"{fresh_server.url}/dicom-web/studies/1.2.3.4", [_dicom(p) for p in files])
    assert response.status_code == 409
    failed = response.json()[FAILED]["Value"]
    assert [item[FAILURE_REASON]["Value"][0] for item in failed] == [0xA900, 0xA900]
    assert "1.2.3.4" in response.headers["warning"]
    assert _stored_count(fresh_server) == 0


@pytest.mark.parametrize("damage", ["no closing boundary", "cut inside a part", "no parts"])
def test_a_malformed_body_stores_nothing(fresh_server, damage):
    files = dicom_files(real_path(CT_SERIES))[:3]
    boundary = uuid.uuid4().hex
    body = _body([_dicom(p) for p in files], boundary)
    body = {
        "no closing boundary": body[: body.rindex(b"--" + boundary.encode())],
        "cut inside a part": body[: len(body) // 2],
        "no parts": f"--{boundary}--\r\n".encode(),
    }[damage]
    response = requests.post(
        f"{fresh_server.url}/dicom-web/studies",
        data=body,
        timeout=60,
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'
        },
    )
    assert response.status_code == 400
    assert "multipart" in response.json()["Details"]
    assert _stored_count(fresh_server) == 0
    assert _no_stray_files(fresh_server)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/dicom",
        'multipart/related; type="application/dicom+json"; boundary=x',
        None,
    ],
)
def test_wrong_content_types_are_415(fresh_server, content_type):
    path = dicom_files(real_path(CT_SERIES))[0]
    headers = {"Content-Type": content_type} if content_type else {}
    response = requests.post(
        f"{fresh_server.url}/dicom-web/studies", data=path.read_bytes(), headers=headers, timeout=60
    )
    assert response.status_code == 415
    assert "multipart/related" in response.json()["Details"]
    assert _stored_count(fresh_server) == 0


def test_dicomweb_takes_the_rest_apis_authentication(tmp_path):
    config = Config(
        StorageDirectory=str(tmp_path / "store"),
        HttpPort=0,
        AuthenticationEnabled=True,
        RegisteredUsers={"alice": "secret"},
    )
    with serve(config, dicom=False) as server:
        url = f"{server.url}/dicom-web/studies"
        assert requests.get(url, timeout=30).status_code == 401
        assert _post(url, [_dicom(dicom_files(real_path(CT_SERIES))[0])]).status_code == 401
        assert _stored_count(server) == 0
        assert requests.get(url, auth=("alice", "secret"), timeout=30).status_code == 200
