"""Fixtures for the io tests: damaged and rewritten copies of real files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest


@pytest.fixture
def ct_series(shared_data: Path) -> Path:
    """The 28-slice Philips CT series folder."""
    return shared_data / "series_ct_philips_ingenuity_5mm"


@pytest.fixture
def ct_copy(ct_series: Path, tmp_path: Path) -> Path:
    """A private copy of six adjacent CT slices, for tests that damage or rewrite files."""
    folder = tmp_path / "ct"
    folder.mkdir()

    def instance_number(path: Path) -> int:
        return int(pydicom.dcmread(path, stop_before_pixels=True).InstanceNumber)

    for path in sorted(ct_series.iterdir(), key=instance_number)[:6]:
        shutil.copy(path, folder / path.name)
    return folder
