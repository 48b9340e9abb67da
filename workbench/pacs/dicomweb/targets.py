"""The resource a DICOMweb URL names: its UIDs found in the index, and its stored files.

DICOMweb names resources by DICOM UIDs (``/studies/{study}/series/{series}``), the index by
Orthanc IDs. A UID that is not in the index, or a series that is not in the named study, is
a 404 naming the UID.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UnknownResourceError
from ..index import Index

#: The path segment each level's UID follows, for messages and URLs.
SEGMENT = {"Study": "studies", "Series": "series", "Instance": "instances"}


@dataclass(frozen=True)
class Target:
    """A study, series or instance named by its UIDs (the ones above it included).

    Attributes
    ----------
    level : str
        "Study", "Series" or "Instance".
    public_id : str
        The resource's index ID.
    study, series, instance : str
        The UIDs of the URL ("" below ``level``).
    file : Path, optional
        An instance's stored file, found with it (``None`` above the instance level).
    """

    level: str
    public_id: str
    study: str
    series: str = ""
    instance: str = ""
    file: Path | None = None

    @property
    def path(self) -> str:
        """The resource's path below ``/dicom-web`` (``studies/1.2/series/3.4``)."""
        parts = [f"studies/{self.study}"]
        if self.series:
            parts.append(f"series/{self.series}")
        if self.instance:
            parts.append(f"instances/{self.instance}")
        return "/".join(parts)


def resolve(index: Index, study: str, series: str = "", instance: str = "") -> Target:
    """Find the resource named by ``study`` (and ``series``, ``instance``) in the index.

    Raises
    ------
    UnknownResourceError
        If the UIDs name nothing stored (a series outside the named study included).
    """
    query = {"StudyInstanceUID": _uid(study)}
    uids = {"Study": query["StudyInstanceUID"]}
    level = "Study"
    if series:
        query["SeriesInstanceUID"] = uids["Series"] = _uid(series)
        level = "Series"
    if instance:
        query["SOPInstanceUID"] = uids["Instance"] = _uid(instance)
        level = "Instance"
    if all(_plain(uid) for uid in uids.values()):
        # The usual URL: one prepared query finds the resource and an instance's file.
        found = index.by_uids(level, uids)
        public_id, path = found if found is not None else (None, None)
    else:
        # An empty UID or a list: C-FIND's matching, as a query of these keys would have.
        ids = index.find(level, query)
        public_id, path = (ids[0] if ids else None), None
    if public_id is None:
        names = {"Study": "study", "Series": "series", "Instance": "instance"}
        uid = instance or series or study
        raise _unknown(names[level], uid, query)
    # One UID under two patients (two PatientIDs for one study) is rare; the first wins.
    return Target(level, public_id, study, series, instance, path)


def _plain(uid: str) -> bool:
    """Whether a UID of a URL matches only itself, as it is (not empty, not a list, no
    padding that matching would strip)."""
    return bool(uid) and uid == uid.strip(" \x00") and "\\" not in uid


def _uid(text: str) -> str:
    return text.strip()


def _unknown(name: str, uid: str, query: dict[str, str]) -> UnknownResourceError:
    error = UnknownResourceError(name.capitalize(), uid)
    if len(query) > 1:
        within = ", ".join(f"{key} {value}" for key, value in list(query.items())[:-1])
        error.args = (f"Unknown {name} {uid!r} (within {within})",)
    return error


def stored_files(index: Index, target: Target) -> list[tuple[str, Path]]:
    """``(instance ID, path)`` of every stored instance under ``target``, in series order."""
    if target.file is not None:
        return [(target.public_id, target.file)]
    return index.instance_files(target.level, target.public_id)
