"""Files of the store: DICOM files under content-independent UUID names, written durably.

Layout follows Orthanc: ``<StorageDirectory>/ab/cd/abcd....`` where the name is a random
UUID, so no tag value ever becomes part of a path. A file is complete on disk (written to a
temporary name or received, fsynced, renamed or hard-linked, directory fsynced) before the
index commits its row.
A fan-out directory's own entry is fsynced in its parent when it is created.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20
#: Files being made durable at once by :meth:`FileStore.commit_linked` (one per association
#: sending at the same time; more wait their turn).
_SYNC_WORKERS = 8


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (e.g. Windows).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _syncfs(path: Path) -> bool:
    """Flush the whole filesystem holding ``path`` (Linux ``syncfs``); ``False`` when the
    platform has no ``syncfs`` or it failed (the caller then syncs file by file)."""
    function = _libc_syncfs()
    if function is None:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        return function(fd) == 0
    finally:
        os.close(fd)


@functools.cache
def _libc_syncfs():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


@dataclass(frozen=True)
class PendingFile:
    """A file on its way into the store (:meth:`FileStore.commit_linked`): its name and size
    are known at once, its durability once :meth:`wait` returns."""

    file_uuid: str
    size: int
    _done: tuple[Future, ...]

    def wait(self) -> None:
        """Return once the file is durable in the store; raise what kept it out."""
        for future in self._done:
            future.result()

    def settle(self) -> None:
        """Wait for the work on the file to end, whatever its outcome (before removing it)."""
        for future in self._done:
            future.exception()


class FileStore:
    """DICOM files named by UUID under one root directory.

    Parameters
    ----------
    root : Path
        The storage directory; created if missing. ``root / "incoming"`` holds files being
        written (by this store or by network receivers) before they are committed.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.incoming_dir = self.root / "incoming"
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        # Fan-out directories known to exist. Creating one is checked once per directory,
        # not once per file: on a busy store the mkdir calls cost as much as a small write.
        self._made_dirs: set[Path] = set()
        self._syncs: ThreadPoolExecutor | None = None
        self._syncs_lock = threading.Lock()

    def path_of(self, file_uuid: str) -> Path:
        """Where the file named ``file_uuid`` lives."""
        name = str(uuid.UUID(file_uuid))  # refuses anything that is not a UUID
        return self.root / name[0:2] / name[2:4] / name

    def new_temp_path(self) -> Path:
        """A fresh path inside :attr:`incoming_dir` for a writer to fill."""
        fd, name = tempfile.mkstemp(dir=self.incoming_dir, suffix=".part")
        os.close(fd)
        return Path(name)

    def commit_file(self, source: Path, *, move: bool) -> tuple[str, int]:
        """Make ``source`` a durable file of the store and return ``(uuid, size)``.

        With ``move`` the file (on the same filesystem) is fsynced and renamed into place;
        otherwise it is copied to a temporary file that is fsynced and renamed.
        """
        file_uuid = str(uuid.uuid4())
        target = self.path_of(file_uuid)
        if move:
            with open(source, "rb+") as handle:
                os.fsync(handle.fileno())
            self._place(source, target)
            return file_uuid, target.stat().st_size
        self._copy_durably(source, target)
        return file_uuid, target.stat().st_size

    def commit_linked(self, source: Path) -> PendingFile:
        """Start making a durable copy of ``source`` in the store; return at once.

        For a file its writer deletes afterwards (pynetdicom's received data set): in a
        worker thread, the file is fsynced and hard-linked under its store name (copied when
        the link is impossible), then the directory entry is synced, so the caller reads
        and indexes the file meanwhile. ``source`` must stay unchanged until
        :meth:`PendingFile.wait` returns; the store's name appears only once its content
        is durable, as with :meth:`commit_file`.
        """
        file_uuid = str(uuid.uuid4())
        target = self.path_of(file_uuid)
        size = source.stat().st_size
        pool = self._sync_pool()
        new_dirs = self._make_dirs(target.parent)
        # Two syncs in a row cannot be avoided, the content's and then its new name's, but
        # the entries of new fan-out directories are synced at the same time as the content
        # (on a journaling filesystem, both join one commit).
        done = [pool.submit(self._link_durably, source, target)]
        if new_dirs:
            done.append(pool.submit(self._sync_new_dirs, new_dirs))
        return PendingFile(file_uuid, size, tuple(done))

    def _sync_pool(self) -> ThreadPoolExecutor:
        with self._syncs_lock:
            if self._syncs is None:
                self._syncs = ThreadPoolExecutor(_SYNC_WORKERS, "workbench-file-sync")
            return self._syncs

    def _sync_new_dirs(self, new_dirs: list[Path]) -> None:
        for created in reversed(new_dirs):
            _fsync_dir(created.parent)
        self._made_dirs.update(new_dirs)

    def _link_durably(self, source: Path, target: Path) -> None:
        fd = os.open(source, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(source, target)
        except FileNotFoundError:
            if not source.exists():
                raise
            # The fan-out directory was removed behind our back (by hand, say).
            self._place(source, target, link=True)
            return
        except OSError:
            # Another filesystem, or one without hard links: the bytes are copied.
            self._copy_durably(source, target)
            return
        _fsync_dir(target.parent)

    def _copy_durably(self, source: Path, target: Path) -> None:
        """Copy ``source`` to a temporary file, fsync it and rename it to ``target``."""
        temp = self.new_temp_path()
        try:
            with open(source, "rb") as src, open(temp, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
                dst.flush()
                os.fsync(dst.fileno())
            self._place(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        """Finish the files still being made durable and stop their worker threads."""
        with self._syncs_lock:
            if self._syncs is not None:
                self._syncs.shutdown(wait=True)
                self._syncs = None

    def commit_files(self, sources: list[Path]) -> list[tuple[str, int]]:
        """Move many files of :attr:`incoming_dir` into the store durably; return their
        ``(uuid, size)`` in order.

        Where the platform has ``syncfs`` (Linux), the whole batch costs two syncs of the
        store's filesystem (the files' data before the renames, the renames after) instead
        of two fsyncs per file: what makes a batch upload (STOW-RS) faster than one file at a
        time. Elsewhere each file is committed on its own. If anything fails, the files
        already placed are removed again: none of the batch was acknowledged.
        """
        if not sources or not _syncfs(self.incoming_dir):
            return [self.commit_file(source, move=True) for source in sources]
        placed: list[tuple[str, int]] = []
        new_dirs: list[Path] = []
        try:
            for source in sources:
                file_uuid = str(uuid.uuid4())
                target = self.path_of(file_uuid)
                made = self._make_dirs(target.parent)
                self._made_dirs.update(made)
                new_dirs += made
                os.replace(source, target)
                placed.append((file_uuid, target.stat().st_size))
            if not _syncfs(self.root):
                raise OSError(f"syncfs failed on {self.root}")
        except BaseException:
            for file_uuid, _ in placed:
                self.remove(file_uuid)
            self._made_dirs.difference_update(new_dirs)
            raise
        return placed

    def commit_bytes(self, data: bytes | bytearray | memoryview) -> tuple[str, int]:
        """Write ``data`` as a durable file of the store and return ``(uuid, size)``.

        The bytes go to a temporary file in :attr:`incoming_dir`, which is fsynced and renamed
        into place, as :meth:`commit_file` does.
        """
        file_uuid = str(uuid.uuid4())
        temp = self.incoming_dir / f"{file_uuid}.part"
        try:
            # "x": a fresh UUID cannot collide, and a file that exists is not ours to reuse.
            with open(temp, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self._place(temp, self.path_of(file_uuid))
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return file_uuid, len(data)

    def _place(self, source: Path, target: Path, *, link: bool = False) -> None:
        """Rename (or hard-link) a synced file to ``target`` and make the new name durable."""
        name = os.link if link else os.replace
        new_dirs = self._make_dirs(target.parent)
        try:
            name(source, target)
        except FileNotFoundError:
            if not source.exists():
                raise
            # The fan-out directory was removed behind our back (by hand, say): make it again.
            self._made_dirs.difference_update((target.parent, target.parent.parent))
            new_dirs = self._make_dirs(target.parent)
            name(source, target)
        # The directory holding the new name first, then the parents of directories new to
        # this process. In this order a journaling filesystem commits every change with the first
        # fsync, and the others return at once.
        _fsync_dir(target.parent)
        for created in reversed(new_dirs):
            _fsync_dir(created.parent)
        # Only once their entries are durable.
        self._made_dirs.update((target.parent, *new_dirs))

    def _make_dirs(self, directory: Path) -> list[Path]:
        """Create ``root/ab/cd`` if needed; return the directories whose entries need a sync.

        Directories first met by this process are returned even if they existed: the process
        that made them may have stopped before syncing them. A first level ``root/ab``
        already synced by this process is not returned again for each new ``root/ab/cd``.
        """
        if directory in self._made_dirs:
            return []
        chain = [path for path in (directory.parent, directory) if path not in self._made_dirs]
        try:
            for path in chain:
                path.mkdir(exist_ok=True)
        except FileNotFoundError:
            # ``root/ab`` was removed behind our back (by hand, say): make and sync it again.
            self._made_dirs.discard(directory.parent)
            chain = [directory.parent, directory]
            for path in chain:
                path.mkdir(exist_ok=True)
        return chain

    def write_bytes(self, data: bytes) -> Path:
        """Write ``data`` to a temporary file in :attr:`incoming_dir`; return its path.

        Not fsynced here: :meth:`commit_file` syncs it once, when it enters the store.
        """
        temp = self.new_temp_path()
        with open(temp, "wb") as handle:
            handle.write(data)
        return temp

    def remove(self, file_uuid: str) -> None:
        """Delete a stored file; a file already gone is not an error."""
        self.path_of(file_uuid).unlink(missing_ok=True)

    def iter_uuids(self) -> Iterator[str]:
        """Every UUID-named file under the root (skips ``incoming`` and foreign files)."""
        for first in self.root.iterdir():
            if not first.is_dir() or len(first.name) != 2:
                continue
            for second in first.iterdir():
                if not second.is_dir():
                    continue
                for path in second.iterdir():
                    try:
                        yield str(uuid.UUID(path.name))
                    except ValueError:
                        continue

    def clear_incoming(self) -> list[Path]:
        """Delete leftovers of interrupted writes; return what was deleted."""
        removed = []
        for path in self.incoming_dir.iterdir():
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed


class StoreLock:
    """An advisory lock file (POSIX ``flock``; a no-op where unavailable)."""

    def __init__(self, path: Path) -> None:
        self._handle = open(path, "a+b")  # noqa: SIM115 - held for the Index's lifetime
        try:
            import fcntl
        except ImportError:  # Windows: single-process use assumed
            fcntl = None
        self._fcntl = fcntl

    def try_exclusive(self) -> bool:
        if self._fcntl is None:
            return True
        try:
            self._fcntl.flock(self._handle, self._fcntl.LOCK_EX | self._fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def share(self) -> None:
        if self._fcntl is not None:
            self._fcntl.flock(self._handle, self._fcntl.LOCK_SH)

    def release(self) -> None:
        if not self._handle.closed:
            if self._fcntl is not None:
                self._fcntl.flock(self._handle, self._fcntl.LOCK_UN)
            self._handle.close()
