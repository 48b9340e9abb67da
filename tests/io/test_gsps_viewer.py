"""The viewer's save/load panel driven like a user would, without a browser: buttons, dialog,
confirmations, per-state checkbox and radio, deletion, badges."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workbench.io import open_series
from workbench.io.display import lut_window
from workbench.io.gsps.store import MemoryStateStore
from workbench.io.presentation import Annotation, DisplaySettings, VoiLut
from workbench.widgets import Viewer
from workbench.widgets.states import VHS_NAME, for_viewport

CT_SERIES = "series_ct_philips_ingenuity_5mm"


def has_class(widget, name: str) -> bool:
    return name in getattr(widget, "_dom_classes", ())


def find_all(widget, name: str) -> list:
    """Every widget with CSS class ``name`` in a widget tree, in order."""
    found = [widget] if has_class(widget, name) else []
    for child in getattr(widget, "children", ()):
        found.extend(find_all(child, name))
    return found


def find(widget, name: str):
    """The first widget with CSS class ``name`` in a widget tree."""
    if has_class(widget, name):
        return widget
    for child in getattr(widget, "children", ()):
        found = find(child, name)
        if found is not None:
            return found
    return None


@pytest.fixture(scope="module")
def ct(sample_data):
    files = sorted(p for p in (sample_data / CT_SERIES).iterdir() if p.is_file())[:3]
    return open_series(files)


@pytest.fixture
def viewer(ct):
    viewer = Viewer(ct, states=MemoryStateStore())
    yield viewer
    viewer.close()


def add_length(viewer: Viewer, text: str = "42 mm") -> Annotation:
    image = viewer.active_viewport.image_reference()
    return viewer.annotations.add(
        Annotation("length", [(10, 20), (100, 200)], image, text, {"length_mm": 42.0},
                   {"length_mm": "mm"})
    )  # fmt: skip


def test_save_asks_a_name_and_confirms(viewer):
    panel = viewer.annotations_panel
    add_length(viewer)
    assert panel.save_button in viewer.toolbar.row.children
    panel.save_button.click()
    dialog = find(panel.dialogs, "wb-save-dialog")
    assert dialog is not None
    find(dialog, "wb-save-ok").click()  # no name yet: refused with a hint
    assert find(panel.dialogs, "wb-save-dialog") is not None
    assert panel.states.states() == []
    find(dialog, "wb-save-name").value = "My findings"
    find(dialog, "wb-save-ok").click()
    confirm = find(panel.dialogs, "wb-save-confirm")
    assert confirm is not None and "My findings" in confirm.children[0].value
    find(confirm, "wb-popup-ok").click()
    assert panel.dialogs.children == ()
    assert [s.name for s in panel.states.states()] == ["My findings"]


def test_cancel_saves_nothing(viewer):
    panel = viewer.annotations_panel
    add_length(viewer)
    panel.save_button.click()
    find(panel.dialogs, "wb-save-name").value = "Not wanted"
    find(panel.dialogs, "wb-save-cancel").click()
    assert panel.dialogs.children == ()
    assert panel.states.states() == []


def test_a_lone_vertebral_heart_score_saves_without_asking(viewer):
    panel = viewer.annotations_panel
    image = viewer.active_viewport.image_reference()
    viewer.annotations.add(
        Annotation(
            "vhs",
            [(100, 100), (200, 150), (120, 180), (180, 90)],
            image,
            "VHS 10.2 v",
            {"vhs": 10.2},
            {"vhs": "v"},
        )
    )
    panel.save_button.click()
    assert find(panel.dialogs, "wb-save-dialog") is None
    assert find(panel.dialogs, "wb-save-confirm") is not None
    assert [s.name for s in panel.states.states()] == [VHS_NAME]
    assert viewer.save_state().name == VHS_NAME  # the same from Python


def test_load_panel_shows_hides_applies_and_deletes(viewer):
    panel = viewer.annotations_panel
    states = viewer.presentation_states
    viewport = viewer.active_viewport
    mark = add_length(viewer, "first")
    viewport.window, viewport.invert, viewport.rotation = (40, 400), True, 90
    first = viewer.save_state("Soft tissue")
    viewer.annotations.clear()
    viewport.window, viewport.invert, viewport.rotation = (-600, 1500), False, 0
    second_mark = add_length(viewer, "second")
    second = viewer.save_state("Lung")
    viewer.annotations.clear()
    viewport.reset()
    viewport.window = (10, 100)  # the user's own display before loading anything

    panel.load_button.click()
    assert viewer.thumbnails.box.layout.display == "none"
    assert panel.box.layout.display == "flex"
    rows = find_all(panel.rows, "wb-state-row")
    assert len(rows) == 2
    assert "Soft tissue" in find(rows[0], "wb-state-text").value
    assert "Lung" in find(rows[1], "wb-state-text").value

    image = viewport.image_reference()
    find(rows[0], "wb-state-graphics").value = True
    find(rows[1], "wb-state-graphics").value = True
    shown = {a.uid for a in viewer.annotations.visible_on(image)}
    assert shown == {mark.uid, second_mark.uid}
    find(rows[1], "wb-state-graphics").value = False
    assert {a.uid for a in viewer.annotations.visible_on(image)} == {mark.uid}

    find(rows[0], "wb-state-display").value = True
    assert (viewport.window, viewport.invert, viewport.rotation) == ((40.0, 400.0), True, 90)
    find(rows[1], "wb-state-display").value = True  # radio: the other one goes off
    assert find(rows[0], "wb-state-display").value is False
    assert (viewport.window, viewport.invert, viewport.rotation) == ((-600.0, 1500.0), False, 0)
    find(rows[1], "wb-state-display").value = False  # deselect: the original display
    assert viewport.window == (10.0, 100.0)

    find(rows[0], "wb-state-delete").click()
    dialog = find(panel.dialogs, "wb-delete-dialog")
    find(dialog, "wb-confirm-cancel").click()
    assert [s.key for s in states.states()] == [first.key, second.key]
    find(rows[0], "wb-state-delete").click()
    find(panel.dialogs, "wb-confirm-ok").click()
    assert [s.key for s in states.states()] == [second.key]
    assert {a.uid for a in viewer.annotations.visible_on(image)} == set()
    assert len(find_all(panel.rows, "wb-state-row")) == 1

    find(panel.box, "wb-close-annotations").click()
    assert panel.box.layout.display == "none"
    assert viewer.thumbnails.box.layout.display is None


def test_one_save_keeps_the_marks_of_every_slice(viewer):
    viewport = viewer.active_viewport
    on_first = add_length(viewer, "slice 1")
    viewport.frame = 2
    on_third = add_length(viewer, "slice 3")
    assert on_third.image == viewport.image_reference()
    first_image = on_first.image
    third_image = viewport.image_reference()
    assert first_image != third_image
    saved = viewer.save_state("Both slices")
    assert saved.images == [third_image, first_image]
    viewer.annotations.clear()
    viewer.load_state(saved.key, display=False)
    assert [a.text for a in viewer.annotations.visible_on(third_image)] == ["slice 3"]
    viewport.frame = 0
    assert [s.key for s in viewer.presentation_states.states()] == [saved.key]
    assert [a.text for a in viewer.annotations.visible_on(first_image)] == ["slice 1"]


def test_thumbnail_badge_follows_saved_states(viewer):
    panel = viewer.annotations_panel
    item = viewer.thumbnails.items_by_stack[0]
    assert not has_class(item, "wb-has-states")
    add_length(viewer)
    panel.save_button.click()
    find(panel.dialogs, "wb-save-name").value = "Badge"
    find(panel.dialogs, "wb-save-ok").click()
    assert has_class(item, "wb-has-states")
    assert find(item, "wb-badge") is not None
    viewer.presentation_states.delete(viewer.presentation_states.states()[0].key)
    assert not has_class(item, "wb-has-states") and find(item, "wb-badge") is None


def test_saving_from_python_updates_the_badge(viewer):
    item = viewer.thumbnails.items_by_stack[0]
    add_length(viewer)
    viewer.save_state("From a notebook cell")
    assert has_class(item, "wb-has-states")


@pytest.mark.filterwarnings("ignore:The string .* unlikely to represent")
def test_another_programs_state_loads_with_what_is_not_shown(viewer, sample_data):
    import highdicom as hd
    import numpy as np
    import pydicom
    from highdicom import pr

    files = sorted(p for p in (sample_data / CT_SERIES).iterdir() if p.is_file())
    image = pydicom.dcmread(files[0], stop_before_pixels=True)
    layer = pr.GraphicLayer("THEIRS", order=1)
    circle = pr.GraphicObject("CIRCLE", np.array([[100.5, 100.5], [110.5, 100.5]]), "PIXEL")
    ds = pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[image], series_instance_uid=hd.UID(), series_number=5,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="Elsewhere",
        manufacturer_model_name="Other", software_versions="1", device_serial_number="1",
        content_label="THEIRS", content_description="From elsewhere",
        graphic_layers=[layer],
        graphic_annotations=[pr.GraphicAnnotation([image], layer, graphic_objects=[circle])],
        voi_lut_transformations=[pr.SoftcopyVOILUTTransformation(voi_luts=[hd.VOILUT(
            0, np.linspace(0, 4095, 2048).astype(np.uint16))])],
    )  # fmt: skip
    ds.ShutterShape = "RECTANGULAR"
    ds.ShutterLeftVerticalEdge, ds.ShutterRightVerticalEdge = 10, 500
    ds.ShutterUpperHorizontalEdge, ds.ShutterLowerHorizontalEdge = 10, 500
    states = viewer.presentation_states
    states.store.save(ds)
    panel = viewer.annotations_panel
    panel.load_button.click()
    (row,) = find_all(panel.rows, "wb-state-row")
    assert "From elsewhere" in find(row, "wb-state-text").value
    assert "Not shown" not in find(row, "wb-state-text").value
    find(row, "wb-state-graphics").value = True
    text = find(row, "wb-state-text").value
    assert "Not shown: display shutter (rectangular)" in text
    assert "VOI LUT table (shown as the nearest window, W 2048 L 1024)" in text
    (circle_mark,) = viewer.annotations.visible_on(viewer.active_viewport.image_reference())
    assert circle_mark.kind == "ellipse" and circle_mark.points == [(90.0, 90.0), (110.0, 110.0)]
    find(row, "wb-state-display").value = True
    assert viewer.active_viewport.window == (1024.0, 2048.0)


def test_other_softwares_area_and_voi_lut_become_zoom_and_window(viewer):
    viewport = viewer.active_viewport
    lut = VoiLut(0, 12, tuple([0] * 100 + list(range(0, 4096, 16)) + [4095] * 100))
    center, width = lut_window(lut)
    # Input 100 is the last black one, 356 the first white one.
    assert (center, width) == (228.5, 257.0)
    shown = for_viewport(
        DisplaySettings(voi_lut=lut, area=(100, 50, 299, 449), rotation=90), viewport
    )
    assert shown.window == (228.5, 257.0)
    # 400 rows across after the quarter turn, fitted to the viewport's width.
    assert shown.zoom == pytest.approx(min(viewport.size[0] / 400, viewport.size[1] / 200))
    assert shown.center == (199.5, 249.5) and shown.area is None and shown.voi_lut is None


def test_saving_needs_a_name_and_an_image(viewer, tmp_path: Path):
    with pytest.raises(ValueError, match="needs a name"):
        viewer.save_state("")
    empty = Viewer(None, states=MemoryStateStore())
    try:
        with pytest.raises(ValueError, match="no DICOM image"):
            empty.save_state("Nothing")
    finally:
        empty.close()


@pytest.mark.parametrize(
    ("source", "frame"),
    [(CT_SERIES, 2), ("enhanced_ct_nema", 1), ("enhanced_mr_siemens_xa10", 3)],
)
def test_states_saved_from_the_viewer_pass_dcmpschk(sample_data, tmp_path, source, frame):
    """Without an index the image headers come from the stack; DCMTK must still accept it."""
    import subprocess

    from tests.peers import require_tool

    folder = sample_data / source
    files = sorted(p for p in folder.iterdir() if p.is_file())[:3]
    viewer = Viewer(files, states=MemoryStateStore(), thumbnails=False)
    try:
        viewport = viewer.active_viewport
        add_length(viewer, "first")
        viewport.frame = min(frame, viewport.frame_count - 1)
        viewer.annotations.add(Annotation("text", [(10, 10)], viewport.image_reference(), "b"))
        viewport.zoom, viewport.rotation, viewport.invert = 1.5, 270, True
        saved = viewer.save_state("From the viewer")
        path = tmp_path / "state.dcm"
        viewer.presentation_states.store.dataset(saved.key).save_as(path)
    finally:
        viewer.close()
    result = subprocess.run([require_tool("dcmpschk"), str(path)], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    report = result.stdout + result.stderr
    assert result.returncode == 0 and "Test passed" in report, report


def test_the_panel_lists_the_studys_states_by_slice_and_jumps_there(viewer):
    panel = viewer.annotations_panel
    viewport = viewer.active_viewport
    add_length(viewer, "on the first slice")
    first = viewer.save_state("First slice")
    viewer.annotations.clear()
    viewport.frame = 2
    add_length(viewer, "on the third slice")
    third = viewer.save_state("Third slice")
    viewer.annotations.clear()
    viewport.frame = 1  # a slice with no state of its own

    panel.load_button.click()
    groups = find_all(panel.rows, "wb-state-group")
    jumps = [find(group, "wb-state-jump") for group in groups]
    assert [j.description for j in jumps] == ["Slice 1/3", "Slice 3/3"]
    titles = [[re.search("<b>(.*?)</b>", find(row, "wb-state-text").value)[1]
               for row in find_all(group, "wb-state-row")] for group in groups]  # fmt: skip
    assert titles == [["First slice"], ["Third slice"]]
    assert all(j.button_style == "" for j in jumps)
    jumps[1].click()
    assert viewport.frame == 2 and jumps[1].button_style == "info"
    jumps[0].click()
    assert viewport.frame == 0 and jumps[0].button_style == "info"
    # Both states' annotations at once, each on its own slice.
    for row in find_all(panel.rows, "wb-state-row"):
        find(row, "wb-state-graphics").value = True
    assert viewer.presentation_states.shown() == {first.key, third.key}
    assert [a.text for a in viewer.annotations.visible_on(viewport.image_reference())] == [
        "on the first slice"
    ]
    # Every control says what it does.
    row = find_all(panel.rows, "wb-state-row")[0]
    assert find(row, "wb-state-graphics").description == "Show"
    assert find(row, "wb-state-display").description == "Apply display"
    assert find(row, "wb-state-copy").description == "Edit a copy"
    assert find(row, "wb-state-delete").tooltip == "Delete for good"


def test_a_loaded_state_is_edited_as_a_copy_under_a_new_name(viewer):
    panel = viewer.annotations_panel
    states = viewer.presentation_states
    original = add_length(viewer, "original")
    saved = viewer.save_state("Reading one")
    viewer.annotations.clear()
    panel.load_button.click()
    (row,) = find_all(panel.rows, "wb-state-row")
    find(row, "wb-state-graphics").value = True
    find(row, "wb-state-copy").click()
    assert find(panel.dialogs, "wb-copy-confirm") is not None
    (copy,) = list(viewer.annotations)
    assert copy.uid != original.uid and copy.points == original.points
    assert states.shown() == set()  # the original's graphics make way for the copy
    copy.text = "edited"
    with pytest.raises(ValueError, match="save the copy under a new name"):
        viewer.save_state("Reading one")
    second = viewer.save_state("Reading two")
    # The original is as it was saved.
    assert [a.text for a in states.store.load(saved.key).annotations] == ["original"]
    assert [a.text for a in states.store.load(second.key).annotations] == ["edited"]


def test_badges_follow_saves_in_every_viewer_of_the_same_images(ct, tmp_path):
    one = Viewer(ct, state_dir=tmp_path)
    other = Viewer(ct, state_dir=tmp_path)
    elsewhere = Viewer(ct, state_dir=tmp_path / "elsewhere")
    try:
        other.annotations_panel.load_button.click()
        add_length(one)
        saved = one.save_state("Seen everywhere")
        for viewer, badged in ((one, True), (other, True), (elsewhere, False)):
            item = viewer.thumbnails.items_by_stack[0]
            assert has_class(item, "wb-has-states") is badged
        assert "Seen everywhere" in find(other.annotations_panel.rows, "wb-state-text").value
        other.presentation_states.delete(saved.key)
        assert not has_class(one.thumbnails.items_by_stack[0], "wb-has-states")
    finally:
        for viewer in (one, other, elsewhere):
            viewer.close()


def test_closing_the_panel_keeps_thumbnails_hidden_when_the_viewer_has_none(ct, tmp_path):
    viewer = Viewer(ct, state_dir=tmp_path, thumbnails=False)
    try:
        panel = viewer.annotations_panel
        panel.load_button.click()
        assert panel.is_open and viewer.thumbnails.box.layout.display == "none"
        find(panel.box, "wb-close-annotations").click()
        assert not panel.is_open and viewer.thumbnails.box.layout.display == "none"
    finally:
        viewer.close()


def test_a_state_on_another_stack_of_the_study_is_listed_and_opened(sample_data, tmp_path):
    viewer = Viewer(sample_data / "enhanced_mr_siemens_xa10", state_dir=tmp_path)
    try:
        panel = viewer.annotations_panel
        viewport = viewer.active_viewport
        viewer.show(1)
        viewport.frame = 3
        add_length(viewer, "on image 2")
        viewer.save_state("Second image")
        viewer.annotations.clear()
        viewer.show(0)
        panel.load_button.click()
        (jump,) = find_all(panel.rows, "wb-state-jump")
        assert jump.description == "Slice 4/6 · #6 MR · REST1 w SMS PF7-8 · image 2/4 · 6 fr"
        jump.click()
        assert viewport.stack is viewer.stacks[1] and viewport.frame == 3
        assert find(panel.rows, "wb-state-jump").description == "Slice 4/6"
    finally:
        viewer.close()
