"""Running a :class:`~workbench.pacs.modification.Modification` over stored instances, as
Orthanc's modify and anonymize routes do.

- :func:`modified_file`: one instance, answered as a DICOM file and stored nowhere;
- :func:`modify_resource`: every instance of a patient, study or series, rewritten and stored
  as new resources (``ModifiedFrom`` / ``AnonymizedFrom`` metadata on each new resource naming
  its original), the originals deleted unless ``KeepSource``; the answer is Orthanc's
  (``ID``, ``Path``, ``PatientID``, ``Type``, counts). A job's progress advances per instance,
  so cancelling or pausing takes effect between two instances.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import UID

from .errors import BadRequestError, PacsError
from .modification import Modification
from .tags import LEVELS, PLURAL

#: Orthanc's counter of anonymized patients (``Anonymized<n>``).
ANONYMIZATION_SEQUENCE = "AnonymizationSequence"


def transfer_syntax_arg(body: dict[str, Any]) -> str | None:
    """``Transcode`` of a request body: a transfer syntax UID we know, or ``None``."""
    value = body.get("Transcode")
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequestError("String value expected in field: Transcode")
    if not UID(value).is_transfer_syntax:
        raise BadRequestError(f"Unknown transfer syntax UID: {value}")
    return value


def keep_source_arg(body: dict[str, Any]) -> bool:
    value = body.get("KeepSource", True)
    if not isinstance(value, bool):
        raise BadRequestError("Boolean value expected in field: KeepSource")
    return value


def rewrite(path: Path, modification: Modification, transcode: str | None,
            label: str) -> bytes:  # fmt: skip
    """The bytes of the stored file at ``path`` once modified (and transcoded).

    Raises
    ------
    BadRequestError
        The file cannot be read, modified or written as asked (names ``label``).
    """
    from .node.transcode import TranscodeError
    from .node.transcode import transcode as transcode_dataset

    try:
        ds = pydicom.dcmread(path)
        modification.apply(ds)
        if transcode:
            transcode_dataset(ds, transcode)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
    except PacsError:
        raise
    except TranscodeError as exc:
        raise BadRequestError(f"{label}: {exc}") from exc
    except Exception as exc:  # pydicom converts lazily: a damaged value surfaces here
        raise BadRequestError(f"{label} cannot be rewritten: {type(exc).__name__}: "
                              f"{exc}") from exc  # fmt: skip
    return buffer.getvalue()


def modified_file(index, instance_id: str, modification: Modification,
                  transcode: str | None = None) -> bytes:  # fmt: skip
    """One instance modified (or anonymized), as the bytes of a DICOM file; nothing stored."""
    return rewrite(index.instance_path(instance_id), modification, transcode,
                   f"Instance {instance_id}")  # fmt: skip


def modify_resource(index, level: str, public_id: str, modification: Modification, *,
                    keep_source: bool = True, transcode: str | None = None,
                    job=None) -> dict[str, Any]:  # fmt: skip
    """Store a modified copy of every instance under a resource; Orthanc's answer.

    Parameters
    ----------
    index : Index
        Where the resource is, and where the copy goes.
    level, public_id : str
        The resource (a patient, study or series; an instance is stored as a copy too).
    modification : Modification
        What to do; one object for the whole resource, so new UIDs stay consistent.
    keep_source : bool
        Keep the originals (Orthanc's ``KeepSource``, default true).
    transcode : str, optional
        Transfer syntax UID the copies are written in.
    job : Job, optional
        The job running this, told the progress after each instance.
    """
    files = index.instance_files(level, public_id)
    origin_name = "AnonymizedFrom" if modification.is_anonymization else "ModifiedFrom"
    result = None
    replaced: list[str] = []
    for done, (instance_id, path) in enumerate(files):
        data = rewrite(path, modification, transcode, f"Instance {instance_id}")
        result = index.ingest_bytes(data, origin="RestApi")
        new_ids = {"Patient": result.patient_id, "Study": result.study_id,
                   "Series": result.series_id, "Instance": result.instance_id}  # fmt: skip
        sources = {lv: index.ancestor("Instance", instance_id, lv) for lv in LEVELS[:-1]}
        sources["Instance"] = instance_id
        for lv, new_id in new_ids.items():
            if new_id != sources[lv]:
                index.put_server_metadata(lv, new_id, origin_name, sources[lv])
        if new_ids["Instance"] != instance_id:
            replaced.append(instance_id)
        if job is not None:
            job.step(done + 1, len(files))
    if result is None:
        raise BadRequestError(f"{level} {public_id} has no stored file to modify")
    if not keep_source:
        for instance_id in replaced:
            index.delete("Instance", instance_id)
    new_id = {"Patient": result.patient_id, "Study": result.study_id,
              "Series": result.series_id, "Instance": result.instance_id}[level]  # fmt: skip
    return {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "ID": new_id,
        "InstancesCount": len(files),
        "IsAnonymization": modification.is_anonymization,
        "Path": f"/{PLURAL[level]}/{new_id}",
        "PatientID": result.patient_id,
        "Type": level,
    }
