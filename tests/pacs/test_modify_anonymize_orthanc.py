"""Modify and anonymize side by side with a real Orthanc 1.10 holding the same files: the same
status codes and JSON, the same attributes kept, removed, emptied or replaced (inside
sequences too), identifiers renewed where Orthanc renews them and consistently across a
study, the same ``ModifiedFrom``/``AnonymizedFrom`` metadata."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.datadict import dictionary_has_tag, dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from tests.data import dicom_files, real_path
from tests.pacs.modification_support import actions, probe_dataset, to_bytes, where_we_part
from tests.pacs.side_by_side import beside_orthanc
from workbench.pacs.anonymize import VERSIONS, required_attributes
from workbench.pacs.tags import PLURAL

pytestmark = pytest.mark.peers

CT = "series_ct_philips_ingenuity_5mm"
MOSAIC = "siemens_mr_mosaic_uncompressed"  # Siemens CSA private tags
ENHANCED = "enhanced_mr_siemens_xa10"  # nested functional groups
#: The value of each side that differs by nature: the product in DeidentificationMethod,
#: the n of Anonymized<n>.
_PRODUCT = re.compile(r"^(Orthanc \S+|workbench \S+) - ")
_ANONYMIZED = re.compile(r"^Anonymized\d+$")


def _referencing_instance(ct_files: list[Path], folder: Path) -> Path:
    """A derived image in a new series of the CT study, whose sequences reference the first
    CT image (ReferencedImageSequence, SourceImageSequence, ReferencedSeriesSequence), so
    that an anonymization must remap nested references consistently."""
    ds = pydicom.dcmread(ct_files[1])
    first = pydicom.dcmread(ct_files[0], stop_before_pixels=True)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 999
    reference = Dataset()
    reference.ReferencedSOPClassUID = first.SOPClassUID
    reference.ReferencedSOPInstanceUID = first.SOPInstanceUID
    ds.ReferencedImageSequence = Sequence([reference])
    ds.SourceImageSequence = Sequence([Dataset()])
    ds.SourceImageSequence[0].update(reference)
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.StudyInstanceUID = first.StudyInstanceUID
    series.InstitutionName = "Nested Hospital"  # removed inside sequences too
    ds.ReferencedSeriesSequence = Sequence([series])
    path = folder / "referencing.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, list[Path]]:
    ct = dicom_files(real_path(CT))[:6]
    folder = tmp_path_factory.mktemp("referencing")
    return {"ct": [*ct, _referencing_instance(ct, folder)],
            "mosaic": dicom_files(real_path(MOSAIC)),
            "enhanced": dicom_files(real_path(ENHANCED))[:2]}  # fmt: skip


@pytest.fixture(scope="module")
def both(tmp_path_factory, orthanc, files):
    """``{"ours": url, "orthanc": url}`` holding the same files."""
    every = [path for group in files.values() for path in group]
    yield from beside_orthanc(tmp_path_factory.mktemp("modify"), orthanc, every)


def post(url: str, path: str, body) -> requests.Response:
    if isinstance(body, (str, bytes)):
        return requests.post(url + path, data=body, timeout=120)
    return requests.post(url + path, json=body, timeout=120)


def get(url: str, path: str):
    """The JSON, text or bytes at ``path``."""
    answer = requests.get(url + path, timeout=60)
    answer.raise_for_status()
    kind = answer.headers.get("content-type", "")
    if "json" in kind:
        return answer.json()
    return answer.text if kind.startswith("text/") else answer.content


def file_of(url: str, instance: str) -> Dataset:
    return pydicom.dcmread(io.BytesIO(get(url, f"/instances/{instance}/file")))


def _resource_of(url: str, level_path: str, uid_keyword: str, files: list[Path]) -> str:
    uid = getattr(pydicom.dcmread(files[0], stop_before_pixels=True), uid_keyword)
    (found,) = [r for r in requests.post(f"{url}/tools/lookup", data=uid, timeout=30).json()
                if r["Path"].startswith(level_path)]  # fmt: skip
    return found["ID"]


def study_of(url: str, files: list[Path]) -> str:
    return _resource_of(url, "/studies", "StudyInstanceUID", files)


def series_of(url: str, files: list[Path]) -> str:
    return _resource_of(url, "/series", "SeriesInstanceUID", files)


# -- what a modification did ----------------------------------------------------------------


def _flat(ds: Dataset, prefix: tuple = ()) -> dict[tuple, object]:
    """Every element by its path (tags and item indexes), sequences by their length; group
    lengths (gggg,0000) aside: retired, Orthanc recomputes them, pydicom writes none."""
    found: dict[tuple, object] = {}
    for elem in ds:
        if elem.tag.element == 0:
            continue
        path = (*prefix, int(elem.tag))
        if elem.VR == "SQ":
            found[path] = f"{len(elem.value)} items"
            for number, item in enumerate(elem.value):
                found.update(_flat(item, (*path, number)))
        elif elem.tag != 0x7FE00010:
            found[path] = elem.value
    return found


def changes(before: Dataset, after: Dataset) -> dict[tuple, str]:
    """What became of each element (file meta aside): removed, emptied, a new identifier,
    a new value, added; elements left alone are absent."""
    old, new = _flat(before), _flat(after)
    found = {}
    for path, value in old.items():
        if path not in new:
            found[path] = "removed"
        elif new[path] != value:
            found[path] = _describe(path[-1], new[path])
    for path in new.keys() - old.keys():
        found[path] = "added " + _describe(path[-1], new[path])
    return found


def _describe(tag: int, value) -> str:
    if value in (None, "", b""):
        return "emptied"
    text = str(value)
    if dictionary_has_tag(tag) and dictionary_VR(tag) == "UI":
        return "new UID"
    if tag == 0x00100020:
        return "new PatientID"
    if _ANONYMIZED.match(text):
        return "Anonymized<n>"
    return "= " + _PRODUCT.sub("<product> - ", text)


def sources(url: str, level: str, resource: str, origin: str) -> dict[str, str]:
    """New instance → its original, through the instances' ``origin`` metadata (instances
    without it are originals)."""
    found = {}
    for instance in get(url, f"/{level}/{resource}/instances"):
        names = get(url, f"/instances/{instance['ID']}/metadata?expand")
        if origin in names:
            found[instance["ID"]] = names[origin]
    return found


def _root(url: str, instance: str) -> str:
    """The instance uploaded at first that ``instance`` was modified from (through copies
    of copies): the same ID on both sides."""
    while True:
        names = get(url, f"/instances/{instance}/metadata?expand")
        origin = names.get("ModifiedFrom") or names.get("AnonymizedFrom")
        if origin is None:
            return instance
        instance = origin


def compare_copies(both, level: str, answers: dict, origin: str) -> dict[str, list]:
    """Check each side made the same changes to each original instance (of every copy of it
    under the new resource); return each side's new datasets."""
    per_side, datasets = {}, {}
    for side, answer in answers.items():
        url = both[side]
        found, datasets[side] = {}, []
        for new, original in sources(url, level, answer["ID"], origin).items():
            after = file_of(url, new)
            found.setdefault(_root(url, original), []).append(
                repr(sorted(changes(file_of(url, original), after).items()))
            )
            datasets[side].append(after)
        per_side[side] = found
    assert per_side["ours"].keys() == per_side["orthanc"].keys()
    for original, theirs in per_side["orthanc"].items():
        assert sorted(per_side["ours"][original]) == sorted(theirs), original
    return datasets


