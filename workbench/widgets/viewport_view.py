"""One viewport on screen: an ipycanvas MultiCanvas drawing a :class:`Viewport`'s state.

Layer 0 holds the image, layer 1 the overlay (annotations, corner text, orientation letters,
the measurement being drawn), layer 2 the cursor readout, layer 3 the reference lines of the
other viewports' slices and the crosshair (redrawn alone when those move). Browser events come
in through ipyevents (which gives buttons, modifier keys and wheel deltas) on a box around the
canvas (the canvas ignores the pointer, so ipycanvas sends none of its own) and go to the
shared :class:`~workbench.widgets.tools.Interaction`; when the model changes, the view asks
its :class:`~workbench.widgets.pipeline.FramePipeline` for a frame, which paces frames to what
the browser has drawn. The receipt is a :class:`FrameStamp`: each frame's drawing commands end
by painting the frame's number on a 1×1 canvas, whose pixels ipycanvas sends back once it has
run them, that is once the frame's image is decoded and drawn.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

import ipywidgets as widgets
from ipycanvas import Canvas, MultiCanvas, hold_canvas
from ipyevents import Event
from ipywidgets.widgets.trait_types import bytes_serialization
from PIL import Image
from traitlets import Bytes

from workbench.widgets import drawing, mpr, overlay
from workbench.widgets.model import Change, Viewport
from workbench.widgets.pipeline import FRAME_ID_MODULUS, FramePipeline, Throttle
from workbench.widgets.render import encode_jpeg, encode_png, render_viewport
from workbench.widgets.scrollbar import Scrollbar
from workbench.widgets.tools import Interaction, Readout

try:  # The drawing command ipycanvas uses for put_image_data, to send our own PNG bytes.
    from ipycanvas.canvas import COMMANDS as _COMMANDS
except ImportError:  # pragma: no cover - older or newer ipycanvas without it
    _COMMANDS = {}

#: Model changes that need the image layer redrawn (the overlay follows).
IMAGE_CHANGES = frozenset(
    {"stack", "frame", "window", "zoom", "pan", "rotation", "flip", "invert", "size", "slab"}
)
#: Milliseconds between the pointer moves the browser sends. Each message costs the browser
#: and the kernel more than its frame-rate worth past about 40 a second (the kernel answers
#: every message with status messages the page must handle too).
MOVE_INTERVAL_MS = 25
#: Seconds between cursor readout updates while the pointer moves.
READOUT_INTERVAL_SECONDS = 0.05
#: Model changes that leave the value under the pointer as it was (it is the modality value,
#: before any window), so the readout is not redrawn for them.
READOUT_KEEPS = frozenset({"window", "invert"})


def put_image(canvas, data: bytes, x: int, y: int) -> int:
    """Draw encoded image bytes (PNG or JPEG) at ``(x, y)``; returns the bytes sent.

    ipycanvas's ``put_image_data`` encodes arrays itself (RGB as lossy JPEG, grayscale as
    PNG at zlib level 6). Sending our own bytes through the same drawing command (the
    browser decodes whatever image format they are) keeps exact frames exact, roughly
    halves the encoding time, and lets frames shown during a drag be small JPEGs.
    """
    manager = getattr(canvas, "_canvas_manager", None)
    if manager is None or "putImageData" not in _COMMANDS:
        import numpy as np

        canvas.put_image_data(np.asarray(Image.open(io.BytesIO(data))), x, y)
        return len(data)
    manager.send_draw_command(canvas, _COMMANDS["putImageData"], [int(x), int(y)], [data])
    return len(data)


class FrameStamp(Canvas):
    """A 1×1 canvas, never shown, painted with the number of each frame as its last command.

    ipycanvas runs a batch of drawing commands in order, waiting for each image to be decoded
    and drawn, and then sends back the pixels of a canvas that has ``sync_image_data``: the
    colour of this one pixel says which frame the browser has drawn. Unlike a widget value
    set after the frame (the browser handles it as soon as it arrives), it cannot come back
    before the image is on the canvas, and it travels in the frame's own message. ipywidgets
    would echo the pixels back to the browser, which does not need them.
    """

    image_data = Bytes(default_value=None, allow_none=True, read_only=True).tag(
        sync=True, echo_update=False, **bytes_serialization
    )

    def __init__(self) -> None:
        super().__init__(width=1, height=1, sync_image_data=True)

    def stamp(self, number: int) -> None:
        """Paint ``number`` (modulo 2²⁴) as the pixel's colour."""
        self.fill_style = f"#{number % FRAME_ID_MODULUS:06x}"
        self.fill_rect(0, 0, 1, 1)

    def drawn(self) -> int | None:
        """The number the browser painted last, ``None`` before any."""
        if not self.image_data:
            return None
        pixel = Image.open(io.BytesIO(self.image_data)).convert("RGB").getpixel((0, 0))
        red, green, blue = pixel  # type: ignore[misc]
        return (red << 16) | (green << 8) | blue


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
    on_key
        Called with a key the interaction did not use (``Escape`` with nothing to cancel).
    """

    def __init__(
        self,
        viewport: Viewport,
        index: int,
        interaction: Interaction,
        on_drop: Callable[[int | None], bool] | None = None,
        on_key: Callable[[str], object] | None = None,
    ) -> None:
        self.viewport = viewport
        self.on_drop = on_drop
        self.on_key = on_key
        self.index = index
        self.interaction = interaction
        width, height = viewport.size
        self.canvas = MultiCanvas(4, width=width, height=height)
        self.canvas.layout.width = f"{width}px"
        self.canvas.layout.height = f"{height}px"
        # Pointer events go to this box around the canvas, never to the canvas (CSS in
        # toolbar.STYLE): ipycanvas sends each event on its canvas to the kernel, which
        # answers each with two status messages; unused here, they were most of a drag's
        # messages and held back its frames.
        self.surface = widgets.Box([self.canvas])
        self.surface.add_class("wb-surface")
        self.status = widgets.HTML(layout=widgets.Layout(width=f"{width}px"))
        self.status.add_class("wb-viewport-status")
        self._stamp = FrameStamp()
        self._stamp.observe(self._on_stamp, names="image_data")
        self.frames = FramePipeline(self._draw_frame, restamp=self._restamp)
        self.box = widgets.VBox(
            [self.surface, self.status],
            layout=widgets.Layout(border="2px solid #333", padding="0", margin="1px"),
        )
        self.box.add_class("wb-viewport")
        self.bytes_sent = 0
        self._lines_shown = False  # whether layer 3 holds reference lines or a crosshair
        self._decoding = None  # the volume being decoded for a reformatted plane
        self._failed: tuple[object, str] | None = None  # a volume that could not be, and why
        self._pointer: tuple[float, float] | None = None
        self._scrolling = False  # the slice scrollbar is being dragged
        # While a button is held (a W/L drag, a measurement...) the readout waits for the
        # release: fewer messages while every frame counts.
        self._pressed = False
        self._readout = Throttle(READOUT_INTERVAL_SECONDS, self._show_readout)
        # Moves are throttled (see MOVE_INTERVAL_MS); presses, releases, wheel and keys must
        # all arrive. Every event says where it happened on the canvas (relativeX/Y); no
        # xy_coordinate_system, which would also sync an ``xy`` trait at each move: two more
        # messages per move (the update and its echo).
        self._moves = Event(
            source=self.surface, watched_events=["mousemove"],
            throttle_or_debounce="throttle", wait=MOVE_INTERVAL_MS,
        )  # fmt: skip
        self._events = Event(
            source=self.surface,
            watched_events=[
                "mousedown",
                "mouseup",
                "mouseleave",
                "wheel",
                "dblclick",
                "keydown",
                "contextmenu",
            ],
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
        if self._on_scrollbar(kind, x, y, int(event.get("button", 0))):
            return
        if kind == "mousemove":
            ui.move(self.index, x, y)
            self._pointer = (x, y)
            if not self._pressed:
                self._readout()
        elif kind == "mouseleave":
            self._pointer = None
            self._pressed = False
            self._readout()
        elif kind == "mousedown":
            self._pressed = True
            self._readout.cancel()
            self.canvas[2].clear()  # it would not follow the pointer until the release
            if self.on_drop is not None:
                self.on_drop(None)  # a press here starts a new gesture: forget a stale drag
            button = int(event.get("button", 0))
            shift, ctrl = bool(event.get("shiftKey")), bool(event.get("ctrlKey"))
            ui.press(self.index, x, y, button=button, shift=shift, ctrl=ctrl)
        elif kind == "mouseup":
            self._pressed = False
            with self.frames.settling():
                if self.on_drop is None or not self.on_drop(self.index):
                    ui.release(self.index, x, y)
            self._readout()
        elif kind == "dblclick":
            ui.double_click(self.index, x, y)
        elif kind == "wheel":
            ui.wheel(self.index, x, y, float(event.get("deltaY", 0)),
                     ctrl=bool(event.get("ctrlKey") or event.get("metaKey")),
                     shift=bool(event.get("shiftKey")))  # fmt: skip
        elif kind == "keydown":
            key = str(event.get("key", ""))
            if not ui.key(self.index, key) and self.on_key is not None:
                self.on_key(key)

    def scrollbar(self) -> Scrollbar:
        """The slice scrollbar at the viewport's size and stack now."""
        viewport = self.viewport
        count = viewport.frame_count if viewport.stack is not None else 0
        return Scrollbar(*viewport.size, count)

    def _on_scrollbar(self, kind: str | None, x: float, y: float, button: int) -> bool:
        """Presses on the scrollbar and the drags they start; whether the event was used."""
        if kind == "mousedown" and button == 0 and self.scrollbar().hit(x, y):
            self._scrolling = True
        elif not self._scrolling:
            return False
        elif kind == "mouseleave":
            self._scrolling = False
            self.frames.settle()
            return False
        elif kind not in ("mousemove", "mouseup"):
            return False
        if kind != "mouseup":  # the press, and the moves of the drag it starts
            self.viewport.frame = self.scrollbar().frame_at(y)
            return True
        # Moves are throttled, so the last one before the release may never arrive: the
        # release itself says where the thumb was let go.
        self._scrolling = False
        with self.frames.settling():
            self.viewport.frame = self.scrollbar().frame_at(y)
        return True

    def _on_model_change(self, change: Change) -> None:
        if change.name == "size":
            width, height = self.viewport.size
            self.canvas.width, self.canvas.height = width, height
            self.canvas.layout.width, self.canvas.layout.height = f"{width}px", f"{height}px"
            self.status.layout.width = f"{width}px"
        if change.name in IMAGE_CHANGES:
            self.redraw()
            if self._pointer is not None and not self._pressed and change.name not in READOUT_KEEPS:
                self._readout()  # the value under a still pointer changes with the frame

    def close(self) -> None:
        self.frames.close()
        self._stamp.close()
        self._readout.cancel()
        self._unsubscribe()
        self._moves.close()
        self._events.close()

    # -- drawing ----------------------------------------------------------------------------
    def set_active(self, active: bool) -> None:
        self.box.layout.border = "2px solid #2e9bff" if active else "2px solid #333"

    def redraw(self) -> None:
        """Redraw the image and the overlay, as soon as the browser is ready for it."""
        if not mpr.is_ready(self.viewport.stack):
            self._decode_volume()
        self.frames.request()

    def _draw_frame(self, exact: bool, frame_id: int) -> None:
        ready = mpr.is_ready(self.viewport.stack)
        with hold_canvas():
            if ready:
                self._draw_image(exact)
                self._draw_overlay()
            else:
                self._draw_progress()
            self._stamp.stamp(frame_id)  # last: painted once the frame is drawn
        if ready and exact:
            # The status line says in words what the corner text shows; it follows exact
            # frames only: while dragging, each update would be one more message and one
            # more layout of the page per frame.
            self.status.value = overlay.status_line(self.viewport)

    def _restamp(self, frame_id: int) -> None:
        with hold_canvas():
            self._stamp.stamp(frame_id)

    def _on_stamp(self, change) -> None:
        drawn = self._stamp.drawn()
        if drawn is not None:
            self.frames.acknowledged(drawn)

    def redraw_overlay(self) -> None:
        if not mpr.is_ready(self.viewport.stack):
            return  # the progress of the decoding is shown instead
        with hold_canvas():
            self._draw_overlay()
        self.status.value = overlay.status_line(self.viewport)

    # -- the first decoding of a volume for a reformatted plane ----------------------------
    def _decode_volume(self) -> None:
        """Decode the volume behind the plane shown in the background, showing progress.

        The image follows once it is done; in a plain script (no event loop) it is decoded
        at once.
        """
        viewport = self.viewport
        volume = viewport.volume
        if self._decoding is volume or (self._failed and self._failed[0] is volume):
            self.status.value = self.progress_text()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            viewport.volumes.get(volume)
            self.status.value = overlay.status_line(viewport)
            return
        self._decoding = volume

        def progress(done: int, total: int) -> None:  # in the decoding thread
            loop.call_soon_threadsafe(self._show_progress)

        def finished(future) -> None:  # in the decoding thread
            loop.call_soon_threadsafe(self._decoded, volume, future.exception())

        self._show_progress()
        viewport.volumes.load(volume, progress).add_done_callback(finished)

    def _decoded(self, volume, error: BaseException | None) -> None:
        if self._decoding is volume:
            self._decoding = None
        if error is not None:
            # Said on the viewport, not retried at every redraw.
            self._failed = (volume, f"The volume could not be decoded: {error}")
        if self.viewport.volume is volume:
            self.redraw()

    def progress_text(self) -> str:
        """``"Decoding the volume for the coronal plane: 120/300 slices"`` (or why it
        could not be)."""
        viewport = self.viewport
        if self._failed and self._failed[0] is viewport.volume:
            return self._failed[1]
        done, total = viewport.volumes.progress(viewport.volume) or (
            0,
            viewport.volume.sizes["frame"],
        )
        return f"Decoding the volume for the {viewport.plane} plane: {done}/{total} slices"

    def _show_progress(self) -> None:
        if mpr.is_ready(self.viewport.stack):
            return
        self.status.value = self.progress_text()
        with hold_canvas():
            self._draw_progress()

    def _draw_progress(self) -> None:
        layer = self.canvas[0]
        width, height = self.viewport.size
        layer.fill_style = "black"
        layer.fill_rect(0, 0, width, height)
        self.canvas[1].clear()
        self.canvas[3].clear()
        self._lines_shown = False
        drawing.draw_message(layer, self.progress_text(), (width, height))

    def _draw_image(self, exact: bool) -> None:
        layer = self.canvas[0]
        width, height = self.viewport.size
        layer.fill_style = "black"
        layer.fill_rect(0, 0, width, height)
        frame = render_viewport(self.viewport)
        if frame is not None:
            encoded = encode_png(frame.pixels) if exact else encode_jpeg(frame.pixels)
            self.bytes_sent += put_image(layer, encoded, frame.x, frame.y)

    def _show_readout(self) -> None:
        """Draw the value and position under the pointer (nothing when it is off the image)."""
        readout: Readout | None = None
        if self._pointer is not None:
            readout = self.interaction.hover(self.index, *self._pointer)
        block = overlay.readout_block(overlay.readout_lines(readout), self.viewport.size)
        layer = self.canvas[2]
        with hold_canvas():
            layer.clear()
            if block is not None:
                drawing.draw_block(layer, block, background=drawing.LABEL_BACKGROUND)

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
        self._draw_reference_lines()
        text = overlay.layout(viewport, shown, self.interaction.model.label_offsets)
        for label in text.labels:
            drawing.draw_label(layer, label, colours[label.key])
        for block in text.blocks:
            drawing.draw_block(layer, block)
        drawing.draw_scrollbar(layer, self.scrollbar(), viewport.frame)

    def redraw_reference_lines(self) -> None:
        """Redraw the other viewports' slices and the crosshair (after they moved)."""
        if mpr.is_ready(self.viewport.stack):
            with hold_canvas():
                self._draw_reference_lines()

    def _draw_reference_lines(self) -> None:
        """The slices of the other viewports of this patient space, and the crosshair."""
        layer = self.canvas[3]
        if self._lines_shown:  # clearing an empty layer still costs the browser a composite
            layer.clear()
            self._lines_shown = False
        viewport = self.viewport
        reference = viewport.frame_of_reference
        if reference is None:
            return
        transform = viewport.transform()
        model = self.interaction.model
        for other in model.viewports:
            if other is viewport or other.frame_of_reference != reference:
                continue
            line = mpr.reference_line(viewport.stack, viewport.frame, other.stack, other.frame)
            if line is not None:
                start, end = transform.to_display(line)
                colour = drawing.PLANE_COLOURS.get(other.plane, drawing.PLANE_COLOURS[None])
                drawing.draw_reference_line(layer, start, end, colour)
                self._lines_shown = True
        crosshair = model.crosshair
        if crosshair is not None and crosshair.frame_of_reference == reference:
            frame, column, row, _ = mpr.locate(viewport.stack, crosshair.point)
            if frame == viewport.frame:
                drawing.draw_crosshair_point(layer, transform.to_display((column, row)))
                self._lines_shown = True
