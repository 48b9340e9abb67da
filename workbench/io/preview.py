"""One file's frames ready to render, without building a series around it.

Previews, thumbnails and a PACS's rendered images show one frame of one file. Building a
one-file series for that (:func:`~workbench.io.series.build_from_headers`: the file's full
header, every attribute, the volume's geometry and coordinates) cost more than decoding,
windowing and encoding the frame together. :class:`FileDisplay` reads the header once,
keeping only what display needs (:data:`DISPLAY_KEYWORDS`), and takes the frame plan, the
modality transform, the display tables and the window presets from the functions the
series uses, so a frame renders to the pixels :func:`~workbench.io.open_series` and
:func:`~workbench.io.display.render` give it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from os import PathLike
from typing import Any

import numpy as np

from workbench.io.catalog import header_kind
from workbench.io.display import DisplayTables, _with_frame_values, render
from workbench.io.errors import NotAnImageError, PixelDataError, blaming
from workbench.io.frames import check_decodable
from workbench.io.geometry import FrameInfo, stack_geometry
from workbench.io.headers import SERIES_KEYWORDS, read_header
from workbench.io.objects import not_an_image_message
from workbench.io.series import (
    FrameStack,
    _describe_instance,
    _display_tables,
    _plan,
    _summarize,
    display_values,
)
from workbench.io.sources import DicomFile

#: What showing a file's frames reads from its header: what a series reads from each file,
#: and the first file's LUTs, palette and presentation attributes.
DISPLAY_KEYWORDS: tuple[str, ...] = (
    *SERIES_KEYWORDS,
    "ModalityLUTSequence",
    "VOILUTSequence",
    "VOILUTFunction",
    "PresentationLUTShape",
    "PixelPresentation",
    *(
        f"{prefix}{colour}PaletteColorLookupTable{part}"
        for colour in ("Red", "Green", "Blue", "Alpha")
        for prefix, part in (("", "Descriptor"), ("", "Data"), ("Segmented", "Data"))
    ),
)
# (0028,1201) Red Palette Color Lookup Table Data... and (0028,3010) VOI LUT Sequence:
# a data set over the header is only built for the tables when the file has one.
_VOI_LUT_SEQUENCE = 0x00283010


@dataclass(frozen=True, eq=False)
class FileDisplay:
    """How to show the frames of one file: its frames' modality values and what
    :func:`~workbench.io.display.render` needs besides them.

    Read with :meth:`read`; holds no pixel data (frames are read from the file when
    rendered), so it can be kept for a file that does not change.

    Attributes
    ----------
    stack : workbench.io.series.FrameStack
        The file's frames in file order, read with the modality transform applied.
    attrs : dict
        The attributes :func:`~workbench.io.display.render` reads, shared by the frames.
    per_frame : dict of numpy.ndarray
        Each frame's window and rescale (enhanced multi-frame objects have their own).
    infos : tuple of FrameInfo
        What each frame's header says.
    presets : bool
        Whether the file has window presets of its own, besides its frames'.
    """

    stack: FrameStack
    attrs: dict[str, Any]
    per_frame: dict[str, np.ndarray]
    infos: tuple[FrameInfo, ...]
    presets: bool

    @classmethod
    def read(cls, path: str | PathLike[str]) -> FileDisplay:
        """Read what showing the frames of ``path`` needs (its header only).

        Raises
        ------
        workbench.io.errors.NotAnImageError
            The file is a presentation state, report... (no image).
        workbench.io.errors.DicomIOError
            The file cannot be read, has no pixel data, or no installed decoder reads it.
        """
        file = DicomFile(os.fspath(path))
        header = read_header(
            file,
            keywords=DISPLAY_KEYWORDS,
            every_keyword=True,
            check_pixels=False,
            check_truncation=True,
        )
        kind = header_kind(header)
        if kind is not None:
            what = f"instance {header.text('SOPInstanceUID')}"
            message = not_an_image_message(kind, what, header.text("SOPClassUID"))
            raise NotAnImageError(message, file, kind=kind)
        instance = _summarize(header, describe=False)
        if instance.source is None:
            _describe_instance(instance, header)
            raise PixelDataError(
                f"no pixel data to open: the instance is a {instance.sop_class} "
                f"({instance.label}); it holds no image",
                file,
            )
        check_decodable(header.transfer_syntax, file)
        infos = instance.frames
        with blaming(file):
            plan = _plan(header, infos, raw=False)
            attrs = display_values(header, infos[0], plan)
            tables = DisplayTables()
            if attrs["StoredPhotometricInterpretation"] == "PALETTE COLOR" or (
                _VOI_LUT_SEQUENCE in header.elements
            ):
                tables = _display_tables(header.dataset, raw=False)
        frames = [
            (0, index, info.rescale_slope, info.rescale_intercept)
            for index, info in enumerate(infos)
        ]
        per_frame = {
            "window_center": np.array([_nan(i.window_center) for i in infos], dtype=float),
            "window_width": np.array([_nan(i.window_width) for i in infos], dtype=float),
            "rescale_slope": np.array([i.rescale_slope for i in infos]),
            "rescale_intercept": np.array([i.rescale_intercept for i in infos]),
        }
        attrs.update(
            RescaleSlope=infos[0].rescale_slope,
            RescaleIntercept=infos[0].rescale_intercept,
            **tables.as_attrs(),
        )
        stack = FrameStack([instance.source], frames, plan)
        presets = header.floats("WindowCenter") is not None
        return cls(stack, attrs, per_frame, tuple(infos), presets)

    @property
    def number_of_frames(self) -> int:
        return len(self.stack)

    def frame_attrs(self, frame: int) -> dict[str, Any]:
        """The attributes to render frame ``frame`` (0-based, in the file) with: its own
        window and rescale first (see :func:`~workbench.io.display.frame_attrs`)."""
        attrs = dict(self.attrs)
        own = self.infos[frame]
        if (
            not self.presets
            and len(self.infos) > 1
            and None in (own.window_center, own.window_width)
        ):
            # A frame without a window of its own shows the series' presets, which a
            # multi-frame file without any takes from its first frame in space order.
            first = self.infos[stack_geometry(list(self.infos)).order[0]]
            known = first.window_center is not None and first.window_width is not None
            attrs["WindowCenter"] = [first.window_center] if known else []
            attrs["WindowWidth"] = [first.window_width] if known else []
        return _with_frame_values(attrs, self.per_frame, frame)

    def render(
        self,
        frame: int = 0,
        *,
        window: tuple[float, float] | None = None,
        voi_function: str | None = None,
    ) -> np.ndarray:
        """Frame ``frame`` (0-based) as uint8 pixels ready to draw (see
        :func:`~workbench.io.display.render_file`).

        Raises
        ------
        IndexError
            ``frame`` is beyond the file's frames.
        workbench.io.errors.DicomIOError
            The frame cannot be decoded.
        """
        count = self.number_of_frames
        if not 0 <= frame < count:
            where = self.stack.sources[0].file
            raise IndexError(f"{where}: frame {frame} out of range; the file has {count} frames")
        attrs = self.frame_attrs(frame)
        if voi_function:
            attrs["VOILUTFunction"] = voi_function
        return render(self.stack.read(frame), attrs, window=window)


def _nan(value: float | None) -> float:
    return np.nan if value is None else value
