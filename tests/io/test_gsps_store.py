"""Saved states in an index, through a ZIP export, a real Orthanc and back, and in the state
folder of images opened from files."""

from __future__ import annotations

import getpass
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.data import uncompressed_copy
from tests.objects import folder_snapshot
from tests.peers import free_port
from workbench.io.gsps.store import FolderStateStore, IndexStateStore, default_state_dir
from workbench.io.presentation import Annotation
from workbench.pacs import Config, Index
from workbench.pacs.export import write_archive
from workbench.widgets import Viewer

CT_SERIES = "series_ct_philips_ingenuity_5mm"
AET = "WBGSPSTEST"


def ct_files(sample_data: Path, count: int = 3) -> list[Path]:
    return sorted(p for p in (sample_data / CT_SERIES).iterdir() if p.is_file())[:count]


def new_index(folder: Path, **options) -> Index:
    return Index(Config(StorageDirectory=str(folder), **options))


def ct_viewer(index: Index) -> Viewer:
    (series_id,) = index.find("Series", {"Modality": "CT"})
    return Viewer(index.open_series(series_id), states=index, thumbnails=False)


def annotate(viewer: Viewer) -> list[Annotation]:
    image = viewer.active_viewport.image_reference()
    marks = [
        Annotation("length", [(10.25, 20.5), (100.0, 200.75)], image, "43.1 mm",
                   {"length_mm": 43.1}, {"length_mm": "mm"}),
        Annotation("ellipse", [(200, 200), (260, 240)], image, "mean 35.2 HU",
                   {"mean": 35.2, "std": 4.0}, {"mean": "HU", "std": "HU"}),
        Annotation("arrow", [(400, 100), (300, 200)], image, "lesion"),
        Annotation("text", [(20, 480)], image, "Teaching note"),
    ]  # fmt: skip
    for mark in marks:
        viewer.annotations.add(mark)
    viewport = viewer.active_viewport
    viewport.window = (40, 400)
    viewport.invert = True
    viewport.rotation = 90
    viewport.zoom = 2.0
    viewport.center = (200, 220)
    return marks


def assert_loads_identically(viewer: Viewer, key: str, marks: list[Annotation], display) -> None:
    states = viewer.presentation_states
    assert key in [s.key for s in states.states()]
    viewer.load_state(key)
    loaded = states.state(key)
    assert [(a.kind, a.text, a.values, a.units, a.uid, a.image) for a in loaded.annotations] == [
        (a.kind, a.text, a.values, a.units, a.uid, a.image) for a in marks
    ]
    for got, want in zip(loaded.annotations, marks, strict=True):
        np.testing.assert_allclose(got.points, want.points, atol=1e-3)
    viewport = viewer.active_viewport
    shown = viewer.annotations.visible_on(viewport.image_reference())
    assert {a.uid for a in shown} == {a.uid for a in marks}
    assert viewport.window == display.window
    assert (viewport.invert, viewport.rotation, viewport.zoom) == (
        display.invert,
        display.rotation,
        display.zoom,
    )
    np.testing.assert_allclose(viewport.center, display.center, atol=0.5)


@pytest.fixture
def saved(tmp_path, sample_data):
    """An index holding three CT slices, uncompressed as the scanner wrote them (so any peer
    can take them), and one state saved on the first."""
    index = new_index(tmp_path / "first")
    files = [uncompressed_copy(path, tmp_path / "ct") for path in ct_files(sample_data)]
    index.import_path(*files, progress=False)
    viewer = ct_viewer(index)
    marks = annotate(viewer)
    display = viewer.active_viewport.display_settings()
    state = viewer.save_state("Findings")
    yield index, viewer, state, marks, display
    viewer.close()
    index.close()


