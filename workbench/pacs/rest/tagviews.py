"""Tag views of a resource as Orthanc serves them: ``shared-tags``, ``module`` (and a study's
``module-patient``) and ``instances-tags``, each in the full form or with ``?simplify`` /
``?short``.

Every view is made from the instances' stored files, read through the same cached listing
as ``/instances/{id}/tags``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydicom.datadict import tag_for_keyword

from ..dicomjson import reform
from ..index import Index
from ..modules import MODULE_KEYWORDS
from ..tags import LEVELS, PLURAL
from .deps import flag, get_index
from .instances import tags_json

_MODULE_KEYS = {
    level: frozenset(
        f"{tag_for_keyword(k) >> 16:04x},{tag_for_keyword(k) & 0xFFFF:04x}" for k in keywords
    )
    for level, keywords in MODULE_KEYWORDS.items()
}


def tags_form(simplify: str | None, short: str | None) -> str:
    """The JSON form asked by ``?simplify`` / ``?short`` (full otherwise)."""
    return "simplify" if flag(simplify) else "short" if flag(short) else "full"


def full_tags(index: Index, instance_id: str, path: Path | None = None) -> dict[str, Any]:
    """The full Orthanc JSON of an instance's stored file."""
    return json.loads(tags_json(index, instance_id, "full", path))


def shared_tags(index: Index, level: str, public_id: str) -> dict[str, Any]:
    """The text attributes whose value is the same in every instance, in full form (as
    Orthanc: sequences, binary and too long values never count as shared)."""
    index.resource(level, public_id)  # 404 before any work
    shared: dict[str, Any] | None = None
    for instance_id, path in index.instance_files(level, public_id):
        tags = {k: v for k, v in full_tags(index, instance_id, path).items()
                if v["Type"] == "String"}  # fmt: skip
        if shared is None:
            shared = tags
        else:
            shared = {k: v for k, v in shared.items()
                      if k in tags and tags[k]["Value"] == v["Value"]}  # fmt: skip
    return shared or {}


def module_tags(index: Index, level: str, public_id: str, module: str) -> dict[str, Any]:
    """The attributes of ``module`` (a level's module table) in one instance of the
    resource, in full form."""
    index.resource(level, public_id)
    files = index.instance_files(level, public_id, limit=1)
    if not files:
        return {}
    instance_id, path = files[0]
    keys = _MODULE_KEYS[module]
    return {k: v for k, v in full_tags(index, instance_id, path).items() if k in keys}


def instances_tags(index: Index, level: str, public_id: str) -> dict[str, Any]:
    """Instance ID → full tags of every instance under the resource."""
    index.resource(level, public_id)
    return {instance_id: full_tags(index, instance_id, path)
            for instance_id, path in index.instance_files(level, public_id)}  # fmt: skip


def tag_views_router(level: str) -> APIRouter:
    """The tag views of one level (``/series/{id}/shared-tags`` ...)."""
    router = APIRouter(prefix=f"/{PLURAL[level]}", tags=[PLURAL[level]])

    def answer(tags: dict[str, Any], form: str) -> JSONResponse:
        return JSONResponse(reform(tags, form))

    @router.get("/{resource_id}/module", summary=f"The {level} module's attributes")
    def module(resource_id: str, simplify: str | None = Query(None),
               short: str | None = Query(None), index: Index = Depends(get_index)
               ) -> JSONResponse:  # fmt: skip
        return answer(module_tags(index, level, resource_id, level), tags_form(simplify, short))

    if level == "Instance":
        return router

    @router.get("/{resource_id}/shared-tags", summary="Attributes equal in every instance")
    def shared(resource_id: str, simplify: str | None = Query(None),
               short: str | None = Query(None), index: Index = Depends(get_index)
               ) -> JSONResponse:  # fmt: skip
        return answer(shared_tags(index, level, resource_id), tags_form(simplify, short))

    @router.get("/{resource_id}/instances-tags", summary="Instance ID → its attributes")
    def every_instance(resource_id: str, simplify: str | None = Query(None),
                       short: str | None = Query(None), index: Index = Depends(get_index)
                       ) -> JSONResponse:  # fmt: skip
        form = tags_form(simplify, short)
        return JSONResponse({instance_id: reform(tags, form) for instance_id, tags
                             in instances_tags(index, level, resource_id).items()})  # fmt: skip

    if level == "Study":

        @router.get("/{resource_id}/module-patient", summary="The Patient module's attributes")
        def module_patient(resource_id: str, simplify: str | None = Query(None),
                           short: str | None = Query(None), index: Index = Depends(get_index)
                           ) -> JSONResponse:  # fmt: skip
            tags = module_tags(index, level, resource_id, "Patient")
            return answer(tags, tags_form(simplify, short))

    return router


ROUTERS = [tag_views_router(level) for level in LEVELS]
