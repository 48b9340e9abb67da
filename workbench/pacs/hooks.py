"""Python functions called on PACS events, as Orthanc's Lua scripts and Python plugin are.

``pacs.on("stable_study", fn)`` calls ``fn`` with a :class:`PacsEvent` each time a study
becomes stable. Events are read from the index's change log (``/changes``) by one thread of
their own, never on the ingest path: a C-STORE is acknowledged once its file and row are
durable, whatever the hooks do. Nothing is lost to a slow hook, since the change log is
durable and the thread keeps its place in it; memory stays bounded, since it reads the log a
page at a time. A hook that raises is logged with the event and the next one is called.

Events are those logged after the first ``on``. The log is ordered by sequence number, which
is commit order (one writer at a time, on SQLite and PostgreSQL alike). Servers sharing one
database share its log: the hooks of each see the events of all, so a hook that must act once
per event is registered on one of them.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Event names → the ``ChangeType`` of ``/changes`` they follow.
EVENTS = {
    "stored_instance": "NewInstance",
    "new_series": "NewSeries",
    "new_study": "NewStudy",
    "new_patient": "NewPatient",
    "stable_series": "StableSeries",
    "stable_study": "StableStudy",
    "stable_patient": "StablePatient",
    "deleted": "Deleted",
}
_BY_CHANGE = {change: event for event, change in EVENTS.items()}
#: Change-log rows read at a time.
PAGE = 100


@dataclass(frozen=True)
class PacsEvent:
    """One event given to a hook.

    Attributes
    ----------
    name : str
        One of :data:`EVENTS` (``"stable_study"``...).
    level : str
        ``Patient``, ``Study``, ``Series`` or ``Instance``.
    id : str
        The resource's Orthanc ID (``pacs.index`` reads it, ``/studies/{id}`` serves it).
    seq : int
        Its sequence number in ``/changes``.
    date : str
        When it was logged, as ``/changes`` shows it.
    """

    name: str
    level: str
    id: str
    seq: int
    date: str


Hook = Callable[[PacsEvent], object]


class Hooks:
    """The hooks of one index, and the thread that calls them.

    Parameters
    ----------
    index : workbench.pacs.Index
        Whose change log is followed.
    poll : float
        Seconds between looks at the change log when it has nothing new.
    """

    def __init__(self, index, poll: float = 0.1) -> None:
        self._index = index
        self._poll = poll
        self._hooks: dict[str, list[Hook]] = defaultdict(list)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursor = 0

    def on(self, event: str, hook: Hook) -> Hook:
        """Call ``hook(PacsEvent)`` for each ``event`` from now on; returns ``hook``.

        Raises
        ------
        ValueError
            If ``event`` is not one of :data:`EVENTS`.
        """
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; expected one of {', '.join(EVENTS)}")
        with self._lock:
            if self._thread is None:
                self._cursor = self._index.changes(last=True, every=True)["Last"]
                self._thread = threading.Thread(target=self._run, name="pacs-hooks", daemon=True)
                self._thread.start()
            self._hooks[event].append(hook)
        return hook

    def off(self, event: str, hook: Hook) -> None:
        """Stop calling ``hook`` for ``event``."""
        with self._lock:
            if hook in self._hooks.get(event, []):
                self._hooks[event].remove(hook)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread once the hook it is calling returns."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def delivered(self) -> int:
        """Sequence number of the last change handed to the hooks."""
        return self._cursor

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                page = self._index.changes(since=self._cursor, limit=PAGE, every=True)
            except Exception:  # the index closing at shutdown, a transient database error
                log.exception("Reading the change log for hooks failed; retrying")
                self._stop.wait(1.0)
                continue
            for change in page["Changes"]:
                if self._stop.is_set():
                    return
                self._deliver(change)
                self._cursor = change["Seq"]
            if page["Done"]:
                self._stop.wait(self._poll)

    def _deliver(self, change: dict) -> None:
        name = _BY_CHANGE.get(change["ChangeType"])
        if name is None:
            return
        with self._lock:
            hooks = list(self._hooks.get(name, ()))
        event = PacsEvent(name, change["ResourceType"], change["ID"], change["Seq"], change["Date"])
        for hook in hooks:
            try:
                hook(event)
            except Exception:
                log.exception("Hook %r failed on %s of %s %s", hook, name, event.level, event.id)
