"""Storage commitment with a real Orthanc, both ways: Orthanc asks us and reads our report,
we ask Orthanc and read its report; the two reports on the same question are equal."""

from __future__ import annotations

import time

import pydicom
import pytest
import requests
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StorageCommitmentPushModel

from tests.data import dicom_files, real_path
from tests.pacs.node_support import NODE_AET
from tests.peers import free_port
from workbench.pacs import serve

pytestmark = pytest.mark.peers

CT_SERIES = "series_ct_philips_ingenuity_5mm"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
UNKNOWN_INSTANCE = "1.2.826.0.1.3680043.8.498.1"


@pytest.fixture(scope="module")
def pacs(tmp_path_factory, orthanc):
    handle = serve(
        StorageDirectory=str(tmp_path_factory.mktemp("pacs")),
        HttpPort=0,
        DicomPort=free_port(),
        DicomAet=NODE_AET,
        DicomModalities={"orthanc": ["ORTHANC", "127.0.0.1", orthanc.dicom_port]},
    )
    orthanc.put(
        "/modalities/workbench",
        json={"AET": NODE_AET, "Host": "127.0.0.1", "Port": handle.node.port},
    ).raise_for_status()
    yield handle
    orthanc.delete("/modalities/workbench")
    handle.stop()


@pytest.fixture(scope="module")
def ct_instances() -> list[list[str]]:
    """(SOP Class UID, SOP Instance UID) of each CT slice."""
    pairs = []
    for path in dicom_files(real_path(CT_SERIES)):
        header = pydicom.dcmread(path, stop_before_pixels=True)
        pairs.append([str(header.SOPClassUID), str(header.SOPInstanceUID)])
    return sorted(pairs)


def question(ct_instances) -> list[list[str]]:
    """Every CT slice, one named with the wrong SOP class, and one nobody has."""
    wrong_class = [MR_IMAGE_STORAGE, ct_instances[0][1]]
    return [*ct_instances[1:], wrong_class, [ct_instances[0][0], UNKNOWN_INSTANCE]]


def wait_for_report(get, path: str, timeout: float = 60) -> dict:
    """The report once it is no longer pending (reports come on their own association)."""
    deadline = time.monotonic() + timeout
    while True:
        report = get(path).json()
        if report["Status"] != "Pending" or time.monotonic() > deadline:
            return report
        time.sleep(0.1)


def comparable(report: dict) -> dict:
    return {
        **{key: value for key, value in report.items() if key != "RemoteAET"},
        "Success": sorted(report["Success"], key=lambda i: i["SOPInstanceUID"]),
        "Failures": sorted(report["Failures"], key=lambda i: i["SOPInstanceUID"]),
    }


def ours(pacs, path: str, method: str = "get", **kwargs) -> requests.Response:
    return requests.request(method, pacs.url + path, timeout=120, **kwargs)


