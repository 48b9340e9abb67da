"""A real JupyterLab and a real headless Chromium, started once per test session.

Fixtures:

- ``jupyter_lab``: a JupyterLab server (the project's own venv, so the kernel imports
  ``workbench``) on a free loopback port, serving a temporary root folder.
- ``browser`` (from ``tests/conftest.py``, shared with the Voilà tests): Debian's Chromium
  driven by Playwright.
- ``lab_page``: a fresh browser page per test, closed afterwards (``new_page(browser)`` for
  pages shared by a module's tests).
- ``run_notebook(page, name, cells)``: writes a notebook into the server's root, opens it,
  runs all cells and waits until every cell has run, reporting any error output
  (``open_and_run`` is the same as a plain function).
- ``wait_for_viewer(page)``: waits until a viewer's canvas and status line are on screen.
- ``draw_length(page, canvas)``: draws a length with the Length tool and waits until it is
  listed as done.

Screenshots go to the ``artifacts_dir`` fixture's folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.peers import free_port, require_tool
from tests.servers import serving

REPO = Path(__file__).resolve().parents[2]


@dataclass
class JupyterLab:
    url: str
    token: str
    root: Path
    process: subprocess.Popen

    def lab_url(self, path: str) -> str:
        """The notebook alone in a fresh workspace (JupyterLab would otherwise reopen the
        notebooks of earlier tests beside it)."""
        workspace = secrets.token_hex(4)
        return f"{self.url}/lab/workspaces/{workspace}/tree/{path}?token={self.token}&reset"


def _jupyter_executable() -> str:
    candidate = Path(sys.executable).with_name("jupyter")
    return str(candidate) if candidate.exists() else require_tool("jupyter")


@contextlib.contextmanager
def running_jupyter_lab(base: Path) -> Iterator[JupyterLab]:
    """A JupyterLab bound to 127.0.0.1 with a random token, its folders under ``base``."""
    root, config, runtime = base / "lab-root", base / "lab-config", base / "lab-runtime"
    for folder in (root, config / "labconfig", runtime):
        folder.mkdir(parents=True, exist_ok=True)
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    token = secrets.token_hex(16)
    port = free_port()
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_RUNTIME_DIR=str(runtime),
        # The kernel imports workbench from this checkout.
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
        PYTHONWARNINGS="ignore",
    )
    url = f"http://127.0.0.1:{port}"
    command = [
        _jupyter_executable(), "lab", "--no-browser", f"--port={port}",
        "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.user_settings_dir={config / 'user-settings'}",
        f"--LabApp.workspaces_dir={config / 'workspaces'}",
        "--LabApp.extension_manager=readonly",
        # Containers and CI often run as root; the server is still loopback-only.
        *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
    ]  # fmt: skip
    with serving(
        command,
        name="JupyterLab",
        ready=lambda: requests.get(f"{url}/api/status?token={token}", timeout=2).ok,
        log=base / "jupyter-lab.log",
        cwd=root,
        env=env,
    ) as process:
        yield JupyterLab(url, token, root, process)


@pytest.fixture(scope="session")
def jupyter_lab(tmp_path_factory, state_dir) -> JupyterLab:
    """One JupyterLab for the session (its kernels keep presentation states in the session's
    ``state_dir``, which they inherit through the environment)."""
    with running_jupyter_lab(tmp_path_factory.mktemp("lab")) as lab:
        yield lab


def new_page(browser):
    """A page in a new browser context (1400×1000, device scale 1); close its ``.context``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page


@pytest.fixture()
def lab_page(browser, jupyter_lab):
    """A new page for one test."""
    page = new_page(browser)
    yield page
    page.context.close()


