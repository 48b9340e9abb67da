"""``/tools``: find (Orthanc's JSON query), lookup of identifiers, server time, new UIDs."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydicom.uid import generate_uid
from starlette.concurrency import run_in_threadpool

from ..errors import BadRequestError
from ..index import Index
from .deps import (
    MAX_INT_ARG,
    TEXT,
    body_doc,
    index_of,
    json_object,
    level_arg,
    level_field,
)

router = APIRouter(prefix="/tools", tags=["tools"])


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT_ARG:
        raise BadRequestError(f'Field "{name}" must be an integer between 0 and {MAX_INT_ARG}')
    return value


FIND_BODY = {
    "type": "object",
    "required": ["Level", "Query"],
    "properties": {
        "Level": {"type": "string", "enum": ["Patient", "Study", "Series", "Instance"]},
        "Query": {"type": "object", "additionalProperties": {"type": "string"},
                  "example": {"PatientName": "DOE*", "StudyDate": "20200101-20201231"}},
        "Expand": {"type": "boolean"},
        "CaseSensitive": {"type": "boolean"},
        "Limit": {"type": "integer", "minimum": 0, "maximum": MAX_INT_ARG},
        "Since": {"type": "integer", "minimum": 0, "maximum": MAX_INT_ARG},
    },
}


@router.post("/find", summary="Find resources by DICOM query (wildcards, ranges, lists)",
             response_model=list[Any],
             openapi_extra=body_doc("application/json", FIND_BODY, "Orthanc's find query"))
async def find(request: Request) -> JSONResponse:
    body = await json_object(request)
    level = level_field(body)
    query = body.get("Query")
    if not isinstance(query, dict):
        raise BadRequestError('Field "Query" is missing, or should be a JSON object')
    for key, value in query.items():
        if not isinstance(value, str):
            raise BadRequestError(f'Query value of "{key}" must be a string')
    # Orthanc's /tools/find matches without case unless asked ("CaseSensitive": true).
    case_sensitive = body.get("CaseSensitive", False)
    expand = body.get("Expand", False)
    if not isinstance(case_sensitive, bool) or not isinstance(expand, bool):
        raise BadRequestError('"CaseSensitive" and "Expand" must be booleans')
    limit, since = _optional_int(body, "Limit"), _optional_int(body, "Since")
    index: Index = index_of(request)

    def run() -> list[Any]:
        ids = index.find(level, query, case_sensitive=case_sensitive, limit=limit, since=since)
        return index.resources(level, ids) if expand else ids

    return JSONResponse(await run_in_threadpool(run))


@router.post("/lookup", summary="Resources whose DICOM identifier equals the body",
             openapi_extra=body_doc("text/plain", TEXT, "A PatientID or a UID"))
async def lookup(request: Request) -> list[dict[str, str]]:
    value = (await request.body()).decode("utf-8", "replace").strip()
    if not value:
        raise BadRequestError("The body must hold a PatientID, StudyInstanceUID, "
                              "SeriesInstanceUID or SOPInstanceUID")
    index: Index = index_of(request)
    return await run_in_threadpool(index.lookup, value)


@router.get("/now", response_class=PlainTextResponse, summary="Server time, UTC")
def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")


@router.get("/now-local", response_class=PlainTextResponse, summary="Server local time")
def now_local() -> str:
    return datetime.now().strftime("%Y%m%dT%H%M%S")


@router.get("/generate-uid", response_class=PlainTextResponse, summary="A new DICOM UID")
def new_uid(level: str = Query("instance")) -> str:
    level_arg(level)
    return generate_uid()


__all__ = ["router"]
