"""One file's frames rendered without a series: the same pixels as the series shows.

The reference is the viewer's path: :func:`workbench.io.open_series` on the file, then
:func:`workbench.io.display.render` with :func:`~workbench.io.display.frame_attrs`, on every
real file (and on the wider corpus where it is present).
"""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest

from tests.data import dicom_files, real_path
from workbench.io import display, open_series
from workbench.io.errors import DicomIOError, NotAnImageError
from workbench.io.preview import FileDisplay

#: Frames compared in a multi-frame file: the first two, the middle and the last.
_FRAMES_COMPARED = 4


def _frames(count: int) -> list[int]:
    if count <= _FRAMES_COMPARED:
        return list(range(count))
    return sorted({0, 1, count // 2, count - 1})


def _series_frames(path) -> tuple[object, dict[int, int]] | None:
    """The file opened as a series and, by frame index in the file, its position there;
    ``None`` when the io layer cannot show the file."""
    try:
        array = open_series(path)
    except DicomIOError:
        return None
    positions = {int(number) - 1: i for i, number in enumerate(array.frame_number.values)}
    return array, positions


def test_every_real_frame_renders_as_the_series_shows_it(data_root):
    seen: dict[str, set] = {"photometric": set(), "syntax": set(), "multiframe": set()}
    for path in dicom_files(data_root):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = _series_frames(path)
            if reference is None:
                with pytest.raises(DicomIOError):
                    FileDisplay.read(path).render(0)
                continue
            array, positions = reference
            shown = FileDisplay.read(path)
            assert shown.number_of_frames == len(positions), path
            for frame in _frames(shown.number_of_frames):
                position = positions[frame]
                expected = display.render(
                    array[position].values, display.frame_attrs(array, position)
                )
                np.testing.assert_array_equal(shown.render(frame), expected, err_msg=str(path))
            # A window and function chosen by the user replace the file's alike.
            attrs = {**display.frame_attrs(array, positions[0]), "VOILUTFunction": "SIGMOID"}
            np.testing.assert_array_equal(
                shown.render(0, window=(40.0, 400.0), voi_function="SIGMOID"),
                display.render(array[positions[0]].values, attrs, window=(40.0, 400.0)),
                err_msg=str(path),
            )
        header = pydicom.dcmread(path, stop_before_pixels=True)
        seen["photometric"].add(str(header.PhotometricInterpretation))
        seen["syntax"].add(header.file_meta.TransferSyntaxUID.name)
        if shown.number_of_frames > 1:
            seen["multiframe"].add(path.name)
    # The sample alone holds every kind the io layer decodes; the test must have seen them.
    photometrics = {p.split(" ")[0] for p in seen["photometric"]}
    assert {"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL_422", "PALETTE"} <= photometrics
    for family in ("Explicit VR Little", "Implicit", "Big Endian", "Deflated", "JPEG Baseline",
                   "JPEG Lossless", "JPEG-LS", "JPEG 2000", "RLE"):  # fmt: skip
        assert any(family in name for name in seen["syntax"]), (family, seen["syntax"])
    assert seen["multiframe"], "no multi-frame file"


@pytest.mark.parametrize(
    "relative",
    [
        "voi_lut_ihe/vlut_04.dcm",  # VOI LUT Sequence
        "cr_agfa_mono1_tiny/6154",  # MONOCHROME1
        "us_aloka_palette16/gdcm-US-ALOKA-16.dcm",  # 16-bit palette
        "enhanced_mr_siemens_xa10/6_2.dcm",  # per-frame windows
    ],
)
def test_display_tables_and_presets_are_the_series_own(relative):
    path = real_path(relative)
    array = open_series(path)
    attrs = FileDisplay.read(path).frame_attrs(0)
    expected = display.frame_attrs(array, int(np.flatnonzero(array.frame_number.values == 1)[0]))
    for key in ("PhotometricInterpretation", "BitsStored", "VOILUTFunction"):
        assert attrs[key] == expected[key], key
    assert attrs["WindowCenter"][:1] == expected["WindowCenter"][:1]
    assert attrs["WindowWidth"][:1] == expected["WindowWidth"][:1]
    assert display.is_inverted(attrs) == display.is_inverted(expected)
    for key in ("palette", "voi_lut"):
        assert (attrs[key] is None) == (expected[key] is None), key
    if expected["palette"] is not None:
        np.testing.assert_array_equal(attrs["palette"], expected["palette"])
    for ours, theirs in zip(attrs["voi_lut"] or [], expected["voi_lut"] or [], strict=True):
        np.testing.assert_array_equal(ours["data"], theirs["data"])


def test_presentation_lut_shape_of_a_single_frame_is_read(sample_data, tmp_path):
    """(2050,0020) lies beyond group (0028), where a single-frame header is usually cut."""
    ds = pydicom.dcmread(sample_data / "nema_mr1_small_transcodes/MR_small.dcm")
    plain = FileDisplay.read(sample_data / "nema_mr1_small_transcodes/MR_small.dcm").render(0)
    ds.PresentationLUTShape = "INVERSE"
    ds.save_as(tmp_path / "inverse.dcm")
    np.testing.assert_array_equal(FileDisplay.read(tmp_path / "inverse.dcm").render(0), 255 - plain)


def test_a_presentation_state_and_a_missing_frame_are_refused(sample_data):
    with pytest.raises(NotAnImageError, match="Presentation State"):
        FileDisplay.read(sample_data / "gsps_agfa/GSPS_PS.dcm")
    shown = FileDisplay.read(sample_data / "nema_mr1_small_transcodes/MR_small.dcm")
    with pytest.raises(IndexError, match="out of range; the file has 1 frames"):
        shown.render(1)
