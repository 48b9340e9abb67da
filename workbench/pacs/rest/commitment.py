"""Storage commitment over REST, as Orthanc: ask a modality, read its report, and remove what
it committed to.

- ``POST /modalities/{id}/storage-commitment`` with ``Resources`` (index IDs of any level)
  and/or ``DicomInstances`` (``{"SOPClassUID", "SOPInstanceUID"}`` objects or
  ``[class, instance]`` pairs, stored here or not) sends the N-ACTION and answers
  ``{"ID", "Path"}``; the modality's report comes later.
- ``GET /storage-commitment/{id}``: ``Status`` (``Pending``, ``Success``, ``Failure``),
  ``RemoteAET``, ``Success`` and ``Failures`` (with the DICOM Failure Reason).
- ``POST /storage-commitment/{id}/remove``: delete the committed instances here (only after
  a ``Success``), e.g. a modality's buffer once the archive has them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from ..config import Config
from ..errors import BadRequestError, PacsError, UnknownResourceError
from .deps import json_object
from .modalities import _dimse, _modality, _node, current_config

modalities_router = APIRouter(prefix="/modalities", tags=["modalities"])
router = APIRouter(prefix="/storage-commitment", tags=["modalities"])
ROUTERS = (modalities_router, router)


class BadSequenceOfCallsError(PacsError):
    """An operation asked for before what it depends on (Orthanc's BadSequenceOfCalls)."""

    http_status = 400


def _dicom_instances(items: Any) -> list[tuple[str, str]]:
    if not isinstance(items, list):
        raise BadRequestError('"DicomInstances" must be a list of DICOM instances')
    pairs = []
    for item in items:
        if isinstance(item, dict):
            sop_class, sop_instance = item.get("SOPClassUID"), item.get("SOPInstanceUID")
        elif isinstance(item, list) and len(item) == 2:
            sop_class, sop_instance = item
        else:
            sop_class = sop_instance = None
        if not (isinstance(sop_class, str) and isinstance(sop_instance, str)):
            raise BadRequestError(
                'Each entry of "DicomInstances" must be an object with string fields '
                f"SOPClassUID and SOPInstanceUID, or a list of those two strings: {item!r}"
            )
        pairs.append((sop_class, sop_instance))
    return pairs


@modalities_router.post(
    "/{name}/storage-commitment", summary="Ask a modality for storage commitment"
)
async def request_commitment(
    name: str, request: Request, config: Config = Depends(current_config)
) -> dict[str, Any]:
    node = _node(request)
    _modality(config, name)
    body = await json_object(request)
    if "Resources" not in body and "DicomInstances" not in body:
        raise BadRequestError(
            'Empty storage commitment request: give "Resources" or "DicomInstances"'
        )
    resources = body.get("Resources", [])
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise BadRequestError('"Resources" must be a list of resource IDs')
    try:
        instances = await run_in_threadpool(node.sop_instances, resources)
    except KeyError as exc:
        raise UnknownResourceError("Resource", str(exc.args[0]) if exc.args else "?") from exc
    instances += _dicom_instances(body.get("DicomInstances", []))
    transaction_uid = await _dimse(node.request_commitment, name, instances)
    return {"ID": transaction_uid, "Path": f"/storage-commitment/{transaction_uid}"}


def _report(request: Request, transaction_uid: str):
    report = _node(request).commitment_reports.get(transaction_uid)
    if report is None:
        raise UnknownResourceError("Storage commitment transaction", transaction_uid)
    return report


@router.get("/{transaction_uid}", summary="The report of a storage commitment request")
def report(transaction_uid: str, request: Request) -> dict[str, Any]:
    return _report(request, transaction_uid).as_orthanc()


@router.post("/{transaction_uid}/remove", summary="Delete the instances a modality committed to")
def remove_committed(transaction_uid: str, request: Request) -> dict[str, Any]:
    found = _report(request, transaction_uid)
    if found.status != "Success":
        raise BadSequenceOfCallsError(
            "Cannot remove DICOM instances after failure in storage commitment transaction: "
            f"{transaction_uid} (status {found.status})"
        )
    index = request.app.state.index
    for _, sop_instance in found.success:
        for instance_id in index.find("Instance", {"SOPInstanceUID": sop_instance}):
            index.delete("Instance", instance_id)
    return {}
