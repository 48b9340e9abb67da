"""Voilà serving the teaching case (the browser is the session-wide one in tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.peers import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Voila:
    url: str
    process: subprocess.Popen
    log: Path


@pytest.fixture(scope="session")
def voila_teaching_case(tmp_path_factory) -> Voila:
    """``voila notebooks/03-teaching-case.ipynb`` on a free loopback port, as a teacher runs it."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("voila") / "voila.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "voila", "notebooks/03-teaching-case.ipynb", "--no-browser",
         f"--port={port}", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"Voilà exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(url + "/voila/static/voila.js", timeout=2).status_code < 500:
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"Voilà did not answer within 90 s:\n{log_path.read_text()}")
        time.sleep(0.3)
    yield Voila(url, process, log_path)
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
