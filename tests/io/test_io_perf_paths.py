"""The quick ways through workbench.io give exactly what the general ways give.

Standard Part 10 files have their headers read only up to group (0028), with native pixel
data found at the end of the file; these tests compare that with pydicom's full reading of
every real file in ``../shared/data`` and of damaged copies.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian

from tests.data import manifest_rows, real_path
from workbench.io import PixelDataError, open_series, scan
from workbench.io.headers import (
    _SPECIFIC_TAGS,
    HEADER_KEYWORDS,
    SERIES_KEYWORDS,
    _read_any_header,
    read_header,
)
from workbench.io.sources import DicomFile, iter_files

# Read with the series' first full header, not per file (see InstanceHeader's notes).
_SERIES_LEVEL = {"PresentationLUTShape"}


def _general_header(file: DicomFile):
    with file.open() as fp:
        return _read_any_header(fp, file, _SPECIFIC_TAGS)


def _dicom_files(data_root):
    files = []
    for file in iter_files(data_root):
        try:
            _general_header(file)
        except Exception:
            continue  # MANIFEST.tsv, README.md
        files.append(file)
    return files


@pytest.mark.parametrize("keywords", [HEADER_KEYWORDS, SERIES_KEYWORDS], ids=["catalog", "series"])
def test_quick_headers_equal_general_headers_on_every_real_file(data_root, keywords):
    files = _dicom_files(data_root)
    assert len(files) == len(manifest_rows(data_root))
    for file in files:
        quick, general = read_header(file, keywords=keywords), _general_header(file)
        where = str(file)
        assert quick.transfer_syntax == general.transfer_syntax, where
        assert quick.has_file_meta == general.has_file_meta, where
        assert (quick.pixel_keyword, quick.pixel_offset, quick.pixel_length) == (
            general.pixel_keyword,
            general.pixel_offset,
            general.pixel_length,
        ), where
        for keyword in keywords:
            if keyword in _SERIES_LEVEL and "NumberOfFrames" not in general.dataset:
                continue
            assert quick.dataset.get(keyword) == general.dataset.get(keyword), (where, keyword)
        if keywords is SERIES_KEYWORDS:
            assert set(quick.elements) <= {Tag(k) for k in (*keywords, "SpecificCharacterSet")}


def _as_floats(value):
    if value is None or value == "":
        return None
    values = value if hasattr(value, "__len__") and not isinstance(value, str) else [value]
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        return None


def test_header_values_equal_the_data_set_values_on_every_real_file(data_root):
    """get / text / floats convert raw values themselves; they must give what pydicom's
    data set gives, type included."""
    for file in _dicom_files(data_root):
        quick, reference = read_header(file), read_header(file).dataset
        for keyword in HEADER_KEYWORDS:
            expected = reference.get(keyword)
            expected = None if expected is None or expected == "" else expected
            where = (str(file), keyword)
            got = quick.get(keyword)
            assert got == expected and type(got) is type(expected), where
            assert quick.text(keyword) == ("" if expected is None else str(expected)), where
            assert quick.floats(keyword) == _as_floats(expected), where


def test_headers_of_one_series_never_share_a_value_that_can_change(ct_series):
    """Values the files of a series repeat are converted once, but a list one header gives
    out must not be the list another header gives out."""
    first, second = (
        read_header(DicomFile(str(p)), keywords=SERIES_KEYWORDS)
        for p in sorted(ct_series.iterdir())[:2]
    )
    assert first.get("Rows") == second.get("Rows") == 512
    orientation = first.get("ImageOrientationPatient")
    assert orientation == second.get("ImageOrientationPatient")
    orientation[0] = 99.0
    assert second.get("ImageOrientationPatient")[0] != 99.0
    assert first.get("PatientName") is None  # not a series keyword: not read
    assert first.dataset.Rows == 512 and "PatientName" not in first.dataset


def test_values_shared_across_files_follow_pydicom_number_settings(ct_series):
    file = DicomFile(str(sorted(ct_series.iterdir())[0]))
    thickness = read_header(file).get("SliceThickness")
    assert type(thickness) is pydicom.valuerep.DSfloat
    pydicom.config.DS_decimal(True)
    try:
        thickness = read_header(file).get("SliceThickness")
    finally:
        pydicom.config.DS_decimal(False)
    assert type(thickness) is pydicom.valuerep.DSdecimal
    assert type(read_header(file).get("SliceThickness")) is pydicom.valuerep.DSfloat


def test_instance_numbers_read_as_pydicom_reads_them(ct_copy):
    victim = sorted(ct_copy.iterdir())[0]
    ds = pydicom.dcmread(victim)
    ds["InstanceNumber"]._value = "7.5"  # invalid for IS; pydicom warns and truncates
    ds.save_as(victim)
    with pytest.warns(UserWarning, match="IS"):
        expected = int(pydicom.dcmread(victim).InstanceNumber)
    array = open_series(ct_copy)
    index = list(array.sop_instance_uid.values).index(ds.SOPInstanceUID)
    assert array.instance_number.values[index] == expected == 7


def _reading_warnings(recwarn) -> set[str]:
    """What reading said; not objects of other tests reclaimed meanwhile (ResourceWarning)."""
    return {str(w.message) for w in recwarn if not issubclass(w.category, ResourceWarning)}


def test_quick_headers_warn_no_more_than_general_headers(data_root, recwarn):
    for file in _dicom_files(data_root):
        read_header(file)
    quick = _reading_warnings(recwarn)
    recwarn.clear()
    for file in _dicom_files(data_root):
        _general_header(file)
    assert quick <= _reading_warnings(recwarn)


def test_pixel_data_found_at_the_end_matches_pydicom(ct_copy):
    for path in sorted(ct_copy.iterdir()):
        header = read_header(DicomFile(str(path)))
        ds = pydicom.dcmread(path)
        element = ds["PixelData"]
        assert header.pixel_offset == element.file_tell  # where the value starts
        assert header.pixel_length == len(ds.PixelData)
        assert header.file_size == path.stat().st_size


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: data[:-2], "truncated"),  # cut inside the pixel data
        (lambda data: data[: len(data) - 512 * 512], "truncated"),
    ],
)
def test_damaged_pixel_data_is_still_caught(ct_copy, damage, message):
    victim = sorted(ct_copy.iterdir())[0]
    victim.write_bytes(damage(victim.read_bytes()))
    with pytest.raises(PixelDataError, match=message):
        read_header(DicomFile(str(victim)))
    catalog = scan(ct_copy, progress=False)
    assert [s.path for s in catalog.skipped] == [str(victim)]


def test_trailing_elements_after_pixel_data_are_read_the_general_way(ct_copy):
    victim = sorted(ct_copy.iterdir())[0]
    ds = pydicom.dcmread(victim)
    ds.add_new(0xFFFCFFFC, "OB", b"\0" * 16)  # Data Set Trailing Padding
    ds.save_as(victim)
    header = read_header(DicomFile(str(victim)))
    assert header.pixel_keyword == "PixelData" and header.pixel_length == 512 * 512 * 2
    assert header.pixel_offset == pydicom.dcmread(victim)["PixelData"].file_tell


#: JPEG 2000 files decoded in parallel: lossless and lossy, signed and unsigned, 10-16 bits.
PARALLEL_JPEG2000 = {
    "MR2_J2KR.dcm",
    "MR2_J2KI.dcm",
    "RG3_J2KI.dcm",
    "JPEG2000.dcm",  # wider corpus
    "MR_small_jp2klossless.dcm",
    "I10",  # sample
}
#: Codestreams whose sign disagrees with the header, and colour: pylibjpeg's way.
NOT_PARALLEL_JPEG2000 = {
    "TOSHIBA_J2K_SIZ1_PixRep0.dcm",
    "TOSHIBA_J2K_SIZ0_PixRep1.dcm",
    "GDCMJ2K_TextGBR.dcm",
}


def _jpeg2000_files(data_root):
    from pydicom.uid import JPEG2000TransferSyntaxes

    return [
        file
        for file in _dicom_files(data_root)
        if read_header(file).transfer_syntax in JPEG2000TransferSyntaxes
    ]


@pytest.mark.slow  # decodes every JPEG 2000 frame twice
def test_jpeg2000_frames_equal_pylibjpeg_decoding_on_every_real_file(data_root):
    import numpy as np
    from pydicom.pixels import pixel_array

    from workbench.io.frames import FrameSource, decode_frame, jpeg2000_plugin

    files = _jpeg2000_files(data_root)
    assert len(files) >= 9
    names = {file.name for file in files}
    not_pylibjpeg = []
    for file in files:
        source = FrameSource.from_header(read_header(file))
        for index in range(source.number_of_frames):
            with file.open() as fp:
                plugin = jpeg2000_plugin(source, fp, index)
            assert plugin in (None, "imagecodecs", "pillow")
            if plugin is not None:
                not_pylibjpeg.append(file.name)
            expected = pixel_array(file.path, index=index, decoding_plugin="pylibjpeg")
            got = decode_frame(source, index)
            assert got.dtype == expected.dtype and np.array_equal(got, expected), (file, index)
    # Lossless and lossy, signed and unsigned, 10 to 16 bits go the parallel way...
    parallel = PARALLEL_JPEG2000 & names
    assert parallel and parallel <= set(not_pylibjpeg)
    # ...but not codestreams whose sign disagrees with the header, nor colour.
    assert {"TOSHIBA_J2K_SIZ1_PixRep0.dcm", "TOSHIBA_J2K_SIZ0_PixRep1.dcm"} <= names
    assert not NOT_PARALLEL_JPEG2000 & set(not_pylibjpeg)


@pytest.mark.slow  # decodes every JPEG 2000 frame twice
@pytest.mark.parametrize("decoder", ["imagecodecs", "pillow"])
def test_each_parallel_jpeg2000_decoder_equals_pylibjpeg(data_root, decoder, monkeypatch):
    """Whichever of imagecodecs and Pillow is installed, the values are pylibjpeg's."""
    import numpy as np
    from pydicom.pixels import pixel_array

    from workbench.io import frames

    if decoder == "pillow":  # as on a machine without imagecodecs
        monkeypatch.setattr(frames, "_imagecodecs_jpeg2k_decode", lambda: None)
    elif frames._imagecodecs_jpeg2k_decode() is None:
        pytest.skip("imagecodecs is not installed")
    used = set()
    for file in _jpeg2000_files(data_root):
        source = frames.FrameSource.from_header(read_header(file))
        with file.open() as fp:
            used.add(frames.jpeg2000_plugin(source, fp, 0))
        expected = pixel_array(file.path, index=0, decoding_plugin="pylibjpeg")
        got = frames.decode_frame(source, 0)
        assert got.dtype == expected.dtype and np.array_equal(got, expected), file
    assert used == {decoder, None}


