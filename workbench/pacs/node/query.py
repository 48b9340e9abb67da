"""C-FIND identifiers ↔ index queries, and the answers the node sends back.

A C-FIND identifier carries matching keys (attributes with a value) and return keys (empty
attributes). Matching keys the index stores as columns become one ``Index.find`` SQL query;
the few others (e.g. ``ModalitiesInStudy`` or a non-main tag) are matched afterwards on the
candidates with the same PS3.4 C.2.2.2 rules. Each answer holds exactly the requested keys,
filled from the index's main tags of the resource and its parents, computed counts, and — only
when a requested key is in neither — the header of one of the resource's instances.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import sqlalchemy as sa
from pydicom import dcmread
from pydicom.charset import python_encoding
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from workbench.pacs.matching import fold_case
from workbench.pacs.schema import PARENT, TABLES
from workbench.pacs.tags import LEVELS, keyword_of, normalize_level, stored_tags, value_text

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


class QueryError(ValueError):
    """An identifier the node cannot process; ``status`` is the DIMSE status to answer."""

    def __init__(self, message: str, status: int = 0xA900) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ParsedQuery:
    """A C-FIND/MOVE/GET identifier split into what to match and what to return."""

    level: str
    constraints: dict[str, str] = field(default_factory=dict)
    requested: list[DataElement] = field(default_factory=list)
    charset: list[str] | None = None


@cache
def indexed_keywords(level: str) -> frozenset[str]:
    """Keywords the index can match in SQL at ``level`` (its own and its parents' columns)."""
    upto = LEVELS.index(level) + 1
    keywords = {keyword for name in LEVELS[:upto] for keyword in stored_tags(name)}
    if level == "Study":
        keywords.add("ModalitiesInStudy")  # matched by the index through the series table
    return frozenset(keywords)


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
    QueryError
        If (0008,0052) Query/Retrieve Level is missing or invalid for the model.
    """
    raw_level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    if raw_level not in DICOM_LEVELS:
        raise QueryError(
            f"(0008,0052) Query/Retrieve Level {raw_level!r} is not PATIENT, STUDY, SERIES "
            "or IMAGE"
        )
    if root == "STUDY" and raw_level == "PATIENT":
        raise QueryError("The Study Root information model has no PATIENT level")
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
        if text not in ("", "*"):
            parsed.constraints[elem.keyword] = text
    return parsed


def dataset_from_query(level: str, query: dict[str, str]) -> Dataset:
    """Build an identifier from ``{keyword or tag: pattern}`` at ``level`` (an SCU helper)."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = QR_LEVELS[normalize_level(level)]
    for name, pattern in query.items():
        keyword = keyword_of(name)
        tag = tag_for_keyword(keyword)
        identifier[tag] = DataElement(tag, dictionary_VR(tag), _typed(str(pattern or ""),
                                                                     dictionary_VR(tag)))
    return identifier


# -- Python-side matching for keys the index does not store ------------------------------------


def matches(value: str | None, pattern: str, vr: str) -> bool:
    """Whether ``value`` matches ``pattern`` per PS3.4 C.2.2.2 (used after the SQL query)."""
    if pattern in ("", "*"):
        return True
    if value is None:
        return False
    values = value.split("\\") if value else [""]
    return any(_matches_one(item, pattern, vr) for item in values)


def _matches_one(value: str, pattern: str, vr: str) -> bool:
    if "\\" in pattern:
        return any(_matches_one(value, item, vr) for item in pattern.split("\\"))
    if vr == "PN":
        value, pattern = fold_case(value), fold_case(pattern)
    if vr in ("DA", "TM", "DT") and "-" in pattern:
        low, _, high = pattern.partition("-")
        return (not low or value >= low) and (not high or value[: len(high)] <= high)
    if ("*" in pattern or "?" in pattern) and vr not in ("DA", "TM", "DT", "UI"):
        escaped = pattern.replace("[", "[[]")
        return fnmatch.fnmatchcase(value, escaped)
    return value == pattern


# -- running a query -------------------------------------------------------------------------


def _merged_tags_query(level: str, public_ids: list[str]) -> sa.Select:
    """One SELECT of the stored tags of resources of ``level`` and of all their parents."""
    table = TABLES[level]
    joined, current = table, level
    while current in PARENT:
        parent = PARENT[current]
        joined = joined.join(TABLES[parent], TABLES[current].c.parent_pk == TABLES[parent].c.pk)
        current = parent
    columns = [table.c.public_id.label("public_id")]
    for owner in LEVELS[: LEVELS.index(level) + 1]:
        columns += [TABLES[owner].c[k].label(f"{owner}:{k}") for k in stored_tags(owner)]
    return sa.select(*columns).select_from(joined).where(table.c.public_id.in_(public_ids))


def _descendant_counts_query(level: str, counted: str, public_ids: list[str]) -> sa.Select:
    """Number of ``counted`` descendants of each resource of ``level``, in one GROUP BY."""
    table = TABLES[level]
    joined, current = TABLES[counted], counted
    while current != level:
        parent = PARENT[current]
        joined = joined.join(TABLES[parent], TABLES[current].c.parent_pk == TABLES[parent].c.pk)
        current = parent
    return (
        sa.select(table.c.public_id, sa.func.count())
        .select_from(joined)
        .where(table.c.public_id.in_(public_ids))
        .group_by(table.c.public_id)
    )


def _modalities_query(study_ids: list[str]) -> sa.Select:
    """(study public ID, series Modality) pairs, in series order, for ModalitiesInStudy."""
    studies, series = TABLES["Study"], TABLES["Series"]
    return (
        sa.select(studies.c.public_id, series.c.Modality)
        .select_from(series.join(studies, series.c.parent_pk == studies.c.pk))
        .where(studies.c.public_id.in_(study_ids))
        .order_by(series.c.pk)
    )


class _Lookups:
    """Tags and parents read once per request: the answers of one C-FIND share parents
    (every instance of a series has the same study and patient), and the tags of all matches
    are read in a few joined queries rather than several per answer."""

    def __init__(self, index: Any) -> None:
        self.index = index
        self._tags: dict[tuple[str, str], dict[str, str]] = {}
        self._parents: dict[tuple[str, str], str] = {}
        self.merged: dict[str, dict[str, str]] = {}
        #: (counted level, public ID) → number of descendants, for the NumberOf* keys.
        self.counts: dict[tuple[str, str], int] = {}
        #: Study public ID → its series' modalities, for ModalitiesInStudy.
        self.modalities: dict[str, list[str]] = {}

    def prefetch(self, level: str, public_ids: list[str],
                 requested: frozenset[str] = frozenset()) -> None:
        """Read the merged tags (own level first, then parents) of many resources at once.

        This reads the index's tables directly (through :mod:`workbench.pacs.schema`) because
        answering a C-FIND with thousands of matches one resource at a time is what makes
        archives slow to query.
        """
        engine = getattr(self.index, "engine", None)
        if engine is None:
            return
        order = list(reversed(LEVELS[: LEVELS.index(level) + 1]))  # own level wins
        with engine.connect() as conn:
            counted_levels = [counted for keyword, (owner, counted) in _COUNTS.items()
                              if owner == level and keyword in requested]
            for start in range(0, len(public_ids), 500):
                chunk = public_ids[start:start + 500]
                statement = _merged_tags_query(level, chunk)
                for row in conn.execute(statement).mappings():
                    tags: dict[str, str] = {}
                    for owner in order:
                        for keyword in stored_tags(owner):
                            value = row[f"{owner}:{keyword}"]
                            if value is not None:
                                tags.setdefault(keyword, value)
                    self.merged[row["public_id"]] = tags
                # Counts and modalities grouped in SQL: one query per key and chunk, not
                # several per answer (a date-range C-FIND can match thousands of studies).
                for counted in counted_levels:
                    self.counts.update({(counted, public_id): 0 for public_id in chunk})
                    query = _descendant_counts_query(level, counted, chunk)
                    for public_id, count in conn.execute(query):
                        self.counts[(counted, public_id)] = count
                if level == "Study" and "ModalitiesInStudy" in requested:
                    for public_id in chunk:
                        self.modalities[public_id] = []
                    for public_id, modality in conn.execute(_modalities_query(chunk)):
                        found = self.modalities[public_id]
                        if modality and modality not in found:
                            found.append(modality)

    def main_tags(self, level: str, resource_id: str) -> dict[str, str]:
        key = (level, resource_id)
        if key not in self._tags:
            self._tags[key] = self.index.main_dicom_tags(level, resource_id)
        return self._tags[key]

    def parent(self, level: str, resource_id: str) -> str:
        key = (level, resource_id)
        if key not in self._parents:
            self._parents[key] = self.index.parent(level, resource_id)
        return self._parents[key]


class _Resource:
    """One matched resource and lazily gathered values for the answer."""

    def __init__(self, index: Any, level: str, resource_id: str,
                 lookups: _Lookups | None = None) -> None:
        self.index = index
        self.level = level
        self.id = resource_id
        self.lookups = lookups or _Lookups(index)
        self._tags: dict[str, str] | None = None
        self._header: Dataset | None = None

    @property
    def tags(self) -> dict[str, str]:
        """Main tags of the resource and of its parents (its own win on a clash)."""
        if self._tags is None and self.id in self.lookups.merged:
            self._tags = self.lookups.merged[self.id]
        if self._tags is None:
            tags: dict[str, str] = {}
            level, resource_id = self.level, self.id
            while True:
                for key, value in self.lookups.main_tags(level, resource_id).items():
                    tags.setdefault(key, value)
                position = LEVELS.index(level)
                if position == 0:
                    break
                resource_id = self.lookups.parent(level, resource_id)
                level = LEVELS[position - 1]
            self._tags = tags
        return self._tags

    @property
    def header(self) -> Dataset:
        if self._header is None:
            instances = self.index.instances_of(self.level, self.id)
            if not instances:
                self._header = Dataset()
            else:
                path = self.index.instance_path(instances[0])
                self._header = dcmread(path, stop_before_pixels=True)
        return self._header

    def value(self, keyword: str, tag: int) -> str | None:
        if keyword in self.tags:
            return self.tags[keyword]
        computed = self._computed(keyword)
        if computed is not None:
            return computed
        if keyword in indexed_keywords(self.level):
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
            if owner != self.level:
                return None
            if (counted, self.id) in self.lookups.counts:
                return str(self.lookups.counts[(counted, self.id)])
            if counted == "Instance":
                return str(len(self.index.instances_of(self.level, self.id)))
            return str(len(self._descendants(counted)))
        if keyword == "ModalitiesInStudy" and self.level == "Study":
            if self.id in self.lookups.modalities:
                return "\\".join(self.lookups.modalities[self.id])
            modalities = []
            for series in self.index.children("Study", self.id):
                modality = self.index.main_dicom_tags("Series", series).get("Modality")
                if modality and modality not in modalities:
                    modalities.append(modality)
            return "\\".join(modalities)
        if keyword == "SOPClassesInStudy" and self.level == "Study":
            classes = []
            for instance in self.index.instances_of("Study", self.id):
                found = self.index.main_dicom_tags("Instance", instance).get("SOPClassUID")
                if found and found not in classes:
                    classes.append(found)
            return "\\".join(classes)
        if keyword == "InstanceAvailability":
            return "ONLINE"
        return None

    def _descendants(self, level: str) -> list[str]:
        found = [self.id]
        current = self.level
        while current != level:
            found = [child for parent in found for child in self.index.children(current, parent)]
            current = LEVELS[LEVELS.index(current) + 1]
        return found


def find_resources(index: Any, parsed: ParsedQuery) -> Iterator[_Resource]:
    """Resources matching ``parsed``: one SQL query, then the non-indexed keys in Python."""
    indexed = indexed_keywords(parsed.level)
    sql = {key: value for key, value in parsed.constraints.items() if key in indexed}
    rest = {key: value for key, value in parsed.constraints.items() if key not in indexed}
    lookups = _Lookups(index)
    found = index.find(parsed.level, sql, case_sensitive=True)
    requested = frozenset(elem.keyword for elem in parsed.requested if elem.keyword)
    lookups.prefetch(parsed.level, found, requested | frozenset(parsed.constraints))
    for resource_id in found:
        resource = _Resource(index, parsed.level, resource_id, lookups)
        if all(
            matches(resource.value(key, tag_for_keyword(key)), pattern, dictionary_VR(key))
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
    """The C-FIND answer for one resource: every requested key, empty when absent."""
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
        answer[elem.tag] = DataElement(elem.tag, elem.VR, _typed(text, elem.VR))
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


def instances_for_retrieve(index: Any, identifier: Dataset, root: str) -> list[str]:
    """Instance IDs a C-MOVE/C-GET identifier selects (unique keys of the given level)."""
    parsed = parse_identifier(identifier, root)
    if not parsed.constraints:
        raise QueryError(
            "A retrieve identifier must name at least one unique key (PatientID, "
            "StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID)"
        )
    instances: list[str] = []
    for resource in find_resources(index, parsed):
        instances.extend(index.instances_of(parsed.level, resource.id))
    return list(dict.fromkeys(instances))
