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

from workbench.widgets.annotations_panel import AnnotationsPanel
from workbench.widgets.cache import DEFAULT_MAX_BYTES, FrameCache
from workbench.widgets.cine import Cine
from workbench.widgets.model import TOOLS, AnnotationStore, Change, ViewerModel, Viewport
from workbench.widgets.stacks import LoadResult, load_stacks, preview_frame, stacks_from_index
from workbench.widgets.states import PresentationStates, choose_store
from workbench.widgets.thumbnails import ThumbnailCache, ThumbnailPanel
from workbench.widgets.tools import Interaction, toolbar_tools
from workbench.widgets.viewport_view import ViewportView

#: Toolbar button labels and icons (Font Awesome names as ipywidgets uses them).
TOOL_BUTTONS: dict[str, tuple[str, str]] = {
    "window": ("W/L", "adjust"),
    "zoom": ("Zoom", "search-plus"),
    "pan": ("Pan", "arrows"),
    "scroll": ("Scroll", "sort"),
    "select": ("Select", "mouse-pointer"),
    "length": ("Length", "arrows-h"),
    "angle": ("Angle", "angle-left"),
    "cobb": ("Cobb", "chevron-left"),
    "ellipse": ("Ellipse", "circle-o"),
    "rectangle": ("Rect", "square-o"),
    "probe": ("Probe", "crosshairs"),
    "arrow": ("Arrow", "long-arrow-right"),
    "text": ("Text", "font"),
    "vhs": ("VHS", "heart-o"),
}

LAYOUTS = ["1×1", "1×2", "2×1", "2×2", "1×3", "3×3"]
PRESET_PROMPT = "W/L presets"


