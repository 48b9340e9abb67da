"""Attachments (``/{level}/{id}/attachments``) and Orthanc's error JSON, side by side with a
real Orthanc 1.10 holding the same file."""

from __future__ import annotations

import hashlib

import pytest
import requests

from tests.data import dicom_files, real_path
from tests.pacs.side_by_side import beside_orthanc

pytestmark = pytest.mark.peers

FILE = dicom_files(real_path("nema_ct1_ge"))[0]


@pytest.fixture(scope="module")
def both(tmp_path_factory, orthanc):
    yield from beside_orthanc(tmp_path_factory.mktemp("attachments"), orthanc, [FILE])


def call(both, method: str, path: str, **kwargs) -> dict[str, requests.Response]:
    return {name: requests.request(method, url + path, timeout=30, **kwargs)
            for name, url in both.items()}  # fmt: skip


def ids(both) -> dict[str, str]:
    """The one resource of each level (the same IDs on both servers)."""
    found = {level: requests.get(f"{both['orthanc']}/{level}", timeout=30).json()[0]
             for level in ("patients", "studies", "series", "instances")}  # fmt: skip
    for level, public_id in found.items():
        assert requests.get(f"{both['ours']}/{level}/{public_id}", timeout=30).ok
    return found


def test_listing_at_every_level(both):
    for level, public_id in ids(both).items():
        for suffix in ("", "?full"):
            answers = call(both, "get", f"/{level}/{public_id}/attachments{suffix}")
            assert answers["ours"].status_code == answers["orthanc"].status_code == 200
            assert answers["ours"].json() == answers["orthanc"].json(), (level, suffix)
        # No level but the instance has a DICOM file.
        if level != "instances":
            answers = call(both, "get", f"/{level}/{public_id}/attachments/dicom")
            assert answers["ours"].status_code == answers["orthanc"].status_code == 404


def test_dicom_attachment_as_orthanc(both):
    instance = ids(both)["instances"]
    md5 = hashlib.md5(FILE.read_bytes()).hexdigest()
    base = f"/instances/{instance}/attachments"
    for name in ("dicom", "1"):
        listed = call(both, "get", f"{base}/{name}")
        assert listed["ours"].json() == listed["orthanc"].json()
        assert listed["ours"].headers["etag"] == listed["orthanc"].headers["etag"] == f'"0-{md5}"'
    for route in ("md5", "compressed-md5", "size", "compressed-size", "is-compressed"):
        answers = call(both, "get", f"{base}/dicom/{route}")
        assert answers["ours"].status_code == answers["orthanc"].status_code == 200, route
        assert answers["ours"].text == answers["orthanc"].text, route
        assert answers["ours"].headers["etag"] == answers["orthanc"].headers["etag"]
    assert call(both, "get", f"{base}/dicom/md5")["ours"].text == md5
    for route in ("data", "compressed-data"):
        answers = call(both, "get", f"{base}/dicom/{route}")
        assert answers["ours"].content == answers["orthanc"].content == FILE.read_bytes()
        assert answers["ours"].headers["content-type"] == "application/dicom"
    info = call(both, "get", f"{base}/dicom/info")
    ours, theirs = info["ours"].json(), info["orthanc"].json()
    assert ours.keys() == theirs.keys()
    assert {k: v for k, v in ours.items() if k != "Uuid"} == {
        k: v for k, v in theirs.items() if k != "Uuid"}  # fmt: skip
    assert ours["Uuid"] == requests.get(f"{both['ours']}/instances/{instance}", timeout=30
                                        ).json()["FileUuid"]  # fmt: skip
    # 1.12 answers the UUID; 1.10 lists the route but answers 404.
    assert call(both, "get", f"{base}/dicom/uuid")["ours"].text == ours["Uuid"]
    for action in ("verify-md5", "uncompress"):
        answers = call(both, "post", f"{base}/dicom/{action}")
        assert answers["ours"].status_code == answers["orthanc"].status_code == 200
        assert answers["ours"].json() == answers["orthanc"].json() == {}
    # The DICOM file is not deleted through its attachment.
    answers = call(both, "delete", f"{base}/dicom")
    assert answers["ours"].status_code == answers["orthanc"].status_code == 403
    assert requests.get(f"{both['ours']}{base}/dicom/size", timeout=30).ok


