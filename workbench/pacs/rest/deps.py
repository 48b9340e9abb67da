"""Dependencies shared by every router: the index, the configuration, request helpers."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from ..config import Config
from ..errors import BadRequestError
from ..index import Index
from ..tags import normalize_level


def index_of(request: Request) -> Index:
    """The index the app serves."""
    return request.app.state.index


def config_of(request: Request) -> Config:
    """The configuration the app was started with."""
    return request.app.state.config


def node_of(request: Request) -> Any:
    """The DIMSE node, or ``None`` when the app runs without one."""
    return request.app.state.node


# The dependencies are coroutines because they only read app state: FastAPI runs a plain
# function dependency in its thread pool, a hop that costs as much as a small request's work.


async def get_index(request: Request) -> Index:
    """Dependency: the index the app serves."""
    return index_of(request)


async def get_config(request: Request) -> Config:
    """Dependency: the configuration the app was started with."""
    return config_of(request)


async def get_node(request: Request) -> Any:
    """Dependency: the DIMSE node, or ``None`` when the app runs without one."""
    return node_of(request)


async def json_body(request: Request, *, required: bool = True) -> Any:
    """The request body parsed as JSON, with a 400 naming the problem otherwise."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise BadRequestError("The body must contain JSON")
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"The body is not valid JSON: {exc}") from exc


async def json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object (``{}`` when optional and empty)."""
    body = await json_body(request, required=required)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequestError("The body must contain a JSON object")
    return body


def level_arg(name: str) -> str:
    """A level name (``Patient``, ``studies``...) in its canonical form, or a 400."""
    if not isinstance(name, str):
        raise BadRequestError(f'A level must be a string such as "Study", not {name!r}')
    try:
        return normalize_level(name)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from exc


def level_field(body: dict[str, Any]) -> str:
    """The ``"Level"`` of a JSON body in its canonical form, or a 400."""
    name = body.get("Level")
    if not isinstance(name, str):
        raise BadRequestError('Field "Level" is missing, or should be a string')
    return level_arg(name)


def flag(value: str | None) -> bool:
    """Orthanc-style boolean query argument: present (``?expand``) or true/1 means yes."""
    if value is None:
        return False
    return value.strip().lower() not in ("0", "false", "no")


def int_arg(value: str | None, name: str) -> int | None:
    """A non-negative integer query argument, or a 400 naming it."""
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadRequestError(f"Argument {name!r} must be an integer, got {value!r}") from None
    if not 0 <= number <= MAX_INT_ARG:
        raise BadRequestError(f"Argument {name!r} must be between 0 and {MAX_INT_ARG}")
    return number


#: Largest paging argument accepted (SQL engines take 64-bit integers at most).
MAX_INT_ARG = 2**31 - 1


def body_doc(media_type: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    """``openapi_extra`` documenting a request body the route reads itself."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {media_type: {"schema": schema}},
        }
    }


BINARY = {"type": "string", "format": "binary"}
TEXT = {"type": "string"}


def resource_ids(body: dict[str, Any]) -> list[str]:
    """The ``Resources`` of a bulk body, or a 400 as Orthanc words it."""
    ids = body.get("Resources")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadRequestError("List of strings expected in field: Resources")
    return ids
