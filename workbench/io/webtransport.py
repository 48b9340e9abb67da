"""HTTP GETs for :class:`~workbench.io.dicomweb.DicomWeb`, with as little work per request
as possible.

A lazy volume makes one request per frame, so what a request costs the client is paid
hundreds of times. ``requests`` spends ~0.7 ms of Python on each (merging environment
settings, preparing, building its response): a third of a 512² frame's time over
loopback. When nothing needs ``requests`` — no session passed in, no proxy in the
environment for the host, no credentials in the URL — requests go to ``urllib3`` directly
(which ``requests`` itself runs on), with the same retries, connection limit, timeouts and
certificates; otherwise through the session. An answer holding a whole series is streamed
(``stream``): read in pieces as it arrives, never held at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from requests.utils import get_environ_proxies


@dataclass(frozen=True)
class Answer:
    """A server's answer, whichever library fetched it."""

    url: str
    status_code: int
    reason: str
    headers: Mapping[str, str]  # case-insensitive
    content: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    @classmethod
    def of(cls, response: requests.Response) -> Answer:
        return cls(
            response.url,
            response.status_code,
            response.reason or "",
            response.headers,
            response.content,
        )


class NoAnswer(Exception):
    """The server could not be reached, or stopped answering (after the retries)."""


#: Bytes read at a time from a streamed answer: pieces much smaller cost Python calls, and
#: ``urllib3``'s reading of a whole answer at once joins copies of it (twice the time).
STREAM_PIECE = 1 << 20


def goes_direct(url: str) -> bool:
    """Whether a GET of ``url`` can skip ``requests``: a plain http(s) URL without
    credentials in it, and no proxy the environment names for its host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or "@" in parts.netloc:
        return False
    return not get_environ_proxies(url)


def certificates() -> str | None:
    """The CA bundle ``requests`` would verify with (its environment variables, then
    certifi's)."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        return bundle
    try:
        import certifi
    except ImportError:  # urllib3 then uses the system's store
        return None
    return certifi.where()


class DirectTransport:
    """GETs through one ``urllib3.PoolManager``: ``max_connections`` per host (further
    requests wait for one), ``retry`` and ``timeout`` as given."""

    def __init__(
        self, max_connections: int, retry: urllib3.Retry, timeout: tuple[float, float]
    ) -> None:
        self.pool = urllib3.PoolManager(
            maxsize=max_connections,
            block=True,
            retries=retry,
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
            ca_certs=certificates(),
        )

    def get(self, url: str, headers: Mapping[str, str], params: Mapping | None) -> Answer:
        try:
            response = self.pool.request("GET", url, fields=params, headers=dict(headers))
        except urllib3.exceptions.HTTPError as exc:
            raise NoAnswer(str(exc)) from exc
        final = f"{url}?{urlencode(params)}" if params else url
        return Answer(
            final, response.status, response.reason or "", response.headers, response.data
        )

    @contextmanager
    def stream(
        self, url: str, headers: Mapping[str, str]
    ) -> Iterator[tuple[Answer, Iterator[bytes]]]:
        """GET ``url`` and give its answer (``content`` empty) with an iterator over the
        body's pieces, read as they arrive; a body left unread closes the connection."""
        try:
            response = self.pool.request("GET", url, headers=dict(headers), preload_content=False)
        except urllib3.exceptions.HTTPError as exc:
            raise NoAnswer(str(exc)) from exc
        answer = Answer(url, response.status, response.reason or "", response.headers, b"")
        finished = False

        def pieces() -> Iterator[bytes]:
            nonlocal finished
            try:
                yield from response.stream(STREAM_PIECE)
            except urllib3.exceptions.HTTPError as exc:
                raise NoAnswer(str(exc)) from exc
            finished = True

        try:
            yield answer, pieces()
        finally:
            if not finished:
                response.close()  # never hand back a connection with unread data on it
            response.release_conn()


@contextmanager
def stream_with_session(
    session: requests.Session, url: str, headers: Mapping[str, str], timeout
) -> Iterator[tuple[Answer, Iterator[bytes]]]:
    """:meth:`DirectTransport.stream` through a ``requests`` session."""
    try:
        response = session.get(url, headers=dict(headers), timeout=timeout, stream=True)
    except requests.RequestException as exc:
        raise NoAnswer(str(exc)) from exc
    answer = Answer(
        response.url, response.status_code, response.reason or "", response.headers, b""
    )

    def pieces() -> Iterator[bytes]:
        try:
            yield from response.iter_content(STREAM_PIECE)
        except requests.RequestException as exc:
            raise NoAnswer(str(exc)) from exc

    try:
        yield answer, pieces()
    finally:
        response.close()
