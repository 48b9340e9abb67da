"""Run the demo: the PACS (index + REST + DICOM node) with the sample data, and JupyterLab.

``make demo`` runs this after setting up ``.venv``. It

1. imports ``data/sample/`` into a PACS whose state lives in ``var/demo/`` (skipped when the
   store already holds it, so a second run starts at once),
2. starts ``workbench serve`` on loopback,
3. starts JupyterLab on ``notebooks/01-quickstart.ipynb``,

prints both URLs and waits. Ctrl-C (or SIGTERM) stops both servers: each runs in its own
process group, which gets SIGTERM and, if still alive after a grace period, SIGKILL.

Ports come from the options below or the environment (``WORKBENCH_DEMO_HTTP_PORT``,
``WORKBENCH_DEMO_DICOM_PORT``, ``WORKBENCH_DEMO_LAB_PORT``); ``0`` picks a free port.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
NOTEBOOK = "notebooks/01-quickstart.ipynb"
#: Seconds a server gets to stop after SIGTERM before it is killed.
GRACE = 10.0
#: Seconds to wait for a server to answer after starting it.
STARTUP_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port(value: int) -> int:
    return value if value else _free_port()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="Start the workbench demo (PACS + JupyterLab).")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(env("WORKBENCH_DEMO_DIR", REPO / "var" / "demo")),
        help="where the demo PACS keeps its files and index (default var/demo)",
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=int(env("WORKBENCH_DEMO_HTTP_PORT", "8042")),
        help="REST port of the PACS (default 8042; 0 picks a free port)",
    )
    parser.add_argument(
        "--dicom-port",
        type=int,
        default=int(env("WORKBENCH_DEMO_DICOM_PORT", "4242")),
        help="DICOM port of the PACS (default 4242; 0 picks a free port)",
    )
    parser.add_argument(
        "--lab-port",
        type=int,
        default=int(env("WORKBENCH_DEMO_LAB_PORT", "8888")),
        help="JupyterLab port (default 8888; 0 picks a free port)",
    )
    parser.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open a web browser (for servers and tests)",
    )
    return parser.parse_args(argv)


def import_sample_data(storage: Path) -> None:
    """Import the vendored sample data once; later runs find it in the index and skip."""
    from workbench.pacs import Config, Index

    # A few sample files carry over-long short strings exactly as their scanner wrote them.
    warnings.filterwarnings("ignore", message="The value length")
    index = Index(Config(StorageDirectory=str(storage)))
    try:
        stored = index.statistics()["CountInstances"]
        if stored:
            print(f"demo: {storage} already holds {stored} instances; not importing again")
            return
        print(f"demo: importing {SAMPLE.relative_to(REPO)} into {storage}")
        summary = index.import_path(SAMPLE, progress=sys.stdout.isatty())
        print(
            f"demo: {summary.stored} instances stored, {len(summary.errors)} other files "
            "(README, MANIFEST, licenses) skipped"
        )
    finally:
        index.close()


def _start(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server in its own process group so it can be stopped with its children."""
    out = open(log, "ab")  # noqa: SIM115 - the child keeps it; closed when we exit
    return subprocess.Popen(
        command,
        cwd=REPO,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


def _wait_http(url: str, process: subprocess.Popen, name: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with status {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise RuntimeError(f"{name} did not answer on {url} within {STARTUP_TIMEOUT:.0f} s; see {log}")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after the grace period."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(GRACE)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # Children that outlived their leader (kernels) are still in the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    state = args.state_dir.resolve()
    storage = state / "storage"
    state.mkdir(parents=True, exist_ok=True)
    import_sample_data(storage)

    http_port, dicom_port, lab_port = (
        _port(args.http_port),
        _port(args.dicom_port),
        _port(args.lab_port),
    )
    pacs_url = f"http://127.0.0.1:{http_port}"
    token = secrets.token_hex(16)
    lab_url = f"http://127.0.0.1:{lab_port}/lab/tree/{NOTEBOOK}?token={token}"
    # Notebooks find the demo PACS through this (see notebooks/01-quickstart).
    env = {**os.environ, "WORKBENCH_PACS_URL": pacs_url}

    children: list[subprocess.Popen] = []
    stopping = threading.Event()

    def on_signal(signum: int, _frame) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        pacs_log = state / "pacs.log"
        children.append(
            _start(
                [
                    sys.executable,
                    "-m",
                    "workbench.cli",
                    "serve",
                    "--storage",
                    str(storage),
                    "--http-port",
                    str(http_port),
                    "--dicom-port",
                    str(dicom_port),
                    "--aet",
                    "WORKBENCH",
                ],
                pacs_log,
            )
        )
        _wait_http(pacs_url + "/system", children[-1], "workbench serve", pacs_log)

        lab_log = state / "jupyterlab.log"
        lab = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--ip=127.0.0.1",
            f"--port={lab_port}",
            "--port-retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={REPO}",
            f"--LabApp.default_url=/lab/tree/{NOTEBOOK}",
        ]
        if args.no_browser:
            lab.append("--no-browser")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Containers (Docker, CI runners) often run as root; JupyterLab refuses without this.
            lab.append("--allow-root")
        children.append(_start(lab, lab_log, env))
        _wait_http(
            f"http://127.0.0.1:{lab_port}/api/status?token={token}",
            children[-1],
            "JupyterLab",
            lab_log,
        )

        print(f"PACS REST API   {pacs_url}   (OpenAPI docs: {pacs_url}/docs)")
        print(f"PACS DICOM      WORKBENCH@127.0.0.1:{dicom_port}")
        print(f"JupyterLab      {lab_url}")
        print(f"Logs in {state}. Press Ctrl-C to stop.", flush=True)
        while not stopping.is_set():
            for child in children:
                if child.poll() is not None:
                    print(
                        f"demo: a server stopped unexpectedly (status {child.returncode}); "
                        f"see the logs in {state}",
                        file=sys.stderr,
                    )
                    stopping.set()
            stopping.wait(0.5)
    except RuntimeError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    finally:
        # Ctrl-C again while stopping should not leave servers behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in reversed(children):
            stop(child)
        if children:
            print("demo: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
