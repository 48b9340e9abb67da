"""Talking to a DICOMweb server: QIDO-RS searches, WADO-RS metadata, frames and bulk data.

One :class:`DicomWeb` holds how to reach a server (headers, bearer token, a
``requests.Session`` or a ``dicomweb_client.DICOMwebClient`` to borrow the session of) and
how patient to be with it: retries with exponential back-off on 429 and 5xx answers
(honouring ``Retry-After``), a bound on simultaneous connections, connect and read
timeouts. Every failure becomes a :class:`DicomWebError` naming the URL and the HTTP status.

It pickles as its settings (and the session passed in, if any): ``dask.distributed``
workers open connections of their own.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import requests
from pydicom.dataset import Dataset
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from workbench.io.errors import DicomIOError
from workbench.io.framecache import FrameCache
from workbench.io.webtransport import (
    Answer,
    DirectTransport,
    NoAnswer,
    goes_direct,
    stream_with_session,
)

DICOM_JSON = "application/dicom+json"
#: Statuses worth asking again after a pause: too many requests, and the server's troubles.
RETRIED_STATUSES = (429, 500, 502, 503, 504)
#: A DICOMweb resource URL: the service root, then the study, series and instance UIDs.
_RESOURCE = re.compile(
    r"^(?P<root>https?://.+?)/studies/(?P<study>[0-9.]+)"
    r"(?:/series/(?P<series>[0-9.]+))?(?:/instances/(?P<instance>[0-9.]+))?/?$"
)


class DicomWebError(DicomIOError):
    """A DICOMweb request failed, or its answer is not what DICOMweb promises.

    ``path`` is the URL asked for; ``status`` the HTTP status (``None`` when there was no
    answer, or the answer could not be read).
    """

    def __init__(self, message: str, url: str, status: int | None = None) -> None:
        super().__init__(message, url)
        self.url = url
        self.status = status


@dataclass(frozen=True)
class Resource:
    """A study, series or instance named by its DICOMweb URL."""

    root: str
    study: str
    series: str | None = None
    instance: str | None = None

    @classmethod
    def parse(cls, url: str) -> Resource:
        """Split ``https://host/dicom-web/studies/{s}[/series/{r}[/instances/{i}]]``.

        Raises
        ------
        DicomWebError
            ``url`` does not name a study, series or instance that way.
        """
        match = _RESOURCE.match(str(url).strip())
        if match is None:
            raise DicomWebError(
                "not a DICOMweb study or series URL: expected "
                "'http(s)://host/<root>/studies/<StudyInstanceUID>[/series/<SeriesInstanceUID>]'",
                str(url),
            )
        return cls(**match.groupdict())

    @property
    def url(self) -> str:
        url = f"{self.root}/studies/{self.study}"
        if self.series:
            url += f"/series/{self.series}"
        if self.instance:
            url += f"/instances/{self.instance}"
        return url


def is_dicomweb_url(source: object) -> bool:
    """Whether ``source`` is an ``http(s)://`` URL (to be read over DICOMweb)."""
    return isinstance(source, str) and source.startswith(("http://", "https://"))


