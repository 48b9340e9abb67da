"""Split and merge of studies (``/studies/{id}/split``, ``/studies/{id}/merge``), now and as
jobs, side by side with a real Orthanc 1.10 holding the same files."""

from __future__ import annotations

import time

import pytest
import requests

from tests.data import dicom_files, real_path
from tests.pacs.side_by_side import beside_orthanc

pytestmark = pytest.mark.peers

CT = dicom_files(real_path("series_ct_philips_ingenuity_5mm"))[:3]
MR = dicom_files(real_path("enhanced_mr_siemens_xa10"))[:2]


@pytest.fixture
def both(tmp_path, orthanc):
    yield from beside_orthanc(tmp_path, orthanc, [*CT, *MR])


def get(url: str, path: str) -> dict | list:
    answer = requests.get(url + path, timeout=30)
    answer.raise_for_status()
    return answer.json()


def studies(url: str) -> dict[str, dict]:
    """The studies by PatientID."""
    return {s["PatientMainDicomTags"]["PatientID"]: s for s in get(url, "/studies?expand")}


def tags(url: str, study: str) -> list[dict]:
    return [get(url, f"/instances/{i['ID']}/tags?simplify")
            for i in get(url, f"/studies/{study}/instances")]  # fmt: skip


def post_both(both, path: str, body) -> dict[str, requests.Response]:
    return {name: requests.post(url + path, json=body, timeout=60)
            for name, url in both.items()}  # fmt: skip


def test_split_as_orthanc(both):
    ct = studies(both["orthanc"])["PLASTIC"]
    assert ct["ID"] == studies(both["ours"])["PLASTIC"]["ID"]
    series = ct["Series"][0]
    instances = get(both["orthanc"], f"/series/{series}")["Instances"]
    body = {"Instances": instances[:2], "Replace": {"StudyDescription": "split off"},
            "Remove": ["AccessionNumber"], "KeepSource": True}  # fmt: skip
    answers = post_both(both, f"/studies/{ct['ID']}/split", body)
    for name, url in both.items():
        answer = answers[name]
        assert answer.status_code == 200, answer.text
        content = answer.json()
        assert content.keys() == answers["orthanc"].json().keys()
        assert content["InstancesCount"] == 2 and content["FailedInstancesCount"] == 0
        target = get(url, f"/studies/{content['TargetStudy']}")
        assert target["MainDicomTags"]["StudyInstanceUID"] == content["TargetStudyUID"]
        assert target["MainDicomTags"]["StudyDescription"] == "split off"
        assert target["ParentPatient"] == ct["ParentPatient"]
        copies = tags(url, content["TargetStudy"])
        assert len(copies) == 2 and "AccessionNumber" not in copies[0]
        assert len({c["SeriesInstanceUID"] for c in copies}) == 1
        originals = tags(url, ct["ID"])
        assert copies[0]["SeriesInstanceUID"] not in {o["SeriesInstanceUID"] for o in originals}
        assert not {c["SOPInstanceUID"] for c in copies} & {o["SOPInstanceUID"] for o in originals}
        assert copies[0]["SeriesDescription"] == originals[0]["SeriesDescription"]
        assert len(originals) == 3  # kept
    # Without KeepSource the sources go: a whole series leaves the study.
    answers = post_both(both, f"/studies/{ct['ID']}/split", {"Series": [series]})
    for name, url in both.items():
        assert answers[name].status_code == 200
        assert answers[name].json()["InstancesCount"] == 3
        assert requests.get(f"{url}/studies/{ct['ID']}", timeout=30).status_code == 404


