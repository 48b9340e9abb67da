"""``/queries``: answers of C-FINDs made through ``/modalities/{id}/query``, and retrieves.

As in Orthanc, a query made to a modality is kept with its answers so a client can look at
them and then C-MOVE one answer (``/answers/{i}/retrieve``) or all (``/retrieve``), by
default to this server. Queries live in memory and the oldest are forgotten past a limit.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import PlainTextResponse
from pydicom.dataset import Dataset
from starlette.concurrency import run_in_threadpool

from ..dicomjson import dataset_to_json
from ..errors import BadRequestError, PacsError, UnknownResourceError
from ..node import DicomNetworkError
from ..node.query import dataset_from_query
from ..node.scu import orthanc_query
from ..tags import IDENTIFIER, LEVELS
from .deps import flag, json_body, node_of

router = APIRouter(prefix="/queries", tags=["queries"])

#: Orthanc keeps 100 queries (``QueryRetrieveSize``); so do we.
MAX_QUERIES = 100


@dataclass
class StoredQuery:
    modality: str
    level: str
    query: dict[str, str]
    answers: list[Dataset]


class _Registry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: OrderedDict[str, StoredQuery] = OrderedDict()


def _registry(app: FastAPI) -> _Registry:
    registry = getattr(app.state, "queries", None)
    if registry is None:
        registry = app.state.queries = _Registry()
    return registry


def create_query(
    app: FastAPI, modality: str, level: str, query: dict[str, str], answers: list[Dataset]
) -> str:
    """Keep a query and its answers; return its ID."""
    registry = _registry(app)
    query_id = str(uuid.uuid4())
    with registry.lock:
        registry.items[query_id] = StoredQuery(modality, level, dict(query), list(answers))
        while len(registry.items) > MAX_QUERIES:
            registry.items.popitem(last=False)
    return query_id


def _query(request: Request, query_id: str) -> StoredQuery:
    registry = _registry(request.app)
    with registry.lock:
        found = registry.items.get(query_id)
    if found is None:
        raise UnknownResourceError("Query", query_id)
    return found


def _answer(stored: StoredQuery, index: str, query_id: str) -> Dataset:
    try:
        position = int(index)
    except ValueError:
        raise BadRequestError(f"Answer index must be an integer, got {index!r}") from None
    if not 0 <= position < len(stored.answers):
        raise UnknownResourceError("Answer", f"{query_id}/answers/{index}")
    return stored.answers[position]


@router.get("", summary="List the kept queries")
def list_queries(request: Request) -> list[str]:
    registry = _registry(request.app)
    with registry.lock:
        return list(registry.items)


@router.get("/{query_id}", summary="What can be read from a query")
def query_operations(query_id: str, request: Request) -> list[str]:
    _query(request, query_id)
    return ["answers", "level", "modality", "query", "retrieve"]


@router.delete("/{query_id}", summary="Forget a query")
def delete_query(query_id: str, request: Request) -> dict[str, Any]:
    _query(request, query_id)
    registry = _registry(request.app)
    with registry.lock:
        registry.items.pop(query_id, None)
    return {}


@router.get("/{query_id}/level", response_class=PlainTextResponse)
def query_level(query_id: str, request: Request) -> str:
    return _query(request, query_id).level


@router.get("/{query_id}/modality", response_class=PlainTextResponse)
def query_modality(query_id: str, request: Request) -> str:
    return _query(request, query_id).modality


@router.get("/{query_id}/query", summary="The keys the query was made with")
def query_keys(
    query_id: str,
    request: Request,
    simplify: str | None = Query(None),
    short: str | None = Query(None),
) -> dict[str, Any]:
    stored = _query(request, query_id)
    keys = dataset_from_query(stored.level, stored.query)
    del keys.QueryRetrieveLevel
    form = "simplify" if flag(simplify) else "short" if flag(short) else "full"
    return dataset_to_json(keys, form=form)


@router.get("/{query_id}/answers", summary="Indexes of the answers (or their content)")
def answers(
    query_id: str,
    request: Request,
    expand: str | None = Query(None),
    simplify: str | None = Query(None),
) -> Any:
    stored = _query(request, query_id)
    if flag(expand):
        form = "simplify" if flag(simplify) else "full"
        return [dataset_to_json(answer, form=form) for answer in stored.answers]
    return [str(position) for position in range(len(stored.answers))]


#: The levels below each one, as ``query-{plural}`` operations on an answer.
_CHILD_QUERIES = {
    "Patient": ("studies", "series", "instances"),
    "Study": ("series", "instances"),
    "Series": ("instances",),
    "Instance": (),
}
_CHILD_LEVEL = {"studies": "Study", "series": "Series", "instances": "Instance"}


@router.get("/{query_id}/answers/{index}", summary="What can be done with an answer")
def answer_operations(query_id: str, index: str, request: Request) -> list[str]:
    stored = _query(request, query_id)
    _answer(stored, index, query_id)
    return ["content", "retrieve", *(f"query-{child}" for child in _CHILD_QUERIES[stored.level])]


@router.post(
    "/{query_id}/answers/{index}/query-{children}",
    summary="C-FIND below one answer (its series, its instances...)",
)
async def query_children(
    query_id: str, index: str, children: str, request: Request
) -> dict[str, Any]:
    """A new query at a lower level, constrained to the answer's identifiers, as Orthanc's
    ``/queries/{id}/answers/{index}/query-series`` (body: ``{"Query": {...}}``, optional)."""
    stored = _query(request, query_id)
    answer = _answer(stored, index, query_id)
    if children not in _CHILD_QUERIES[stored.level]:
        raise UnknownResourceError("Operation", f"query-{children} of a {stored.level} answer")
    body = await json_body(request, required=False) or {}
    keys = body.get("Query", {}) if isinstance(body, dict) else None
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        raise BadRequestError('Field "Query" must be an object of strings')
    keys = {**keys, **_retrieve_keys(stored, answer)}
    level = _CHILD_LEVEL[children]
    node = node_of(request)
    try:
        answers = await run_in_threadpool(
            node.find, stored.modality, level, orthanc_query(level, keys), main_tags=False
        )
    except DicomNetworkError as exc:
        raise PacsError(str(exc)) from exc  # 500, as Orthanc answers a failed C-FIND
    child_id = create_query(request.app, stored.modality, level, keys, answers)
    return {"ID": child_id, "Path": f"/queries/{child_id}"}


@router.get("/{query_id}/answers/{index}/content", summary="The tags of one answer")
def answer_content(
    query_id: str,
    index: str,
    request: Request,
    simplify: str | None = Query(None),
    short: str | None = Query(None),
) -> dict[str, Any]:
    answer = _answer(_query(request, query_id), index, query_id)
    form = "simplify" if flag(simplify) else "short" if flag(short) else "full"
    return dataset_to_json(answer, form=form)


def _retrieve_keys(stored: StoredQuery, answer: Dataset) -> dict[str, str]:
    """The unique keys of an answer down to the query's level: what a C-MOVE needs."""
    keys = {}
    for level in LEVELS[: LEVELS.index(stored.level) + 1]:
        keyword = IDENTIFIER[level]
        value = str(answer.get(keyword, "") or "")
        if value:
            keys[keyword] = value
    if IDENTIFIER[stored.level] not in keys:
        raise BadRequestError(f"The answer has no {IDENTIFIER[stored.level]} to retrieve it by")
    return keys


