"""Malformed requests get a 4xx JSON error naming the problem, and the server keeps serving."""

from __future__ import annotations

import io
import zipfile

import requests

from tests.pacs.test_index_store import SMALL_FILE, make_instance


def _malformed_requests(instance: str, patient: str, valid_dicom: bytes, gsps: str) -> list[tuple]:
    truncated = valid_dicom[: len(valid_dicom) // 2]
    broken_zip = io.BytesIO()
    with zipfile.ZipFile(broken_zip, "w") as archive:
        archive.writestr("a.dcm", valid_dicom)
    broken_zip_bytes = broken_zip.getvalue()[:-30]
    find = "/tools/find"
    return [
        # Upload
        ("POST", "/instances", {"data": b""}),
        ("POST", "/instances", {"data": b"not dicom at all"}),
        ("POST", "/instances", {"data": b"\0" * 128 + b"DICM"}),
        ("POST", "/instances", {"data": b"\0" * 128 + b"DICM" + b"\xff" * 64}),
        ("POST", "/instances", {"data": truncated[:200]}),
        ("POST", "/instances", {"data": broken_zip_bytes}),
        ("POST", "/instances", {"data": b"PK\x03\x04garbage"}),
        # /tools/find bodies
        ("POST", find, {"data": b""}),
        ("POST", find, {"data": b"{not json"}),
        ("POST", find, {"data": b"\xff\xfe\x00"}),
        ("POST", find, {"json": []}),
        ("POST", find, {"json": "Study"}),
        ("POST", find, {"json": {}}),
        ("POST", find, {"json": {"Level": "Study"}}),
        ("POST", find, {"json": {"Level": "Galaxy", "Query": {}}}),
        ("POST", find, {"json": {"Level": 3, "Query": {}}}),
        ("POST", find, {"json": {"Level": "Study", "Query": []}}),
        ("POST", find, {"json": {"Level": "Study", "Query": {"PatientName": 5}}}),
        ("POST", find, {"json": {"Level": "Study", "Query": {"NoSuchTag": "x"}}}),
        ("POST", find, {"json": {"Level": "Study", "Query": {"gggg,eeee": "x"}}}),
        ("POST", find, {"json": {"Level": "Patient", "Query": {"Modality": "CT"}}}),
        ("POST", find, {"json": {"Level": "Study", "Query": {"StudyDate": "abc-def"}}}),
        ("POST", find, {"json": {"Level": "Study", "Query": {"StudyDate": "-"}}}),
        ("POST", find, {"json": {"Level": "Study", "Query": {}, "Limit": -1}}),
        ("POST", find, {"json": {"Level": "Study", "Query": {}, "Limit": "ten"}}),
        ("POST", find, {"json": {"Level": "Study", "Query": {}, "Since": 1.5}}),
        ("POST", find, {"json": {"Level": "Study", "Query": {}, "Expand": "yes"}}),
        ("POST", find, {"json": {"Level": "Study", "Query": {}, "CaseSensitive": 1}}),
        ("POST", "/tools/lookup", {"data": b""}),
        # Unknown resources
        ("GET", "/patients/00000000-00000000-00000000-00000000-00000000", {}),
        ("GET", "/studies/../../etc/passwd", {}),
        ("GET", f"/studies/{instance}", {}),  # an instance ID is not a study
        ("GET", "/series/%00", {}),
        ("GET", "/instances/" + "a" * 5000, {}),
        ("DELETE", "/patients/unknown", {}),
        ("GET", "/instances/unknown/file", {}),
        ("GET", "/instances/unknown/simplified-tags", {}),
        ("GET", "/studies/unknown/archive", {}),
        ("GET", "/studies/unknown/media", {}),
        ("POST", "/studies/unknown/anonymize", {"json": {}}),
        # Bad arguments on real resources
        ("GET", "/patients?limit=abc", {}),
        ("GET", "/patients?since=-4", {}),
        ("GET", "/patients?limit=99999999999999999999999", {}),
        ("POST", find, {"json": {"Level": "Study", "Query": {}, "Limit": 2**70}}),
        ("GET", "/changes?since=x", {}),
        ("GET", f"/instances/{instance}/content/zzzz-zzzz", {}),
        ("GET", f"/instances/{instance}/content/0010-0010/0", {}),
        ("GET", f"/instances/{instance}/content/9999-9999", {}),
        ("GET", f"/instances/{instance}/frames/7/preview", {}),
        ("GET", f"/instances/{instance}/frames/abc/preview", {}),
        ("GET", f"/instances/{instance}/preview?size=0", {}),
        ("GET", f"/instances/{instance}/metadata/NoSuchMetadata", {}),
        ("PUT", f"/patients/{patient}/protected", {"data": b"2"}),
        ("PUT", f"/patients/{patient}/protected", {"data": b""}),
        ("POST", f"/patients/{patient}/anonymize", {"data": b"{bad"}),
        ("POST", f"/patients/{patient}/anonymize", {"json": {"Replace": {"NoTag": "x"}}}),
        ("POST", f"/patients/{patient}/anonymize", {"json": {"Keep": "PatientName"}}),
        ("PATCH", "/patients", {}),
        ("GET", "/no/such/route", {}),
        ("GET", f"/instances/{gsps}/preview", {}),
    ]


def test_malformed_requests_get_json_4xx_and_serving_continues(fresh_server, sample_data):
    base = fresh_server.url
    valid = make_instance(sample_data / SMALL_FILE, patient="KEEP")
    stored = requests.post(f"{base}/instances", data=valid, timeout=30).json()
    gsps_file = next((sample_data / "gsps_agfa").iterdir())  # no pixel data to preview
    gsps = requests.post(f"{base}/instances", data=gsps_file.read_bytes(), timeout=30).json()
    before = fresh_server.index.statistics()
    cases = _malformed_requests(stored["ID"], stored["ParentPatient"], valid, gsps["ID"])
    assert len(cases) >= 50
    for method, path, kwargs in cases:
        response = requests.request(method, base + path, timeout=30, **kwargs)
        assert 400 <= response.status_code < 500, (
            method,
            path,
            response.status_code,
            response.text[:300],
        )
        body = response.json()
        assert body["HttpStatus"] == response.status_code
        assert body["Details"], (method, path)
    # The server still answers, accepts new data and lost nothing.
    assert requests.get(f"{base}/system", timeout=30).status_code == 200
    assert fresh_server.index.statistics() == before
    assert requests.get(f"{base}/instances/{stored['ID']}/file", timeout=30).content == valid
    again = make_instance(sample_data / SMALL_FILE, patient="AFTER")
    assert requests.post(f"{base}/instances", data=again, timeout=30).json()["Status"] == "Success"