def metadata_levels(url: str, answer: dict, origin: str) -> list[str]:
    """Which levels above a new instance of the answer carry ``origin``."""
    copies = sources(url, PLURAL[answer["Type"]], answer["ID"], origin)
    if not copies:
        return []
    instance = sorted(copies)[0]
    levels = {"instances": instance}
    for level, path in (("series", "series"), ("studies", "study"), ("patients", "patient")):
        levels[level] = get(url, f"/instances/{instance}/{path}")["ID"]
    return [lv for lv, rid in levels.items() if origin in get(url, f"/{lv}/{rid}/metadata")]


def same_answers(mine: requests.Response, theirs: requests.Response) -> None:
    assert mine.status_code == theirs.status_code, (mine.text, theirs.text)
    assert set(mine.json()) == set(theirs.json())
    for key in ("Type", "IsAnonymization", "InstancesCount", "FailedInstancesCount",
                "Description"):  # fmt: skip
        assert mine.json()[key] == theirs.json()[key], key


# -- the profile -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_profile_editions_act_as_orthancs(both, version):
    """Every attribute of the dictionary: removed, emptied, renewed or left alone as Orthanc
    does for that edition (this also checks ``deidentification.tsv`` is Orthanc's)."""
    probe = probe_dataset()
    data = to_bytes(probe)
    found = {}
    for side, url in both.items():
        instance = post(url, "/instances", data).json()["ID"]
        answer = post(url, f"/instances/{instance}/anonymize", {"DicomVersion": version})
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/dicom"
        found[side] = actions(probe, pydicom.dcmread(io.BytesIO(answer.content)))
        requests.delete(f"{url}/instances/{instance}", timeout=30)
    different = {
        f"{tag:08X}": (found["ours"][tag], theirs)
        for tag, theirs in found["orthanc"].items()
        if found["ours"][tag] != theirs and not where_we_part((tag,), probe, version)
    }
    assert not different
    # Where we part, the IOD's required attributes stay, with a dummy value or empty.
    for tag in found["ours"].keys() & required_attributes(probe).keys():
        if where_we_part((tag,), probe, version) and found["orthanc"][tag] != "-":
            assert found["ours"][tag] in (
                "Z",
                "?'ANONYMIZED'",
                "?'19000101'",
                "?'000000'",
                "?'0'",
                "?0",
            ), (f"{tag:08X}", found["ours"][tag])


