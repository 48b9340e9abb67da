"""Every real file modified and anonymized one instance at a time, by us and by a real Orthanc
1.10: the answered files differ from their source in the same way (vendor private tags,
nested sequences, odd-length values, big endian and compressed syntaxes), and they pass
dciodvfy no worse than their source."""

from __future__ import annotations

import io
import subprocess
import warnings

import pydicom
import pytest
import requests

from tests.data import dicom_files
from tests.pacs.modification_support import where_we_part
from tests.pacs.side_by_side import beside_orthanc
from tests.pacs.test_modify_anonymize_orthanc import changes
from tests.peers import require_tool
from workbench.pacs.anonymize import DEFAULT_VERSION

pytestmark = [pytest.mark.peers, pytest.mark.slow]

BODIES = {
    "anonymize": {},
    "anonymize-2008-private": {"DicomVersion": "2008", "KeepPrivateTags": True},
    "anonymize-keep-paths": {
        "DicomVersion": "2017c",
        "Keep": [
            "SeriesDescription",
            "ReferencedImageSequence",
            "PerFrameFunctionalGroupsSequence[*].FrameContentSequence",
        ],
        "Remove": ["Modality"],
    },
    "modify": {
        "RemovePrivateTags": True,
        "Replace": {
            "PatientName": "X^Y",
            "InstitutionName": "Ünïcode",
            "ReferencedImageSequence[*].ReferencedSOPClassUID": "1.2.4",
        },
        "Remove": ["StudyDate", "SourceImageSequence[0].ReferencedSOPClassUID"],
    },
    "modify-patient": {"Replace": {"PatientID": "P2"}, "Force": True, "Keep": ["SOPInstanceUID"]},
    # Nothing the IOD requires is asked away: what dciodvfy checks.
    "modify-valid": {
        "RemovePrivateTags": True,
        "Replace": {"PatientName": "Müller^Jürgen", "StudyDescription": "Ünïcode"},
    },
    # Text no Latin character set holds: written as UTF-8 (Orthanc drops what Latin-1 lacks).
    "modify-cjk": {"Replace": {"StudyDescription": "検査 Ünïcode"}},
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, orthanc, data_root):
    """Both servers holding every file of the corpus; the instances' IDs (the same on
    both)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # vendor files break VR length rules
        paths = dicom_files(data_root)
    for pair in beside_orthanc(tmp_path_factory.mktemp("corpus"), orthanc, paths):
        ids = requests.get(f"{pair['ours']}/instances", timeout=60).json()
        assert sorted(ids) == sorted(requests.get(f"{pair['orthanc']}/instances", timeout=60)
                                     .json())  # fmt: skip
        yield pair, ids


def _version(name: str) -> str | None:
    """The edition a body anonymizes with, ``None`` for a modification."""
    if not name.startswith("anonymize"):
        return None
    return BODIES[name].get("DicomVersion", DEFAULT_VERSION)


def _answered(url: str, instance: str, name: str) -> requests.Response:
    action = name.split("-")[0]
    return requests.post(f"{url}/instances/{instance}/{action}", json=BODIES[name], timeout=60)


@pytest.mark.parametrize("name", [name for name in BODIES if not name.endswith(("-valid", "-cjk"))])
def test_every_file_changed_as_orthanc(corpus, name):
    (pair, ids) = corpus
    different = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for instance in ids:
            source = pydicom.dcmread(io.BytesIO(requests.get(
                f"{pair['ours']}/instances/{instance}/file", timeout=60).content))  # fmt: skip
            found = {}
            for side, url in pair.items():
                answer = _answered(url, instance, name)
                assert answer.status_code == 200, (side, instance, answer.text[:300])
                found[side] = changes(source, pydicom.dcmread(io.BytesIO(answer.content)))
            diff = {path: (found["ours"].get(path), found["orthanc"].get(path))
                    for path in found["ours"].keys() | found["orthanc"].keys()
                    if found["ours"].get(path) != found["orthanc"].get(path)
                    and not where_we_part(path, source, _version(name))}  # fmt: skip
            if diff:
                different.append(f"{instance}: {sorted(diff.items())[:5]}")
    assert not different, "\n".join(different[:10])


def _errors(path) -> set[str]:
    """dciodvfy's error lines."""
    report = subprocess.run([require_tool("dciodvfy"), str(path)], capture_output=True,
                            text=True, errors="replace", timeout=120)  # fmt: skip
    lines = (report.stdout + report.stderr).splitlines()
    return {line for line in lines if line.startswith("Error")}


@pytest.fixture(scope="module")
def source_errors(corpus, tmp_path_factory) -> dict[str, set[str]]:
    """dciodvfy's errors on each stored file, once for the three bodies."""
    (pair, ids) = corpus
    folder = tmp_path_factory.mktemp("sources")
    found = {}
    for instance in ids:
        source = folder / f"{instance}.dcm"
        source.write_bytes(requests.get(f"{pair['ours']}/instances/{instance}/file",
                                        timeout=60).content)  # fmt: skip
        found[instance] = _errors(source)
    return found


@pytest.mark.parametrize("name", ["anonymize", "modify-valid", "modify-cjk"])
def test_rewritten_files_pass_dciodvfy_no_worse(corpus, source_errors, name, tmp_path):
    (pair, ids) = corpus
    worse = []
    for instance in ids:
        rewritten = tmp_path / "rewritten.dcm"
        answer = _answered(pair["ours"], instance, name)
        assert answer.status_code == 200, (instance, answer.text[:300])
        rewritten.write_bytes(answer.content)
        if name == "modify-cjk":
            assert pydicom.dcmread(rewritten).StudyDescription == "検査 Ünïcode"
        new = _errors(rewritten) - source_errors[instance]
        if new:
            worse.append(f"{instance}: {sorted(new)[:3]}")
    assert not worse, "\n".join(worse[:10])
