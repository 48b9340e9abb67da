"""Laziness, pickling and the xarray backend."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import xarray as xr

from workbench.io import InconsistentSeriesError, open_series, open_study
from workbench.io.backend import DicomBackendEntrypoint


def test_one_chunk_per_frame_and_pickle_roundtrip(ct_series):
    array = open_series(ct_series)
    assert array.data.chunks == ((1,) * 28, (512,), (512,))
    payload = pickle.dumps(array)
    # File names and per-frame numbers, never pixels.
    assert len(payload) < 100_000
    restored = pickle.loads(payload)
    expected = array.values
    np.testing.assert_array_equal(restored.compute().values, expected)
    np.testing.assert_array_equal(array.compute(scheduler="threads").values, expected)


def test_slicing_reads_only_what_is_asked(ct_series):
    array = open_series(ct_series)
    part = array.isel(frame=slice(3, 6), y=slice(100, 110), x=200)
    assert part.shape == (3, 10)
    np.testing.assert_array_equal(part.values, array.values[3:6, 100:110, 200])


def test_backend_is_chosen_from_the_dicm_marker(ct_series):
    path = sorted(ct_series.iterdir())[0]  # no extension
    assert DicomBackendEntrypoint().guess_can_open(path)
    assert not DicomBackendEntrypoint().guess_can_open(ct_series.parent / "MANIFEST.tsv")
    dataset = xr.open_dataset(path)
    assert list(dataset.data_vars) == ["pixels"]
    np.testing.assert_array_equal(dataset.pixels.values, open_series(path).values)


def test_backend_dataarray_with_dask_chunks(ct_series):
    array = xr.open_dataarray(ct_series, engine="dicom", chunks={})
    assert array.chunks[0] == (1,) * 28
    assert array.attrs["Modality"] == "CT"
    np.testing.assert_array_equal(array[4].values, open_series(ct_series)[4].values)
    raw = xr.open_dataarray(ct_series, engine="dicom", raw=True)
    assert raw.dtype == np.uint16


def test_open_study_opens_each_image_series(sample_data):
    study = open_study(
        [sample_data / "siemens_mr_mosaic_uncompressed", sample_data / "siemens_mr_mosaic_jpegll"],
        progress=False,
    )
    assert len(study) == 2
    assert {a.attrs["SeriesDescription"] for a in study.values()} == {"fMRI_MB_asc", "ax_asc_35sl"}
    with pytest.raises(InconsistentSeriesError, match="2 studies found"):
        open_study(
            [
                sample_data / "series_ct_philips_ingenuity_5mm",
                sample_data / "series_mr_siemens_t1_sag_HFS",
            ],
            progress=False,
        )
