"""Text layout on viewports: corner text, letters and measurement labels never collide."""

from __future__ import annotations

import itertools

import pytest

from workbench.io.presentation import Annotation
from workbench.widgets import overlay, placement
from workbench.widgets.model import ViewerModel
from workbench.widgets.scrollbar import Scrollbar
from workbench.widgets.tools import Interaction

#: Viewport sizes of the layouts 1×1 to 3×3 in a 1000 px wide window, and a few odd ones.
SIZES = [
    (w // cols - 6, h // rows - 30)
    for rows, cols in itertools.product((1, 2, 3), repeat=2)
    for w, h in ((900, 640), (640, 640), (1000, 1000))
] + [(120, 90), (200, 640), (1600, 300)]


def boxes_apart(boxes: list[placement.Box]) -> None:
    for a, b in itertools.combinations(boxes, 2):
        assert not a.intersects(b), f"{a} and {b} intersect"


@pytest.fixture()
def model(ct_stack, sample_data, cache) -> ViewerModel:
    from workbench.io import open_series

    mr = open_series(sample_data / "series_mr_siemens_t1_sag_HFS")
    return ViewerModel([ct_stack, mr], cache=cache, viewport_size=(512, 512))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("stack", [0, 1], ids=["ct", "mr"])
def test_corner_text_and_letters_never_collide(model, size, stack) -> None:
    viewport = model.viewports[0]
    model.show(stack)
    viewport.size = size
    viewport.rotation = 90
    viewport.invert = True  # one more line in a corner
    corners = overlay.corner_text(viewport)
    letters = viewport.orientation_letters()
    assert all(letters.values())
    blocks = placement.overlay_blocks(corners, letters, size)
    boxes_apart([b.box for b in blocks])
    assert all(b.box.inside(size) for b in blocks)
    # The slice scrollbar's strip along the right edge stays clear of text.
    bar = Scrollbar(*size, viewport.frame_count)
    assert all(b.box.right <= bar.track[0] for b in blocks)
    # Every letter is shown whatever the size; text is shortened rather than dropped
    # wherever a corner has room for one line.
    assert {b.lines[0] for b in blocks if len(b.lines[0]) == 1} >= set(letters.values())
    if min(size) >= 200:
        assert sum(len(b.lines) for b in blocks) >= 4 + sum(map(len, corners.values())) // 2


def test_text_grows_with_the_viewport() -> None:
    assert placement.font_px((120, 90)) == placement.MIN_FONT
    assert placement.font_px((300, 300)) < placement.font_px((400, 400))
    assert placement.font_px((1200, 1200)) == placement.MAX_FONT


def test_empty_viewport_shows_a_hint(model) -> None:
    model.layout = (1, 3)
    viewport = model.viewports[2]
    assert viewport.stack is None
    text = overlay.layout(viewport, [], {})
    (hint,) = text.blocks
    assert " ".join(hint.lines) == overlay.EMPTY_HINT
    assert hint.box.inside(viewport.size)


def measured(model, kind: str, points) -> Annotation:
    viewport = model.viewports[0]
    return model.measure(Annotation(kind, points, image=viewport.image_reference()), viewport)


def crowded(model) -> list[Annotation]:
    """Measurements drawn close together and crossing, as on a busy teaching image."""
    return [
        measured(model, "ellipse", [(200, 200), (300, 280)]),
        measured(model, "rectangle", [(310, 190), (380, 260)]),
        measured(model, "length", [(150, 300), (380, 300)]),
        measured(model, "length", [(260, 150), (260, 420)]),
        measured(model, "angle", [(120, 120), (180, 180), (240, 120)]),
        measured(model, "probe", [(390, 270)]),
        measured(model, "length", [(20, 500), (80, 505)]),  # near the bottom-left corner text
    ]


@pytest.mark.parametrize("size", [(512, 512), (330, 300)])
def test_labels_cover_no_shape_label_or_corner_text(model, size) -> None:
    viewport = model.viewports[0]
    viewport.size = size
    viewport.zoom = 1.0 if size == (512, 512) else 0.6
    annotations = crowded(model)
    text = overlay.layout(viewport, annotations, {})
    assert [label.key for label in text.labels] == [a.uid for a in annotations]
    boxes_apart([label.block.box for label in text.labels] + [b.box for b in text.blocks])
    transform = viewport.transform()
    shapes = [placement.shape_of(a.kind, transform.to_display(a.points)) for a in annotations]
    for label in text.labels:
        assert label.block.box.inside(size)
        assert all(shape.hits(label.block.box) == 0 for shape in shapes), label
    # Labels stay near what they label: the ROI's statistics start beside the ellipse.
    ellipse = text.labels[0]
    assert ellipse.block.lines[1].startswith("mean ")
    assert abs(ellipse.block.box.x - ellipse.anchor[0]) < 60


def test_a_dragged_label_stays_where_it_was_put(model) -> None:
    viewport = model.viewports[0]
    viewport.zoom = 1.0
    ui = Interaction(model)
    for annotation in crowded(model):
        model.annotations.add(annotation)
    length = model.annotations[2]
    before = ui.label_at(viewport, 0, 0)
    assert before is None
    text = overlay.layout(viewport, list(model.annotations), {})
    label = next(lb for lb in text.labels if lb.key == length.uid)
    box = label.block.box
    points = list(length.points)
    model.tool = "select"
    x, y = box.x + 5, box.y + 5
    ui.press(0, x, y)
    ui.move(0, x + 40, y + 60)
    ui.release(0, x + 40, y + 60)
    assert length.points == points  # the measurement itself did not move
    assert ui.selected is length
    moved = overlay.layout(viewport, list(model.annotations), model.label_offsets)
    label = next(lb for lb in moved.labels if lb.key == length.uid)
    assert (label.block.box.x, label.block.box.y) == pytest.approx((box.x + 40, box.y + 60))
    assert label.leader  # away from its line: a line leads back to it
