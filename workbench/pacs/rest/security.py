"""HTTP basic authentication against ``RegisteredUsers``, on every route when enabled."""

from __future__ import annotations

import base64
import binascii
import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Config
from .errors import error_content


def auth_required(config: Config) -> bool:
    """Whether requests must authenticate: always with remote access, else if asked to."""
    return bool(config.RemoteAccessAllowed or config.AuthenticationEnabled)


def check_config(config: Config) -> None:
    """Refuse configurations that would expose data without a password.

    Raises
    ------
    ValueError
        If remote access or authentication is on but ``RegisteredUsers`` is empty.
    """
    if auth_required(config) and not config.RegisteredUsers:
        raise ValueError(
            "RemoteAccessAllowed/AuthenticationEnabled needs at least one entry in "
            'RegisteredUsers ({"user": "password"}); refusing to serve without a password'
        )


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """The user and password of an ``Authorization: Basic ...`` header, if well formed."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def user_name(header: str | None) -> str | None:
    """The user named by an ``Authorization: Basic ...`` header (checked by the middleware)."""
    credentials = _basic_credentials(header)
    return credentials[0] if credentials else None


def credentials_valid(header: str | None, users: dict[str, str]) -> bool:
    """Check an ``Authorization: Basic ...`` header in time independent of where it differs.

    Every registered user is compared (no early exit on a user-name match), and each
    comparison is :func:`hmac.compare_digest`, so timing reveals neither names nor passwords.
    """
    credentials = _basic_credentials(header)
    if credentials is None:
        return False
    user, password = credentials
    valid = False
    for known_user, known_password in users.items():
        user_ok = hmac.compare_digest(user.encode(), str(known_user).encode())
        password_ok = hmac.compare_digest(password.encode(), str(known_password).encode())
        valid |= user_ok & password_ok
    return valid


class BasicAuthMiddleware:
    """ASGI middleware answering 401 to any request without valid credentials."""

    def __init__(self, app: ASGIApp, users: dict[str, str], realm: str = "workbench") -> None:
        self.app = app
        self.users = dict(users)
        self.realm = realm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        if credentials_valid(header, self.users):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            error_content(scope["method"], scope["path"], 401, "HTTP basic authentication required")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", f'Basic realm="{self.realm}"'.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
