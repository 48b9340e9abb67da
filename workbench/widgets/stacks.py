"""What a viewer can show: stacks from folders, files, volumes, grouped by study.

A *stack* is what one viewport scrolls through: a series, or the frames of one multi-frame
image when a series holds several multi-frame images (an ultrasound exam, an enhanced MR
acquisition split in instances).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from workbench.io.catalog import Series
from workbench.io.dicomweb import is_dicomweb_url
from workbench.io.sources import DicomFile
from workbench.widgets.model import as_stack


@dataclass
class StoredObjects:
    """A series of non-image objects held by an index, as a viewer lists it."""

    uid: str
    modality: str
    description: str
    kind: str


@dataclass
class LoadResult:
    """What a viewer source holds.

    Attributes
    ----------
    stacks
        What the viewports can show.
    skipped
        Files or series that could not be opened, with the reason.
    image_files
        The file of each image, by SOP Instance UID (sources of files only).
    objects
        Series of non-image objects found (presentation states, reports, segmentations...):
        catalog series for files, :class:`StoredObjects` for an index.
    """

    stacks: list[xr.DataArray] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    image_files: dict[str, DicomFile] = field(default_factory=dict)
    objects: list[Series | StoredObjects] = field(default_factory=list)

    @property
    def state_files(self) -> list[DicomFile]:
        """The presentation-state files among the objects."""
        return [
            header.file
            for series in self.objects
            if isinstance(series, Series) and series.kind == "presentation state"
            for header in series.instances
        ]


def split_multiframe(volume: xr.DataArray) -> list[xr.DataArray]:
    """One stack per multi-frame image when a series holds several; else the series itself.

    Each part's ``attrs["stack_part"]`` is ``(k, n)``: image ``k`` of the ``n`` in the series,
    so that labels can tell the parts apart.
    """
    if "sop_instance_uid" not in volume.coords or volume.sizes.get("frame", 1) < 2:
        return [volume]
    uids = volume.coords["sop_instance_uid"].values
    unique, first_index, counts = np.unique(uids, return_index=True, return_counts=True)
    if len(unique) < 2 or counts.max() < 2:
        return [volume]
    order = unique[np.argsort(first_index)]
    return [
        volume.isel(frame=np.flatnonzero(uids == uid)).assign_attrs(stack_part=(k, len(order)))
        for k, uid in enumerate(order, start=1)
    ]


def preview_frame(stack: xr.DataArray) -> int:
    """The frame a stack's thumbnail shows, and the one it opens on when picked: the middle."""
    return int(stack.sizes["frame"]) // 2


def _is_path_like(source) -> bool:
    return isinstance(source, (str, os.PathLike))


def load_stacks(source, *, dicomweb=None) -> LoadResult:
    """Turn a viewer source into stacks.

    Parameters
    ----------
    source
        A folder, a file or a list of files (scanned with :func:`workbench.io.scan`, each
        series opened lazily with :func:`workbench.io.open_series`); a DICOMweb series or
        study URL (``https://host/dicom-web/studies/{study}[/series/{series}]``: frames are
        fetched as they are shown); an ``xarray.DataArray``; or a list of any of these.
    dicomweb : workbench.io.DicomWeb, optional
        How to reach the server of DICOMweb URLs (authentication, retries, frame cache).

    Raises
    ------
    TypeError
        For any other kind of source.
    FileNotFoundError
        When a path does not exist.
    """
    result = LoadResult()
    if source is None:
        return result
    if isinstance(source, xr.DataArray):
        result.stacks.extend(split_multiframe(as_stack(source)))
        return result
    items = list(source) if isinstance(source, Sequence) and not _is_path_like(source) else [source]
    urls = [s for s in items if is_dicomweb_url(s)]
    items = [s for s in items if not is_dicomweb_url(s)]
    volumes = [s for s in items if isinstance(s, xr.DataArray)]
    paths = [s for s in items if _is_path_like(s)]
    others = [s for s in items if not isinstance(s, xr.DataArray) and not _is_path_like(s)]
    if others:
        raise TypeError(
            "a viewer source is a folder, file, list of files, DICOMweb URL, xarray.DataArray "
            f"or a list of them; got {type(others[0]).__name__}"
        )
    for url in urls:
        volumes.extend(_open_url(url, dicomweb))
    for volume in volumes:
        result.stacks.extend(split_multiframe(as_stack(volume)))
    if paths:
        from workbench.io import DicomIOError, open_series, scan

        for path in paths:
            if not Path(path).exists():
                raise FileNotFoundError(f"no such file or folder: {path}")
        catalog = scan(paths if len(paths) > 1 else paths[0], progress=False)
        result.skipped.extend((s.path, s.reason) for s in catalog.skipped)
        result.objects.extend(catalog.objects)
        for series in catalog.series:
            try:
                volume = open_series(series)
            except DicomIOError as error:
                result.skipped.append((f"series {series.uid} ({series.description})", str(error)))
                continue
            result.stacks.extend(split_multiframe(volume))
            for header in series.instances:
                result.image_files[header.text("SOPInstanceUID")] = header.file
    return result


