"""Scan folders, file lists and ZIP archives into a patient / study / series catalog.

Only headers are read (see :mod:`workbench.io.headers`); pixel data is never touched. Files
that are not DICOM, or are damaged, are listed in :attr:`Catalog.skipped` with the reason.
Series of non-image objects (presentation states, reports, segmentations, PDFs; see
:mod:`workbench.io.objects`) are listed in :attr:`Catalog.objects`, apart from the images.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from workbench.io.errors import DicomIOError, blaming
from workbench.io.headers import HEADER_KEYWORDS, InstanceHeader, read_header
from workbench.io.objects import object_kind
from workbench.io.sources import DicomFile, Source, iter_files


@dataclass
class Skipped:
    """A file the scan did not catalog, and why."""

    path: str
    reason: str
    error: Exception | None = field(default=None, repr=False, compare=False)


@dataclass
class Series:
    """One series: its headers in the order found. Pass it to :func:`~workbench.io.open_series`.

    A series of non-image objects (``kind`` other than ``"image"``) is cataloged too, but it
    does not open as an array.
    """

    uid: str
    modality: str
    description: str
    number: int | None
    study_uid: str
    instances: list[InstanceHeader] = field(default_factory=list, repr=False)

    @property
    def files(self) -> list[DicomFile]:
        return [header.file for header in self.instances]

    @property
    def number_of_frames(self) -> int:
        return sum(header.number_of_frames for header in self.instances)

    @property
    def kind(self) -> str:
        """``"image"``, or what the series' objects are (e.g. ``"presentation state"``)."""
        kinds = [header_kind(header) for header in self.instances]
        if any(kind is None for kind in kinds):
            return "image"
        return kinds[0] if kinds else "image"

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    def __len__(self) -> int:
        return len(self.instances)


def header_kind(header: InstanceHeader) -> str | None:
    """What a non-image object is (see :func:`workbench.io.objects.object_kind`); ``None`` for
    an image."""
    return object_kind(header.text("SOPClassUID"), header.pixel_keyword is not None)


@dataclass
class Study:
    """One study and its series, keyed by Series Instance UID."""

    uid: str
    date: str
    time: str
    description: str
    accession_number: str
    patient_id: str
    series: dict[str, Series] = field(default_factory=dict, repr=False)


@dataclass
class Patient:
    """One patient (by Patient ID and name) and their studies, keyed by Study Instance UID."""

    id: str
    name: str
    birth_date: str
    sex: str
    studies: dict[str, Study] = field(default_factory=dict, repr=False)


@dataclass
class Catalog:
    """Patients -> studies -> series -> instance headers, and what was skipped."""

    patients: dict[tuple[str, str], Patient] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def studies(self) -> list[Study]:
        return [study for patient in self.patients.values() for study in patient.studies.values()]

    @property
    def series(self) -> list[Series]:
        """The image series (what :func:`~workbench.io.open_series` opens)."""
        return [series for series in self._all_series if series.is_image]

    @property
    def objects(self) -> list[Series]:
        """Series of non-image objects: presentation states, reports, segmentations..."""
        return [series for series in self._all_series if not series.is_image]

    @property
    def _all_series(self) -> list[Series]:
        return [series for study in self.studies for series in study.series.values()]

    @property
    def instances(self) -> list[InstanceHeader]:
        """Every cataloged header, of images and other objects."""
        return [header for series in self._all_series for header in series.instances]

    def find_series(self, uid: str) -> Series:
        """The series (of images or other objects) with Series Instance UID ``uid``.

        Raises
        ------
        KeyError
            No series has that UID; the message lists the ones there are.
        """
        for series in self._all_series:
            if series.uid == uid:
                return series
        raise KeyError(f"no series {uid!r}; the catalog holds: {self.describe_series()}")

    def describe_series(self) -> str:
        """One line per series: UID, modality, description, instance count (and the kind of
        non-image objects)."""
        return "; ".join(
            f"{s.uid} ({s.modality or '?'}, {s.description or 'no description'!r}, {len(s)} files"
            f"{'' if s.is_image else ', ' + s.kind})"
            for s in self._all_series
        )

    def add(self, header: InstanceHeader) -> None:
        """File one header under its patient, study and series."""
        patient_key = (header.text("PatientID"), header.text("PatientName"))
        patient = self.patients.get(patient_key)
        if patient is None:
            patient = self.patients[patient_key] = Patient(
                id=patient_key[0],
                name=patient_key[1],
                birth_date=header.text("PatientBirthDate"),
                sex=header.text("PatientSex"),
            )
        study_uid = header.text("StudyInstanceUID")
        study = patient.studies.get(study_uid)
        if study is None:
            study = patient.studies[study_uid] = Study(
                uid=study_uid,
                date=header.text("StudyDate"),
                time=header.text("StudyTime"),
                description=header.text("StudyDescription"),
                accession_number=header.text("AccessionNumber"),
                patient_id=patient.id,
            )
        series_uid = header.text("SeriesInstanceUID")
        series = study.series.get(series_uid)
        if series is None:
            number = header.get("SeriesNumber")
            series = study.series[series_uid] = Series(
                uid=series_uid,
                modality=header.text("Modality"),
                description=header.text("SeriesDescription"),
                number=int(number) if number not in (None, "") else None,
                study_uid=study_uid,
            )
        series.instances.append(header)

    def to_dataframe(self):
        """One row per series, as a :class:`pandas.DataFrame`; ``kind`` tells image series
        from other objects."""
        import pandas as pd

        rows = []
        for patient in self.patients.values():
            for study in patient.studies.values():
                for series in study.series.values():
                    rows.append(
                        {
                            "PatientID": patient.id,
                            "PatientName": patient.name,
                            "StudyInstanceUID": study.uid,
                            "StudyDate": study.date,
                            "StudyDescription": study.description,
                            "SeriesInstanceUID": series.uid,
                            "SeriesNumber": series.number,
                            "Modality": series.modality,
                            "SeriesDescription": series.description,
                            "kind": series.kind,
                            "instances": len(series),
                            "frames": series.number_of_frames,
                        }
                    )
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return (
            f"Catalog({len(self.patients)} patients, {len(self.studies)} studies, "
            f"{len(self.series)} series, {len(self.objects)} series of other objects, "
            f"{len(self.instances)} instances, {len(self.skipped)} skipped)"
        )


