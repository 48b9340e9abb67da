"""Labels (Orthanc 1.12): ``/{level}/{id}/labels``, ``/{level}/{id}/labels/{label}`` and
``/tools/labels``. ``/tools/find`` filters by them (``Labels``, ``LabelsConstraint``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from ..errors import UnknownResourceError
from ..index import Index
from ..tags import LEVELS, PLURAL
from .deps import get_index

tools_router = APIRouter(prefix="/tools", tags=["tools"])


@tools_router.get("/labels", summary="Every label in use")
def every_label(index: Index = Depends(get_index)) -> list[str]:
    return index.labels()


def labels_router(level: str) -> APIRouter:
    """The label routes of one level."""
    router = APIRouter(prefix=f"/{PLURAL[level]}", tags=[PLURAL[level]])

    @router.get("/{resource_id}/labels", summary="The resource's labels")
    def resource_labels(resource_id: str, index: Index = Depends(get_index)) -> list[str]:
        return index.labels(level, resource_id)

    @router.get("/{resource_id}/labels/{label}", response_class=PlainTextResponse,
                summary="200 if the resource has the label, else 404")  # fmt: skip
    def has_label(resource_id: str, label: str, index: Index = Depends(get_index)) -> str:
        if label not in index.labels(level, resource_id):
            raise UnknownResourceError("Label", f"{label} of {resource_id}")
        return ""

    @router.put("/{resource_id}/labels/{label}", summary="Give the resource a label")
    def add_label(resource_id: str, label: str, index: Index = Depends(get_index)) -> dict:
        index.add_label(level, resource_id, label)
        return {}

    @router.delete("/{resource_id}/labels/{label}", summary="Take a label off the resource")
    def remove_label(resource_id: str, label: str, index: Index = Depends(get_index)) -> dict:
        index.remove_label(level, resource_id, label)
        return {}

    return router


ROUTERS = [tools_router, *(labels_router(level) for level in LEVELS)]
