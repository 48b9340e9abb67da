"""Fixtures shared by every test folder: data locations and session-wide real peers."""

from __future__ import annotations

import inspect
import os
import types
from pathlib import Path

import pytest

from tests.data import REPO, SAMPLE_DATA, SHARED_DATA, data_roots
from tests.peers import OrthancPeer, PostgresPeer, require_tool, start_orthanc, start_postgres

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


#: Fixtures that drive JupyterLab or Voilà in Chromium: their users are ``browser`` tests.
BROWSER_FIXTURES = {"browser", "jupyter_lab", "lab_page", "run_notebook", "voila_teaching_case"}
#: Calls that start or look up an external program (DCMTK, dicom3tools, Orthanc, PostgreSQL,
#: OHIF).
PEER_CALLS = {"require_tool", "start_orthanc", "start_postgres", "require_ohif"}


def _code_names(code: types.CodeType) -> set[str]:
    """Global names ``code`` and the functions nested in it refer to."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _code_names(constant)
    return names


def _calls_a_peer(function, seen: set) -> bool:
    """Whether ``function``, or a test helper it calls, starts or looks up a peer program.

    Follows calls into functions defined under ``tests`` (helpers, fixtures' helpers), so a
    new test that reaches DCMTK through a shared helper is marked like the others.
    """
    function = inspect.unwrap(function)
    code = getattr(function, "__code__", None)
    if code is None or code in seen:
        return False
    seen.add(code)
    names = _code_names(code)
    if names & PEER_CALLS:
        return True
    module_globals = getattr(function, "__globals__", {})
    for name in names:
        called = module_globals.get(name)
        is_test_helper = inspect.isfunction(called) and called.__module__.startswith("tests")
        if is_test_helper and _calls_a_peer(called, seen):
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run tests over "every real file" on each corpus present: the sample, the wider one."""
    if "data_root" in metafunc.fixturenames:
        roots = data_roots()
        metafunc.parametrize("data_root", list(roots.values()), ids=list(roots), scope="session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``browser`` and ``peers`` tests by what they use, so no test is left unmarked.

    ``browser``: a test using a JupyterLab/Voilà/Chromium fixture. ``peers``: a test whose
    body, helpers or fixtures start Orthanc or look up an external program.

    Browser tests run last: while the session's Chromium is open, Playwright's sync API keeps
    its asyncio loop marked as running in the main thread, so a test that runs a loop of its
    own (cine, the frame pipeline) would fail with "asyncio.run() cannot be called from a
    running event loop" if it came after the first browser test.
    """
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
            continue
        if item.get_closest_marker("peers") or not isinstance(item, pytest.Function):
            continue
        seen: set = set()
        definitions = item._fixtureinfo.name2fixturedefs
        functions = [item.function] + [
            definitions[name][-1].func for name in fixtures if name in definitions
        ]
        if any(_calls_a_peer(function, seen) for function in functions):
            item.add_marker(pytest.mark.peers)
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


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
    """One real Orthanc for the whole session; tests call ``orthanc.clear()`` as needed.

    Its DICOMweb plugin runs, with no DICOMweb server configured: tests register ours with
    ``orthanc.add_dicomweb_server``.
    """
    peer = start_orthanc(tmp_path_factory.mktemp("orthanc"), dicomweb_servers={})
    yield peer
    peer.stop()


@pytest.fixture(scope="session")
def postgres() -> PostgresPeer:
    """One real PostgreSQL cluster (Debian ``postgresql``) for the whole session, in a
    temporary folder; each test takes a new database of it (``postgres.new_database()``)."""
    peer = start_postgres()
    yield peer
    peer.remove()


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
