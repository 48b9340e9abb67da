"""The viewer model on real series: validation, change events, display state, annotations."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from workbench.io.presentation import Annotation, DisplaySettings, ImageReference
from workbench.widgets.model import ViewerModel, Viewport


def test_viewport_validates_its_attributes(ct_stack, cache) -> None:
    v = Viewport(ct_stack, cache=cache)
    with pytest.raises(ValueError, match=r"frame must be in 0\.\.27"):
        v.frame = 28
    with pytest.raises(TypeError, match="frame must be an integer"):
        v.frame = 1.5
    with pytest.raises(ValueError, match="window width"):
        v.window = (40, 0)
    with pytest.raises(TypeError, match="window must be a pair"):
        v.window = 40
    with pytest.raises(ValueError, match="zoom must be positive"):
        v.zoom = 0
    with pytest.raises(ValueError, match="multiple of 90"):
        v.rotation = 45
    with pytest.raises(ValueError, match="tool must be one of"):
        v.tool = "laser"
    with pytest.raises(TypeError, match=r"xarray\.DataArray"):
        v.stack = np.zeros((4, 4))


def test_changes_are_reported_once_and_only_when_values_change(ct_stack, cache) -> None:
    v = Viewport(ct_stack, cache=cache)
    seen = []
    unsubscribe = v.on_change(lambda c: seen.append((c.name, c.old, c.new)))
    v.frame = 5
    v.frame = 5
    v.window = (40, 400)
    v.invert = True
    assert seen == [("frame", 0, 5), ("window", None, (40.0, 400.0)), ("invert", False, True)]
    unsubscribe()
    v.frame = 6
    assert len(seen) == 3


def test_scroll_stops_at_the_ends(ct_stack, cache) -> None:
    v = Viewport(ct_stack, cache=cache)
    v.scroll(-3)
    assert v.frame == 0
    v.scroll(100)
    assert v.frame == 27


def test_pixels_are_modality_values(ct_stack, ct_first_slice, cache) -> None:
    v = Viewport(ct_stack, cache=cache)
    expected = ct_first_slice.pixel_array * float(ct_first_slice.RescaleSlope) + float(
        ct_first_slice.RescaleIntercept
    )
    np.testing.assert_array_equal(v.pixels(), expected)


def test_default_window_and_presets(ct_stack, cache) -> None:
    v = Viewport(ct_stack, cache=cache)
    assert v.window is None
    assert v.effective_window() == (40.0, 80.0)  # the file's own window
    presets = v.presets()
    assert next(iter(presets)).startswith("File")
    assert presets["Lung"] == (-600.0, 1500.0)
    v.apply_preset("Bone")
    assert v.window == (400.0, 1800.0)
    with pytest.raises(ValueError, match="no window preset"):
        v.apply_preset("Liver")


def test_zoom_at_a_point_keeps_that_point_under_the_pointer(ct_stack, cache) -> None:
    v = Viewport(ct_stack, cache=cache, size=(400, 300))
    anchor = (120.0, 80.0)
    before = v.transform().to_image(anchor)
    v.zoom_by(2.0, anchor=anchor)
    np.testing.assert_allclose(v.transform().to_image(anchor), before)
    assert v.zoom == pytest.approx(2 * 300 / 512)


def test_center_is_the_image_point_in_the_middle(ct_stack, cache) -> None:
    v = Viewport(ct_stack, cache=cache)
    v.rotation = 90
    v.zoom = 2.0
    v.center = (100.0, 300.0)
    np.testing.assert_allclose(v.center, (100.0, 300.0))


def test_screen_flips_mirror_the_letters(ct_stack, cache) -> None:
    v = Viewport(ct_stack, cache=cache)
    for rotation in (0, 90, 180, 270):
        v.rotation = rotation
        v.flip = False
        before = v.orientation_letters()
        v.flip_horizontal()
        after = v.orientation_letters()
        assert (after["left"], after["right"]) == (before["right"], before["left"])
        assert (after["top"], after["bottom"]) == (before["top"], before["bottom"])
        v.flip_horizontal()
        v.flip_vertical()
        after = v.orientation_letters()
        assert (after["top"], after["bottom"]) == (before["bottom"], before["top"])
        assert (after["left"], after["right"]) == (before["left"], before["right"])


def test_display_settings_round_trip_and_revert(ct_stack, cache) -> None:
    v = Viewport(ct_stack, cache=cache)
    v.window = (50, 350)
    original = v.display_settings()
    state = DisplaySettings(window=(-600, 1500), invert=True, rotation=90, flip=True, zoom=2.0,
                            center=(200.0, 260.0))  # fmt: skip
    v.apply_display_settings(state)
    assert v.display_settings() == state
    # Applying a second state, then deselecting, returns to what the user had.
    v.apply_display_settings(DisplaySettings(window=(40, 80)))
    v.apply_display_settings(None)
    assert v.display_settings() == original


def test_image_reference_names_the_file_shown(ct_stack, cache, ct_first_slice) -> None:
    v = Viewport(ct_stack, cache=cache)
    assert v.image_reference() == ImageReference(
        ct_first_slice.SOPClassUID, ct_first_slice.SOPInstanceUID, None
    )


def test_multiframe_reference_has_a_frame_number(sample_data, cache) -> None:
    from workbench.io import open_series

    path = sample_data / "us_multiframe_ybr422_jpeg" / "examples_ybr_color.dcm"
    v = Viewport(open_series(path), cache=cache)
    v.frame = 4
    ref = v.image_reference()
    assert ref.sop_instance_uid == pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
    assert ref.frame_number == 5
    assert v.effective_window() is None  # colour: no window


def test_layout_keeps_viewport_state_and_fills_new_viewports(ct_stack, sample_data, cache) -> None:
    from workbench.io import open_series

    mr = open_series(sample_data / "series_mr_siemens_t1_sag_HFS")
    model = ViewerModel([ct_stack, mr], cache=cache)
    model.viewports[0].frame = 7
    model.layout = (2, 2)
    assert len(model.viewports) == 4
    assert model.viewports[0].frame == 7
    assert model.viewports[1].stack is mr
    model.active = 3
    model.layout = (1, 2)
    assert model.active == 0 and len(model.viewports) == 2
    with pytest.raises(ValueError, match="layout rows and columns"):
        model.layout = (0, 2)
    model.layout = (3, 3)
    assert model.layout == (3, 3) and len(model.viewports) == 9


def test_model_forwards_viewport_and_annotation_changes(ct_stack, cache) -> None:
    model = ViewerModel([ct_stack], cache=cache)
    seen = []
    model.on_change(lambda c: seen.append(c.name))
    model.viewports[0].frame = 3
    model.annotations.add(Annotation("text", [(1, 1)], text="note"))
    model.tool = "length"
    assert seen == ["frame", "annotations", "tool", "tool"]


def test_measure_roi_on_the_shown_frame_in_hu(ct_stack, ct_first_slice, cache) -> None:
    model = ViewerModel([ct_stack], cache=cache)
    viewport = model.viewports[0]
    roi = Annotation("rectangle", [(100, 100), (140, 120)], image=viewport.image_reference())
    model.measure(roi)
    hu = ct_first_slice.pixel_array * float(ct_first_slice.RescaleSlope) + float(
        ct_first_slice.RescaleIntercept
    )
    assert roi.values["mean"] == pytest.approx(hu[100:121, 100:141].mean())
    assert roi.units["mean"] == "HU"


def test_annotation_groups_show_and_hide(ct_stack, cache) -> None:
    model = ViewerModel([ct_stack], cache=cache)
    viewport = model.viewports[0]
    ref = viewport.image_reference()
    own = model.annotations.add(Annotation("length", [(0, 0), (10, 0)], image=ref))
    loaded = [Annotation("text", [(5, 5)], image=ref, text="from GSPS")]
    model.annotations.add_group("1.2.3", loaded)
    assert model.annotations.visible_on(ref) == [own, loaded[0]]
    model.annotations.set_group_visible("1.2.3", False)
    assert model.annotations.visible_on(ref) == [own]
    viewport.frame = 1  # another image: the length belongs to the first one
    assert model.annotations.visible_on(viewport.image_reference()) == []
    assert list(model.annotations) == [own]
    table = model.annotations.table(include_groups=True)
    assert list(table["kind"]) == ["length", "text"]
    assert table["group"].isna().tolist() == [True, False]
    model.annotations.remove_group("1.2.3")
    assert model.annotations.groups == {}
