"""QIDO-RS against the live server with dicomweb-client, checked against pydicom's reading."""

from __future__ import annotations

import fnmatch
from collections import Counter

import pytest
import requests

from tests.pacs.dicomweb_support import value, values


def _uids(answers: list[dict], keyword: str) -> list[str]:
    return [value(answer, keyword) for answer in answers]


def _text(ds, keyword: str) -> str:
    found = ds.get(keyword)
    return "" if found is None else str(found)


def test_every_study_with_its_counts_and_modalities(dicomweb, corpus, live_server):
    answers = dicomweb.search_for_studies()
    found = Counter(_uids(answers, "StudyInstanceUID"))
    assert set(found) == set(corpus.series_of_study)
    assert max(found.values()) == 1
    for answer in answers:
        study = value(answer, "StudyInstanceUID")
        files = corpus.study(study)
        assert value(answer, "PatientID") == (_text(files[0], "PatientID") or None)
        assert value(answer, "NumberOfStudyRelatedInstances") == len(files)
        assert value(answer, "NumberOfStudyRelatedSeries") == len(corpus.series_of_study[study])
        assert set(values(answer, "ModalitiesInStudy")) == {
            _text(ds, "Modality") for ds in files if _text(ds, "Modality")
        }
        assert value(answer, "StudyDate") == (_text(files[0], "StudyDate") or None)
        assert value(answer, "RetrieveURL") == f"{live_server}/dicom-web/studies/{study}"
        assert value(answer, "SpecificCharacterSet") == "ISO_IR 192"


def test_series_of_each_study_and_of_the_whole_store(dicomweb, corpus):
    everything = dicomweb.search_for_series()
    assert Counter(_uids(everything, "SeriesInstanceUID")) == Counter(
        set(corpus.instances_of_series)
    )
    # Without the study in the URL, each series answer carries its study's attributes.
    assert all(value(answer, "StudyInstanceUID") for answer in everything)
    for study, series_uids in corpus.series_of_study.items():
        answers = dicomweb.search_for_series(study_instance_uid=study)
        assert set(_uids(answers, "SeriesInstanceUID")) == series_uids
        for answer in answers:
            series = value(answer, "SeriesInstanceUID")
            first = corpus.first_of_series(series)
            assert value(answer, "Modality") == (_text(first, "Modality") or None)
            assert value(answer, "NumberOfSeriesRelatedInstances") == len(
                corpus.instances_of_series[series]
            )
            number = _text(first, "SeriesNumber")
            assert value(answer, "SeriesNumber") == (int(number) if number else None)


def test_instances_at_each_hierarchy_form(dicomweb, corpus):
    everything = dicomweb.search_for_instances()
    assert sorted(_uids(everything, "SOPInstanceUID")) == sorted(corpus.headers)
    for answer in everything:
        ds = corpus.headers[value(answer, "SOPInstanceUID")]
        assert value(answer, "SOPClassUID") == ds.SOPClassUID
        for keyword in ("Rows", "Columns", "BitsAllocated"):
            assert value(answer, keyword) == ds.get(keyword), keyword
    for study, series_uids in corpus.series_of_study.items():
        in_study = dicomweb.search_for_instances(study_instance_uid=study)
        expected = set().union(*(corpus.instances_of_series[s] for s in series_uids))
        assert set(_uids(in_study, "SOPInstanceUID")) == expected
        for series in series_uids:
            in_series = dicomweb.search_for_instances(study, series)
            assert set(_uids(in_series, "SOPInstanceUID")) == corpus.instances_of_series[series]


def _studies(dicomweb, **filters) -> set[str]:
    return set(_uids(dicomweb.search_for_studies(search_filters=filters), "StudyInstanceUID"))


def test_names_match_without_case_and_with_wildcards(dicomweb, corpus):
    names = {
        str(ds.StudyInstanceUID): str(ds.get("PatientName", "") or "")
        for ds in corpus.headers.values()
    }
    name = next(n for n in sorted(names.values()) if len(n) >= 3 and n[0].isalpha())
    pattern = name[:3].lower() + "*"
    expected = {
        study for study, text in names.items() if fnmatch.fnmatchcase(text.lower(), pattern)
    }
    assert _studies(dicomweb, PatientName=pattern) == expected
    assert _studies(dicomweb, PatientName=name.upper()) == {
        study for study, text in names.items() if text.lower() == name.lower()
    }


