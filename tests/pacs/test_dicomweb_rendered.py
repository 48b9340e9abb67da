"""Rendered, thumbnail and WADO-URI images against the live server, for every real file.

The reference is the io layer's own rendering of the original file
(:func:`workbench.io.display.render_file`): whatever the viewer shows, the server shows,
for every transfer syntax the io layer decodes.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pydicom
import pytest
import requests
from PIL import Image

from tests.pacs.dicomweb_support import instance_url
from workbench.io.display import render_file


def _rendering(path, frame: int = 0, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return render_file(path, frame, **options)
        except Exception:
            return None


def _image(response: requests.Response) -> np.ndarray:
    assert response.status_code == 200, response.text[:300]
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_every_instance_renders_as_the_viewer_shows_it(live_server, corpus):
    syntaxes = set()
    for sop, header in corpus.headers.items():
        expected = _rendering(corpus.paths[sop])
        url = f"{instance_url(live_server, header)}/rendered"
        response = requests.get(url, headers={"Accept": "image/png"}, timeout=120)
        if expected is None:  # no pixels (reports, states) or a codec the io layer lacks
            assert response.status_code == 400, sop
            assert "Cannot render" in response.json()["Details"]
            continue
        assert response.headers["content-type"] == "image/png"
        assert np.array_equal(_image(response), expected), sop
        syntaxes.add(str(header.file_meta.TransferSyntaxUID))
    assert len(syntaxes) >= 5, syntaxes  # natives, JPEG, JPEG 2000, RLE, deflate...


def test_jpeg_is_the_default_and_quality_counts(dicomweb, corpus, live_server):
    sop, header = next(
        (s, h) for s, h in corpus.headers.items() if _rendering(corpus.paths[s]) is not None
    )
    jpeg = dicomweb.retrieve_instance_rendered(
        header.StudyInstanceUID, header.SeriesInstanceUID, sop
    )
    assert jpeg[:2] == b"\xff\xd8"
    expected = _rendering(corpus.paths[sop]).astype(float)
    decoded = np.asarray(Image.open(io.BytesIO(jpeg))).astype(float)
    assert decoded.shape == expected.shape
    assert np.abs(decoded - expected).mean() < 4
    url = f"{instance_url(live_server, header)}/rendered"
    small = requests.get(url, params={"quality": "5"}, timeout=60).content
    assert len(small) < len(jpeg)


def test_window_viewport_and_frames(live_server, corpus):
    multi = [
        (s, h)
        for s, h in corpus.headers.items()
        if int(h.get("NumberOfFrames") or 1) > 1 and _rendering(corpus.paths[s]) is not None
    ]
    sop, header = multi[0]
    path = corpus.paths[sop]
    url = instance_url(live_server, header)
    png = {"Accept": "image/png"}
    second = requests.get(f"{url}/frames/2/rendered", headers=png, timeout=60)
    assert np.array_equal(_image(second), _rendering(path, 1))
    windowed = requests.get(
        f"{url}/frames/1/rendered", params={"window": "100,50"}, headers=png, timeout=60
    )
    assert np.array_equal(_image(windowed), _rendering(path, 0, window=(100.0, 50.0)))
    fitted = _image(requests.get(f"{url}/rendered", params={"viewport": "64,64"}, timeout=60))
    assert max(fitted.shape[:2]) == 64
    rows, columns = int(header.Rows), int(header.Columns)
    # sx,sy,sw,sh crops the source; a negative width flips it left to right.
    crop = _image(
        requests.get(
            f"{url}/rendered",
            headers=png,
            timeout=60,
            params={"viewport": f"{columns // 2},{rows // 2},0,0,{columns // 2},{rows // 2}"},
        )
    )
    assert np.array_equal(crop, _rendering(path)[: rows // 2, : columns // 2])
    flipped = _image(
        requests.get(
            f"{url}/rendered",
            headers=png,
            timeout=60,
            params={"viewport": f"{columns},{rows},{columns},0,-{columns},{rows}"},
        )
    )
    assert np.array_equal(flipped, _rendering(path)[:, ::-1])
    count = int(header.NumberOfFrames)
    missing = requests.get(f"{url}/frames/{count + 1}/rendered", timeout=60)
    assert missing.status_code == 404 and f"{count} frame" in missing.json()["Details"]


def test_thumbnails_and_study_renderings(dicomweb, corpus, live_server):
    for study, series_uids in corpus.series_of_study.items():
        renderable = [
            s
            for s in series_uids
            if any(
                _rendering(corpus.paths[sop]) is not None for sop in corpus.instances_of_series[s]
            )
        ]
        for series in renderable:
            image = _image(
                requests.get(
                    f"{live_server}/dicom-web/studies/{study}/series/{series}/thumbnail", timeout=60
                )
            )
            assert max(image.shape[:2]) <= 128
        response = requests.get(f"{live_server}/dicom-web/studies/{study}/thumbnail", timeout=60)
        assert response.status_code == (200 if renderable else 404), study
    study = max(corpus.series_of_study, key=lambda s: len(corpus.study(s)))
    response = requests.get(
        f"{live_server}/dicom-web/studies/{study}/rendered",
        timeout=120,
        headers={"Accept": 'multipart/related; type="image/jpeg"'},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith('multipart/related; type="image/jpeg"')
    parts = response.content.count(b"Content-Type: image/jpeg")
    assert parts == sum(
        _rendering(corpus.paths[h.SOPInstanceUID]) is not None for h in corpus.study(study)
    )


@pytest.mark.parametrize(
    ("params", "headers", "status", "reason"),
    [
        ({"window": "abc"}, {}, 400, "window"),
        ({"window": "40,400,cubic"}, {}, 400, "function"),
        ({"viewport": "0,10"}, {}, 400, "viewport"),
        ({"quality": "101"}, {}, 400, "quality"),
        ({}, {"Accept": "image/tiff"}, 406, "image/jpeg"),
    ],
)
def test_bad_rendering_parameters(live_server, corpus, params, headers, status, reason):
    header = next(h for s, h in corpus.headers.items() if _rendering(corpus.paths[s]) is not None)
    response = requests.get(
        f"{instance_url(live_server, header)}/rendered", params=params, headers=headers, timeout=60
    )
    assert response.status_code == status
    assert reason in response.json()["Details"]


def _wado(server: str, header, **params) -> requests.Response:
    query = {
        "requestType": "WADO",
        "studyUID": header.StudyInstanceUID,
        "seriesUID": header.SeriesInstanceUID,
        "objectUID": header.SOPInstanceUID,
    }
    return requests.get(f"{server}/wado", params={**query, **params}, timeout=60)


def test_wado_uri_objects_and_images(live_server, corpus):
    for sop, header in corpus.headers.items():
        path = corpus.paths[sop]
        stored = _wado(live_server, header, contentType="application/dicom")
        assert stored.headers["content-type"] == "application/dicom"
        assert stored.content == path.read_bytes()
        expected = _rendering(path)
        if expected is not None:
            assert np.array_equal(
                _image(_wado(live_server, header, contentType="image/png")), expected
            )
    compressed = next(
        h
        for h in corpus.headers.values()
        if h.file_meta.TransferSyntaxUID.is_compressed
        and _rendering(corpus.paths[h.SOPInstanceUID]) is not None
    )
    explicit = _wado(
        live_server,
        compressed,
        contentType="application/dicom",
        transferSyntax=str(pydicom.uid.ExplicitVRLittleEndian),
    )
    ds = pydicom.dcmread(io.BytesIO(explicit.content))
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    original = pydicom.dcmread(corpus.paths[compressed.SOPInstanceUID])
    assert np.array_equal(ds.pixel_array, original.pixel_array)
    jpeg = _wado(live_server, compressed)  # image/jpeg by default
    assert jpeg.headers["content-type"] == "image/jpeg"
    small = _image(_wado(live_server, compressed, rows="32", columns="32"))
    assert max(small.shape[:2]) == 32
    half = _image(_wado(live_server, compressed, contentType="image/png", region="0,0,0.5,0.5"))
    rows, columns = int(compressed.Rows), int(compressed.Columns)
    assert half.shape[:2] == (rows // 2, columns // 2)


def test_wado_uri_bad_requests(live_server, corpus):
    header = next(iter(corpus.headers.values()))
    assert _wado(live_server, header, requestType="QIDO").status_code == 400
    response = requests.get(
        f"{live_server}/wado", params={"requestType": "WADO", "objectUID": "1.2"}, timeout=30
    )
    assert response.status_code == 400 and "studyUID" in response.json()["Details"]
    unknown = requests.get(
        f"{live_server}/wado",
        timeout=30,
        params={
            "requestType": "WADO",
            "studyUID": header.StudyInstanceUID,
            "seriesUID": header.SeriesInstanceUID,
            "objectUID": "1.2.3.4.5",
        },
    )
    assert unknown.status_code == 404 and "1.2.3.4.5" in unknown.json()["Details"]
    bad = _wado(live_server, header, contentType="video/mpeg")
    assert bad.status_code == 400 and "contentType" in bad.json()["Details"]
