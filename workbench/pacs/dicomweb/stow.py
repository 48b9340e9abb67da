"""STOW-RS (PS3.18 10.5): many instances in one ``multipart/related`` upload.

The body streams through python-multipart's parser straight into files of the store's
incoming directory, so memory stays bounded whatever the upload. Only once the whole body has
been read and found well formed are the files stored, all through
:meth:`workbench.pacs.Index.ingest_files` (the path C-STORE and ``POST /instances`` take,
with one sync of the store and one transaction for the whole batch). A malformed body stores
nothing. Each instance then succeeds or fails on its own: the answer lists them in
ReferencedSOPSequence and FailedSOPSequence (with a FailureReason, and the reason in words in
a ``Warning`` header), with status 200 (all stored), 202 (some) or 409 (none).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydicom.dataset import Dataset
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser
from starlette.concurrency import run_in_threadpool

from ..errors import BadRequestError, PayloadTooLargeError
from ..index import Index
from ..parsing import ParsedInstance
from ..results import IngestResult
from ..store import FileStore
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


class StudyMismatchError(BadRequestError):
    """An instance posted to ``/studies/{study}`` belongs to another study."""


@dataclass
class ReceivedPart:
    """One part of the body, on disk in the incoming directory."""

    path: Path
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return parse_media_type(self.headers.get("content-type", APPLICATION_DICOM)).name


class PartsToFiles:
    """python-multipart callbacks writing each part of a body to its own file."""

    def __init__(self, store: FileStore) -> None:
        self.store = store
        self.parts: list[ReceivedPart] = []
        self.finished = False
        self._handle = None
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
        part = ReceivedPart(self.store.new_temp_path())
        self.parts.append(part)
        self._handle = open(part.path, "wb")  # noqa: SIM115 - closed at the part's end

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        name = self._field.decode("latin-1").strip().lower()
        self.parts[-1].headers[name] = self._value.decode("latin-1").strip()
        self._field = self._value = b""

    def _data(self, data: bytes, start: int, end: int) -> None:
        self._handle.write(data[start:end])  # to the page cache: the event loop may do it

    def _end_part(self) -> None:
        self._handle.close()
        self._handle = None

    def _end(self) -> None:
        self.finished = True

    def discard(self) -> None:
        """Remove every file written: nothing of a refused body is kept."""
        if self._handle is not None:
            self._handle.close()
        for part in self.parts:
            part.path.unlink(missing_ok=True)


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
    sink = PartsToFiles(store)
    parser = MultipartParser(boundary, sink.callbacks())
    try:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise PayloadTooLargeError(f"The body exceeds {MAX_UPLOAD_BYTES} bytes")
            parser.write(chunk)
        parser.finalize()
        if not sink.finished:
            raise BadRequestError(
                f"The multipart body ends before its closing boundary --{boundary}--"
                + (" (no part was found)" if not sink.parts else "")
            )
        if not sink.parts:
            raise BadRequestError("The multipart body holds no instance")
    except MultipartParseError as exc:
        sink.discard()
        raise BadRequestError(f"The multipart body is malformed: {exc}") from exc
    except BaseException:
        sink.discard()
        raise
    return sink.parts


def _failure(parsed: ParsedInstance | None, reason: int) -> Dataset:
    item = Dataset()
    if parsed is not None:
        item.ReferencedSOPClassUID = parsed.tags["Instance"].get("SOPClassUID") or ""
        item.ReferencedSOPInstanceUID = parsed.sop_instance_uid
    item.FailureReason = reason
    return item


def store_parts(
    index: Index, parts: list[ReceivedPart], study: str | None, root: str
) -> tuple[int, Dataset, list[str]]:
    """Store the received parts; return the HTTP status, the response dataset and the
    reasons of the failures in words."""
    response = Dataset()
    referenced, failed, reasons = [], [], []
    dicom_parts = []
    for number, part in enumerate(parts, start=1):
        if part.content_type != APPLICATION_DICOM:
            part.path.unlink(missing_ok=True)
            failed.append(_failure(None, NOT_DICOM_REASON))
            reasons.append(
                f"part {number}: Content-Type {part.content_type} is not {APPLICATION_DICOM}"
            )
        else:
            dicom_parts.append((number, part))

    def same_study(parsed: ParsedInstance) -> None:
        found = parsed.tags["Study"]["StudyInstanceUID"]
        if study is not None and found != study:
            raise StudyMismatchError(
                f"instance {parsed.sop_instance_uid} belongs to study {found}, not to "
                f"{study} of the URL"
            )

    outcomes = index.ingest_files(
        [part.path for _, part in dicom_parts],
        origin="RestApi",
        labels=[f"part {number}" for number, _ in dicom_parts],
        check=same_study,
    )
    studies = set()
    for parsed, outcome in outcomes:
        if isinstance(outcome, IngestResult):
            study_uid = parsed.tags["Study"]["StudyInstanceUID"]
            studies.add(study_uid)
            item = Dataset()
            item.ReferencedSOPClassUID = parsed.tags["Instance"].get("SOPClassUID") or ""
            item.ReferencedSOPInstanceUID = parsed.sop_instance_uid
            item.RetrieveURL = (
                f"{root}/studies/{study_uid}/series/"
                f"{parsed.tags['Series']['SeriesInstanceUID']}/instances/"
                f"{parsed.sop_instance_uid}"
            )
            referenced.append(item)
        else:
            failed.append(_failure(parsed, outcome.dimse_status))
            reasons.append(str(outcome))
    if study is not None or len(studies) == 1:
        response.RetrieveURL = f"{root}/studies/{study or next(iter(studies))}"
    if referenced:
        response.ReferencedSOPSequence = referenced
    if failed:
        response.FailedSOPSequence = failed
    status = 200 if not failed else 202 if referenced else 409
    return status, response, reasons


async def stow(request: Request, study: str | None) -> Response:
    """Answer a STOW-RS request (``study``: the UID of ``/studies/{study}``, if given)."""
    index: Index = request.app.state.index
    parts = await receive_parts(request, index.store)
    try:
        status, dataset, reasons = await run_in_threadpool(
            store_parts, index, parts, study, dicomweb_root(request)
        )
    finally:
        for part in parts:
            part.path.unlink(missing_ok=True)  # consumed already, unless something failed
    for reason in reasons:
        log.warning("STOW-RS: %s", reason)
    body = json.dumps(dataset.to_json_dict(), separators=(",", ":")).encode("utf-8")
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
