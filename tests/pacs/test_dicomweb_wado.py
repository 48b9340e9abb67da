"""WADO-RS retrieve, metadata and bulk data against the live server with dicomweb-client."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
import requests
from pydicom.uid import ExplicitVRLittleEndian

from tests.pacs.dicomweb_support import instance_url, value

PIXEL_DATA = "7FE00010"
EXPLICIT = str(ExplicitVRLittleEndian)


def _reference_model(path) -> dict:
    """pydicom's JSON model of the whole file, every bulk URI written ``"bulk"``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        model = ds.to_json_dict(
            bulk_data_threshold=1024, bulk_data_element_handler=lambda _: "bulk"
        )
    if PIXEL_DATA in model:  # pixel data is always given by URI, however small
        model[PIXEL_DATA] = {"vr": model[PIXEL_DATA]["vr"], "BulkDataURI": "bulk"}
    return _ps3_18_empty_values(model)


def _ps3_18_empty_values(model: dict) -> dict:
    """PS3.18 F.2.5 where pydicom differs: no ``Value`` without values, ``null`` for an
    empty value among several."""
    fixed = {}
    for tag, element in model.items():
        element = dict(element)
        values = element.pop("Value", None)
        if values and element["vr"] == "SQ":
            element["Value"] = [_ps3_18_empty_values(item) for item in values]
        elif values and len(values) > 1:
            element["Value"] = [None if item == "" else item for item in values]
        elif values:
            element["Value"] = values
        fixed[tag] = element
    return fixed


def test_empty_values_follow_ps3_18(live_server, corpus):
    """A Type 2 sequence left empty has no ``Value``; an empty value among several is null."""
    empty_sequences = empty_parts = 0
    for sop, header in corpus.headers.items():
        model = requests.get(f"{instance_url(live_server, header)}/metadata", timeout=30).json()[0]
        for tag, element in model.items():
            raw = header.get(int(tag, 16))
            if element.get("vr") == "SQ" and raw is not None and not raw.value:
                assert "Value" not in element, (sop, tag)
                empty_sequences += 1
            if raw is not None and raw.VM > 1 and "" in list(raw.value):
                assert None in element["Value"], (sop, tag)
                empty_parts += 1
    assert empty_sequences and empty_parts


def _uris_to_bulk(model):
    if isinstance(model, dict):
        return {
            key: "bulk" if key == "BulkDataURI" else _uris_to_bulk(item)
            for key, item in model.items()
        }
    if isinstance(model, list):
        return [_uris_to_bulk(item) for item in model]
    return model


def test_series_metadata_is_each_files_json_model(dicomweb, corpus, live_server):
    for study, series_uids in corpus.series_of_study.items():
        for series in series_uids:
            models = dicomweb.retrieve_series_metadata(study, series)
            assert {value(m, "SOPInstanceUID") for m in models} == corpus.instances_of_series[
                series
            ]
            for model in models:
                sop = value(model, "SOPInstanceUID")
                assert _uris_to_bulk(model) == _uris_to_bulk(_reference_model(corpus.paths[sop])), (
                    sop
                )
                if PIXEL_DATA in model:
                    assert model[PIXEL_DATA]["BulkDataURI"] == (
                        f"{live_server}/dicom-web/studies/{study}/series/{series}"
                        f"/instances/{sop}/bulk/{PIXEL_DATA}"
                    )


def test_study_and_instance_metadata(dicomweb, corpus):
    study, series_uids = next(iter(corpus.series_of_study.items()))
    models = dicomweb.retrieve_study_metadata(study)
    expected = set().union(*(corpus.instances_of_series[s] for s in series_uids))
    assert {value(m, "SOPInstanceUID") for m in models} == expected
    series = next(iter(series_uids))
    sop = next(iter(corpus.instances_of_series[series]))
    (model,) = [dicomweb.retrieve_instance_metadata(study, series, sop)]
    assert value(model, "SOPInstanceUID") == sop


def test_every_bulk_data_uri_serves_the_value(dicomweb, corpus, live_server):
    """Bulk values other than pixel data (LUTs, overlays, icons inside sequences...)."""
    checked = 0
    for sop, path in corpus.paths.items():
        ds = corpus.headers[sop]
        model = dicomweb.retrieve_instance_metadata(ds.StudyInstanceUID, ds.SeriesInstanceUID, sop)
        for uri in _bulk_uris(model):
            if uri.endswith(f"/bulk/{PIXEL_DATA}"):
                continue
            (served,) = dicomweb.retrieve_bulkdata(uri)
            full = pydicom.dcmread(path)
            element = _element(full, uri.split("/bulk/")[1])
            assert served == element.value, uri
            checked += 1
    if checked == 0:
        pytest.skip("no bulk value other than pixel data in this corpus")


