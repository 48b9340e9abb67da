"""DICOM attribute matching (PS3.4 C.2.2.2) as SQL conditions over indexed tag columns.

One function per matching type of the standard: universal, single value, list of UID,
wildcard and range. :func:`condition_for` picks the right one from the query value and the
attribute's VR. Shared by ``/tools/find`` and the C-FIND service so both answer alike.

Patterns come from remote clients: they only ever become bound parameters, never SQL text.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from .errors import BadRequestError

#: VRs matched case-insensitively by default (PS3.4 C.2.2.2.1: PN is matched without case by
#: most archives; Orthanc's ``CaseSensitivePN`` is false by default).
CASE_INSENSITIVE_VRS = frozenset({"PN"})
RANGE_VRS = frozenset({"DA", "TM", "DT"})
#: VRs whose values have no letter case: always compared exactly, so their index is used.
CASELESS_VRS = frozenset({"UI", "DA", "TM", "DT", "IS", "DS", "US", "UL", "SS", "SL", "FL",
                          "FD"})
_WILDCARD_FORBIDDEN_VRS = frozenset({"DA", "TM", "DT", "UI"})
#: Name of the SQL function lowering case in every script, which :mod:`.database` gives each
#: SQLite connection: SQLite's own LOWER() and NOCASE fold ASCII letters only.
UNICODE_LOWER = "workbench_lower"


def fold_case(text: str) -> str:
    """The form in which case-insensitive values are compared, in SQL and in Python alike.

    ``str.lower`` rather than ``casefold``: a query ``STRASSE`` should not find ``Straße``
    in one place and miss it in another.
    """
    return text.lower()


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
    # DICOM's * and ? mean what GLOB's do; GLOB's own [ must be made literal.
    return pattern.replace("[", "[[]")


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
    lowered text.
    """
    if case_sensitive:
        return column == value
    if dialect == "sqlite":
        if value.isascii():
            return column.collate("NOCASE") == value
        return getattr(sa.func, UNICODE_LOWER)(column) == fold_case(value)
    return sa.func.lower(column) == fold_case(value)


def uid_list_match(column: ColumnElement, uids: list[str]) -> ColumnElement:
    """List of UID matching (C.2.2.2.2): the stored UID is one of ``uids``."""
    return column.in_([uid.strip() for uid in uids if uid.strip()])


def wildcard_match(
    column: ColumnElement, pattern: str, *, case_sensitive: bool = True, dialect: str = ""
) -> ColumnElement:
    """Wildcard matching (C.2.2.2.4): ``*`` is any run of characters, ``?`` any one character.

    SQLite's ``LIKE`` ignores ASCII case (and uses a NOCASE index for a literal prefix), so
    case-sensitive matching there is ``GLOB`` (which uses the ordinary index), and a pattern
    with other letters is matched on text lowered by :data:`UNICODE_LOWER`. Other backends
    use ``LIKE`` on the text or on the lowered text.
    """
    if dialect == "sqlite":
        if case_sensitive:
            return column.op("GLOB", is_comparison=True)(_glob_pattern(pattern))
        if pattern.isascii():
            return column.like(_like_pattern(pattern), escape="\\")
        lowered = getattr(sa.func, UNICODE_LOWER)(column)
        return lowered.like(_like_pattern(fold_case(pattern)), escape="\\")
    if case_sensitive:
        return column.like(_like_pattern(pattern), escape="\\")
    return sa.func.lower(column).like(_like_pattern(fold_case(pattern)), escape="\\")


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
    if not conditions:
        raise BadRequestError("A range needs at least one bound, e.g. 20200101-20201231")
    return sa.and_(*conditions)


def _validate_range_bound(bound: str, vr: str, original: str) -> None:
    allowed = set("0123456789.") | ({"+", "-"} if vr == "DT" else set())
    if bound and not set(bound) <= allowed:
        raise BadRequestError(f"Invalid {vr} range bound {bound!r} in {original!r}")


def condition_for(
    column: ColumnElement, vr: str, value: str, *, case_sensitive: bool = True,
    dialect: str = "",
) -> ColumnElement | None:
    """Return the SQL condition matching ``column`` against the query ``value``.

    Parameters
    ----------
    column : ColumnElement
        The indexed column holding the attribute's text.
    vr : str
        The attribute's value representation; decides range and case handling.
    value : str
        The query value as sent by the client (a C-FIND identifier value or ``/tools/find``
        query value).
    case_sensitive : bool
        Case sensitivity for non-PN attributes (PN is always case-insensitive).
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
    value = value.strip(" \x00") if vr not in ("PN",) else value.rstrip(" \x00")
    if value == "":
        return universal_match(column)
    # "*" stays a wildcard: like Orthanc, it matches any value but not an absent attribute.
    sensitive = (case_sensitive and vr not in CASE_INSENSITIVE_VRS) or vr in CASELESS_VRS
    if "\\" in value:
        items = [item for item in value.split("\\")]
        if vr == "UI":
            return uid_list_match(column, items)
        conditions = [
            condition_for(column, vr, item, case_sensitive=case_sensitive, dialect=dialect)
            for item in items
        ]
        if any(c is None for c in conditions):
            return None
        return sa.or_(*conditions)
    if vr in RANGE_VRS and "-" in value and not (vr == "DT" and value.count("-") != 1):
        low, _, high = value.partition("-")
        low, high = low.strip(), high.strip()
        _validate_range_bound(low, vr, value)
        _validate_range_bound(high, vr, value)
        return range_match(column, low, high, vr)
    if ("*" in value or "?" in value) and vr not in _WILDCARD_FORBIDDEN_VRS:
        return wildcard_match(column, value, case_sensitive=sensitive, dialect=dialect)
    if vr in RANGE_VRS:
        _validate_range_bound(value, vr, value)
    return single_value_match(column, value, case_sensitive=sensitive, dialect=dialect)
