"""``/tools/bulk-content``, ``/tools/bulk-delete``, ``/tools/create-archive``,
``/tools/create-media(-extended)``, ``/tools/count-resources`` and
``/tools/find``'s ``RequestedTags``, driven by pyorthanc against workbench and, for what
Orthanc 1.10 has (bulk content and delete, archives, media), against a real Orthanc with
the same files.

``count-resources`` (1.12.5) and ``RequestedTags`` (1.11) are newer than the Orthanc
installed: they are checked against ``/tools/find`` and the files themselves.
"""

from __future__ import annotations

import io
import time
import zipfile

import httpx
import pydicom
import pytest
from pyorthanc import Orthanc

from tests.data import dicom_files, real_path

FILES = [
    *dicom_files(real_path("series_ct_philips_ingenuity_5mm"))[:4],
    real_path("nema_mr1_small_transcodes/MR_small.dcm"),
    real_path("cr_agfa_mono1_tiny/6154"),
    *dicom_files(real_path("enhanced_mr_siemens_xa10"))[:2],
]


@pytest.fixture
def clients(orthanc, fresh_server):
    """pyorthanc clients of workbench and of Orthanc, both holding :data:`FILES`."""
    orthanc.clear()
    pair = Orthanc(fresh_server.url), Orthanc(orthanc.url)
    for client in pair:
        for path in FILES:
            client.post_instances(path.read_bytes())
    return pair


def _comparable(resource: dict) -> dict:
    """A resource's JSON without what differs between any two servers (reception times,
    file UUIDs; Labels, which Orthanc 1.10 lacks), metadata as the sorted names."""
    kept = {k: v for k, v in resource.items()
            if k not in ("LastUpdate", "FileUuid", "Labels")}  # fmt: skip
    if "Metadata" in kept:
        kept["Metadata"] = sorted(kept["Metadata"])
    return kept


def test_bulk_content_equals_orthanc(clients):
    ours = clients[0]
    patients, instances = ours.get_patients(), ours.get_instances()
    mixed = [patients[0], instances[-1], "no-such-resource", *ours.get_series()[:1]]
    bodies = [
        {"Resources": mixed},
        {"Resources": mixed, "Metadata": False},
        *(
            {"Resources": mixed, "Level": level}
            for level in ("Patient", "Study", "Series", "Instance")
        ),
    ]
    for body in bodies:
        answers = [client.post_tools_bulk_content(json=body) for client in clients]
        assert [a["ID"] for a in answers[0]] == [a["ID"] for a in answers[1]], body
        for mine, orthancs in zip(*answers, strict=True):
            mine, orthancs = _comparable(mine), _comparable(orthancs)
            if "Metadata" in mine:
                # The metadata we record is a subset of Orthanc's (no RemoteIP, no
                # RemoteAET of a series...); LastUpdate at every level above instances.
                names = set(mine.pop("Metadata"))
                assert names <= set(orthancs.pop("Metadata"))
                assert mine["Type"] == "Instance" or "LastUpdate" in names
            assert mine == orthancs, body
    for client in clients:
        with pytest.raises(httpx.HTTPError, match="HTTP code: 400"):
            client.post_tools_bulk_content(json={"Resources": "not a list"})


def test_bulk_delete_equals_orthanc(clients):
    ours = clients[0]
    series, instances = ours.get_series(), ours.get_instances()
    doomed = [series[0], instances[-1], "no-such-resource", series[0]]
    for client in clients:
        assert client.post_tools_bulk_delete(json={"Resources": doomed}) in ("", b"", None)
        with pytest.raises(httpx.HTTPError, match="HTTP code: 400"):
            client.post_tools_bulk_delete(json={"Resources": [1]})
    for level in ("patients", "studies", "series", "instances"):
        listed = [sorted(getattr(client, f"get_{level}")()) for client in clients]
        assert listed[0] == listed[1], level
    assert series[0] not in ours.get_series()


def test_count_resources_agrees_with_find(clients):
    ours, _ = clients
    queries = [
        ("Study", {}),
        ("Series", {"Modality": "MR"}),
        ("Instance", {"PatientName": "*"}),
        ("Patient", {"PatientID": "none"}),
    ]
    for level, query in queries:
        body = {"Level": level, "Query": query}
        found = ours.post_tools_find(json=body)
        assert ours.post_tools_count_resources(json=body) == {"Count": len(found)}
    assert ours.post_tools_count_resources(json={"Level": "Series", "Query": {}})["Count"] == 4


def test_requested_tags_come_from_the_index_or_the_files(clients):
    ours, _ = clients
    requested = ["StudyDate", "Manufacturer", "0018,0050", "PatientAge"]
    answers = ours.post_tools_find(json={
        "Level": "Series", "Query": {}, "Expand": True, "RequestedTags": requested})  # fmt: skip
    assert len(answers) == 4
    by_series = {str(pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID): p
                 for p in FILES}  # fmt: skip
    for answer in answers:
        ds = pydicom.dcmread(by_series[answer["MainDicomTags"]["SeriesInstanceUID"]],
                             stop_before_pixels=True)  # fmt: skip
        expected = {}
        for keyword in ("StudyDate", "Manufacturer", "SliceThickness", "PatientAge"):
            if keyword in ds:
                expected[keyword] = str(ds[keyword].value).strip()
        tags = answer["RequestedTags"]
        assert {k: str(v).strip() for k, v in tags.items()} == expected
    # Without Expand, IDs only, as Orthanc.
    ids = ours.post_tools_find(json={"Level": "Series", "Query": {}, "RequestedTags": requested})
    assert sorted(ids) == sorted(a["ID"] for a in answers)


