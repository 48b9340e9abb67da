"""A viewport's slice scrollbar: a thin track on the right edge, its thumb at the frame shown.

It is drawn on the overlay layer and driven by the viewport's own pointer events (a press in
the strip along the right edge jumps to that frame, dragging scrolls), so it needs no widget
of its own. This module is only the geometry, in canvas pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Width of the strip along the right edge that takes presses (wider than the drawn track,
#: so it is easy to hit).
HIT_WIDTH = 14
#: Width of the drawn track and thumb.
TRACK_WIDTH = 6
#: Space kept above and below the track (clear of the corner text's first lines).
END_GAP = 4
#: The thumb never gets shorter than this, however many frames.
MIN_THUMB = 12

TRACK_COLOUR = "rgba(255, 255, 255, 0.18)"
THUMB_COLOUR = "rgba(255, 255, 255, 0.7)"


@dataclass(frozen=True)
class Scrollbar:
    """The scrollbar of a ``width`` × ``height`` viewport showing ``count`` frames."""

    width: float
    height: float
    count: int

    @property
    def shown(self) -> bool:
        """A single frame has nothing to scroll."""
        return self.count > 1 and self.height > 2 * END_GAP + MIN_THUMB

    @property
    def track(self) -> tuple[float, float, float, float]:
        """``(x, y, width, height)`` of the drawn track."""
        return (self.width - TRACK_WIDTH - 2, END_GAP, TRACK_WIDTH, self.height - 2 * END_GAP)

    def _thumb_height(self) -> float:
        return max(MIN_THUMB, self.track[3] / self.count)

    def thumb(self, frame: int) -> tuple[float, float, float, float]:
        """``(x, y, width, height)`` of the thumb when ``frame`` (0-based) is shown."""
        x, y, width, height = self.track
        thumb = self._thumb_height()
        position = min(max(frame, 0), self.count - 1) / (self.count - 1)
        return (x, y + position * (height - thumb), width, thumb)

    def hit(self, x: float, y: float) -> bool:
        """Whether a press at ``(x, y)`` is on the scrollbar."""
        return self.shown and x >= self.width - HIT_WIDTH and 0 <= y <= self.height

    def frame_at(self, y: float) -> int:
        """The frame whose thumb is centred nearest to ``y`` (clamped to the stack)."""
        _, top, _, height = self.track
        thumb = self._thumb_height()
        travel = height - thumb
        if travel <= 0:
            return 0
        position = (y - top - thumb / 2) / travel
        return min(max(round(position * (self.count - 1)), 0), self.count - 1)
