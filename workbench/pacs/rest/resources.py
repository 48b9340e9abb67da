"""Routes shared by the four levels: ``/patients``, ``/studies``, ``/series``, ``/instances``.

Listing, one resource, its statistics, children and parents, deletion, ZIP archive, DICOMDIR
media. Routes are plain ``def`` functions: FastAPI runs them in a thread
pool, so file and database work never blocks the event loop.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from ..errors import BadRequestError
from ..export import write_archive, write_media
from ..index import Index
from ..jobs import Job, Output
from ..schema import CHILD, PARENT
from ..tags import LEVELS, PLURAL
from .deps import body_doc, flag, get_index, index_of, int_arg, json_object
from .jobs import asynchronous, now_or_as_job

SINGULAR = {"Patient": "patient", "Study": "study", "Series": "series", "Instance": "instance"}


def zip_response(fill: Callable[[Path], Any], filename: str) -> FileResponse:
    """A ZIP that ``fill(path)`` writes in a temporary file, which is deleted once sent (or
    at once if writing fails)."""
    fd, name = tempfile.mkstemp(suffix=".zip", prefix="workbench-")
    os.close(fd)
    path = Path(name)
    try:
        fill(path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(
        path,
        media_type="application/zip",
        filename=filename,
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


async def zip_now_or_as_job(request: Request, body: dict[str, Any], fill: Callable[[Path], int],
                            filename: str, job_type: str) -> Any:  # fmt: skip
    """The ZIP ``fill(path)`` writes (returning its instance count) now, or with
    ``"Asynchronous": true`` a job (``Archive`` or ``Media``) whose output ``archive`` is the
    ZIP, as Orthanc's ``POST .../archive``, ``.../media`` and ``/tools/create-*``."""
    if not asynchronous(body):
        return await run_in_threadpool(zip_response, fill, filename)

    def make(job: Job) -> dict[str, Any]:
        fd, name = tempfile.mkstemp(suffix=".zip", prefix="workbench-job-")
        os.close(fd)
        path = Path(name)
        try:
            count = fill(path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        job.outputs["archive"] = Output(path, "application/zip", filename)
        size = path.stat().st_size
        return {"ArchiveSize": str(size), "ArchiveSizeMB": size // 2**20,
                "Description": "REST API", "InstancesCount": count}  # fmt: skip

    return await now_or_as_job(request, body, job_type, make)


async def _resource_zip(request: Request, write: Callable[[Index, str, str, Path], int],
                        level: str, resource_id: str, filename: str) -> Any:  # fmt: skip
    index: Index = index_of(request)
    body = await json_object(request, required=False)
    index.resource(level, resource_id)  # 404 before any work
    job_type = "Media" if write is write_media else "Archive"
    return await zip_now_or_as_job(request, body, partial(write, index, level, resource_id),
                                   filename, job_type)  # fmt: skip


def level_router(level: str) -> APIRouter:
    """Build the router of one level (``/patients`` ...)."""
    plural = PLURAL[level]
    router = APIRouter(prefix=f"/{plural}", tags=[plural])

    # Hot read routes answer JSONResponse directly: the index already returns plain JSON
    # types, so FastAPI's generic encoding pass would only add latency.
    @router.get("", summary=f"List {plural}", response_model=list[Any])
    def list_resources(
        expand: str | None = Query(None, description="Return full resources, not IDs"),
        limit: str | None = Query(None),
        since: str | None = Query(None),
        index: Index = Depends(get_index),
    ) -> JSONResponse:
        ids = index.list_ids(level, limit=int_arg(limit, "limit"), since=int_arg(since, "since"))
        return JSONResponse(index.resources(level, ids) if flag(expand) else ids)

    @router.get("/{resource_id}", summary=f"One {SINGULAR[level]}", response_model=dict[str, Any])
    def get_resource(resource_id: str, index: Index = Depends(get_index)) -> JSONResponse:
        return JSONResponse(index.resource(level, resource_id))

    @router.delete("/{resource_id}", summary=f"Delete a {SINGULAR[level]} and its descendants")
    def delete_resource(resource_id: str, index: Index = Depends(get_index)) -> dict[str, Any]:
        return {"RemainingAncestor": index.delete(level, resource_id)}

    @router.get("/{resource_id}/statistics", summary="Counts and sizes")
    def statistics(resource_id: str, index: Index = Depends(get_index)) -> dict[str, Any]:
        return index.resource_statistics(level, resource_id)

    @router.get("/{resource_id}/archive", summary="ZIP of every file")
    def archive(resource_id: str, index: Index = Depends(get_index)) -> FileResponse:
        index.resource(level, resource_id)  # 404 before any work
        fill = partial(write_archive, index, level, resource_id)
        return zip_response(fill, f"{resource_id}.zip")

    @router.get("/{resource_id}/media", summary="ZIP with a DICOMDIR (PS3.10 media)")
    def media(resource_id: str, index: Index = Depends(get_index)) -> FileResponse:
        index.resource(level, resource_id)  # 404 before any work
        fill = partial(write_media, index, level, resource_id)
        return zip_response(fill, f"{resource_id}-media.zip")

    @router.post("/{resource_id}/archive", summary="ZIP of every file (or an Archive job)")
    async def archive_job(resource_id: str, request: Request) -> Any:
        return await _resource_zip(request, write_archive, level, resource_id,
                                        f"{resource_id}.zip")  # fmt: skip

    @router.post("/{resource_id}/media", summary="DICOMDIR media ZIP (or a Media job)")
    async def media_job(resource_id: str, request: Request) -> Any:
        return await _resource_zip(request, write_media, level, resource_id,
                                        f"{resource_id}-media.zip")  # fmt: skip

    # Lower levels: /patients/{id}/studies, /patients/{id}/series, /patients/{id}/instances...
    for lower in LEVELS[LEVELS.index(level) + 1 :]:
        _add_descendants_route(router, level, lower)
    # Upper levels: /instances/{id}/series, /instances/{id}/study, /series/{id}/patient...
    for upper in LEVELS[: LEVELS.index(level)]:
        _add_ancestor_route(router, level, upper)

    if level == "Patient":

        @router.get(
            "/{resource_id}/protected",
            response_class=PlainTextResponse,
            summary="1 if the patient is protected from recycling",
        )
        def get_protected(resource_id: str, index: Index = Depends(get_index)) -> str:
            return "1" if index.is_protected(resource_id) else "0"

        @router.put(
            "/{resource_id}/protected",
            summary="Protect (1) or unprotect (0)",
            openapi_extra=body_doc("text/plain", {"type": "string", "enum": ["0", "1"]}),
        )
        async def put_protected(resource_id: str, request: Request) -> dict[str, Any]:
            body = (await request.body()).decode("utf-8", "replace").strip()
            if body not in ("0", "1"):
                raise BadRequestError("The body must be 0 or 1")
            index: Index = index_of(request)
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(index.set_protected, resource_id, body == "1")
            return {}

    return router


def _add_descendants_route(router: APIRouter, level: str, lower: str) -> None:
    @router.get(f"/{{resource_id}}/{PLURAL[lower]}", summary=f"The {PLURAL[lower]} below")
    def descendants(
        resource_id: str, expand: str | None = Query(None), index: Index = Depends(get_index)
    ) -> list[Any]:
        ids = [resource_id]
        current = level
        while current != lower:
            ids = [child for parent in ids for child in index.children(current, parent)]
            current = CHILD[current]
        # Orthanc expands these lists unless ?expand=false.
        if expand is not None and not flag(expand):
            return ids
        return index.resources(lower, ids)


def _add_ancestor_route(router: APIRouter, level: str, upper: str) -> None:
    @router.get(f"/{{resource_id}}/{SINGULAR[upper]}", summary=f"The {SINGULAR[upper]} above")
    def ancestor(resource_id: str, index: Index = Depends(get_index)) -> dict[str, Any]:
        return index.resource(upper, index.ancestor(level, resource_id, upper))


ROUTERS = [level_router(level) for level in LEVELS]
assert set(PARENT) | {"Patient"} == set(LEVELS)
