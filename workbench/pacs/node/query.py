"""C-FIND identifiers ↔ index queries, and the answers the node sends back.

A C-FIND identifier carries matching keys (attributes with a value) and return keys (empty
attributes). Matching keys the index can search become one ``Index.find`` query, the SQL
``/tools/find`` runs too; the few others (tags the index does not store) are matched
afterwards on the candidates by the Python twin of the same rules
(:func:`workbench.pacs.matching.matches`). Each answer holds exactly the requested keys, filled
from the index's tags of the resource and its parents and computed counts (read through
``Index`` for all matches at once), and — only when a requested key is in neither — the header
of one of the resource's instances.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydicom import config as pydicom_config
from pydicom import dcmread
from pydicom.charset import python_encoding
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from workbench.pacs.errors import BadRequestError
from workbench.pacs.index import Index, searchable_keywords
from workbench.pacs.matching import matches
from workbench.pacs.tags import keyword_of, normalize_level, value_text

LOGGER = logging.getLogger(__name__)

#: DICOM Query/Retrieve level → index level.
DICOM_LEVELS = {"PATIENT": "Patient", "STUDY": "Study", "SERIES": "Series", "IMAGE": "Instance"}
#: Index level → DICOM Query/Retrieve level.
QR_LEVELS = {value: key for key, value in DICOM_LEVELS.items()}

#: Attributes that describe the query itself, never matched against resources.
_CONTROL_KEYWORDS = {"QueryRetrieveLevel", "SpecificCharacterSet", "TimezoneOffsetFromUTC"}
_UTF8 = "ISO_IR 192"

#: Computed attributes (PS3.4 C.6.1.1 / C.6.2.1 optional keys) and the levels that have them.
_COUNTS = {
    "NumberOfPatientRelatedStudies": ("Patient", "Study"),
    "NumberOfPatientRelatedSeries": ("Patient", "Series"),
    "NumberOfPatientRelatedInstances": ("Patient", "Instance"),
    "NumberOfStudyRelatedSeries": ("Study", "Series"),
    "NumberOfStudyRelatedInstances": ("Study", "Instance"),
    "NumberOfSeriesRelatedInstances": ("Series", "Instance"),
}


#: Keys computed from the index rather than read from a file (see ``_Resource._computed``).
_COMPUTED = frozenset(
    {*_COUNTS, "ModalitiesInStudy", "SOPClassesInStudy", "InstanceAvailability",
     "AvailableTransferSyntaxUID"}
)  # fmt: skip
#: Study keys answered from one summary query (see :meth:`Index.study_summaries`).
_STUDY_SUMMARY = frozenset(
    {"ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"}
)
#: A LIMIT large enough for every row: asking for one makes ``Index.find`` order its rows.
_EVERY_ROW = 2**31 - 1


@dataclass
class ParsedQuery:
    """A C-FIND/MOVE/GET identifier split into what to match and what to return."""

    level: str
    constraints: dict[str, str] = field(default_factory=dict)
    requested: list[DataElement] = field(default_factory=list)
    charset: list[str] | None = None


def parse_identifier(identifier: Dataset, root: str = "STUDY") -> ParsedQuery:
    """Read a C-FIND/C-MOVE/C-GET identifier.

    Parameters
    ----------
    identifier : Dataset
        The request's identifier, as decoded by pynetdicom.
    root : {"PATIENT", "STUDY"}
        The information model of the presentation context.

    Raises
    ------
    BadRequestError
        If (0008,0052) Query/Retrieve Level is missing or invalid for the model.
    """
    raw_level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    if raw_level not in DICOM_LEVELS:
        raise BadRequestError(
            f"(0008,0052) Query/Retrieve Level {raw_level!r} is not PATIENT, STUDY, SERIES or IMAGE"
        )
    if root == "STUDY" and raw_level == "PATIENT":
        raise BadRequestError("The Study Root information model has no PATIENT level")
    charset = identifier.get("SpecificCharacterSet")
    if isinstance(charset, str):
        charset = [charset]
    parsed = ParsedQuery(DICOM_LEVELS[raw_level], charset=list(charset) if charset else None)
    for elem in identifier:
        if elem.tag.group in (0x0000, 0x0002) or elem.keyword in _CONTROL_KEYWORDS:
            continue
        parsed.requested.append(elem)
        if elem.VR == "SQ" or not elem.keyword:
            continue  # sequence matching and private keys are return-only here
        text = value_text(elem.value, elem.VR)
        if text != "":  # "*" is a wildcard: like Orthanc, it needs the attribute to have a value
            parsed.constraints[elem.keyword] = text
    return parsed


def dataset_from_query(level: str, query: dict[str, str]) -> Dataset:
    """Build an identifier from ``{keyword or tag: pattern}`` at ``level`` (an SCU helper)."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = QR_LEVELS[normalize_level(level)]
    for name, pattern in query.items():
        keyword = keyword_of(name)
        tag = tag_for_keyword(keyword)
        identifier[tag] = DataElement(
            tag, dictionary_VR(tag), _typed(str(pattern or ""), dictionary_VR(tag))
        )
    return identifier


