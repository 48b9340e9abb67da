"""De-identification with the PS3.15 Basic Application Level Confidentiality Profile.

The profile's attribute table (PS3.15 Table E.1-1) is data: we take it from the
``dicom-anonymizer`` package, which tracks the standard's editions, and apply its actions
(D replace, Z empty, X remove, U new UID, and the combined ones) ourselves. UIDs are mapped
through one table per request, so every instance of an anonymized study gets the same new
StudyInstanceUID, series keep their grouping and references between instances still resolve.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

#: Dummy values of action D, by VR (non-empty, valid, meaningless).
DUMMY_VALUES = {
    "AE": "ANONYMIZED", "AS": "000Y", "CS": "ANONYMIZED", "DA": "19000101",
    "DS": "0", "DT": "19000101000000", "IS": "0", "LO": "ANONYMIZED", "LT": "ANONYMIZED",
    "PN": "ANONYMIZED", "SH": "ANONYMIZED", "ST": "ANONYMIZED", "TM": "000000",
    "UC": "ANONYMIZED", "UR": "", "UT": "ANONYMIZED",
    "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0, "UL": 0, "US": 0, "SV": 0, "UV": 0,
}

DEIDENTIFICATION_METHOD = "PS3.15 Basic Application Confidentiality Profile"

#: PS3.15 Table E.1-1 action groups → the action we apply. Where the standard lets us choose
#: (X/Z, X/D, X/Z/D), we remove: less identifying and always conformant for type 3 attributes.
_GROUP_ACTIONS = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z",
    "X_Z_TAGS": "X",
    "X_D_TAGS": "X",
    "X_Z_D_TAGS": "X",
    "X_Z_U_STAR_TAGS": "X_or_U",
}


@dataclass(frozen=True)
class Profile:
    """PS3.15 Table E.1-1: exact tags and masked tag ranges (curves 50xx, overlays 60xx)."""

    exact: dict[int, str]
    masked: tuple[tuple[int, int, str], ...]  # (value, mask, action)

    def action(self, tag: int) -> str | None:
        """The action for ``tag``, or ``None`` if the profile leaves it alone."""
        found = self.exact.get(tag)
        if found is not None:
            return found
        for value, mask, action in self.masked:
            if tag & mask == value:
                return action
        return None


@lru_cache(maxsize=1)
def basic_profile() -> Profile:
    """PS3.15 Table E.1-1 (latest edition the package ships)."""
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

    tables = None
    for edition in ("dicomfields_2026c", "dicomfields_2024b", "dicomfields_2023"):
        try:
            tables = dicom_anonymization_database_selector(edition)
            break
        except ValueError:
            continue
    if tables is None:
        raise RuntimeError("dicom-anonymizer ships no PS3.15 table we know")
    exact: dict[int, str] = {}
    masked: list[tuple[int, int, str]] = []
    for group, action in _GROUP_ACTIONS.items():
        for entry in tables[group]:
            if len(entry) == 2:
                exact[(entry[0] << 16) | entry[1]] = action
            else:
                group_number, element, group_mask, element_mask = entry
                masked.append(((group_number << 16) | element,
                               (group_mask << 16) | element_mask, action))
    return Profile(exact, tuple(masked))


@dataclass
class Anonymizer:
    """Apply the Basic Profile to datasets, sharing one UID map across calls.

    Parameters
    ----------
    patient_id, patient_name : str, optional
        Values for the new patient; default: a random pseudonym shared by all datasets
        anonymized with this object.
    replace : dict
        Keyword → value set after the profile (Orthanc's ``Replace``).
    keep : set of str
        Keywords left untouched (Orthanc's ``Keep``).
    remove : set of str
        Extra keywords to remove (Orthanc's ``Remove``).
    keep_private_tags : bool
        Keep private attributes (the profile removes them).
    """

    patient_id: str | None = None
    patient_name: str | None = None
    replace: dict[str, str] = field(default_factory=dict)
    keep: set[str] = field(default_factory=set)
    remove: set[str] = field(default_factory=set)
    keep_private_tags: bool = False
    uid_map: dict[str, str] = field(default_factory=dict)
    _salt: str = field(default_factory=lambda: secrets.token_hex(16))

    def __post_init__(self) -> None:
        if self.patient_id is None:
            self.patient_id = hashlib.sha1(self._salt.encode()).hexdigest()[:16].upper()
        if self.patient_name is None:
            self.patient_name = f"ANONYMIZED^{self.patient_id}"

    def new_uid(self, old: str) -> str:
        """The replacement of ``old``: the same for every dataset of this anonymizer."""
        old = old.strip()
        if old not in self.uid_map:
            self.uid_map[old] = generate_uid(entropy_srcs=[self._salt, old])
        return self.uid_map[old]

    def __call__(self, ds: Dataset) -> Dataset:
        """Anonymize ``ds`` in place and return it."""
        keep_tags = {_tag(keyword) for keyword in self.keep}
        self._apply(ds, basic_profile(), keep_tags)
        for keyword in self.remove:
            if keyword in ds:
                del ds[keyword]
        ds.PatientID = self.patient_id
        ds.PatientName = self.patient_name
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
        code = Dataset()
        code.CodeValue = "113100"
        code.CodingSchemeDesignator = "DCM"
        code.CodeMeaning = "Basic Application Confidentiality Profile"
        ds.DeidentificationMethodCodeSequence = Sequence([code])
        for keyword, value in self.replace.items():
            setattr(ds, keyword, value)
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds

    def _apply(self, ds: Dataset, profile: Profile, keep_tags: set[int]) -> None:
        for elem in list(ds):
            tag = int(elem.tag)
            if tag in keep_tags:
                continue
            if elem.tag.is_private:
                if not self.keep_private_tags:
                    del ds[elem.tag]
                continue
            action = profile.action(tag)
            if action is None:
                if elem.VR == "SQ":
                    for item in elem.value:
                        self._apply(item, profile, keep_tags)
                continue
            _ACTIONS[action](self, ds, elem)


def _tag(keyword: str) -> int:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"Unknown DICOM keyword {keyword!r}")
    return tag


def _remove(anonymizer: Anonymizer, ds: Dataset, elem) -> None:
    del ds[elem.tag]


def _empty(anonymizer: Anonymizer, ds: Dataset, elem) -> None:
    elem.value = Sequence() if elem.VR == "SQ" else None


def _dummy(anonymizer: Anonymizer, ds: Dataset, elem) -> None:
    if elem.VR == "UI":
        _new_uid(anonymizer, ds, elem)
    elif elem.VR == "SQ":
        elem.value = Sequence()
    elif elem.VR in DUMMY_VALUES:
        elem.value = DUMMY_VALUES[elem.VR]
    else:
        del ds[elem.tag]


def _new_uid(anonymizer: Anonymizer, ds: Dataset, elem) -> None:
    if elem.VR != "UI" or elem.value in (None, ""):
        return
    values = elem.value if isinstance(elem.value, (list, tuple)) or (hasattr(
        elem.value, "__iter__") and not isinstance(elem.value, str)) else [elem.value]
    mapped = [anonymizer.new_uid(str(v)) for v in values]
    elem.value = mapped if len(mapped) > 1 else mapped[0]


def _remove_or_uid(anonymizer: Anonymizer, ds: Dataset, elem) -> None:
    if elem.VR == "UI":
        _new_uid(anonymizer, ds, elem)
    else:
        _remove(anonymizer, ds, elem)


_ACTIONS: dict[str, Callable] = {
    "D": _dummy,
    "Z": _empty,
    "X": _remove,
    "U": _new_uid,
    "X_or_U": _remove_or_uid,
}


def anonymize_resource(index, level: str, public_id: str, anonymizer: Anonymizer | None = None
                       ) -> dict[str, str]:
    """Store an anonymized copy of every instance under a resource; return the new resource.

    Parameters
    ----------
    index : Index
        Where the resource lives and where the copy is stored.
    level, public_id : str
        The resource to anonymize.
    anonymizer : Anonymizer, optional
        Options (Replace/Keep/Remove); one instance is used for the whole resource so the
        new UIDs stay consistent across it.

    Returns
    -------
    dict
        Orthanc's answer: ``{"ID", "Path", "PatientID", "Type"}`` of the new resource.
    """
    from io import BytesIO

    import pydicom

    from .errors import BadRequestError, UnknownResourceError
    from .tags import PLURAL, normalize_level

    level = normalize_level(level)
    anonymizer = anonymizer or Anonymizer()
    files = index.instance_files(level, public_id)
    if not files:
        raise UnknownResourceError(level, public_id)
    result = None
    for instance_id, path in files:
        try:
            ds = pydicom.dcmread(path)
            anonymizer(ds)
            buffer = BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
        except Exception as exc:  # pydicom converts lazily: a damaged value surfaces here
            raise BadRequestError(
                f"Instance {instance_id} cannot be anonymized: its stored file has an "
                f"attribute that cannot be decoded ({type(exc).__name__}: {exc})") from exc
        result = index.ingest_bytes(buffer.getvalue(), origin="RestApi")
    new_id = {
        "Patient": result.patient_id, "Study": result.study_id,
        "Series": result.series_id, "Instance": result.instance_id,
    }[level]
    return {"ID": new_id, "Path": f"/{PLURAL[level]}/{new_id}", "PatientID": result.patient_id,
            "Type": level}
