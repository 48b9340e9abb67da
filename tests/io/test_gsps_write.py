"""Writing GSPS objects: structure, DCMTK's dcmpschk verdict, naming, text encoding, errors."""

from __future__ import annotations

import datetime as dt
import getpass
import io
import subprocess
from pathlib import Path

import pydicom
import pytest

from tests.io.gsps_cases import every_kind, first_file, ref
from tests.peers import require_tool
from workbench.io import gsps
from workbench.io.presentation import (
    Annotation,
    DisplaySettings,
    ImageReference,
    PresentationState,
)

CT_SERIES = "series_ct_philips_ingenuity_5mm"
MR_SERIES = "series_mr_siemens_t1_sag_HFS"
CR_MONO1 = "cr_agfa_mono1_tiny/6154"
VOI_LUT_IMAGE = "voi_lut_ihe/vlut_04.dcm"
ENHANCED_CT = "enhanced_ct_nema/eCT_Supplemental.dcm"
GSPS_CLASS = "1.2.840.10008.5.1.4.1.1.11.1"


def header(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)


@pytest.fixture(scope="module")
def ct(sample_data) -> tuple[Path, pydicom.Dataset]:
    path = first_file(sample_data / CT_SERIES)
    return path, header(path)


def dcmpschk(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [require_tool("dcmpschk"), str(path)], capture_output=True, text=True, timeout=60
    )


def assert_dcmpschk_passes(path: Path) -> None:
    result = dcmpschk(path)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "Test passed" in report, report
    assert not [line for line in report.splitlines() if line.startswith("E:")], report


# --- dcmpschk --------------------------------------------------------------------------


def _cases():
    return [
        (
            "ct-everything",
            CT_SERIES,
            None,
            DisplaySettings(
                window=(40, 400), invert=True, rotation=90, flip=True, zoom=2.0, center=(200, 220)
            ),
            True,
        ),
        ("ct-defaults", CT_SERIES, None, DisplaySettings(), False),
        (
            "mr-area",
            MR_SERIES,
            None,
            DisplaySettings(window=(300, 600), rotation=270, area=(10, 20, 100, 150)),
            False,
        ),
        ("cr-monochrome1", CR_MONO1, None, DisplaySettings(invert=False, rotation=180), False),
        ("image-voi-lut", VOI_LUT_IMAGE, None, DisplaySettings(), False),
        ("enhanced-ct-frame", ENHANCED_CT, 2, DisplaySettings(window=(0, 2000)), False),
    ]


@pytest.mark.parametrize(
    ("source", "frame", "display", "annotate"),
    [c[1:] for c in _cases()],
    ids=[c[0] for c in _cases()],
)
def test_dcmpschk_accepts_what_we_write(sample_data, tmp_path, source, frame, display, annotate):
    path = sample_data / source
    image = header(first_file(path) if path.is_dir() else path)
    image_ref = ref(image, frame)
    annotations = (
        every_kind(image_ref)
        if annotate
        else [
            Annotation(
                "length",
                [(1, 1), (8, 8)],
                image_ref,
                "7.1 px",
                {"length_px": 7.07},
                {"length_px": "px"},
            )
        ]
    )
    state = PresentationState(
        "Review", annotations, display, images=[image_ref], creator="Doe^Jane"
    )
    out = tmp_path / "state.dcm"
    gsps.write(state, [image]).save_as(out, enforce_file_format=True)
    assert_dcmpschk_passes(out)


def test_dcmpschk_reports_errors_it_finds(sample_data):
    """The checker really checks: the Agfa object (a 20-character SH) fails it."""
    result = dcmpschk(sample_data / "gsps_agfa" / "GSPS_PS.dcm")
    report = result.stdout + result.stderr
    assert "Test failed" in report and "AccessionNumber" in report


# --- structure -------------------------------------------------------------------------


