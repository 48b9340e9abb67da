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


def test_what_is_not_kept_is_refused_with_a_reason(both):
    base = f"/instances/{ids(both)['instances']}/attachments"
    compress = requests.post(f"{both['ours']}{base}/dicom/compress", timeout=30)
    assert compress.status_code == 501 and "uncompressed" in compress.json()["Details"]
    user = requests.put(f"{both['ours']}{base}/1024", data=b"hello", timeout=30)
    assert user.status_code == 501 and "metadata" in user.json()["Details"]
    assert requests.get(f"{both['ours']}{base}/dicom/is-compressed", timeout=30).text == "0"