async def _target(request: Request, default: str) -> str:
    body = await json_body(request, required=False)
    if body is None or body == "":
        return default
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        target = body.get("TargetAet", default)
        if isinstance(target, str) and target:
            return target
    raise BadRequestError('The body must be a target AET, or {"TargetAet": ...}')


async def _move(request: Request, stored: StoredQuery, answers: list[Dataset]) -> dict[str, Any]:
    node = node_of(request)
    if node is None:
        raise BadRequestError("The DICOM node is not running on this server")
    raw = (await request.body()).strip()
    if raw and not raw.startswith((b"{", b'"')):
        target = raw.decode("ascii", errors="replace").strip()  # Orthanc accepts a bare AET
    else:
        target = await _target(request, node.aet)
    moved = []
    for answer in answers:
        keys = _retrieve_keys(stored, answer)
        try:
            await run_in_threadpool(node.move, stored.modality, keys, target, level=stored.level)
        except DicomNetworkError as exc:
            error = PacsError(str(exc))
            raise error from exc
        moved.append(keys)
    return {
        "Description": "REST API",
        "LocalAet": node.aet,
        "TargetAet": target,
        "RemoteAet": node.modality(stored.modality).aet,
        "Query": moved,
    }


@router.post("/{query_id}/answers/{index}/retrieve", summary="C-MOVE one answer")
async def retrieve_answer(query_id: str, index: str, request: Request) -> dict[str, Any]:
    stored = _query(request, query_id)
    return await _move(request, stored, [_answer(stored, index, query_id)])


@router.post("/{query_id}/retrieve", summary="C-MOVE every answer")
async def retrieve_all(query_id: str, request: Request) -> dict[str, Any]:
    stored = _query(request, query_id)
    return await _move(request, stored, stored.answers)
