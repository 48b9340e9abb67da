"""Worker processes serving the node's associations (``DicomWorkerProcesses`` > 1).

The server process binds the DICOM port and accepts every connection itself, then hands it
(its descriptor, over a Unix socket pair: :mod:`.channel`) to the worker with the fewest
associations in progress, ties taken in turn. Each worker (:mod:`.worker`) is a full DIMSE
node on the same index and storage, as several servers on one database are.

Why one acceptor rather than each worker accepting on the port (``SO_REUSEPORT``, or a shared
listening socket): the kernel spreads ``SO_REUSEPORT`` connections by a hash of their
addresses, so 8 associations over 2 workers often land 6 and 2; a shared socket goes to
whichever process wakes first. Handing each to the least busy spreads them evenly, and the
port stays the server's alone (no other process of the user can bind it too).

What must reach the server process comes back over the same pair: each association's end
(for the counts), storage commitment reports on the server's own requests (whose waiting
REST calls live here), and the workers' readiness. The server sends the modalities declared
over REST to every worker. A worker that dies is started again (up to
:data:`QUICK_FAILURES` times in a row when it dies within :data:`QUICK` seconds of starting,
then it is given up with an error in the log); the server stopping stops them all, and a
worker whose server died notices the pair closing and stops too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

import workbench

from . import channel

LOGGER = logging.getLogger("workbench.pacs.node")

#: Seconds a worker has to open the index and report ready.
READY_TIMEOUT = 120
#: A worker dying within this many seconds of starting counts as failing to start...
QUICK = 10.0
#: ...and one failing to start this many times in a row is not started again.
QUICK_FAILURES = 3


@dataclass(eq=False)
class Worker:
    """One worker process as the acceptor sees it."""

    slot: int
    process: subprocess.Popen
    channel: channel.Channel
    started: float = field(default_factory=time.monotonic)
    ready: threading.Event = field(default_factory=threading.Event)
    #: Associations in progress, and handed over in all.
    active: int = 0
    associations: int = 0
    alive: bool = True


class WorkerPool:
    """The worker processes of a :class:`~workbench.pacs.node.DicomNode` and its acceptor.

    Parameters
    ----------
    node : DicomNode
        The server process's node: its config, listening address, and the storage
        commitment reports relayed from the workers.
    count : int
        Worker processes.
    """

    def __init__(self, node: Any, count: int) -> None:
        self.node = node
        self.count = count
        self.workers: list[Worker | None] = [None] * count
        self.restarts = 0
        self._listening: socket.socket | None = None
        self._lock = threading.Lock()
        self._turn = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._quick_failures = [0] * count

    @property
    def port(self) -> int:
        assert self._listening is not None
        return int(self._listening.getsockname()[1])

    def start(self) -> None:
        """Bind the port, start the workers, wait until each is ready, then accept.

        Raises
        ------
        RuntimeError
            If a worker exits or stays silent instead of getting ready (its error is in the
            server's log output: workers log to the same standard error).
        OSError
            If the port cannot be bound.
        """
        if not hasattr(socket, "send_fds"):
            raise RuntimeError("DicomWorkerProcesses > 1 needs Unix sockets that pass "
                               "descriptors (Linux, macOS); set it to 1 here")  # fmt: skip
        host, port = self.node.host, int(self.node.config.DicomPort)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listening = socket.create_server((host, port), family=family, backlog=128)
        try:
            for slot in range(self.count):
                self.workers[slot] = self._spawn(slot)
            for worker in self.workers:
                self._wait_ready(worker)
        except BaseException:
            self.stop(0)
            raise
        self._thread(self._accept, "workbench-dicom-acceptor")

    def _spawn(self, slot: int) -> Worker:
        ours, theirs = channel.pair()
        config = {**self.node.config.to_dict(), "DicomPort": self.port,
                  "DicomWorkerProcesses": 1}  # fmt: skip
        # The workers run the code this process runs, wherever it was imported from.
        env = dict(os.environ)
        package_root = str(Path(workbench.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root,
                                                          env.get("PYTHONPATH")]))  # fmt: skip
        command = [
            sys.executable,
            "-m",
            "workbench.pacs.node.worker",
            str(theirs.fileno()),
            str(slot),
            str(logging.getLogger("workbench").getEffectiveLevel()),
        ]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, pass_fds=[theirs.fileno()],
                                   env=env)  # fmt: skip
        theirs.close()
        assert process.stdin is not None
        with process.stdin:
            process.stdin.write(json.dumps(config).encode())
        worker = Worker(slot, process, channel.Channel(ours))
        self._thread(lambda: self._listen(worker), f"workbench-dicom-worker-{slot}")
        return worker

    def _wait_ready(self, worker: Worker | None) -> None:
        assert worker is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while not worker.ready.wait(0.1):
            code = worker.process.poll()
            if code is not None:
                raise RuntimeError(
                    f"DICOM worker process {worker.slot} exited with code "
                    f"{code} while starting (its error is logged above)"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"DICOM worker process {worker.slot} did not get ready "
                                   f"within {READY_TIMEOUT} s")  # fmt: skip

    def _thread(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- accepting ------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self._listening is not None
        self._listening.settimeout(0.5)  # to notice stop()
        while not self._stopping.is_set():
            try:
                connection, address = self._listening.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                LOGGER.exception("Accepting a DICOM connection failed")
                time.sleep(0.1)
                continue
            with connection:
                self._hand_over(connection, address)

    def _hand_over(self, connection: socket.socket, address: tuple) -> None:
        """Give the connection to the worker with the fewest associations in progress."""
        while True:
            with self._lock:
                live = [w for w in self.workers if w is not None and w.alive and w.ready.is_set()]
                if not live:
                    LOGGER.error("No DICOM worker process is running: closed the connection "
                                 "from %s", address[0])  # fmt: skip
                    return
                worker = min(live, key=lambda w: (w.active, (w.slot - self._turn) % self.count))
                self._turn = worker.slot + 1
                worker.active += 1
                worker.associations += 1
            try:
                worker.channel.send({"connection": list(address[:2])}, connection.fileno())
                return
            except OSError:  # died since: its listener restarts it; try another
                with self._lock:
                    worker.alive = False
                    worker.active -= 1
                    worker.associations -= 1

    # -- what workers say -----------------------------------------------------------------

    def _listen(self, worker: Worker) -> None:
        while True:
            message, _ = worker.channel.receive()
            if message is None:
                break
            if "ready" in message:
                worker.ready.set()
            elif "closed" in message:
                with self._lock:
                    worker.active = max(0, worker.active - 1)
            elif "report" in message:
                information = Dataset.from_json(message["information"])
                if not self.node.commitment_reports.receive(message["report"], information):
                    LOGGER.warning("Storage commitment report for a transaction we did not "
                                   "ask for (or forgot): %s", message["report"])  # fmt: skip
        with self._lock:
            worker.alive = False
        worker.channel.close()
        code = worker.process.wait()
        if not self._stopping.is_set():
            self._exited(worker, code)

    def _exited(self, worker: Worker, code: int) -> None:
        """Start a worker that died again, unless it keeps dying as it starts."""
        slot = worker.slot
        ran = time.monotonic() - worker.started
        quick = self._quick_failures[slot] = (self._quick_failures[slot] + 1 if ran < QUICK
                                              else 0)  # fmt: skip
        if quick >= QUICK_FAILURES:
            LOGGER.error(
                "DICOM worker process %d (pid %d) exited with code %s within %.0f s "
                "of starting, %d times in a row: not starting it again (%d of %d "
                "workers left)",
                slot,
                worker.process.pid,
                code,
                ran,
                quick,
                sum(w is not None and w.alive for w in self.workers),
                self.count,
            )
            return
        LOGGER.error("DICOM worker process %d (pid %d) exited with code %s after %.0f s "
                     "(%d associations in progress lost); starting it again", slot,
                     worker.process.pid, code, ran, worker.active)  # fmt: skip
        with self._lock:
            if self._stopping.is_set():
                return
            self.workers[slot] = self._spawn(slot)
            self.restarts += 1

    # -- control --------------------------------------------------------------------------

    def broadcast(self, message: dict[str, Any]) -> None:
        """Send ``message`` to every running worker."""
        for worker in list(self.workers):
            if worker is not None and worker.alive:
                with contextlib.suppress(OSError):  # died: restarted with the current config
                    worker.channel.send(message)

    def stats(self) -> list[dict[str, int]]:
        """Per worker: its ``pid``, ``associations`` handed to it and ``active`` ones."""
        with self._lock:
            return [{"slot": w.slot, "pid": w.process.pid, "associations": w.associations,
                     "active": w.active} for w in self.workers if w is not None]  # fmt: skip

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let each worker finish its associations for ``grace`` seconds
        (then abort them) and close its index, and wait for every process to exit."""
        self._stopping.set()
        if self._listening is not None:
            self._listening.close()
        workers = [w for w in self.workers if w is not None]
        for worker in workers:
            with contextlib.suppress(OSError):  # already gone
                worker.channel.send({"stop": grace})
        for worker in workers:
            try:
                worker.process.wait(grace + 60)
            except subprocess.TimeoutExpired:
                LOGGER.error("DICOM worker process %d (pid %d) did not stop; killing it",
                             worker.slot, worker.process.pid)  # fmt: skip
                worker.process.kill()
                worker.process.wait()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(5)
