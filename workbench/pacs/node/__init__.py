"""The DIMSE node: C-ECHO/STORE/FIND/MOVE/GET as SCP over the index, and as SCU to modalities.

:class:`DicomNode` is the entry point; the handlers live in :mod:`.scp`, the client side in
:mod:`.scu`, C-FIND translation in :mod:`.query` and re-encoding for retrieves in
:mod:`.transcode`.

The names below are imported when first asked for: importing a module of this package (the
shell commands of :mod:`.cli`, say) does not load pynetdicom (~90 ms) until it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .access import Modality
    from .dicom_node import DicomNode
    from .scu import DicomNetworkError, RetrieveResult, StoreResult

_HOMES = {
    "DicomNetworkError": ".scu",
    "DicomNode": ".dicom_node",
    "Modality": ".access",
    "RetrieveResult": ".scu",
    "StoreResult": ".scu",
}

__all__ = ["DicomNetworkError", "DicomNode", "Modality", "RetrieveResult", "StoreResult"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # found directly from now on
    return value
