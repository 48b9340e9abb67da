"""The text drawn on a viewport (corners, letters, labels, the hint of an empty one) and
the one-line status under it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from workbench.io.presentation import Annotation
from workbench.widgets import placement
from workbench.widgets.model import Viewport
from workbench.widgets.render import uses_voi_lut

if TYPE_CHECKING:  # tools imports this module
    from workbench.widgets.tools import Readout


def _date(value: str) -> str:
    value = (value or "").strip()
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def _name(value: str) -> str:
    # DICOM PN: Family^Given^Middle^Prefix^Suffix; show "Family, Given".
    parts = [p for p in str(value or "").split("^") if p]
    return ", ".join(parts[:2]) if parts else ""


def millimetres(value) -> str:
    """A length as the file gives it: ``1.25`` stays ``"1.25 mm"``, ``5.0`` reads ``"5 mm"``.

    Decimal strings (DS) are read into the shortest float that gives them back, so printing
    that float keeps exactly the digits the file has, no more, no less.
    """
    text = repr(float(value))
    return (text[:-2] if text.endswith(".0") else text) + " mm"


def slice_spacing(viewport: Viewport) -> float | None:
    """Distance between slice centres: (0018,0088) Spacing Between Slices, else the step of
    the frames' positions along the stack when they are evenly spaced."""
    given = viewport.attrs.get("SpacingBetweenSlices")
    if given:
        return float(given)
    stack = viewport.stack
    if stack is None or viewport.frame_count < 2 or "position" not in stack.coords:
        return None
    steps = np.abs(np.diff(np.asarray(stack.coords["position"].values, dtype=float)))
    if not np.all(np.isfinite(steps)) or steps.max() - steps.min() > 0.01 * steps.max():
        return None
    # Positions are sums of decimal values; round off the binary noise of their difference.
    return round(float(steps.mean()), 4) or None


def frame_label(viewport: Viewport) -> str:
    """``"Im 5/28"``: the 1-based frame number and the stack's frame count."""
    if viewport.stack is None:
        return ""
    return f"Im {viewport.frame + 1}/{viewport.frame_count}"


def window_label(viewport: Viewport) -> str:
    """``"W 400 L 40"`` for the window in use ("" for colour images)."""
    if viewport.stack is None:
        return ""
    if viewport.window is None and uses_voi_lut(viewport.attrs):
        return "VOI LUT"
    window = viewport.effective_window()
    if window is None:
        return ""
    center, width = window
    return f"W {width:.0f} L {center:.0f}"


def plane_lines(viewport: Viewport) -> list[str]:
    """What a reformatted plane, a slab or a resampled grid makes of the pixels shown:
    ``["Coronal (reformatted)", "MIP 20 mm", "Resampled: gantry tilt 15.0° → 5 mm grid"]``."""
    lines = []
    if viewport.reformatted:
        lines.append(f"{str(viewport.plane).capitalize()} (reformatted)")
    if viewport.slab is not None:
        lines.append(viewport.slab.label)
    resampled = viewport.attrs.get("resampled")
    if resampled:
        lines.append(f"Resampled: {resampled}")
    return lines


def corner_text(viewport: Viewport) -> dict[str, list[str]]:
    """Lines of text for each corner (``"top_left"``, ``"top_right"``, ``"bottom_left"``,
    ``"bottom_right"``), empty lines left out."""
    if viewport.stack is None:
        return {"top_left": [], "top_right": [], "bottom_left": [], "bottom_right": []}
    a = viewport.attrs
    top_left = [
        _name(a.get("PatientName", "")),
        a.get("PatientID", ""),
        _date(a.get("StudyDate", "")),
    ]
    top_right = [
        a.get("StudyDescription", ""),
        a.get("SeriesDescription", ""),
        " ".join(x for x in (a.get("Modality", ""), f"Se {a['SeriesNumber']}"
                             if a.get("SeriesNumber") else "") if x),
    ]  # fmt: skip
    bottom_left = [frame_label(viewport)]
    position = viewport.frame_coord("position")
    if position is not None and isinstance(position, float) and math.isfinite(position):
        bottom_left.append(f"Pos {position:.1f} mm")
    thickness, spacing = a.get("SliceThickness"), slice_spacing(viewport)
    bottom_left.append(
        " ".join(
            part
            for part in (
                f"Thk {millimetres(thickness)}" if thickness else "",
                f"Sp {millimetres(spacing)}" if spacing else "",
            )
            if part
        )
    )
    bottom_left.extend(plane_lines(viewport))
    bottom_right = [window_label(viewport), f"Zoom {viewport.effective_zoom:.2f}×"]
    if viewport.invert:
        bottom_right.append("Inverted")
    return {
        "top_left": [str(x) for x in top_left if x],
        "top_right": [str(x) for x in top_right if x],
        "bottom_left": [x for x in bottom_left if x],
        "bottom_right": [x for x in bottom_right if x],
    }


