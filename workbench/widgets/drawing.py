"""Drawing annotations, overlay text and orientation letters on an ipycanvas layer.

Annotations are stored in image coordinates and mapped through the viewport's
:class:`~workbench.widgets.geometry.DisplayTransform` at each redraw, so they stay on the
anatomy under zoom, pan, rotation and flip.
"""

from __future__ import annotations

import math

import numpy as np

from workbench.io.presentation import Annotation
from workbench.widgets.geometry import DisplayTransform

OWN_COLOUR = "#ffd400"
GROUP_COLOUR = "#3fd0ff"
DRAFT_COLOUR = "#ff8c00"
SELECTED_COLOUR = "#ff4060"
TEXT_COLOUR = "#f0f0f0"
FONT = "13px sans-serif"
LINE_HEIGHT = 15


def shadowed_text(canvas, lines: list[str], x: float, y: float, align: str = "left") -> None:
    """Text readable on any image: a dark offset copy under the light text."""
    canvas.text_align = align
    canvas.text_baseline = "top"
    canvas.font = FONT
    for i, line in enumerate(lines):
        canvas.fill_style = "black"
        canvas.fill_text(line, x + 1, y + i * LINE_HEIGHT + 1)
        canvas.fill_style = TEXT_COLOUR
        canvas.fill_text(line, x, y + i * LINE_HEIGHT)


def draw_corners(canvas, corners: dict[str, list[str]], size: tuple[int, int]) -> None:
    width, height = size
    pad = 6
    shadowed_text(canvas, corners["top_left"], pad, pad)
    shadowed_text(canvas, corners["top_right"], width - pad, pad, align="right")
    bottom = corners["bottom_left"]
    shadowed_text(canvas, bottom, pad, height - pad - len(bottom) * LINE_HEIGHT)
    bottom = corners["bottom_right"]
    shadowed_text(canvas, bottom, width - pad, height - pad - len(bottom) * LINE_HEIGHT, "right")


def draw_letters(canvas, letters: dict[str, str], size: tuple[int, int]) -> None:
    width, height = size
    mid_y = height / 2 - LINE_HEIGHT / 2
    shadowed_text(canvas, [letters["left"]], 6, mid_y)
    shadowed_text(canvas, [letters["right"]], width - 6, mid_y, align="right")
    shadowed_text(canvas, [letters["top"]], width / 2, 6, align="center")
    shadowed_text(canvas, [letters["bottom"]], width / 2, height - 6 - LINE_HEIGHT, "center")


def _segment(canvas, a, b) -> None:
    canvas.stroke_line(float(a[0]), float(a[1]), float(b[0]), float(b[1]))


def _arrow_head(canvas, tip, tail, size: float = 10.0) -> None:
    angle = math.atan2(tip[1] - tail[1], tip[0] - tail[0])
    for side in (-0.45, 0.45):
        end = (tip[0] - size * math.cos(angle + side), tip[1] - size * math.sin(angle + side))
        _segment(canvas, tip, end)


def draw_annotation(
    canvas, annotation: Annotation, transform: DisplayTransform, colour: str, *,
    handles: bool = False,
) -> None:  # fmt: skip
    """Draw one annotation (shape, then its label) in display coordinates."""
    if not annotation.points:
        return
    p = transform.to_display(annotation.points)
    kind = annotation.kind
    canvas.stroke_style = colour
    canvas.line_width = 1.5
    label_at = p[-1]
    if kind in ("length", "polyline", "angle"):
        canvas.stroke_lines(p.tolist())
        label_at = p[1] if kind == "angle" and len(p) > 2 else p[-1]
    elif kind == "cobb":
        _segment(canvas, p[0], p[1])
        if len(p) >= 4:
            _segment(canvas, p[2], p[3])
    elif kind == "vhs":
        _segment(canvas, p[0], p[1])
        if len(p) >= 4:
            _segment(canvas, p[2], p[3])
        if len(p) >= 5:
            canvas.stroke_lines(p[4:].tolist())
            for tick in p[4:]:
                canvas.stroke_circle(float(tick[0]), float(tick[1]), 3)
        label_at = p[0]
    elif kind in ("rectangle", "ellipse"):
        (x0, y0), (x1, y1) = p.min(axis=0), p.max(axis=0)
        if kind == "rectangle":
            canvas.stroke_rect(float(x0), float(y0), float(x1 - x0), float(y1 - y0))
        else:
            canvas.begin_path()
            canvas.ellipse(
                float((x0 + x1) / 2), float((y0 + y1) / 2),
                float(max((x1 - x0) / 2, 0.5)), float(max((y1 - y0) / 2, 0.5)), 0, 0, 2 * math.pi,
            )  # fmt: skip
            canvas.stroke()
        label_at = np.array([x1 + 4, y0])
    elif kind in ("probe", "point"):
        x, y = p[0]
        _segment(canvas, (x - 5, y), (x + 5, y))
        _segment(canvas, (x, y - 5), (x, y + 5))
    elif kind == "arrow":
        _segment(canvas, p[0], p[1])
        _arrow_head(canvas, p[0], p[1])
    if handles:
        canvas.fill_style = colour
        for x, y in p:
            canvas.fill_rect(float(x) - 3, float(y) - 3, 6, 6)
    if annotation.text:
        lines = annotation.text.split("\n")
        if kind == "text":
            label_at = p[0]
        shadowed_text(canvas, lines, float(label_at[0]) + 6, float(label_at[1]) + 4)
