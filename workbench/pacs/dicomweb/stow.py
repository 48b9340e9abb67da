"""STOW-RS (PS3.18 10.5): many instances in one ``multipart/related`` upload.

The body streams through python-multipart's parser into files, so memory stays bounded
whatever the upload: an instance's header is read from its bytes as it ends (small ones
shared with a helper process, so that two cores work) and it is written to its file,
straight under its name in the store (a large part by a worker thread; a part larger than
:data:`SPOOL_BYTES` streams to a file of the incoming directory and is read from there).
Only once the whole body has been read and found well formed are the files stored, all
through :meth:`workbench.pacs.Index.ingest_files` (the path C-STORE and ``POST /instances``
take, with one sync of the store and one transaction for the whole batch). A malformed body
stores nothing: its files are removed (after a crash mid-upload, start-up reconcile indexes
the complete ones and quarantines any cut short, as for C-STORE). Each instance then
succeeds or fails on its own: the answer lists them in ReferencedSOPSequence and
FailedSOPSequence (with a FailureReason, and the reason in words in a ``Warning`` header),
with status 200 (all stored), 202 (some) or 409 (none).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydicom.datadict import dictionary_VR, tag_for_keyword
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser
from starlette.concurrency import run_in_threadpool

from ..errors import BadRequestError, PacsError, PayloadTooLargeError
from ..header_helpers import GROUP_SIZE, MAX_PART_BYTES, HeaderHelpers
from ..index import Index
from ..parsing import ParsedInstance, parse_instance
from ..results import IngestResult
from ..store import FileStore, release_written, start_writeback
from .multipart import UnsupportedMediaTypeError, parse_media_type
from .qido import DICOM_JSON
from .urls import dicomweb_root, warning

log = logging.getLogger(__name__)
router = APIRouter(tags=["dicomweb"])

APPLICATION_DICOM = "application/dicom"
#: Largest upload taken in one request, as ``POST /instances``.
MAX_UPLOAD_BYTES = 2 * 1024**3
#: At most this many failures are explained in ``Warning`` headers (all are in the body).
MAX_WARNINGS = 20
#: FailureReason of a part that is not of type application/dicom ("cannot understand").
NOT_DICOM_REASON = 0xC000
#: Parts up to this size are held in memory until they end (their header read from there);
#: larger ones stream to their file.
SPOOL_BYTES = 4 * 1024**2
#: Bytes of received parts at most waiting in memory for the worker to write them.
MAX_PENDING_BYTES = 32 * 1024**2
#: Files from this size on are written by a worker thread and sent to disk as soon as
#: written, so that the sync of the batch finds most of their bytes there already (a batch
#: of 50 CT slices is 26 MB); smaller ones are written in the event loop and left to that
#: sync, which writes them together.
WRITEBACK_BYTES = 64 * 1024
#: Files the writer keeps open once written: after this many more, the oldest's pages have
#: reached the disk and are given back to the kernel for the next ones (see
#: :func:`..store.release_written`), so that a large upload is written into the same few
#: megabytes of memory rather than into fresh pages, which cost more to fill. Sixteen CT
#: slices (8 MB) on their way keep the disk busy where four (2 MB) left it waiting.
RELEASE_AFTER_FILES = 16
#: Groups of parts a helper process is given at most at once (a second one waits in its
#: pipe while it reads the first). The others wait here while the body comes (this process
#: is then free to receive it), and once it has come this process reads them from the end of
#: the queue while the helper takes groups from its start.
IN_FLIGHT = 2
#: Longest wait for the groups of an upload's end to be in the helpers' pipes before this
#: process reads its own share (see :meth:`PartsToFiles.headers_read`).
SEND_WAIT_SECONDS = 0.005
#: Bytes of parts at most waiting for a helper; beyond, this process reads some itself.
MAX_QUEUED_BYTES = 8 * 1024**2


class StudyMismatchError(BadRequestError):
    """An instance posted to ``/studies/{study}`` belongs to another study."""


@dataclass
class ReceivedPart:
    """One part of the body: on disk once it has ended (under its name in the store, or in
    the incoming directory if it streamed there), unless it was refused already (not DICOM,
    or a header that cannot be read)."""

    number: int
    headers: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    #: The header, read while the part was in memory (``None``: read it from the file).
    parsed: ParsedInstance | None = None
    #: Why the part cannot be stored, found while it was received.
    error: PacsError | None = None
    #: Its name in the store, chosen while it was written (see FileStore.batch_names).
    name: str | None = None

    @property
    def content_type(self) -> str:
        return parse_media_type(self.headers.get("content-type", APPLICATION_DICOM)).name


class PartsToFiles:
    """python-multipart callbacks writing each part of a body to its own file.

    A part is kept in memory up to :data:`SPOOL_BYTES`. When it ends, its header is read
    from there, in the event loop or by a helper process (:mod:`..header_helpers`; small
    parts, in groups; a larger one is read by a helper from its file once written), and
    its file is written, or not at all if the part is refused: a small one here at once,
    one of :data:`WRITEBACK_BYTES` or more by a worker thread meanwhile, which starts it to
    disk. A part larger than :data:`SPOOL_BYTES` streams to its file as it comes.
    """

    def __init__(self, store: FileStore, helpers: HeaderHelpers | None = None) -> None:
        self.store = store
        self._helpers = helpers
        #: Parts waiting for a helper, and groups sent: (future, [(part, bytes)]).
        self._queued: list[tuple[ReceivedPart, bytes]] = []
        self._queued_bytes = 0
        #: (Items are a part and its bytes, or its path for a large part read from its file.)
        self._sent: deque[tuple[Future, list[tuple[ReceivedPart, bytes | Path]]]] = deque()
        self.parts: list[ReceivedPart] = []
        self.finished = False
        #: Files being written by the worker, and the bytes they hold.
        self.pending: deque[tuple[Future, int]] = deque()
        self.pending_bytes = 0
        self._writer: ThreadPoolExecutor | None = None
        self._recent: deque[BinaryIO] = deque()  # written large files, used by the writer
        #: Large parts whose header a helper is to read from their file, and their writes.
        self._unread: deque[tuple[ReceivedPart, Future]] = deque()
        self._names = store.batch_names()
        self._body_id = uuid.uuid4().hex
        self._pieces: list[memoryview] = []  # of the part being received
        self._size = 0
        self._handle: BinaryIO | None = None
        self._field = b""
        self._value = b""

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_part_data": self._data,
            "on_part_end": self._end_part,
            "on_end": self._end,
        }

    def _begin(self) -> None:
        self.parts.append(ReceivedPart(len(self.parts) + 1))
        self._pieces, self._size = [], 0

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        name = self._field.decode("latin-1").strip().lower()
        self.parts[-1].headers[name] = self._value.decode("latin-1").strip()
        self._field = self._value = b""

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._handle is not None:
            self._handle.write(data[start:end])  # to the page cache: the event loop may do it
            return
        # Views, not copies: the body's chunks are immutable bytes, joined once at the end.
        self._pieces.append(memoryview(data)[start:end])
        self._size += end - start
        if self._size > SPOOL_BYTES:
            part = self.parts[-1]
            part.path = self._new_path()
            self._handle = open(part.path, "xb")  # noqa: SIM115 - closed when the part ends
            self._handle.writelines(self._pieces)
            self._pieces = []

    def _end_part(self) -> None:
        part = self.parts[-1]
        if self._handle is not None:
            self._handle.flush()
            start_writeback(self._handle.fileno())
            self._handle.close()
            self._handle = None
            return
        data = b"".join(self._pieces)
        self._pieces, self._size = [], 0
        if part.content_type != APPLICATION_DICOM:
            return  # refused in store_parts: its bytes are not needed
        if self._helpers is not None and len(self.parts) == GROUP_SIZE:
            self._helpers.start()  # an upload worth sharing: have helpers ready
        from_file = self._read_from_file(data)
        if not from_file and not self._read_header(part, data):
            return
        # Straight under its store name: the batch's one sync then makes the content and
        # the name durable together, with no rename (see FileStore.commit_files).
        part.name = next(self._names)
        part.path = self.store.path_of(part.name)
        if len(data) < WRITEBACK_BYTES:
            # Written here: a small file is a few short system calls, and each would cost
            # a worker thread a wait for the interpreter lock, held by this busy thread
            # (up to a switch interval, 5 ms), so a worker fell behind by a whole upload.
            with open(part.path, "xb") as handle:
                handle.write(data)
            return
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, "workbench-stow-writer")
        written = self._writer.submit(self._write, part.path, data)
        self.pending.append((written, len(data)))
        self.pending_bytes += len(data)
        if from_file:
            self._unread.append((part, written))

    def _read_from_file(self, data: bytes) -> bool:
        """Whether a helper is to read the part's header from its file once written: a part
        too large to send them (copying it would cost this process more than the header)."""
        return self._helpers is not None and len(data) > MAX_PART_BYTES and self._helpers.ready

    def share_written(self) -> None:
        """Send the helpers the large parts written since the last call, a group at a time
        (called while the body comes)."""
        while len(self._unread) >= GROUP_SIZE and all(
            written.done() for _, written in itertools.islice(self._unread, GROUP_SIZE)
        ):
            self._send_files([self._unread.popleft()[0] for _ in range(GROUP_SIZE)])

    def _send_files(self, parts: list[ReceivedPart]) -> None:
        self._submit([(part, part.path) for part in parts])  # type: ignore[misc]

    def _read_header(self, part: ReceivedPart, data: bytes) -> bool:
        """Read the part's header here, or queue it for a helper process (helpers are sent
        whole groups while the body comes); ``False`` if it is refused now."""
        helpers = self._helpers
        if helpers is not None and len(data) <= MAX_PART_BYTES and helpers.ready:
            self._queued.append((part, data))
            self._queued_bytes += len(data)
            while len(self._queued) >= GROUP_SIZE and self._helpers_take_more():
                self._send_group()
            while self._queued_bytes > MAX_QUEUED_BYTES:  # helpers far behind: help
                self._parse_last_queued()
            return True
        return _parse_into(part, data)

    def _helpers_take_more(self) -> bool:
        while self._sent and self._sent[0][0].done():
            self._take_group(*self._sent.popleft())
        assert self._helpers is not None
        in_flight = sum(not future.done() for future, _ in self._sent)
        return in_flight < IN_FLIGHT * self._helpers.processes

    def _parse_last_queued(self) -> None:
        part, data = self._queued.pop()
        self._queued_bytes -= len(data)
        _parse_into(part, data)

    def _send_group(self, size: int = GROUP_SIZE) -> None:
        group, self._queued = self._queued[:size], self._queued[size:]
        self._queued_bytes -= sum(len(data) for _, data in group)
        self._submit(group)  # type: ignore[arg-type]

    def _submit(self, group: list[tuple[ReceivedPart, bytes | Path]]) -> None:
        """Have a helper read the group's parts (their bytes, or their files); read here if
        none can."""
        assert self._helpers is not None
        future = self._helpers.submit([(item, f"part {part.number}") for part, item in group])
        if future is None:
            for part, item in group:
                _parse_into(part, item)
        else:
            self._sent.append((future, group))

    def _take_group(self, future: Future, group: list[tuple[ReceivedPart, bytes | Path]]
                    ) -> None:  # fmt: skip
        try:
            results = future.result()
        except Exception as exc:  # the helper died: the group is read here
            log.warning("%s; reading its parts here", exc)
            results = [None] * len(group)
        for (part, data), result in zip(group, results, strict=True):
            if isinstance(result, ParsedInstance):
                part.parsed = result
            elif isinstance(result, PacsError):
                part.error = result
            else:
                _parse_into(part, data)

    def _helpers_share(self, count: int) -> int:
        """How many of ``count`` parts to give the helpers now, so that they and this process
        end together (counting the parts they have not read yet)."""
        assert self._helpers is not None
        helpers = self._helpers.processes
        waiting = sum(len(group) for future, group in self._sent if not future.done())
        return max(0, min(count, (count + waiting) * helpers // (helpers + 1) - waiting))

    async def headers_read(self) -> None:
        """Read the headers still queued, here and by helpers at once (each part then has
        its header or its error): the helpers are sent their share of the queue at once,
        this process reads the rest from the queue's other end meanwhile.

        Shares are fixed up front rather than a group at a time: while this process reads
        it holds the interpreter lock, and the threads talking to the helpers would get it
        only at the next switch of threads (every 5 ms), the helpers waiting meanwhile."""
        if self._queued and self._helpers is not None and self._helpers.ready:
            share = self._helpers_share(len(self._queued))
            while share > 0 and self._queued:
                self._send_group(min(share, GROUP_SIZE))
                share -= GROUP_SIZE
            self._helpers.wait_sent(SEND_WAIT_SECONDS)
        while self._queued:
            self._parse_last_queued()
        if self._unread:  # large parts: read from their files, here and by the helpers
            await self.written()
            parts = [part for part, _ in self._unread]
            self._unread.clear()
            share = self._helpers_share(len(parts))
            for start in range(0, share, GROUP_SIZE):
                self._send_files(parts[start : min(start + GROUP_SIZE, share)])
            self._helpers.wait_sent(SEND_WAIT_SECONDS)  # type: ignore[union-attr]
            for part in parts[share:]:
                _parse_into(part, part.path)  # type: ignore[arg-type]
        while self._sent:
            future, group = self._sent.popleft()
            if not future.done():
                await asyncio.wrap_future(future)
            self._take_group(future, group)

    def _write(self, path: Path, data: bytes) -> None:
        """Write a large part to its file (in the worker thread: the write of half a
        megabyte lets go of the interpreter lock long enough to pay for the hand-over) and
        start it to disk."""
        handle = open(path, "xb")  # noqa: SIM115 - closed here or by _close_recent
        try:
            handle.write(data)
            handle.flush()
            start_writeback(handle.fileno())
            self._recent.append(handle)
        except BaseException:
            handle.close()
            raise
        while len(self._recent) > RELEASE_AFTER_FILES:
            oldest = self._recent.popleft()
            with oldest:
                release_written(oldest.fileno(), oldest.tell())

    def _close_recent(self) -> None:
        while self._recent:
            self._recent.popleft().close()

    def _new_path(self) -> Path:
        # The body's fresh UUID and the part's number cannot collide: one "x" open makes
        # the file, no mkstemp then reopen.
        return self.store.incoming_dir / f"stow-{self._body_id}-{len(self.parts)}.part"

    def _end(self) -> None:
        self.finished = True

    async def written(self, most: int = 0) -> None:
        """Wait until the files being written hold at most ``most`` bytes; raise what kept
        one from being written."""
        while self.pending and self.pending_bytes > most:
            future, size = self.pending[0]
            if not future.done():  # else no hop through the event loop's self-pipe
                await asyncio.wrap_future(future)
            future.result()
            self.pending.popleft()
            self.pending_bytes -= size

    def close(self) -> None:
        """Stop the worker once the file it is writing is done; files it has not started are
        not written (there are none left once :meth:`written` has returned)."""
        if self._writer is not None:
            self._writer.shutdown(wait=True, cancel_futures=True)
            self._writer = None
        self._close_recent()

    def discard(self) -> None:
        """Remove every file written: nothing of a refused body is kept."""
        if self._handle is not None:
            self._handle.close()
        self.close()  # a file being made is removed below
        for part in self.parts:
            if part.path is not None:
                part.path.unlink(missing_ok=True)


def _parse_into(part: ReceivedPart, data: bytes | Path) -> bool:
    """Read the part's header into it; ``False`` (the error kept) if it is refused."""
    try:
        part.parsed = parse_instance(data, f"part {part.number}")
    except PacsError as exc:
        part.error = exc
        return False
    return True


