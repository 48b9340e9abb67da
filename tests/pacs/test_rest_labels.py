"""Labels (Orthanc 1.12's API, which the installed Orthanc 1.10 lacks): set, listed, used by
``/tools/find``, gone with their resource, kept across a reopening; driven by pyorthanc."""

from __future__ import annotations

import pyorthanc
import pytest
import requests

from tests.pacs.test_index_store import SMALL_FILE, make_instance
from workbench.pacs import Index, serve


@pytest.fixture
def pacs(tmp_path):
    server = serve(StorageDirectory=str(tmp_path / "store"), HttpPort=0, DicomPort=0)
    yield server
    server.stop()


def upload(url: str, data: bytes) -> dict:
    answer = requests.post(url + "/instances", data=data, timeout=30)
    answer.raise_for_status()
    return answer.json()


def test_labels_through_pyorthanc(pacs, sample_data):
    template = sample_data / SMALL_FILE
    first, second, third = (upload(pacs.url, make_instance(template, patient=f"P{n}"))
                            for n in range(3))  # fmt: skip
    client = pyorthanc.Orthanc(pacs.url)
    client.put_studies_id_labels_label(first["ParentStudy"], "teaching")
    client.put_studies_id_labels_label(first["ParentStudy"], "ct-2024")
    client.put_studies_id_labels_label(second["ParentStudy"], "teaching")
    client.put_series_id_labels_label(third["ParentSeries"], "teaching")
    client.put_studies_id_labels_label(first["ParentStudy"], "teaching")  # twice: still one
    assert client.get_studies_id_labels(first["ParentStudy"]) == ["ct-2024", "teaching"]
    assert client.get_tools_labels() == ["ct-2024", "teaching"]
    assert client.get_studies_id(first["ParentStudy"])["Labels"] == ["ct-2024", "teaching"]
    expanded = client.get_series(params={"expand": True})
    assert {s["ID"]: s["Labels"] for s in expanded}[third["ParentSeries"]] == ["teaching"]

    def found(labels, constraint=None):
        studies = pyorthanc.find_studies(client, labels=labels,
                                         labels_constraint=constraint or "All")  # fmt: skip
        return {study.id_ for study in studies}

    assert found(["teaching"]) == {first["ParentStudy"], second["ParentStudy"]}
    assert found(["teaching", "ct-2024"]) == {first["ParentStudy"]}
    assert found(["ct-2024", "teaching"], "Any") == {first["ParentStudy"], second["ParentStudy"]}
    assert found(["teaching"], "None") == {third["ParentStudy"]}
    count = requests.post(pacs.url + "/tools/count-resources", timeout=30, json={
        "Level": "Study", "Query": {}, "Labels": ["teaching"]}).json()  # fmt: skip
    assert count == {"Count": 2}

    client.delete_studies_id_labels_label(first["ParentStudy"], "ct-2024")
    assert client.get_studies_id_labels(first["ParentStudy"]) == ["teaching"]
    has = requests.get(f"{pacs.url}/studies/{first['ParentStudy']}/labels/ct-2024", timeout=30)
    assert has.status_code == 404
    # Deleting a resource forgets its labels, and those of what was under it.
    client.delete_patients_id(third["ParentPatient"])
    client.delete_studies_id(second["ParentStudy"])
    assert client.get_tools_labels() == ["teaching"]
    assert found(["teaching"]) == {first["ParentStudy"]}


def test_bad_labels_and_constraints_are_400(pacs, sample_data):
    study = upload(pacs.url, make_instance(sample_data / SMALL_FILE))["ParentStudy"]
    bad = requests.put(f"{pacs.url}/studies/{study}/labels/no%20spaces", timeout=30)
    assert bad.status_code == 400 and "no spaces" in bad.json()["Details"]
    missing = requests.put(f"{pacs.url}/studies/{'0' * 8}/labels/ok", timeout=30)
    assert missing.status_code == 404
    for body, field in [
        ({"Labels": "teaching"}, "Labels"),
        ({"Labels": ["a"], "LabelsConstraint": "Most"}, "LabelsConstraint"),
    ]:
        answer = requests.post(pacs.url + "/tools/find", timeout=30,
                               json={"Level": "Study", "Query": {}, **body})  # fmt: skip
        assert answer.status_code == 400 and field in answer.json()["Details"]


def test_labels_survive_reopening(tmp_path, sample_data, database):
    config = database.config(tmp_path / "store")
    index = Index(config)
    stored = index.ingest_bytes(make_instance(sample_data / SMALL_FILE))
    index.add_label("Series", stored.series_id, "kept")
    index.close()
    reopened = Index(config)
    try:
        assert reopened.labels("Series", stored.series_id) == ["kept"]
        page = reopened.with_labels("Series", [stored.series_id], ["kept"])
        assert page == [stored.series_id]
    finally:
        reopened.close()
