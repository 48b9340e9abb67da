"""Metadata (``/{level}/{id}/metadata``) side by side with a real Orthanc: user metadata
written, read with its ETag, listed and deleted, the server's own metadata read only; the
values survive a reopening of the index (revision 0006) and go with their resource."""

from __future__ import annotations

import pyorthanc
import pytest
import requests

from tests.data import dicom_files, real_path
from tests.pacs.side_by_side import beside_orthanc
from tests.pacs.test_index_store import SMALL_FILE, make_instance
from workbench.pacs import Index

pytestmark = pytest.mark.peers


@pytest.fixture
def both(tmp_path, orthanc):
    yield from beside_orthanc(tmp_path, orthanc, dicom_files(real_path("nema_ct1_ge"))[:1])


def call(both, method: str, path: str, **kwargs) -> dict[str, requests.Response]:
    return {name: requests.request(method, url + path, timeout=30, **kwargs)
            for name, url in both.items()}  # fmt: skip


def statuses(answers) -> tuple[int, int]:
    return answers["ours"].status_code, answers["orthanc"].status_code


def test_user_metadata_as_orthanc(both):
    instance = requests.get(both["orthanc"] + "/instances", timeout=30).json()[0]
    series = requests.get(both["orthanc"] + "/series", timeout=30).json()[0]
    for resource in (f"/instances/{instance}", f"/series/{series}"):
        assert statuses(call(both, "put", f"{resource}/metadata/1024", data="hello")) == (200, 200)
        read = call(both, "get", f"{resource}/metadata/1024")
        assert statuses(read) == (200, 200)
        assert read["ours"].text == read["orthanc"].text == "hello"
        assert read["ours"].headers["etag"] == read["orthanc"].headers["etag"]
        listed = call(both, "get", f"{resource}/metadata")
        assert set(listed["ours"].json()) <= set(listed["orthanc"].json())
        assert "1024" in listed["ours"].json()
        expanded = call(both, "get", f"{resource}/metadata?expand")
        assert expanded["ours"].json()["1024"] == "hello"
        # The server's own metadata is read only; a name that is neither is unknown.
        system = "ReceptionDate" if "instances" in resource else "LastUpdate"
        assert statuses(call(both, "put", f"{resource}/metadata/{system}", data="x")) == (
            403, 403)  # fmt: skip
        assert statuses(call(both, "put", f"{resource}/metadata/mine", data="x")) == (404, 404)
        bad = call(both, "put", f"{resource}/metadata/1024", data="x",
                   headers={"If-Match": "7"})  # fmt: skip
        assert statuses(bad) == (400, 400) and "If-Match" in bad["ours"].json()["Details"]
        assert statuses(call(both, "delete", f"{resource}/metadata/1024")) == (200, 200)
        assert statuses(call(both, "delete", f"{resource}/metadata/1024")) == (404, 404)
        assert statuses(call(both, "get", f"{resource}/metadata/1024")) == (404, 404)


def test_revisions_and_deletion(tmp_path, sample_data, database):
    config = database.config(tmp_path / "store")
    index = Index(config)
    stored = index.ingest_bytes(make_instance(sample_data / SMALL_FILE))
    assert index.put_metadata("Study", stored.study_id, "2000", "first") == 0
    assert index.put_metadata("Study", stored.study_id, "2000", "second", if_match=0) == 1
    with pytest.raises(Exception, match="revision 0"):
        index.put_metadata("Study", stored.study_id, "2000", "third", if_match=0)
    index.close()
    reopened = Index(config)
    try:
        assert reopened.user_metadata("Study", stored.study_id) == {"2000": ("second", 1)}
        reopened.delete("Patient", stored.patient_id)
        again = reopened.ingest_bytes(make_instance(sample_data / SMALL_FILE))
        assert reopened.user_metadata("Study", again.study_id) == {}
    finally:
        reopened.close()


def test_pyorthanc_metadata(both):
    client = pyorthanc.Orthanc(both["ours"])
    instance = client.get_instances()[0]
    # pyorthanc's generated method sends its ``data`` as the body.
    client.put_instances_id_metadata_name(instance, "1030", data="note")
    assert client.get_instances_id_metadata_name(instance, "1030") == "note"
    assert "TransferSyntax" in client.get_instances_id_metadata(instance)