@dataclass
class DicomWeb:
    """How to reach one DICOMweb server; makes the requests the lazy arrays need.

    Parameters
    ----------
    headers : mapping, optional
        Extra HTTP headers sent with every request (e.g. an API key).
    token : str, optional
        A bearer token, sent as ``Authorization: Bearer <token>``.
    session : requests.Session or dicomweb_client.DICOMwebClient, optional
        A session carrying its own authentication (cookies, ``auth``, certificates); the
        session of a ``DICOMwebClient`` is used as it is.
    retries : int
        How many times a request answered 429 or 5xx (or not answered) is tried again,
        waiting ``backoff`` seconds, then twice that, and so on (or what ``Retry-After``
        says).
    backoff : float
        The first pause between retries, in seconds.
    max_connections : int
        The most connections open at once to one host; further requests wait for one.
    timeout : (float, float)
        Seconds to wait for a connection, and for each read of an answer.
    cache : FrameCache, optional
        Where fetched frames are kept on disk (bounded in bytes), so that opening the same
        series again, in this process or another, fetches nothing twice.
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    token: str | None = field(default=None, repr=False)
    session: Any = field(default=None, repr=False)
    retries: int = 3
    backoff: float = 0.2
    max_connections: int = 8
    timeout: tuple[float, float] = (5.0, 60.0)
    cache: FrameCache | None = None
    _lock: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.session is not None and not isinstance(self.session, requests.Session):
            # A dicomweb_client.DICOMwebClient keeps its (authenticated) session here.
            borrowed = getattr(self.session, "_session", None)
            if not isinstance(borrowed, requests.Session):
                raise TypeError(
                    "session= takes a requests.Session or a dicomweb_client.DICOMwebClient, "
                    f"not {type(self.session).__name__}"
                )
            self.session = borrowed
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_lock"] = None  # locks do not pickle; the session (if any) does
        state["_requests"] = state["_urllib3"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # --- the HTTP session ------------------------------------------------------------

    def _retry(self) -> Retry:
        return Retry(
            total=self.retries,
            connect=self.retries,
            read=self.retries,
            status=self.retries,
            backoff_factor=self.backoff,
            status_forcelist=RETRIED_STATUSES,
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,  # the last answer is reported with its status
        )

    def _direct(self, url: str) -> DirectTransport | None:
        """The urllib3 transport, when ``url`` needs nothing of ``requests``."""
        if self.session is not None:
            return None
        parts = urlsplit(url)
        prefix = f"{parts.scheme}://{parts.netloc}/"
        with self._lock:
            # Asked once per host: reading the environment's proxies costs ~0.2 ms.
            verdicts = self.__dict__.setdefault("_goes_direct", {})
            if prefix not in verdicts:
                verdicts[prefix] = goes_direct(url)
            if not verdicts[prefix]:
                return None
            direct = self.__dict__.get("_urllib3")
            if direct is None:
                direct = DirectTransport(self.max_connections, self._retry(), self.timeout)
                self.__dict__["_urllib3"] = direct
            return direct

    def _session(self, url: str) -> requests.Session:
        """The session requests go through, with our retries and connection limit mounted
        for ``url``'s scheme and host."""
        with self._lock:
            session = self.__dict__.get("_requests")
            if session is None:
                session = self.session if self.session is not None else requests.Session()
                self.__dict__["_requests"] = session
                self.__dict__["_mounted"] = set()
            parts = urlsplit(url)
            prefix = f"{parts.scheme}://{parts.netloc}/"
            if prefix not in self.__dict__["_mounted"]:
                adapter = HTTPAdapter(
                    max_retries=self._retry(),
                    pool_connections=1,
                    pool_maxsize=self.max_connections,
                    pool_block=True,  # the connection limit: wait for a free connection
                )
                session.mount(prefix, adapter)
                self.__dict__["_mounted"].add(prefix)
            return session

    def _headers(self, accept: str, compressed: bool) -> dict[str, str]:
        headers = {
            "Accept": accept,
            "Accept-Encoding": "gzip, deflate" if compressed else "identity",
            **dict(self.headers),
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def get(
        self, url: str, accept: str, *, params: Mapping | None = None, compressed: bool = True
    ) -> Answer:
        """GET ``url``; the answer when it is 2xx, else a :class:`DicomWebError`.

        ``compressed=False`` asks the server not to gzip the answer: pixel data hardly
        shrinks, and compressing it costs the server far more than sending it (Orthanc takes
        ~50 ms to deflate a 512² CT frame it otherwise sends in ~2 ms).

        Raises
        ------
        DicomWebError
            No answer (refused, timed out, cut off) after the retries, or a status other than
            2xx (the message holds the status, its reason and the start of the body).
        """
        headers = self._headers(accept, compressed)
        direct = self._direct(url)
        try:
            if direct is not None:
                response = direct.get(url, headers, params)
            else:
                response = Answer.of(
                    self._session(url).get(
                        url, headers=headers, params=params, timeout=self.timeout
                    )
                )
        except (requests.RequestException, NoAnswer) as exc:
            raise DicomWebError(f"no answer from the server: {exc}", url) from exc
        if not response.ok:
            raise _status_error(response, url)
        return response

    def parts(self, url: str, accept: str) -> Iterator[tuple[dict[str, str], bytes]]:
        """GET a ``multipart/related`` answer and yield its parts as they arrive: (headers
        in lower case, body) each, the whole answer never held at once. Asked for without
        content coding, as frames are (see :meth:`get`).

        Raises
        ------
        DicomWebError
            As :meth:`get`, and as :func:`multipart_parts` for an answer that is not
            multipart or ends before its closing boundary.
        """
        headers = self._headers(accept, compressed=False)
        direct = self._direct(url)
        if direct is not None:
            opened = direct.stream(url, headers)
        else:
            opened = stream_with_session(self._session(url), url, headers, self.timeout)
        try:
            with opened as (answer, pieces):
                if not answer.ok:
                    raise _status_error(replace(answer, content=b"".join(pieces)), url)
                yield from split_parts(pieces, answer)
        except NoAnswer as exc:
            raise DicomWebError(f"no answer from the server: {exc}", url) from exc

    # --- DICOMweb requests -----------------------------------------------------------

    def json(self, url: str, *, params: Mapping | None = None) -> list[dict]:
        """A DICOM JSON answer (QIDO-RS search, WADO-RS metadata) as its list of objects.

        Raises
        ------
        DicomWebError
            The request failed, or the answer is not a DICOM JSON array of objects.
        """
        response = self.get(url, DICOM_JSON, params=params)
        if response.status_code == 204 or not response.content:
            return []  # QIDO-RS: nothing matched
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, list) or not all(isinstance(x, dict) for x in answer):
            kind = response.headers.get("Content-Type", "no content type")
            raise DicomWebError(
                f"the answer is not DICOM JSON ({kind}): {response.text[:120]!r}",
                response.url,
                response.status_code,
            )
        return answer

    def bulk(self, uri: str) -> bytes:
        """The value of a bulk data element (one ``application/octet-stream`` part)."""
        response = self.get(
            uri, 'multipart/related; type="application/octet-stream"', compressed=False
        )
        parts = multipart_parts(response)
        return parts[0][1] if parts else b""


