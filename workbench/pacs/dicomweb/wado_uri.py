"""WADO-URI (PS3.18 9): ``/wado?requestType=WADO&studyUID=..&seriesUID=..&objectUID=..``.

The older viewers' single-object retrieve. ``contentType`` chooses the answer:
``application/dicom`` is the stored file (re-encoded when ``transferSyntax`` names another
syntax), ``image/jpeg`` (the default), ``image/png`` and ``image/gif`` a rendered frame with
``frameNumber``, ``windowCenter``/``windowWidth``, ``rows``/``columns``, ``region`` and
``imageQuality``, rendered as WADO-RS renders (:mod:`.rendered`). Served at ``/wado``, where
Orthanc serves it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from ..errors import BadRequestError
from ..index import Index
from .rendered import FORMATS, Rendering, render_image
from .targets import resolve, stored_files
from .wado import APPLICATION_DICOM, choose_syntax, encoded_instance, stored_syntax

router = APIRouter(tags=["dicomweb"])

PATH = "/wado"


def _required(request: Request, name: str) -> str:
    value = (request.query_params.get(name) or "").strip()
    if not value:
        raise BadRequestError(f"WADO-URI needs the {name} parameter")
    return value


def _content_type(request: Request) -> str:
    """The first of the ``contentType`` list this server produces (default image/jpeg)."""
    text = request.query_params.get("contentType") or "image/jpeg"
    for item in text.split(","):
        name = item.split(";")[0].strip().lower()
        if name == APPLICATION_DICOM or name in FORMATS:
            return name
    raise BadRequestError(
        f"contentType={text!r}: this server sends {APPLICATION_DICOM}, {', '.join(FORMATS)}"
    )


def _number(request: Request, name: str, *, integer: bool = False) -> float | None:
    text = request.query_params.get(name)
    if text in (None, ""):
        return None
    try:
        return int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise BadRequestError(f"{name}={text!r} must be {kind}") from None


def _rendering(request: Request, media: str, width: int, height: int) -> Rendering:
    center, window_width = _number(request, "windowCenter"), _number(request, "windowWidth")
    if (center is None) != (window_width is None):
        raise BadRequestError("windowCenter and windowWidth go together")
    rows, columns = (
        _number(request, "rows", integer=True),
        _number(request, "columns", integer=True),
    )
    region = None
    if request.query_params.get("region"):
        try:
            x1, y1, x2, y2 = (float(v) for v in request.query_params["region"].split(","))
        except ValueError:
            raise BadRequestError("region is x1,y1,x2,y2 (fractions of the image)") from None
        if not 0 <= x1 < x2 <= 1 or not 0 <= y1 < y2 <= 1:
            raise BadRequestError("region is x1,y1,x2,y2 with 0 <= x1 < x2 <= 1, same for y")
        region = (x1 * width, y1 * height, (x2 - x1) * width, (y2 - y1) * height)
    viewport = None
    if rows or columns:
        viewport = (int(columns or 8192), int(rows or 8192))
    quality = _number(request, "imageQuality", integer=True) or 90
    if not 1 <= quality <= 100:
        raise BadRequestError("imageQuality is an integer from 1 to 100")
    window = (center, window_width) if center is not None else None
    return Rendering(window, None, viewport, region, int(quality), media)


@router.get(PATH, summary="WADO-URI: one object, as DICOM or as an image")
def wado_uri(request: Request) -> Response:
    if (request.query_params.get("requestType") or "").strip().upper() != "WADO":
        raise BadRequestError("WADO-URI requests have requestType=WADO")
    index: Index = request.app.state.index
    target = resolve(
        index,
        _required(request, "studyUID"),
        _required(request, "seriesUID"),
        _required(request, "objectUID"),
    )
    media = _content_type(request)
    ((instance_id, path),) = stored_files(index, target)
    if media == APPLICATION_DICOM:
        stored = stored_syntax(index, instance_id, path)
        wanted = (request.query_params.get("transferSyntax") or "").strip()
        syntax = choose_syntax(stored, [wanted]) if wanted else stored
        if syntax == stored:
            return FileResponse(path, media_type=APPLICATION_DICOM)
        return Response(encoded_instance(path, syntax), media_type=APPLICATION_DICOM)
    frame = int(_number(request, "frameNumber", integer=True) or 1)
    if frame < 1:
        raise BadRequestError("frameNumber counts from 1")
    size = _image_size(path) if request.query_params.get("region") else (0, 0)
    rendering = _rendering(request, media, *size)
    return Response(
        render_image(path, frame - 1, rendering, name=target.instance), media_type=media
    )


def _image_size(path) -> tuple[int, int]:
    """(columns, rows) of a stored image, for a region given in fractions."""
    from .frames import frame_source

    shape = frame_source(path).frame_shape
    return (shape[1], shape[0]) if len(shape) >= 2 else (0, 0)
