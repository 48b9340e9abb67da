"""Files of the store: DICOM files under content-independent UUID names, written durably.

Layout follows Orthanc: ``<StorageDirectory>/ab/cd/abcd....`` where the name is a random
UUID, so no tag value ever becomes part of a path. A file is complete on disk (written to a
temporary name, fsynced, renamed, directory fsynced; or, received whole, hard-linked and
then fsynced with its directory) before the index commits its row.
A fan-out directory's own entry is fsynced in its parent when it is created.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .errors import StorageWriteError

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
#: Files of one batch sharing a fan-out directory (see :meth:`FileStore.batch_names`).
BATCH_DIRECTORY_FILES = 64
#: The bits of a UUID that name its fan-out directories (its first four hex digits).
_DIRECTORY_BITS = 0xFFFF << 112
#: Batches being made durable at once by :meth:`FileStore.start_commit_files`.
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


def start_writeback(fd: int) -> None:
    """Start writing a file's dirty pages to disk without waiting (Linux
    ``sync_file_range``), so that the sync that makes it durable later finds them written or
    on their way; nothing where the platform lacks it. Not a sync: no durability promised."""
    function = _libc_sync_file_range()
    if function is not None:
        function(fd, ctypes.c_int64(0), ctypes.c_int64(0), _SYNC_FILE_RANGE_WRITE)


def release_written(fd: int, size: int) -> None:
    """Wait until the writeback of a file's pages (see :func:`start_writeback`) has ended,
    then give them back to the kernel (:func:`drop_cached`), so that the files written next
    reuse them. Not a sync: the file is durable only once its store syncs it."""
    function = _libc_sync_file_range()
    if function is not None and size >= DROP_CACHED_BYTES:
        flags = _SYNC_FILE_RANGE_WAIT_BEFORE | _SYNC_FILE_RANGE_WRITE | _SYNC_FILE_RANGE_WAIT_AFTER
        function(fd, ctypes.c_int64(0), ctypes.c_int64(0), flags)
        drop_cached(fd, size)


_SYNC_FILE_RANGE_WAIT_BEFORE = 1
_SYNC_FILE_RANGE_WRITE = 2
_SYNC_FILE_RANGE_WAIT_AFTER = 4

#: Files from this size on leave the page cache once durable (see :func:`drop_cached`).
DROP_CACHED_BYTES = 64 * 1024


def drop_cached(fd: int, size: int) -> None:
    """Let the kernel reuse the pages of a file that is durable now (``POSIX_FADV_DONTNEED``
    on its clean pages), if it holds :data:`DROP_CACHED_BYTES` or more; nothing where the
    platform lacks it.

    An ingest writes each file once and rarely reads it soon, so its pages would only push
    the readers' working set out of the cache. They are also what the next files are
    written into: a write into pages the kernel has just freed costs far less than one
    that needs fresh memory (a 512 KB CT slice: 0.1 against 3-4 ms on a virtual machine
    whose memory the host gives on first touch), so a long ingest is not slowed down by
    page allocation.
    """
    if size >= DROP_CACHED_BYTES and hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):  # advice only: never fails an ingest
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _drop_cached_path(path: Path, size: int) -> None:
    """:func:`drop_cached` for a file closed already (opened only if large enough)."""
    if size >= DROP_CACHED_BYTES:
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY)
            try:
                drop_cached(fd, size)
            finally:
                os.close(fd)


@functools.cache
def _libc_sync_file_range():
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    return function


@functools.cache
def _libc_syncfs():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


@dataclass(frozen=True)
class PendingFile:
    """A file on its way into the store (a batch's, :meth:`FileStore.start_commit_files`):
    its name and size are known at once, its durability once :meth:`wait` returns."""

    file_uuid: str
    size: int
    _done: Future

    def wait(self) -> None:
        """Return once the file is durable in the store; raise what kept it out."""
        self._done.result()

    def settle(self) -> None:
        """Wait for the work on the file to end, whatever its outcome (before removing it)."""
        self._done.exception()


class LinkedFile:
    """A received file already under its store name (:meth:`FileStore.link_received`), its
    writeback started; durable once :meth:`wait` returns, gone again after :meth:`discard`."""

    def __init__(self, store: FileStore, file_uuid: str, path: Path, size: int, fd: int | None,
                 new_dirs: list[Path]) -> None:  # fmt: skip
        self.file_uuid = file_uuid
        self.path = path
        self.size = size
        self._store = store
        self._fd = fd
        self._new_dirs = new_dirs
        self._durable = fd is None  # copied into the store durably already
        self._error: BaseException | None = None

    def wait(self) -> None:
        """Make the file's content and its name durable, or raise what kept them from it
        (again at every call). The file first: on a journaling filesystem its fsync commits
        the name too, and the directory's finds nothing left to commit."""
        if self._error is not None:
            raise self._error
        if self._durable:
            return
        target = self.path
        try:
            if self._fd is None:  # settled before: opened again
                self._fd = os.open(target, os.O_RDONLY)
            os.fsync(self._fd)
            drop_cached(self._fd, self.size)
        except OSError as exc:
            self._error = exc
            raise
        finally:
            self.settle()
        self._store._sync_name(target, self._new_dirs)
        self._durable = True

    def settle(self) -> None:
        """Release the file (its removal may follow); :meth:`wait` still syncs it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """Remove the file from the store (it was refused)."""
        self.settle()
        self._store.remove(self.file_uuid)


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
        # Names of received files (:meth:`link_received`), a group to a fan-out directory
        # as a batch's: on a new store one directory to make and sync per group, not per file.
        self._received_names = self.batch_names()
        self._received_names_lock = threading.Lock()

    def path_of(self, file_uuid: str) -> Path:
        """Where the file named ``file_uuid`` lives."""
        name = str(uuid.UUID(file_uuid))  # refuses anything that is not a UUID
        return self.root / name[0:2] / name[2:4] / name

    def new_temp_path(self) -> Path:
        """A fresh path inside :attr:`incoming_dir` for a writer to fill."""
        fd, name = tempfile.mkstemp(dir=self.incoming_dir, suffix=".part")
        os.close(fd)
        return Path(name)

    def commit_file(self, source: Path, *, move: bool, file_uuid: str | None = None
                    ) -> tuple[str, int]:  # fmt: skip
        """Make ``source`` a durable file of the store and return ``(uuid, size)``.

        With ``move`` the file (on the same filesystem) is fsynced and renamed into place;
        otherwise it is copied to a temporary file that is fsynced and renamed. Its name is
        ``file_uuid`` if given, else a new one.
        """
        file_uuid = file_uuid or str(uuid.uuid4())
        target = self.path_of(file_uuid)
        if move:
            with open(source, "rb+") as handle:
                os.fsync(handle.fileno())
                size = os.fstat(handle.fileno()).st_size
                drop_cached(handle.fileno(), size)
            self._place(source, target)
            return file_uuid, size
        self._copy_durably(source, target)
        return file_uuid, target.stat().st_size

    def link_received(self, source: Path) -> LinkedFile:
        """Give ``source`` a name in the store now and start writing it to disk; it is
        durable once :meth:`LinkedFile.wait` returns.

        For a complete file its writer deletes afterwards (pynetdicom's received data set):
        it is hard-linked under its store name (copied, durably, when the link is
        impossible), so the caller reads and indexes it while the disk writes it, and one
        journal commit (the file's fsync) makes both its content and its name durable where
        a sync of the content and another of the name were needed. Until that sync a crash
        can leave the name on a file never acknowledged: whole (the writer had finished
        it), which start-up reconcile indexes, or cut short, which it quarantines (the
        header's parse refuses a file ending inside its data). On Linux the file's writeback
        (on ext4, the allocation of its blocks) starts before the link, so an ordered journal
        commits the name only with the content.
        """
        with self._received_names_lock:  # associations receive in threads of their own
            file_uuid = next(self._received_names)
        target = self.path_of(file_uuid)
        fd = os.open(source, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            start_writeback(fd)
            new_dirs = self._give_name(os.link, source, target)
        except OSError as exc:
            os.close(fd)
            if isinstance(exc, FileNotFoundError):
                raise
            # Another filesystem, or one without hard links: the bytes are copied.
            self._copy_durably(source, target)
            return LinkedFile(self, file_uuid, target, size, None, [])
        except BaseException:
            os.close(fd)
            raise
        return LinkedFile(self, file_uuid, target, size, fd, new_dirs)

    def _sync_pool(self) -> ThreadPoolExecutor:
        with self._syncs_lock:
            if self._syncs is None:
                self._syncs = ThreadPoolExecutor(_SYNC_WORKERS, "workbench-file-sync")
            return self._syncs

    def _copy_durably(self, source: Path, target: Path) -> None:
        """Copy ``source`` to a temporary file, fsync it and rename it to ``target``."""
        temp = self.new_temp_path()
        try:
            with open(source, "rb") as src, open(temp, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
                dst.flush()
                os.fsync(dst.fileno())
                drop_cached(dst.fileno(), dst.tell())
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

    def batch_names(self) -> Iterator[str]:
        """New file UUIDs for the files of one batch (:meth:`commit_files`), each group of
        :data:`BATCH_DIRECTORY_FILES` in one fan-out directory, made here when the group
        starts (their entries are synced by the commit that uses the names).

        The names stay random version-4 UUIDs; only their first four hex digits, the
        directories' names, are shared within a group, so a store's files still spread over
        all the directories, a group at a time. On a new store that is one directory made
        per group rather than one or two per file: each costs a journal update, as much as
        a small file's own on a busy disk.
        """
        while True:
            first = uuid.uuid4()
            directory = self.path_of(str(first)).parent
            if directory not in self._made_dirs:
                directory.mkdir(parents=True, exist_ok=True)
            shared = first.int & _DIRECTORY_BITS
            yield str(first)
            for _ in range(BATCH_DIRECTORY_FILES - 1):
                yield str(uuid.UUID(int=shared | (uuid.uuid4().int & ~_DIRECTORY_BITS)))

    def commit_files(
        self, sources: list[Path], names: list[str | None] | None = None
    ) -> list[tuple[str, int]]:
        """Move many files of :attr:`incoming_dir` into the store durably; return their
        ``(uuid, size)`` in order (the UUID of ``names`` given by :meth:`batch_names`, if
        any, else one of a new :meth:`batch_names`).

        Where the platform has ``syncfs`` (Linux), the whole batch costs two syncs of the
        store's filesystem (the files' data before the renames, the renames after) instead
        of two fsyncs per file: what makes a batch upload (STOW-RS) faster than one file at a
        time; one sync when every file was written under its name already (STOW-RS's).
        Elsewhere each file is committed on its own. If anything fails, the files already
        placed are removed again: none of the batch was acknowledged.
        """
        fresh = self.batch_names()
        chosen = [(names[position] if names else None) or next(fresh)
                  for position in range(len(sources))]  # fmt: skip
        targets = [self.path_of(file_uuid) for file_uuid in chosen]
        # Files written under their names already need no sync before renames (there are
        # none): the one after makes their content and names durable together.
        to_rename = any(source != target for source, target in zip(sources, targets, strict=True))
        together = bool(sources) and (
            _syncfs(self.incoming_dir) if to_rename else _libc_syncfs() is not None
        )
        placed: list[tuple[str, int]] = []
        new_dirs: list[Path] = []
        try:
            for source, file_uuid, target in zip(sources, chosen, targets, strict=True):
                if not together:
                    placed.append(self.commit_file(source, move=True, file_uuid=file_uuid))
                    continue
                if source != target:
                    made = self._make_dirs(target.parent)
                    self._made_dirs.update(made)
                    new_dirs += made
                    os.replace(source, target)
                placed.append((file_uuid, target.stat().st_size))
            if together and not _syncfs(self.root):
                raise OSError(f"syncfs failed on {self.root}")
            if together:
                for target, (_, size) in zip(targets, placed, strict=True):
                    _drop_cached_path(target, size)
        except BaseException:
            for file_uuid, _ in placed:
                self.remove(file_uuid)
            self._made_dirs.difference_update(new_dirs)
            raise
        return placed

    def start_commit_files(self, sources: list[Path], names: list[str]) -> Future:
        """Start :meth:`commit_files` in a worker thread and return its future: the caller
        prepares the files' rows meanwhile (their names chosen, their sizes known) and
        commits them once it is done. A failure comes as :class:`StorageWriteError`, the
        files placed already removed again (the sources are left to the caller)."""
        return self._sync_pool().submit(self._commit_files_or_refuse, sources, names)

    def _commit_files_or_refuse(self, sources: list[Path], names: list[str]
                                ) -> list[tuple[str, int]]:  # fmt: skip
        try:
            return self.commit_files(sources, names)
        except OSError as exc:
            log.error("%d files could not be made durable in %s: %s", len(sources), self.root, exc)
            raise StorageWriteError(f"the file could not be made durable in the store ({exc})"
                                    ) from exc  # fmt: skip

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
                drop_cached(handle.fileno(), len(data))
            self._place(temp, self.path_of(file_uuid))
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return file_uuid, len(data)

    def _place(self, source: Path, target: Path) -> None:
        """Rename a synced file to ``target`` and make the new name durable."""
        self._sync_name(target, self._give_name(os.replace, source, target))

    def _give_name(self, name: Callable[[Path, Path], None], source: Path,
                   target: Path) -> list[Path]:  # fmt: skip
        """Name ``source`` ``target`` with ``name`` (``os.replace`` or ``os.link``), its
        fan-out directories made first; return those whose entries need a sync."""
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
        return new_dirs

    def _sync_name(self, target: Path, new_dirs: list[Path]) -> None:
        """Make ``target``'s name durable, and the entries of the directories ``new_dirs``."""
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
        """Delete a stored file; a file already gone (or never placed) is not an error."""
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            self.path_of(file_uuid).unlink()

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
