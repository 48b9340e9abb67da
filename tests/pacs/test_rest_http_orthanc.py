"""Orthanc's HTTP conventions and upload bodies, side by side with a real Orthanc: the same
requests get the same status and the same answers (IDs included) from both."""

from __future__ import annotations

import gzip
import io
import zipfile

import pydicom
import pyorthanc
import pytest
import requests

from tests.data import real_path
from tests.pacs.test_index_store import SMALL_FILE, make_instance
from workbench.pacs import serve

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    server = serve(StorageDirectory=str(tmp_path_factory.mktemp("http") / "store"),
                   HttpPort=0, DicomPort=0)  # fmt: skip
    yield server
    server.stop()


@pytest.fixture
def both(pacs, orthanc):
    orthanc.clear()
    for patient in requests.get(pacs.url + "/patients", timeout=30).json():
        requests.delete(f"{pacs.url}/patients/{patient}", timeout=30)
    return {"ours": pacs.url, "orthanc": orthanc.url}


def ask(both, method: str, path: str, **kwargs) -> dict[str, requests.Response]:
    return {name: requests.request(method, url + path, timeout=60, **kwargs)
            for name, url in both.items()}  # fmt: skip


def statuses(answers: dict[str, requests.Response]) -> tuple[int, int]:
    return answers["ours"].status_code, answers["orthanc"].status_code


def bare_data_set(part10: bytes) -> bytes:
    """The data set of a Part-10 file without preamble nor file meta, implicit VR little
    endian, as old CDs hold them."""
    ds = pydicom.dcmread(io.BytesIO(part10))
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.preamble = None
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=True, little_endian=True,
                     enforce_file_format=False)  # fmt: skip
    assert buffer.getvalue()[128:132] != b"DICM"
    return buffer.getvalue()


def test_system_keys_and_version(both):
    answers = ask(both, "get", "/system")
    mine, theirs = answers["ours"].json(), answers["orthanc"].json()
    # Orthanc 1.10's keys, plus MainDicomTags (1.11), HasLabels (1.12) and our own version.
    assert set(theirs) <= set(mine)
    assert set(mine) - set(theirs) == {"MainDicomTags", "HasLabels", "WorkbenchVersion"}
    assert mine["HasLabels"] is True
    assert mine["ApiVersion"] == theirs["ApiVersion"]
    version = tuple(int(part) for part in mine["Version"].split("."))
    assert len(version) == 3 and version >= (1, 10, 0)
    patient = mine["MainDicomTags"]["Patient"].split(";")
    assert "0010,0010" in patient and "0010,0020" in patient
    assert "0020,000D" in mine["MainDicomTags"]["Study"].split(";")


@pytest.mark.parametrize("path", ["//instances", "/instances/", "//system/", "/patients//"])
def test_empty_path_segments_are_ignored(both, path):
    answers = ask(both, "get", path)
    assert statuses(answers) == (200, 200)
    assert answers["ours"].json() == answers["orthanc"].json() or path == "//system/"


def test_method_override(both, sample_data):
    data = make_instance(sample_data / SMALL_FILE)
    stored = ask(both, "post", "/instances", data=data)
    patient = stored["ours"].json()["ParentPatient"]
    assert patient == stored["orthanc"].json()["ParentPatient"]
    # Only PUT and DELETE can be faked; anything else is a bad request.
    refused = ask(both, "post", "/instances", headers={"X-HTTP-Method-Override": "GET"})
    assert statuses(refused) == (400, 400)
    assert "cannot be faked" in refused["ours"].json()["Details"]
    protect = ask(both, "post", f"/patients/{patient}/protected", data="1",
                  headers={"X-HTTP-Method-Override": "put"})  # fmt: skip
    assert statuses(protect) == (200, 200)
    assert {a.text.strip() for a in ask(both, "get", f"/patients/{patient}/protected").values()
            } == {"1"}  # fmt: skip
    deleted = ask(both, "get", f"/patients/{patient}?_method=DELETE")
    assert statuses(deleted) == (200, 200)
    assert statuses(ask(both, "get", f"/patients/{patient}")) == (404, 404)


def test_bodies_orthanc_accepts(both, sample_data):
    template = sample_data / SMALL_FILE
    plain, bare = make_instance(template), bare_data_set(make_instance(template))
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("a/one.dcm", make_instance(template))
        archive.writestr("readme.txt", "not DICOM")
    for body, headers in [(bare, {}), (gzip.compress(plain), {"Content-Encoding": "gzip"}),
                          (zipped.getvalue(), {})]:  # fmt: skip
        answers = ask(both, "post", "/instances", data=body, headers=headers)
        assert statuses(answers) == (200, 200)
        assert answers["ours"].json() == answers["orthanc"].json()
    # The bare data set is served as a Part-10 file, keeping its transfer syntax.
    instance = ask(both, "post", "/instances", data=bare)["ours"].json()
    assert instance["Status"] == "AlreadyStored"
    stored = requests.get(f"{both['ours']}/instances/{instance['ID']}/file", timeout=30)
    assert stored.content[128:132] == b"DICM"
    meta = pydicom.dcmread(io.BytesIO(stored.content)).file_meta
    assert meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    # A form of files: each stored, an empty 200 as Orthanc answers.
    files = {
        "first": ("first.dcm", make_instance(template)),
        "second": ("second.dcm", bare_data_set(make_instance(template))),
    }
    answers = ask(both, "post", "/instances", files=files)
    assert statuses(answers) == (200, 200)
    listed = ask(both, "get", "/instances")
    assert sorted(listed["ours"].json()) == sorted(listed["orthanc"].json())
    assert len(listed["ours"].json()) == 5


def test_bad_bodies_name_the_problem(both, sample_data):
    cases = [
        (b"garbage", {}, "cannot read it as DICOM"),
        (
            make_instance(sample_data / SMALL_FILE),
            {"Content-Encoding": "gzip"},
            "cannot be inflated",
        ),
    ]
    for body, headers, reason in cases:
        answers = ask(both, "post", "/instances", data=body, headers=headers)
        assert answers["ours"].status_code == 400
        assert reason in answers["ours"].json()["Details"]
        assert answers["orthanc"].status_code >= 400  # Orthanc says 500 to a bad gzip
    form = ask(both, "post", "/instances", files={"file": ("g.txt", b"garbage")})
    assert statuses(form) == (400, 400)
    assert "'g.txt'" in form["ours"].json()["Details"]


def test_pyorthanc_uploads_and_reads_system(both):
    client = pyorthanc.Orthanc(both["ours"] + "/")  # a base URL with a trailing slash
    assert client.get_system()["Version"].count(".") == 2
    data = real_path("nema_ct1_ge")
    path = next(p for p in sorted(data.iterdir()) if p.is_file())
    answer = client.post_instances(path.read_bytes())
    assert answer["Status"] == "Success"
    assert answer["ID"] in client.get_instances()