def test_written_object_describes_the_state(ct):
    _, image = ct
    image_ref = ref(image)
    created = dt.datetime(2024, 3, 5, 14, 30, 15, 250000)
    state = PresentationState(
        "Findings for review",
        every_kind(image_ref),
        DisplaySettings(
            window=(40, 400), invert=True, rotation=90, flip=False, zoom=1.5, center=(255.5, 255.5)
        ),
        images=[image_ref],
        creator="Doe^Jane",
        created=created,
    )
    ds = gsps.write(state, [image], series_number=77, instance_number=3)

    assert ds.SOPClassUID == GSPS_CLASS and ds.Modality == "PR"
    assert ds.StudyInstanceUID == image.StudyInstanceUID
    assert ds.SeriesInstanceUID != image.SeriesInstanceUID
    assert ds.PatientID == image.PatientID
    assert (ds.SeriesNumber, ds.InstanceNumber) == (77, 3)
    assert ds.ContentLabel == "FINDINGS_FOR_REV"
    assert ds.ContentDescription == "Findings for review"
    assert str(ds.ContentCreatorName) == "Doe^Jane"
    assert (ds.PresentationCreationDate, ds.PresentationCreationTime) == (
        "20240305",
        "143015.250000",
    )
    assert ds.PresentationLUTShape == "INVERSE"
    voi = ds.SoftcopyVOILUTSequence[0]
    assert (float(voi.WindowCenter), float(voi.WindowWidth)) == (40.0, 400.0)
    assert (ds.ImageRotation, ds.ImageHorizontalFlip) == (90, "N")
    area = ds.DisplayedAreaSelectionSequence[0]
    assert area.PresentationSizeMode == "MAGNIFY"
    assert float(area.PresentationPixelMagnificationRatio) == 1.5
    # Rotated a quarter turn clockwise, the image's bottom-left pixel shows top-left.
    assert list(area.DisplayedAreaTopLeftHandCorner) == [1, 512]
    assert list(area.DisplayedAreaBottomRightHandCorner) == [512, 1]
    refs = ds.ReferencedSeriesSequence[0]
    assert refs.SeriesInstanceUID == image.SeriesInstanceUID
    assert refs.ReferencedImageSequence[0].ReferencedSOPInstanceUID == image.SOPInstanceUID
    assert [layer.GraphicLayer for layer in ds.GraphicLayerSequence] == ["ANNOTATIONS", "NOTES"]
    assert len(ds.GraphicAnnotationSequence) == len(state.annotations)
    labels = [g.GraphicGroupLabel for g in ds.GraphicGroupSequence]
    assert labels == [a.kind for a in state.annotations]
    length = ds.GraphicAnnotationSequence[0]
    # (10, 20) is the centre of pixel (10, 20): 10.5\20.5 in GSPS PIXEL units.
    assert list(length.GraphicObjectSequence[0].GraphicData) == [10.5, 20.5, 100.75, 201.0]
    assert length.TextObjectSequence[0].UnformattedTextValue == "42.1 mm"
    ellipse = ds.GraphicAnnotationSequence[3].GraphicObjectSequence[0]
    assert ellipse.GraphicType == "ELLIPSE"
    assert list(ellipse.GraphicData) == [200.5, 220.5, 260.5, 220.5, 230.5, 200.5, 230.5, 240.5]
    # The file saves and parses as Part 10.
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    again = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    assert again.file_meta.MediaStorageSOPClassUID == GSPS_CLASS


def test_monochrome1_normal_display_is_inverse(sample_data):
    """A MONOCHROME1 image shown as usual needs INVERSE in a GSPS (PS3.4 N.2.1.1)."""
    image = header(sample_data / CR_MONO1)
    normal = gsps.write(PresentationState("n", images=[ref(image)]), [image])
    inverted = gsps.write(PresentationState("i", display=DisplaySettings(invert=True)), [image])
    assert normal.PresentationLUTShape == "INVERSE"
    assert inverted.PresentationLUTShape == "IDENTITY"


def test_default_voi_is_the_images_own(sample_data, ct):
    _, image = ct
    voi = gsps.write(PresentationState("w"), [image]).SoftcopyVOILUTSequence[0]
    centers = image.WindowCenter if image["WindowCenter"].VM > 1 else [image.WindowCenter]
    assert float(voi.WindowCenter) == float(centers[0])
    lut_image = header(sample_data / VOI_LUT_IMAGE)
    voi = gsps.write(PresentationState("l"), [lut_image]).SoftcopyVOILUTSequence[0]
    assert list(voi.VOILUTSequence[0].LUTDescriptor) == list(
        lut_image.VOILUTSequence[0].LUTDescriptor
    )


def test_several_states_share_one_series(ct):
    _, image = ct
    series = pydicom.uid.generate_uid()
    written = [
        gsps.write(
            PresentationState(name, display=DisplaySettings(window=(w, 400))),
            [image],
            series_instance_uid=series,
            instance_number=n,
        )
        for n, (name, w) in enumerate([("Soft tissue", 40), ("Lung", -600), ("Bone", 500)], 1)
    ]
    assert {ds.SeriesInstanceUID for ds in written} == {series}
    assert len({ds.SOPInstanceUID for ds in written}) == 3
    assert [gsps.read(ds).name for ds in written] == ["Soft tissue", "Lung", "Bone"]


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Vertebral Heart Score", "VERTEBRAL_HEART"),
        ("Findings", "FINDINGS"),
        ("Größe 2", "GROSSE_2"),
        ("a/b-c  d", "A_B_C_D"),
        ("日本語", "UNNAMED"),
        ("", "UNNAMED"),
    ],
)
def test_content_label_is_a_valid_code_string(name, label):
    assert gsps.content_label(name) == label


