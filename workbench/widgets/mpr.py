"""Multiplanar reformatting for the viewer: plane stacks of a volume, decoded once, bounded.

A *plane stack* is an ordinary stack (an ``xarray.DataArray`` with dims ``frame, y, x``) whose
frames are the axial, coronal or sagittal slices of a volume: a viewport shows it, measures on
it in mm and labels its sides with the same code as an acquired series, since its ``attrs``
carry its own Image Orientation, Pixel Spacing and affine. Its pixels come from the whole
volume, decoded once into a :class:`VolumeCache` (with progress reported while that happens)
and cut with :func:`workbench.io.reformat.plane_geometry` (a numpy view, no interpolation).
Stacks with gantry tilt or uneven spacing are resampled onto a regular grid first
(:func:`workbench.io.reformat.resample`), and their plane stacks say so in ``attrs["resampled"]``.

The acquired slices of a regular volume are shown as they are (the plane of the acquisition
is the series itself), so they keep their DICOM references and annotations on them can be
saved. Frames of plane stacks carry ``sop_instance_uid`` values starting with
:data:`REFORMATTED_UID_PREFIX`: a presentation state cannot reference them.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import dask.array as da
import numpy as np
import xarray as xr

from workbench.io import reformat
from workbench.widgets.cache import load_frame, stack_key

#: Default memory budget of decoded volumes: two 300-slice 512² CTs of int16.
DEFAULT_VOLUME_BYTES = 512 * 1024 * 1024
#: Frames decoded together while a volume is first read (progress is reported after each).
DECODE_BATCH = 16
#: Start of the ``sop_instance_uid`` of a reformatted slice (never a DICOM UID: no digit).
REFORMATTED_UID_PREFIX = "reformatted:"
#: ``attrs`` key naming the plane of a plane stack.
PLANE_ATTR = "reformatted_plane"
_SOURCE = "mpr_source"  # encoding key holding the plane stack's _PlaneSource

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DecodedVolume:
    """A volume's pixels on its regular grid."""

    array: np.ndarray  # (frame, y, x)
    grid: reformat.RegularGrid


def is_volume(stack: xr.DataArray | None) -> bool:
    """Whether ``stack`` can be reformatted: several parallel grayscale slices with geometry."""
    return (
        stack is not None
        and "channel" not in stack.dims
        and bool(stack.attrs.get("is_volume"))
        and stack.sizes.get("frame", 0) > 1
        and "affine" in stack.attrs
    )


def volume_grid(volume: xr.DataArray) -> reformat.RegularGrid:
    """The regular grid ``volume`` is reformatted on (see :func:`reformat.regular_grid`)."""
    a = volume.attrs
    return reformat.regular_grid(
        a["affine"],
        (volume.sizes["frame"], volume.sizes["y"], volume.sizes["x"]),
        volume.coords["position"].values,
        gantry_tilt=float(a.get("gantry_tilt") or 0.0),
        uneven_spacing=bool(a.get("uneven_spacing")),
    )


