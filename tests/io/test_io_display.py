"""Display mapping (PS3.3 C.11) on real MONOCHROME1, YBR, palette and VOI LUT files."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import (
    apply_color_lut,
    apply_voi_lut,
    apply_windowing,
    convert_color_space,
    pixel_array,
)

from workbench.io import PixelDataError, display, open_series


def _pydicom_window(values, center, width, function):
    """pydicom's windowing into an 8-bit output range, as the reference."""
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored, ds.PixelRepresentation = 8, 0
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = center, width, function
    with np.errstate(over="ignore"):
        windowed = apply_windowing(np.asarray(values, dtype=float), ds)
    return np.rint(windowed).astype(np.uint8)


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize(("center", "width"), [(40, 400), (-600, 1500), (0.5, 1), (100, 2)])
def test_apply_window_matches_pydicom(function, center, width):
    values = np.linspace(-1200, 1200, 4801)
    if function == "LINEAR_EXACT" or width >= 1:
        expected = _pydicom_window(values, center, width, function)
        np.testing.assert_array_equal(
            display.apply_window(values, center, width, function), expected
        )


def test_linear_window_edges_follow_the_standard():
    # C.11.2.1.2.1: x <= c - 0.5 - (w-1)/2 -> 0; x > c - 0.5 + (w-1)/2 -> 255.
    out = display.apply_window(np.array([-161.0, -160.5, 239.5, 240.0]), 40, 400)
    assert out[0] == 0 and out[-1] == 255
    with pytest.raises(ValueError, match="Window Width"):
        display.apply_window(np.zeros(3), 0, 0.5, "LINEAR")
    with pytest.raises(ValueError, match="VOI LUT Function"):
        display.apply_window(np.zeros(3), 0, 10, "CUBIC")


def test_monochrome1_shows_low_values_white(shared_data):
    array = open_series(shared_data / "cr_agfa_mono1_tiny/6154")
    frame = array[0].values
    assert array.attrs["PhotometricInterpretation"] == "MONOCHROME1"
    center, width = display.default_window(array.attrs, frame)
    assert (center, width) == (1600.0, 2800.0)  # the file's own preset
    windowed = display.apply_window(frame, center, width)
    shown = display.render(frame, array.attrs)
    np.testing.assert_array_equal(shown, 255 - windowed)
    # The user's invert toggle undoes it; it is the one decision point.
    np.testing.assert_array_equal(display.render(frame, array.attrs, invert=True), windowed)
    assert shown[np.unravel_index(frame.argmin(), frame.shape)] == shown.max()


def test_monochrome1_jpeg2000_cr_renders_inverted(shared_data):
    array = open_series(shared_data / "nema_cr_rg3_fuji_mono1/RG3_J2KR.dcm")
    frame = array[0].values[::8, ::8]
    shown = display.render(frame, array.attrs)
    windowed = display.apply_window(frame, 550, 1024)  # the file's preset
    np.testing.assert_array_equal(shown, 255 - windowed)
    assert shown[np.unravel_index(frame.argmax(), frame.shape)] < shown.mean()


@pytest.mark.parametrize(
    ("photometric", "shape", "invert", "expected"),
    [
        ("MONOCHROME2", None, False, False),
        ("MONOCHROME2", "INVERSE", False, True),
        ("MONOCHROME1", None, False, True),
        ("MONOCHROME1", "INVERSE", False, True),  # INVERSE is required for MONOCHROME1
        ("MONOCHROME1", None, True, False),
        ("MONOCHROME2", "IDENTITY", True, True),
    ],
)
def test_is_inverted(photometric, shape, invert, expected):
    attrs = {"PhotometricInterpretation": photometric, "PresentationLUTShape": shape}
    assert display.is_inverted(attrs, invert) is expected