# -- running a query -------------------------------------------------------------------------


class _Lookups:
    """What the answers of one C-FIND need from the index, read for all matches at once:
    answering thousands of matches one resource at a time is what makes archives slow to
    query. A resource missed by the batch (indexed meanwhile) is read on its own."""

    def __init__(self, index: Index, level: str) -> None:
        self.index = index
        self.level = level
        self._tags: dict[str, dict[str, str]] = {}
        #: (counted level, public ID) → number of descendants, for the NumberOf* keys.
        self._counts: dict[tuple[str, str], int] = {}
        #: Study public ID → its series' modalities, for ModalitiesInStudy.
        self._modalities: dict[str, list[str]] = {}
        #: Public ID → the file keys the index lacks are read from.
        self._files: dict[str, Path] = {}

    def prefetch(self, public_ids: list[str], requested: frozenset[str]) -> None:
        """Read the merged tags of ``public_ids``, and the counts and modalities
        ``requested``."""
        # Some key is read from a file (e.g. TimezoneOffsetFromUTC): one query finds a file
        # for every match, rather than two per answer. A study's modalities and both its
        # counts come from one query rather than three. All on one connection.
        files = bool(requested - searchable_keywords(self.level) - _COMPUTED)
        summaries = self.level == "Study" and bool(requested & _STUDY_SUMMARY)
        counted = tuple(
            below
            for keyword, (owner, below) in _COUNTS.items()
            if owner == self.level and keyword in requested and not summaries
        )
        found = self.index.answer_lookups(
            self.level, public_ids, files=files, summaries=summaries, counted=counted
        )
        self._tags.update(found.tags)
        self._files.update(found.files)
        for study_id, (modalities, series, instances) in found.study_summaries.items():
            self._modalities[study_id] = modalities
            self._counts[("Series", study_id)] = series
            self._counts[("Instance", study_id)] = instances
        for below, counts in found.counts.items():
            self._counts.update({(below, public_id): n for public_id, n in counts.items()})

    def _read_counts(self, counted: str, public_ids: list[str]) -> None:
        counts = self.index.descendant_counts(self.level, counted, public_ids)
        self._counts.update({(counted, public_id): n for public_id, n in counts.items()})

    def tags(self, public_id: str) -> dict[str, str]:
        """Stored tags of the resource and of its parents (its own win on a clash)."""
        if public_id not in self._tags:
            self._tags.update(self.index.tags_with_parents(self.level, [public_id]))
        return self._tags.get(public_id, {})

    def count(self, counted: str, public_id: str) -> int:
        if (counted, public_id) not in self._counts:
            self._read_counts(counted, [public_id])
        return self._counts[(counted, public_id)]

    def file(self, public_id: str) -> Path | None:
        """A file of an instance under the resource (``None``: it has none)."""
        if public_id not in self._files:
            files = self.index.instance_files(self.level, public_id, limit=1)
            if files:
                self._files[public_id] = files[0][1]
        return self._files.get(public_id)

    def modalities(self, study_id: str) -> list[str]:
        if study_id not in self._modalities:
            self._modalities.update(self.index.modalities_in_studies([study_id]))
        return self._modalities[study_id]


