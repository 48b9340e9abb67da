"""DICOM attribute matching (PS3.4 C.2.2.2), as SQL conditions and as a Python test.

A query value is read once (:func:`parse_pattern`) into one of the standard's matching types:
universal, single value, list of UID, wildcard, range, or a list of values each matched on
its own. Each type then has two twins side by side: an SQL condition over an indexed column
(what ``Index.find`` runs for ``/tools/find`` and C-FIND alike) and a Python test of a value
(what C-FIND applies to attributes the index does not store). :func:`condition_for` and
:func:`matches` are the two entry points; ``tests/pacs/test_matching.py`` runs one table of
cases against both.

Patterns come from remote clients: they only ever become bound parameters, never SQL text.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from .errors import BadRequestError

#: VRs matched case-insensitively by default (PS3.4 C.2.2.2.1: PN is matched without case by
#: most archives; Orthanc's ``CaseSensitivePN`` is false by default).
CASE_INSENSITIVE_VRS = frozenset({"PN"})
RANGE_VRS = frozenset({"DA", "TM", "DT"})
#: VRs whose values have no letter case: always compared exactly, so their index is used.
CASELESS_VRS = frozenset({"UI", "DA", "TM", "DT", "IS", "DS", "US", "UL", "SS", "SL", "FL", "FD"})
_WILDCARD_FORBIDDEN_VRS = frozenset({"DA", "TM", "DT", "UI"})
#: Name of the SQL function lowering case in every script, which :mod:`.database` gives each
#: SQLite connection: SQLite's own LOWER() and NOCASE fold ASCII letters only.
UNICODE_LOWER = "workbench_lower"
#: PostgreSQL's LOWER() follows the database's collation, and folds only ASCII letters in the
#: "C" one; ICU's root collation folds every script whatever the database was created with.
POSTGRESQL_LOWER_COLLATION = "und-x-icu"


def fold_case(text: str) -> str:
    """The form in which case-insensitive values are compared, in SQL and in Python alike.

    ``str.lower`` rather than ``casefold``: a query ``STRASSE`` should not find ``Straße``
    in one place and miss it in another.
    """
    return text.lower()


def lowered(column: ColumnElement, dialect: str = "") -> ColumnElement:
    """``column`` in the lowercase of :func:`fold_case`, as ``dialect``'s SQL computes it
    (the expression the index's lowercase indexes are built on)."""
    if dialect == "sqlite":
        return getattr(sa.func, UNICODE_LOWER)(column)
    if dialect == "postgresql":
        return sa.func.lower(column.collate(POSTGRESQL_LOWER_COLLATION))
    return sa.func.lower(column)


# -- reading a query value -------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """A query value read per PS3.4 C.2.2.2.

    Attributes
    ----------
    kind : str
        "universal", "single", "wildcard", "range", "uid_list" or "any_of".
    text : str
        The value ("single") or the pattern with ``*`` and ``?`` ("wildcard").
    low, high : str
        Range bounds, either possibly empty ("range").
    vr : str
        The attribute's VR.
    case_sensitive : bool
        Whether letter case matters ("single", "wildcard").
    uids : tuple of str
        The UIDs of a list of UID.
    parts : tuple of Pattern
        The values of a list of values, any of which may match ("any_of").
    """

    kind: str
    text: str = ""
    low: str = ""
    high: str = ""
    vr: str = ""
    case_sensitive: bool = True
    uids: tuple[str, ...] = ()
    parts: tuple[Pattern, ...] = ()


UNIVERSAL = Pattern("universal")


def _validate_range_bound(bound: str, vr: str, original: str) -> None:
    allowed = set("0123456789.") | ({"+", "-"} if vr == "DT" else set())
    if bound and not set(bound) <= allowed:
        raise BadRequestError(f"Invalid {vr} range bound {bound!r} in {original!r}")


def parse_pattern(vr: str, value: str, *, case_sensitive: bool = True) -> Pattern:
    """Read a query value into its matching type.

    Parameters
    ----------
    vr : str
        The attribute's value representation; decides range and case handling.
    value : str
        The query value as sent by the client (a C-FIND identifier value or ``/tools/find``
        query value).
    case_sensitive : bool
        Case sensitivity for non-PN attributes (PN is always case-insensitive).

    Raises
    ------
    BadRequestError
        If the value is malformed for its VR (e.g. a date range with letters, or ``-``).
    """
    value = value.rstrip(" \x00") if vr == "PN" else value.strip(" \x00")
    if value == "":
        return UNIVERSAL
    # "*" stays a wildcard: like Orthanc, it matches any value but not an absent attribute.
    sensitive = (case_sensitive and vr not in CASE_INSENSITIVE_VRS) or vr in CASELESS_VRS
    if "\\" in value:
        items = value.split("\\")
        if vr == "UI":
            return Pattern("uid_list", vr=vr, uids=tuple(i.strip() for i in items if i.strip()))
        parts = tuple(parse_pattern(vr, item, case_sensitive=case_sensitive) for item in items)
        if UNIVERSAL in parts:
            return UNIVERSAL
        return Pattern("any_of", vr=vr, parts=parts)
    if vr in RANGE_VRS and "-" in value and not (vr == "DT" and value.count("-") != 1):
        low, _, high = value.partition("-")
        low, high = low.strip(), high.strip()
        _validate_range_bound(low, vr, value)
        _validate_range_bound(high, vr, value)
        if not low and not high:
            raise BadRequestError("A range needs at least one bound, e.g. 20200101-20201231")
        return Pattern("range", low=low, high=high, vr=vr)
    if ("*" in value or "?" in value) and vr not in _WILDCARD_FORBIDDEN_VRS:
        return Pattern("wildcard", text=value, vr=vr, case_sensitive=sensitive)
    if vr in RANGE_VRS:
        _validate_range_bound(value, vr, value)
    return Pattern("single", text=value, vr=vr, case_sensitive=sensitive)


# -- SQL and Python, one pair per matching type ------------------------------------------------


def universal_match(column: ColumnElement) -> None:
    """Universal matching (C.2.2.2.3): an empty value matches every resource.

    Returns ``None``, meaning "no condition".
    """
    return None


def single_value_match(
    column: ColumnElement, value: str, *, case_sensitive: bool = True, dialect: str = ""
) -> ColumnElement:
    """Single value matching (C.2.2.2.1): the stored value equals ``value``.

    Without case, SQLite compares an ASCII value in NOCASE collation (served by a NOCASE
    index) and any other value lowered by :data:`UNICODE_LOWER`; other backends compare
    text lowered by :func:`lowered`.
    """
    if case_sensitive:
        return column == value
    if dialect == "sqlite" and value.isascii():
        return column.collate("NOCASE") == value
    return lowered(column, dialect) == fold_case(value)


def single_value_matches(stored: str, value: str, *, case_sensitive: bool = True) -> bool:
    """The Python twin of :func:`single_value_match`."""
    if case_sensitive:
        return stored == value
    return fold_case(stored) == fold_case(value)


def uid_list_match(column: ColumnElement, uids: list[str]) -> ColumnElement:
    """List of UID matching (C.2.2.2.2): the stored UID is one of ``uids``."""
    return column.in_([uid.strip() for uid in uids if uid.strip()])


def uid_list_matches(stored: str, uids: tuple[str, ...]) -> bool:
    """The Python twin of :func:`uid_list_match`."""
    return stored in uids


def _like_pattern(pattern: str) -> str:
    out = []
    for char in pattern:
        if char in "\\%_":
            out.append("\\" + char)
        elif char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        else:
            out.append(char)
    return "".join(out)


def _glob_pattern(pattern: str) -> str:
    # DICOM's * and ? mean what GLOB's and fnmatch's do; their [ must be made literal.
    return pattern.replace("[", "[[]")


def wildcard_match(
    column: ColumnElement, pattern: str, *, case_sensitive: bool = True, dialect: str = ""
) -> ColumnElement:
    """Wildcard matching (C.2.2.2.4): ``*`` is any run of characters, ``?`` any one character.

    SQLite's ``LIKE`` ignores ASCII case (and uses a NOCASE index for a literal prefix), so
    case-sensitive matching there is ``GLOB`` (which uses the ordinary index), and a pattern
    with other letters is matched on text lowered by :data:`UNICODE_LOWER`. Other backends
    use ``LIKE`` on the text or on the text lowered by :func:`lowered`.
    """
    if dialect == "sqlite":
        if case_sensitive:
            return column.op("GLOB", is_comparison=True)(_glob_pattern(pattern))
        if pattern.isascii():
            return column.like(_like_pattern(pattern), escape="\\")
    elif case_sensitive:
        return column.like(_like_pattern(pattern), escape="\\")
    return lowered(column, dialect).like(_like_pattern(fold_case(pattern)), escape="\\")


def wildcard_matches(stored: str, pattern: str, *, case_sensitive: bool = True) -> bool:
    """The Python twin of :func:`wildcard_match`."""
    if not case_sensitive:
        stored, pattern = fold_case(stored), fold_case(pattern)
    return fnmatch.fnmatchcase(stored, _glob_pattern(pattern))


def range_match(column: ColumnElement, low: str, high: str, vr: str = "DA") -> ColumnElement:
    """Range matching (C.2.2.2.5) of DA, TM and DT values: ``low-high``, ``-high``, ``low-``.

    DICOM dates and times compare correctly as text once padding is gone, so the condition is
    a plain comparison the column's index can serve. Open ends stay open.
    """
    conditions = []
    if low:
        conditions.append(column >= low)
    if high and vr == "DA" and len(high) == 8:
        conditions.append(column <= high)  # same length as stored dates: index-friendly
    elif high:
        # "-1016" includes 101559.9 and "-20200131" every time of that day: compare the
        # stored value's prefix of the bound's length.
        conditions.append(sa.func.substr(column, 1, len(high)) <= high)
    return sa.and_(*conditions)


def range_matches(stored: str, low: str, high: str) -> bool:
    """The Python twin of :func:`range_match`."""
    return (not low or stored >= low) and (not high or stored[: len(high)] <= high)


# -- entry points ------------------------------------------------------------------------------


def sql_condition(
    column: ColumnElement, pattern: Pattern, *, dialect: str = ""
) -> ColumnElement | None:
    """The SQL condition matching ``column`` against a read pattern (``None``: universal)."""
    if pattern.kind == "universal":
        return universal_match(column)
    if pattern.kind == "uid_list":
        return uid_list_match(column, list(pattern.uids))
    if pattern.kind == "any_of":
        return sa.or_(*(sql_condition(column, part, dialect=dialect) for part in pattern.parts))
    if pattern.kind == "range":
        return range_match(column, pattern.low, pattern.high, pattern.vr)
    if pattern.kind == "wildcard":
        return wildcard_match(
            column, pattern.text, case_sensitive=pattern.case_sensitive, dialect=dialect
        )
    return single_value_match(
        column, pattern.text, case_sensitive=pattern.case_sensitive, dialect=dialect
    )


def value_matches(stored: str, pattern: Pattern) -> bool:
    """Whether one stored value (never absent) matches a read pattern, in Python."""
    if pattern.kind == "universal":
        return True
    if pattern.kind == "uid_list":
        return uid_list_matches(stored, pattern.uids)
    if pattern.kind == "any_of":
        return any(value_matches(stored, part) for part in pattern.parts)
    if pattern.kind == "range":
        return range_matches(stored, pattern.low, pattern.high)
    if pattern.kind == "wildcard":
        return wildcard_matches(stored, pattern.text, case_sensitive=pattern.case_sensitive)
    return single_value_matches(stored, pattern.text, case_sensitive=pattern.case_sensitive)


def condition_for(
    column: ColumnElement,
    vr: str,
    value: str,
    *,
    case_sensitive: bool = True,
    dialect: str = "",
) -> ColumnElement | None:
    """Return the SQL condition matching ``column`` against the query ``value``.

    Parameters
    ----------
    column : ColumnElement
        The indexed column holding the attribute's text.
    vr, value, case_sensitive
        As for :func:`parse_pattern`.
    dialect : str
        SQLAlchemy dialect name of the database ("sqlite", "postgresql"...), for the
        statement forms each backend can serve from an index.

    Returns
    -------
    ColumnElement or None
        ``None`` for universal matching (no condition).

    Raises
    ------
    BadRequestError
        If the value is malformed for its VR (e.g. a date range with letters).
    """
    pattern = parse_pattern(vr, value, case_sensitive=case_sensitive)
    return sql_condition(column, pattern, dialect=dialect)


def matches(value: str | None, pattern: str, vr: str, *, case_sensitive: bool = True) -> bool:
    """Whether an attribute's text matches the query ``pattern``: :func:`condition_for` in
    Python, for attributes the index does not store.

    ``value`` is ``None`` when the attribute is absent. A multi-valued attribute (values
    joined with ``\\``) matches when one of its values does; the index, which keeps one text
    per attribute, compares that text whole.

    Raises
    ------
    BadRequestError
        If the pattern is malformed for its VR.
    """
    parsed = parse_pattern(vr, pattern, case_sensitive=case_sensitive)
    if parsed.kind == "universal":
        return True
    if value is None:
        return False
    return any(value_matches(item, parsed) for item in value.split("\\"))
