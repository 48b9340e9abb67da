"""Independent reference decoding for the io tests: pydicom's own full-dataset path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut

from tests.data import data_roots, manifest_rows


def image_files(keep=lambda relative: True) -> list:
    """Every manifest file with pixel data, of each corpus present, as ``pytest.param`` paths.

    ``keep`` selects among the relative paths; ids read ``sample/<path>`` or ``shared/<path>``.
    """
    return [
        pytest.param(root / row["relative_path"], id=f"{name}/{row['relative_path']}")
        for name, root in data_roots().items()
        for row in manifest_rows(root)
        if int(row["number_of_frames"]) > 0 and keep(row["relative_path"])
    ]


def _per_frame_rescale(ds: pydicom.Dataset, n_frames: int) -> list[tuple[float, float]]:
    shared = ds.get("SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    out = []
    for i in range(n_frames):
        item = None
        if per_frame and "PixelValueTransformationSequence" in per_frame[i]:
            item = per_frame[i].PixelValueTransformationSequence[0]
        elif shared and "PixelValueTransformationSequence" in shared[0]:
            item = shared[0].PixelValueTransformationSequence[0]
        source = item if item is not None else ds
        out.append((float(source.get("RescaleSlope", 1)), float(source.get("RescaleIntercept", 0))))
    return out


def reference_frames(path: Path) -> np.ndarray:
    """All frames of ``path`` as pydicom decodes them, modality LUT applied to grayscale.

    Shape ``(frames, rows, columns[, samples])`` in file order.
    """
    ds = pydicom.dcmread(path)
    n_frames = int(ds.get("NumberOfFrames") or 1)
    pixels = ds.pixel_array
    if n_frames == 1:
        pixels = pixels[np.newaxis]
    photometric = ds.PhotometricInterpretation
    if ds.get("SamplesPerPixel", 1) > 1 or photometric == "PALETTE COLOR":
        return pixels
    if "PerFrameFunctionalGroupsSequence" in ds:
        rescale = _per_frame_rescale(ds, n_frames)
        return np.stack([p * s + i for p, (s, i) in zip(pixels, rescale, strict=True)])
    return apply_modality_lut(pixels, ds)
