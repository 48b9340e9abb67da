"""The thumbnail panel: studies, each listing its stacks with a small preview.

Previews are rendered in a background thread after the panel appears, one at a time, and
kept (keyed by the stack's pixel data) so that rebuilding the panel, or changing the
viewport layout, never renders them again. However many stacks there are, every thumbnail
keeps its size and the panel scrolls. Non-image objects of the source (presentation states,
reports...) are listed below the stacks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor

import ipywidgets as widgets
import numpy as np
import xarray as xr
from ipyevents import Event
from PIL import Image

from workbench.io import display
from workbench.io.catalog import Series
from workbench.widgets.cache import load_frame, stack_key
from workbench.widgets.render import encode_png
from workbench.widgets.stacks import StoredObjects, group_by_study, preview_frame, stack_label

THUMBNAIL_SIZE = 96
_FIXED = {"flex": "0 0 auto"}


#: ``frames(stack, index)`` gives a decoded frame (:func:`load_frame`, or a frame cache's
#: ``get`` so that a viewport showing the same frame does not decode or fetch it again).
Frames = Callable[[xr.DataArray, int], np.ndarray]


def render_thumbnail(
    stack: xr.DataArray, size: int = THUMBNAIL_SIZE, frames: Frames = load_frame
) -> bytes:
    """PNG bytes of the stack's :func:`~workbench.widgets.stacks.preview_frame`, shrunk to fit
    a ``size`` square."""
    index = preview_frame(stack)
    pixels = display.render(frames(stack, index), display.frame_attrs(stack, index))
    image = Image.fromarray(np.ascontiguousarray(pixels))
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    return encode_png(np.asarray(image), compress_level=6)


class ThumbnailCache:
    """Rendered previews by stack, filled by one background thread; ``frames`` gives the
    decoded frames they are made from."""

    def __init__(self, frames: Frames = load_frame) -> None:
        self._frames = frames
        self._png: dict[Hashable, bytes] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thumbnails")
        self.renders = 0

    def get(self, stack: xr.DataArray) -> bytes | None:
        with self._lock:
            return self._png.get(stack_key(stack))

    def request(self, stack: xr.DataArray, done: Callable[[bytes], None]) -> None:
        """Call ``done(png)`` now if cached, else once rendered in the background."""
        cached = self.get(stack)
        if cached is not None:
            done(cached)
            return

        def work() -> None:
            try:
                png = render_thumbnail(stack, frames=self._frames)
            except Exception:  # a stack that cannot be previewed still gets its label
                return
            with self._lock:
                self._png[stack_key(stack)] = png
                self.renders += 1
            done(png)

        self._pool.submit(work)

    def close(self) -> None:
        """Stop the background thread (previews not yet rendered are abandoned)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


class ThumbnailPanel:
    """A vertical list of studies and their stacks; clicking a stack shows it.

    A press on a thumbnail also starts a drag: releasing the button over a viewport shows the
    stack there (the viewer handles the release, see ``on_drag``).

    Parameters
    ----------
    stacks
        The viewer's stacks.
    on_pick
        Called with a stack index when the user clicks its thumbnail.
    on_drag
        Called with a stack index when a button goes down on its thumbnail.
    cache
        Where previews are kept.
    objects
        Series of non-image objects, listed by kind below the stacks.
    height
        The panel's height in screen pixels; it scrolls beyond that.
    """

    def __init__(
        self,
        stacks: Sequence[xr.DataArray],
        on_pick: Callable[[int], None],
        cache: ThumbnailCache,
        on_drag: Callable[[int], None] | None = None,
        *,
        objects: Sequence[Series | StoredObjects] = (),
        height: int = 900,
    ) -> None:
        self.on_pick = on_pick
        self.on_drag = on_drag
        self.cache = cache
        self.objects = list(objects)
        self._events: list[Event] = []
        self.items: list[widgets.Box] = []
        self.items_by_stack: dict[int, widgets.Box] = {}
        # Children never shrink (flex 0 0 auto below): the list scrolls instead.
        self.box = widgets.VBox(
            layout=widgets.Layout(
                width="150px", flex="0 0 150px", overflow="hidden auto", max_height=f"{height}px"
            )
        )
        self.box.add_class("wb-thumbnails")
        self.update(stacks)

    def update(self, stacks: Sequence[xr.DataArray]) -> None:
        """Rebuild the list (previews come from the cache when already rendered)."""
        for event in self._events:
            event.close()
        self._events, self.items = [], []
        self.items_by_stack = {}
        children: list[widgets.Widget] = []
        for group in group_by_study(stacks):
            header = widgets.HTML(f"<b style='font-size:11px'>{_escape(group.label)}</b>",
                                  layout=_FIXED)  # fmt: skip
            children.append(header)
            for index in group.stacks:
                children.append(self._item(stacks[index], index))
        if self.objects:
            children.append(self._objects())
        self.box.children = children

    def _objects(self) -> widgets.HTML:
        lines = []
        for series in self.objects:
            text = " · ".join(p for p in (series.modality, series.description) if p)
            lines.append(f"<li title='{_escape(series.uid)}'>{_escape(series.kind)}"
                         f"{': ' + _escape(text) if text else ''}</li>")  # fmt: skip
        listing = widgets.HTML(
            "<div style='font-size:11px'><b>Other objects</b><ul style='margin:0;"
            f"padding-left:14px'>{''.join(lines)}</ul></div>",
            layout=_FIXED,
        )
        listing.add_class("wb-objects")
        return listing

    def _item(self, stack: xr.DataArray, index: int) -> widgets.Box:
        image = widgets.Image(
            format="png",
            layout=widgets.Layout(width=f"{THUMBNAIL_SIZE}px", height=f"{THUMBNAIL_SIZE}px",
                                  object_fit="contain", flex="0 0 auto"),
        )  # fmt: skip
        label = widgets.HTML(
            f"<span class='wb-thumbnail-label' style='font-size:11px;line-height:1.2'>"
            f"{_escape(stack_label(stack))}</span>"
        )
        item = widgets.VBox(
            [image, label],
            layout=widgets.Layout(
                border="1px solid #444", margin="2px", padding="2px", flex="0 0 auto"
            ),
        )
        item.add_class("wb-thumbnail")
        # Preventing the default of mousedown stops the browser's own image drag, so the
        # release lands on (and is reported by) the viewport under the pointer.
        click = Event(
            source=item, watched_events=["click", "mousedown"], prevent_default_action=True
        )
        click.on_dom_event(lambda event, i=index: self._on_event(event, i))
        self._events.append(click)
        self.items.append(item)
        self.items_by_stack[index] = item

        def show(png: bytes) -> None:
            image.value = png

        self.cache.request(stack, show)
        return item

    def _on_event(self, event: dict, index: int) -> None:
        if event.get("type") == "mousedown":
            if self.on_drag is not None:
                self.on_drag(index)
        else:
            self.on_pick(index)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