EMPTY_HINT = "Drag a series here from the thumbnails, or click one"


@dataclass(frozen=True)
class OverlayLayout:
    """Where each piece of text goes on a viewport: corner text and letters (or the hint of
    an empty viewport) in ``blocks``, measurement labels in ``labels``."""

    blocks: list[placement.TextBlock]
    labels: list[placement.Label]

    def label_at(self, x: float, y: float) -> placement.Label | None:
        """The label under a display point (the one drawn last, on top, first)."""
        return next((lb for lb in reversed(self.labels) if lb.block.box.contains(x, y)), None)


def layout(
    viewport: Viewport,
    annotations: list[Annotation],
    label_offsets: Mapping[str, tuple[float, float]],
) -> OverlayLayout:
    """Lay out a viewport's text: corner text and letters first, then the labels of
    ``annotations`` where they cover neither those nor each other nor any shape."""
    if viewport.stack is None:
        return OverlayLayout([placement.hint_block(EMPTY_HINT, viewport.size)], [])
    blocks = placement.overlay_blocks(
        corner_text(viewport), viewport.orientation_letters(), viewport.size
    )
    labels = placement.annotation_labels(
        annotations, viewport.transform(), viewport.size, label_offsets,
        avoid=[block.box for block in blocks],
    )  # fmt: skip
    return OverlayLayout(blocks, labels)


def status_line(viewport: Viewport) -> str:
    """One line summarizing the viewport, shown as text under the canvas."""
    if viewport.stack is None:
        return "empty"
    parts = [
        frame_label(viewport),
        window_label(viewport),
        f"Zoom {viewport.effective_zoom:.2f}×",
    ]
    if viewport.rotation:
        parts.append(f"Rot {viewport.rotation}°")
    if viewport.flip:
        parts.append("Flipped")
    if viewport.invert:
        parts.append("Inverted")
    parts.extend(plane_lines(viewport))
    return " · ".join(p for p in parts if p)


def readout_lines(readout: Readout | None) -> list[str]:
    """The cursor readout: the value under the pointer with its pixel, then its position.

    ``["-12 HU  px (256, 301)", "(-1.2, 20.4, 701.2) mm"]``; colour pixels read
    ``"RGB (12, 40, 200)"``; nothing off the image.
    """
    if readout is None:
        return []
    if isinstance(readout.value, tuple):
        value = "RGB (" + ", ".join(f"{v:.0f}" for v in readout.value) + ")"
    else:
        digits = 0 if float(readout.value).is_integer() else 1
        value = f"{readout.value:.{digits}f}" + (f" {readout.unit}" if readout.unit else "")
    lines = [f"{value}  px ({readout.column}, {readout.row})"]
    if readout.position is not None:
        lines.append("(" + ", ".join(f"{v:.1f}" for v in readout.position) + ") mm")
    return lines


def readout_block(lines: list[str], size: tuple[float, float]) -> placement.TextBlock | None:
    """Where the readout goes: bottom centre, just above the bottom orientation letter."""
    if not lines:
        return None
    font = placement.font_px(size)
    width, height = placement.block_size(lines, font)
    letter_height = placement.block_size(["P"], font)[1]
    box = placement.Box(
        (size[0] - width) / 2,
        size[1] - 2 * placement.MARGIN - letter_height - height,
        width,
        height,
    )
    return placement.TextBlock(tuple(lines), box, "center", font)
