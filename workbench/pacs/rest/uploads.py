"""Bodies of ``POST /instances`` as Orthanc takes them: a DICOM file (with or without its
Part-10 header), a ZIP of files, or a multipart/form-data form of files.

A data set without file meta information (implicit VR little endian on old CDs) is stored as
a Part-10 file with the encoding it came in: the index and ``/file`` then serve a proper file.
"""

from __future__ import annotations

import contextlib
import shutil
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from ..errors import BadRequestError, InvalidInstanceError, PacsError
from ..importing import StagedBatch, staged_ahead, staged_batches, zip_members
from ..index import Index


def has_part10_header(path: Path) -> bool:
    """Whether ``path`` has the 128-byte preamble and the ``DICM`` marker."""
    with open(path, "rb") as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"


def add_part10_header(path: Path) -> bool:
    """Rewrite a bare data set at ``path`` as a Part-10 file (same encoding); ``False`` (file
    untouched) when it does not read as a data set with its SOP class and instance UIDs."""
    try:
        ds = pydicom.dcmread(path, force=True)
        sop_class, sop_instance = ds.get("SOPClassUID"), ds.get("SOPInstanceUID")
        implicit, little = ds.original_encoding
    except (InvalidDicomError, ValueError, TypeError, EOFError, OSError, KeyError):
        return False
    if not sop_class or not sop_instance or implicit is None:
        return False
    syntax = (ImplicitVRLittleEndian if implicit
              else ExplicitVRLittleEndian if little else ExplicitVRBigEndian)  # fmt: skip
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = syntax
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    try:
        ds.save_as(path, enforce_file_format=True)
    except Exception:  # values pydicom cannot write back: the index names the problem
        return False
    return True


def ingest_upload(index: Index, path: Path, label: str) -> dict[str, str]:
    """Store one uploaded file (consumed) and return Orthanc's answer for it."""
    _as_part10(path)
    return index.ingest_file(path, move=True, origin="RestApi", label=label).to_json()


def _as_part10(path: Path) -> None:
    if not has_part10_header(path):
        add_part10_header(path)


def ingest_zip(index: Index, path: Path) -> list[dict[str, Any]]:
    """Store every DICOM member of the ZIP at ``path``; other members are skipped, as
    Orthanc does.

    Members are extracted as ``workbench import`` copies files
    (:func:`~workbench.pacs.importing.staged_batches`: by a process of its own, straight
    under their store names, the next batch while one is indexed), each batch made
    durable by one sync of the store and indexed in one transaction. A member that cannot
    be extracted (a corrupt archive) fails the request, the batches indexed before it
    staying stored; so does the first refusal other than "not DICOM", once its batch is
    stored.
    """
    try:
        members = zip_members(path)
    except zipfile.BadZipFile as exc:
        raise BadRequestError(f"The ZIP archive is corrupt: {exc}") from exc
    answers: list[dict[str, Any]] = []
    unreadable: dict[str, str] = {}
    # Closed at once if the request fails: the batch staged ahead leaves the store then.
    with contextlib.closing(staged_ahead(staged_batches(members, index.store, unreadable))
                            ) as batches:  # fmt: skip
        for batch in batches:
            if batch.unreadable:  # the first such batch: its member's error comes first
                for member in batch.paths:
                    member.unlink(missing_ok=True)
                name, reason = next(iter(unreadable.items()))
                raise BadRequestError(f"The ZIP archive is corrupt at {name!r} ({reason})")
            answers += _ingest_members(index, batch)
    return answers


def _ingest_members(index: Index, batch: StagedBatch) -> list[dict[str, Any]]:
    """Store the members of one batch; the first refusal other than "not DICOM" fails the
    request once the batch is stored."""
    try:
        for member in batch.paths:
            _as_part10(member)
    except BaseException:
        for member in batch.paths:
            member.unlink(missing_ok=True)
        raise
    outcomes = index.ingest_files(batch.paths, origin="RestApi", labels=batch.labels,
                                  names=batch.names)  # fmt: skip
    refusals = [outcome for _, outcome in outcomes if isinstance(outcome, PacsError)]
    for refusal in refusals:
        if not isinstance(refusal, InvalidInstanceError):
            raise refusal
    return [outcome.to_json() for _, outcome in outcomes if not isinstance(outcome, PacsError)]


def is_zip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def ingest_form_files(index: Index, files: list[tuple[str, BinaryIO]]) -> None:
    """Store each file of a multipart form, as if each had been posted alone (a ZIP stores
    its members). Orthanc answers such a form with an empty 200; a file that is not DICOM
    fails the request with its name."""
    if not files:
        raise BadRequestError("The multipart/form-data body holds no file")
    for name, source in files:
        temp = index.store.new_temp_path()
        try:
            with open(temp, "wb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
            if is_zip(temp):
                ingest_zip(index, temp)
            else:
                ingest_upload(index, temp, f"form file {name!r}")
        finally:
            temp.unlink(missing_ok=True)
