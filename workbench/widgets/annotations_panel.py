"""Saving and loading annotations and display settings as GSPS objects, in the viewer.

:class:`PresentationStates` does the work on the viewer model (no widgets, testable and
scriptable): save what the active viewport shows as a GSPS in a store, list the states saved
for the image on screen, show or hide a state's graphics, apply or drop its display settings,
delete it. :class:`AnnotationsPanel` is its face in the viewer: "Save annotations" and "Load
annotations" buttons, the save dialog and the confirmations, and the panel that takes the
thumbnails' place with one row per saved state.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import html
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import ipywidgets as widgets
import pydicom
from pydicom.dataset import Dataset

from workbench.io import gsps
from workbench.io.display import lut_window
from workbench.io.gsps.identity import MANUFACTURER, SERIES_DESCRIPTION
from workbench.io.gsps.image_header import header_from_stack
from workbench.io.gsps.store import (
    CombinedStateStore,
    FolderStateStore,
    FoundStateStore,
    StateStore,
    StateTarget,
    StoredState,
    default_state_dir,
    state_store,
)
from workbench.io.presentation import DisplaySettings, ImageReference, PresentationState
from workbench.io.sources import DicomFile
from workbench.widgets.model import Change, ViewerModel, Viewport, applies_to

if TYPE_CHECKING:
    from workbench.widgets.viewer import Viewer

#: The name a state holding only a Vertebral Heart Score is saved under, without asking.
VHS_NAME = "Vertebral Heart Score"

_ICON_BUTTON = {"width": "34px", "padding": "0"}


def choose_store(
    states: StateTarget = None,
    state_dir: str | os.PathLike[str] | None = None,
    found: Sequence[DicomFile] = (),
) -> StateStore:
    """Where a viewer keeps states: ``states`` (an index, a store, a folder) when given, else
    the state folder ``state_dir``, else :func:`~workbench.io.gsps.store.default_state_dir`;
    with the presentation-state files ``found`` among the images listed beside them (read
    only).

    Never the folder the images came from: that is the user's, and stays as it was.
    """
    if states is not None and state_dir is not None:
        raise TypeError("pass either states= (an index or a store) or state_dir=, not both")
    if states is not None:
        store = state_store(states)
    else:
        store = FolderStateStore(state_dir if state_dir is not None else default_state_dir())
    return CombinedStateStore(store, FoundStateStore(found)) if found else store


def for_viewport(settings: DisplaySettings, viewport: Viewport) -> DisplaySettings:
    """A state's display settings as the viewport can show them.

    A scale-to-fit area becomes the zoom that fits it and its middle as centre; a VOI LUT the
    nearest window.
    """
    values = dict(vars(settings))
    if settings.voi_lut is not None and settings.window is None:
        values["window"] = lut_window(settings.voi_lut)
    values["voi_lut"] = None
    if settings.area is not None and settings.zoom is None:
        left, top, right, bottom = settings.area
        width, height = right - left + 1, bottom - top + 1
        if settings.rotation in (90, 270):
            width, height = height, width
        size = viewport.size
        values["zoom"] = float(min(size[0] / width, size[1] / height))
        values["center"] = ((left + right) / 2.0, (top + bottom) / 2.0)
    values["area"] = None
    return DisplaySettings(**values)


class PresentationStates:
    """Save, list, show, apply and delete presentation states for a viewer model.

    Parameters
    ----------
    model
        The viewer's model.
    store
        Where states are kept (see :func:`workbench.io.gsps.store.state_store`).
    creator
        Content Creator's Name for saved states (``Viewer(user=...)``); default:
        ``$WORKBENCH_USER``, else the login name.
    image_files
        The file of each image (by SOP Instance UID), whose header a saved state copies.
    """

    def __init__(
        self,
        model: ViewerModel,
        store: StateTarget = None,
        *,
        creator: str | None = None,
        image_files: Mapping[str, DicomFile] | None = None,
    ):
        self.model = model
        self.image_files = dict(image_files or {})
        self.store = state_store(store)
        self.creator = creator or os.environ.get("WORKBENCH_USER") or _login_name()
        #: States whose display settings are applied, per viewport (by index).
        self.applied: dict[int, str] = {}
        self._loaded: dict[str, PresentationState] = {}
        #: Called with no arguments after a state is saved or deleted (badges, lists).
        self.listeners: list[Callable[[], None]] = []

    # -- saving ---------------------------------------------------------------------------
    def own_annotations(self, viewport: Viewport | None = None) -> list:
        """The user's annotations on the images of the viewport's stack (what a save stores).

        Annotations drawn on other slices of the stack are included, so that one save keeps
        all the marks of a series; those without an image go with the image on screen.
        """
        viewport = viewport or self.model.active_viewport
        stack = viewport.stack
        if stack is None or "sop_instance_uid" not in stack.coords:
            image = viewport.image_reference()
            return [a for a in self.model.annotations if applies_to(a, image)]
        uids = set(stack.coords["sop_instance_uid"].values.tolist())
        return [
            a for a in self.model.annotations if a.image is None or a.image.sop_instance_uid in uids
        ]

    def automatic_name(self, viewport: Viewport | None = None) -> str | None:
        """The name to save under without asking: "Vertebral Heart Score" for a lone VHS."""
        own = self.own_annotations(viewport)
        return VHS_NAME if len(own) == 1 and own[0].kind == "vhs" else None

    def save(self, name: str | None = None, viewport: Viewport | None = None) -> StoredState:
        """Save the viewport's annotations and display as a new GSPS.

        Parameters
        ----------
        name
            The state's title; may be omitted only when :meth:`automatic_name` gives one.
        viewport
            Default: the active viewport.

        Raises
        ------
        ValueError
            Without a name, or when the viewport shows no DICOM grayscale image.
        """
        viewport = viewport or self.model.active_viewport
        name = (name or "").strip() or self.automatic_name(viewport)
        if not name:
            raise ValueError("a presentation state needs a name")
        image = viewport.image_reference()
        if image is None:
            raise ValueError("the viewport shows no DICOM image to save annotations for")
        annotations = []
        for annotation in self.own_annotations(viewport):
            if annotation.image is None:
                annotation = type(annotation)(**{**vars(annotation), "image": image})
            annotations.append(annotation)
        # The image on screen first, then every other image (frame) that carries a mark.
        by_key = {}
        for ref in [image, *(a.image for a in annotations)]:
            by_key.setdefault((ref.sop_instance_uid, ref.frame_number), ref)
        refs = list(by_key.values())
        state = PresentationState(
            name,
            annotations,
            viewport.display_settings(),
            images=refs,
            creator=self.creator,
            created=_dt.datetime.now(),
        )
        headers = {}
        for ref in refs:
            if ref.sop_instance_uid not in headers:
                headers[ref.sop_instance_uid] = self._image_header(ref, viewport)
        first = headers[image.sop_instance_uid]
        series_uid, number = self._series_for(str(first.StudyInstanceUID))
        ds = gsps.write(
            state,
            list(headers.values()),
            series_instance_uid=series_uid,
            instance_number=number,
            creator=self.creator or None,
        )
        saved = self.store.save(ds)
        self._changed()
        return saved

    def _image_header(self, ref: ImageReference, viewport: Viewport) -> Dataset:
        """The image's own header (from the store, else its file), else one made from what the
        stack knows."""
        header = self.store.image_header(ref.sop_instance_uid)
        file = self.image_files.get(ref.sop_instance_uid)
        if header is None and file is not None:
            with file.open() as fp:
                header = pydicom.dcmread(fp, stop_before_pixels=True)
        return (
            header
            if header is not None
            else header_from_stack(viewport.stack, ref, window=viewport.effective_window())
        )

    def _changed(self) -> None:
        for listener in list(self.listeners):
            listener()

    def _series_for(self, study_uid: str) -> tuple[str | None, int]:
        """Our presentation-state series in the study (new if none) and the next number."""
        ours = [
            s for s in self.store.states(study_instance_uid=study_uid)
            if s.manufacturer == MANUFACTURER and s.series_description == SERIES_DESCRIPTION
        ]  # fmt: skip
        if not ours:
            return None, 1
        series = ours[-1].series_instance_uid
        return series, sum(s.series_instance_uid == series for s in ours) + 1

    # -- loading --------------------------------------------------------------------------
    def states(self, viewport: Viewport | None = None) -> list[StoredState]:
        """States saved for the image the viewport shows, oldest first."""
        viewport = viewport or self.model.active_viewport
        image = viewport.image_reference()
        if image is None:
            return []
        return self.store.states(sop_instance_uid=image.sop_instance_uid)

    def has_states(self, stack) -> bool:
        """Whether any image of a stack has saved states (for the thumbnail badge)."""
        if "sop_instance_uid" not in stack.coords:
            return False
        study = stack.attrs.get("StudyInstanceUID") or None
        uids = set(stack.coords["sop_instance_uid"].values.tolist())
        return any(
            ref.sop_instance_uid in uids
            for state in self.store.states(study_instance_uid=study)
            for ref in state.images
        )

    def state(self, key: str, viewport: Viewport | None = None) -> PresentationState:
        """A saved state read for the viewport's image (polarity and size taken into account)."""
        if key not in self._loaded:
            viewport = viewport or self.model.active_viewport
            attrs = viewport.attrs
            photometric = attrs.get("StoredPhotometricInterpretation") or attrs.get(
                "PhotometricInterpretation"
            )
            state = self.store.load(
                key, photometric=photometric, image_size=viewport.image_size or None
            )
            if len(state.images) == 1:
                for annotation in state.annotations:
                    if annotation.image is None:
                        annotation.image = state.images[0]
            if state.display.voi_lut is not None and state.display.window is None:
                center, width = lut_window(state.display.voi_lut)
                state.not_shown.append(
                    f"VOI LUT table (shown as the nearest window, W {width:g} L {center:g})"
                )
            self._loaded[key] = state
        return self._loaded[key]

    def loaded(self, key: str) -> PresentationState | None:
        """The state if it has been read already (its graphics shown or display applied)."""
        return self._loaded.get(key)

    def show(self, key: str, visible: bool = True) -> None:
        """Show (or hide) a saved state's graphics over the images they belong to."""
        annotations = self.model.annotations
        if key not in annotations.groups:
            if not visible:
                return
            annotations.add_group(key, self.state(key).annotations, visible=True)
        else:
            annotations.set_group_visible(key, visible)

    def shown(self) -> set[str]:
        return {key for key, visible in self.model.annotations.groups.items() if visible}

    def apply(self, key: str | None, viewport: Viewport | None = None) -> None:
        """Show the image with a saved state's display settings; ``None`` goes back to the
        display from before the first state was applied."""
        viewport = viewport or self.model.active_viewport
        index = self.model.viewports.index(viewport)
        if key is None:
            viewport.apply_display_settings(None)
            self.applied.pop(index, None)
            return
        viewport.apply_display_settings(for_viewport(self.state(key, viewport).display, viewport))
        self.applied[index] = key

    def load(self, key: str, *, graphics: bool = True, display: bool = True) -> PresentationState:
        """Show a state's graphics and/or apply its display settings in the active viewport.

        ``display=False`` loads the graphics only, keeping the user's window and zoom.
        """
        if graphics:
            self.show(key)
        if display:
            self.apply(key)
        return self.state(key)

    def delete(self, key: str) -> None:
        """Delete a saved state for good (from the store) and take its graphics off."""
        for index, applied in list(self.applied.items()):
            if applied == key:
                self.apply(None, self.model.viewports[index])
        if key in self.model.annotations.groups:
            self.model.annotations.remove_group(key)
        self._loaded.pop(key, None)
        self.store.delete(key)
        self._changed()


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        return ""


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
        self.rows = widgets.VBox()
        close = widgets.Button(icon="times", tooltip="Back to thumbnails",
                               layout=dict(_ICON_BUTTON))  # fmt: skip
        close.add_class("wb-close-annotations")
        close.on_click(lambda _b: self.close())
        self.title = widgets.HTML("<b style='font-size:12px'>Saved annotations</b>")
        self.box = widgets.VBox(
            [widgets.HBox([self.title, close], layout={"justify_content": "space-between"}),
             self.rows],
            layout=widgets.Layout(width="260px", display="none", overflow="auto",
                                  max_height="900px", border="1px solid #444"),
        )  # fmt: skip
        self.box.add_class("wb-annotations-panel")
        self._row_widgets: dict[str, tuple[widgets.Checkbox, widgets.ToggleButton]] = {}
        self._row_texts: dict[str, tuple[widgets.HTML, StoredState]] = {}
        self._updating = False
        viewer.model.on_change(self._on_model_change)
        self.states.listeners.append(self._on_saved_or_deleted)
        self.refresh_badges()

    # -- save -----------------------------------------------------------------------------
    def ask_name(self) -> None:
        """The Save button: a lone VHS saves at once, anything else asks for a name first."""
        automatic = self.states.automatic_name()
        if automatic:
            self.save(automatic)
            return
        name = widgets.Text(placeholder="Name of these annotations", layout={"width": "260px"})
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
        except (ValueError, OSError) as error:
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
        """Show the saved states of the current image in place of the thumbnails."""
        self.refresh()
        self.viewer.thumbnails.box.layout.display = "none"
        self.box.layout.display = "flex"

    def close(self) -> None:
        """Back to the thumbnails."""
        self.box.layout.display = "none"
        self.viewer.thumbnails.box.layout.display = None

    def refresh(self) -> None:
        """Rebuild the rows for the image in the active viewport."""
        viewport = self.viewer.model.active_viewport
        saved = self.states.states(viewport)
        shown = self.states.shown()
        applied = self.states.applied.get(self.viewer.model.active)
        self._row_widgets = {}
        self._row_texts = {}
        rows = []
        for state in saved:
            rows.append(self._row(state, state.key in shown, state.key == applied))
        if not rows:
            rows = [widgets.HTML("<i style='font-size:12px'>No saved annotations for this "
                                 "image.</i>")]  # fmt: skip
        self.rows.children = rows

    def _row(self, state: StoredState, shown: bool, applied: bool) -> widgets.Box:
        graphics = widgets.Checkbox(value=shown, indent=False, layout={"width": "22px"},
                                    tooltip="Show its annotations")  # fmt: skip
        graphics.add_class("wb-state-graphics")
        display = widgets.ToggleButton(value=applied, icon="dot-circle-o" if applied else
                                       "circle-o", tooltip="Apply its display settings",
                                       layout=dict(_ICON_BUTTON))  # fmt: skip
        display.add_class("wb-state-display")
        delete = widgets.Button(icon="times", tooltip="Delete", layout=dict(_ICON_BUTTON))
        delete.add_class("wb-state-delete")
        text = widgets.HTML(self._describe(state))
        text.add_class("wb-state-text")
        self._row_texts[state.key] = (text, state)
        graphics.observe(lambda c, k=state.key: self._on_graphics(k, c["new"]), names="value")
        display.observe(lambda c, k=state.key: self._on_display(k, c["new"]), names="value")
        delete.on_click(lambda _b, s=state: self.ask_delete(s))
        self._row_widgets[state.key] = (graphics, display)
        row = widgets.HBox([graphics, display, text, delete], layout={"align_items": "center"})
        row.add_class("wb-state-row")
        return row

    def _describe(self, state: StoredState) -> str:
        """Title, date and creator; once loaded, what of it the viewer cannot show."""
        lines = [
            f"<b>{html.escape(state.name)}</b>",
            f"{html.escape(_when(state))} · {html.escape(state.creator.replace('^', ' '))}",
        ]
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

    def ask_delete(self, state: StoredState) -> None:
        """The X of a row: delete after confirmation."""

        def delete() -> None:
            self.states.delete(state.key)

        self.confirm(f"Delete “{state.name}” for good?", delete, "wb-delete-dialog")

    def _on_saved_or_deleted(self) -> None:
        self.refresh_badges()
        if self.box.layout.display != "none":
            self.refresh()

    # -- thumbnails -----------------------------------------------------------------------
    def refresh_badges(self) -> None:
        """Put an "A" badge on the thumbnails of stacks with saved states."""
        items = getattr(self.viewer.thumbnails, "items_by_stack", {})
        stacks = self.viewer.model.stacks
        for index, item in items.items():
            if index >= len(stacks):
                continue
            has = self.states.has_states(stacks[index])
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
        if change.name == "stacks":
            self.refresh_badges()
        elif (
            change.name in ("frame", "stack", "active")
            and self.box.layout.display != "none"
            and (change.name == "active" or change.source is self.viewer.model.active_viewport)
        ):
            self.refresh()
