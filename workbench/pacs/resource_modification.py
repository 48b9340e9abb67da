"""Running a :class:`~workbench.pacs.modification.Modification` over stored instances, as
Orthanc's modify and anonymize routes do.

- :func:`modified_file`: one instance, answered as a DICOM file and stored nowhere;
- :func:`modify_resource` (:func:`modify_resources` for a list of resources, Orthanc's
  ``/tools/bulk-modify``): every instance of a patient, study or series, rewritten and stored
  as new resources (``ModifiedFrom`` / ``AnonymizedFrom`` metadata on each new resource naming
  its original), the originals deleted unless ``KeepSource``; the answer is Orthanc's
  (``ID``, ``Path``, ``PatientID``, ``Type``, counts). A job's progress advances per instance,
  so cancelling or pausing takes effect between two instances. An instance that cannot be
  transcoded keeps its transfer syntax there, as in Orthanc (answered as a file, it is a 400).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import UID

from .errors import BadRequestError, PacsError
from .modification import Modification
from .results import IngestResult
from .tags import LEVELS, PLURAL

LOGGER = logging.getLogger("workbench.pacs.modify")

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


def boolean_arg(body: dict[str, Any], name: str, default: bool) -> bool:
    """A Boolean field of a request body (``KeepSource``, ``Permissive``)."""
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise BadRequestError(f"Boolean value expected in field: {name}")
    return value


def rewrite(path: Path, modification: Modification, transcode: str | None, label: str,
            *, keep_syntax_if_needed: bool = False) -> bytes:  # fmt: skip
    """The bytes of the stored file at ``path`` once modified (and transcoded).

    Parameters
    ----------
    keep_syntax_if_needed : bool
        When the file cannot be transcoded, keep its transfer syntax (with a warning) rather
        than fail, as Orthanc does when it stores modified copies.

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
        _pad_odd_bytes(ds)
        modified = _written(ds)
        if not transcode:
            return modified
        transcode_dataset(ds, transcode)
        return _written(ds)
    except PacsError:
        raise
    except TranscodeError as exc:
        if keep_syntax_if_needed:
            LOGGER.warning("%s kept in its transfer syntax: %s", label, exc)
            return modified
        raise BadRequestError(f"{label}: {exc}") from exc
    except Exception as exc:  # pydicom converts lazily: a damaged value surfaces here
        raise BadRequestError(f"{label} cannot be rewritten: {type(exc).__name__}: "
                              f"{exc}") from exc  # fmt: skip