def _status_error(response: Answer, url: str) -> DicomWebError:
    """The error for an answer whose status is not 2xx: the status, its reason and the start
    of the body."""
    body = response.text[:300].strip() if response.content else ""
    return DicomWebError(
        f"HTTP {response.status_code} {response.reason}" + (f": {body}" if body else ""),
        response.url or url,
        response.status_code,
    )


def multipart_parts(response: Answer) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a ``multipart/related`` answer: (headers in lower case, body) each.

    Raises
    ------
    DicomWebError
        The answer is not multipart, names no boundary, or ends before its closing
        boundary (a truncated answer).
    """
    return list(split_parts([response.content], response))


def split_parts(
    pieces: Iterable[bytes], response: Answer
) -> Iterator[tuple[dict[str, str], bytes]]:
    """The parts of the ``multipart/related`` body arriving in ``pieces`` (of any sizes),
    each yielded as soon as its closing boundary has arrived; ``response`` gives the
    content type and the URL errors name.

    Raises
    ------
    DicomWebError
        As :func:`multipart_parts`.
    """
    content_type = response.headers.get("Content-Type", "")
    url = response.url
    pieces = iter(pieces)
    if not content_type.lower().startswith("multipart/"):
        start = response.content or next(pieces, b"")
        raise DicomWebError(
            f"expected a multipart/related answer, got {content_type or 'no content type'}: "
            f"{start[:80]!r}",
            url,
            response.status_code,
        )
    boundary = media_parameters(content_type).get("boundary")
    if not boundary:
        raise DicomWebError(f"multipart answer without a boundary ({content_type})", url)
    delimiter = b"--" + boundary.encode("ascii")
    # The body so far from the start of the part being read (or of the first delimiter),
    # and how far the search for the next delimiter has got, so each byte is searched once.
    buffer, searched, received, count = bytearray(), 0, 0, 0
    started = False
    for piece in pieces:
        buffer += piece
        received += len(piece)
        while True:
            if not started:
                start = buffer.find(delimiter)
                if start < 0:
                    searched = max(len(buffer) - len(delimiter), 0)
                    break
                del buffer[: start + len(delimiter)]
                started, searched = True, 0
            if len(buffer) < 2:
                break
            if buffer.startswith(b"--"):
                return  # the closing delimiter
            end = buffer.find(b"\r\n" + delimiter, searched)
            if end < 0:
                searched = max(len(buffer) - len(delimiter) - 2, 0)
                break
            count += 1
            yield _part(buffer, end, count, url)
            del buffer[: end + 2 + len(delimiter)]
            searched = 0
    if not started:
        raise DicomWebError("multipart answer without any part (no boundary found)", url)
    raise DicomWebError(
        f"truncated multipart answer: part {count + 1} has no closing boundary "
        f"({received} bytes received)",
        url,
        response.status_code,
    )


def _part(buffer: bytearray, end: int, number: int, url: str) -> tuple[dict[str, str], bytes]:
    """The headers and body of the part that ``buffer`` holds up to ``end``; the body is
    copied once (a frame or an instance is most of the answer)."""
    split = buffer.find(b"\r\n\r\n", 0, end)
    if split < 0:
        raise DicomWebError(f"damaged multipart answer: part {number}", url)
    with memoryview(buffer) as view:
        head, content = bytes(view[:split]), bytes(view[split + 4 : end])
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers, content


def media_parameters(media_type: str) -> dict[str, str]:
    """The parameters of a media type (``type``, ``transfer-syntax``, ``boundary``...),
    names in lower case and quotes removed."""
    params = {}
    for item in re.findall(r';\s*([^=;\s]+)\s*=\s*("[^"]*"|[^;]*)', media_type):
        name, value = item
        params[name.lower()] = value.strip().strip('"')
    return params


def dataset_from_json(item: dict, bulk_data: Any = None) -> Dataset:
    """A pydicom ``Dataset`` from one DICOM JSON object.

    ``bulk_data(tag, vr, uri)`` gives the value of elements sent as a ``BulkDataURI``; by
    default they are left empty, so nothing beyond the JSON is fetched.
    """
    if bulk_data is None:
        # Bulk data left empty by hand: pydicom would warn for each element, and with a
        # handler it inspects the handler's signature for every element, which costs more
        # than the conversion itself.
        return Dataset.from_json(_without_bulk_data(item))
    return Dataset.from_json(item, bulk_data_uri_handler=bulk_data)


def _without_bulk_data(item: dict) -> dict:
    """``item`` with each ``BulkDataURI`` element made empty (present, with no value)."""
    stripped = {}
    for tag, element in item.items():
        if "BulkDataURI" in element:
            element = {"vr": element.get("vr", "UN")}
        elif element.get("vr") == "SQ" and element.get("Value"):
            element = {**element, "Value": [_without_bulk_data(i) for i in element["Value"]]}
        stripped[tag] = element
    return stripped
