"""Errors raised by :mod:`workbench.io`.

Every error carries the offending file in ``.path`` (``None`` when the problem is a whole
series rather than one file) and says what was wrong and, where there is one, the way out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


class NotAnImageError(PixelDataError):
    """The object is not an image: a presentation state, report, segmentation, document...

    ``kind`` says which (see :mod:`workbench.io.objects`).
    """

    def __init__(self, message: str, path: str | PathLike[str] | None = None, *, kind: str):
        super().__init__(message, path)
        self.kind = kind


class InconsistentSeriesError(DicomIOError):
    """The files given cannot form one array (different sizes, several series...)."""


@contextmanager
def blaming(path: str | PathLike[str] | object) -> Iterator[None]:
    """Turn any unexpected exception inside the block into an error naming ``path``.

    pydicom converts element values on first access, so a damaged value (impossible length,
    garbage in a number) surfaces wherever it is first used; converting it here keeps every
    failure a :class:`DicomIOError` that says which file was at fault.
    """
    try:
        yield
    except DicomIOError:
        raise
    except Exception as exc:
        raise InvalidDicomError(
            f"damaged DICOM header ({type(exc).__name__}: {exc})", str(path)
        ) from exc
