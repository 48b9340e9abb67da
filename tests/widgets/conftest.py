"""Real series for the viewer model tests, opened through workbench.io like users do."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from workbench.widgets.cache import FrameCache


@pytest.fixture(scope="session")
def ct_dir(sample_data: Path) -> Path:
    """28 axial 512² CT slices (Philips), PixelSpacing 0.451 mm."""
    return sample_data / "series_ct_philips_ingenuity_5mm"


@pytest.fixture(scope="session")
def ct_stack(ct_dir: Path):
    from workbench.io import open_series

    return open_series(ct_dir)


@pytest.fixture(scope="session")
def ct_first_slice(ct_stack, ct_dir: Path) -> pydicom.Dataset:
    """The dataset shown as frame 0 of ``ct_stack``."""
    uid = str(ct_stack.coords["sop_instance_uid"].values[0])
    for path in sorted(ct_dir.iterdir()):
        ds = pydicom.dcmread(path)
        if ds.SOPInstanceUID == uid:
            return ds
    raise AssertionError(f"no file with SOP Instance UID {uid}")


@pytest.fixture()
def cache() -> FrameCache:
    frames = FrameCache(max_bytes=64 * 1024 * 1024)
    yield frames
    frames.close()
