"""An Orthanc-like PACS: SQL index over a file store, REST API and DIMSE node.

Examples
--------
>>> from workbench.pacs import Index, Config
>>> index = Index(Config(StorageDirectory="pacs-storage"))    # doctest: +SKIP
>>> index.import_path("dicom_folder/")                          # doctest: +SKIP
>>> index.find("Study", {"StudyDate": "20200101-20201231"})     # doctest: +SKIP
"""

from __future__ import annotations

from .config import Config
from .errors import (
    BadRequestError,
    InvalidInstanceError,
    PacsError,
    StorageFullError,
    UnknownResourceError,
)
from .ids import orthanc_id
from .incoming import IncomingInstance, Refused
from .index import ImportSummary, Index, IngestResult, ReconcileReport

__all__ = [
    "BadRequestError",
    "Config",
    "ImportSummary",
    "IncomingInstance",
    "Index",
    "IngestResult",
    "InvalidInstanceError",
    "PacsError",
    "ReconcileReport",
    "Refused",
    "StorageFullError",
    "UnknownResourceError",
    "orthanc_id",
    "serve",
]


def serve(config: Config | None = None, **overrides):
    """Start the index, REST API and DIMSE node in background threads; see
    :func:`workbench.pacs.server.serve`."""
    from .server import serve as _serve

    return _serve(config, **overrides)