class VolumeCache:
    """Whole volumes decoded for reformatting, least recently used evicted first.

    Parameters
    ----------
    max_bytes
        Memory budget; a volume larger than it cannot be reformatted (``MemoryError`` naming
        both sizes), since every reformatted slice needs all of it.
    workers
        Threads decoding frames of a volume.
    """

    def __init__(self, max_bytes: int = DEFAULT_VOLUME_BYTES, workers: int = 2) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.workers = int(workers)
        self._volumes: OrderedDict[Hashable, DecodedVolume] = OrderedDict()
        self._pending: dict[Hashable, Future] = {}
        self._progress: dict[Hashable, tuple[int, int]] = {}
        self._planes: dict[tuple, xr.DataArray] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="volume-decode")
        self.nbytes = 0

    def __contains__(self, volume: xr.DataArray) -> bool:
        return stack_key(volume) in self._volumes

    def acquired(self, volume: xr.DataArray) -> np.ndarray | None:
        """The decoded slices of ``volume`` as acquired, if it is decoded and was not
        resampled (so viewports showing it need no other copy); else ``None``."""
        with self._lock:
            found = self._volumes.get(stack_key(volume))
        return None if found is None or found.grid.resampled else found.array

    def progress(self, volume: xr.DataArray) -> tuple[int, int] | None:
        """``(frames decoded, frames)`` while ``volume`` is being decoded, else ``None``."""
        return self._progress.get(stack_key(volume))

    def get(self, volume: xr.DataArray, progress: Progress | None = None) -> DecodedVolume:
        """``volume`` decoded onto its regular grid (decoding it now if needed)."""
        key = stack_key(volume)
        with self._lock:
            found = self._volumes.get(key)
            if found is not None:
                self._volumes.move_to_end(key)
                return found
        return self.load(volume, progress).result()

    def load(self, volume: xr.DataArray, progress: Progress | None = None) -> Future:
        """Start decoding ``volume`` in the background; the future gives the volume.

        ``progress(done, total)`` is called from the decoding thread as frames come in.
        """
        key = stack_key(volume)
        with self._lock:
            if key in self._volumes:
                done: Future = Future()
                done.set_result(self._volumes[key])
                return done
            if key in self._pending:
                return self._pending[key]
            self.check_budget(volume)
            self._progress[key] = (0, int(volume.sizes["frame"]))
            future = self._pool.submit(self._decode, key, volume, progress)
            self._pending[key] = future
            return future

    def check_budget(self, volume: xr.DataArray) -> None:
        """Raise ``MemoryError`` (naming both sizes) if ``volume`` cannot be kept decoded."""
        grid = volume_grid(volume)
        needed = int(np.prod(grid.shape)) * volume.dtype.itemsize
        if needed > self.max_bytes:
            raise MemoryError(
                f"reformatting {volume.name or 'the series'} needs {needed / 2**20:.0f} MiB "
                f"decoded, more than the volume cache's {self.max_bytes / 2**20:.0f} MiB; "
                "give the viewer a larger volume_bytes"
            )

    def _decode(self, key: Hashable, volume: xr.DataArray, progress: Progress | None):
        try:
            count = int(volume.sizes["frame"])
            array = np.empty((count, volume.sizes["y"], volume.sizes["x"]), volume.dtype)
            # A few frames at a time into one array: dask decodes them in parallel, and there
            # is never a second copy of the volume.
            for start in range(0, count, DECODE_BATCH):
                stop = min(start + DECODE_BATCH, count)
                array[start:stop] = volume.data[start:stop].compute(num_workers=self.workers)
                self._progress[key] = (stop, count)
                if progress is not None:
                    progress(stop, count)
            grid = volume_grid(volume)
            decoded = DecodedVolume(reformat.resample(array, grid), grid)
            self._store(key, decoded)
            return decoded
        finally:
            with self._lock:
                self._pending.pop(key, None)
                self._progress.pop(key, None)

    def _store(self, key: Hashable, decoded: DecodedVolume) -> None:
        with self._lock:
            self._volumes[key] = decoded
            self.nbytes += decoded.array.nbytes
            while self.nbytes > self.max_bytes and len(self._volumes) > 1:
                _, evicted = self._volumes.popitem(last=False)
                self.nbytes -= evicted.array.nbytes

    def plane(self, volume: xr.DataArray, plane: str) -> xr.DataArray:
        """The stack of ``volume``'s ``plane`` slices (the same object on every call).

        The acquired plane of a regular volume is ``volume`` itself.
        """
        key = (stack_key(volume), reformat.check_plane(plane))
        with self._lock:
            found = self._planes.get(key)
        if found is not None:
            return found
        stack = plane_stack(volume, plane, self)
        with self._lock:
            self._planes.setdefault(key, stack)
            return self._planes[key]

    def clear(self) -> None:
        with self._lock:
            self._volumes.clear()
            self._planes.clear()
            self.nbytes = 0

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class _PlaneSource:
    """The frames of one plane stack, cut from the decoded volume on demand (dask source)."""

    def __init__(
        self, volume: xr.DataArray, geometry: reformat.PlaneGeometry, cache: VolumeCache
    ) -> None:
        self.volume = volume
        self.geometry = geometry
        self.cache = cache
        self.shape = geometry.shape
        self.dtype = volume.dtype
        self.ndim = 3

    def frames(self) -> np.ndarray:
        """All slices of the plane as a numpy view of the decoded volume."""
        return self.geometry.view(self.cache.get(self.volume).array)

    def frame(self, index: int) -> np.ndarray:
        """Slice ``index`` of the plane (a view of the decoded volume)."""
        if not 0 <= index < self.shape[0]:
            raise IndexError(f"slice {index} out of 0..{self.shape[0] - 1}")
        return self.frames()[index]

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self.frames()[key])

    @property
    def ready(self) -> bool:
        return self.volume in self.cache


