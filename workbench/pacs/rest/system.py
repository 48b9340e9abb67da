"""``/system``, ``/statistics``, ``/changes`` and ``/exports``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse
from pydicom.datadict import tag_for_keyword
from pydicom.tag import Tag

from workbench import __version__

from ..config import Config
from ..index import Index
from ..tags import LEVELS, MAIN_TAGS
from .deps import flag, get_config, get_index, int_arg

router = APIRouter(tags=["system"])

#: The Orthanc release whose REST API we implement, and its ``ApiVersion``: clients compare
#: ``Version`` with the Orthanc release that introduced a feature.
ORTHANC_VERSION = "1.10.1"
API_VERSION = 16


def main_dicom_tags_signature(level: str) -> str:
    """The main tags of ``level`` as Orthanc lists them in ``/system``
    (``"0010,0010;0010,0020;..."``)."""
    tags = (Tag(tag_for_keyword(keyword)) for keyword in MAIN_TAGS[level])
    return ";".join(f"{tag.group:04X},{tag.element:04X}" for tag in tags)


@router.get("/system", summary="Server identity and settings")
def system(config: Config = Depends(get_config)) -> dict[str, Any]:
    return {
        "ApiVersion": API_VERSION,
        "CheckRevisions": False,
        "DatabaseBackendPlugin": None,
        "DatabaseVersion": 6,
        "DicomAet": config.DicomAet,
        "DicomPort": config.DicomPort,
        "HttpPort": config.HttpPort,
        "IsHttpServerSecure": bool(config.RegisteredUsers) or not config.RemoteAccessAllowed,
        "Name": config.Name,
        "PluginsEnabled": False,
        "StorageAreaPlugin": None,
        "Version": ORTHANC_VERSION,
        # Orthanc 1.11+: the main tags of each level, and whether labels can be used (1.12).
        "MainDicomTags": {level: main_dicom_tags_signature(level) for level in LEVELS},
        "HasLabels": True,
        "WorkbenchVersion": __version__,
    }


@router.get("/statistics", summary="Counts and disk usage")
def statistics(index: Index = Depends(get_index)) -> dict[str, Any]:
    return index.statistics()


@router.get("/changes", summary="Change log of the resources still stored (New*, Stable*)")
def changes(
    since: str | None = Query(None),
    limit: str | None = Query(None),
    last: str | None = Query(None),
    index: Index = Depends(get_index),
) -> dict[str, Any]:
    limit_value = int_arg(limit, "limit")
    return index.changes(
        since=int_arg(since, "since") or 0,
        limit=100 if limit_value is None else min(limit_value, 10000),
        last=flag(last),
    )


@router.delete("/changes", summary="Empty the change log shown (hooks still follow it)")
def clear_changes(index: Index = Depends(get_index)) -> PlainTextResponse:
    index.clear_changes()
    return PlainTextResponse("")


@router.get("/exports", summary="Log of the instances sent to modalities (LogExportedResources)")
def exports(since: str | None = Query(None), limit: str | None = Query(None),
            last: str | None = Query(None), index: Index = Depends(get_index)
            ) -> dict[str, Any]:  # fmt: skip
    limit_value = int_arg(limit, "limit")
    return index.exports(since=int_arg(since, "since") or 0,
                         limit=100 if limit_value is None else min(limit_value, 10000),
                         last=flag(last))  # fmt: skip


@router.delete("/exports", summary="Empty the export log")
def clear_exports(index: Index = Depends(get_index)) -> dict[str, Any]:
    index.clear_exports()
    return {}
