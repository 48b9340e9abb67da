"""``/tools``: find (Orthanc's JSON query), lookup of identifiers, server time, new UIDs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pydicom
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.uid import generate_uid
from starlette.concurrency import run_in_threadpool

from ..dicomjson import dataset_to_json
from ..errors import BadRequestError
from ..index import Index, searchable_keywords
from ..index.labels import CONSTRAINTS, check_label
from ..node.query import ParsedQuery, find_resources
from ..tags import keyword_of
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

#: The VRs on which PS3.4 C.2.2.2.4 allows no wildcard. Orthanc's ``/tools/find`` answers a
#: ``*`` or ``?`` on them with a 400 (even a lone ``*``), rather than matching nothing.
NO_WILDCARD_VRS = frozenset(
    {
        "DA",
        "TM",
        "DT",
        "SL",
        "SS",
        "US",
        "UL",
        "FL",
        "FD",
        "OB",
        "OW",
        "UN",
        "AT",
        "DS",
        "IS",
        "AS",
        "UI",
    }
)


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT_ARG:
        raise BadRequestError(f'Field "{name}" must be an integer between 0 and {MAX_INT_ARG}')
    return value


@dataclass
class FindRequest:
    """An Orthanc ``/tools/find`` (or ``/tools/count-resources``) body, checked."""

    level: str
    query: dict[str, str]
    case_sensitive: bool
    expand: bool
    limit: int | None
    since: int | None
    requested_tags: list[str]
    #: ``Labels`` and ``LabelsConstraint`` (Orthanc 1.12): ``All``, ``Any`` or ``None``.
    labels: list[str] = field(default_factory=list)
    labels_constraint: str = "All"

    def ids(self, index: Index, *, paged: bool = True) -> list[str]:
        """The IDs found (one page of them unless ``paged`` is false)."""
        limit, since = (self.limit, self.since) if paged else (None, None)
        kept = searchable_keywords("Instance") | {"ModalitiesInStudy"}  # every level's
        if set(self.query) - kept:
            # Tags the index keeps below the level stay a 400 (the statement says why).
            index.find_statement(self.level, {k: v for k, v in self.query.items() if k in kept})
            return self._ids_from_files(index, limit, since)
        if not self.labels:
            return index.find(self.level, self.query, case_sensitive=self.case_sensitive,
                              limit=limit, since=since)  # fmt: skip
        # Labels filter the query's answers, then the page is taken, in creation order
        # (which a limit, even the largest, asks of the index).
        ordered = MAX_INT_ARG if limit or since else None
        ids = index.find(self.level, self.query, case_sensitive=self.case_sensitive,
                         limit=ordered)  # fmt: skip
        ids = index.with_labels(self.level, ids, self.labels, self.labels_constraint)
        start = since or 0
        return ids[start:] if limit is None else ids[start : start + limit]

    def _ids_from_files(self, index: Index, limit: int | None, since: int | None) -> list[str]:
        """The IDs found when the query names tags the index does not keep: those are read
        from one file under each resource the indexed tags let through, as Orthanc does
        (``StorageAccessOnFind``), by the same code as C-FIND."""
        parsed = ParsedQuery(self.level, constraints=self.query)
        if not self.labels:
            found = find_resources(index, parsed, limit=limit, offset=since or 0,
                                   case_sensitive=self.case_sensitive)  # fmt: skip
            return [resource.id for resource in found]
        found = find_resources(index, parsed, offset=0, limit=MAX_INT_ARG,
                               case_sensitive=self.case_sensitive)  # fmt: skip
        ids = index.with_labels(self.level, [r.id for r in found], self.labels,
                                self.labels_constraint)  # fmt: skip
        start = since or 0
        return ids[start:] if limit is None else ids[start : start + limit]


def find_request(body: dict[str, Any]) -> FindRequest:
    """Check a find body, with a 400 naming the first field that is wrong."""
    level = level_field(body)
    query = body.get("Query")
    if not isinstance(query, dict):
        raise BadRequestError('Field "Query" is missing, or should be a JSON object')
    keywords = {}
    for key, value in query.items():
        if not isinstance(value, str):
            raise BadRequestError(f'Query value of "{key}" must be a string')
        try:
            keyword = keyword_of(key)
        except ValueError as exc:
            raise BadRequestError(f'Field "Query": {exc}') from exc
        if ("*" in value or "?" in value) and _forbids_wildcards(keyword):
            tag = tag_for_keyword(keyword) or 0
            raise BadRequestError(f"Wildcards are not allowed on tag "
                                  f"{tag >> 16:04x},{tag & 0xFFFF:04x} ({keyword})")  # fmt: skip
        keywords[keyword] = value
    query = keywords
    # Orthanc's /tools/find matches without case unless asked ("CaseSensitive": true).
    case_sensitive = body.get("CaseSensitive", False)
    expand = body.get("Expand", False)
    if not isinstance(case_sensitive, bool) or not isinstance(expand, bool):
        raise BadRequestError('"CaseSensitive" and "Expand" must be booleans')
    limit, since = _optional_int(body, "Limit"), _optional_int(body, "Since")
    requested = _keywords(body.get("RequestedTags", []))
    labels = body.get("Labels", [])
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise BadRequestError('Field "Labels" must be a list of labels')
    for label in labels:
        try:
            check_label(label)
        except BadRequestError as exc:
            raise BadRequestError(f'Field "Labels": {exc}') from exc
    constraint = body.get("LabelsConstraint", "All")
    if constraint not in CONSTRAINTS:
        raise BadRequestError(f'Field "LabelsConstraint" must be one of {", ".join(CONSTRAINTS)}')
    return FindRequest(level, query, case_sensitive, expand, limit, since, requested,
                       labels, constraint)  # fmt: skip


def _forbids_wildcards(keyword: str) -> bool:
    # A few tags have a choice of VRs ("US or SS"); any of them forbids.
    return bool(set(dictionary_VR(keyword).split(" or ")) & NO_WILDCARD_VRS)


def _keywords(names: Any) -> list[str]:
    """``RequestedTags`` as keywords (``gggg,eeee`` accepted), or a 400."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadRequestError('Field "RequestedTags" must be a list of tag names')
    keywords = []
    for name in names:
        digits = name.replace(",", "").replace("-", "")
        keyword = name if tag_for_keyword(name) is not None else None
        if keyword is None and len(digits) == 8:
            try:
                keyword = keyword_for_tag(int(digits, 16)) or None
            except ValueError:
                keyword = None
        if keyword is None:
            raise BadRequestError(f"RequestedTags: unknown DICOM tag {name!r}")
        keywords.append(keyword)
    return keywords


