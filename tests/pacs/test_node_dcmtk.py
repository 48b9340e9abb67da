"""The node against DCMTK's echoscu, storescu, dcmsend, findscu, movescu and getscu."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.pacs.node_support import (
    NODE_AET,
    RunningNode,
    dcmtk,
    dicom_files,
    pixel_bytes,
    sop_uid,
    start_node,
    start_storescp,
)

pytestmark = pytest.mark.peers

CT_SERIES = "series_ct_philips_ingenuity_5mm"
#: Uncompressed in every corpus, so peers taking only uncompressed data get the stored bytes.
UNCOMPRESSED_SERIES = "enhanced_mr_siemens_xa10"
J2K_FILES = "toshiba_ct_j2k"


@pytest.fixture(scope="module")
def storescp(tmp_path_factory, data_root, database):
    """A DCMTK storescp that accepts only uncompressed syntaxes (its default), per corpus and
    per node: the files it writes are named by SOP Instance UID, which every node sends."""
    directory = tmp_path_factory.mktemp("storescp")
    process, port = start_storescp(directory)
    yield directory, port
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def node(tmp_path_factory, storescp, data_root, database) -> RunningNode:
    """A node per corpus (``data_root``), so each corpus's counts are its own, and per kind
    of index database."""
    _, storescp_port = storescp
    modalities = {
        "findscu": ["FINDSCU", "127.0.0.1", 1],
        "movescu": ["MOVESCU", "127.0.0.1", 1],
        "getscu": ["GETSCU", "127.0.0.1", 1],
        "storescp": ["STORESCP", "127.0.0.1", storescp_port],
    }
    running = start_node(
        tmp_path_factory.mktemp("node"), modalities, DatabaseUrl=database.new_url()
    )
    yield running
    running.node.stop()


@pytest.fixture(scope="module")
def sources(data_root) -> dict[str, list[Path]]:
    """SOPInstanceUID → the real files carrying it (transcodes of one image share it)."""
    by_uid: dict[str, list[Path]] = defaultdict(list)
    for path in dicom_files(data_root):
        by_uid[sop_uid(path)].append(path)
    return dict(by_uid)


@pytest.fixture(scope="module")
def loaded(node, sources) -> RunningNode:
    """Every real file sent with dcmsend (each file's own transfer syntax)."""
    files = [str(path) for paths in sources.values() for path in paths]
    dcmtk("dcmsend", "-aec", NODE_AET, "127.0.0.1", str(node.port), *files, timeout=300)
    return node


def _stored_uids(index) -> dict[str, Path]:
    stored = {}
    for instance in index.find("Instance", {}):
        stored[index.main_dicom_tags("Instance", instance)["SOPInstanceUID"]] = index.instance_path(
            instance
        )
    return stored


def test_echoscu(node):
    output = dcmtk("echoscu", "-v", "-aec", NODE_AET, "127.0.0.1", str(node.port))
    assert "Received Echo Response (Success)" in output


def test_dcmsend_stores_every_file_with_its_own_syntax(loaded, sources):
    stored = _stored_uids(loaded.index)
    assert set(stored) == set(sources)
    for uid, path in stored.items():
        # Exactly the bytes of one of the files that carry this UID: nothing was re-encoded.
        assert pixel_bytes(path) in {pixel_bytes(source) for source in sources[uid]}, uid


#: storescu's option proposing a file's compressed syntax (with the uncompressed ones after it).
STORESCU_PROPOSE = {
    "1.2.840.10008.1.2.4.50": "-xy",
    "1.2.840.10008.1.2.4.51": "-xx",
    "1.2.840.10008.1.2.4.70": "-xs",
    "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.4.81": "-xu",
    "1.2.840.10008.1.2.4.90": "-xv",
    "1.2.840.10008.1.2.4.91": "-xw",
    "1.2.840.10008.1.2.5": "-xr",
    "1.2.840.10008.1.2.1.99": "-xd",
}


def test_storescu_all_files_compressed_kept_as_sent(tmp_path, sources):
    """storescu proposes uncompressed syntaxes after the compressed one it is told to offer;
    the node picks the compressed one, so nothing is decoded on either side."""
    fresh = start_node(tmp_path / "node")
    try:
        groups: dict[str, list[str]] = defaultdict(list)
        for paths in sources.values():
            for path in paths:
                syntax = str(
                    pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
                )
                groups[STORESCU_PROPOSE.get(syntax, "-x=")].append(str(path))
        for option, files in groups.items():
            dcmtk(
                "storescu",
                option,
                "-aec",
                NODE_AET,
                "127.0.0.1",
                str(fresh.port),
                *files,
                timeout=180,
            )
        stored = _stored_uids(fresh.index)
        assert set(stored) == set(sources)
        for uid, path in stored.items():
            assert pixel_bytes(path) in {pixel_bytes(source) for source in sources[uid]}, uid
    finally:
        fresh.node.stop()


# -- C-FIND ------------------------------------------------------------------------------------


def findscu(
    node, tmp_path: Path, level: str, keys: dict[str, str], *, patient_root=False, aet="FINDSCU"
) -> list[pydicom.Dataset]:
    out = tmp_path / f"find-{level}-{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    args = [
        "-P" if patient_root else "-S",
        "-aet",
        aet,
        "-aec",
        NODE_AET,
        "-X",
        "-od",
        str(out),
        "-k",
        f"QueryRetrieveLevel={level}",
    ]
    for key, value in keys.items():
        args += ["-k", f"{key}={value}" if value is not None else key]
    dcmtk("findscu", *args, "127.0.0.1", str(node.port))
    return [pydicom.dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


def _headers(sources) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(paths[0], stop_before_pixels=True) for paths in sources.values()]