class _Resource:
    """One matched resource and lazily gathered values for the answer."""

    def __init__(self, lookups: _Lookups, resource_id: str) -> None:
        self.index = lookups.index
        self.level = lookups.level
        self.id = resource_id
        self.lookups = lookups
        self._header: Dataset | None = None

    @property
    def header(self) -> Dataset:
        if self._header is None:
            path = self.lookups.file(self.id)
            self._header = _stored_header(path) if path is not None else Dataset()
        return self._header

    def value(self, keyword: str, tag: int) -> str | None:
        tags = self.lookups.tags(self.id)
        if keyword in tags:
            return tags[keyword]
        computed = self._computed(keyword)
        if computed is not None:
            return computed
        if keyword in searchable_keywords(self.level):
            return None  # the index keeps this tag: absent from the instance, not unknown
        try:
            header = self.header
        except (OSError, KeyError, ValueError) as exc:  # e.g. rows indexed without a file
            LOGGER.debug("No header for %s %s: %s", self.level, self.id, exc)
            return None
        if tag in header:
            elem = header[tag]
            return None if elem.VR == "SQ" else value_text(elem.value, elem.VR)
        return None

    def _computed(self, keyword: str) -> str | None:
        if keyword in _COUNTS:
            owner, counted = _COUNTS[keyword]
            return str(self.lookups.count(counted, self.id)) if owner == self.level else None
        if keyword == "ModalitiesInStudy" and self.level == "Study":
            return "\\".join(self.lookups.modalities(self.id))
        if keyword == "SOPClassesInStudy" and self.level == "Study":
            # SOPClassUID is kept beside the main tags, which main_dicom_tags leaves out.
            instances = self.index.instances_of("Study", self.id)
            tags = self.index.tags_with_parents("Instance", instances)
            classes = (tags.get(instance, {}).get("SOPClassUID") for instance in instances)
            return "\\".join(dict.fromkeys(found for found in classes if found))
        if keyword == "InstanceAvailability":
            return "ONLINE"
        if keyword == "AvailableTransferSyntaxUID" and self.level == "Instance":
            # What a C-GET requestor needs to propose a context the file can go out on as is.
            return self.index.instance_info(self.id)["TransferSyntax"]
        return None


@lru_cache(maxsize=1024)
def _stored_header(path: Path) -> Dataset:
    """The header of a stored file, kept: stored files never change (a new version gets a
    new name), and instance-level queries (Rows, Columns...) ask for the same ones again."""
    return dcmread(path, stop_before_pixels=True)


def find_resources(
    index: Index,
    parsed: ParsedQuery,
    *,
    limit: int | None = None,
    offset: int = 0,
    case_sensitive: bool = True,
) -> Iterator[_Resource]:
    """Resources matching ``parsed``: one SQL query, then the non-indexed keys in Python,
    read from one file under each resource (as Orthanc's ``StorageAccessOnFind``).

    ``limit`` and ``offset`` page through the matches in the order they were stored (QIDO-RS
    has them); the SQL query pages itself when every key is indexed. ``case_sensitive``
    concerns attributes other than person names (C-FIND and QIDO-RS: true; Orthanc's
    ``/tools/find``: false unless asked).
    """
    indexed = searchable_keywords(parsed.level)
    sql = {key: value for key, value in parsed.constraints.items() if key in indexed}
    rest = {key: value for key, value in parsed.constraints.items() if key not in indexed}
    if limit is None and not offset:
        found = index.find(parsed.level, sql, case_sensitive=case_sensitive)
    elif not rest:
        found = index.find(
            parsed.level, sql, case_sensitive=case_sensitive, limit=limit, since=offset
        )
    else:
        # Paging after the Python matching: all the SQL matches, in the order paging uses.
        found = index.find(parsed.level, sql, case_sensitive=case_sensitive, limit=_EVERY_ROW)
        stop = None if limit is None else offset + limit
        matching = _matching(index, parsed, found, rest, case_sensitive)
        yield from itertools.islice(matching, offset, stop)
        return
    yield from _matching(index, parsed, found, rest, case_sensitive)


