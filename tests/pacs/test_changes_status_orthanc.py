"""``/changes`` once resources are deleted, and a series' ``Status`` from the instance count it
announces, side by side with a real Orthanc 1.10."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.uid import generate_uid

from tests.data import real_path
from tests.pacs.side_by_side import beside_orthanc

pytestmark = pytest.mark.peers

SOURCE = real_path("nema_mr1_small_transcodes/MR_small.dcm")


def series_files(folder: Path, name: str, numbers: list[int | None], **tags: str) -> list[Path]:
    """Instances of one new series of one study, numbered ``numbers`` (``None``: no
    InstanceNumber), each carrying ``tags``."""
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(SOURCE)
    template.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.16.1"
    template.SeriesInstanceUID = generate_uid()
    template.SeriesDescription = name
    for keyword, value in tags.items():
        setattr(template, keyword, value)
    paths = []
    for position, number in enumerate(numbers):
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        if number is None:
            del template.InstanceNumber
        else:
            template.InstanceNumber = number
        path = folder / f"{name}-{position}.dcm"
        template.save_as(path)
        paths.append(path)
    return paths


#: Series description → (instance numbers, announcing tags).
CASES = {
    "complete": ([1, 2, 3], {"ImagesInAcquisition": "3", "NumberOfTemporalPositions": "1"}),
    "missing": ([1, 3], {"ImagesInAcquisition": "2", "NumberOfTemporalPositions": "2"}),
    "twice": ([1, 1], {"CardiacNumberOfImages": "2"}),
    "outside": ([1, 5], {"CardiacNumberOfImages": "4"}),
    "unnumbered": ([None, 2], {"CardiacNumberOfImages": "4"}),
    "alone": ([1, 2], {"ImagesInAcquisition": "2"}),  # without NumberOfTemporalPositions
    "none announced": ([1], {"CardiacNumberOfImages": "0"}),
    "silent": ([1, 2], {}),
}


@pytest.fixture(scope="module")
def both(tmp_path_factory, orthanc):
    folder = tmp_path_factory.mktemp("status")
    paths = [path for name, (numbers, tags) in CASES.items()
             for path in series_files(folder / "files", name, numbers, **tags)]  # fmt: skip
    yield from beside_orthanc(folder, orthanc, paths)


def test_series_status_as_orthanc(both):
    seen = {}
    for name, url in both.items():
        answers = requests.get(f"{url}/series?expand", timeout=30).json()
        seen[name] = {series["MainDicomTags"]["SeriesDescription"]:
                      (series["ExpectedNumberOfInstances"], series["Status"])
                      for series in answers}  # fmt: skip
    assert seen["ours"] == seen["orthanc"]
    assert seen["ours"]["complete"] == (3, "Complete")
    assert seen["ours"]["missing"] == (4, "Missing")
    assert seen["ours"]["twice"][1] == seen["ours"]["outside"][1] == "Inconsistent"
    assert seen["ours"]["silent"] == (None, "Unknown")
    # The instance that completes a series logs CompletedSeries, as Orthanc.
    completed = {name: {c["ID"] for c in visible_changes(url, limit=1000)["Changes"]
                        if c["ChangeType"] == "CompletedSeries"}
                 for name, url in both.items()}  # fmt: skip
    assert completed["ours"] == completed["orthanc"] and len(completed["ours"]) == 1


def visible_changes(url: str, **params) -> dict:
    return requests.get(f"{url}/changes", params=params, timeout=30).json()


def test_changes_forget_deleted_resources_as_orthanc(both):
    def new_changes(url: str) -> list[tuple[str, str]]:
        answer = visible_changes(url, limit=1000)
        assert answer["Done"] is True
        return [(c["ChangeType"], c["ID"]) for c in answer["Changes"]
                if c["ChangeType"].startswith("New")]  # fmt: skip

    series = {name: {s["MainDicomTags"]["SeriesDescription"]: s
                     for s in requests.get(f"{url}/series?expand", timeout=30).json()}
              for name, url in both.items()}  # fmt: skip
    before = new_changes(both["ours"])
    assert before == new_changes(both["orthanc"])
    assert len(before) == 2 + len(CASES) + sum(len(numbers) for numbers, _ in CASES.values())
    # One instance, then a whole series: their changes go, as does every change of the
    # instances below the series; no Deleted change is shown.
    gone_instance = series["ours"]["missing"]["Instances"][0]
    gone_series = series["ours"]["complete"]
    for url in both.values():
        requests.delete(f"{url}/instances/{gone_instance}", timeout=30).raise_for_status()
        requests.delete(f"{url}/series/{gone_series['ID']}", timeout=30).raise_for_status()
    gone = {gone_instance, gone_series["ID"], *gone_series["Instances"]}
    after = new_changes(both["ours"])
    assert after == new_changes(both["orthanc"])
    assert after == [change for change in before if change[1] not in gone]
    for url in both.values():
        listed = visible_changes(url, limit=1000)["Changes"]
        assert not [c for c in listed if c["ChangeType"] == "Deleted" or c["ID"] in gone]
    # Paging past the end answers the last sequence number ever given, deleted ones
    # counted; ?last the last change still shown.
    for url in both.values():
        everything = visible_changes(url, limit=1000)
        beyond = visible_changes(url, since=everything["Last"] + 10_000)
        assert beyond["Changes"] == [] and beyond["Done"] is True
        assert beyond["Last"] >= everything["Last"]
        last = visible_changes(url, last="")
        assert last["Changes"] == everything["Changes"][-1:]
        assert last["Last"] == everything["Last"]
        page = visible_changes(url, limit=2)
        assert len(page["Changes"]) == 2 and page["Done"] is False
        assert page["Last"] == page["Changes"][-1]["Seq"]


def test_clearing_the_log_as_orthanc(both):
    for url in both.values():
        last = visible_changes(url, last="")["Last"]
        cleared = requests.delete(f"{url}/changes", timeout=30)
        assert cleared.status_code == 200 and cleared.text == ""
        after = visible_changes(url)
        assert after["Changes"] == [] and after["Done"] is True and after["Last"] >= last
        assert visible_changes(url, last="")["Changes"] == []
    # What comes next is shown, numbered after what was cleared.
    for url in both.values():
        instance = requests.get(f"{url}/instances", timeout=30).json()[0]
        requests.delete(f"{url}/instances/{instance}", timeout=30).raise_for_status()
        requests.post(f"{url}/instances", data=SOURCE.read_bytes(), timeout=30).raise_for_status()
        shown = visible_changes(url)["Changes"]
        assert [c["ChangeType"] for c in shown][:1] == ["NewInstance"]


def test_every_row_is_kept_for_hooks(tmp_path):
    """Hooks follow every row of the log (``every``), Deleted ones included."""
    from workbench.pacs import Config, Index

    index = Index(Config(StorageDirectory=str(tmp_path / "store")))
    try:
        stored = index.ingest_file(SOURCE)
        index.delete("Instance", stored.instance_id)
        rows = index.changes(limit=100, every=True)["Changes"]
        assert [(c["ChangeType"], c["ID"]) for c in rows][-1] == ("Deleted", stored.instance_id)
        shown = index.changes(limit=100)
        assert shown["Changes"] == [] and shown["Last"] == rows[-1]["Seq"]
    finally:
        index.close()
