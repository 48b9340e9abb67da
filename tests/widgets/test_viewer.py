"""The widget side in Python (no browser): sources, layout, thumbnails, rendering bounds."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from tests.data import present, real_path
from workbench.io import display, open_series
from workbench.widgets import Viewer
from workbench.widgets.render import render_viewport
from workbench.widgets.tools import toolbar_tools


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.fixture()
def viewer(ct_dir, sample_data):
    v = Viewer([ct_dir, sample_data / "series_mr_siemens_t1_sag_HFS"], size=(512, 540))
    yield v
    v.close()


def test_folder_source_gives_one_stack_per_series(viewer) -> None:
    assert sorted(s.attrs["Modality"] for s in viewer.stacks) == ["CT", "MR"]
    assert viewer.viewports[0].stack is not None


def test_volume_and_list_sources(ct_stack, sample_data) -> None:
    viewer = Viewer(ct_stack, thumbnails=False)
    assert viewer.stacks[0] is ct_stack
    viewer.close()
    us = open_series(sample_data / "us_multiframe_ybr422_jpeg" / "examples_ybr_color.dcm")
    viewer = Viewer([ct_stack, us])
    assert len(viewer.stacks) == 2
    viewer.close()
    with pytest.raises(TypeError, match="viewer source"):
        Viewer([42])
    with pytest.raises(FileNotFoundError):
        Viewer("no/such/folder")


def test_a_presentation_state_alone_is_listed_as_such_not_fatal(sample_data, tmp_path) -> None:
    viewer = Viewer(sample_data / "gsps_agfa", state_dir=tmp_path)
    assert viewer.stacks == [] and viewer.skipped == []
    assert [(s.modality, s.kind) for s in viewer.objects] == [("PR", "presentation state")]
    (offered,) = viewer.presentation_states.store.states()
    assert offered.name == "DIAGUSER_DEFINED" and not offered.writable
    viewer.close()


def test_layout_changes_keep_thumbnails_and_state(viewer) -> None:
    wait_for(lambda: viewer.thumbnail_cache.renders == 2)
    viewer.viewports[0].frame = 9
    viewer.layout = (2, 2)
    assert len(viewer.views) == 4 and len(viewer.grid.children) == 4
    assert viewer.viewports[1].stack is not None  # the MR fills the second viewport
    viewer.layout = (1, 1)
    viewer.layout = (3, 3)
    assert viewer.viewports[0].frame == 9
    assert viewer.thumbnail_cache.renders == 2  # never rendered again
    assert all(item.children[0].value for item in viewer.thumbnails.items)


def test_picking_a_thumbnail_shows_that_stack(viewer) -> None:
    viewer.thumbnails.on_pick(1)
    assert viewer.viewports[0].stack is viewer.stacks[1]


def test_rendered_pixels_equal_io_render_at_one_to_one(ct_stack, cache) -> None:
    from workbench.widgets.model import Viewport

    v = Viewport(ct_stack, cache=cache, size=(512, 512))
    v.frame = 12
    v.window = (40, 400)
    frame = render_viewport(v)
    expected = display.render(ct_stack[12].values, ct_stack.attrs, window=(40, 400))
    assert (frame.x, frame.y) == (0, 0)
    np.testing.assert_array_equal(frame.pixels, expected)


def test_rectangular_pixels_are_drawn_in_proportion(ct_stack, cache) -> None:
    """A CT with rows 1 mm apart and columns 0.5 mm apart fills a 512² viewport 256 wide
    and 512 tall: each image row is one row of the drawing, each screen column the image
    column under its centre (every second one)."""
    from workbench.widgets.model import Viewport

    stack = ct_stack.copy()
    stack.attrs = {**ct_stack.attrs, "PixelSpacing": [1.0, 0.5]}
    v = Viewport(stack, cache=cache, size=(512, 512))
    v.frame, v.window = 12, (40, 400)
    assert v.pixel_aspect == 2.0
    frame = render_viewport(v)
    assert (frame.x, frame.y, frame.width, frame.height) == (128, 0, 256, 512)
    expected = display.render(stack[12].values, stack.attrs, window=(40, 400))
    np.testing.assert_array_equal(frame.pixels, expected[:, 1::2])
    v.rotation = 90
    frame = render_viewport(v)
    assert (frame.x, frame.y, frame.width, frame.height) == (0, 128, 512, 256)
    # Without spacing, (0028,0034) Pixel Aspect Ratio (vertical\\horizontal) gives the shape.
    stack.attrs = {**ct_stack.attrs, "PixelSpacing": None, "PixelAspectRatio": [1, 2]}
    assert Viewport(stack, cache=cache, size=(512, 512)).pixel_aspect == 0.5


#: Large images and a viewport much smaller than each: (file, viewport side).
MINIFIED = [
    ("series_ct_philips_ingenuity_5mm/I10", 128),  # 512², raw 512 kB
    *[("nema_cr_rg2_fuji/RG2_JPLL.dcm", 512)] * bool(present("nema_cr_rg2_fuji")),  # 2140×1760
]


@pytest.mark.parametrize(("relative", "side"), MINIFIED)
def test_bytes_sent_are_bounded_by_the_viewport(relative, side) -> None:
    image = open_series(real_path(relative))
    viewer = Viewer(image, size=(side, side + 30), thumbnails=False)
    frame = render_viewport(viewer.viewports[0])
    assert frame.pixels.shape[0] <= side and frame.pixels.shape[1] <= side
    assert viewer.views[0].bytes_sent < side * side < image.nbytes / 4
    viewer.close()


def test_annotation_list_shows_measurements(viewer) -> None:
    viewer.tool = "length"
    ui = viewer.interaction
    ui.press(0, 10, 10)
    ui.move(0, 110, 10)
    assert "data-state='drawing'" in viewer.annotation_list.value
    ui.release(0, 110, 10)
    assert "mm</li>" in viewer.annotation_list.value
    assert len(viewer.annotations.table()) == 1


@pytest.mark.parametrize(
    "relative",
    [
        "cr_agfa_mono1_tiny/6154",  # MONOCHROME1
        "voi_lut_ihe/vlut_04.dcm",  # VOI LUT Sequence
        "us_aloka_palette16/gdcm-US-ALOKA-16.dcm",  # 16-bit palette colour
        "us_rgb_bigendian_barre/ExplVR_BigEnd.dcm",  # RGB, big endian
        "us_multiframe_ybr422_jpeg/examples_ybr_color.dcm",  # YBR_FULL_422 multi-frame
        "enhanced_ct_nema/eCT_Supplemental.dcm",  # per-frame functional groups
        "toshiba_ct_j2k/TOSHIBA_J2K_SIZ0_PixRep1.dcm",  # signed J2K
    ],
)
def test_viewport_pixels_equal_io_render(sample_data, cache, relative: str) -> None:
    """At one screen pixel per image pixel the viewport shows exactly what io renders."""
    from workbench.widgets.model import Viewport

    stack = open_series(sample_data / relative)
    v = Viewport(stack, cache=cache, size=(stack.sizes["x"], stack.sizes["y"]))
    v.frame = v.frame_count - 1
    frame = render_viewport(v)
    attrs = display.frame_attrs(stack, v.frame)
    expected = display.render(stack[v.frame].values, attrs)
    np.testing.assert_array_equal(frame.pixels, expected)
    v.invert = True
    np.testing.assert_array_equal(
        render_viewport(v).pixels, display.render(stack[v.frame].values, attrs, invert=True)
    )


def test_viewer_on_a_study_of_the_index(ct_dir, tmp_path) -> None:
    from workbench.pacs import Index
    from workbench.pacs.config import Config

    index = Index(Config(StorageDirectory=str(tmp_path / "store")))
    results = [index.ingest_file(path) for path in sorted(ct_dir.iterdir())[:5]]
    viewer = Viewer.from_index(index, results[0].study_id, thumbnails=False)
    (stack,) = viewer.stacks
    assert stack.sizes["frame"] == 5 and stack.attrs["Modality"] == "CT"
    viewer.close()
    viewer = Viewer.from_index(index, results[0].patient_id, level="Patient", thumbnails=False)
    assert len(viewer.stacks) == 1
    viewer.close()


def test_an_index_viewer_lists_reports_and_states_as_objects(sample_data, tmp_path) -> None:
    from tests.objects import add_non_image_objects
    from workbench.pacs import Index
    from workbench.pacs.config import Config

    folder = tmp_path / "study"
    add_non_image_objects(folder, images=sample_data / "series_ct_philips_ingenuity_5mm")
    index = Index(Config(StorageDirectory=str(tmp_path / "store")))
    ct = sorted((sample_data / "series_ct_philips_ingenuity_5mm").iterdir())[:3]
    results = [index.ingest_file(path) for path in [*ct, *sorted(folder.iterdir())]]
    viewer = Viewer.from_index(index, results[0].study_id)
    try:
        assert [s.attrs["Modality"] for s in viewer.stacks] == ["CT"] and not viewer.skipped
        assert sorted((o.modality, o.kind) for o in viewer.objects) == [
            ("DOC", "encapsulated document"), ("KO", "key object selection"),
            ("PR", "presentation state"), ("SEG", "segmentation"), ("SR", "structured report"),
        ]  # fmt: skip
        (listing,) = [c for c in viewer.thumbnails.box.children if "wb-objects" in c._dom_classes]
        assert "segmentation: SEG" in listing.value
        # The index keeps the presentation state of the study; the viewer offers it.
        assert [s.name for s in viewer.presentation_states.study_states()] == ["Ours"]
    finally:
        viewer.close()
        index.close()


def test_toolbar_drives_the_active_viewport(viewer) -> None:
    toolbar = viewer.toolbar
    viewport = viewer.active_viewport
    toolbar.presets.value = "Lung"
    assert viewport.window == (-600.0, 1500.0)
    toolbar.invert.click()
    assert viewport.invert
    toolbar.view.value = "Rotate 90° clockwise"
    assert viewport.rotation == 90 and toolbar.view.value == "View"
    toolbar.view.value = "1:1 (a screen pixel per image pixel)"
    assert viewport.zoom == 1.0
    toolbar.reset.click()
    assert not viewport.invert and viewport.window is None and viewport.rotation == 0
    toolbar.layout.value = "1×3"
    assert viewer.layout == (1, 3) and len(viewer.views) == 3
    toolbar.tools.value = "ellipse"
    assert viewer.tool == "ellipse" and viewer.viewports[2].tool == "ellipse"


def test_cine_button_plays_from_the_frame_on_screen(viewer) -> None:
    import asyncio

    viewport = viewer.active_viewport
    viewport.frame = 5
    play = viewer.toolbar.play

    async def run() -> None:
        play.value = True
        assert viewer.cine.playing and play.icon == "pause"
        while viewport.frame < 7:
            await asyncio.sleep(0.01)
        play.value = False
        assert not viewer.cine.playing and play.icon == "play"

    asyncio.run(run())
    assert viewport.frame >= 7  # stopped where it was, not back at the first frame


def test_toolbar_tools_follow_the_modality(sample_data) -> None:
    viewer = Viewer(sample_data / "cr_agfa_mono1_tiny", thumbnails=False)
    assert "vhs" in [value for _, value in viewer.toolbar.tools.options]
    viewer.close()
    viewer = Viewer(sample_data / "nema_ct1_ge", toolbar={"CT": ["window", "length"]})
    assert [value for _, value in viewer.toolbar.tools.options] == ["window", "length"]
    viewer.close()


def test_toolbar_settings_per_modality(viewer) -> None:
    """The settings panel edits the active modality's tools; other modalities keep theirs."""
    toolbar = viewer.toolbar
    ct = next(i for i, v in enumerate(viewer.viewports) if v.attrs.get("Modality") == "CT")
    viewer.layout = (1, 2)
    viewer.model.active = ct
    assert "Tools for CT images" in toolbar.settings_title.value
    toolbar.settings.value = ("window", "zoom", "length", "ellipse")
    assert [value for _, value in toolbar.tools.options] == ["window", "zoom", "length", "ellipse"]
    assert viewer.toolbar_settings["CT"] == ["window", "zoom", "length", "ellipse"]
    assert [t for _, t in toolbar.tools.options] == list(toolbar.settings.value)
    viewer.model.active = 1 - ct  # the MR keeps the default tools
    assert [value for _, value in toolbar.tools.options] == list(toolbar_tools("MR"))
    viewer.toolbar_settings = {"*": ["window", "probe"]}
    assert [value for _, value in toolbar.tools.options] == ["window", "probe"]
    with pytest.raises(ValueError, match="unknown tools"):
        viewer.toolbar_settings = {"MR": ["window", "lasso"]}
    # Every tool is an icon (or glyph) with a tooltip; the tool in use stays chosen.
    viewer.toolbar_settings = None
    assert all(tooltip for tooltip in toolbar.tools.tooltips)
    labels = [label.strip("\u200b") for label, _ in toolbar.tools.options]
    assert all(icon or label for label, icon in zip(labels, toolbar.tools.icons, strict=True))
    viewer.tool = "vhs"  # not offered for MR: no button is shown chosen
    assert toolbar.tools.value is None


