"""workbench.io over DICOMweb when things go wrong: bad URLs, authentication, server errors,
retries, truncated and non-DICOM answers, a server that stops answering.

The answers come from our real DICOMweb server; the faults no well-behaved server gives on
purpose (cut-off bodies, HTML instead of JSON, an answer that never comes) are made by a
small HTTP front that passes each request on to it and spoils the answer as a test asks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dask
import numpy as np
import pytest
import requests

from tests.data import dicom_files, real_path
from tests.pacs.test_dicomweb_client import CountingSession
from workbench.io import DicomWeb, PixelDataError, open_series
from workbench.io.dicomweb import DicomWebError
from workbench.pacs import Config
from workbench.pacs.server import serve

CT_SERIES = "series_ct_philips_ingenuity_5mm"

#: What the front does with one request: ``None`` passes it on; otherwise it returns
#: (status, content type, body) to send instead, given the upstream answer.
Fault = Callable[[str, requests.Response], "tuple[int, str, bytes] | None"]


class Front:
    """An HTTP server passing GETs on to ``upstream``; ``fault`` may spoil the answers."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fault: Fault | None = None
        self.paths: list[str] = []
        self.encodings: dict[str, str | None] = {}  # the Accept-Encoding of each path
        self.accepts: dict[str, str | None] = {}  # the Accept of each path
        self.release = threading.Event()  # lets a stalled answer go at the end
        front = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                front.paths.append(self.path)
                front.encodings[self.path] = self.headers.get("Accept-Encoding")
                front.accepts[self.path] = self.headers.get("Accept")
                answer = requests.get(
                    front.upstream + self.path,
                    headers={"Accept": self.headers.get("Accept", "*/*")},
                    timeout=60,
                )
                spoiled = front.fault(self.path, answer) if front.fault else None
                status, kind, body = spoiled or (
                    answer.status_code,
                    answer.headers.get("Content-Type", ""),
                    answer.content,
                )
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def ct_server(tmp_path_factory):
    """Our server holding one CT series, with authentication on (user alice)."""
    config = Config(
        StorageDirectory=str(tmp_path_factory.mktemp("store")),
        HttpPort=0,
        AuthenticationEnabled=True,
        RegisteredUsers={"alice": "secret"},
    )
    with serve(config, dicom=False) as server:
        server.index.import_path(*dicom_files(real_path(CT_SERIES)), progress=False)
        yield server


@pytest.fixture(scope="module")
def ct_url(ct_server) -> str:
    """The CT series' path below the DICOMweb root."""
    series = requests.get(
        f"{ct_server.url}/dicom-web/series", auth=("alice", "secret"), timeout=30
    ).json()[0]
    study, uid = series["0020000D"]["Value"][0], series["0020000E"]["Value"][0]
    return f"/dicom-web/studies/{study}/series/{uid}"


@pytest.fixture
def front(ct_server):
    """A front for the CT server that signs every request it passes on as alice."""
    handle = Front(ct_server.url.replace("http://", "http://alice:secret@"))
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def local_ct():
    return open_series(dicom_files(real_path(CT_SERIES)))


def test_bad_urls_are_named(ct_server):
    with pytest.raises(DicomWebError, match="not a DICOMweb study or series URL") as caught:
        open_series(f"{ct_server.url}/dicom-web/patients/1")
    assert "patients/1" in str(caught.value)
    with pytest.raises(DicomWebError, match="not a series URL"):
        open_series(f"{ct_server.url}/dicom-web/studies/1.2.3")
    # A port nobody listens on: refused at once, after the retries.
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    url = f"http://127.0.0.1:{port}/dicom-web/studies/1.2/series/1.2.3"
    with pytest.raises(DicomWebError, match="no answer from the server") as caught:
        open_series(url, dicomweb=DicomWeb(retries=1, backoff=0))
    assert caught.value.status is None and url in str(caught.value)


