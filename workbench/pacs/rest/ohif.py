"""``/ohif/``: the OHIF viewer on this server's DICOMweb, and a link to it from each study.

Mounted by :func:`~workbench.pacs.rest.app.create_app` when an OHIF build is installed
(:func:`workbench.pacs.ohif.dist_folder`). Behind the same authentication as every route.
Behind a proxy that says its path prefix (``X-Forwarded-Prefix``, as jupyter-server-proxy
does), the viewer's pages and configuration name that prefix.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from .. import ohif
from ..config import Config
from ..index import Index
from .deps import get_config, get_index

# Debian's /etc/mime.types may lack it; browsers compile wasm only with this type.
mimetypes.add_type("application/wasm", ".wasm")


#: What a proxy's path prefix may hold (it is written into pages and scripts).
_PREFIX = re.compile(r"(/[A-Za-z0-9._~%+@:-]+)*")


def proxy_prefix(request: Request) -> str:
    """The path a proxy serves this server under, from its ``X-Forwarded-Prefix`` header
    (jupyter-server-proxy sends it: ``/user/me/workbench-pacs``), or ``""``.

    Only the pages answered to that request change, so a client can only mislead itself;
    anything but plain path segments is ignored.
    """
    prefix = request.headers.get("x-forwarded-prefix", "").rstrip("/")
    return prefix if _PREFIX.fullmatch(prefix) else ""


def ohif_router(dist: Path) -> APIRouter:
    """The routes serving the OHIF build in ``dist``."""
    dist = dist.resolve()
    rebase = ohif.is_root_build(dist)
    router = APIRouter(tags=["ohif"])

    @router.get("/ohif", include_in_schema=False)
    def ohif_root() -> RedirectResponse:
        return RedirectResponse(ohif.MOUNT)

    @router.get(f"{ohif.MOUNT}app-config.js", summary="OHIF configuration for this server")
    def app_config(request: Request, config: Config = Depends(get_config)) -> Response:
        return Response(
            ohif.app_config(config.Name, proxy_prefix(request)),
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache"},
        )

    @router.get(ohif.MOUNT + "{path:path}", summary="The OHIF viewer")
    def ohif_file(path: str, request: Request) -> Response:
        file = (dist / path).resolve()
        if not file.is_relative_to(dist) or (path and not file.is_file()):
            if "." in Path(path).name:
                raise HTTPException(404, f"No file {path!r} in the OHIF build")
            # A route of the single-page app (/ohif/viewer?...): the page decides.
            file = dist / "index.html"
        elif not path:
            file = dist / "index.html"
        if rebase and ohif.needs_rebasing(file):
            mount = proxy_prefix(request) + ohif.MOUNT
            content = ohif.rebased(file, file.stat().st_mtime_ns, mount)
            media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            return Response(content, media_type=media_type)
        return FileResponse(file)

    @router.get(
        "/studies/{study_id}/ohif",
        summary="Open the study in OHIF",
        tags=["studies"],
        status_code=307,
    )
    def open_study(study_id: str, index: Index = Depends(get_index)) -> RedirectResponse:
        uid = index.main_dicom_tags("Study", study_id).get("StudyInstanceUID")
        if not uid:
            raise HTTPException(404, f"Study {study_id} has no StudyInstanceUID")
        return RedirectResponse(ohif.viewer_path(uid), status_code=307)

    return router
