"""Reformatted planes, crosshairs, linked views and slabs on real CT and MR series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.data import modified_copy, present, real_path
from workbench.io import open_series
from workbench.io.presentation import Annotation
from workbench.widgets import mpr
from workbench.widgets.model import Crosshair, Slab, ViewerModel

CT = "series_ct_philips_ingenuity_5mm"
MR_SAGITTAL = "series_mr_siemens_t1_sag_HFS"


def _letters(viewport) -> tuple[str, str, str, str]:
    letters = viewport.orientation_letters()
    return letters["left"], letters["right"], letters["top"], letters["bottom"]


# The planes of each series as numpy slices of its (frame, y, x) array, and their letters
# (left, right, top, bottom). The CT is axial, frames from feet to head, columns from the
# patient's right to left, rows from anterior to posterior; the MR is sagittal, frames from
# left to right, columns from anterior to posterior, rows from head to feet.
EXPECTED_PLANES = {
    CT: {
        "axial": (lambda v, k: v[k], ("R", "L", "A", "P")),
        "coronal": (lambda v, k: v[::-1, k, :], ("R", "L", "H", "F")),
        "sagittal": (lambda v, k: v[::-1, :, v.shape[2] - 1 - k], ("A", "P", "H", "F")),
    },
    MR_SAGITTAL: {
        "axial": (lambda v, k: v[::-1, v.shape[1] - 1 - k, :].T, ("R", "L", "A", "P")),
        "coronal": (lambda v, k: v[::-1, :, k].T, ("R", "L", "H", "F")),
        "sagittal": (lambda v, k: v[k], ("A", "P", "H", "F")),
    },
}


@pytest.fixture(scope="module")
def volumes():
    cache = mpr.VolumeCache()
    yield cache
    cache.close()


@pytest.mark.parametrize("series", present(CT, MR_SAGITTAL))
@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_each_plane_is_numpy_slicing_of_the_volume_with_its_letters(series, plane, volumes) -> None:
    volume = open_series(real_path(series))
    values = volume.values
    model = ViewerModel([volume], volumes=volumes)
    viewport = model.viewports[0]
    viewport.plane = plane
    slicing, letters = EXPECTED_PLANES[series][plane]
    assert viewport.plane == plane
    assert _letters(viewport) == letters
    for k in sorted({0, viewport.frame_count // 3, viewport.frame_count - 1}):
        np.testing.assert_array_equal(viewport.pixels(k), slicing(values, k))
    # Pixels are drawn with the plane's own spacing: rows of a coronal CT are 5 mm slices.
    row_spacing, column_spacing = viewport.attrs["PixelSpacing"]
    assert viewport.pixel_aspect == pytest.approx(row_spacing / column_spacing)
    affine = np.asarray(viewport.stack.attrs["affine"])
    assert np.linalg.norm(affine[:3, 1]) == pytest.approx(row_spacing)
    # The acquired plane is the series itself (its DICOM references stay).
    assert (viewport.stack is volume) == (viewport.plane == mpr.plane_of(volume))
    assert viewport.reformatted == (viewport.stack is not volume)


def test_mpr_layout_and_crosshair_map_between_planes_within_half_a_voxel(volumes) -> None:
    volume = open_series(real_path(CT))
    frames, _, columns = volume.shape
    model = ViewerModel([volume], volumes=volumes)
    model.layout = "mpr"
    axial, coronal, sagittal = model.viewports
    assert model.layout == (1, 3)
    assert [v.plane for v in model.viewports] == ["axial", "coronal", "sagittal"]
    assert model.crosshair.frame_of_reference == volume.attrs["FrameOfReferenceUID"]
    # A click on the coronal plane at (column, row) moves the axial plane to the slice of
    # that row (rows run from head to feet) and the sagittal one to that column.
    coronal.frame = 200
    column, row = 300.3, 10.4
    model.crosshair = model.point_at(coronal, column, row)
    assert coronal.frame == 200
    assert axial.frame == frames - 1 - round(row)
    assert sagittal.frame == columns - 1 - round(column)
    point = np.asarray(model.crosshair.point)
    for viewport in model.viewports:
        frame, c, r, distance = mpr.locate(viewport.stack, point)
        assert frame == viewport.frame
        assert distance <= mpr.stack_spacing(viewport.stack) / 2 + 1e-9
        # Back from that plane's pixel to the patient: the same point within half a voxel.
        back = viewport.patient_point(c, r)
        spacing = np.linalg.norm(np.asarray(viewport.stack.attrs["affine"])[:3, :3], axis=0)
        assert np.all(np.abs(back - point) <= np.max(spacing) / 2 + 1e-6)
    # And the axial pixel under the crosshair is the coronal one.
    _, c, r, _ = mpr.locate(axial.stack, point)
    assert (round(c), round(r)) == (round(column), 200)
    # A point given as a bare LPS triple takes the active viewport's Frame of Reference.
    model.crosshair = tuple(axial.patient_point(10, 20, 3))
    assert axial.frame == 3 and coronal.frame == 20 and sagittal.frame == columns - 1 - 10
    # Each plane draws the other two as reference lines through the crosshair.
    line = mpr.reference_line(axial.stack, axial.frame, coronal.stack, coronal.frame)
    (c0, r0), (c1, r1) = line
    assert r0 == pytest.approx(20) and r1 == pytest.approx(20)
    assert (c0, c1) == (-0.5, columns - 0.5)
    assert mpr.reference_line(axial.stack, 0, axial.stack, 5) is None  # parallel


def test_linked_scrolling_between_two_series_of_one_frame_of_reference(tmp_path) -> None:
    volume = open_series(real_path(CT))

    def every_other_slice_moved(ds, index):
        if index % 2:
            return False
        ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 1.7
        ds.SeriesDescription = "thick"

    other = open_series(modified_copy(real_path(CT), tmp_path / "thick", every_other_slice_moved))
    assert other.attrs["FrameOfReferenceUID"] == volume.attrs["FrameOfReferenceUID"]
    model = ViewerModel([volume, other], layout=(1, 2))
    first, second = model.viewports
    model.link()
    assert model.links.active and model.links.scroll
    positions = other.coords["position"].values
    for frame in (3, 4, 11, 27, 0):
        first.frame = frame
        goal = volume.coords["position"].values[frame]
        assert second.frame == int(np.argmin(np.abs(positions - goal)))
    # The other way round too, and windows follow once that toggle is on.
    second.frame = 5
    assert first.frame == int(np.argmin(np.abs(volume.coords["position"].values - positions[5])))
    assert first.window is None
    model.links.window = True
    second.window = (40, 400)
    assert first.window == (40, 400)
    model.links.zoom = True
    first.zoom, first.pan = 2.0, (10.0, -4.0)
    assert (second.zoom, second.pan) == (2.0, (10.0, -4.0))
    model.unlink()
    first.frame = 20
    assert second.frame == 5


def test_planes_of_one_frame_of_reference_that_cross_do_not_scroll_each_other() -> None:
    volume = open_series(real_path(CT))
    model = ViewerModel([volume])
    model.layout = "mpr"
    axial, coronal, _ = model.viewports
    model.link()
    before = coronal.frame
    axial.frame = 5
    assert coronal.frame == before


@pytest.mark.parametrize("mode", ["mip", "minip", "average"])
def test_slabs_equal_numpy_over_the_slab(mode, volumes) -> None:
    volume = open_series(real_path(CT))
    values = volume.values
    reduce = {"mip": np.max, "minip": np.min, "average": np.mean}[mode]
    model = ViewerModel([volume], volumes=volumes)
    model.layout = "mpr"
    axial, coronal, _ = model.viewports
    # 20 mm of 0.451 mm coronal slices: 44 slices centred on the one shown.
    coronal.frame = 250
    coronal.slab = (20, mode)
    count = round(20 / 0.451171875)
    start = 250 - (count - 1) // 2
    expected = reduce(values[::-1, start : start + count, :], axis=1)
    np.testing.assert_allclose(coronal.pixels(), expected, rtol=1e-6)
    # On the acquired axial slices (5 mm): 15 mm is three slices; the ends are clipped.
    axial.frame = 0
    axial.slab = Slab(15, mode)
    np.testing.assert_allclose(axial.pixels(), reduce(values[0:2], axis=0), rtol=1e-6)
    assert axial.slab.label.endswith("15 mm")
    with pytest.raises(ValueError, match="slab mode"):
        axial.slab = (10, "sum")
    with pytest.raises(ValueError, match="positive"):
        axial.slab = (0, "mip")


def test_tilted_series_is_flagged_and_resampled(tmp_path) -> None:
    volume = open_series(real_path(CT))
    values = volume.values
    row_mm = float(volume.attrs["PixelSpacing"][0])
    z0 = float(np.asarray(volume.attrs["affine"])[2, 3])

    def tilted(ds, index):
        # Each slice two rows further posterior than the one below: a gantry tilt.
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + 2 * row_mm * round((z - z0) / 5.0), z]

    copy = open_series(modified_copy(real_path(CT), tmp_path / "tilted", tilted))
    assert copy.attrs["gantry_tilt"] == pytest.approx(math.degrees(math.atan(2 * row_mm / 5)))
    model = ViewerModel([copy])
    viewport = model.viewports[0]
    viewport.plane = "axial"
    assert viewport.reformatted
    assert "gantry tilt 10.2°" in viewport.stack.attrs["resampled"]
    for k in (1, 7, 27):
        # The grid's slice k is the acquired one moved back by its 2k rows of shear.
        np.testing.assert_array_equal(viewport.pixels(k)[2 * k :], values[k][: -2 * k])
    from workbench.widgets import overlay

    assert any("Resampled" in line for line in overlay.corner_text(viewport)["bottom_left"])


def test_unevenly_spaced_series_is_flagged_and_resampled(tmp_path) -> None:
    volume = open_series(real_path(CT))
    values = volume.values.astype(np.float64)

    def two_missing(ds, index):
        return index not in (10, 11)

    copy = open_series(modified_copy(real_path(CT), tmp_path / "gap", two_missing))
    assert copy.attrs["uneven_spacing"] == 1 and copy.sizes["frame"] == 26
    model = ViewerModel([copy])
    viewport = model.viewports[0]
    viewport.plane = "axial"
    assert "uneven spacing 5-15 mm" in viewport.stack.attrs["resampled"]
    assert viewport.frame_count == 28  # back on a 5 mm grid
    np.testing.assert_array_equal(viewport.pixels(9), values[9])
    np.testing.assert_array_equal(viewport.pixels(12), values[12])
    # The missing slices are interpolated between their neighbours, 5 and 10 mm away.
    np.testing.assert_array_equal(viewport.pixels(10), np.rint(values[9] * 2 / 3 + values[12] / 3))
    np.testing.assert_array_equal(viewport.pixels(11), np.rint(values[9] / 3 + values[12] * 2 / 3))


def test_measurements_on_a_reformatted_plane_are_in_mm(volumes) -> None:
    model = ViewerModel([open_series(real_path(CT))], volumes=volumes)
    model.layout = "mpr"
    _, coronal, sagittal = model.viewports
    # Four coronal rows are four 5 mm slices; 100 sagittal columns are 45.1 mm.
    for viewport, points, mm in (
        (coronal, [(100.0, 2.0), (100.0, 6.0)], 20.0),
        (sagittal, [(100.0, 5.0), (200.0, 5.0)], 45.1171875),
    ):
        length = Annotation("length", points, image=viewport.image_reference())
        model.measure(length, viewport)
        assert length.values["length_mm"] == pytest.approx(mm)
        assert viewport.image_reference().sop_instance_uid.startswith(mpr.REFORMATTED_UID_PREFIX)


def test_saving_annotations_of_a_reformatted_plane_is_refused_and_they_are_kept(
    tmp_path,
) -> None:
    from workbench.widgets import Viewer

    viewer = Viewer(real_path(CT), state_dir=tmp_path / "states", thumbnails=False)
    try:
        viewer.model.layout = "mpr"
        viewer.model.active = 1
        coronal = viewer.model.active_viewport
        mark = Annotation("length", [(10.0, 2.0), (40.0, 2.0)], image=coronal.image_reference())
        viewer.annotations.add(mark)
        with pytest.raises(ValueError, match=r"reformatted coronal plane.*acquired images"):
            viewer.save_state("on the coronal plane")
        assert list(viewer.annotations) == [mark]
        assert viewer.annotations.visible_on(coronal.image_reference()) == [mark]
        assert not list((tmp_path / "states").rglob("*.dcm"))
    finally:
        viewer.close()


def test_volume_decoding_reports_progress_and_holds_its_budget() -> None:
    volume = open_series(real_path(CT))
    seen: list[tuple[int, int]] = []
    cache = mpr.VolumeCache()
    try:
        decoded = cache.load(volume, lambda done, total: seen.append((done, total))).result()
        assert seen == [(16, 28), (28, 28)]  # after each batch of frames
        assert decoded.array.nbytes == cache.nbytes == volume.nbytes
        assert volume in cache and cache.progress(volume) is None
    finally:
        cache.close()
    small = mpr.VolumeCache(max_bytes=volume.nbytes // 2)
    with pytest.raises(MemoryError, match="more than the volume cache"):
        small.load(volume)
    small.close()


def test_a_series_that_is_no_volume_cannot_be_reformatted(sample_data) -> None:
    radiograph = open_series(sample_data / "cr_agfa_mono1_tiny")
    model = ViewerModel([radiograph])
    with pytest.raises(ValueError, match="cannot be reformatted"):
        model.viewports[0].plane = "coronal"
    with pytest.raises(ValueError, match="no stack of this viewer is a volume"):
        model.layout = "mpr"
    assert Crosshair((0.0, 0.0, 0.0), "1.2").point == (0.0, 0.0, 0.0)


def test_viewer_widgets_mpr_menu_crosshair_tool_and_link_button(tmp_path) -> None:
    from workbench.widgets import Viewer

    viewer = Viewer(real_path(CT), state_dir=tmp_path, thumbnails=False, size=(900, 400))
    try:
        viewer.toolbar.layout.value = "MPR"
        axial, coronal, sagittal = viewer.viewports
        assert [v.plane for v in viewer.viewports] == ["axial", "coronal", "sagittal"]
        assert len(viewer.views) == 3 and "Coronal (reformatted)" in viewer.views[1].status.value
        assert "crosshair" in [value for _, value in viewer.toolbar.tools.options]
        viewer.tool = "crosshair"
        # A click in the coronal plane moves the axial one to the slice under the pointer.
        view = viewer.views[1]
        target = coronal.transform().to_display((256.0, 5.0))
        before = axial.frame
        viewer.interaction.press(1, *target)
        viewer.interaction.release(1, *target)
        assert axial.frame == 27 - 5 != before
        assert sagittal.frame == 511 - 256
        assert view.bytes_sent > 0
        # Linking from the toolbar, with W/L shared as the settings say.
        viewer.toolbar.link_window.value = True
        viewer.toolbar.link.value = True
        assert viewer.links.active and viewer.links.window
        coronal.window = (40, 80)
        assert axial.window == sagittal.window == (40, 80)
        viewer.unlink()
        assert not viewer.toolbar.link.value
    finally:
        viewer.close()


def test_viewer_opens_by_hanging_protocol() -> None:
    from workbench.widgets import Viewer

    viewer = Viewer(real_path(CT), hanging=True, thumbnails=False)
    try:
        assert viewer.layout == (1, 3)
        assert [v.plane for v in viewer.viewports] == ["axial", "coronal", "sagittal"]
    finally:
        viewer.close()


def test_localizer_lines_between_acquired_series_of_one_frame_of_reference(tmp_path) -> None:
    axial = open_series(real_path(CT))
    affine = np.asarray(axial.attrs["affine"])
    x0, y0, z_top = affine[0, 3], affine[1, 3], affine[2, 3] + 27 * 5.0

    def coronal_acquisition(ds, index):
        # The same Frame of Reference, acquired coronally: 5 mm apart from anterior back.
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        ds.ImagePositionPatient = [x0, y0 + 40.0 + 5.0 * index, z_top]

    coronal = open_series(modified_copy(real_path(CT), tmp_path / "cor", coronal_acquisition))
    assert mpr.plane_of(coronal) == "coronal" and not mpr.is_reformatted(coronal)
    row_mm = float(axial.attrs["PixelSpacing"][0])
    for j in (0, 7, 20):
        # On every axial slice, coronal slice j is the row at its depth, edge to edge.
        (c0, r0), (c1, r1) = mpr.reference_line(axial, 12, coronal, j)
        assert r0 == pytest.approx(r1) == pytest.approx((40.0 + 5.0 * j) / row_mm)
        assert (c0, c1) == (-0.5, axial.sizes["x"] - 0.5)
    # And the axial slice k crosses each coronal slice at the row of its height.
    for k in (0, 27):
        (_, r0), (_, r1) = mpr.reference_line(coronal, 3, axial, k)
        assert r0 == pytest.approx(r1) == pytest.approx((27 - k) * 5.0 / row_mm)
    model = ViewerModel([axial, coronal], layout=(1, 2))
    with pytest.raises(MemoryError, match="volume cache"):
        small = ViewerModel([axial], volumes=mpr.VolumeCache(max_bytes=2**20))
        small.viewports[0].plane = "coronal"
    assert model.viewports[1].plane == "coronal"


def test_a_reformatted_viewport_shows_decoding_progress_then_its_image() -> None:
    """With an event loop running (as in a kernel) the volume decodes in the background."""
    import asyncio

    from workbench.widgets import Viewer

    async def open_mpr() -> list[str]:
        viewer = Viewer(real_path(CT), thumbnails=False, size=(900, 400))
        try:
            viewer.layout = "mpr"
            view = viewer.views[1]
            seen = [view.status.value]
            deadline = asyncio.get_running_loop().time() + 60
            while not view.status.value.startswith("Im "):
                if view.status.value != seen[-1]:
                    seen.append(view.status.value)
                assert asyncio.get_running_loop().time() < deadline, seen
                await asyncio.sleep(0.01)  # let the decoding thread's callbacks run
            seen.append(view.status.value)
            assert view.bytes_sent > 0
            return seen
        finally:
            viewer.close()

    seen = asyncio.run(open_mpr())
    assert seen[0] == "Decoding the volume for the coronal plane: 0/28 slices"
    assert seen[-1].startswith("Im 256/512") and "Coronal (reformatted)" in seen[-1]


@pytest.mark.parametrize("series", present(CT, MR_SAGITTAL))
@pytest.mark.parametrize("clicked", [0, 1, 2])
def test_a_crosshair_set_on_any_plane_lands_within_half_a_voxel_on_every_plane(
    series, clicked, volumes
) -> None:
    model = ViewerModel([open_series(real_path(series))], volumes=volumes)
    model.layout = "mpr"
    source = model.viewports[clicked]
    columns, rows = source.image_size
    source.frame = source.frame_count // 3
    model.crosshair = model.point_at(source, columns * 0.3 + 0.2, rows * 0.7 - 0.3)
    assert source.frame == source.frame_count // 3
    point = np.asarray(model.crosshair.point)
    for viewport in model.viewports:
        frame, column, row, distance = mpr.locate(viewport.stack, point)
        assert frame == viewport.frame
        assert distance <= mpr.stack_spacing(viewport.stack) / 2 + 1e-6
        nearest = viewport.patient_point(round(column), round(row))
        steps = np.abs(np.asarray(viewport.stack.attrs["affine"])[:3, :3]).sum(axis=1)
        assert np.all(np.abs(nearest - point) <= steps / 2 + 1e-6)


def test_the_three_planes_share_one_window(volumes) -> None:
    model = ViewerModel([open_series(real_path(CT))], volumes=volumes)
    model.layout = "mpr"
    model.viewports[2].window = (300, 1500)
    assert [v.window for v in model.viewports] == [(300.0, 1500.0)] * 3
    assert model.links.window and not model.links.zoom


def test_acquired_slices_of_a_decoded_volume_are_not_kept_twice() -> None:
    volume = open_series(real_path(CT))
    model = ViewerModel([volume])
    model.layout = "mpr"
    axial, coronal, _ = model.viewports
    coronal.pixels()  # decodes the whole volume once
    decoded = model.volumes.get(volume).array
    assert np.shares_memory(axial.pixels(5), decoded)
    np.testing.assert_array_equal(axial.pixels(5), volume[5].values)
    asked = (model.cache.hits, model.cache.misses)
    for frame in range(volume.sizes["frame"]):
        axial.frame = frame
        axial.pixels()
    assert (model.cache.hits, model.cache.misses) == asked  # the frame cache was not asked