def plane_stack(volume: xr.DataArray, plane: str, cache: VolumeCache) -> xr.DataArray:
    """A lazy stack of ``volume``'s slices in ``plane`` (use :meth:`VolumeCache.plane`).

    Raises
    ------
    ValueError
        If ``volume`` is not a volume (see :func:`is_volume`) or ``plane`` is unknown.
    """
    reformat.check_plane(plane)
    if not is_volume(volume):
        raise ValueError(
            f"{volume.name or 'the series'} cannot be reformatted: it needs several parallel "
            "grayscale slices with positions (attrs['is_volume'])"
        )
    grid = volume_grid(volume)
    geometry = reformat.plane_geometry(grid.affine, grid.shape, plane)
    if geometry.is_identity and not grid.resampled:
        return volume
    source = _PlaneSource(volume, geometry, cache)
    frames, rows, columns = geometry.shape
    data = da.from_array(
        source,
        chunks=(1, rows, columns),
        name=f"mpr-{plane}-{stack_key(volume)[1]}",
        lock=False,
        asarray=False,
        fancy=False,
        meta=np.empty((0, 0, 0), dtype=volume.dtype),
    )
    affine = geometry.affine
    normal = reformat.slice_normal(affine)
    origins = affine[:3, 3] + np.outer(np.arange(frames), affine[:3, 2])
    row_spacing, column_spacing, slice_spacing = geometry.spacing
    series = volume.attrs.get("SeriesInstanceUID", "")
    attrs = {
        **volume.attrs,
        "affine": affine.tolist(),
        "ImageOrientationPatient": geometry.orientation,
        "PixelSpacing": [row_spacing, column_spacing],
        "PixelSpacingSource": "PixelSpacing",
        # As a header would give it (the overlay prints it as it is).
        "SliceThickness": round(slice_spacing, 3),
        "slice_spacing": slice_spacing,
        "gantry_tilt": 0.0,
        "uneven_spacing": 0,
        "is_volume": 1,
        PLANE_ATTR: plane,
    }
    attrs.pop("PixelAspectRatio", None)
    attrs.pop("SpacingBetweenSlices", None)
    if grid.resampled:
        attrs["resampled"] = grid.reason
    frame_values = {
        name: volume.coords[name].values[0]
        for name in ("rescale_slope", "rescale_intercept", "window_center", "window_width")
        if name in volume.coords
    }
    coords = {
        "y": ("y", np.arange(rows) * row_spacing, {"units": "mm"}),
        "x": ("x", np.arange(columns) * column_spacing, {"units": "mm"}),
        "position": ("frame", origins @ normal, {"units": "mm"}),
        "instance_number": ("frame", np.arange(1, frames + 1, dtype=np.int64)),
        "frame_number": ("frame", np.arange(1, frames + 1, dtype=np.int64)),
        "sop_instance_uid": (
            "frame",
            np.array(
                [f"{REFORMATTED_UID_PREFIX}{series}:{plane}:{k + 1}" for k in range(frames)],
                dtype=object,
            ),
        ),
        "sop_class_uid": ("frame", np.array([""] * frames, dtype=object)),
        **{name: ("frame", np.full(frames, value)) for name, value in frame_values.items()},
    }
    name = f"{volume.name or 'series'} ({plane})"
    stack = xr.DataArray(data, dims=("frame", "y", "x"), coords=coords, attrs=attrs, name=name)
    stack.encoding.update(volume.encoding)
    stack.encoding[_SOURCE] = source
    return stack


def source_of(stack: xr.DataArray | None) -> _PlaneSource | None:
    """The reformatting behind a plane stack (``None`` for an acquired stack)."""
    return None if stack is None else stack.encoding.get(_SOURCE)


def is_reformatted(stack: xr.DataArray | None) -> bool:
    """Whether ``stack``'s slices were computed from a volume rather than acquired."""
    return source_of(stack) is not None


def plane_of(stack: xr.DataArray | None) -> str | None:
    """The plane a stack shows: its reformatted plane, else the plane its orientation is
    closest to, ``None`` without orientation."""
    if stack is None:
        return None
    if PLANE_ATTR in stack.attrs:
        return stack.attrs[PLANE_ATTR]
    orientation = stack.attrs.get("ImageOrientationPatient")
    if orientation is None or len(orientation) != 6:
        return None
    normal = np.abs(np.cross(orientation[:3], orientation[3:]))
    return ("sagittal", "coronal", "axial")[int(np.argmax(normal))]


def is_ready(stack: xr.DataArray | None) -> bool:
    """Whether a stack's pixels can be read without decoding a whole volume first."""
    source = source_of(stack)
    return source is None or source.ready


def slab(
    stack: xr.DataArray,
    frame: int,
    thickness: float,
    mode: str,
    frames: Callable[[int], np.ndarray] | None = None,
) -> np.ndarray:
    """The ``mode`` projection of the slab ``thickness`` mm thick centred on ``frame``.

    Parameters
    ----------
    stack
        A volume or plane stack.
    frame
        The slab's centre slice.
    thickness
        In mm; the slices that fit (at least one, see :func:`reformat.slab_range`).
    mode
        ``"mip"``, ``"minip"`` or ``"average"``.
    frames
        ``frames(index)`` giving one decoded slice of an acquired stack (the viewer's frame
        cache); plane stacks are reduced straight from the decoded volume.
    """
    spacing = stack_spacing(stack)
    indices = reformat.slab_range(frame, int(stack.sizes["frame"]), thickness, spacing or 0.0)
    source = source_of(stack)
    if source is not None:
        chunk = source.frames()[indices.start : indices.stop]
    else:
        get = frames or (lambda i: load_frame(stack, i))
        chunk = np.stack([get(i) for i in indices])
    return reformat.project(chunk, mode)


