"""``/tools/create-dicom`` side by side with a real Orthanc 1.10: pictures and PDFs with JSON
tags, instances joined to a parent, series from lists of pictures, and the refusals; what we
make is checked by dciodvfy and must do no worse than Orthanc's output of the same request."""

from __future__ import annotations

import base64
import io
import subprocess

import numpy as np
import pydicom
import pytest
import requests
from PIL import Image

from tests.pacs.side_by_side import beside_orthanc
from tests.peers import require_tool

pytestmark = pytest.mark.peers

RNG = np.random.default_rng(16)
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]"
       b"/Count 1>>endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 100 100]>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")  # fmt: skip


def data_uri(picture: Image.Image, form: str = "PNG") -> str:
    buffer = io.BytesIO()
    picture.save(buffer, form)
    mime = "image/png" if form == "PNG" else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode()}"


RGB = Image.fromarray(RNG.integers(0, 255, (20, 30, 3), dtype=np.uint8))
CONTENTS = {
    "gray": data_uri(Image.fromarray(RNG.integers(0, 255, (16, 12), dtype=np.uint8))),
    "rgb": data_uri(RGB),
    "rgba": data_uri(Image.fromarray(RNG.integers(0, 255, (10, 14, 4), dtype=np.uint8))),
    "gray16": data_uri(Image.fromarray(RNG.integers(0, 4000, (9, 11)).astype(np.uint16))),
    "jpeg": data_uri(RGB, "JPEG"),
    "pdf": f"data:application/pdf;base64,{base64.b64encode(PDF).decode()}",
}
TAGS = {"PatientName": "Lesson^Élève", "PatientID": "TEACH16", "StudyDescription": "Anatomy",
        "SeriesDescription": "Slides", "Modality": "OT"}  # fmt: skip


@pytest.fixture(scope="module")
def both(tmp_path_factory, orthanc):
    yield from beside_orthanc(tmp_path_factory.mktemp("create"), orthanc, [])


def create(both, body) -> dict[str, requests.Response]:
    return {name: requests.post(f"{url}/tools/create-dicom", json=body, timeout=60)
            for name, url in both.items()}  # fmt: skip


def stored(url: str, answer: requests.Response) -> pydicom.Dataset:
    data = requests.get(f"{url}/instances/{answer.json()['ID']}/file", timeout=30).content
    return pydicom.dcmread(io.BytesIO(data))


