"""Cine: a viewport's frames played in a loop, from the frame on screen, at a chosen rate.

The loop runs in the kernel's asyncio event loop (the one a Jupyter kernel runs its comm
handlers in), one frame per timer callback. Each callback waits for the previous frame to be
set (and drawn, since drawing follows the model synchronously), so when decoding or sending
frames is slower than the chosen rate the cine slows down rather than queueing frames, and
:attr:`Cine.measured_fps` tells the rate really reached.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from workbench.widgets.model import Change, Observable, ViewerModel, Viewport

MIN_FPS, MAX_FPS = 1.0, 60.0
#: Seconds of frame times the measured rate is averaged over.
MEASURE_SECONDS = 1.0


class Cine(Observable):
    """Plays the active viewport's frames in a loop.

    Parameters
    ----------
    model
        The viewer state; :meth:`start` plays its active viewport.
    fps
        Frames per second asked for (1 to 60).
    clock
        Seconds as a monotonic float (for the measured rate).

    Changes named ``"playing"`` and ``"measured_fps"`` are reported to listeners.
    """

    def __init__(
        self,
        model: ViewerModel,
        fps: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.model = model
        self.clock = clock
        self._fps = 10.0
        self.fps = fps
        self._playing = False
        self._measured_fps: float | None = None
        self._viewport: Viewport | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._times: deque[float] = deque()
        model.on_change(self._stop_if_gone, names=("layout", "stack"))

    @property
    def fps(self) -> float:
        return self._fps

    @fps.setter
    def fps(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"fps must be a number, not {type(value).__name__}")
        if not MIN_FPS <= value <= MAX_FPS:
            raise ValueError(f"fps must be in {MIN_FPS:g}..{MAX_FPS:g}, not {value}")
        self._fps = float(value)

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def viewport(self) -> Viewport | None:
        """The viewport being played (``None`` when stopped)."""
        return self._viewport

    @property
    def measured_fps(self) -> float | None:
        """Frames shown per second over the last second of playing (``None`` before two)."""
        return self._measured_fps

    def start(self) -> bool:
        """Play the active viewport from its current frame; returns whether it started
        (a viewport with fewer than two frames has nothing to play).

        Raises
        ------
        RuntimeError
            Outside a running event loop (a Jupyter kernel runs one; a script can use
            ``asyncio.run``).
        """
        viewport = self.model.active_viewport
        if self._playing:
            self.stop()
        if viewport.frame_count < 2:
            return False
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "cine needs a running asyncio event loop, as a Jupyter kernel has; "
                "in a script, start it from a coroutine run with asyncio.run()"
            ) from None
        self._viewport = viewport
        self._times.clear()
        self._times.append(self.clock())
        self._set_measured(None)
        self._set("playing", True)
        self._handle = self._loop.call_later(1.0 / self._fps, self._tick)
        return True

    def stop(self) -> None:
        """Stop playing; the viewport stays on the frame it shows."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._viewport = None
        self._set("playing", False)

    def toggle(self) -> bool:
        """Start if stopped, stop if playing; returns whether it now plays."""
        if self._playing:
            self.stop()
            return False
        return self.start()

    def step(self) -> None:
        """Show the next frame of the played viewport (the first after the last)."""
        viewport = self._viewport
        if viewport is None or viewport.frame_count < 2:
            return
        viewport.frame = (viewport.frame + 1) % viewport.frame_count
        now = self.clock()
        self._times.append(now)
        while len(self._times) > 2 and now - self._times[0] > MEASURE_SECONDS:
            self._times.popleft()
        span = now - self._times[0]
        if span > 0:
            self._set_measured((len(self._times) - 1) / span)

    def _tick(self) -> None:
        started = self.clock()
        self.step()
        if not self._playing:
            return
        # Aim at the chosen rate; a slow frame is followed at once, never queued up.
        delay = max(0.0, 1.0 / self._fps - (self.clock() - started))
        self._handle = self._loop.call_later(delay, self._tick)

    def _set_measured(self, value: float | None) -> None:
        old, self._measured_fps = self._measured_fps, value
        if old != value:
            self._emit(Change(self, "measured_fps", old, value))

    def _stop_if_gone(self, change: Change) -> None:
        viewport = self._viewport
        if viewport is None:
            return
        # A new stack in the played viewport, or the viewport dropped from the grid, ends it.
        if change.source is viewport or not any(v is viewport for v in self.model.viewports):
            self.stop()
