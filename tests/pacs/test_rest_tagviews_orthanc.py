"""Tag views (``shared-tags``, ``module``, ``instances-tags``, ``/content/{keyword}``) side by
side with a real Orthanc on the same files: the same status and the same JSON."""

from __future__ import annotations

import pyorthanc
import pytest
import requests
from pydicom.datadict import dictionary_is_retired, dictionary_keyword

from tests.data import dicom_files, real_path
from tests.pacs.side_by_side import beside_orthanc

pytestmark = pytest.mark.peers

SERIES = ("series_mr_siemens_t1_sag_HFS", "nema_ct1_ge")
FORMS = ("", "?short", "?simplify")


@pytest.fixture(scope="module")
def both(tmp_path_factory, orthanc):
    paths = [path for folder in SERIES for path in dicom_files(real_path(folder))]
    yield from beside_orthanc(tmp_path_factory.mktemp("tagviews"), orthanc, paths)


def get(both, path: str) -> tuple[requests.Response, requests.Response]:
    ours, theirs = (requests.get(url + path, timeout=60) for url in both.values())
    return ours, theirs


def public(tags):
    """Tags without private attributes' names: Orthanc names them from its own private
    dictionary (GE, Siemens...), which we do not have; values and types still compare."""
    if isinstance(tags, list):
        return [public(item) for item in tags]
    if not isinstance(tags, dict):
        return tags
    result = {}
    for key, value in tags.items():
        group = key.split(",")[0]
        private = (
            len(group) == 4
            and all(c in "0123456789abcdef" for c in group)
            and (int(group, 16) % 2 == 1)
        )
        if isinstance(value, dict) and "Name" in value and private:
            value = {"Type": value["Type"], "Value": public(value["Value"])}
        result[key] = public(value) if not private or not isinstance(value, dict) else value
    return result


def _name(key: str) -> str:
    tag = int(key.replace(",", ""), 16)
    keyword = dictionary_keyword(tag)
    return f"RETIRED_{keyword}" if dictionary_is_retired(tag) else keyword


def same(both, path: str) -> dict:
    ours, theirs = get(both, path)
    assert (ours.status_code, theirs.status_code) == (200, 200), path
    mine, their = ours.json(), theirs.json()
    if "simplify" in path:  # private attributes are keyed by Orthanc's names for them
        short = requests.get(both["orthanc"] + path.replace("simplify", "short"), timeout=60)
        names = {_name(key) for key in short.json() if int(key[:4], 16) % 2 == 0}
        mine = {k: v for k, v in mine.items() if k in names}
        their = {k: v for k, v in their.items() if k in names}
    assert public(mine) == public(their), path
    return ours.json()


def resources(both, level: str) -> list[str]:
    return requests.get(f"{both['orthanc']}/{level}", timeout=30).json()


@pytest.mark.parametrize("form", FORMS)
def test_shared_tags_and_modules(both, form):
    for series in resources(both, "series"):
        shared = same(both, f"/series/{series}/shared-tags{form}")
        assert shared
        same(both, f"/series/{series}/module{form}")
    for study in resources(both, "studies"):
        same(both, f"/studies/{study}/shared-tags{form}")
        same(both, f"/studies/{study}/module{form}")
        same(both, f"/studies/{study}/module-patient{form}")
    for patient in resources(both, "patients"):
        same(both, f"/patients/{patient}/module{form}")
    for instance in resources(both, "instances")[:3]:
        same(both, f"/instances/{instance}/module{form}")


def test_instances_tags(both):
    series = resources(both, "series")
    for form in ("?short", ""):
        tags = same(both, f"/series/{series[-1]}/instances-tags{form}")
        assert set(tags) == set(
            requests.get(
                f"{both['ours']}/series/{series[-1]}/instances",
                params={"expand": "false"},
                timeout=30,
            ).json()
        )


def test_content_by_keyword_or_tag(both):
    instance = resources(both, "instances")[0]
    for part in ("PatientName", "0010-0010", "0008,0018"):
        ours, theirs = get(both, f"/instances/{instance}/content/{part}")
        assert (ours.status_code, theirs.status_code) == (200, 200)
        assert ours.content == theirs.content.rstrip(b"\0 ")
    ours, theirs = get(both, f"/instances/{instance}/content/NotAKeyword")
    assert ours.status_code == 400 and "NotAKeyword" in ours.json()["Details"]
    assert theirs.status_code >= 400
    missing = get(both, f"/series/{'0' * 8}/shared-tags")
    assert [answer.status_code for answer in missing] == [404, 404]


def test_pyorthanc_reads_tag_views(both):
    client = pyorthanc.Orthanc(both["ours"])
    series = pyorthanc.Series(resources(both, "series")[0], client)
    assert series.shared_tags["SeriesInstanceUID"] == series.uid
    study = resources(both, "studies")[0]
    assert client.get_studies_id_module_patient(study)  # the generated route exists
