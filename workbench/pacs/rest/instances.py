"""Instance-only routes: upload, file, tags, content, frames and PNG previews."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pydicom
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from pydicom.datadict import tag_for_keyword
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile

from ..dicomjson import dataset_to_json, dicomweb_json, dicomweb_xml
from ..errors import (
    BadRequestError,
    PacsError,
    PayloadTooLargeError,
    UnknownResourceError,
)
from ..index import Index
from .deps import BINARY, body_doc, flag, get_index, index_of
from .uploads import ingest_form_files, ingest_upload, ingest_zip, is_zip

router = APIRouter(prefix="/instances", tags=["instances"])

#: Largest upload accepted in one request (a ZIP of a study can be big; memory is not).
MAX_UPLOAD_BYTES = 2 * 1024**3


@router.post(
    "",
    summary="Store DICOM files: one file, a ZIP of them, or a form of files",
    openapi_extra=body_doc(
        "application/octet-stream",
        BINARY,
        "A DICOM file (Part-10, or a bare data set), a ZIP "
        "archive of them, or multipart/form-data files; "
        "Content-Encoding: gzip is accepted",
    ),
)
async def upload(request: Request) -> Any:
    index: Index = index_of(request)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await _upload_form(index, request)
    # The body streams to a file in the store's incoming directory: memory stays bounded
    # whatever the upload size, and a single file is then renamed into place, not copied.
    temp = index.store.new_temp_path()
    try:
        size = 0
        with open(temp, "wb") as handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise PayloadTooLargeError(f"The body exceeds {MAX_UPLOAD_BYTES} bytes")
                handle.write(chunk)  # to the page cache: no need to leave the event loop
        if size == 0:
            raise BadRequestError(
                "The body is empty; send a DICOM file, a ZIP of them or a form of files"
            )
        if is_zip(temp):
            return await run_in_threadpool(ingest_zip, index, temp)
        return await run_in_threadpool(ingest_upload, index, temp, f"uploaded data ({size} bytes)")
    finally:
        temp.unlink(missing_ok=True)


async def _upload_form(index: Index, request: Request) -> Response:
    try:
        form = await request.form(max_files=100_000, max_part_size=MAX_UPLOAD_BYTES)
    except Exception as exc:  # the multipart parser's errors: the body is malformed
        raise BadRequestError(f"The multipart/form-data body cannot be parsed: {exc}") from exc
    try:
        files = [
            (value.filename or name, value.file)
            for name, value in form.multi_items()
            if isinstance(value, StarletteUploadFile)
        ]
        await run_in_threadpool(ingest_form_files, index, files)
    finally:
        await form.close()
    return Response(status_code=200)


def _read(index: Index, instance_id: str, *, pixels: bool = False) -> pydicom.Dataset:
    path = index.instance_path(instance_id)
    # Deferring large values keeps pixel data on disk while the header is listed.
    return pydicom.dcmread(path, defer_size=None if pixels else 4096)


@router.get("/{instance_id}/file", summary="The DICOM file (or its DICOM JSON/XML by Accept)")
def get_file(instance_id: str, request: Request, index: Index = Depends(get_index)) -> Response:
    path = index.instance_path(instance_id)
    # As Orthanc (1.5.4): the whole Accept header naming the DICOMweb JSON or XML model.
    accept = request.headers.get("accept", "").split(";")[0].strip().lower()
    if accept in (DICOM_JSON, DICOM_XML):
        try:
            model = dicomweb_json(path)
        except Exception as exc:  # pydicom converts lazily: a damaged value surfaces here
            raise BadRequestError(
                f"The stored file of instance {instance_id} cannot be given as {accept} "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        if accept == DICOM_XML:
            return Response(dicomweb_xml(model), media_type=DICOM_XML)
        body = json.dumps(model, ensure_ascii=False).encode("utf-8")
        return Response(body, media_type=DICOM_JSON)
    return FileResponse(path, media_type="application/dicom", filename=f"{instance_id}.dcm")


DICOM_JSON = "application/dicom+json"
DICOM_XML = "application/dicom+xml"


@lru_cache(maxsize=128)
def stored_tags_json(path: Path, form: str) -> bytes:
    # Stored files never change (a new version gets a new UUID name), so the rendered
    # listing of a path can be kept: viewers ask for the same instances again and again.
    ds = pydicom.dcmread(path, defer_size=4096)
    return json.dumps(dataset_to_json(ds, form=form), ensure_ascii=False).encode("utf-8")


def tags_json(index: Index, instance_id: str, form: str, path: Path | None = None) -> bytes:
    """The JSON listing of an instance's stored file in ``form``, or a 400 naming the
    attribute problem (``path``: the file, when the caller already knows it)."""
    try:
        return stored_tags_json(path or index.instance_path(instance_id), form)
    except PacsError:
        raise
    except Exception as exc:  # pydicom converts values lazily: a damaged one fails here
        raise BadRequestError(
            f"The stored file of instance {instance_id} has an attribute "
            f"that cannot be decoded ({type(exc).__name__}: {exc})"
        ) from exc


def _tags_response(index: Index, instance_id: str, form: str) -> Response:
    return Response(tags_json(index, instance_id, form), media_type="application/json")


@router.get("/{instance_id}/tags", summary="Every attribute (?simplify, ?short)")
def get_tags(
    instance_id: str,
    simplify: str | None = Query(None),
    short: str | None = Query(None),
    index: Index = Depends(get_index),
) -> Response:
    form = "simplify" if flag(simplify) else "short" if flag(short) else "full"
    return _tags_response(index, instance_id, form)


@router.get("/{instance_id}/simplified-tags", summary="Every attribute, keyword → value")
def get_simplified_tags(instance_id: str, index: Index = Depends(get_index)) -> Response:
    return _tags_response(index, instance_id, "simplify")


@router.get("/{instance_id}/header", summary="File meta information")
def get_header(
    instance_id: str, simplify: str | None = Query(None), index: Index = Depends(get_index)
) -> JSONResponse:
    ds = _read(index, instance_id)
    form = "simplify" if flag(simplify) else "full"
    return JSONResponse(dataset_to_json(ds.file_meta, form=form, meta=True))


@router.get("/{instance_id}/content", summary="Tags at the top level, as gggg-eeee")
def get_content_root(instance_id: str, index: Index = Depends(get_index)) -> list[str]:
    ds = _read(index, instance_id)
    return [f"{e.tag.group:04x}-{e.tag.element:04x}" for e in ds if e.tag.group != 2]


@router.get("/{instance_id}/content/{path:path}", summary="Raw value of a (nested) attribute")
def get_content(instance_id: str, path: str, index: Index = Depends(get_index)) -> Response:
    node: Any = _read(index, instance_id, pixels=True)
    parts = [p for p in path.split("/") if p]
    for position, part in enumerate(parts):
        if isinstance(node, pydicom.Dataset):
            tag = _parse_content_tag(part)
            if tag not in node:
                raise UnknownResourceError("Attribute", "/".join(parts[: position + 1]))
            node = node[tag]
        elif isinstance(node, pydicom.DataElement) and node.VR == "SQ":
            if not part.isdigit() or int(part) >= len(node.value):
                raise UnknownResourceError("Sequence item", "/".join(parts[: position + 1]))
            node = node.value[int(part)]
        else:
            raise UnknownResourceError("Attribute", "/".join(parts[: position + 1]))
    if isinstance(node, pydicom.Dataset):
        return JSONResponse([f"{e.tag.group:04x}-{e.tag.element:04x}" for e in node])
    if node.VR == "SQ":
        return JSONResponse([str(i) for i in range(len(node.value))])
    value = node.value
    if isinstance(value, bytes):
        return Response(value, media_type="application/octet-stream")
    from ..tags import value_text

    return PlainTextResponse(value_text(value, node.VR))


def _parse_content_tag(part: str) -> int:
    """A tag of a ``/content`` path: ``gggg-eeee`` (or ``gggg,eeee``) or a keyword."""
    digits = part.replace("-", "").replace(",", "")
    if len(digits) == 8:
        try:
            return int(digits, 16)
        except ValueError:
            pass
    tag = tag_for_keyword(part)
    if tag is None:
        raise BadRequestError(f"{part!r} is neither a tag (gggg-eeee) nor a DICOM keyword")
    return tag


@router.get("/{instance_id}/frames", summary="Frame numbers (0-based)")
def get_frames(instance_id: str, index: Index = Depends(get_index)) -> list[int]:
    return list(range(frame_count(index, instance_id)))


def frame_count(index: Index, instance_id: str) -> int:
    """The number of frames of an instance (1 unless NumberOfFrames says more)."""
    text = index.main_dicom_tags("Instance", instance_id).get("NumberOfFrames")
    try:
        return max(1, int(text)) if text else 1
    except ValueError:
        return 1
