"""Tools driven with display-coordinate events, as the widget forwards them from the browser."""

from __future__ import annotations

import pytest

from workbench.widgets import overlay, placement
from workbench.widgets.model import ViewerModel
from workbench.widgets.tools import Interaction, toolbar_tools


@pytest.fixture()
def model(ct_stack, cache) -> ViewerModel:
    # 512² CT in a 512² viewport: zoom 1, so display pixel = image pixel + 0.5.
    return ViewerModel([ct_stack], cache=cache, viewport_size=(512, 512))


def test_window_drag_changes_width_and_center(model) -> None:
    ui = Interaction(model)
    v = model.viewports[0]
    ui.press(0, 100, 100)
    ui.move(0, 150, 120)
    ui.release(0, 150, 120)
    center, width = v.window
    assert width > 80 and center > 40


def test_a_drag_ends_where_the_button_is_released(model) -> None:
    """The browser throttles moves: the release says where the gesture ended."""
    ui = Interaction(model)
    v = model.viewports[0]
    start = v.effective_window()
    ui.press(0, 100, 100)
    ui.move(0, 150, 120)
    ui.release(0, 150, 120)
    with_every_move = v.window
    v.window = start
    ui.press(0, 100, 100)
    ui.move(0, 110, 100)
    ui.release(0, 150, 120)  # the last moves never came
    assert v.window == with_every_move != start
    v.window = start
    ui.press(0, 200, 200)
    ui.release(0, 200, 200)  # a click leaves the window as it was
    assert v.window == start
    ui.press(0, 300, 300, button=1)
    ui.release(0, 330, 290)
    assert v.pan == (30.0, -10.0)


def test_right_drag_zooms_and_middle_drag_pans(model) -> None:
    ui = Interaction(model)
    v = model.viewports[0]
    ui.press(0, 200, 200, button=2)
    ui.move(0, 200, 100)
    ui.release(0, 200, 100)
    assert v.zoom > 1.5
    ui.press(0, 200, 200, button=1)
    ui.move(0, 230, 190)
    ui.release(0, 230, 190)
    assert v.pan == (30.0, -10.0)


def test_wheel_scrolls_or_zooms_with_a_modifier(model) -> None:
    ui = Interaction(model)
    v = model.viewports[0]
    ui.wheel(0, 10, 10, 100)
    ui.wheel(0, 10, 10, 100)
    assert v.frame == 2
    ui.wheel(0, 10, 10, -100)
    assert v.frame == 1
    ui.wheel(0, 256, 256, -100, ctrl=True)
    assert v.zoom == pytest.approx(1.15)


def test_keys_navigate(model) -> None:
    ui = Interaction(model)
    v = model.viewports[0]
    assert ui.key(0, "End") and v.frame == 27
    ui.key(0, "PageUp")
    assert v.frame == 17
    ui.key(0, "ArrowUp")
    assert v.frame == 16
    ui.key(0, "Home")
    assert v.frame == 0
    assert not ui.key(0, "q")


def test_drag_a_length_across_the_image(model) -> None:
    ui = Interaction(model)
    model.tool = "length"
    ui.press(0, 0.0, 256.5)
    ui.move(0, 300.0, 256.5)
    assert ui.draft is not None and ui.draft.values["length_mm"] > 0  # live value
    ui.release(0, 512.0, 256.5)
    assert ui.draft is None
    (length,) = model.annotations
    # Canvas edge to canvas edge at zoom 1 is the full row: 512 × 0.451 mm.
    assert length.values["length_mm"] == pytest.approx(512 * 0.451171875)
    assert length.image == model.viewports[0].image_reference()


def test_click_click_click_angle(model) -> None:
    ui = Interaction(model)
    model.tool = "angle"
    for x, y in [(100.5, 100.5), (200.5, 100.5), (200.5, 0.5)]:
        ui.press(0, x, y)
        ui.release(0, x, y)
    (angle,) = model.annotations
    assert angle.values["angle_deg"] == pytest.approx(90.0)


