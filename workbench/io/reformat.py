"""Reformatting a volume into axial, coronal and sagittal planes, and slabs through them.

Everything here is arithmetic on a ``(frame, y, x)`` array and the 4×4 affine of
:func:`workbench.io.open_series` (``(x, y, frame, 1)`` → patient LPS mm), so that the viewer,
notebooks and tests share one definition of where a reformatted pixel lies.

A *plane* is a choice of display axes in LPS: ``axial`` shows left (L) to the right of the
image and posterior (P) at the bottom, ``coronal`` L to the right and feet (F) at the bottom,
``sagittal`` P to the right and F at the bottom, as radiology viewers do. Its slices are
stacked along ``right × down`` (towards H, P and R), the DICOM convention for a slice normal.
A plane of a volume is a transpose and flip of its array (no interpolation): the volume axis
closest to each display axis is used, so an oblique acquisition gives oblique planes whose
orientation letters say so.

Gantry tilt and uneven slice spacing do not form such a grid; :func:`regular_grid` says how
they are put on one and :func:`resample` does it (linear interpolation), explicitly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Display axes of each plane in LPS: (towards the image's right, towards its bottom).
PLANES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}
#: Slab projections: maximum, minimum and mean intensity over the slab's slices.
SLAB_MODES = ("mip", "minip", "average")


def check_plane(plane: str) -> str:
    """``plane`` if it is one of :data:`PLANES`, else a ``ValueError`` naming the choices."""
    if plane not in PLANES:
        raise ValueError(f"plane must be one of {tuple(PLANES)}, not {plane!r}")
    return plane


def _array_axis_vectors(affine: np.ndarray) -> list[np.ndarray]:
    """LPS step of one index along array axes 0 (frame), 1 (y) and 2 (x)."""
    return [affine[:3, 2].copy(), affine[:3, 1].copy(), affine[:3, 0].copy()]


@dataclass(frozen=True)
class PlaneGeometry:
    """How one plane of a volume is cut from its ``(frame, y, x)`` array.

    Attributes
    ----------
    plane
        ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    axes
        The array axis giving the plane's (slice, row, column) axes.
    flips
        Whether each of those runs backwards through the array.
    shape
        ``(slices, rows, columns)`` of the plane stack.
    affine
        4×4, ``(column, row, slice, 1)`` → LPS mm, the layout of :func:`open_series`.
    """

    plane: str
    axes: tuple[int, int, int]
    flips: tuple[bool, bool, bool]
    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def is_identity(self) -> bool:
        """Whether the plane is the array as it is (the acquired slices)."""
        return self.axes == (0, 1, 2) and not any(self.flips)

    def view(self, array: np.ndarray) -> np.ndarray:
        """The plane stack of ``array`` as a numpy view (no copy)."""
        view = np.transpose(array, self.axes + tuple(range(3, array.ndim)))
        return view[tuple(slice(None, None, -1) if f else slice(None) for f in self.flips)]

    @property
    def orientation(self) -> list[float]:
        """(0020,0037) Image Orientation Patient of the plane's slices (unit vectors)."""
        row = self.affine[:3, 0] / np.linalg.norm(self.affine[:3, 0])
        col = self.affine[:3, 1] / np.linalg.norm(self.affine[:3, 1])
        return [float(v) for v in (*row, *col)]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """(row spacing, column spacing, slice spacing) in mm."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(norms[1]), float(norms[0]), float(norms[2]))


def plane_geometry(affine: Sequence, shape: Sequence[int], plane: str) -> PlaneGeometry:
    """Which transpose and flips of a ``(frame, y, x)`` array show ``plane``.

    Parameters
    ----------
    affine
        The volume's 4×4 ``(x, y, frame, 1)`` → LPS affine (a regular grid).
    shape
        ``(frames, rows, columns)`` of the array.
    plane
        One of :data:`PLANES`.

    Returns
    -------
    PlaneGeometry

    Examples
    --------
    >>> g = plane_geometry(np.eye(4), (3, 4, 5), "coronal")
    >>> g.axes, g.flips, g.shape
    ((1, 0, 2), (False, True, False), (4, 3, 5))
    """
    check_plane(plane)
    affine = np.asarray(affine, dtype=float)
    right, down = (np.asarray(v) for v in PLANES[plane])
    targets = [np.cross(right, down), down, right]  # slice, row, column
    vectors = _array_axis_vectors(affine)
    units = [v / (np.linalg.norm(v) or 1.0) for v in vectors]
    best = max(
        itertools.permutations(range(3)),
        key=lambda p: sum(abs(float(units[p[k]] @ targets[k])) for k in range(3)),
    )
    flips = tuple(bool(units[best[k]] @ targets[k] < 0) for k in range(3))
    origin = affine[:3, 3].copy()
    steps = []
    for k in range(3):
        step = vectors[best[k]]
        if flips[k]:
            origin = origin + (shape[best[k]] - 1) * step
            step = -step
        steps.append(step)
    out = np.eye(4)
    out[:3, 0], out[:3, 1], out[:3, 2], out[:3, 3] = steps[2], steps[1], steps[0], origin
    plane_shape = tuple(int(shape[a]) for a in best)
    return PlaneGeometry(plane, tuple(best), flips, plane_shape, out)  # type: ignore[arg-type]


# -- points and planes in patient space --------------------------------------------------


def to_patient(affine: Sequence, column: float, row: float, frame: float) -> np.ndarray:
    """The LPS point (mm) of image point ``(column, row)`` on slice ``frame``."""
    affine = np.asarray(affine, dtype=float)
    return affine[:3, :3] @ np.array([column, row, frame], dtype=float) + affine[:3, 3]


def to_index(affine: Sequence, point: Sequence[float]) -> np.ndarray:
    """``(column, row, frame)`` (fractional) of an LPS point; inverse of :func:`to_patient`."""
    affine = np.asarray(affine, dtype=float)
    return np.linalg.solve(affine[:3, :3], np.asarray(point, dtype=float) - affine[:3, 3])


def slice_normal(affine: Sequence) -> np.ndarray:
    """Unit normal (row direction × column direction) of the slices of an affine."""
    affine = np.asarray(affine, dtype=float)
    normal = np.cross(affine[:3, 0], affine[:3, 1])
    return normal / (np.linalg.norm(normal) or 1.0)


def nearest_slice(positions: Sequence[float], position: float) -> int:
    """Index of the slice whose position (mm along the normal) is nearest ``position``."""
    return int(np.argmin(np.abs(np.asarray(positions, dtype=float) - position)))


def intersection_segment(
    affine: Sequence,
    origin: Sequence[float],
    image_size: tuple[int, int],
    plane_point: Sequence[float],
    plane_normal: Sequence[float],
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Where another plane crosses an image: a reference line, in image coordinates.

    Parameters
    ----------
    affine
        The image's affine (its first two columns give a pixel step along a row and a
        column).
    origin
        LPS position of the image's first pixel (``(0, 0)``).
    image_size
        ``(columns, rows)``.
    plane_point, plane_normal
        A point of the other plane and its normal, in LPS.

    Returns
    -------
    ((column, row), (column, row)) or None
        The ends of the line clipped to the image's edges (pixel centres at whole numbers,
        edges at -0.5); ``None`` when the planes are parallel or do not meet on the image.
    """
    affine = np.asarray(affine, dtype=float)
    n = np.asarray(plane_normal, dtype=float)
    a, b = float(n @ affine[:3, 0]), float(n @ affine[:3, 1])
    d = float(n @ (np.asarray(origin, dtype=float) - np.asarray(plane_point, dtype=float)))
    column_step, row_step = (
        math.sqrt(affine[:3, 0] @ affine[:3, 0]),
        math.sqrt(affine[:3, 1] @ affine[:3, 1]),
    )
    scale = max(abs(a) / column_step, abs(b) / row_step)
    if scale < 1e-6:
        return None
    columns, rows = image_size
    lo_c, hi_c, lo_r, hi_r = -0.5, columns - 0.5, -0.5, rows - 0.5
    ends: list[tuple[float, float]] = []
    if abs(b) > 1e-12:  # crossing the left and right edges
        for c in (lo_c, hi_c):
            r = -(a * c + d) / b
            if lo_r <= r <= hi_r:
                ends.append((c, r))
    if abs(a) > 1e-12:  # crossing the top and bottom edges
        for r in (lo_r, hi_r):
            c = -(b * r + d) / a
            if lo_c <= c <= hi_c:
                ends.append((c, r))
    if len(ends) < 2:
        return None
    ends.sort()
    return ends[0], ends[-1]


