"""Many resources of any level at once: ``/tools/bulk-content``, ``/tools/bulk-delete``,
``/tools/create-archive`` and ``/tools/create-media(-extended)``.

They take Orthanc's body ``{"Resources": [id, ...]}`` (the ZIP routes also a bare list);
IDs of any level may be mixed. The bulk routes skip IDs the index does not hold, as Orthanc
does; the ZIP routes answer 404 for them.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..errors import BadRequestError, UnknownResourceError
from ..export import write_archive_of, write_media_of
from ..index import Index
from ..schema import CHILD
from ..tags import LEVELS
from .deps import body_doc, index_of, json_body, json_object, level_arg, resource_ids
from .resources import zip_now_or_as_job

router = APIRouter(prefix="/tools", tags=["tools"])

BULK_BODY = {
    "type": "object",
    "required": ["Resources"],
    "properties": {
        "Resources": {"type": "array", "items": {"type": "string"}},
        "Level": {"type": "string", "enum": list(LEVELS)},
        "Metadata": {"type": "boolean", "default": True},
    },
}


def at_level(index: Index, level: str, public_id: str, target: str) -> list[str]:
    """The resources at ``target`` of a resource: itself, its ancestor or its descendants."""
    if LEVELS.index(target) <= LEVELS.index(level):
        return [index.ancestor(level, public_id, target)]
    ids = [public_id]
    while level != target:
        ids = [child for parent in ids for child in index.children(level, parent)]
        level = CHILD[level]
    return ids


def _with_metadata(index: Index, level: str, resource: dict[str, Any]) -> dict[str, Any]:
    if level == "Instance":
        info = index.instance_info(resource["ID"])
        metadata = {key: str(value) for key, value in info.items() if value is not None}
    else:
        metadata = {"LastUpdate": resource["LastUpdate"]}
    return {**resource, "Metadata": metadata}


def bulk_content(index: Index, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Orthanc's answer to ``/tools/bulk-content``: the resources, in the order given, or
    with ``Level`` every resource at that level (sorted, once each)."""
    ids = resource_ids(body)
    target = level_arg(body["Level"]) if "Level" in body else None
    metadata = body.get("Metadata", True)
    if not isinstance(metadata, bool):
        raise BadRequestError('Field "Metadata" must be a boolean')
    found: list[tuple[str, str]] = []
    for public_id in ids:
        level = index.level_of(public_id)
        if level is None:
            continue
        if target is None:
            found.append((level, public_id))
        else:
            found.extend((target, i) for i in at_level(index, level, public_id, target))
    if target is not None:
        found = sorted(set(found))
    answers = []
    for level, public_id in found:
        try:
            resource = index.resource(level, public_id)
        except UnknownResourceError:
            continue  # deleted meanwhile
        answers.append(_with_metadata(index, level, resource) if metadata else resource)
    return answers


@router.post(
    "/bulk-content",
    summary="The JSON of many resources of any level (or all at one Level)",
    response_model=list[Any],
    openapi_extra=body_doc("application/json", BULK_BODY, "Resources of any level"),
)
async def post_bulk_content(request: Request) -> JSONResponse:
    body = await json_object(request)
    return JSONResponse(await run_in_threadpool(bulk_content, index_of(request), body))


def bulk_delete(index: Index, ids: list[str]) -> None:
    """Delete each resource still held (one may be gone with an ancestor deleted before)."""
    for public_id in ids:
        level = index.level_of(public_id)
        if level is None:
            continue
        try:
            index.delete(level, public_id)
        except UnknownResourceError:
            continue


@router.post(
    "/bulk-delete",
    summary="Delete many resources of any level",
    openapi_extra=body_doc("application/json", BULK_BODY, "Resources of any level"),
)
async def post_bulk_delete(request: Request) -> Response:
    ids = resource_ids(await json_object(request))
    await run_in_threadpool(bulk_delete, index_of(request), ids)
    return Response(status_code=200, media_type="text/plain")  # empty, as Orthanc answers


def _zip_resources(index: Index, body: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The options and ``(level, ID)`` resources of a create-archive/media body."""
    options = body if isinstance(body, dict) else {}
    ids = body.get("Resources") if isinstance(body, dict) else body
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadRequestError("Expected a list of strings (Orthanc identifiers)")
    resources = []
    for public_id in ids:
        level = index.level_of(public_id)
        if level is None:
            raise UnknownResourceError("Resource", public_id)
        resources.append((level, public_id))
    return options, resources


async def _create_zip(request: Request, write: Any, job_type: str) -> Any:
    index: Index = index_of(request)
    body = await json_body(request)
    options, resources = await run_in_threadpool(_zip_resources, index, body)
    fill = partial(write, index, resources)
    return await zip_now_or_as_job(request, options, fill, "archive.zip", job_type)


ZIP_BODY = {
    "oneOf": [
        {"type": "array", "items": {"type": "string"}},
        {"type": "object", "required": ["Resources"],
         "properties": {"Resources": {"type": "array", "items": {"type": "string"}},
                        "Asynchronous": {"type": "boolean"}}},
    ]
}  # fmt: skip


@router.post(
    "/create-archive",
    summary="ZIP of the files of many resources (or an Archive job)",
    openapi_extra=body_doc("application/json", ZIP_BODY, "Resources of any level"),
)
async def create_archive(request: Request) -> Any:
    return await _create_zip(request, write_archive_of, "Archive")


@router.post(
    "/create-media",
    summary="DICOMDIR media ZIP of many resources (or a Media job)",
    openapi_extra=body_doc("application/json", ZIP_BODY, "Resources of any level"),
)
@router.post(
    "/create-media-extended",
    summary="DICOMDIR media ZIP of many resources (the same DICOMDIR as create-media)",
    openapi_extra=body_doc("application/json", ZIP_BODY, "Resources of any level"),
)
async def create_media(request: Request) -> Any:
    return await _create_zip(request, write_media_of, "Media")
