"""The OHIF viewer served at ``/ohif/``: its build moved under the mount, configured for our
DICOMweb root, single-page routes, and the link from each study. (The viewer running in
Chromium on our DICOMweb is ``tests/browser/test_ohif_browser.py``.)"""

from __future__ import annotations

import re
import shutil

import pytest
from fastapi.testclient import TestClient

from tests.pacs.test_index_store import SMALL_FILE, make_instance
from tests.peers import require_ohif
from workbench.pacs import Config, Index
from workbench.pacs.rest.app import create_app


@pytest.fixture(scope="module")
def ohif_app(tmp_path_factory, sample_data):
    """The REST app over a store of one instance, serving the bootstrap's OHIF build."""
    require_ohif()
    index = Index(Config(StorageDirectory=str(tmp_path_factory.mktemp("ohif-store"))))
    result = index.ingest_bytes(make_instance(sample_data / SMALL_FILE))
    with TestClient(create_app(index)) as client:
        yield client, result
    index.close()


def _page_references(html: str) -> list[str]:
    return re.findall(r'\b(?:src|href)="([^"]+)"', html)


def test_page_and_everything_it_loads_are_served_under_the_mount(ohif_app):
    client, _ = ohif_app
    page = client.get("/ohif/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'window.PUBLIC_URL="/ohif/"' in page.text
    references = _page_references(page.text)
    assert "/ohif/app-config.js" in references
    assert all(ref.startswith("/ohif/") for ref in references), references
    for ref in references:
        if ref.endswith((".js", ".css")):
            assert client.get(ref).status_code == 200, ref


def test_chunks_workers_and_fonts_load_from_the_mount(ohif_app):
    client, _ = ohif_app
    page = client.get("/ohif/").text
    bundle = next(r for r in _page_references(page) if re.search(r"/app\.bundle\.\w+\.js$", r))
    code = client.get(bundle).text
    assert '__webpack_require__.p = "/ohif/"' in code
    assert '__webpack_require__.p = "/"' not in code
    css = client.get("/ohif/app.bundle.css").text
    assert "url(/ohif/" in css and "url(/" not in css.replace("url(/ohif/", "")
    wasm = next(p.name for p in require_ohif().glob("*.wasm"))
    answer = client.get(f"/ohif/{wasm}")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/wasm"


def test_app_config_points_at_our_dicomweb_root(ohif_app):
    client, _ = ohif_app
    answer = client.get("/ohif/app-config.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    text = answer.text
    assert '"routerBasename": "/ohif"' in text
    assert '"qidoRoot": "/dicom-web"' in text and '"wadoRoot": "/dicom-web"' in text
    assert "window.location.origin" in text
    assert "cloudfront" not in text  # the build's demo server is gone


def test_viewer_routes_fall_back_to_the_page_and_missing_files_are_404(ohif_app):
    client, _ = ohif_app
    index_page = client.get("/ohif/").text
    route = client.get("/ohif/viewer?StudyInstanceUIDs=1.2.3")
    assert route.status_code == 200 and route.text == index_page
    assert client.get("/ohif", follow_redirects=False).headers["location"] == "/ohif/"
    missing = client.get("/ohif/no-such-bundle.js")
    assert missing.status_code == 404 and "no-such-bundle.js" in missing.json()["Details"]
    outside = client.get("/ohif/%2e%2e/%2e%2e/%2e%2e/etc/hostname")
    assert outside.status_code == 200 and outside.text == index_page


def test_each_study_links_to_the_viewer(ohif_app):
    client, result = ohif_app
    study = client.get(f"/instances/{result.instance_id}/study").json()
    answer = client.get(f"/studies/{study['ID']}/ohif", follow_redirects=False)
    assert answer.status_code == 307
    uid = study["MainDicomTags"]["StudyInstanceUID"]
    assert answer.headers["location"] == f"/ohif/viewer?StudyInstanceUIDs={uid}"
    assert client.get("/studies/unknown/ohif", follow_redirects=False).status_code == 404


def test_ohif_directory_option(tmp_path):
    build = tmp_path / "my-ohif"
    shutil.copytree(
        require_ohif(), build, ignore=shutil.ignore_patterns("*.js", "*.wasm", "*.map", "ort")
    )
    index = Index(Config(StorageDirectory=str(tmp_path / "s"), OhifDirectory=str(build)))
    try:
        with TestClient(create_app(index)) as client:
            assert client.get("/ohif/app-config.js").status_code == 200
            assert client.get("/ohif/manifest.json").json()
        index.config.OhifDirectory = str(tmp_path)
        with pytest.raises(ValueError, match=f"OhifDirectory {tmp_path} holds no OHIF build"):
            create_app(index)
    finally:
        index.close()


def test_behind_a_proxy_prefix_every_reference_names_it(ohif_app):
    client, _ = ohif_app
    prefix = "/user/me/workbench-pacs"
    proxied = {"X-Forwarded-Prefix": prefix + "/"}
    page = client.get("/ohif/", headers=proxied).text
    assert f'window.PUBLIC_URL="{prefix}/ohif/"' in page
    assert all(ref.startswith(f"{prefix}/ohif/") for ref in _page_references(page))
    bundle = next(r for r in _page_references(page) if re.search(r"/app\.bundle\.\w+\.js$", r))
    code = client.get(bundle.removeprefix(prefix), headers=proxied).text
    assert f'__webpack_require__.p = "{prefix}/ohif/"' in code
    config = client.get("/ohif/app-config.js", headers=proxied).text
    assert f'"routerBasename": "{prefix}/ohif"' in config
    assert f'"qidoRoot": "{prefix}/dicom-web"' in config
    # Without the header, or with one that is not a plain path, the site root as before.
    plain = client.get("/ohif/").text
    assert prefix not in plain and 'window.PUBLIC_URL="/ohif/"' in plain
    odd = client.get("/ohif/", headers={"X-Forwarded-Prefix": '/x"><script>'}).text
    assert odd == plain
