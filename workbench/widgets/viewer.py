"""The viewer widget: thumbnail panel, toolbar and a grid of viewports in one notebook cell.

>>> from workbench.widgets import Viewer              # doctest: +SKIP
>>> viewer = Viewer("study_folder/")                   # doctest: +SKIP
>>> viewer                                             # doctest: +SKIP
>>> viewer.layout = (1, 2)                             # doctest: +SKIP
>>> viewer.viewports[0].window = (40, 400)             # doctest: +SKIP
>>> viewer.annotations.table()                         # doctest: +SKIP

All state lives in :class:`~workbench.widgets.model.ViewerModel` (``viewer.model``); the
widgets here only show it and turn clicks into model changes.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable, Mapping, Sequence

import ipywidgets as widgets
import xarray as xr
from ipyevents import Event

from workbench.widgets.annotations_panel import AnnotationsPanel
from workbench.widgets.cache import DEFAULT_MAX_BYTES, FrameCache
from workbench.widgets.cine import Cine
from workbench.widgets.hanging import DEFAULT_PROTOCOLS, HangingProtocol, hang
from workbench.widgets.model import (
    NAMED_LAYOUTS,
    TOOLS,
    AnnotationStore,
    Change,
    Links,
    ViewerModel,
    Viewport,
)
from workbench.widgets.mpr import DEFAULT_VOLUME_BYTES, VolumeCache
from workbench.widgets.stacks import LoadResult, load_stacks, preview_frame, stacks_from_index
from workbench.widgets.states import PresentationStates, choose_store
from workbench.widgets.thumbnails import ThumbnailCache, ThumbnailPanel
from workbench.widgets.toolbar import STYLE, Toolbar
from workbench.widgets.tools import DEFAULT_TOOLBAR, Interaction, toolbar_tools
from workbench.widgets.viewport_view import ViewportView

ToolbarSettings = Sequence[str] | Mapping[str, Sequence[str]] | None


def _checked_toolbar_settings(settings: ToolbarSettings) -> ToolbarSettings:
    """``settings`` as given, once every modality's tool names are known to be valid."""
    if isinstance(settings, Mapping):
        for modality in settings:
            toolbar_tools(modality, settings)
    else:
        toolbar_tools(None, settings)
    return settings


