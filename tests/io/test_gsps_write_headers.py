"""Presentation states for images as scanners and archives write them.

Every grayscale image we ship or find beside the checkout gets a state with every annotation
kind, checked by dicom3tools' dciodvfy and DCMTK's dcmpschk. Then each header problem seen in
the field, on the real file that has it and on a copy of a sample image given it: dates and
times the standard rejects, other values too long or malformed, ISO 2022 character sets,
de-identified and clinical-trial images.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pydicom
import pytest

from tests.data import dicom_files
from tests.io.gsps_cases import every_kind_within, ref
from tests.peers import require_tool
from workbench.io import derived, gsps
from workbench.io.presentation import Annotation, PresentationState

SMALL_MR = "nema_mr1_small_transcodes/MR_small.dcm"
LEGACY_DATES = "us_rgb_bigendian_barre/ExplVR_BigEnd.dcm"  # StudyDate 1997.04.24, 14:04:38
LONG_FRACTION = "us_medistim_rgb_2frame/JPEGLosslessP14SV1_3s_2f_u_08_08.dcm"
DE_IDENTIFIED = "cr_agfa_mono1_tiny/6154"
KANJI = ["ISO 2022 IR 6", "ISO 2022 IR 87"]
JAPANESE = "Yamada^Tarou=山田^太郎=やまだ^たろう"  # the PS3.5 H.3.1 example


def run(tool: str, path: Path) -> str:
    result = subprocess.run(
        [require_tool(tool), str(path)], capture_output=True, text=True, timeout=60
    )
    return result.stdout + result.stderr


# dcmpschk fails a file for a date it calls dubious (a year before 1850 or after 2050), though
# PS3.5 6.2 allows any year and anonymizers write such placeholders (PatientBirthDate 11111111
# in the Siemens overlay image). Only that message, for a conformant DA, is not counted.
DUBIOUS_DATE = re.compile(
    r"^W: Warning: Dubious date .*\n"
    r"E:    Affected attribute: \w+ \(\w{4},\w{4}\), Type DA\n"
    r"E:    Attribute value   : \[\d{8}\]\n"
    r"E: *\n",
    re.MULTILINE,
)

# DCMTK 3.6.7's value check takes the bytes 0x80-0x9F for C1 control characters whatever the
# character set, so it rejects UTF-8 text whose characters encode with such a byte ("ß" is
# C3 9F, "所" E6 89 80), which PS3.5 6.1.2.3 allows. Only that message, for a text value of an
# ISO_IR 192 file that holds such a byte, is not counted.
TEXT_FORMAT = re.compile(
    r"^E: Error: Attribute value does not conform to data type definition\.\n"
    r"E:    Affected attribute: \w+ \(\w{4},\w{4}\), Type (?:SH|LO|ST|LT|UT|UC|PN)\n"
    r"E:    Attribute value   : \[([^\]]*)\]\n"
    r"E:    Expected format .*\n"
    r"E: *\n",
    re.MULTILINE,
)


def _without_utf8_c1_complaints(report: str, charset) -> str:
    if charset != "ISO_IR 192":
        return report

    def c1_byte(match: re.Match) -> str:
        return "" if any(0x80 <= b <= 0x9F for b in match[1].encode()) else match[0]

    return TEXT_FORMAT.sub(c1_byte, report)


def verdict(path: Path) -> list[str]:
    """dciodvfy's Error lines and dcmpschk's errors for a file, with the warnings around."""
    report = run("dciodvfy", path)
    problems = [line for line in report.splitlines() if line.startswith("Error")]
    charset = pydicom.dcmread(path, stop_before_pixels=True).get("SpecificCharacterSet")
    checked = _without_utf8_c1_complaints(DUBIOUS_DATE.sub("", run("dcmpschk", path)), charset)
    ran = re.search(r"^W: Test (passed|failed)", checked, re.MULTILINE)
    errors = [line for line in checked.splitlines() if line.startswith(("E:", "W: Error"))]
    if not ran or errors:
        problems.append(f"dcmpschk: {checked}")
    if problems:
        warned = [line for line in report.splitlines() if line.startswith("Warning")]
        problems += [f"(dciodvfy {line})" for line in warned]
    return problems


def save(ds: pydicom.Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def header(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)


def grayscale_images(root: Path) -> list[Path]:
    """Every MONOCHROME image under ``root``."""
    images = []
    for path in dicom_files(root):
        ds = header(path)
        if "Rows" in ds and str(ds.get("PhotometricInterpretation", "")).startswith("MONO"):
            images.append(path)
    return images


def state_for(image: pydicom.Dataset, name: str = "Review") -> PresentationState:
    frame = 1 if int(image.get("NumberOfFrames") or 1) > 1 else None
    return PresentationState(
        name, every_kind_within(image, frame), images=[ref(image, frame)], creator="Doe^Jane"
    )


@pytest.mark.peers
def test_a_state_on_every_grayscale_image_is_valid(data_root, tmp_path):
    images = grayscale_images(data_root)
    assert len(images) > 10, f"too few grayscale images found under {data_root}"
    failures = {}
    for number, path in enumerate(images):
        image = header(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # what the writer warns about is tested below
            state = gsps.write(state_for(image), [image])
        problems = verdict(save(state, tmp_path / f"{number}.dcm"))
        if problems:
            failures[str(path.relative_to(data_root))] = problems
    assert not failures, "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in failures.items())


@pytest.mark.peers
def test_the_checks_find_what_is_wrong(sample_data, tmp_path):
    """Our state without the method the images have fails dciodvfy; Agfa's SH fails dcmpschk."""
    state = gsps.write(PresentationState("x"), [header(sample_data / DE_IDENTIFIED)])
    del state.DeidentificationMethod
    problems = verdict(save(state, tmp_path / "state.dcm"))
    assert any(re.match(r"Error.*DeidentificationMethod", p) for p in problems), problems
    problems = verdict(sample_data / "gsps_agfa" / "GSPS_PS.dcm")
    assert any("dcmpschk" in p and "AccessionNumber" in p for p in problems), problems


