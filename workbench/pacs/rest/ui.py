"""``/ui/``: the PACS's web page (:mod:`workbench.pacs.ui`), and ``/`` leading to it.

Behind the same authentication as every route. Redirects are relative, so they stay under
whatever prefix a proxy (jupyter-server-proxy, a reverse proxy) serves the server at.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse

from ..ui import STATIC
from .security import auth_required, user_name

# Some systems' mime tables lack it; browsers refuse modules served as text/plain.
mimetypes.add_type("text/javascript", ".js")

router = APIRouter(tags=["ui"], include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("ui/")


@router.get("/ui")
def ui_root() -> RedirectResponse:
    return RedirectResponse("ui/")


@router.get("/ui/features.json")
def features(request: Request) -> dict[str, Any]:
    """What the page may offer: the server's name, whether OHIF and the DICOM node run, and
    who is signed in when a password is asked (for the notebook snippet)."""
    state = request.app.state
    auth = auth_required(state.config)
    return {
        "name": state.config.Name,
        "ohif": bool(getattr(state, "ohif", False)),
        "node": state.node is not None,
        "auth": auth,
        "user": user_name(request.headers.get("authorization")) if auth else None,
    }


@router.get("/ui/{path:path}")
def ui_file(path: str) -> FileResponse:
    folder = STATIC.resolve()
    file = (folder / (path or "index.html")).resolve()
    if not file.is_relative_to(folder) or not file.is_file():
        raise HTTPException(404, f"No file {path!r} in the web page")
    # The files change with the package only; always revalidate so an upgrade shows at once.
    return FileResponse(file, headers={"Cache-Control": "no-cache"})