def stack_spacing(stack: xr.DataArray) -> float | None:
    """Distance between slices of a stack in mm (``None`` when unknown)."""
    value = stack.attrs.get("slice_spacing")
    if value:
        return abs(float(value))
    positions = stack.coords["position"].values if "position" in stack.coords else []
    if len(positions) > 1 and np.all(np.isfinite(positions)):
        return float(np.median(np.abs(np.diff(positions)))) or None
    return None


@dataclass(frozen=True)
class Placement:
    """Where a stack's slices are in patient space, as arrays (computed once per stack)."""

    affine: np.ndarray  # 4x4, (column, row, slice) -> LPS
    normal: np.ndarray  # unit normal of the slices
    positions: np.ndarray | None  # mm along the normal, None when not all known
    along: np.ndarray | None  # LPS move of a slice origin per mm along the normal


_PLACEMENTS: dict[int, tuple[weakref.ref, Placement]] = {}


def placement(stack: xr.DataArray) -> Placement:
    """The :class:`Placement` of a stack with an affine (remembered while it lives)."""
    key = id(stack)
    found = _PLACEMENTS.get(key)
    if found is not None and found[0]() is stack:
        return found[1]
    affine = np.asarray(stack.attrs["affine"], dtype=float)
    normal = reformat.slice_normal(affine)
    positions = stack.coords["position"].values if "position" in stack.coords else None
    if positions is not None and not np.all(np.isfinite(positions)):
        positions = None
    step = affine[:3, 2]
    along = step / float(step @ normal) if abs(float(step @ normal)) > 1e-9 else None
    result = Placement(affine, normal, positions, along)
    _PLACEMENTS[key] = (weakref.ref(stack, lambda _ref, key=key: _PLACEMENTS.pop(key, None)),
                        result)  # fmt: skip
    return result


def frame_origin(stack: xr.DataArray, frame: int) -> np.ndarray:
    """LPS position of the first pixel of slice ``frame``.

    Exact for unevenly spaced and tilted stacks too: slice origins lie on the line of the
    affine's step, at the slice's own position along the normal.
    """
    p = placement(stack)
    if p.positions is None or p.along is None:
        return p.affine[:3, :3] @ np.array([0.0, 0.0, frame]) + p.affine[:3, 3]
    return p.affine[:3, 3] + p.along * (float(p.positions[frame]) - float(p.positions[0]))


def has_geometry(stack: xr.DataArray | None) -> bool:
    """Whether a stack's slices can be placed in patient space."""
    return (
        stack is not None
        and "affine" in stack.attrs
        and bool(stack.attrs.get("FrameOfReferenceUID"))
        and stack.attrs.get("ImageOrientationPatient") is not None
    )


def point_on(stack: xr.DataArray, frame: int, column: float, row: float) -> np.ndarray:
    """LPS point of image point ``(column, row)`` on slice ``frame``."""
    affine = placement(stack).affine
    return frame_origin(stack, frame) + affine[:3, 0] * column + affine[:3, 1] * row


def locate(stack: xr.DataArray, point) -> tuple[int, float, float, float]:
    """Where an LPS point falls in a stack: ``(nearest slice, column, row, distance mm)``.

    ``distance`` is from the point to that slice's plane.
    """
    p = placement(stack)
    affine, normal = p.affine, p.normal
    point = np.asarray(point, dtype=float)
    frame = 0 if p.positions is None else reformat.nearest_slice(p.positions, float(point @ normal))
    origin = frame_origin(stack, frame)
    in_plane = np.column_stack([affine[:3, 0], affine[:3, 1]])
    (column, row), *_ = np.linalg.lstsq(in_plane, point - origin, rcond=None)
    distance = float(abs((point - origin) @ normal))
    return frame, float(column), float(row), distance


def reference_line(
    stack: xr.DataArray, frame: int, other: xr.DataArray, other_frame: int
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Where slice ``other_frame`` of ``other`` crosses slice ``frame`` of ``stack``.

    In ``stack``'s image coordinates; ``None`` for parallel slices, slices that do not meet
    on the image, or stacks without geometry or of different Frames of Reference.
    """
    if not (has_geometry(stack) and has_geometry(other)):
        return None
    if stack.attrs["FrameOfReferenceUID"] != other.attrs["FrameOfReferenceUID"]:
        return None
    return reformat.intersection_segment(
        placement(stack).affine,
        frame_origin(stack, frame),
        (int(stack.sizes["x"]), int(stack.sizes["y"])),
        frame_origin(other, other_frame),
        placement(other).normal,
    )
