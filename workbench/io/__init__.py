"""DICOM in and out: header catalogs, lazy xarray/dask volumes, display mapping.

Catalog a folder, a ZIP or a list of files from their headers alone, then open a series as a
lazy array (one dask chunk per frame; nothing is decoded until asked)::

    from workbench.io import scan, open_series, display

    catalog = scan("exports/")             # catalog.to_dataframe(), catalog.skipped
    ct = open_series(catalog.series[0])    # or open_series("folder/", series_uid=...)
    ct.sel(frame=ct.position > 700)        # frames sorted along the slice normal, in mm
    hu = ct[10].values                     # HU (modality values), int16
    pixels = display.render(hu, display.frame_attrs(ct, 10))   # uint8, ready to draw
    ct.attrs["affine"]                     # (x, y, frame, 1) -> patient LPS mm
    ct.to_netcdf("ct.nc")                  # or .to_zarr(): values, coords and attrs

``xr.open_dataset(path, engine="dicom")`` opens the same arrays through xarray.

A DICOMweb server works the same way: ``scan("https://host/dicom-web", Modality="CT")``
searches it (QIDO-RS), ``open_series("https://host/dicom-web/studies/{s}/series/{r}",
dicomweb=DicomWeb(token=...))`` builds the array from one metadata request, and each chunk
fetches its frame when computed (:mod:`workbench.io.webseries`). Errors are
:class:`DicomIOError` subclasses naming the file and what was wrong.

The OpenJPEG binding holds the GIL, so JPEG 2000 frames decode about one at a time under
dask's default threads; a ``dask.distributed`` cluster of worker processes spreads them over
the cores (the array pickles as file names, and workers read the files themselves).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.io import display
    from workbench.io.catalog import Catalog, Patient, Series, Skipped, Study, scan
    from workbench.io.dicomweb import DicomWeb, DicomWebError
    from workbench.io.errors import (
        DicomIOError,
        InconsistentSeriesError,
        InvalidDicomError,
        MissingCodecError,
        NotAnImageError,
        PixelDataError,
        UnsupportedTransferSyntaxError,
    )
    from workbench.io.framecache import FrameCache
    from workbench.io.series import open_series
    from workbench.io.sources import DicomFile
    from workbench.io.study import open_study

# Where each public name lives. They are imported on first use, so that a module that only
# reads headers (the PACS index ingesting files) does not import xarray, dask and pandas.
_HOMES = {
    "display": "workbench.io.display",
    **dict.fromkeys(
        ("Catalog", "Patient", "Series", "Skipped", "Study", "scan"), "workbench.io.catalog"
    ),
    **dict.fromkeys(
        (
            "DicomIOError",
            "InconsistentSeriesError",
            "InvalidDicomError",
            "MissingCodecError",
            "NotAnImageError",
            "PixelDataError",
            "UnsupportedTransferSyntaxError",
        ),
        "workbench.io.errors",
    ),
    **dict.fromkeys(("DicomWeb", "DicomWebError"), "workbench.io.dicomweb"),
    "FrameCache": "workbench.io.framecache",
    "open_series": "workbench.io.series",
    "DicomFile": "workbench.io.sources",
    "open_study": "workbench.io.study",
}


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(home)
    value = module if name == "display" else getattr(module, name)
    globals()[name] = value
    return value


__all__ = [
    "Catalog",
    "DicomFile",
    "DicomIOError",
    "DicomWeb",
    "DicomWebError",
    "FrameCache",
    "InconsistentSeriesError",
    "InvalidDicomError",
    "MissingCodecError",
    "NotAnImageError",
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