@pytest.mark.parametrize(
    ("representation", "slope", "intercept"),
    [(0, 1, -32768), (0, 3, -1024), (1, 1, -1024), (1, -2, 7)],
    ids=["unsigned-shifted-to-int16", "slope-3", "signed-ct", "negative-slope"],
)
def test_integral_rescale_in_integers_equals_float64(tmp_path, representation, slope, intercept):
    """Integral slopes and intercepts are applied in the plan's integer type, wrapping
    modulo 2**bits where the stored value alone does not fit it: the values are those of
    the float64 computation."""
    source = next(iter_files(real_path("nema_ct1_ge")))
    ds = pydicom.dcmread(source.path)
    stored = ds.pixel_array.astype(np.int64)
    stored = stored - stored.min() + (40000 if representation == 0 else -2000)
    dtype = np.uint16 if representation == 0 else np.int16
    ds.PixelRepresentation = representation
    ds.BitsStored = 16
    ds.PixelData = stored.astype(dtype).tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for keyword in ("SmallestImagePixelValue", "LargestImagePixelValue", "PixelPaddingValue"):
        ds.pop(keyword, None)  # their VR follows the pixel representation changed here
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.save_as(tmp_path / "image.dcm")
    array = open_series([tmp_path / "image.dcm"])
    assert array.dtype.kind == "i"
    expected = stored.astype(np.float64) * slope + intercept
    np.testing.assert_array_equal(array[0].values, expected)