def _written(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def modified_file(index, instance_id: str, modification: Modification,
                  transcode: str | None = None) -> bytes:  # fmt: skip
    """One instance modified (or anonymized), as the bytes of a DICOM file; nothing stored."""
    return rewrite(index.instance_path(instance_id), modification, transcode,
                   f"Instance {instance_id}")  # fmt: skip


@dataclass
class Options:
    """How copies are stored (Orthanc's ``KeepSource``, ``Transcode``, ``Permissive``).

    Attributes
    ----------
    keep_source : bool
        Keep the originals (default true).
    transcode : str, optional
        Transfer syntax UID the copies are written in.
    permissive : bool
        Skip the instances that cannot be rewritten (counted in ``FailedInstancesCount``)
        instead of failing.
    """

    keep_source: bool = True
    transcode: str | None = None
    permissive: bool = False

    @classmethod
    def of(cls, body: dict[str, Any]) -> Options:
        """The options of a request body, or a 400 naming the field of the wrong type."""
        return cls(boolean_arg(body, "KeepSource", True), transfer_syntax_arg(body),
                   boolean_arg(body, "Permissive", False))  # fmt: skip


def store_copies(index, files: list[tuple[str, Path]], modification: Modification,
                 options: Options, job=None) -> tuple[list[IngestResult], int]:  # fmt: skip
    """Rewrite and store the instances of ``files`` (``(instance ID, path)``) with one
    modification (so new UIDs stay consistent across them); each new resource records
    where it comes from. Returns the stored copies and the count of instances skipped
    (``options.permissive``); a job is told the progress after each instance."""
    origin_name = "AnonymizedFrom" if modification.is_anonymization else "ModifiedFrom"
    stored: list[IngestResult] = []
    replaced: list[str] = []
    failed = 0
    for done, (instance_id, path) in enumerate(files):
        try:
            data = rewrite(path, modification, options.transcode, f"Instance {instance_id}",
                           keep_syntax_if_needed=True)  # fmt: skip
            result = index.ingest_bytes(data, origin="RestApi")
        except BadRequestError:
            if not options.permissive:
                raise
            failed += 1  # Orthanc's Permissive: counted, and the others go on
            continue
        stored.append(result)
        sources = {lv: index.ancestor("Instance", instance_id, lv) for lv in LEVELS[:-1]}
        sources["Instance"] = instance_id
        for lv, new_id in _ids_of(result).items():
            if new_id != sources[lv]:
                index.put_server_metadata(lv, new_id, origin_name, sources[lv])
        if result.instance_id != instance_id:
            replaced.append(instance_id)
        if job is not None:
            job.step(done + 1, len(files))
    if not options.keep_source:
        for instance_id in replaced:
            index.delete("Instance", instance_id)
    return stored, failed


def _ids_of(result: IngestResult) -> dict[str, str]:
    return {"Patient": result.patient_id, "Study": result.study_id,
            "Series": result.series_id, "Instance": result.instance_id}  # fmt: skip


def _counts(modification: Modification, files: list, failed: int) -> dict[str, Any]:
    return {
        "Description": "REST API",
        "FailedInstancesCount": failed,
        "InstancesCount": len(files),
        "IsAnonymization": modification.is_anonymization,
    }


def modify_resource(index, level: str, public_id: str, modification: Modification,
                    options: Options, job=None) -> dict[str, Any]:  # fmt: skip
    """Store a modified copy of every instance under a resource; Orthanc's answer
    (``ID``, ``Path``, ``PatientID``, ``Type`` of the copy, counts).

    Parameters
    ----------
    index : Index
        Where the resource is, and where the copy goes.
    level, public_id : str
        The resource (a patient, study or series; an instance is stored as a copy too).
    modification : Modification
        What to do; one object for the whole resource, so new UIDs stay consistent.
    options : Options
        ``KeepSource``, ``Transcode``, ``Permissive``.
    job : Job, optional
        The job running this, told the progress after each instance.
    """
    files = index.instance_files(level, public_id)
    stored, failed = store_copies(index, files, modification, options, job)
    if not stored:
        raise BadRequestError(f"{level} {public_id} has no stored file that could be modified")
    last = stored[-1]
    new_id = _ids_of(last)[level]
    return {**_counts(modification, files, failed), "ID": new_id,
            "Path": f"/{PLURAL[level]}/{new_id}", "PatientID": last.patient_id,
            "Type": level}  # fmt: skip


def modify_resources(index, resources: list[tuple[str, str]], modification: Modification,
                     options: Options, job=None) -> dict[str, Any]:  # fmt: skip
    """Orthanc's ``/tools/bulk-modify`` and ``/tools/bulk-anonymize``: every instance under
    the ``(level, ID)`` resources rewritten with one modification; the answer lists every
    resource the copies are in (instances first, then series, studies, patients)."""
    files: dict[str, Path] = {}
    for level, public_id in resources:
        files.update(index.instance_files(level, public_id))
    stored, failed = store_copies(index, list(files.items()), modification, options, job)
    touched = []
    for level in reversed(LEVELS):
        ids = sorted({_ids_of(result)[level] for result in stored})
        touched += [{"ID": i, "Path": f"/{PLURAL[level]}/{i}", "Type": level} for i in ids]
    return {**_counts(modification, list(files), failed), "Resources": touched}


def _pad_odd_bytes(ds: pydicom.Dataset) -> None:
    """Give odd-length byte values (found in vendor files) the even length the standard
    asks for, as Orthanc's writer does: a NUL, or a space in a private creator's slot (an
    LO, whatever VR the file gave it)."""
    for elem in ds.iterall():
        value = elem.value
        if elem.VR in ("OB", "UN") and isinstance(value, bytes) and len(value) % 2:
            creator = elem.tag.is_private and 0x10 <= elem.tag.element <= 0xFF
            elem.value = value + (b" " if creator else b"\0")
