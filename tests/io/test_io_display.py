"""Display mapping (PS3.3 C.11) on real MONOCHROME1, YBR, palette and VOI LUT files."""

from __future__ import annotations

from pathlib import Path

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
from pydicom.uid import JPEG2000TransferSyntaxes

from tests.data import present, real_path
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
    expected = _pydicom_window(values, center, width, function)
    np.testing.assert_array_equal(display.apply_window(values, center, width, function), expected)


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.uint8, np.int32])
def test_stored_integers_window_as_pydicom_does(function, dtype):
    """Integer images go through a lookup table: the same pixels as windowing each value."""
    info = np.iinfo(dtype)
    low, high = max(info.min, -3000), min(info.max, 5000)
    values = np.random.default_rng(7).integers(low, high, (256, 256), endpoint=True)
    values = values.astype(dtype)
    for center, width in [(40, 400), (0.5, 1), (1000, 3000)]:
        expected = _pydicom_window(values, center, width, function)
        windowed = display.apply_window(values, center, width, function)
        np.testing.assert_array_equal(windowed, expected)


def test_linear_window_edges_follow_the_standard():
    # C.11.2.1.2.1: x <= c - 0.5 - (w-1)/2 -> 0; x > c - 0.5 + (w-1)/2 -> 255.
    out = display.apply_window(np.array([-161.0, -160.5, 239.5, 240.0]), 40, 400)
    assert out[0] == 0 and out[-1] == 255
    with pytest.raises(ValueError, match="Window Width"):
        display.apply_window(np.zeros(3), 0, 0.5, "LINEAR")
    with pytest.raises(ValueError, match="VOI LUT Function"):
        display.apply_window(np.zeros(3), 0, 10, "CUBIC")


def test_monochrome1_shows_low_values_white(sample_data):
    array = open_series(sample_data / "cr_agfa_mono1_tiny/6154")
    frame = array[0].values
    assert array.attrs["PhotometricInterpretation"] == "MONOCHROME1"
    center, width = display.default_window(array.attrs, frame)
    assert (center, width) == (1600.0, 2800.0)  # the file's own preset
    windowed = display.apply_window(frame, center, width)
    shown = display.render(frame, display.display_attrs(array))
    np.testing.assert_array_equal(shown, 255 - windowed)
    # The user's invert toggle undoes it; it is the one decision point.
    np.testing.assert_array_equal(
        display.render(frame, display.display_attrs(array), invert=True), windowed
    )
    assert shown[np.unravel_index(frame.argmin(), frame.shape)] == shown.max()


@pytest.fixture
def monochrome1_jpeg2000(ct_series, tmp_path) -> Path:
    """A JPEG 2000 CT slice of the sample relabelled MONOCHROME1 (same codestream)."""
    ds = pydicom.dcmread(ct_series / "I10")
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "mono1_j2k.dcm")
    return tmp_path / "mono1_j2k.dcm"


@pytest.mark.parametrize(
    ("relative", "step"),
    [(None, 1)] + [(path, 8) for path in present("nema_cr_rg3_fuji_mono1/RG3_J2KR.dcm")],
)
def test_monochrome1_jpeg2000_renders_inverted(monochrome1_jpeg2000, relative, step):
    path = monochrome1_jpeg2000 if relative is None else real_path(relative)
    array = open_series(path)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID in JPEG2000TransferSyntaxes
    frame = array[0].values[::step, ::step]
    shown = display.render(frame, display.display_attrs(array))
    preset = display.default_window(array.attrs, frame)  # the file's own, (550, 1024) in RG3
    windowed = display.apply_window(frame, *preset)
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


def test_ybr_full_422_renders_as_rgb(sample_data):
    path = sample_data / "sc_ybr_full_422_uncompressed/SC_ybr_full_422_uncompressed.dcm"
    stored = pixel_array(pydicom.dcmread(path), raw=True)  # YBR, 4:2:2 expanded
    expected = convert_color_space(stored, "YBR_FULL", "RGB")
    raw = open_series(path, raw=True)
    assert raw.attrs["PhotometricInterpretation"] == "YBR_FULL_422"
    assert list(raw.channel.values) == ["Y", "Cb", "Cr"]
    np.testing.assert_array_equal(
        display.render(raw[0].values, display.display_attrs(raw)), expected
    )
    converted = open_series(path)
    np.testing.assert_array_equal(
        display.render(converted[0].values, display.display_attrs(converted)), expected
    )
    # The same test pattern stored as RGB (RLE) looks the same, within YBR rounding.
    rgb = display.render_file(sample_data / "sc_rgb_rle/SC_rgb_rle.dcm")
    assert np.abs(rgb.astype(int) - expected).max() <= 8


