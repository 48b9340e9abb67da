"""Finding DICOM files to import: files, folders (recursively) and ZIP archives."""

from __future__ import annotations

import functools
import itertools
import shutil
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .results import IngestResult

if TYPE_CHECKING:
    from .store import FileStore


@dataclass
class ImportSummary:
    """Result of :meth:`Index.import_path`."""

    results: list[IngestResult] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def stored(self) -> int:
        """Instances newly stored."""
        return sum(r.status == "Success" for r in self.results)

    @property
    def already_stored(self) -> int:
        """Instances that were already in the store."""
        return sum(r.status == "AlreadyStored" for r in self.results)

    def __repr__(self) -> str:
        return (
            f"ImportSummary(stored={self.stored}, already_stored={self.already_stored}, "
            f"errors={len(self.errors)})"
        )


def iter_sources(paths: Iterable[str | Path], *, recursive: bool) -> Iterator[tuple[str, Any]]:
    """Yield ``(label, opener)`` for every candidate file: the opener gives the file's path,
    or for a ZIP member a binary file reading it (see :func:`zip_members`)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(path.rglob("*") if recursive else path.iterdir())
            for item in files:
                if item.is_file():
                    yield from iter_sources([item], recursive=recursive)
        elif zipfile.is_zipfile(path):
            for name, opener in zip_members(path):
                yield f"{path}:{name}", opener
        else:
            yield str(path), (lambda p=path: p)


def zip_members(path: Path) -> list[tuple[str, Callable[[], BinaryIO]]]:
    """``(name, opener)`` of each file of the ZIP archive at ``path``; each opener gives a
    binary file reading the member as it is inflated, its CRC checked at the end.

    The archive is opened once for all its members, when the first is read, and closed
    after the last (its directory is read once, not once per member: an archive of
    thousands of files), whichever threads read them: zipfile serializes their reads.

    Raises
    ------
    zipfile.BadZipFile
        The archive's directory cannot be read.
    """
    with zipfile.ZipFile(path) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
    shared = _SharedArchive(path, len(members))
    # Each member by its entry, not its name: an archive may hold two files of one name.
    return [(info.filename, functools.partial(shared.open, info)) for info in members]


class _SharedArchive:
    """A ZIP archive kept open while some of its members are still to be read."""

    def __init__(self, path: Path, members: int) -> None:
        self._path = path
        self._unread = members
        self._archive: zipfile.ZipFile | None = None
        self._lock = threading.Lock()

    def open(self, member: zipfile.ZipInfo) -> BinaryIO:
        with self._lock:
            if self._archive is None:
                self._archive = zipfile.ZipFile(self._path)
            self._unread -= 1
            try:
                return self._archive.open(member)
            finally:
                if self._unread == 0:
                    # Its file stays open while a member read from it is (zipfile counts).
                    self._archive.close()


#: An import is stored in batches of at most this many files or bytes: each batch costs
#: two syncs of the store's filesystem and one transaction (see ``Index.ingest_files``).
BATCH_FILES = 256
BATCH_BYTES = 256 << 20


@dataclass
class StagedBatch:
    """Files copied into the store under their final names, not yet synced, with their
    labels: ``names[i]`` is the store UUID of ``paths[i]``."""

    paths: list[Path] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    size: int = 0
    #: Sources of this batch that could not be read (their errors are already noted).
    unreadable: int = 0


#: Threads copying an import's files into the store at once: a file's creation waits on
#: the disk's metadata (0.4-0.8 ms each on a filesystem after many deletions) and two
#: creations proceed at once (2,600 files copied alone: 700-1,100 per second by one
#: thread, 1,800-1,900 by two). On two cores their kernel time competes with the reading
#: and indexing of the batch before: four threads were slower than two.
COPY_THREADS = 2
#: Sources handed to the copying threads at once.
COPY_WINDOW = 32


def _copy_into(store: FileStore, opener: Any, name: str) -> tuple[Path, int] | Exception:
    """Copy one source to the store's file ``name`` (from :meth:`.FileStore.batch_names`):
    ``(path, size)``, or the error that kept it from being read (nothing left behind then).

    The copy is written under its final name, as STOW-RS writes its parts, rather than in
    the incoming directory and renamed: one creation per file and no rename, and the batch
    is made durable by one sync. Until its row is committed such a file was never
    acknowledged; after a crash reconcile indexes it, or quarantines it if cut short.
    """
    copy = store.path_of(name)
    try:
        source = opener()
        if isinstance(source, Path):  # the kernel copies (copy_file_range/sendfile)
            shutil.copyfile(source, copy)
        else:  # a ZIP member, inflated as it is read
            with source, open(copy, "xb") as handle:  # "x": a fresh UUID is nobody's file
                shutil.copyfileobj(source, handle, 1 << 20)
        return copy, copy.stat().st_size
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        copy.unlink(missing_ok=True)
        return exc


def staged_batches(
    sources: Iterable[tuple[str, Any]], store: FileStore, errors: dict[str, str]
) -> Iterator[StagedBatch]:
    """Copy each source (from :func:`iter_sources`) into the store under a name of
    :meth:`.FileStore.batch_names`; yield the copies in batches of :data:`BATCH_FILES`
    files or :data:`BATCH_BYTES` bytes.

    :data:`COPY_THREADS` threads copy the files; the batches keep the sources' order. The
    copies are not synced here: the batch is synced at once when it enters the store. A
    source that cannot be read is noted in ``errors`` under its label and skipped.
    """
    pending = iter(sources)
    fresh = store.batch_names()
    batch = StagedBatch()
    # The first batch is one window: the caller starts reading while the next is copied.
    limit = min(COPY_WINDOW, BATCH_FILES)
    unclaimed: list[Path] = []  # copied, not handed over yet: removed if the caller stops
    try:
        with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="workbench-import-copy") as pool:
            while window := list(itertools.islice(pending, COPY_WINDOW)):
                names = [next(fresh) for _ in window]
                copies = list(pool.map(lambda source, name: _copy_into(store, source[1], name),
                                       window, names))  # fmt: skip
                unclaimed += [copied[0] for copied in copies if not isinstance(copied, Exception)]
                for (label, _), name, copied in zip(window, names, copies, strict=True):
                    if isinstance(copied, Exception):
                        errors[label] = f"cannot read it: {copied}"
                        batch.unreadable += 1
                        continue
                    batch.paths.append(copied[0])
                    batch.names.append(name)
                    batch.labels.append(label)
                    batch.size += copied[1]
                    if len(batch.paths) >= limit or batch.size >= BATCH_BYTES:
                        del unclaimed[: len(batch.paths)]
                        yield batch
                        batch, limit = StagedBatch(), BATCH_FILES
        if batch.paths or batch.unreadable:
            del unclaimed[: len(batch.paths)]
            yield batch
    finally:
        for path in unclaimed:
            path.unlink(missing_ok=True)


def staged_ahead(batches: Iterator[StagedBatch]) -> Iterator[StagedBatch]:
    """Yield the batches of :func:`staged_batches` while a thread stages the next one.

    Copying is mostly the kernel's work, done outside the interpreter lock: it goes on
    while the caller reads the headers of the batch it was given and indexes them. If the
    caller stops early, the batch staged ahead is removed from the store again.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="workbench-import-copy") as copier:
        upcoming = copier.submit(next, batches, None)
        try:
            while (batch := upcoming.result()) is not None:
                upcoming = copier.submit(next, batches, None)
                yield batch
        finally:
            # Once the batch staged ahead is done (or cancelled), the generator is idle.
            if not upcoming.cancel() and upcoming.exception() is None:
                leftover = upcoming.result()
                for path in leftover.paths if leftover is not None else []:
                    path.unlink(missing_ok=True)
            batches.close()