def _matching(
    index: Index,
    parsed: ParsedQuery,
    found: list[str],
    rest: dict[str, str],
    case_sensitive: bool,
) -> Iterator[_Resource]:
    requested = frozenset(elem.keyword for elem in parsed.requested if elem.keyword)
    lookups = _Lookups(index, parsed.level)
    lookups.prefetch(found, requested | frozenset(parsed.constraints))
    for resource_id in found:
        resource = _Resource(lookups, resource_id)
        if all(
            matches(
                resource.value(key, tag_for_keyword(key)),
                pattern,
                dictionary_VR(key),
                case_sensitive=case_sensitive,
            )
            for key, pattern in rest.items()
        ):
            yield resource


def answer_charset(requested: list[str] | None, values: list[str]) -> list[str]:
    """The Specific Character Set of an answer: the request's if it can hold the values."""
    if requested:
        try:
            codecs = [python_encoding[term] for term in requested if term]
            codec = codecs[-1] if codecs else "ascii"
            for text in values:
                text.encode(codec)
            return requested
        except (KeyError, UnicodeEncodeError):
            pass
    return [_UTF8]


def build_answer(resource: _Resource, parsed: ParsedQuery, retrieve_aet: str) -> Dataset:
    """The C-FIND answer for one resource: every requested key, empty when absent, and the
    Retrieve AE Title (``retrieve_aet``, when given) whether asked for or not, as PACSs and
    Orthanc answer it (PS3.4 C.4.1.1.3.2): where a C-MOVE or C-GET of it should go."""
    answer = Dataset()
    texts: list[str] = []
    for elem in parsed.requested:
        if elem.VR == "SQ":
            answer[elem.tag] = DataElement(elem.tag, "SQ", Sequence())
            continue
        keyword = elem.keyword or keyword_for_tag(elem.tag)
        if keyword == "RetrieveAETitle":
            text: str | None = retrieve_aet
        else:
            text = resource.value(keyword, elem.tag) if keyword else None
        text = text or ""
        texts.append(text)
        # Values come from the index as they were stored: checking them again (pydicom
        # would only warn) cost a sixth of building an answer.
        answer[elem.tag] = DataElement(
            elem.tag, elem.VR, _typed(text, elem.VR), validation_mode=pydicom_config.IGNORE
        )
    if retrieve_aet and "RetrieveAETitle" not in answer:
        answer.RetrieveAETitle = retrieve_aet
    charset = answer_charset(parsed.charset, texts)
    answer.SpecificCharacterSet = charset if len(charset) > 1 else charset[0]
    answer.QueryRetrieveLevel = QR_LEVELS[parsed.level]
    return answer


def _typed(text: str, vr: str) -> Any:
    """Convert index text into the Python value pydicom expects for ``vr``."""
    if text == "":
        return None
    if vr in ("US", "SS", "UL", "SL", "UV", "SV"):
        items = [int(float(item)) for item in text.split("\\") if item.strip()]
        return items[0] if len(items) == 1 else items
    if vr in ("FL", "FD"):
        items = [float(item) for item in text.split("\\") if item.strip()]
        return items[0] if len(items) == 1 else items
    if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        return text.encode("latin-1", errors="replace")
    return text


def instances_for_retrieve(index: Index, identifier: Dataset, root: str) -> list[str]:
    """Instance IDs a C-MOVE/C-GET identifier selects (unique keys of the given level)."""
    parsed = parse_identifier(identifier, root)
    if not parsed.constraints:
        raise BadRequestError(
            "A retrieve identifier must name at least one unique key (PatientID, "
            "StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID)"
        )
    instances: list[str] = []
    for resource in find_resources(index, parsed):
        instances.extend(index.instances_of(parsed.level, resource.id))
    return list(dict.fromkeys(instances))
