"""WADO-RS frames (PS3.18 10.4.1.1.5): pixel data of chosen frames, decoded or as stored.

``.../frames/1,3,5`` answers ``multipart/related`` with one part per frame. Uncompressed
(``application/octet-stream``, Explicit VR Little Endian, the default) means the frame
decoded by the io layer (:func:`workbench.io.frames.decode_frame`: every codec it has),
colour as RGB, little-endian. The stored compressed bitstream is sent when the client takes
the stored syntax: ``transfer-syntax=*``, that syntax's UID, or its image media type
(``image/jpeg``, ``image/jls``, ``image/jp2``...). Frames are never re-encoded to another
compressed syntax.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydicom import uid as dicom_uid
from pydicom.encaps import get_frame

from workbench.io.errors import DicomIOError
from workbench.io.frames import FRAME_KEYWORDS, FrameSource, decode_frame
from workbench.io.headers import read_header
from workbench.io.sources import DicomFile

from ..errors import BadRequestError, UnknownResourceError
from ..index import Index
from .multipart import NotAcceptableError, Part, accepted, multipart_parts, multipart_response
from .targets import Target, resolve, stored_files
from .urls import dicomweb_root

router = APIRouter(tags=["dicomweb"])

OCTET_STREAM = "application/octet-stream"
UNCOMPRESSED = str(dicom_uid.ExplicitVRLittleEndian)
#: PS3.18 table 8.7.3-2: the media type of each compressed pixel data syntax.
COMPRESSED_MEDIA = {
    dicom_uid.JPEGBaseline8Bit: "image/jpeg",
    dicom_uid.JPEGExtended12Bit: "image/jpeg",
    dicom_uid.JPEGLossless: "image/jpeg",
    dicom_uid.JPEGLosslessSV1: "image/jpeg",
    dicom_uid.JPEGLSLossless: "image/jls",
    dicom_uid.JPEGLSNearLossless: "image/jls",
    dicom_uid.JPEG2000Lossless: "image/jp2",
    dicom_uid.JPEG2000: "image/jp2",
    dicom_uid.JPEG2000MCLossless: "image/jpx",
    dicom_uid.JPEG2000MC: "image/jpx",
    dicom_uid.RLELossless: "image/dicom-rle",
    dicom_uid.HTJ2KLossless: "image/jphc",
    dicom_uid.HTJ2KLosslessRPCL: "image/jphc",
    dicom_uid.HTJ2K: "image/jphc",
}


def frame_numbers(text: str) -> list[int]:
    """The 1-based frame numbers of a ``{frames}`` path segment (``1,3,5``).

    Raises
    ------
    BadRequestError
        If an item is not a positive integer.
    """
    numbers = []
    for item in text.replace("%2C", ",").split(","):
        item = item.strip()
        if not item.isdigit() or int(item) < 1:
            raise BadRequestError(
                f"Frame list {text!r}: frame numbers are positive integers separated by commas"
            )
        numbers.append(int(item))
    return numbers


@lru_cache(maxsize=256)
def frame_source(path: Path) -> FrameSource:
    """How a stored file's frames are read (kept: stored files never change)."""
    header = read_header(DicomFile(str(path)), keywords=FRAME_KEYWORDS)
    return FrameSource.from_header(header)


def decoded_frame_bytes(source: FrameSource, index: int) -> bytes:
    """Frame ``index`` (0-based) decoded: little-endian samples, colour as RGB, 1-bit data
    packed as PS3.5 8.1.1 stores it."""
    array = decode_frame(source, index)
    if source.bits_allocated == 1:
        return np.packbits(array.astype(np.uint8).ravel(), bitorder="little").tobytes()
    # tobytes() copies in C order whatever the layout: one copy, not two.
    return array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def stored_frame_bytes(source: FrameSource, index: int) -> bytes:
    """The compressed bitstream of frame ``index`` (0-based) as stored."""
    if source.pixel_offset is None:
        raise BadRequestError(f"{source.file.name}: the pixel data cannot be located")
    with source.file.open() as handle:
        handle.seek(source.pixel_offset)
        return get_frame(handle, index, number_of_frames=source.number_of_frames)


def _choose(request: Request, stored: str) -> tuple[str, str]:
    """``(content type of each part, syntax)``: what the client takes, stored first."""
    compressed = dicom_uid.UID(stored).is_compressed
    natural = COMPRESSED_MEDIA.get(stored, OCTET_STREAM) if compressed else OCTET_STREAM
    for media in multipart_parts(accepted(request), OCTET_STREAM):
        wanted = media.transfer_syntax
        if media.matches(OCTET_STREAM) and media.name != "image/*":
            if wanted in (None, UNCOMPRESSED) or (not compressed and wanted == "*"):
                return OCTET_STREAM, UNCOMPRESSED
            if wanted in ("*", stored):
                return OCTET_STREAM, stored
        elif compressed and media.matches(natural) and wanted in (None, "*", stored):
            return natural, stored
    offered = f"{OCTET_STREAM}" + (
        f" or {natural} ({dicom_uid.UID(stored).name})" if compressed else ""
    )
    raise NotAcceptableError(
        f"Frames of this instance are sent as {offered}; the request "
        f"accepts {request.headers.get('accept')}"
    )


def frames_response(request: Request, target: Target, numbers: list[int] | None) -> Response:
    """Frames ``numbers`` (1-based; ``None``: all) of an instance, one part each."""
    index: Index = request.app.state.index
    (_, path), *_ = stored_files(index, target)
    try:
        source = frame_source(path)
    except DicomIOError as exc:
        raise BadRequestError(
            f"Instance {target.instance} has no readable pixel data: {exc.reason}"
        ) from exc
    if not source.frame_shape or not source.frame_shape[0]:
        raise BadRequestError(f"Instance {target.instance} has no pixel data")
    count = source.number_of_frames
    numbers = numbers or list(range(1, count + 1))
    missing = [n for n in numbers if n > count]
    if missing:
        raise UnknownResourceError(
            "Frame", f"{missing[0]} of instance {target.instance}, which has {count} frame(s)"
        )
    content_type, syntax = _choose(request, source.transfer_syntax)
    # Native frames decode by reading them straight from the file (io's fast path).
    read = decoded_frame_bytes if syntax == UNCOMPRESSED else stored_frame_bytes
    try:
        first = read(source, numbers[0] - 1)
    except DicomIOError as exc:
        raise BadRequestError(
            f"Cannot decode frame {numbers[0]} of instance {target.instance}: {exc.reason}"
        ) from exc

    part_type = f"{content_type}; transfer-syntax={syntax}"
    base = f"{dicomweb_root(request)}/{target.path}"
    first_part = Part(part_type, [first], f"{base}/frames/{numbers[0]}")

    def parts() -> Iterator[Part]:
        yield first_part
        for number in numbers[1:]:
            yield Part(part_type, [read(source, number - 1)], f"{base}/frames/{number}")

    # One frame is at hand already: sent in one piece.
    answer = [first_part] if len(numbers) == 1 else parts()
    return multipart_response(answer, content_type, transfer_syntax=syntax)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
    summary="WADO-RS: frames of an instance",
)
def retrieve_frames(
    study: str, series: str, instance: str, frames: str, request: Request
) -> Response:
    numbers = frame_numbers(frames)
    return frames_response(
        request, resolve(request.app.state.index, study, series, instance), numbers
    )