def test_authentication_401_then_basic_bearer_and_session(ct_server, ct_url, local_ct):
    url = ct_server.url + ct_url
    with pytest.raises(DicomWebError, match="HTTP 401") as caught:
        open_series(url)
    assert caught.value.status == 401 and url in str(caught.value)

    session = requests.Session()
    session.auth = ("alice", "secret")
    np.testing.assert_array_equal(open_series(url, dicomweb=session)[3].values, local_ct[3].values)
    basic = requests.Request(url=url, auth=("alice", "secret")).prepare().headers
    array = open_series(url, dicomweb=DicomWeb(headers={"Authorization": basic["Authorization"]}))
    np.testing.assert_array_equal(array[4].values, local_ct[4].values)

    from dicomweb_client.api import DICOMwebClient
    from dicomweb_client.session_utils import create_session_from_auth

    client = DICOMwebClient(
        f"{ct_server.url}/dicom-web",
        session=create_session_from_auth(requests.auth.HTTPBasicAuth("alice", "secret")),
    )
    np.testing.assert_array_equal(open_series(url, dicomweb=client)[5].values, local_ct[5].values)
    # A bearer token the server does not know is refused, and said so.
    with pytest.raises(DicomWebError, match="401"):
        open_series(url, dicomweb=DicomWeb(token="not-a-token"))


def test_429_and_5xx_are_retried_with_back_off(front, ct_url, local_ct):
    failures = {"/metadata": [429, 503], "/frames/": [502]}

    def flaky(path, answer):
        for key, statuses in failures.items():
            if key in path and statuses:
                return statuses.pop(0), "text/plain", b"busy"
        return None

    front.fault = flaky
    array = open_series(front.url + ct_url, dicomweb=DicomWeb(backoff=0.01))
    np.testing.assert_array_equal(array[2].values, local_ct[2].values)
    assert failures == {"/metadata": [], "/frames/": []}
    assert sum(p.endswith("/metadata") for p in front.paths) == 3
    assert sum("/frames/" in p for p in front.paths) == 2


def test_a_lasting_server_error_names_url_and_status(front, ct_url):
    front.fault = lambda path, answer: (500, "text/plain", b"database is down")
    url = front.url + ct_url
    with pytest.raises(DicomWebError) as caught:
        open_series(url, dicomweb=DicomWeb(retries=2, backoff=0.01))
    message = str(caught.value)
    assert caught.value.status == 500 and "HTTP 500" in message and "database is down" in message
    assert f"{url}/metadata" in message
    assert len(front.paths) == 3  # the first request and two retries, then it gives up


def test_non_dicom_answers_are_refused_clearly(front, ct_url):
    url = front.url + ct_url
    front.fault = lambda path, answer: (200, "text/html", b"<html>Please log in</html>")
    with pytest.raises(DicomWebError, match=r"not DICOM JSON \(text/html\).*log in"):
        open_series(url)

    front.fault = None
    array = open_series(url)
    front.fault = lambda path, answer: (200, "text/html", b"<html>Please log in</html>")
    with pytest.raises(DicomWebError, match="expected a multipart/related answer, got text/html"):
        array[0].load()

    def garbage_frame(path, answer):
        if "/frames/" not in path:
            return None
        kind = answer.headers["Content-Type"]
        boundary = kind.split("boundary=")[1].split(";")[0].strip('"')
        part_type = answer.content.split(b"Content-Type: ")[1].split(b"\r\n")[0]
        body = (
            f"--{boundary}\r\nContent-Type: ".encode() + part_type + b"\r\n\r\n"
            + b"\x00not a frame" * 7 + f"\r\n--{boundary}--".encode()
        )  # fmt: skip
        return 200, kind, body

    front.fault = garbage_frame
    with pytest.raises(PixelDataError, match="frames/1: cannot decode frame 1") as caught:
        open_series(url)[1].load()
    assert "84 vs 524288 bytes" in str(caught.value)