def _boundary(request: Request) -> str:
    media = parse_media_type(request.headers.get("content-type", ""))
    if media.name != "multipart/related":
        raise UnsupportedMediaTypeError(
            f'STOW-RS takes multipart/related; type="{APPLICATION_DICOM}", not '
            f"{request.headers.get('content-type') or 'a body without Content-Type'}"
        )
    kind = media.params.get("type", APPLICATION_DICOM).strip().lower()
    if kind != APPLICATION_DICOM:
        raise UnsupportedMediaTypeError(
            f'Parts of type "{kind}" are not taken: send DICOM Part-10 instances as '
            f'multipart/related; type="{APPLICATION_DICOM}"'
        )
    boundary = media.params.get("boundary", "")
    if not boundary:
        raise BadRequestError("The multipart/related Content-Type has no boundary parameter")
    return boundary


async def receive_parts(request: Request, store: FileStore) -> list[ReceivedPart]:
    """Stream the body's parts to files; a malformed body leaves none behind.

    Raises
    ------
    BadRequestError
        If the body is not well-formed multipart or holds no part.
    PayloadTooLargeError
        Past :data:`MAX_UPLOAD_BYTES`.
    """
    boundary = _boundary(request)
    sink = PartsToFiles(store, getattr(request.app.state, "header_helpers", None))
    parser = MultipartParser(boundary, sink.callbacks())
    try:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise PayloadTooLargeError(f"The body exceeds {MAX_UPLOAD_BYTES} bytes")
            parser.write(chunk)
            sink.share_written()
            await sink.written(MAX_PENDING_BYTES)
        parser.finalize()
        if not sink.finished:
            raise BadRequestError(
                f"The multipart body ends before its closing boundary --{boundary}--"
                + (" (no part was found)" if not sink.parts else "")
            )
        if not sink.parts:
            raise BadRequestError("The multipart body holds no instance")
        await sink.headers_read()
        await sink.written()
        sink.close()
    except MultipartParseError as exc:
        sink.discard()
        raise BadRequestError(f"The multipart body is malformed: {exc}") from exc
    except BaseException:
        sink.discard()
        raise
    return sink.parts