def test_creator_defaults_to_the_login_name(ct):
    _, image = ct
    ds = gsps.write(PresentationState("Mine"), [image])
    assert str(ds.ContentCreatorName) == f"{getpass.getuser()}^"
    assert gsps.read(ds).creator == getpass.getuser()
    assert (
        str(gsps.write(PresentationState("x"), [image], creator="Roe^Ann").ContentCreatorName)
        == "Roe^Ann"
    )


def test_text_beyond_ascii_is_encoded(sample_data, tmp_path):
    image = header(sample_data / CR_MONO1)
    image_ref = ref(image)
    angle = Annotation(
        "angle", [(1, 1), (5, 5), (10, 2)], image_ref, "45.0°", {"a": 45.0}, {"a": "°"}
    )
    latin = gsps.write(PresentationState("Größe", [angle], creator="Müller^Jörg"), [image])
    assert latin.SpecificCharacterSet == "ISO_IR 100"
    latin.save_as(tmp_path / "latin.dcm", enforce_file_format=True)
    assert_dcmpschk_passes(tmp_path / "latin.dcm")
    utf8 = gsps.write(PresentationState("所見", [angle]), [image])
    assert utf8.SpecificCharacterSet == "ISO_IR 192"
    utf8.save_as(tmp_path / "utf8.dcm", enforce_file_format=True)
    back = gsps.read(tmp_path / "utf8.dcm")
    assert (back.name, back.annotations[0].text, back.annotations[0].units) == (
        "所見",
        "45.0°",
        {"a": "°"},
    )
    assert gsps.read(tmp_path / "latin.dcm").creator == "Müller^Jörg"


def test_points_outside_the_image_are_pulled_to_its_border(ct):
    _, image = ct
    line = Annotation("length", [(-5, 10), (600, 10)], ref(image))
    with pytest.warns(UserWarning, match="outside the image"):
        ds = gsps.write(PresentationState("Edge", [line]), [image])
    data = list(ds.GraphicAnnotationSequence[0].GraphicObjectSequence[0].GraphicData)
    assert data == [0.0, 10.5, 512.0, 10.5]


def test_an_empty_text_is_left_out_with_a_warning(ct):
    _, image = ct
    empty = Annotation("text", [(5, 5)], ref(image), "")
    with pytest.warns(UserWarning, match="nothing to draw"):
        ds = gsps.write(PresentationState("Empty", [empty]), [image])
    assert "GraphicAnnotationSequence" not in ds


def test_stores_are_chosen_by_what_is_given(tmp_path):
    from workbench.io.gsps.store import (
        FolderStateStore,
        MemoryStateStore,
        state_store,
    )

    assert isinstance(state_store(None), MemoryStateStore)
    assert isinstance(state_store(tmp_path), FolderStateStore)
    with pytest.raises(TypeError, match="index, a folder or memory"):
        state_store(42)


def test_bad_input_is_refused_with_a_reason(sample_data, ct):
    _, image = ct
    with pytest.raises(ValueError, match="at least one referenced image"):
        gsps.write(PresentationState("x"), [])
    with pytest.raises(ValueError, match="needs a name"):
        gsps.write(PresentationState("  "), [image])
    with pytest.raises(ValueError, match="at most 64"):
        gsps.write(PresentationState("x" * 65), [image])
    stranger = Annotation("point", [(1, 1)], ImageReference("1.2.840.10008.5.1.4.1.1.2", "1.2.3"))
    with pytest.raises(ValueError, match=r"refers to image 1\.2\.3"):
        gsps.write(PresentationState("x", [stranger]), [image])
    with pytest.raises(ValueError, match="needs 3 points"):
        gsps.write(PresentationState("x", [Annotation("angle", [(1, 1), (2, 2)])]), [image])
    rgb = header(
        sample_data / "sc_rgb_rle" / next(p.name for p in (sample_data / "sc_rgb_rle").iterdir())
    )
    with pytest.raises(ValueError, match="samples per pixel"):
        gsps.write(PresentationState("x"), [rgb])
