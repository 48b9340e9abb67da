"""workbench.io over DICOMweb, against a real Orthanc (its DICOMweb plugin) and our server.

For every image series of the corpus, ``open_series(url)`` must give the array the files
give; opening must fetch no frame, and computing one frame exactly one.
"""

from __future__ import annotations

import pickle
import warnings
from typing import ClassVar

import numpy as np
import pydicom
import pytest
import requests
import xarray as xr

from workbench.io import DicomIOError, DicomWeb, FrameCache, open_series, open_study, scan
from workbench.io.dicomweb import DicomWebError
from workbench.io.display import DISPLAY_TABLES


class CountingSession(requests.Session):
    """A session that notes every URL it is asked for (it pickles with its notes)."""

    __attrs__: ClassVar[list[str]] = [*requests.Session.__attrs__, "urls"]

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def request(self, method, url, *args, **kwargs):
        self.urls.append(url)
        return super().request(method, url, *args, **kwargs)

    def frame_requests(self) -> list[str]:
        return [url for url in self.urls if "/frames/" in url]


#: us_rgb_bigendian_barre: 8-bit RGB stored with Planar Configuration 1.
PLANAR_RGB_SERIES = "1.2.840.113619.2.21.24680000.700.0.1952805748.3.0"


class Root(str):
    """A DICOMweb root URL, and whether the server is ours."""

    ours: bool = False


@pytest.fixture(params=["orthanc", "workbench"])
def server(request) -> Root:
    """The DICOMweb root of a server holding the corpus: Orthanc's plugin, or ours."""
    if request.param == "orthanc":
        return Root(request.getfixturevalue("orthanc_loaded").url + "/dicom-web")
    root = Root(request.getfixturevalue("live_server") + "/dicom-web")
    root.ours = True
    return root


def _series_url(root: str, corpus, series_uid: str) -> str:
    first = corpus.first_of_series(series_uid)
    return f"{root}/studies/{first.StudyInstanceUID}/series/{series_uid}"


def _ct_series(corpus) -> str:
    """The 28-slice JPEG 2000 CT series of the sample."""
    return next(uid for uid, sops in corpus.instances_of_series.items() if len(sops) == 28)


def _local(corpus, series_uid: str):
    """The series opened from the files the server keeps, or the error that gives."""
    files = [corpus.paths[sop] for sop in sorted(corpus.instances_of_series[series_uid])]
    try:
        return open_series(files)
    except DicomIOError as exc:
        return exc


def _assert_same_attrs(web: dict, local: dict) -> None:
    """Equal attributes; numbers equal to the precision DICOM JSON numbers keep."""
    assert web.keys() == local.keys()
    for key, expected in local.items():
        numeric = isinstance(expected, (int, float, list)) and not isinstance(expected, bool)
        if numeric and np.asarray(expected).dtype.kind in "iuf":
            np.testing.assert_allclose(web[key], expected, atol=1e-9, rtol=1e-12, err_msg=key)
            continue
        assert web[key] == expected, key


