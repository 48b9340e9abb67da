"""Errors raised by :mod:`workbench.io`.

Every error carries the offending file in ``.path`` (``None`` when the problem is a whole
series rather than one file) and says what was wrong and, where there is one, the way out.
"""

from __future__ import annotations

from os import PathLike


class DicomIOError(Exception):
    """Base class for problems reading DICOM data.

    Parameters
    ----------
    message : str
        What went wrong, in words a user can act on.
    path : str or os.PathLike, optional
        The file (or ``archive.zip!member``) the problem was found in.
    """

    def __init__(self, message: str, path: str | PathLike[str] | None = None) -> None:
        self.path = None if path is None else str(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InvalidDicomError(DicomIOError):
    """The file is not DICOM, or its header cannot be parsed (for example it is truncated)."""


class MissingCodecError(DicomIOError):
    """The pixel data needs a decoder package that is not installed."""


class UnsupportedTransferSyntaxError(DicomIOError):
    """No installed or installable decoder handles the file's transfer syntax."""


class PixelDataError(DicomIOError):
    """The pixel data is absent, shorter than the image needs, or cannot be decoded."""


class InconsistentSeriesError(DicomIOError):
    """The files given cannot form one array (different sizes, several series...)."""