def write_notebook(root: Path, name: str, cells: list[str]) -> Path:
    """Write a notebook of code cells into the server's root folder."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}  # fmt: skip
    path = root / name
    nbformat.write(notebook, path)
    return path


def open_and_run(page, lab: JupyterLab, name: str, cells: list[str], artifacts: Path,
                 timeout: float = 120.0):  # fmt: skip
    """Write a notebook, open it alone in JupyterLab, run all cells, fail on any error."""
    write_notebook(lab.root, name, cells)
    page.goto(lab.lab_url(name))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # Wait for the kernel before running, so no cell is queued against a starting one.
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=60_000)  # fmt: skip
    prompts = page.locator(".jp-InputArea-prompt")
    deadline = time.monotonic() + timeout
    for attempt in range(3):
        dismiss_dialogs(page, artifacts, name)
        # A click can land while the page is still settling, or a dialog come up in
        # between; check the run started, else try again.
        try:
            page.locator(".jp-Notebook").first.click(timeout=15_000)
            page.get_by_role("menuitem", name="Run", exact=True).click(timeout=15_000)
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click(timeout=15_000)
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-InputArea-prompt')]"
                ".some(p => p.textContent.trim() !== '[ ]:')",
                timeout=15_000,
            )
            break
        except Exception:
            if attempt == 2:
                page.screenshot(path=str(artifacts / f"{name}-not-started.png"))
                raise
            page.keyboard.press("Escape")
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    stalled_since = None
    while True:
        texts = prompts.all_inner_texts()
        if texts and all(t.strip() not in ("[ ]:", "[*]:", "") for t in texts):
            break
        # JupyterLab now and then runs the first cells of "Run All" and never sends the
        # rest (the kernel idle, cells below still "[ ]:"): run those once they stay so.
        stalled = "[*]:" not in [t.strip() for t in texts] and idle.count() > 0
        if not stalled:
            stalled_since = None
        elif stalled_since is None:
            stalled_since = time.monotonic()
        elif time.monotonic() - stalled_since > 5:
            print(f"{name}: cells left unrun by Run All ({texts}); running them")
            unrun = [i for i, t in enumerate(texts) if t.strip() in ("[ ]:", "")]
            page.locator(".jp-Notebook .jp-Cell").nth(unrun[0]).click()
            page.get_by_role("menuitem", name="Run", exact=True).click(timeout=15_000)
            page.get_by_role("menuitem", name="Run Selected Cell and All Below",
                             exact=True).click(timeout=15_000)  # fmt: skip
            stalled_since = None
        if time.monotonic() > deadline:
            page.screenshot(path=str(artifacts / f"{name}-timeout.png"))
            raise AssertionError(f"cells still running after {timeout} s: {texts}")
        time.sleep(0.25)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    tracebacks = [t for t in errors.all_inner_texts() if "Error" in t or "Traceback" in t]
    assert not tracebacks, "a cell failed:\n" + "\n".join(tracebacks)
    return page


def dismiss_dialogs(page, artifacts: Path, name: str) -> list[str]:
    """Close the JupyterLab dialogs over the page (on a loaded machine the server may ask
    something before the notebook has settled); their texts are printed and kept in
    ``artifacts`` so that a failure later shows what was asked."""
    texts = []
    dialogs = page.locator(".jp-Dialog")
    while dialogs.count():
        text = dialogs.first.inner_text()
        texts.append(text)
        print(f"JupyterLab dialog over {name}: {text!r}")
        (artifacts / f"{name}-dialog-{len(texts)}.txt").write_text(text)
        page.keyboard.press("Escape")
        dialogs.first.wait_for(state="detached", timeout=15_000)
    return texts


@pytest.fixture()
def run_notebook(jupyter_lab, artifacts_dir):
    """``run_notebook(page, name, cells, timeout=120)``: open a new notebook and run it all."""

    def run(page, name: str, cells: list[str], timeout: float = 120.0):
        return open_and_run(page, jupyter_lab, name, cells, artifacts_dir, timeout)

    return run


def wait_for_viewer(page, index: int = 0):
    """Wait until viewport ``index`` of the first viewer shows an image; return the surface
    that takes its pointer events (the same box as its canvas)."""
    status = page.locator(".wb-viewport-status").nth(index)
    status.wait_for()
    page.wait_for_function(
        "([i]) => { const s = document.querySelectorAll('.wb-viewport-status')[i];"
        " return s && /Im \\d+\\//.test(s.textContent); }",
        arg=[index],
    )
    return page.locator(".wb-viewport").nth(index).locator(".wb-surface")


#: The pixels of every canvas layer of a viewport, as PNG data URLs.
_CANVAS_STATE = "(viewport) => [...viewport.querySelectorAll('canvas')].map(c => c.toDataURL())"
#: True once the layers differ from ``before`` and read the same at two polls in a row.
_CANVAS_SETTLED = """([viewport, before]) => {
    const seen = (window.wbLastCanvas ||= new WeakMap());
    const now = [...viewport.querySelectorAll('canvas')].map(c => c.toDataURL()).join('|');
    const settled = now !== before && now === seen.get(viewport);
    seen.set(viewport, now);
    return settled;
}"""


def canvas_state(page, index: int = 0) -> str:
    """What viewport ``index`` of the first viewer shows now, all canvas layers together."""
    return "|".join(page.locator(".wb-viewport").nth(index).evaluate(_CANVAS_STATE))


def wait_for_canvas(page, index: int = 0, *, changed_from: str | None = None) -> str:
    """Wait until viewport ``index`` has finished drawing; return what it shows.

    With ``changed_from`` (a :func:`canvas_state` taken before an action) the canvas must
    first differ from it; either way it must then read the same at two polls in a row, so
    a picture still arriving in pieces is not taken for the result.
    """
    viewport = page.locator(".wb-viewport").nth(index).element_handle()
    viewport.evaluate("(viewport) => window.wbLastCanvas?.delete(viewport)")
    page.wait_for_function(_CANVAS_SETTLED, arg=[viewport, changed_from], polling=200)
    return canvas_state(page, index)


def status_text(page, index: int = 0) -> str:
    return page.locator(".wb-viewport-status").nth(index).inner_text()


def draw_length(page, canvas):
    """Draw a 200-pixel horizontal length on ``canvas``; return its finished list entry."""
    page.locator(".wb-tools button[title^='Length']").click()
    box = canvas.bounding_box()
    x0, y0 = box["x"] + 100, box["y"] + 300
    page.mouse.move(x0, y0)
    page.mouse.down()
    for step in range(1, 9):
        page.mouse.move(x0 + 25 * step, y0)
    page.mouse.up()
    item = page.locator(".wb-annotations li[data-kind='length'][data-state='done']")
    item.wait_for()
    return item
