"""Presentation-state test material shared by the GSPS read and write tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pydicom

from workbench.io.presentation import Annotation, ImageReference


def first_file(folder: Path) -> Path:
    """The first file of ``folder`` by name."""
    return sorted(p for p in folder.iterdir() if p.is_file())[0]


def ref(ds: pydicom.Dataset, frame: int | None = None) -> ImageReference:
    """A reference to ``ds`` (or to one of its frames, counted from 1)."""
    return ImageReference(str(ds.SOPClassUID), str(ds.SOPInstanceUID), frame)


def every_kind(image: ImageReference) -> list[Annotation]:
    """One annotation of each kind the viewer draws, with labels and values."""
    return [
        Annotation(
            "length",
            [(10, 20), (100.25, 200.5)],
            image,
            "42.1 mm",
            {"length_mm": 42.1},
            {"length_mm": "mm"},
        ),
        Annotation(
            "angle",
            [(50, 50), (100, 100), (150, 50)],
            image,
            "90.0°",
            {"angle_deg": 90.0},
            {"angle_deg": "deg"},
        ),
        Annotation(
            "cobb",
            [(10, 10), (60, 20), (10, 90), (60, 80)],
            image,
            "Cobb 22.6°",
            {"angle_deg": 22.6},
            {"angle_deg": "deg"},
        ),
        Annotation(
            "ellipse",
            [(200, 200), (260, 240)],
            image,
            "mean 35.2 HU",
            {"mean": 35.2, "std": 4.0, "area_mm2": 1234.5},
            {"mean": "HU", "std": "HU", "area_mm2": "mm2"},
        ),
        Annotation("ellipse", [(20, 300), (40, 400)], image),  # taller than wide
        Annotation(
            "rectangle",
            [(300, 300), (350, 380)],
            image,
            "max 1200 HU",
            {"max": 1200.0},
            {"max": "HU"},
        ),
        Annotation("probe", [(256, 256)], image, "-1000 HU", {"value": -1000.0}, {"value": "HU"}),
        Annotation("point", [(0, 0)], image),
        Annotation("arrow", [(400, 100), (300, 200)], image, "lesion"),
        Annotation("text", [(20, 480)], image, "Teaching note\nsecond line", layer="Notes"),
        Annotation("polyline", [(1, 1), (5, 9), (30, 3)], image),
        Annotation(
            "vhs",
            [(100, 100), (200, 150), (120, 180), (180, 90), (300, 300)],
            image,
            "VHS 10.2 v",
            {"vhs": 10.2},
            {"vhs": "v"},
        ),
    ]


def every_kind_within(image: pydicom.Dataset, frame: int | None = None) -> list[Annotation]:
    """:func:`every_kind` on ``image``, scaled from a 512-pixel image to fit inside it."""
    scale = min(int(image.Columns), int(image.Rows)) / 512
    return [
        dataclasses.replace(a, points=[(c * scale, r * scale) for c, r in a.points])
        for a in every_kind(ref(image, frame))
    ]
