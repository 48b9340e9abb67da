"""``/{level}/{id}/metadata``: what the server knows of a resource (reception, origin,
transfer syntax... read only) and user metadata (indexes 1024 to 65535) written with PUT and
DELETE, each value with an ETag ``"revision-md5"`` that ``If-Match`` checks."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from ..errors import BadRequestError, PacsError, UnknownResourceError
from ..index import Index
from ..tags import LEVELS, PLURAL
from .deps import TEXT, body_doc, flag, get_index, index_of


class ReadOnlyMetadataError(PacsError):
    """The server's own metadata cannot be written (Orthanc: 403)."""

    http_status = 403


def system_metadata(index: Index, level: str, public_id: str) -> dict[str, str]:
    """The metadata the server keeps itself (``ModifiedFrom``... included), as text."""
    if level == "Instance":
        info = index.instance_info(public_id)
    else:
        info = {"LastUpdate": index.resource(level, public_id).get("LastUpdate")}
    info.update(index.server_metadata(level, public_id))
    return {name: str(value) for name, value in info.items() if value is not None}


def etag(revision: int, value: str) -> str:
    return f'"{revision}-{hashlib.md5(value.encode("utf-8")).hexdigest()}"'


def if_match(request: Request) -> int | None:
    """The revision an ``If-Match`` header names (``"revision-md5"``), or ``None``."""
    header = request.headers.get("if-match")
    if header is None:
        return None
    revision = header.strip().strip('"').split("-", 1)[0]
    if "-" not in header or not revision.isdigit():
        raise BadRequestError('The "If-Match" header should hold an ETag (revision, "-", '
                              f"MD5), not {header!r}")  # fmt: skip
    return int(revision)


def metadata_router(level: str) -> APIRouter:
    """The metadata routes of one level."""
    router = APIRouter(prefix=f"/{PLURAL[level]}", tags=[PLURAL[level]])

    @router.get("/{resource_id}/metadata", summary="Metadata names (values with ?expand)")
    def listing(resource_id: str, expand: str | None = Query(None),
                index: Index = Depends(get_index)) -> Any:  # fmt: skip
        values = system_metadata(index, level, resource_id)
        values.update((name, value) for name, (value, _) in
                      index.user_metadata(level, resource_id).items())  # fmt: skip
        return values if flag(expand) else list(values)

    @router.get("/{resource_id}/metadata/{name}", response_class=PlainTextResponse,
                summary="One metadata value (user values with their ETag)")  # fmt: skip
    def one(resource_id: str, name: str, index: Index = Depends(get_index)) -> Response:
        user = index.user_metadata(level, resource_id)
        if name in user:
            value, revision = user[name]
            return PlainTextResponse(value, headers={"ETag": etag(revision, value)})
        system = system_metadata(index, level, resource_id)
        if name not in system:
            raise UnknownResourceError("Metadata", name)
        return PlainTextResponse(system[name])

    @router.put("/{resource_id}/metadata/{name}", summary="Write user metadata (1024-65535)",
                openapi_extra=body_doc("text/plain", TEXT, "The value"))  # fmt: skip
    async def write(resource_id: str, name: str, request: Request) -> dict:
        index: Index = index_of(request)
        value = (await request.body()).decode("utf-8", "replace")
        expected = if_match(request)
        system = await run_in_threadpool(system_metadata, index, level, resource_id)
        if name in system:
            raise ReadOnlyMetadataError(f"Metadata {name} is kept by the server: read only")
        if not name.isdigit():
            raise UnknownResourceError("Metadata", name)
        await run_in_threadpool(index.put_metadata, level, resource_id, name, value, expected)
        return {}

    @router.delete("/{resource_id}/metadata/{name}", summary="Delete user metadata")
    async def remove(resource_id: str, name: str, request: Request) -> dict:
        index: Index = index_of(request)
        expected = if_match(request)
        system = await run_in_threadpool(system_metadata, index, level, resource_id)
        if name in system:
            raise ReadOnlyMetadataError(f"Metadata {name} is kept by the server: read only")
        await run_in_threadpool(index.delete_metadata, level, resource_id, name, expected)
        return {}

    return router


ROUTERS = [metadata_router(level) for level in LEVELS]
