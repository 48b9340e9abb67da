"""Viewer state as plain objects: validated attributes and change events, no widgets.

:class:`ViewerModel` holds the stacks a viewer can show, the viewport grid (layout, active
viewport), the annotations and the tool; each :class:`Viewport` holds what one viewport shows
(stack, frame, window, zoom, pan, rotation/flip, invert). The ipycanvas code in
:mod:`workbench.widgets.viewer` only draws this state and turns mouse and keyboard events into
changes of it (see :mod:`workbench.widgets.tools`), so everything here is testable and
scriptable without a browser.

Every setter validates its value (``TypeError`` for a wrong type, ``ValueError`` for a wrong
value, naming the attribute) and, when the value really changes, calls the listeners
registered with ``on_change`` with a :class:`Change`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from workbench.io.display import display_attrs
from workbench.io.presentation import (
    ANNOTATION_KINDS,
    Annotation,
    DisplaySettings,
    ImageReference,
)
from workbench.io.reformat import PLANES, SLAB_MODES
from workbench.widgets import measurements, mpr
from workbench.widgets.cache import FrameCache, neighbours
from workbench.widgets.geometry import DisplayTransform, fit_zoom
from workbench.widgets.orientation import orientation_letters
from workbench.widgets.presets import window_presets

#: Tool names, in toolbar order. Navigation tools change the display; the others draw.
NAVIGATION_TOOLS = ("window", "zoom", "pan", "scroll", "select", "crosshair")
#: Each drawing tool draws the annotation kind of its name; polylines and points only come
#: from loaded presentation states.
DRAWING_TOOLS = tuple(kind for kind in ANNOTATION_KINDS if kind not in ("polyline", "point"))
TOOLS = NAVIGATION_TOOLS + DRAWING_TOOLS

MIN_ZOOM, MAX_ZOOM = 0.02, 64.0
MAX_GRID = 8
#: Named layouts: ``"mpr"`` shows the active volume's axial, coronal and sagittal planes.
NAMED_LAYOUTS = {"mpr": (1, 3)}


@dataclass(frozen=True)
class Slab:
    """A slab projection: ``mode`` (``"mip"``, ``"minip"``, ``"average"``) over
    ``thickness`` mm centred on the slice shown."""

    thickness: float
    mode: str = "mip"

    def __post_init__(self) -> None:
        if self.mode not in SLAB_MODES:
            raise ValueError(f"slab mode must be one of {SLAB_MODES}, not {self.mode!r}")
        if isinstance(self.thickness, bool) or not isinstance(
            self.thickness, (int, float, np.number)
        ):
            raise TypeError(f"slab thickness must be a number, not {self.thickness!r}")
        if not (math.isfinite(self.thickness) and self.thickness > 0):
            raise ValueError(
                f"slab thickness must be a positive number of mm, not {self.thickness}"
            )

    @property
    def label(self) -> str:
        """``"MIP 20 mm"``: what the overlay says."""
        name = {"mip": "MIP", "minip": "MinIP", "average": "Avg"}[self.mode]
        return f"{name} {self.thickness:g} mm"


@dataclass(frozen=True)
class Crosshair:
    """A point in patient space (LPS mm) and the Frame of Reference it belongs to."""

    point: tuple[float, float, float]
    frame_of_reference: str


@dataclass(frozen=True)
class Change:
    """One attribute change: who changed, which attribute, old and new value."""

    source: Any
    name: str
    old: Any
    new: Any


Listener = Callable[[Change], None]


class Observable:
    """Base for model objects: keeps listeners and tells them about changes."""

    def __init__(self) -> None:
        self._listeners: list[tuple[Listener, frozenset[str] | None]] = []

    def on_change(
        self, callback: Listener, names: Iterable[str] | None = None
    ) -> Callable[[], None]:
        """Call ``callback(change)`` after each change (of ``names`` only, if given).

        Returns
        -------
        callable
            Call it to unregister the callback.
        """
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        entry = (callback, frozenset(names) if names is not None else None)
        self._listeners.append(entry)

        def unsubscribe() -> None:
            if entry in self._listeners:
                self._listeners.remove(entry)

        return unsubscribe

    def _emit(self, change: Change) -> None:
        for callback, names in list(self._listeners):
            if names is None or change.name in names:
                callback(change)

    def _set(self, name: str, value: Any) -> None:
        old = getattr(self, "_" + name)
        if _same(old, value):
            return
        setattr(self, "_" + name, value)
        self._emit(Change(self, name, old, value))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (xr.DataArray, np.ndarray)) or isinstance(b, (xr.DataArray, np.ndarray)):
        return a is b
    return a == b


def _pair(name: str, value: Any) -> tuple[float, float]:
    try:
        a, b = value
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair of numbers, not {value!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"{name} must be finite, not {value!r}")
    return a, b


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    return int(value)


def _tool(name: str) -> str:
    if name not in TOOLS:
        raise ValueError(f"tool must be one of {TOOLS}, not {name!r}")
    return name


def as_stack(volume: xr.DataArray) -> xr.DataArray:
    """Check a volume is displayable and give it a ``frame`` dimension if it is a single image.

    Raises
    ------
    TypeError
        If ``volume`` is not an ``xarray.DataArray``.
    ValueError
        If its dimensions are not ``("frame", "y", "x"[, "channel"])`` or ``("y", "x"[, ...])``.
    """
    if not isinstance(volume, xr.DataArray):
        raise TypeError(f"a stack must be an xarray.DataArray, not {type(volume).__name__}")
    if "frame" not in volume.dims:
        volume = volume.expand_dims("frame")
    dims = tuple(volume.dims)
    if dims not in (("frame", "y", "x"), ("frame", "y", "x", "channel")):
        raise ValueError(
            f"a stack needs dims ('frame', 'y', 'x'[, 'channel']), got {dims}; "
            "transpose it (volume.transpose('frame', 'y', 'x', ...)) first"
        )
    if volume.sizes["frame"] == 0:
        raise ValueError("a stack needs at least one frame")
    return volume


class Viewport(Observable):
    """What one viewport shows and how.

    Parameters
    ----------
    stack
        The volume shown (dims ``frame, y, x[, channel]``), or ``None`` for an empty viewport.
    cache
        Where decoded frames come from; shared by the viewports of a viewer.
    size
        ``(width, height)`` of the viewport in display pixels (used for "fit" zoom).

    Attributes are ``stack``, ``frame`` (0-based index), ``window`` (``(center, width)`` in
    modality units or ``None`` for the image's default), ``zoom`` (display pixels per image
    pixel, ``None`` = fit), ``pan`` (display-pixel offset of the image centre), ``rotation``
    (clockwise degrees), ``flip`` (horizontal mirror before rotation), ``invert`` and ``tool``.
    """

    def __init__(
        self,
        stack: xr.DataArray | None = None,
        *,
        cache: FrameCache | None = None,
        size: tuple[int, int] = (512, 512),
        volumes: mpr.VolumeCache | None = None,
    ) -> None:
        super().__init__()
        self.cache = cache if cache is not None else FrameCache()
        self.volumes = volumes if volumes is not None else mpr.VolumeCache()
        self._stack: xr.DataArray | None = None
        self._volume: xr.DataArray | None = None
        self._slab: Slab | None = None
        self._frame = 0
        self._window: tuple[float, float] | None = None
        self._zoom: float | None = None
        self._pan: tuple[float, float] = (0.0, 0.0)
        self._rotation = 0
        self._flip = False
        self._invert = False
        self._tool = "window"
        self._size = (512, 512)
        self._saved_display: DisplaySettings | None = None
        self._default_window_cache: dict[tuple, tuple[float, float]] = {}
        self.size = size
        if stack is not None:
            self.stack = stack

    # -- stack and frame ------------------------------------------------------------------
    @property
    def stack(self) -> xr.DataArray | None:
        return self._stack

    @stack.setter
    def stack(self, volume: xr.DataArray | None) -> None:
        volume = None if volume is None else as_stack(volume)
        self._volume = volume
        self._show(volume)

    def _show(self, volume: xr.DataArray | None) -> None:
        if volume is self._stack:
            return
        # A new stack starts at its first frame with its own default display.
        self._frame = 0
        self._saved_display = None
        self._default_window_cache.clear()
        for name, value in (
            ("window", None),
            ("zoom", None),
            ("pan", (0.0, 0.0)),
            ("rotation", 0),
            ("flip", False),
            ("invert", False),
            ("slab", None),
        ):
            self._set(name, value)
        self._set("stack", volume)
        self._emit(Change(self, "frame", None, 0))

    @property
    def volume(self) -> xr.DataArray | None:
        """The acquired series behind what the viewport shows (the stack itself unless a
        reformatted plane is shown)."""
        return self._volume

    @property
    def plane(self) -> str | None:
        """``"axial"``, ``"coronal"`` or ``"sagittal"``: the plane shown.

        Setting it shows that plane of the acquired series (reformatted unless it is the
        acquired plane of a regular volume), on the slice through the centre of the old one
        and with the same window; ``None`` shows the acquired series again. Reading it gives
        the reformatted plane, else the plane the acquired slices are closest to (``None``
        for images without orientation).
        """
        return mpr.plane_of(self._stack)

    @plane.setter
    def plane(self, plane: str | None) -> None:
        if plane is not None and plane not in PLANES:
            raise ValueError(f"plane must be one of {tuple(PLANES)} or None, not {plane!r}")
        if self._volume is None:
            raise ValueError("plane cannot be set on an empty viewport")
        target = self._volume if plane is None else self.volumes.plane(self._volume, plane)
        if target is not self._volume:
            self.volumes.check_budget(self._volume)  # refused now, not once drawn
        if target is self._stack:
            return
        centre = (
            self.patient_point(*self._image_centre()) if mpr.has_geometry(self._stack) else None
        )
        window, invert = self._window, self._invert
        self._show(target)
        self.window, self.invert = window, invert
        if centre is not None:
            self.frame = mpr.locate(target, centre)[0]
        else:
            self.frame = self.frame_count // 2

    @property
    def reformatted(self) -> bool:
        """Whether the slices shown were computed from a volume rather than acquired."""
        return mpr.is_reformatted(self._stack)

    def _image_centre(self) -> tuple[float, float]:
        columns, rows = self.image_size
        return ((columns - 1) / 2.0, (rows - 1) / 2.0)

    def patient_point(self, column: float, row: float, frame: int | None = None) -> np.ndarray:
        """LPS point (mm) of image point ``(column, row)`` on a slice (the current one)."""
        if not mpr.has_geometry(self._stack):
            raise ValueError("the viewport's images have no patient geometry")
        return mpr.point_on(self._stack, self._frame if frame is None else frame, column, row)

    @property
    def frame_of_reference(self) -> str | None:
        """(0020,0052) Frame of Reference UID of the images shown, when they have geometry."""
        return self._stack.attrs["FrameOfReferenceUID"] if mpr.has_geometry(self._stack) else None

    @property
    def slab(self) -> Slab | None:
        """A :class:`Slab` projection around the slice shown, or ``None`` for the slice."""
        return self._slab

    @slab.setter
    def slab(self, value: Slab | tuple | None) -> None:
        if value is not None and not isinstance(value, Slab):
            try:
                value = Slab(*value)
            except TypeError:
                raise TypeError(
                    f"slab must be a Slab, (thickness, mode) or None, not {value!r}"
                ) from None
        if value is not None and self._stack is None:
            raise ValueError("slab cannot be set on an empty viewport")
        self._default_window_cache.clear()
        self._set("slab", value)

    @property
    def frame_count(self) -> int:
        return 0 if self._stack is None else int(self._stack.sizes["frame"])

    @property
    def frame(self) -> int:
        return self._frame

    @frame.setter
    def frame(self, index: int) -> None:
        index = _integer("frame", index)
        if self._stack is None:
            raise ValueError("frame cannot be set on an empty viewport")
        if not 0 <= index < self.frame_count:
            raise ValueError(f"frame must be in 0..{self.frame_count - 1}, not {index}")
        direction = 1 if index >= self._frame else -1
        self._set("frame", index)
        self.prefetch(direction)

    def scroll(self, delta: int) -> None:
        """Move ``delta`` frames forward (negative: back), stopping at the first/last frame."""
        if self._stack is None:
            return
        self.frame = int(min(max(self._frame + int(delta), 0), self.frame_count - 1))

    def prefetch(self, direction: int = 1) -> None:
        """Decode the frames around the current one in the background."""
        # Reformatted slices are views of a decoded volume: nothing to fetch ahead.
        if (
            self._stack is not None
            and self.frame_count > 1
            and not self.reformatted
            and self.volumes.acquired(self._stack) is None
        ):
            self.cache.prefetch(
                self._stack, neighbours(self._frame, self.frame_count, direction=direction)
            )

    def pixels(self, frame: int | None = None) -> np.ndarray:
        """Modality values of a frame (the current one by default), decoded via the cache."""
        if self._stack is None:
            raise ValueError("the viewport shows no stack")
        index = self._frame if frame is None else frame
        if self._slab is not None:
            stack = self._stack
            return mpr.slab(stack, index, self._slab.thickness, self._slab.mode,
                            frames=lambda i: self.cache.get(stack, i))  # fmt: skip
        source = mpr.source_of(self._stack)
        if source is not None:
            # A reformatted slice is a view of the decoded volume: nothing to cache.
            return source.frame(index)
        decoded = self.volumes.acquired(self._stack)
        if decoded is not None:  # decoded for its planes already: no second copy
            return decoded[index]
        return self.cache.get(self._stack, index)

    @property
    def attrs(self) -> dict:
        return {} if self._stack is None else display_attrs(self._stack)

    @property
    def image_size(self) -> tuple[int, int]:
        """``(columns, rows)`` of the stack's frames."""
        if self._stack is None:
            return (0, 0)
        return (int(self._stack.sizes["x"]), int(self._stack.sizes["y"]))

    @property
    def pixel_aspect(self) -> float:
        """Height over width of the stack's pixels, 1 if unknown.

        From the row and column spacing, else (0028,0034) Pixel Aspect Ratio. Pixels are
        drawn that shape, so that anatomy sampled on a rectangular grid keeps its
        proportions on screen.
        """
        attrs = self._stack.attrs if self._stack is not None else {}
        for keyword in ("PixelSpacing", "PixelAspectRatio"):
            try:
                height, width = (float(v) for v in attrs.get(keyword))
            except (TypeError, ValueError):
                continue
            if height > 0 and width > 0 and math.isfinite(height / width):
                return height / width
        return 1.0

    def frame_coord(self, name: str, default: Any = None) -> Any:
        """A per-frame coordinate (``position``, ``instance_number``...) of the current frame."""
        if self._stack is None or name not in self._stack.coords:
            return default
        coord = self._stack.coords[name]
        if "frame" not in coord.dims:
            return coord.values.item() if coord.ndim == 0 else coord.values
        value = coord.values[self._frame]
        return value.item() if hasattr(value, "item") and np.ndim(value) == 0 else value

    def image_reference(self) -> ImageReference | None:
        """The DICOM image (and frame of a multi-frame image) currently shown."""
        if self._stack is None:
            return None
        uid = self.frame_coord("sop_instance_uid")
        if not uid:
            return None
        sop_class = self.frame_coord("sop_class_uid") or self.attrs.get("SOPClassUID", "")
        frame_number = None
        if "sop_instance_uid" in self._stack.coords:
            uids = self._stack.coords["sop_instance_uid"].values
            frame_number_coord = self.frame_coord("frame_number")
            # Only a multi-frame image needs a frame number to say which picture is meant.
            multi_frame = (
                int(np.sum(uids == uid)) > 1 or int(self.attrs.get("NumberOfFrames") or 1) > 1
            )
            if frame_number_coord is not None and multi_frame:
                frame_number = int(frame_number_coord)
        return ImageReference(str(sop_class), str(uid), frame_number)

    # -- display --------------------------------------------------------------------------
    @property
    def window(self) -> tuple[float, float] | None:
        return self._window

    @window.setter
    def window(self, value: tuple[float, float] | None) -> None:
        if value is not None:
            center, width = _pair("window", value)
            if width < 1:
                raise ValueError(f"window width must be >= 1, not {width}")
            value = (center, width)
        self._set("window", value)

    def effective_window(self) -> tuple[float, float] | None:
        """The window in use: the one set, else the image's default (file or data range).

        ``None`` for colour images, which are shown without a window.
        """
        if self._window is not None:
            return self._window
        if self._stack is None or "channel" in self._stack.dims:
            return None
        key = (self._frame, self._slab)
        if key not in self._default_window_cache:
            from workbench.io import display

            attrs = display.frame_attrs(self._stack, self._frame)
            self._default_window_cache[key] = tuple(
                float(v) for v in display.default_window(attrs, self.pixels())
            )
        return self._default_window_cache[key]

    def presets(self) -> dict[str, tuple[float, float]]:
        """Window presets for this stack: the file's own windows, then the modality's."""
        return window_presets(self.attrs)

    def apply_preset(self, name: str) -> None:
        """Set the window to a named preset (see :meth:`presets`)."""
        presets = self.presets()
        if name not in presets:
            raise ValueError(f"no window preset {name!r}; choose from {sorted(presets)}")
        self.window = presets[name]

    @property
    def zoom(self) -> float | None:
        return self._zoom

    @zoom.setter
    def zoom(self, value: float | None) -> None:
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise TypeError(f"zoom must be a number or None, not {type(value).__name__}")
            if not value > 0:
                raise ValueError(f"zoom must be positive, not {value}")
            value = float(min(max(value, MIN_ZOOM), MAX_ZOOM))
        self._set("zoom", value)

    @property
    def effective_zoom(self) -> float:
        """The zoom in use (the "fit" zoom when ``zoom`` is ``None``)."""
        if self._zoom is not None:
            return self._zoom
        if self._stack is None:
            return 1.0
        return fit_zoom(self.image_size, self._size, self._rotation, self.pixel_aspect)

    def zoom_by(self, factor: float, anchor: tuple[float, float] | None = None) -> None:
        """Multiply the zoom, keeping the display point ``anchor`` over the same image point."""
        if not factor > 0:
            raise ValueError(f"zoom factor must be positive, not {factor}")
        old = self.effective_zoom
        new = float(min(max(old * factor, MIN_ZOOM), MAX_ZOOM))
        if anchor is not None:
            # Keep the anchor fixed: its offset from the image centre scales with the zoom.
            cx, cy = self._size[0] / 2.0 + self._pan[0], self._size[1] / 2.0 + self._pan[1]
            ratio = new / old
            self.pan = (
                anchor[0] - (anchor[0] - cx) * ratio - self._size[0] / 2.0,
                anchor[1] - (anchor[1] - cy) * ratio - self._size[1] / 2.0,
            )
        self.zoom = new

    @property
    def pan(self) -> tuple[float, float]:
        return self._pan

    @pan.setter
    def pan(self, value: tuple[float, float]) -> None:
        self._set("pan", _pair("pan", value))

    @property
    def rotation(self) -> int:
        return self._rotation

    @rotation.setter
    def rotation(self, value: int) -> None:
        value = _integer("rotation", value)
        if value % 90:
            raise ValueError(f"rotation must be a multiple of 90 degrees, not {value}")
        self._set("rotation", value % 360)

    def rotate(self, degrees: int = 90) -> None:
        """Rotate clockwise by ``degrees`` (a multiple of 90; negative turns anticlockwise)."""
        self.rotation = (self._rotation + int(degrees)) % 360

    @property
    def flip(self) -> bool:
        return self._flip

    @flip.setter
    def flip(self, value: bool) -> None:
        self._set("flip", bool(value))

    def flip_horizontal(self) -> None:
        """Mirror what is on screen left-right."""
        # With the image already rotated, a left-right mirror of the screen is a mirror of the
        # image plus a half turn when the rotation is 90 or 270 degrees.
        if self._rotation % 180:
            self.rotation = (self._rotation + 180) % 360
        self.flip = not self._flip

    def flip_vertical(self) -> None:
        """Mirror what is on screen top-bottom (a horizontal flip plus a half turn)."""
        if not self._rotation % 180:
            self.rotation = (self._rotation + 180) % 360
        self.flip = not self._flip

    @property
    def invert(self) -> bool:
        return self._invert

    @invert.setter
    def invert(self, value: bool) -> None:
        self._set("invert", bool(value))

    @property
    def tool(self) -> str:
        return self._tool

    @tool.setter
    def tool(self, name: str) -> None:
        self._set("tool", _tool(name))

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @size.setter
    def size(self, value: tuple[int, int]) -> None:
        width, height = _pair("size", value)
        if width < 16 or height < 16:
            raise ValueError(f"viewport size must be at least 16×16, not {value}")
        self._set("size", (int(width), int(height)))

    def transform(self) -> DisplayTransform:
        """The current image ↔ display mapping."""
        return DisplayTransform(
            image_size=self.image_size,
            viewport_size=self._size,
            zoom=self.effective_zoom,
            pan=self._pan,
            rotation=self._rotation,
            flip=self._flip,
            aspect=self.pixel_aspect,
        )

    @property
    def center(self) -> tuple[float, float]:
        """The image point ``(column, row)`` shown at the middle of the viewport."""
        middle = (self._size[0] / 2.0, self._size[1] / 2.0)
        c, r = self.transform().to_image(middle)
        return (float(c), float(r))

    @center.setter
    def center(self, point: tuple[float, float]) -> None:
        point = _pair("center", point)
        t = self.transform()
        x, y = t.to_display(point)
        dx, dy = x - self._size[0] / 2.0, y - self._size[1] / 2.0
        self.pan = (self._pan[0] - dx, self._pan[1] - dy)

    def orientation_letters(self) -> dict[str, str]:
        """R/L/A/P/H/F letters for the four sides, following rotation and flip."""
        orientation = self.attrs.get("ImageOrientationPatient")
        if orientation is None:
            orientation = self.frame_coord("orientation")
        if orientation is None:
            return {"left": "", "right": "", "top": "", "bottom": ""}
        return orientation_letters(list(orientation), rotation=self._rotation, flip=self._flip)

    def reset(self) -> None:
        """Back to the stack's default display (window, zoom to fit, no pan/rotation/flip)."""
        self.window = None
        self.zoom = None
        self.pan = (0.0, 0.0)
        self.rotation = 0
        self.flip = False
        self.invert = False

    # -- presentation-state exchange -------------------------------------------------------
    def display_settings(self) -> DisplaySettings:
        """The display as plain data (what a GSPS stores)."""
        center = None if self._zoom is None and self._pan == (0.0, 0.0) else self.center
        return DisplaySettings(
            window=self._window,
            invert=self._invert,
            rotation=self._rotation,
            flip=self._flip,
            zoom=self._zoom,
            center=center,
        )

    def apply_display_settings(self, settings: DisplaySettings | None) -> None:
        """Show the image as ``settings`` say; ``None`` returns to the display before the first
        call (so a presentation state can be applied and then deselected)."""
        if settings is None:
            if self._saved_display is not None:
                saved, self._saved_display = self._saved_display, None
                self._apply(saved)
            return
        if not isinstance(settings, DisplaySettings):
            raise TypeError(f"settings must be DisplaySettings, not {type(settings).__name__}")
        if self._saved_display is None:
            self._saved_display = self.display_settings()
        self._apply(settings)

    def _apply(self, settings: DisplaySettings) -> None:
        self.window = settings.window
        self.invert = settings.invert
        self.rotation = settings.rotation
        self.flip = settings.flip
        self.zoom = settings.zoom
        self.pan = (0.0, 0.0)
        if settings.center is not None:
            self.center = settings.center


