"""The viewer's face of its presentation states: save and load buttons, dialogs, the panel.

"Save annotations" asks a name (a lone Vertebral Heart Score saves at once) and confirms;
"Load annotations" puts, in the thumbnails' place, every state saved for the study on screen,
grouped by the image each was saved on, with its slice (click to go there). Each state has a
"Show" checkbox (its annotations; several at once), an "Apply display" toggle (its display
settings; one at a time, off again for the original display), "Edit a copy" and a delete
button that asks first. The work is done by
:class:`~workbench.widgets.states.PresentationStates`; this module only draws it.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as widgets

from workbench.io.gsps.store import StoredState
from workbench.widgets.model import Change
from workbench.widgets.stacks import stack_label
from workbench.widgets.states import Place, PresentationStates, StateGroup

if TYPE_CHECKING:
    from workbench.widgets.viewer import Viewer

_SMALL_BUTTON = {"width": "auto", "padding": "0 6px", "height": "24px"}


def _when(state: StoredState) -> str:
    created = state.created
    return created.strftime("%Y-%m-%d %H:%M") if hasattr(created, "strftime") else str(created)


class AnnotationsPanel:
    """The viewer's save/load controls and the panel listing saved states.

    Parameters
    ----------
    viewer
        The viewer it belongs to (its thumbnail panel is swapped for this panel on "Load").
    states
        The viewer's presentation states, which the panel shows and changes.

    Attributes
    ----------
    buttons : list of ipywidgets.Button
        "Save annotations" and "Load annotations", for the toolbar.
    dialogs : ipywidgets.VBox
        Where the save dialog and the confirmations appear (above the viewports).
    box : ipywidgets.VBox
        The panel of saved states, shown in place of the thumbnails.
    """

    def __init__(self, viewer: Viewer, states: PresentationStates):
        self.viewer = viewer
        self.states = states
        self.save_button = widgets.Button(description="Save annotations", icon="save",
                                          layout={"width": "auto"})  # fmt: skip
        self.save_button.add_class("wb-save-annotations")
        self.save_button.on_click(lambda _b: self.ask_name())
        self.load_button = widgets.Button(description="Load annotations", icon="folder-open",
                                          layout={"width": "auto"})  # fmt: skip
        self.load_button.add_class("wb-load-annotations")
        self.load_button.on_click(lambda _b: self.open())
        self.buttons = [self.save_button, self.load_button]
        self.dialogs = widgets.VBox()
        self.dialogs.add_class("wb-dialogs")
        self.rows = widgets.VBox(layout={"overflow": "hidden auto", "flex": "1 1 auto"})
        close = widgets.Button(description="Thumbnails", icon="times",
                               tooltip="Back to the thumbnails", layout=_SMALL_BUTTON)  # fmt: skip
        close.add_class("wb-close-annotations")
        close.on_click(lambda _b: self.close())
        self.title = widgets.HTML("<b style='font-size:12px'>Saved annotations</b>")
        self.box = widgets.VBox(
            [widgets.HBox([self.title, close], layout={"justify_content": "space-between",
                                                       "flex": "0 0 auto"}),
             self.rows],
            layout=widgets.Layout(width="300px", flex="0 0 300px", display="none",
                                  max_height=f"{viewer.size[1] + 60}px",
                                  border="1px solid #444"),
        )  # fmt: skip
        self.box.add_class("wb-annotations-panel")
        self._row_widgets: dict[str, tuple[widgets.Checkbox, widgets.ToggleButton]] = {}
        self._row_texts: dict[str, tuple[widgets.HTML, StoredState]] = {}
        self._group_headers: dict[Place, widgets.Button] = {}
        self._thumbnails_display = viewer.thumbnails.box.layout.display
        self._updating = False
        viewer.model.on_change(self._on_model_change)
        states.on_change(self._on_saved_or_deleted, names=["states"])
        self.refresh_badges()

    # -- save -----------------------------------------------------------------------------
    def ask_name(self) -> None:
        """The Save button: a lone VHS saves at once, anything else asks for a name first."""
        automatic = self.states.automatic_name()
        if automatic:
            self.save(automatic)
            return
        copy_of = self.states.copy_of
        placeholder = f"A new name for the copy of “{copy_of}”" if copy_of else "Name"
        name = widgets.Text(placeholder=placeholder, layout={"width": "260px"})
        name.add_class("wb-save-name")
        ok = widgets.Button(description="OK", button_style="primary", layout={"width": "60px"})
        ok.add_class("wb-save-ok")
        cancel = widgets.Button(description="Cancel", layout={"width": "70px"})
        cancel.add_class("wb-save-cancel")
        message = widgets.HTML()

        def do_save(_b=None) -> None:
            if not name.value.strip():
                message.value = "<span style='color:#c00'>Please enter a name.</span>"
                return
            self.save(name.value)

        ok.on_click(do_save)
        cancel.on_click(lambda _b: self._dismiss())
        self._dialog(
            [widgets.HTML("<b>Save annotations as</b>"), name, ok, cancel, message],
            "wb-save-dialog",
        )

    def save(self, name: str) -> StoredState | None:
        """Save and confirm with a popup; errors are shown, not raised (this is the UI path)."""
        try:
            saved = self.states.save(name)
        except (ValueError, OSError) as error:  # PermissionError is an OSError
            self.popup(f"Not saved: {error}", "wb-save-error")
            return None
        self.popup(f"Saved “{saved.name}”.", "wb-save-confirm")
        return saved

    # -- dialogs --------------------------------------------------------------------------
    def _dialog(self, children: list[widgets.Widget], css_class: str) -> widgets.Box:
        box = widgets.HBox(children, layout={"border": "1px solid #888", "padding": "4px",
                                             "align_items": "center"})  # fmt: skip
        box.add_class("wb-dialog")
        box.add_class(css_class)
        self.dialogs.children = [box]
        return box

    def _dismiss(self) -> None:
        self.dialogs.children = []

    def popup(self, text: str, css_class: str = "wb-popup") -> None:
        """A message with an OK button that closes it."""
        ok = widgets.Button(description="OK", layout={"width": "60px"})
        ok.add_class("wb-popup-ok")
        ok.on_click(lambda _b: self._dismiss())
        self._dialog([widgets.HTML(html.escape(text)), ok], css_class)

    def confirm(self, text: str, action: Callable[[], None], css_class: str) -> None:
        """A question with OK (runs ``action``) and Cancel (does nothing)."""
        ok = widgets.Button(description="OK", button_style="danger", layout={"width": "60px"})
        ok.add_class("wb-confirm-ok")
        cancel = widgets.Button(description="Cancel", layout={"width": "70px"})
        cancel.add_class("wb-confirm-cancel")

        def run(_b) -> None:
            self._dismiss()
            action()

        ok.on_click(run)
        cancel.on_click(lambda _b: self._dismiss())
        self._dialog([widgets.HTML(html.escape(text)), ok, cancel], css_class)

    # -- the panel ------------------------------------------------------------------------
    def open(self) -> None:
        """Show the saved states of the study on screen in place of the thumbnails."""
        self.refresh()
        if not self.is_open:
            self._thumbnails_display = self.viewer.thumbnails.box.layout.display
        self.viewer.thumbnails.box.layout.display = "none"
        self.box.layout.display = "flex"

    def close(self) -> None:
        """Back to the thumbnails (if the viewer shows them)."""
        self.box.layout.display = "none"
        self.viewer.thumbnails.box.layout.display = self._thumbnails_display

    @property
    def is_open(self) -> bool:
        return self.box.layout.display != "none"

    def refresh(self) -> None:
        """Rebuild the list for the study in the active viewport."""
        shown = self.states.shown()
        applied = self.states.applied.get(self.viewer.model.active)
        self._row_widgets, self._row_texts, self._group_headers = {}, {}, {}
        children: list[widgets.Widget] = []
        for group in self.states.listing():
            children.append(self._group(group, shown, applied))
        if not children:
            children = [widgets.HTML("<i style='font-size:12px'>No saved annotations for this "
                                     "study.</i>")]  # fmt: skip
        self.rows.children = children
        self._mark_current()

    def _group(self, group: StateGroup, shown: set[str], applied: str | None) -> widgets.Box:
        """The image's slice (a button that goes there) and the states saved on it."""
        if group.place is None:
            header: widgets.Widget = widgets.HTML(
                "<span style='font-size:11px'>Images not open in this viewer</span>"
            )
        else:
            header = widgets.Button(
                description=self._place_label(group.place),
                tooltip="Go to this image",
                icon="crosshairs",
                layout={"width": "auto", "max_width": "290px", "height": "24px"},
            )
            header.add_class("wb-state-jump")
            header.on_click(lambda _b, p=group.place: self.states.jump(p))
            self._group_headers[group.place] = header
        rows = [self._row(state, state.key in shown, state.key == applied)
                for state in group.states]  # fmt: skip
        box = widgets.VBox([header, *rows], layout={"flex": "0 0 auto", "margin": "2px 0",
                                                    "border_bottom": "1px solid #555"})  # fmt: skip
        box.add_class("wb-state-group")
        return box

    def _place_label(self, place: Place) -> str:
        stacks = self.viewer.model.stacks
        stack = stacks[place.stack]
        label = f"Slice {place.frame + 1}/{stack.sizes['frame']}"
        if stack is not self.viewer.model.active_viewport.stack:
            label += f" · {stack_label(stack)}"
        return label

    def _mark_current(self) -> None:
        """Highlight the group of the image on screen."""
        viewport = self.viewer.model.active_viewport
        stacks = self.viewer.model.stacks
        for place, header in self._group_headers.items():
            current = viewport.stack is stacks[place.stack] and viewport.frame == place.frame
            header.button_style = "info" if current else ""

    def _row(self, state: StoredState, shown: bool, applied: bool) -> widgets.Box:
        graphics = widgets.Checkbox(
            value=shown, description="Show", indent=False, tooltip="Show its annotations",
            layout={"width": "auto"},
        )  # fmt: skip
        graphics.add_class("wb-state-graphics")
        display = widgets.ToggleButton(value=applied, description="Apply display",
                                       icon="dot-circle-o" if applied else "circle-o",
                                       tooltip="Show the image with its display settings "
                                       "(again for the original display)",
                                       layout=_SMALL_BUTTON)  # fmt: skip
        display.add_class("wb-state-display")
        copy = widgets.Button(description="Edit a copy", icon="copy", layout=_SMALL_BUTTON,
                              tooltip="Bring its annotations into yours, to save under a new "
                              "name")  # fmt: skip
        copy.add_class("wb-state-copy")
        delete = widgets.Button(description="✕", layout=_SMALL_BUTTON,
                                disabled=not state.writable,
                                tooltip="Delete for good" if state.writable else
                                "Came with the images: read only")  # fmt: skip
        delete.add_class("wb-state-delete")
        text = widgets.HTML(self._describe(state))
        text.add_class("wb-state-text")
        self._row_texts[state.key] = (text, state)
        graphics.observe(lambda c, k=state.key: self._on_graphics(k, c["new"]), names="value")
        display.observe(lambda c, k=state.key: self._on_display(k, c["new"]), names="value")
        copy.on_click(lambda _b, s=state: self.edit_copy(s))
        delete.on_click(lambda _b, s=state: self.ask_delete(s))
        self._row_widgets[state.key] = (graphics, display)
        controls = widgets.HBox(
            [graphics, display, copy, delete],
            layout={"flex_flow": "row wrap", "align_items": "center"},
        )
        row = widgets.VBox([text, controls], layout={"flex": "0 0 auto", "padding": "2px 4px"})
        row.add_class("wb-state-row")
        return row

    def _describe(self, state: StoredState) -> str:
        """Title, date and creator; other images it covers; once loaded, what of it the viewer
        cannot show."""
        lines = [
            f"<b>{html.escape(state.name)}</b>",
            f"{html.escape(_when(state))} · {html.escape(state.creator.replace('^', ' '))}",
        ]
        if len(state.images) > 1:
            lines.append(f"{len(state.images)} images")
        if not state.writable:
            lines.append("<span style='color:#888'>came with the images (read only)</span>")
        loaded = self.states.loaded(state.key)
        if loaded is not None and loaded.not_shown:
            parts = "; ".join(loaded.not_shown)
            lines.append(f"<span class='wb-not-shown' style='color:#b60'>Not shown: "
                         f"{html.escape(parts)}</span>")  # fmt: skip
        return f"<div style='font-size:11px;line-height:1.3'>{'<br>'.join(lines)}</div>"

    def _update_text(self, key: str) -> None:
        if key in self._row_texts:
            text, state = self._row_texts[key]
            text.value = self._describe(state)

    def _on_graphics(self, key: str, visible: bool) -> None:
        if not self._updating:
            self.states.show(key, visible)
            self._update_text(key)

    def _on_display(self, key: str, on: bool) -> None:
        if self._updating:
            return
        self._updating = True
        try:
            if on:
                self.states.apply(key)
                self._update_text(key)
            elif self.states.applied.get(self.viewer.model.active) == key:
                self.states.apply(None)
            applied = self.states.applied.get(self.viewer.model.active)
            # Radio behaviour: at most one state's display is applied at a time.
            for other, (_graphics, toggle) in self._row_widgets.items():
                toggle.value = other == applied
                toggle.icon = "dot-circle-o" if other == applied else "circle-o"
        finally:
            self._updating = False

    def edit_copy(self, state: StoredState) -> None:
        """ "Edit a copy": the state's annotations become the user's own, to save anew."""
        copies = self.states.edit_copy(state.key)
        self._updating = True
        try:
            if state.key in self._row_widgets:
                self._row_widgets[state.key][0].value = False
        finally:
            self._updating = False
        self.popup(f"{len(copies)} annotations of “{state.name}” are now yours to edit; "
                   "save them under a new name.", "wb-copy-confirm")  # fmt: skip

    def ask_delete(self, state: StoredState) -> None:
        """The ✕ of a row: delete after confirmation."""

        def delete() -> None:
            try:
                self.states.delete(state.key)
            except (PermissionError, KeyError) as error:
                self.popup(f"Not deleted: {error}", "wb-delete-error")

        self.confirm(f"Delete “{state.name}” for good?", delete, "wb-delete-dialog")

    def _on_saved_or_deleted(self, _change: Change) -> None:
        self.refresh_badges()
        if self.is_open:
            self.refresh()

    # -- thumbnails -----------------------------------------------------------------------
    def refresh_badges(self) -> None:
        """Put an "A" badge on the thumbnails of stacks with saved states."""
        items = getattr(self.viewer.thumbnails, "items_by_stack", {})
        with_states = self.states.with_states(self.viewer.model.stacks)
        for index, item in items.items():
            has = index in with_states
            badges = [c for c in item.children if "wb-badge" in getattr(c, "_dom_classes", ())]
            if has and not badges:
                badge = widgets.HTML(
                    "<span style='background:#d80;color:#fff;font-weight:bold;padding:0 4px;"
                    "border-radius:3px;font-size:11px' title='Has saved annotations'>A</span>"
                )
                badge.add_class("wb-badge")
                item.children = (*item.children, badge)
                item.add_class("wb-has-states")
            elif not has and badges:
                item.children = tuple(c for c in item.children if c not in badges)
                item.remove_class("wb-has-states")

    def _on_model_change(self, change: Change) -> None:
        model = self.viewer.model
        if change.name == "stacks":
            self.refresh_badges()
        if not self.is_open:
            return
        if change.name in ("stacks", "active") or (
            change.name == "stack" and change.source is model.active_viewport
        ):
            self.refresh()
        elif change.name == "frame" and change.source is model.active_viewport:
            self._mark_current()
