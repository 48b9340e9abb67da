"""Independent reference decoding for the io tests: pydicom's own full-dataset path."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def manifest_rows() -> list[dict[str, str]]:
    """Rows of ``../shared/data/MANIFEST.tsv`` (empty when the data is absent)."""
    manifest = SHARED_DATA / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="", encoding="utf-8") as fp:
        return list(csv.DictReader(fp, delimiter="\t"))


def image_files() -> list[str]:
    """Relative paths of every manifest file that has pixel data."""
    return [row["relative_path"] for row in manifest_rows() if int(row["number_of_frames"]) > 0]


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
