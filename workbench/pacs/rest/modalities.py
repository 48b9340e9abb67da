"""``/modalities``: declared DICOM peers, and C-ECHO/C-STORE/C-FIND/C-MOVE/C-GET to them.

Same paths, bodies and answers as Orthanc, so existing scripts carry over. DIMSE work runs in a
worker thread so the event loop keeps serving while a peer answers.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any

import pydicom
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from ..config import Config
from ..errors import BadRequestError, DatabaseUnavailableError, PacsError, UnknownResourceError
from ..jobs import Job
from ..node import DicomNetworkError
from ..node.access import Modality, modalities, parse_modality
from ..node.scu import orthanc_query
from ..tags import IDENTIFIER
from .deps import (
    config_of,
    flag,
    index_of,
    json_body,
    json_object,
    level_arg,
    level_field,
    node_of,
)
from .jobs import now_or_as_job
from .queries import create_query

router = APIRouter(prefix="/modalities", tags=["modalities"])
#: ``/tools/dicom-echo``, beside Orthanc's other tools.
tools_router = APIRouter(prefix="/tools", tags=["modalities"])
ROUTERS = (router, tools_router)


class DicomNetworkFailure(PacsError):
    """A remote modality could not be reached or answered a failure (Orthanc answers 500)."""

    http_status = 500


class NodeUnavailableError(PacsError):
    """The REST server runs without a DIMSE node."""

    http_status = 503


def _node(request: Request) -> Any:
    node = node_of(request)
    if node is None:
        raise NodeUnavailableError("The DICOM node is not running on this server")
    return node


def current_config(request: Request) -> Config:
    """Dependency: the configuration; with ``DicomModalitiesInDatabase`` its modalities are
    first read again from the database, which another server on it may have changed (those
    known are kept while it is unreachable). A plain function: FastAPI runs it in a thread.
    """
    follower = request.app.state.modalities_follower
    if follower is not None:
        with contextlib.suppress(DatabaseUnavailableError):
            follower.sync()
    return config_of(request)


def _modality(config: Config, name: str) -> Modality:
    known = modalities(config)
    if name not in known:
        raise UnknownResourceError("Modality", name)
    return known[name]


@router.get("", summary="List the declared modalities")
def list_modalities(
    expand: str | None = Query(None), config: Config = Depends(current_config)
) -> Any:
    known = modalities(config)
    if flag(expand):
        return {name: modality.as_orthanc() for name, modality in known.items()}
    return sorted(known)


@router.get("/{name}", summary="The operations available on a modality")
def modality_operations(name: str, config: Config = Depends(current_config)) -> list[str]:
    _modality(config, name)
    return [
        "configuration",
        "echo",
        "find-worklist",
        "get",
        "move",
        "query",
        "storage-commitment",
        "store",
        "store-straight",
    ]


@router.get("/{name}/configuration", summary="A modality's declaration")
def modality_configuration(name: str, config: Config = Depends(current_config)) -> dict[str, Any]:
    return _modality(config, name).as_orthanc()


@router.put("/{name}", summary="Declare or update a modality")
async def put_modality(name: str, request: Request) -> dict[str, Any]:
    body = await json_body(request)
    try:
        parse_modality(name, body)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from exc
    config = config_of(request)
    if config.DicomModalitiesInDatabase:
        await run_in_threadpool(index_of(request).store_modality, name, body)
    else:
        config.DicomModalities[name] = body
    await run_in_threadpool(_changed, request)
    return {}


@router.delete("/{name}", summary="Forget a modality")
def delete_modality(name: str, request: Request, config: Config = Depends(current_config)
                    ) -> dict[str, Any]:  # fmt: skip
    _modality(config, name)
    if config.DicomModalitiesInDatabase:
        index_of(request).forget_modality(name)
    else:
        del config.DicomModalities[name]
    _changed(request)
    return {}


def _changed(request: Request) -> None:
    """The node uses the modalities as changed (the node reads ``DicomModalities`` on each
    request), read back from the database with ``DicomModalitiesInDatabase``; worker
    processes serving associations (if any) learn them too."""
    follower = request.app.state.modalities_follower
    if follower is not None:
        follower.sync()  # tells the node if they changed
        return
    node = node_of(request)
    if node is not None:
        node.modalities_changed()


async def _dimse(function, *args, **kwargs) -> Any:
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except DicomNetworkError as exc:
        raise DicomNetworkFailure(str(exc)) from exc
    except KeyError as exc:
        raise UnknownResourceError("Modality", str(exc.args[0]) if exc.args else "?") from exc


@router.post("/{name}/echo", summary="C-ECHO a modality")
async def echo(
    name: str, request: Request, config: Config = Depends(current_config)
) -> dict[str, Any]:
    node = _node(request)
    _modality(config, name)
    await _dimse(node.echo, name)
    return {}


@tools_router.post("/dicom-echo", summary="C-ECHO a node given by AET, Host and Port")
async def dicom_echo(request: Request) -> dict[str, Any]:
    node = _node(request)
    body = await json_body(request)
    try:
        modality = parse_modality("dicom-echo", body)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from exc
    await _dimse(node.echo_undeclared, modality)
    return {}


async def _store_body(request: Request) -> Any:
    """A store request's body: JSON, or a bare resource ID as plain text (Orthanc takes
    both)."""
    raw = (await request.body()).strip()
    if raw and raw[:1] not in (b"[", b"{", b'"'):
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise BadRequestError("The body must be a resource ID or JSON") from None
    return await json_body(request)


def _resources(body: Any) -> list[str]:
    if isinstance(body, str):
        return [body]
    if isinstance(body, dict):
        body = body.get("Resources")
    if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
        raise BadRequestError(
            'The body must be a resource ID, a list of IDs, or {"Resources": [IDs]}'
        )
    return body


def _store_options(body: Any) -> dict[str, Any]:
    """The options of a store body given as an object, checked (Orthanc's names)."""
    if not isinstance(body, dict):
        return {}
    options: dict[str, Any] = {}
    timeout = body.get("Timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise BadRequestError('"Timeout" must be a number of seconds')
        options["timeout"] = float(timeout) or None  # 0: no timeout, as Orthanc
    originator = body.get("MoveOriginatorAet")
    if originator is not None:
        message_id = body.get("MoveOriginatorID", 0)
        if not isinstance(originator, str) or not isinstance(message_id, int):
            raise BadRequestError(
                '"MoveOriginatorAet" must be an AE title and "MoveOriginatorID" an integer'
            )
        options["originator"] = (originator, message_id)
    return options


@router.post("/{name}/store", summary="C-STORE resources (patients/studies/series/instances)")
async def store(
    name: str, request: Request, config: Config = Depends(current_config)
) -> dict[str, Any]:
    """Send now, or as a ``DicomModalityStore`` job with ``"Asynchronous": true``."""
    node = _node(request)
    modality = _modality(config, name)
    body = await _store_body(request)
    resources = _resources(body)
    options = _store_options(body)
    commitment = isinstance(body, dict) and bool(body.get("StorageCommitment"))
    try:
        files = await run_in_threadpool(node.resolve_files, resources)
    except KeyError as exc:
        raise UnknownResourceError("Resource", str(exc.args[0]) if exc.args else "?") from exc

    def send(job: Job) -> dict[str, Any]:
        try:
            result = node.store(name, resources, files=files, progress=job.step, **options)
        except DicomNetworkError as exc:
            raise DicomNetworkFailure(str(exc)) from exc
        answer = {
            "Description": "REST API",
            "FailedInstancesCount": len(result.failed),
            "InstancesCount": len(result.sent) + len(result.failed),
            "LocalAet": node.aet,
            "ParentResources": resources,
            "RemoteAet": modality.aet,
        }
        if "originator" in options:
            answer["MoveOriginatorAET"], answer["MoveOriginatorID"] = options["originator"]
        if commitment:
            # What was sent, asked to be committed to; the report comes later (see
            # /storage-commitment/{id}).
            sent = [(result.sop_classes[uid], uid) for uid in result.sent]
            try:
                uid = node.request_commitment(name, sent)
            except DicomNetworkError as exc:
                raise DicomNetworkFailure(str(exc)) from exc
            answer["StorageCommitmentTransactionUID"] = uid
        return dict(sorted(answer.items()))

    return await now_or_as_job(request, body, "DicomModalityStore", send)


@router.post("/{name}/store-straight", summary="C-STORE the DICOM file in the body as it is")
async def store_straight(
    name: str, request: Request, config: Config = Depends(current_config)
) -> dict[str, Any]:
    """Send the body (a DICOM file) to the modality without storing it here, as Orthanc's
    ``store-straight``; answers its SOP Class and Instance UIDs."""
    node = _node(request)
    _modality(config, name)
    body = await request.body()
    try:
        header = pydicom.dcmread(io.BytesIO(body), stop_before_pixels=True)
        sop_class, sop_instance = str(header.SOPClassUID), str(header.SOPInstanceUID)
    except Exception as exc:  # pydicom raises many kinds on foreign bytes
        raise BadRequestError(f"The body is not a DICOM file: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="store-straight-") as scratch:
        path = Path(scratch) / "instance.dcm"
        path.write_bytes(body)
        result = await _dimse(node.store, name, [path])
    if result.failed:
        raise DicomNetworkFailure(f"C-STORE of {sop_instance} to {name!r} failed")
    return {"SOPClassUID": sop_class, "SOPInstanceUID": sop_instance}


@router.post("/{name}/query", summary="C-FIND a modality; answers are kept under /queries")
async def query(
    name: str, request: Request, config: Config = Depends(current_config)
) -> dict[str, Any]:
    node = _node(request)
    _modality(config, name)
    body = await json_object(request)
    level = level_field(body)
    keys = body.get("Query", {})
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        raise BadRequestError('Field "Query" must be an object of strings')
    answers = await _dimse(node.find, name, level, orthanc_query(level, keys), main_tags=False)
    query_id = create_query(request.app, name, level, keys, answers)
    return {"ID": query_id, "Path": f"/queries/{query_id}"}


def _retrieve_items(body: dict[str, Any]) -> tuple[str, list[dict[str, str]]]:
    level_name = body.get("Level")
    resources = body.get("Resources")
    if not isinstance(level_name, str) or not isinstance(resources, list):
        raise BadRequestError('The body needs "Level" and a list of "Resources" (DICOM keys)')
    level = level_arg(level_name)
    if not all(isinstance(item, dict) and item.get(IDENTIFIER[level]) for item in resources):
        raise BadRequestError(f"Each resource must give {IDENTIFIER[level]} for level {level}")
    return level, resources


@router.post("/{name}/move", summary="C-MOVE from a modality (to us unless TargetAet)")
async def move(
    name: str, request: Request, config: Config = Depends(current_config)
) -> dict[str, Any]:
    """Move now, or as a ``DicomMoveScu`` job with ``"Asynchronous": true``."""
    node = _node(request)
    modality = _modality(config, name)
    body = await json_object(request)
    level, resources = _retrieve_items(body)
    target = body.get("TargetAet") or node.aet

    def retrieve(job: Job) -> dict[str, Any]:
        for done, keys in enumerate(resources):
            job.step(done, len(resources))
            try:
                node.move(name, keys, target, level=level)
            except DicomNetworkError as exc:
                raise DicomNetworkFailure(str(exc)) from exc
        return {"Description": "REST API", "LocalAet": node.aet, "RemoteAet": modality.aet,
                "TargetAet": target, "Query": resources}  # fmt: skip

    return await now_or_as_job(request, body, "DicomMoveScu", retrieve)


@router.post("/{name}/get", summary="C-GET from a modality into this server")
async def get(
    name: str, request: Request, config: Config = Depends(current_config)
) -> dict[str, Any]:
    node = _node(request)
    modality = _modality(config, name)
    body = await json_object(request)
    level, resources = _retrieve_items(body)
    completed = failed = 0
    for keys in resources:
        result = await _dimse(node.get, name, keys, level=level)
        completed += result.completed
        failed += result.failed
    return {
        "Description": "REST API",
        "LocalAet": node.aet,
        "RemoteAet": modality.aet,
        "Query": resources,
        "CompletedInstancesCount": completed,
        "FailedInstancesCount": failed,
    }
