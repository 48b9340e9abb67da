"""Folders holding presentation states, reports, segmentations, key objects and PDFs beside
the images: every reader lists those as what they are and opens the images."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.objects import KINDS, add_non_image_objects, folder_snapshot
from workbench.io import NotAnImageError, PixelDataError, open_series, open_study, scan
from workbench.widgets import Viewer

CT_SERIES = "series_ct_philips_ingenuity_5mm"


@pytest.fixture(scope="module")
def study(sample_data, tmp_path_factory) -> Path:
    """The sample CT series with one object of each non-image kind beside its slices."""
    folder = tmp_path_factory.mktemp("with-objects") / "study"
    shutil.copytree(sample_data / CT_SERIES, folder)
    add_non_image_objects(folder)
    return folder


def test_scan_lists_the_objects_apart_from_the_images(study):
    catalog = scan(study, progress=False)
    assert [(s.modality, len(s)) for s in catalog.series] == [("CT", 28)]
    kinds = sorted(s.kind for s in catalog.objects)
    assert kinds == sorted(KINDS.values())
    assert not catalog.skipped
    assert len(catalog.instances) == 28 + len(KINDS)
    frame = catalog.to_dataframe()
    assert sorted(frame.loc[frame.kind != "image", "Modality"]) == [
        "DOC", "KO", "PR", "PR", "SEG", "SR"
    ]  # fmt: skip
    assert "6 series of other objects" in repr(catalog)


def test_the_images_open_and_the_objects_are_refused_by_name(study):
    assert open_series(study).sizes["frame"] == 28
    (only,) = open_study(study).values()
    assert only.attrs["Modality"] == "CT"
    for name, kind in KINDS.items():
        with pytest.raises(
            NotAnImageError, match=f"{name}.*is an? {kind} \\(.* Storage\\), not an"
        ) as error:
            open_series(study / name)
        assert error.value.kind == kind and isinstance(error.value, PixelDataError)
    catalog = scan(study, progress=False)
    segmentation = next(s for s in catalog.objects if s.kind == "segmentation")
    with pytest.raises(PixelDataError, match="Storage\\), not an image; read it with highdicom"):
        open_series(segmentation)
    with pytest.raises(PixelDataError, match="segmentation"):
        open_series(study, series_uid=segmentation.uid)


def test_a_folder_of_objects_alone_says_so(study, tmp_path):
    folder = tmp_path / "objects"
    folder.mkdir()
    shutil.copy(study / "report_SR.dcm", folder)
    with pytest.raises(PixelDataError, match="structured report"):
        open_series(folder)
    with pytest.raises(Exception, match="no DICOM study with images found; found only"):
        open_study(folder)


def test_the_viewer_opens_the_images_and_offers_the_states(study, tmp_path):
    before = folder_snapshot(study)
    viewer = Viewer(study, thumbnails=True, state_dir=tmp_path / "states")
    try:
        assert [s.attrs["Modality"] for s in viewer.stacks] == ["CT"]
        assert not viewer.skipped
        assert sorted(s.kind for s in viewer.objects) == sorted(KINDS.values())
        states = viewer.presentation_states
        listed = {s.name: s for s in states.store.states()}
        # Ours, and the Agfa state of another study (its CR is not in the folder).
        assert sorted(listed) == ["DIAGUSER_DEFINED", "Ours"]
        assert not any(s.writable for s in listed.values())
        ours = listed["Ours"]
        assert [s.key for s in states.states()] == [ours.key]  # the one on this image
        shown = states.load(ours.key)
        assert [a.text for a in shown.annotations] == ["look here"]
        with pytest.raises(PermissionError, match="came with the images"):
            states.delete(ours.key)
        saved = viewer.save_state("Mine")
        assert saved.writable
        assert len(list((tmp_path / "states").rglob(f"PR_{saved.key}.dcm"))) == 1
        assert {s.key for s in states.store.states()} >= {ours.key, saved.key}
    finally:
        viewer.close()
    assert folder_snapshot(study) == before
