"""Open every image series of a study at once."""

from __future__ import annotations

import xarray as xr

from workbench.io.catalog import Catalog, Series, scan
from workbench.io.dicomweb import is_dicomweb_url
from workbench.io.errors import InconsistentSeriesError
from workbench.io.series import open_series
from workbench.io.sources import Source


def open_study(
    source: Source | Catalog,
    study_uid: str | None = None,
    *,
    raw: bool = False,
    progress: bool = True,
    dicomweb=None,
) -> dict[str, xr.DataArray]:
    """Open each image series of one study as a lazy DataArray.

    Parameters
    ----------
    source : path, list of paths, ZIP archive, Catalog, or DICOMweb study URL
        Where the study's files are (or a catalog already scanned), or
        ``https://host/dicom-web/studies/{study}``: then one WADO-RS metadata request
        describes every series, and frames are fetched when computed.
    study_uid : str, optional
        Which study to open when ``source`` holds several.
    raw : bool
        Stored values instead of modality values (see :func:`~workbench.io.open_series`).
    progress : bool
        Show a progress bar while scanning headers.
    dicomweb : DicomWeb, requests.Session or dicomweb_client.DICOMwebClient, optional
        How to reach the server of a study URL (see :class:`~workbench.io.dicomweb.DicomWeb`).

    Returns
    -------
    dict[str, xarray.DataArray]
        Keyed by Series Instance UID, in (Series Number, UID) order. Series of non-image
        objects (presentation states, reports, segmentations; ``catalog.objects``) are left
        out; image series whose files cannot form one array raise.

    Raises
    ------
    InconsistentSeriesError
        ``source`` holds several studies and ``study_uid`` is not given (the message lists
        them), or no study has ``study_uid``.
    """
    if is_dicomweb_url(source):
        from workbench.io.webseries import open_web_study

        return open_web_study(source, raw=raw, dicomweb=dicomweb)
    catalog = source if isinstance(source, Catalog) else scan(source, progress=progress)
    # A study of non-image objects alone (e.g. a presentation state whose images are
    # elsewhere) is nothing to open.
    studies = [s for s in catalog.studies if any(x.is_image for x in s.series.values())]
    if study_uid is not None:
        studies = [s for s in studies if s.uid == study_uid]
        if not studies:
            raise InconsistentSeriesError(
                f"no study {study_uid!r}; found: {_list_studies(catalog)}"
            )
    elif len(studies) > 1:
        raise InconsistentSeriesError(
            f"{len(studies)} studies found; pass study_uid= to pick one of: "
            f"{_list_studies(catalog)}"
        )
    elif not studies:
        others = f"; found only {catalog.describe_series()}" if catalog.objects else ""
        raise InconsistentSeriesError(f"no DICOM study with images found{others}")
    series: list[Series] = sorted(
        studies[0].series.values(),
        key=lambda s: (s.number if s.number is not None else 1 << 31, s.uid),
    )
    return {s.uid: open_series(s, raw=raw) for s in series if s.is_image}


def _list_studies(catalog: Catalog) -> str:
    return "; ".join(
        f"{s.uid} ({s.date or 'no date'}, {s.description or 'no description'!r}, "
        f"{sum(x.is_image for x in s.series.values())} image series)"
        for s in catalog.studies
    )
