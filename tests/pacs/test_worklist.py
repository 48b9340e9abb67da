"""Modality Worklist C-FIND, asked with DCMTK ``findscu -W``, answered as DCMTK's own
worklist server ``wlmscpfs`` answers from the same ``.wl`` files.

The worklist items are written here (a RIS's scheduled exams: names in Latin-1, several
steps, protocol codes); DCMTK's example worklists and queries join when the dcmtk package
ships its examples.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.pacs.node_support import dcmtk, start_node
from tests.peers import free_port, require_tool

CALLED = "WORKLIST"
DCMTK_EXAMPLES = Path("/usr/share/doc/dcmtk/examples")


def _step(modality, station, date, time_, step_id, **extra) -> Dataset:
    step = Dataset()
    step.Modality = modality
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = time_
    step.ScheduledPerformingPhysicianName = "RAD^ONE"
    step.ScheduledProcedureStepDescription = f"{modality} exam"
    step.ScheduledProcedureStepID = step_id
    for keyword, value in extra.items():
        setattr(step, keyword, value)
    return step


def _item(accession, name, patient_id, steps, charset="ISO_IR 100") -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.AccessionNumber = accession
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = generate_uid()
    ds.RequestedProcedureID = f"RP{accession}"
    ds.RequestedProcedureDescription = "Scheduled exam"
    ds.ScheduledProcedureStepSequence = steps
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _worklist_items() -> list[Dataset]:
    protocol = Dataset()
    protocol.CodeValue, protocol.CodingSchemeDesignator = "P1", "99LOCAL"
    protocol.CodeMeaning = "Head without contrast"
    return [
        _item(
            "A001",
            "Müller^Anna",
            "P001",
            [
                _step(
                    "CT", "CT01", "20261203", "0900", "S1", ScheduledProtocolCodeSequence=[protocol]
                )
            ],
        ),
        # One step per item (PS3.4 K.6.1.2.2): two exams of one patient are two items.
        _item("A002", "Martin^Paul", "P002", [_step("MR", "MR01", "20261203", "1000", "S2")]),
        _item("A005", "Martin^Paul", "P002", [_step("MR", "MR02", "20261204", "0800", "S3")]),
        _item("A003", "Lee^Kim", "P003", [_step("US", "US01", "20261205", "1400", "S4")]),
        _item(
            "A004",
            "Okafor^Ada",
            "P004",
            [_step("CT", "CT02", "20261206", "1130", "S5")],
            charset="ISO_IR 192",
        ),
    ]


def _query(**top) -> Dataset:
    step_keys = top.pop("step", {})
    ds = Dataset()
    for keyword in (
        "AccessionNumber",
        "PatientName",
        "PatientID",
        "StudyInstanceUID",
        "RequestedProcedureID",
    ):
        setattr(ds, keyword, top.pop(keyword, ""))
    for keyword, value in top.items():
        setattr(ds, keyword, value)
    step = Dataset()
    for keyword in (
        "Modality",
        "ScheduledStationAETitle",
        "ScheduledProcedureStepStartDate",
        "ScheduledProcedureStepID",
    ):
        setattr(step, keyword, step_keys.pop(keyword, ""))
    for keyword, value in step_keys.items():
        setattr(step, keyword, value)
    ds.ScheduledProcedureStepSequence = [step]
    return ds


QUERIES = {
    "everything": _query(),
    "mr_on_station": _query(step={"Modality": "MR", "ScheduledStationAETitle": "MR02"}),
    "name_wildcard": _query(PatientName="M*"),
    "date_range": _query(step={"ScheduledProcedureStepStartDate": "20261204-20261205"}),
    "accession": _query(AccessionNumber="A004", SpecificCharacterSet="ISO_IR 192"),
    "empty_step_item": _query(),
}
QUERIES["empty_step_item"].ScheduledProcedureStepSequence = [Dataset()]
protocol_keys = Dataset()
protocol_keys.CodeValue = protocol_keys.CodeMeaning = ""
QUERIES["protocol"] = _query(AccessionNumber="A001")
QUERIES["protocol"].ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence = [
    protocol_keys
]


def _write(ds: Dataset, path: Path) -> Path:
    ds.file_meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=False)
    return path


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Our node and DCMTK's wlmscpfs over one folder of worklist files: (ours, dcmtk) ports."""
    wlmscpfs = require_tool("wlmscpfs")
    root = tmp_path_factory.mktemp("worklists")
    folder = root / CALLED
    folder.mkdir()
    (folder / "lockfile").touch()  # wlmscpfs reads a folder only when it holds one
    for position, item in enumerate(_worklist_items()):
        _write(item, folder / f"item{position}.wl")
    examples = DCMTK_EXAMPLES / "wlistdb" / "OFFIS"
    for dump in sorted(examples.glob("*.dump")):
        dcmtk("dump2dcm", str(dump), str(folder / f"{dump.stem}.wl"))
    node = start_node(
        root / "store",
        {"findscu": ["FINDSCU", "127.0.0.1", 1]},
        Worklists={"Enable": True, "Database": str(folder)},
    )
    port = free_port()
    reference = subprocess.Popen(
        [wlmscpfs, "-dfp", str(root), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while "Association Accepted" not in dcmtk(
        "echoscu", "-v", "-aec", CALLED, "127.0.0.1", str(port), check=False
    ):
        assert time.monotonic() < deadline, "wlmscpfs did not start"
        time.sleep(0.1)
    yield node.port, port
    reference.terminate()
    reference.wait(10)
    node.node.stop()


def _ask(port: int, query: Path, out: Path) -> list[pydicom.Dataset]:
    out.mkdir(parents=True)
    dcmtk(
        "findscu",
        "-W",
        "-aet",
        "FINDSCU",
        "-aec",
        CALLED,
        "-X",
        "-od",
        str(out),
        "127.0.0.1",
        str(port),
        str(query),
    )
    return [pydicom.dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


def _comparable(answers: list[pydicom.Dataset]) -> list[str]:
    """Answers as sorted JSON texts, without Specific Character Set: wlmscpfs leaves it
    out even where its answers hold Latin-1 names (we give it; checked on its own)."""
    texts = []
    for answer in answers:
        model = answer.to_json_dict()
        model.pop("00080005", None)
        texts.append(json.dumps(model, sort_keys=True))
    return sorted(texts)


def _dcmtk_example_queries() -> list[str]:
    return sorted(path.name for path in (DCMTK_EXAMPLES / "wlistqry").glob("*.dump"))


@pytest.mark.parametrize("name", [*QUERIES, *_dcmtk_example_queries()])
def test_answers_equal_dcmtks_worklist_server(servers, tmp_path, name):
    ours, reference = servers
    if name in QUERIES:
        query = _write(QUERIES[name], tmp_path / "query.dcm")
    else:
        query = tmp_path / "query.dcm"
        dcmtk("dump2dcm", str(DCMTK_EXAMPLES / "wlistqry" / name), str(query))
    answers = _ask(ours, query, tmp_path / "ours")
    mine = _comparable(answers)
    assert mine == _comparable(_ask(reference, query, tmp_path / "dcmtk"))
    for answer in answers:
        names = str(answer.get("PatientName", ""))
        if not names.isascii() or "SpecificCharacterSet" in QUERIES.get(name, ()):
            assert answer.SpecificCharacterSet in ("ISO_IR 100", "ISO_IR 192"), names
    expected = {
        "everything": 5,
        "mr_on_station": 1,
        "name_wildcard": 3,
        "date_range": 2,
        "accession": 1,
        "empty_step_item": 5,
        "protocol": 1,
    }
    if name in expected:
        assert len(mine) - _examples_in(mine) == expected[name], mine


def _examples_in(answers: list[str]) -> int:
    """Answers from DCMTK's example worklists (accession numbers of five digits)."""
    return sum(
        1
        for answer in answers
        if (json.loads(answer).get("00080050", {}).get("Value") or [""])[0].isdigit()
    )


def test_worklists_not_enabled_are_refused(tmp_path):
    node = start_node(tmp_path / "store", {"findscu": ["FINDSCU", "127.0.0.1", 1]})
    try:
        query = _write(_query(), tmp_path / "query.dcm")
        output = dcmtk(
            "findscu",
            "-v",
            "-W",
            "-aet",
            "FINDSCU",
            "-aec",
            CALLED,
            "127.0.0.1",
            str(node.port),
            str(query),
            check=False,
        )
        assert "Final Find Response (Failed: UnableToProcess)" in output, output
    finally:
        node.node.stop()
