"""Every failure answered as Orthanc-style JSON with a status that names what was wrong."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import PacsError

log = logging.getLogger(__name__)


#: Orthanc's error code and description (its ``ErrorCode`` enumeration) for each HTTP status
#: our errors answer with; an error may name a more precise code (``orthanc_status``).
ORTHANC_ERRORS: dict[int, int] = {
    400: 8, 401: 29, 403: 45, 404: 17, 406: 34, 409: 43, 413: 8, 415: 3000, 416: 41,
    500: -1, 501: 2, 502: 9, 503: 36, 504: 16, 507: 19,
}  # fmt: skip
ORTHANC_DESCRIPTIONS: dict[int, str] = {
    -1: "Internal error",
    2: "Not implemented yet",
    3: "Parameter out of range",
    5: "Bad type for a parameter",
    7: "Accessing an inexistent item",
    8: "Bad request",
    9: "Error in the network protocol",
    15: "Bad file format",
    16: "Timeout",
    17: "Unknown resource",
    19: "The file storage is full",
    21: "Inexistent tag",
    27: "Unknown DICOM tag",
    28: "Cannot parse a JSON document",
    29: "Bad credentials were provided to an HTTP request",
    34: "Cannot send a response which is acceptable according to the Accept HTTP header",
    36: "The database is currently not available (probably a transient situation)",
    37: "This job was canceled",
    41: "Incorrect range request",
    43: "A bad revision number was provided, which might indicate conflict between multiple "
    "writers",
    45: "Access to a resource is forbidden",
    2000: "Cannot create a DICOM object from the given JSON",
    2020: "Trying to override a value inherited from a parent module",
    2024: "Trying to attach a new DICOM instance to an inexistent resource",
    2025: "Trying to attach a new DICOM instance to an instance (must be a series, study or "
    "patient)",
    3000: "Unsupported media type",
}


def error_content(method: str, uri: str, status: int, details: str | None,
                  orthanc_status: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Orthanc's error JSON: ``HttpError``, ``HttpStatus``, ``Message`` and ``OrthancError``
    (the description of Orthanc's error code), ``OrthancStatus`` (that code), ``Method``,
    ``Uri``, and ``Details``: what exactly was wrong (Orthanc leaves it out when it has
    nothing to add; we always say)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    code = (
        orthanc_status
        if orthanc_status is not None
        else ORTHANC_ERRORS.get(status, 8 if status < 500 else -1)
    )
    description = ORTHANC_DESCRIPTIONS.get(code, phrase)
    content = {
        "HttpError": phrase,
        "HttpStatus": status,
        "Message": description,
        "Method": method,
        "OrthancError": description,
        "OrthancStatus": code,
        "Uri": uri,
        "Details": details or description,
    }
    return dict(sorted(content.items()))


def error_response(request: Request, status: int, details: str | None,
                   orthanc_status: int | None = None) -> JSONResponse:  # fmt: skip
    """:func:`error_content` of a request, as a response."""
    content = error_content(request.method, request.url.path, status, details, orthanc_status)
    return JSONResponse(status_code=status, content=content)


def install_error_handlers(app: FastAPI) -> None:
    """Map index errors, HTTP errors, validation errors and crashes to JSON answers."""

    @app.exception_handler(PacsError)
    async def _pacs_error(request: Request, exc: PacsError) -> JSONResponse:
        return error_response(
            request, exc.http_status, str(exc), getattr(exc, "orthanc_status", None)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error_response(request, exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg')}"
            for error in exc.errors()
        )
        return error_response(request, 400, f"Invalid request: {problems}")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("Internal error answering %s %s", request.method, request.url.path)
        return error_response(request, 500, f"Internal error: {type(exc).__name__}")