# -- slabs -----------------------------------------------------------------------------


def slab_range(index: int, count: int, thickness: float, spacing: float) -> range:
    """The slices of a slab ``thickness`` mm thick centred on slice ``index``.

    As many slices as fit in the thickness (at least one), centred on ``index``, clipped to
    ``0..count-1``.
    """
    if not thickness > 0 or not spacing > 0:
        return range(index, index + 1)
    n = max(1, round(thickness / spacing))
    start = index - (n - 1) // 2
    return range(max(start, 0), min(start + n, count))


def project(slices: np.ndarray, mode: str) -> np.ndarray:
    """Maximum (``"mip"``), minimum (``"minip"``) or mean (``"average"``) along axis 0.

    ``mip`` and ``minip`` keep the dtype; ``average`` is float32 (a mean is not a stored
    value).
    """
    if mode == "mip":
        return slices.max(axis=0)
    if mode == "minip":
        return slices.min(axis=0)
    if mode == "average":
        return slices.mean(axis=0, dtype=np.float64).astype(np.float32)
    raise ValueError(f"slab mode must be one of {SLAB_MODES}, not {mode!r}")


# -- putting tilted and unevenly spaced stacks on a regular grid --------------------------


@dataclass(frozen=True)
class RegularGrid:
    """The regular grid a volume is shown on, and why it differs from the acquired one.

    Attributes
    ----------
    shape
        ``(frames, rows, columns)``.
    affine
        4×4 ``(x, y, frame, 1)`` → LPS of the grid (slices along the normal).
    reason
        ``None`` when the grid is the acquired one; else what was corrected, e.g.
        ``"gantry tilt 15.0°"`` or ``"uneven spacing 2.5-5 mm"``.
    positions
        Acquired slice positions (mm along the normal), for :func:`resample`.
    shear
        In-plane shift (columns, rows) of the acquired slices per mm along the normal, for
        :func:`resample` (non-zero with gantry tilt).
    """

    shape: tuple[int, int, int]
    affine: np.ndarray
    reason: str | None
    positions: np.ndarray
    shear: tuple[float, float]

    @property
    def resampled(self) -> bool:
        return self.reason is not None