def applies_to(annotation: Annotation, image: ImageReference | None) -> bool:
    """Whether an annotation belongs on ``image`` (annotations without an image go anywhere)."""
    ref = annotation.image
    if ref is None:
        return True
    if image is None:
        return False
    if ref.sop_instance_uid != image.sop_instance_uid:
        return False
    return ref.frame_number is None or ref.frame_number == image.frame_number


class AnnotationStore(Observable):
    """The viewer's annotations: the user's own, plus groups loaded from presentation states.

    Iterating, indexing and ``len`` cover the user's own annotations (what a new presentation
    state would save). Groups (one per loaded state, keyed by any hashable, e.g. the GSPS
    SOP Instance UID) can be shown or hidden as a whole. Changes are reported with the name
    ``"annotations"``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._own: list[Annotation] = []
        self._groups: dict[Any, list[Annotation]] = {}
        self._visible: dict[Any, bool] = {}

    def __iter__(self) -> Iterator[Annotation]:
        return iter(list(self._own))

    def __len__(self) -> int:
        return len(self._own)

    def __getitem__(self, index: int) -> Annotation:
        return self._own[index]

    def __repr__(self) -> str:
        return f"<AnnotationStore {len(self._own)} own, {len(self._groups)} groups>"

    def _changed(self, action: str, item: Any) -> None:
        self._emit(Change(self, "annotations", action, item))

    def add(self, annotation: Annotation) -> Annotation:
        """Add one of the user's annotations."""
        if not isinstance(annotation, Annotation):
            raise TypeError(f"expected an Annotation, not {type(annotation).__name__}")
        self._own.append(annotation)
        self._changed("add", annotation)
        return annotation

    def find(self, uid: str) -> Annotation | None:
        for annotation in self.all():
            if annotation.uid == uid:
                return annotation
        return None

    def remove(self, annotation: Annotation | str) -> None:
        """Delete one of the user's annotations (by object or uid)."""
        uid = annotation if isinstance(annotation, str) else annotation.uid
        for i, own in enumerate(self._own):
            if own.uid == uid:
                del self._own[i]
                self._changed("remove", own)
                return
        raise KeyError(f"no annotation with uid {uid!r}")

    def updated(self, annotation: Annotation) -> None:
        """Tell listeners an annotation was edited in place (moved, relabelled)."""
        self._changed("update", annotation)

    def clear(self) -> None:
        """Delete all of the user's annotations (groups stay)."""
        self._own.clear()
        self._changed("clear", None)

    # -- groups ---------------------------------------------------------------------------
    def add_group(
        self, key: Any, annotations: Sequence[Annotation], *, visible: bool = True
    ) -> None:
        """Add (or replace) a group of annotations, e.g. the graphics of a loaded GSPS."""
        self._groups[key] = list(annotations)
        self._visible[key] = bool(visible)
        self._changed("add_group", key)

    def remove_group(self, key: Any) -> None:
        if key not in self._groups:
            raise KeyError(f"no annotation group {key!r}")
        del self._groups[key]
        del self._visible[key]
        self._changed("remove_group", key)

    def set_group_visible(self, key: Any, visible: bool) -> None:
        if key not in self._groups:
            raise KeyError(f"no annotation group {key!r}")
        if self._visible[key] != bool(visible):
            self._visible[key] = bool(visible)
            self._changed("group_visible", key)

    def group(self, key: Any) -> list[Annotation]:
        return list(self._groups[key])

    @property
    def groups(self) -> dict[Any, bool]:
        """Group keys and whether each is shown."""
        return dict(self._visible)

    def all(self) -> list[Annotation]:
        """The user's annotations and every group's, shown or not."""
        out = list(self._own)
        for members in self._groups.values():
            out.extend(members)
        return out

    def visible_on(self, image: ImageReference | None) -> list[Annotation]:
        """What to draw on ``image``: own annotations and those of shown groups."""
        shown = list(self._own)
        for key, members in self._groups.items():
            if self._visible[key]:
                shown.extend(members)
        return [a for a in shown if applies_to(a, image)]

    def is_own(self, annotation: Annotation) -> bool:
        return any(a is annotation for a in self._own)

    def table(self, *, include_groups: bool = False):
        """The annotations as a ``pandas.DataFrame`` (one row each, values spread in columns)."""
        import pandas as pd

        rows = [dict(a.as_record(), group=None) for a in self._own]
        if include_groups:
            for key, members in self._groups.items():
                rows.extend(dict(a.as_record(), group=key) for a in members)
        return pd.DataFrame(rows)


