"""Where saved presentation states live: an index, a state folder, or memory.

A GSPS is an ordinary DICOM instance of the images' study, in a series of its own, so an
index stores, exports and sends it like any other instance. The stores here only add what a
viewer needs on top: list the states that refer to an image, fetch one, delete one.

- :class:`IndexStateStore` keeps states in an index: anything that is a :class:`StateIndex`,
  as :class:`workbench.pacs.Index` is (``io`` does not import ``pacs``).
- :class:`FolderStateStore` writes ``<Study Instance UID>/PR_<SOP Instance UID>.dcm`` files
  into a state folder of its own (:func:`default_state_dir` unless the user names one), never
  beside the images: image folders are the user's and stay as they were.
- :class:`FoundStateStore` lists presentation states that came with the images (found by a
  scan); they are read, never changed or deleted.
- :class:`CombinedStateStore` saves into one store and lists that store's states with found
  ones.
- :class:`MemoryStateStore` keeps them for the session only.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeAlias, runtime_checkable

import platformdirs
import pydicom
from pydicom.dataset import Dataset

from workbench.io.errors import DicomIOError
from workbench.io.gsps.reader import PRESENTATION_STATE_CLASSES, read
from workbench.io.presentation import ImageReference, PresentationState
from workbench.io.sources import DicomFile

#: Environment variable naming the folder where viewers keep presentation states of files.
STATE_DIR_VARIABLE = "WORKBENCH_STATE_DIR"

#: Headers needed to list a state without reading its graphics.
_SUMMARY_TAGS = [
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
    "ContentLabel", "ContentDescription", "ContentCreatorName",
    "PresentationCreationDate", "PresentationCreationTime", "ReferencedSeriesSequence",
    "SeriesDescription", "Manufacturer", "InstanceNumber",
]  # fmt: skip


@dataclass
class StoredState:
    """One saved presentation state, as a list of saved states shows it.

    Attributes
    ----------
    key
        What the store calls it (the GSPS SOP Instance UID).
    name, creator, created
        Content Description (else Label), Content Creator's Name, creation date and time.
    images
        The images it refers to.
    study_instance_uid, series_instance_uid
        Where it sits in the DICOM hierarchy.
    """

    key: str
    name: str
    creator: str
    created: Any
    images: list[ImageReference] = field(default_factory=list)
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    series_description: str = ""
    manufacturer: str = ""
    #: ``False`` for states that came with the images: they are shown, never deleted.
    writable: bool = True

    def refers_to(self, sop_instance_uid: str) -> bool:
        return any(ref.sop_instance_uid == sop_instance_uid for ref in self.images)


def summarize(ds: Dataset) -> StoredState:
    """A :class:`StoredState` from a GSPS header."""
    state = read(ds)
    return StoredState(
        key=str(ds.SOPInstanceUID),
        name=state.name,
        creator=state.creator,
        created=state.created,
        images=state.images,
        study_instance_uid=str(ds.get("StudyInstanceUID", "")),
        series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
        series_description=str(ds.get("SeriesDescription", "") or ""),
        manufacturer=str(ds.get("Manufacturer", "") or ""),
    )


def _read_summary(file: DicomFile) -> StoredState | None:
    """The state in ``file``, or ``None`` when it is not a presentation state (or not DICOM)."""
    try:
        with file.open() as fp:
            ds = pydicom.dcmread(fp, specific_tags=_SUMMARY_TAGS, stop_before_pixels=True)
        if str(ds.get("SOPClassUID", "")) in PRESENTATION_STATE_CLASSES:
            return summarize(ds)
    except (pydicom.errors.InvalidDicomError, DicomIOError, OSError, ValueError, EOFError):
        pass
    return None


def default_state_dir() -> Path:
    """Where viewers keep the presentation states of images opened from files.

    ``$WORKBENCH_STATE_DIR`` when set, else ``states`` in the user's data folder
    (``~/.local/share/workbench/states`` on Linux, from :mod:`platformdirs`).
    """
    named = os.environ.get(STATE_DIR_VARIABLE)
    if named:
        return Path(named).expanduser()
    return platformdirs.user_data_path("workbench") / "states"


def _to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


class StateStore:
    """What viewers need from a place that keeps presentation states."""

    def save(self, ds: Dataset) -> StoredState:
        """Store a GSPS dataset (from :func:`workbench.io.gsps.write`)."""
        raise NotImplementedError

    def states(
        self, *, study_instance_uid: str | None = None, sop_instance_uid: str | None = None
    ) -> list[StoredState]:
        """Saved states of a study, or those referring to one image, oldest first."""
        raise NotImplementedError

    def dataset(self, key: str) -> Dataset:
        """The stored GSPS dataset."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Delete a state for good."""
        raise NotImplementedError

    def load(self, key: str, **read_args: Any) -> PresentationState:
        """The stored state read back (see :func:`workbench.io.gsps.read`)."""
        return read(self.dataset(key), **read_args)

    def image_header(self, sop_instance_uid: str) -> Dataset | None:
        """The stored header of a referenced image, when the store holds images too."""
        return None

    @staticmethod
    def _select(
        found: Iterable[StoredState], study: str | None, image: str | None
    ) -> list[StoredState]:
        out = [
            s
            for s in found
            if (study is None or s.study_instance_uid == study)
            and (image is None or s.refers_to(image))
        ]
        return sorted(out, key=lambda s: (str(s.created), s.key))


