"""WADO-RS rendered and thumbnail resources (PS3.18 10.4.1.1.3/4): images for display.

Every frame is rendered by the io layer (:class:`workbench.io.preview.FileDisplay`, as
:func:`workbench.io.display.render_file` renders: each codec it decodes, modality and VOI
LUTs, MONOCHROME1, palette and YBR colour), so whatever the viewer shows, these resources
show; what a stored file's display needs from its header is kept (:func:`file_display`).
Query parameters: ``window=center,width[,function]`` replaces the file's window;
``viewport=vw,vh[,sx,sy,sw,sh]`` crops the source region ``sx,sy,sw,sh`` (a negative
``sw``/``sh`` flips) and scales the result to fit ``vw`` x ``vh``; ``quality`` (1-100) sets
the JPEG quality. Media types: ``image/jpeg`` (default),
``image/png``, ``image/gif``.

An instance is rendered at its first frame, a frame list frame by frame. A study or series
is rendered as its representative image (the middle instance that has pixels), which is
also its thumbnail; ``multipart/related`` asks for every instance instead. Thumbnails fit
in :data:`THUMBNAIL_SIZE` unless a viewport says otherwise.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from PIL import Image

from workbench.io.errors import DicomIOError
from workbench.io.preview import FileDisplay

from ..errors import BadRequestError, UnknownResourceError
from ..index import Index
from .frames import frame_numbers
from .multipart import NotAcceptableError, Part, accepted, multipart_parts, multipart_response
from .targets import Target, resolve, stored_files

log = logging.getLogger(__name__)
router = APIRouter(tags=["dicomweb"])

#: Media type → Pillow format of the images served.
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF"}
DEFAULT_TYPE = "image/jpeg"
#: Longest side of a thumbnail when the request gives no viewport.
THUMBNAIL_SIZE = 128
DEFAULT_QUALITY = 90
_FUNCTIONS = {"linear": "LINEAR", "linear-exact": "LINEAR_EXACT", "sigmoid": "SIGMOID"}


@dataclass(frozen=True)
class Rendering:
    """How to render: the parameters of a rendered request, checked.

    Attributes
    ----------
    window : (center, width) or None
    function : str or None
        VOI LUT Function of ``window``.
    viewport : (width, height) or None
    region : (sx, sy, sw, sh) or None
        Source region in pixels; negative sizes flip.
    quality : int
    media : str
        ``image/jpeg``, ``image/png`` or ``image/gif``.
    """

    window: tuple[float, float] | None = None
    function: str | None = None
    viewport: tuple[int, int] | None = None
    region: tuple[float, float, float, float] | None = None
    quality: int = DEFAULT_QUALITY
    media: str = DEFAULT_TYPE


def _numbers(text: str, name: str, count: tuple[int, ...]) -> list[float]:
    try:
        values = [float(item) for item in text.split(",")]
    except ValueError:
        raise BadRequestError(f"{name}={text!r}: expected numbers separated by commas") from None
    if len(values) not in count:
        raise BadRequestError(f"{name}={text!r}: expected {' or '.join(map(str, count))} numbers")
    return values


def parse_rendering(params: Mapping[str, str], media: str) -> Rendering:
    """The rendering a request's query parameters ask for.

    Raises
    ------
    BadRequestError
        Naming the parameter that is malformed.
    """
    window = function = viewport = region = None
    if params.get("window"):
        parts = params["window"].split(",")
        center, width = _numbers(",".join(parts[:2]), "window", (2,))
        window = (center, width)
        if len(parts) > 2:
            function = _FUNCTIONS.get(parts[2].strip().lower())
            if function is None:
                raise BadRequestError(
                    f"window={params['window']!r}: the function is one of {', '.join(_FUNCTIONS)}"
                )
    if params.get("viewport"):
        values = _numbers(params["viewport"], "viewport", (2, 6))
        if values[0] < 1 or values[1] < 1 or max(values[:2]) > 8192:
            raise BadRequestError(f"viewport={params['viewport']!r}: vw and vh are 1 to 8192")
        viewport = (int(values[0]), int(values[1]))
        if len(values) == 6:
            region = (values[2], values[3], values[4], values[5])
    quality = DEFAULT_QUALITY
    if params.get("quality"):
        text = params["quality"]
        if not text.isdigit() or not 1 <= int(text) <= 100:
            raise BadRequestError(f"quality={text!r}: an integer from 1 to 100")
        quality = int(text)
    return Rendering(window, function, viewport, region, quality, media)


def image_type(request: Request) -> str:
    """The image media type to answer with, of those the request accepts (on its own or as
    the type of ``multipart/related`` parts)."""
    for media in multipart_parts(accepted(request), DEFAULT_TYPE):
        for name in FORMATS:
            if media.matches(name):
                return DEFAULT_TYPE if media.name in ("*/*", "*", "image/*") else name
    raise NotAcceptableError(
        f"Rendered images are {', '.join(FORMATS)}; the request accepts "
        f"{request.query_params.get('accept') or request.headers.get('accept')}"
    )


def _wants_multipart(request: Request) -> bool:
    return any(media.name == "multipart/related" for media in accepted(request))


def _shape(image: Image.Image, rendering: Rendering, box: int | None) -> Image.Image:
    if rendering.region is not None:
        sx, sy, sw, sh = rendering.region
        left, right = sorted((sx, sx + sw))
        top, bottom = sorted((sy, sy + sh))
        image = image.crop((int(left), int(top), int(right), int(bottom)))
        if sw < 0:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if sh < 0:
            image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if rendering.viewport is not None:
        width, height = rendering.viewport
        scale = min(width / max(image.width, 1), height / max(image.height, 1))
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    elif box is not None:
        image.thumbnail((box, box), Image.Resampling.LANCZOS)
    return image


@lru_cache(maxsize=128)
def file_display(path: Path) -> FileDisplay:
    """How a stored file's frames are shown: its header read once, then kept. A stored file
    never changes (an instance stored again gets a new file), so what is kept never goes
    stale."""
    return FileDisplay.read(path)


def render_image(
    path: Path, frame: int, rendering: Rendering, *, box: int | None = None, name: str = ""
) -> bytes:
    """Frame ``frame`` (0-based) of a stored file, rendered and encoded.

    Raises
    ------
    BadRequestError
        If the instance has no pixel data that can be shown (a report, an undecodable
        codec...), or the window is invalid.
    UnknownResourceError
        If the instance has no frame ``frame``.
    """
    try:
        display = file_display(path)
        pixels = display.render(frame, window=rendering.window, voi_function=rendering.function)
    except IndexError as exc:
        count = display.number_of_frames
        raise UnknownResourceError(
            "Frame", f"{frame + 1} of instance {name}, which has {count} frame(s)"
        ) from exc
    except (DicomIOError, ValueError, NotImplementedError, RuntimeError) as exc:
        # io errors name the stored file; clients know the instance, not our disk layout.
        reason = exc.reason if isinstance(exc, DicomIOError) else exc
        raise BadRequestError(f"Cannot render instance {name}: {reason}") from exc
    image = _shape(Image.fromarray(pixels), rendering, box)
    buffer = io.BytesIO()
    kind = FORMATS[rendering.media]
    if kind == "JPEG":
        image.save(buffer, format=kind, quality=rendering.quality)
    else:
        image.save(buffer, format=kind)
    return buffer.getvalue()


def _index(request: Request) -> Index:
    return request.app.state.index


def _rendering(request: Request) -> Rendering:
    return parse_rendering(request.query_params, image_type(request))


def _instance(request: Request, target: Target, frames: list[int], box: int | None) -> Response:
    rendering = _rendering(request)
    (_, path), *_ = stored_files(_index(request), target)
    images = [
        render_image(path, number - 1, rendering, box=box, name=target.instance)
        for number in frames
    ]
    if len(images) == 1:
        return Response(images[0], media_type=rendering.media)
    return multipart_response([Part(rendering.media, [image]) for image in images], rendering.media)


def _middle_first(files: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    middle = len(files) // 2
    order = sorted(range(len(files)), key=lambda position: abs(position - middle))
    return [files[position] for position in order]


def _group(request: Request, target: Target, box: int | None, thumbnail: bool) -> Response:
    """A study or series: its representative image, or every instance as multipart."""
    rendering = _rendering(request)
    files = stored_files(_index(request), target)
    if not thumbnail and _wants_multipart(request):
        return multipart_response(_every_instance(files, rendering), rendering.media)
    for instance_id, path in _middle_first(files):
        try:
            return Response(
                render_image(path, 0, rendering, box=box, name=instance_id),
                media_type=rendering.media,
            )
        except BadRequestError as exc:
            log.debug("Not representative: %s", exc)  # a report, a presentation state...
    raise UnknownResourceError(
        "Image", f"{target.study} ({target.level.lower()} without renderable instances)"
    )


def _every_instance(files: list[tuple[str, Path]], rendering: Rendering) -> Iterator[Part]:
    for instance_id, path in files:
        try:
            image = render_image(path, 0, rendering, name=instance_id)
        except BadRequestError:
            continue
        yield Part(rendering.media, [image])


def _routes(suffix: str, box: int | None) -> None:
    thumbnail = suffix == "thumbnail"
    kind = "thumbnail" if thumbnail else "rendered"

    @router.get(f"/studies/{{study}}/{suffix}", summary=f"WADO-RS: {kind} study")
    def study(study: str, request: Request) -> Response:
        return _group(request, resolve(_index(request), study), box, thumbnail)

    @router.get(f"/studies/{{study}}/series/{{series}}/{suffix}", summary=f"WADO-RS: {kind} series")
    def series(study: str, series: str, request: Request) -> Response:
        return _group(request, resolve(_index(request), study, series), box, thumbnail)

    @router.get(
        f"/studies/{{study}}/series/{{series}}/instances/{{instance}}/{suffix}",
        summary=f"WADO-RS: {kind} instance (its first frame)",
    )
    def instance(study: str, series: str, instance: str, request: Request) -> Response:
        target = resolve(_index(request), study, series, instance)
        return _instance(request, target, [1], box)

    @router.get(
        f"/studies/{{study}}/series/{{series}}/instances/{{instance}}/frames/{{frames}}/{suffix}",
        summary=f"WADO-RS: {kind} frames",
    )
    def frames(study: str, series: str, instance: str, frames: str, request: Request) -> Response:
        numbers = frame_numbers(frames)
        target = resolve(_index(request), study, series, instance)
        return _instance(request, target, numbers, box)


_routes("rendered", None)
_routes("thumbnail", THUMBNAIL_SIZE)
