"""``POST /tools/create-dicom``: a new instance (or a series of them) from JSON tags and a
PNG, JPEG or PDF given as a data URI, as Orthanc's route of that name.

The body is ``{"Tags": {...}, "Content": "data:...", "Parent": ID, "Force": bool,
"PrivateCreator": text, "InterpretBinaryTags": bool}``; a list of contents (each a data URI
or ``{"Content", "Tags"}``) makes a series. Without ``"Tags"`` the body itself is the tags
(Orthanc's first form). With a ``Parent`` (patient, study or series) the new instance joins
it, with the parent's modules copied from one of its instances.
"""

from __future__ import annotations

from typing import Any

import pydicom
from fastapi import APIRouter, Request
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from starlette.concurrency import run_in_threadpool

from ..creation import (
    CreateError,
    Options,
    OverrideError,
    UnknownParentError,
    build_instance,
    decode_data_uri,
    instance_bytes,
    tags_dataset,
)
from ..index import Index
from ..modules import MODULE_KEYWORDS, levels_to, module_keywords
from ..tags import LEVELS
from .deps import body_doc, index_of, json_object

router = APIRouter(prefix="/tools", tags=["tools"])

CREATE_BODY = {
    "type": "object",
    "properties": {
        "Tags": {"type": "object", "description": "Keywords or gggg,eeee to text values"},
        "Content": {"description": "data:image/png|image/jpeg|application/pdf;base64,... "
                                   "or a list of them (a new series)"},
        "Parent": {"type": "string", "description": "Patient, study or series to join"},
        "Force": {"type": "boolean"},
        "PrivateCreator": {"type": "string"},
        "InterpretBinaryTags": {"type": "boolean"},
    },
}  # fmt: skip


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise CreateError(f'"{name}" must be true or false')
    return value


def parent_modules(index: Index, parent: Any) -> tuple[str, Dataset]:
    """The level of ``parent`` and the attributes of its modules (its own level's and those
    above), read from one of its instances as Orthanc copies them: values, not sequences."""
    if not isinstance(parent, str):
        raise CreateError('"Parent" must be the ID of a patient, study or series', 5)
    level = next((level for level in LEVELS if index.exists(level, parent)), None)
    if level is None:
        raise UnknownParentError(f"No patient, study or series has the ID {parent!r}")
    if level == "Instance":
        raise CreateError(f"{parent} is an instance: the parent must be a series, a study "
                          "or a patient", 2025)  # fmt: skip
    files = index.instance_files(level, parent, limit=1)
    if not files:
        raise UnknownParentError(f"{level} {parent} has no stored instance to copy from")
    sibling = pydicom.dcmread(files[0][1], stop_before_pixels=True)
    inherited = Dataset()
    for module in levels_to(level):
        for keyword in MODULE_KEYWORDS[module]:
            elem = sibling.get(tag_for_keyword(keyword))
            if elem is not None and elem.VR != "SQ":
                inherited.add(elem)
    if "SpecificCharacterSet" in sibling:
        inherited.SpecificCharacterSet = sibling.SpecificCharacterSet
    return level, inherited


def _contents(body: dict[str, Any]) -> list[tuple[Dataset | None, tuple[str, bytes] | None]]:
    """``(the item's own tags, (media type, bytes))`` of each content; one ``(None, None)``
    without content."""
    content = body.get("Content")
    if content is None:
        return [(None, None)]
    if isinstance(content, str):
        return [(None, decode_data_uri(content, '"Content"'))]
    if not isinstance(content, list) or not content:
        raise CreateError('"Content" must be a data URI or a non-empty list of them', 5)
    items = []
    for position, item in enumerate(content):
        where = f'"Content"[{position}]'
        if isinstance(item, str):
            items.append((None, decode_data_uri(item, where)))
        elif isinstance(item, dict) and isinstance(item.get("Content"), str):
            tags = tags_dataset(item.get("Tags", {}), Options(force=False))
            items.append((tags, decode_data_uri(item["Content"], where)))
        else:
            raise CreateError(f"{where} must be a data URI or an object with one in "
                              '"Content"', 5)  # fmt: skip
    return items


def create(index: Index, body: dict[str, Any]) -> dict[str, Any]:
    """Build, store and describe the instance(s) a request asks for."""
    if "Tags" in body:
        options = Options(force=_flag(body, "Force", False),
                          private_creator=body.get("PrivateCreator"),
                          interpret_binary=_flag(body, "InterpretBinaryTags", True))  # fmt: skip
        if options.private_creator is not None and not isinstance(options.private_creator,
                                                                  str):  # fmt: skip
            raise CreateError('"PrivateCreator" must be text', 5)
        tags = tags_dataset(body["Tags"], options)
        items = _contents(body)
    else:  # Orthanc's first form: the body is the tags, pixels as a PixelData data URI
        raw = dict(body)
        pixels = raw.pop("PixelData", None)
        tags = tags_dataset(raw, Options(force=True))
        items = [(None, decode_data_uri(pixels, "PixelData") if pixels else None)]
        options = Options(force=True)
    inherited = None
    if body.get("Parent") is not None:
        level, inherited = parent_modules(index, body["Parent"])
        if not options.force:
            for elem in tags:
                if elem.tag in inherited or elem.keyword in module_keywords(*levels_to(level)):
                    raise OverrideError(elem.keyword or str(elem.tag),
                                        f"the parent {level.lower()} sets it")  # fmt: skip
    if len(items) > 1:  # one new series (and study, unless the parent gives them)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
            if keyword not in tags and (inherited is None or keyword not in inherited):
                setattr(tags, keyword, pydicom.uid.generate_uid())
    results = []
    for position, (own, content) in enumerate(items, start=1):
        merged = Dataset()
        merged.update(tags)
        if own is not None:
            merged.update(own)
        ds = build_instance(
            merged,
            content,
            inherited=inherited,
            position=(position, len(items)) if len(items) > 1 else None,
        )
        results.append(index.ingest_bytes(instance_bytes(ds), origin="RestApi",
                                          label="/tools/create-dicom"))  # fmt: skip
    if len(items) == 1:
        return results[0].to_json()
    series = results[0].series_id
    return {"ID": series, "Path": f"/series/{series}", "Status": "Success"}


@router.post("/create-dicom", summary="A new instance from JSON tags and a PNG/JPEG/PDF",
             openapi_extra=body_doc("application/json", CREATE_BODY))  # fmt: skip
async def create_dicom(request: Request) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(create, index_of(request), body)