def test_overlay_text_on_a_ct(viewer) -> None:
    from workbench.widgets.overlay import corner_text

    viewport = next(v for v in viewer.viewports if v.attrs.get("Modality") == "CT")
    viewer.model.active = viewer.viewports.index(viewport)
    corners = corner_text(viewport)
    assert corners["top_left"] == ["HEAD", "PLASTIC", "2015-02-06"]
    assert "STD BRAIN 5MM" in corners["top_right"]
    assert corners["bottom_left"] == ["Im 1/28", "Pos 696.2 mm", "Thk 5 mm Sp 5 mm"]
    assert corners["bottom_right"][0] == "W 80 L 40"


def test_multiframe_instances_of_one_series_become_separate_stacks(sample_data) -> None:
    viewer = Viewer(sample_data / "enhanced_mr_siemens_xa10", thumbnails=False)
    assert [s.sizes["frame"] for s in viewer.stacks] == [6, 6, 6, 6]
    assert len({str(s.coords["sop_instance_uid"].values[0]) for s in viewer.stacks}) == 4
    viewer.close()


@pytest.mark.parametrize(("relative", "side"), MINIFIED)
def test_minified_image_shows_block_means(cache, relative, side) -> None:
    """At "fit" a 512² CT in a 128² viewport (a 2140×1760 CR in a 512² one) averages 4×4
    blocks instead of aliasing."""
    from workbench.widgets.model import Viewport

    cr = open_series(real_path(relative))
    v = Viewport(cr, cache=cache, size=(side, side))
    frame = render_viewport(v)
    transform = v.transform()
    assert 0.2 < transform.zoom <= 0.25
    values = cr[0].values.astype(float)
    window = v.effective_window()
    points = [(250, 250), (100, 400), (300, 60)]
    for x, y in [(x * side // 512, y * side // 512) for x, y in points]:
        c, r = transform.to_image((x + 0.5, y + 0.5))
        r0, c0 = int(np.floor(r + 0.5)) // 4 * 4, int(np.floor(c + 0.5)) // 4 * 4
        block = np.rint(values[r0 : r0 + 4, c0 : c0 + 4].mean())
        expected = display.render(np.array([[block]]), cr.attrs, window=window)[0, 0]
        assert abs(int(frame.pixels[y - frame.y, x - frame.x]) - int(expected)) <= 1


def test_thickness_and_spacing_keep_the_files_digits(ct_dir, tmp_path) -> None:
    """A 1.25 mm slice reads "1.25 mm", not "1.2 mm"; spacing comes from the positions."""
    import pydicom

    from workbench.widgets.model import Viewport
    from workbench.widgets.overlay import corner_text

    for i, path in enumerate(sorted(ct_dir.iterdir())[:3]):
        ds = pydicom.dcmread(path)
        ds.SliceThickness = "1.25"
        ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], 0.625 * i]
        ds.save_as(tmp_path / path.name)
    viewport = Viewport(open_series(tmp_path))
    assert corner_text(viewport)["bottom_left"][-1] == "Thk 1.25 mm Sp 0.625 mm"
    ds.SpacingBetweenSlices = "0.6250"
    ds.save_as(tmp_path / path.name)
    viewport = Viewport(open_series(tmp_path))
    assert corner_text(viewport)["bottom_left"][-1] == "Thk 1.25 mm Sp 0.625 mm"