# --- real files ---------------------------------------------------------------------------


def test_legacy_dates_and_times_of_a_real_file_are_copied_in_standard_form(sample_data):
    path = sample_data / LEGACY_DATES
    with pytest.warns(UserWarning) as caught:
        copied = derived.valid_header(header(path))
    assert (copied.StudyDate, copied.StudyTime) == ("19970424", "140438")
    messages = [str(w.message) for w in caught]
    for tag, value in [("(0008,0020) StudyDate", "1997.04.24"), ("(0008,0030) StudyTime", "14:04")]:
        assert any(str(path) in m and tag in m and value in m for m in messages), messages


def test_times_with_nine_fraction_digits_keep_six(shared_data):
    path = shared_data / LONG_FRACTION
    with pytest.warns(UserWarning, match=r"\(0008,0030\) StudyTime '094836\.214743984'"):
        copied = derived.valid_header(header(path))
    assert copied.StudyTime == "094836.214743"


@pytest.mark.peers
def test_a_de_identified_image_gives_a_de_identified_state(sample_data, tmp_path):
    image = header(sample_data / DE_IDENTIFIED)
    state = gsps.write(state_for(image), [image])
    assert state.PatientIdentityRemoved == "YES"
    assert list(state.DeidentificationMethod) == list(image.DeidentificationMethod)
    assert verdict(save(state, tmp_path / "state.dcm")) == []


# --- copies of a sample image given each problem -----------------------------------------


@pytest.fixture
def changed_copy(sample_data, tmp_path):
    """A copy of a sample image with some attributes set, read back as a header."""

    def change(**values) -> pydicom.Dataset:
        path = tmp_path / "image.dcm"
        shutil.copy(sample_data / SMALL_MR, path)
        ds = pydicom.dcmread(path)
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about the values we set on purpose
            ds.save_as(path)
            return header(path)

    return change


VALUE_CASES = [
    # id, attribute, value in the image, value in the state (None: left out), warning
    ("tm-with-colons", "StudyTime", "15:26:10", "152610", r"copied as '152610'"),
    ("tm-long-fraction", "StudyTime", "101010.123456789", "101010.123456", "copied as"),
    ("da-with-dots", "StudyDate", "1997.04.24", "19970424", "copied as '19970424'"),
    ("da-iso", "PatientBirthDate", "1970-01-31", "19700131", "copied as '19700131'"),
    ("da-hash", "StudyDate", "#a3f9c2e1", "", "copied empty"),
    ("sh-too-long", "AccessionNumber", "A1234567890123456789", "", "copied empty"),
    ("as-without-unit", "PatientAge", "45", None, "left out"),
]


