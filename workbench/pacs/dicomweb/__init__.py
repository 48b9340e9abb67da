"""DICOMweb (PS3.18) over the index: QIDO-RS, WADO-RS, STOW-RS under ``/dicom-web``.

One module per service: :mod:`.qido` (search), :mod:`.wado` (retrieve, metadata, bulk data),
:mod:`.frames` (pixel data of frames), :mod:`.stow` (uploads). Beside them: :mod:`.targets`
(the UIDs of a URL found in the index), :mod:`.jsonmodel` (the DICOM JSON model of stored
files) and :mod:`.multipart` (media types, ``multipart/related`` bodies). The routes share
the REST API's application, and so its authentication.
"""

from __future__ import annotations

from fastapi import APIRouter

from . import frames, qido, stow, wado
from .urls import PREFIX

#: Every DICOMweb route, under :data:`PREFIX`.
router = APIRouter(prefix=PREFIX)
for _module in (qido, wado, frames, stow):
    router.include_router(_module.router)

__all__ = ["PREFIX", "router"]
