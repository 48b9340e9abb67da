"""Jobs: long REST operations run in the background, as Orthanc's jobs engine.

``"Asynchronous": true`` in the body of a store, move, archive, media or anonymization request
makes it a job: the answer is ``{"ID", "Path"}`` at once, and ``/jobs/{id}`` follows it
(``State``: Pending, Running, Paused, Success, Failure; ``Progress``, ``Type``, ``Content`` —
what the synchronous call would have answered —, ``ErrorCode``...). A job's work is a plain
function given a :class:`Job`, which it tells its progress; cancelling or pausing takes effect
at the next progress step, as in Orthanc. An archive job keeps its ZIP as an output
(``/jobs/{id}/archive``).

At most ``ConcurrentJobs`` run at once (Orthanc's option, default 2), in priority order
(lower first, then oldest). The ``JobsHistorySize`` (default 10) latest finished jobs are
kept. Jobs live in memory: unlike Orthanc with ``SaveJobs``, a restart forgets them.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import BadRequestError, PacsError

LOGGER = logging.getLogger("workbench.pacs.jobs")

#: Orthanc's error codes a job reports (``ErrorCode`` / ``ErrorDescription``).
SUCCESS = (0, "Success")
INTERNAL_ERROR = (-1, "Internal error")
NETWORK_PROTOCOL = (9, "Error in the network protocol")
CANCELED_JOB = (37, "Job has been canceled")

#: Finished states; a job in them does not run again unless resubmitted.
DONE = ("Success", "Failure")


class Canceled(Exception):
    """Raised inside a job's work, at a progress step, once the job is cancelled."""


class UnknownJobError(PacsError):
    """No job has that ID (or it left the history)."""

    http_status = 404


@dataclass
class Output:
    """A file a job leaves besides its content (e.g. the ZIP of an archive job); deleted when
    the job leaves the history."""

    path: Path
    media_type: str
    filename: str


