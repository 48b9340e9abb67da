"""Worklists created over REST, served to a real Orthanc and compared with Orthanc's own
worklist plugin serving the same folder: Orthanc asks us (``find-worklist``), we ask Orthanc,
and the two answer lists are equal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from tests.data import dicom_files, real_path
from tests.pacs.node_support import NODE_AET, dcmtk
from tests.peers import free_port, require_plugin, require_tool, start_orthanc
from workbench.pacs import serve

pytestmark = pytest.mark.peers

WORKLIST_PLUGIN = Path("/usr/share/orthanc/plugins/libModalityWorklists.so")
DCMTK_EXAMPLES = Path("/usr/share/doc/dcmtk/examples/wlistdb/OFFIS")
CT_SERIES = "series_ct_philips_ingenuity_5mm"


def _item(patient: str, name: str, accession: str, modality: str, station: str, date: str,
          **extra: str) -> dict:  # fmt: skip
    return {
        "SpecificCharacterSet": "ISO_IR 192",
        "PatientID": patient,
        "PatientName": name,
        "PatientBirthDate": "19700101",
        "PatientSex": "F",
        "AccessionNumber": accession,
        "RequestedProcedureID": f"RP-{accession}",
        "RequestedProcedureDescription": f"{modality} exam",
        "ScheduledProcedureStepSequence": [
            {
                "Modality": modality,
                "ScheduledStationAETitle": station,
                "ScheduledProcedureStepStartDate": date,
                "ScheduledProcedureStepStartTime": "093000",
                "ScheduledProcedureStepDescription": f"{modality} as planned",
                "ScheduledProcedureStepID": f"SPS-{accession}",
            }
        ],
        **extra,
    }


ITEMS = [
    _item("WL-1", "DOE^JANE", "ACC1", "CT", "CT01", "20261204"),
    _item("WL-2", "ROE^RICHARD", "ACC2", "MR", "MR02", "20261205"),
    _item("WL-3", "DOE^JOHN", "ACC3", "CT", "CT02", "20261210"),
]
STEP = {"Modality": "", "ScheduledStationAETitle": "", "ScheduledProcedureStepStartDate": ""}
EVERYTHING = {"PatientName": "", "PatientID": "", "AccessionNumber": ""}
DATES = {"ScheduledProcedureStepStartDate": "20261204-20261205"}
QUERIES = {
    "everything": {**EVERYTHING, "ScheduledProcedureStepSequence": [STEP]},
    "ct": {"PatientName": "", "ScheduledProcedureStepSequence": [{"Modality": "CT"}]},
    "name": {"PatientName": "DOE*", "AccessionNumber": ""},
    "dates": {"AccessionNumber": "", "ScheduledProcedureStepSequence": [DATES]},
    "station": {
        "PatientID": "",
        "ScheduledProcedureStepSequence": [{"ScheduledStationAETitle": "MR02", "Modality": ""}],
    },
}


@pytest.fixture(scope="module")
def peers(tmp_path_factory):
    """Our server and an Orthanc with its worklist plugin, over one folder of items, each
    declared to the other."""
    root = tmp_path_factory.mktemp("worklists")
    folder = root / "items"
    folder.mkdir()
    our_port = free_port()
    orthanc = start_orthanc(
        root / "orthanc",
        modalities={"workbench": [NODE_AET, "127.0.0.1", our_port]},
        extra={
            "Plugins": [require_plugin(WORKLIST_PLUGIN)],
            "Worklists": {"Enable": True, "Database": str(folder)},
        },
    )
    pacs = serve(
        StorageDirectory=str(root / "store"),
        HttpPort=0,
        DicomPort=our_port,
        DicomAet=NODE_AET,
        StableAge=1,
        DicomModalities={"orthanc": ["ORTHANC", "127.0.0.1", orthanc.dicom_port]},
        Worklists={"Enable": True, "Database": str(folder)},
    )
    yield pacs, orthanc, folder
    pacs.stop()
    orthanc.stop()


def ours(pacs, path: str, method: str = "get", **kwargs) -> requests.Response:
    return requests.request(method, pacs.url + path, timeout=60, **kwargs)


def canonical(answers: list[dict]) -> list[str]:
    return sorted(json.dumps(answer, sort_keys=True) for answer in answers)


def test_our_items_served_as_orthancs_plugin_serves_them(peers):
    pacs, orthanc, folder = peers
    created = [ours(pacs, "/worklists/create", "post", json={"Tags": item}) for item in ITEMS]
    assert all(r.status_code == 200 for r in created), [r.text for r in created]
    require_tool("dump2dcm")
    for dump in sorted(DCMTK_EXAMPLES.glob("*.dump")):
        dcmtk("dump2dcm", str(dump), str(folder / f"{dump.stem}.wl"))
    for name, query in QUERIES.items():
        # Orthanc asks our SCP; we ask Orthanc's plugin: the same question, the same files.
        theirs = orthanc.post("/modalities/workbench/find-worklist", json={"Query": query})
        mine = ours(pacs, "/modalities/orthanc/find-worklist", "post", json={"Query": query})
        assert theirs.status_code == 200 and mine.status_code == 200, (theirs.text, mine.text)
        assert canonical(mine.json()) == canonical(theirs.json()), name
    everything = ours(pacs, "/modalities/orthanc/find-worklist", "post",
                      json={"Query": QUERIES["everything"]}).json()  # fmt: skip
    accessions = {answer.get("AccessionNumber") for answer in everything}
    assert {"ACC1", "ACC2", "ACC3"} <= accessions
    ct = ours(pacs, "/modalities/orthanc/find-worklist", "post",
              json={"Query": QUERIES["ct"], "Short": True}).json()  # fmt: skip
    assert all("0010,0010" in answer for answer in ct) and len(ct) >= 2


def test_worklists_rest(peers):
    pacs, _, _ = peers
    item = _item("WL-9", "CRUD^TEST", "ACC9", "US", "US01", "20261206")
    created = ours(pacs, "/worklists/create", "post", json={"Tags": item}).json()
    path = created["Path"]
    assert path == f"/worklists/{created['ID']}"
    shown = ours(pacs, path).json()
    assert shown["ID"] == created["ID"] and shown["Tags"]["AccessionNumber"] == "ACC9"
    assert shown["Tags"]["StudyInstanceUID"], "a Study Instance UID is given when missing"
    step = shown["Tags"]["ScheduledProcedureStepSequence"][0]
    assert step["ScheduledStationAETitle"] == "US01"
    assert created["ID"] in {w["ID"] for w in ours(pacs, "/worklists").json()}

    changed = {**item, "AccessionNumber": "ACC10"}
    assert ours(pacs, path, "put", json={"Tags": changed}).json() == {}
    query = {"Query": {"PatientID": "WL-9", "AccessionNumber": ""}}
    answers = ours(pacs, "/modalities/orthanc/find-worklist", "post", json=query).json()
    assert [a["AccessionNumber"] for a in answers] == ["ACC10"]

    assert ours(pacs, path, "delete").json() == {}
    assert ours(pacs, path).status_code == 404
    assert ours(pacs, "/modalities/orthanc/find-worklist", "post", json=query).json() == []

    assert ours(pacs, "/worklists/..%2F..%2Fetc").status_code == 404
    bad = ours(pacs, "/worklists/create", "post", json={"Tags": {"NotATag": "x"}})
    assert bad.status_code == 400 and "NotATag" in bad.json()["Details"]
    bad = ours(pacs, "/worklists/create", "post",
               json={"Tags": {"ScheduledProcedureStepSequence": "CT"}})  # fmt: skip
    assert bad.status_code == 400 and "ScheduledProcedureStepSequence" in bad.json()["Details"]


def test_the_worklist_of_a_study_goes_when_the_study_is_stable(peers):
    pacs, _, _ = peers
    files = dicom_files(real_path(CT_SERIES))
    import pydicom

    study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    item = _item("WL-7", "STABLE^STUDY", "ACC7", "CT", "CT01", "20261204",
                 StudyInstanceUID=study_uid)  # fmt: skip
    other = _item("WL-8", "OTHER^STUDY", "ACC8", "CT", "CT01", "20261204")
    done = ours(pacs, "/worklists/create", "post", json={"Tags": item}).json()["Path"]
    kept = ours(pacs, "/worklists/create", "post", json={"Tags": other}).json()["Path"]
    pacs.index.import_path(*files, progress=False)
    deadline = time.monotonic() + 60
    while ours(pacs, done).status_code != 404:
        assert time.monotonic() < deadline, "the worklist item is still there"
        time.sleep(0.2)
    assert ours(pacs, kept).status_code == 200