@pytest.mark.peers
@pytest.mark.parametrize(
    ("keyword", "value", "expected", "warning"),
    [c[1:] for c in VALUE_CASES],
    ids=[c[0] for c in VALUE_CASES],
)
def test_invalid_values_are_copied_as_the_standard_allows(
    changed_copy, tmp_path, keyword, value, expected, warning
):
    image = changed_copy(**{keyword: value})
    tag = pydicom.tag.Tag(pydicom.datadict.tag_for_keyword(keyword))
    pattern = rf"image\.dcm: \({tag.group:04X},{tag.element:04X}\) {keyword} .*{warning}"
    with pytest.warns(UserWarning, match=pattern):
        state = gsps.write(state_for(image), [image])
    if expected is None:
        assert keyword not in state
    else:
        assert str(state[tag].value or "") == expected
    assert verdict(save(state, tmp_path / "state.dcm")) == []


@pytest.mark.peers
def test_invalid_values_inside_sequences_are_made_valid(changed_copy, tmp_path):
    too_long = "X" * 70  # LO holds 64
    other_ids = [pydicom.Dataset(), pydicom.Dataset()]
    other_ids[0].PatientID, other_ids[0].TypeOfPatientID = too_long, "TEXT"  # Type 1
    other_ids[1].PatientID, other_ids[1].TypeOfPatientID = "P-2", "TEXT"
    other_ids[1].IssuerOfPatientID = too_long  # Type 3
    image = changed_copy(OtherPatientIDsSequence=other_ids)
    with pytest.warns(UserWarning) as caught:
        state = gsps.write(state_for(image), [image])
    messages = [str(w.message) for w in caught]
    sequence = r"\(0010,1002\) OtherPatientIDsSequence > "
    assert any(
        re.search(sequence + r"\(0010,0020\) PatientID.*item is left out", m) for m in messages
    )
    assert any(
        re.search(sequence + r"\(0010,0021\) IssuerOfPatientID.*left out", m) for m in messages
    )
    [kept] = state.OtherPatientIDsSequence
    assert kept.PatientID == "P-2" and "IssuerOfPatientID" not in kept
    assert len(image.OtherPatientIDsSequence) == 2  # the image's own header is untouched
    assert verdict(save(state, tmp_path / "state.dcm")) == []


@pytest.mark.peers
@pytest.mark.parametrize(
    ("charset", "name", "text", "written"),
    [
        ("ISO 2022 IR 100", "Müller^Jörg", "Größe", "ISO_IR 100"),
        ("ISO 2022 IR 100", "Müller^Jörg", "所見", "ISO_IR 192"),
        (KANJI, JAPANESE, "所見", KANJI),
        (KANJI, JAPANESE, "Größe", "ISO_IR 192"),
        (["", "ISO 2022 IR 87"], JAPANESE, "所見", KANJI),
        ("ISO_IR 192", "Müller^Jörg", "所見", "ISO_IR 192"),
    ],
    ids=[
        "single-2022",
        "single-2022-wider-text",
        "japanese",
        "japanese-latin-text",
        "japanese-empty-first",
        "utf8",
    ],
)
def test_character_sets_carry_the_images_names_over(
    changed_copy, tmp_path, charset, name, text, written
):
    image = changed_copy(SpecificCharacterSet=charset, PatientName=name)
    assert str(image.PatientName) == name
    note = Annotation("text", [(5, 5)], ref(image), text)
    path = save(gsps.write(PresentationState(text, [note]), [image]), tmp_path / "state.dcm")
    back = pydicom.dcmread(path)
    assert back.SpecificCharacterSet == written
    assert (str(back.PatientName), back.ContentDescription) == (name, text)
    assert gsps.read(back).annotations[0].text == text
    assert verdict(path) == []


