"""Ingest reads headers with the viewer's reader: one test of a file cut short, one set of
values, whichever path (file or bytes) the data takes."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest

from workbench.io.errors import PixelDataError
from workbench.io.headers import read_header
from workbench.io.sources import DicomFile
from workbench.pacs import Index, InvalidInstanceError
from workbench.pacs.parsing import parse_instance

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
NATIVE = SAMPLE / "nema_mr1_small_transcodes" / "MR_small.dcm"
ENCAPSULATED = SAMPLE / "nema_mr1_small_transcodes" / "MR_small_RLE.dcm"


@pytest.fixture
def index(tmp_path, database) -> Index:
    idx = Index(database.config(tmp_path / "store"))
    yield idx
    idx.close()


def _with_trailing_padding(path: Path) -> bytes:
    ds = pydicom.dcmread(path)
    ds.add_new(0xFFFCFFFC, "OB", b"\0" * 64)  # Data Set Trailing Padding
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _pixel_data_end(data: bytes) -> int:
    """Where the pixel data ends: after its declared length, or after the sequence delimiter
    of encapsulated data (both sample files have elements after their pixel data)."""
    element = pydicom.dcmread(io.BytesIO(data)).get_item(0x7FE00010)
    if element.length != 0xFFFFFFFF:
        return element.value_tell + element.length
    return data.rindex(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00") + 8


@pytest.mark.parametrize(
    ("source", "damage"),
    [
        (NATIVE, lambda data: data[: _pixel_data_end(data) - 2]),
        (NATIVE, lambda data: data[: _pixel_data_end(data) - 4000]),
        (ENCAPSULATED, lambda data: data[: _pixel_data_end(data) - 8]),  # delimiter gone
        (ENCAPSULATED, lambda data: data[: _pixel_data_end(data) - 500]),
    ],
)
def test_a_file_cut_inside_its_pixel_data_is_refused_as_the_viewer_refuses_it(
    tmp_path, index, source, damage
):
    victim = tmp_path / source.name
    victim.write_bytes(damage(source.read_bytes()))
    with pytest.raises(PixelDataError, match="truncated") as viewer:
        read_header(DicomFile(str(victim)))
    for ingest in (
        lambda: index.ingest_file(victim),
        lambda: index.ingest_bytes(victim.read_bytes(), label="upload"),
    ):
        with pytest.raises(InvalidInstanceError) as refused:
            ingest()
        assert viewer.value.reason in str(refused.value)
    assert index.statistics()["CountInstances"] == 0
    assert victim.exists()  # ingest_file copies: the user's file is left alone


@pytest.mark.parametrize("source", [NATIVE, ENCAPSULATED])
def test_padding_after_the_pixel_data_is_not_truncation(tmp_path, index, source):
    padded = tmp_path / source.name
    padded.write_bytes(_with_trailing_padding(source))
    read_header(DicomFile(str(padded)))
    assert index.ingest_file(padded).status == "Success"


def test_file_and_bytes_give_the_same_values_as_pydicom():
    for path in sorted(p for p in SAMPLE.rglob("*.dcm")):
        try:
            from_file = parse_instance(path)
        except InvalidInstanceError:
            with pytest.raises(InvalidInstanceError):
                parse_instance(path.read_bytes())
            continue
        assert parse_instance(path.read_bytes()) == from_file
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert from_file.sop_instance_uid == ds.SOPInstanceUID
        assert from_file.transfer_syntax == ds.file_meta.TransferSyntaxUID
        assert from_file.tags["Series"]["Modality"] == ds.Modality
        assert (from_file.tags["Patient"]["PatientName"] or "") == str(ds.get("PatientName") or "")


def test_garbled_fragments_are_left_to_decoding(tmp_path, index):
    # Bytes zeroed from the last fragment's content to past the delimiter: damaged, not cut
    # short. Neither reader refuses it; decoding the frame is what will.
    data = bytearray(ENCAPSULATED.read_bytes())
    end = _pixel_data_end(bytes(data))
    data[end - 300 : end + 20] = bytes(320)
    garbled = tmp_path / "garbled.dcm"
    garbled.write_bytes(bytes(data))
    read_header(DicomFile(str(garbled)))
    assert index.ingest_file(garbled).status == "Success"


@pytest.mark.parametrize(
    ("character_set", "name"),
    [
        (None, "Doe^John"),
        (None, "A^B\\ C^D "),  # two values, a leading space kept, padding dropped
        ("ISO_IR 100", " Müller^Hans \\Doe^J "),
        ("ISO_IR 192", "山田^太郎=やまだ^たろう"),
        (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎=やまだ^たろう"),  # escape sequences
        ("ISO_IR 100", ""),
    ],
)
def test_person_names_read_from_bytes_print_as_pydicom_prints_them(character_set, name):
    ds = pydicom.dcmread(NATIVE)
    if character_set:
        ds.SpecificCharacterSet = character_set
    ds.PatientName = ds.ReferringPhysicianName = name
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    parsed = parse_instance(buffer.getvalue())
    expected = pydicom.dcmread(io.BytesIO(buffer.getvalue()), stop_before_pixels=True)
    printed = "\\".join(str(value).rstrip(" \x00") for value in (
        expected.PatientName if isinstance(expected.PatientName, pydicom.multival.MultiValue)
        else [expected.PatientName]))  # fmt: skip
    assert parsed.tags["Patient"]["PatientName"] == printed
    assert parsed.tags["Study"]["ReferringPhysicianName"] == printed