@pytest.mark.parametrize(("level", "query"), [
    ("Instance", {"SliceThickness": "5"}),
    ("Instance", {"0018,0050": "5", "PatientName": "*"}),
    ("Series", {"SliceThickness": "5"}),
    ("Series", {"ImageType": "*ORIGINAL*", "Modality": "MR"}),
    ("Patient", {"Rows": "512"}),
    ("Study", {"SliceThickness": "5", "PatientSex": "m"}),
    ("Instance", {"Rows": "64", "InstanceNumber": "1"}),
])  # fmt: skip
def test_find_on_tags_the_index_does_not_keep_reads_the_files(clients, level, query):
    """As Orthanc (StorageAccessOnFind): the tags are read from one file under each
    resource the indexed tags let through; case-insensitive unless asked."""
    ours, theirs = clients
    for case in (False, True):
        body = {"Level": level, "Query": query, "CaseSensitive": case}
        expected = sorted(theirs.post_tools_find(json=body))
        assert sorted(ours.post_tools_find(json=body)) == expected, (body, expected)
        count = ours.post_tools_count_resources(json=body)["Count"]
        assert count == len(expected)
    if "PatientSex" not in query:
        assert expected, "the query should find something on these files"
    paged = ours.post_tools_find(json={"Level": level, "Query": query, "Limit": 1, "Since": 1})
    assert len(paged) == max(0, min(1, len(expected) - 1))


def test_find_keeps_refusing_tags_kept_below_the_level(fresh_server):
    body = {"Level": "Study", "Query": {"Modality": "MR", "KVP": "120"}}
    answer = httpx.post(f"{fresh_server.url}/tools/find", json=body, timeout=30)
    assert answer.status_code == 400 and "Modality cannot be searched" in answer.text


@pytest.mark.parametrize("body", [
    {"Level": "Study", "Query": {}, "RequestedTags": ["NoSuchKeyword"]},
    {"Level": "Study", "Query": {}, "RequestedTags": "StudyDate"},
    {"Level": "Study", "Query": {}, "Labels": ["not a label"]},
    {"Level": "Study", "Query": {}, "Labels": ["teaching"], "LabelsConstraint": "Most"},
])  # fmt: skip
def test_find_refuses_what_it_cannot_honour(fresh_server, body):
    client = Orthanc(fresh_server.url)
    for call in (client.post_tools_find, client.post_tools_count_resources):
        # A 400 whose Details name the field.
        with pytest.raises(httpx.HTTPError, match=r"HTTP code: 400.*(RequestedTags|Labels)"):
            call(json=body)


@pytest.mark.parametrize("level", [{}, [], 3, None])
def test_a_level_that_is_not_text_is_a_400(fresh_server, level):
    for route in ("/tools/bulk-content", "/tools/find"):
        body = {"Resources": [], "Level": level, "Query": {}}
        answer = httpx.post(fresh_server.url + route, json=body, timeout=30)
        assert answer.status_code == 400, (route, answer.text)
        assert "Level" in answer.text or "level" in answer.json()["Details"]


def _zip_uids(data: bytes) -> list[str]:
    """SOPInstanceUIDs of the DICOM files of a ZIP (its DICOMDIR left out), sorted."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        datasets = [pydicom.dcmread(io.BytesIO(archive.read(name)), stop_before_pixels=True)
                    for name in archive.namelist()]  # fmt: skip
    return sorted(str(ds.SOPInstanceUID) for ds in datasets if "SOPInstanceUID" in ds)


def test_create_archive_and_media_hold_what_orthancs_hold(clients):
    ours = clients[0]
    study, series = ours.get_studies()[0], ours.get_series()[-1]
    instance = ours.get_instances()[0]
    bodies = [[study, series], {"Resources": [series, instance, series]}, {"Resources": []}]
    for route in ("create_archive", "create_media", "create_media_extended"):
        for body in bodies:
            answers = [getattr(client, f"post_tools_{route}")(json=body) for client in clients]
            mine, theirs = (_zip_uids(answer) for answer in answers)
            if route == "create_archive":
                assert mine == theirs, body
            else:  # media leave out what pydicom's DICOMDIR cannot describe (enhanced MR)
                assert set(mine) <= set(theirs) and bool(mine) == bool(theirs), (route, body)
        for client in clients:
            for bad, status in [({"Resources": "x"}, 400), ([study, "no-such-id"], 404)]:
                with pytest.raises(httpx.HTTPError, match=f"HTTP code: {status}"):
                    getattr(client, f"post_tools_{route}")(json=bad)
    # The DICOMDIR of the media lists every instance.
    media = ours.post_tools_create_media(json=[study])
    with zipfile.ZipFile(io.BytesIO(media)) as archive:
        dicomdir = pydicom.dcmread(io.BytesIO(archive.read("DICOMDIR")))
    records = [r for r in dicomdir.DirectoryRecordSequence if r.DirectoryRecordType == "IMAGE"]
    assert len(records) == len(_zip_uids(media)) > 0


def test_create_archive_as_a_job(clients):
    ours = clients[0]
    job = ours.post_tools_create_archive(json={"Resources": ours.get_series(),
                                               "Asynchronous": True})  # fmt: skip
    for _ in range(200):
        state = ours.get_jobs_id(job["ID"])
        if state["State"] in ("Success", "Failure"):
            break
        time.sleep(0.05)
    assert state["State"] == "Success" and state["Type"] == "Archive"
    assert state["Content"]["InstancesCount"] == len(FILES)
    assert _zip_uids(ours.get_jobs_id_key(job["ID"], "archive")) == _zip_uids(
        ours.post_tools_create_archive(json=ours.get_series())
    )
