"""The DIMSE node: C-ECHO/STORE/FIND/MOVE/GET as SCP over the index, and as SCU to modalities.

:class:`DicomNode` is the entry point; the handlers live in :mod:`.scp`, the client side in
:mod:`.scu`, C-FIND translation in :mod:`.query` and re-encoding for retrieves in
:mod:`.transcode`.
"""

from __future__ import annotations

from .access import Modality
from .dicom_node import DicomNode
from .scu import DicomNetworkError, RetrieveResult, StoreResult

__all__ = ["DicomNetworkError", "DicomNode", "Modality", "RetrieveResult", "StoreResult"]