def test_find_study_universal_returns_every_study(loaded, sources, tmp_path):
    answers = findscu(loaded, tmp_path, "STUDY", {"StudyInstanceUID": None, "PatientName": None})
    expected = {ds.StudyInstanceUID for ds in _headers(sources)}
    assert sorted(a.StudyInstanceUID for a in answers) == sorted(expected)
    assert all("PatientName" in a and a.QueryRetrieveLevel == "STUDY" for a in answers)


def test_find_patient_level_single_value_patient_root(loaded, sources, tmp_path):
    ct = pydicom.dcmread(sources[sop_uid(next(_ct_files(sources)))][0])
    answers = findscu(
        loaded,
        tmp_path,
        "PATIENT",
        {"PatientID": ct.PatientID, "PatientName": None, "PatientBirthDate": None},
        patient_root=True,
    )
    assert len(answers) == 1
    assert answers[0].PatientID == ct.PatientID
    assert str(answers[0].PatientName) == str(ct.PatientName)


def _ct_files(sources):
    return (paths[0] for paths in sources.values() if CT_SERIES in str(paths[0]))


def test_find_person_name_wildcard_is_case_insensitive(loaded, sources, tmp_path):
    headers = _headers(sources)
    name = next(str(ds.PatientName) for ds in headers if len(str(ds.get("PatientName", ""))) > 2)
    pattern = name[:2].swapcase() + "*"
    answers = findscu(loaded, tmp_path, "STUDY", {"PatientName": pattern, "StudyInstanceUID": None})
    expected = {
        ds.StudyInstanceUID
        for ds in headers
        if str(ds.get("PatientName", "")).lower().startswith(name[:2].lower())
    }
    assert {a.StudyInstanceUID for a in answers} == expected


