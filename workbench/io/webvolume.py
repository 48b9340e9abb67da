"""Every frame of a DICOMweb series from one streamed request.

Computing a series frame by frame costs a request per frame: on the client an HTTP exchange
and a multipart answer to parse, on the server about as much, hundreds of times. When the
whole array is computed (see :mod:`workbench.io.wholearray`), one WADO-RS series retrieve
brings every instance as stored (``transfer-syntax=*``: compressed stays compressed, as
frames are asked for when a decoder is installed here). Each instance is read as it arrives,
with the header reader and frame decoders of local files, by a few threads while the next
ones arrive, and the whole answer is never held at once.

Frames the answer did not bring (an instance left out, one in a syntax nothing here
decodes, a part that is not DICOM, a server refusing such a request) are then fetched one
by one, as for any other computation.
"""

from __future__ import annotations

import io
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from workbench.io.dicomweb import DicomWebError, Resource
from workbench.io.errors import DicomIOError
from workbench.io.frames import FrameSource, check_decodable, decode_frame, usable_cpus
from workbench.io.headers import SERIES_KEYWORDS, read_header
from workbench.io.series import FrameStack

#: Every instance of a series, each as stored.
SERIES_AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'
# Service roots that answered a series retrieve with an error, in this process: their
# series are read frame by frame from then on.
_REFUSED: set[str] = set()


@dataclass(frozen=True)
class ReceivedInstance:
    """An instance received over DICOMweb and held in memory; read where a file would be."""

    url: str
    data: bytes = field(repr=False)

    def __str__(self) -> str:
        return self.url

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data)


def read_series(stack: FrameStack) -> np.ndarray:
    """Every frame of ``stack`` (modality values unless raw), from one series retrieve
    where possible, the rest frame by frame.

    The stack's sources are the :class:`~workbench.io.webseries.WebFrameSource` of one
    series on one server.

    Raises
    ------
    DicomWebError
        The server could not be reached, or refused access (401, 403) or knows no such
        series (404); or a frame fetched by itself failed.
    PixelDataError
        A frame fetched by itself cannot be decoded.
    """
    first = stack.sources[0].file
    root = Resource.parse(first.series_url).root
    values = np.empty(stack.shape, stack.dtype)
    wanted: dict[str, list[int]] = defaultdict(list)  # SOP Instance UID -> stack positions
    for i, (source_index, *_) in enumerate(stack.frames):
        wanted[stack.sources[source_index].file.url.rsplit("/", 1)[1]].append(i)
    read = np.zeros(len(values), dtype=bool)
    if root not in _REFUSED:
        with ThreadPoolExecutor(usable_cpus()) as pool:
            reading: list[Future] = []
            try:
                for number, (_, body) in enumerate(
                    first.client.parts(first.series_url, SERIES_AS_STORED), start=1
                ):
                    instance = ReceivedInstance(f"{first.series_url} (part {number})", body)
                    reading.append(pool.submit(_fill, stack, values, wanted, instance))
            except DicomWebError as exc:
                if exc.status is None or exc.status in (401, 403, 404):
                    raise
                _REFUSED.add(root)  # 406, 5xx, not multipart...: frame by frame
            finally:
                for future in reading:
                    read[future.result()] = True
    _fetch_frames(stack, values, np.flatnonzero(~read))
    return values


def _fill(
    stack: FrameStack, values: np.ndarray, wanted: dict[str, list[int]], instance
) -> list[int]:
    """Decode the frames of one received instance into ``values``; the stack positions
    filled (none when the instance is not one of the stack's, or cannot be read here: the
    frame-by-frame fetch then tries, and reports what is wrong)."""
    try:
        header = read_header(instance, keywords=SERIES_KEYWORDS)
        positions = wanted.get(header.text("SOPInstanceUID"))
        if not positions:
            return []
        check_decodable(header.transfer_syntax, instance)
    except DicomIOError:
        return []
    source = FrameSource.from_header(header)
    filled = []
    for i in positions:
        _, frame_index, _, _ = stack.frames[i]
        try:
            stored = decode_frame(source, frame_index, as_rgb=stack.plan.as_rgb)
            values[i] = stack.values(i, stored, instance)
        except DicomIOError:
            continue
        filled.append(i)
    return filled


def _fetch_frames(stack: FrameStack, values: np.ndarray, positions: np.ndarray) -> None:
    """Frames at ``positions`` fetched one request each, as many at once as the connection
    limit allows."""
    if not len(positions):
        return
    client = stack.sources[0].file.client
    pool = ThreadPoolExecutor(min(client.max_connections, len(positions)))
    try:
        for i, frame in zip(positions, pool.map(stack.read, positions), strict=True):
            values[i] = frame
    finally:
        pool.shutdown(cancel_futures=True)  # after an error, the rest are not fetched
