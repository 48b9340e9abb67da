"""Pacing a viewport's frames to what the browser can show, so no stale work piles up.

The kernel handles comm messages one at a time. Drawing a frame for every pointer event
therefore queues work: a W/L drag sends moves faster than frames can be rendered, sent,
decoded and drawn, and the image keeps changing long after the mouse stops. Instead, a
:class:`FramePipeline` keeps at most one frame in flight per viewport (the browser says when
it has drawn it) and one pending change; new input only marks the view as changed, and the
next frame shows the latest state. While input keeps coming, frames may be cheaper (lossy);
once it pauses, or the button is released, the exact frame follows, so what stays on screen is
always exact.

Everything runs on the kernel's main thread: deferred work goes through its asyncio loop
(:func:`call_later`), the same loop that delivers comm messages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

#: Seconds without new input after which the exact frame replaces a cheaper one.
SETTLE_SECONDS = 0.1
#: Seconds to wait for the browser to confirm a frame before sending the next one anyway: a
#: closed tab never confirms, and on a busy machine the receipt can take far longer than the
#: frame itself (JupyterLab relays it behind every queued event), which would stall a drag.
ACK_TIMEOUT_SECONDS = 0.15
#: Frame numbers are stamped as a 24-bit colour.
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
    settle_seconds, ack_timeout_seconds
        See :data:`SETTLE_SECONDS` and :data:`ACK_TIMEOUT_SECONDS`.

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
    ) -> None:
        self.draw = draw
        self.settle_seconds = settle_seconds
        self.ack_timeout_seconds = ack_timeout_seconds
        self.coalesce = True
        self.sent = self.previews = 0
        # Until the browser has confirmed a frame, nothing paces us: draw at once.
        self._browser_confirms = False
        self._in_flight: int | None = None
        self._sent_at = 0.0
        self._changed = False
        self._exact_shown = True
        self._continuous = False
        self._last_request = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    @property
    def in_flight(self) -> bool:
        """Whether a frame was sent and the browser has not confirmed it yet."""
        return self._in_flight is not None

    def request(self) -> None:
        """The view changed: draw it now if nothing is in flight, else after the ack."""
        now = time.monotonic()
        self._continuous = now - self._last_request < self.settle_seconds
        self._last_request = now
        self._changed = True
        self._pump()

    def settle(self) -> None:
        """The input ended (button released): the exact frame is wanted without delay."""
        self._continuous = False
        self._pump()

    def acknowledged(self, frame_id: int) -> None:
        """The browser drew frame ``frame_id``."""
        self._browser_confirms = True
        if frame_id == self._in_flight:
            self._in_flight = None
            self._pump()

    def close(self) -> None:
        self._cancel_timer()

    # -- internals --------------------------------------------------------------------------
    def _pump(self) -> None:
        self._cancel_timer()
        now = time.monotonic()
        paced = self.coalesce and self._browser_confirms
        if paced and self._in_flight is not None:
            deadline = self._sent_at + self.ack_timeout_seconds
            if now < deadline:
                self._schedule(deadline - now)
                return
            self._in_flight = None  # never confirmed: do not wait for it any longer
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
        self._in_flight, self._sent_at = frame_id, time.monotonic()
        self.draw(exact, frame_id)
        if not exact:  # the exact frame follows when input pauses, even with no ack
            self._schedule(self.settle_seconds)

    def _schedule(self, delay: float) -> None:
        self._cancel_timer()
        self._timer = call_later(delay, self._pump)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
