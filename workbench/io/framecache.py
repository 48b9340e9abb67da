"""Frames fetched over DICOMweb, kept on disk within a size bound.

One file per frame (and per ``Accept`` it was asked with), named by a hash of both; the
transfer syntax it came in is its first line. When the cache grows past ``max_bytes`` the
least recently used files go first (their modification time is renewed on every hit).
Several threads and processes may share a folder: files are written under a temporary name
(``.part``) and renamed, and trimming leaves another writer's temporary file alone unless it
is older than :data:`ABANDONED_AFTER` seconds (its writer died).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: A temporary file this old was left by a writer that died: trimming may remove it.
ABANDONED_AFTER = 600.0


@dataclass(frozen=True)
class FrameCache:
    """A folder of fetched frames holding at most ``max_bytes``.

    Parameters
    ----------
    folder : str or os.PathLike
        Where the frames are kept (made if missing).
    max_bytes : int
        The most the folder holds; the least recently used frames are deleted beyond it.
    """

    folder: str
    max_bytes: int = 2 << 30

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", os.fspath(self.folder))

    def _path(self, url: str, accept: str) -> Path:
        digest = hashlib.sha256(f"{url}\n{accept}".encode()).hexdigest()
        return Path(self.folder) / digest[:2] / digest

    def get(self, url: str, accept: str) -> tuple[bytes, str] | None:
        """(frame bytes, transfer syntax UID) of a frame fetched before, or ``None``."""
        path = self._path(url, accept)
        try:
            content = path.read_bytes()
            os.utime(path)
        except OSError:
            return None
        syntax, _, data = content.partition(b"\n")
        return data, syntax.decode("ascii")

    def put(self, url: str, accept: str, data: bytes, syntax: str) -> None:
        """Keep one frame, then trim the folder to ``max_bytes``."""
        if len(data) > self.max_bytes:
            return
        path = self._path(url, accept)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".part") as fp:
            fp.write(syntax.encode("ascii") + b"\n" + data)
        try:
            os.replace(fp.name, path)
        except FileNotFoundError:  # its folder was trimmed away meanwhile: not kept
            return
        self._trim()

    def size(self) -> int:
        """Bytes held now."""
        return sum(size for _, _, size in self._entries())

    def _entries(self) -> list[tuple[float, Path, int]]:
        """(mtime, path, size) of the frames kept, and of abandoned temporary files."""
        entries = []
        now = time.time()
        for path in Path(self.folder).glob("*/*"):
            try:
                stat = path.stat()
            except OSError:
                continue  # removed meanwhile by another process
            if path.suffix == ".part" and now - stat.st_mtime < ABANDONED_AFTER:
                continue  # being written: its writer renames it
            entries.append((stat.st_mtime, path, stat.st_size))
        return entries

    def _trim(self) -> None:
        entries = sorted(self._entries(), key=lambda e: e[0])
        total = sum(size for _, _, size in entries)
        for _, path, size in entries:
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