def regular_grid(
    affine: Sequence,
    shape: Sequence[int],
    positions: Sequence[float],
    *,
    gantry_tilt: float = 0.0,
    uneven_spacing: bool = False,
) -> RegularGrid:
    """The regular grid to show an acquired stack on.

    Parameters
    ----------
    affine
        The stack's affine from :func:`~workbench.io.open_series` (its third column is the
        mean step from slice to slice, oblique to the slices under gantry tilt).
    shape
        ``(frames, rows, columns)``.
    positions
        Each slice's position along its normal (the ``position`` coordinate), ascending.
    gantry_tilt, uneven_spacing
        The stack's geometry flags (``attrs`` of the same names).

    Returns
    -------
    RegularGrid
        The acquired grid when neither flag is set; else one with the slices' rows and
        columns, slices along their normal, as far apart as the median gap.
    """
    affine = np.asarray(affine, dtype=float)
    positions = np.asarray(positions, dtype=float)
    frames, rows, columns = (int(v) for v in shape)
    normal = slice_normal(affine)
    step = affine[:3, 2]
    if not (gantry_tilt or uneven_spacing) or frames < 2:
        return RegularGrid((frames, rows, columns), affine, None, positions, (0.0, 0.0))
    gaps = np.diff(positions)
    spacing = float(np.median(gaps))
    # The slices' origins lie on one line (a tilted gantry moves the table, not the tilt):
    # per mm along the normal they move by ``step / (step · n)``, partly within the plane.
    along = step / float(step @ normal)
    shear = (
        float(along @ affine[:3, 0]) / float(affine[:3, 0] @ affine[:3, 0]),
        float(along @ affine[:3, 1]) / float(affine[:3, 1] @ affine[:3, 1]),
    )
    count = math.floor((positions[-1] - positions[0]) / spacing + 1e-6) + 1
    out = affine.copy()
    out[:3, 2] = normal * spacing
    reasons = []
    if gantry_tilt:
        reasons.append(f"gantry tilt {gantry_tilt:.1f}°")
    if uneven_spacing:
        reasons.append(f"uneven spacing {gaps.min():.3g}-{gaps.max():.3g} mm")
    reason = ", ".join(reasons) + f" → {spacing:.3g} mm grid"
    return RegularGrid((count, rows, columns), out, reason, positions, shear)