def test_find_study_date_ranges(loaded, sources, tmp_path):
    dated = [ds for ds in _headers(sources) if ds.get("StudyDate")]
    dates = sorted({ds.StudyDate for ds in dated})
    low, high = dates[len(dates) // 3], dates[2 * len(dates) // 3]
    for pattern, keep in [
        (f"{low}-{high}", lambda d: low <= d <= high),
        (f"-{low}", lambda d: d <= low),
        (f"{high}-", lambda d: d >= high),
        (low, lambda d: d == low),
    ]:
        answers = findscu(
            loaded, tmp_path, "STUDY", {"StudyDate": pattern, "StudyInstanceUID": None}
        )
        expected = {ds.StudyInstanceUID for ds in dated if keep(ds.StudyDate)}
        # Studies without a date are left out: whether an empty value falls in an open range
        # is the index's matching rule, tested with the index.
        answered = {a.StudyInstanceUID for a in answers if a.StudyDate}
        assert answered == expected, pattern
        assert all(keep(a.StudyDate) for a in answers if a.StudyDate)


def test_find_uid_list_and_series_and_image_levels(loaded, sources, tmp_path):
    headers = _headers(sources)
    studies = sorted({ds.StudyInstanceUID for ds in headers})[:2]
    answers = findscu(loaded, tmp_path, "STUDY", {"StudyInstanceUID": "\\".join(studies)})
    assert sorted(a.StudyInstanceUID for a in answers) == studies

    ct = [
        ds
        for ds in headers
        if ds.SeriesInstanceUID
        == pydicom.dcmread(next(_ct_files(sources)), stop_before_pixels=True).SeriesInstanceUID
    ]
    study, series = ct[0].StudyInstanceUID, ct[0].SeriesInstanceUID
    answers = findscu(
        loaded,
        tmp_path,
        "SERIES",
        {
            "StudyInstanceUID": study,
            "SeriesInstanceUID": None,
            "Modality": None,
            "NumberOfSeriesRelatedInstances": None,
        },
    )
    expected_series = {ds.SeriesInstanceUID for ds in headers if ds.StudyInstanceUID == study}
    assert {a.SeriesInstanceUID for a in answers} == expected_series
    ct_answer = next(a for a in answers if a.SeriesInstanceUID == series)
    assert ct_answer.Modality == "CT" and int(ct_answer.NumberOfSeriesRelatedInstances) == len(ct)

    answers = findscu(
        loaded,
        tmp_path,
        "IMAGE",
        {
            "StudyInstanceUID": study,
            "SeriesInstanceUID": series,
            "SOPInstanceUID": None,
            "InstanceNumber": None,
            "Rows": None,
        },
    )
    assert sorted(a.SOPInstanceUID for a in answers) == sorted(ds.SOPInstanceUID for ds in ct)
    assert all(a.Rows == 512 for a in answers)  # not a main tag: read from the stored header


def test_find_returns_requested_keys_empty_when_absent(loaded, tmp_path):
    answers = findscu(
        loaded, tmp_path, "STUDY", {"StudyInstanceUID": None, "IssuerOfPatientID": None}
    )
    assert answers
    assert all("IssuerOfPatientID" in a for a in answers)
    assert any(a.IssuerOfPatientID in (None, "") for a in answers)
    assert all("SpecificCharacterSet" in a for a in answers)


def test_find_answers_in_the_requested_character_set(loaded, tmp_path):
    answers = findscu(
        loaded,
        tmp_path,
        "STUDY",
        {"SpecificCharacterSet": "ISO_IR 100", "StudyInstanceUID": None, "PatientName": None},
    )
    assert answers
    assert {a.SpecificCharacterSet for a in answers} <= {"ISO_IR 100", "ISO_IR 192"}
    assert any(a.SpecificCharacterSet == "ISO_IR 100" for a in answers)


def test_find_from_undeclared_ae_is_refused(loaded, tmp_path):
    out = tmp_path / "refused"
    out.mkdir()
    output = dcmtk(
        "findscu",
        "-v",
        "-S",
        "-aet",
        "STRANGER",
        "-aec",
        NODE_AET,
        "-X",
        "-od",
        str(out),
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        "StudyInstanceUID",
        "127.0.0.1",
        str(loaded.port),
        check=False,
    )
    assert not list(out.glob("rsp*.dcm"))
    assert "0x124" in output.lower(), output  # Refused: Not Authorized (PS3.7 C.5)


# -- C-MOVE and C-GET --------------------------------------------------------------------------


def _series_of(sources, folder: str) -> tuple[str, str, list[Path]]:
    paths = [paths[0] for paths in sources.values() if f"/{folder}/" in str(paths[0])]
    ds = pydicom.dcmread(paths[0], stop_before_pixels=True)
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, paths


def test_movescu_to_storescp(loaded, sources, storescp, tmp_path):
    directory, _ = storescp
    study, series, paths = _series_of(sources, UNCOMPRESSED_SERIES)
    before = set(directory.iterdir())
    output = dcmtk(
        "movescu",
        "-v",
        "-S",
        "-aet",
        "MOVESCU",
        "-aem",
        "STORESCP",
        "-aec",
        NODE_AET,
        "-k",
        "QueryRetrieveLevel=SERIES",
        "-k",
        f"StudyInstanceUID={study}",
        "-k",
        f"SeriesInstanceUID={series}",
        "127.0.0.1",
        str(loaded.port),
    )
    received = sorted(set(directory.iterdir()) - before)
    assert len(received) == len(paths), output
    by_uid = {sop_uid(path): path for path in received}
    assert set(by_uid) == {sop_uid(path) for path in paths}
    for source in paths:
        assert pixel_bytes(by_uid[sop_uid(source)]) == pixel_bytes(source)


def test_movescu_transcodes_for_a_peer_without_jpeg2000(loaded, sources, storescp):
    directory, _ = storescp
    study, _series, paths = _series_of(sources, J2K_FILES)
    before = set(directory.iterdir())
    dcmtk(
        "movescu",
        "-S",
        "-aet",
        "MOVESCU",
        "-aem",
        "STORESCP",
        "-aec",
        NODE_AET,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study}",
        "127.0.0.1",
        str(loaded.port),
    )
    received = {sop_uid(path): path for path in set(directory.iterdir()) - before}
    for source in paths:
        got = pydicom.dcmread(received[sop_uid(source)])
        assert not got.file_meta.TransferSyntaxUID.is_compressed
        np.testing.assert_array_equal(got.pixel_array, pydicom.dcmread(source).pixel_array)


