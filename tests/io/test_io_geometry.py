"""Frame order, positions and the voxel-to-patient affine on real series."""

from __future__ import annotations

import math
import random

import numpy as np
import pydicom
import pytest

from tests.data import present, real_path
from workbench.io import open_series


def _ipp_by_sop(paths):
    out = {}
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        out[ds.SOPInstanceUID] = np.array(ds.ImagePositionPatient, dtype=float)
    return out


def _voxel_to_lps(array, x, y, frame):
    return (np.array(array.attrs["affine"]) @ np.array([x, y, frame, 1.0]))[:3]


def test_ct_series_sorted_along_normal_with_exact_affine(ct_series):
    array = open_series(ct_series)
    ipp = _ipp_by_sop(sorted(ct_series.iterdir()))
    assert array.sizes["frame"] == 28
    z = [ipp[uid][2] for uid in array.sop_instance_uid.values]
    assert z == sorted(z) and len(set(z)) == 28
    # Axial: the position along the normal is the z coordinate.
    np.testing.assert_allclose(array.position.values, z)
    for k, uid in enumerate(array.sop_instance_uid.values):
        np.testing.assert_allclose(_voxel_to_lps(array, 0, 0, k), ipp[uid], atol=1e-6)
    spacing = 0.451171875
    np.testing.assert_allclose(
        np.array(array.attrs["affine"])[:3, :2], [[spacing, 0], [0, spacing], [0, 0]]
    )
    np.testing.assert_allclose(array.x.values[:3], [0, spacing, 2 * spacing])
    assert array.attrs["slice_spacing"] == pytest.approx(5.0)
    assert array.attrs["is_volume"] and not array.attrs["uneven_spacing"]
    assert array.attrs["gantry_tilt"] == 0.0


def test_order_does_not_depend_on_file_order(ct_series):
    files = sorted(ct_series.iterdir())
    shuffled = files[:]
    random.Random(4).shuffle(shuffled)
    a, b = open_series(files), open_series(shuffled)
    assert list(a.sop_instance_uid.values) == list(b.sop_instance_uid.values)
    assert np.array_equal(a[7].values, b[7].values)


def test_sagittal_mr_affine_maps_every_pixel_to_patient_space(sample_data):
    folder = sample_data / "series_mr_siemens_t1_sag_HFS"
    array = open_series(folder)
    headers = {
        ds.SOPInstanceUID: ds
        for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.iterdir()))
    }
    assert array.sizes["frame"] == 35 and array.attrs["is_volume"]
    assert np.all(np.diff(array.position.values) > 0)
    for k, uid in enumerate(array.sop_instance_uid.values):
        ds = headers[uid]
        row, col = (
            np.array(ds.ImageOrientationPatient[:3]),
            np.array(ds.ImageOrientationPatient[3:]),
        )
        dr, dc = (float(v) for v in ds.PixelSpacing)
        # PS3.3 C.7.6.2.1.1 for the far corner pixel (column 255, row 200).
        expected = np.array(ds.ImagePositionPatient) + 255 * dc * row + 200 * dr * col
        np.testing.assert_allclose(_voxel_to_lps(array, 255, 200, k), expected, atol=1e-4)
        assert array.instance_number.values[k] == ds.InstanceNumber
    assert array.attrs["slice_spacing"] == pytest.approx(4.8, abs=1e-4)