def _stamp(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y%m%dT%H%M%S.%f")


@dataclass
class Job:
    """One job: its description, its state, and what its work left."""

    type: str
    work: Callable[[Job], dict[str, Any]] = field(repr=False)
    priority: int = 0
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: str = "Pending"
    progress: float = 0.0
    content: dict[str, Any] = field(default_factory=dict)
    error: tuple[int, str] = SUCCESS
    error_details: str = ""
    outputs: dict[str, Output] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    completed: float | None = None
    runtime: float = 0.0
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _running: threading.Event = field(default_factory=threading.Event, repr=False)
    _worker: threading.Thread | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._running.set()  # cleared while paused

    def step(self, done: float, total: float) -> None:
        """Report progress (``done`` of ``total``); where cancelling and pausing take effect.

        Raises
        ------
        Canceled
            The job was cancelled.
        """
        self.progress = 100.0 * done / total if total else 100.0
        self.updated = time.time()
        if not self._running.is_set():
            self.state = "Paused"
            self._running.wait()
            self.state = "Running"
        if self._cancel.is_set():
            raise Canceled

    def as_orthanc(self) -> dict[str, Any]:
        """The JSON of ``GET /jobs/{id}``."""
        answer = {
            "Content": self.content,
            "CreationTime": _stamp(self.created),
            "EffectiveRuntime": round(self.runtime, 3),
            "ErrorCode": self.error[0],
            "ErrorDescription": self.error[1],
            "ErrorDetails": self.error_details,
            "ID": self.id,
            "Priority": self.priority,
            "Progress": int(self.progress),
            "State": self.state,
            "Timestamp": _stamp(self.updated),
            "Type": self.type,
        }
        if self.completed is not None:
            answer["CompletionTime"] = _stamp(self.completed)
        return answer


class Jobs:
    """The jobs of one server: a priority queue, ``concurrent`` worker threads, a history."""

    def __init__(self, concurrent: int = 2, history: int = 10) -> None:
        self._jobs: dict[str, Job] = {}
        self._queue: list[tuple[int, int, str]] = []
        self._order = itertools.count()
        self._finished: list[str] = []
        self._history = history
        self._lock = threading.Condition()
        self._stopping = False
        self._concurrent = max(1, int(concurrent))
        self._workers: list[threading.Thread] = []  # started with the first job

    # -- submitting and looking ----------------------------------------------------------

    def submit(self, job_type: str, work: Callable[[Job], dict[str, Any]], *,
               priority: int = 0) -> Job:  # fmt: skip
        """Queue ``work(job)`` (which returns the job's content) as a job of ``job_type``."""
        job = Job(job_type, work, int(priority))
        with self._lock:
            if not self._workers:
                self._workers = [
                    threading.Thread(target=self._work, name=f"job-{i}", daemon=True)
                    for i in range(self._concurrent)
                ]
                for worker in self._workers:
                    worker.start()
            self._jobs[job.id] = job
            self._enqueue(job)
        return job

    def _enqueue(self, job: Job) -> None:
        heapq.heappush(self._queue, (job.priority, next(self._order), job.id))
        self._lock.notify()

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJobError(f"Unknown job {job_id!r}")
        return job

    def all(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda job: job.created)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """The job once it is finished (or as it is after ``timeout`` seconds)."""
        job = self.get(job_id)
        with self._lock:
            self._lock.wait_for(lambda: job.state in DONE, timeout)
        return job

    # -- controlling ---------------------------------------------------------------------

    def cancel(self, job_id: str) -> None:
        """A pending or paused job fails at once; a running one at its next progress step."""
        job = self.get(job_id)
        with self._lock:
            if job.state in DONE:
                return
            job._cancel.set()
            job._running.set()
            if job.state in ("Pending", "Paused") and not self._is_running(job):
                self._finish(job, "Failure", CANCELED_JOB)

    def pause(self, job_id: str) -> None:
        """A pending job waits; a running one stops at its next progress step."""
        job = self.get(job_id)
        with self._lock:
            if job.state not in DONE:
                job._running.clear()
                if not self._is_running(job):
                    job.state = "Paused"

    def resume(self, job_id: str) -> None:
        job = self.get(job_id)
        with self._lock:
            if job.state != "Paused" and job._running.is_set():
                return
            job._running.set()
            if not self._is_running(job):
                job.state = "Pending"
                self._enqueue(job)

    def resubmit(self, job_id: str) -> None:
        """Run a failed (or cancelled) job again from the start.

        Raises
        ------
        BadRequestError
            The job has not failed.
        """
        job = self.get(job_id)
        with self._lock:
            if job.state != "Failure":
                raise BadRequestError(f"Only a failed job can be resubmitted; {job_id} is "
                                      f"{job.state}")  # fmt: skip
            if job_id in self._finished:
                self._finished.remove(job_id)
            job._cancel.clear()
            job._running.set()
            job.state, job.progress, job.error, job.error_details = "Pending", 0.0, SUCCESS, ""
            job.completed = None
            self._enqueue(job)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()

    # -- running -------------------------------------------------------------------------

    @staticmethod
    def _is_running(job: Job) -> bool:
        return job._worker is not None

    def _next(self) -> Job | None:
        with self._lock:
            while True:
                if self._stopping:
                    return None
                while self._queue:
                    _, _, job_id = heapq.heappop(self._queue)
                    job = self._jobs.get(job_id)
                    if job is None or job.state != "Pending":
                        continue  # cancelled, paused or forgotten while queued
                    if not job._running.is_set():
                        job.state = "Paused"
                        continue
                    job.state = "Running"
                    job._worker = threading.current_thread()
                    return job
                self._lock.wait()

    def _work(self) -> None:
        while (job := self._next()) is not None:
            started = time.monotonic()
            try:
                content = job.work(job)
            except Canceled:
                outcome = ("Failure", CANCELED_JOB, "")
            except PacsError as exc:
                outcome = ("Failure", getattr(exc, "job_error", NETWORK_PROTOCOL), str(exc))
            except Exception as exc:  # the job fails; the engine goes on
                LOGGER.exception("Job %s (%s) failed", job.id, job.type)
                outcome = ("Failure", INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            else:
                job.content = content
                job.progress = 100.0
                outcome = ("Success", SUCCESS, "")
            job.runtime += time.monotonic() - started
            with self._lock:
                job._worker = None
                self._finish(job, outcome[0], outcome[1], outcome[2])

    def _finish(self, job: Job, state: str, error: tuple[int, str], details: str = "") -> None:
        """Record the end of ``job`` (with the lock held) and trim the history."""
        job.state, job.error, job.error_details = state, error, details
        job.completed = job.updated = time.time()
        self._finished.append(job.id)
        while len(self._finished) > self._history:
            forgotten = self._jobs.pop(self._finished.pop(0), None)
            for output in forgotten.outputs.values() if forgotten else ():
                output.path.unlink(missing_ok=True)
        self._lock.notify_all()
