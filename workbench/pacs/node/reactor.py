"""An association's DUL reactor that waits for work instead of polling for it.

pynetdicom's DUL reactor looks at its socket and at its queue of outgoing primitives, then
sleeps (``_run_loop_delay``) when it found nothing, over and over. Each look takes the
interpreter lock from the threads doing the real work, and the response to a request waits
for the next look. With eight associations storing at once, sixteen such loops (each end of
an association in this process has one) polling every 0.2 ms cost more CPU per instance than
parsing and indexing it.

:func:`wake_on_work` makes the reactor block in ``select`` on its socket and on a wake-up
socket, written to whenever another thread queues an event or a primitive for it or tells
it to stop. pynetdicom's own code paths stay: only the wait changes, bounded by
:data:`LONGEST_WAIT` so that what the loop checks besides (its timers) is seen as before.
"""

from __future__ import annotations

import contextlib
import queue
import select
import socket
import threading
import types
from collections.abc import Callable

from pynetdicom.transport import AssociationSocket

#: Longest a waiting DUL reactor blocks before looking at its timers and flags again.
LONGEST_WAIT = 0.005


class _WakingQueue(queue.Queue):
    """A DUL queue whose ``put`` from another thread than the reactor's wakes the reactor."""

    _reactor: threading.Thread
    _wake: Callable[[], None]

    def put(self, item: object, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        if threading.current_thread() is not self._reactor:
            self._wake()


class _WaitingSocket(AssociationSocket):
    """An :class:`AssociationSocket` whose ``ready`` blocks until data or a wake-up, unless
    the reactor already has work queued (by its own thread, which wakes nobody)."""

    _wake_reader: socket.socket

    @property
    def ready(self) -> bool:
        sock = self.socket
        if sock is None or self._is_connected is False:
            return False
        dul = self.assoc.dul
        queued = dul.event_queue.qsize() or dul.to_provider_queue.qsize()
        try:
            readable, _, _ = select.select(
                [sock, self._wake_reader], [], [], 0 if queued else LONGEST_WAIT
            )
        except (OSError, ValueError):  # closed meanwhile: pynetdicom's own look reports it
            return super().ready
        if self._wake_reader in readable:
            with contextlib.suppress(OSError):
                self._wake_reader.recv(4096)
        return sock in readable


def wake_on_work(assoc: object) -> None:
    """Make ``assoc``'s DUL reactor wait in ``select`` rather than poll (plain TCP only).

    The reactor's loop delay becomes zero: each turn of its loop with nothing queued blocks
    in the socket's ``ready`` until the peer sends data, another thread queues an event or
    a primitive for it or tells it to stop (``kill_dul``), or :data:`LONGEST_WAIT` passes.
    """
    dul = assoc.dul  # type: ignore[attr-defined]
    transport = dul.socket
    sock = getattr(transport, "socket", None)
    if type(transport) is not AssociationSocket or not isinstance(sock, socket.socket):
        return
    if hasattr(sock, "context"):  # TLS: data may wait in the SSL layer, unseen by select
        return
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)

    def wake() -> None:
        with contextlib.suppress(OSError):  # full (a wake-up is pending) or closed
            writer.send(b"\0")

    kill_dul, close = dul.kill_dul, transport.close

    def release() -> None:
        # A reactor still in select returns at once (the wake-up is pending) or at its
        # longest wait; one about to select finds the reader closed and looks as pynetdicom.
        reader.close()
        writer.close()

    def kill_dul_and_wake() -> None:
        kill_dul()
        wake()
        release()

    def close_all(self: AssociationSocket) -> None:
        close()
        release()

    for waiting in (dul.event_queue, dul.to_provider_queue):
        waiting._reactor, waiting._wake = dul, wake
        waiting.__class__ = _WakingQueue
    transport._wake_reader = reader
    transport.__class__ = _WaitingSocket
    transport.close = types.MethodType(close_all, transport)
    dul.kill_dul = kill_dul_and_wake
    dul._run_loop_delay = 0