def _bulk_uris(model) -> list[str]:
    found = []
    if isinstance(model, dict):
        for key, item in model.items():
            found += [item] if key == "BulkDataURI" else _bulk_uris(item)
    elif isinstance(model, list):
        for item in model:
            found += _bulk_uris(item)
    return found


def _element(ds, path: str):
    node = ds
    for position, part in enumerate(path.split("/")):
        node = node[int(part, 16)] if position % 2 == 0 else node.value[int(part)]
    return node


def test_unknown_uids_are_404_naming_them(live_server, corpus):
    study, series_uids = next(iter(corpus.series_of_study.items()))
    other_study = next(s for s in corpus.series_of_study if s != study)
    series = next(iter(series_uids))
    for path, uid in [
        ("studies/1.2.3.999/metadata", "1.2.3.999"),
        (f"studies/{other_study}/series/{series}/metadata", series),
        (f"studies/{study}/series/{series}/instances/1.2.3.4/metadata", "1.2.3.4"),
        ("studies/1.2.3.999", "1.2.3.999"),
    ]:
        response = requests.get(f"{live_server}/dicom-web/{path}", timeout=30)
        assert response.status_code == 404, path
        assert uid in response.json()["Details"]


def _decodable(ds) -> bool:
    try:
        ds.pixel_array  # noqa: B018
    except Exception:
        return False
    return True


def test_instances_transcoded_to_explicit_little_endian(dicomweb, corpus):
    for sop, path in corpus.paths.items():
        ds = corpus.headers[sop]
        got = dicomweb.retrieve_instance(
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            sop,
            media_types=(("application/dicom", EXPLICIT),),
        )
        original = pydicom.dcmread(path)
        if "PixelData" not in original or _decodable(original):
            assert got.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian, sop
        if "PixelData" in original and _decodable(original):
            assert np.array_equal(got.pixel_array, original.pixel_array), sop
        assert got.SOPInstanceUID == sop


def test_without_a_transfer_syntax_explicit_little_endian_is_sent(live_server, corpus):
    sop = next(
        sop for sop, ds in corpus.headers.items() if ds.file_meta.TransferSyntaxUID.is_compressed
    )
    ds = corpus.headers[sop]
    url = instance_url(live_server, ds)
    response = requests.get(
        url, headers={"Accept": 'multipart/related; type="application/dicom"'}, timeout=60
    )
    assert response.status_code == 200
    assert f"transfer-syntax={EXPLICIT}" in response.text[:300]


def test_transfer_syntax_star_sends_the_stored_file(dicomweb, corpus):
    for sop, path in corpus.paths.items():
        ds = corpus.headers[sop]
        got = dicomweb.retrieve_instance(
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            sop,
            media_types=(("application/dicom", "*"),),
        )
        original = pydicom.dcmread(path)
        assert got.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert got.get("PixelData") == original.get("PixelData"), sop


def test_series_and_study_retrieval_hold_every_instance(dicomweb, corpus):
    study, series_uids = max(corpus.series_of_study.items(), key=lambda item: len(item[1]))
    series = next(iter(series_uids))
    got = dicomweb.retrieve_series(study, series, media_types=(("application/dicom", "*"),))
    assert {str(ds.SOPInstanceUID) for ds in got} == corpus.instances_of_series[series]
    got = dicomweb.retrieve_study(study, media_types=(("application/dicom", "*"),))
    assert {str(ds.SOPInstanceUID) for ds in got} == set().union(
        *(corpus.instances_of_series[s] for s in series_uids)
    )


def test_unsupported_media_types_are_406(live_server, corpus):
    ds = next(iter(corpus.headers.values()))
    url = instance_url(live_server, ds)
    response = requests.get(
        url, headers={"Accept": 'multipart/related; type="image/png"'}, timeout=30
    )
    assert response.status_code == 406
    assert "application/dicom" in response.json()["Details"]
    response = requests.get(
        url,
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=1.2.3.4'},
        timeout=30,
    )
    assert response.status_code == 406
