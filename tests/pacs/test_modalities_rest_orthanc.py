"""``/modalities``, ``/queries`` and ``/tools/dicom-echo`` side by side with a real Orthanc.

Both servers talk to the same peer (the session's Orthanc, holding the sample CT): the same
request gives the same status and the same JSON, apart from each server's own AE title.
"""

from __future__ import annotations

import json
import warnings

import pytest
import requests

from tests.data import dicom_files
from tests.peers import free_port, start_orthanc
from workbench.pacs import serve

OURS_AET, THEIRS_AET = "OURS", "THEIRS"
CT = "series_ct_philips_ingenuity_5mm"


@pytest.fixture(scope="module")
def servers(tmp_path_factory, orthanc, sample_data):
    """``(ours, theirs, peer, files)``: our PACS and a second Orthanc, each declaring the
    session Orthanc as modality ``peer``; both hold three CT slices to send."""
    files = dicom_files(sample_data / CT)[:3]
    orthanc.clear()
    for path in files:
        orthanc.upload(path)
    peer = {"peer": [orthanc.aet, "127.0.0.1", orthanc.dicom_port]}
    ours = serve(
        StorageDirectory=str(tmp_path_factory.mktemp("ours")),
        HttpPort=0,
        DicomPort=free_port(),
        DicomAet=OURS_AET,
        DicomModalities=peer,
    )
    theirs = start_orthanc(tmp_path_factory.mktemp("theirs"), aet=THEIRS_AET, modalities=peer)
    for name, aet, port in (
        ("ours", OURS_AET, ours.node.port),
        ("theirs", THEIRS_AET, theirs.dicom_port),
    ):
        orthanc.put(f"/modalities/{name}", json={"AET": aet, "Host": "127.0.0.1", "Port": port})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.index.import_path(*files, progress=False)
    for path in files:
        theirs.upload(path)
    yield ours, theirs, orthanc, files
    for name in ("ours", "theirs"):
        orthanc.delete(f"/modalities/{name}")
    theirs.stop()
    ours.stop()


def _both(servers, method: str, path: str, **kwargs) -> tuple[requests.Response, ...]:
    ours, theirs, _, _ = servers
    return tuple(
        requests.request(method, url + path, timeout=60, **kwargs) for url in (ours.url, theirs.url)
    )


def _without_own_aet(body):
    if isinstance(body, dict):
        return {key: value for key, value in body.items() if key != "LocalAet"}
    return body


def _without_file_meta(body):
    """Orthanc 1.10 adds Media Storage SOP Instance UID (0002,0003) to instance-level answers:
    file meta information, which a C-FIND identifier does not carry (PS3.7 9.1.2.1)."""
    if isinstance(body, list):
        return [_without_file_meta(item) for item in body]
    if isinstance(body, dict):
        return {
            key: value
            for key, value in body.items()
            if not key.startswith("0002,") and key != "MediaStorageSOPInstanceUID"
        }
    return body


@pytest.mark.parametrize(
    ("level", "keys"),
    [
        ("Study", {"PatientName": "*", "StudyDescription": ""}),
        ("Series", {"Modality": "CT", "SeriesDescription": "", "SeriesNumber": ""}),
        ("Instance", {"InstanceNumber": "1"}),
    ],
)
def test_query_answers_are_orthancs(servers, level, keys):
    created = _both(servers, "POST", "/modalities/peer/query", json={"Level": level, "Query": keys})
    assert [response.status_code for response in created] == [200, 200]
    ours_id, theirs_id = (response.json()["ID"] for response in created)
    for suffix in (
        "",
        "/answers/0",
        "/query",
        "/query?simplify",
        "/level",
        "/modality",
        "/answers",
        "/answers?expand",
        "/answers?expand&simplify",
        "/answers/0/content",
        "/answers/0/content?simplify",
        "/answers/0/content?short",
    ):
        ours_url, theirs_url = (f"/queries/{ours_id}{suffix}", f"/queries/{theirs_id}{suffix}")
        mine = requests.get(servers[0].url + ours_url, timeout=30)
        theirs = requests.get(servers[1].url + theirs_url, timeout=30)
        assert mine.status_code == theirs.status_code == 200, suffix
        assert (
            mine.headers["content-type"].split(";")[0]
            == theirs.headers["content-type"].split(";")[0]
        ), suffix
        if suffix in ("/level", "/modality"):  # plain text in Orthanc
            assert mine.text == theirs.text, suffix
        else:
            assert mine.json() == _without_file_meta(theirs.json()), suffix


