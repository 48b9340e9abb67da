"""Orientation letters on the sides of a displayed image.

A DICOM image's (0020,0037) Image Orientation Patient gives, in the patient-based LPS frame,
the direction of increasing column index (the row direction, "towards the right of the
image") and of increasing row index (the column direction, "towards the bottom"). The letter
shown on a side of a viewport names the patient direction that side faces: with an axial image
of a supine patient, "L" on the right and "P" at the bottom.

Letters follow PS3.3 C.7.6.1.1.1: L/R for x, P/A for y, H/F for z. An oblique direction gets
up to three letters, the strongest component first ("PL" for a direction mostly posterior and
somewhat left).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Letter for the positive and negative direction of each LPS axis.
_AXIS_LETTERS = (("L", "R"), ("P", "A"), ("H", "F"))

#: Components smaller than this (cosine, about 6 degrees) are left out of a label, so that a
#: slightly tilted axial image is still labelled "A"/"P" rather than "AF"/"PH".
DEFAULT_OBLIQUE_THRESHOLD = 0.1


def direction_label(vector: Sequence[float], threshold: float = DEFAULT_OBLIQUE_THRESHOLD) -> str:
    """Letters naming the patient direction of ``vector`` (LPS), strongest component first.

    Parameters
    ----------
    vector
        A direction in the patient LPS frame (need not be unit length).
    threshold
        Components whose magnitude (relative to the vector's length) is below this are
        ignored.

    Returns
    -------
    str
        For example ``"L"``, ``"PL"`` or ``"PLH"``; ``""`` for a zero vector.

    Examples
    --------
    >>> direction_label([0.569, 0.822, 0.0])
    'PL'
    """
    v = np.asarray(vector, dtype=float)
    norm = float(np.linalg.norm(v))
    if v.shape != (3,) or norm == 0:
        return ""
    v = v / norm
    order = np.argsort(-np.abs(v), kind="stable")
    letters = []
    for axis in order:
        if abs(v[axis]) < threshold:
            break
        positive, negative = _AXIS_LETTERS[axis]
        letters.append(positive if v[axis] > 0 else negative)
    return "".join(letters)


def displayed_directions(
    orientation: Sequence[float], *, rotation: int = 0, flip: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Patient directions pointing to the right and to the bottom of the displayed image.

    Parameters
    ----------
    orientation
        The six values of (0020,0037) Image Orientation Patient.
    rotation
        Clockwise display rotation in degrees (0, 90, 180, 270), applied after ``flip``.
    flip
        Horizontal mirror of the image, applied before rotation (PS3.3 C.10.6 order).

    Returns
    -------
    right, down
        Unit-less LPS vectors.
    """
    values = np.asarray(orientation, dtype=float)
    if values.shape != (6,):
        raise ValueError(f"Image Orientation Patient needs 6 values, got {values.size}")
    right, down = values[:3], values[3:]
    if flip:
        right = -right
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, not {rotation}")
    for _ in range((rotation // 90) % 4):
        # Turning the picture clockwise brings what was at the top to the right side, and
        # what was on the right to the bottom.
        right, down = -down, right
    return right, down


def orientation_letters(
    orientation: Sequence[float] | None,
    *,
    rotation: int = 0,
    flip: bool = False,
    threshold: float = DEFAULT_OBLIQUE_THRESHOLD,
) -> dict[str, str]:
    """The letters to draw at the middle of each side of a viewport.

    Parameters
    ----------
    orientation
        (0020,0037) Image Orientation Patient, or ``None`` when the image has none (secondary
        captures, most projection radiographs): every side is then ``""``.
    rotation, flip
        The viewport's display transform, see :func:`displayed_directions`.
    threshold
        See :func:`direction_label`.

    Returns
    -------
    dict
        Keys ``"left"``, ``"right"``, ``"top"``, ``"bottom"``.

    Examples
    --------
    >>> orientation_letters([1, 0, 0, 0, 1, 0])  # axial
    {'left': 'R', 'right': 'L', 'top': 'A', 'bottom': 'P'}
    """
    if orientation is None or len(orientation) != 6:
        return {"left": "", "right": "", "top": "", "bottom": ""}
    right, down = displayed_directions(orientation, rotation=rotation, flip=flip)
    return {
        "left": direction_label(-right, threshold),
        "right": direction_label(right, threshold),
        "top": direction_label(-down, threshold),
        "bottom": direction_label(down, threshold),
    }