# -- anonymize -------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    {},
    {"DicomVersion": "2017c", "KeepPrivateTags": True},
    {"Keep": ["StudyDescription", "SeriesDescription", "InstitutionName"],
     "Replace": {"PatientName": "RESEARCH^ONE", "0008,0080": "Trial site"},
     "Remove": ["Manufacturer", "ImageType"]},
], ids=["profile", "2017c-private", "keep-replace-remove"])  # fmt: skip
def test_anonymize_study_as_orthanc(both, files, body):
    answers, responses = {}, {}
    for side, url in both.items():
        responses[side] = post(url, f"/studies/{study_of(url, files['ct'])}/anonymize", body)
        answers[side] = responses[side].json()
    same_answers(responses["ours"], responses["orthanc"])
    assert answers["ours"]["Type"] == "Study" and answers["ours"]["IsAnonymization"] is True
    datasets = compare_copies(both, "studies", answers, "AnonymizedFrom")
    assert (metadata_levels(both["ours"], answers["ours"], "AnonymizedFrom")
            == metadata_levels(both["orthanc"], answers["orthanc"], "AnonymizedFrom")
            == ["instances", "series", "studies", "patients"])  # fmt: skip
    for side, copies in datasets.items():
        _check_consistent(copies, side, profile_only=not body)


def _check_consistent(copies: list[Dataset], side: str, profile_only: bool) -> None:
    """One new study, one patient; the references of the derived image name the new UIDs of
    the image and series it derives from."""
    assert len({str(ds.StudyInstanceUID) for ds in copies}) == 1, side
    assert len({str(ds.PatientID) for ds in copies}) == 1, side
    (derived,) = [ds for ds in copies if ds.get("SeriesNumber") == 999]
    first_series = {str(ds.SeriesInstanceUID) for ds in copies} - {str(derived.SeriesInstanceUID)}
    sops = {str(ds.SOPInstanceUID) for ds in copies}
    for sequence in ("ReferencedImageSequence", "SourceImageSequence"):
        if sequence in derived:
            assert str(derived[sequence][0].ReferencedSOPInstanceUID) in sops, (side, sequence)
    nested = derived.ReferencedSeriesSequence[0]
    assert {str(nested.SeriesInstanceUID)} == first_series, side
    assert str(nested.StudyInstanceUID) == str(derived.StudyInstanceUID), side
    if profile_only:  # removed inside sequences too (a Replace of it leaves it there)
        assert "InstitutionName" not in nested, side


