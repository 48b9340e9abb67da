"""Jobs (``"Asynchronous": true`` and ``/jobs``) side by side with a real Orthanc, and driven
by pyorthanc: the same requests make the same kinds of jobs, with the same content."""

from __future__ import annotations

import io
import socket
import time
import zipfile

import pydicom
import pytest
import requests

from tests.data import dicom_files, real_path
from tests.pacs.node_support import NODE_AET
from tests.peers import free_port, start_orthanc
from workbench.pacs import serve

pytestmark = pytest.mark.peers

CT_SERIES = "series_ct_philips_ingenuity_5mm"
#: What differs in any two jobs: who, when, how long.
OWN_FIELDS = {"ID", "CreationTime", "CompletionTime", "Timestamp", "EffectiveRuntime"}


@pytest.fixture(scope="module")
def silent():
    """A port that accepts connections and never answers (associations there hang until it
    closes): something for a job to wait on."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.listen(8)
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def peers(tmp_path_factory, silent):
    root = tmp_path_factory.mktemp("jobs")
    our_port = free_port()
    orthanc = start_orthanc(
        root / "orthanc", modalities={"workbench": [NODE_AET, "127.0.0.1", our_port]}
    )
    pacs = serve(
        StorageDirectory=str(root / "store"),
        HttpPort=0,
        DicomPort=our_port,
        DicomAet=NODE_AET,
        ConcurrentJobs=1,
        DicomModalities={
            "orthanc": ["ORTHANC", "127.0.0.1", orthanc.dicom_port],
            "silent": ["SILENT", "127.0.0.1", silent.getsockname()[1]],
        },
    )
    files = dicom_files(real_path(CT_SERIES))
    pacs.index.import_path(*files, progress=False)
    for path in files:
        orthanc.upload(path)
    yield pacs, orthanc
    pacs.stop()
    orthanc.stop()


@pytest.fixture(scope="module")
def ct_study(peers) -> str:
    """The CT study's ID (the same on both sides), before any test adds another."""
    pacs, _ = peers
    (study,) = ours(pacs, "/studies").json()
    return study


def ours(pacs, path: str, method: str = "get", **kwargs) -> requests.Response:
    return requests.request(method, pacs.url + path, timeout=120, **kwargs)


def finished(get, job_id: str, timeout: float = 120) -> dict:
    """The job once it has left Pending/Running."""
    deadline = time.monotonic() + timeout
    while True:
        job = get(f"/jobs/{job_id}").json()
        if job["State"] not in ("Pending", "Running") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def comparable(job: dict) -> dict:
    return {key: value for key, value in job.items() if key not in OWN_FIELDS}


def test_store_jobs_as_orthancs(peers, ct_study):
    pacs, orthanc = peers
    study = [ct_study]
    body = {"Resources": study, "Asynchronous": True}
    answer = ours(pacs, "/modalities/orthanc/store", "post", json=body).json()
    theirs_answer = orthanc.post("/modalities/workbench/store", json=body).json()
    assert set(answer) == set(theirs_answer) == {"ID", "Path"}
    assert answer["Path"] == f"/jobs/{answer['ID']}"
    mine = finished(lambda p: ours(pacs, p), answer["ID"])
    theirs = finished(lambda p: orthanc.get(p), theirs_answer["ID"])
    assert set(mine) == set(theirs)
    assert mine["State"] == theirs["State"] == "Success" and mine["Progress"] == 100
    assert mine["Type"] == theirs["Type"] == "DicomModalityStore"
    assert set(mine["Content"]) == set(theirs["Content"])
    assert mine["Content"]["InstancesCount"] == theirs["Content"]["InstancesCount"] == 28
    assert mine["ID"] in ours(pacs, "/jobs").json()
    expanded = {job["ID"]: job for job in ours(pacs, "/jobs?expand").json()}
    assert comparable(expanded[mine["ID"]]) == comparable(mine)


