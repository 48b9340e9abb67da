"""DICOMweb against a real Orthanc and its Debian ``orthanc-dicomweb`` plugin, both ways.

Orthanc as a client: it searches our server, retrieves studies from it and stores to it
with STOW-RS, as its ``DicomWeb.Servers`` would. Orthanc as a reference: on the same files,
every attribute its QIDO-RS answers and WADO-RS metadata hold, ours hold with the same value,
apart from the differences listed in :func:`differences`, each a reading of PS3.18 or
PS3.5 where Orthanc 1.10 is the one that departs.
"""

from __future__ import annotations

import math
import warnings
from urllib.parse import urlsplit

import numpy as np
import pydicom
import pytest
import requests

from tests.pacs.dicomweb_support import value

LEVELS = {"studies": "0020000D", "series": "0020000E", "instances": "00080018"}
#: Orthanc answers with its DefaultEncoding (Latin-1); JSON text is Unicode, and we say
#: so with ISO_IR 192 (PS3.18 F.2: the JSON model is UTF-8).
SPECIFIC_CHARACTER_SET = "00080005"
RETRIEVE_URL = "00081190"
#: Text VRs that hold one value which may contain backslashes (PS3.5 6.2): Orthanc splits
#: them as if they were multi-valued.
SINGLE_VALUED_TEXT = {"UT", "LT", "ST", "UR"}


def _same(theirs, ours) -> bool:
    if isinstance(theirs, list) and isinstance(ours, list):
        return len(theirs) == len(ours) and all(map(_same, theirs, ours))
    if isinstance(theirs, (int, float)) and isinstance(ours, (int, float)):
        # Orthanc prints decimal strings with 15 significant digits (1e-16 becomes 0).
        return math.isclose(theirs, ours, rel_tol=1e-12, abs_tol=1e-12)
    return theirs == ours


def differences(theirs: dict, ours: dict, path: str = "") -> list[tuple]:
    """Where ``ours`` (a DICOM JSON object) lacks or changes a value of ``theirs``.

    Accepted: bulk data given inline or by another URI (servers choose where to cut; the
    URI is each server's own); private values Orthanc could not type (it gives them as bulk
    data, we as values of the private dictionary); OD/OF/OL Orthanc gives as numbers, we as
    base64 (PS3.18 F.2.7); single-valued text split by Orthanc at backslashes.
    """
    found = []
    for tag, theirs_element in theirs.items():
        where = f"{path}/{tag}"
        ours_element = ours.get(tag)
        if not isinstance(ours_element, dict):
            found.append((where, theirs_element, None))
            continue
        vr = theirs_element.get("vr")
        if "BulkDataURI" in theirs_element:
            if not {"BulkDataURI", "InlineBinary", "Value"} & ours_element.keys():
                found.append((where, theirs_element, ours_element))
            continue
        theirs_values, ours_values = theirs_element.get("Value"), ours_element.get("Value")
        if vr == "SQ":
            theirs_items, ours_items = theirs_values or [], ours_values or []
            if len(theirs_items) != len(ours_items):
                found.append((where, f"{len(theirs_items)} items", f"{len(ours_items)} items"))
                continue
            for position, (a, b) in enumerate(zip(theirs_items, ours_items, strict=True)):
                found += differences(a, b, f"{where}/{position}")
        elif vr in ("OD", "OF", "OL", "OV") and "InlineBinary" in ours_element:
            continue
        elif vr in SINGLE_VALUED_TEXT and ours_values and len(ours_values) == 1:
            if "\\".join(part or "" for part in theirs_values or []) != ours_values[0]:
                found.append((where, theirs_values, ours_values))
        elif not _same(theirs_values, ours_values):
            found.append((where, theirs_values, ours_values))
    return found


def _by_uid(answers: list[dict], tag: str) -> dict[str, dict]:
    return {answer[tag]["Value"][0]: answer for answer in answers}


@pytest.mark.parametrize("level", list(LEVELS))
def test_qido_answers_hold_every_attribute_orthanc_gives(orthanc_loaded, live_server, level):
    theirs = _by_uid(orthanc_loaded.get(f"/dicom-web/{level}").json(), LEVELS[level])
    ours = _by_uid(
        requests.get(f"{live_server}/dicom-web/{level}", timeout=60).json(), LEVELS[level]
    )
    assert ours.keys() == theirs.keys()
    for uid, answer in theirs.items():
        retrieve = answer.pop(RETRIEVE_URL)["Value"][0]
        assert urlsplit(ours[uid][RETRIEVE_URL]["Value"][0]).path == urlsplit(retrieve).path
        assert ours[uid][SPECIFIC_CHARACTER_SET]["Value"] == ["ISO_IR 192"]
        answer.pop(SPECIFIC_CHARACTER_SET, None)
        assert differences(answer, ours[uid]) == [], uid
    assert any("00080201" in answer for answer in theirs.values())  # the timezone is compared


