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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pydicom.charset
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
    found = re.fullmatch(r"\(?([0-9A-Fa-f]{4})[,-]?([0-9A-Fa-f]{4})\)?", text)
    if found:
        return (int(found.group(1), 16) << 16) | int(found.group(2), 16)
    tag = tag_for_keyword(text)
    if tag is None:
        raise BadRequestError(f"Unknown DICOM tag {name!r}: neither a keyword of the DICOM "
                              "dictionary nor gggg,eeee")  # fmt: skip
    return tag


def tag_name(tag: int) -> str:
    return keyword_for_tag(tag) or f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


@dataclass(frozen=True)
class TagPath:
    """A tag inside sequences, as Orthanc 1.9.4+ takes it in ``Replace``, ``Remove`` and
    ``Keep``: ``ReferencedImageSequence[0].ReferencedSOPInstanceUID`` (items counted from
    0, ``[*]`` for every item)."""

    #: (sequence tag, item index or ``None`` for every item), outermost first.
    prefix: tuple[tuple[int, int | None], ...]
    tag: int

    def items(self, ds: Dataset) -> Iterator[Dataset]:
        """The items of ``ds`` the prefix designates (those that exist)."""
        found = [ds]
        for sequence, index in self.prefix:
            inner = []
            for item in found:
                elem = item.get(sequence)
                if elem is None or elem.VR != "SQ":
                    continue
                values = list(elem.value or ())
                if index is None:
                    inner += values
                elif index < len(values):
                    inner.append(values[index])
            found = inner
        yield from found

    def covers(self, trail: tuple[tuple[int, int], ...], tag: int) -> bool:
        """Whether the element ``tag`` at ``trail`` (sequence, item) is this path or lies
        under it."""
        steps = (*self.prefix, (self.tag, None))
        actual = (*trail, (tag, None))
        if len(steps) > len(actual):
            return False
        for (want_tag, want_index), (tag_here, index_here) in zip(steps, actual, strict=False):
            if want_tag != tag_here or want_index not in (None, index_here):
                return False
        return True


def parse_path(name: Any) -> TagPath:
    """A tag (see :func:`parse_tag`) or a path into sequences (see :class:`TagPath`)."""
    if not isinstance(name, str):
        raise BadRequestError(f"A DICOM tag must be given as a string, not {name!r}")
    *parents, last = name.split(".")
    prefix = []
    for part in parents:
        found = re.fullmatch(r"(.+)\[\s*(\d+|\*)\s*\]", part.strip())
        if not found:
            raise BadRequestError(f"{name!r}: each sequence of a path needs an item index, "
                                  "as in ReferencedImageSequence[0] or [*]")  # fmt: skip
        index = None if found.group(2) == "*" else int(found.group(2))
        prefix.append((parse_tag(found.group(1)), index))
    return TagPath(tuple(prefix), parse_tag(last))


def _is_private(tag: int) -> bool:
    return bool((tag >> 16) & 1)


def boolean_member(body: dict[str, Any], name: str, default: bool = False) -> bool:
    """A Boolean option of a request body, or Orthanc's 400."""
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise BadRequestError(f'Member "{name}" should be a Boolean value')
    return value


def _path_list(body: dict[str, Any], name: str) -> list[TagPath]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequestError(f'"{name}" must be a list of tags (keywords or gggg,eeee)')
    return [parse_path(item) for item in value]


