"""Where text goes on a viewport: corner text, orientation letters and measurement labels.

Everything here is arithmetic on display-pixel boxes, so layouts are tested without a
browser; :mod:`workbench.widgets.drawing` only draws the boxes computed here. Text is drawn
in a monospace font, whose advance width is a fixed fraction of its size, so a line's width
is known here without measuring it in the browser.

- Corner text and letters are sized to the viewport and fitted so that no two blocks
  intersect, whatever the viewport size: lines too long for their corner are shortened with
  "…", lines too many for half the height are left out.
- A measurement label is put beside its shape, where it covers neither a shape, another
  label nor the corner text; a label the user dragged stays where it was put.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from workbench.io.presentation import Annotation
from workbench.widgets.geometry import DisplayTransform
from workbench.widgets.scrollbar import HIT_WIDTH

FONT_FAMILY = "monospace"
#: Advance width of a monospace character, as a fraction of the font size (0.6 for the
#: usual monospace fonts; a little more leaves room for rounding in the browser).
CHAR_WIDTH = 0.62
#: Font size range of viewport text in pixels, and the viewport size per font pixel.
MIN_FONT, MAX_FONT, PIXELS_PER_FONT_PIXEL = 9, 13, 36
#: Space between text and its box edge, and between blocks and the viewport edge.
PAD, MARGIN = 2, 4
#: On the right, text stays clear of the slice scrollbar too.
RIGHT_MARGIN = MARGIN + HIT_WIDTH - 4
#: Space kept between a label and its shape, and the distances tried further out.
LABEL_DISTANCES = (6, 18, 36, 60, 96, 140)
#: Display pixels between the places tried anywhere in the viewport when none near is free.
GRID_STEP = 10
#: A label further than this from its anchor gets a line back to it.
LEADER_MIN = 14.0
#: Display pixels between points sampled along a shape's outline.
SAMPLE_STEP = 3.0
#: What covering a region of interest counts, in outline points covered.
AREA_HIT = 100
#: Where a text note's text goes relative to its point, until the user drags it.
TEXT_NOTE_OFFSET = (6.0, 4.0)


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in display pixels (``x``, ``y`` its top-left corner)."""

    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    def intersects(self, other: Box) -> bool:
        """Whether the two boxes share area (touching edges do not count)."""
        return (
            self.x < other.right
            and other.x < self.right
            and self.y < other.bottom
            and other.y < self.bottom
        )

    def contains(self, x: float, y: float) -> bool:
        return self.x <= x <= self.right and self.y <= y <= self.bottom

    def inside(self, size: tuple[float, float]) -> bool:
        """Whether the box lies within a viewport of ``size`` (width, height)."""
        return self.x >= 0 and self.y >= 0 and self.right <= size[0] and self.bottom <= size[1]

    def overlap(self, other: Box) -> float:
        """The area the two boxes share."""
        w = min(self.right, other.right) - max(self.x, other.x)
        h = min(self.bottom, other.bottom) - max(self.y, other.y)
        return max(w, 0.0) * max(h, 0.0)

    def nearest_point(self, x: float, y: float) -> tuple[float, float]:
        return (min(max(x, self.x), self.right), min(max(y, self.y), self.bottom))


@dataclass(frozen=True)
class TextBlock:
    """Lines of text in a box: drawn left-, right- or centre-aligned inside it."""

    lines: tuple[str, ...]
    box: Box
    align: str
    font_px: int

    @property
    def line_height(self) -> int:
        return line_height(self.font_px)

    @property
    def font(self) -> str:
        return f"{self.font_px}px {FONT_FAMILY}"


def font_px(size: tuple[float, float]) -> int:
    """The font size of a viewport's text: larger viewports get larger text, in bounds."""
    return int(min(max(round(min(size) / PIXELS_PER_FONT_PIXEL), MIN_FONT), MAX_FONT))


def line_height(font: int) -> int:
    return math.ceil(font * 1.25)


def text_width(line: str, font: int) -> float:
    return len(line) * font * CHAR_WIDTH


def block_size(lines: Sequence[str], font: int) -> tuple[float, float]:
    """``(width, height)`` of the box around ``lines``, padding included."""
    if not lines:
        return (0.0, 0.0)
    width = max(text_width(line, font) for line in lines)
    return (math.ceil(width) + 2 * PAD, len(lines) * line_height(font) + 2 * PAD)


