"""OHIF (npm ``@ohif/app``, served at ``/ohif/``) in Chromium on our DICOMweb: its study
list shows the sample studies, the CT study paints, and a length measured in OHIF and saved
as a report arrives through STOW-RS as a DICOM SR in our index."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pydicom
import pytest
import requests
from PIL import Image

from tests.data import dicom_files
from tests.pacs.dicomweb_support import value
from tests.peers import require_ohif
from workbench.pacs import Config
from workbench.pacs.server import serve

pytestmark = pytest.mark.browser

CT_PATIENT = "HEAD"  # the Philips CT series of data/sample
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.22"
PAGE_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def ohif_server(tmp_path_factory, sample_data):
    """A PACS holding data/sample, serving OHIF from the bootstrap's build."""
    require_ohif()
    store = tmp_path_factory.mktemp("ohif-browser")
    handle = serve(Config(StorageDirectory=str(store), HttpPort=0), dicom=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        handle.index.import_path(*dicom_files(sample_data), progress=False)
    yield handle
    handle.stop()


@pytest.fixture
def ohif_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    yield page
    context.close()


def _ct_study(server) -> str:
    answers = requests.get(
        f"{server.url}/dicom-web/studies", params={"PatientName": CT_PATIENT}, timeout=30
    ).json()
    (study,) = answers
    return value(study, "StudyInstanceUID")


def _painted(page) -> float:
    """Grey-level spread of the first viewport's canvas as the user sees it."""
    shot = page.locator("canvas.cornerstone-canvas").first.screenshot()
    return float(np.asarray(Image.open(io.BytesIO(shot)).convert("L")).std())


def test_study_list_shows_every_study(ohif_server, ohif_page):
    studies = requests.get(f"{ohif_server.url}/dicom-web/studies", timeout=30).json()
    page = ohif_page
    page.goto(f"{ohif_server.url}/ohif/")
    page.get_by_text(f"1-{len(studies)} of {len(studies)}").wait_for(timeout=PAGE_TIMEOUT_MS)
    body = page.inner_text("body")
    for study in studies:
        description = value(study, "StudyDescription")
        if description:
            assert description in body
    assert not page.errors


def test_ct_study_paints_and_a_length_comes_back_as_sr(ohif_server, ohif_page):
    page = ohif_page
    study = _ct_study(ohif_server)
    page.goto(f"{ohif_server.url}/ohif/viewer?StudyInstanceUIDs={study}")
    page.wait_for_selector("canvas.cornerstone-canvas", timeout=PAGE_TIMEOUT_MS)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-cy=viewport-overlay-bottom-right]')]"
        ".some(e => /\\(1\\/28\\)/.test(e.textContent))",
        timeout=PAGE_TIMEOUT_MS,
    )
    assert _painted(page) > 10  # a CT slice, not a blank canvas

    tour = page.get_by_text("Skip all")
    if tour.count():
        tour.click()
    page.locator('[data-cy="Length-btn"]').first.click()
    box = page.locator("canvas.cornerstone-canvas").first.bounding_box()
    x, y = box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.5
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 100, y + 20, steps=8)
    page.mouse.up()
    page.get_by_role("button", name="Yes", exact=True).click()  # track this series
    page.locator('[data-cy="trackedMeasurements-btn"]').click()
    page.get_by_text("Measurements (1)").wait_for()
    shown = page.inner_text("body")  # the panel lists the length OHIF measured
    page.get_by_role("button", name="Create SR").click()
    page.locator('[data-cy="dialog-input"]').fill("Workbench length")
    page.get_by_role("button", name="Save", exact=True).click()

    reports = []
    page.wait_for_function(
        "() => !document.querySelector('[data-cy=dialog-input]')", timeout=PAGE_TIMEOUT_MS
    )
    for _ in range(100):  # the STOW-RS request follows the dialog closing
        reports = requests.get(
            f"{ohif_server.url}/dicom-web/studies/{study}/instances",
            params={"SOPClassUID": COMPREHENSIVE_SR},
            timeout=30,
        ).json()
        if reports:
            break
        page.wait_for_timeout(100)
    (report,) = reports
    (instance,) = ohif_server.index.find(
        "Instance", {"SOPInstanceUID": value(report, "SOPInstanceUID")}
    )
    sr = pydicom.dcmread(ohif_server.index.instance_path(instance))
    assert sr.SeriesDescription == "Workbench length"
    numbers = [item for item in _content_items(sr) if getattr(item, "ValueType", "") == "NUM"]
    (length,) = [float(item.MeasuredValueSequence[0].NumericValue) for item in numbers]
    assert f"{length:.1f} mm" in shown
    images = {
        str(reference.ReferencedSOPInstanceUID)
        for item in _content_items(sr)
        for reference in getattr(item, "ReferencedSOPSequence", [])
    }
    ct_instances = {
        value(one, "SOPInstanceUID")
        for one in requests.get(
            f"{ohif_server.url}/dicom-web/studies/{study}/instances",
            params={"Modality": "CT"},
            timeout=30,
        ).json()
    }
    assert images and images <= ct_instances
    assert not page.errors


def _content_items(ds):
    for item in getattr(ds, "ContentSequence", []):
        yield item
        yield from _content_items(item)
