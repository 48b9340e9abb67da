"""``/studies/{id}/split`` and ``/studies/{id}/merge`` (Orthanc 1.10), each run now or, with
``"Asynchronous": true``, as a ``SplitStudy`` / ``MergeStudy`` job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..jobs import Job
from ..restructure import merge_request, merge_study, split_request, split_study
from .deps import body_doc, index_of, json_object
from .jobs import now_or_as_job

router = APIRouter(prefix="/studies", tags=["studies"])

_IDS = {"type": "array", "items": {"type": "string"}}
SPLIT_BODY = {
    "type": "object",
    "properties": {
        "Series": _IDS,
        "Instances": _IDS,
        "Replace": {"type": "object", "additionalProperties": {"type": "string"}},
        "Remove": _IDS,
        "KeepSource": {"type": "boolean"},
        "Asynchronous": {"type": "boolean"},
    },
}
MERGE_BODY = {
    "type": "object",
    "properties": {
        "Resources": _IDS,
        "KeepSource": {"type": "boolean"},
        "Asynchronous": {"type": "boolean"},
    },
}


@router.post("/{study_id}/split", summary="Copy series/instances into a new study",
             openapi_extra=body_doc("application/json", SPLIT_BODY))  # fmt: skip
async def split(study_id: str, request: Request) -> dict[str, Any]:
    body = await json_object(request)
    wanted = split_request(body)
    index = index_of(request)

    def run(job: Job) -> dict[str, Any]:
        return split_study(index, study_id, wanted, job.step)

    return await now_or_as_job(request, body, "SplitStudy", run)


@router.post("/{study_id}/merge", summary="Copy studies/series/instances into this study",
             openapi_extra=body_doc("application/json", MERGE_BODY))  # fmt: skip
async def merge(study_id: str, request: Request) -> dict[str, Any]:
    body = await json_object(request)
    resources, keep_source = merge_request(body)
    index = index_of(request)

    def run(job: Job) -> dict[str, Any]:
        return merge_study(index, study_id, resources, keep_source, job.step)

    return await now_or_as_job(request, body, "MergeStudy", run)
