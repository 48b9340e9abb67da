"""C-FIND answers compared with a real Orthanc's, asked by DCMTK ``findscu`` on the same files.

Both answer exactly the keys asked for, plus Query/Retrieve Level, Specific Character Set and
Retrieve AE Title, with the same values, at study, series and image level (counts,
ModalitiesInStudy and SOPClassesInStudy included; Rows is not indexed and is read from the
files). Specific Character Set and Retrieve AE Title are each server's own.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest

from tests.pacs.node_support import NODE_AET, dcmtk, dicom_files, start_node

FINDSCU = "FINDSCU"
OWN_VALUES = {0x00080005, 0x00080054}  # Specific Character Set, Retrieve AE Title
STUDY_KEYS = [
    "PatientName",
    "PatientID",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyDescription",
    "ModalitiesInStudy",
    "SOPClassesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
]
SERIES_KEYS = [
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "NumberOfSeriesRelatedInstances",
]
IMAGE_KEYS = ["SOPInstanceUID", "SOPClassUID", "InstanceNumber", "Rows", "Columns"]


@pytest.fixture(scope="module")
def sample_orthanc(orthanc, sample_data):
    """The session Orthanc holding data/sample and letting findscu ask."""
    orthanc.clear()
    for path in dicom_files(sample_data):
        orthanc.upload(path)
    orthanc.put("/modalities/findscu", json={"AET": FINDSCU, "Host": "127.0.0.1", "Port": 1})
    yield orthanc
    orthanc.delete("/modalities/findscu")


@pytest.fixture(scope="module")
def both(tmp_path_factory, sample_orthanc, sample_data, database):
    """Our node (its index on SQLite, then on PostgreSQL) and the session Orthanc, each
    holding data/sample, each letting findscu ask."""
    ours = start_node(
        tmp_path_factory.mktemp("find-node"),
        {"findscu": [FINDSCU, "127.0.0.1", 1]},
        DatabaseUrl=database.new_url(),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not ours.index.import_path(*dicom_files(sample_data), progress=False).errors
    yield ours, sample_orthanc
    ours.node.stop()


def _find(aet: str, port: int, level: str, keys: list[str], out: Path) -> list[pydicom.Dataset]:
    out.mkdir(parents=True)
    arguments = ["-S", "-aet", FINDSCU, "-aec", aet, "-X", "-od", str(out)]
    arguments += ["-k", f"QueryRetrieveLevel={level}"]
    for key in keys:
        arguments += ["-k", key]
    dcmtk("findscu", *arguments, "127.0.0.1", str(port))
    return [pydicom.dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


def _by(answers: list[pydicom.Dataset], keyword: str) -> dict[str, pydicom.Dataset]:
    return {str(answer[keyword].value): answer for answer in answers}


def _compare(ours: pydicom.Dataset, theirs: pydicom.Dataset) -> list:
    differences = []
    if set(ours.keys()) != set(theirs.keys()):
        differences.append(("keys", sorted(ours.keys()), sorted(theirs.keys())))
    for element in theirs:
        if element.tag in OWN_VALUES or element.tag not in ours:
            continue
        if str(ours[element.tag].value).strip() != str(element.value).strip():
            differences.append((element.keyword, ours[element.tag].value, element.value))
    return differences


def _answers(both, tmp_path, level, keys, uid_keyword):
    ours, orthanc = both
    mine = _by(_find(NODE_AET, ours.port, level, keys, tmp_path / "ours"), uid_keyword)
    theirs = _by(
        _find("ORTHANC", orthanc.dicom_port, level, keys, tmp_path / "theirs"), uid_keyword
    )
    assert mine.keys() == theirs.keys()
    assert mine
    for uid, answer in theirs.items():
        assert _compare(mine[uid], answer) == [], uid
        assert mine[uid].RetrieveAETitle == NODE_AET
    return mine


def test_study_answers_equal_orthancs(both, tmp_path):
    _answers(both, tmp_path, "STUDY", STUDY_KEYS, "StudyInstanceUID")


def test_series_answers_equal_orthancs(both, tmp_path):
    _answers(both, tmp_path, "SERIES", ["StudyInstanceUID", *SERIES_KEYS], "SeriesInstanceUID")


def test_image_answers_equal_orthancs_on_keys_read_from_the_files(both, tmp_path):
    ours, _ = both
    (study,) = ours.index.find("Study", {"PatientName": "HEAD"})
    study_uid = ours.index.main_dicom_tags("Study", study)["StudyInstanceUID"]
    mine = _answers(
        both,
        tmp_path,
        "IMAGE",
        [f"StudyInstanceUID={study_uid}", "SeriesInstanceUID", *IMAGE_KEYS],
        "SOPInstanceUID",
    )
    assert {int(answer.Rows) for answer in mine.values()} == {512}


@pytest.mark.parametrize(
    "keyword", ["PatientSex", "StudyDescription", "ReferringPhysicianName", "AccessionNumber"]
)
def test_a_lone_wildcard_needs_a_value_as_in_orthanc(both, tmp_path, keyword):
    """``*`` matches any value but not an absent or empty attribute, as Orthanc answers."""
    ours, _ = both
    mine = _answers(
        both, tmp_path, "STUDY", ["StudyInstanceUID", f"{keyword}=*"], "StudyInstanceUID"
    )
    if keyword == "StudyDescription":  # some sample studies have none
        assert 0 < len(mine) < len(ours.index.find("Study", {}))
