"""Orientation letters from Image Orientation Patient of real files, under rotation/flip."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from tests.data import present, real_path
from workbench.widgets.orientation import direction_label, orientation_letters


def first_file(folder: Path) -> Path:
    return sorted(p for p in folder.iterdir() if p.is_file())[0]


def iop(path: Path) -> list[float]:
    return [
        float(v) for v in pydicom.dcmread(path, stop_before_pixels=True).ImageOrientationPatient
    ]


LETTERS = [
    # Axial CT, patient supine: viewer's left is the patient's right, anterior on top.
    ("series_ct_philips_ingenuity_5mm", {"left": "R", "right": "L", "top": "A", "bottom": "P"}),
    # Sagittal MR: anterior to the left, head up.
    ("series_mr_siemens_t1_sag_HFS", {"left": "A", "right": "P", "top": "H", "bottom": "F"}),
    # Coronal CT (Toshiba): rows run right to left of the patient, head up.
    ("toshiba_ct_j2k", {"left": "R", "right": "L", "top": "H", "bottom": "F"}),
    # Oblique MR (Philips, rows 55 degrees between left and posterior).
    ("nema_mr2_philips", {"left": "AR", "right": "PL", "top": "H", "bottom": "F"}),
]


@pytest.mark.parametrize(
    ("relative", "expected"), [(path, letters) for path, letters in LETTERS if present(path)]
)
def test_letters_of_real_files(relative: str, expected: dict) -> None:
    assert orientation_letters(iop(first_file(real_path(relative)))) == expected


def test_oblique_copy_gives_combined_letters(sample_data: Path, tmp_path: Path) -> None:
    """A copy of an axial slice turned 40 degrees about the patient's long axis."""
    ds = pydicom.dcmread(first_file(sample_data / "series_ct_philips_ingenuity_5mm"))
    ds.ImageOrientationPatient = [-0.766044, 0.642788, 0.0, -0.642788, -0.766044, 0.0]
    path = tmp_path / "oblique.dcm"
    ds.save_as(path)
    letters = orientation_letters(iop(path))
    # Rows point mostly to the patient's right and somewhat posterior.
    assert letters == {"left": "LA", "right": "RP", "top": "PL", "bottom": "AR"}


def test_small_tilt_is_not_called_oblique(sample_data: Path) -> None:
    # Siemens CT brain with a 9 degree gantry tilt: still labelled as plain axial.
    letters = orientation_letters(iop(sample_data / "sc_ct_brain_jpeg_siemens" / "ctbrain1.dcm"))
    assert letters == {"left": "R", "right": "L", "top": "AH", "bottom": "PF"}
    assert direction_label([0.0, 0.999, -0.05]) == "P"


AXIAL = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    ("rotation", "flip", "expected"),
    [
        (90, False, {"left": "P", "right": "A", "top": "R", "bottom": "L"}),
        (180, False, {"left": "L", "right": "R", "top": "P", "bottom": "A"}),
        (270, False, {"left": "A", "right": "P", "top": "L", "bottom": "R"}),
        (0, True, {"left": "L", "right": "R", "top": "A", "bottom": "P"}),
        (90, True, {"left": "P", "right": "A", "top": "L", "bottom": "R"}),
    ],
)
def test_letters_follow_rotation_and_flip(rotation: int, flip: bool, expected: dict) -> None:
    assert orientation_letters(AXIAL, rotation=rotation, flip=flip) == expected


def test_no_orientation_gives_no_letters() -> None:
    assert orientation_letters(None) == {"left": "", "right": "", "top": "", "bottom": ""}