class MemoryStateStore(StateStore):
    """States kept in memory for the session."""

    def __init__(self) -> None:
        self._datasets: dict[str, Dataset] = {}

    def save(self, ds: Dataset) -> StoredState:
        # Keep what a file would hold, not the live object the caller may change.
        stored = pydicom.dcmread(io.BytesIO(_to_bytes(ds)))
        self._datasets[str(stored.SOPInstanceUID)] = stored
        return summarize(stored)

    def states(self, *, study_instance_uid=None, sop_instance_uid=None) -> list[StoredState]:
        found = [summarize(ds) for ds in self._datasets.values()]
        return self._select(found, study_instance_uid, sop_instance_uid)

    def dataset(self, key: str) -> Dataset:
        try:
            return self._datasets[key]
        except KeyError:
            raise KeyError(f"no saved presentation state {key}") from None

    def delete(self, key: str) -> None:
        self.dataset(key)
        del self._datasets[key]


class FolderStateStore(StateStore):
    """States as files in a state folder, one sub-folder per study.

    Saved states go to ``<folder>/<Study Instance UID>/PR_<SOP Instance UID>.dcm``. Every
    presentation state file in the folder (and below it) is listed, including those other
    software put there.

    Parameters
    ----------
    folder
        The state folder; created on the first save.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._summaries: dict[Path, tuple[float, StoredState | None]] = {}

    def path_of(self, ds: Dataset) -> Path:
        """Where a state is saved."""
        study = str(ds.get("StudyInstanceUID", "") or "no-study")
        return self.folder / study / f"PR_{ds.SOPInstanceUID}.dcm"

    def save(self, ds: Dataset) -> StoredState:
        path = self.path_of(ds)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        temp.write_bytes(_to_bytes(ds))
        os.replace(temp, path)
        return self._summary(path)

    def _summary(self, path: Path) -> StoredState | None:
        """The state in ``path`` (``None`` for other files), cached by modification time."""
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        cached = self._summaries.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        summary = _read_summary(DicomFile(str(path)))
        self._summaries[path] = (mtime, summary)
        return summary

    def _files(self) -> dict[str, Path]:
        found = {}
        if not self.folder.is_dir():
            return found
        for path in sorted(self.folder.rglob("*")):
            if path.is_file() and path.suffix != ".tmp":
                summary = self._summary(path)
                if summary is not None:
                    found[summary.key] = path
        return found

    def states(self, *, study_instance_uid=None, sop_instance_uid=None) -> list[StoredState]:
        found = [self._summary(path) for path in self._files().values()]
        return self._select(found, study_instance_uid, sop_instance_uid)

    def _path(self, key: str) -> Path:
        try:
            return self._files()[key]
        except KeyError:
            raise KeyError(f"no saved presentation state {key} in {self.folder}") from None

    def dataset(self, key: str) -> Dataset:
        return pydicom.dcmread(self._path(key))

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink()
        self._summaries.pop(path, None)


class FoundStateStore(StateStore):
    """Presentation states found among the files a viewer opened: listed and read only.

    Parameters
    ----------
    files
        The presentation-state files (from a scan); other files are passed over.
    """

    def __init__(self, files: Iterable[DicomFile | str | os.PathLike[str]]) -> None:
        self._files: dict[str, DicomFile] = {}
        self._summaries: dict[str, StoredState] = {}
        for file in files:
            file = file if isinstance(file, DicomFile) else DicomFile(os.fspath(file))
            summary = _read_summary(file)
            if summary is not None:
                summary.writable = False
                self._files[summary.key] = file
                self._summaries[summary.key] = summary

    def __len__(self) -> int:
        return len(self._files)

    def save(self, ds: Dataset) -> StoredState:
        raise PermissionError("states found among the images are read only; save elsewhere")

    def states(self, *, study_instance_uid=None, sop_instance_uid=None) -> list[StoredState]:
        return self._select(self._summaries.values(), study_instance_uid, sop_instance_uid)

    def dataset(self, key: str) -> Dataset:
        try:
            file = self._files[key]
        except KeyError:
            raise KeyError(f"no presentation state {key} among the files opened") from None
        with file.open() as fp:
            return pydicom.dcmread(fp)

    def delete(self, key: str) -> None:
        self.dataset(key)  # a KeyError for unknown keys
        raise PermissionError(
            f"the presentation state in {self._files[key]} came with the images; the viewer "
            "does not change image folders"
        )


class CombinedStateStore(StateStore):
    """Save into ``writable``; list and read its states together with ``found`` ones.

    Parameters
    ----------
    writable
        Where new states go and which deletes act on.
    found
        States that came with the images (read only).
    """

    def __init__(self, writable: StateStore, found: StateStore) -> None:
        self.writable = writable
        self.found = found

    def save(self, ds: Dataset) -> StoredState:
        return self.writable.save(ds)

    def states(self, *, study_instance_uid=None, sop_instance_uid=None) -> list[StoredState]:
        args = {"study_instance_uid": study_instance_uid, "sop_instance_uid": sop_instance_uid}
        own = self.writable.states(**args)
        keys = {s.key for s in own}
        found = [s for s in self.found.states(**args) if s.key not in keys]
        return self._select([*own, *found], study_instance_uid, sop_instance_uid)

    def _holder(self, key: str) -> StateStore:
        if any(s.key == key for s in self.writable.states()):
            return self.writable
        return self.found

    def dataset(self, key: str) -> Dataset:
        return self._holder(key).dataset(key)

    def delete(self, key: str) -> None:
        self._holder(key).delete(key)

    def image_header(self, sop_instance_uid: str) -> Dataset | None:
        return self.writable.image_header(sop_instance_uid)


class StoredInstance(Protocol):
    """What an index answers when it has stored an instance."""

    instance_id: str


@runtime_checkable
class StateIndex(Protocol):
    """What :class:`IndexStateStore` needs of an index; :class:`workbench.pacs.Index` has it.

    Resources are named by the index's own IDs; ``level`` is "Series" or "Instance".
    """

    def ingest_bytes(self, data: bytes) -> StoredInstance:
        """Store a Part-10 file given as bytes."""
        ...

    def find(self, level: str, query: dict[str, str]) -> list[str]:
        """IDs of the resources of ``level`` matching a DICOM query."""
        ...

    def instances_of(self, level: str, public_id: str) -> list[str]:
        """IDs of the instances under a resource."""
        ...

    def instance_path(self, instance_id: str) -> os.PathLike[str]:
        """The stored file of an instance."""
        ...

    def delete(self, level: str, public_id: str) -> object:
        """Delete a resource."""
        ...


class IndexStateStore(StateStore):
    """States kept as instances of an index (:class:`workbench.pacs.Index`).

    Parameters
    ----------
    index
        The index. States are found with SQL queries on its main tags (series of modality PR
        in a study); their headers are read once and cached.
    """

    def __init__(self, index: StateIndex) -> None:
        self.index = index
        self._summaries: dict[str, StoredState] = {}
        self._instance_ids: dict[str, str] = {}

    def save(self, ds: Dataset) -> StoredState:
        result = self.index.ingest_bytes(_to_bytes(ds))
        summary = summarize(ds)
        self._summaries[result.instance_id] = summary
        self._instance_ids[summary.key] = result.instance_id
        return summary

    def _instances(self, study_instance_uid: str | None) -> list[str]:
        query = {"Modality": "PR"}
        if study_instance_uid:
            query["StudyInstanceUID"] = study_instance_uid
        ids: list[str] = []
        for series_id in self.index.find("Series", query):
            ids.extend(self.index.instances_of("Series", series_id))
        return ids

    def _summary(self, instance_id: str) -> StoredState | None:
        if instance_id not in self._summaries:
            path = self.index.instance_path(instance_id)
            ds = pydicom.dcmread(path, specific_tags=_SUMMARY_TAGS, stop_before_pixels=True)
            if str(ds.get("SOPClassUID", "")) not in PRESENTATION_STATE_CLASSES:
                return None
            self._summaries[instance_id] = summarize(ds)
            self._instance_ids[self._summaries[instance_id].key] = instance_id
        return self._summaries[instance_id]

    def states(self, *, study_instance_uid=None, sop_instance_uid=None) -> list[StoredState]:
        found = [self._summary(i) for i in self._instances(study_instance_uid)]
        return self._select([s for s in found if s], study_instance_uid, sop_instance_uid)

    def _instance_id(self, key: str) -> str:
        if key not in self._instance_ids:
            ids = self.index.find("Instance", {"SOPInstanceUID": key})
            if not ids:
                raise KeyError(f"no saved presentation state {key} in the index")
            self._instance_ids[key] = ids[0]
        return self._instance_ids[key]

    def dataset(self, key: str) -> Dataset:
        return pydicom.dcmread(self.index.instance_path(self._instance_id(key)))

    def delete(self, key: str) -> None:
        instance_id = self._instance_id(key)
        self.index.delete("Instance", instance_id)
        self._summaries.pop(instance_id, None)
        self._instance_ids.pop(key, None)

    def image_header(self, sop_instance_uid: str) -> Dataset | None:
        ids = self.index.find("Instance", {"SOPInstanceUID": sop_instance_uid})
        if not ids:
            return None
        return pydicom.dcmread(self.index.instance_path(ids[0]), stop_before_pixels=True)


#: Where a viewer may be told to keep states.
StateTarget: TypeAlias = "StateStore | StateIndex | str | os.PathLike[str] | None"


def state_store(target: StateTarget) -> StateStore:
    """A store for ``target``: a store itself, an index, a folder path, or ``None`` (memory)."""
    if isinstance(target, StateStore):
        return target
    if target is None:
        return MemoryStateStore()
    if isinstance(target, (str, os.PathLike)):
        return FolderStateStore(target)
    if isinstance(target, StateIndex):
        return IndexStateStore(target)
    raise TypeError(
        f"presentation states are kept in an index, a folder or memory; got {type(target).__name__}"
    )