def test_anonymize_instance_answers_the_file(both, files):
    found = {}
    for side, url in both.items():
        before = get(url, "/instances")
        instance = _resource_of(url, "/instances", "SOPInstanceUID", files["mosaic"])
        answer = post(url, f"/instances/{instance}/anonymize", {})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/dicom"
        assert get(url, "/instances") == before  # nothing stored
        found[side] = changes(file_of(url, instance), pydicom.dcmread(io.BytesIO(answer.content)))
    assert found["ours"] == found["orthanc"]
    assert any(tag & 0x10000 for path in found["ours"] for tag in path[:1])  # private removed


# -- modify ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "group", "body"), [
    ("series", "ct", {"Replace": {"SeriesDescription": "Modified", "InstitutionName": "Elsewhere"},
                      "Remove": ["StationName"]}),
    ("studies", "enhanced", {"Replace": {"StudyDescription": "Müller study"},
                             "RemovePrivateTags": True}),
    ("patients", "mosaic", {"Replace": {"PatientID": "NEW-ID", "PatientName": "NEW^NAME"},
                            "Force": True}),
    ("studies", "ct", {"Keep": ["StudyInstanceUID"], "Replace": {"AccessionNumber": "A1"},
                       "Force": True, "KeepSource": True}),
], ids=["series", "study-private", "patient", "study-keep-uid"])  # fmt: skip
def test_modify_as_orthanc(both, files, level, group, body):
    answers, responses = {}, {}
    for side, url in both.items():
        resource = {"series": series_of, "studies": study_of}.get(level)
        if resource is None:
            study = study_of(url, files[group])
            resource_id = get(url, f"/studies/{study}")["ParentPatient"]
        else:
            resource_id = resource(url, files[group])
        responses[side] = post(url, f"/{level}/{resource_id}/modify", body)
        answers[side] = responses[side].json()
    same_answers(responses["ours"], responses["orthanc"])
    assert answers["ours"]["IsAnonymization"] is False
    assert answers["ours"]["Path"] == f"/{level}/{answers['ours']['ID']}"
    if "Keep" not in body:  # one new resource holds every copy
        copies = get(both["ours"], f"{answers['ours']['Path']}/instances")
        assert len(copies) == answers["ours"]["InstancesCount"]
    compare_copies(both, level, answers, "ModifiedFrom")
    assert metadata_levels(both["ours"], answers["ours"], "ModifiedFrom") == metadata_levels(
        both["orthanc"], answers["orthanc"], "ModifiedFrom"
    )


def test_modify_instance_answers_the_file(both, files):
    body = {"Replace": {"ImageComments": "checked", "PatientID": "OTHER"}, "Force": True}
    found = {}
    for side, url in both.items():
        before = get(url, "/instances")
        instance = _resource_of(url, "/instances", "SOPInstanceUID", files["ct"])
        answer = post(url, f"/instances/{instance}/modify", body)
        assert answer.headers["content-type"] == "application/dicom"
        assert get(url, "/instances") == before
        found[side] = changes(file_of(url, instance), pydicom.dcmread(io.BytesIO(answer.content)))
    assert found["ours"] == found["orthanc"]
    # PatientID replaced: the instance moves to a new study and series (Orthanc's level).
    assert found["ours"][(0x0020000D,)] == found["ours"][(0x0020000E,)] == "new UID"


EXPLICIT = "1.2.840.10008.1.2.1"  # how the mosaic files are stored


