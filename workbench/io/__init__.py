"""DICOM in and out: header catalogs, lazy xarray/dask volumes, display mapping.

>>> from workbench.io import scan, open_series, display   # doctest: +SKIP
>>> volume = open_series("series_folder/")               # doctest: +SKIP
>>> pixels = display.render(volume[0].values, volume.attrs)  # doctest: +SKIP
"""

from __future__ import annotations

from workbench.io import display
from workbench.io.catalog import Catalog, Patient, Series, Skipped, Study, scan
from workbench.io.errors import (
    DicomIOError,
    InconsistentSeriesError,
    InvalidDicomError,
    MissingCodecError,
    PixelDataError,
    UnsupportedTransferSyntaxError,
)
from workbench.io.series import open_series
from workbench.io.sources import DicomFile
from workbench.io.study import open_study

__all__ = [
    "Catalog",
    "DicomFile",
    "DicomIOError",
    "InconsistentSeriesError",
    "InvalidDicomError",
    "MissingCodecError",
    "Patient",
    "PixelDataError",
    "Series",
    "Skipped",
    "Study",
    "UnsupportedTransferSyntaxError",
    "display",
    "open_series",
    "open_study",
    "scan",
]
