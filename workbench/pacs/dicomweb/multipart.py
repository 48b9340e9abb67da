"""Media types and ``multipart/related`` bodies (RFC 2387) as PS3.18 uses them.

Reading: an ``Accept`` header (or ``?accept=``) into the media ranges a client takes, with
their ``type`` and ``transfer-syntax`` parameters. Writing: a multipart body streamed part by
part, so a study goes out one file at a time rather than whole from memory.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from ..errors import PacsError

#: Size of the pieces a stored file is sent in.
CHUNK = 1 << 20

_PARAMETER = re.compile(r';\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class NotAcceptableError(PacsError):
    """None of the media types a client accepts can be produced for the resource."""

    http_status = 406


class UnsupportedMediaTypeError(PacsError):
    """A request body's content type is not one the service takes."""

    http_status = 415


@dataclass(frozen=True)
class MediaType:
    """One media type or range with its parameters (names lowercased, quotes removed).

    Attributes
    ----------
    name : str
        ``type/subtype`` in lowercase (``multipart/related``, ``image/*``, ``*/*``).
    params : dict
        ``type``, ``transfer-syntax``, ``boundary``, ``q``... as given.
    """

    name: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def quality(self) -> float:
        try:
            return float(self.params.get("q", "1"))
        except ValueError:
            return 1.0

    @property
    def transfer_syntax(self) -> str | None:
        """The ``transfer-syntax`` parameter (``*`` meaning "as stored"), if given."""
        value = self.params.get("transfer-syntax")
        return value.strip() if value else None

    def matches(self, name: str) -> bool:
        """Whether this range covers the concrete media type ``name``."""
        if self.name in ("*", "*/*"):
            return True
        major, _, minor = self.name.partition("/")
        other_major, _, other_minor = name.lower().partition("/")
        return major == other_major and minor in ("*", other_minor)


def parse_media_type(text: str) -> MediaType:
    """Read one media type with its parameters (``multipart/related; type="..."``)."""
    name, _, rest = text.strip().partition(";")
    params = {}
    for key, value in _PARAMETER.findall(";" + rest):
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"')
        params[key.lower()] = value
    return MediaType(name.strip().lower(), params)


def _split_top_level(text: str) -> list[str]:
    """Split a header at commas outside quotes."""
    items, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item for item in items if item.strip()]


def accepted(request: Request) -> list[MediaType]:
    """The media types a request accepts, best first (``?accept=`` wins over the header).

    An absent ``Accept`` means anything (``*/*``).
    """
    text = request.query_params.get("accept") or request.headers.get("accept") or "*/*"
    return list(_accepted(text))


@lru_cache(maxsize=256)
def _accepted(text: str) -> tuple[MediaType, ...]:
    # A client sends the same few Accept headers again and again: read each once.
    ranges = [parse_media_type(item) for item in _split_top_level(text)]
    ranges = [media for media in ranges if media.quality > 0]
    return tuple(sorted(ranges, key=lambda media: -media.quality) or [MediaType("*/*")])


def multipart_parts(ranges: list[MediaType], default_type: str) -> list[MediaType]:
    """The parts' media types a client accepts in a ``multipart/related`` answer.

    ``multipart/related; type="x"; transfer-syntax=y`` gives ``x`` with its ``transfer-syntax``;
    ``*/*`` and ``multipart/related`` without ``type`` give ``default_type``. A bare
    single-part type (``application/dicom``) is taken as the type of the parts too, as most
    servers do.
    """
    parts = []
    for media in ranges:
        if media.name in ("multipart/related", "multipart/*", "*/*", "*"):
            kind = media.params.get("type", default_type).strip().lower() or default_type
            params = {key: value for key, value in media.params.items() if key != "type"}
            parts.append(MediaType(kind, params))
        elif not media.name.startswith("multipart/"):
            parts.append(media)
    return parts


@dataclass
class Part:
    """One part of a multipart answer: its content type and its bytes, in pieces."""

    content_type: str
    chunks: Iterable[bytes]
    location: str | None = None


def multipart_stream(parts: Iterable[Part], boundary: str) -> Iterator[bytes]:
    """The bytes of a ``multipart/related`` body, one part after another."""
    for part in parts:
        head = f"--{boundary}\r\nContent-Type: {part.content_type}\r\n"
        if part.location:
            head += f"Content-Location: {part.location}\r\n"
        yield (head + "\r\n").encode("latin-1")
        yield from part.chunks
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("ascii")


def multipart_response(
    parts: Iterable[Part], part_type: str, **params: str
) -> StreamingResponse | Response:
    """A ``multipart/related; type="part_type"`` response.

    An iterator of ``parts`` is streamed: it is consumed while the response is sent (in a
    worker thread), so its first item should already have been checked: once the status line
    is out, errors can only cut the body short. A list of parts whose bytes are all at hand
    (one frame, say) is sent in one piece with its length: streaming costs a worker-thread
    hop per piece, more than a frame takes to send.
    """
    extra = "".join(f"; {key.replace('_', '-')}={value}" for key, value in params.items())
    media_type = 'multipart/related; type="{}"{}; boundary={}'.format
    if isinstance(parts, list) and all(isinstance(p.chunks, list | tuple) for p in parts):
        boundary = _boundary_for(parts)
        body = b"".join(multipart_stream(parts, boundary))
        return Response(body, media_type=media_type(part_type, extra, boundary))
    boundary = uuid.uuid4().hex  # content not at hand to check: one no upload can foresee
    return StreamingResponse(
        multipart_stream(parts, boundary), media_type=media_type(part_type, extra, boundary)
    )


#: The boundary of answers whose parts are at hand. One for all: Python's http.client
#: compiles a regular expression for each new boundary it reads (~0.3 ms a frame for a
#: client fetching frames one by one), and a known boundary can be checked for in the parts.
_BOUNDARY = uuid.uuid4().hex


def _boundary_for(parts: list[Part]) -> str:
    mark = _BOUNDARY.encode("ascii")
    if any(mark in chunk for part in parts for chunk in part.chunks):
        return uuid.uuid4().hex  # a part holds it (by chance, or someone learnt it)
    return _BOUNDARY


def file_chunks(path, size: int = CHUNK) -> Iterator[bytes]:
    """A file's bytes in pieces of ``size``."""
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            yield chunk
