"""Modality Worklist C-FIND (PS3.4 K): scheduled procedures from worklist files.

The seed's workflow: the HIS/RIS writes a worklist item per scheduled exam, the modality
asks the PACS for its worklist (``findscu -W``), scans, and stores the images. As Orthanc's
worklist plugin, the items are DICOM files ending in ``.wl`` in one folder (option
``Worklists: {"Enable": true, "Database": "/path"}``), re-read at each query so the RIS may
write them at any time. Matching is C-FIND's (:func:`workbench.pacs.matching.matches`), with
sequence matching (PS3.4 C.2.2.2.6) for the Scheduled Procedure Step Sequence: an item
matches when one of its steps matches every key given inside the sequence.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from workbench.pacs.matching import matches
from workbench.pacs.tags import value_text

from . import access

LOGGER = logging.getLogger("workbench.pacs.node")

#: Modality Worklist Information Model - FIND.
WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
#: What an empty Scheduled Procedure Step Sequence item in a query asks for: every key of
#: the step that PS3.4 K.6-1 lists (returned empty when the item lacks it), as DCMTK's
#: ``wlmscpfs`` answers.
SCHEDULED_STEP_KEYS = (
    "Modality",
    "RequestedContrastAgent",
    "ScheduledStationAETitle",
    "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime",
    "ScheduledProcedureStepEndDate",
    "ScheduledProcedureStepEndTime",
    "ScheduledPerformingPhysicianName",
    "ScheduledProcedureStepDescription",
    "ScheduledProcedureStepID",
    "ScheduledStationName",
    "ScheduledProcedureStepLocation",
    "PreMedication",
    "ScheduledProcedureStepStatus",
    "CommentsOnTheScheduledProcedureStep",
)
#: The keys of a code sequence item (PS3.3 8.8).
CODE_KEYS = ("CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning")


def worklist_folder(config: Any) -> Path | None:
    """The folder of ``.wl`` files when the ``Worklists`` option enables them."""
    option = access.option(config, "Worklists") or {}
    if not option.get("Enable"):
        return None
    # "Directory" since Orthanc 1.12.10, "Database" before (both read, as Orthanc does).
    database = option.get("Directory") or option.get("Database")
    if not database:
        raise ValueError('Worklists is enabled but has no "Directory" (or "Database") folder')
    return Path(database).expanduser()


def read_worklists(folder: Path) -> Iterator[tuple[Path, Dataset]]:
    """Every readable worklist item of ``folder``; unreadable files are logged and skipped."""
    for path in sorted(folder.glob("*.wl")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # RIS-written files bend VR rules
                yield path, pydicom.dcmread(path, force=True)
        except Exception as exc:
            LOGGER.warning("Skipping worklist file %s: %s", path, exc)


def _text(element: DataElement | None) -> str | None:
    if element is None or element.value is None or element.value == "":
        return None
    return value_text(element.value, element.VR)


def _constrains(identifier: Dataset) -> bool:
    """Whether any key of ``identifier`` (or of its sequence items) is more than universal."""
    for key in identifier:
        if key.VR == "SQ":
            if any(_constrains(item) for item in key.value or []):
                return True
        elif (_text(key) or "") not in ("", "*") and key.keyword != "SpecificCharacterSet":
            return True
    return False


def item_matches(item: Dataset, identifier: Dataset) -> bool:
    """Whether a worklist item matches every key of a C-FIND identifier."""
    for key in identifier:
        if key.keyword in ("SpecificCharacterSet", "QueryRetrieveLevel") or key.tag.group == 2:
            continue
        if key.VR == "SQ":
            wanted = key.value[0] if key.value else None
            if wanted is None or not _constrains(wanted):
                continue  # universal matching of a sequence, present or not
            steps = item.get(key.tag)
            if steps is None or not any(item_matches(step, wanted) for step in steps.value):
                return False
            continue
        pattern = _text(key) or ""
        if pattern in ("", "*"):
            continue
        if not matches(_text(item.get(key.tag)), pattern, key.VR):
            return False
    return True


def build_worklist_answer(item: Dataset, identifier: Dataset, *, nested: bool = False) -> Dataset:
    """The requested keys of ``identifier`` with the item's values (empty when absent);
    the keys asked inside a sequence taken from each of the item's sequence items.

    A requested sequence the item lacks is left out, as DCMTK's ``wlmscpfs`` answers.
    """
    answer = Dataset()
    for key in identifier:
        if key.tag.group == 2 or key.keyword == "SpecificCharacterSet":
            continue
        present = item.get(key.tag)
        if key.VR == "SQ":
            if present is None:
                continue
            wanted = key.value[0] if key.value else Dataset()
            expand = len(wanted) == 0 and key.keyword == "ScheduledProcedureStepSequence"
            answer[key.tag] = DataElement(
                key.tag,
                "SQ",
                Sequence(
                    [
                        build_worklist_answer(
                            step, _step_keys(step) if expand else wanted, nested=True
                        )
                        if expand or len(wanted)
                        else step
                        for step in present.value
                    ]
                ),
            )
        elif present is not None:
            answer[key.tag] = present
        else:
            answer[key.tag] = DataElement(key.tag, key.VR, None)
    if (
        not nested
        and "SpecificCharacterSet" in item
        and ("SpecificCharacterSet" in identifier or not _plain_ascii(answer))
    ):
        # Said when asked, or when the answer needs more than the default repertoire
        # (PS3.4 C.4.1.1.3.2); wlmscpfs leaves it out, which loses the names' encoding.
        answer.SpecificCharacterSet = item.SpecificCharacterSet
    return answer


def _empty_keys(keywords: tuple[str, ...]) -> Dataset:
    keys = Dataset()
    for keyword in keywords:
        setattr(keys, keyword, None)
    return keys


def _step_keys(step: Dataset) -> Dataset:
    """What an empty step item in a query asks of ``step``: :data:`SCHEDULED_STEP_KEYS`,
    and its protocol codes when it has them."""
    keys = _empty_keys(SCHEDULED_STEP_KEYS)
    if "ScheduledProtocolCodeSequence" in step:
        keys.ScheduledProtocolCodeSequence = [_empty_keys(CODE_KEYS)]
    return keys


def _plain_ascii(ds: Dataset) -> bool:
    """Whether every text of ``ds`` (names included) is ASCII."""
    for element in ds:
        if element.VR == "SQ":
            if not all(_plain_ascii(item) for item in element.value):
                return False
        elif element.value and element.VR in _TEXT_VRS and not str(element.value).isascii():
            return False
    return True


_TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "PN", "UC"})


def worklist_answers(config: Any, identifier: Dataset) -> list[Dataset]:
    """The answers to a worklist C-FIND: each matching item's requested keys.

    Raises
    ------
    ValueError
        If worklists are not enabled (the SCP answers "SOP class not supported").
    """
    folder = worklist_folder(config)
    if folder is None:
        raise ValueError("Modality worklists are not enabled (option Worklists)")
    return [
        build_worklist_answer(item, identifier)
        for _, item in read_worklists(folder)
        if item_matches(item, identifier)
    ]


# --- worklist items managed over REST -------------------------------------------------------

#: A worklist's ID is its file name without ``.wl``: ours are UUIDs, a RIS may choose others.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def worklist_path(folder: Path, worklist_id: str) -> Path:
    """The file of worklist ``worklist_id`` in ``folder``.

    Raises
    ------
    KeyError
        No such worklist (or an ID that could name a file elsewhere).
    """
    path = folder / f"{worklist_id}.wl"
    if not _SAFE_ID.fullmatch(worklist_id) or not path.is_file():
        raise KeyError(worklist_id)
    return path


def write_worklist(folder: Path, item: Dataset, worklist_id: str | None = None, *,
                   set_study_uid: bool = True) -> str:  # fmt: skip
    """Write ``item`` as a ``.wl`` file (whole, under a temporary name first, so a C-FIND
    never reads half of it); its ID.

    ``set_study_uid`` gives the item a Study Instance UID when it has none, so the study the
    modality makes can be matched to it.
    """
    if set_study_uid and not item.get("StudyInstanceUID"):
        item.StudyInstanceUID = generate_uid()
    item.file_meta = FileMetaDataset()
    item.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    worklist_id = worklist_id or str(uuid.uuid4())
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False) as handle:
        item.save_as(handle, enforce_file_format=False)
    os.replace(handle.name, folder / f"{worklist_id}.wl")
    return worklist_id


def worklists_of_study(folder: Path, study_uid: str) -> list[Path]:
    """The worklist files scheduling the study ``study_uid``."""
    return [
        path for path, item in read_worklists(folder)
        if str(item.get("StudyInstanceUID", "")).strip() == study_uid
    ]  # fmt: skip