def test_reports_both_ways_are_equal(pacs, orthanc, ct_instances):
    orthanc.clear()
    for path in dicom_files(real_path(CT_SERIES)):
        orthanc.upload(path)
    pacs.index.import_path(*dicom_files(real_path(CT_SERIES)), progress=False)
    body = {"DicomInstances": question(ct_instances)}

    # Orthanc asks us; our report reaches it on an association of our own.
    asked = orthanc.post("/modalities/workbench/storage-commitment", json=body)
    asked.raise_for_status()
    theirs = wait_for_report(lambda p: orthanc.get(p), asked.json()["Path"])
    assert theirs["RemoteAET"] == NODE_AET

    # We ask Orthanc the same; its report reaches our node.
    answer = ours(pacs, "/modalities/orthanc/storage-commitment", "post", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["Path"] == f"/storage-commitment/{answer.json()['ID']}"
    mine = wait_for_report(lambda p: ours(pacs, p), answer.json()["Path"])
    assert mine["RemoteAET"] == "ORTHANC"

    assert comparable(mine) == comparable(theirs)
    assert mine["Status"] == "Failure"
    reasons = {f["SOPInstanceUID"]: f["FailureReason"] for f in mine["Failures"]}
    assert reasons == {ct_instances[0][1]: 0x0119, UNKNOWN_INSTANCE: 0x0112}
    assert len(mine["Success"]) == len(ct_instances) - 1


def test_resources_committed_then_removed_here(pacs, orthanc, ct_instances):
    orthanc.clear()
    for path in dicom_files(real_path(CT_SERIES)):
        orthanc.upload(path)
    study = pacs.index.import_path(*dicom_files(real_path(CT_SERIES)), progress=False)
    studies = ours(pacs, "/studies").json()
    assert len(studies) == 1, study
    answer = ours(pacs, "/modalities/orthanc/storage-commitment", "post",
                  json={"Resources": studies})  # fmt: skip
    report = wait_for_report(lambda p: ours(pacs, p), answer.json()["Path"])
    committed = sorted([i["SOPClassUID"], i["SOPInstanceUID"]] for i in report["Success"])
    assert report["Status"] == "Success" and committed == ct_instances
    # The archive has them: the local copies can go.
    assert ours(pacs, f"{answer.json()['Path']}/remove", "post").json() == {}
    assert ours(pacs, "/instances").json() == []


def test_removal_after_a_failure_is_refused(pacs, orthanc, ct_instances):
    orthanc.clear()
    pacs.index.import_path(*dicom_files(real_path(CT_SERIES)), progress=False)
    answer = ours(pacs, "/modalities/orthanc/storage-commitment", "post",
                  json={"DicomInstances": ct_instances[:2]})  # fmt: skip
    report = wait_for_report(lambda p: ours(pacs, p), answer.json()["Path"])
    assert report["Status"] == "Failure"
    assert {f["FailureReason"] for f in report["Failures"]} == {0x0112}
    refused = ours(pacs, f"{answer.json()['Path']}/remove", "post")
    assert refused.status_code == 400 and "failure" in refused.json()["Details"]
    assert len(ours(pacs, "/instances").json()) == len(ct_instances)


def test_bad_requests(pacs):
    unknown = ours(pacs, "/storage-commitment/1.2.3.4")
    assert unknown.status_code == 404 and "1.2.3.4" in unknown.json()["Details"]
    empty = ours(pacs, "/modalities/orthanc/storage-commitment", "post", json={})
    assert empty.status_code == 400 and "DicomInstances" in empty.json()["Details"]
    malformed = ours(pacs, "/modalities/orthanc/storage-commitment", "post",
                     json={"DicomInstances": [["only-one"]]})  # fmt: skip
    assert malformed.status_code == 400 and "SOPInstanceUID" in malformed.json()["Details"]
    nobody = ours(pacs, "/modalities/nobody/storage-commitment", "post", json={"Resources": []})
    assert nobody.status_code == 404


def test_an_undeclared_modality_may_not_ask(pacs, ct_instances):
    """Its report could go nowhere: the request is refused (0x0124), nothing is sent."""
    ae = AE(ae_title="STRANGER")
    ae.add_requested_context(StorageCommitmentPushModel)
    assoc = ae.associate("127.0.0.1", pacs.node.port, ae_title=NODE_AET)
    assert assoc.is_established
    try:
        information = Dataset()
        information.TransactionUID = "1.2.826.0.1.3680043.8.498.77"
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = ct_instances[0]
        information.ReferencedSOPSequence = [item]
        status, _ = assoc.send_n_action(
            information, 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1"
        )
    finally:
        assoc.release()
    assert status.Status == 0x0124


def test_store_with_storage_commitment_and_move_originator(pacs, orthanc, ct_instances):
    """The store options answer as Orthanc's do, and the commitment is asked for what was
    sent."""
    orthanc.clear()
    for path in dicom_files(real_path(CT_SERIES)):
        orthanc.upload(path)
    pacs.index.import_path(*dicom_files(real_path(CT_SERIES)), progress=False)
    series = ours(pacs, "/series").json()
    body = {"Resources": series, "StorageCommitment": True, "MoveOriginatorAet": "ASKER",
            "MoveOriginatorID": 7, "Timeout": 30}  # fmt: skip
    answer = ours(pacs, "/modalities/orthanc/store", "post", json=body)
    assert answer.status_code == 200, answer.text
    theirs_body = {**body, "Resources": orthanc.get("/series").json()}
    theirs = orthanc.post("/modalities/workbench/store", json=theirs_body).json()
    assert set(answer.json()) == set(theirs)
    assert answer.json()["MoveOriginatorAET"] == "ASKER" == theirs["MoveOriginatorAET"]
    assert answer.json()["InstancesCount"] == len(ct_instances) == theirs["InstancesCount"]
    path = f"/storage-commitment/{answer.json()['StorageCommitmentTransactionUID']}"
    report = wait_for_report(lambda p: ours(pacs, p), path)
    assert report["Status"] == "Success" and len(report["Success"]) == len(ct_instances)

    job = ours(pacs, "/modalities/orthanc/store", "post",
               json={**body, "Asynchronous": True}).json()  # fmt: skip
    assert job["Path"] == f"/jobs/{job['ID']}"


def test_modalities_expand_as_orthanc(pacs, orthanc):
    mine = ours(pacs, "/modalities?expand").json()["orthanc"]
    theirs = orthanc.get("/modalities?expand").json()["workbench"]
    assert set(mine) == set(theirs)
    assert {k: v for k, v in mine.items() if k.startswith("Allow")} == {
        k: v for k, v in theirs.items() if k.startswith("Allow")
    }