def test_vhs_counts_vertebrae_until_enter(model) -> None:
    ui = Interaction(model)
    model.tool = "vhs"
    clicks = [(100, 100), (100, 206), (50, 150), (134, 150)]  # long 106 px, short 84 px
    clicks += [(300 + 20 * i, 400) for i in range(6)]  # T4 and following boundaries, 20 px
    for x, y in clicks:
        ui.press(0, x, y)
        ui.release(0, x, y)
    assert ui.draft is not None and ui.draft.values["vhs"] == pytest.approx(9.5, abs=0.1)
    ui.key(0, "Enter")
    (vhs,) = model.annotations
    assert len(vhs.points) == 10
    assert vhs.values["vhs"] == pytest.approx(9.5)


def test_select_move_edit_delete(model) -> None:
    ui = Interaction(model)
    model.tool = "rectangle"
    ui.press(0, 100.5, 100.5)
    ui.move(0, 150.5, 150.5)
    ui.release(0, 150.5, 150.5)
    (roi,) = model.annotations
    mean_before = roi.values["mean"]
    model.tool = "select"
    # Drag the inside of the box: the whole ROI moves and is measured again.
    ui.press(0, 125, 125)
    ui.move(0, 225, 185)
    ui.release(0, 225, 185)
    assert roi.points[0] == pytest.approx((200.0, 160.0))
    assert roi.values["mean"] != mean_before
    # Drag a corner: only that point moves.
    ui.press(0, 250.5, 210.5)
    ui.move(0, 260.5, 230.5)
    ui.release(0, 260.5, 230.5)
    assert roi.points == [pytest.approx((200.0, 160.0)), pytest.approx((260.0, 230.0))]
    assert ui.selected is roi
    ui.key(0, "Delete")
    assert len(model.annotations) == 0


def test_changing_frame_abandons_a_half_drawn_measurement(model) -> None:
    ui = Interaction(model)
    model.tool = "angle"
    ui.press(0, 10, 10)
    ui.release(0, 60, 10)
    assert ui.draft is not None
    model.viewports[0].frame = 3
    assert ui.draft is None


def test_toolbar_per_modality() -> None:
    assert "vhs" in toolbar_tools("CR")
    assert "vhs" not in toolbar_tools("CT")
    assert toolbar_tools("MR", ["window", "length"]) == ("window", "length")
    assert toolbar_tools("CT", {"CT": ["window"], "*": ["zoom"]}) == ("window",)
    assert toolbar_tools("MR", {"CT": ["window"], "*": ["zoom"]}) == ("zoom",)
    with pytest.raises(ValueError, match="unknown tools"):
        toolbar_tools("CT", ["window", "laser"])


def test_arrow_takes_the_label_and_can_be_relabelled(model) -> None:
    ui = Interaction(model)
    model.tool = "arrow"
    ui.set_label("fracture")
    ui.press(0, 100.5, 100.5)
    ui.release(0, 160.5, 140.5)
    (arrow,) = model.annotations
    assert arrow.text == "fracture" and arrow.points[0] == pytest.approx((100.0, 100.0))
    model.tool = "select"
    ui.press(0, 100.5, 100.5)
    ui.release(0, 100.5, 100.5)
    ui.set_label("healed fracture")
    assert arrow.text == "healed fracture"


def test_text_note_and_probe_are_placed_with_one_click(model) -> None:
    ui = Interaction(model)
    model.tool = "probe"
    ui.press(0, 256.5, 256.5)
    model.tool = "text"
    ui.press(0, 20.5, 30.5)
    probe, note = model.annotations
    assert probe.values["value"] == model.viewports[0].pixels()[256, 256]
    assert note.kind == "text" and note.text == "Text"