def test_enhanced_mr_time_series_keeps_instance_then_frame_order(sample_data):
    folder = sample_data / "enhanced_mr_siemens_xa10"
    array = open_series(folder)
    assert array.sizes["frame"] == 24
    # Six slice positions repeat at four time points: not one volume, so no re-sorting.
    assert not array.attrs["is_volume"]
    assert list(array.instance_number.values) == [n for n in (1, 2, 3, 4) for _ in range(6)]
    assert list(array.frame_number.values) == [1, 2, 3, 4, 5, 6] * 4
    ds = pydicom.dcmread(folder / "6_1.dcm", stop_before_pixels=True)
    shared = ds.SharedFunctionalGroupsSequence[0]
    orientation = (
        ds.PerFrameFunctionalGroupsSequence[0].get("PlaneOrientationSequence")
        or shared.PlaneOrientationSequence
    )
    iop = np.array(orientation[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    for k, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        ipp = np.array(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        assert array.position.values[k] == pytest.approx(float(ipp @ normal), abs=1e-3)


def test_enhanced_ct_positions_come_from_per_frame_groups(sample_data):
    path = sample_data / "enhanced_ct_nema/eCT_Supplemental.dcm"
    array = open_series(path)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    z = [
        float(item.PlanePositionSequence[0].ImagePositionPatient[2])
        for item in ds.PerFrameFunctionalGroupsSequence
    ]
    order = np.argsort(array.frame_number.values)
    iop = np.array(array.attrs["ImageOrientationPatient"])
    normal = np.cross(iop[:3], iop[3:])
    np.testing.assert_allclose(array.position.values[order], np.array(z) * normal[2])
    assert np.all(np.diff(array.position.values) > 0)
    assert array.attrs["PixelSpacing"] == pytest.approx([0.388672, 0.388672])


def _rewrite_positions(folder, shift):
    for k, path in enumerate(
        sorted(
            folder.iterdir(),
            key=lambda p: pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2],
        )
    ):
        ds = pydicom.dcmread(path)
        ds.ImagePositionPatient = [float(v) for v in shift(k, ds.ImagePositionPatient)]
        ds.save_as(path)


def test_gantry_tilt_is_flagged_and_kept_exact(ct_copy):
    tilt = 20.0
    slope = math.tan(math.radians(tilt))
    _rewrite_positions(ct_copy, lambda k, p: (p[0], p[1] + (p[2] - 696.21) * slope, p[2]))
    array = open_series(ct_copy)
    assert array.attrs["gantry_tilt"] == pytest.approx(tilt, abs=0.01)
    ipp = _ipp_by_sop(sorted(ct_copy.iterdir()))
    for k, uid in enumerate(array.sop_instance_uid.values):
        np.testing.assert_allclose(_voxel_to_lps(array, 0, 0, k), ipp[uid], atol=1e-6)
    # Not resampled: same pixels as the untilted files.
    assert array.shape == (6, 512, 512)


def test_uneven_spacing_is_flagged_with_exact_positions(ct_copy):
    victim = sorted(
        ct_copy.iterdir(),
        key=lambda p: pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2],
    )[2]
    victim.unlink()
    array = open_series(ct_copy)
    assert array.attrs["uneven_spacing"]
    np.testing.assert_allclose(np.diff(array.position.values), [5, 10, 5, 5])


WITHOUT_GEOMETRY = present(
    "us_rgb_bigendian_barre/ExplVR_BigEnd.dcm", "us_siemens_rgb/RGB_IMAGE.dcm"
)


@pytest.mark.parametrize("relative", WITHOUT_GEOMETRY)
def test_image_without_geometry_has_nan_position_and_pixel_coords(relative):
    array = open_series(real_path(relative))
    assert np.isnan(array.position.values).all()
    assert array.x.attrs["units"] in ("pixel", "mm")
    assert not array.attrs["is_volume"]


def test_projection_radiograph_falls_back_to_imager_pixel_spacing(sample_data):
    path = sample_data / "cr_agfa_mono1_tiny/6154"
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert "PixelSpacing" not in ds
    array = open_series(path)
    assert array.attrs["PixelSpacingSource"] == "ImagerPixelSpacing"
    assert array.attrs["PixelSpacing"] == [float(v) for v in ds.ImagerPixelSpacing]
    assert array.x.values[1] == pytest.approx(float(ds.ImagerPixelSpacing[1]))


@pytest.mark.parametrize("relative", WITHOUT_GEOMETRY)
def test_pixel_aspect_ratio_is_kept_for_images_without_spacing(relative, tmp_path):
    source = real_path(relative)
    assert "PixelAspectRatio" not in open_series(source).attrs
    ds = pydicom.dcmread(source)
    ds.PixelAspectRatio = [4, 3]
    ds.save_as(tmp_path / "aspect.dcm")
    assert open_series(tmp_path / "aspect.dcm").attrs["PixelAspectRatio"] == [4, 3]