def dciodvfy_errors(ds: pydicom.Dataset, tmp_path, name: str) -> list[str]:
    path = tmp_path / f"{name}.dcm"
    ds.save_as(path)
    report = subprocess.run([require_tool("dciodvfy"), str(path)], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    text = report.stdout + report.stderr
    return [line for line in text.splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("kind", list(CONTENTS))
def test_content_becomes_an_object_as_orthanc_and_valid(both, kind, tmp_path):
    answers = create(both, {"Tags": TAGS, "Content": CONTENTS[kind]})
    assert answers["ours"].status_code == answers["orthanc"].status_code == 200
    assert answers["ours"].json().keys() == answers["orthanc"].json().keys()
    ours = stored(both["ours"], answers["ours"])
    theirs = stored(both["orthanc"], answers["orthanc"])
    for keyword in TAGS:
        assert ours.get(keyword) == theirs.get(keyword), keyword
    if kind == "pdf":
        assert ours.SOPClassUID == theirs.SOPClassUID == pydicom.uid.EncapsulatedPDFStorage
        assert ours.MIMETypeOfEncapsulatedDocument == "application/pdf"
        assert ours.EncapsulatedDocument[: len(PDF)] == theirs.EncapsulatedDocument[: len(PDF)]
        assert ours.EncapsulatedDocument.rstrip(b"\0") == PDF.rstrip(b"\0")
    else:
        # Orthanc names no SOP class for a picture; ours is a Secondary Capture.
        assert ours.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
        for keyword in ("PhotometricInterpretation", "SamplesPerPixel", "BitsAllocated",
                        "Rows", "Columns", "PixelRepresentation"):  # fmt: skip
            assert ours.get(keyword) == theirs.get(keyword), keyword
        difference = np.abs(ours.pixel_array.astype(int) - theirs.pixel_array.astype(int))
        # Both decode the JPEG with libjpeg; builds may round a few values differently.
        assert difference.max() <= (2 if kind == "jpeg" else 0)
    mine = dciodvfy_errors(ours, tmp_path, "ours")
    assert not mine, mine
    assert len(mine) <= len(dciodvfy_errors(theirs, tmp_path, "orthanc"))


def test_tags_only_character_sets_and_private_tags(both, tmp_path):
    answers = create(both, {"Tags": {"PatientID": "TAGS16", "PatientName": "Only^Tags"}})
    assert answers["ours"].status_code == answers["orthanc"].status_code == 200
    ours = stored(both["ours"], answers["ours"])
    assert ours.SOPClassUID == pydicom.uid.RawDataStorage
    assert not dciodvfy_errors(ours, tmp_path, "raw")
    # Orthanc's first form: the body is the tags.
    first_form = create(both, {"PatientName": "First^Form", "PatientID": "V1"})
    assert first_form["ours"].status_code == first_form["orthanc"].status_code == 200
    assert stored(both["ours"], first_form["ours"]).PatientName == "First^Form"
    # Latin-1 as Orthanc when it can; UTF-8 where Orthanc loses the name.
    latin = stored(both["ours"], create(both, {"Tags": {"PatientName": "Élève"}})["ours"])
    assert latin.SpecificCharacterSet == "ISO_IR 100" and latin.PatientName == "Élève"
    kanji = stored(both["ours"], create(both, {"Tags": {"PatientName": "山田^太郎"}})["ours"])
    assert kanji.SpecificCharacterSet == "ISO_IR 192" and kanji.PatientName == "山田^太郎"
    # A private tag joins its creator's block; binary values come as data URIs.
    body = {"Tags": {"0009,1001": "abc", "0009,1002": "data:application/octet-stream;base64,"
                     "AAEC"}, "PrivateCreator": "TEACHING"}  # fmt: skip
    answers = create(both, body)
    assert answers["ours"].status_code == answers["orthanc"].status_code == 200
    private = stored(both["ours"], answers["ours"])
    assert private[0x00090010].value == "TEACHING"
    assert private[0x00091001].value.rstrip(b" ") == b"abc"
    assert private[0x00091002].value.rstrip(b"\0") == b"\0\1\2"
    refused = requests.post(f"{both['ours']}/tools/create-dicom",
                            json={"Tags": {"0009,1001": "abc"}}, timeout=30)  # fmt: skip
    assert refused.status_code == 400 and "PrivateCreator" in refused.json()["Details"]


def test_parent_and_force_as_orthanc(both):
    # Chosen UIDs (with Force) give the parent the same IDs on both servers.
    uids = {
        keyword: pydicom.uid.generate_uid()
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    }
    first = create(both, {"Tags": {**TAGS, **uids}, "Force": True, "Content": CONTENTS["gray"]})
    parents = {name: answer.json() for name, answer in first.items()}
    assert parents["ours"]["ID"] == parents["orthanc"]["ID"]
    for level, key in (("series", "ParentSeries"), ("study", "ParentStudy"),
                       ("patient", "ParentPatient")):  # fmt: skip
        parent = parents["ours"][key]
        answers = create(both, {"Tags": {"ImageComments": level}, "Parent": parent,
                                "Content": CONTENTS["rgb"]})  # fmt: skip
        assert answers["ours"].status_code == answers["orthanc"].status_code == 200, level
        mine, theirs = answers["ours"].json(), answers["orthanc"].json()
        assert mine[key] == theirs[key] == parent
        for above in ("ParentPatient", "ParentStudy", "ParentSeries"):
            assert (mine[above] == parents["ours"][above]) == (
                theirs[above] == parents["orthanc"][above]), (level, above)  # fmt: skip
        ours = stored(both["ours"], answers["ours"])
        assert ours.PatientName == TAGS["PatientName"] and ours.ImageComments == level
    study = parents["ours"]["ParentStudy"]
    for body, code in (({"Tags": {"PatientName": "Other"}, "Parent": study}, 2020),
                       ({"Tags": {"StudyDescription": "Other"}, "Parent": study}, 2020),
                       ({"Tags": {"SOPInstanceUID": "1.2.3.4"}}, 2020),
                       ({"Tags": {}, "Parent": "nope"}, 2024),
                       ({"Tags": {}, "Parent": parents["ours"]["ID"]}, 2025)):  # fmt: skip
        answers = create(both, body)
        assert answers["ours"].status_code == answers["orthanc"].status_code == 400, body
        assert answers["ours"].json()["OrthancStatus"] == code
        assert answers["orthanc"].json()["OrthancStatus"] == code
    forced = create(both, {"Tags": {"PatientName": "Other"}, "Parent": study, "Force": True})
    assert forced["ours"].status_code == forced["orthanc"].status_code == 200
    assert forced["ours"].json()["ParentStudy"] == study


def test_a_list_of_contents_makes_a_series_as_orthanc(both):
    body = {"Tags": {"PatientID": "SERIES16", "SeriesDescription": "three"},
            "Content": [CONTENTS["gray"], {"Content": CONTENTS["rgb"],
                                           "Tags": {"ImageComments": "second"}},
                        CONTENTS["jpeg"]]}  # fmt: skip
    answers = create(both, body)
    assert answers["ours"].status_code == answers["orthanc"].status_code == 200
    assert answers["ours"].json().keys() == answers["orthanc"].json().keys()
    series = {name: requests.get(url + answers[name].json()["Path"], timeout=30).json()
              for name, url in both.items()}  # fmt: skip
    for name in both:
        assert answers[name].json()["Path"].startswith("/series/")
        assert len(series[name]["Instances"]) == 3
        assert series[name]["Status"] == "Complete"
        assert series[name]["ExpectedNumberOfInstances"] == 3


BAD_BODIES = [
    {"Tags": "x"},
    {"Tags": {"PatientName": 5}},
    {"Tags": {"NotATag": "x"}},
    {"Tags": {}, "Content": "hello"},
    {"Tags": {}, "Content": "data:image/png;base64,AAAA"},
    {"Tags": {}, "Content": "data:image/gif;base64,R0lGODlhAQABAAAAACw="},
    {"Tags": {}, "Content": [5]},
    {"Tags": {}, "Force": "yes"},
    {"Tags": {}, "Content": "data:application/pdf;base64,AAAA"},
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_bad_bodies_are_refused_with_a_reason(both, body):
    answer = requests.post(f"{both['ours']}/tools/create-dicom", json=body, timeout=30)
    assert answer.status_code in (400, 415), answer.text
    error = answer.json()
    assert error["HttpStatus"] == answer.status_code and error["Details"]
    assert isinstance(error["OrthancStatus"], int)
    theirs = requests.post(f"{both['orthanc']}/tools/create-dicom", json=body, timeout=30)
    if theirs.status_code == 400:  # Orthanc answers some of these 500 or stores them
        assert error["OrthancStatus"] == theirs.json()["OrthancStatus"]