@pytest.mark.parametrize(
    ("syntax", "ours", "orthancs"),
    [
        ("1.2.840.10008.1.2", "1.2.840.10008.1.2", "1.2.840.10008.1.2"),
        # Each keeps the stored syntax when it cannot write the one asked: Orthanc 1.10
        # writes no RLE, we write no big endian.
        ("1.2.840.10008.1.2.5", "1.2.840.10008.1.2.5", EXPLICIT),
        ("1.2.840.10008.1.2.2", EXPLICIT, "1.2.840.10008.1.2.2"),
    ],
    ids=["implicit", "rle", "big-endian"],
)
def test_transcode_as_orthanc(both, files, syntax, ours, orthancs):
    body = {"Transcode": syntax, "Replace": {"SeriesDescription": "transcoded"}}
    syntaxes = {}
    for side, url in both.items():
        answer = post(url, f"/series/{series_of(url, files['mosaic'])}/modify", body)
        assert answer.status_code == 200, answer.text
        instance = get(url, f"{answer.json()['Path']}/instances")[0]["ID"]
        syntaxes[side] = file_of(url, instance).file_meta.TransferSyntaxUID
    assert syntaxes == {"ours": ours, "orthanc": orthancs}


def test_transcode_of_an_answered_file_says_why_not(both, files):
    url = both["ours"]
    instance = _resource_of(url, "/instances", "SOPInstanceUID", files["mosaic"])
    answer = post(url, f"/instances/{instance}/modify", {"Transcode": "1.2.840.10008.1.2.2"})
    assert answer.status_code == 400 and "Big Endian" in answer.json()["Details"]


def test_keep_source_false_deletes_the_originals(both, files):
    for url in both.values():
        series = series_of(url, files["enhanced"])
        instances = get(url, f"/series/{series}")["Instances"]
        answer = post(
            url,
            f"/series/{series}/modify",
            {"Replace": {"SeriesDescription": "moved"}, "KeepSource": False},
        ).json()
        assert requests.get(f"{url}/series/{series}", timeout=30).status_code == 404
        assert len(get(url, f"{answer['Path']}/instances")) == len(instances)
        assert get(url, f"/series/{answer['ID']}/metadata/ModifiedFrom") == series


# -- refused ---------------------------------------------------------------------------------


BAD_BODIES = [
    ("patients", "modify", {"Replace": {"PatientName": "x"}}),
    ("series", "modify", {"Replace": {"StudyInstanceUID": "1.2"}, "Force": True}),
    ("studies", "modify", {"Replace": {"StudyInstanceUID": "1.2"}}),
    ("studies", "modify", {"Keep": ["SeriesInstanceUID"]}),
    ("studies", "modify", {"Remove": ["PatientID"]}),
    ("series", "modify", {"Replace": {"StudyDescription": 3}}),
    ("series", "modify", {"Replace": []}),
    ("series", "modify", {"Remove": "StudyDescription"}),
    ("series", "modify", {"Remove": [3]}),
    ("series", "modify", {"Force": "yes"}),
    ("series", "modify", "not json"),
    ("series", "modify", "[]"),
    ("series", "modify", {"Transcode": "1.2.3"}),
    ("series", "modify", {"Transcode": 3}),
    ("series", "modify", {"KeepSource": "no"}),
    ("series", "modify", {"PrivateCreator": 3}),
    ("instances", "modify", {"Replace": {"Rows": "abc"}}),
    ("instances", "modify", {"Remove": ["SeriesInstanceUID"], "Force": True}),
    ("instances", "anonymize", {"DicomVersion": "2023b"}),
    ("instances", "anonymize", {"DicomVersion": 3}),
    ("instances", "anonymize", {"KeepPrivateTags": "x"}),
    ("instances", "anonymize", {"Keep": ["PatientID"]}),
    ("studies", "anonymize", {"Replace": {"PatientID": "a"}}),
]


@pytest.mark.parametrize(("level", "action", "body"), BAD_BODIES)
def test_bad_bodies_refused_as_orthanc(both, files, level, action, body):
    statuses = {}
    for side, url in both.items():
        study = study_of(url, files["ct"])
        resource = {
            "studies": study,
            "patients": get(url, f"/studies/{study}")["ParentPatient"],
            "series": get(url, f"/studies/{study}")["Series"][0],
            "instances": get(url, f"/studies/{study}/instances")[0]["ID"],
        }[level]
        answer = post(url, f"/{level}/{resource}/{action}", body)
        statuses[side] = answer.status_code
        if side == "ours":
            assert answer.json()["HttpStatus"] == answer.status_code
            assert answer.json()["Details"], answer.text
    assert statuses["ours"] == statuses["orthanc"] == 400


