"""pyorthanc (Orthanc's most used Python client) driving workbench and a real Orthanc 1.10 the
same way: create-dicom, attachments, series status, split and merge (now and as jobs), the
change log. Every call must succeed on both (pyorthanc raises on an error answer) and answer
alike."""

from __future__ import annotations

import pyorthanc
import pytest

from tests.pacs.side_by_side import beside_orthanc
from tests.pacs.test_rest_create_dicom_orthanc import CONTENTS

pytestmark = pytest.mark.peers


@pytest.fixture
def clients(tmp_path, orthanc):
    for urls in beside_orthanc(tmp_path, orthanc, []):
        yield {name: pyorthanc.Orthanc(url) for name, url in urls.items()}


def session(client: pyorthanc.Orthanc) -> dict:
    """A teacher's session: a picture and a series of three, then reorganised."""
    seen: dict = {}
    lesson = client.post_tools_create_dicom(json={
        "Tags": {"PatientID": "PYO16", "PatientName": "Py^Orthanc", "StudyDescription": "Lesson"},
        "Content": CONTENTS["gray"]})  # fmt: skip
    instance, study = lesson["ID"], lesson["ParentStudy"]
    seen["attachments"] = client.get_instances_id_attachments(instance)
    # Each server wrote its own file: sizes and MD5s agree with themselves.
    md5 = client.get_instances_id_attachments_name_md5(instance, "dicom")
    size = int(client.get_instances_id_attachments_name_size(instance, "dicom"))
    info = client.get_instances_id_attachments_name_info(instance, "dicom")
    seen["info"] = (info["CompressedMD5"] == info["UncompressedMD5"] == md5,
                    info["CompressedSize"] == info["UncompressedSize"] == size,
                    sorted(info))  # fmt: skip
    client.post_instances_id_attachments_name_verify_md5(instance, "dicom")
    slides = client.post_tools_create_dicom(json={
        "Tags": {"SeriesDescription": "slides"}, "Parent": study,
        "Content": [CONTENTS["rgb"], CONTENTS["jpeg"], CONTENTS["gray16"]]})  # fmt: skip
    series = pyorthanc.Series(slides["ID"], client)
    seen["images"] = (series.images_in_acquisition, len(series.instances))
    seen["status"] = client.get_series_id(slides["ID"])["Status"]
    split = client.post_studies_id_split(study, json={"Series": [slides["ID"]],
                                                      "KeepSource": True})  # fmt: skip
    seen["split"] = split["InstancesCount"]
    job = client.post_studies_id_merge(study, json={"Resources": [split["TargetStudy"]],
                                                    "Asynchronous": True})  # fmt: skip
    merged = pyorthanc.Job(job["ID"], client)
    merged.wait_until_completion(time_interval=0.1)
    seen["merge"] = (merged.state.value, merged.type, merged.content["InstancesCount"])
    seen["series after merge"] = len(pyorthanc.Study(study, client).series)
    changes = client.get_changes(params={"limit": 1000})
    seen["change types"] = sorted({c["ChangeType"] for c in changes["Changes"]
                                   if not c["ChangeType"].startswith("Stable")})  # fmt: skip
    client.delete_changes()
    seen["after clearing"] = client.get_changes()["Changes"]
    return seen


def test_a_pyorthanc_session_as_on_orthanc(clients):
    seen = {name: session(client) for name, client in clients.items()}
    assert seen["ours"] == seen["orthanc"]
    assert seen["ours"]["images"] == (3, 3) and seen["ours"]["status"] == "Complete"
    assert seen["ours"]["merge"] == ("Success", "MergeStudy", 3)
    assert "CompletedSeries" in seen["ours"]["change types"]
