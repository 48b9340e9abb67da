"""Pacing a viewport's frames to what the browser can show, so no stale work piles up.

The kernel handles comm messages one at a time. Drawing a frame for every pointer event
therefore queues work: a W/L drag sends moves faster than frames can be rendered, sent,
decoded and drawn, and the image keeps changing long after the mouse stops. Instead, a
:class:`FramePipeline` keeps at most a few frames in flight per viewport (the browser says
when it has drawn each) and one pending change; new input only marks the view as changed, and
the next frame shows the latest state. Several frames in flight rather than one keep the
browser busy while a receipt travels back: the receipt's round trip, not the drawing, is what
limits the frame rate. While input keeps coming, frames may be cheaper (lossy); once it pauses
the exact frame follows, and when the button is released it is sent at once, without waiting
for receipts, so what stays on screen is always exact and comes without delay.

Everything runs on the kernel's main thread: deferred work goes through its asyncio loop
(:func:`call_later`), the same loop that delivers comm messages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: Seconds without new input after which the exact frame replaces a cheaper one.
SETTLE_SECONDS = 0.1
#: Seconds to wait for the browser to confirm a frame before sending the next one anyway: a
#: closed tab never confirms, and on a busy machine the receipt can take far longer than the
#: frame itself (JupyterLab relays it behind every queued event), which would stall a drag.
ACK_TIMEOUT_SECONDS = 0.15
#: Frames sent and not yet confirmed, at most, while input keeps coming. The browser confirms
#: a frame once it is drawn, and its receipt comes back behind the kernel's queue, some
#: 30-120 ms later on this 2-core machine: five keep 30 frames a second flowing while the
#: backlog at a release stays at a few frames (three held a drag to 20-27 frames a second).
MAX_IN_FLIGHT = 5
#: Seconds after which an exact frame still unconfirmed has its stamp painted again, and how
#: many times. The browser reports the stamp's pixel back asynchronously; a report lost or
#: overtaken by an older one would leave the last frame unconfirmed for good.
RESTAMP_SECONDS = 0.5
RESTAMPS = 3
#: Frame numbers are stamped as a 24-bit colour (``viewport_view.FrameStamp``).
FRAME_ID_MODULUS = 1 << 24


def call_later(delay: float, callback: Callable[[], Any]) -> asyncio.TimerHandle | None:
    """Run ``callback`` after ``delay`` seconds on the running event loop of this thread.

    ``None`` when no loop runs here (a plain script): callers then do the work at once.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop.call_later(max(0.0, delay), callback)


