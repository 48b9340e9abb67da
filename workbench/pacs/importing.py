"""Files to import: found in files, folders (recursively) and ZIP archives, and copied into
the store in batches."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import file_copier
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


def iter_sources(
    paths: Iterable[str | Path], *, recursive: bool
) -> Iterator[tuple[str, Path | ZipMember]]:
    """Yield ``(label, source)`` for every candidate file: the source is the file's path,
    or for a ZIP member its archive and entry (see :func:`zip_members`).

    A path given is a ZIP archive when :func:`zipfile.is_zipfile` says so; a file found in
    a folder must first have a name ending in ``.zip`` or begin as a ZIP archive does
    (:func:`_may_be_zip`).
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(path.rglob("*") if recursive else path.iterdir())
            for item in files:
                if item.is_file():
                    if _may_be_zip(item):
                        yield from iter_sources([item], recursive=recursive)
                    else:
                        yield str(item), item
        elif zipfile.is_zipfile(path):
            for name, member in zip_members(path):
                yield f"{path}:{name}", member
        else:
            yield str(path), path


def _may_be_zip(path: Path) -> bool:
    """Whether the file could be a ZIP archive: its name ends in ``.zip`` or it begins with
    a member's signature. Far cheaper than :func:`zipfile.is_zipfile`, which reads up to
    64 KiB at the end of a file that is not one (0.1 s for a folder of 2,600 slices)."""
    if path.suffix.lower() == ".zip":
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"PK\x03\x04"
    except OSError:
        return False  # the copy reports it


def zip_members(path: Path) -> list[tuple[str, ZipMember]]:
    """``(name, member)`` of each file of the ZIP archive at ``path`` (its directory read
    once here; the copying opens the archive once more for all its members).

    Raises
    ------
    zipfile.BadZipFile
        The archive's directory cannot be read.
    """
    with zipfile.ZipFile(path) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
    # Each member by its entry, not its name: an archive may hold two files of one name.
    return [(info.filename, ZipMember(path, info)) for info in infos]


@dataclass(frozen=True)
class ZipMember:
    """A file of a ZIP archive to import, found by ``archive`` and ``info.header_offset``
    (unique where names may not be)."""

    archive: Path
    info: zipfile.ZipInfo


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


class CopyingProcess:
    """The process (:mod:`.file_copier`) copying the files of an import into the store,
    files and ZIP members.

    Copying is mostly the kernel's work, but each of the dozen system calls copying a file
    gives up the interpreter lock and takes it back: in threads next to the one reading
    headers, the copies waited for the lock and the reading waited for the copies. In a
    process of its own, 2,600 files imported in 1.5-2.6 s (median 2.1) where threads took
    1.9-3.0 s (median 2.5), alternating in one run.

    Raises
    ------
    OSError
        The process cannot be started.
    """

    def __init__(self, threads: int = COPY_THREADS) -> None:
        script = Path(__file__).with_name("file_copier.py")
        # -I -S: the standard library alone, whatever the environment says.
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(script), str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def copy(self, pairs: list[tuple[Path | ZipMember, Path]]) -> list[int | OSError]:
        """Copy each ``(source, target)``: the copy's size, or the error that kept the
        source from being read (nothing left at the target then)."""
        assert self._process.stdin is not None and self._process.stdout is not None
        request = [[_described(source), os.fsdecode(target)] for source, target in pairs]
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            reply = self._process.stdout.readline()
        except BrokenPipeError:
            reply = ""
        if not reply:
            status = self._process.wait()
            raise OSError(f"The process copying the files ended (exit status {status})")
        return [size if isinstance(size, int) else OSError(size) for size in json.loads(reply)]

    def close(self) -> None:
        """End the process once it has finished the copies it was given."""
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.close()  # type: ignore[union-attr]
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()  # type: ignore[union-attr]


def _described(source: Path | ZipMember) -> str | list[str | int]:
    """A source as :mod:`.file_copier` reads it: a path, or an archive's path and a
    member's offset."""
    if isinstance(source, Path):
        return os.fsdecode(source)
    return [os.fsdecode(source.archive), source.info.header_offset]


def _copy_window(
    sources: list[Path | ZipMember],
    targets: list[Path],
    threads: ThreadPoolExecutor,
    archives: file_copier.Archives,
    process: CopyingProcess | None,
) -> list[int | Exception]:
    """Copy ``sources[i]`` to ``targets[i]``, by the process if there is one, else by the
    threads running its code here. Sizes or errors, in order."""
    if process is not None:
        return list(process.copy(list(zip(sources, targets, strict=True))))
    pairs = [[_described(source), os.fsdecode(target)]
             for source, target in zip(sources, targets, strict=True)]  # fmt: skip
    answers = threads.map(file_copier.copy_file, pairs, [archives] * len(pairs))
    return [size if isinstance(size, int) else OSError(size) for size in answers]


def staged_batches(
    sources: Iterable[tuple[str, Path | ZipMember]],
    store: FileStore,
    errors: dict[str, str],
) -> Iterator[StagedBatch]:
    """Copy each source (from :func:`iter_sources`) into the store under a name of
    :meth:`.FileStore.batch_names`; yield the copies in batches of :data:`BATCH_FILES`
    files or :data:`BATCH_BYTES` bytes.

    A :class:`CopyingProcess` copies them (:data:`COPY_THREADS` threads where it cannot
    be started); the batches keep the sources' order. The
    copies are not synced here: the batch is synced at once when it enters the store. A
    source that cannot be read is noted in ``errors`` under its label and skipped.
    """
    pending = iter(sources)
    fresh = store.batch_names()
    batch = StagedBatch()
    # The first batch is one window: the caller starts reading while the next is copied.
    limit = min(COPY_WINDOW, BATCH_FILES)
    unclaimed: list[Path] = []  # copied or being copied, not handed over: removed at the end
    process: CopyingProcess | None = None
    process_tried = False
    archives = file_copier.Archives()  # the threads' own, where no process could start
    try:
        with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="workbench-import-copy") as pool:
            while window := list(itertools.islice(pending, COPY_WINDOW)):
                if not process_tried:
                    process_tried = True
                    with contextlib.suppress(OSError):  # then threads copy the files too
                        process = CopyingProcess()
                names = [next(fresh) for _ in window]
                targets = [store.path_of(name) for name in names]
                unclaimed += targets
                copies = _copy_window([source for _, source in window], targets, pool,
                                      archives, process)  # fmt: skip
                for (label, _), name, target, copied in zip(window, names, targets, copies,
                                                            strict=True):  # fmt: skip
                    if isinstance(copied, Exception):
                        errors[label] = f"cannot read it: {copied}"
                        batch.unreadable += 1
                        continue
                    batch.paths.append(target)
                    batch.names.append(name)
                    batch.labels.append(label)
                    batch.size += copied
                    if len(batch.paths) >= limit or batch.size >= BATCH_BYTES:
                        unclaimed = _without(unclaimed, batch.paths)
                        yield batch
                        batch, limit = StagedBatch(), BATCH_FILES
        if batch.paths or batch.unreadable:
            unclaimed = _without(unclaimed, batch.paths)
            yield batch
    finally:
        if process is not None:  # first: it may still be writing some of the files
            process.close()
        archives.close()
        for path in unclaimed:
            path.unlink(missing_ok=True)


def _without(paths: list[Path], handed_over: list[Path]) -> list[Path]:
    gone = set(handed_over)
    return [path for path in paths if path not in gone]


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