def test_thumbnail_labels_tell_every_stack_apart(sample_data, tmp_path) -> None:
    from workbench.widgets.stacks import stack_label

    viewer = Viewer(sample_data, state_dir=tmp_path)
    try:
        labels = [stack_label(stack) for stack in viewer.stacks]
        enhanced = [label for label in labels if "REST1" in label]
        assert enhanced == [f"#6 MR · REST1 w SMS PF7-8 · image {k}/4 · 6 fr" for k in range(1, 5)]
        assert "#201 CT · STD BRAIN 5MM · 28 fr" in labels
        shown = [item.children[1].value for item in viewer.thumbnails.items]
        assert len(shown) == len(viewer.stacks) and len(set(shown)) == len(shown)
        # The presentation state of the folder is listed as such below the thumbnails.
        (objects,) = [c for c in viewer.thumbnails.box.children if "wb-objects" in c._dom_classes]
        assert "presentation state" in objects.value
    finally:
        viewer.close()


def test_a_picked_stack_opens_on_the_slice_its_thumbnail_shows(viewer) -> None:
    from workbench.widgets.stacks import preview_frame
    from workbench.widgets.thumbnails import render_thumbnail

    ct = next(i for i, s in enumerate(viewer.stacks) if s.sizes["frame"] == 28)
    viewer.thumbnails.on_pick(ct)
    viewport = viewer.active_viewport
    assert viewport.frame == preview_frame(viewport.stack) == 14
    # The thumbnail is that slice, shrunk (and not the first one).
    thumbnail = np.asarray(Image.open(io.BytesIO(render_thumbnail(viewport.stack))), float)

    def shrunk(frame: int) -> np.ndarray:
        attrs = display.frame_attrs(viewport.stack, frame)
        image = Image.fromarray(display.render(viewport.pixels(frame), attrs))
        image.thumbnail(thumbnail.shape[::-1], Image.Resampling.LANCZOS)
        return np.asarray(image, float)

    assert np.abs(shrunk(viewport.frame) - thumbnail).mean() < 1
    assert np.abs(shrunk(0) - thumbnail).mean() > 5


def test_escape_cancels_a_drawing_first_then_leaves_full_window(viewer) -> None:
    view = viewer.views[0]
    viewer.maximised = True
    viewer.tool = "length"
    ui = viewer.interaction
    ui.press(0, 10, 10)
    ui.move(0, 110, 10)
    view._on_event({"type": "keydown", "key": "Escape"})
    assert ui.draft is None and viewer.maximised, "the drawing is cancelled, the mode kept"
    view._on_event({"type": "keydown", "key": "Escape"})
    assert not viewer.maximised
    assert "wb-maximised" not in viewer.widget._dom_classes
