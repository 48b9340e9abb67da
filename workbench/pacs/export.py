"""Resources as files to take away: plain ZIP archives and DICOMDIR media (PS3.10/PS3.11)."""

from __future__ import annotations

import io
import logging
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import pydicom
from pydicom.fileset import FileSet

from .index import Index
from .tags import normalize_level

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9 ._^-]+")


def _safe(text: str | None, fallback: str) -> str:
    # Tag values name folders inside the archive only; anything that could climb out of
    # the archive or confuse a file system is replaced.
    cleaned = _UNSAFE.sub("_", (text or "").strip())[:64].strip(" .")
    return cleaned or fallback


def write_archive(index: Index, level: str, public_id: str, destination: Path) -> int:
    """Write a ZIP of every file under a resource, in Orthanc's folder layout.

    ``Patient ID Name/Accession Description/Modality Number Description/MODALITY000001.dcm``.
    Returns the number of files written.
    """
    return write_archive_of(index, [(level, public_id)], destination)


def write_archive_of(index: Index, resources: list[tuple[str, str]], destination: Path) -> int:
    """:func:`write_archive` of several resources ``(level, ID)`` of any levels, each
    instance once."""
    files = _instance_files(index, resources)
    count = 0
    folders: dict[str, tuple[str, str]] = {}  # series ID -> (folder, modality)
    numbers: dict[str, int] = {}
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for instance_id, path in files:
            series_id = index.parent("Instance", instance_id)
            if series_id not in folders:
                folders[series_id] = _series_folder(index, series_id)
            folder, modality = folders[series_id]
            numbers[series_id] = numbers.get(series_id, 0) + 1
            archive.write(path, f"{folder}/{modality[:2].upper()}{numbers[series_id]:06d}.dcm")
            count += 1
    return count


def _instance_files(index: Index, resources: list[tuple[str, str]]) -> list[tuple[str, Path]]:
    """The files of every instance under the resources, each once, in the order met."""
    files: dict[str, Path] = {}
    for level, public_id in resources:
        for instance_id, path in index.instance_files(normalize_level(level), public_id):
            files.setdefault(instance_id, path)
    return list(files.items())


def _series_folder(index: Index, series_id: str) -> tuple[str, str]:
    study_id = index.parent("Series", series_id)
    patient = index.main_dicom_tags("Patient", index.parent("Study", study_id))
    study = index.main_dicom_tags("Study", study_id)
    series = index.main_dicom_tags("Series", series_id)
    modality = _safe(series.get("Modality"), "XX")
    folder = "/".join(
        [
            _safe(
                f"{patient.get('PatientID', '')} {patient.get('PatientName', '')}",
                "Unknown Patient",
            ),
            _safe(
                f"{study.get('AccessionNumber', '')} {study.get('StudyDescription', '')}",
                "Unknown Study",
            ),
            _safe(
                f"{modality} {series.get('SeriesNumber', '')} "
                f"{series.get('SeriesDescription', '')}",
                "Unknown Series",
            ),
        ]
    )
    return folder, modality


def write_media(index: Index, level: str, public_id: str, destination: Path) -> int:
    """Write a ZIP holding a DICOMDIR and its files, named as PS3.10/PS3.11 require.

    pydicom's :class:`~pydicom.fileset.FileSet` builds the directory records and names the
    files (``PT000000/ST000000/SE000000/IM000000``: upper-case, 8 characters, no extension).
    Instances of a kind DICOMDIR cannot describe are left out and logged.
    Returns the number of instances on the media.
    """
    return write_media_of(index, [(level, public_id)], destination)


def write_media_of(index: Index, resources: list[tuple[str, str]], destination: Path) -> int:
    """:func:`write_media` of several resources ``(level, ID)`` of any levels, each instance
    once."""
    fileset = FileSet()
    fileset.ID = "WORKBENCH"
    added = 0
    for instance_id, path in _instance_files(index, resources):
        try:
            ds = pydicom.dcmread(path)
            # A value pydicom cannot encode must fail here: inside add() it would leave a
            # half-registered instance behind that breaks writing the whole file set.
            ds.save_as(io.BytesIO(), enforce_file_format=True)
            fileset.add(ds)
            added += 1
        except (ValueError, NotImplementedError, AttributeError, TypeError, KeyError) as exc:
            log.warning("Instance %s left out of the DICOMDIR: %s", instance_id, exc)
    with tempfile.TemporaryDirectory(prefix="media-") as staging:
        root = Path(staging)
        fileset.write(root)
        with zipfile.ZipFile(destination, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(root).as_posix())
        shutil.rmtree(root, ignore_errors=True)
    return added
