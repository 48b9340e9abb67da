"""Nobody in who should not be: loopback by default, authentication on every route when
remote, constant-time password checks, C-MOVE only to declared destinations, called-AE
checks, hostile tag values kept out of paths and SQL, and de-identification tag by tag."""

from __future__ import annotations

import io
import re
import string
import zipfile
from pathlib import Path

import psutil
import pydicom
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from tests.reliability.support import (
    CLIENT_AET,
    NODE_AET,
    UUID_NAME,
    associate,
    client_ae,
    make_instance,
    start_server,
    store_status,
    template,
    to_bytes,
)
from workbench.pacs.config import Config

USER, PASSWORD = "radiologist", "correct horse battery staple"
MOVE_DESTINATION_UNKNOWN = 0xA801


# ----------------------------------------------------------------------------- binding
def test_default_configuration_binds_loopback_only():
    config = Config()
    assert config.http_host == "127.0.0.1"
    assert not config.RemoteAccessAllowed


@pytest.mark.slow  # starts its own server process
def test_running_server_listens_on_loopback_only(tmp_path):
    server = start_server(tmp_path / "default")
    try:
        listening = [
            c
            for c in psutil.Process(server.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        ports = {c.laddr.port: c.laddr.ip for c in listening}
        assert ports.get(int(server.config["HttpPort"])) == "127.0.0.1"
        assert ports.get(server.dicom_port) == "127.0.0.1"
        assert set(ports.values()) == {"127.0.0.1"}, ports
    finally:
        server.stop()


@pytest.mark.slow  # starts its own server process
def test_remote_access_without_users_refuses_to_start(tmp_path):
    from tests.reliability.support import ServerProcess, server_config

    server = ServerProcess(tmp_path, server_config(tmp_path / "storage", RemoteAccessAllowed=True))
    with pytest.raises(RuntimeError, match="RegisteredUsers"):
        server.start(timeout=30)


# ------------------------------------------------------------------------- remote + auth
@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    """A server with RemoteAccessAllowed, one registered user and a few instances."""
    server = start_server(
        tmp_path_factory.mktemp("remote"), auth=(USER, PASSWORD), RemoteAccessAllowed=True
    )
    base = template()
    study, series = generate_uid(), generate_uid()
    for number in range(2):
        ds = make_instance(base, patient="AUTH-1", study=study, series=series, number=number + 1)
        assert server.post("/instances", data=to_bytes(ds)).status_code == 200
    yield server
    server.stop()


def _routes(remote) -> list[tuple[str, str]]:
    """Every (method, path) the app serves: the OpenAPI operations and the docs pages."""
    import tempfile

    from workbench.pacs import Index
    from workbench.pacs.rest.app import create_app

    schema = remote.get("/openapi.json").json()
    routes = [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    ]
    with tempfile.TemporaryDirectory() as folder:
        index = Index(Config(StorageDirectory=folder))
        app = create_app(index, node=object())
        for route in app.routes:
            if hasattr(route, "path") and hasattr(route, "methods"):
                routes += [(m, route.path) for m in route.methods if m != "HEAD"]
        index.close()
    return sorted(set(routes))


def _concrete(remote, path: str) -> str:
    ids = {
        "patients": remote.get("/patients").json()[0],
        "studies": remote.get("/studies").json()[0],
        "series": remote.get("/series").json()[0],
        "instances": remote.get("/instances").json()[0],
    }
    level = path.strip("/").split("/")[0]
    values = {
        "instance_id": ids["instances"],
        "resource_id": ids.get(level, "x"),
        "frame": "0",
        "path": "0010-0010",
        "name": "ReceptionDate",
        "index": "0",
        "query_id": "unknown-query",
        "name_": "client",
    }
    if level == "modalities":
        values["name"] = "client"
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "x"), path)


@pytest.mark.slow  # every route, each with six wrong credentials
def test_every_route_requires_authentication(remote):
    routes = _routes(remote)
    assert len(routes) > 60  # the enumeration really found the API
    paths = {path for _, path in routes}
    for required in (
        "/instances/{instance_id}/file",
        "/patients/{resource_id}/archive",
        "/studies/{resource_id}/media",
        "/instances/{instance_id}/preview",
        "/openapi.json",
        "/docs",
        "/redoc",
    ):
        assert required in paths, required
    before = remote.get("/statistics").json()
    wrong = [
        None,
        (USER, "wrong"),
        ("intruder", PASSWORD),
        (USER, PASSWORD + " "),
        (USER.upper(), PASSWORD),
        (USER, ""),
    ]
    problems = []
    for method, path in routes:
        url = remote.url + _concrete(remote, path)
        for auth in wrong:
            answer = requests.request(method, url, auth=auth, timeout=30, data=b"1")
            if answer.status_code != 401:
                problems.append(f"{method} {path} with {auth}: {answer.status_code}")
        if method == "GET":
            answer = requests.get(url, auth=(USER, PASSWORD), timeout=60)
            if answer.status_code == 401:
                problems.append(f"GET {path} refuses the right password")
    assert not problems, "\n".join(problems[:30])
    # Refused writes did nothing.
    assert remote.get("/statistics").json() == before