def test_a_truncated_multipart_answer_is_an_error(front, ct_url):
    def cut(path, answer):
        if "/frames/" not in path:
            return None
        return 200, answer.headers["Content-Type"], answer.content[: len(answer.content) // 2]

    front.fault = cut
    with pytest.raises(DicomWebError, match="truncated multipart answer") as caught:
        open_series(front.url + ct_url)[0].load()
    assert "/frames/1" in str(caught.value)


def test_a_server_that_stops_answering_times_out(front, ct_url):
    def stall(path, answer):
        if "/frames/" in path:
            front.release.wait(30)
        return None

    front.fault = stall
    array = open_series(front.url + ct_url, dicomweb=DicomWeb(timeout=(2, 0.5), retries=1))
    with pytest.raises(DicomWebError, match=r"no answer from the server.*timed out") as caught:
        array[0].load()
    assert "/frames/1" in str(caught.value)


def test_frames_come_through_a_connection_limit(front, ct_url, local_ct):
    """Eight dask threads, two connections: every frame arrives, none twice."""
    session = CountingSession()
    array = open_series(front.url + ct_url, dicomweb=DicomWeb(session=session, max_connections=2))
    frames = dask.compute(*[array[i].data for i in range(array.sizes["frame"])])
    np.testing.assert_array_equal(np.stack(frames), local_ct.values)
    assert sorted(session.frame_requests()) == sorted(set(session.frame_requests()))
    assert len(session.frame_requests()) == local_ct.sizes["frame"]


def test_a_whole_array_comes_in_one_series_request(front, ct_url, local_ct):
    """Computing the array itself asks for the series once (as stored), and a reduction still
    reads frame by frame (its memory stays near a few frames)."""
    session = CountingSession()
    url = front.url + ct_url
    array = open_series(url, dicomweb=DicomWeb(session=session))
    np.testing.assert_array_equal(array.values, local_ct.values)
    assert session.urls == [f"{url}/metadata", url]
    assert front.accepts[ct_url] == 'multipart/related; type="application/dicom"; transfer-syntax=*'
    assert int(array.sum()) == int(local_ct.sum())
    assert len(session.frame_requests()) == local_ct.sizes["frame"]
    np.testing.assert_array_equal(array.load().values, local_ct.values)
    assert session.urls.count(url) == 2


@pytest.mark.parametrize("fault", ["refused", "not multipart", "cut in half"])
def test_frames_a_series_answer_lacks_are_fetched_one_by_one(front, ct_url, local_ct, fault):
    def spoil(path, answer):
        if path != ct_url:
            return None
        if fault == "refused":
            return 406, "text/plain", b"not acceptable"
        if fault == "not multipart":
            return 200, "application/dicom", answer.content
        return 200, answer.headers["Content-Type"], answer.content[: len(answer.content) // 2]

    front.fault = spoil
    session = CountingSession()
    array = open_series(front.url + ct_url, dicomweb=DicomWeb(session=session))
    np.testing.assert_array_equal(array.values, local_ct.values)
    fetched = len(session.frame_requests())
    if fault == "cut in half":
        assert 0 < fetched < local_ct.sizes["frame"]  # what did arrive is used
    else:
        assert fetched == local_ct.sizes["frame"]
    assert sorted(session.frame_requests()) == sorted(set(session.frame_requests()))


def test_pixel_data_is_asked_for_without_content_coding(front, ct_url, local_ct):
    """Frames and bulk data hardly shrink under gzip, and compressing them costs a server
    more than sending them; JSON may come compressed."""
    array = open_series(front.url + ct_url)
    np.testing.assert_array_equal(array[1].values, local_ct[1].values)
    session = requests.Session()
    streamed = open_series(front.url + ct_url, dicomweb=DicomWeb(session=session))
    np.testing.assert_array_equal(streamed[2].values, local_ct[2].values)
    frames = {p: e for p, e in front.encodings.items() if "/frames/" in p}
    assert len(frames) == 2 and set(frames.values()) == {"identity"}
    metadata = {e for p, e in front.encodings.items() if p.endswith("/metadata")}
    assert metadata == {"gzip, deflate"}