def test_ybr_full_422_renders_as_rgb(shared_data):
    path = shared_data / "sc_ybr_full_422_uncompressed/SC_ybr_full_422_uncompressed.dcm"
    stored = pixel_array(pydicom.dcmread(path), raw=True)  # YBR, 4:2:2 expanded
    expected = convert_color_space(stored, "YBR_FULL", "RGB")
    raw = open_series(path, raw=True)
    assert raw.attrs["PhotometricInterpretation"] == "YBR_FULL_422"
    assert list(raw.channel.values) == ["Y", "Cb", "Cr"]
    np.testing.assert_array_equal(display.render(raw[0].values, raw.attrs), expected)
    converted = open_series(path)
    np.testing.assert_array_equal(display.render(converted[0].values, converted.attrs), expected)
    # The same test pattern stored as RGB (RLE) looks the same, within YBR rounding.
    rgb = display.render_file(shared_data / "sc_rgb_rle/SC_rgb_rle.dcm")
    assert np.abs(rgb.astype(int) - expected).max() <= 8


def test_jpeg_ybr_multiframe_renders_rgb(shared_data):
    path = shared_data / "us_multiframe_ybr422_jpeg/examples_ybr_color.dcm"
    shown = display.render_file(path, frame=5)
    expected = pydicom.dcmread(path).pixel_array[5]  # pydicom converts to RGB by default
    np.testing.assert_array_equal(shown, expected)


@pytest.mark.parametrize("name", ["gdcm-US-ALOKA-16.dcm", "gdcm-US-ALOKA-16_big.dcm"])
def test_palette_colour_maps_through_the_palette(shared_data, name):
    path = shared_data / "us_aloka_palette16" / name
    array = open_series(path)
    shown = display.render(array[0].values, array.attrs)
    ds = pydicom.dcmread(path)
    expected = apply_color_lut(ds.pixel_array, ds)  # 16-bit palette entries
    assert shown.shape == (*ds.pixel_array.shape, 3) and shown.dtype == np.uint8
    np.testing.assert_array_equal(shown, np.rint(expected * (255 / 65535)).astype(np.uint8))


def test_voi_lut_sequence_is_applied(shared_data):
    path = shared_data / "voi_lut_ihe/vlut_04.dcm"
    array = open_series(path)
    ds = pydicom.dcmread(path)
    bits = ds.VOILUTSequence[0].LUTDescriptor[2]
    expected = apply_voi_lut(ds.pixel_array, ds).astype(float) * 255 / (2**bits - 1)
    np.testing.assert_array_equal(
        display.render(array[0].values, array.attrs), np.rint(expected).astype(np.uint8)
    )
    # A window chosen by the user replaces the LUT.
    windowed = display.render(array[0].values, array.attrs, window=(128, 64))
    np.testing.assert_array_equal(windowed, display.apply_window(array[0].values, 128, 64))


def test_ct_default_window_is_the_preset_and_raw_gives_the_same_picture(ct_series):
    values = open_series(ct_series)
    raw = open_series(ct_series, raw=True)
    assert values.attrs["WindowCenter"] and values.attrs["WindowWidth"]
    np.testing.assert_array_equal(
        display.render(values[10].values, values.attrs), display.render(raw[10].values, raw.attrs)
    )


def test_default_window_covers_the_data_range_without_presets():
    frame = np.array([[-5, 0], [10, 250]])
    center, width = display.default_window({}, frame)
    out = display.apply_window(frame, center, width)
    assert out.min() == 0 and out.max() == 255


def test_render_file_fits_a_thumbnail_box(shared_data):
    thumb = display.render_file(shared_data / "nema_cr_rg2_fuji/RG2_JPLL.dcm", size=128)
    assert thumb.dtype == np.uint8 and max(thumb.shape) == 128
    assert thumb.shape == (128, round(128 * 1760 / 2140))
    with pytest.raises(IndexError, match="out of range"):
        display.render_file(shared_data / "nema_mr1_small_transcodes/MR_small.dcm", frame=3)


def test_render_file_refuses_a_presentation_state(shared_data):
    with pytest.raises(PixelDataError, match="Presentation State"):
        display.render_file(shared_data / "gsps_agfa/GSPS_PS.dcm")


def test_frame_attrs_carry_per_frame_windows(shared_data):
    array = open_series(shared_data / "enhanced_mr_siemens_xa10")
    attrs = display.frame_attrs(array, 7)
    center = float(array.window_center[7])
    if np.isfinite(center):
        assert attrs["WindowCenter"][0] == center
    assert display.render(array[7].values, attrs).dtype == np.uint8
