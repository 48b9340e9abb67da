"""Pixels of an instance over REST, as Orthanc serves them.

``preview`` and ``rendered`` (PNG, or JPEG when ``Accept`` asks for it) are for eyes: the
frame through its window (``rendered`` takes ``window-center``/``window-width``, ``width``/
``height``). ``image-uint8``, ``image-uint16`` and ``image-int16`` are the stored values
clamped to the type, as PNG; ``numpy`` the modality values (rescale applied unless
``?rescale=0``) as a ``.npy`` (``?compress``: ``.npz``); ``frames/{n}/raw`` the frame's bytes
as stored (the compressed codestream for encapsulated transfer syntaxes).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from PIL import Image
from pydicom.encaps import get_frame
from pydicom.pixels import apply_rescale, pixel_array

from ..errors import BadRequestError, PacsError, UnknownResourceError, UnsupportedMediaTypeError
from ..index import Index
from .deps import flag, get_index
from .instances import frame_count

router = APIRouter(prefix="/instances", tags=["instances"])
series_router = APIRouter(prefix="/series", tags=["series"])

#: Range of each ``image-*`` route's values (Orthanc clamps the stored values to it).
INTEGER_IMAGES = {"image-uint8": np.uint8, "image-uint16": np.uint16, "image-int16": np.int16}

#: Media type of a raw frame by transfer syntax family (Orthanc's choices).
RAW_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg", "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.90": "image/jp2", "1.2.840.10008.1.2.4.91": "image/jp2",
}  # fmt: skip


def _frame_index(index: Index, instance_id: str, frame: int) -> int:
    count = frame_count(index, instance_id)
    if not 0 <= frame < count:  # Orthanc: 400, parameter out of range
        raise BadRequestError(f"Instance {instance_id} has no frame {frame} "
                              f"(it has {count}, numbered from 0)")  # fmt: skip
    return frame


def _cannot(instance_id: str, exc: Exception) -> BadRequestError:
    from workbench.io.errors import DicomIOError

    # io errors name the stored file; clients know the instance, not our disk layout.
    reason = exc.reason if isinstance(exc, DicomIOError) else f"{type(exc).__name__}: {exc}"
    return BadRequestError(f"Cannot decode the pixels of instance {instance_id}: {reason}")


def _stored_values(path: Path, instance_id: str, frame: int) -> tuple[np.ndarray, pydicom.Dataset]:
    """The stored values of one frame (color as RGB), and the header they came with."""
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
        return pixel_array(path, index=frame), header
    except PacsError:
        raise
    except Exception as exc:  # a codec missing or a damaged frame: this request fails only
        raise _cannot(instance_id, exc) from exc


def _image(pixels: np.ndarray, request: Request, quality: int | None = None) -> Response:
    """PNG or JPEG by the request's ``Accept`` (PNG unless JPEG is preferred)."""
    kind = _accepted_image(request.headers.get("accept", ""))
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    if kind == "image/jpeg":
        image.save(buffer, format="JPEG", quality=quality or 90)
    else:
        image.save(buffer, format="PNG")
    return Response(buffer.getvalue(), media_type=kind)


def _accepted_image(accept: str) -> str:
    """``image/png`` or ``image/jpeg``, the first the ``Accept`` header allows."""
    if not accept.strip():
        return "image/png"
    ranges = []
    for position, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        ranges.append((-q, position, media.lower()))
    for _, _, media in sorted(ranges):
        if media in ("image/png", "image/*", "*/*"):
            return "image/png"
        if media in ("image/jpeg", "image/jpg"):
            return "image/jpeg"
    raise UnknownResourceError("Image format", f"{accept} (PNG or JPEG can be sent)")


def _positive(value: str | None, name: str, top: int = 8192) -> int | None:
    if value in (None, ""):
        return None
    if not value.isdigit() or not 0 < int(value) <= top:
        raise BadRequestError(f"{name} must be an integer between 1 and {top}")
    return int(value)