#: The attributes of the answer: (tag as DICOM JSON writes it, VR).
_ANSWER_KEYS = {
    keyword: (f"{tag_for_keyword(keyword):08X}", dictionary_VR(tag_for_keyword(keyword)))
    for keyword in (
        "RetrieveURL",
        "FailedSOPSequence",
        "ReferencedSOPSequence",
        "ReferencedSOPClassUID",
        "ReferencedSOPInstanceUID",
        "FailureReason",
    )
}


def _json(**values: str | int | list[dict]) -> dict:
    """A DICOM JSON object (PS3.18 F.2) of these attributes of the answer, in tag order; an
    empty text has no ``Value``, as pydicom writes it. Made as a dict rather than through a
    pydicom data set, which costs a tenth of a small instance's ingest per item."""
    model = {}
    for keyword, value in values.items():
        tag, vr = _ANSWER_KEYS[keyword]
        if value == "":
            model[tag] = {"vr": vr}
        else:
            model[tag] = {"vr": vr, "Value": value if isinstance(value, list) else [value]}
    return dict(sorted(model.items()))


def _failure(parsed: ParsedInstance | None, reason: int) -> dict:
    if parsed is None:
        return _json(FailureReason=reason)
    return _json(
        ReferencedSOPClassUID=parsed.tags["Instance"].get("SOPClassUID") or "",
        ReferencedSOPInstanceUID=parsed.sop_instance_uid,
        FailureReason=reason,
    )


