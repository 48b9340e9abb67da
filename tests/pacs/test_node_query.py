"""C-FIND matching rules, access rules, character sets and C-GET re-encoding, with a real
pynetdicom peer talking to the node over loopback (the index on SQLite and on PostgreSQL)."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import MRImageStorage, StudyRootQueryRetrieveInformationModelGet

from tests.pacs.node_support import NODE_AET, TEMPLATE, start_node
from workbench.pacs.node import access


def test_access_follows_orthanc_options():
    config = {
        "DicomModalities": {
            "pacs": ["PACS", "127.0.0.1", 104],
            "viewer": {"AET": "VIEWER", "Port": 11112, "AllowGet": False},
        }
    }
    assert access.is_allowed(config, "Echo", "ANYONE", "10.0.0.1")
    assert access.is_allowed(config, "Store", "ANYONE", "10.0.0.1")
    assert not access.is_allowed(config, "Find", "ANYONE", "10.0.0.1")
    assert access.is_allowed(config, "Find", "PACS", "10.0.0.1")
    assert not access.is_allowed(
        {**config, "DicomCheckModalityHost": True}, "Find", "PACS", "10.0.0.1"
    )
    assert not access.is_allowed(config, "Get", "VIEWER", "127.0.0.1")
    assert access.is_allowed({**config, "DicomAlwaysAllowFind": True}, "Find", "ANYONE", None)
    with pytest.raises(ValueError, match="bad"):
        access.parse_modality("bad", ["AET_ONLY"])


@pytest.fixture(scope="module")
def node(tmp_path_factory, sample_data, database):
    running = start_node(
        tmp_path_factory.mktemp("node"),
        {"client": ["CLIENT", "127.0.0.1", 1]},
        DatabaseUrl=database.new_url(),
    )
    ds = pydicom.dcmread(sample_data / TEMPLATE)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "MÜLLER^HANS"
    ds.PatientID = "CHARSET-1"
    path = tmp_path_factory.mktemp("files") / "latin1.dcm"
    ds.save_as(path, enforce_file_format=True)
    running.index.ingest_file(path)
    running.source = ds
    yield running
    running.node.stop()


def _find(node, identifier: Dataset) -> list[Dataset]:
    ae = AE(ae_title="CLIENT")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.2.2.1")
    assoc = ae.associate("127.0.0.1", node.port, ae_title=NODE_AET)
    assert assoc.is_established
    answers = [
        ds
        for status, ds in assoc.send_c_find(identifier, "1.2.840.10008.5.1.4.1.2.2.1")
        if status and status.Status == 0xFF00
    ]
    assoc.release()
    return answers


@pytest.mark.parametrize("charset", ["ISO_IR 100", None])
def test_find_answers_non_ascii_names_in_a_declared_character_set(node, charset):
    identifier = Dataset()
    if charset:
        identifier.SpecificCharacterSet = charset
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.PatientName = "m?ller^*" if charset else "M*LLER^HANS"
    identifier.StudyInstanceUID = ""
    answers = _find(node, identifier)
    assert len(answers) == 1
    assert answers[0].SpecificCharacterSet == (charset or "ISO_IR 192")
    assert str(answers[0].PatientName) == "MÜLLER^HANS"


@pytest.mark.parametrize(
    ("charset", "name", "found"),
    [
        ("ISO_IR 100", "müller^hans", True),  # single value, the umlaut in the other case
        ("ISO_IR 192", "Müller^*", True),  # wildcard with a non-ASCII letter
        ("ISO_IR 192", "MÜLLER^HANS", True),
        ("ISO_IR 192", "mueller^hans", False),  # other letters are other letters
        ("ISO_IR 192", "müller^hanz", False),
    ],
)
def test_find_matches_person_names_without_case_beyond_ascii(node, charset, name, found):
    identifier = Dataset()
    identifier.SpecificCharacterSet = charset
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.PatientName = name
    identifier.StudyInstanceUID = ""
    answers = _find(node, identifier)
    assert len(answers) == (1 if found else 0)
    if found:
        assert str(answers[0].PatientName) == "MÜLLER^HANS"


def test_c_get_re_encodes_for_a_peer_accepting_only_rle(node):
    received: list[Dataset] = []

    def on_store(event):
        received.append(event.dataset)
        received[-1].file_meta = event.file_meta
        return 0x0000

    ae = AE(ae_title="CLIENT")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(MRImageStorage, [RLELossless])
    assoc = ae.associate(
        "127.0.0.1",
        node.port,
        ae_title=NODE_AET,
        ext_neg=[build_role(MRImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = node.source.StudyInstanceUID
    statuses = [
        status.Status
        for status, _ in assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet)
    ]
    assoc.release()
    assert statuses[-1] == 0x0000 and 0xFF00 in statuses
    assert len(received) == 1
    got = received[0]
    assert got.file_meta.TransferSyntaxUID == RLELossless
    assert got.SOPInstanceUID == node.source.SOPInstanceUID  # same instance, re-encoded
    assert (got.pixel_array == node.source.pixel_array).all()
    assert node.source.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def _store(port: int, ds: Dataset, called: str = NODE_AET) -> int:
    ae = AE(ae_title="CLIENT")
    ae.add_requested_context(ds.SOPClassUID, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    assert assoc.is_established
    status = assoc.send_c_store(ds)
    assoc.release()
    return status.Status


def test_store_failures_map_to_dicom_statuses(tmp_path, sample_data, database):
    """0xA700 when storage is full and nothing may be recycled, 0xC210 for an instance that
    cannot be indexed; what was stored before is kept and the node keeps serving."""
    running = start_node(tmp_path / "node", MaximumPatientCount=1, DatabaseUrl=database.new_url())
    try:
        first = pydicom.dcmread(sample_data / TEMPLATE)
        first.PatientID = "KEEP"
        assert _store(running.port, first) == 0x0000
        kept = running.index.find("Patient", {"PatientID": "KEEP"})
        running.index.set_protected(kept[0], True)

        other = pydicom.dcmread(sample_data / TEMPLATE)
        other.PatientID = "NEW"
        other.SOPInstanceUID = pydicom.uid.generate_uid()
        other.StudyInstanceUID = pydicom.uid.generate_uid()
        assert _store(running.port, other) == 0xA700

        broken = pydicom.dcmread(sample_data / TEMPLATE)
        broken.SOPInstanceUID = pydicom.uid.generate_uid()
        del broken.StudyInstanceUID
        assert _store(running.port, broken) == 0xC210

        assert running.index.find("Patient", {}) == kept
        assert _store(running.port, first) == 0x0000  # still serving
    finally:
        running.node.stop()


def test_called_ae_title_is_checked_when_configured(tmp_path, sample_data):
    running = start_node(tmp_path / "node", DicomCheckCalledAet=True)
    try:
        ae = AE(ae_title="CLIENT")
        ae.add_requested_context("1.2.840.10008.1.1")
        wrong = ae.associate("127.0.0.1", running.port, ae_title="SOMEONE")
        assert wrong.is_rejected
        right = ae.associate("127.0.0.1", running.port, ae_title=NODE_AET)
        assert right.is_established
        assert right.send_c_echo().Status == 0x0000
        right.release()
    finally:
        running.node.stop()
