"""WADO-RS frames against the live server: decoded frames and stored bitstreams, every file."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pydicom
import pytest
import requests
from PIL import Image
from pydicom.encaps import generate_frames

from tests.data import real_path
from tests.pacs.dicomweb_support import instance_url
from workbench.io.display import render_file

JPEG_BASELINE = pydicom.uid.JPEGBaseline8Bit


def _images(corpus) -> list[tuple[pydicom.Dataset, pydicom.Dataset]]:
    """``(header, whole dataset)`` of every decodable image of the corpus."""
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for sop, header in corpus.headers.items():
            if "Rows" not in header or int(header.get("BitsAllocated", 0)) == 1:
                continue
            full = pydicom.dcmread(corpus.paths[sop])
            if "PixelData" not in full:
                continue
            try:
                full.pixel_array  # noqa: B018
            except Exception:
                continue
            found.append((header, full))
    return found


def _frames_of(array: np.ndarray, ds) -> list[np.ndarray]:
    return list(array) if int(ds.get("NumberOfFrames") or 1) > 1 else [array]


def test_every_frame_decoded_as_uncompressed_octet_stream(dicomweb, corpus):
    for header, full in _images(corpus):
        expected = _frames_of(full.pixel_array, full)
        numbers = list(range(1, len(expected) + 1))
        got = dicomweb.retrieve_instance_frames(
            header.StudyInstanceUID, header.SeriesInstanceUID, header.SOPInstanceUID, numbers
        )
        assert len(got) == len(expected)
        for number, (data, frame) in enumerate(zip(got, expected, strict=True), start=1):
            little = frame.dtype.newbyteorder("<")
            decoded = np.frombuffer(data, dtype=little).reshape(frame.shape)
            assert np.array_equal(decoded, frame), (header.SOPInstanceUID, number)


def test_compressed_frames_come_as_stored_when_asked(live_server, corpus):
    compressed = [(h, f) for h, f in _images(corpus) if h.file_meta.TransferSyntaxUID.is_compressed]
    assert compressed, "the corpus has compressed images"
    for header, full in compressed:
        count = int(full.get("NumberOfFrames") or 1)
        stored = list(generate_frames(full.PixelData, number_of_frames=count))
        numbers = [1, count] if count > 1 else [1]
        url = f"{instance_url(live_server, header)}/frames/{','.join(map(str, numbers))}"
        accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
        response = requests.get(url, headers={"Accept": accept}, timeout=60)
        assert response.status_code == 200
        parts = _parts(response)
        syntax = str(header.file_meta.TransferSyntaxUID)
        assert [content_type for content_type, _ in parts] == [
            f"application/octet-stream; transfer-syntax={syntax}"
        ] * len(numbers)
        assert [body for _, body in parts] == [stored[n - 1] for n in numbers]


def test_jpeg_frames_by_their_media_type(dicomweb, corpus):
    jpegs = [h for h, _ in _images(corpus) if h.file_meta.TransferSyntaxUID == JPEG_BASELINE]
    if not jpegs:
        pytest.skip("no JPEG baseline image in this corpus")
    header = jpegs[0]
    (frame,) = dicomweb.retrieve_instance_frames(
        header.StudyInstanceUID,
        header.SeriesInstanceUID,
        header.SOPInstanceUID,
        [1],
        media_types=("image/jpeg",),
    )
    assert frame[:2] == b"\xff\xd8"  # a JPEG stream, as stored


def _parts(response: requests.Response) -> list[tuple[str, bytes]]:
    boundary = response.headers["content-type"].split("boundary=")[1].strip('"')
    body = response.content
    parts = []
    for chunk in body.split(f"--{boundary}".encode())[1:-1]:
        head, _, content = chunk.partition(b"\r\n\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode().strip().splitlines())
        parts.append((fields["Content-Type"], content[:-2]))
    return parts


def test_frame_numbers_out_of_range_or_malformed(live_server, corpus):
    header = next(h for h, _ in _images(corpus))
    count = int(header.get("NumberOfFrames") or 1)
    url = instance_url(live_server, header)
    response = requests.get(f"{url}/frames/{count + 1}", timeout=30)
    assert response.status_code == 404
    assert f"{count} frame" in response.json()["Details"]
    for bad in ("0", "1,x", "-1"):
        response = requests.get(f"{url}/frames/{bad}", timeout=30)
        assert response.status_code == 400, bad
        assert "frame numbers" in response.json()["Details"]


def test_pixel_data_bulk_uri_serves_the_frames(dicomweb, corpus):
    header, full = _images(corpus)[0]
    model = dicomweb.retrieve_instance_metadata(
        header.StudyInstanceUID, header.SeriesInstanceUID, header.SOPInstanceUID
    )
    frames = dicomweb.retrieve_bulkdata(model["7FE00010"]["BulkDataURI"])
    expected = _frames_of(full.pixel_array, full)
    assert len(frames) == len(expected)
    assert (
        frames[0]
        == np.ascontiguousarray(expected[0].astype(expected[0].dtype.newbyteorder("<"))).tobytes()
    )


def test_a_frame_holding_the_shared_boundary_gets_another(fresh_server, tmp_path):
    """Frames share one multipart boundary (Python clients compile a pattern per boundary);
    a frame whose bytes hold it is sent with a fresh one and arrives whole."""
    from workbench.pacs.dicomweb.multipart import _BOUNDARY

    ds = pydicom.dcmread(real_path("nema_mr1_small_transcodes") / "MR_small.dcm")
    plain = bytearray(ds.PixelData)
    tricky = bytearray(plain)
    tricky[100 : 100 + 34] = b"--" + _BOUNDARY.encode()
    urls = []
    for number, data in enumerate((plain, tricky), start=1):
        ds.SOPInstanceUID = f"{ds.SeriesInstanceUID}.{number}"
        ds.PixelData = bytes(data)
        ds.save_as(tmp_path / f"{number}.dcm")
        stored = requests.post(
            f"{fresh_server.url}/instances",
            data=(tmp_path / f"{number}.dcm").read_bytes(),
            timeout=30,
        )
        assert stored.ok, stored.text
        urls.append(f"{instance_url(fresh_server.url, ds)}/frames/1")
    accept = {"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}
    answers = [requests.get(url, headers=accept, timeout=30) for url in (urls[0], urls[0], urls[1])]
    boundaries = [a.headers["content-type"].split("boundary=")[1].strip('"') for a in answers]
    assert boundaries[0] == boundaries[1] == _BOUNDARY != boundaries[2]
    assert [content for _, content in _parts(answers[2])] == [bytes(tricky)]


def test_a_replaced_or_deleted_instance_is_never_served_stale(tmp_path):
    """Frames, rendered images and metadata of an instance come from the file stored now:
    the UIDs of the URL are looked up at each request, and what is kept per file (its frame
    layout, its JSON) belongs to that file only."""
    from workbench.pacs import Config
    from workbench.pacs.server import serve

    handle = serve(
        Config(StorageDirectory=str(tmp_path / "store"), HttpPort=0, OverwriteInstances=True),
        dicom=False,
    )
    try:
        ds = pydicom.dcmread(real_path("nema_mr1_small_transcodes") / "MR_small.dcm")
        url = instance_url(handle.url, ds)
        accept = {"Accept": 'multipart/related; type="application/octet-stream"'}
        original = bytes(ds.PixelData)
        for version, pixels in enumerate((original, original[::-1]), start=1):
            ds.PixelData = pixels
            ds.SeriesDescription = f"version {version}"
            ds.WindowCenter, ds.WindowWidth = 300 * version, 500 * version
            ds.save_as(tmp_path / f"{version}.dcm")
            stored = requests.post(
                f"{handle.url}/instances",
                data=(tmp_path / f"{version}.dcm").read_bytes(),
                timeout=30,
            )
            assert stored.ok, stored.text
            frame = requests.get(f"{url}/frames/1", headers=accept, timeout=30)
            assert [content for _, content in _parts(frame)] == [pixels]
            metadata = requests.get(f"{url}/metadata", timeout=30).json()
            assert metadata[0]["0008103E"]["Value"] == [f"version {version}"]
            png = requests.get(f"{url}/rendered", headers={"Accept": "image/png"}, timeout=30)
            shown = np.asarray(Image.open(io.BytesIO(png.content)))
            np.testing.assert_array_equal(shown, render_file(tmp_path / f"{version}.dcm"))
        instance_id = stored.json()["ID"]
        assert requests.delete(f"{handle.url}/instances/{instance_id}", timeout=30).ok
        for suffix in ("/frames/1", "/rendered", "/metadata", ""):
            gone = requests.get(f"{url}{suffix}", headers={"Accept": "*/*"}, timeout=30)
            assert gone.status_code == 404, suffix
    finally:
        handle.stop()
