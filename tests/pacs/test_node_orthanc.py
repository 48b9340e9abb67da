"""The node and its REST routes against a real Orthanc, checked through both REST APIs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import pydicom
import pytest
import requests

from tests.data import present, real_path
from tests.pacs.node_support import NODE_AET, dicom_files
from tests.peers import free_port
from workbench.pacs import serve

pytestmark = pytest.mark.peers

CT_SERIES = "series_ct_philips_ingenuity_5mm"
MR_SERIES = "series_mr_siemens_t1_sag_HFS"


@pytest.fixture(scope="module")
def pacs(tmp_path_factory, orthanc, database):
    handle = serve(
        StorageDirectory=str(tmp_path_factory.mktemp("pacs")),
        DatabaseUrl=database.new_url(),
        HttpPort=0,
        DicomPort=free_port(),
        DicomAet=NODE_AET,
        DicomModalities={"orthanc": ["ORTHANC", "127.0.0.1", orthanc.dicom_port]},
    )
    response = orthanc.put(
        "/modalities/workbench",
        json={"AET": NODE_AET, "Host": "127.0.0.1", "Port": handle.node.port},
    )
    response.raise_for_status()
    yield handle
    orthanc.delete("/modalities/workbench")
    handle.stop()


def ours(pacs, path: str, method: str = "get", **kwargs) -> requests.Response:
    return requests.request(method, pacs.url + path, timeout=120, **kwargs)


def upload(orthanc, files) -> set[str]:
    return {orthanc.upload(path)["ParentStudy"] for path in files}


def test_rest_echo_both_ways(pacs, orthanc):
    assert ours(pacs, "/modalities/orthanc/echo", "post").json() == {}
    assert orthanc.post("/modalities/workbench/echo", json={}).status_code == 200
    missing = ours(pacs, "/modalities/nobody/echo", "post")
    assert missing.status_code == 404 and "nobody" in missing.json()["Details"]


def test_rest_modalities_put_list_delete(pacs):
    port = free_port()  # nothing listens there
    assert (
        ours(
            pacs,
            "/modalities/ghost",
            "put",
            json={"AET": "GHOST", "Host": "127.0.0.1", "Port": port},
        ).status_code
        == 200
    )
    assert "ghost" in ours(pacs, "/modalities").json()
    expanded = ours(pacs, "/modalities?expand").json()
    assert expanded["ghost"]["AET"] == "GHOST" and expanded["ghost"]["Port"] == port
    failed = ours(pacs, "/modalities/ghost/echo", "post")
    assert failed.status_code == 500 and "unreachable" in failed.json()["Details"]
    bad = ours(pacs, "/modalities/bad", "put", json={"AET": "X"})
    assert bad.status_code == 400
    assert ours(pacs, "/modalities/ghost", "delete").status_code == 200
    assert "ghost" not in ours(pacs, "/modalities").json()


def test_orthanc_stores_to_us_same_ids(pacs, orthanc, sample_data):
    orthanc.clear()
    files = dicom_files(sample_data / CT_SERIES) + dicom_files(sample_data / "toshiba_ct_j2k")
    studies = upload(orthanc, files)
    job = orthanc.post(
        "/modalities/workbench/store", json={"Resources": sorted(studies), "Synchronous": True}
    )
    assert job.status_code == 200, job.text
    for study in studies:
        theirs = sorted(
            orthanc.get(f"/studies/{study}/instances").json(), key=lambda item: item["ID"]
        )
        mine = ours(pacs, f"/studies/{study}/instances")
        assert mine.status_code == 200, f"study {study} missing on our side"
        assert [i["ID"] for i in theirs] == sorted(i["ID"] for i in mine.json())


def test_orthanc_queries_us(pacs, orthanc, sample_data):
    for path in dicom_files(sample_data / "enhanced_mr_siemens_xa10"):
        assert ours(pacs, "/instances", "post", data=path.read_bytes()).status_code == 200
    ours_studies = ours(pacs, "/studies").json()
    assert ours_studies
    answer = orthanc.post(
        "/modalities/workbench/query", json={"Level": "Study", "Query": {"StudyInstanceUID": ""}}
    ).json()
    contents = orthanc.get(f"{answer['Path']}/answers?expand&simplify").json()
    found = {item["StudyInstanceUID"] for item in contents}
    expected = {
        ours(pacs, f"/studies/{study}").json()["MainDicomTags"]["StudyInstanceUID"]
        for study in ours_studies
    }
    assert found == expected


def test_we_query_and_retrieve_from_orthanc(pacs, orthanc, sample_data):
    files = dicom_files(sample_data / MR_SERIES)
    upload(orthanc, files)
    series_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
    created = ours(
        pacs,
        "/modalities/orthanc/query",
        "post",
        json={"Level": "Series", "Query": {"SeriesInstanceUID": series_uid, "Modality": ""}},
    )
    assert created.status_code == 200, created.text
    path = created.json()["Path"]
    assert ours(pacs, f"{path}/answers").json() == ["0"]
    content = ours(pacs, f"{path}/answers/0/content?simplify").json()
    assert content["SeriesInstanceUID"] == series_uid
    assert content["Modality"] == "MR"
    full = ours(pacs, f"{path}/answers/0/content").json()
    assert full["0020,000e"]["Value"] == series_uid
    moved = ours(pacs, f"{path}/answers/0/retrieve", "post", data=NODE_AET)
    assert moved.status_code == 200, moved.text
    theirs = orthanc.post("/tools/lookup", data=series_uid).json()[0]["ID"]
    their_instances = {i["ID"] for i in orthanc.get(f"/series/{theirs}/instances").json()}
    mine = ours(pacs, f"/series/{theirs}/instances")
    assert mine.status_code == 200
    assert {i["ID"] for i in mine.json()} == their_instances
    assert len(their_instances) == len(files)


def test_we_store_to_orthanc(pacs, orthanc):
    orthanc.clear()
    folders = present("sc_rgb_rle", "nema_ct1_ge", "us_multiframe_ybr422_jpeg", "nema_cr_rg2_fuji")
    files = [path for folder in folders for path in dicom_files(real_path(folder))]
    imported = {
        ours(pacs, "/instances", "post", data=path.read_bytes()).json()["ID"] for path in files
    }
    answer = ours(pacs, "/modalities/orthanc/store", "post", json=sorted(imported))
    assert answer.status_code == 200, answer.text
    assert answer.json()["InstancesCount"] == len(imported)
    assert answer.json()["FailedInstancesCount"] == 0
    for instance in imported:
        theirs = orthanc.get(f"/instances/{instance}")
        assert theirs.status_code == 200
        mine = ours(pacs, f"/instances/{instance}/simplified-tags").json()
        assert theirs.json()["MainDicomTags"]["SOPInstanceUID"] == mine["SOPInstanceUID"]
        their_file = pydicom.dcmread(io.BytesIO(orthanc.get(f"/instances/{instance}/file").content))
        my_file = pydicom.dcmread(io.BytesIO(ours(pacs, f"/instances/{instance}/file").content))
        assert their_file.PixelData == my_file.PixelData  # sent as stored, no re-encoding


def test_c_get_and_c_move_from_orthanc_with_python_api(pacs, orthanc, sample_data):
    orthanc.clear()
    files = dicom_files(sample_data / "nema_mr1_small_transcodes")
    studies = upload(orthanc, files)
    study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    for study in studies:
        ours(pacs, f"/studies/{study}", "delete")
    answers = pacs.node.find("orthanc", "Study", {"StudyInstanceUID": study_uid})
    assert [a.StudyInstanceUID for a in answers] == [study_uid]
    result = pacs.node.get("orthanc", {"StudyInstanceUID": study_uid})
    assert result.ok and result.failed == 0 and result.completed >= 1
    expected = {i["ID"] for s in studies for i in orthanc.get(f"/studies/{s}/instances").json()}
    got = {i for s in studies for i in pacs.index.instances_of("Study", s)}
    assert got == expected
    for study in studies:
        pacs.index.delete("Study", study)
    result = pacs.node.move("orthanc", {"StudyInstanceUID": study_uid})
    assert result.ok and result.completed == len(expected)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(
        pacs.index.exists("Instance", i) for i in expected
    ):
        time.sleep(0.1)
    assert all(pacs.index.exists("Instance", i) for i in expected)


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.mark.parametrize("study", present("enhanced_mr_siemens_xa10", "nema_mr2_philips"))
def test_cli_echo_send_find_move(pacs, orthanc, study, tmp_path):
    orthanc.clear()
    remote = f"ORTHANC@127.0.0.1:{orthanc.dicom_port}"
    done = _cli("echo", remote, cwd=tmp_path)
    assert done.returncode == 0 and "success" in done.stdout, done.stderr
    files = dicom_files(real_path(study))
    done = _cli("send", remote, str(real_path(study)), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    assert orthanc.post("/tools/lookup", data=study_uid).json()
    done = _cli("find", remote, "study", f"StudyInstanceUID={study_uid}", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["StudyInstanceUID"] for a in answers] == [study_uid]
    done = _cli("move", remote, f"StudyInstanceUID={study_uid}", "--target", NODE_AET, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert pacs.index.find("Study", {"StudyInstanceUID": study_uid})


def test_c_get_of_every_sample_study_from_orthanc(pacs, orthanc, sample_data):
    """Whatever Orthanc stores (JPEG 2000, JPEG-LS, RLE, deflate...), our C-GET proposes a
    context it can send on: every instance arrives, pixel data as Orthanc holds it."""
    orthanc.clear()
    studies = upload(orthanc, dicom_files(sample_data))
    for study in studies:
        ours(pacs, f"/studies/{study}", "delete")
    for study in studies:
        study_uid = orthanc.get(f"/studies/{study}").json()["MainDicomTags"]["StudyInstanceUID"]
        instances = orthanc.get(f"/studies/{study}/instances").json()
        result = pacs.node.get("orthanc", {"StudyInstanceUID": study_uid})
        assert result.ok and result.failed == 0, (study_uid, result)
        assert result.completed == len(instances)
        for instance in instances:
            theirs = pydicom.dcmread(
                io.BytesIO(orthanc.get(f"/instances/{instance['ID']}/file").content)
            )
            mine = pydicom.dcmread(pacs.index.instance_path(instance["ID"]))
            if "PixelData" in theirs:
                assert mine.PixelData == theirs.PixelData, instance["ID"]