class ViewerModel(Observable):
    """The state of a whole viewer: stacks, viewport grid, annotations and tool.

    Parameters
    ----------
    stacks
        Volumes the viewer can show (the thumbnail panel lists them).
    layout
        ``(rows, columns)`` of the viewport grid.
    viewport_size
        ``(width, height)`` of each viewport in display pixels.
    cache
        The decoded-frame cache shared by all viewports.
    volumes
        The decoded-volume cache behind reformatted planes (see :mod:`workbench.widgets.mpr`).

    Listeners registered with :meth:`on_change` hear about changes of the model (``layout``,
    ``active``, ``tool``, ``stacks``, ``crosshair``, ``links``), of every viewport
    (``source`` is the viewport) and of the annotations.

    Viewports showing one Frame of Reference work together: :attr:`crosshair` puts a patient
    point on every one of them, and :meth:`link` makes scrolling, windowing and zooming one
    move the others.
    """

    def __init__(
        self,
        stacks: Sequence[xr.DataArray] = (),
        *,
        layout: tuple[int, int] = (1, 1),
        viewport_size: tuple[int, int] = (512, 512),
        cache: FrameCache | None = None,
        volumes: mpr.VolumeCache | None = None,
    ) -> None:
        super().__init__()
        self.cache = cache if cache is not None else FrameCache()
        self.volumes = volumes if volumes is not None else mpr.VolumeCache()
        self._crosshair: Crosshair | None = None
        self._links = Links()
        self._syncing = False
        self._links.on_change(self._emit)
        self.on_change(self._follow, names=("frame", "window", "zoom", "pan"))
        self._stacks: list[xr.DataArray] = [as_stack(s) for s in stacks]
        self._layout = (0, 0)
        self._active = 0
        self._tool = "window"
        self._viewport_size = _pair("viewport_size", viewport_size)
        self.viewports: list[Viewport] = []
        self.annotations = AnnotationStore()
        self.annotations.on_change(self._emit)
        #: Where the user dragged measurement labels: annotation uid → display-pixel offset
        #: of the label's corner from the point it labels.
        self.label_offsets: dict[str, tuple[float, float]] = {}
        self.layout = layout

    @property
    def stacks(self) -> list[xr.DataArray]:
        return list(self._stacks)

    def add_stack(self, volume: xr.DataArray) -> int:
        """Make another volume available; returns its index."""
        self._stacks.append(as_stack(volume))
        self._emit(Change(self, "stacks", None, len(self._stacks) - 1))
        return len(self._stacks) - 1

    def _new_viewport(self) -> Viewport:
        viewport = Viewport(cache=self.cache, size=self.viewport_size, volumes=self.volumes)
        viewport.tool = self._tool
        viewport.on_change(self._emit)
        # Fill new viewports with the next stacks not yet on screen, as a reading layout does.
        shown = {id(v.stack) for v in self.viewports if v.stack is not None}
        for stack in self._stacks:
            if id(stack) not in shown:
                viewport.stack = stack
                break
        else:
            if self._stacks and not self.viewports:
                viewport.stack = self._stacks[0]
        return viewport

    @property
    def viewport_size(self) -> tuple[int, int]:
        """``(width, height)`` given to viewports created by later layout changes."""
        return (int(self._viewport_size[0]), int(self._viewport_size[1]))

    @viewport_size.setter
    def viewport_size(self, value: tuple[int, int]) -> None:
        self._viewport_size = _pair("viewport_size", value)

    @property
    def layout(self) -> tuple[int, int]:
        return self._layout

    @layout.setter
    def layout(self, value: tuple[int, int] | str) -> None:
        if value == "mpr":
            self.show_mpr()
            return
        if isinstance(value, str):
            raise ValueError(f"layout must be (rows, columns) or one of {tuple(NAMED_LAYOUTS)}")
        try:
            rows, cols = (int(v) for v in value)
        except (TypeError, ValueError):
            raise TypeError(f"layout must be (rows, columns), not {value!r}") from None
        if not (1 <= rows <= MAX_GRID and 1 <= cols <= MAX_GRID):
            raise ValueError(f"layout rows and columns must be in 1..{MAX_GRID}, not {value!r}")
        # Existing viewports keep their state; extra ones are dropped from the end.
        while len(self.viewports) > rows * cols:
            self.viewports.pop()
        while len(self.viewports) < rows * cols:
            self.viewports.append(self._new_viewport())
        if self._active >= rows * cols:
            self.active = 0
        self._set("layout", (rows, cols))

    @property
    def active(self) -> int:
        return self._active

    @active.setter
    def active(self, index: int) -> None:
        if not 0 <= int(index) < len(self.viewports):
            last = len(self.viewports) - 1
            raise ValueError(f"active viewport must be in 0..{last}, not {index}")
        self._set("active", int(index))

    @property
    def active_viewport(self) -> Viewport:
        return self.viewports[self._active]

    @property
    def tool(self) -> str:
        return self._tool

    @tool.setter
    def tool(self, name: str) -> None:
        name = _tool(name)
        for viewport in self.viewports:
            viewport.tool = name
        self._set("tool", name)

    def show(self, stack: int | xr.DataArray, viewport: int | None = None) -> Viewport:
        """Display a stack (by index or volume) in a viewport (the active one by default)."""
        if isinstance(stack, (int, np.integer)):
            if not 0 <= stack < len(self._stacks):
                raise ValueError(f"no stack {stack}; there are {len(self._stacks)}")
            volume = self._stacks[stack]
        else:
            volume = as_stack(stack)
            if not any(volume is s for s in self._stacks):
                self.add_stack(volume)
        target = self.viewports[self._active if viewport is None else viewport]
        target.stack = volume
        return target

    def measure(self, annotation: Annotation, viewport: Viewport | None = None) -> Annotation:
        """Compute an annotation's values from the frame it is drawn on."""
        viewport = viewport or self.active_viewport
        needs_pixels = annotation.kind in ("ellipse", "rectangle", "probe")
        values = viewport.pixels() if needs_pixels and viewport.stack is not None else None
        return measurements.measure(annotation, values, viewport.attrs)

    # -- planes, crosshair and links ------------------------------------------------------
    def show_mpr(self, stack: int | xr.DataArray | None = None) -> list[Viewport]:
        """Show a volume's axial, coronal and sagittal planes side by side.

        Parameters
        ----------
        stack
            The volume (index or array); default: the active viewport's series, else the
            first stack that is a volume.

        Returns
        -------
        list of Viewport
            The three viewports, crossing at the volume's centre (:attr:`crosshair`), with
            their window linked (see :meth:`link`).
        """
        if stack is None:
            volume = self.active_viewport.volume if self.viewports else None
            if not mpr.is_volume(volume):
                volume = next((s for s in self._stacks if mpr.is_volume(s)), None)
            if volume is None:
                raise ValueError("no stack of this viewer is a volume that can be reformatted")
        elif isinstance(stack, (int, np.integer)):
            volume = self._stacks[stack]
        else:
            volume = as_stack(stack)
        if not mpr.is_volume(volume):
            raise ValueError(
                f"{volume.name or 'the series'} cannot be reformatted: it needs several "
                "parallel grayscale slices with positions"
            )
        self.layout = NAMED_LAYOUTS["mpr"]
        shown = self.viewports[:3]
        for viewport, plane in zip(shown, PLANES, strict=True):
            viewport.stack = volume
            viewport.plane = plane
        self.active = 0
        self.link(shown, scroll=True, window=True)  # one volume, one window
        if mpr.has_geometry(volume):
            columns, rows = volume.sizes["x"], volume.sizes["y"]
            centre = mpr.point_on(
                volume, volume.sizes["frame"] // 2, (columns - 1) / 2, (rows - 1) / 2
            )
            self.crosshair = Crosshair(
                tuple(float(v) for v in centre), volume.attrs["FrameOfReferenceUID"]
            )
        return shown

    @property
    def crosshair(self) -> Crosshair | None:
        """The patient point shown by every viewport of its Frame of Reference.

        Setting it (a :class:`Crosshair`, or an LPS point in the active viewport's Frame of
        Reference) moves each of those viewports to the slice nearest the point.
        """
        return self._crosshair

    @crosshair.setter
    def crosshair(self, value: Crosshair | Sequence[float] | None) -> None:
        if value is not None and not isinstance(value, Crosshair):
            reference = self.active_viewport.frame_of_reference
            if reference is None:
                raise ValueError("the active viewport's images have no patient geometry")
            try:
                x, y, z = (float(v) for v in value)
            except (TypeError, ValueError):
                raise TypeError(
                    f"crosshair must be an LPS point (x, y, z), not {value!r}"
                ) from None
            value = Crosshair((x, y, z), reference)
        self._crosshair = value
        if value is not None:
            self._syncing = True
            try:
                for viewport in self.viewports:
                    if viewport.frame_of_reference == value.frame_of_reference:
                        viewport.frame = mpr.locate(viewport.stack, value.point)[0]
            finally:
                self._syncing = False
        self._emit(Change(self, "crosshair", None, value))

    def point_at(self, viewport: Viewport, column: float, row: float) -> Crosshair:
        """The crosshair at image point ``(column, row)`` of ``viewport``'s current slice."""
        reference = viewport.frame_of_reference
        if reference is None:
            raise ValueError("the viewport's images have no patient geometry")
        point = viewport.patient_point(column, row)
        return Crosshair(tuple(float(v) for v in point), reference)

    @property
    def links(self) -> Links:
        """Which viewports move together, and in what (see :meth:`link`)."""
        return self._links

    def link(
        self,
        viewports: Iterable[Viewport | int] | None = None,
        *,
        scroll: bool = True,
        window: bool = False,
        zoom: bool = False,
    ) -> Links:
        """Make viewports move together.

        Parameters
        ----------
        viewports
            Viewports or their indices; default: all of them.
        scroll
            Scrolling one moves the others: to the slice nearest the same patient position
            when they share a Frame of Reference and their slices are parallel, else by the
            same distance in mm (a prior study beside the current one).
        window, zoom
            Windowing (zooming and panning) one does the same to the others.
        """
        members = [self.viewports[v] if isinstance(v, (int, np.integer)) else v
                   for v in (self.viewports if viewports is None else viewports)]  # fmt: skip
        self._links.set(members, scroll=scroll, window=window, zoom=zoom)
        return self._links

    def unlink(self) -> None:
        """Stop moving viewports together."""
        self._links.set([], scroll=False, window=False, zoom=False)

    def _follow(self, change: Change) -> None:
        source = change.source
        links = self._links
        if self._syncing or not isinstance(source, Viewport) or source not in links:
            return
        others = [v for v in links.viewports if v is not source and v in self.viewports]
        others = [v for v in others if v.stack is not None]
        self._syncing = True
        try:
            if change.name == "frame" and links.scroll and change.old is not None:
                for viewport in others:
                    frame = linked_frame(source, change.old, viewport)
                    if frame is not None:
                        viewport.frame = frame
            elif change.name == "window" and links.window:
                for viewport in others:
                    if "channel" not in viewport.stack.dims:
                        viewport.window = change.new
            elif change.name in ("zoom", "pan") and links.zoom:
                for viewport in others:
                    setattr(viewport, change.name, change.new)
        finally:
            self._syncing = False


