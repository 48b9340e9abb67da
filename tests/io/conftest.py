"""Fixtures for the io tests: damaged and rewritten copies of real files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def ct_series(shared_data: Path) -> Path:
    """The 28-slice Philips CT series folder."""
    return shared_data / "series_ct_philips_ingenuity_5mm"


@pytest.fixture
def ct_copy(ct_series: Path, tmp_path: Path) -> Path:
    """A private copy of six CT slices, for tests that damage or rewrite files."""
    folder = tmp_path / "ct"
    folder.mkdir()
    for path in sorted(ct_series.iterdir())[:6]:
        shutil.copy(path, folder / path.name)
    return folder
