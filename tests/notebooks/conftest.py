"""Voilà serving the teaching case (the browser is the session-wide one in tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.peers import free_port
from tests.servers import serving

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Voila:
    url: str
    process: subprocess.Popen
    log: Path


@pytest.fixture(scope="session")
def voila_teaching_case(tmp_path_factory, state_dir) -> Voila:
    """``voila notebooks/03-teaching-case.ipynb`` on a free loopback port, as a teacher runs it."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("voila") / "voila.log"
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "voila", "notebooks/03-teaching-case.ipynb", "--no-browser",
               f"--port={port}", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0"]  # fmt: skip
    with serving(
        command,
        name="Voilà",
        ready=lambda: requests.get(url + "/voila/static/voila.js", timeout=2).status_code < 500,
        log=log_path,
        cwd=REPO,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    ) as process:
        yield Voila(url, process, log_path)
