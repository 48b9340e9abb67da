"""Where DICOM files come from: plain files, folders and ZIP archives.

A :class:`DicomFile` names one file on disk or one member of a ZIP archive. It is a small
immutable value, so arrays that read pixels later pickle cheaply and every dask worker
opens the file itself.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# Names that are never DICOM; skipping them early keeps scans of export folders quiet.
_NOT_DICOM_NAMES = {"DICOMDIR", ".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True, order=True)
class DicomFile:
    """One file to read: a path, or a member inside a ZIP archive.

    Parameters
    ----------
    path : str
        Path of the file, or of the ZIP archive holding it.
    member : str, optional
        Name of the member inside the ZIP archive at ``path``.
    """

    path: str
    member: str | None = None

    def __str__(self) -> str:
        return self.path if self.member is None else f"{self.path}!{self.member}"

    @property
    def name(self) -> str:
        """Base name of the file (or archive member)."""
        return os.path.basename(self.member if self.member is not None else self.path)

    def open(self) -> BinaryIO:
        """Open for binary reading; the caller closes it (use as a context manager)."""
        if self.member is None:
            return open(self.path, "rb")  # the caller closes it
        # Members are usually deflated, which does not seek well; reading the member into
        # memory is what lets pydicom seek to a frame.
        with zipfile.ZipFile(self.path) as archive:
            return io.BytesIO(archive.read(self.member))

    def size(self) -> int:
        """Size in bytes of the (uncompressed) file."""
        if self.member is None:
            return os.path.getsize(self.path)
        with zipfile.ZipFile(self.path) as archive:
            return archive.getinfo(self.member).file_size


Source = str | os.PathLike | DicomFile | Iterable


def iter_files(source: Source, *, recursive: bool = True) -> Iterator[DicomFile]:
    """Yield every candidate file in ``source``.

    Parameters
    ----------
    source : path, DicomFile or iterable of them
        A file, a folder, a ZIP archive, or a list of any of these.
    recursive : bool
        Descend into sub-folders.

    Raises
    ------
    FileNotFoundError
        If a path given does not exist.
    """
    if isinstance(source, DicomFile):
        yield source
        return
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            yield from _iter_folder(path, recursive)
        elif path.is_file():
            if _is_zip(path):
                yield from _iter_zip(path)
            else:
                yield DicomFile(str(path))
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
        return
    for item in source:
        yield from iter_files(item, recursive=recursive)


def _iter_folder(folder: Path, recursive: bool) -> Iterator[DicomFile]:
    # Directory entries know whether they are files without a stat per file (in most file
    # systems). Like os.walk: unreadable folders are passed over, links to folders not
    # followed.
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)  # stable, human-friendly
    except OSError:
        return
    folders = []
    for entry in entries:
        name = entry.name
        if entry.is_dir(follow_symlinks=False):
            folders.append(Path(entry.path))
        elif not entry.is_file() or name in _NOT_DICOM_NAMES or name.startswith("."):
            continue
        elif name.lower().endswith(".zip") and _is_zip(Path(entry.path)):
            yield from _iter_zip(Path(entry.path))
        else:
            yield DicomFile(entry.path)
    if recursive:
        for path in folders:
            yield from _iter_folder(path, recursive)


def _is_zip(path: Path) -> bool:
    # A DICOM file starts with a 128-byte preamble that may, rarely, look like a ZIP header;
    # only treat as ZIP what has the extension and the magic number.
    return path.suffix.lower() == ".zip" and zipfile.is_zipfile(path)


def _iter_zip(path: Path) -> Iterator[DicomFile]:
    with zipfile.ZipFile(path) as archive:
        names = sorted(info.filename for info in archive.infolist() if not info.is_dir())
    for name in names:
        base = os.path.basename(name)
        if base in _NOT_DICOM_NAMES or base.startswith(".") or name.startswith("__MACOSX/"):
            continue
        yield DicomFile(str(path), name)
