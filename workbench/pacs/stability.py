"""When series, studies and patients become stable, announced as Orthanc announces it.

A resource is stable once no instance has arrived in it for ``StableAge`` seconds. Orthanc
then logs ``StableSeries``, ``StableStudy`` and ``StablePatient`` in ``/changes``, and that is
how scripts polling ``/changes`` learn that a study has finished arriving and can be
processed. As in Orthanc, the resources still settling are kept in memory only: after a
restart they are not announced (their ``IsStable`` still turns true with age).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

#: (level, public ID), e.g. ``("Study", "30d1c191-...")``.
Resource = tuple[str, str]


class StabilityMonitor:
    """Calls ``announce`` with the resources that have been left alone for ``age`` seconds.

    Parameters
    ----------
    age : float
        Seconds without new instances after which a resource is stable.
    announce : callable
        Called from the monitor's thread with the resources that became stable, in the order
        they were last touched. An exception it raises is logged; those resources are not
        announced again.
    """

    def __init__(self, age: float, announce: Callable[[list[Resource]], None]) -> None:
        self._age = age
        self._announce = announce
        # Insertion-ordered, and a touch moves a resource to the end with the latest
        # deadline: the dict is always sorted by deadline, the first entry due first.
        self._deadlines: dict[Resource, float] = {}
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def touch(self, resources: Iterable[Resource]) -> None:
        """Note that instances just arrived in ``resources`` (which restarts their clocks)."""
        deadline = time.monotonic() + self._age
        with self._condition:
            if self._stopping:
                return
            idle = not self._deadlines
            for resource in resources:
                self._deadlines.pop(resource, None)
                self._deadlines[resource] = deadline
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="workbench-stability", daemon=True
                )
                self._thread.start()
            # Only a monitor waiting for nothing needs waking: otherwise a touch only moves
            # deadlines later, and the monitor, waking at the earlier one, looks again. (A
            # wake-up per instance cost the ingesting thread the interpreter lock each time.)
            if idle:
                self._condition.notify()

    def stop(self) -> None:
        """Stop the monitor; resources still settling are dropped unannounced."""
        with self._condition:
            self._stopping = True
            self._condition.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            due = self._wait_for_due()
            if due is None:
                return
            try:
                self._announce(due)
            except Exception:  # the index may be closing; the node must keep serving
                log.exception("Could not announce %d stable resources", len(due))

    def _wait_for_due(self) -> list[Resource] | None:
        """Block until some resources are due; ``None`` once stopped."""
        with self._condition:
            while not self._stopping:
                now = time.monotonic()
                due = []
                for resource, deadline in self._deadlines.items():
                    if deadline > now:
                        break
                    due.append(resource)
                if due:
                    for resource in due:
                        del self._deadlines[resource]
                    return due
                first = next(iter(self._deadlines.values()), None)
                self._condition.wait(None if first is None else first - now)
            return None
