"""Damaged copies of real files give clear workbench.io errors naming the file."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap

import pydicom
import pytest

from workbench.io import (
    InconsistentSeriesError,
    InvalidDicomError,
    PixelDataError,
    UnsupportedTransferSyntaxError,
    open_series,
    scan,
)


def test_truncated_file(ct_copy):
    victim = sorted(ct_copy.iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:100_000])
    with pytest.raises(PixelDataError, match="truncated") as info:
        open_series(victim)
    assert info.value.path == str(victim)
    # The scan reports it and keeps going; opening the folder refuses to hide it.
    catalog = scan(ct_copy, progress=False)
    assert len(catalog.instances) == 5
    assert catalog.skipped[0].path == str(victim) and "truncated" in catalog.skipped[0].reason
    with pytest.raises(PixelDataError, match=re.escape(victim.name)):
        open_series(ct_copy)


def test_file_cut_inside_the_header(ct_copy):
    victim = sorted(ct_copy.iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:3000])
    with pytest.raises(PixelDataError, match="truncated or incomplete"):
        open_series(victim)


def test_not_dicom(tmp_path):
    text = tmp_path / "notes.dcm"
    text.write_text("not an image\n" * 20)
    with pytest.raises(InvalidDicomError, match="not a DICOM file") as info:
        open_series(text)
    assert info.value.path == str(text)


def test_pixel_data_shorter_than_the_image_needs(ct_copy):
    victim = sorted(ct_copy.iterdir())[0]
    ds = pydicom.dcmread(victim)
    ds.PixelData = ds.PixelData[: 512 * 400 * 2]
    ds.save_as(victim)
    with pytest.raises(PixelDataError, match=r"holds 409600 bytes but 512 rows x 512 columns"):
        open_series(victim)


def test_unsupported_transfer_syntax(sample_data, tmp_path):
    victim = tmp_path / "video.dcm"
    shutil.copy(sample_data / "nema_mr1_small_transcodes/MR_small_jp2klossless.dcm", victim)
    ds = pydicom.dcmread(victim)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 Main Profile
    ds.save_as(victim)
    with pytest.raises(UnsupportedTransferSyntaxError, match="MPEG2") as info:
        open_series(victim)
    assert info.value.path == str(victim)


def test_missing_codec_names_the_package(sample_data):
    jpeg2000 = sample_data / "nema_mr1_small_transcodes/MR_small_jp2klossless.dcm"
    # A real interpreter in which the JPEG 2000 decoders (pylibjpeg, Pillow) cannot import.
    script = textwrap.dedent(f"""
        import sys
        for name in ("pylibjpeg", "openjpeg", "PIL"):
            sys.modules[name] = None
        from workbench.io import MissingCodecError, open_series
        try:
            open_series({str(jpeg2000)!r})
        except MissingCodecError as exc:
            print(exc)
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert "MR_small_jp2klossless.dcm" in result.stdout
    assert "pip install pylibjpeg pylibjpeg-openjpeg" in result.stdout


def test_mixed_sizes_refuse_and_list_what_differs(ct_copy, sample_data):
    ct = pydicom.dcmread(next(ct_copy.iterdir()), stop_before_pixels=True)
    odd = pydicom.dcmread(sample_data / "nema_mr1_small_transcodes/MR_small.dcm")
    odd.SeriesInstanceUID, odd.StudyInstanceUID = ct.SeriesInstanceUID, ct.StudyInstanceUID
    odd.save_as(ct_copy / "odd.dcm")
    with pytest.raises(InconsistentSeriesError) as info:
        open_series(ct_copy)
    message = str(info.value)
    assert "Rows" in message and "Columns" in message and "odd.dcm" in message
    assert "Rows=512, Columns=512" in message and "6 files" in message


def test_several_series_need_a_choice(sample_data):
    ct = sample_data / "series_ct_philips_ingenuity_5mm"
    mr = sample_data / "series_mr_siemens_t1_sag_HFS"
    files = [*sorted(ct.iterdir())[:2], *sorted(mr.iterdir())[:2]]
    with pytest.raises(InconsistentSeriesError, match="holds 2 series") as info:
        open_series(files)
    mr_uid = pydicom.dcmread(files[-1], stop_before_pixels=True).SeriesInstanceUID
    assert mr_uid in str(info.value) and "t1_fl2d_sag" in str(info.value)
    assert open_series(files, series_uid=mr_uid).sizes["frame"] == 2
    with pytest.raises(InconsistentSeriesError, match=r"no series '1\.2\.3'"):
        open_series(files, series_uid="1.2.3")


def test_presentation_state_has_no_pixels(sample_data):
    path = sample_data / "gsps_agfa/GSPS_PS.dcm"
    with pytest.raises(PixelDataError, match="Grayscale Softcopy Presentation State") as info:
        open_series(path)
    assert info.value.path == str(path)
