"""The web page's routes: ``/`` leads to ``/ui/``, every module the page imports is served
as JavaScript, nothing outside the page's folder is, and ``features.json`` says what the
server offers."""

from __future__ import annotations

import re
import subprocess
import sys

import requests

from workbench.pacs import Config
from workbench.pacs.server import serve
from workbench.pacs.ui import STATIC


def test_root_redirects_relative_to_the_page(fresh_server):
    for path in ("/", "/ui"):
        response = requests.get(fresh_server.url + path, allow_redirects=False, timeout=30)
        # Relative, so the page stays under a proxy's prefix (/proxy/8042/ → /proxy/8042/ui/).
        assert response.status_code == 307 and response.headers["location"] == "ui/"
    page = requests.get(fresh_server.url + "/", timeout=30)
    assert page.url.endswith("/ui/") and '<main id="view"' in page.text


def test_every_imported_module_is_served_as_javascript(fresh_server):
    modules = {"app.js"}
    seen: set[str] = set()
    while modules - seen:
        name = sorted(modules - seen)[0]
        seen.add(name)
        response = requests.get(f"{fresh_server.url}/ui/{name}", timeout=30)
        assert response.ok, name
        assert response.headers["content-type"].startswith("text/javascript"), name
        modules |= set(re.findall(r'from "\./([\w-]+\.js)"', response.text))
    assert seen == {p.name for p in STATIC.glob("*.js")}  # no module left unused
    css = requests.get(f"{fresh_server.url}/ui/style.css", timeout=30)
    assert css.headers["content-type"].startswith("text/css")


def test_nothing_outside_the_page_folder(fresh_server):
    for path in ("/ui/../rest/ui.py", "/ui/%2e%2e/__init__.py", "/ui/missing.js"):
        response = requests.get(fresh_server.url + path, timeout=30)
        assert response.status_code == 404, path
    # Nothing is fetched from elsewhere at run time.
    for file in STATIC.iterdir():
        assert not re.search(r"(src|href)=\"https?:|import .*https?:", file.read_text()), file


def test_features_say_what_the_page_may_offer(fresh_server):
    features = requests.get(f"{fresh_server.url}/ui/features.json", timeout=30).json()
    assert features == {
        "name": fresh_server.config.Name,
        "ohif": features["ohif"],
        "node": False,
        "auth": False,
        "user": None,
    }
    assert isinstance(features["ohif"], bool)


def test_features_name_the_signed_in_user(tmp_path):
    config = Config(
        StorageDirectory=str(tmp_path),
        HttpPort=0,
        AuthenticationEnabled=True,
        RegisteredUsers={"teacher": "secret"},
    )
    with serve(config, dicom=False) as server:
        url = f"{server.url}/ui/features.json"
        assert requests.get(url, timeout=30).status_code == 401
        features = requests.get(url, auth=("teacher", "secret"), timeout=30).json()
    assert features["auth"] and features["user"] == "teacher"


def test_launcher_command_follows_the_environment():
    from workbench.pacs.jupyter import server_command

    default = server_command({})
    assert default[-6:] == [
        "--http-port",
        "{port}",
        "--storage",
        "workbench-storage",
        "--dicom-port",
        "0",
    ]
    assert server_command({"WORKBENCH_PACS_STORAGE": "/data/pacs"})[-3] == "/data/pacs"
    configured = server_command({"WORKBENCH_PACS_CONFIG": "/etc/pacs.json"})
    assert configured[-2:] == ["--config", "/etc/pacs.json"] and "--storage" not in configured


def test_workbench_serve_says_where_the_page_is(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--no-dicom", "--http-port", "0",
         "--storage", str(tmp_path / "store")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        (page,) = [m.group(1) for line in lines if (m := re.search(r"web page\s+(\S+)", line))]
        answer = requests.get(page, timeout=30)
        assert answer.ok and '<main id="view"' in answer.text, lines
    finally:
        process.terminate()
        process.wait(timeout=30)