def test_unknown_attachments_and_error_json(both):
    instance = ids(both)["instances"]
    base = f"/instances/{instance}/attachments"
    for path, code in ((f"{base}/foo", 7), (f"{base}/9999", 17),
                       (f"{base}/dicom-until-pixel-data", 17),
                       ("/instances/nope/attachments", 17)):  # fmt: skip
        answers = call(both, "get", path)
        ours, theirs = answers["ours"].json(), answers["orthanc"].json()
        assert answers["ours"].status_code == answers["orthanc"].status_code == 404, path
        assert ours["OrthancStatus"] == theirs["OrthancStatus"] == code, path
        for field in ("HttpError", "HttpStatus", "Message", "Method", "OrthancError", "Uri"):
            assert ours[field] == theirs[field], (path, field)
        assert ours["Details"]  # we always say what was not found
    bad = call(both, "post", "/tools/find", data="{not json")
    assert bad["ours"].status_code == bad["orthanc"].status_code == 400
    for field in ("HttpError", "Message", "OrthancError", "OrthancStatus", "Method", "Uri"):
        assert bad["ours"].json()[field] == bad["orthanc"].json()[field], field


def test_user_attachments_as_orthanc(both):
    found = ids(both)
    for level in ("instances", "series"):
        base = f"/{level}/{found[level]}/attachments"
        written = call(both, "put", f"{base}/1030", data=b"abc")
        assert written["ours"].status_code == written["orthanc"].status_code == 200
        assert written["ours"].headers["etag"] == written["orthanc"].headers["etag"]
        for suffix in ("", "?full"):
            listed = call(both, "get", base + suffix)
            assert listed["ours"].json() == listed["orthanc"].json(), (level, suffix)
        data = call(both, "get", f"{base}/1030/data")
        assert data["ours"].content == data["orthanc"].content == b"abc"
        assert data["ours"].headers["content-type"] == data["orthanc"].headers["content-type"]
        for route in ("md5", "size", "compressed-size", "is-compressed"):
            answers = call(both, "get", f"{base}/1030/{route}")
            assert answers["ours"].status_code == answers["orthanc"].status_code == 200
            assert answers["ours"].text == answers["orthanc"].text, route
        operations = call(both, "get", f"{base}/1030")
        assert operations["ours"].json() == operations["orthanc"].json()
        answers = call(both, "get", f"{base}/1030/info")
        info = {name: answer.json() for name, answer in answers.items()}
        assert info["ours"].pop("Uuid") and info["orthanc"].pop("Uuid")
        assert info["ours"] == info["orthanc"]
        etag = written["ours"].headers["etag"]
        replaced = call(both, "put", f"{base}/1030", data=b"abcd", headers={"If-Match": etag})
        assert replaced["ours"].status_code == replaced["orthanc"].status_code == 200
        assert replaced["ours"].headers["etag"] == replaced["orthanc"].headers["etag"]
        for bad in ("70000", "1000"):
            refused = call(both, "put", f"{base}/{bad}", data=b"x")
            assert refused["ours"].status_code == refused["orthanc"].status_code == 403
        gone = call(both, "delete", f"{base}/1030")
        assert gone["ours"].status_code == gone["orthanc"].status_code == 200
        assert statuses(call(both, "get", f"{base}/1030/data")) == (404, 404)
        assert statuses(call(both, "delete", f"{base}/1030")) == (404, 404)


def statuses(answers) -> tuple[int, int]:
    return answers["ours"].status_code, answers["orthanc"].status_code


def test_revisions_compression_and_deletion_with_the_resource(tmp_path, sample_data):
    from workbench.pacs import serve

    pacs = serve(StorageDirectory=str(tmp_path / "store"), HttpPort=0, DicomPort=0)
    try:
        stored = requests.post(f"{pacs.url}/instances", data=FILE.read_bytes(), timeout=30)
        study = stored.json()["ParentStudy"]
        base = f"{pacs.url}/studies/{study}/attachments"
        first = requests.put(f"{base}/2000", data=b"one", timeout=30)
        assert first.headers["etag"].startswith('"0-')
        second = requests.put(f"{base}/2000", data=b"two", timeout=30,
                              headers={"If-Match": first.headers["etag"]})  # fmt: skip
        assert second.headers["etag"].startswith('"1-')
        stale = requests.put(f"{base}/2000", data=b"three", timeout=30,
                             headers={"If-Match": first.headers["etag"]})  # fmt: skip
        assert stale.status_code == 409 and stale.json()["OrthancStatus"] == 43
        assert requests.get(f"{base}/2000/data", timeout=30).content == b"two"
        assert requests.post(f"{base}/2000/verify-md5", timeout=30).json() == {}
        compress = requests.post(f"{base}/2000/compress", timeout=30)
        assert compress.status_code == 501 and "uncompressed" in compress.json()["Details"]
        # The attachment goes with its study, and does not come back with it.
        requests.delete(f"{pacs.url}/studies/{study}", timeout=30).raise_for_status()
        requests.post(f"{pacs.url}/instances", data=FILE.read_bytes(), timeout=30)
        assert requests.get(base, timeout=30).json() == []
    finally:
        pacs.stop()
