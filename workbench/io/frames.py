"""Decode one frame at a time, through pydicom's pixel backends.

Compressed transfer syntaxes go to :func:`pydicom.pixels.pixel_array` with ``index=``, which
reads only that frame's fragments and hands them to pylibjpeg / pyjpegls / pydicom's RLE
decoder. Native little-endian frames are read directly from their byte offset (found while
reading the header), which is the same bytes pydicom would return without re-parsing the
header for every frame.

JPEG 2000 and several cores: pylibjpeg-openjpeg and Pillow hold the GIL while they decode,
so dask's threads would take turns. imagecodecs' OpenJPEG binding releases it, so grayscale
JPEG 2000 frames are decoded by imagecodecs whenever that gives exactly what pydicom's
default (pylibjpeg) gives (see :func:`jpeg2000_plugin`): one thread per frame, one frame per
dask thread. Without imagecodecs, the same frames go to pydicom's Pillow backend, whose
OpenJPEG build can at least decode each frame on several threads (``OPJ_NUM_THREADS``, set
here to the usable CPUs, up to 4, unless already set).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.encaps import get_frame
from pydicom.pixels import get_decoder, pixel_array
from pydicom.pixels.utils import get_j2k_parameters
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000TransferSyntaxes,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
)

from workbench.io.errors import (
    DicomIOError,
    MissingCodecError,
    PixelDataError,
    UnsupportedTransferSyntaxError,
)
from workbench.io.headers import InstanceHeader
from workbench.io.sources import DicomFile

# What to install for each family of compressed transfer syntax (pydicom names the plugins,
# users want the pip command).
_INSTALL_HINTS: list[tuple[set, str]] = [
    (set(JPEGTransferSyntaxes), "pylibjpeg pylibjpeg-libjpeg"),
    (set(JPEGLSTransferSyntaxes), "pyjpegls"),
    (set(JPEG2000TransferSyntaxes), "pylibjpeg pylibjpeg-openjpeg"),
]

#: What :meth:`FrameSource.from_header` reads from a header (and :func:`read_header` needs
#: to know the file for an instance and its pixel data complete): a header read with only
#: these is read faster than one for a series.
FRAME_KEYWORDS: tuple[str, ...] = (
    "SOPClassUID",
    "SOPInstanceUID",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
)

_FAST_NATIVE = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}
_MONOCHROME = {"MONOCHROME1", "MONOCHROME2"}


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.cache
def _imagecodecs_jpeg2k_decode():
    """imagecodecs' JPEG 2000 decoder (which releases the GIL), or ``None``."""
    try:
        import imagecodecs
    except ImportError:
        return None
    return imagecodecs.jpeg2k_decode if imagecodecs.JPEG2K.available else None


if _imagecodecs_jpeg2k_decode() is None:
    # Read by OpenJPEG each time a decoder is created; beyond ~4 threads a frame gains little.
    os.environ.setdefault("OPJ_NUM_THREADS", str(min(usable_cpus(), 4)))


@functools.cache
def _pillow_decodes_jpeg2000() -> bool:
    try:
        from PIL import features
    except ImportError:
        return False
    return bool(features.check_codec("jpg_2000"))


def check_decodable(transfer_syntax: UID, file: DicomFile | str | None = None) -> None:
    """Raise unless an installed pixel backend can decode ``transfer_syntax``.

    Raises
    ------
    UnsupportedTransferSyntaxError
        No pydicom decoder exists for the transfer syntax.
    MissingCodecError
        A decoder exists but the package it needs is not installed; the message names it.
    """
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        raise UnsupportedTransferSyntaxError(
            f"pixel data in transfer syntax '{transfer_syntax.name}' ({transfer_syntax}) "
            "cannot be decoded: no pixel data decoder supports it",
            file,
        ) from None
    if decoder.is_available:
        return
    hint = next((pkgs for uids, pkgs in _INSTALL_HINTS if transfer_syntax in uids), None)
    missing = "; ".join(decoder.missing_dependencies)
    raise MissingCodecError(
        f"cannot decode '{transfer_syntax.name}' pixel data: no decoder plugin is installed "
        f"({missing})" + (f"; install it with: pip install {hint}" if hint else ""),
        file,
    )