def test_malformed_authorization_headers_are_refused(remote):
    for header in (
        "Basic",
        "Basic !!!!",
        "Basic " + "A" * 10000,
        "Bearer abc",
        "Basic cmFkaW9sb2dpc3Q=",
        "basic\x00",
        "Digest username=x",
    ):
        answer = requests.get(
            remote.url + "/patients", headers={"Authorization": header}, timeout=30
        )
        # 400: the HTTP layer itself refuses a header with a NUL before any route runs.
        assert answer.status_code in (401, 400), header
        assert "PatientID" not in answer.text
    assert remote.get("/system").status_code == 200


class _Secret(str):
    """A registered name or password that fails the test if compared with ``==``/``!=``."""

    def __eq__(self, other):
        raise AssertionError(f"a credential was compared with == (against {other!r})")

    def __ne__(self, other):
        raise AssertionError(f"a credential was compared with != (against {other!r})")

    __hash__ = str.__hash__


def test_password_comparison_is_constant_time(monkeypatch):
    """Every registered user's name and password go through a constant-time comparison on
    every check (no early exit on a match), and none is compared with ``==``."""
    import base64
    import hmac

    from workbench.pacs.rest import security

    compared: list[bytes] = []
    compare_digest = hmac.compare_digest

    def recording_compare_digest(a, b):
        compared.append(bytes(b))
        return compare_digest(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", recording_compare_digest)
    users = {
        _Secret(name): _Secret(password)
        for name, password in [("a", "x" * 20), ("b", "y"), ("c", "z")]
    }
    every_secret = sorted(s.encode() for pair in users.items() for s in pair)

    def header(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    for (user, password), expected in [
        (("a", "x" * 20), True),  # the first user: the others are still compared
        (("a", "x" * 19), False),
        (("b", "x" * 20), False),
        (("c", "z"), True),
        (("nobody", "z"), False),
    ]:
        compared.clear()
        assert security.credentials_valid(header(user, password), users) is expected
        assert sorted(compared) == every_secret, (user, password)


# ------------------------------------------------------------------------------ DIMSE
@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A default (loopback) server with the test client declared as a modality."""
    server = start_server(tmp_path_factory.mktemp("local"))
    yield server
    server.stop()


def test_c_move_to_an_undeclared_destination_is_refused(local):
    ds = make_instance(template(), patient="MOVE-1", study=generate_uid(), series=generate_uid())
    assert local.post("/instances", data=to_bytes(ds)).status_code == 200
    ae = AE(ae_title=CLIENT_AET)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ds.StudyInstanceUID
    for destination in ("NOWHERE", "EVIL_AE", NODE_AET + "X"):
        assoc = associate(ae, local.dicom_port)
        statuses = [
            int(status.Status)
            for status, _ in assoc.send_c_move(
                query, destination, StudyRootQueryRetrieveInformationModelMove
            )
            if status
        ]
        assoc.release()
        assert statuses and statuses[-1] == MOVE_DESTINATION_UNKNOWN, (destination, statuses)


def test_c_move_from_an_undeclared_caller_is_refused(local):
    """An unknown caller may associate (it may verify and store), but its C-MOVE of a stored
    study to a declared destination is refused and nothing is sent."""
    ds = make_instance(template(), patient="MOVE-2", study=generate_uid(), series=generate_uid())
    assert local.post("/instances", data=to_bytes(ds)).status_code == 200
    ae = AE(ae_title="STRANGER")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ds.StudyInstanceUID
    assoc = associate(ae, local.dicom_port)
    assert assoc.is_established
    responses = [
        status
        for status, _ in assoc.send_c_move(
            query, CLIENT_AET, StudyRootQueryRetrieveInformationModelMove
        )
        if status
    ]
    assoc.release()
    assert [int(status.Status) for status in responses] == [MOVE_DESTINATION_UNKNOWN]
    assert int(responses[-1].get("NumberOfCompletedSuboperations", 0)) == 0


def test_called_ae_title_is_checked_when_configured(tmp_path):
    server = start_server(tmp_path / "called-aet", DicomCheckCalledAet=True)
    try:
        ae = AE(ae_title=CLIENT_AET)
        ae.add_requested_context(Verification)
        for wrong in ("ANY-SCP", "WORKBENCH2", "workbench"):
            assoc = associate(ae, server.dicom_port, called=wrong)
            assert not assoc.is_established, wrong
            assert assoc.is_rejected, wrong
        assoc = associate(ae, server.dicom_port, called=NODE_AET)
        assert assoc.is_established
        assoc.release()
    finally:
        server.stop()


# ------------------------------------------------------------------- hostile tag values
HOSTILE = [
    "../../etc",
    "../../../../../../tmp/pwned",
    "..\\..\\windows\\system32",
    "/etc/passwd",
    "'; DROP TABLE patients; --",
    '" OR 1=1 --',
    "a\x00b",
    "\x00",
    "x" * 5000,
    "%s%s%n",
    "{{7*7}}",
    "$(touch /tmp/pwned)",
    "ÄÖÜ-é-中文",
]


#: What the store itself keeps at its top level (index, lock, work folders).
STORE_OWN = re.compile(
    r"^(index\.sqlite(-wal|-shm|-journal|\.writers\.lock)?|store\.lock|incoming|quarantine)$"
)


def _safe_names(server) -> None:
    """Nothing under the storage is named after a tag value: UUID-named files in two levels
    of two-hex-digit folders, plus the store's own files at the top."""
    for path in server.storage.rglob("*"):
        relative = path.relative_to(server.storage)
        assert not {"..", "etc", "pwned", "passwd"} & set(re.split(r"[/\\.]", str(relative)))
        if relative.parts[0] in ("incoming", "quarantine"):
            continue
        if len(relative.parts) == 1:
            assert STORE_OWN.match(path.name) or (path.is_dir() and len(path.name) == 2), relative
        elif path.is_dir():
            assert len(relative.parts) == 2 and len(path.name) == 2, relative
        else:
            assert UUID_NAME.match(path.name) and len(relative.parts) == 3, relative


def _zip_names_safe(data: bytes) -> list[str]:
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    for name in names:
        assert not name.startswith(("/", "\\")), name
        assert ".." not in Path(name.replace("\\", "/")).parts, name
        assert "\x00" not in name, name
    return names


def _store_hostile(server, value: str, *, via_dimse: bool = False) -> str | None:
    ds = make_instance(template(), patient=value, study=generate_uid(), series=generate_uid())
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = value
    ds.StudyDescription = value
    ds.SeriesDescription = value
    ds.InstitutionName = value
    if via_dimse:
        assoc = associate(client_ae(), server.dicom_port)
        status = store_status(assoc, ds)
        assoc.release()
        assert status in (0x0000, 0xC210), f"{value!r}: status {status}"
        return None
    answer = server.post("/instances", data=to_bytes(ds))
    assert answer.status_code in (200, 400), f"{value!r}: {answer.status_code} {answer.text}"
    return answer.json().get("ParentPatient") if answer.status_code == 200 else None


def test_hostile_tag_values_never_become_paths_or_sql(local, tmp_path):
    outside_before = set(local.workdir.parent.iterdir())
    for value in HOSTILE:
        patient_id = _store_hostile(local, value)
        _store_hostile(local, value, via_dimse=True)
        if patient_id is None:
            continue
        tags = local.get(f"/patients/{patient_id}").json()["MainDicomTags"]
        # Stored as data: read back as sent (up to pydicom's own trimming of padding).
        assert (
            tags["PatientID"].rstrip(" \x00")
            == value.rstrip(" \x00")[: len(tags["PatientID"].rstrip(" \x00"))]
        )
        if "*" not in value and "?" not in value and "\\" not in value and "\x00" not in value:
            found = local.post(
                "/tools/find", json={"Level": "Patient", "Query": {"PatientID": value}}
            ).json()
            assert found == [patient_id], value
        for kind in ("archive", "media"):
            answer = local.get(f"/patients/{patient_id}/{kind}")
            assert answer.status_code == 200, (kind, value, answer.text[:300])
            _zip_names_safe(answer.content)
    _safe_names(local)
    assert set(local.workdir.parent.iterdir()) == outside_before
    assert not Path("/tmp/pwned").exists()
    # The tables are intact and still answer.
    statistics = local.get("/statistics").json()
    assert statistics["CountPatients"] >= len(HOSTILE) - 2
    assert local.post("/tools/find", json={"Level": "Patient", "Query": {}}).status_code == 200


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(value=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80))
def test_random_patient_ids_are_stored_as_data(local, value):
    patient_id = _store_hostile(local, value)
    if patient_id is not None and value.strip(" \x00") and not set(value) & set("*?\\"):
        found = local.post("/tools/find", json={"Level": "Patient", "Query": {"PatientID": value}})
        assert found.status_code in (200, 400), found.text
    _safe_names(local)


# --------------------------------------------------------------------- de-identification
#: PS3.15 Table E.1-1, Basic Profile column, for the attributes our test data carries,
#: written from the standard independently of the implementation's table.
#: X = remove; anything else (Z, D, U and their combinations) = the original value must not
#: survive (removed, emptied, replaced by a dummy or, for U, by a new UID).
BASIC_PROFILE = {
    0x00080014: "U",  # Instance Creator UID
    0x00080018: "U",  # SOP Instance UID
    0x00080020: "Z",  # Study Date
    0x00080030: "Z",  # Study Time
    0x00080050: "Z",  # Accession Number
    0x00080080: "XZD",  # Institution Name
    0x00080081: "X",  # Institution Address
    0x00080090: "Z",  # Referring Physician's Name
    0x00080092: "X",  # Referring Physician's Address
    0x00080094: "X",  # Referring Physician's Telephone Numbers
    0x00081010: "XZD",  # Station Name
    0x00081030: "X",  # Study Description
    0x0008103E: "X",  # Series Description
    0x00081040: "X",  # Institutional Department Name
    0x00081048: "X",  # Physician(s) of Record
    0x00081050: "XZD",  # Performing Physician's Name
    0x00081060: "X",  # Name of Physician(s) Reading Study
    0x00081070: "XZD",  # Operators' Name
    0x00081080: "X",  # Admitting Diagnoses Description
    0x00082111: "X",  # Derivation Description
    0x00100010: "Z",  # Patient's Name
    0x00100020: "Z",  # Patient ID
    0x00100030: "Z",  # Patient's Birth Date
    0x00100032: "X",  # Patient's Birth Time
    0x00101000: "X",  # Other Patient IDs
    0x00101001: "X",  # Other Patient Names
    0x00101005: "X",  # Patient's Birth Name
    0x00101010: "X",  # Patient's Age
    0x00101020: "X",  # Patient's Size
    0x00101030: "X",  # Patient's Weight
    0x00101040: "X",  # Patient's Address
    0x00101060: "X",  # Patient's Mother's Birth Name
    0x00101080: "X",  # Military Rank
    0x00101090: "X",  # Medical Record Locator
    0x00102000: "X",  # Medical Alerts
    0x00102110: "X",  # Allergies
    0x00102154: "X",  # Patient's Telephone Numbers
    0x00102160: "X",  # Ethnic Group
    0x00102180: "X",  # Occupation
    0x001021B0: "X",  # Additional Patient History
    0x001021F0: "X",  # Patient's Religious Preference
    0x00104000: "X",  # Patient Comments
    0x00181000: "XZD",  # Device Serial Number
    0x00181030: "XD",  # Protocol Name
    0x0020000D: "U",  # Study Instance UID
    0x0020000E: "U",  # Series Instance UID
    0x00200010: "Z",  # Study ID
    0x00200052: "U",  # Frame of Reference UID
    0x00204000: "X",  # Image Comments
    0x00321032: "X",  # Requesting Physician
    0x00324000: "X",  # Study Comments
    0x00380010: "X",  # Admission ID
    0x00400253: "X",  # Performed Procedure Step ID
    0x00400254: "X",  # Performed Procedure Step Description
    0x00400275: "X",  # Request Attributes Sequence
}

IDENTIFYING = {
    "PatientName": "DOE^JANE^Q",
    "PatientID": "MRN-778899",
    "PatientBirthDate": "19610203",
    "PatientBirthTime": "101500",
    "OtherPatientIDs": "ALT-4455",
    "OtherPatientNames": "ROE^J",
    "PatientAddress": "12 Elm Street, Springfield",
    "PatientTelephoneNumbers": "555-0101",
    "PatientMotherBirthName": "SMITH^ANNE",
    "MilitaryRank": "Major",
    "EthnicGroup": "Group9",
    "Occupation": "Lighthouse keeper",
    "AdditionalPatientHistory": "History of widgetitis",
    "PatientComments": "Comment about Jane",
    "PatientAge": "063Y",
    "PatientSize": "1.71",
    "PatientWeight": "64",
    "MedicalRecordLocator": "Shelf 42",
    "AccessionNumber": "ACC-991122",
    "ReferringPhysicianName": "WHO^DOCTOR",
    "ReferringPhysicianAddress": "1 Hospital Road",
    "InstitutionName": "Springfield General",
    "InstitutionAddress": "2 Hospital Road",
    "InstitutionalDepartmentName": "Radiology West",
    "StationName": "MRSTATION7",
    "DeviceSerialNumber": "SN-0042-XYZ",
    "PhysiciansOfRecord": "HOUSE^GREGORY",
    "PerformingPhysicianName": "GREY^MEREDITH",
    "NameOfPhysiciansReadingStudy": "KILDARE^JAMES",
    "OperatorsName": "TECH^TOM",
    "StudyDescription": "Jane's knee study",
    "SeriesDescription": "Jane sagittal",
    "StudyID": "STUDY-3344",
    "ImageComments": "Image of Jane",
    "StudyComments": "Jane again",
    "RequestingPhysician": "CASEY^BEN",
    "AdmissionID": "ADM-1234",
    "PerformedProcedureStepID": "PPS-5678",
    "ProtocolName": "Jane protocol",
    "PerformedProcedureStepDescription": "Jane's procedure",
    "DerivationDescription": "Jane",
}


def _identifying_instance(study: str, series: str, number: int) -> Dataset:
    ds = make_instance(template(), patient="MRN-778899", study=study, series=series, number=number)
    for keyword, value in IDENTIFYING.items():
        setattr(ds, keyword, value)
    ds.FrameOfReferenceUID = generate_uid()
    ds.InstanceCreatorUID = generate_uid()
    request = Dataset()
    request.RequestedProcedureID = "REQ-0001"
    request.ScheduledProcedureStepID = "SPS-0001"
    ds.RequestAttributesSequence = Sequence([request])
    ds.add_new(0x00091010, "LO", "Private Jane data")
    ds.add_new(0x00090010, "LO", "ACME PRIVATE")
    return ds


def _flatten(ds: Dataset) -> dict[int, list]:
    """Every element's values by tag, nested sequence items included."""
    found: dict[int, list] = {}

    def visit(dataset: Dataset, element) -> None:
        found.setdefault(int(element.tag), []).append(element.value)

    ds.walk(visit)
    return found


def test_anonymization_removes_every_basic_profile_attribute(local):
    study, series = generate_uid(), generate_uid()
    originals = [_identifying_instance(study, series, n + 1) for n in range(2)]
    for ds in originals:
        assert local.post("/instances", data=to_bytes(ds)).status_code == 200
    study_id = local.post("/tools/lookup", data=study).json()[0]["ID"]
    answer = local.post(f"/studies/{study_id}/anonymize", json={})
    assert answer.status_code == 200, answer.text
    new_study = answer.json()["ID"]
    assert new_study != study_id
    instances = local.get(f"/studies/{new_study}/instances").json()
    assert len(instances) == len(originals)

    by_number = {int(ds.InstanceNumber): ds for ds in originals}
    new_study_uids, new_series_uids = set(), set()
    secrets_text = [v for v in IDENTIFYING.values() if len(v) >= 4]
    secrets_text += [study, series] + [str(ds.SOPInstanceUID) for ds in originals]
    for item in instances:
        data = local.get(f"/instances/{item['ID']}/file").content
        out = pydicom.dcmread(io.BytesIO(data))
        original = by_number[int(out.InstanceNumber)]
        before, after = _flatten(original), _flatten(out)
        for tag, action in BASIC_PROFILE.items():
            if tag not in before:
                continue
            name = pydicom.datadict.keyword_for_tag(tag)
            if action == "X":
                assert tag not in after, f"{name} should be removed, is {after.get(tag)}"
                continue
            for old in before[tag]:
                for new in after.get(tag, []):
                    assert str(new) != str(old) or str(old) == "", f"{name} kept {old!r}"
        assert not [e for e in out.iterall() if e.tag.is_private], "private tags kept"
        assert out.get("PatientIdentityRemoved") == "YES"
        assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
        new_study_uids.add(str(out.StudyInstanceUID))
        new_series_uids.add(str(out.SeriesInstanceUID))
        # No identifying text anywhere in the file, whatever attribute might carry it.
        text = data.decode("latin-1")
        for secret in secrets_text:
            assert secret not in text, f"{secret!r} survives in the anonymized file"
        assert out.PixelData == original.PixelData  # the image itself is kept
    assert len(new_study_uids) == 1 and len(new_series_uids) == 1  # consistent UIDs
    assert new_study_uids.isdisjoint({study}) and new_series_uids.isdisjoint({series})
    # The original is still there, untouched.
    assert local.get(f"/studies/{study_id}").status_code == 200
    assert all(c in string.printable for c in new_study_uids.pop())