def test_saved_state_is_a_new_series_of_the_study(saved):
    index, viewer, state, _marks, _display = saved
    (study_id,) = index.find("Study", {})
    pr_series = index.find("Series", {"Modality": "PR"})
    assert len(pr_series) == 1 and index.parent("Series", pr_series[0]) == study_id
    (instance_id,) = index.instances_of("Series", pr_series[0])
    ds = pydicom.dcmread(index.instance_path(instance_id))
    image = viewer.active_viewport.image_reference()
    assert ds.SOPInstanceUID == state.key
    assert ds.ContentDescription == "Findings"
    assert (
        ds.ReferencedSeriesSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID
        == image.sop_instance_uid
    )
    # The GSPS carries the image's patient and study attributes from the stored header.
    (ct_instance,) = index.find("Instance", {"SOPInstanceUID": image.sop_instance_uid})
    ct = pydicom.dcmread(index.instance_path(ct_instance), stop_before_pixels=True)
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "AccessionNumber",
                    "StudyID", "StudyDate"):  # fmt: skip
        assert ds.get(keyword) == ct.get(keyword), keyword


def test_several_states_per_image_and_delete_for_good(saved):
    index, viewer, first, _marks, _display = saved
    states = viewer.presentation_states
    viewer.annotations.clear()
    second = viewer.save_state("Second look")
    assert [s.name for s in states.states()] == ["Findings", "Second look"]
    # Both sit in one presentation-state series of the study.
    assert len(index.find("Series", {"Modality": "PR"})) == 1
    assert second.series_instance_uid == first.series_instance_uid
    states.delete(first.key)
    assert [s.name for s in states.states()] == ["Second look"]
    assert index.find("Instance", {"SOPInstanceUID": first.key}) == []
    fresh = IndexStateStore(index)  # nothing cached
    assert [s.key for s in fresh.states()] == [second.key]


def test_round_trip_through_zip_export_and_a_fresh_index(saved, tmp_path):
    index, _viewer, state, marks, display = saved
    (study_id,) = index.find("Study", {})
    archive = tmp_path / "study.zip"
    assert write_archive(index, "Study", study_id, archive) == 4
    fresh = new_index(tmp_path / "second")
    summary = fresh.import_path(archive, progress=False)
    assert summary.stored == 4 and not summary.errors
    viewer = ct_viewer(fresh)
    try:
        assert_loads_identically(viewer, state.key, marks, display)
    finally:
        viewer.close()
        fresh.close()


@pytest.mark.peers
def test_study_with_its_gsps_goes_to_orthanc_and_back(saved, orthanc, tmp_path):
    from workbench.pacs.node import DicomNode

    index, _viewer, state, marks, display = saved
    options = {
        "DicomAet": AET,
        "DicomPort": free_port(),
        "DicomModalities": {"orthanc": ["ORTHANC", "127.0.0.1", orthanc.dicom_port]},
    }
    (study_id,) = index.find("Study", {})
    study_uid = index.main_dicom_tags("Study", study_id)["StudyInstanceUID"]
    sender = DicomNode(index, Config(StorageDirectory=str(tmp_path / "unused"), **options))
    result = sender.store("orthanc", [study_id])
    assert result.ok, result
    found = orthanc.post(
        "/tools/find", json={"Level": "Instance", "Query": {"SOPInstanceUID": state.key}}
    ).json()
    assert len(found) == 1
    fresh = new_index(tmp_path / "back", **options)
    receiver = DicomNode(fresh, fresh.config)
    # Orthanc answers retrieves from modalities it knows.
    orthanc.put(
        "/modalities/wbgsps", json={"AET": AET, "Host": "127.0.0.1", "Port": options["DicomPort"]}
    ).raise_for_status()
    try:
        # The session's Orthanc may hold more of this study (the whole CT series, sent by
        # other tests): retrieve exactly the instances sent here, series by series.
        completed = 0
        for series_id in index.find("Series", {}):
            uids = [index.main_dicom_tags("Instance", instance)["SOPInstanceUID"]
                    for instance in index.instances_of("Series", series_id)]  # fmt: skip
            series_uid = index.main_dicom_tags("Series", series_id)["SeriesInstanceUID"]
            query = {
                "StudyInstanceUID": study_uid,
                "SeriesInstanceUID": series_uid,
                "SOPInstanceUID": "\\".join(uids),
            }
            retrieved = receiver.get("orthanc", query, level="IMAGE")
            assert (retrieved.completed, retrieved.failed) == (len(uids), 0), retrieved
            completed += retrieved.completed
        assert completed == 4  # three CT slices and the state
        viewer = ct_viewer(fresh)
        try:
            assert_loads_identically(viewer, state.key, marks, display)
        finally:
            viewer.close()
    finally:
        series = orthanc.post(
            "/tools/find",
            json={"Level": "Series", "Query": {"StudyInstanceUID": study_uid, "Modality": "PR"}},
        ).json()
        for series_id in series:
            orthanc.delete(f"/series/{series_id}")
        orthanc.delete("/modalities/wbgsps")
        fresh.close()