def _without_traceback(exc: Exception) -> Exception:
    """The error without its tracebacks, whose frames would keep each file's bytes alive."""
    seen = exc
    while seen is not None:
        seen.__traceback__ = None
        seen = seen.__cause__ or seen.__context__
    return exc


def iter_headers(
    source: Source,
    *,
    recursive: bool = True,
    progress: bool = True,
    keywords: tuple[str, ...] = HEADER_KEYWORDS,
) -> Iterator[InstanceHeader | Skipped]:
    """Read each file's header (the elements in ``keywords``), yielding it or a
    :class:`Skipped` record."""
    files = list(iter_files(source, recursive=recursive))
    # tqdm.auto draws a notebook widget in Jupyter; `delay` keeps quick scans silent.
    bar = tqdm(
        files,
        desc="Scanning DICOM headers",
        unit="file",
        disable=not progress,
        delay=0.5,
        leave=False,
    )
    for file in bar:
        try:
            yield read_header(file, keywords=keywords)
        except DicomIOError as exc:
            yield Skipped(str(file), exc.reason, _without_traceback(exc))


def scan(
    source: Source,
    *,
    recursive: bool = True,
    progress: bool = True,
    dicomweb=None,
    **query: str,
) -> Catalog:
    """Catalog the DICOM files in ``source`` from their headers alone.

    Parameters
    ----------
    source : path, list of paths, ZIP archive, or DICOMweb service root URL
        A folder (searched recursively by default), one file, a ZIP archive, or a list
        of any of these. Or ``https://host/dicom-web``: the catalog is then one QIDO-RS
        instance search, nothing downloaded (see :func:`workbench.io.webseries.scan_dicomweb`).
    recursive : bool
        Search sub-folders.
    progress : bool
        Show a tqdm progress bar when the scan takes more than half a second.
    dicomweb : DicomWeb, requests.Session or dicomweb_client.DICOMwebClient, optional
        How to reach a DICOMweb server.
    **query
        QIDO-RS search keys for a DICOMweb server (``PatientID="123"``, ``Modality="CT"``).

    Returns
    -------
    Catalog
        ``catalog.patients`` / ``.studies`` / ``.series`` (image series), ``.objects``
        (presentation states, reports and other non-image objects) and ``.skipped`` (path and
        reason for every file not cataloged: not DICOM, damaged, truncated).

    Examples
    --------
    >>> catalog = scan("exports/")                       # doctest: +SKIP
    >>> catalog.to_dataframe()                           # doctest: +SKIP
    >>> volume = open_series(catalog.series[0])          # doctest: +SKIP
    """
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        from workbench.io.webseries import scan_dicomweb  # imports this module

        return scan_dicomweb(source, dicomweb=dicomweb, **query)
    if query:
        raise TypeError(f"search keys {sorted(query)} apply to DICOMweb servers only")
    catalog = Catalog()
    for item in iter_headers(source, recursive=recursive, progress=progress):
        if isinstance(item, Skipped):
            catalog.skipped.append(item)
            continue
        try:
            with blaming(item.file):
                catalog.add(item)
        except DicomIOError as exc:
            catalog.skipped.append(Skipped(str(item.file), exc.reason, exc))
    return catalog
