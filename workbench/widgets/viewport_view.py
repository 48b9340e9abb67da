"""One viewport on screen: an ipycanvas MultiCanvas drawing a :class:`Viewport`'s state.

Layer 0 holds the image, layer 1 the overlay (annotations, corner text, orientation
letters, the measurement being drawn). Browser events come in through ipyevents (which gives
buttons, modifier keys and wheel deltas) and go to the shared
:class:`~workbench.widgets.tools.Interaction`; the view redraws when the model changes.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
from ipycanvas import MultiCanvas, hold_canvas
from ipyevents import Event

from workbench.widgets import drawing, overlay
from workbench.widgets.model import Change, Viewport
from workbench.widgets.render import encode_png, render_viewport
from workbench.widgets.tools import Interaction

try:  # The drawing command ipycanvas uses for put_image_data, to send our own PNG bytes.
    from ipycanvas.canvas import COMMANDS as _COMMANDS
except ImportError:  # pragma: no cover - older or newer ipycanvas without it
    _COMMANDS = {}

#: Model changes that need the image layer redrawn (the overlay follows).
IMAGE_CHANGES = frozenset(
    {"stack", "frame", "window", "zoom", "pan", "rotation", "flip", "invert", "size"}
)


def put_png(canvas, png: bytes, x: int, y: int) -> int:
    """Draw PNG bytes at ``(x, y)``; returns the bytes sent.

    ipycanvas's ``put_image_data`` encodes arrays itself (RGB as lossy JPEG, grayscale as
    PNG at zlib level 6). Sending our own lossless, fast-compressed PNG through the same
    drawing command keeps colour images exact and roughly halves the encoding time.
    """
    manager = getattr(canvas, "_canvas_manager", None)
    if manager is None or "putImageData" not in _COMMANDS:
        import io

        import numpy as np
        from PIL import Image

        canvas.put_image_data(np.asarray(Image.open(io.BytesIO(png))), x, y)
        return len(png)
    manager.send_draw_command(canvas, _COMMANDS["putImageData"], [int(x), int(y)], [png])
    return len(png)


class ViewportView:
    """The widgets of one viewport: canvas layers, event sources, a status line.

    Parameters
    ----------
    viewport
        The model it draws.
    index
        Its position in the viewer's grid (passed to the interaction).
    interaction
        The viewer's tool state machine.
    on_drop
        Called with the viewport index on a button release; returns True when the release
        ended a drag from the thumbnail panel (and so is not a tool gesture). Called with
        ``None`` on a press, to drop any drag that ended outside the viewports.
    """

    def __init__(
        self,
        viewport: Viewport,
        index: int,
        interaction: Interaction,
        on_drop: Callable[[int | None], bool] | None = None,
    ) -> None:
        self.viewport = viewport
        self.on_drop = on_drop
        self.index = index
        self.interaction = interaction
        width, height = viewport.size
        self.canvas = MultiCanvas(2, width=width, height=height)
        self.canvas.layout.width = f"{width}px"
        self.canvas.layout.height = f"{height}px"
        self.status = widgets.HTML(layout=widgets.Layout(width=f"{width}px"))
        self.status.add_class("wb-viewport-status")
        self.box = widgets.VBox(
            [self.canvas, self.status],
            layout=widgets.Layout(border="2px solid #333", padding="0", margin="1px"),
        )
        self.box.add_class("wb-viewport")
        self.bytes_sent = 0
        # Moves are throttled (one every 15 ms is smooth and spares the kernel); presses,
        # releases, wheel and keys must all arrive.
        self._moves = Event(
            source=self.canvas, watched_events=["mousemove"], xy_coordinate_system="relative",
            throttle_or_debounce="throttle", wait=15,
        )  # fmt: skip
        self._events = Event(
            source=self.canvas,
            watched_events=["mousedown", "mouseup", "wheel", "dblclick", "keydown", "contextmenu"],
            xy_coordinate_system="relative",
            prevent_default_action=True,
        )
        self._moves.on_dom_event(self._on_event)
        self._events.on_dom_event(self._on_event)
        self._unsubscribe = viewport.on_change(self._on_model_change)
        self.redraw()

    # -- events -----------------------------------------------------------------------------
    def _on_event(self, event: dict) -> None:
        kind = event.get("type")
        x, y = float(event.get("relativeX", 0)), float(event.get("relativeY", 0))
        ui = self.interaction
        if kind == "mousemove":
            ui.move(self.index, x, y)
        elif kind == "mousedown":
            if self.on_drop is not None:
                self.on_drop(None)  # a press here starts a new gesture: forget a stale drag
            button = int(event.get("button", 0))
            shift, ctrl = bool(event.get("shiftKey")), bool(event.get("ctrlKey"))
            ui.press(self.index, x, y, button=button, shift=shift, ctrl=ctrl)
        elif kind == "mouseup":
            if self.on_drop is None or not self.on_drop(self.index):
                ui.release(self.index, x, y)
        elif kind == "dblclick":
            ui.double_click(self.index, x, y)
        elif kind == "wheel":
            ui.wheel(self.index, x, y, float(event.get("deltaY", 0)),
                     ctrl=bool(event.get("ctrlKey") or event.get("metaKey")),
                     shift=bool(event.get("shiftKey")))  # fmt: skip
        elif kind == "keydown":
            ui.key(self.index, str(event.get("key", "")))

    def _on_model_change(self, change: Change) -> None:
        if change.name == "size":
            width, height = self.viewport.size
            self.canvas.width, self.canvas.height = width, height
            self.canvas.layout.width, self.canvas.layout.height = f"{width}px", f"{height}px"
            self.status.layout.width = f"{width}px"
        if change.name in IMAGE_CHANGES:
            self.redraw()

    def close(self) -> None:
        self._unsubscribe()
        self._moves.close()
        self._events.close()

    # -- drawing ----------------------------------------------------------------------------
    def set_active(self, active: bool) -> None:
        self.box.layout.border = "2px solid #2e9bff" if active else "2px solid #333"

    def redraw(self) -> None:
        """Redraw both layers."""
        with hold_canvas():
            self._draw_image()
            self._draw_overlay()
        self.status.value = overlay.status_line(self.viewport)

    def redraw_overlay(self) -> None:
        with hold_canvas():
            self._draw_overlay()
        self.status.value = overlay.status_line(self.viewport)

    def _draw_image(self) -> None:
        layer = self.canvas[0]
        width, height = self.viewport.size
        layer.fill_style = "black"
        layer.fill_rect(0, 0, width, height)
        frame = render_viewport(self.viewport)
        if frame is not None:
            self.bytes_sent += put_png(layer, encode_png(frame.pixels), frame.x, frame.y)

    def _draw_overlay(self) -> None:
        layer = self.canvas[1]
        viewport = self.viewport
        layer.clear()
        store = self.interaction.model.annotations
        selected = self.interaction.selected
        shown = store.visible_on(viewport.image_reference()) if viewport.stack is not None else []
        colours = {
            a.uid: drawing.SELECTED_COLOUR
            if a is selected
            else (drawing.OWN_COLOUR if store.is_own(a) else drawing.GROUP_COLOUR)
            for a in shown
        }
        draft = self.interaction.draft
        if draft is not None and self.interaction.draft_viewport is viewport:
            shown.append(draft)
            colours[draft.uid] = drawing.DRAFT_COLOUR
        transform = viewport.transform()
        for annotation in shown:
            handles = annotation is selected or annotation is draft
            drawing.draw_annotation(
                layer, annotation, transform, colours[annotation.uid], handles=handles
            )
        text = overlay.layout(viewport, shown, self.interaction.model.label_offsets)
        for label in text.labels:
            drawing.draw_label(layer, label, colours[label.key])
        for block in text.blocks:
            drawing.draw_block(layer, block)
