"""WADO-RS (PS3.18 10.4): instances, metadata and bulk data of studies, series, instances.

Instances go out as ``multipart/related; type="application/dicom"``, one stored file after
another. The transfer syntax is negotiated per instance: the stored file is sent as it is
when the client takes its syntax (``transfer-syntax=*`` takes any), otherwise it is
re-encoded (:func:`workbench.pacs.node.transcode.transcode`); without a ``transfer-syntax``
parameter PS3.18's default, Explicit VR Little Endian, applies. Metadata is the DICOM JSON
model of each stored file (:mod:`.jsonmodel`), with ``BulkDataURI`` for large values, which
``.../bulk/{path}`` serves.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pydicom
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydicom.uid import UID, ExplicitVRLittleEndian

from ..errors import BadRequestError, UnknownResourceError
from ..index import Index
from ..node.transcode import TranscodeError, can_transcode, transcode
from .jsonmodel import instance_json_bytes
from .multipart import (
    NotAcceptableError,
    Part,
    accepted,
    file_chunks,
    multipart_parts,
    multipart_response,
)
from .qido import DICOM_JSON, require_dicom_json
from .targets import Target, resolve, stored_files
from .urls import dicomweb_root

log = logging.getLogger(__name__)
router = APIRouter(tags=["dicomweb"])

APPLICATION_DICOM = "application/dicom"
#: PS3.18 8.7.3.5.2: the transfer syntax of ``application/dicom`` when none is asked for.
DEFAULT_SYNTAX = str(ExplicitVRLittleEndian)


def _index(request: Request) -> Index:
    return request.app.state.index


# -- retrieve -------------------------------------------------------------------------------


def _dicom_choices(request: Request) -> list[str]:
    """The transfer syntaxes the request takes for ``application/dicom`` parts, best first
    (``*``: as stored)."""
    choices = []
    for media in multipart_parts(accepted(request), APPLICATION_DICOM):
        if media.matches(APPLICATION_DICOM):
            choices.append(media.transfer_syntax or DEFAULT_SYNTAX)
    if not choices:
        wanted = request.query_params.get("accept") or request.headers.get("accept")
        raise NotAcceptableError(
            f'Instances are sent as multipart/related; type="{APPLICATION_DICOM}"; '
            f"the request accepts only {wanted}"
        )
    return choices


def choose_syntax(stored: str, choices: list[str]) -> str:
    """The transfer syntax to send a file stored in ``stored`` with, of ``choices``.

    Raises
    ------
    NotAcceptableError
        If none of ``choices`` can be produced from the stored file.
    """
    if stored in choices or "*" in choices:
        return stored
    for choice in choices:
        if can_transcode(stored, choice):
            return choice
    names = ", ".join(UID(choice).name for choice in choices)
    raise NotAcceptableError(
        f"The instance is stored as {UID(stored).name} and cannot be sent as {names}"
    )


def stored_syntax(index: Index, instance_id: str, path: Path) -> str:
    """The transfer syntax a stored file is in (kept by the index)."""
    syntax = index.instance_info(instance_id).get("TransferSyntax")
    if syntax:
        return str(syntax)
    return str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)


def encoded_instance(path: Path, syntax: str) -> bytes:
    """A stored file re-encoded in ``syntax``, as Part-10 bytes.

    Raises
    ------
    NotAcceptableError
        If the encoder refuses the image.
    """
    ds = pydicom.dcmread(path)
    try:
        transcode(ds, syntax)
    except TranscodeError as exc:
        raise NotAcceptableError(str(exc)) from exc
    buffer = io.BytesIO()
    # dcmwrite (not save_as) re-encodes values read from a big-endian file.
    syntax_uid = UID(syntax)
    pydicom.dcmwrite(
        buffer,
        ds,
        implicit_vr=syntax_uid.is_implicit_VR,
        little_endian=syntax_uid.is_little_endian,
        enforce_file_format=True,
    )
    return buffer.getvalue()


def _instance_part(path: Path, stored: str, syntax: str) -> Part:
    content_type = f"{APPLICATION_DICOM}; transfer-syntax={syntax}"
    if syntax == stored:
        return Part(content_type, file_chunks(path))
    return Part(content_type, [encoded_instance(path, syntax)])


def retrieve(request: Request, target: Target) -> StreamingResponse:
    """The instances under ``target`` as a ``multipart/related`` response."""
    index = _index(request)
    choices = _dicom_choices(request)
    files = stored_files(index, target)
    if not files:
        raise UnknownResourceError(target.level, target.instance or target.series or target.study)
    # Every syntax is chosen before the first byte goes out, so a 406 is still possible.
    plan = []
    for instance_id, path in files:
        stored = stored_syntax(index, instance_id, path)
        plan.append((path, stored, choose_syntax(stored, choices)))
    first = _instance_part(*plan[0])  # a failing transcode is an error answer, not a cut body

    def parts() -> Iterator[Part]:
        yield first
        for path, stored, syntax in plan[1:]:
            try:
                yield _instance_part(path, stored, syntax)
            except Exception:
                # The answer has begun: the part is left out rather than the body cut.
                log.exception("Cannot send %s as %s in a WADO-RS answer", path, syntax)

    return multipart_response(parts(), APPLICATION_DICOM)


@router.get("/studies/{study}", summary="WADO-RS: the instances of a study")
def retrieve_study(study: str, request: Request) -> Response:
    return retrieve(request, resolve(_index(request), study))


@router.get("/studies/{study}/series/{series}", summary="WADO-RS: the instances of a series")
def retrieve_series(study: str, series: str, request: Request) -> Response:
    return retrieve(request, resolve(_index(request), study, series))


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}", summary="WADO-RS: one instance"
)
def retrieve_instance(study: str, series: str, instance: str, request: Request) -> Response:
    return retrieve(request, resolve(_index(request), study, series, instance))


# -- metadata -------------------------------------------------------------------------------


def metadata(request: Request, target: Target) -> StreamingResponse:
    """The DICOM JSON model of every instance under ``target``, as one JSON array."""
    require_dicom_json(request, "Metadata")
    files = stored_files(_index(request), target)
    root = dicomweb_root(request)
    first = instance_json_bytes(files[0][1], root) if files else b""

    def body() -> Iterator[bytes]:
        yield b"["
        if first:
            yield first
        for _, path in files[1:]:
            try:
                item = instance_json_bytes(path, root)
            except Exception:
                log.exception("Cannot list the metadata of %s", path)
                continue
            yield b","
            yield item
        yield b"]"

    return StreamingResponse(body(), media_type=DICOM_JSON)


@router.get("/studies/{study}/metadata", summary="WADO-RS: metadata of a study's instances")
def study_metadata(study: str, request: Request) -> Response:
    return metadata(request, resolve(_index(request), study))


@router.get(
    "/studies/{study}/series/{series}/metadata", summary="WADO-RS: metadata of a series' instances"
)
def series_metadata(study: str, series: str, request: Request) -> Response:
    return metadata(request, resolve(_index(request), study, series))


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/metadata",
    summary="WADO-RS: metadata of one instance",
)
def instance_metadata(study: str, series: str, instance: str, request: Request) -> Response:
    return metadata(request, resolve(_index(request), study, series, instance))


# -- bulk data ------------------------------------------------------------------------------


def _element_at(ds: pydicom.Dataset, path: str, target: Target) -> pydicom.DataElement:
    """The element at ``gggg eeee/item/gggg eeee...`` of a dataset."""
    node: pydicom.Dataset | pydicom.DataElement = ds
    parts = [part for part in path.split("/") if part]
    if not parts or len(parts) % 2 == 0:
        raise BadRequestError(f"Bulk data path {path!r} must be tag[/item/tag...]")
    for position, part in enumerate(parts):
        where = "/".join(parts[: position + 1])
        if position % 2 == 0:
            try:
                tag = int(part, 16)
            except ValueError:
                raise BadRequestError(f"{part!r} in bulk data path {path!r} is no tag") from None
            if not isinstance(node, pydicom.Dataset) or tag not in node:
                raise UnknownResourceError("Bulk data", f"{target.instance}/bulk/{where}")
            node = node[tag]
        else:
            items = node.value if node.VR == "SQ" else None
            if not part.isdigit() or items is None or int(part) >= len(items):
                raise UnknownResourceError("Bulk data", f"{target.instance}/bulk/{where}")
            node = items[int(part)]
    assert isinstance(node, pydicom.DataElement)
    return node


OCTET_STREAM = "application/octet-stream"


def bulk(request: Request, target: Target, path: str) -> StreamingResponse:
    """One binary value of an instance as ``multipart/related; type=application/octet-stream``;
    pixel data as its frames (:mod:`.frames`)."""
    from .frames import frames_response

    if path.strip("/").upper() in ("7FE00010", "7FE00008", "7FE00009"):
        return frames_response(request, target, None)
    part_types = multipart_parts(accepted(request), OCTET_STREAM)
    if not any(media.matches(OCTET_STREAM) for media in part_types):
        raise NotAcceptableError(f"Bulk data is sent as multipart/related; type={OCTET_STREAM}")
    _, file_path = stored_files(_index(request), target)[0]
    element = _element_at(pydicom.dcmread(file_path), path, target)
    value = element.value
    if not isinstance(value, bytes):
        raise BadRequestError(
            f"Attribute {path} of instance {target.instance} is not bulk data "
            f"({element.VR}); read it from the metadata"
        )
    return multipart_response([Part(OCTET_STREAM, [value])], OCTET_STREAM)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/bulk/{path:path}",
    summary="WADO-RS: one bulk data value of an instance",
)
def instance_bulk(study: str, series: str, instance: str, path: str, request: Request) -> Response:
    return bulk(request, resolve(_index(request), study, series, instance), path)
