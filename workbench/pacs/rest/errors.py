"""Every failure answered as Orthanc-style JSON with a status that names what was wrong."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import PacsError

log = logging.getLogger(__name__)


def error_response(request: Request, status: int, details: str) -> JSONResponse:
    """Orthanc's error JSON (``HttpError``, ``HttpStatus``, ``Message``, ``Details``...)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return JSONResponse(
        status_code=status,
        content={
            "Details": details,
            "HttpError": phrase,
            "HttpStatus": status,
            "Message": phrase,
            "Method": request.method,
            "Uri": request.url.path,
        },
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map index errors, HTTP errors, validation errors and crashes to JSON answers."""

    @app.exception_handler(PacsError)
    async def _pacs_error(request: Request, exc: PacsError) -> JSONResponse:
        return error_response(request, exc.http_status, str(exc))

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
