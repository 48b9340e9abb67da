"""Errors raised by the index; each maps to one HTTP status and one DIMSE status."""

from __future__ import annotations


class PacsError(Exception):
    """Base class of index errors. ``http_status`` and ``dimse_status`` say how to report it."""

    http_status = 500
    dimse_status = 0xC001


class InvalidInstanceError(PacsError, ValueError):
    """The data is not a DICOM instance we can store (no Part-10 header, missing UIDs...)."""

    http_status = 400
    dimse_status = 0xC210


class StorageFullError(PacsError):
    """The storage limits are reached and nothing can be recycled to make room."""

    http_status = 507
    dimse_status = 0xA700


class StorageWriteError(PacsError):
    """Files could not be made durable in the store (a failing or full disk); none of them
    was kept."""

    dimse_status = 0xA700  # Refused: out of resources


class DatabaseUnavailableError(PacsError):
    """The index database cannot be reached (down, restarting, unreachable); nothing that
    needed it was done, and asking again once it is back will succeed."""

    http_status = 503
    dimse_status = 0xA700  # Refused: out of resources


class UnknownResourceError(PacsError, KeyError):
    """No resource of that level has that ID."""

    http_status = 404

    def __init__(self, level: str, resource_id: str) -> None:
        super().__init__(f"Unknown {level.lower()} {resource_id!r}")
        self.level = level
        self.resource_id = resource_id

    def __str__(self) -> str:
        return self.args[0]


class BadRequestError(PacsError, ValueError):
    """A request names an unknown level, tag or malformed matching pattern."""

    http_status = 400
    dimse_status = 0xA900  # Identifier does not match SOP Class


class UnsupportedMediaTypeError(PacsError):
    """A resource cannot be given in the form asked (a color image as 16-bit grayscale)."""

    http_status = 415


class PayloadTooLargeError(PacsError):
    """An upload is larger than the server accepts."""

    http_status = 413