def test_jpeg_ybr_multiframe_renders_rgb(sample_data):
    path = sample_data / "us_multiframe_ybr422_jpeg/examples_ybr_color.dcm"
    shown = display.render_file(path, frame=5)
    expected = pydicom.dcmread(path).pixel_array[5]  # pydicom converts to RGB by default
    np.testing.assert_array_equal(shown, expected)


@pytest.mark.parametrize(
    "relative",
    present(
        "us_aloka_palette16/gdcm-US-ALOKA-16.dcm", "us_aloka_palette16/gdcm-US-ALOKA-16_big.dcm"
    ),
)
def test_palette_colour_maps_through_the_palette(relative):
    path = real_path(relative)
    array = open_series(path)
    shown = display.render(array[0].values, display.display_attrs(array))
    ds = pydicom.dcmread(path)
    expected = apply_color_lut(ds.pixel_array, ds)  # 16-bit palette entries
    assert shown.shape == (*ds.pixel_array.shape, 3) and shown.dtype == np.uint8
    np.testing.assert_array_equal(shown, np.rint(expected * (255 / 65535)).astype(np.uint8))


def test_voi_lut_sequence_is_applied(sample_data):
    path = sample_data / "voi_lut_ihe/vlut_04.dcm"
    array = open_series(path)
    ds = pydicom.dcmread(path)
    bits = ds.VOILUTSequence[0].LUTDescriptor[2]
    expected = apply_voi_lut(ds.pixel_array, ds).astype(float) * 255 / (2**bits - 1)
    np.testing.assert_array_equal(
        display.render(array[0].values, display.display_attrs(array)),
        np.rint(expected).astype(np.uint8),
    )
    # A window chosen by the user replaces the LUT.
    windowed = display.render(array[0].values, display.display_attrs(array), window=(128, 64))
    np.testing.assert_array_equal(windowed, display.apply_window(array[0].values, 128, 64))


def test_ct_default_window_is_the_preset_and_raw_gives_the_same_picture(ct_series):
    values = open_series(ct_series)
    raw = open_series(ct_series, raw=True)
    assert values.attrs["WindowCenter"] and values.attrs["WindowWidth"]
    np.testing.assert_array_equal(
        display.render(values[10].values, display.display_attrs(values)),
        display.render(raw[10].values, display.display_attrs(raw)),
    )


def test_default_window_covers_the_data_range_without_presets():
    frame = np.array([[-5, 0], [10, 250]])
    center, width = display.default_window({}, frame)
    out = display.apply_window(frame, center, width)
    assert out.min() == 0 and out.max() == 255


@pytest.mark.parametrize(
    ("relative", "rows", "columns"),
    [
        ("sc_ct_brain_jpeg_siemens/ctbrain1.dcm", 456, 510),
        *[("nema_cr_rg2_fuji/RG2_JPLL.dcm", 2140, 1760)] * bool(present("nema_cr_rg2_fuji")),
    ],
)
def test_render_file_fits_a_thumbnail_box(sample_data, relative, rows, columns):
    thumb = display.render_file(real_path(relative), size=128)
    assert thumb.dtype == np.uint8 and max(thumb.shape) == 128
    scale = 128 / max(rows, columns)
    assert thumb.shape[:2] == (round(rows * scale), round(columns * scale))
    with pytest.raises(IndexError, match="out of range"):
        display.render_file(sample_data / "nema_mr1_small_transcodes/MR_small.dcm", frame=3)


def test_render_file_refuses_a_presentation_state(sample_data):
    with pytest.raises(PixelDataError, match="Presentation State"):
        display.render_file(sample_data / "gsps_agfa/GSPS_PS.dcm")


def test_frame_attrs_carry_per_frame_windows(sample_data):
    folder = sample_data / "enhanced_mr_siemens_xa10"
    array = open_series(folder)
    # Frame 7 is the second frame of the second file: each frame has its own window there.
    second = pydicom.dcmread(folder / "6_2.dcm", stop_before_pixels=True)
    voi = second.PerFrameFunctionalGroupsSequence[1].FrameVOILUTSequence[0]
    assert int(array.instance_number[7]) == int(second.InstanceNumber)
    assert int(array.frame_number[7]) == 2  # 1-based within the file
    attrs = display.frame_attrs(array, 7)
    assert (attrs["WindowCenter"][0], attrs["WindowWidth"][0]) == (
        float(voi.WindowCenter),
        float(voi.WindowWidth),
    )
    assert attrs["WindowCenter"][0] != display.frame_attrs(array, 0)["WindowCenter"][0]
    shown = display.render(array[7].values, attrs)
    np.testing.assert_array_equal(
        shown,
        display.apply_window(array[7].values, float(voi.WindowCenter), float(voi.WindowWidth)),
    )
