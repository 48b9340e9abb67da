"""Hanging protocols on real CT, MR and CR series (and modified copies of them)."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from tests.data import modified_copy, real_path
from workbench.io import open_series
from workbench.widgets.hanging import DEFAULT_PROTOCOLS, HangingProtocol, hang, load_protocols
from workbench.widgets.model import ViewerModel

CT = "series_ct_philips_ingenuity_5mm"
MR = "series_mr_siemens_t1_sag_HFS"


def _described(description: str):
    def change(ds, index):
        ds.SeriesDescription = description

    return change


def test_a_ct_hangs_in_three_planes() -> None:
    model = ViewerModel([open_series(real_path(CT))])
    assert hang(model).name == "CT volume in three planes"
    assert [v.plane for v in model.viewports] == ["axial", "coronal", "sagittal"]
    assert model.crosshair is not None


def test_mr_series_hang_side_by_side_in_description_order(tmp_path) -> None:
    t2 = open_series(modified_copy(real_path(MR), tmp_path / "t2", _described("t2_tse_sag")))
    flair = open_series(modified_copy(real_path(MR), tmp_path / "fl", _described("FLAIR sag")))
    t1 = open_series(modified_copy(real_path(MR), tmp_path / "t1", _described("T1 SE sag")))
    model = ViewerModel([flair, t2, t1])
    assert hang(model).name == "MR series side by side"
    assert model.layout == (1, 3)
    shown = [v.stack.attrs["SeriesDescription"] for v in model.viewports]
    assert shown == ["T1 SE sag", "t2_tse_sag", "FLAIR sag"]
    # They share a Frame of Reference and are parallel: scrolling one scrolls the others.
    model.viewports[0].frame = 20
    assert [v.frame for v in model.viewports] == [20, 20, 20]


def test_radiographs_hang_one_per_viewport(tmp_path) -> None:
    copies = [
        open_series(modified_copy(real_path("cr_agfa_mono1_tiny"), tmp_path / f"cr{i}",
                                  lambda ds, index: None))
        for i in range(3)
    ]  # fmt: skip
    model = ViewerModel(copies)
    assert hang(model).name == "Radiographs one per viewport"
    assert model.layout == (2, 2)
    assert [v.stack for v in model.viewports[:3]] == copies


def test_current_and_prior_hang_side_by_side_and_scroll_together(tmp_path) -> None:
    current = open_series(real_path(CT))
    study, frame_of_reference = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()

    def prior_study(ds, index):
        ds.StudyInstanceUID, ds.FrameOfReferenceUID = study, frame_of_reference
        ds.StudyDate = "20100101"
        ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) - 300.0

    prior = open_series(modified_copy(real_path(CT), tmp_path / "prior", prior_study))
    model = ViewerModel([prior, current])
    assert hang(model).name == "Current and prior"
    left, right = model.viewports
    assert (left.stack, right.stack) == (current, prior)
    assert model.links.scroll and model.links.window and model.links.zoom
    # Different Frames of Reference: the prior moves by the same distance in mm.
    model.links.scroll = False
    right.frame = 4
    assert left.frame == 0
    model.links.scroll = True
    left.frame = 6
    assert right.frame == 10
    left.window = (50, 350)
    assert right.window == (50, 350)


def test_user_rules_in_json_come_first(tmp_path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([{"name": "CT side by side", "match": {"Modality": "c?"},
                                 "arrange": "side_by_side", "link": ["window"]}]))  # fmt: skip
    rules = load_protocols(path)
    assert rules[0].to_dict()["match"] == {"Modality": "c?"}
    model = ViewerModel([open_series(real_path(CT))])
    assert hang(model, [*rules, *DEFAULT_PROTOCOLS]).name == "CT side by side"
    assert model.layout == (1, 1) and model.viewports[0].plane == "axial"
    with pytest.raises(ValueError, match="arrange must be one of"):
        HangingProtocol("bad", arrange="carousel")
    with pytest.raises(ValueError, match="unknown keys"):
        load_protocols('{"name": "x", "colour": "red"}')
    assert hang(ViewerModel([open_series(real_path("us_aloka_palette16"))])) is None
    assert np.isfinite(model.viewports[0].frame)
