"""Presentation states of a viewer as a plain model: save, list, show, apply, copy, delete.

:class:`PresentationStates` works on the viewer model (no widgets, testable and scriptable):
it saves what a viewport shows as a GSPS in a store, lists the states of the study on screen
and where their images are in the viewer's stacks, shows or hides a state's graphics, applies
or drops its display settings, copies a state's annotations into the user's own for editing,
and deletes states. It is an :class:`~workbench.widgets.model.Observable`: a ``"states"``
change follows every save and delete, in every viewer that keeps states in the same place.
:mod:`workbench.widgets.annotations_panel` is its face in the viewer.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import getpass
import os
import uuid
import weakref
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pydicom
import xarray as xr
from pydicom.dataset import Dataset

from workbench.io import gsps
from workbench.io.display import lut_window
from workbench.io.gsps.identity import MANUFACTURER, SERIES_DESCRIPTION
from workbench.io.gsps.image_header import frame_index, header_from_stack
from workbench.io.gsps.store import (
    CombinedStateStore,
    FolderStateStore,
    FoundStateStore,
    IndexStateStore,
    StateStore,
    StateTarget,
    StoredState,
    default_state_dir,
    state_store,
)
from workbench.io.presentation import Annotation, DisplaySettings, ImageReference, PresentationState
from workbench.io.sources import DicomFile
from workbench.widgets.model import Change, Observable, ViewerModel, Viewport, applies_to

#: The name a state holding only a Vertebral Heart Score is saved under, without asking.
VHS_NAME = "Vertebral Heart Score"


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


@dataclass(frozen=True)
class Place:
    """Where an image a state refers to is in a viewer: stack and frame (0-based)."""

    stack: int
    frame: int


@dataclass
class StateGroup:
    """Saved states listed under the image they were saved on (``place`` ``None``: an image
    the viewer does not hold)."""

    place: Place | None
    states: list[StoredState] = field(default_factory=list)


def store_location(store: StateStore) -> Hashable:
    """What tells two stores apart: viewers whose stores share a location see each other's
    saves and deletes."""
    if isinstance(store, CombinedStateStore):
        return store_location(store.writable)
    if isinstance(store, FolderStateStore):
        return ("folder", str(store.folder.resolve()))
    if isinstance(store, IndexStateStore):
        return ("index", id(store.index))
    return ("store", id(store))


class _SavedStates(Observable):
    """Tells every viewer's states of saves and deletes in a location (one per process)."""

    def changed(self, location: Hashable, key: str) -> None:
        self._emit(Change(location, "saved", None, key))


_SAVED = _SavedStates()