def requested_tags(index: Index, level: str, ids: list[str],
                   keywords: list[str]) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Each resource's requested tags, as Orthanc adds them (``RequestedTags``): from the
    index when it keeps them, else from one of the resource's files. Absent tags are left
    out."""
    stored = index.tags_with_parents(level, ids)
    answers: dict[str, dict[str, Any]] = {}
    unread = []
    for public_id in ids:
        own = stored.get(public_id, {})
        answers[public_id] = {k: own[k] for k in keywords if k in own}
        if len(answers[public_id]) < len(keywords):
            unread.append(public_id)
    for public_id, path in index.representative_files(level, unread).items():
        simplified = dataset_to_json(pydicom.dcmread(path, defer_size=4096), form="simplify")
        for keyword in keywords:
            if keyword not in answers[public_id] and keyword in simplified:
                answers[public_id][keyword] = simplified[keyword]
    return answers


FIND_BODY = {
    "type": "object",
    "required": ["Level", "Query"],
    "properties": {
        "Level": {"type": "string", "enum": ["Patient", "Study", "Series", "Instance"]},
        "Query": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "example": {"PatientName": "DOE*", "StudyDate": "20200101-20201231"},
        },
        "Expand": {"type": "boolean"},
        "CaseSensitive": {"type": "boolean"},
        "Limit": {"type": "integer", "minimum": 0, "maximum": MAX_INT_ARG},
        "Since": {"type": "integer", "minimum": 0, "maximum": MAX_INT_ARG},
        "RequestedTags": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Tags added to each expanded answer",
        },
    },
}


@router.post(
    "/find",
    summary="Find resources by DICOM query (wildcards, ranges, lists)",
    response_model=list[Any],
    openapi_extra=body_doc("application/json", FIND_BODY, "Orthanc's find query"),
)
async def find(request: Request) -> JSONResponse:
    spec = find_request(await json_object(request))
    index: Index = index_of(request)

    def run() -> list[Any]:
        ids = spec.ids(index)
        if not spec.expand:
            return ids
        resources = index.resources(spec.level, ids)
        if spec.requested_tags:
            tags = requested_tags(index, spec.level, ids, spec.requested_tags)
            for resource in resources:
                resource["RequestedTags"] = tags[resource["ID"]]
        return resources

    return JSONResponse(await run_in_threadpool(run))


@router.post(
    "/count-resources",
    summary="How many resources a find query matches",
    openapi_extra=body_doc("application/json", FIND_BODY, "Orthanc's find query"),
)
async def count_resources(request: Request) -> dict[str, int]:
    spec = find_request(await json_object(request))
    index: Index = index_of(request)
    ids = await run_in_threadpool(lambda: spec.ids(index, paged=False))
    return {"Count": len(ids)}


@router.post(
    "/lookup",
    summary="Resources whose DICOM identifier equals the body",
    openapi_extra=body_doc("text/plain", TEXT, "A PatientID or a UID"),
)
async def lookup(request: Request) -> list[dict[str, str]]:
    value = (await request.body()).decode("utf-8", "replace").strip()
    if not value:
        raise BadRequestError(
            "The body must hold a PatientID, StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID"
        )
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
