"""Anonymization as Orthanc does it: a :class:`~workbench.pacs.modification.Modification`
set up from the PS3.15 Basic Application Level Confidentiality Profile.

The profile (PS3.15 Table E.1-1) is data: ``deidentification.tsv`` says, for each edition
Orthanc offers (``DicomVersion``: 2008, 2017c, 2021b — the default), which attributes are
removed (``X``), emptied (``Z``) or given new identifiers (``U``, mapped consistently across
the resource, references in sequences included). The table was read off a real Orthanc
anonymizing a dataset holding every attribute of the dictionary, so an edition here does what
it does there (see ``tests/pacs/modification_support.py``).

Where Orthanc would leave an object its IOD does not allow, we part from it: an attribute
the IOD requires with a value (type 1) that the profile removes or empties gets a dummy value
instead (PS3.15's action D: ContentDate of an enhanced image, DeviceSerialNumber of its
equipment, the annotations of a presentation state, whose texts become dummies), and one it
requires present (type 2) is emptied rather than removed.

On top of the profile, as Orthanc: private tags are removed (unless ``KeepPrivateTags``), the
patient gets a new PatientID (a UUID) and the name ``Anonymized<n>`` (``n`` counting the
server's anonymizations) unless the request says otherwise, PatientIdentityRemoved is YES,
and DeidentificationMethod names the edition unless the request changed the profile
(``Keep``, ``Remove``, ``Replace``, ``KeepPrivateTags``).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from workbench import __version__

from .errors import BadRequestError
from .modification import PATIENT_ID, PATIENT_NAME, Modification, boolean_member

#: The editions of PS3.15 Orthanc 1.10 offers, oldest first; the last is the default.
VERSIONS = ("2008", "2017c", "2021b")
DEFAULT_VERSION = "2021b"
PROFILE_TABLE = Path(__file__).with_name("deidentification.tsv")
PATIENT_IDENTITY_REMOVED = 0x00120062
DEIDENTIFICATION_METHOD = 0x00120063


@lru_cache(maxsize=1)
def profiles() -> dict[str, dict[int, str]]:
    """Edition → {tag: action} (``X``, ``Z`` or ``U``; tags left alone are absent)."""
    found: dict[str, dict[int, str]] = {version: {} for version in VERSIONS}
    with PROFILE_TABLE.open(newline="", encoding="utf-8") as table:
        rows = csv.DictReader((line for line in table if not line.startswith("#")),
                              delimiter="\t")  # fmt: skip
        for row in rows:
            for version in VERSIONS:
                if row[version] != "-":
                    found[version][int(row["tag"], 16)] = row[version]
    return found


def required_attributes(ds: Dataset) -> dict[int, str]:
    """The top-level attributes the IOD of ``ds`` requires, and their type: ``1``/``1C``
    (with a value) or ``2``/``2C`` (present), from highdicom's tables of the standard."""
    return _required_of(str(ds.get("SOPClassUID", "")))


@lru_cache(maxsize=64)
def _required_of(sop_class_uid: str) -> dict[int, str]:
    from highdicom import _standard_utils as standard

    iod = standard.get_sop_class_iod_map().get(sop_class_uid)
    if iod is None:
        return {}
    attributes = standard.get_module_attribute_map()
    found: dict[int, str] = {}
    for module in standard.get_iod_module_map()[iod]:
        for item in attributes[module["key"]]:
            tag = tag_for_keyword(item["keyword"])
            if not item["path"] and tag is not None and item["type"] in ("1", "1C", "2", "2C"):
                # An attribute of several modules: the strictest type wins.
                found[tag] = min(found.get(tag, "3"), item["type"])
    return found


def method_name(version: str) -> str:
    """The DeidentificationMethod written for an edition (Orthanc's wording)."""
    table = "Table E.1-1" if version == "2008" else "Table E.1-1 Basic Profile"
    return f"workbench {__version__} - PS 3.15-{version} {table}"


def anonymization(body: Any) -> tuple[Modification, bool]:
    """The modification a ``POST /{level}/{id}/anonymize`` body asks for.

    Returns
    -------
    Modification, bool
        The modification, and whether the request says what becomes of PatientName (if not,
        the caller names the patient ``Anonymized<n>``).

    Raises
    ------
    BadRequestError
        An option of the wrong type, an unknown edition or tag, an identifier touched
        without ``Force``.
    """
    if not isinstance(body, dict):
        raise BadRequestError("The body must be a JSON object")
    version = body.get("DicomVersion", DEFAULT_VERSION)
    if not isinstance(version, str):
        raise BadRequestError('"DicomVersion" must be a string such as "2021b"')
    if version not in VERSIONS:
        raise BadRequestError(f"Unknown specific version of the DICOM standard: {version} "
                              f"(known: {', '.join(VERSIONS)})")  # fmt: skip
    modification = Modification(level="Patient", is_anonymization=True,
                                remove_private_tags=True)  # fmt: skip
    for tag, action in profiles()[version].items():
        {"X": modification.removals, "Z": modification.clearings,
         "U": modification.uids}[action].add(tag)  # fmt: skip
        if action in ("X", "Z"):
            modification.profile_erasures.add(tag)
    modification.required = required_attributes
    modification.uids |= {PATIENT_ID, PATIENT_NAME}
    modification.replacements[PATIENT_IDENTITY_REMOVED] = "YES"
    pure_profile = True
    if boolean_member(body, "KeepPrivateTags"):
        modification.remove_private_tags = False
        pure_profile = False
    if any(body.get(name) for name in ("Keep", "Remove", "Replace")):
        pure_profile = False
    modification.read_options(body)
    if pure_profile:
        modification.replacements[DEIDENTIFICATION_METHOD] = method_name(version)
    modification.check_level()
    return modification, PATIENT_NAME not in modification.uids


def name_patient(modification: Modification, sequence_number: int) -> None:
    """Orthanc's name of an anonymized patient when the request gave none."""
    modification.replacements[PATIENT_NAME] = f"Anonymized{sequence_number}"