def test_unknown_tag_and_resource(both):
    """Orthanc answers an unknown tag name with a 500; we say which name, with a 400."""
    study = get(both["ours"], "/studies")[0]
    answer = post(both["ours"], f"/studies/{study}/modify", {"Remove": ["NoSuchKeyword"]})
    assert answer.status_code == 400 and "NoSuchKeyword" in answer.json()["Details"]
    for url in both.values():
        assert post(url, "/series/unknown/modify", {}).status_code == 404
        assert post(url, "/instances/unknown/anonymize", {}).status_code == 404


# -- jobs ------------------------------------------------------------------------------------


def _finished(url: str, job_id: str) -> dict:
    deadline = time.monotonic() + 120
    while True:
        job = get(url, f"/jobs/{job_id}")
        if job["State"] not in ("Pending", "Running") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


@pytest.mark.parametrize(("action", "body"), [
    ("modify", {"Replace": {"StudyDescription": "As a job"}, "Priority": 3}),
    ("anonymize", {"DicomVersion": "2017c"}),
])  # fmt: skip
def test_asynchronous_jobs_as_orthanc(both, files, action, body):
    jobs = {}
    for side, url in both.items():
        answer = post(url, f"/studies/{study_of(url, files['enhanced'])}/{action}",
                      {**body, "Asynchronous": True})  # fmt: skip
        assert answer.status_code == 200 and set(answer.json()) == {"ID", "Path"}
        jobs[side] = _finished(url, answer.json()["ID"])
    mine, theirs = jobs["ours"], jobs["orthanc"]
    assert mine["State"] == theirs["State"] == "Success"
    assert mine["Type"] == theirs["Type"] == "ResourceModification"
    assert mine["Priority"] == theirs["Priority"] == body.get("Priority", 0)
    assert set(mine["Content"]) == set(theirs["Content"])
    for key in ("Type", "IsAnonymization", "InstancesCount", "FailedInstancesCount"):
        assert mine["Content"][key] == theirs["Content"][key], key
    assert get(both["ours"], mine["Content"]["Path"])["ID"] == mine["Content"]["ID"]


# -- pyorthanc -------------------------------------------------------------------------------


def test_pyorthanc_drives_modify_and_anonymize(fresh_server, files):
    """pyorthanc, the Python client of Orthanc, used as its documentation shows (on a server
    of its own: the other tests keep ours and Orthanc holding the same)."""
    from pyorthanc import Instance, Orthanc, Series, Study

    url = fresh_server.url
    for path in [path for group in files.values() for path in group]:
        assert post(url, "/instances", path.read_bytes()).status_code == 200
    both = {"ours": url}
    client = Orthanc(url)
    study = Study(study_of(both["ours"], files["ct"]), client)
    modified = study.modify(replace={"StudyDescription": "pyorthanc"})
    assert modified.id_ != study.id_ and modified.description == "pyorthanc"
    assert modified.uid != study.uid

    kept = study.modify(replace={"StudyDescription": "kept"}, keep=["StudyInstanceUID"],
                        force=True)  # fmt: skip
    assert kept.uid == study.uid

    anonymized = Series(series_of(both["ours"], files["mosaic"]), client).anonymize(
        keep=["SeriesDescription"], replace={"PatientName": "PY^ORTHANC"})  # fmt: skip
    assert anonymized.parent_patient.name == "PY^ORTHANC"

    job = study.anonymize_as_job(dicom_version="2008")
    job.wait_until_completion()
    assert job.state.value == "Success" and job.type == "ResourceModification"
    assert Study(job.content["ID"], client).patient_information["PatientName"].startswith(
        "Anonymized")  # fmt: skip

    job = Study(study_of(both["ours"], files["enhanced"]), client).modify_as_job(
        replace={"InstitutionName": "Job"}, remove_private_tags=True)  # fmt: skip
    job.wait_until_completion()
    assert job.state.value == "Success"
    new_series = Study(job.content["ID"], client).series[0]
    assert new_series.instances[0].get_main_information()["MainDicomTags"]

    instance = Instance(study.series[0].instances[0].id_, client)
    data = instance.anonymize(dicom_version="2021b")
    assert pydicom.dcmread(io.BytesIO(data)).PatientIdentityRemoved == "YES"
    data = instance.modify(replace={"ImageComments": "from pyorthanc"})
    assert pydicom.dcmread(io.BytesIO(data)).ImageComments == "from pyorthanc"