def _number(value: str | None, name: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise BadRequestError(f"{name} must be a number, got {value!r}") from None


def _rendered(index: Index, instance_id: str, frame: int, request: Request, *,
              size: tuple[int, int] | int | None = None,
              box: tuple[int, int] | None = None, smooth: bool = False,
              window: tuple[float, float] | None = None,
              quality: int | None = None) -> Response:  # fmt: skip
    from workbench.io.display import render_file
    from workbench.io.errors import DicomIOError

    frame = _frame_index(index, instance_id, frame)
    _accepted_image(request.headers.get("accept", ""))  # refuse before decoding
    try:
        pixels = render_file(index.instance_path(instance_id), frame, size=size, window=window)
    except (DicomIOError, ValueError, IndexError, NotImplementedError, RuntimeError) as exc:
        # Instances without displayable pixels (SR, PDF...) or pixel data no installed
        # decoder handles: the request cannot be served, the server is fine.
        raise _cannot(instance_id, exc) from exc
    if box is not None:
        pixels = _fit_box(pixels, box, smooth)
    return _image(pixels, request, quality)


def _fit_box(pixels: np.ndarray, box: tuple[int, int], smooth: bool) -> np.ndarray:
    """Scale to fit ``box`` (width, height) keeping the aspect ratio, as Orthanc's
    ``rendered`` does: nearest neighbour unless ``smooth``."""
    rows, columns = pixels.shape[:2]
    scale = min(box[0] / columns, box[1] / rows)
    size = (max(1, round(columns * scale)), max(1, round(rows * scale)))
    resample = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
    return np.asarray(Image.fromarray(pixels).resize(size, resample))


def _preview(index: Index, instance_id: str, frame: int, request: Request,
             size: str | None) -> Response:  # fmt: skip
    return _rendered(index, instance_id, frame, request, size=_positive(size, "size"))


@router.get("/{instance_id}/preview", summary="First frame for display (PNG, or JPEG by Accept)")
def preview(instance_id: str, request: Request, size: str | None = Query(None),
            index: Index = Depends(get_index)) -> Response:  # fmt: skip
    return _preview(index, instance_id, 0, request, size)


@router.get("/{instance_id}/frames/{frame}/preview", summary="One frame for display")
def frame_preview(instance_id: str, frame: int, request: Request,
                  size: str | None = Query(None),
                  index: Index = Depends(get_index)) -> Response:  # fmt: skip
    return _preview(index, instance_id, frame, request, size)


def _render_arguments(request: Request) -> dict:
    args = request.query_params
    center = _number(args.get("window-center"), "window-center")
    width = _number(args.get("window-width"), "window-width")
    if (center is None) != (width is None):
        raise BadRequestError("Give both window-center and window-width, or neither")
    if width is not None and width <= 0:
        raise BadRequestError("window-width must be positive")
    box_width = _positive(args.get("width"), "width")
    box_height = _positive(args.get("height"), "height")
    box = None
    if box_width or box_height:
        box = (box_width or 8192, box_height or 8192)
    return {
        "box": box,
        "smooth": flag(args.get("smooth")),
        "window": None if center is None else (center, width),
        "quality": _positive(args.get("quality"), "quality", 100),
    }


@router.get(
    "/{instance_id}/rendered",
    summary="First frame rendered (window-center, window-width, width, height)",
)
def rendered(instance_id: str, request: Request,
             index: Index = Depends(get_index)) -> Response:  # fmt: skip
    return _rendered(index, instance_id, 0, request, **_render_arguments(request))


@router.get("/{instance_id}/frames/{frame}/rendered", summary="One frame rendered")
def frame_rendered(instance_id: str, frame: int, request: Request,
                   index: Index = Depends(get_index)) -> Response:  # fmt: skip
    return _rendered(index, instance_id, frame, request, **_render_arguments(request))


def _integer_image(index: Index, instance_id: str, frame: int, kind: str) -> Response:
    frame = _frame_index(index, instance_id, frame)
    values, _ = _stored_values(index.instance_path(instance_id), instance_id, frame)
    dtype = INTEGER_IMAGES[kind]
    if values.ndim == 3:  # Orthanc: 415, unsupported media type
        raise UnsupportedMediaTypeError(f"{kind} is for grayscale images; instance "
                                        f"{instance_id} is in color (ask preview)")  # fmt: skip
    limits = np.iinfo(dtype)
    clamped = np.clip(values, limits.min, limits.max).astype(dtype)
    if dtype is np.int16:  # PNG has no signed samples: the bits are sent as they are
        clamped = clamped.view(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(clamped).save(buffer, format="PNG")
    return Response(buffer.getvalue(), media_type="image/png")


def _add_integer_routes(kind: str) -> None:
    @router.get(f"/{{instance_id}}/{kind}", summary=f"First frame's stored values as {kind}")
    def first(instance_id: str, index: Index = Depends(get_index)) -> Response:
        return _integer_image(index, instance_id, 0, kind)

    @router.get(f"/{{instance_id}}/frames/{{frame}}/{kind}", summary=f"One frame as {kind}")
    def one(instance_id: str, frame: int, index: Index = Depends(get_index)) -> Response:
        return _integer_image(index, instance_id, frame, kind)


for _kind in INTEGER_IMAGES:
    _add_integer_routes(_kind)


def _numpy_response(array: np.ndarray, compress: bool) -> Response:
    buffer = io.BytesIO()
    if compress:
        np.savez_compressed(buffer, array)
    else:
        np.save(buffer, array)
    return Response(buffer.getvalue(), media_type="application/octet-stream")


def _modality_frame(path: Path, instance_id: str, frame: int, rescale: bool) -> np.ndarray:
    """One frame as (rows, columns, samples): grayscale rescaled to float32 unless asked
    not to, color and unscaled values in their stored type."""
    values, header = _stored_values(path, instance_id, frame)
    if rescale and values.ndim == 2:
        values = apply_rescale(values, header).astype(np.float32)
    return values if values.ndim == 3 else values[:, :, np.newaxis]


def _instance_frames(index: Index, instance_id: str, path: Path, rescale: bool) -> list:
    return [_modality_frame(path, instance_id, n, rescale)
            for n in range(frame_count(index, instance_id))]  # fmt: skip


@router.get("/{instance_id}/numpy", summary="Every frame as a NumPy array (.npy)")
def instance_numpy(instance_id: str, compress: str | None = Query(None),
                   rescale: str | None = Query(None),
                   index: Index = Depends(get_index)) -> Response:  # fmt: skip
    frames = _instance_frames(index, instance_id, index.instance_path(instance_id),
                              rescale is None or flag(rescale))  # fmt: skip
    return _numpy_response(np.stack(frames), flag(compress))


@series_router.get(
    "/{series_id}/numpy", summary="Every frame of every instance, in series order (.npy)"
)
def series_numpy(series_id: str, compress: str | None = Query(None),
                 rescale: str | None = Query(None),
                 index: Index = Depends(get_index)) -> Response:  # fmt: skip
    index.resource("Series", series_id)  # 404 before any work
    do_rescale = rescale is None or flag(rescale)
    frames = [frame for instance_id, path in index.instance_files("Series", series_id)
              for frame in _instance_frames(index, instance_id, path, do_rescale)]  # fmt: skip
    if not frames:
        raise BadRequestError(f"Series {series_id} has no stored instance")
    if len({frame.shape for frame in frames}) > 1:
        raise BadRequestError(f"The frames of series {series_id} differ in size: "
                              "ask each instance's numpy")  # fmt: skip
    return _numpy_response(np.stack(frames), flag(compress))


@router.get("/{instance_id}/frames/{frame}/numpy", summary="One frame as a NumPy array")
def frame_numpy(instance_id: str, frame: int, compress: str | None = Query(None),
                rescale: str | None = Query(None),
                index: Index = Depends(get_index)) -> Response:  # fmt: skip
    frame = _frame_index(index, instance_id, frame)
    values = _modality_frame(index.instance_path(instance_id), instance_id, frame,
                             rescale is None or flag(rescale))  # fmt: skip
    return _numpy_response(values, flag(compress))


@router.get("/{instance_id}/frames/{frame}/raw", summary="One frame's bytes as stored")
def frame_raw(instance_id: str, frame: int, index: Index = Depends(get_index)) -> Response:
    frame = _frame_index(index, instance_id, frame)
    count = frame_count(index, instance_id)
    try:
        ds = pydicom.dcmread(index.instance_path(instance_id))
        syntax = ds.file_meta.TransferSyntaxUID
        data = ds.PixelData
        if syntax.is_encapsulated:
            payload = get_frame(data, frame, number_of_frames=count)
        else:
            length = (ds.Rows * ds.Columns * ds.get("SamplesPerPixel", 1)
                      * ds.BitsAllocated) // 8  # fmt: skip
            payload = data[frame * length : (frame + 1) * length]
    except PacsError:
        raise
    except (AttributeError, KeyError, ValueError, TypeError) as exc:
        raise _cannot(instance_id, exc) from exc
    return Response(
        bytes(payload), media_type=RAW_MEDIA_TYPES.get(str(syntax), "application/octet-stream")
    )
