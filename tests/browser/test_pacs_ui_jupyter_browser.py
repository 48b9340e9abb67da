"""The PACS's web page behind a real JupyterLab's URL (jupyter-server-proxy): a server
started from Python at ``/proxy/<port>/ui/``, and the ``Workbench PACS`` launcher entry at
``/workbench-pacs/ui/`` starting its own server; uploads, REST and DICOMweb go through the
same prefix, and OHIF on that DICOMweb."""

from __future__ import annotations

import pytest
import requests

from tests.browser.pacs_ui_support import drop_files, open_page, wait_until_uploaded
from tests.data import dicom_files
from tests.peers import require_ohif
from workbench.pacs import Config
from workbench.pacs.server import serve

pytestmark = pytest.mark.browser

CT = "series_ct_philips_ingenuity_5mm"


def _signed_in_page(browser, lab):
    """A page holding JupyterLab's login cookie (its token given once)."""
    page = open_page(browser)
    page.context.http_credentials = None
    page.goto(f"{lab.url}/api/status?token={lab.token}")
    return page


def test_page_through_the_generic_proxy(browser, jupyter_lab, tmp_path, sample_data):
    with serve(Config(StorageDirectory=str(tmp_path), HttpPort=0), dicom=False) as server:
        server.index.import_path(*dicom_files(sample_data / CT), progress=False)
        port = server.url.rsplit(":", 1)[1]
        page = _signed_in_page(browser, jupyter_lab)
        try:
            prefix = f"{jupyter_lab.url}/proxy/{port}"
            page.goto(f"{prefix}/")
            page.locator("table.patients").wait_for()
            assert page.url == f"{prefix}/ui/"  # the relative redirect kept the prefix
            page.locator("table.patients tbody tr").first.click()
            page.locator("table.studies tbody tr").first.click()
            page.locator("table.series tbody tr").first.click()
            page.wait_for_function("() => document.querySelector('.stack')?.dataset.position")
            assert (
                page.locator(".stack-image")
                .get_attribute("src")
                .startswith(f"{prefix}/dicom-web/studies/")
            )
            assert not page.problems
        finally:
            page.context.close()


def test_launcher_entry_starts_the_pacs(browser, jupyter_lab, sample_data):
    # The token as a header: a query parameter would reach the PACS (and QIDO-RS refuses it).
    token = {"Authorization": f"token {jupyter_lab.token}"}
    servers = requests.get(
        f"{jupyter_lab.url}/server-proxy/servers-info", headers=token, timeout=30
    ).json()["server_processes"]
    (entry,) = [s for s in servers if s["name"] == "workbench-pacs"]
    assert entry["launcher_entry"]["title"] == "Workbench PACS"
    assert entry["launcher_entry"]["path_info"] == "workbench-pacs/ui/"

    prefix = f"{jupyter_lab.url}/workbench-pacs"
    page = _signed_in_page(browser, jupyter_lab)
    try:
        page.goto(f"{prefix}/ui/#/upload", timeout=90_000)  # the proxy starts the server
        page.locator(".dropzone").wait_for()
        files = dicom_files(sample_data / CT)[:3]
        before = requests.get(f"{prefix}/statistics", headers=token, timeout=30).json()
        drop_files(page, files)
        counts = wait_until_uploaded(page, len(files))
        assert counts["refused"] == 0 and counts["stored"] + counts["present"] == len(files)
        after = requests.get(f"{prefix}/statistics", headers=token, timeout=30).json()
        assert after["CountInstances"] == before["CountInstances"] + counts["stored"]
        studies = requests.get(f"{prefix}/dicom-web/studies", headers=token, timeout=30).json()
        assert studies and all(s["0020000D"]["Value"] for s in studies), studies
        assert not page.problems
    finally:
        page.context.close()


def test_ohif_through_the_launcher(browser, jupyter_lab, sample_data):
    require_ohif()
    token = {"Authorization": f"token {jupyter_lab.token}"}
    prefix = f"{jupyter_lab.url}/workbench-pacs"
    page = _signed_in_page(browser, jupyter_lab)
    try:
        page.goto(f"{prefix}/ui/", timeout=90_000)  # the proxy starts the server if needed
        page.locator("main [data-view]").wait_for()
        for path in dicom_files(sample_data / CT)[:2]:
            stored = requests.post(
                f"{prefix}/instances", data=path.read_bytes(), headers=token, timeout=60
            )
            assert stored.ok, stored.text
        studies = requests.get(f"{prefix}/dicom-web/studies", headers=token, timeout=30).json()
        page.goto(f"{prefix}/ohif/")
        page.get_by_text(f"1-{len(studies)} of {len(studies)}").wait_for(timeout=60_000)
        study = stored.json()["ParentStudy"]
        page.goto(f"{prefix}/studies/{study}/ohif")  # the redirect keeps the prefix
        page.wait_for_selector("canvas.cornerstone-canvas", timeout=60_000)
        assert page.url.startswith(f"{prefix}/ohif/viewer?StudyInstanceUIDs=")
        assert not page.problems
    finally:
        page.context.close()
