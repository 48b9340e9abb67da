"""Access control: loopback by default, basic auth on every route when remote or asked."""

from __future__ import annotations

import base64

import pytest
import requests
from fastapi.testclient import TestClient

from tests.pacs.test_index_store import SMALL_FILE, make_instance
from workbench.pacs import Config, Index
from workbench.pacs.rest.app import create_app
from workbench.pacs.rest.security import credentials_valid
from workbench.pacs.server import serve

USERS = {"alice": "correct horse battery staple", "bob": "s3cret"}


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def remote_app(tmp_path_factory, sample_data):
    config = Config(
        StorageDirectory=str(tmp_path_factory.mktemp("secure")),
        RemoteAccessAllowed=True,
        RegisteredUsers=USERS,
    )
    index = Index(config)
    result = index.ingest_bytes(make_instance(sample_data / SMALL_FILE))
    assert config.http_host == "0.0.0.0"
    yield create_app(index), result
    index.close()


def test_default_binds_loopback_only(tmp_path):
    assert Config().http_host == "127.0.0.1"
    handle = serve(Config(StorageDirectory=str(tmp_path / "s"), HttpPort=0), dicom=False)
    try:
        host = handle._server.servers[0].sockets[0].getsockname()[0]
        assert host == "127.0.0.1"
        assert requests.get(f"{handle.url}/system", timeout=10).status_code == 200
    finally:
        handle.stop()


@pytest.mark.parametrize("option", ["RemoteAccessAllowed", "AuthenticationEnabled"])
def test_refuses_to_start_without_users(tmp_path, option):
    with pytest.raises(ValueError, match="RegisteredUsers"):
        serve(
            Config(StorageDirectory=str(tmp_path / "s"), HttpPort=0, **{option: True}), dicom=False
        )


def _filled(path: str, result) -> str:
    ids = {
        "resource_id": result.instance_id,
        "instance_id": result.instance_id,
        "frame": "0",
        "path": "0010-0010",
        "name": "Origin",
    }
    for key, value in ids.items():
        path = path.replace(f"{{{key}}}", value).replace(f"{{{key}:path}}", value)
    return path


def test_every_route_requires_auth(remote_app):
    app, result = remote_app
    client = TestClient(app)
    paths = {"/openapi.json", "/docs", "/redoc"}
    for path, operations in app.openapi()["paths"].items():  # every API route
        for method in operations:
            paths.add((method.upper(), _filled(path, result)))
    checked = 0
    for entry in paths:
        method, path = entry if isinstance(entry, tuple) else ("GET", entry)
        response = client.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"].startswith("Basic")
        assert response.json()["HttpStatus"] == 401
        checked += 1
    assert checked > 40
    # Nothing was deleted or changed by the refused requests.
    assert (
        client.get(
            f"/instances/{result.instance_id}", headers=_basic("alice", USERS["alice"])
        ).status_code
        == 200
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _basic("alice", "wrong"),
        _basic("alice", ""),
        _basic("mallory", USERS["alice"]),
        _basic("bob", USERS["alice"]),  # another user's password
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic " + base64.b64encode(b"alice").decode()},  # no colon
    ],
)
def test_wrong_credentials_are_refused(remote_app, headers):
    app, result = remote_app
    client = TestClient(app)
    assert client.get(f"/instances/{result.instance_id}/file", headers=headers).status_code == 401


def test_right_credentials_are_served(remote_app):
    app, result = remote_app
    client = TestClient(app)
    for user, password in USERS.items():
        response = client.get(
            f"/instances/{result.instance_id}/file", headers=_basic(user, password)
        )
        assert response.status_code == 200 and response.content[128:132] == b"DICM"
    assert client.get("/openapi.json", headers=_basic("bob", "s3cret")).status_code == 200


def test_credentials_checked_against_every_user():
    # Constant-time checking compares with every user; results must still be exact.
    header = _basic("bob", "s3cret")["Authorization"]
    assert credentials_valid(header, USERS)
    assert not credentials_valid(header, {"bob": "s3cret!"})
    assert not credentials_valid(header, {})