class Viewer:
    """A DICOM viewer for notebooks.

    Parameters
    ----------
    source
        What to show: a folder, a file or a list of files (scanned and opened lazily with
        :mod:`workbench.io`), a DICOMweb series or study URL
        (``https://host/dicom-web/studies/{study}[/series/{series}]``; frames are fetched
        around the slice shown), an ``xarray.DataArray`` from
        :func:`workbench.io.open_series`, or a list of them.
    toolbar
        Which tools the toolbar offers: a list of tool names, or a mapping of modality (and
        ``"*"`` for the rest) to tool names. Default: per-modality defaults
        (:data:`workbench.widgets.tools.DEFAULT_TOOLBAR`).
    layout
        ``(rows, columns)`` of the viewport grid.
    size
        ``(width, height)`` in screen pixels of the whole viewport grid.
    cache_bytes
        Memory budget for decoded frames shared by all viewports.
    volume_bytes
        Memory budget for whole volumes decoded for reformatted planes (``layout="mpr"``,
        :attr:`Viewport.plane`).
    hanging
        Lay the viewer out by hanging protocols (see :mod:`workbench.widgets.hanging`):
        ``True`` for the defaults, or a list of protocols tried in order.
    thumbnails
        Show the thumbnail panel.
    states
        Where "Save annotations" keeps presentation states (GSPS): a
        :class:`workbench.pacs.Index` (the default of :meth:`from_index`), a folder, or a store
        from :mod:`workbench.io.gsps.store`.
    state_dir
        The state folder for images opened from files; default: ``$WORKBENCH_STATE_DIR``, else
        ``workbench/states`` in the user's data folder. States are never written beside the
        images.
    user
        Content Creator's Name of saved states; default: ``$WORKBENCH_USER``, else the login
        name.
    dicomweb
        How to reach the server of DICOMweb URLs in ``source``: a
        :class:`workbench.io.DicomWeb` (token, headers, retries, frame cache), a
        ``requests.Session`` or a ``dicomweb_client.DICOMwebClient``.

    Attributes
    ----------
    model : ViewerModel
        All state; everything the widget shows can be changed through it.
    skipped : list of (str, str)
        Files or series in ``source`` that could not be opened, with the reason.
    objects : list of workbench.io.catalog.Series or workbench.widgets.stacks.StoredObjects
        Series of non-image objects in ``source`` (presentation states, reports,
        segmentations, documents); the presentation states are offered as saved states.
    """

    def __init__(
        self,
        source=None,
        *,
        toolbar: ToolbarSettings = None,
        layout: tuple[int, int] = (1, 1),
        size: tuple[int, int] = (880, 800),
        cache_bytes: int = DEFAULT_MAX_BYTES,
        volume_bytes: int = DEFAULT_VOLUME_BYTES,
        hanging: bool | Sequence[HangingProtocol] = False,
        thumbnails: bool = True,
        states=None,
        state_dir: str | os.PathLike[str] | None = None,
        user: str | None = None,
        dicomweb=None,
    ) -> None:
        if isinstance(source, LoadResult):
            loaded = source
        else:
            loaded = load_stacks(source, dicomweb=dicomweb)
        self.skipped = loaded.skipped
        self.objects = loaded.objects
        self._toolbar_settings = _checked_toolbar_settings(toolbar)
        self.size = (int(size[0]), int(size[1]))
        #: The grid's width on screen, once the browser has told it (see :meth:`_fit`).
        self._shown_width: float | None = None
        rows, cols = layout
        self.model = ViewerModel(
            loaded.stacks,
            layout=layout,
            viewport_size=self._viewport_size(rows, cols),
            cache=FrameCache(cache_bytes),
            volumes=VolumeCache(volume_bytes),
        )
        if hanging:
            hang(self.model, DEFAULT_PROTOCOLS if hanging is True else hanging)
        self.cine = Cine(self.model)
        self.interaction = Interaction(self.model, self.cine)
        self.views: list[ViewportView] = []
        self._pointer_enters: list[Event] = []
        self.grid = widgets.GridBox(
            layout=widgets.Layout(grid_gap="2px", width="100%", max_width=f"{self.size[0]}px")
        )
        self.grid.add_class("wb-grid")
        self.toolbar = Toolbar(self)
        self.annotation_list = widgets.HTML()
        self.annotation_list.add_class("wb-annotations")
        self.thumbnail_cache = ThumbnailCache(frames=self.model.cache.get)
        self._dragged: int | None = None
        self.thumbnails = ThumbnailPanel(
            self.model.stacks,
            self._pick,
            self.thumbnail_cache,
            on_drag=self._drag_start,
            objects=self.objects,
            height=self.size[1] + 60,
        )
        self.thumbnails.box.layout.display = None if thumbnails else "none"
        self._sync_views()
        self.toolbar.refresh()
        self.toolbar.show_layout(self.model.layout)
        self.model.on_change(self._on_change)
        presentation_states = PresentationStates(
            self.model,
            choose_store(states, state_dir, loaded.state_files),
            creator=user,
            image_files=loaded.image_files,
        )
        self.annotations_panel = AnnotationsPanel(self, presentation_states)
        self.toolbar.add_group(self.annotations_panel.buttons)
        self.interaction.on_change(self._on_interaction)
        dialogs = self.annotations_panel.dialogs
        # The grid takes the width the side panels leave, up to ``size``; its viewports
        # are scaled to fit at once, and drawn at that size once the pointer comes over them.
        main = widgets.VBox(
            [dialogs, self.grid, self.annotation_list],
            layout=widgets.Layout(flex="1 1 auto", min_width="0"),
        )
        body = widgets.HBox(
            [self.thumbnails.box, self.annotations_panel.box, main],
            layout=widgets.Layout(align_items="flex-start", width="100%", overflow="auto hidden"),
        )
        self.widget = widgets.VBox([widgets.HTML(STYLE), self.toolbar.box, body])
        self.widget.add_class("wb-viewer")
        self._update_annotation_list()

    @classmethod
    def from_index(cls, index, public_id: str, level: str = "Study", **kwargs) -> Viewer:
        """A viewer on a patient, study or series of a :class:`workbench.pacs.Index`
        (``public_id`` is its Orthanc-style ID); other arguments as for :class:`Viewer`."""
        kwargs.setdefault("states", index)
        return cls(stacks_from_index(index, public_id, level), **kwargs)

    # -- the scriptable surface -------------------------------------------------------------
    @property
    def viewports(self) -> list[Viewport]:
        return self.model.viewports

    @property
    def active_viewport(self) -> Viewport:
        return self.model.active_viewport

    @property
    def annotations(self) -> AnnotationStore:
        """The annotations (iterable; ``.table()`` gives a pandas DataFrame)."""
        return self.model.annotations

    @property
    def stacks(self) -> list[xr.DataArray]:
        return self.model.stacks

    @property
    def layout(self) -> tuple[int, int]:
        return self.model.layout

    @layout.setter
    def layout(self, value: tuple[int, int] | str) -> None:
        """``(rows, columns)``, or ``"mpr"`` for the active volume's three planes."""
        rows, cols = NAMED_LAYOUTS.get(value, value) if isinstance(value, str) else value
        # Size first so new viewports are created at their final size.
        self.model.viewport_size = self._viewport_size(int(rows), int(cols))
        self.model.layout = value

    @property
    def toolbar_settings(self) -> ToolbarSettings:
        """Which tools the toolbar offers: ``None`` for the defaults
        (:data:`workbench.widgets.tools.DEFAULT_TOOLBAR`), a list of tool names for every
        modality, or a mapping (JSON-compatible) of modality, and ``"*"`` for any other, to
        tool names, e.g. ``{"CT": ["window", "zoom", "length", "ellipse"], "*": [...]}``.
        The settings panel (⚙) edits the active modality's entry."""
        return self._toolbar_settings

    @toolbar_settings.setter
    def toolbar_settings(self, settings: ToolbarSettings) -> None:
        self._toolbar_settings = _checked_toolbar_settings(settings)
        self.toolbar.refresh()

    def set_toolbar_tools(self, modality: str, tools: Sequence[str]) -> None:
        """Offer ``tools`` (in toolbar order) for images of ``modality`` (``"*"``: others)."""
        settings = self._toolbar_settings
        if settings is None:
            settings = DEFAULT_TOOLBAR
        elif not isinstance(settings, Mapping):
            settings = {"*": tuple(settings)}
        self.toolbar_settings = {**settings, modality: [t for t in TOOLS if t in tools]}

    @property
    def tool(self) -> str:
        return self.model.tool

    @tool.setter
    def tool(self, name: str) -> None:
        self.model.tool = name

    def on_change(
        self, callback: Callable[[Change], None], names: Iterable[str] | None = None
    ) -> Callable[[], None]:
        """Call ``callback(change)`` after each change of the viewer, its viewports or its
        annotations; returns a function that unregisters it."""
        return self.model.on_change(callback, names)

    def show(self, stack: int | xr.DataArray, viewport: int | None = None) -> Viewport:
        """Display a stack (index or volume) in a viewport (default: the active one)."""
        added = isinstance(stack, xr.DataArray) and not any(stack is s for s in self.stacks)
        target = self.model.show(stack, viewport)
        if added:
            self.thumbnails.update(self.model.stacks)
        return target

    @property
    def links(self) -> Links:
        """Which viewports move together (toggles ``scroll``, ``window``, ``zoom``)."""
        return self.model.links

    def link(self, viewports=None, *, scroll: bool = True, window: bool = False,
             zoom: bool = False) -> Links:  # fmt: skip
        """Make viewports (default: all) move together; see :meth:`ViewerModel.link`."""
        return self.model.link(viewports, scroll=scroll, window=window, zoom=zoom)

    def unlink(self) -> None:
        """Stop moving viewports together."""
        self.model.unlink()

    def hang(self, protocols: Sequence[HangingProtocol] = DEFAULT_PROTOCOLS):
        """Lay the viewer out by the first hanging protocol that applies; returns it."""
        return hang(self.model, protocols)

    def save_state(self, name: str | None = None):
        """Save the active viewport's annotations and display as a GSPS (see
        :meth:`workbench.widgets.states.PresentationStates.save`)."""
        return self.annotations_panel.states.save(name)

    def load_state(self, key: str, *, graphics: bool = True, display: bool = True):
        """Show a saved state's graphics and/or apply its display settings."""
        return self.annotations_panel.states.load(key, graphics=graphics, display=display)

    @property
    def presentation_states(self):
        """Saving, listing, showing and deleting GSPS objects for this viewer."""
        return self.annotations_panel.states

    def close(self) -> None:
        """Close the widgets and stop background threads."""
        self.cine.stop()
        for view, enters in zip(self.views, self._pointer_enters, strict=True):
            view.close()
            enters.close()
        self.model.cache.close()
        self.model.volumes.close()
        self.thumbnail_cache.close()
        self.annotations_panel.states.close()
        self.widget.close()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- keeping widgets in step with the model --------------------------------------------
    @property
    def maximised(self) -> bool:
        """Whether the viewer fills the browser window (the toolbar's full-window button)."""
        return "wb-maximised" in self.widget._dom_classes

    @maximised.setter
    def maximised(self, value: bool) -> None:
        if bool(value) == self.maximised:
            return
        if value:
            self.widget.add_class("wb-maximised")
        else:
            self.widget.remove_class("wb-maximised")
            # Back in the notebook: the grid's own proportions, until the pointer measures.
            self._sync_views()
        self.toolbar.show_maximised(bool(value))

    def _on_key(self, key: str) -> None:
        """A key no tool used: Esc leaves full-window mode."""
        if key == "Escape":
            self.maximised = False

    def _viewport_size(self, rows: int, cols: int) -> tuple[int, int]:
        width, height = self.size
        if self._shown_width is not None and self._shown_width < width:
            width, height = self._shown_width, height * self._shown_width / width
        return (max(int(width) // cols - 6, 64), max(int(height) // rows - 30, 64))

    def _fit(self, event: dict) -> None:
        """Draw the viewports at the size the browser shows them (the pointer entering a
        viewport reports it), so that a canvas pixel is a screen pixel."""
        width = round(float(event.get("boundingRectWidth") or 0))
        height = round(float(event.get("boundingRectHeight") or 0))
        if width < 16 or height < 16:
            return
        old = self.model.viewport_size
        if abs(width - old[0]) <= 1 and abs(height - old[1]) <= 1:
            return
        if not self.maximised:
            self._shown_width = (width + 6) * self.model.layout[1]
        self.model.viewport_size = (width, height)
        for viewport in self.model.viewports:
            viewport.size = (width, height)

    def _pick(self, index: int) -> None:
        self._dragged = None
        self._open(index, None)

    def _open(self, stack: int, viewport: int | None) -> None:
        """Show a stack picked from its thumbnail, on the slice the thumbnail shows."""
        target = self.model.show(stack, viewport)
        target.frame = preview_frame(target.stack)

    def _drag_start(self, index: int) -> None:
        self._dragged = index

    def _drop(self, viewport_index: int | None) -> bool:
        if self._dragged is None or viewport_index is None:
            self._dragged = None
            return False
        stack, self._dragged = self._dragged, None
        self.model.active = viewport_index
        self._open(stack, viewport_index)
        return True

    def _sync_views(self) -> None:
        size = self._viewport_size(*self.model.layout)
        while len(self.views) > len(self.model.viewports):
            self.views.pop().close()
            self._pointer_enters.pop().close()
        self.model.viewport_size = size
        for viewport in self.model.viewports:
            viewport.size = size
        for index in range(len(self.views), len(self.model.viewports)):
            view = ViewportView(
                self.model.viewports[index], index, self.interaction, self._drop, self._on_key
            )
            self.views.append(view)
            enters = Event(source=view.surface, watched_events=["mouseenter"])
            enters.on_dom_event(self._fit)
            self._pointer_enters.append(enters)
        cols = self.model.layout[1]
        self.grid.layout.grid_template_columns = f"repeat({cols}, minmax(0, 1fr))"
        self.grid.children = [view.box for view in self.views]
        for i, view in enumerate(self.views):
            view.set_active(i == self.model.active)

    def _on_change(self, change: Change) -> None:
        name = change.name
        if name == "layout":
            self._sync_views()
            self.toolbar.show_layout(change.new)
            self.toolbar.refresh()
        elif name == "active":
            for i, view in enumerate(self.views):
                view.set_active(i == change.new)
            self.toolbar.refresh()
        elif name == "tool":
            offered = [value for _, value in self.toolbar.tools.options]
            if change.source is self.model and self.toolbar.tools.value != change.new:
                self.toolbar.tools.value = change.new if change.new in offered else None
        elif name == "annotations":
            for view in self.views:
                view.redraw_overlay()
            self._update_annotation_list()
        elif name == "stack" and change.source is self.model.active_viewport:
            self.toolbar.refresh()
        elif name == "stacks":
            self.thumbnails.update(self.model.stacks)
        elif name == "links":
            self.toolbar.show_links(change.new)
        if name in ("frame", "stack", "crosshair"):
            # Other viewports of the same patient space draw this one's plane.
            self._redraw_reference_lines(change.source)
        if name == "frame" and change.source is self.model.active_viewport:
            self._update_annotation_list()

    def _redraw_reference_lines(self, source) -> None:
        reference = getattr(source, "frame_of_reference", None)
        for view in self.views:
            shown = view.viewport.frame_of_reference
            if (
                view.viewport is not source
                and shown is not None
                and (source is self.model or shown == reference)
            ):
                view.redraw_reference_lines()

    def _on_interaction(self, change: Change) -> None:
        # A finished or abandoned draft may have been on any viewport: redraw them all then.
        everywhere = change.name == "selected" or change.new is None
        for view in self.views:
            if everywhere or view.viewport is self.interaction.draft_viewport:
                view.redraw_overlay()
        if change.name == "draft":
            self._update_annotation_list()

    def _update_annotation_list(self) -> None:
        viewport = self.model.active_viewport
        shown = self.model.annotations.visible_on(viewport.image_reference())
        items = []
        draft = self.interaction.draft
        for annotation in [*shown, draft] if draft is not None else shown:
            text = annotation.text.replace("\n", " · ") or annotation.kind
            state = "drawing" if annotation is draft else "done"
            items.append(
                f"<li class='wb-annotation' data-kind='{annotation.kind}' data-state='{state}'>"
                f"{html.escape(annotation.kind)}: {html.escape(text)}</li>"
            )
        self.annotation_list.value = (
            f"<ul style='margin:2px 0;font-size:12px'>{''.join(items)}</ul>" if items else ""
        )