def test_annotations_stay_on_the_anatomy_under_zoom_pan_and_rotation(model) -> None:
    ui = Interaction(model)
    viewport = model.viewports[0]
    model.tool = "length"
    ui.press(0, 100.5, 200.5)
    ui.release(0, 300.5, 200.5)
    (length,) = model.annotations
    points, value = list(length.points), length.values["length_mm"]
    viewport.zoom_by(2.0, anchor=(150, 150))
    viewport.pan = (viewport.pan[0] - 40, viewport.pan[1] + 25)
    viewport.rotate(90)
    assert length.points == points and length.values["length_mm"] == value
    # Where the end point is now drawn, the select tool still finds it.
    x, y = viewport.transform().to_display(points[1])
    model.tool = "select"
    assert ui.hit_test(viewport, x + 2, y - 2) == (length, 1)


def test_shortcut_keys(model) -> None:
    from workbench.widgets.cine import Cine

    cine = Cine(model)
    ui = Interaction(model, cine)
    v = model.viewports[0]
    presets = list(v.presets())
    assert ui.key(0, "2") and v.window == v.presets()[presets[1]]
    assert not ui.key(0, "9")  # fewer presets than that
    assert ui.key(0, "i") and v.invert
    zoom = v.effective_zoom
    assert ui.key(0, "+") and v.zoom == pytest.approx(zoom * 1.25)
    assert ui.key(0, "-") and ui.key(0, "-") and v.zoom == pytest.approx(zoom / 1.25)
    assert ui.key(0, "PageDown") and v.frame == 10
    assert ui.key(0, "r")
    assert (v.window, v.zoom, v.invert, v.frame) == (None, None, False, 10)

    async def space_twice() -> None:
        assert ui.key(0, " ") and cine.playing
        assert ui.key(0, " ") and not cine.playing

    import asyncio

    asyncio.run(space_twice())
    assert not Interaction(model).key(0, " ")  # no cine to start


def test_readout_gives_hu_pixel_and_patient_position(model, ct_first_slice) -> None:
    ui = Interaction(model)
    viewport = model.viewports[0]
    ds = ct_first_slice
    column, row = 300, 200
    expected_hu = float(ds.pixel_array[row, column]) * float(ds.RescaleSlope) + float(
        ds.RescaleIntercept
    )
    spacing_row, spacing_column = (float(v) for v in ds.PixelSpacing)
    orientation = [float(v) for v in ds.ImageOrientationPatient]
    expected_position = [
        float(ds.ImagePositionPatient[i])
        + orientation[i] * column * spacing_column
        + orientation[3 + i] * row * spacing_row
        for i in range(3)
    ]
    # Rotated and zoomed, the same image pixel is found wherever it is shown.
    viewport.rotate(90)
    viewport.zoom = 1.7
    x, y = viewport.transform().to_display((column, row))
    readout = ui.hover(0, float(x), float(y))
    assert (readout.column, readout.row) == (column, row)
    assert readout.value == pytest.approx(expected_hu)
    assert readout.unit == "HU"
    assert readout.position == pytest.approx(expected_position, abs=1e-3)
    lines = overlay.readout_lines(readout)
    assert lines[0] == f"{expected_hu:.0f} HU  px ({column}, {row})"
    assert lines[1].endswith(" mm") and f"{expected_position[2]:.1f}" in lines[1]
    # Drawn at the bottom centre, clear of the corner text and orientation letters.
    block = overlay.readout_block(lines, viewport.size)
    others = placement.overlay_blocks(
        overlay.corner_text(viewport), viewport.orientation_letters(), viewport.size
    )
    assert block.box.inside(viewport.size)
    assert not any(block.box.intersects(other.box) for other in others)


def test_readout_is_empty_off_the_image_and_during_a_drag(model) -> None:
    ui = Interaction(model)
    viewport = model.viewports[0]
    viewport.zoom = 0.5  # the image covers the middle quarter of the viewport
    assert ui.hover(0, 5, 5) is None
    assert overlay.readout_lines(ui.hover(0, 5, 5)) == []
    assert ui.hover(0, 256, 256) is not None
    ui.press(0, 256, 256)
    assert ui.hover(0, 260, 260) is None
    ui.release(0, 260, 260)
    assert ui.hover(0, 260, 260) is not None