def test_date_ranges_uid_lists_and_modalities(dicomweb, corpus):
    dates = {str(ds.StudyInstanceUID): _text(ds, "StudyDate") for ds in corpus.headers.values()}
    known = sorted(d for d in dates.values() if d)
    low, high = known[len(known) // 4], known[3 * len(known) // 4]
    assert _studies(dicomweb, StudyDate=f"{low}-{high}") == {
        study for study, date in dates.items() if date and low <= date <= high
    }
    # As in C-FIND here (and in Orthanc), a present but empty date is before any bound.
    present = {
        str(ds.StudyInstanceUID): _text(ds, "StudyDate")
        for ds in corpus.headers.values()
        if "StudyDate" in ds
    }
    assert _studies(dicomweb, StudyDate=f"-{low}") == {
        study for study, date in present.items() if date <= low
    }
    two = sorted(dates)[:2]
    # PS3.18 8.3.4.1: a list of UIDs is comma-separated.
    assert _studies(dicomweb, StudyInstanceUID=",".join(two)) == set(two)
    with_ct = {
        str(ds.StudyInstanceUID) for ds in corpus.headers.values() if _text(ds, "Modality") == "CT"
    }
    assert _studies(dicomweb, ModalitiesInStudy="CT") == with_ct


def test_attributes_the_index_does_not_keep_match_on_the_files(dicomweb, corpus):
    rows = Counter(int(ds.Rows) for ds in corpus.headers.values() if "Rows" in ds)
    common = rows.most_common(1)[0][0]
    answers = dicomweb.search_for_instances(search_filters={"Rows": str(common)})
    assert {value(a, "SOPInstanceUID") for a in answers} == {
        sop for sop, ds in corpus.headers.items() if ds.get("Rows") == common
    }


def test_limit_and_offset_page_through_every_match(dicomweb, corpus):
    pages, offset = [], 0
    while True:
        page = dicomweb.search_for_instances(limit=7, offset=offset)
        assert len(page) <= 7
        if not page:
            break
        pages += _uids(page, "SOPInstanceUID")
        offset += 7
    assert sorted(pages) == sorted(corpus.headers)
    # Paging also holds when part of the matching happens outside the index (Rows).
    some = dicomweb.search_for_instances(search_filters={"Rows": "*"}, limit=3, offset=2)
    assert len(some) == min(3, max(0, len(corpus.headers) - 2))


def test_includefield_list_and_all(dicomweb, corpus):
    answers = dicomweb.search_for_series(fields=["BodyPartExamined", "00180050"])
    for answer in answers:
        first = corpus.first_of_series(value(answer, "SeriesInstanceUID"))
        assert value(answer, "BodyPartExamined") == (_text(first, "BodyPartExamined") or None)
        thickness = first.get("SliceThickness")
        assert value(answer, "SliceThickness") == (float(thickness) if thickness else None)
    every = dicomweb.search_for_studies(fields=["all"])
    assert all("00080062" in answer for answer in every)  # SOPClassesInStudy
    for answer in every:
        files = corpus.study(value(answer, "StudyInstanceUID"))
        assert set(values(answer, "SOPClassesInStudy")) == {str(ds.SOPClassUID) for ds in files}
        assert value(answer, "InstitutionName") == (_text(files[0], "InstitutionName") or None)


def test_fuzzy_matching_is_answered_with_a_warning(live_server):
    response = requests.get(
        f"{live_server}/dicom-web/studies",
        params={"PatientName": "a*", "fuzzymatching": "true"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom+json"
    assert response.headers["warning"].startswith("299 ")
    assert "fuzzymatching parameter is not supported" in response.headers["warning"]
    plain = requests.get(
        f"{live_server}/dicom-web/studies", params={"PatientName": "a*"}, timeout=30
    )
    assert "warning" not in plain.headers


@pytest.mark.parametrize(
    ("params", "headers", "status", "reason"),
    [
        ({"NoSuchAttribute": "x"}, {}, 400, "NoSuchAttribute"),
        ({"limit": "ten"}, {}, 400, "limit"),
        ({"StudyDate": "2020-2021-2022"}, {}, 400, "range"),
        ({"00400275.00401001": "x"}, {}, 400, "sequence"),
        ({}, {"Accept": "application/dicom+xml"}, 406, "application/dicom+json"),
    ],
)
def test_bad_searches_name_what_is_wrong(live_server, params, headers, status, reason):
    response = requests.get(
        f"{live_server}/dicom-web/studies", params=params, headers=headers, timeout=30
    )
    assert response.status_code == status
    assert reason in response.json()["Details"]