@dataclass(frozen=True)
class FrameSource:
    """Everything needed to read one file's frames again later, in any process.

    Built from an :class:`~workbench.io.headers.InstanceHeader`; small and picklable.
    """

    file: DicomFile
    transfer_syntax: str
    has_file_meta: bool
    number_of_frames: int
    pixel_offset: int | None
    frame_bytes: int | None
    fast_dtype: str | None
    bits_shift: int
    frame_shape: tuple[int, ...]
    photometric: str = ""
    bits_allocated: int = 0
    bits_stored: int = 0
    pixel_representation: int = 0

    @classmethod
    def from_header(cls, header: InstanceHeader) -> FrameSource:
        get = header.get
        fast_dtype, frame_bytes, shift = None, None, 0
        ts = header.transfer_syntax
        bits = int(get("BitsAllocated") or 0)
        stored = int(get("BitsStored") or bits)
        samples = int(get("SamplesPerPixel") or 1)
        signed = int(get("PixelRepresentation") or 0)
        photometric = header.text("PhotometricInterpretation")
        shape = (int(get("Rows") or 0), int(get("Columns") or 0))
        shape = (*shape, samples) if samples > 1 else shape
        if (
            ts in _FAST_NATIVE
            and header.pixel_keyword == "PixelData"
            and header.pixel_offset is not None
            and bits in (8, 16, 32)
            and (samples == 1 or int(get("PlanarConfiguration") or 0) == 0)
            and not photometric.endswith("_422")
        ):
            fast_dtype = f"<{'i' if signed == 1 else 'u'}{bits // 8}"
            frame_bytes = shape[0] * shape[1] * samples * bits // 8
            shift = bits - stored if 0 < stored < bits else 0
        return cls(
            file=header.file,
            transfer_syntax=str(ts),
            has_file_meta=header.has_file_meta,
            number_of_frames=header.number_of_frames,
            pixel_offset=header.pixel_offset,
            frame_bytes=frame_bytes,
            fast_dtype=fast_dtype,
            bits_shift=shift,
            frame_shape=shape,
            photometric=photometric.strip(),
            bits_allocated=bits,
            bits_stored=stored,
            pixel_representation=signed,
        )

    def decode(self, index: int, *, as_rgb: bool = True) -> np.ndarray:
        """Stored values of frame ``index`` (0-based); see :func:`decode_frame`."""
        return decode_frame(self, index, as_rgb=as_rgb)


def decode_frame(source: FrameSource, index: int, *, as_rgb: bool = True) -> np.ndarray:
    """Return stored values of frame ``index`` (0-based) of one file.

    Parameters
    ----------
    source : FrameSource
        The file and how its pixel data is encoded.
    index : int
        Frame number inside the file, starting at 0.
    as_rgb : bool
        Convert YBR colour to RGB (pydicom's default). Planar configuration is always
        undone, so colour frames are ``(rows, columns, 3)``.

    Raises
    ------
    PixelDataError
        The frame cannot be decoded or the pixel data is shorter than needed.
    MissingCodecError, UnsupportedTransferSyntaxError
        No installed decoder can handle the transfer syntax.
    """
    if not 0 <= index < source.number_of_frames:
        raise PixelDataError(
            f"frame index {index} out of range: the file has {source.number_of_frames} frames",
            source.file,
        )
    try:
        if source.fast_dtype is not None:
            return _read_native_frame(source, index)
        return _decode_with_pydicom(source, index, as_rgb)
    except DicomIOError:
        raise
    except Exception as exc:
        raise PixelDataError(f"cannot decode frame {index}: {exc}", source.file) from exc


def _read_native_frame(source: FrameSource, index: int) -> np.ndarray:
    assert source.frame_bytes is not None and source.pixel_offset is not None
    # Read via the file's own open() so ZIP members work the same way as plain files.
    with source.file.open() as fp:
        fp.seek(source.pixel_offset + index * source.frame_bytes)
        data = fp.read(source.frame_bytes)
    if len(data) < source.frame_bytes:
        raise PixelDataError(
            f"pixel data ends inside frame {index}: {len(data)} of {source.frame_bytes} bytes",
            source.file,
        )
    arr = np.frombuffer(data, dtype=source.fast_dtype).reshape(source.frame_shape).copy()
    if source.bits_shift:
        # Bits above (0028,0101) Bits Stored are not pixel data; clear them (and sign-extend
        # signed values), as pydicom does by default.
        np.left_shift(arr, source.bits_shift, out=arr)
        np.right_shift(arr, source.bits_shift, out=arr)
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)


