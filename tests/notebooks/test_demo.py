"""``make demo``: scripts/demo.py brings up the PACS with the sample data and JupyterLab, and
Ctrl-C takes everything down again."""

from __future__ import annotations

import csv
import importlib.util
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pydicom
import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "scripts" / "demo.py"


def _load_demo_module():
    spec = importlib.util.spec_from_file_location("workbench_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sample_instance_count(sample_data: Path) -> int:
    """Distinct SOP Instance UIDs among the vendored files (transcodes share one)."""
    with open(sample_data / "MANIFEST.tsv", newline="") as handle:
        paths = [row["relative_path"] for row in csv.DictReader(handle, delimiter="\t")]
    return len(
        {pydicom.dcmread(sample_data / p, stop_before_pixels=True).SOPInstanceUID for p in paths}
    )


def _read_until(process: subprocess.Popen, marker: str, timeout: float) -> str:
    """Collect the demo's output until ``marker`` appears (or fail with what it printed)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        lines.append(line)
        if marker in line:
            return "".join(lines)
    process.kill()
    pytest.fail(f"the demo did not print {marker!r}; it printed:\n{''.join(lines)}")


@pytest.mark.slow
def test_demo_serves_sample_data_and_jupyterlab_and_stops_on_ctrl_c(tmp_path, sample_data):
    state = tmp_path / "demo"
    process = subprocess.Popen(
        [
            sys.executable,
            str(DEMO),
            "--no-browser",
            "--state-dir",
            str(state),
            "--http-port",
            "0",
            "--dicom-port",
            "0",
            "--lab-port",
            "0",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = _read_until(process, "Press Ctrl-C", timeout=180)
        pacs_url = re.search(r"PACS REST API\s+(\S+)", output).group(1)
        lab_url = re.search(r"JupyterLab\s+(\S+)", output).group(1)
        assert "127.0.0.1" in pacs_url and "127.0.0.1" in lab_url  # loopback only

        stats = requests.get(pacs_url + "/statistics", timeout=10).json()
        assert stats["CountInstances"] == _sample_instance_count(sample_data)
        # The CT head and sagittal MR series are there and queryable.
        ct = requests.post(
            pacs_url + "/tools/find",
            timeout=10,
            json={
                "Level": "Series",
                "Query": {"Modality": "CT", "SeriesDescription": "*"},
                "Expand": True,
            },
        ).json()
        assert any(len(series["Instances"]) == 28 for series in ct)

        lab = requests.get(lab_url, timeout=30)
        assert lab.status_code == 200 and "JupyterLab" in lab.text
        token = re.search(r"token=(\w+)", lab_url).group(1)
        contents = requests.get(
            lab_url.split("/lab/")[0] + "/api/contents/notebooks",
            params={"token": token},
            timeout=10,
        ).json()
        assert "01-quickstart.ipynb" in {item["name"] for item in contents["content"]}

        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 2
        # Notebooks in this JupyterLab are told where the demo PACS is.
        lab_server = next(c for c in children if "jupyterlab" in " ".join(c.cmdline()))
        assert lab_server.environ()["WORKBENCH_PACS_URL"] == pacs_url
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert "demo: stopped" in process.stdout.read()
        _, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, f"left running after Ctrl-C: {[p.cmdline() for p in alive]}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # A second start finds the data already imported and does not import it again.
    demo = _load_demo_module()
    import io
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        demo.import_sample_data(state / "storage")
    assert "already holds" in out.getvalue()