class Throttle:
    """Call ``action`` with the latest arguments at most once per ``interval`` seconds.

    Calls in between are not lost: the latest one runs when the interval is over.
    """

    def __init__(self, interval: float, action: Callable[..., Any]) -> None:
        self.interval = interval
        self.action = action
        self._args: tuple = ()
        self._last = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, *args: Any) -> None:
        self._args = args
        if self._timer is not None:
            return  # the pending call will use these arguments
        wait = self._last + self.interval - time.monotonic()
        if wait > 0:
            self._timer = call_later(wait, self._run)
            if self._timer is not None:
                return
        self._run()

    def _run(self) -> None:
        self._timer = None
        self._last = time.monotonic()
        self.action(*self._args)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class FramePipeline:
    """When to draw a viewport's next frame, and whether it must be exact.

    Parameters
    ----------
    draw
        ``draw(exact, frame_id)`` renders the viewport's current state and sends it; ``exact``
        False allows a cheaper (lossy) image. The sent commands must end with a stamp that
        makes the browser report ``frame_id`` back (:meth:`acknowledged`) once drawn.
    settle_seconds, ack_timeout_seconds, max_in_flight
        See :data:`SETTLE_SECONDS`, :data:`ACK_TIMEOUT_SECONDS` and :data:`MAX_IN_FLIGHT`.
    restamp
        ``restamp(frame_id)`` paints the stamp of the frame shown again, so that the browser
        reports it once more (see :data:`RESTAMP_SECONDS`); ``None``: never.

    Attributes
    ----------
    coalesce
        ``False`` draws every change at once, exactly, as it comes (no pacing): what a
        kernel with no browser attached gets anyway, and the reference for benchmarks.
    sent, previews
        Frames sent so far, and how many of them were cheaper previews.
    """

    def __init__(
        self,
        draw: Callable[[bool, int], None],
        *,
        settle_seconds: float = SETTLE_SECONDS,
        ack_timeout_seconds: float = ACK_TIMEOUT_SECONDS,
        max_in_flight: int = MAX_IN_FLIGHT,
        restamp: Callable[[int], None] | None = None,
    ) -> None:
        self.draw = draw
        self.restamp = restamp
        self._restamp_timer: asyncio.TimerHandle | None = None
        self.settle_seconds = settle_seconds
        self.ack_timeout_seconds = ack_timeout_seconds
        self.max_in_flight = max(1, max_in_flight)
        self.coalesce = True
        self.sent = self.previews = 0
        # Until the browser has confirmed a frame, nothing paces us: draw at once.
        self._browser_confirms = False
        # Frame number -> when it was sent, oldest first.
        self._in_flight: dict[int, float] = {}
        # The frame of the browser's latest receipt (an older frame's receipt may come last).
        self._last_receipt: int | None = None
        self._changed = False
        self._exact_shown = True
        self._continuous = False
        self._settling = False
        self._last_request = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    @property
    def in_flight(self) -> bool:
        """Whether a frame was sent and the browser has not confirmed it yet."""
        return bool(self._in_flight)

    def request(self) -> None:
        """The view changed: draw it now if the browser can take a frame, else after an ack."""
        now = time.monotonic()
        self._continuous = now - self._last_request < self.settle_seconds
        self._last_request = now
        self._changed = True
        if not self._settling:
            self._pump()

    def settle(self) -> None:
        """The input ended (button released): the exact frame is sent at once.

        It does not wait for the frames in flight: it is the last frame of the gesture, and
        messages reach the browser in order, so it is drawn right after them.
        """
        self._continuous = False
        self._cancel_timer()
        if self._changed or not self._exact_shown:
            self._send(exact=True)

    @contextmanager
    def settling(self) -> Iterator[None]:
        """The input ends with the changes made inside (a release where the pointer is):
        they are drawn once, as the exact frame :meth:`settle` sends after them, not first
        as one more cheaper frame."""
        self._settling = True
        try:
            yield
        finally:
            self._settling = False
            self.settle()

    def acknowledged(self, frame_id: int) -> None:
        """The browser drew frame ``frame_id`` (and so every frame sent before it)."""
        self._browser_confirms = True
        self._last_receipt = frame_id
        if frame_id not in self._in_flight:
            return
        for sent in list(self._in_flight):  # oldest first
            del self._in_flight[sent]
            if sent == frame_id:
                break
        self._pump()

    def close(self) -> None:
        self._cancel_timer()
        self._cancel_restamp()

    # -- internals --------------------------------------------------------------------------
    def _pump(self) -> None:
        self._cancel_timer()
        now = time.monotonic()
        paced = self.coalesce and self._browser_confirms
        if paced and len(self._in_flight) >= self.max_in_flight:
            deadline = next(iter(self._in_flight.values())) + self.ack_timeout_seconds
            if now < deadline:
                self._schedule(deadline - now)
                return
            self._in_flight.clear()  # never confirmed: do not wait for them any longer
        paused = not self._continuous or now - self._last_request >= self.settle_seconds
        if self._changed:
            self._send(exact=paused or not paced)
        elif not self._exact_shown:
            if paused:
                self._send(exact=True)
            else:
                self._schedule(self._last_request + self.settle_seconds - now)

    def _send(self, exact: bool) -> None:
        self.sent += 1
        self.previews += not exact
        frame_id = self.sent % FRAME_ID_MODULUS
        self._changed = False
        self._exact_shown = exact
        self._in_flight[frame_id] = time.monotonic()
        self.draw(exact, frame_id)
        if not exact:  # the exact frame follows when input pauses, even with no ack
            self._schedule(self.settle_seconds)
        elif self.restamp is not None and self._browser_confirms:
            self._arm_restamp(frame_id, RESTAMPS)

    def _arm_restamp(self, frame_id: int, left: int) -> None:
        self._cancel_restamp()
        self._restamp_timer = call_later(
            RESTAMP_SECONDS, lambda: self._check_receipt(frame_id, left)
        )

    def _check_receipt(self, frame_id: int, left: int) -> None:
        """The exact frame ``frame_id`` is still unconfirmed: stamp it again, unless a frame
        followed it (whose own receipt confirms it).

        Unconfirmed means that the latest receipt is not its own: frames in flight are
        forgotten when their receipts are late (see :meth:`_pump`), and its own receipt may
        have been overtaken by an older frame's.
        """
        self._restamp_timer = None
        latest = self.sent % FRAME_ID_MODULUS == frame_id
        if latest and self._last_receipt != frame_id and self.restamp is not None:
            self.restamp(frame_id)
            if left > 1:
                self._arm_restamp(frame_id, left - 1)

    def _cancel_restamp(self) -> None:
        if self._restamp_timer is not None:
            self._restamp_timer.cancel()
            self._restamp_timer = None

    def _schedule(self, delay: float) -> None:
        self._cancel_timer()
        self._timer = call_later(delay, self._pump)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
