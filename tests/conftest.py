"""Fixtures shared by every test folder: data locations and session-wide real peers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers import OrthancPeer, start_orthanc

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_DATA = REPO / "data" / "sample"
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def sample_data() -> Path:
    """The few MB of real files vendored into the repo (always present)."""
    return SAMPLE_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full matrix of real files beside the checkout; skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present on this machine")
    return SHARED_DATA


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests keep screenshots and reports for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory) -> OrthancPeer:
    """One real Orthanc for the whole session; tests call ``orthanc.clear()`` as needed."""
    peer = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    yield peer
    peer.stop()