def assert_same_array(web: xr.DataArray, local: xr.DataArray) -> None:
    assert web.dims == local.dims and web.shape == local.shape and web.dtype == local.dtype
    np.testing.assert_array_equal(web.values, local.values)
    assert set(web.coords) == set(local.coords)
    for name, coord in local.coords.items():
        if coord.dtype.kind == "f":
            np.testing.assert_allclose(web[name].values, coord.values, rtol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(web[name].values, coord.values, err_msg=name)
    _assert_same_attrs(web.attrs, local.attrs)
    web_tables, local_tables = web.encoding[DISPLAY_TABLES], local.encoding[DISPLAY_TABLES]
    assert web_tables.raw == local_tables.raw
    np.testing.assert_array_equal(web_tables.palette, local_tables.palette)
    assert len(web_tables.voi_luts) == len(local_tables.voi_luts)
    for web_lut, local_lut in zip(web_tables.voi_luts, local_tables.voi_luts, strict=True):
        np.testing.assert_array_equal(web_lut["data"], local_lut["data"])


def test_every_series_opens_as_from_its_files(server, corpus):
    compared, failures = 0, {}
    for series_uid in corpus.instances_of_series:
        local = _local(corpus, series_uid)
        url = _series_url(server, corpus, series_uid)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # vendor files break VR rules
            try:
                if isinstance(local, DicomIOError):
                    # Not an image, or files that cannot form one array: the same refusal.
                    with pytest.raises(type(local)):
                        open_series(url)
                    continue
                assert_same_array(open_series(url), local)
            except AssertionError as exc:
                failures[series_uid] = str(exc)[:300]
                continue
        compared += 1
    # Our server sends native colour frames decoded (interleaved RGB) while the metadata keeps
    # (0028,0006) Planar Configuration 1: the client cannot tell. Orthanc sends them as stored.
    known = {PLANAR_RGB_SERIES} & set(corpus.instances_of_series) if server.ours else set()
    assert set(failures) == known, failures
    assert compared >= 10


def test_opening_fetches_no_frame_and_one_frame_one_request(server, corpus):
    ct = next(
        uid for uid in corpus.instances_of_series if len(corpus.instances_of_series[uid]) == 28
    )
    session = CountingSession()
    array = open_series(_series_url(server, corpus, ct), dicomweb=DicomWeb(session=session))
    assert len(session.urls) == 1 and session.urls[0].endswith("/metadata")
    assert array.data.chunks[0] == (1,) * 28
    frame = array[7].values
    assert len(session.frame_requests()) == 1
    assert session.frame_requests()[0].endswith("/frames/1")
    np.testing.assert_array_equal(frame, _local(corpus, ct)[7].values)


def test_xarray_engine_study_and_scan(server, corpus):
    ct = next(
        uid for uid in corpus.instances_of_series if len(corpus.instances_of_series[uid]) == 28
    )
    url = _series_url(server, corpus, ct)
    local = _local(corpus, ct)
    through_xarray = xr.open_dataarray(url, engine="dicom", chunks={})
    assert through_xarray.chunks[0] == (1,) * 28
    np.testing.assert_array_equal(through_xarray[3].values, local[3].values)

    study_uid = str(corpus.first_of_series(ct).StudyInstanceUID)
    study = open_study(f"{server}/studies/{study_uid}")
    assert ct in study
    np.testing.assert_array_equal(study[ct][10].values, local[10].values)

    session = CountingSession()
    catalog = scan(server, dicomweb=DicomWeb(session=session), Modality="CT")
    assert len(session.urls) == 1 and "/instances" in session.urls[0]
    expected = {
        uid
        for uid in corpus.instances_of_series
        if corpus.first_of_series(uid).get("Modality") == "CT"
    }
    assert {s.uid for s in catalog.series} | {s.uid for s in catalog.objects} == expected
    found = next(s for s in catalog.series if s.uid == ct)
    assert len(found) == 28
    np.testing.assert_array_equal(open_series(found)[5].values, local[5].values)


def test_frames_travel_compressed_and_are_cached_within_bounds(orthanc_loaded, corpus, tmp_path):
    root = orthanc_loaded.url + "/dicom-web"
    ct = _ct_series(corpus)
    url = _series_url(root, corpus, ct)
    cache = FrameCache(tmp_path / "frames", max_bytes=20_000_000)
    session = CountingSession()
    first = open_series(url, dicomweb=DicomWeb(session=session, cache=cache)).values
    assert len(session.frame_requests()) == 28
    decoded_bytes = 28 * 512 * 512 * 2
    stored = pydicom.dcmread(
        corpus.paths[min(corpus.instances_of_series[ct])], stop_before_pixels=True
    )
    if stored.file_meta.TransferSyntaxUID.is_compressed:
        # JPEG 2000 in the sample: what travelled (and is kept) is the compressed frames.
        assert 0 < cache.size() < decoded_bytes / 2
    else:
        assert decoded_bytes <= cache.size() < decoded_bytes * 1.01
    again = open_series(url, dicomweb=DicomWeb(session=session, cache=cache)).values
    np.testing.assert_array_equal(again, first)
    assert len(session.frame_requests()) == 28  # all from the cache

    # Room for about three and a half frames: the least recently used go.
    bound = int(cache.size() / 28 * 3.5)
    small = FrameCache(tmp_path / "small", max_bytes=bound)
    open_series(url, dicomweb=DicomWeb(cache=small)).compute()
    assert 0 < small.size() <= bound


def test_pickled_array_fetches_its_frames_in_workers(orthanc_loaded, corpus):
    from dask.distributed import Client, LocalCluster

    root = orthanc_loaded.url + "/dicom-web"
    ct = next(
        uid for uid in corpus.instances_of_series if len(corpus.instances_of_series[uid]) == 28
    )
    array = open_series(_series_url(root, corpus, ct), dicomweb=DicomWeb(token="not-checked"))
    assert len(pickle.dumps(array)) < 200_000
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        total = client.compute(array.sum()).result()
        pids = client.run(lambda: __import__("os").getpid())
    assert len(pids) == 2
    assert int(total) == int(_local(corpus, ct).sum())


def test_unknown_series_is_a_404_naming_the_url(server, corpus):
    some = next(iter(corpus.instances_of_series))
    url = f"{server}/studies/{corpus.first_of_series(some).StudyInstanceUID}/series/1.2.3.4.5"
    with pytest.raises(DicomWebError, match="404") as caught:
        open_series(url)
    assert caught.value.status == 404 and "1.2.3.4.5" in str(caught.value)


def test_the_viewer_opens_a_series_url_and_fetches_around_the_slice_shown(live_server, corpus):
    from concurrent.futures import wait

    from workbench.widgets import Viewer
    from workbench.widgets.cache import neighbours

    ct = _ct_series(corpus)
    local = _local(corpus, ct)
    session = CountingSession()
    url = _series_url(live_server + "/dicom-web", corpus, ct)
    viewer = Viewer(url, dicomweb=DicomWeb(session=session), thumbnails=False)
    try:
        viewport, cache = viewer.viewports[0], viewer.model.cache
        assert viewport.frame_count == 28
        opened_on = viewport.frame
        viewport.frame = 10
        np.testing.assert_array_equal(viewport.pixels(), local[10].values)
        wait(list(cache._pending.values()), timeout=60)
        fetched = {url.split("/instances/")[1].split("/")[0] for url in session.frame_requests()}
        uids = local.sop_instance_uid.values
        near = {opened_on, *neighbours(opened_on, 28), 10, *neighbours(10, 28)}
        assert {uids[i] for i in [10, *neighbours(10, 28)]} <= fetched <= {uids[i] for i in near}
        assert len(session.frame_requests()) == len(fetched), "no frame fetched twice"
    finally:
        viewer.close()
