"""``POST /{level}/{id}/modify`` and ``POST /{level}/{id}/anonymize``, as Orthanc.

- an instance: the modified (anonymized) DICOM file is the answer, nothing is stored;
- a patient, study or series: a modified copy is stored as new resources and the answer is
  ``{"ID", "Path", "PatientID", "Type", ...}``, or with ``"Asynchronous": true`` a
  ``ResourceModification`` job whose content that answer is;
- ``/tools/bulk-modify``, ``/tools/bulk-anonymize``: the same over the instances of every
  resource of ``Resources`` (Orthanc 1.9.4), answering every resource the copies are in.

The body is checked before any work (an unknown tag, an identifier touched without
``Force``... is a 400 naming it); :mod:`workbench.pacs.modification` does the rewriting.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from ..errors import UnknownResourceError
from ..index import Index
from ..jobs import Job
from ..modification import Modification
from ..resource_modification import Options, modified_file, modify_resources
from ..tags import LEVELS, PLURAL
from .deps import body_doc, index_of, json_object, level_arg, resource_ids
from .jobs import now_or_as_job

_TAG_LIST = {"type": "array", "items": {"type": "string"}}
_COMMON = {
    "Replace": {"type": "object", "description": "Tag (keyword or gggg,eeee) → new value"},
    "Remove": _TAG_LIST,
    "Keep": _TAG_LIST,
    "Force": {"type": "boolean", "description": "Allow touching PatientID and the UIDs"},
    "PrivateCreator": {"type": "string"},
    "Transcode": {"type": "string", "description": "Transfer syntax UID of the copies"},
    "KeepSource": {"type": "boolean"},
    "Permissive": {"type": "boolean", "description": "Skip instances that cannot be modified"},
    "Asynchronous": {"type": "boolean"},
    "Priority": {"type": "integer"},
}
MODIFY_BODY = {
    "type": "object",
    "properties": {**_COMMON, "RemovePrivateTags": {"type": "boolean"}},
}
ANONYMIZE_BODY = {"type": "object", "properties": {
    **_COMMON, "KeepPrivateTags": {"type": "boolean"},
    "DicomVersion": {"type": "string", "enum": ["2008", "2017c", "2021b"]}}}  # fmt: skip


def dicom_file(data: bytes) -> Response:
    return Response(data, media_type="application/dicom")


def modify_router(level: str) -> APIRouter:
    """The modify and anonymize routes of one level."""
    router = APIRouter(prefix=f"/{PLURAL[level]}", tags=[PLURAL[level]])
    is_instance = level == "Instance"
    answer = "the modified DICOM file" if is_instance else "a modified copy, stored"

    @router.post("/{resource_id}/modify", summary=f"Modify: {answer}",
                 openapi_extra=body_doc("application/json", MODIFY_BODY))  # fmt: skip
    async def modify(resource_id: str, request: Request) -> Any:
        body = await json_object(request)
        modification = Modification.from_modify_request(body, None if is_instance else level)
        return await _run(request, level, resource_id, body, modification)

    @router.post("/{resource_id}/anonymize", summary=f"Anonymize (PS3.15): {answer}",
                 openapi_extra=body_doc("application/json", ANONYMIZE_BODY))  # fmt: skip
    async def anonymize(resource_id: str, request: Request) -> Any:
        body = await json_object(request)
        index: Index = index_of(request)
        modification = await run_in_threadpool(index.anonymization, body)
        return await _run(request, level, resource_id, body, modification)

    return router


async def _run(request: Request, level: str, resource_id: str, body: dict[str, Any],
               modification: Modification) -> Any:  # fmt: skip
    index: Index = index_of(request)
    options = Options.of(body)  # a 400 before any work
    await run_in_threadpool(index.resource, level, resource_id)  # 404 before any work
    if level == "Instance":
        data = await run_in_threadpool(modified_file, index, resource_id, modification,
                                       options.transcode)  # fmt: skip
        return dicom_file(data)

    def work(job: Job) -> dict[str, Any]:
        return index.store_modified(level, resource_id, modification, body, job)

    return await now_or_as_job(request, body, "ResourceModification", work)


tools_router = APIRouter(prefix="/tools", tags=["tools"])
_BULK = {"Resources": {"type": "array", "items": {"type": "string"}}}


@tools_router.post("/bulk-modify", summary="Modify the instances of several resources",
                   openapi_extra=body_doc("application/json", {
                       "type": "object", "required": ["Resources"], "properties": {
                           **MODIFY_BODY["properties"], **_BULK,
                           "Level": {"type": "string", "enum": list(LEVELS)}}}))  # fmt: skip
async def bulk_modify(request: Request) -> Any:
    body = await json_object(request)
    level = body.get("Level")
    if level is not None:
        level = level_arg(level)
    modification = Modification.from_modify_request(body, level)
    return await _run_bulk(request, body, modification)


@tools_router.post("/bulk-anonymize", summary="Anonymize the instances of several resources",
                   openapi_extra=body_doc("application/json", {
                       "type": "object", "required": ["Resources"],
                       "properties": {**ANONYMIZE_BODY["properties"], **_BULK}}))  # fmt: skip
async def bulk_anonymize(request: Request) -> Any:
    body = await json_object(request)
    index: Index = index_of(request)
    modification = await run_in_threadpool(index.anonymization, body)
    return await _run_bulk(request, body, modification)


async def _run_bulk(request: Request, body: dict[str, Any], modification: Modification) -> Any:
    """Orthanc's bulk modification: one modification over the instances of every resource
    listed (any level), stored as copies; a job with ``Asynchronous``."""
    index: Index = index_of(request)
    options = Options.of(body)
    resources = []
    for public_id in resource_ids(body):
        level = await run_in_threadpool(index.level_of, public_id)
        if level is None:
            raise UnknownResourceError("Resource", public_id)
        resources.append((level, public_id))

    def work(job: Job) -> dict[str, Any]:
        return modify_resources(index, resources, modification, options, job)

    return await now_or_as_job(request, body, "ResourceModification", work)


ROUTERS = [*(modify_router(level) for level in LEVELS), tools_router]