def test_merge_as_orthanc(both):
    found = studies(both["orthanc"])
    ct, mr = found["PLASTIC"], next(s for k, s in found.items() if k != "PLASTIC")
    mr_instance = get(both["orthanc"], f"/studies/{mr['ID']}/instances")[0]["ID"]
    answers = post_both(both, f"/studies/{ct['ID']}/merge",
                        {"Resources": [mr_instance], "KeepSource": True})  # fmt: skip
    for name, url in both.items():
        assert answers[name].status_code == 200, answers[name].text
        assert answers[name].json() == answers["orthanc"].json()  # same target, same count
        merged = get(url, f"/studies/{ct['ID']}")
        assert len(merged["Series"]) == 2
        everything = tags(url, ct["ID"])
        copy = next(t for t in everything if t["Modality"] == "MR")
        assert copy["PatientID"] == "PLASTIC" and copy["PatientName"] == ct[
            "PatientMainDicomTags"]["PatientName"]  # fmt: skip
        assert copy["StudyDescription"] == ct["MainDicomTags"]["StudyDescription"]
        assert "OtherPatientIDs" not in copy  # the target has none
        assert copy["SOPInstanceUID"] != get(url, f"/instances/{mr_instance}/tags?simplify")[
            "SOPInstanceUID"]  # fmt: skip
    # A whole study, without KeepSource: it is gone once merged.
    answers = post_both(both, f"/studies/{ct['ID']}/merge", {"Resources": [mr["ID"]]})
    for name, url in both.items():
        assert answers[name].json()["InstancesCount"] == 2
        assert requests.get(f"{url}/studies/{mr['ID']}", timeout=30).status_code == 404
        assert len(get(url, f"/studies/{ct['ID']}/instances")) == 3 + 1 + 2


def wait_for_job(url: str, job: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = get(url, f"/jobs/{job}")
        if answer["State"] in ("Success", "Failure"):
            return answer
        time.sleep(0.1)
    raise AssertionError(f"job {job} did not finish")


def test_split_and_merge_as_jobs(both):
    found = studies(both["orthanc"])
    ct, mr = found["PLASTIC"], next(s for k, s in found.items() if k != "PLASTIC")
    for path, body, kind in (
        (f"/studies/{ct['ID']}/split", {"Series": ct["Series"], "KeepSource": True},
         "SplitStudy"),
        (f"/studies/{ct['ID']}/merge", {"Resources": [mr["ID"]], "KeepSource": True},
         "MergeStudy"),
    ):  # fmt: skip
        answers = post_both(both, path, {**body, "Asynchronous": True})
        jobs = {}
        for name, url in both.items():
            assert answers[name].status_code == 200
            assert answers[name].json().keys() == {"ID", "Path"}
            jobs[name] = wait_for_job(url, answers[name].json()["ID"])
        assert jobs["ours"]["State"] == jobs["orthanc"]["State"] == "Success"
        assert jobs["ours"]["Type"] == jobs["orthanc"]["Type"] == kind
        assert jobs["ours"]["Content"].keys() == jobs["orthanc"]["Content"].keys()
        assert jobs["ours"]["Content"]["InstancesCount"] == jobs["orthanc"]["Content"][
            "InstancesCount"]  # fmt: skip
        assert jobs["ours"]["Progress"] == 100


def test_refusals_as_orthanc(both):
    found = studies(both["orthanc"])
    ct, mr = found["PLASTIC"], next(s for k, s in found.items() if k != "PLASTIC")
    series = ct["Series"][0]
    cases = [
        ("split", {}, 400),
        ("split", {"Series": ["nope"]}, 404),
        ("split", {"Instances": [ct["ID"]]}, 404),
        ("split", {"Series": mr["Series"]}, 404),
        ("split", {"Series": [series], "Replace": {"SeriesDescription": "x"}}, 400),
        ("merge", {}, 400),
        ("merge", {"Resources": "x"}, 400),
        ("merge", {"Resources": ["nope"]}, 404),
        ("merge", {"Resources": [ct["ID"]]}, 404),
        ("merge", {"Resources": [mr["ID"]], "KeepSource": "x"}, 400),
    ]
    for action, body, status in cases:
        answers = post_both(both, f"/studies/{ct['ID']}/{action}", body)
        assert answers["ours"].status_code == answers["orthanc"].status_code == status, (
            action, body, answers["ours"].text)  # fmt: skip
        ours, theirs = answers["ours"].json(), answers["orthanc"].json()
        assert ours["OrthancStatus"] == theirs["OrthancStatus"], (action, body)
        assert ours["Details"]
    for action in ("split", "merge"):
        answers = post_both(both, f"/studies/nope/{action}", {"Series": [series],
                                                              "Resources": [series]})  # fmt: skip
        assert answers["ours"].status_code == answers["orthanc"].status_code == 404
    # Nothing was changed by the refusals.
    for url in both.values():
        assert len(get(url, "/instances")) == len(CT) + len(MR)