def test_series_metadata_holds_every_attribute_orthanc_gives(orthanc_loaded, live_server):
    compared = 0
    for series in orthanc_loaded.get("/dicom-web/series").json():
        path = (
            f"/dicom-web/studies/{value(series, 'StudyInstanceUID')}/series/"
            f"{value(series, 'SeriesInstanceUID')}/metadata"
        )
        theirs = _by_uid(orthanc_loaded.get(path).json(), LEVELS["instances"])
        ours = _by_uid(requests.get(live_server + path, timeout=60).json(), LEVELS["instances"])
        assert ours.keys() == theirs.keys(), path
        for uid, metadata in theirs.items():
            assert differences(metadata, ours[uid]) == [], uid
            compared += len(metadata)
    assert compared > 5000


@pytest.fixture
def orthanc_client_of(orthanc):
    """Register a server's ``/dicom-web`` with the session Orthanc under a fresh name."""
    names = []

    def register(root: str) -> str:
        name = f"workbench{len(names)}"
        orthanc.add_dicomweb_server(name, f"{root}/dicom-web/")
        names.append(name)
        return name

    yield register
    for name in names:
        orthanc.delete(f"/dicom-web/servers/{name}")


def _uids(orthanc_answers: list[dict], tag: str) -> set[str]:
    """The UIDs of Orthanc's ``/qido`` answers (its own JSON: ``Value`` is the text)."""
    return {answer[tag]["Value"] for answer in orthanc_answers}


def test_orthanc_searches_our_server(orthanc, orthanc_client_of, live_server, corpus):
    name = orthanc_client_of(live_server)
    studies = orthanc.post(f"/dicom-web/servers/{name}/qido", json={"Uri": "/studies"})
    assert studies.status_code == 200, studies.text
    assert _uids(studies.json(), LEVELS["studies"]) == set(corpus.series_of_study)
    study = next(iter(corpus.series_of_study))
    series = orthanc.post(
        f"/dicom-web/servers/{name}/qido",
        json={"Uri": f"/studies/{study}/series", "Arguments": {"includefield": "all"}},
    ).json()
    assert _uids(series, LEVELS["series"]) == corpus.series_of_study[study]


def _pixels(data: bytes) -> np.ndarray:
    from io import BytesIO

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(BytesIO(data)).pixel_array


def _decodable_study(corpus) -> str:
    """A study with a file of compressed pixel data that pydicom decodes (a transcode)."""
    for sop, header in corpus.headers.items():
        syntax = header.file_meta.TransferSyntaxUID
        if "Rows" in header and syntax.is_compressed:
            try:
                _pixels(corpus.paths[sop].read_bytes())
            except Exception:  # a codec this machine lacks: try another
                continue
            return str(header.StudyInstanceUID)
    raise AssertionError("no decodable compressed study in the corpus")


def test_orthanc_retrieves_a_study_from_us(orthanc, orthanc_client_of, live_server, corpus):
    orthanc.clear()
    study = _decodable_study(corpus)
    name = orthanc_client_of(live_server)
    answer = orthanc.post(
        f"/dicom-web/servers/{name}/retrieve",
        json={"Resources": [{"Study": study}], "Synchronous": True},
    )
    assert answer.status_code == 200, answer.text
    expected = {sop for sop, header in corpus.headers.items() if header.StudyInstanceUID == study}
    stored = {}
    for instance in orthanc.get("/instances").json():
        sop = orthanc.get(f"/instances/{instance}/simplified-tags").json()["SOPInstanceUID"]
        stored[sop] = instance
    assert set(stored) == expected
    for sop, instance in stored.items():
        if "Rows" in corpus.headers[sop]:
            received = orthanc.get(f"/instances/{instance}/file").content
            original = _pixels(corpus.paths[sop].read_bytes())
            assert np.array_equal(_pixels(received), original), sop


def test_orthanc_stores_to_us_with_stow_rs(orthanc, orthanc_client_of, fresh_server, corpus):
    orthanc.clear()
    study = _decodable_study(corpus)
    sops = [sop for sop, header in corpus.headers.items() if header.StudyInstanceUID == study]
    for sop in sops:
        orthanc.upload(corpus.paths[sop])
    (orthanc_study,) = orthanc.get("/studies").json()
    name = orthanc_client_of(fresh_server.url)
    answer = orthanc.post(
        f"/dicom-web/servers/{name}/stow", json={"Resources": [orthanc_study], "Synchronous": True}
    )
    assert answer.status_code == 200, answer.text
    found = requests.get(f"{fresh_server.url}/dicom-web/studies/{study}/instances", timeout=30)
    assert {value(instance, "SOPInstanceUID") for instance in found.json()} == set(sops)
    for sop in sops:
        (instance,) = fresh_server.index.find("Instance", {"SOPInstanceUID": sop})
        stored = fresh_server.index.instance_path(instance).read_bytes()
        assert stored == corpus.paths[sop].read_bytes() or np.array_equal(
            _pixels(stored), _pixels(corpus.paths[sop].read_bytes())
        ), sop
