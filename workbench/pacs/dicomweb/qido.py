"""QIDO-RS (PS3.18 10.6): searching studies, series and instances, answered as DICOM JSON.

A search is a C-FIND by other means, and runs through the same code
(:mod:`workbench.pacs.node.query`): matching keys the index stores become one
``Index.find`` query with the rules of :mod:`workbench.pacs.matching` (single value, ``*``/``?``
wildcards, DA/TM/DT ranges, UID lists, PN without case), the others are matched in Python
by the same rules, and the answer of each match holds the requested attributes, computed ones
(``ModalitiesInStudy``, ``NumberOfStudyRelatedSeries``...) included. Fuzzy matching of names
is not done; asking for it gets the ``Warning`` header PS3.18 prescribes.
"""

from __future__ import annotations

import json
from functools import lru_cache

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from ..errors import BadRequestError
from ..node.query import ParsedQuery, build_answer, find_resources
from ..tags import IDENTIFIER, LEVELS, keyword_of, stored_tags
from .multipart import NotAcceptableError, accepted
from .urls import dicomweb_root, warning

router = APIRouter(tags=["dicomweb"])

DICOM_JSON = "application/dicom+json"
#: Query parameters that are not attributes.
CONTROL_PARAMETERS = frozenset(
    {"limit", "offset", "fuzzymatching", "includefield", "accept", "charset"}
)
_FUZZY_WARNING = (
    "The fuzzymatching parameter is not supported. Only literal matching has been performed."
)