def test_private_creator(both, files):
    """A private tag added under ``PrivateCreator`` holds the same value as Orthanc's; we
    also write the creator (Orthanc 1.10 leaves the tag without one, which PS3.5 7.8.1 does
    not allow), and without a creator we refuse, saying so, rather than write an orphan."""
    body = {"Replace": {"0009,1001": "hello", "SeriesDescription": "private"},
            "PrivateCreator": "WORKBENCH"}  # fmt: skip
    found = {}
    for side, url in both.items():
        instance = _resource_of(url, "/instances", "SOPInstanceUID", files["mosaic"])
        answer = post(url, f"/instances/{instance}/modify", body)
        assert answer.status_code == 200
        found[side] = pydicom.dcmread(io.BytesIO(answer.content))
    assert found["ours"][0x00091001].value == found["orthanc"][0x00091001].value == b"hello\0"
    assert found["ours"][0x00090010].value == "WORKBENCH"
    assert 0x00090010 not in found["orthanc"]
    # An existing private tag is replaced without a creator, as Orthanc does.
    existing = {"Replace": {"0029,1008": "CHANGED"}}
    for side, url in both.items():
        instance = _resource_of(url, "/instances", "SOPInstanceUID", files["mosaic"])
        answer = post(url, f"/instances/{instance}/modify", existing)
        assert answer.status_code == 200, (side, answer.text)
        found[side] = pydicom.dcmread(io.BytesIO(answer.content))
    assert found["ours"][0x00291008].value == found["orthanc"][0x00291008].value
    refused = post(both["ours"], f"/instances/{instance}/modify",
                   {"Replace": {"0009,1001": "hello"}})  # fmt: skip
    assert refused.status_code == 400 and "PrivateCreator" in refused.json()["Details"]


@pytest.mark.parametrize(("tool", "body"), [
    ("bulk-modify", {"Replace": {"InstitutionName": "Bulk"}}),
    ("bulk-modify", {"Replace": {"StudyDescription": "Bulk"}, "Level": "Study"}),
    ("bulk-anonymize", {"DicomVersion": "2017c"}),
])  # fmt: skip
def test_bulk_as_orthanc(both, files, tool, body):
    """Orthanc 1.9.4's bulk routes: several resources of any level, one modification."""
    answers = {}
    for side, url in both.items():
        instance = _resource_of(url, "/instances", "SOPInstanceUID", files["mosaic"])
        resources = [study_of(url, files["ct"]), instance]
        answer = post(url, f"/tools/{tool}", {**body, "Resources": resources})
        assert answer.status_code == 200, answer.text
        answers[side] = answer.json()
    mine, theirs = answers["ours"], answers["orthanc"]
    assert set(mine) == set(theirs)
    for key in ("InstancesCount", "FailedInstancesCount", "IsAnonymization", "Description"):
        assert mine[key] == theirs[key], key
    assert [r["Type"] for r in mine["Resources"]] == [r["Type"] for r in theirs["Resources"]]
    for resource in mine["Resources"]:
        assert get(both["ours"], resource["Path"])["ID"] == resource["ID"]


def test_bulk_refusals(both):
    for url in both.values():
        assert post(url, "/tools/bulk-modify", {"Resources": ["nope"]}).status_code == 404
        assert post(url, "/tools/bulk-anonymize", {"Resources": "nope"}).status_code == 400