def test_archive_jobs_leave_the_zip(peers, ct_study):
    pacs, orthanc = peers
    study = ct_study
    answer = ours(pacs, f"/studies/{study}/archive", "post", json={"Asynchronous": True}).json()
    theirs_answer = orthanc.post(f"/studies/{study}/archive", json={"Asynchronous": True}).json()
    mine = finished(lambda p: ours(pacs, p), answer["ID"])
    theirs = finished(lambda p: orthanc.get(p), theirs_answer["ID"])
    assert mine["Type"] == theirs["Type"] == "Archive" and mine["State"] == "Success"
    assert mine["Content"]["InstancesCount"] == theirs["Content"]["InstancesCount"] == 28
    assert set(mine["Content"]) <= set(theirs["Content"])
    archive = ours(pacs, f"/jobs/{answer['ID']}/archive")
    assert archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        names = [n for n in zipped.namelist() if not n.endswith("/")]
        assert len(names) == 28
        assert pydicom.dcmread(io.BytesIO(zipped.read(names[0]))).StudyInstanceUID
    # The synchronous form answers the ZIP itself.
    now = ours(pacs, f"/studies/{study}/archive", "post", json={})
    assert now.headers["content-type"] == "application/zip"
    assert ours(pacs, f"/jobs/{answer['ID']}/nothing").status_code == 404


def test_anonymize_as_job_with_pyorthanc(peers, ct_study):
    from pyorthanc import Orthanc, Study

    pacs, _ = peers
    client = Orthanc(pacs.url)
    study_id = ct_study
    job = Study(study_id, client).anonymize_as_job(replace={"PatientName": "JOB^ANON"})
    deadline = time.monotonic() + 60
    while job.state.value in ("Pending", "Running") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.state.value == "Success", job.get_information()
    assert job.type == "ResourceModification"
    anonymized = Study(job.content["ID"], client)
    assert anonymized.patient_information["PatientName"] == "JOB^ANON"
    assert len(anonymized.series[0].instances) == 28


def test_pause_resume_cancel_resubmit(peers, silent, ct_study):
    """One job at a time: a store that hangs holds the runner, so the next waits, can be
    paused, resumed, cancelled and resubmitted, and runs once the first gives up."""
    pacs, _ = peers
    body = {"Resources": [ct_study], "Asynchronous": True}
    hanging = ours(pacs, "/modalities/silent/store", "post", json=body).json()["ID"]
    deadline = time.monotonic() + 30
    while ours(pacs, f"/jobs/{hanging}").json()["State"] != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    waiting = ours(pacs, "/modalities/orthanc/store", "post", json=body).json()["ID"]
    assert ours(pacs, f"/jobs/{waiting}").json()["State"] == "Pending"

    assert ours(pacs, f"/jobs/{waiting}/pause", "post").json() == {}
    assert ours(pacs, f"/jobs/{waiting}").json()["State"] == "Paused"
    assert ours(pacs, f"/jobs/{waiting}/resume", "post").json() == {}
    assert ours(pacs, f"/jobs/{waiting}").json()["State"] == "Pending"
    assert ours(pacs, f"/jobs/{waiting}/cancel", "post").json() == {}
    cancelled = ours(pacs, f"/jobs/{waiting}").json()
    assert cancelled["State"] == "Failure" and cancelled["ErrorCode"] == 37
    refused = ours(pacs, f"/jobs/{hanging}/resubmit", "post")
    assert refused.status_code == 400 and "Running" in refused.json()["Details"]
    assert ours(pacs, f"/jobs/{waiting}/resubmit", "post").json() == {}
    assert ours(pacs, f"/jobs/{waiting}").json()["State"] == "Pending"

    # The silent peer gives up: the hanging store fails, naming the network, and the
    # resubmitted one runs.
    silent.settimeout(10)
    silent.accept()[0].close()
    failed = finished(lambda p: ours(pacs, p), hanging)
    assert failed["State"] == "Failure" and failed["ErrorCode"] == 9
    assert "silent" in failed["ErrorDetails"]
    done = finished(lambda p: ours(pacs, p), waiting)
    assert done["State"] == "Success" and done["Content"]["InstancesCount"] == 28
    assert ours(pacs, "/jobs/no-such-job").status_code == 404
