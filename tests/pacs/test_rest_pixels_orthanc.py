"""Pixels over REST side by side with a real Orthanc on the same files: ``preview``,
``rendered`` with a window, ``image-uint8/uint16/int16``, ``numpy`` and ``frames/{n}/raw``
give the same statuses, shapes, types and values (JPEG decoders may differ by a few levels)."""

from __future__ import annotations

import io

import numpy as np
import pyorthanc
import pytest
import requests
from PIL import Image

from tests.data import dicom_files, real_path
from tests.pacs.side_by_side import beside_orthanc

pytestmark = pytest.mark.peers

#: A JPEG-LS CT (grayscale, rescaled), a YBR JPEG multi-frame ultrasound, an RLE RGB image.
FILES = ("nema_ct1_ge", "us_multiframe_ybr422_jpeg", "sc_rgb_rle")
ROUTES = ("preview", "image-uint8", "image-uint16", "image-int16", "numpy", "numpy?rescale=0",
          "frames/0/numpy", "frames/0/raw", "frames/1/raw", "frames/0/image-uint8",
          "rendered?window-center=40&window-width=400",
          "frames/0/rendered?window-center=40&window-width=400&width=64")  # fmt: skip
#: Largest difference of a decoded value (the JPEG baseline decoders round differently).
TOLERANCE = 3


@pytest.fixture(scope="module")
def both(tmp_path_factory, orthanc):
    paths = [dicom_files(real_path(folder))[0] for folder in FILES]
    yield from beside_orthanc(tmp_path_factory.mktemp("pixels"), orthanc, paths)


def decoded(response: requests.Response, route: str):
    if "numpy" in route:
        return np.load(io.BytesIO(response.content))
    if "raw" in route:
        return response.content
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_pixels_equal_orthancs(both):
    instances = requests.get(both["orthanc"] + "/instances", timeout=30).json()
    assert len(instances) == len(FILES)
    for instance in instances:
        for route in ROUTES:
            ours, theirs = (requests.get(f"{url}/instances/{instance}/{route}", timeout=60)
                            for url in both.values())  # fmt: skip
            where = f"{instance}/{route}"
            assert ours.status_code == theirs.status_code, where
            if ours.status_code != 200:
                assert ours.json()["Details"], where  # the reason, as JSON
                continue
            assert ours.headers["content-type"] == theirs.headers["content-type"], where
            mine, their = decoded(ours, route), decoded(theirs, route)
            if isinstance(mine, bytes):
                assert mine == their, where
            else:
                assert (mine.shape, mine.dtype) == (their.shape, their.dtype), where
                difference = np.abs(mine.astype(float) - their.astype(float)).max()
                assert difference <= TOLERANCE, where


def test_series_numpy(both):
    for series in requests.get(both["orthanc"] + "/series", timeout=30).json():
        for query in ("", "?rescale=0"):
            ours, theirs = (requests.get(f"{url}/series/{series}/numpy{query}", timeout=60)
                            for url in both.values())  # fmt: skip
            assert ours.status_code == theirs.status_code == 200
            mine, their = decoded(ours, "numpy"), decoded(theirs, "numpy")
            assert (mine.shape, mine.dtype) == (their.shape, their.dtype)
            assert np.abs(mine.astype(float) - their.astype(float)).max() <= TOLERANCE


def test_image_formats_by_accept(both):
    instance = requests.get(both["ours"] + "/instances", timeout=30).json()[0]
    for accept, kind in [("image/jpeg", "image/jpeg"), ("*/*", "image/png"),
                         ("text/html,image/*;q=0.8", "image/png")]:  # fmt: skip
        for url in both.values():
            response = requests.get(f"{url}/instances/{instance}/preview",
                                    headers={"Accept": accept}, timeout=30)  # fmt: skip
            assert response.headers["content-type"] == kind
            assert Image.open(io.BytesIO(response.content)).format == kind.split("/")[1].upper()
    refused = requests.get(f"{both['ours']}/instances/{instance}/preview",
                           headers={"Accept": "image/gif"}, timeout=30)  # fmt: skip
    assert refused.status_code == 404 and "PNG or JPEG" in refused.json()["Details"]


def test_bad_arguments_name_the_problem(both):
    instance = requests.get(both["ours"] + "/instances", timeout=30).json()[0]
    for query, reason in [("window-center=40", "window-width"),
                          ("window-center=a&window-width=4", "number"),
                          ("width=-3", "width")]:  # fmt: skip
        response = requests.get(f"{both['ours']}/instances/{instance}/rendered?{query}",
                                timeout=30)  # fmt: skip
        assert response.status_code == 400 and reason in response.json()["Details"]


def test_compressed_numpy_and_pyorthanc(both):
    client = pyorthanc.Orthanc(both["ours"])
    for instance in client.get_instances():
        plain = np.load(io.BytesIO(client.get_instances_id_numpy(instance)))
        packed = np.load(
            io.BytesIO(client.get_instances_id_numpy(instance, params={"compress": True}))
        )
        assert np.array_equal(packed[packed.files[0]], plain)
        assert plain.ndim == 4 and plain.shape[0] == len(client.get_instances_id_frames(instance))