def test_states_of_files_go_to_the_state_folder_never_beside_them(sample_data, tmp_path):
    folder = tmp_path / "ct"
    folder.mkdir()
    for path in ct_files(sample_data, 2):
        shutil.copy(path, folder / path.name)
    before = folder_snapshot(folder)
    state_dir = tmp_path / "states"
    viewer = Viewer(folder, thumbnails=False, state_dir=state_dir)
    try:
        store = viewer.presentation_states.store
        assert isinstance(store, FolderStateStore) and store.folder == state_dir
        marks = annotate(viewer)
        display = viewer.active_viewport.display_settings()
        state = viewer.save_state("In the state folder")
        study = viewer.active_viewport.attrs["StudyInstanceUID"]
        saved = state_dir / study / f"PR_{state.key}.dcm"
        assert saved.is_file()
        # The state copies the image's own header (its file is known), not a made-up one.
        ds = pydicom.dcmread(saved)
        image = pydicom.dcmread(ct_files(sample_data, 1)[0], stop_before_pixels=True)
        for keyword in ("AccessionNumber", "StudyID", "PatientBirthDate", "PatientSex"):
            assert ds.get(keyword) == image.get(keyword), keyword
    finally:
        viewer.close()
    assert folder_snapshot(folder) == before
    again = Viewer(folder, thumbnails=False, state_dir=state_dir)
    try:
        assert_loads_identically(again, state.key, marks, display)
        again.presentation_states.delete(state.key)
        assert not saved.exists()
    finally:
        again.close()
    assert folder_snapshot(folder) == before


def test_the_state_folder_defaults_to_the_environment(sample_data, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STATE_DIR", str(tmp_path / "from-env"))
    viewer = Viewer(ct_files(sample_data, 1), thumbnails=False)
    try:
        assert viewer.presentation_states.store.folder == tmp_path / "from-env"
    finally:
        viewer.close()
    monkeypatch.delenv("WORKBENCH_STATE_DIR")
    assert default_state_dir().parts[-2:] == ("workbench", "states")
    assert Path.home() in default_state_dir().parents
    with pytest.raises(TypeError, match="not both"):
        Viewer(None, states=tmp_path, state_dir=tmp_path)


@pytest.mark.parametrize(
    ("user", "environment", "expected"),
    [("Teacher^Case", "Env^User", "Teacher^Case"), (None, "Env^User", "Env^User"),
     (None, None, getpass.getuser())],
)  # fmt: skip
def test_creator_comes_from_the_viewer_then_the_environment_then_the_login(
    sample_data, tmp_path, monkeypatch, user, environment, expected
):
    if environment is None:
        monkeypatch.delenv("WORKBENCH_USER", raising=False)
    else:
        monkeypatch.setenv("WORKBENCH_USER", environment)
    viewer = Viewer(ct_files(sample_data, 1), thumbnails=False, user=user,
                    state_dir=tmp_path)  # fmt: skip
    try:
        annotate(viewer)
        state = viewer.save_state("Whose")
        # A one-part name is written as a family name ("root^").
        assert state.creator.rstrip("^") == expected
        ds = viewer.presentation_states.store.dataset(state.key)
        assert str(ds.ContentCreatorName).rstrip("^") == expected
    finally:
        viewer.close()
