"""Drawing annotations, overlay text and orientation letters on an ipycanvas layer.

Where text goes is worked out in :mod:`workbench.widgets.placement`; this module only draws.

Annotations are stored in image coordinates and mapped through the viewport's
:class:`~workbench.widgets.geometry.DisplayTransform` at each redraw, so they stay on the
anatomy under zoom, pan, rotation and flip.
"""

from __future__ import annotations

import math

from workbench.io.presentation import Annotation
from workbench.widgets.geometry import DisplayTransform
from workbench.widgets.placement import PAD, Label, TextBlock
from workbench.widgets.scrollbar import THUMB_COLOUR, TRACK_COLOUR, Scrollbar

OWN_COLOUR = "#ffd400"
GROUP_COLOUR = "#3fd0ff"
DRAFT_COLOUR = "#ff8c00"
SELECTED_COLOUR = "#ff4060"
TEXT_COLOUR = "#f0f0f0"
#: Behind measurement labels: dark enough to read on bone, light enough to see through.
LABEL_BACKGROUND = "rgba(0, 0, 0, 0.62)"
OUTLINE_COLOUR = "black"


def draw_block(canvas, block: TextBlock, colour: str = TEXT_COLOUR, *,
               background: str | None = None) -> None:  # fmt: skip
    """Text readable on any image: on a translucent box, or else outlined in black."""
    box = block.box
    if background is not None:
        canvas.fill_style = background
        canvas.fill_rect(box.x, box.y, box.width, box.height)
    canvas.font = block.font
    canvas.text_align = block.align
    canvas.text_baseline = "top"
    x = {"left": box.x + PAD, "right": box.right - PAD}.get(block.align, box.x + box.width / 2)
    lines = [(line, x, box.y + PAD + i * block.line_height) for i, line in enumerate(block.lines)]
    if background is None:
        canvas.line_width = 3
        canvas.line_join = "round"
        canvas.stroke_style = OUTLINE_COLOUR
        for line, lx, ly in lines:
            canvas.stroke_text(line, lx, ly)
    canvas.fill_style = colour
    for line, lx, ly in lines:
        canvas.fill_text(line, lx, ly)


def draw_label(canvas, label: Label, colour: str) -> None:
    """A measurement label on its box, with a line back to its shape when placed away."""
    if label.leader:
        canvas.stroke_style = colour
        canvas.line_width = 1
        _segment(canvas, label.anchor, label.block.box.nearest_point(*label.anchor))
    draw_block(canvas, label.block, colour, background=LABEL_BACKGROUND)


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
    """Draw one annotation's shape in display coordinates (labels: :func:`draw_label`)."""
    if not annotation.points:
        return
    p = transform.to_display(annotation.points)
    kind = annotation.kind
    canvas.stroke_style = colour
    canvas.line_width = 1.5
    if kind in ("length", "polyline", "angle"):
        canvas.stroke_lines(p.tolist())
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


#: Colour of the reference line of another viewport's plane, by that plane.
PLANE_COLOURS = {"axial": "#ff5a5a", "coronal": "#5ad25a", "sagittal": "#5aa0ff", None: "#d0d060"}


def draw_reference_line(canvas, start, end, colour: str) -> None:
    """A thin dashed line where another viewport's slice crosses this one."""
    canvas.stroke_style = colour
    canvas.line_width = 1
    canvas.set_line_dash([6, 4])
    _segment(canvas, start, end)
    canvas.set_line_dash([])


def draw_crosshair_point(canvas, point, colour: str = "#ffffff") -> None:
    """A small ring at the crosshair's patient point, where it lies on this slice."""
    canvas.stroke_style = colour
    canvas.line_width = 1.5
    canvas.stroke_circle(float(point[0]), float(point[1]), 5)


def draw_message(canvas, text: str, size: tuple[int, int], colour: str = TEXT_COLOUR) -> None:
    """A line of text in the middle of an empty image layer (e.g. decoding progress)."""
    canvas.fill_style = colour
    canvas.font = "14px sans-serif"
    canvas.text_align = "center"
    canvas.fill_text(text, size[0] / 2, size[1] / 2)
    canvas.text_align = "start"


def draw_scrollbar(canvas, bar: Scrollbar, frame: int) -> None:
    """The slice scrollbar's track and its thumb at ``frame``."""
    if not bar.shown:
        return
    canvas.fill_style = TRACK_COLOUR
    canvas.fill_rect(*bar.track)
    canvas.fill_style = THUMB_COLOUR
    canvas.fill_rect(*bar.thumb(frame))
