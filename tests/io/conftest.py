"""Fixtures for the io tests: damaged and rewritten copies of real files."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest


@pytest.fixture
def ct_series(sample_data: Path) -> Path:
    """The 28-slice Philips CT series folder (JPEG 2000 lossless in the sample)."""
    return sample_data / "series_ct_philips_ingenuity_5mm"


@pytest.fixture
def ct_copy(ct_series: Path, tmp_path: Path) -> Path:
    """A private copy of six adjacent CT slices, for tests that damage or rewrite files.

    The copies are uncompressed (Explicit VR Little Endian, as the scanner wrote them), so a
    test can cut or rewrite the pixel data at known offsets.
    """
    folder = tmp_path / "ct"
    folder.mkdir()

    def instance_number(path: Path) -> int:
        return int(pydicom.dcmread(path, stop_before_pixels=True).InstanceNumber)

    for path in sorted(ct_series.iterdir(), key=instance_number)[:6]:
        dataset = pydicom.dcmread(path)
        dataset.decompress()
        dataset.save_as(folder / path.name, enforce_file_format=True)
    return folder
