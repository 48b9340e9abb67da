"""What the DICOMweb tests check answers against: the corpus read with pydicom."""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pydicom


@dataclass
class Corpus:
    """The headers of every file of a corpus, by study, series and instance UID."""

    headers: dict[str, pydicom.Dataset] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    series_of_study: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    instances_of_series: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def study(self, study_uid: str) -> list[pydicom.Dataset]:
        return [h for h in self.headers.values() if h.StudyInstanceUID == study_uid]

    def first_of_series(self, series_uid: str) -> pydicom.Dataset:
        return self.headers[sorted(self.instances_of_series[series_uid])[0]]


def read_corpus(files: list[Path]) -> Corpus:
    corpus = Corpus()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in files:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            sop = str(ds.SOPInstanceUID)
            if sop in corpus.headers:
                continue  # the store keeps the first file of an instance (AlreadyStored)
            corpus.headers[sop] = ds
            corpus.paths[sop] = path
            corpus.series_of_study[str(ds.StudyInstanceUID)].add(str(ds.SeriesInstanceUID))
            corpus.instances_of_series[str(ds.SeriesInstanceUID)].add(sop)
    return corpus


def value(answer: dict, keyword: str):
    """The first value of ``keyword`` in a DICOM JSON object (``None`` when absent/empty)."""
    element = answer.get(f"{pydicom.datadict.tag_for_keyword(keyword):08X}") or {}
    values = element.get("Value") or [None]
    first = values[0]
    return first["Alphabetic"] if isinstance(first, dict) and "Alphabetic" in first else first


def values(answer: dict, keyword: str) -> list:
    element = answer.get(f"{pydicom.datadict.tag_for_keyword(keyword):08X}") or {}
    return list(element.get("Value") or [])


def instance_url(server: str, ds: pydicom.Dataset) -> str:
    """The WADO-RS URL of the instance whose header is ``ds``."""
    return (
        f"{server}/dicom-web/studies/{ds.StudyInstanceUID}/series/"
        f"{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    )