def _decode_with_pydicom(source: FrameSource, index: int, as_rgb: bool) -> np.ndarray:
    ts = UID(source.transfer_syntax)
    check_decodable(ts, source.file)
    with source.file.open() as fp:
        if ts == DeflatedExplicitVRLittleEndian:
            # The whole stream is deflated: it must be inflated by a full read first.
            ds = pydicom.dcmread(fp)
            return _as_native(pixel_array(ds, index=index, raw=not as_rgb))
        kwargs = {} if source.has_file_meta else {"transfer_syntax_uid": ts}
        if ts in JPEG2000TransferSyntaxes:
            decoded = _decode_jpeg2000_in_parallel(source, fp, index, kwargs)
            if decoded is not None:
                return decoded
        return _as_native(pixel_array(fp, index=index, raw=not as_rgb, **kwargs))


def _decode_jpeg2000_in_parallel(source: FrameSource, fp, index: int, kwargs) -> np.ndarray | None:
    """The frame from a decoder that lets other threads work meanwhile, when one gives
    exactly pylibjpeg's values; ``None`` to leave it to pydicom's default."""
    frame = _exact_jpeg2000_frame(source, fp, index)
    if frame is None:
        return None
    decode = _imagecodecs_jpeg2k_decode()
    if decode is not None:
        try:
            decoded = decode(frame, numthreads=1)
        except Exception:
            decoded = None  # pylibjpeg may still manage (and has the last word on errors)
        if decoded is not None and decoded.shape == source.frame_shape:
            kind = "i" if source.pixel_representation else "u"
            return decoded.astype(f"{kind}{source.bits_allocated // 8}", copy=False)
    if _pillow_decodes_jpeg2000():
        try:
            return _as_native(pixel_array(fp, index=index, decoding_plugin="pillow", **kwargs))
        except Exception:
            fp.seek(0)
    return None


def jpeg2000_plugin(source: FrameSource, fp, index: int) -> str | None:
    """Which decoder :func:`decode_frame` uses for one JPEG 2000 frame.

    ``"imagecodecs"`` (releases the GIL) or else ``"pillow"`` (multi-threaded OpenJPEG) when
    the frame is one the decoder gives exactly as pylibjpeg does, else ``None`` (pydicom's
    default, pylibjpeg). ``fp`` is left at the start of the file.

    Parameters
    ----------
    source : FrameSource
        The file and its image pixel description.
    fp : file-like
        The open file.
    index : int
        Frame number inside the file, starting at 0.
    """
    if _exact_jpeg2000_frame(source, fp, index) is None:
        return None
    if _imagecodecs_jpeg2k_decode() is not None:
        return "imagecodecs"
    return "pillow" if _pillow_decodes_jpeg2000() else None


def _exact_jpeg2000_frame(source: FrameSource, fp, index: int) -> bytes | None:
    """The frame's codestream when its values need nothing beyond decoding, else ``None``.

    Other decoders than pylibjpeg return each sample as the codestream declares it (Pillow
    even widens it to 8 or 16 bits unsigned), and pydicom reinterprets it using (0028,0103)
    Pixel Representation. That is exact for one grayscale sample of at most 16 bits whose
    codestream agrees with the header on sign and precision. Files that disagree (some
    scanners write signed codestreams for unsigned images) and colour images stay with
    pylibjpeg. ``fp`` is left at the start of the file.
    """
    if not (
        source.pixel_offset is not None
        and len(source.frame_shape) == 2
        and source.photometric in _MONOCHROME
        and source.bits_allocated in (8, 16)
        and 0 < source.bits_stored <= source.bits_allocated
    ):
        return None
    try:
        fp.seek(source.pixel_offset)
        frame = get_frame(fp, index, number_of_frames=source.number_of_frames)
        codestream = get_j2k_parameters(frame)
    except Exception:
        return None
    finally:
        fp.seek(0)
    same_sign = codestream.get("is_signed") == bool(source.pixel_representation)
    same_precision = codestream.get("precision") == source.bits_stored
    return frame if same_sign and same_precision else None


def _as_native(arr: np.ndarray) -> np.ndarray:
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr
