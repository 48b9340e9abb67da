"""DICOMweb (PS3.18) over the index: QIDO-RS, WADO-RS, STOW-RS under ``/dicom-web``, WADO-URI.

One module per service: :mod:`.qido` (search), :mod:`.wado` (retrieve, metadata, bulk data),
:mod:`.frames` (pixel data of frames), :mod:`.rendered` (rendered and thumbnail images),
:mod:`.stow` (uploads), and :mod:`.wado_uri` (the older WADO-URI at ``/wado``). Beside
them: :mod:`.targets` (the UIDs of a URL found in the index), :mod:`.jsonmodel` (the DICOM
JSON model of stored files) and :mod:`.multipart` (media types, ``multipart/related``
bodies). The routes share the REST API's application, and so its authentication.
"""

from __future__ import annotations

from fastapi import APIRouter

from . import frames, qido, rendered, stow, wado, wado_uri
from .urls import PREFIX

#: Every DICOMweb route, under :data:`PREFIX`.
router = APIRouter(prefix=PREFIX)
for _module in (qido, wado, frames, rendered, stow):
    router.include_router(_module.router)
#: WADO-URI, at ``/wado`` beside ``/dicom-web`` as in Orthanc.
uri_router = wado_uri.router

__all__ = ["PREFIX", "router", "uri_router"]