@pytest.mark.parametrize("form", ["text", "list", "object"])
def test_store_bodies_are_taken_as_orthanc_takes_them(servers, form):
    ours, _, peer, _ = servers
    (instance,) = requests.get(ours.url + "/instances", timeout=30).json()[:1]
    body = {
        "text": {"data": instance},
        "list": {"json": [instance]},
        "object": {"json": {"Resources": [instance], "Synchronous": True}},
    }[form]
    peer.delete(f"/instances/{instance}")
    answers = _both(servers, "POST", "/modalities/peer/store", **body)
    assert [answer.status_code for answer in answers] == [200, 200]
    mine, theirs_answer = (_without_own_aet(answer.json()) for answer in answers)
    assert mine == theirs_answer
    assert mine["InstancesCount"] == 1 and mine["FailedInstancesCount"] == 0
    assert peer.get(f"/instances/{instance}").status_code == 200


def test_store_straight_sends_the_body_without_keeping_it(servers, tmp_path):
    ours, _, peer, files = servers
    source = files[-1]
    peer.clear()
    before = ours.index.find("Instance", {})
    answers = _both(servers, "POST", "/modalities/peer/store-straight", data=source.read_bytes())
    assert [answer.status_code for answer in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
    assert len(peer.get("/instances").json()) == 1
    assert ours.index.find("Instance", {}) == before
    refused = requests.post(
        ours.url + "/modalities/peer/store-straight", data=b"not DICOM", timeout=30
    )
    assert refused.status_code == 400 and "not a DICOM file" in refused.json()["Details"]


def test_dicom_echo_to_a_node_given_by_address(servers):
    _, _, peer, _ = servers
    good = {"AET": peer.aet, "Host": "127.0.0.1", "Port": peer.dicom_port}
    assert [
        answer.status_code for answer in _both(servers, "POST", "/tools/dicom-echo", json=good)
    ] == [200, 200]
    closed = {"AET": "NOBODY", "Host": "127.0.0.1", "Port": free_port()}
    mine, theirs = _both(servers, "POST", "/tools/dicom-echo", json=closed)
    assert mine.status_code == theirs.status_code == 500
    assert "NOBODY" in mine.json()["Details"]


def test_drilling_down_from_an_answer(servers):
    """``query-series`` / ``query-instances`` of a study answer, as in Orthanc Explorer."""
    created = _both(
        servers,
        "POST",
        "/modalities/peer/query",
        json={"Level": "Study", "Query": {"PatientName": "*"}},
    )
    ids = [response.json()["ID"] for response in created]
    for children in ("series", "instances"):
        below = [
            requests.post(
                f"{server.url}/queries/{query}/answers/0/query-{children}",
                json={"Query": {"Modality": ""}} if children == "series" else {},
                timeout=60,
            )
            for server, query in zip(servers[:2], ids, strict=True)
        ]
        assert [response.status_code for response in below] == [200, 200]
        contents = [
            requests.get(
                f"{server.url}/queries/{response.json()['ID']}/answers?expand&simplify", timeout=30
            ).json()
            for server, response in zip(servers[:2], below, strict=True)
        ]
        mine, theirs = (
            sorted(json.dumps(_without_file_meta(item), sort_keys=True) for item in items)
            for items in contents
        )
        assert mine == theirs and mine, children
