"""The side panels in JupyterLab, in headless Chromium: many series in the thumbnail panel,
the saved-states list across slices, saving from the quickstart, folders with non-image
objects."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.browser.conftest import wait_for_viewer
from tests.objects import add_non_image_objects, folder_snapshot

pytestmark = pytest.mark.browser

SERIES_COUNT = 22


@pytest.fixture()
def many_series(jupyter_lab, sample_data) -> Path:
    """22 MR series (the sample 64² MR under new series UIDs and numbers): one image each,
    three slices in the last."""
    folder = jupyter_lab.root / "many-series"
    folder.mkdir(exist_ok=True)
    source = pydicom.dcmread(sample_data / "nema_mr1_small_transcodes" / "MR_small.dcm")
    z = float(source.ImagePositionPatient[2])
    for number in range(1, SERIES_COUNT + 1):
        source.SeriesInstanceUID = generate_uid()
        source.SeriesNumber = number
        source.SeriesDescription = f"copy {number}"
        for slice_number in range(1, 4 if number == SERIES_COUNT else 2):
            source.SOPInstanceUID = source.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            source.InstanceNumber = slice_number
            source.ImagePositionPatient[2] = z + 5 * slice_number
            source.save_as(folder / f"series{number:02}-{slice_number}.dcm")
    return folder


def test_many_series_scroll_and_keep_their_size(lab_page, run_notebook, many_series,
                                                artifacts_dir) -> None:  # fmt: skip
    cells = [
        "from workbench.widgets import Viewer",
        f"viewer = Viewer({str(many_series)!r}, size=(480, 480))\nviewer",
    ]
    page = run_notebook(lab_page, "many-series.ipynb", cells)
    wait_for_viewer(page)
    page.wait_for_function(
        f"() => {{ const imgs = [...document.querySelectorAll('.wb-thumbnail img')];"
        f" return imgs.length === {SERIES_COUNT} && imgs.every(i => i.naturalWidth > 0); }}"
    )
    boxes = page.evaluate(
        "() => [...document.querySelectorAll('.wb-thumbnail')].map(t => {"
        " const r = t.getBoundingClientRect(), i = t.querySelector('img').getBoundingClientRect();"
        " return [r.height, i.width, i.height, t.innerText]; })"
    )
    page.screenshot(path=str(artifacts_dir / "thumbnails_many_series.png"))
    assert len(boxes) == SERIES_COUNT
    for height, image_width, image_height, _label in boxes:
        assert (image_width, image_height) == (96, 96)
        assert height > 96 + 10  # the preview and its label, never squashed
    labels = [label for *_, label in boxes]
    assert labels[0].startswith("#1 MR · copy 1") and labels[-1].startswith("#22 MR · copy 22")
    panel = page.evaluate(
        "() => { const p = document.querySelector('.wb-thumbnails');"
        " return [p.scrollHeight, p.clientHeight, getComputedStyle(p).overflowY]; }"
    )
    scroll_height, client_height, overflow = panel
    assert overflow == "auto" and scroll_height > client_height
    assert scroll_height >= SERIES_COUNT * 106
    # The last one scrolls into view and opens.
    last = page.locator(".wb-thumbnail").nth(SERIES_COUNT - 1)
    last.scroll_into_view_if_needed()
    assert "3 fr" in last.inner_text()
    last.click()
    # It opens on the slice its thumbnail shows: the middle one.
    page.wait_for_function(
        "() => document.querySelector('.wb-viewport-status').textContent.startsWith('Im 2/3')"
    )
    page.screenshot(path=str(artifacts_dir / "thumbnails_scrolled.png"))


@pytest.fixture()
def three_slices(jupyter_lab, sample_data) -> Path:
    """Three CT slices in a folder of the lab's root."""
    folder = jupyter_lab.root / "three-slices"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    ct = sample_data / "series_ct_philips_ingenuity_5mm"
    for path in sorted(p for p in ct.iterdir() if p.is_file())[:3]:
        shutil.copy(path, folder / path.name)
    return folder


def wait_status(page, prefix: str) -> None:
    page.wait_for_function(
        "([p]) => document.querySelector('.wb-viewport-status').textContent.startsWith(p)",
        arg=[prefix],
    )


