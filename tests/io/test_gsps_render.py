"""Our rendering of image + state against DCMTK's rendering of image + the GSPS we wrote.

``dcmp2pgm`` applies a presentation state's VOI, presentation LUT and spatial transformation
to the whole image; ``dcmpsprt`` (print rendering) also applies the Displayed Area, so it
checks zoom/pan and scale-to-fit areas. Both must agree with
:func:`workbench.io.gsps.render` to within one grey level of rounding.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.data import uncompressed_copy
from tests.peers import require_tool
from workbench.io import gsps, open_series
from workbench.io.display import frame_attrs
from workbench.io.presentation import DisplaySettings, ImageReference, PresentationState, VoiLut

CT_SERIES = "series_ct_philips_ingenuity_5mm"
MR_SERIES = "series_mr_siemens_t1_sag_HFS"
CR_MONO1 = "cr_agfa_mono1_tiny/6154"
VOI_LUT_IMAGE = "voi_lut_ihe/vlut_04.dcm"

#: Largest allowed difference in grey levels (rounding of the 8- or 12-bit outputs).
TOLERANCE = 2

#: A print configuration with one local printer that accepts images of any size, so that
#: dcmpsprt renders the displayed area at one bitmap pixel per image pixel.
PRINT_CONFIG = """\
[[GENERAL]]
[DATABASE]
Directory = db
[PRINT]
Directory = spool
MinPrintResolution = 1\\1
MaxPrintResolution = 8192\\8192
[[COMMUNICATION]]
[PRINTER_1]
Aetitle = PRINT
Description = bitmap renderer
Hostname = localhost
Port = 10005
Type = LOCALPRINTER
DisplayFormat = 1,1
FilmSizeID = 8INX10IN
MagnificationType = NONE
Supports12Bit = true
SupportsPresentationLUT = true
"""


def image_path(sample_data: Path, source: str) -> Path:
    path = sample_data / source
    return sorted(p for p in path.iterdir() if p.is_file())[0] if path.is_dir() else path


def write_state(image: Path, display: DisplaySettings, out: Path) -> None:
    ds = pydicom.dcmread(image, stop_before_pixels=True)
    reference = ImageReference(str(ds.SOPClassUID), str(ds.SOPInstanceUID))
    state = PresentationState(
        "Rendering check", display=display, images=[reference], creator="Test^Render"
    )
    gsps.write(state, [ds]).save_as(out, enforce_file_format=True)


def ours(image: Path, display: DisplaySettings) -> np.ndarray:
    array = open_series(image)
    return gsps.render(array[0].values, frame_attrs(array, 0), display).astype(int)


def dcmp2pgm(image: Path, state: Path, out: Path) -> np.ndarray:
    subprocess.run(
        [require_tool("dcmp2pgm"), "-p", str(state), str(image), str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return np.asarray(Image.open(out)).astype(int)


def dcmpsprt(image: Path, state: Path, workdir: Path) -> np.ndarray:
    """The Hardcopy Grayscale Image DCMTK renders for printing, scaled to 8 bits."""
    (workdir / "db").mkdir()
    (workdir / "spool").mkdir()
    (workdir / "print.cfg").write_text(PRINT_CONFIG)
    subprocess.run(
        [require_tool("dcmpsprt"), "-c", "print.cfg", "+p", str(state), str(image)],
        check=True,
        capture_output=True,
        timeout=60,
        cwd=workdir,
    )
    (hardcopy,) = (workdir / "db").glob("HG_*.dcm")
    ds = pydicom.dcmread(hardcopy)
    top = 2 ** int(ds.BitsStored) - 1
    return np.rint(ds.pixel_array.astype(float) * 255 / top).astype(int)


def assert_same_pixels(theirs: np.ndarray, mine: np.ndarray) -> None:
    assert theirs.shape == mine.shape
    difference = np.abs(theirs - mine)
    assert difference.max() <= TOLERANCE, f"max difference {difference.max()}"
    # Not a blank or saturated picture agreeing by accident.
    assert theirs.std() > 5


@pytest.mark.parametrize(
    ("source", "display"),
    [
        (CT_SERIES, DisplaySettings()),
        (CT_SERIES, DisplaySettings(window=(40, 400))),
        (CT_SERIES, DisplaySettings(window=(-600, 1500), invert=True)),
        (CT_SERIES, DisplaySettings(window=(40, 400), rotation=90)),
        (CT_SERIES, DisplaySettings(window=(40, 400), rotation=270, flip=True)),
        (
            CT_SERIES,
            DisplaySettings(
                voi_lut=VoiLut(
                    -1024,
                    12,
                    tuple(int(4095 * (i / 3071) ** 0.5) for i in range(3072)),
                    "square root",
                )
            ),
        ),
        (MR_SERIES, DisplaySettings(window=(300, 600), rotation=180, flip=True)),
        (CR_MONO1, DisplaySettings()),
        (CR_MONO1, DisplaySettings(invert=True, rotation=90)),
        (VOI_LUT_IMAGE, DisplaySettings()),
    ],
    ids=lambda v: v if isinstance(v, str) else repr(v)[16:70],
)
def test_dcmp2pgm_shows_what_we_show(sample_data, tmp_path, source, display):
    image = uncompressed_copy(image_path(sample_data, source), tmp_path / "image")
    write_state(image, display, tmp_path / "state.dcm")
    theirs = dcmp2pgm(image, tmp_path / "state.dcm", tmp_path / "dcmtk.pgm")
    assert_same_pixels(theirs, ours(image, display))


@pytest.mark.parametrize(
    ("source", "display"),
    [
        (CT_SERIES, DisplaySettings(window=(-600, 1500), zoom=2.0, center=(180, 300))),
        (
            CT_SERIES,
            DisplaySettings(window=(-600, 1500), zoom=3.0, center=(100.5, 400), rotation=90),
        ),
        (
            CT_SERIES,
            DisplaySettings(
                window=(40, 400), zoom=1.5, center=(300, 120), rotation=270, flip=True, invert=True
            ),
        ),
        (CT_SERIES, DisplaySettings(window=(40, 400), area=(100, 50, 300, 400))),
        (
            CT_SERIES,
            DisplaySettings(window=(40, 400), area=(100, 50, 300, 400), rotation=180, flip=True),
        ),
        (MR_SERIES, DisplaySettings(window=(300, 600), area=(-20, 10, 150, 200), rotation=90)),
        (CR_MONO1, DisplaySettings(area=(2, 3, 10, 14), rotation=90, flip=True)),
    ],
    ids=lambda v: v if isinstance(v, str) else repr(v)[16:70],
)
def test_dcmpsprt_shows_the_same_displayed_area(sample_data, tmp_path, source, display):
    image = uncompressed_copy(image_path(sample_data, source), tmp_path / "image")
    write_state(image, display, tmp_path / "state.dcm")
    theirs = dcmpsprt(image, tmp_path / "state.dcm", tmp_path)
    assert_same_pixels(theirs, ours(image, display))


def test_displayed_area_is_really_applied(sample_data):
    """Zoom and area change what is shown (so the checks above compare something)."""
    image = image_path(sample_data, CT_SERIES)
    whole = ours(image, DisplaySettings(window=(40, 400)))
    area = ours(image, DisplaySettings(window=(40, 400), area=(100, 50, 300, 400)))
    assert whole.shape == (512, 512) and area.shape == (351, 201)
    np.testing.assert_array_equal(area, whole[50:401, 100:301])
    panned = ours(image, DisplaySettings(window=(40, 400), zoom=2, center=(180, 300)))
    assert panned.shape == (513, 513)
    # The middle of the output is the requested centre; beyond the image is black.
    assert panned[256, 256] == whole[300, 180]
    assert (panned[-40:, :] == 0).all()