@pytest.mark.peers
def test_images_without_a_de_identification_method_get_one(changed_copy, tmp_path):
    image = changed_copy(PatientIdentityRemoved="YES")
    state = gsps.write(state_for(image), [image])
    assert (state.PatientIdentityRemoved, state.DeidentificationMethod) == (
        "YES",
        derived.NOT_RECORDED,
    )
    assert verdict(save(state, tmp_path / "state.dcm")) == []


@pytest.mark.peers
def test_clinical_trial_modules_follow_the_images(changed_copy, tmp_path):
    trial = {"ClinicalTrialSponsorName": "ACME", "ClinicalTrialProtocolID": "P-7"}
    image = changed_copy(**trial, ClinicalTrialSubjectID="S-12", ClinicalTrialTimePointID="T1")
    state = gsps.write(state_for(image), [image])
    assert (state.ClinicalTrialSponsorName, state.ClinicalTrialSubjectID) == ("ACME", "S-12")
    assert state.ClinicalTrialTimePointID == "T1"
    assert state.ClinicalTrialProtocolName is None  # Type 2, absent in the image
    assert verdict(save(state, tmp_path / "state.dcm")) == []

    partial = changed_copy(ClinicalTrialSponsorName="ACME", ClinicalTrialSubjectID="S-12")
    with pytest.warns(UserWarning, match=r"lacks \(0012,0020\) ClinicalTrialProtocolID"):
        state = gsps.write(state_for(partial), [partial])
    assert "ClinicalTrialSponsorName" not in state and "ClinicalTrialSubjectID" not in state
    assert verdict(save(state, tmp_path / "partial.dcm")) == []


@pytest.mark.peers
def test_laterality_follows_the_images(changed_copy, tmp_path):
    image = changed_copy(Laterality="L")
    state = gsps.write(state_for(image), [image])
    assert state.Laterality == "L"
    assert verdict(save(state, tmp_path / "state.dcm")) == []


def test_an_image_of_an_unknown_class_is_refused_naming_the_tag_and_file(changed_copy):
    image = changed_copy(SOPClassUID="1.2.3.4.5")
    refusal = r"image\.dcm: \(0008,0016\) SOP Class UID '1\.2\.3\.4\.5'"
    with pytest.raises(ValueError, match=refusal):
        gsps.write(PresentationState("x"), [image])


def test_values_are_checked_on_the_image_they_are_copied_from(sample_data, tmp_path):
    """highdicom copies patient and study from the first image: one warning, not one per image."""
    images = []
    for number in (1, 2, 3):
        ds = pydicom.dcmread(sample_data / SMALL_MR)
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.StudyTime = "15:26:10"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.save_as(tmp_path / f"{number}.dcm")
            images.append(header(tmp_path / f"{number}.dcm"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = gsps.write(PresentationState("Series"), images)
    about_time = [str(w.message) for w in caught if "StudyTime" in str(w.message)]
    assert len(about_time) == 1 and "1.dcm" in about_time[0], about_time
    assert state.StudyTime == "152610"
    assert len(state.ReferencedSeriesSequence[0].ReferencedImageSequence) == 3


def test_an_image_without_its_uids_is_refused_naming_the_tag_and_file(sample_data, tmp_path):
    ds = pydicom.dcmread(sample_data / SMALL_MR)
    del ds.StudyInstanceUID
    ds.save_as(tmp_path / "no-study.dcm")
    with pytest.raises(ValueError, match=r"no-study\.dcm: .*lacks \(0020,000D\) StudyInstanceUID"):
        gsps.write(PresentationState("x"), [header(tmp_path / "no-study.dcm")])


def test_private_values_inside_copied_sequences_are_left_as_they_are(sample_data):
    image = header(sample_data / SMALL_MR)
    item = pydicom.Dataset()
    item.PatientID, item.TypeOfPatientID = "P-1", "TEXT"
    item.add_new(0x00110010, "LO", "ACME")
    private = pydicom.Dataset()
    private.add_new(0x00111001, "LO", "X" * 80)  # longer than LO, but not ours to judge
    item.add_new(0x00111002, "SQ", [private])
    image.OtherPatientIDsSequence = [item]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        copied = derived.valid_header(image)
    kept = copied.OtherPatientIDsSequence[0][0x00111002].value[0]
    assert kept[0x00111001].value == "X" * 80