def test_states_listed_across_slices_and_jumped_to(lab_page, run_notebook, three_slices,
                                                   tmp_path, artifacts_dir) -> None:  # fmt: skip
    cells = [
        "from workbench.io.presentation import Annotation\nfrom workbench.widgets import Viewer",
        f"viewer = Viewer({str(three_slices)!r}, size=(480, 480), "
        f"state_dir={str(tmp_path / 'states')!r})\nviewer",
        # Two states saved from Python, on the first and the third slice.
        "viewport = viewer.viewports[0]\n"
        "for frame, name in ((0, 'On slice one'), (2, 'On slice three')):\n"
        "    viewport.frame = frame\n"
        "    viewer.annotations.add(Annotation('length', [(100, 100), (300, 100)],\n"
        "                                      image=viewport.image_reference(), text=name))\n"
        "    viewer.save_state(name)\n"
        "    viewer.annotations.clear()\n"
        "viewport.frame = 1",
    ]
    page = run_notebook(lab_page, "states-across-slices.ipynb", cells)
    wait_for_viewer(page)
    wait_status(page, "Im 2/3")
    page.locator(".wb-load-annotations").click()
    panel = page.locator(".wb-annotations-panel")
    panel.wait_for(state="visible")
    jumps = panel.locator(".wb-state-jump")
    jumps.nth(1).wait_for()
    assert jumps.all_inner_texts() == ["Slice 1/3", "Slice 3/3"]
    groups = panel.locator(".wb-state-group")
    assert "On slice one" in groups.nth(0).inner_text()
    assert "On slice three" in groups.nth(1).inner_text()
    # Labelled controls.
    row = panel.locator(".wb-state-row").first
    assert "Show" in row.locator(".wb-state-graphics").inner_text()
    assert "Apply display" in row.locator(".wb-state-display").inner_text()
    assert "Edit a copy" in row.locator(".wb-state-copy").inner_text()

    jumps.nth(1).click()
    wait_status(page, "Im 3/3")
    for graphics in panel.locator(".wb-state-graphics input").all():
        graphics.check()
    page.locator(".wb-annotations li[data-kind='length']").wait_for()
    assert "On slice three" in page.locator(".wb-annotations").inner_text()
    jumps.nth(0).click()
    wait_status(page, "Im 1/3")
    page.wait_for_function(
        "() => document.querySelector('.wb-annotations').textContent.includes('On slice one')"
    )
    page.screenshot(path=str(artifacts_dir / "states_across_slices.png"))


@pytest.mark.slow
def test_saving_from_the_quickstart_leaves_the_data_alone(
    lab_page, run_notebook, jupyter_lab, state_dir, sample_data
) -> None:
    import nbformat

    from tests.notebooks.test_notebooks_run import LEARNER_CHECKS, NOTEBOOKS
    from tests.notebooks.test_notebooks_run import run_notebook as run_with_nbclient

    # The quickstart finds data/sample from its own folder up, as in a checkout.
    link = jupyter_lab.root / "data"
    if not link.exists():
        link.symlink_to(sample_data.parent, target_is_directory=True)
    quickstart = nbformat.read(NOTEBOOKS / "01-quickstart.ipynb", as_version=4)
    # Up to the viewer and its measurements (the plots after them would scroll it away).
    cells = [cell.source for cell in quickstart.cells if cell.cell_type == "code"]
    cells = cells[: next(i for i, c in enumerate(cells) if "annotations.table()" in c) + 1]
    before = folder_snapshot(sample_data)
    page = run_notebook(lab_page, "quickstart-copy.ipynb", cells, timeout=300)
    wait_for_viewer(page)
    # States of this study saved before (by other tests of the session) are not this save's.
    earlier = set(state_dir.rglob("PR_*.dcm"))
    page.locator(".wb-save-annotations").first.click()
    page.locator(".wb-save-name input").fill("Skull width")
    page.locator(".wb-save-ok").click()
    page.locator(".wb-save-confirm").wait_for()
    page.locator(".wb-has-states .wb-badge").first.wait_for()
    saved = [p for p in set(state_dir.rglob("PR_*.dcm")) - earlier
             if pydicom.dcmread(p).ContentDescription == "Skull width"]  # fmt: skip
    assert len(saved) == 1
    assert folder_snapshot(sample_data) == before
    # The teaching case still runs on the untouched folder.
    name = "03-teaching-case.ipynb"
    run_with_nbclient(NOTEBOOKS / name, LEARNER_CHECKS[name])
    assert folder_snapshot(sample_data) == before


def test_a_folder_with_non_image_objects_opens_and_offers_its_states(
    lab_page, run_notebook, jupyter_lab, sample_data, tmp_path, artifacts_dir
) -> None:
    folder = jupyter_lab.root / "with-objects"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(sample_data / "series_ct_philips_ingenuity_5mm", folder)
    kinds = add_non_image_objects(folder)
    before = folder_snapshot(folder)
    cells = [
        "from workbench.widgets import Viewer",
        f"viewer = Viewer({str(folder)!r}, size=(480, 480), "
        f"state_dir={str(tmp_path / 'states')!r})\nviewer",
        "assert len(viewer.stacks) == 1 and not viewer.skipped, viewer.skipped",
    ]
    page = run_notebook(lab_page, "with-objects.ipynb", cells)
    wait_for_viewer(page)
    assert page.locator(".wb-thumbnail").count() == 1
    listing = page.locator(".wb-objects").inner_text()
    for kind in set(kinds.values()):
        assert kind in listing, (kind, listing)
    page.locator(".wb-load-annotations").click()
    row = page.locator(".wb-annotations-panel .wb-state-row")
    row.first.wait_for()
    assert row.count() == 1 and "Ours" in row.inner_text()
    assert "read only" in row.inner_text()
    assert row.locator(".wb-state-delete button, button.wb-state-delete").first.is_disabled()
    row.locator(".wb-state-graphics input").check()
    page.locator(".wb-annotations li[data-kind='arrow']").wait_for()
    page.screenshot(path=str(artifacts_dir / "folder_with_objects.png"))
    assert folder_snapshot(folder) == before
