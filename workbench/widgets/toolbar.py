"""The viewer's toolbar: one row of icon buttons in groups, and the panels it opens.

Groups, left to right: the tools of the active viewport's modality (see
:data:`workbench.widgets.tools.DEFAULT_TOOLBAR` and the viewer's ``toolbar`` setting), the
display (presets, invert, the view menu, reset), the layout, cine, annotations, and the
settings (tools per modality, cine rate), help and full-window buttons. Every button has a
tooltip; the active tool is filled in the accent colour. The look is plain CSS in
:data:`STYLE`, shipped with the viewer.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as widgets

from workbench.widgets.model import TOOLS, Change, Viewport
from workbench.widgets.tools import SHORTCUTS, toolbar_tools

if TYPE_CHECKING:
    from workbench.widgets.viewer import Viewer

#: The layout menu's entry for the active volume in axial, coronal and sagittal planes.
MPR_LAYOUT = "MPR"

#: Per tool: Font Awesome 4 icon (as ipywidgets names them) or, where it has none, a glyph;
#: and the tooltip.
TOOL_BUTTONS: dict[str, tuple[str, str, str]] = {
    "window": ("sun-o", "", "Window/level: drag across for width, up and down for level"),
    "zoom": ("search-plus", "", "Zoom: drag up and down"),
    "pan": ("arrows", "", "Pan: drag the image"),
    "scroll": ("sort", "", "Scroll: drag up and down through the frames"),
    "select": ("mouse-pointer", "", "Select: pick, move or edit a measurement or its label"),
    "crosshair": (
        "plus",
        "",
        "Crosshair: click or drag to show that point in every viewport of the same patient space",
    ),
    "length": ("arrows-h", "", "Length"),
    "angle": ("", "∠", "Angle: three points"),
    "cobb": ("", "∡", "Cobb angle: two endplate lines"),
    "ellipse": ("circle-o", "", "Ellipse ROI: area, mean, SD, min, max"),
    "rectangle": ("square-o", "", "Rectangle ROI: area, mean, SD, min, max"),
    "probe": ("crosshairs", "", "Probe: the value at a point"),
    "arrow": ("long-arrow-right", "", "Arrow with a label"),
    "text": ("font", "", "Text note"),
    "vhs": ("heart-o", "", "Vertebral heart score"),
}

LAYOUTS = ["1×1", "1×2", "2×1", "2×2", "1×3", "3×3", MPR_LAYOUT]
PRESET_PROMPT = "W/L"
VIEW_PROMPT = "View"

#: The view menu: label → what it does to the active viewport.
VIEW_ACTIONS: dict[str, Callable[[Viewport], None]] = {
    "Zoom to fit": lambda v: setattr(v, "zoom", None),
    "1:1 (a screen pixel per image pixel)": lambda v: setattr(v, "zoom", 1.0),
    "Rotate 90° clockwise": lambda v: v.rotate(90),
    "Rotate 90° anticlockwise": lambda v: v.rotate(-90),
    "Flip left-right": lambda v: v.flip_horizontal(),
    "Flip top-bottom": lambda v: v.flip_vertical(),
}

ICON_WIDTH = "28px"

#: The viewer's look. Widgets carry ``wb-`` classes; this is the one place they are styled.
STYLE = """
<style>
/* Boxes scroll their overflow by default, which would clip the panels opened from here. */
.wb-viewer, .wb-toolbar { overflow: visible !important; }
.wb-toolbar { position: relative; }
.wb-toolbar-row { flex-flow: row wrap; align-items: center; }
.wb-toolbar-row > .jupyter-widgets { margin: 1px 1px; }
.wb-group-start { margin-left: 7px !important; }
.wb-tools .widget-toggle-button { padding: 0; margin: 0 1px; }
.wb-tools .widget-toggle-button.mod-active {
  background: #1769d1; color: white; box-shadow: inset 0 -3px 0 #0a3d8a;
}
.wb-icon { padding: 0 !important; }
.wb-popover {
  position: absolute; top: 100%; right: 0; z-index: 30; padding: 6px 10px; width: max-content;
  background: var(--jp-layout-color1, white); color: var(--jp-ui-font-color1, black);
  border: 1px solid #888; box-shadow: 0 3px 10px rgba(0, 0, 0, 0.35);
}
.wb-help table { border-collapse: collapse; font-size: 12px; }
.wb-help td { padding: 1px 8px 1px 0; vertical-align: top; }
.wb-help kbd { font-family: monospace; font-weight: bold; }
/* Viewports share the grid's width; the canvas is scaled to its cell until it is redrawn
   at the size shown. */
