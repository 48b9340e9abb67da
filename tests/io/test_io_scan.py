"""Header-only catalogs of folders, file lists and ZIP archives."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pydicom
import pytest

from tests.data import NOT_DICOM, manifest_rows
from workbench.io import PixelDataError, open_series, scan


@pytest.fixture(scope="module")
def catalog(data_root):
    return scan(data_root, progress=False)


def test_scan_catalogs_every_real_file(catalog, data_root):
    assert len(catalog.instances) == len(manifest_rows(data_root))
    skipped = {s.path.rsplit("/", 1)[-1]: s.reason for s in catalog.skipped}
    assert set(skipped) == {p.name for p in data_root.iterdir() if p.name in NOT_DICOM}
    assert all("not a DICOM file" in reason for reason in skipped.values())


def test_series_group_the_right_files(catalog):
    ct = next(s for s in catalog.series if s.description == "STD BRAIN 5MM")
    assert len(ct) == 28 and ct.modality == "CT"
    mr = next(s for s in catalog.series if s.description == "t1_fl2d_sag")
    assert len(mr) == 35
    enhanced = next(s for s in catalog.series if s.description == "REST1 w SMS PF7-8")
    assert len(enhanced) == 4 and enhanced.number_of_frames == 24
    # The presentation state is cataloged as such, never as an image series.
    assert not any(s.modality == "PR" for s in catalog.series)
    assert [s.kind for s in catalog.objects if s.modality == "PR"] == ["presentation state"]
    frame = catalog.to_dataframe()
    assert frame.loc[frame.SeriesInstanceUID == ct.uid, "instances"].item() == 28
    assert set(frame.loc[frame.Modality == "PR", "kind"]) == {"presentation state"}
    # A catalog series opens directly.
    assert open_series(ct).sizes["frame"] == 28


def test_catalog_hierarchy(catalog):
    study = next(s for s in catalog.studies if s.description.startswith("Research^MCBI"))
    assert len(study.series) == 2  # mosaic EPI original and recompressed
    patient = next(p for p in catalog.patients.values() if p.id == "crlab" and p.name == "stc_test")
    assert study.uid in patient.studies
    with pytest.raises(KeyError, match="no series"):
        catalog.find_series("1.2.3.4")


def test_scan_and_open_a_zip_archive(ct_copy, tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(ct_copy.iterdir()):
            zf.write(path, f"DICOM/{path.name}")
        zf.writestr("DICOM/readme.txt", "exported")
    catalog = scan(archive, progress=False)
    assert len(catalog.instances) == 6
    assert [s.path.endswith("!DICOM/readme.txt") for s in catalog.skipped] == [True]
    from_zip, from_folder = open_series(archive), open_series(ct_copy)
    assert np.array_equal(from_zip.values, from_folder.values)
    assert from_zip.attrs["affine"] == from_folder.attrs["affine"]


def test_scan_a_list_of_files_non_recursive(ct_series, tmp_path):
    files = sorted(ct_series.iterdir())[:3]
    assert len(scan(files, progress=False).instances) == 3
    nested = tmp_path / "outer"
    shutil.copytree(ct_series, nested / "inner")
    assert len(scan(nested, recursive=False, progress=False).instances) == 0
    assert len(scan(nested, progress=False).instances) == 28


def test_file_without_file_meta_opens(sample_data, tmp_path):
    source = sample_data / "nema_mr1_small_transcodes/MR_small_implicit.dcm"
    ds = pydicom.dcmread(source)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.preamble = None
    bare = tmp_path / "bare"
    ds.save_as(bare, enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert bare.read_bytes()[128:132] != b"DICM"
    assert len(scan(bare, progress=False).instances) == 1
    np.testing.assert_array_equal(open_series(bare).values, open_series(source).values)


def test_scan_reads_headers_only(sample_data, tmp_path):
    # Garble the JPEG 2000 codestream: the scan and the lazy open never notice, decoding does.
    source = sample_data / "nema_mr1_small_transcodes/MR_small_jp2klossless.dcm"
    data = bytearray(source.read_bytes())
    data[-400:-40] = bytes(360)
    damaged = tmp_path / "garbled.dcm"
    damaged.write_bytes(bytes(data))
    catalog = scan(damaged, progress=False)
    assert len(catalog.instances) == 1 and not catalog.skipped
    array = open_series(damaged)
    with pytest.raises(PixelDataError, match=r"garbled\.dcm"):
        array.values  # noqa: B018 - decoding is the point
