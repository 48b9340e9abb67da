"""Arrays from ``open_series`` written with xarray's own ``to_netcdf`` and ``to_zarr``.

What is written reads back equal: pixel values, coordinates and attributes. The display
tables (palette, VOI LUTs) stay with the array in memory and are not written.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import xarray as xr

from workbench.io import open_series
from workbench.io.display import display_attrs, render

SERIES = [
    "series_ct_philips_ingenuity_5mm",  # a volume: affine, slice spacing, HU
    "us_aloka_palette16/gdcm-US-ALOKA-16.dcm",  # palette colour: indices, palette in tables
    "voi_lut_ihe/vlut_04.dcm",  # a VOI LUT Sequence
    "enhanced_mr_siemens_xa10",  # enhanced multi-frame, per-frame values
    "us_rgb_bigendian_barre/ExplVR_BigEnd.dcm",  # colour: a channel dimension
]


def write_and_read(array: xr.DataArray, path, store: str) -> xr.DataArray:
    if store == "netcdf":
        array.to_netcdf(path / "series.nc", engine="h5netcdf")
        return xr.open_dataarray(path / "series.nc", engine="h5netcdf").load()
    array.to_zarr(path / "series.zarr")
    return xr.open_dataarray(path / "series.zarr", engine="zarr").load()


def same_value(a, b) -> bool:
    """Equal once both are arrays (netCDF gives lists back as arrays, one value as a scalar)."""
    a, b = np.ravel(np.asarray(a)), np.ravel(np.asarray(b))
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return a.shape == b.shape and np.allclose(a, b, equal_nan=True)
    return a.shape == b.shape and all(str(x) == str(y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("store", ["netcdf", "zarr"])
@pytest.mark.parametrize("source", SERIES)
def test_an_opened_series_reads_back_equal(sample_data, tmp_path, source, store):
    array = open_series(sample_data / source)
    back = write_and_read(array, tmp_path, store)

    assert back.dims == array.dims and back.dtype == array.dtype
    np.testing.assert_array_equal(back.values, array.values)
    assert set(back.coords) == set(array.coords)
    for name, coord in array.coords.items():
        assert same_value(back.coords[name].values, coord.values), name
        assert back.coords[name].attrs == coord.attrs, name
    assert set(back.attrs) == set(array.attrs)
    different = [k for k, v in array.attrs.items() if not same_value(back.attrs[k], v)]
    assert not different, {k: (array.attrs[k], back.attrs[k]) for k in different}
    np.testing.assert_allclose(np.reshape(back.attrs["affine"], (4, 4)), array.attrs["affine"])


def test_display_tables_stay_with_the_array_not_its_attrs(sample_data):
    palette = open_series(sample_data / "us_aloka_palette16/gdcm-US-ALOKA-16.dcm")
    lut = open_series(sample_data / "voi_lut_ihe/vlut_04.dcm")
    for array in (palette, lut):
        assert not {"raw", "palette", "voi_lut"} & set(array.attrs)
    assert display_attrs(palette)["palette"].shape[1] == 3
    assert len(display_attrs(lut)["voi_lut"]) == len(lut.encoding["dicom_display"].voi_luts)
    # A frame picked from the array still renders in colour / through its table.
    frame = palette.isel(frame=0)
    assert render(frame.values, display_attrs(frame)).shape == (*frame.shape, 3)
    item = pydicom.dcmread(sample_data / "voi_lut_ihe/vlut_04.dcm").VOILUTSequence[0]
    table = display_attrs(lut[0])["voi_lut"][0]
    assert table["first_mapped"] == item.LUTDescriptor[1]
    assert [int(v) for v in table["data"]] == [int(v) for v in item.LUTData]


def test_raw_values_are_marked_in_the_tables(sample_data):
    raw = open_series(sample_data / "series_ct_philips_ingenuity_5mm", raw=True)
    assert "raw" not in raw.attrs and display_attrs(raw)["raw"] is True
    assert display_attrs(open_series(sample_data / "voi_lut_ihe/vlut_04.dcm"))["raw"] is False


def test_the_xarray_backend_dataset_writes_too(sample_data, tmp_path):
    dataset = xr.open_dataset(sample_data / "voi_lut_ihe/vlut_04.dcm", engine="dicom")
    assert dataset["pixels"].encoding["dicom_display"].voi_luts
    dataset.to_netcdf(tmp_path / "backend.nc", engine="h5netcdf")
    back = xr.open_dataset(tmp_path / "backend.nc", engine="h5netcdf")
    np.testing.assert_array_equal(back["pixels"].values, dataset["pixels"].values)
    assert set(back.attrs) == set(dataset.attrs)
