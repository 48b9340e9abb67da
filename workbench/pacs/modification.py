"""Rewriting DICOM datasets as Orthanc's ``modify`` and ``anonymize`` do: one engine for both.

A :class:`Modification` holds what to do to every dataset of a resource: tags to remove, to
clear, to replace, to keep, private tags to drop, and the identifiers to renew. It is built
from an Orthanc request body (:meth:`Modification.from_modify_request`; anonymization adds a
profile, see :mod:`workbench.pacs.anonymize`) and applied to one pydicom dataset at a time
(:meth:`Modification.apply`), in Orthanc's order:

1. private tags are removed (``RemovePrivateTags``, or always when anonymizing), except
   those in ``Keep``;
2. tags to clear are emptied, tags to remove are removed, replacements are written;
3. the UIDs of the modified level and the levels below get new values: a study modified
   gets a new StudyInstanceUID, new SeriesInstanceUIDs and new SOPInstanceUIDs, the same
   original always giving the same new value across the resource (one map per
   modification), so series stay grouped and references between instances still resolve;
4. when anonymizing, the identifiers the profile renews (FrameOfReferenceUID,
   ReferencedSOPInstanceUID...) are mapped through that same map at every depth of the
   dataset, and what the profile removes or clears is removed or cleared inside sequences too.

The main identifiers (PatientID and the three UIDs) can only be touched with ``Force``,
and Orthanc's checks on the level apply (a series cannot get another study...); every bad
request is a :class:`~workbench.pacs.errors.BadRequestError` naming what was wrong.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import (
    dictionary_VR,
    get_private_entry,
    keyword_for_tag,
    tag_for_keyword,
)
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from .errors import BadRequestError
from .tags import LEVELS

PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010
STUDY_UID = 0x0020000D
SERIES_UID = 0x0020000E
SOP_UID = 0x00080018
#: The attributes the index is keyed on: touching them needs ``Force``.
DATABASE_KEYS = (PATIENT_ID, STUDY_UID, SERIES_UID, SOP_UID)
#: The UID each level renews, and the level each of those UIDs identifies.
LEVEL_UID = {"Study": STUDY_UID, "Series": SERIES_UID, "Instance": SOP_UID}
UID_LEVEL = {uid: level for level, uid in LEVEL_UID.items()}
#: Sequences whose ReferencedSOPInstanceUID names a study (RT structure sets, observed in
#: the field): mapped as a StudyInstanceUID so the reference still resolves.
_RT_STUDY_REFERENCE = (0x30060010, 0x30060012)
_REFERENCED_SOP_INSTANCE_UID = 0x00081155

#: Value representations holding text (a replacement is written as given) and numbers.
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM",
             "UC", "UI", "UR", "UT"}  # fmt: skip
_INT_VRS = {"SL", "SS", "UL", "US", "SV", "UV"}
_FLOAT_VRS = {"FL", "FD"}
_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
_DATA_URI = re.compile(r"^data:[^;,]*(;base64)?,", re.DOTALL)


def parse_tag(name: Any) -> int:
    """The tag a request names: a keyword (``PatientName``) or ``gggg,eeee`` / ``gggg-eeee``
    / ``ggggeeee`` in hexadecimal, as Orthanc accepts them.

    Raises
    ------
    BadRequestError
        ``name`` is not a string or names no tag.
    """
    if not isinstance(name, str):
        raise BadRequestError(f"A DICOM tag must be given as a string, not {name!r}")
    text = name.strip()
    found = re.fullmatch(r"([0-9A-Fa-f]{4})[,-]?([0-9A-Fa-f]{4})", text)
    if found:
        return (int(found.group(1), 16) << 16) | int(found.group(2), 16)
    tag = tag_for_keyword(text)
    if tag is None:
        raise BadRequestError(f"Unknown DICOM tag {name!r}: neither a keyword of the DICOM "
                              "dictionary nor gggg,eeee")  # fmt: skip
    return tag


def tag_name(tag: int) -> str:
    return keyword_for_tag(tag) or f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


def _is_private(tag: int) -> bool:
    return bool((tag >> 16) & 1)


def _boolean(body: dict[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise BadRequestError(f'Member "{name}" should be a Boolean value')
    return value


def _tag_list(body: dict[str, Any], name: str) -> list[int]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequestError(f'"{name}" must be a list of tags (keywords or gggg,eeee)')
    return [parse_tag(item) for item in value]


def _force_needed(tag: int, action: str, force: bool) -> None:
    if tag in DATABASE_KEYS and not force:
        raise BadRequestError(f'Marking tag "{tag_name(tag)}" as to be {action} requires the '
                              '"Force" option to be set to true')  # fmt: skip


@dataclass
class Modification:
    """What to do to each dataset of a resource (see the module docstring).

    Attributes
    ----------
    level : str
        The level modified: its UID and those of the levels below are renewed.
    is_anonymization : bool
        Anonymizing: the profile's identifiers (``uids``) are remapped at every depth.
    """

    level: str = "Instance"
    is_anonymization: bool = False
    remove_private_tags: bool = False
    private_creator: str = ""
    removals: set[int] = field(default_factory=set)
    clearings: set[int] = field(default_factory=set)
    #: Identifiers remapped when anonymizing (FrameOfReferenceUID..., PatientID).
    uids: set[int] = field(default_factory=set)
    replacements: dict[int, Any] = field(default_factory=dict)
    keep: set[int] = field(default_factory=set)
    #: (level, original) → new identifier, shared by every dataset of the resource.
    uid_map: dict[tuple[str, str], str] = field(default_factory=dict)

    # -- building ------------------------------------------------------------------------

    def keep_tag(self, tag: int) -> None:
        self.keep.add(tag)
        self.removals.discard(tag)
        self.clearings.discard(tag)
        self.uids.discard(tag)
        self.replacements.pop(tag, None)

    def remove_tag(self, tag: int) -> None:
        self.removals.add(tag)
        self.clearings.discard(tag)
        self.uids.discard(tag)
        self.replacements.pop(tag, None)
        self.keep.discard(tag)

    def replace_tag(self, tag: int, value: Any) -> None:
        self.clearings.discard(tag)
        self.removals.discard(tag)
        self.uids.discard(tag)
        self.keep.discard(tag)
        _check_replacement(tag, value)
        self.replacements[tag] = value

    def read_options(self, body: dict[str, Any]) -> None:
        """``Remove``, ``Replace``, ``Keep`` and ``PrivateCreator`` of a request body, in
        Orthanc's order (a tag both removed and kept is kept)."""
        force = _boolean(body, "Force")
        for tag in _tag_list(body, "Remove"):
            _force_needed(tag, "removed", force)
            self.remove_tag(tag)
        replace = body.get("Replace", {})
        if not isinstance(replace, dict):
            raise BadRequestError('"Replace" must be an object: tag → new value')
        for name, value in replace.items():
            tag = parse_tag(name)
            _force_needed(tag, "replaced", force)
            self.replace_tag(tag, value)
        for tag in _tag_list(body, "Keep"):
            _force_needed(tag, "kept", force)
            self.keep_tag(tag)
        creator = body.get("PrivateCreator", self.private_creator)
        if not isinstance(creator, str):
            raise BadRequestError("String value expected in field: PrivateCreator")
        self.private_creator = creator

    @classmethod
    def from_modify_request(cls, body: Any, level: str | None) -> Modification:
        """The modification a ``POST /{level}/{id}/modify`` body asks for.

        Parameters
        ----------
        body : dict
            ``Replace``, ``Remove``, ``Keep``, ``Force``, ``RemovePrivateTags``,
            ``PrivateCreator`` (``Transcode``, ``KeepSource`` are read by the caller).
        level : str or None
            The level of the resource; ``None`` for an instance answered as a file, whose
            level follows what is replaced (PatientID: a new study and series too).
        """
        if not isinstance(body, dict):
            raise BadRequestError("The body must be a JSON object")
        modification = cls()
        modification.remove_private_tags = _boolean(body, "RemovePrivateTags")
        modification.read_options(body)
        modification.level = level or modification.level_of_replacements()
        modification.check_level()
        return modification

    def level_of_replacements(self) -> str:
        """Orthanc's level of a lone instance's modification: the highest identifier
        replaced."""
        for tag, level in ((PATIENT_ID, "Patient"), (STUDY_UID, "Study"),
                           (SERIES_UID, "Series")):  # fmt: skip
            if tag in self.replacements:
                return level
        return "Instance"

    def check_level(self) -> None:
        """Orthanc's rules on identifiers replaced at each level (``Force`` or not)."""
        if any(tag in self.removals for tag in DATABASE_KEYS):
            raise BadRequestError("It is forbidden to remove one of the main Dicom identifiers")
        replaced_patient = PATIENT_ID in self.replacements or PATIENT_ID in self.uids
        what = {"Patient": "a patient", "Study": "a study", "Series": "a series",
                "Instance": "an instance"}[self.level]  # fmt: skip
        if self.level == "Patient" and not replaced_patient:
            raise BadRequestError(
                "When modifying a patient, her PatientID is required to be modified"
            )
        if self.level != "Patient" and replaced_patient and not self.is_anonymization:
            raise BadRequestError(f"When modifying {what}, the parent PatientID cannot be "
                                  "manually modified")  # fmt: skip
        for tag, parent in ((STUDY_UID, "Study"), (SERIES_UID, "Series")):
            if tag in self.replacements and LEVELS.index(self.level) > LEVELS.index(parent):
                raise BadRequestError(f"When modifying {what}, the parent {tag_name(tag)} "
                                      "cannot be manually modified")  # fmt: skip

    # -- applying ------------------------------------------------------------------------

    def new_identifier(self, original: str, level: str) -> str:
        """The new value of ``original`` (an identifier of ``level``), the same for every
        dataset of this modification: a UUID for a patient, a new UID otherwise."""
        key = (level, str(original).strip())
        mapped = self.uid_map.get(key)
        if mapped is None:
            mapped = str(uuid.uuid4()) if level == "Patient" else generate_uid()
            self.uid_map[key] = mapped
        return mapped

    def apply(self, ds: Dataset) -> Dataset:
        """Modify ``ds`` in place (its file meta follows the new SOPInstanceUID); return it.

        Raises
        ------
        BadRequestError
            A replacement cannot be written as the tag's value representation.
        """
        if self.is_anonymization:
            # A replaced UID is what references to the original must become too.
            for tag, level in UID_LEVEL.items():
                if tag in self.replacements and tag in ds:
                    self.uid_map.setdefault((level, str(ds[tag].value).strip()),
                                            str(self.replacements[tag]))  # fmt: skip
        if self.remove_private_tags:
            self._remove_private(ds)
        for tag in self.clearings:
            if tag in ds:
                _clear(ds[tag])
        for tag in self.removals:
            if tag in ds:
                del ds[tag]
        for tag, value in self.replacements.items():
            self._replace(ds, tag, value)
        for level, tag in LEVEL_UID.items():
            renewed = LEVELS.index(self.level) <= LEVELS.index(level)
            if renewed and tag not in self.replacements and tag not in self.keep:
                original = str(ds[tag].value) if tag in ds else ""
                ds[tag] = DataElement(tag, "UI", self.new_identifier(original, level))
        if self.is_anonymization:
            self._remap(ds, ())
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds

    def _remove_private(self, ds: Dataset) -> None:
        kept_blocks = {(tag >> 16, (tag >> 8) & 0xFF) for tag in self.keep if _is_private(tag)}
        for elem in list(ds):
            tag = int(elem.tag)
            if not _is_private(tag) or tag in self.keep:
                continue
            is_creator = (tag & 0xFFFF) < 0x100
            if is_creator and (tag >> 16, tag & 0xFF) in kept_blocks:
                continue  # the creator of a private tag kept
            del ds[tag]

    def _replace(self, ds: Dataset, tag: int, value: Any) -> None:
        vr = self._vr_of(ds, tag)
        try:
            ds[tag] = _element(tag, vr, value, self)
        except (TypeError, ValueError, OverflowError) as exc:
            raise BadRequestError(f"Tag {tag_name(tag)} ({vr}) cannot take the value "
                                  f"{value!r}: {exc}") from exc  # fmt: skip

    def _vr_of(self, ds: Dataset, tag: int) -> str:
        if tag in ds:
            return ds[tag].VR
        if not _is_private(tag):
            try:
                return dictionary_VR(tag).split(" or ")[0]
            except KeyError as exc:
                raise BadRequestError(
                    f"Tag {tag_name(tag)} is not in the DICOM dictionary: "
                    "its value representation is unknown"
                ) from exc
        if (tag & 0xFFFF) < 0x100:
            return "LO"  # a private creator
        if not self.private_creator:
            raise BadRequestError(f"Private tag {tag_name(tag)} is absent: adding it needs "
                                  'a "PrivateCreator"')  # fmt: skip
        group, block = tag >> 16, (tag >> 8) & 0xFF
        creator_tag = (group << 16) | block
        if creator_tag not in ds:
            ds[creator_tag] = DataElement(creator_tag, "LO", self.private_creator)
        elif str(ds[creator_tag].value).strip() != self.private_creator:
            raise BadRequestError(
                f"Private tag {tag_name(tag)} belongs to the block of "
                f"{ds[creator_tag].value!r}, not {self.private_creator!r}"
            )
        try:
            return get_private_entry(tag, self.private_creator)[0].split(" or ")[0]
        except KeyError:
            return "UN"

    def _remap(self, ds: Dataset, parents: tuple[int, ...]) -> None:
        """Step 4: remap identifiers (and, inside sequences, remove or clear what the
        profile does) at every depth."""
        nested = bool(parents)
        for elem in list(ds):
            tag = int(elem.tag)
            if nested:
                if tag in self.keep:
                    continue
                if (self.remove_private_tags and _is_private(tag)) or tag in self.removals:
                    del ds[tag]
                    continue
                if tag in self.clearings:
                    if elem.VR in _TEXT_VRS:
                        elem.value = ""
                    else:
                        del ds[tag]
                    continue
            if elem.VR == "SQ":
                for item in elem.value or ():
                    self._remap(item, (*parents, tag))
                continue
            if elem.VR not in ("UI", "LO", "PN") or elem.value is None:
                continue
            level = self._identifier_level(tag, parents)
            if level is not None:
                elem.value = _mapped(elem.value, lambda uid, lv=level: self.new_identifier(
                    uid, lv))  # fmt: skip

    def _identifier_level(self, tag: int, parents: tuple[int, ...]) -> str | None:
        """The level an identifier is remapped as, or ``None`` to leave it."""
        touched = tag in self.replacements or tag in self.removals or tag in self.clearings
        if not parents:
            if tag in UID_LEVEL or tag not in self.uids or touched:
                return None
        elif tag in UID_LEVEL:
            return UID_LEVEL[tag]
        elif tag not in self.uids:
            return None
        if tag in (PATIENT_ID, PATIENT_NAME):
            return "Patient"
        if tag == _REFERENCED_SOP_INSTANCE_UID and parents[-2:] == _RT_STUDY_REFERENCE:
            return "Study"
        return "Instance"


