"""Split a study in two, or merge resources into a study, as Orthanc 1.10's
``/studies/{id}/split`` and ``/studies/{id}/merge`` do.

Both store modified copies of instances: a split gives the chosen series and instances a new
study (new StudyInstanceUID, the study and patient tags changed as asked); a merge gives the
chosen studies, series and instances the patient and study tags of the target study. Every
copied series gets a new SeriesInstanceUID and every instance a new SOPInstanceUID (as
Orthanc since 1.9.4), so copies never collide with their sources, which are deleted once
every copy is stored unless ``KeepSource``. Each instance is one step of the job.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from .errors import BadRequestError, PacsError
from .modules import module_keywords
from .tags import LEVELS, keyword_of

#: The tags a split may change or remove, and those a merge takes from the target.
STUDY_MODULES = module_keywords("Patient", "Study")
#: What the operation itself sets.
SET_BY_OPERATION = frozenset({"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"})


class NotInStudyError(PacsError):
    """A resource named for a split or merge that is not where it should be (Orthanc:
    404)."""

    http_status = 404


class OutOfModulesError(BadRequestError):
    """A split may only change the patient and study modules (Orthanc: "Parameter out of
    range")."""

    orthanc_status = 3


@dataclass
class Copy:
    """The instances to copy and how: the UIDs given so far and the tags to set."""

    replace: dict[str, Any] = field(default_factory=dict)
    remove: set[str] = field(default_factory=set)
    study_uid: str | None = None
    series_uids: dict[str, str] = field(default_factory=dict)

    def apply(self, ds: Dataset) -> None:
        for keyword in self.remove:
            if keyword in ds:
                delattr(ds, keyword)
        for keyword, value in self.replace.items():
            if isinstance(value, pydicom.DataElement):
                ds[value.tag] = value
            else:
                tag = tag_for_keyword(keyword)
                ds.add_new(tag, dictionary_VR(tag).split(" or ")[0], value)
        if self.study_uid:
            ds.StudyInstanceUID = self.study_uid
        source_series = str(ds.SeriesInstanceUID)
        ds.SeriesInstanceUID = self.series_uids.setdefault(source_series, generate_uid())
        ds.SOPInstanceUID = generate_uid()
        if getattr(ds, "file_meta", None) is not None:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def copy_instances(index, files: list[tuple[str, Path]], copy: Copy,
                   step: Callable[[int, int], None]) -> list[Any]:  # fmt: skip
    """Store a modified copy of each ``(instance ID, path)``; the ingest results."""
    results = []
    for done, (instance_id, path) in enumerate(files):
        step(done, len(files))
        try:
            ds = pydicom.dcmread(path)
            copy.apply(ds)
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
        except PacsError:
            raise
        except Exception as exc:  # pydicom converts lazily: a damaged value surfaces here
            raise BadRequestError(
                f"Instance {instance_id} cannot be copied: its stored file has an attribute "
                f"that cannot be written ({exc})"
            ) from exc
        results.append(index.ingest_bytes(buffer.getvalue(), origin="RestApi"))
    step(len(files), len(files))
    return results


def _delete_sources(index, instance_ids: list[str]) -> None:
    for instance_id in instance_ids:
        if index.exists("Instance", instance_id):
            index.delete("Instance", instance_id)


@dataclass(frozen=True)
class SplitRequest:
    """What to split off a study (``Series`` and ``Instances``) and how."""

    series: list[str]
    instances: list[str]
    replace: dict[str, str]
    remove: list[str]
    keep_source: bool


def split_study(index, study_id: str, request: SplitRequest,
                step: Callable[[int, int], None]) -> dict[str, Any]:  # fmt: skip
    """Copy the chosen series and instances of a study into a new study; the answer (and job
    content) as Orthanc's."""
    if not index.exists("Study", study_id):
        raise NotInStudyError(f"Cannot split unknown study {study_id}")
    chosen: dict[str, None] = {}
    for level, ids in (("Series", request.series), ("Instance", request.instances)):
        for public_id in ids:
            if not index.exists(level, public_id) or index.ancestor(
                    level, public_id, "Study") != study_id:  # fmt: skip
                raise NotInStudyError(f"This {level.lower()} does not belong to the study to "
                                      f"be split: {public_id}")  # fmt: skip
            chosen.update(dict.fromkeys(index.instances_of(level, public_id)))
    paths = dict(index.instance_files("Study", study_id))
    files = [(instance_id, paths[instance_id]) for instance_id in chosen if instance_id in paths]
    copy = Copy(replace=dict(request.replace), remove=set(request.remove),
                study_uid=generate_uid())  # fmt: skip
    results = copy_instances(index, files, copy, step)
    if not request.keep_source:
        _delete_sources(index, [instance_id for instance_id, _ in files])
    target = results[0].study_id if results else None
    return {"Description": "REST API", "FailedInstancesCount": 0, "InstancesCount": len(results),
            "TargetStudy": target, "TargetStudyUID": copy.study_uid}  # fmt: skip


def split_request(body: dict[str, Any]) -> SplitRequest:
    """A split body checked as Orthanc checks it."""
    if "Series" not in body and "Instances" not in body:
        raise BadRequestError('Both the "Series" and the "Instances" fields are missing')
    series = _strings(body, "Series")
    instances = _strings(body, "Instances")
    replace = body.get("Replace", {})
    if not isinstance(replace, dict) or not all(isinstance(v, str) for v in replace.values()):
        raise BadRequestError('"Replace" must map tags to text values')
    remove = _strings(body, "Remove")
    changed = {keyword_of_field(name): value for name, value in replace.items()}
    removed = [keyword_of_field(name) for name in remove]
    for keyword in [*changed, *removed]:
        if keyword not in STUDY_MODULES or keyword in SET_BY_OPERATION:
            tag = tag_for_keyword(keyword)
            raise OutOfModulesError(
                "Cannot modify the following tag while splitting a study (not in the "
                f"patient/study modules): {keyword} ({tag >> 16:04x},{tag & 0xFFFF:04x})"
            )
    return SplitRequest(series, instances, changed, removed, _boolean(body, "KeepSource"))


def merge_study(index, study_id: str, resources: list[str], keep_source: bool,
                step: Callable[[int, int], None]) -> dict[str, Any]:  # fmt: skip
    """Copy studies, series and instances into a study, with its patient and study tags;
    the answer (and job content) as Orthanc's."""
    if not index.exists("Study", study_id):
        raise NotInStudyError(f"Cannot merge into unknown study {study_id}")
    chosen: dict[str, None] = {}
    for public_id in resources:
        level = next((level for level in LEVELS if index.exists(level, public_id)), None)
        if level is None:
            raise NotInStudyError(f"Cannot find this resource: {public_id}")
        if level == "Patient":
            raise BadRequestError(f"{public_id} is a patient: merge its studies, series or "
                                  "instances")  # fmt: skip
        if index.ancestor(level, public_id, "Study") == study_id:
            raise NotInStudyError(f"Cannot merge a {level.lower()} into the same study: "
                                  f"{public_id}")  # fmt: skip
        chosen.update(dict.fromkeys(index.instances_of(level, public_id)))
    target_files = index.instance_files("Study", study_id, limit=1)
    target = pydicom.dcmread(target_files[0][1], stop_before_pixels=True)
    replace = {elem.keyword: elem for elem in target if elem.keyword in STUDY_MODULES}
    copy = Copy(replace=replace, remove=set(STUDY_MODULES))
    copy.study_uid = str(target.StudyInstanceUID)
    files = [(instance_id, index.instance_path(instance_id)) for instance_id in chosen]
    results = copy_instances(index, files, copy, step)
    if not keep_source:
        _delete_sources(index, list(chosen))
    return {"Description": "REST API", "FailedInstancesCount": 0, "InstancesCount": len(results),
            "TargetStudy": study_id}  # fmt: skip


def merge_request(body: dict[str, Any]) -> tuple[list[str], bool]:
    """``(Resources, KeepSource)`` of a merge body, checked as Orthanc checks them."""
    resources = body.get("Resources")
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise FieldTypeError("List of strings expected in field: Resources")
    return resources, _boolean(body, "KeepSource")


class FieldTypeError(BadRequestError):
    """A field of the wrong JSON type (Orthanc: "Bad file format")."""

    orthanc_status = 15


def _strings(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FieldTypeError(f"List of strings expected in field: {name}")
    return value


def _boolean(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise FieldTypeError(f"Boolean value expected in field: {name}")
    return value


def keyword_of_field(name: str) -> str:
    """The keyword a ``Replace``/``Remove`` entry names (keyword or ``gggg,eeee``)."""
    try:
        return keyword_of(name)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from exc
