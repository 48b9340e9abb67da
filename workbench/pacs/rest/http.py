"""Orthanc's HTTP conventions, applied before routing.

* Empty path segments are ignored: ``//instances`` (a base URL with a trailing slash) and
  ``/instances/`` are ``/instances``. A trailing slash is kept where a route wants it (the web
  page at ``/ui/``).
* Method faking: ``X-HTTP-Method-Override: PUT|DELETE`` on any request, or
  ``GET ...?_method=delete``, for clients that can only send GET and POST.
* ``Content-Encoding: gzip`` request bodies are inflated as they stream in, whatever the route.
"""

from __future__ import annotations

import json
import re
import zlib
from urllib.parse import parse_qsl

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import BadRequestError
from .errors import error_content

#: Methods a client may fake (Orthanc accepts these two only).
OVERRIDABLE = {"PUT", "DELETE"}

_SLASHES = re.compile(r"/{2,}")


class OrthancHttpMiddleware:
    """ASGI middleware normalizing paths, faked methods and compressed bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        override = _method_override(scope)
        if override is not None:
            if override.upper() not in OVERRIDABLE:
                await _bad_request(
                    scope,
                    send,
                    f"The HTTP method {override!r} cannot be faked (only PUT and DELETE can)",
                )
                return
            scope["method"] = override.upper()
        _normalize_path(scope)
        headers = scope.get("headers", [])
        if any(k == b"content-encoding" and v.strip().lower() == b"gzip" for k, v in headers):
            scope["headers"] = [
                (k, v) for k, v in headers if k not in (b"content-encoding", b"content-length")
            ]
            receive = _inflating(receive)
        await self.app(scope, receive, send)


def _method_override(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-http-method-override":
            return value.decode("latin-1").strip()
    if scope["method"] == "GET":
        for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
            if name == "_method":
                return value
    return None


def _normalize_path(scope: Scope) -> None:
    path = _SLASHES.sub("/", scope["path"])
    if len(path) > 1 and path.endswith("/") and not _has_route(scope, path):
        path = path.rstrip("/")
    if path != scope["path"]:
        scope["path"] = path
        scope["raw_path"] = path.encode("utf-8")


def _has_route(scope: Scope, path: str) -> bool:
    """Whether a route of the app matches ``path`` as it is (trailing slash included)."""
    app = scope.get("app")
    router = getattr(app, "router", None)
    if router is None:
        return False
    probe = {**scope, "path": path}
    return any(route.matches(probe)[0] != Match.NONE for route in router.routes)


def _inflating(receive: Receive) -> Receive:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    async def inflated() -> Message:
        message = await receive()
        if message["type"] != "http.request":
            return message
        try:
            body = inflater.decompress(message.get("body", b""))
            if not message.get("more_body", False):
                body += inflater.flush()
                if not inflater.eof:
                    raise zlib.error("the gzip stream ends early")
        except zlib.error as exc:
            raise BadRequestError(
                f"The body is declared gzip (Content-Encoding) but cannot be inflated: {exc}"
            ) from exc
        return {**message, "body": body}

    return inflated


async def _bad_request(scope: Scope, send: Send, details: str) -> None:
    body = json.dumps(error_content(scope["method"], scope["path"], 400, details)).encode()
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