def _mapped(value: Any, new: Any) -> Any:
    if isinstance(value, str):
        return new(value)
    return [new(str(item)) for item in value]


def _clear(elem: DataElement) -> None:
    if elem.VR == "SQ":
        elem.value = Sequence()
    elif elem.VR in _TEXT_VRS or elem.VR in _BINARY_VRS:
        elem.value = b"" if elem.VR in _BINARY_VRS else ""
    else:
        elem.value = None


def _check_replacement(tag: int, value: Any) -> None:
    """Orthanc takes a string (any VR), ``null`` (an empty value) or, for a sequence, a list
    of objects."""
    if value is None or isinstance(value, str):
        return
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return
    raise BadRequestError(
        f"Bad Parameter type for tag {tag >> 16:04x},{tag & 0xFFFF:04x}: "
        "a replacement is a string, or a list of objects for a sequence"
    )


def _element(tag: int, vr: str, value: Any, modification: Modification) -> DataElement:
    """A data element of ``vr`` holding a JSON replacement."""
    if isinstance(value, list):
        if vr not in ("SQ", "UN"):
            raise ValueError("a list is only a value for a sequence")
        items = Sequence()
        for entry in value:
            item = Dataset()
            for name, nested in entry.items():
                nested_tag = parse_tag(name)
                _check_replacement(nested_tag, nested)
                item[nested_tag] = _element(nested_tag, modification._vr_of(item, nested_tag),
                                            nested, modification)  # fmt: skip
            items.append(item)
        return DataElement(tag, "SQ", items)
    if vr == "SQ":
        if value in (None, ""):
            return DataElement(tag, "SQ", Sequence())
        raise ValueError("a sequence takes a list of objects")
    if value is None or value == "":
        return DataElement(tag, vr, b"" if vr in _BINARY_VRS else None)
    if vr in _BINARY_VRS:
        found = _DATA_URI.match(value)
        if found and found.group(1):
            data = base64.b64decode(value[found.end() :], validate=True)
        else:
            data = value.encode("utf-8")
        return DataElement(tag, vr, data + (b"\0" if len(data) % 2 else b""))
    if vr in _INT_VRS or vr in _FLOAT_VRS or vr == "AT":
        parts = value.split("\\")
        if vr == "AT":
            numbers = [parse_tag(part) for part in parts]
        elif vr in _INT_VRS:
            numbers = [int(part) for part in parts]
        else:
            numbers = [float(part) for part in parts]
        return DataElement(tag, vr, numbers[0] if len(numbers) == 1 else numbers)
    parts = value.split("\\")
    return DataElement(tag, vr, parts[0] if len(parts) == 1 else parts)
