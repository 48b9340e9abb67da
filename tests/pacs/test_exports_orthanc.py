"""``/exports`` (``LogExportedResources``) side by side with a real Orthanc: each sends the
same CT series to the other, and the two export logs say the same."""

from __future__ import annotations

import pytest
import requests

from tests.data import dicom_files, real_path
from tests.pacs.node_support import NODE_AET
from tests.peers import free_port, start_orthanc
from workbench.pacs import serve

pytestmark = pytest.mark.peers

CT_SERIES = "series_ct_philips_ingenuity_5mm"
#: What differs between the two logs by nature: when, in what order, and to whom.
OWN_FIELDS = ("Date", "Seq", "RemoteModality")


@pytest.fixture(scope="module")
def peers(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    our_port = free_port()
    orthanc = start_orthanc(
        root / "orthanc",
        modalities={"workbench": [NODE_AET, "127.0.0.1", our_port]},
        extra={"LogExportedResources": True},
    )
    pacs = serve(
        StorageDirectory=str(root / "store"),
        HttpPort=0,
        DicomPort=our_port,
        DicomAet=NODE_AET,
        LogExportedResources=True,
        DicomModalities={"orthanc": ["ORTHANC", "127.0.0.1", orthanc.dicom_port]},
    )
    yield pacs, orthanc
    pacs.stop()
    orthanc.stop()


def ours(pacs, path: str, method: str = "get", **kwargs) -> requests.Response:
    return requests.request(method, pacs.url + path, timeout=120, **kwargs)


def comparable(log: dict) -> list[dict]:
    entries = [{k: v for k, v in e.items() if k not in OWN_FIELDS} for e in log["Exports"]]
    return sorted(entries, key=lambda entry: entry["ID"])


def test_export_logs_equal_orthancs(peers):
    """One entry per resource a store was asked for (a study, a series, an instance here),
    with the identifiers of its level and above."""
    pacs, orthanc = peers
    files = dicom_files(real_path(CT_SERIES))
    pacs.index.import_path(*files, progress=False)
    for path in files:
        orthanc.upload(path)
    # The same files have the same IDs on both sides.
    asked = [ours(pacs, "/studies").json(), ours(pacs, "/series").json(),
             ours(pacs, "/instances").json()[:1]]  # fmt: skip
    for resources in asked:
        assert ours(pacs, "/modalities/orthanc/store", "post", json=resources).status_code == 200
        assert orthanc.post("/modalities/workbench/store", json=resources).status_code == 200

    mine, theirs = ours(pacs, "/exports").json(), orthanc.get("/exports").json()
    assert len(mine["Exports"]) == 3 == len(theirs["Exports"])
    assert comparable(mine) == comparable(theirs)
    assert [e["ResourceType"] for e in mine["Exports"]] == ["Study", "Series", "Instance"]
    assert "SOPInstanceUID" in mine["Exports"][2] and "SOPInstanceUID" not in mine["Exports"][1]
    assert {e["RemoteModality"] for e in mine["Exports"]} == {"orthanc"}
    assert {e["RemoteModality"] for e in theirs["Exports"]} == {"workbench"}
    assert set(mine) == set(theirs) == {"Done", "Exports", "Last"} and mine["Done"]

    # Paged as /changes.
    first = ours(pacs, "/exports?limit=2").json()
    their_first = orthanc.get("/exports?limit=2").json()
    assert len(first["Exports"]) == 2 == len(their_first["Exports"])
    assert first["Done"] is their_first["Done"] is False
    rest = ours(pacs, f"/exports?since={first['Last']}&limit=100").json()
    assert [e["ResourceType"] for e in rest["Exports"]] == ["Instance"] and rest["Done"]
    last = ours(pacs, "/exports?last").json()
    assert [e["Seq"] for e in last["Exports"]] == [mine["Last"]]

    assert ours(pacs, "/exports", "delete").status_code == 200
    assert orthanc.delete("/exports").status_code == 200
    assert ours(pacs, "/exports").json()["Exports"] == []
    assert orthanc.get("/exports").json()["Exports"] == []


def test_nothing_is_logged_by_default(tmp_path, orthanc):
    with serve(StorageDirectory=str(tmp_path / "store"), HttpPort=0, dicom=False) as pacs:
        assert ours(pacs, "/exports").json() == orthanc.get("/exports").json()
