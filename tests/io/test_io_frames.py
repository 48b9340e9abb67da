"""Every real image file decodes to what pydicom decodes, modality LUT applied."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import pixel_array

from tests.data import present, real_path
from tests.io.reference import image_files, reference_frames
from workbench.io import open_series
from workbench.io.display import display_attrs


def _one_per_series(relative: str) -> bool:
    # For stored values one slice of each multi-file series is enough: they share an encoding.
    name = relative.split("/")[1]
    return not relative.startswith("series_") or name == "I10" or name.startswith("0001_")


@pytest.mark.parametrize("path", image_files())
def test_frames_equal_pydicom_decoding(path):
    array = open_series(path)
    expected = reference_frames(path)

    assert array.dims[:3] == ("frame", "y", "x")
    assert array.shape == expected.shape
    # One dask chunk per frame.
    assert array.data.chunks[0] == (1,) * expected.shape[0]
    values = array.values
    # Frames may be re-ordered along the slice normal; frame_number says which they are.
    file_order = values[np.argsort(array.frame_number.values)]
    if np.issubdtype(array.dtype, np.integer):
        assert np.array_equal(file_order.astype(np.float64), expected.astype(np.float64))
    else:
        np.testing.assert_allclose(file_order, expected, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("path", image_files(_one_per_series))
def test_raw_gives_stored_values(path):
    array = open_series(path, raw=True)
    stored = pixel_array(pydicom.dcmread(path), raw=True)
    if array.sizes["frame"] == 1:
        stored = stored[np.newaxis]
    values = array.values[np.argsort(array.frame_number.values)]
    assert values.dtype.kind == stored.dtype.kind
    assert np.array_equal(values, stored)


NARROWEST_DTYPES = [
    ("series_ct_philips_ingenuity_5mm/I10", np.int16),  # 12-bit, intercept -1024
    ("enhanced_ct_nema/eCT_Supplemental.dcm", np.int32),  # 16-bit unsigned - 1024
    ("nema_mr1_small_transcodes/MR_small.dcm", np.int16),  # signed, no rescale
    ("series_mr_siemens_t1_sag_HFS", np.uint16),
    ("voi_lut_ihe/vlut_04.dcm", np.uint8),
    ("us_rgb_bigendian_barre/ExplVR_BigEnd.dcm", np.uint8),
    ("us_siemens_rgb/RGB_IMAGE.dcm", np.uint8),
    ("us_aloka_palette16/gdcm-US-ALOKA-16.dcm", np.uint16),  # palette indices kept
]


@pytest.mark.parametrize(
    ("relative", "dtype"), [(path, dtype) for path, dtype in NARROWEST_DTYPES if present(path)]
)
def test_narrowest_exact_dtype(relative, dtype):
    assert open_series(real_path(relative)).dtype == dtype


def test_ct_values_are_hounsfield(ct_series):
    array = open_series(ct_series)
    assert array.attrs["RescaleType"] == "HU"
    air = float(array[array.sizes["frame"] // 2, :10, :10].mean())
    assert air == pytest.approx(-1024, abs=30)


def test_colour_comes_as_rgb_with_channel_dim(sample_data):
    ybr = open_series(sample_data / "us_multiframe_ybr422_jpeg/examples_ybr_color.dcm")
    assert ybr.dims == ("frame", "y", "x", "channel")
    assert list(ybr.channel.values) == ["R", "G", "B"]
    assert ybr.attrs["PhotometricInterpretation"] == "RGB"
    assert ybr.attrs["StoredPhotometricInterpretation"] == "YBR_FULL_422"
    assert ybr.data.chunksize == (1, 240, 320, 3)


def test_palette_keeps_indices_and_carries_the_palette(sample_data):
    path = sample_data / "us_aloka_palette16/gdcm-US-ALOKA-16.dcm"
    array = open_series(path)
    assert array.dims == ("frame", "y", "x")
    palette = display_attrs(array)["palette"]
    assert "palette" not in array.attrs
    assert palette.shape[1] == 3 and palette.dtype == np.uint16
    ds = pydicom.dcmread(path)
    from pydicom.pixels import apply_color_lut

    assert np.array_equal(palette[array.values[0]], apply_color_lut(ds.pixel_array, ds))
