"""Fixtures shared by every test folder: data locations and session-wide real peers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.peers import OrthancPeer, require_tool, start_orthanc

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_DATA = REPO / "data" / "sample"
ARTIFACTS = REPO / "test-artifacts"
#: Headless in a container, and nothing phoning home (the machine has no network).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session", autouse=True)
def state_dir(tmp_path_factory) -> Path:
    """Where viewers keep presentation states during the tests (kernels, JupyterLab and Voilà
    started by the tests inherit it): never the user's own state folder, never ``data/``."""
    folder = tmp_path_factory.mktemp("workbench-states")
    previous = os.environ.get("WORKBENCH_STATE_DIR")
    os.environ["WORKBENCH_STATE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("WORKBENCH_STATE_DIR", None)
    else:
        os.environ["WORKBENCH_STATE_DIR"] = previous


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


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright, one for the whole session.

    Shared by the JupyterLab and Voilà tests: Playwright's sync API allows one running
    instance per thread. ``playwright install`` is not needed.
    """
    chromium = require_tool("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()
