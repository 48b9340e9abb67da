"""xarray backend: ``xr.open_dataset(path_or_dicomweb_series_url, engine="dicom")``.

Registered under the ``xarray.backends`` entry point as ``dicom``. The pixel variable wraps
the same lazy :class:`~workbench.io.series.FrameStack` as :func:`~workbench.io.open_series`;
pass ``chunks={}`` to get dask with one chunk per frame (its preferred chunks).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import xarray as xr
from xarray.backends import BackendEntrypoint
from xarray.core import indexing

from workbench.io.dicomweb import is_dicomweb_url
from workbench.io.series import build_series

_EXTENSIONS = (".dcm", ".dicom", ".dic")


class DicomBackendEntrypoint(BackendEntrypoint):
    """Open a DICOM file, folder or ZIP archive as a Dataset with one ``pixels`` variable.

    Extra keyword arguments to :func:`xarray.open_dataset`: ``series_uid`` (pick one series
    when the source holds several), ``raw`` (stored values instead of modality values) and
    ``dicomweb`` (how to reach the server when the source is a DICOMweb series URL).
    """

    description = "Open DICOM series (files, folders, ZIP) as lazy frame stacks"
    url = "https://dicom.nema.org/medical/dicom/current/output/html/part10.html"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "series_uid",
        "raw",
        "dicomweb",
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        series_uid: str | None = None,
        raw: bool = False,
        dicomweb=None,
    ) -> xr.Dataset:
        parts = build_series(filename_or_obj, series_uid, raw=raw, dicomweb=dicomweb)
        data = indexing.LazilyIndexedArray(parts.stack)
        encoding = {"preferred_chunks": {"frame": 1}, "dtype": parts.stack.dtype, **parts.encoding}
        variable = xr.Variable(parts.dims, data, attrs=parts.attrs, encoding=encoding)
        dataset = xr.Dataset({"pixels": variable}, coords=parts.coords, attrs=parts.attrs)
        dataset["pixels"].attrs["long_name"] = parts.name
        if drop_variables:
            drop = [drop_variables] if isinstance(drop_variables, str) else drop_variables
            dataset = dataset.drop_vars(list(drop), errors="ignore")
        return dataset

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        if not isinstance(filename_or_obj, (str, os.PathLike)):
            return False
        if is_dicomweb_url(filename_or_obj):
            return "/studies/" in filename_or_obj and "/series/" in filename_or_obj
        path = os.fspath(filename_or_obj)
        if os.path.isfile(path):
            try:
                with open(path, "rb") as fp:
                    fp.seek(128)
                    if fp.read(4) == b"DICM":
                        return True
            except OSError:
                return False
        return path.lower().endswith(_EXTENSIONS)