def fit_line(line: str, max_width: float, font: int) -> str:
    """``line`` shortened with "…" to fit ``max_width`` (text width plus padding)."""
    chars = int((max_width - 2 * PAD) // (font * CHAR_WIDTH))
    if len(line) <= chars:
        return line
    return line[: chars - 1] + "…" if chars >= 2 else ""


# -- corner text and orientation letters ---------------------------------------------------
def _letter_blocks(letters: Mapping[str, str], size, font: int) -> dict[str, TextBlock]:
    width, height = size
    blocks = {}
    for side in ("left", "right", "top", "bottom"):
        text = letters.get(side, "")
        if not text:
            continue
        w, h = block_size([text], font)
        x = {"left": MARGIN, "right": width - RIGHT_MARGIN - w}.get(side, (width - w) / 2)
        y = {"top": MARGIN, "bottom": height - MARGIN - h}.get(side, (height - h) / 2)
        align = {"left": "left", "right": "right"}.get(side, "center")
        blocks[side] = TextBlock((text,), Box(x, y, w, h), align, font)
    return blocks


def overlay_blocks(
    corners: Mapping[str, Sequence[str]],
    letters: Mapping[str, str],
    size: tuple[float, float],
) -> list[TextBlock]:
    """Corner text and orientation letters for a viewport, none intersecting another.

    Parameters
    ----------
    corners
        Lines per corner (``top_left``, ``top_right``, ``bottom_left``, ``bottom_right``),
        most important first, as :func:`workbench.widgets.overlay.corner_text` gives them.
    letters
        Orientation letters per side (``left``, ``right``, ``top``, ``bottom``).
    size
        ``(width, height)`` of the viewport.
    """
    width, height = size
    font = font_px(size)
    lh = line_height(font)
    side_letters = _letter_blocks(letters, size, font)
    blocks = list(side_letters.values())
    for corner, lines in corners.items():
        vertical, horizontal = corner.split("_")
        # A corner reaches up to the letter in the middle of its edge, across, and down (or
        # up) to the letter in the middle of its side.
        middle = side_letters.get(vertical)
        half = (middle.box.x - MARGIN) if middle else width / 2
        edge = MARGIN if horizontal == "left" else RIGHT_MARGIN
        max_width = max(half - edge - MARGIN / 2, 0.0)
        across = side_letters.get(horizontal)
        reach = (across.box.y if across else height / 2) - MARGIN / 2
        if vertical == "bottom":
            reach = height - (across.box.bottom if across else height / 2) - MARGIN / 2
        max_lines = max(int((reach - MARGIN - 2 * PAD) // lh), 0)
        fitted = [fit_line(line, max_width, font) for line in lines[:max_lines]]
        fitted = [line for line in fitted if line]
        if not fitted:
            continue
        w, h = block_size(fitted, font)
        x = MARGIN if horizontal == "left" else width - RIGHT_MARGIN - w
        y = MARGIN if vertical == "top" else height - MARGIN - h
        blocks.append(TextBlock(tuple(fitted), Box(x, y, w, h), horizontal, font))
    return blocks


def hint_block(text: str, size: tuple[float, float]) -> TextBlock:
    """A centred message for an empty viewport, wrapped to its width."""
    font = font_px(size)
    max_chars = max(int((size[0] - 2 * MARGIN - 2 * PAD) // (font * CHAR_WIDTH)), 4)
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= max_chars:
            lines[-1] += " " + word
        else:
            lines.append(word[:max_chars])
    w, h = block_size(lines, font)
    box = Box((size[0] - w) / 2, (size[1] - h) / 2, w, h)
    return TextBlock(tuple(lines), box, "center", font)


# -- measurement labels ----------------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    """What a label must not cover: points along the drawn outline, and the area of a
    region of interest (``None`` for lines and marks)."""

    outline: np.ndarray
    area: Box | None = None

    def hits(self, box: Box) -> int:
        """How many outline points (and, for a region, whether its area) fall in ``box``."""
        o = self.outline
        inside = (o[:, 0] >= box.x) & (o[:, 0] <= box.right)
        inside &= (o[:, 1] >= box.y) & (o[:, 1] <= box.bottom)
        covers_area = self.area is not None and box.intersects(self.area)
        return int(inside.sum()) + (AREA_HIT if covers_area else 0)


def _sampled(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    steps = max(int(np.hypot(*(b - a)) // SAMPLE_STEP), 1)
    t = np.linspace(0.0, 1.0, steps + 1)[:, None]
    return a + (b - a) * t


def shape_of(kind: str, points: np.ndarray) -> Shape:
    """The outline of an annotation drawn at display ``points`` (as drawing draws it)."""
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    if kind in ("rectangle", "ellipse"):
        (x0, y0), (x1, y1) = p.min(axis=0), p.max(axis=0)
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])
        outline = np.vstack([_sampled(a, b) for a, b in itertools.pairwise(corners)])
        return Shape(outline, Box(x0, y0, x1 - x0, y1 - y0))
    if kind in ("probe", "point", "text"):
        x, y = p[0]
        return Shape(np.array([[x - 5, y], [x + 5, y], [x, y - 5], [x, y + 5], [x, y]]))
    if kind in ("cobb", "vhs"):
        pairs = [(0, 1), (2, 3)] + [(i, i + 1) for i in range(4, len(p) - 1)]
    else:
        pairs = [(i, i + 1) for i in range(len(p) - 1)]
    segments = [_sampled(p[i], p[j]) for i, j in pairs if j < len(p)]
    return Shape(np.vstack(segments) if segments else p)


def label_anchor(kind: str, points: np.ndarray) -> tuple[float, float]:
    """Where a label belongs: the end of a line, an angle's vertex, beside an ROI."""
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    if kind in ("rectangle", "ellipse"):
        return (float(p[:, 0].max()), float(p[:, 1].min()))
    if kind == "angle" and len(p) > 2:
        return (float(p[1][0]), float(p[1][1]))
    if kind in ("vhs", "text", "probe", "point"):
        return (float(p[0][0]), float(p[0][1]))
    return (float(p[-1][0]), float(p[-1][1]))


def _around(anchor: tuple[float, float], w: float, h: float) -> np.ndarray:
    """Top-left corners of a ``w``×``h`` label around its anchor, in order of preference:
    beside, below, above, left, then the diagonals, at growing distances."""
    ax, ay = anchor
    corners = []
    for distance in LABEL_DISTANCES:
        for dx, dy in ((1, 0), (1, 1), (0, 1), (1, -1), (0, -1), (-1, 0), (-1, 1), (-1, -1)):
            x = ax + distance if dx > 0 else ax - distance - w if dx < 0 else ax - w / 2
            y = ay + distance if dy > 0 else ay - distance - h if dy < 0 else ay - h / 2
            if dx > 0 and dy == 0:
                y = ay + PAD  # beside the end of a line, level with it
            corners.append((x, y))
    return np.array(corners, dtype=float)


def _anywhere(anchor: tuple[float, float], w: float, h: float, size) -> np.ndarray:
    """Top-left corners of a ``w``×``h`` label all over the viewport, nearest first."""
    ax, ay = anchor
    xs = np.arange(MARGIN, max(size[0] - w - MARGIN, MARGIN) + 1, GRID_STEP)
    ys = np.arange(MARGIN, max(size[1] - h - MARGIN, MARGIN) + 1, GRID_STEP)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(float)
    nearest_x = np.clip(ax, grid[:, 0], grid[:, 0] + w) - ax
    nearest_y = np.clip(ay, grid[:, 1], grid[:, 1] + h) - ay
    return grid[np.argsort(np.hypot(nearest_x, nearest_y), kind="stable")]


def _overlaps(corners: np.ndarray, w: float, h: float, boxes: Sequence[Box]) -> np.ndarray:
    """Area each candidate box shares with ``boxes``, summed."""
    total = np.zeros(len(corners))
    for box in boxes:
        dx = np.minimum(corners[:, 0] + w, box.right) - np.maximum(corners[:, 0], box.x)
        dy = np.minimum(corners[:, 1] + h, box.bottom) - np.maximum(corners[:, 1], box.y)
        total += np.clip(dx, 0, None) * np.clip(dy, 0, None)
    return total


def _costs(corners: np.ndarray, w: float, h: float, size, outline, areas, taken) -> np.ndarray:
    """What a label at each of ``corners`` would cover; 0 where it covers nothing."""
    x, y = corners[:, 0], corners[:, 1]
    inside = (x >= 0) & (y >= 0) & (x + w <= size[0]) & (y + h <= size[1])
    # Outline points are tested in chunks so that a large viewport stays cheap in memory.
    hits = np.zeros(len(corners))
    for start in range(0, len(corners), 512):
        cx, cy = x[start : start + 512, None], y[start : start + 512, None]
        px, py = outline[None, :, 0], outline[None, :, 1]
        hits[start : start + 512] = ((px >= cx) & (px <= cx + w) & (py >= cy) & (py <= cy + h)).sum(
            1
        )
    hits += AREA_HIT * (_overlaps(corners, w, h, areas) > 0)
    covered = _overlaps(corners, w, h, taken)
    # Covering text makes both unreadable: worse than covering part of an outline.
    return np.where(inside, 0, 1e12) + (covered > 0) * 1e9 + hits * 1e4 + covered


def _best_spot(anchor, w: float, h: float, size, outline, areas, taken) -> Box:
    """The first free spot around the anchor, else anywhere; else the one covering least."""
    best, best_cost = None, None
    for corners in (_around(anchor, w, h), _anywhere(anchor, w, h, size)):
        costs = _costs(corners, w, h, size, outline, areas, taken)
        i = int(np.argmin(costs))  # the first of equal costs: the preferred one
        if best_cost is None or costs[i] < best_cost:
            best, best_cost = corners[i], costs[i]
        if best_cost == 0:
            break
    return Box(float(best[0]), float(best[1]), w, h)


@dataclass(frozen=True)
class Label:
    """A placed measurement label: its text block, the point it labels, and whether a
    leader line should join them."""

    key: str
    block: TextBlock
    anchor: tuple[float, float]

    @property
    def leader(self) -> bool:
        x, y = self.block.box.nearest_point(*self.anchor)
        return math.hypot(x - self.anchor[0], y - self.anchor[1]) > LEADER_MIN


@dataclass(frozen=True)
class LabelRequest:
    """One label to place: its key (the annotation uid), lines, the shape it belongs to, its
    anchor, and the offset from the anchor the user dragged it to (``None``: place it)."""

    key: str
    lines: tuple[str, ...]
    shape: Shape
    anchor: tuple[float, float]
    offset: tuple[float, float] | None = None


def place_labels(
    requests: Sequence[LabelRequest],
    size: tuple[float, float],
    avoid: Sequence[Box] = (),
) -> list[Label]:
    """Place labels beside their shapes, covering no shape, no other label and no box of
    ``avoid`` (corner text, letters) where the viewport leaves room.

    Labels the user dragged go first, where they were put; then the others in order, each
    at the nearest free spot around its anchor. When no spot is free, the spot covering the
    least is taken.
    """
    font = font_px(size)
    outline = np.vstack([r.shape.outline for r in requests] or [np.empty((0, 2))])
    areas = [r.shape.area for r in requests if r.shape.area is not None]
    taken: list[Box] = list(avoid)
    placed: dict[str, Label] = {}
    ordered = sorted(requests, key=lambda r: r.offset is None)
    for request in ordered:
        lines = tuple(line for line in request.lines if line)
        if not lines:
            continue
        w, h = block_size(lines, font)
        if request.offset is not None:
            box = Box(request.anchor[0] + request.offset[0], request.anchor[1] + request.offset[1],
                      w, h)  # fmt: skip
        else:
            box = _best_spot(request.anchor, w, h, size, outline, areas, taken)
        taken.append(box)
        placed[request.key] = Label(request.key, TextBlock(lines, box, "left", font),
                                    request.anchor)  # fmt: skip
    return [placed[r.key] for r in requests if r.key in placed]


def annotation_labels(
    annotations: Sequence[Annotation],
    transform: DisplayTransform,
    size: tuple[float, float],
    offsets: Mapping[str, tuple[float, float]],
    avoid: Sequence[Box] = (),
) -> list[Label]:
    """The labels of annotations drawn through ``transform``, placed by :func:`place_labels`.

    ``offsets`` maps annotation uids to where the user dragged their labels (display pixels
    from the anchor). A text note's text stays at its point unless dragged.
    """
    requests = []
    for annotation in annotations:
        if not annotation.points:
            continue
        shown = transform.to_display(annotation.points)
        offset = offsets.get(annotation.uid)
        if offset is None and annotation.kind == "text":
            offset = TEXT_NOTE_OFFSET
        requests.append(
            LabelRequest(
                annotation.uid,
                tuple(annotation.text.split("\n")) if annotation.text else (),
                shape_of(annotation.kind, shown),
                label_anchor(annotation.kind, shown),
                offset,
            )
        )
    return place_labels(requests, size, avoid)