def _shifted(frame: np.ndarray, dc: float, dr: float, fill: float) -> np.ndarray:
    """``frame`` sampled at ``(column + dc, row + dr)`` (bilinear, ``fill`` outside)."""
    rows, columns = frame.shape[:2]
    out = np.zeros(frame.shape, dtype=np.float64)
    ic, fc = math.floor(dc), dc - math.floor(dc)
    ir, fr = math.floor(dr), dr - math.floor(dr)
    padded = np.pad(frame.astype(np.float64), 1, mode="constant", constant_values=fill)
    for oy, wy in ((ir, 1 - fr), (ir + 1, fr)):
        for ox, wx in ((ic, 1 - fc), (ic + 1, fc)):
            if wy * wx == 0:
                continue
            r0 = np.clip(np.arange(rows) + oy + 1, 0, rows + 1)
            c0 = np.clip(np.arange(columns) + ox + 1, 0, columns + 1)
            out += wy * wx * padded[np.ix_(r0, c0)]
    return out


def resample(frames: np.ndarray, grid: RegularGrid) -> np.ndarray:
    """The acquired ``frames`` (``(frame, y, x)``) interpolated onto ``grid``.

    Each grid slice lies between two acquired ones along the normal: both are shifted in
    the plane by the gantry tilt's shear and mixed linearly. Points outside the acquired
    slices get the volume's minimum. Integer data is rounded back to its dtype.
    """
    if not grid.resampled:
        return frames
    fill = float(frames.min())
    positions = grid.positions
    spacing = float(grid.affine[:3, 2] @ slice_normal(grid.affine))
    out = np.empty(grid.shape, dtype=frames.dtype)
    for k in range(grid.shape[0]):
        t = positions[0] + k * spacing
        f = float(np.interp(t, positions, np.arange(len(positions))))
        below = min(math.floor(f), len(positions) - 1)
        above = min(below + 1, len(positions) - 1)
        weight = f - below
        mixed = np.zeros(grid.shape[1:], dtype=np.float64)
        for index, w in ((below, 1 - weight), (above, weight)):
            if w == 0:
                continue
            # The grid point at depth t lies on acquired slice ``index`` shifted back by the
            # shear of the depth difference between that slice and the first.
            depth = positions[index] - positions[0]
            dc, dr = -grid.shear[0] * depth, -grid.shear[1] * depth
            mixed += w * _shifted(frames[index], dc, dr, fill)
        out[k] = np.rint(mixed) if frames.dtype.kind in "iu" else mixed
    return out
