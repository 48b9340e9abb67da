"""Measurements with known geometry on real images."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest

from workbench.io.presentation import Annotation
from workbench.widgets.measurements import (
    Calibration,
    angle,
    calibration,
    cobb_angle,
    measure,
    modality_unit,
    roi_mask,
    vertebrae_spanned,
)


def header(path: Path) -> dict:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    keywords = ("Modality", "PixelSpacing", "ImagerPixelSpacing", "RescaleType")
    return {k: ds.get(k) for k in keywords if k in ds}


def hounsfield(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


@pytest.fixture(scope="module")
def ct(sample_data: Path) -> pydicom.Dataset:
    return pydicom.dcmread(sample_data / "series_ct_philips_ingenuity_5mm" / "I100")


def test_length_across_a_row_is_columns_times_spacing(ct: pydicom.Dataset) -> None:
    attrs = {"Modality": "CT", "PixelSpacing": ct.PixelSpacing}
    # From the left edge of the first pixel to the right edge of the last, along row 100.
    a = measure(Annotation("length", [(-0.5, 100), (ct.Columns - 0.5, 100)]), None, attrs)
    assert a.values["length_mm"] == pytest.approx(ct.Columns * float(ct.PixelSpacing[1]))
    assert a.units["length_mm"] == "mm"
    assert a.text == f"{ct.Columns * float(ct.PixelSpacing[1]):.1f} mm"


def test_length_down_a_column_uses_row_spacing() -> None:
    attrs = {"PixelSpacing": [2.0, 0.5]}  # 2 mm between rows, 0.5 mm between columns
    a = measure(Annotation("length", [(10, 10), (10, 20)]), None, attrs)
    assert a.values["length_mm"] == pytest.approx(20.0)


def test_uncalibrated_length_is_in_pixels_with_a_note(sample_data: Path) -> None:
    attrs = header(sample_data / "us_rgb_bigendian_barre" / "ExplVR_BigEnd.dcm")
    assert calibration(attrs) is None
    a = measure(Annotation("length", [(0, 0), (30, 40)]), None, attrs)
    assert a.values == {"length_px": pytest.approx(50.0)}
    assert "uncalibrated" in a.text


def test_imager_pixel_spacing_is_flagged_as_at_detector(sample_data: Path) -> None:
    attrs = header(sample_data / "cr_agfa_mono1_tiny" / "6154")
    cal = calibration(attrs)
    assert cal is not None and cal.source == "ImagerPixelSpacing"
    a = measure(Annotation("length", [(0, 0), (10, 0)]), None, attrs)
    assert a.values["length_mm"] == pytest.approx(1.0)
    assert "at detector" in a.text


@pytest.mark.parametrize("kind", ["ellipse", "rectangle"])
def test_roi_statistics_in_hounsfield_units(ct: pydicom.Dataset, kind: str) -> None:
    values = hounsfield(ct)
    corners = [(200.3, 180.7), (290.6, 260.2)]
    a = measure(
        Annotation(kind, corners), values, {"Modality": "CT", "PixelSpacing": ct.PixelSpacing}
    )
    # The same region computed independently, pixel centre by pixel centre.
    rows, cols = np.mgrid[0 : ct.Rows, 0 : ct.Columns]
    if kind == "rectangle":
        mask = (cols >= 200.3) & (cols <= 290.6) & (rows >= 180.7) & (rows <= 260.2)
    else:
        cx, cy, rx, ry = 245.45, 220.45, 45.15, 39.75
        mask = ((cols - cx) / rx) ** 2 + ((rows - cy) / ry) ** 2 <= 1
    inside = values[mask]
    assert a.values["mean"] == pytest.approx(inside.mean())
    assert a.values["std"] == pytest.approx(inside.std())
    assert a.values["min"] == inside.min() and a.values["max"] == inside.max()
    assert a.values["pixels"] == mask.sum()
    assert a.units["mean"] == "HU"
    spacing = float(ct.PixelSpacing[0])
    area = 90.3 * 79.5 * spacing**2 * (math.pi / 4 if kind == "ellipse" else 1)
    assert a.values["area_mm2"] == pytest.approx(area)


def test_ellipse_mask_is_symmetric_and_inside_its_box() -> None:
    mask = roi_mask((50, 60), "ellipse", (10, 5), (40, 45))
    assert mask.sum() > 0
    rows, cols = np.nonzero(mask)
    assert cols.min() >= 10 and cols.max() <= 40 and rows.min() >= 5 and rows.max() <= 45
    np.testing.assert_array_equal(mask[:, 10:41], mask[:, 10:41][:, ::-1])


def test_probe_reads_the_modality_value(ct: pydicom.Dataset) -> None:
    values = hounsfield(ct)
    a = measure(Annotation("probe", [(123.2, 301.8)]), values, {"Modality": "CT"})
    assert a.values["value"] == values[302, 123]
    assert a.text.endswith("HU")


def test_angles_are_physical() -> None:
    assert angle((10, 0), (0, 0), (0, 10)) == pytest.approx(90.0)
    # With rows twice as far apart as columns, the pixel diagonal is not 45 degrees.
    cal = Calibration(row_spacing=2.0, column_spacing=1.0)
    assert angle((10, 0), (0, 0), (10, 10), cal) == pytest.approx(math.degrees(math.atan(2)))
    a = measure(Annotation("angle", [(10, 0), (0, 0), (-10, 0.0001)]), None, {})
    assert a.values["angle_deg"] == pytest.approx(180.0, abs=1e-3)


def test_cobb_angle_is_the_acute_angle_between_endplates() -> None:
    upper = [(0, 0), (100, 0)]
    lower = [(0, 100), (100, 100 + 100 * math.tan(math.radians(25)))]
    assert cobb_angle(upper, lower) == pytest.approx(25.0)
    assert cobb_angle(upper, lower[::-1]) == pytest.approx(25.0)
    a = measure(Annotation("cobb", upper + lower), None, {})
    assert a.values["cobb_deg"] == pytest.approx(25.0)


def test_vertebral_heart_score() -> None:
    # Vertebrae of 20 px from T4: boundaries every 20 px along a horizontal spine.
    spine = [(100 + 20 * i, 50) for i in range(6)]
    assert vertebrae_spanned(50, spine) == pytest.approx(2.5)
    # Beyond the marked vertebrae the mean length is used.
    assert vertebrae_spanned(130, spine) == pytest.approx(6.5)
    long_axis = [(200, 200), (200, 306)]  # 106 px = 5.3 v
    short_axis = [(150, 250), (234, 250)]  # 84 px = 4.2 v
    a = measure(
        Annotation("vhs", long_axis + short_axis + spine), None, {"PixelSpacing": [0.2, 0.2]}
    )
    assert a.values["long_axis_v"] == pytest.approx(5.3)
    assert a.values["short_axis_v"] == pytest.approx(4.2)
    assert a.values["vhs"] == pytest.approx(9.5)
    assert a.text.startswith("VHS 9.5")


def test_incomplete_measurements_have_no_values() -> None:
    a = measure(Annotation("angle", [(0, 0), (1, 1)]), None, {})
    assert a.values == {}


def test_modality_units() -> None:
    assert modality_unit({"Modality": "CT"}) == "HU"
    assert modality_unit({"Modality": "PT", "RescaleType": "BQML"}) == "BQML"
    assert modality_unit({"Modality": "MR"}) == ""
