"""Web servers the browser and notebook tests run as child processes (JupyterLab, Voilà)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

#: How much of a server's log a start-up failure quotes.
LOG_TAIL = 4000


@contextlib.contextmanager
def serving(
    command: list[str],
    *,
    name: str,
    ready: Callable[[], bool],
    log: Path,
    cwd: Path,
    env: dict[str, str],
    timeout: float = 90.0,
) -> Iterator[subprocess.Popen]:
    """Run ``command`` with its output in ``log`` until the block ends.

    Parameters
    ----------
    command, cwd, env
        The server's command line, working folder and environment.
    name
        What failure messages call the server.
    ready
        Whether the server answers yet; a refused connection counts as "not yet".
    log
        The file that takes the server's output and error streams.
    timeout
        Seconds the server may take to answer before it is killed.

    Yields
    ------
    subprocess.Popen
        The running server; it is stopped when the block ends.
    """
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until_ready(process, ready, name=name, log=log, timeout=timeout)
            yield process
        finally:
            stop(process)


def wait_until_ready(
    process: subprocess.Popen, ready: Callable[[], bool], *, name: str, log: Path, timeout: float
) -> None:
    """Poll ``ready`` until it holds; raise with the log's end if the server dies or is slow."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; {_log_end(log)}")
        if _answers(ready):
            return
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{name} did not answer within {timeout:.0f} s; {_log_end(log)}")
        time.sleep(0.3)


def stop(process: subprocess.Popen) -> None:
    """Ask the server to stop; kill it if it has not within 20 seconds."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def _answers(ready: Callable[[], bool]) -> bool:
    try:
        return ready()
    except requests.ConnectionError:
        return False


def _log_end(log: Path) -> str:
    text = log.read_text(errors="replace")
    return f"the end of {log}:\n{text[-LOG_TAIL:]}"