.wb-viewport { min-width: 0; }
/* Pointer events go to the surface around a viewport's canvas, never to the canvas:
   ipycanvas would send each of them to the kernel. */
.wb-surface { display: block !important; overflow: hidden !important; margin: 0; padding: 0; }
.wb-viewport canvas {
  width: 100% !important; height: auto !important; display: block; pointer-events: none;
}
.wb-viewport-status {
  width: auto !important; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
}
/* JupyterLab's panels contain their layout and stack above each other, which would hold a
   fixed box inside the notebook's panel, under the menus: the panels holding a full-window
   viewer let it out. */
.lm-Widget:has(.wb-maximised) { contain: none !important; z-index: 1000 !important; }
.wb-maximised {
  position: fixed !important; inset: 0; z-index: 1000; padding: 4px; overflow: auto !important;
  background: var(--jp-layout-color0, white);
}
.wb-maximised .wb-grid {
  max-width: none !important; height: calc(100vh - 56px); grid-auto-rows: minmax(0, 1fr);
}
.wb-maximised .wb-viewport .wb-surface { flex: 1 1 0; min-height: 0; }
.wb-maximised .wb-viewport canvas { height: 100% !important; object-fit: contain; }
</style>
"""


def icon_button(icon: str, tooltip: str, css_class: str, *, toggle: bool = False):
    """A square button showing only an icon (its tooltip says what it does)."""
    make = widgets.ToggleButton if toggle else widgets.Button
    button = make(icon=icon, tooltip=tooltip, layout={"width": ICON_WIDTH})
    button.add_class("wb-icon")
    button.add_class(css_class)
    return button


def compact(button: widgets.Button) -> widgets.Button:
    """Make a labelled button icon-only, its label moved to the tooltip."""
    button.tooltip = button.tooltip or button.description
    button.description = ""
    button.layout.width = ICON_WIDTH
    button.add_class("wb-icon")
    return button


def help_html() -> str:
    """The keyboard and mouse help, from :data:`workbench.widgets.tools.SHORTCUTS`."""
    rows = "".join(
        f"<tr><td><kbd>{html.escape(keys)}</kbd></td><td>{html.escape(what)}</td></tr>"
        for keys, what in SHORTCUTS
    )
    return (
        "<b>Keys</b> (pointer over an image)<table>" + rows + "</table>"
        "<b>Mouse</b>: left button uses the tool, middle pans, right zooms; the wheel "
        "scrolls frames, with Ctrl or Shift it zooms at the pointer."
    )


class Toolbar:
    """The toolbar of a :class:`~workbench.widgets.viewer.Viewer`; acts on its active
    viewport and follows it (the modality's tools, the stack's presets)."""

    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer
        cine = viewer.cine
        self.tools = widgets.ToggleButtons(style={"button_width": ICON_WIDTH})
        self.tools.add_class("wb-tools")
        self.presets = self._menu("wb-presets", "64px", "Window presets (keys 1 to 9)")
        self.presets.observe(self._on_preset, names="value")
        self.invert = icon_button("adjust", "Invert grey levels (i)", "wb-action-invert")
        self.invert.on_click(lambda _b: self._act(lambda v: setattr(v, "invert", not v.invert)))
        self.view = self._menu("wb-view", "60px", "Zoom to fit or 1:1, rotate, flip")
        self.view.options = [VIEW_PROMPT, *VIEW_ACTIONS]
        self.view.observe(self._on_view, names="value")
        self.reset = icon_button("undo", "Reset the display (r)", "wb-action-reset")
        self.reset.on_click(lambda _b: self._act(lambda v: v.reset()))
        self.layout = self._menu("wb-layout", "60px", "Viewport layout")
        self.layout.options = LAYOUTS
        self.layout.value = None
        self.layout.observe(self._on_layout, names="value")
        self.link = icon_button("link", "Link viewports: scrolling one moves the others to the "
                                "same patient position (W/L and zoom too, see settings)",
                                "wb-link", toggle=True)  # fmt: skip
        self.link.observe(self._on_link, names="value")
        self.link_window = widgets.Checkbox(description="Linked viewports share W/L",
                                            indent=False, layout={"width": "220px"})  # fmt: skip
        self.link_zoom = widgets.Checkbox(description="Linked viewports share zoom and pan",
                                          indent=False, layout={"width": "240px"})  # fmt: skip
        for box in (self.link_window, self.link_zoom):
            box.observe(self._on_link_option, names="value")
        self.play = icon_button("play", "Cine (space): play from this frame", "wb-cine",
                                toggle=True)  # fmt: skip
        self.play.layout.width = "auto"
        self.play.layout.min_width = ICON_WIDTH
        self.play.observe(self._on_play, names="value")
        self.fps = widgets.BoundedIntText(value=int(cine.fps), min=1, max=60,
                                          description="Cine frames per second",
                                          style={"description_width": "initial"},
                                          layout={"width": "200px"})  # fmt: skip
        self.fps.add_class("wb-fps")
        self.fps.observe(lambda c: setattr(cine, "fps", c["new"]), "value")
        cine.on_change(self._on_cine)
        self._rate_shown = 0.0
        self.label = widgets.Text(placeholder="label", tooltip="Text of new arrows and notes",
                                  layout={"width": "90px", "display": "none"})  # fmt: skip
        self.label.add_class("wb-label")
        self.label.observe(lambda c: viewer.interaction.set_label(c["new"]), "value")
        self.settings_button = icon_button("cog", "Viewer settings: tools per modality, cine rate",
                                           "wb-settings-button", toggle=True)  # fmt: skip
        self.settings_title = widgets.HTML()
        self.settings = widgets.SelectMultiple(options=list(TOOLS), rows=len(TOOLS),
                                               layout={"width": "150px"})  # fmt: skip
        self.settings.add_class("wb-settings-tools")
        self.settings.observe(self._on_settings, names="value")
        self.settings_panel = self._popover(
            "wb-settings",
            [self.settings_title, self.settings, self.fps, self.link_window, self.link_zoom],
        )
        self.help_button = icon_button("question", "Keyboard shortcuts and mouse buttons",
                                       "wb-help-button", toggle=True)  # fmt: skip
        self.help_panel = self._popover("wb-help", [widgets.HTML(help_html())])
        self.maximise = icon_button("expand", "Full window", "wb-maximise", toggle=True)
        self.maximise.observe(lambda c: setattr(viewer, "maximised", c["new"]), names="value")
        for button, panel in ((self.settings_button, self.settings_panel),
                              (self.help_button, self.help_panel)):  # fmt: skip
            button.observe(self._toggler(panel), names="value")
        self.row = widgets.HBox()
        self.row.add_class("wb-toolbar-row")
        self._groups: list[list[widgets.Widget]] = [
            [self.tools],
            [self.presets, self.invert, self.view, self.reset],
            [self.layout, self.link],
            [self.play],
            [self.label],
            [self.settings_button, self.help_button, self.maximise],
        ]
        self._arrange()
        self.box = widgets.VBox([self.row, self.settings_panel, self.help_panel])
        self.box.add_class("wb-toolbar")
        self.tools.observe(self._on_tool, names="value")

    # -- building -----------------------------------------------------------------------------
    @staticmethod
    def _menu(css_class: str, width: str, tooltip: str) -> widgets.Dropdown:
        menu = widgets.Dropdown(options=[""], tooltip=tooltip, layout={"width": width})
        menu.add_class(css_class)
        return menu

    @staticmethod
    def _popover(css_class: str, children) -> widgets.VBox:
        panel = widgets.VBox(children, layout={"display": "none"})
        panel.add_class("wb-popover")
        panel.add_class(css_class)
        return panel

    @staticmethod
    def _toggler(panel: widgets.VBox) -> Callable[[dict], None]:
        def toggle(change: dict) -> None:
            panel.layout.display = "flex" if change["new"] else "none"

        return toggle

    def _arrange(self) -> None:
        children = []
        for group in self._groups:
            for i, widget in enumerate(group):
                if i == 0 and children:
                    widget.add_class("wb-group-start")
                children.append(widget)
        self.row.children = children

    def add_group(self, buttons) -> None:
        """Add a group of buttons (shown icon-only) before the settings and help buttons."""
        self._groups.insert(-1, [compact(b) for b in buttons])
        self._arrange()

    # -- events ------------------------------------------------------------------------------
    def _act(self, action: Callable[[Viewport], None]) -> None:
        viewport = self.viewer.model.active_viewport
        if viewport.stack is not None:
            action(viewport)

    def _on_tool(self, change) -> None:
        if change["new"] is not None:
            self.viewer.model.tool = change["new"]
        self.label.layout.display = None if change["new"] in ("arrow", "text") else "none"

    def _on_preset(self, change) -> None:
        name = change["new"]
        if name and name != PRESET_PROMPT:
            self.viewer.model.active_viewport.apply_preset(name)
            self.presets.value = PRESET_PROMPT

    def _on_view(self, change) -> None:
        if change["new"] in VIEW_ACTIONS:
            self._act(VIEW_ACTIONS[change["new"]])
            self.view.value = VIEW_PROMPT

    def _on_layout(self, change) -> None:
        if change["new"] == MPR_LAYOUT:
            self.viewer.layout = "mpr"
        elif change["new"]:
            rows, cols = (int(v) for v in change["new"].split("×"))
            self.viewer.layout = (rows, cols)

    def _on_link(self, change) -> None:
        model = self.viewer.model
        if change["new"] and not model.links.active:
            model.link(scroll=True, window=self.link_window.value, zoom=self.link_zoom.value)
        elif not change["new"] and model.links.active:
            model.unlink()

    def _on_link_option(self, _change) -> None:
        links = self.viewer.model.links
        if links.active:
            links.window, links.zoom = self.link_window.value, self.link_zoom.value

    def show_links(self, links) -> None:
        """Show whether viewports are linked, and in what."""
        self.link.value = links.active
        if links.active:
            self.link_window.value, self.link_zoom.value = links.window, links.zoom

    def show_layout(self, layout: tuple[int, int]) -> None:
        """Show the grid's layout in the menu (blank for one the menu does not list)."""
        label = f"{layout[0]}×{layout[1]}"
        self.layout.unobserve(self._on_layout, names="value")
        self.layout.value = label if label in LAYOUTS else None
        self.layout.observe(self._on_layout, names="value")

    def show_maximised(self, maximised: bool) -> None:
        self.maximise.value = maximised
        self.maximise.icon = "compress" if maximised else "expand"
        self.maximise.tooltip = "Back into the notebook" if maximised else "Full window"

    def _on_play(self, change) -> None:
        cine = self.viewer.cine
        if change["new"] != cine.playing and not cine.toggle():
            self.play.value = False

    def _on_cine(self, change: Change) -> None:
        cine = self.viewer.cine
        if change.name == "playing":
            self.play.value = change.new
            self.play.icon = "pause" if change.new else "play"
            self.play.description = ""
        elif change.name == "measured_fps" and change.new is not None:
            # The rate is measured every frame; the button need not follow that fast.
            now = cine.clock()
            if now - self._rate_shown >= 0.5:
                self._rate_shown = now
                self.play.description = f"{change.new:.1f} fps"

    def _modality(self) -> str:
        return self.viewer.model.active_viewport.attrs.get("Modality") or "*"

    def _on_settings(self, change) -> None:
        chosen = [t for t in TOOLS if t in change["new"]]
        if chosen:
            self.viewer.set_toolbar_tools(self._modality(), chosen)

    def refresh(self) -> None:
        """Follow the active viewport: its modality's tools, presets and frame count."""
        viewport = self.viewer.model.active_viewport
        modality = viewport.attrs.get("Modality")
        shown = toolbar_tools(modality, self.viewer.toolbar_settings)
        # The crosshair and links relate viewports: with one, they would only take room.
        several = len(self.viewer.model.viewports) > 1
        if not several:
            shown = tuple(t for t in shown if t != "crosshair")
        self.link.layout.display = None if several else "none"
        self.tools.unobserve(self._on_tool, names="value")
        # The browser finds each button by its label, so labels must differ even where the
        # icon says it all: invisible zero-width spaces tell them apart.
        self.tools.options = [(TOOL_BUTTONS[t][1] + "\u200b" * i, t) for i, t in enumerate(shown)]
        self.tools.icons = [TOOL_BUTTONS[t][0] for t in shown]
        self.tools.tooltips = [TOOL_BUTTONS[t][2] for t in shown]
        self.tools.value = self.viewer.model.tool if self.viewer.model.tool in shown else None
        self.tools.observe(self._on_tool, names="value")
        self.settings.unobserve(self._on_settings, names="value")
        self.settings.value = shown
        self.settings.observe(self._on_settings, names="value")
        where = f"{modality} images" if modality else "images without a modality"
        self.settings_title.value = f"<b>Tools for {html.escape(where)}</b>"
        presets = list(viewport.presets()) if viewport.stack is not None else []
        # Numbered as the keys 1 to 9 choose them.
        self.presets.options = [
            (PRESET_PROMPT, PRESET_PROMPT),
            *((f"{i} {name}" if i < 10 else name, name) for i, name in enumerate(presets, 1)),
        ]
        self.presets.value = PRESET_PROMPT
        self.play.disabled = viewport.frame_count < 2 and not self.viewer.cine.playing