def store_parts(
    index: Index, parts: list[ReceivedPart], study: str | None, root: str
) -> tuple[int, dict, list[str]]:
    """Store the received parts; return the HTTP status, the answer (DICOM JSON) and the
    reasons of the failures in words."""
    referenced = []
    failed: list[tuple[int, dict, str]] = []  # (part number, item, reason)
    dicom_parts = []
    for part in parts:
        if part.content_type == APPLICATION_DICOM and part.error is None:
            dicom_parts.append(part)
            continue
        if part.error is not None:
            failed.append((part.number, _failure(None, part.error.dimse_status), str(part.error)))
        else:
            reason = f"part {part.number}: Content-Type {part.content_type} is not "
            reason += APPLICATION_DICOM
            failed.append((part.number, _failure(None, NOT_DICOM_REASON), reason))
        if part.path is not None:  # a large part, streamed to its file
            part.path.unlink(missing_ok=True)

    def same_study(parsed: ParsedInstance) -> None:
        found = parsed.tags["Study"]["StudyInstanceUID"]
        if study is not None and found != study:
            raise StudyMismatchError(
                f"instance {parsed.sop_instance_uid} belongs to study {found}, not to "
                f"{study} of the URL"
            )

    outcomes = index.ingest_files(
        [part.path for part in dicom_parts],
        origin="RestApi",
        labels=[f"part {part.number}" for part in dicom_parts],
        parsed=[part.parsed for part in dicom_parts],
        names=[part.name for part in dicom_parts],
        check=same_study,
    )
    studies = set()
    for part, (parsed, outcome) in zip(dicom_parts, outcomes, strict=True):
        if isinstance(outcome, IngestResult):
            study_uid = parsed.tags["Study"]["StudyInstanceUID"]
            studies.add(study_uid)
            referenced.append(
                _json(
                    ReferencedSOPClassUID=parsed.tags["Instance"].get("SOPClassUID") or "",
                    ReferencedSOPInstanceUID=parsed.sop_instance_uid,
                    RetrieveURL=(
                        f"{root}/studies/{study_uid}/series/"
                        f"{parsed.tags['Series']['SeriesInstanceUID']}/instances/"
                        f"{parsed.sop_instance_uid}"
                    ),
                )
            )
        else:
            failed.append((part.number, _failure(parsed, outcome.dimse_status), str(outcome)))
    failed.sort(key=lambda failure: failure[0])
    answer: dict[str, str | list[dict]] = {}
    if study is not None or len(studies) == 1:
        answer["RetrieveURL"] = f"{root}/studies/{study or next(iter(studies))}"
    if referenced:
        answer["ReferencedSOPSequence"] = referenced
    if failed:
        answer["FailedSOPSequence"] = [item for _, item, _ in failed]
    status = 200 if not failed else 202 if referenced else 409
    return status, _json(**answer), [reason for _, _, reason in failed]


async def stow(request: Request, study: str | None) -> Response:
    """Answer a STOW-RS request (``study``: the UID of ``/studies/{study}``, if given)."""
    index: Index = request.app.state.index
    parts = await receive_parts(request, index.store)
    try:
        status, answer, reasons = await run_in_threadpool(
            store_parts, index, parts, study, dicomweb_root(request)
        )
    except BaseException:
        for part in parts:  # each is consumed when stored or refused, unless this failed
            if part.path is not None:
                part.path.unlink(missing_ok=True)
        raise
    for reason in reasons:
        log.warning("STOW-RS: %s", reason)
    body = json.dumps(answer, separators=(",", ":")).encode("utf-8")
    response = Response(body, status_code=status, media_type=DICOM_JSON)
    for reason in reasons[:MAX_WARNINGS]:
        response.headers.append("Warning", warning(request, reason))
    return response


@router.post("/studies", summary="STOW-RS: store instances")
async def store_instances(request: Request) -> Response:
    return await stow(request, None)


@router.post("/studies/{study}", summary="STOW-RS: store instances of one study")
async def store_study_instances(study: str, request: Request) -> Response:
    return await stow(request, study.strip())