class Links(Observable):
    """Viewports that move together: ``scroll``, ``window`` and ``zoom`` (with pan) toggles.

    Change the toggles directly (``viewer.model.links.window = True``) or through
    :meth:`ViewerModel.link`; changes are reported with the name ``"links"``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._viewports: list[Viewport] = []
        self._flags = {"scroll": False, "window": False, "zoom": False}

    def __contains__(self, viewport: object) -> bool:
        return any(viewport is v for v in self._viewports)

    def __repr__(self) -> str:
        on = [name for name, value in self._flags.items() if value]
        return f"<Links {len(self._viewports)} viewports: {', '.join(on) or 'off'}>"

    @property
    def viewports(self) -> list[Viewport]:
        return list(self._viewports)

    @property
    def active(self) -> bool:
        """Whether anything is linked."""
        return len(self._viewports) > 1 and any(self._flags.values())

    def set(self, viewports: Sequence[Viewport], **flags: bool) -> None:
        for name, value in flags.items():
            if name not in self._flags:
                raise ValueError(f"unknown link {name!r}; links are {tuple(self._flags)}")
            self._flags[name] = bool(value)
        self._viewports = list(viewports)
        self._emit(Change(self, "links", None, self))

    def _toggle(self, name: str, value: bool) -> None:
        if self._flags[name] != bool(value):
            self._flags[name] = bool(value)
            self._emit(Change(self, "links", None, self))

    scroll = property(lambda self: self._flags["scroll"], lambda self, v: self._toggle("scroll", v))
    window = property(lambda self: self._flags["window"], lambda self, v: self._toggle("window", v))
    zoom = property(lambda self: self._flags["zoom"], lambda self, v: self._toggle("zoom", v))


#: Slices within this angle (cosine of the normals) count as parallel for linked scrolling.
_PARALLEL_COSINE = 0.99


def linked_frame(source: Viewport, old_frame: int, target: Viewport) -> int | None:
    """The slice ``target`` moves to when ``source`` scrolled from ``old_frame``.

    Same Frame of Reference and parallel slices: the slice nearest the source slice's patient
    position. Otherwise by the same distance along the slices (in mm where both know their
    positions, else in slices); ``None`` when slices of one Frame of Reference cross (the
    crosshair relates those).
    """
    s, t = source.stack, target.stack
    if mpr.has_geometry(s) and mpr.has_geometry(t):
        cosine = float(mpr.placement(s).normal @ mpr.placement(t).normal)
        if source.frame_of_reference == target.frame_of_reference:
            if abs(cosine) < _PARALLEL_COSINE:
                return None
            origin = mpr.frame_origin(s, source.frame)
            return mpr.locate(t, origin)[0]
        sign = 1.0 if cosine >= 0 else -1.0
    else:
        sign = 1.0
    positions_s = s.coords["position"].values if "position" in s.coords else None
    positions_t = t.coords["position"].values if "position" in t.coords else None
    if (
        positions_s is not None
        and positions_t is not None
        and np.all(np.isfinite(positions_s))
        and np.all(np.isfinite(positions_t))
    ):
        moved = float(positions_s[source.frame] - positions_s[old_frame]) * sign
        goal = float(positions_t[target.frame]) + moved
        return int(np.argmin(np.abs(positions_t - goal)))
    frame = target.frame + (source.frame - old_frame)
    return int(min(max(frame, 0), target.frame_count - 1))