def test_movescu_to_unknown_destination_is_refused(loaded, sources):
    study, _, _ = _series_of(sources, CT_SERIES)
    output = dcmtk(
        "movescu",
        "-v",
        "-S",
        "-aet",
        "MOVESCU",
        "-aem",
        "NOWHERE",
        "-aec",
        NODE_AET,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study}",
        "127.0.0.1",
        str(loaded.port),
        check=False,
    )
    assert "Refused: MoveDestinationUnknown" in output, output  # 0xA801


def test_getscu_receives_series_with_pending_counts(loaded, sources, tmp_path):
    study, series, paths = _series_of(sources, UNCOMPRESSED_SERIES)
    out = tmp_path / "get"
    out.mkdir()
    output = dcmtk(
        "getscu",
        "-v",
        "-S",
        "-aet",
        "GETSCU",
        "-aec",
        NODE_AET,
        "-od",
        str(out),
        "-k",
        "QueryRetrieveLevel=SERIES",
        "-k",
        f"StudyInstanceUID={study}",
        "-k",
        f"SeriesInstanceUID={series}",
        "127.0.0.1",
        str(loaded.port),
    )
    received = {sop_uid(path): path for path in out.iterdir()}
    assert set(received) == {sop_uid(path) for path in paths}
    for source in paths:
        assert pixel_bytes(received[sop_uid(source)]) == pixel_bytes(source)
    assert "Remaining" in output or "Pending" in output


def test_getscu_transcodes_jpeg2000(loaded, sources, tmp_path):
    study, _, paths = _series_of(sources, J2K_FILES)
    out = tmp_path / "get-j2k"
    out.mkdir()
    dcmtk(
        "getscu",
        "-S",
        "-aet",
        "GETSCU",
        "-aec",
        NODE_AET,
        "-od",
        str(out),
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study}",
        "127.0.0.1",
        str(loaded.port),
    )
    received = {sop_uid(path): path for path in out.iterdir()}
    for source in paths:
        got = pydicom.dcmread(received[sop_uid(source)])
        np.testing.assert_array_equal(got.pixel_array, pydicom.dcmread(source).pixel_array)


def test_find_study_counts_and_modalities_for_every_study(loaded, sources, tmp_path):
    """Computed keys of every matched study equal what the files themselves say."""
    headers = _headers(sources)
    answers = findscu(
        loaded,
        tmp_path,
        "STUDY",
        {
            "StudyInstanceUID": None,
            "ModalitiesInStudy": None,
            "NumberOfStudyRelatedSeries": None,
            "NumberOfStudyRelatedInstances": None,
        },
    )
    assert {a.StudyInstanceUID for a in answers} == {ds.StudyInstanceUID for ds in headers}
    for answer in answers:
        in_study = [ds for ds in headers if ds.StudyInstanceUID == answer.StudyInstanceUID]
        assert int(answer.NumberOfStudyRelatedInstances) == len(
            {ds.SOPInstanceUID for ds in in_study}
        )
        assert int(answer.NumberOfStudyRelatedSeries) == len(
            {ds.SeriesInstanceUID for ds in in_study}
        )
        modalities = answer.ModalitiesInStudy or []
        modalities = [modalities] if isinstance(modalities, str) else list(modalities)
        assert set(modalities) == {ds.get("Modality") for ds in in_study} - {None, ""}
