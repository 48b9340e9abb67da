"""The referenced-image header a GSPS needs, made from what a lazy series knows of an image.

:func:`workbench.io.gsps.write` copies patient, study and pixel-module attributes from the
headers of the images a state refers to. When the image's own header is out of reach (a
volume handed to a viewer without its files), :func:`header_from_stack` makes one from the
array's ``attrs`` and per-frame coordinates.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from pydicom.dataset import Dataset

from workbench.io.presentation import ImageReference

_IDENTIFYING = ("PatientID", "PatientName", "StudyInstanceUID", "SeriesInstanceUID",
                "StudyDate", "StudyDescription", "Modality")  # fmt: skip


def frame_index(stack: xr.DataArray, ref: ImageReference) -> int | None:
    """Where an image (or one frame of a multi-frame image) sits in a stack, if it does."""
    coords = stack.coords
    if "sop_instance_uid" not in coords:
        return None
    match = coords["sop_instance_uid"].values == ref.sop_instance_uid
    if ref.frame_number is not None and "frame_number" in coords:
        match &= coords["frame_number"].values == ref.frame_number
    found = np.flatnonzero(match)
    return int(found[0]) if found.size else None


def header_from_stack(
    stack: xr.DataArray, ref: ImageReference, *, window: tuple[float, float] | None = None
) -> Dataset:
    """The identifying and pixel-module attributes of an image of ``stack``.

    Parameters
    ----------
    stack
        A series from :func:`workbench.io.open_series` (or a part of one).
    ref
        The image (and frame) in ``stack``.
    window
        ``(center, width)`` to record as the image's window, e.g. the one on screen.
    """
    attrs = stack.attrs
    ds = Dataset()
    for keyword in _IDENTIFYING:
        setattr(ds, keyword, str(attrs.get(keyword) or ""))
    ds.SOPClassUID = ref.sop_class_uid
    ds.SOPInstanceUID = ref.sop_instance_uid
    ds.Rows, ds.Columns = int(stack.sizes["y"]), int(stack.sizes["x"])
    ds.SamplesPerPixel = 3 if "channel" in stack.dims else 1
    photometric = attrs.get("StoredPhotometricInterpretation") or attrs.get(
        "PhotometricInterpretation"
    )
    if photometric:
        ds.PhotometricInterpretation = str(photometric)
    if attrs.get("PixelSpacing"):
        ds.PixelSpacing = [float(v) for v in attrs["PixelSpacing"]]
    coords = stack.coords
    if ref.frame_number is not None and "sop_instance_uid" in coords:
        uids = coords["sop_instance_uid"].values
        ds.NumberOfFrames = int(
            max(int(np.sum(uids == ref.sop_instance_uid)), int(attrs.get("NumberOfFrames") or 1))
        )
    index = frame_index(stack, ref)
    if index is not None and "rescale_slope" in coords and "rescale_intercept" in coords:
        slope, intercept = (
            float(coords[c].values[index]) for c in ("rescale_slope", "rescale_intercept")
        )
        if np.isfinite(slope) and np.isfinite(intercept):
            ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
            if attrs.get("RescaleType"):
                ds.RescaleType = str(attrs["RescaleType"])
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    return ds