#: Attributes every answer holds (PS3.18 tables 10.6.3-3 to -5), beside those the index
#: keeps for the level (which Orthanc's plugin returns too). Specific Character Set and
#: Retrieve URL are added to each answer on their own. Timezone Offset From UTC is not in
#: the index: it is read from a stored header (cached) as Orthanc's plugin does.
DEFAULT_ATTRIBUTES = {
    "Study": (
        "StudyDate",
        "StudyTime",
        "TimezoneOffsetFromUTC",
        "AccessionNumber",
        "InstanceAvailability",
        "ModalitiesInStudy",
        "ReferringPhysicianName",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyID",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    "Series": (
        "Modality",
        "TimezoneOffsetFromUTC",
        "SeriesDescription",
        "SeriesInstanceUID",
        "SeriesNumber",
        "NumberOfSeriesRelatedInstances",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
    ),
    "Instance": (
        "SOPClassUID",
        "SOPInstanceUID",
        "InstanceAvailability",
        "TimezoneOffsetFromUTC",
        "InstanceNumber",
        "Rows",
        "Columns",
        "BitsAllocated",
        "NumberOfFrames",
    ),
}
#: Computed attributes ``includefield=all`` adds at each level.
COMPUTED = {
    "Study": (
        "ModalitiesInStudy",
        "SOPClassesInStudy",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    "Series": ("NumberOfSeriesRelatedInstances",),
    "Instance": (),
}


def _level_attributes(level: str) -> list[str]:
    return [*DEFAULT_ATTRIBUTES[level], *stored_tags(level)]


def _attribute(name: str, what: str) -> str:
    """The keyword of a query parameter naming an attribute (keyword or ``ggggeeee``)."""
    if "." in name:
        raise BadRequestError(
            f"{what} {name!r}: attributes inside sequences cannot be searched here"
        )
    try:
        return keyword_of(name)
    except ValueError:
        raise BadRequestError(f"{what} {name!r} is not a DICOM attribute keyword or tag") from None


def _non_negative(request: Request, name: str) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise BadRequestError(
            f"Query parameter {name!r} must be a non-negative integer, got {text!r}"
        )
    return int(text)


def parse_search(request: Request, level: str, fixed: dict[str, str]) -> ParsedQuery:
    """The matching keys and return keys of a QIDO-RS request at ``level``.

    ``fixed`` holds the UIDs of the URL (``/studies/{study}/series``); they match as keys.
    Searches without the parent's UID in the URL return the parent's attributes too.

    Raises
    ------
    BadRequestError
        For a parameter that names no attribute, or an attribute in a sequence.
    """
    depth = LEVELS.index(level)
    returned: list[str] = []
    for upper in LEVELS[1 : depth + 1]:
        returned.append(IDENTIFIER[upper])
        if upper == level or IDENTIFIER[upper] not in fixed:
            returned += _level_attributes(upper)
    if level != "Study" and "StudyInstanceUID" not in fixed:
        returned += stored_tags("Patient")
    constraints: dict[str, str] = {}
    for name in dict.fromkeys(request.query_params.keys()):
        if name in CONTROL_PARAMETERS or name.startswith("_"):
            continue  # "_" is a cache breaker some viewers add
        keyword = _attribute(name, "Query parameter")
        values = [value for value in request.query_params.getlist(name)]
        text = "\\".join(values)
        if dictionary_VR(keyword) == "UI":
            text = text.replace(",", "\\")  # PS3.18 8.3.4.1: UID lists are comma-separated
        returned.append(keyword)
        if text not in ("", "*"):
            constraints[keyword] = text
    constraints.update(fixed)
    for value in request.query_params.getlist("includefield"):
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if name.lower() == "all":
                for upper in LEVELS[: depth + 1]:
                    returned += stored_tags(upper)
                    returned += COMPUTED.get(upper, ())
                continue
            returned.append(_attribute(name, "includefield"))
    requested = list(_return_keys(tuple(dict.fromkeys(returned))))
    return ParsedQuery(level, constraints=constraints, requested=requested)


@lru_cache(maxsize=256)
def _return_keys(keywords: tuple[str, ...]) -> tuple[DataElement, ...]:
    """The empty elements of the attributes an answer holds, made once per set of keywords
    (a viewer's searches repeat theirs): they are only read afterwards."""
    elements = []
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        vr = dictionary_VR(tag)
        elements.append(DataElement(tag, "US" if vr == "US or SS" else vr, None))
    return tuple(elements)


def _answer_json(answer: Dataset, level: str, root: str) -> dict:
    del answer.QueryRetrieveLevel
    url = f"{root}/studies/{answer.get('StudyInstanceUID', '')}"
    if level in ("Series", "Instance"):
        url += f"/series/{answer.get('SeriesInstanceUID', '')}"
    if level == "Instance":
        url += f"/instances/{answer.get('SOPInstanceUID', '')}"
    answer.RetrieveURL = url
    return dict(sorted(answer.to_json_dict(suppress_invalid_tags=True).items()))


def require_dicom_json(request: Request, what: str) -> None:
    """Refuse (406) a request that does not accept ``application/dicom+json``.

    Plain ``application/json`` is taken as accepting it, as browsers and scripts ask for it.
    """
    if not any(
        media.matches(DICOM_JSON) or media.name == "application/json" for media in accepted(request)
    ):
        raise NotAcceptableError(
            f"{what} are sent as {DICOM_JSON}; the request accepts only "
            f"{request.query_params.get('accept') or request.headers.get('accept')}"
        )


def search(request: Request, level: str, **fixed: str) -> Response:
    """Answer a QIDO-RS request at ``level`` (``fixed``: the UIDs of the URL)."""
    require_dicom_json(request, "Search results")
    parsed = parse_search(request, level, {IDENTIFIER[k]: v for k, v in fixed.items()})
    limit = _non_negative(request, "limit")
    offset = _non_negative(request, "offset") or 0
    headers = {}
    if request.query_params.get("fuzzymatching", "").strip().lower() == "true":
        headers["Warning"] = warning(request, _FUZZY_WARNING)
    answers = []
    if limit != 0:
        root = dicomweb_root(request)
        index = request.app.state.index
        for resource in find_resources(index, parsed, limit=limit, offset=offset):
            answers.append(_answer_json(build_answer(resource, parsed, ""), level, root))
    body = json.dumps(answers, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, media_type=DICOM_JSON, headers=headers)


@router.get("/studies", summary="QIDO-RS: search for studies")
def search_studies(request: Request) -> Response:
    return search(request, "Study")


@router.get("/studies/{study}/series", summary="QIDO-RS: search for series of a study")
def search_study_series(study: str, request: Request) -> Response:
    return search(request, "Series", Study=study)


@router.get("/series", summary="QIDO-RS: search for series")
def search_series(request: Request) -> Response:
    return search(request, "Series")


@router.get(
    "/studies/{study}/series/{series}/instances",
    summary="QIDO-RS: search for instances of a series",
)
def search_series_instances(study: str, series: str, request: Request) -> Response:
    return search(request, "Instance", Study=study, Series=series)


@router.get("/studies/{study}/instances", summary="QIDO-RS: search for instances of a study")
def search_study_instances(study: str, request: Request) -> Response:
    return search(request, "Instance", Study=study)


@router.get("/instances", summary="QIDO-RS: search for instances")
def search_instances(request: Request) -> Response:
    return search(request, "Instance")