class PresentationStates(Observable):
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
        super().__init__()
        self.model = model
        self.image_files = dict(image_files or {})
        self.store = state_store(store)
        self.creator = creator or os.environ.get("WORKBENCH_USER") or _login_name()
        #: States whose display settings are applied, per viewport (by index).
        self.applied: dict[int, str] = {}
        #: The name of the state whose annotations were copied for editing, until saved.
        self.copy_of: str | None = None
        self._loaded: dict[str, PresentationState] = {}
        self.location = store_location(self.store)
        me = weakref.ref(self)

        def relay(change: Change) -> None:
            states = me()
            if states is not None and change.source == states.location:
                states._emit(Change(states, "states", None, change.new))

        self._unsubscribe = _SAVED.on_change(relay)

    def close(self) -> None:
        """Stop hearing of other viewers' saves and deletes."""
        self._unsubscribe()

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
            Without a name, under the name of the state a copy was made from (a loaded state
            is never changed in place), or when the viewport shows no DICOM image.
        """
        viewport = viewport or self.model.active_viewport
        name = (name or "").strip() or self.automatic_name(viewport)
        if not name:
            raise ValueError("a presentation state needs a name")
        if self.copy_of is not None and name == self.copy_of:
            raise ValueError(
                f"“{name}” is the state these annotations were copied from; save the copy "
                "under a new name"
            )
        image = viewport.image_reference()
        if image is None:
            raise ValueError("the viewport shows no DICOM image to save annotations for")
        if viewport.reformatted:
            raise ValueError(
                f"the viewport shows a reformatted {viewport.plane} plane: a presentation state "
                "can only reference acquired images, so its annotations cannot be saved. They "
                "stay in the viewer (viewer.annotations); draw on the acquired series to save."
            )
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
        self.copy_of = None
        self._changed(saved.key)
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

    def _changed(self, key: str) -> None:
        """Tell this viewer and every other one keeping states in the same place."""
        _SAVED.changed(self.location, key)

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

    def with_states(self, stacks: Sequence[xr.DataArray]) -> set[int]:
        """Which of ``stacks`` (by index) hold an image a saved state refers to (for the
        thumbnail badges); the store is asked once per study."""
        referred: dict[str, set[str]] = {}
        found = set()
        for index, stack in enumerate(stacks):
            uids = _uids(stack)
            study = str(stack.attrs.get("StudyInstanceUID") or "")
            if uids and study not in referred:
                states = self.store.states(study_instance_uid=study or None)
                referred[study] = {ref.sop_instance_uid for s in states for ref in s.images}
            if uids & referred.get(study, set()):
                found.add(index)
        return found

    def study_states(self, viewport: Viewport | None = None) -> list[StoredState]:
        """Every state saved for the study the viewport shows, oldest first."""
        viewport = viewport or self.model.active_viewport
        stack = viewport.stack
        if stack is None:
            return []
        study = str(stack.attrs.get("StudyInstanceUID") or "")
        if study:
            return self.store.states(study_instance_uid=study)
        uids = _uids(stack)
        return [s for s in self.store.states() if any(r.sop_instance_uid in uids for r in s.images)]

    def place(self, ref: ImageReference) -> Place | None:
        """Where an image is among the viewer's stacks (the active viewport's stack first)."""
        stacks = self.model.stacks
        active = self.model.active_viewport.stack
        order = [i for i, s in enumerate(stacks) if s is active]
        order += [i for i in range(len(stacks)) if i not in order]
        for index in order:
            frame = frame_index(stacks[index], ref)
            if frame is not None:
                return Place(index, frame)
        return None

    def listing(self, viewport: Viewport | None = None) -> list[StateGroup]:
        """The study's states grouped by the image each was saved on (the first it refers to
        that the viewer holds), in stack and slice order; images not held come last."""
        groups: dict[Place | None, StateGroup] = {}
        for state in self.study_states(viewport):
            place = next(
                (p for p in (self.place(ref) for ref in state.images) if p is not None), None
            )
            groups.setdefault(place, StateGroup(place)).states.append(state)
        return sorted(
            groups.values(),
            key=lambda g: (g.place is None, g.place.stack if g.place else 0,
                           g.place.frame if g.place else 0),
        )  # fmt: skip

    def jump(self, place: Place, viewport: Viewport | None = None) -> Viewport:
        """Show the image at ``place`` in the viewport (default: the active one)."""
        viewport = viewport or self.model.active_viewport
        if viewport.stack is not self.model.stacks[place.stack]:
            viewport = self.model.show(place.stack, self.model.viewports.index(viewport))
        viewport.frame = place.frame
        return viewport

    def edit_copy(self, key: str) -> list[Annotation]:
        """Bring a saved state's annotations into the user's own, as copies to edit.

        The state itself is never changed: its graphics are hidden, the copies get new
        identities, and :meth:`save` refuses the original's name for them.
        """
        state = self.state(key)
        copies = [dataclasses.replace(a, uid=uuid.uuid4().hex) for a in state.annotations]
        if key in self.model.annotations.groups:
            self.model.annotations.set_group_visible(key, False)
        for annotation in copies:
            self.model.annotations.add(annotation)
        self.copy_of = state.name
        return copies

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
        """Delete a saved state for good (from the store) and take its graphics off.

        Raises
        ------
        PermissionError
            For a state that came with the images (they are read only).
        """
        if not next((s.writable for s in self.store.states() if s.key == key), True):
            self.store.delete(key)  # raises, naming the file
        for index, applied in list(self.applied.items()):
            if applied == key:
                self.apply(None, self.model.viewports[index])
        if key in self.model.annotations.groups:
            self.model.annotations.remove_group(key)
        self.store.delete(key)
        self._loaded.pop(key, None)
        self._changed(key)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        return ""


def _uids(stack: xr.DataArray) -> set[str]:
    if "sop_instance_uid" not in stack.coords:
        return set()
    return {str(uid) for uid in np.unique(stack.coords["sop_instance_uid"].values)}
