"""Turning pointer, wheel and key events into model changes.

:class:`Interaction` is the whole behaviour of the toolbar's tools, written against the model
and display coordinates only: the widget forwards browser events to it, and tests drive it
directly. Mouse buttons follow common PACS viewers: the left button uses the active tool,
the middle button pans and the right button zooms; the wheel scrolls through frames, or zooms
at the pointer while Ctrl or Shift is held.

Drawing tools accept both press-drag-release and click-move-click: a point is fixed whenever
the button is released away from the previous point. Multi-point measurements (angle: 3
points, Cobb: two lines, VHS: long axis, short axis, then vertebral boundaries from T4) show
their value while they are drawn; the VHS takes boundaries until Enter or a double click.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from workbench.io.presentation import Annotation
from workbench.widgets import overlay
from workbench.widgets.cine import Cine
from workbench.widgets.measurements import REQUIRED_POINTS, modality_unit, probe_value
from workbench.widgets.model import (
    DRAWING_TOOLS,
    TOOLS,
    Change,
    Observable,
    ViewerModel,
    Viewport,
)
from workbench.widgets.placement import Label

#: Display pixels a released point must be from the previous one to count as a new point.
CLICK_SLOP = 3.0
#: Display-pixel distance within which the select tool grabs a point or an outline.
HIT_RADIUS = 8.0
#: Wheel zoom step per notch while the modifier is held.
WHEEL_ZOOM_STEP = 1.15
#: Display pixels of vertical drag per frame with the scroll tool.
SCROLL_PIXELS_PER_FRAME = 6.0
#: Zoom step of the + and - keys.
KEY_ZOOM_STEP = 1.25
#: Frames moved by each navigation key.
FRAME_KEYS = {
    "ArrowDown": 1, "ArrowRight": 1, "ArrowUp": -1, "ArrowLeft": -1,
    "PageDown": 10, "PageUp": -10,
}  # fmt: skip

#: The keyboard shortcuts over a viewport, as the help lists them: (keys, what they do).
SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("1 … 9", "window preset by its number in the presets menu"),
    ("i", "invert grey levels"),
    ("r", "reset the display"),
    ("space", "start or stop cine from the frame on screen"),
    ("+ / −", "zoom in / out"),
    ("↑ ← / ↓ →", "previous / next frame"),
    ("PgUp / PgDn", "10 frames back / forward"),
    ("Home / End", "first / last frame"),
    ("Enter", "finish a VHS"),
    ("Esc", "cancel drawing, clear the selection, else leave full window"),
    ("Del", "delete the selected annotation"),
)

#: Which tools the toolbar offers per modality ("*" for any modality not listed).
DEFAULT_TOOLBAR: dict[str, tuple[str, ...]] = {
    "*": (
        "window", "zoom", "pan", "scroll", "select", "crosshair", "length", "angle",
        "ellipse", "rectangle", "probe", "arrow", "text",
    ),
    # Projection radiographs have no patient space to point at.
    "CR": tuple(t for t in TOOLS if t != "crosshair"),
    "DX": tuple(t for t in TOOLS if t != "crosshair"),
    "RG": tuple(t for t in TOOLS if t != "crosshair"),
    "US": (
        "window", "zoom", "pan", "scroll", "select", "length", "angle",
        "ellipse", "rectangle", "arrow", "text",
    ),
}  # fmt: skip


def toolbar_tools(
    modality: str | None, settings: Sequence[str] | Mapping[str, Sequence[str]] | None = None
) -> tuple[str, ...]:
    """The tools to offer for a modality.

    Parameters
    ----------
    modality
        (0008,0060) Modality of the active stack.
    settings
        ``None`` for :data:`DEFAULT_TOOLBAR`; a list of tool names for every modality; or a
        mapping of modality (or ``"*"``) to tool names.

    Raises
    ------
    ValueError
        Naming any unknown tool.
    """
    if settings is None:
        settings = DEFAULT_TOOLBAR
    if isinstance(settings, Mapping):
        chosen = settings.get(modality or "*", settings.get("*", TOOLS))
    else:
        chosen = settings
    chosen = tuple(chosen)
    unknown = [t for t in chosen if t not in TOOLS]
    if unknown:
        raise ValueError(f"unknown tools {unknown}; known tools are {TOOLS}")
    return chosen


@dataclass(frozen=True)
class Readout:
    """What lies under the pointer: a pixel of the frame shown and its value.

    Attributes
    ----------
    column, row
        The pixel, 0-based, in the stored image's orientation.
    value
        Its modality value (HU for CT), or its ``(R, G, B)`` for colour images.
    unit
        The value's unit ("" when unknown).
    position
        The pixel centre in patient coordinates (LPS, mm), when the stack has a geometry.
    """

    column: int
    row: int
    value: float | tuple[float, ...]
    unit: str
    position: tuple[float, float, float] | None


def readout_at(viewport: Viewport, x: float, y: float) -> Readout | None:
    """The :class:`Readout` under display point ``(x, y)``; ``None`` off the image."""
    if viewport.stack is None:
        return None
    column, row = (float(v) for v in viewport.transform().to_image((x, y)))
    value = probe_value(viewport.pixels(), (column, row))
    if value is None:
        return None
    column, row = round(column), round(row)
    attrs = viewport.attrs
    position = None
    if attrs.get("affine") is not None and attrs.get("affine_index_order") == ["x", "y", "frame"]:
        lps = np.asarray(attrs["affine"], dtype=float) @ (column, row, viewport.frame, 1.0)
        position = (float(lps[0]), float(lps[1]), float(lps[2]))
    return Readout(column, row, value, modality_unit(attrs), position)


@dataclass
class _Drag:
    mode: str
    viewport: Viewport
    start: tuple[float, float]
    last: tuple[float, float]
    initial: object = None
    target: Annotation | None = None
    handle: int | None = None


class Interaction(Observable):
    """The state machine behind the tools of a :class:`ViewerModel`.

    Coordinates are display (canvas) pixels of the viewport ``index``. Changes named
    ``"draft"`` (the measurement being drawn) and ``"selected"`` are reported to listeners so
    the widget can redraw its interaction layer.

    Attributes
    ----------
    draft
        The annotation being drawn, not yet in the model.
    selected
        The annotation picked with the select tool.
    label
        Text given to new arrows and text notes.
    cine
        What the space bar starts and stops (``None``: the key does nothing).
    """

    def __init__(self, model: ViewerModel, cine: Cine | None = None) -> None:
        super().__init__()
        self.model = model
        self.cine = cine
        self._draft: Annotation | None = None
        self._draft_viewport: Viewport | None = None
        self._selected: Annotation | None = None
        self._drag: _Drag | None = None
        self.label = ""
        model.on_change(self._cancel_on_navigation, names=("frame", "stack", "tool", "layout"))

    # -- public state -----------------------------------------------------------------------
    @property
    def draft(self) -> Annotation | None:
        return self._draft

    @property
    def draft_viewport(self) -> Viewport | None:
        return self._draft_viewport

    @property
    def selected(self) -> Annotation | None:
        return self._selected

    def _set_draft(self, annotation: Annotation | None, viewport: Viewport | None) -> None:
        self._draft, self._draft_viewport = annotation, viewport
        self._emit(Change(self, "draft", None, annotation))

    def set_label(self, text: str) -> None:
        """Set the text for new arrows and notes; also relabels a selected arrow or note."""
        self.label = text
        selected = self._selected
        if (
            selected is not None
            and selected.kind in ("arrow", "text")
            and self.model.annotations.is_own(selected)
        ):
            selected.text = text
            self.model.annotations.updated(selected)

    def select(self, annotation: Annotation | None) -> None:
        """Select an annotation (``None`` to clear the selection)."""
        self._selected = annotation
        self._emit(Change(self, "selected", None, annotation))

    def _cancel_on_navigation(self, change: Change) -> None:
        if self._draft is not None and (
            change.source is self._draft_viewport or change.name in ("tool", "layout")
        ):
            self._set_draft(None, None)

    # -- helpers ----------------------------------------------------------------------------
    def _viewport(self, index: int) -> Viewport:
        if self.model.active != index:
            self.model.active = index
        return self.model.viewports[index]

    @staticmethod
    def _image_point(viewport: Viewport, x: float, y: float) -> tuple[float, float]:
        c, r = viewport.transform().to_image((x, y))
        return (float(c), float(r))

    def _set_crosshair(self, viewport: Viewport, x: float, y: float) -> None:
        """Put the crosshair on the patient point under display point ``(x, y)``."""
        column, row = self._image_point(viewport, x, y)
        self.model.crosshair = self.model.point_at(viewport, column, row)

    def _measure(self, annotation: Annotation, viewport: Viewport) -> None:
        self.model.measure(annotation, viewport)

    # -- pointer ----------------------------------------------------------------------------
    def press(
        self, index: int, x: float, y: float, *, button: int = 0, shift: bool = False,
        ctrl: bool = False,
    ) -> None:  # fmt: skip
        """A mouse button went down at display point ``(x, y)`` of viewport ``index``."""
        viewport = self._viewport(index)
        if viewport.stack is None:
            return
        mode = {1: "pan", 2: "zoom"}.get(button, viewport.tool)
        if mode in DRAWING_TOOLS:
            self._press_drawing(viewport, mode, x, y)
            return
        initial: object = None
        target, handle = None, None
        if mode == "window":
            initial = viewport.effective_window()
            if initial is None:  # colour images have no window
                return
        elif mode == "zoom":
            initial = viewport.effective_zoom
        elif mode == "pan":
            initial = viewport.pan
        elif mode == "scroll":
            initial = viewport.frame
        elif mode == "crosshair":
            if viewport.frame_of_reference is None:
                return
            self._set_crosshair(viewport, x, y)
        elif mode == "select" and (label := self.label_at(viewport, x, y)) is not None:
            # A label is moved on its own, away from what it labels.
            mode, target = "label", self.model.annotations.find(label.key)
            box = label.block.box
            initial = (box.x - label.anchor[0], box.y - label.anchor[1])
            self.select(target)
        elif mode == "select":
            target, handle = self.hit_test(viewport, x, y)
            self.select(target)
            if target is None:
                return
            initial = list(target.points)
        self._drag = _Drag(mode, viewport, (x, y), (x, y), initial, target, handle)

    def move(self, index: int, x: float, y: float) -> None:
        """The pointer moved (button down or not)."""
        if self._draft is not None and self._draft_viewport is self.model.viewports[index]:
            self._move_draft(x, y)
            return
        drag = self._drag
        if drag is None or drag.viewport is not self.model.viewports[index]:
            return
        dx, dy = x - drag.start[0], y - drag.start[1]
        drag.last = (x, y)
        viewport = drag.viewport
        if drag.mode == "window":
            center, width = drag.initial  # type: ignore[misc]
            # Sensitivity scales with the window so a narrow brain window and a wide bone
            # window both move comfortably.
            step = max(width, 10.0) / 128.0
            viewport.window = (center + dy * step, max(1.0, width + dx * step))
        elif drag.mode == "zoom":
            factor = math.exp(-dy / 150.0)
            viewport.zoom = drag.initial * factor  # type: ignore[operator]
        elif drag.mode == "pan":
            px, py = drag.initial  # type: ignore[misc]
            viewport.pan = (px + dx, py + dy)
        elif drag.mode == "scroll":
            frames = int(dy / SCROLL_PIXELS_PER_FRAME)
            target = min(max(drag.initial + frames, 0), viewport.frame_count - 1)  # type: ignore[operator]
            if target != viewport.frame:
                viewport.frame = target
        elif drag.mode == "crosshair":
            self._set_crosshair(viewport, x, y)
        elif drag.mode == "select" and drag.target is not None:
            self._drag_annotation(drag, x, y)
        elif drag.mode == "label" and drag.target is not None:
            ox, oy = drag.initial  # type: ignore[misc]
            self.model.label_offsets[drag.target.uid] = (ox + dx, oy + dy)
            self.model.annotations.updated(drag.target)

    def hover(self, index: int, x: float, y: float) -> Readout | None:
        """The readout under the pointer at display point ``(x, y)`` of viewport ``index``.

        ``None`` off the image, and while a drag changes the view (the value under a still
        pointer is what a reader looks for).
        """
        if self._drag is not None:
            return None
        return readout_at(self.model.viewports[index], x, y)

    def release(self, index: int, x: float, y: float) -> None:
        """The mouse button went up."""
        if self._draft is not None and self._draft_viewport is self.model.viewports[index]:
            self._release_drawing(x, y)
            return
        drag = self._drag
        if drag is not None and drag.last != (x, y):
            # Moves are throttled in the browser: the last ones before the release may come
            # after it or not at all, so the gesture ends where the button went up.
            self.move(index, x, y)
        self._drag = None
        if drag is not None and drag.mode == "select" and drag.target is not None:
            self.model.annotations.updated(drag.target)

    def double_click(self, index: int, x: float, y: float) -> None:
        """Finish an open-ended measurement (the VHS's vertebral boundaries)."""
        if self._draft is not None and self._draft.kind == "vhs":
            self.finish()

    def wheel(
        self, index: int, x: float, y: float, delta: float, *, ctrl: bool = False,
        shift: bool = False,
    ) -> None:  # fmt: skip
        """A wheel notch: scroll frames, or zoom at the pointer with Ctrl/Shift held."""
        viewport = self._viewport(index)
        if viewport.stack is None or delta == 0:
            return
        if ctrl or shift:
            factor = WHEEL_ZOOM_STEP if delta < 0 else 1.0 / WHEEL_ZOOM_STEP
            viewport.zoom_by(factor, anchor=(x, y))
        else:
            viewport.scroll(1 if delta > 0 else -1)

    def key(self, index: int, key: str) -> bool:
        """A key press (the browser's ``KeyboardEvent.key``); returns whether it was used.

        See :data:`SHORTCUTS`.
        """
        viewport = self._viewport(index)
        if key == "Escape":
            if self._draft is None and self._selected is None:
                return False  # nothing to cancel here: the viewer may use it
            self._set_draft(None, None)
            self.select(None)
        elif key == "Enter":
            self.finish()
        elif key in ("Delete", "Backspace") and self._selected is not None:
            if self.model.annotations.is_own(self._selected):
                self.model.annotations.remove(self._selected)
            self.select(None)
        elif viewport.stack is None:
            return False
        elif key in FRAME_KEYS:
            viewport.scroll(FRAME_KEYS[key])
        elif key == "Home":
            viewport.frame = 0
        elif key == "End":
            viewport.frame = viewport.frame_count - 1
        elif key in ("+", "="):
            viewport.zoom_by(KEY_ZOOM_STEP)
        elif key in ("-", "_"):
            viewport.zoom_by(1.0 / KEY_ZOOM_STEP)
        elif key.lower() == "i":
            viewport.invert = not viewport.invert
        elif key.lower() == "r":
            viewport.reset()
        elif key == " " and self.cine is not None:
            self.cine.toggle()
        elif len(key) == 1 and key in "123456789":
            presets = list(viewport.presets())
            number = int(key)
            if number > len(presets):
                return False
            viewport.apply_preset(presets[number - 1])
        else:
            return False
        return True

    # -- drawing ----------------------------------------------------------------------------
    def _press_drawing(self, viewport: Viewport, kind: str, x: float, y: float) -> None:
        point = self._image_point(viewport, x, y)
        if self._draft is not None and self._draft_viewport is viewport:
            self._draft.points[-1] = point
            self._measure(self._draft, viewport)
            self._emit(Change(self, "draft", None, self._draft))
            return
        if REQUIRED_POINTS[kind] == 1:
            text = self.label or ("Text" if kind == "text" else "")
            annotation = Annotation(kind, [point], image=viewport.image_reference(), text=text)
            self._measure(annotation, viewport)
            self.model.annotations.add(annotation)
            return
        text = self.label if kind == "arrow" else ""
        draft = Annotation(kind, [point, point], image=viewport.image_reference(), text=text)
        self._set_draft(draft, viewport)

    def _move_draft(self, x: float, y: float) -> None:
        draft, viewport = self._draft, self._draft_viewport
        assert draft is not None and viewport is not None
        draft.points[-1] = self._image_point(viewport, x, y)
        self._measure(draft, viewport)
        self._emit(Change(self, "draft", None, draft))

    def _release_drawing(self, x: float, y: float) -> None:
        draft, viewport = self._draft, self._draft_viewport
        assert draft is not None and viewport is not None
        draft.points[-1] = self._image_point(viewport, x, y)
        previous = viewport.transform().to_display(draft.points[-2])
        if math.hypot(x - previous[0], y - previous[1]) <= CLICK_SLOP:
            return  # a click that starts a segment; the point keeps following the pointer
        if len(draft.points) >= REQUIRED_POINTS[draft.kind] and draft.kind != "vhs":
            self.finish()
            return
        draft.points.append(draft.points[-1])
        self._measure(draft, viewport)
        self._emit(Change(self, "draft", None, draft))

    def finish(self) -> Annotation | None:
        """Add the measurement being drawn to the model (if it has its points)."""
        draft, viewport = self._draft, self._draft_viewport
        if draft is None or viewport is None:
            return None
        if draft.kind == "vhs" and len(draft.points) > REQUIRED_POINTS["vhs"]:
            # The last point only follows the pointer; it is not a marked boundary.
            draft.points.pop()
        self._set_draft(None, None)
        if len(draft.points) < REQUIRED_POINTS[draft.kind]:
            return None
        self._measure(draft, viewport)
        return self.model.annotations.add(draft)

    # -- selecting and editing --------------------------------------------------------------
    def hit_test(
        self, viewport: Viewport, x: float, y: float
    ) -> tuple[Annotation | None, int | None]:
        """The annotation (and point index, if a point was hit) under a display point.

        Only the user's own annotations can be picked; loaded presentation states are
        read-only.
        """
        transform = viewport.transform()
        store = self.model.annotations
        candidates = [a for a in store.visible_on(viewport.image_reference()) if store.is_own(a)]
        for annotation in reversed(candidates):
            shown = transform.to_display(annotation.points)
            distances = np.hypot(shown[:, 0] - x, shown[:, 1] - y)
            nearest = int(np.argmin(distances))
            if distances[nearest] <= HIT_RADIUS:
                return annotation, nearest
            if _near_outline(annotation.kind, shown, (x, y)):
                return annotation, None
        return None, None

    def label_at(self, viewport: Viewport, x: float, y: float) -> Label | None:
        """The measurement label under a display point, as the viewport draws it."""
        shown = self.model.annotations.visible_on(viewport.image_reference())
        return overlay.layout(viewport, shown, self.model.label_offsets).label_at(x, y)

    def _drag_annotation(self, drag: _Drag, x: float, y: float) -> None:
        annotation, viewport = drag.target, drag.viewport
        assert annotation is not None
        initial: list = drag.initial  # type: ignore[assignment]
        if drag.handle is not None:
            points = list(initial)
            points[drag.handle] = self._image_point(viewport, x, y)
        else:
            start = self._image_point(viewport, *drag.start)
            now = self._image_point(viewport, x, y)
            dc, dr = now[0] - start[0], now[1] - start[1]
            points = [(c + dc, r + dr) for c, r in initial]
        annotation.points = points
        self._measure(annotation, viewport)
        self.model.annotations.updated(annotation)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    length2 = float(np.dot(ab, ab))
    t = 0.0 if length2 == 0 else float(np.clip(np.dot(p - a, ab) / length2, 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))


def _near_outline(kind: str, shown: np.ndarray, point: tuple[float, float]) -> bool:
    p = np.asarray(point, dtype=float)
    if kind in ("rectangle", "ellipse"):
        (x0, y0), (x1, y1) = shown.min(axis=0), shown.max(axis=0)
        return (
            x0 - HIT_RADIUS <= p[0] <= x1 + HIT_RADIUS
            and y0 - HIT_RADIUS <= p[1] <= y1 + HIT_RADIUS
        )
    if kind in ("cobb", "vhs"):
        pairs = [(0, 1), (2, 3)] + [(i, i + 1) for i in range(4, len(shown) - 1)]
    else:
        pairs = [(i, i + 1) for i in range(len(shown) - 1)]
    return any(
        _segment_distance(p, shown[i], shown[j]) <= HIT_RADIUS for i, j in pairs if j < len(shown)
    )