class Toolbar:
    """Tool buttons and actions for the active viewport."""

    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer
        model = viewer.model
        self.tools = widgets.ToggleButtons(
            options=[(TOOL_BUTTONS[t][0], t) for t in TOOLS],
            value=model.tool,
            style={"button_width": "70px"},
            layout=widgets.Layout(flex_flow="row wrap", width="100%"),
            tooltips=[t for t in TOOLS],
        )
        self.tools.add_class("wb-tools")
        self.tools.observe(self._on_tool, names="value")
        self.presets = widgets.Dropdown(options=[PRESET_PROMPT], layout={"width": "150px"})
        self.presets.add_class("wb-presets")
        self.presets.observe(self._on_preset, names="value")

        def button(label: str, tooltip: str, action: Callable[[Viewport], None]) -> widgets.Button:
            b = widgets.Button(description=label, tooltip=tooltip, layout={"width": "auto"})
            b.on_click(lambda _b: self._act(action))
            b.add_class("wb-action")
            return b

        self.actions = [
            button("Fit", "Zoom to fit", lambda v: setattr(v, "zoom", None)),
            button("1:1", "One screen pixel per image pixel", lambda v: setattr(v, "zoom", 1.0)),
            button("Invert", "Invert grey levels", lambda v: setattr(v, "invert", not v.invert)),
            button("⟳", "Rotate 90° clockwise", lambda v: v.rotate(90)),
            button("⇆", "Flip left-right", lambda v: v.flip_horizontal()),
            button("⇅", "Flip top-bottom", lambda v: v.flip_vertical()),
            button("Reset", "Back to the default display", lambda v: v.reset()),
        ]
        self.layout = widgets.Dropdown(
            options=LAYOUTS,
            value=None,
            description="Layout",
            layout={"width": "140px"},
            style={"description_width": "45px"},
        )
        self.layout.add_class("wb-layout")
        self.layout.observe(self._on_layout, names="value")
        cine = viewer.cine
        self.play = widgets.ToggleButton(icon="play", tooltip="Cine (space): play from this frame",
                                         layout={"width": "36px"})  # fmt: skip
        self.play.add_class("wb-cine")
        self.play.observe(self._on_play, names="value")
        self.fps = widgets.BoundedIntText(value=int(cine.fps), min=1, max=60, description="fps",
                                          layout={"width": "110px"},
                                          style={"description_width": "28px"})  # fmt: skip
        self.fps.observe(lambda c: setattr(cine, "fps", c["new"]), "value")
        self.measured_fps = widgets.HTML(layout={"width": "70px"})
        self.measured_fps.add_class("wb-cine-rate")
        cine.on_change(self._on_cine)
        self.label = widgets.Text(placeholder="arrow/text label", layout={"width": "140px"})
        self.label.observe(lambda c: viewer.interaction.set_label(c["new"]), "value")
        self.settings_button = widgets.ToggleButton(description="⚙ Tools", layout={"width": "auto"})
        self.settings = widgets.SelectMultiple(
            options=list(TOOLS), rows=len(TOOLS), layout={"display": "none", "width": "140px"}
        )
        self.settings_button.observe(self._on_settings_toggle, names="value")
        self.settings.observe(self._on_settings, names="value")
        wrap = widgets.Layout(flex_flow="row wrap", align_items="center")
        row1 = widgets.HBox([self.tools], layout=wrap)
        row2 = widgets.HBox(
            [
                self.presets,
                *self.actions,
                self.layout,
                self.play,
                self.fps,
                self.measured_fps,
                self.label,
                self.settings_button,
            ],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        self.box = widgets.VBox(
            [row1, row2, self.settings], layout=widgets.Layout(max_width=f"{viewer.size[0]}px")
        )
        self.box.add_class("wb-toolbar")
        self._rate_shown = 0.0

    def _act(self, action: Callable[[Viewport], None]) -> None:
        viewport = self.viewer.model.active_viewport
        if viewport.stack is not None:
            action(viewport)

    def _on_tool(self, change) -> None:
        if change["new"] is not None:
            self.viewer.model.tool = change["new"]

    def _on_preset(self, change) -> None:
        name = change["new"]
        if name and name != PRESET_PROMPT:
            self.viewer.model.active_viewport.apply_preset(name)
            self.presets.value = PRESET_PROMPT

    def _on_layout(self, change) -> None:
        if change["new"]:
            rows, cols = (int(v) for v in change["new"].split("×"))
            self.viewer.layout = (rows, cols)

    def _on_play(self, change) -> None:
        cine = self.viewer.cine
        if change["new"] != cine.playing and not cine.toggle():
            self.play.value = False

    def _on_cine(self, change: Change) -> None:
        cine = self.viewer.cine
        if change.name == "playing":
            self.play.value = change.new
            self.play.icon = "pause" if change.new else "play"
            self.measured_fps.value = ""
        elif change.name == "measured_fps" and change.new is not None:
            # The measured rate changes every frame; the label need not follow that fast.
            now = cine.clock()
            if now - self._rate_shown >= 0.5:
                self._rate_shown = now
                self.measured_fps.value = f"{change.new:.1f} fps"

    def _on_settings_toggle(self, change) -> None:
        self.settings.layout.display = "flex" if change["new"] else "none"

    def _on_settings(self, change) -> None:
        modality = self.viewer.model.active_viewport.attrs.get("Modality") or "*"
        chosen = [t for t in TOOLS if t in change["new"]]
        if not chosen:
            return
        settings = self.viewer.toolbar_settings
        if not isinstance(settings, Mapping):
            settings = {"*": tuple(settings)} if settings is not None else {}
        self.viewer.toolbar_settings = {**settings, modality: tuple(chosen)}
        self.refresh()

    def refresh(self) -> None:
        """Follow the active viewport: its modality's tools, presets and frame count."""
        viewport = self.viewer.model.active_viewport
        modality = viewport.attrs.get("Modality")
        shown = toolbar_tools(modality, self.viewer.toolbar_settings)
        self.tools.unobserve(self._on_tool, names="value")
        self.tools.options = [(TOOL_BUTTONS[t][0], t) for t in shown]
        self.tools.tooltips = list(shown)
        self.tools.value = self.viewer.model.tool if self.viewer.model.tool in shown else None
        self.tools.observe(self._on_tool, names="value")
        self.settings.unobserve(self._on_settings, names="value")
        self.settings.value = shown
        self.settings.observe(self._on_settings, names="value")
        presets = list(viewport.presets()) if viewport.stack is not None else []
        # Numbered as the keys 1 to 9 choose them.
        self.presets.options = [
            (PRESET_PROMPT, PRESET_PROMPT),
            *((f"{i} {name}" if i < 10 else name, name) for i, name in enumerate(presets, 1)),
        ]
        self.presets.value = PRESET_PROMPT
        self.play.disabled = viewport.frame_count < 2 and not self.viewer.cine.playing


class Viewer:
    """A DICOM viewer for notebooks.

    Parameters
    ----------
    source
        What to show: a folder, a file or a list of files (scanned and opened lazily with
        :mod:`workbench.io`), an ``xarray.DataArray`` from :func:`workbench.io.open_series`,
        or a list of them.
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

    Attributes
    ----------
    model : ViewerModel
        All state; everything the widget shows can be changed through it.
    skipped : list of (str, str)
        Files or series in ``source`` that could not be opened, with the reason.
    objects : list of workbench.io.catalog.Series
        Series of non-image objects in ``source`` (presentation states, reports,
        segmentations, documents); the presentation states are offered as saved states.
    """

    def __init__(
        self,
        source=None,
        *,
        toolbar: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
        layout: tuple[int, int] = (1, 1),
        size: tuple[int, int] = (640, 640),
        cache_bytes: int = DEFAULT_MAX_BYTES,
        thumbnails: bool = True,
        states=None,
        state_dir: str | os.PathLike[str] | None = None,
        user: str | None = None,
    ) -> None:
        loaded = source if isinstance(source, LoadResult) else load_stacks(source)
        self.skipped = loaded.skipped
        self.objects = loaded.objects
        toolbar_tools(None, toolbar)  # validate tool names early
        self.toolbar_settings = toolbar
        self.size = (int(size[0]), int(size[1]))
        rows, cols = layout
        self.model = ViewerModel(
            loaded.stacks,
            layout=layout,
            viewport_size=self._viewport_size(rows, cols),
            cache=FrameCache(cache_bytes),
        )
        self.cine = Cine(self.model)
        self.interaction = Interaction(self.model, self.cine)
        self.views: list[ViewportView] = []
        self.grid = widgets.GridBox(layout=widgets.Layout(grid_gap="2px"))
        self.grid.add_class("wb-grid")
        self.toolbar = Toolbar(self)
        self.annotation_list = widgets.HTML()
        self.annotation_list.add_class("wb-annotations")
        self.thumbnail_cache = ThumbnailCache()
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
        self.model.on_change(self._on_change)
        presentation_states = PresentationStates(
            self.model,
            choose_store(states, state_dir, loaded.state_files),
            creator=user,
            image_files=loaded.image_files,
        )
        self.annotations_panel = AnnotationsPanel(self, presentation_states)
        self.toolbar.box.children[1].children += tuple(self.annotations_panel.buttons)
        self.interaction.on_change(self._on_interaction)
        dialogs = self.annotations_panel.dialogs
        main = widgets.VBox(
            [self.toolbar.box, dialogs, self.grid, self.annotation_list],
            layout=widgets.Layout(flex="0 0 auto"),
        )
        # Side panels keep their width and the viewports their size: a narrow notebook
        # scrolls the viewer sideways rather than squeezing the panels over the images.
        self.widget = widgets.HBox(
            [self.thumbnails.box, self.annotations_panel.box, main],
            layout=widgets.Layout(align_items="flex-start", overflow_x="auto"),
        )
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
    def layout(self, value: tuple[int, int]) -> None:
        rows, cols = value
        # Size first so new viewports are created at their final size.
        self.model.viewport_size = self._viewport_size(int(rows), int(cols))
        self.model.layout = value

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
        for view in self.views:
            view.close()
        self.model.cache.close()
        self.thumbnail_cache.close()
        self.annotations_panel.states.close()
        self.widget.close()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- keeping widgets in step with the model --------------------------------------------
    def _viewport_size(self, rows: int, cols: int) -> tuple[int, int]:
        return (max(self.size[0] // cols - 6, 64), max(self.size[1] // rows - 30, 64))

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
        for viewport in self.model.viewports:
            viewport.size = size
        for index in range(len(self.views), len(self.model.viewports)):
            view = ViewportView(self.model.viewports[index], index, self.interaction, self._drop)
            self.views.append(view)
        cols = self.model.layout[1]
        self.grid.layout.grid_template_columns = f"repeat({cols}, max-content)"
        self.grid.children = [view.box for view in self.views]
        for i, view in enumerate(self.views):
            view.set_active(i == self.model.active)

    def _on_change(self, change: Change) -> None:
        name = change.name
        if name == "layout":
            self._sync_views()
            self.toolbar.layout.unobserve(self.toolbar._on_layout, names="value")
            label = f"{change.new[0]}×{change.new[1]}"
            self.toolbar.layout.value = label if label in LAYOUTS else None
            self.toolbar.layout.observe(self.toolbar._on_layout, names="value")
        elif name == "active":
            for i, view in enumerate(self.views):
                view.set_active(i == change.new)
            self.toolbar.refresh()
        elif name == "tool":
            if change.source is self.model and self.toolbar.tools.value != change.new:
                self.toolbar.tools.value = change.new
        elif name == "annotations":
            for view in self.views:
                view.redraw_overlay()
            self._update_annotation_list()
        elif name == "stack" and change.source is self.model.active_viewport:
            self.toolbar.refresh()
        elif name == "stacks":
            self.thumbnails.update(self.model.stacks)
        if name == "frame" and change.source is self.model.active_viewport:
            self._update_annotation_list()

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