def _force_needed(path: TagPath, action: str, force: bool) -> None:
    tag = path.tag
    if not path.prefix and tag in DATABASE_KEYS and not force:
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
    #: Paths into sequences (Orthanc 1.9.4+): removed, replaced, kept as they are.
    path_removals: list[TagPath] = field(default_factory=list)
    path_replacements: list[tuple[TagPath, Any]] = field(default_factory=list)
    kept_paths: list[TagPath] = field(default_factory=list)
    #: The types (1, 1C, 2, 2C) of the attributes a dataset's IOD requires: what the
    #: profile would erase though required is kept (see :mod:`.anonymize`).
    required: Callable[[Dataset], dict[int, str]] | None = None
    #: What the profile (not the request) removes or empties.
    profile_erasures: set[int] = field(default_factory=set)
    #: (level, original) → new identifier, shared by every dataset of the resource.
    uid_map: dict[tuple[str, str], str] = field(default_factory=dict)

    # -- building ------------------------------------------------------------------------

    def keep_tag(self, tag: int) -> None:
        self.profile_erasures.discard(tag)
        self.keep.add(tag)
        self.removals.discard(tag)
        self.clearings.discard(tag)
        self.uids.discard(tag)
        self.replacements.pop(tag, None)

    def remove_tag(self, tag: int) -> None:
        self.profile_erasures.discard(tag)
        self.removals.add(tag)
        self.clearings.discard(tag)
        self.uids.discard(tag)
        self.replacements.pop(tag, None)
        self.keep.discard(tag)

    def replace_tag(self, tag: int, value: Any) -> None:
        self.profile_erasures.discard(tag)
        self.clearings.discard(tag)
        self.removals.discard(tag)
        self.uids.discard(tag)
        self.keep.discard(tag)
        _check_replacement(tag, value)
        self.replacements[tag] = value

    def read_options(self, body: dict[str, Any]) -> None:
        """``Remove``, ``Replace``, ``Keep`` and ``PrivateCreator`` of a request body, in
        Orthanc's order (a tag both removed and kept is kept)."""
        force = boolean_member(body, "Force")
        for path in _path_list(body, "Remove"):
            _force_needed(path, "removed", force)
            if path.prefix:
                self.path_removals.append(path)
            else:
                self.remove_tag(path.tag)
        replace = body.get("Replace", {})
        if not isinstance(replace, dict):
            raise BadRequestError('"Replace" must be an object: tag → new value')
        for name, value in replace.items():
            path = parse_path(name)
            _force_needed(path, "replaced", force)
            if path.prefix:
                _check_replacement(path.tag, value)
                self.path_replacements.append((path, value))
            else:
                self.replace_tag(path.tag, value)
        for path in _path_list(body, "Keep"):
            _force_needed(path, "kept", force)
            self.kept_paths.append(path)
            if not path.prefix:
                self.keep_tag(path.tag)
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
        modification.remove_private_tags = boolean_member(body, "RemovePrivateTags")
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
        dummies, emptied = self._required_erasures(ds)
        for tag in (self.clearings | emptied) - dummies:
            if tag in ds:
                _clear(ds[tag])
        for tag in self.removals - dummies - emptied:
            if tag in ds:
                del ds[tag]
        for tag in dummies:
            _dummy(ds[tag])
        self._fit_character_set(ds)
        for tag, value in self.replacements.items():
            self._replace(ds, tag, value)
        for level, tag in LEVEL_UID.items():
            renewed = LEVELS.index(self.level) <= LEVELS.index(level)
            if renewed and tag not in self.replacements and tag not in self.keep:
                original = str(ds[tag].value) if tag in ds else ""
                ds[tag] = DataElement(tag, "UI", self.new_identifier(original, level))
        if self.is_anonymization:
            self._remap(ds, ())
        for path in self.path_removals:
            for item in path.items(ds):
                if path.tag in item:
                    del item[path.tag]
        for path, value in self.path_replacements:
            for item in path.items(ds):
                self._replace(item, path.tag, value)
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds

    def _required_erasures(self, ds: Dataset) -> tuple[set[int], set[int]]:
        """What the profile would erase though the IOD of ``ds`` requires it: attributes
        required with a value (type 1, 1C), which get a dummy value, and attributes
        required present (type 2, 2C), which are emptied rather than removed."""
        if self.required is None:
            return set(), set()
        types = self.required(ds)
        present = [tag for tag in self.profile_erasures if tag in types and tag in ds]
        dummies = {tag for tag in present if types[tag] in ("1", "1C") and not ds[tag].is_empty}
        emptied = {tag for tag in present if types[tag] in ("2", "2C")}
        return dummies, emptied

    def _fit_character_set(self, ds: Dataset) -> None:
        """Declare UTF-8 when a replacement's text cannot be written in the dataset's
        character set (all the text is decoded first, so nothing is garbled)."""
        texts = [value for value in self.replacements.values() if isinstance(value, str)]
        texts += [value for _, value in self.path_replacements if isinstance(value, str)]
        if all(text.isascii() for text in texts):
            return
        declared = ds.get(0x00080005)
        names = (
            []
            if declared is None or declared.is_empty
            else list([declared.value] if isinstance(declared.value, str) else declared.value)
        )
        # pydicom names the default repertoire (ISO_IR 6) "iso8859": ASCII it is.
        codecs = [
            "ascii" if codec == "iso8859" else codec
            for codec in (pydicom.charset.convert_encodings(names) if names else [])
        ]
        if not all(_encodable(text, codecs) for text in texts):
            ds.decode()
            ds.SpecificCharacterSet = "ISO_IR 192"

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

    def _remap(self, ds: Dataset, trail: tuple[tuple[int, int], ...]) -> None:
        """Step 4: remap identifiers (and, inside sequences, remove or clear what the
        profile does) at every depth; ``trail`` is the (sequence, item) path to ``ds``."""
        nested = bool(trail)
        parents = tuple(tag for tag, _ in trail)
        for elem in list(ds):
            tag = int(elem.tag)
            if any(path.covers(trail, tag) for path in self.kept_paths):
                continue
            if nested:
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
                for number, item in enumerate(elem.value or ()):
                    self._remap(item, (*trail, (tag, number)))
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


def _encodable(text: str, codecs: list[str]) -> bool:
    """Whether ``text`` can be written in one of the Python ``codecs`` of a character set
    (plain ASCII when none is declared)."""
    if text.isascii():
        return True
    for codec in codecs:
        try:
            text.encode(codec)
            return True
        except (UnicodeEncodeError, LookupError):
            continue
    return False


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


#: PS3.15's dummy values (action D) by value representation: not empty, valid, meaningless.
DUMMY_VALUES = {"AE": "ANONYMIZED", "AS": "000Y", "CS": "ANONYMIZED", "DA": "19000101",
                "DS": "0", "DT": "19000101000000", "IS": "0", "LO": "ANONYMIZED",
                "LT": "ANONYMIZED", "PN": "ANONYMIZED", "SH": "ANONYMIZED", "ST": "ANONYMIZED",
                "TM": "000000", "UC": "ANONYMIZED", "UR": "http://anonymized",
                "UT": "ANONYMIZED", "UI": "2.25.0", "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0,
                "UL": 0, "US": 0, "SV": 0, "UV": 0}  # fmt: skip


def _dummy(elem: DataElement) -> None:
    """A dummy value in place of ``elem``'s: a sequence keeps its items, every text in them
    made a dummy."""
    if elem.VR == "SQ":
        for item in elem.value:
            for inner in item.iterall():
                if inner.VR in _TEXT_VRS and inner.VR not in ("UI", "CS") and not inner.is_empty:
                    inner.value = DUMMY_VALUES[inner.VR]
    elif elem.VR in DUMMY_VALUES:
        elem.value = DUMMY_VALUES[elem.VR]


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
