"""Reading presentation states: exact round trips of ours, a real Agfa GSPS, foreign content."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from highdicom import pr

from tests.io.gsps_cases import every_kind, first_file, ref
from workbench.io import gsps
from workbench.io.errors import InvalidDicomError
from workbench.io.presentation import (
    Annotation,
    DisplaySettings,
    ImageReference,
    PresentationState,
    VoiLut,
)

CT_SERIES = "series_ct_philips_ingenuity_5mm"
CR_MONO1 = "cr_agfa_mono1_tiny/6154"
ENHANCED_CT = "enhanced_ct_nema/eCT_Supplemental.dcm"
AGFA = "gsps_agfa/GSPS_PS.dcm"


@pytest.fixture(scope="module")
def ct(sample_data) -> pydicom.Dataset:
    return pydicom.dcmread(first_file(sample_data / CT_SERIES), stop_before_pixels=True)


def round_trip(state: PresentationState, images, tmp_path: Path, **read_args):
    path = tmp_path / "state.dcm"
    gsps.write(state, images).save_as(path, enforce_file_format=True)
    size = (int(images[0].Columns), int(images[0].Rows))
    return gsps.read(path, image_size=size, **read_args)


def assert_same_annotations(expected: list[Annotation], actual: list[Annotation]) -> None:
    assert len(actual) == len(expected)
    for want, got in zip(expected, actual, strict=True):
        assert (got.kind, got.text, got.layer, got.uid, got.image) == (
            want.kind,
            want.text,
            want.layer,
            want.uid,
            want.image,
        )
        assert got.values == want.values and got.units == want.units
        np.testing.assert_allclose(got.points, want.points, atol=1e-3)


def test_annotations_round_trip_exactly(ct, tmp_path):
    image = ref(ct)
    # Beyond one of each kind: odd decimals, several values, values without units, a layer
    # of its own, an arrow without text and a closed polyline.
    annotations = [
        *every_kind(image),
        Annotation(
            "length",
            [(10.3, 20.7), (100.25, 200.5)],
            image,
            "Length 42.13 mm",
            {"length_mm": 42.127893, "length_px": 93.3},
            {"length_mm": "mm", "length_px": "px"},
        ),
        Annotation(
            "ellipse",
            [(200, 200), (260, 240)],
            image,
            "mean 35.2",
            {"mean": 35.2, "std": 4.01, "min": -12.0, "max": 80.0, "area_mm2": 1.5e3},
            {"mean": "HU", "std": "HU", "min": "HU", "max": "HU", "area_mm2": "mm2"},
        ),
        Annotation("rectangle", [(300, 300), (350, 380)], image, "mean 3", {"mean": 3.0}),
        Annotation("point", [(0, 0)], image, layer="Landmarks"),
        Annotation("arrow", [(40, 10), (30, 20)], image),
        Annotation("polyline", [(1, 1), (5, 9), (30, 3), (1, 1)], image),
    ]
    created = dt.datetime(2025, 1, 2, 3, 4, 5, 678000)
    state = PresentationState(
        "Teaching case", annotations, images=[image], creator="Doe^Jane", created=created
    )
    back = round_trip(state, [ct], tmp_path)
    assert_same_annotations(annotations, back.annotations)
    assert (back.name, back.creator, back.created, back.images) == (
        "Teaching case",
        "Doe^Jane",
        created,
        [image],
    )
    assert back.not_shown == []
    assert back.sop_instance_uid


@pytest.mark.parametrize(
    "display",
    [
        DisplaySettings(),
        DisplaySettings(window=(40, 400)),
        DisplaySettings(window=(-600.5, 1500.25), invert=True),
        DisplaySettings(rotation=90),
        DisplaySettings(rotation=270, flip=True, window=(40, 80)),
        DisplaySettings(rotation=180, flip=True, zoom=2.5, center=(180, 300)),
        DisplaySettings(zoom=0.75, center=(255.5, 255.5), rotation=90, flip=True),
        DisplaySettings(area=(100, 50, 300, 400), rotation=90),
        DisplaySettings(voi_lut=VoiLut(-1024, 12, tuple(range(0, 4096, 2)), "ramp"), invert=True),
    ],
    ids=lambda d: repr(d)[16:60],
)
def test_display_settings_round_trip(ct, tmp_path, display):
    back = round_trip(PresentationState("Display", display=display), [ct], tmp_path)
    expected = display
    if display.window is None and display.voi_lut is None:
        # The state records the image's own default window rather than "none".
        centers = ct.WindowCenter if ct["WindowCenter"].VM > 1 else [ct.WindowCenter]
        widths = ct.WindowWidth if ct["WindowWidth"].VM > 1 else [ct.WindowWidth]
        expected = DisplaySettings(
            **{**vars(display), "window": (float(centers[0]), float(widths[0]))}
        )
    assert back.display == expected
    assert back.not_shown == []


def test_whole_image_area_reads_as_explicit_without_the_image_size(ct, tmp_path):
    path = tmp_path / "state.dcm"
    gsps.write(PresentationState("Whole"), [ct]).save_as(path, enforce_file_format=True)
    assert gsps.read(path).display.area == (0.0, 0.0, 511.0, 511.0)
    assert gsps.read(path, image_size=(512, 512)).display.area is None


def test_monochrome1_polarity_round_trips_when_the_image_is_known(sample_data, tmp_path):
    image = pydicom.dcmread(sample_data / CR_MONO1, stop_before_pixels=True)
    for invert in (False, True):
        state = PresentationState("CR", display=DisplaySettings(window=(1600, 2800), invert=invert))
        back = round_trip(state, [image], tmp_path, photometric="MONOCHROME1")
        assert back.display.invert is invert


def test_frames_of_a_multiframe_image_round_trip(sample_data, tmp_path):
    image = pydicom.dcmread(sample_data / ENHANCED_CT, stop_before_pixels=True)
    frame = ref(image, 2)
    line = Annotation(
        "length", [(10, 10), (50, 50)], frame, "56 mm", {"length_mm": 56.0}, {"length_mm": "mm"}
    )
    back = round_trip(PresentationState("Frame 2", [line], images=[frame]), [image], tmp_path)
    assert back.images == [frame]
    assert_same_annotations([line], back.annotations)


def test_reads_from_path_bytes_and_dataset_alike(ct, tmp_path):
    state = PresentationState("Same", [Annotation("point", [(3, 4)], ref(ct))])
    path = tmp_path / "s.dcm"
    gsps.write(state, [ct]).save_as(path, enforce_file_format=True)
    from_path = gsps.read(path)
    from_bytes = gsps.read(path.read_bytes())
    from_dataset = gsps.read(pydicom.dcmread(path))
    for other in (from_bytes, from_dataset):
        assert other.annotations[0].points == from_path.annotations[0].points
        assert (other.name, other.display) == (from_path.name, from_path.display)


# --- other software's states -----------------------------------------------------------


def test_reads_a_real_agfa_gsps(sample_data):
    state = gsps.read(sample_data / AGFA, photometric="MONOCHROME1")
    assert state.name == "DIAGUSER_DEFINED"  # no Content Description: the label stands in
    assert state.creator == "Peter^Lambert"
    assert state.created == dt.datetime(2021, 10, 1, 16, 14, 43, 482000)
    assert state.images == [
        ImageReference(
            "1.2.840.10008.5.1.4.1.1.1", "1.2.40.0.13.1.188812342173958994015240267909703912045"
        )
    ]
    lut = state.display.voi_lut
    assert (lut.first_mapped, lut.bits, len(lut.data)) == (0, 16, 4096)
    assert state.display.window is None
    # INVERSE on a MONOCHROME1 CR is its normal look.
    assert state.display.invert is False
    assert (state.display.rotation, state.display.flip, state.display.zoom) == (0, False, None)
    assert state.display.area == (0.0, 0.0, 2493.0, 2047.0)
    line, label = state.annotations
    assert line.kind == "polyline" and line.layer == "CUSTOM"
    np.testing.assert_allclose(line.points, [(560.947, 623.86), (605.9723, 576.1862)], atol=1e-3)
    assert label.kind == "arrow"
    assert label.text == "Distance measurement 1\nLength: 11.1mm[proj]"
    # The label's connecting line ends at the anchor, the end of the measured line.
    np.testing.assert_allclose(label.points[1], line.points[1], atol=1e-3)
    assert state.not_shown == ["1 compound graphic(s) (PRIVATE_AGILITY)"]


def test_agfa_polarity_without_knowing_the_image(sample_data):
    assert gsps.read(sample_data / AGFA).display.invert is True


@pytest.mark.filterwarnings("ignore:The string .* unlikely to represent")
def test_foreign_graphics_become_annotations_or_notes(ct, tmp_path):
    """Circles, tilted ellipses, curves and display-anchored text written with highdicom."""
    layer = pr.GraphicLayer("OTHER", order=1)
    graphics = [
        pr.GraphicObject("CIRCLE", np.array([[100.5, 100.5], [110.5, 100.5]]), "PIXEL"),
        pr.GraphicObject(
            "ELLIPSE",
            np.array([[50.5, 50.5], [150.5, 150.5], [120.5, 80.5], [80.5, 120.5]]),
            "PIXEL",
        ),
        pr.GraphicObject("INTERPOLATED", np.array([[1.5, 1.5], [20.5, 5.5], [40.5, 1.5]]), "PIXEL"),
        pr.GraphicObject("POLYLINE", np.array([[0.1, 0.1], [0.9, 0.9]]), "DISPLAY"),
    ]
    texts = [
        pr.TextObject("Top note", "DISPLAY", bounding_box=(0.1, 0.1, 0.5, 0.2)),
        pr.TextObject("Boxed", "PIXEL", bounding_box=(10.5, 20.5, 60.5, 40.5)),
    ]
    ds = pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[ct],
        series_instance_uid=hd.UID(),
        series_number=1,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="Elsewhere",
        manufacturer_model_name="Other viewer",
        software_versions="1",
        device_serial_number="1",
        content_label="THEIRS",
        graphic_layers=[layer],
        graphic_annotations=[
            pr.GraphicAnnotation([ct], layer, graphic_objects=graphics, text_objects=texts)
        ],
    )
    ds.ShutterShape = ["RECTANGULAR", "CIRCULAR"]
    ds.ShutterLeftVerticalEdge, ds.ShutterRightVerticalEdge = 10, 500
    ds.ShutterUpperHorizontalEdge, ds.ShutterLowerHorizontalEdge = 10, 500
    ds.add_new(0x60000010, "US", 512)
    ds.add_new(0x60000011, "US", 512)
    path = tmp_path / "theirs.dcm"
    ds.save_as(path, enforce_file_format=True)

    state = gsps.read(path)
    kinds = [(a.kind, a.text) for a in state.annotations]
    assert kinds == [("ellipse", ""), ("polyline", ""), ("polyline", ""), ("text", "Boxed")]
    circle, tilted, curve, boxed = state.annotations
    assert circle.points == [(90.0, 90.0), (110.0, 110.0)]
    assert len(tilted.points) == 65  # a tilted ellipse is outlined
    np.testing.assert_allclose(tilted.points[0], (150.0, 150.0), atol=1e-6)
    assert curve.points == [(1.0, 1.0), (20.0, 5.0), (40.0, 1.0)]
    assert boxed.points == [(10.0, 20.0)]
    assert state.name == "THEIRS"
    assert "polyline in display coordinates" in state.not_shown
    assert "text 'Top note' in display coordinates" in state.not_shown
    assert "display shutter (rectangular, circular)" in state.not_shown
    assert "1 overlay plane(s)" in state.not_shown


@pytest.mark.parametrize("content", [b"not dicom at all", b""])
def test_garbage_is_refused_clearly(content):
    with pytest.raises(InvalidDicomError, match="presentation state"):
        gsps.read(content)


def test_an_image_is_not_a_presentation_state(sample_data):
    path = sample_data / CR_MONO1
    with pytest.raises(InvalidDicomError, match="not a presentation state") as error:
        gsps.read(path)
    assert error.value.path == str(path)


# --- damaged objects ---------------------------------------------------------------------


def _elements(ds: pydicom.Dataset, found: list) -> list:
    """Every (dataset, tag) pair in a dataset, nested sequences included."""
    for element in ds:
        found.append((ds, element.tag))
        if element.VR == "SQ":
            for item in element.value:
                _elements(item, found)
    return found


def _damage(ds: pydicom.Dataset, tag, action: int) -> None:
    element = ds[tag]
    if action == 0 or tag == 0x00080016:
        del ds[tag]
    elif element.VR == "SQ":
        element.value = []
    elif element.VR in ("FL", "FD", "SL", "SS", "US", "UL", "IS", "DS"):
        values = [9e9, -5, 1] if action == 1 else []
        element.value = values[: max(1, action % 3)] if action == 1 else values
    else:
        element.value = "ODD VALUE" if action == 1 else ""


@pytest.fixture(scope="module")
def rich_gsps(ct) -> bytes:
    """One of ours with every kind of annotation and a full set of display settings."""
    import io

    image = ref(ct)
    marks = [
        Annotation("length", [(1, 2), (30, 40)], image, "5 mm", {"length_mm": 5.0}),
        Annotation("ellipse", [(20, 20), (40, 30)], image, "mean 3", {"mean": 3.0}),
        Annotation("arrow", [(50, 50), (60, 70)], image, "here"),
        Annotation("text", [(5, 100)], image, "note", layer="Notes"),
        Annotation("cobb", [(1, 1), (9, 3), (1, 9), (9, 7)], image),
    ]
    state = PresentationState(
        "Rich", marks, DisplaySettings(window=(40, 400), invert=True, rotation=90, zoom=2.0),
        images=[image],
    )  # fmt: skip
    buffer = io.BytesIO()
    gsps.write(state, [ct]).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_damaged_objects_read_without_crashing(rich_gsps, sample_data):
    """Deleting or garbling any element never makes reading fail, except the SOP class."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    sources = [rich_gsps, (sample_data / AGFA).read_bytes()]

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        source=st.sampled_from([0, 1]),
        picks=st.lists(
            st.tuples(st.integers(0, 10_000), st.integers(0, 2)), min_size=1, max_size=4
        ),
    )
    def check(source, picks):
        ds = pydicom.dcmread(__import__("io").BytesIO(sources[source]))
        for index, action in picks:
            found = _elements(ds, [])
            if not found:
                break
            owner, tag = found[index % len(found)]
            if tag in owner:
                _damage(owner, tag, action)
        try:
            state = gsps.read(ds)
        except InvalidDicomError:
            assert ds.get("SOPClassUID") != "1.2.840.10008.5.1.4.1.1.11.1"
            return
        assert isinstance(state, PresentationState)
        assert all(a.points for a in state.annotations)

    check()