def _open_url(url: str, dicomweb) -> list[xr.DataArray]:
    """The series of a DICOMweb series or study URL (metadata only; frames come later)."""
    from workbench.io import open_series, open_study
    from workbench.io.dicomweb import Resource

    resource = Resource.parse(url)
    if resource.series is None:
        return list(open_study(url, dicomweb=dicomweb).values())
    return [open_series(url, dicomweb=dicomweb)]


def stacks_from_index(index, public_id: str, level: str = "Study") -> LoadResult:
    """Stacks of a patient, study or series stored in a :class:`workbench.pacs.Index`.

    Only the index's public methods are used (``children``, ``open_series`` and
    ``main_dicom_tags``), so the viewer does not depend on the PACS package. Series of
    non-image objects are listed in ``objects`` (the index keeps presentation states itself).
    """
    level = level.capitalize()
    order = ["Patient", "Study", "Series"]
    if level not in order:
        raise ValueError(f"level must be Patient, Study or Series, not {level!r}")
    series_ids = [public_id]
    for _ in range(order.index("Series") - order.index(level)):
        series_ids = [child for parent in series_ids for child in index.children(level, parent)]
        level = order[order.index(level) + 1]
    from workbench.io import DicomIOError, NotAnImageError

    result = LoadResult()
    for series_id in series_ids:
        try:
            result.stacks.extend(split_multiframe(index.open_series(series_id)))
        except NotAnImageError as error:  # presentation states, reports...: listed as such
            tags = index.main_dicom_tags("Series", series_id)
            result.objects.append(
                StoredObjects(
                    uid=tags.get("SeriesInstanceUID", series_id),
                    modality=tags.get("Modality", ""),
                    description=tags.get("SeriesDescription", ""),
                    kind=error.kind,
                )
            )
        except DicomIOError as error:
            result.skipped.append((f"series {series_id}", str(error)))
    return result


@dataclass
class StudyGroup:
    """Stacks of one study, as the thumbnail panel lists them."""

    uid: str
    label: str
    stacks: list[int] = field(default_factory=list)  # indices into the viewer's stacks


def group_by_study(stacks: Sequence[xr.DataArray]) -> list[StudyGroup]:
    """Group stacks by (0020,000D) Study Instance UID, in first-seen order."""
    groups: dict[str, StudyGroup] = {}
    for index, stack in enumerate(stacks):
        a = stack.attrs
        uid = str(a.get("StudyInstanceUID") or f"volume-{index}")
        if uid not in groups:
            date = str(a.get("StudyDate") or "")
            if len(date) == 8 and date.isdigit():
                date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
            name = str(a.get("PatientName") or "").replace("^", " ").strip()
            parts = [p for p in (name, date, str(a.get("StudyDescription") or "")) if p]
            groups[uid] = StudyGroup(uid, " · ".join(parts) or "Volume")
        groups[uid].stacks.append(index)
    return list(groups.values())


def stack_label(stack: xr.DataArray) -> str:
    """Series number, modality, description, which image of a split series, frame count.

    e.g. ``"#2 CT · STD BRAIN 5MM · 28 fr"`` or ``"#6 MR · REST1 · image 2/4 · 6 fr"``.
    """
    a = stack.attrs
    number = str(a.get("SeriesNumber") or "").strip()
    head = " ".join(p for p in (f"#{number}" if number else "", str(a.get("Modality") or "")) if p)
    parts = [head, str(a.get("SeriesDescription") or "")]
    if a.get("stack_part"):
        k, n = a["stack_part"]
        parts.append(f"image {k}/{n}")
    parts.append(f"{stack.sizes['frame']} fr")
    return " · ".join(p for p in parts if p and p != "None")
