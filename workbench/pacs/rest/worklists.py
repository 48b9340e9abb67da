"""Worklists over REST, as Orthanc's Worklists plugin (1.12.10) manages them, and worklist
queries to modalities (``find-worklist``).

The items are the ``.wl`` files of the ``Worklists`` folder that the Modality Worklist SCP
serves (see :mod:`workbench.pacs.node.worklist`), so a RIS may write files, use this API, or
both:

- ``POST /worklists/create`` with ``{"Tags": {...}}`` (Orthanc's simplified JSON; sequences
  as lists of objects) writes one; a Study Instance UID is added when it has none
  (``SetStudyInstanceUidIfMissing``, default true). Answers ``{"ID", "Path"}``.
- ``GET /worklists``: every item as ``{"ID", "Tags"}``; ``GET /worklists/{id}`` one;
  ``PUT /worklists/{id}`` with ``{"Tags"}`` replaces it; ``DELETE /worklists/{id}``.
- ``POST /modalities/{id}/find-worklist`` with a query (``{"Query": {...}}``, or the tags
  alone as before Orthanc 1.9.5; ``"Short": true`` or ``"Full": true`` for those forms):
  a Modality Worklist C-FIND to that modality, answers as Orthanc shows them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from ..config import Config
from ..dicomjson import dataset_from_json, dataset_to_json
from ..errors import BadRequestError, PacsError, UnknownResourceError
from ..node.access import option
from ..node.worklist import read_worklists, worklist_folder, worklist_path, write_worklist
from .deps import config_of, json_object
from .modalities import _dimse, _modality, _node, current_config

router = APIRouter(prefix="/worklists", tags=["worklists"])
modalities_router = APIRouter(prefix="/modalities", tags=["modalities"])
ROUTERS = (router, modalities_router)


class WorklistsDisabledError(PacsError):
    """The ``Worklists`` option is not enabled, so there is no folder to keep them in."""

    http_status = 404


def _folder(request: Request) -> Path:
    folder = worklist_folder(config_of(request))
    if folder is None:
        raise WorklistsDisabledError(
            'Worklists are not enabled: set the option "Worklists": {"Enable": true, '
            '"Database": "<folder>"}'
        )
    return folder


def _item(body: dict[str, Any]):
    tags = body.get("Tags")
    if not isinstance(tags, dict) or not tags:
        raise BadRequestError('The body must give the worklist as {"Tags": {...}}')
    try:
        return dataset_from_json(tags)
    except ValueError as exc:
        raise BadRequestError(f"Bad worklist tags: {exc}") from exc


def _path(folder: Path, worklist_id: str) -> Path:
    try:
        return worklist_path(folder, worklist_id)
    except KeyError:
        raise UnknownResourceError("Worklist", worklist_id) from None


def _shown(path: Path, item) -> dict[str, Any]:
    return {"ID": path.stem, "Tags": dataset_to_json(item, form="simplify")}


def _set_study_uid(request: Request) -> bool:
    worklists = option(config_of(request), "Worklists") or {}
    return bool(worklists.get("SetStudyInstanceUidIfMissing", True))


@router.get("", summary="Every worklist item")
def list_worklists(request: Request) -> list[dict[str, Any]]:
    return [_shown(path, item) for path, item in read_worklists(_folder(request))]


@router.post("/create", summary="Create a worklist item")
async def create_worklist(request: Request) -> dict[str, Any]:
    folder = _folder(request)
    item = _item(await json_object(request))
    worklist_id = await run_in_threadpool(
        write_worklist, folder, item, set_study_uid=_set_study_uid(request)
    )
    return {"ID": worklist_id, "Path": f"/worklists/{worklist_id}"}


@router.get("/{worklist_id}", summary="One worklist item")
def get_worklist(worklist_id: str, request: Request) -> dict[str, Any]:
    path = _path(_folder(request), worklist_id)
    for found, item in read_worklists(path.parent):
        if found == path:
            return _shown(path, item)
    raise UnknownResourceError("Worklist", worklist_id)


@router.put("/{worklist_id}", summary="Replace a worklist item")
async def put_worklist(worklist_id: str, request: Request) -> dict[str, Any]:
    folder = _folder(request)
    _path(folder, worklist_id)
    item = _item(await json_object(request))
    await run_in_threadpool(
        write_worklist, folder, item, worklist_id, set_study_uid=_set_study_uid(request)
    )
    return {}


@router.delete("/{worklist_id}", summary="Delete a worklist item")
def delete_worklist(worklist_id: str, request: Request) -> dict[str, Any]:
    _path(_folder(request), worklist_id).unlink(missing_ok=True)
    return {}


def _answer_form(body: dict[str, Any]) -> str:
    if body.get("Short"):
        return "short"
    if body.get("Full"):
        return "full"
    return "simplify"


@modalities_router.post("/{name}/find-worklist", summary="Worklist C-FIND to a modality")
async def find_worklist(
    name: str, request: Request, config: Config = Depends(current_config)
) -> list[dict[str, Any]]:
    node = _node(request)
    _modality(config, name)
    body = await json_object(request)
    query = body.get("Query", body)
    try:
        identifier = dataset_from_json(query)
    except ValueError as exc:
        raise BadRequestError(f"Bad worklist query: {exc}") from exc
    answers = await _dimse(node.find_worklist, name, identifier)
    form = _answer_form(body if "Query" in body else {})
    return [dataset_to_json(answer, form=form) for answer in answers]
