"""Searching the index: a DICOM query (PS3.4 C.2.2.2) as one SQL SELECT of public IDs.

``/tools/find`` and C-FIND both come here through :meth:`workbench.pacs.Index.find`; the
matching rules themselves live in :mod:`workbench.pacs.matching`.
"""

from __future__ import annotations

from functools import cache, lru_cache

import sqlalchemy as sa

from ..errors import BadRequestError
from ..matching import condition_for
from ..schema import PARENT, TABLES
from ..tags import LEVELS, keyword_of, normalize_level, stored_tags, vr_of


@cache
def searchable_keywords(level: str) -> frozenset[str]:
    """Keywords a query at ``level`` can match in SQL: the tags stored at that level and the
    levels above it, plus ``ModalitiesInStudy`` at the study level."""
    keywords = {k for owner in LEVELS[: LEVELS.index(level) + 1] for k in stored_tags(owner)}
    if level == "Study":
        keywords.add("ModalitiesInStudy")  # matched through the series table
    return frozenset(keywords)


def _owner_level(level: str, keyword: str) -> str | None:
    """The level at or above ``level`` whose table stores ``keyword``."""
    for candidate in reversed(LEVELS[: LEVELS.index(level) + 1]):
        if keyword in stored_tags(candidate):
            return candidate
    return None


def find_statement(
    level: str,
    query: dict[str, str],
    *,
    case_sensitive: bool = True,
    limit: int | None = None,
    since: int | None = None,
    dialect: str = "",
) -> sa.Select:
    """The SELECT of the public IDs of the resources of ``level`` matching ``query``.

    See :meth:`workbench.pacs.Index.find` for the arguments; ``dialect`` is the database's,
    for the condition forms its indexes can serve.

    Statements are kept (the last :data:`KEPT_STATEMENTS` asked for): building one through
    SQLAlchemy costs more than SQLite takes to run it, and the same searches come again
    (a viewer's study list, the series of the study it opens). A statement holds no result.

    Raises
    ------
    BadRequestError
        For an unknown level or tag, a tag below ``level``, or a malformed pattern.
    """
    if not all(isinstance(pattern, str) for pattern in query.values()):
        bad = next(name for name, pattern in query.items() if not isinstance(pattern, str))
        raise BadRequestError(f"Query value of {bad!r} must be a string")
    return _kept_statement(level, tuple(query.items()), case_sensitive, limit, since, dialect)


#: How many built statements :func:`find_statement` keeps.
KEPT_STATEMENTS = 512


@lru_cache(maxsize=KEPT_STATEMENTS)
def _kept_statement(
    level: str,
    query: tuple[tuple[str, str], ...],
    case_sensitive: bool,
    limit: int | None,
    since: int | None,
    dialect: str,
) -> sa.Select:
    return _build_statement(
        level,
        dict(query),
        case_sensitive=case_sensitive,
        limit=limit,
        since=since,
        dialect=dialect,
    )


def _build_statement(
    level: str,
    query: dict[str, str],
    *,
    case_sensitive: bool,
    limit: int | None,
    since: int | None,
    dialect: str,
) -> sa.Select:
    try:
        level = normalize_level(level)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from exc
    table = TABLES[level]
    levels_used = {level}
    conditions = []
    for name, pattern in query.items():
        if not isinstance(pattern, str):
            raise BadRequestError(f"Query value of {name!r} must be a string")
        try:
            keyword = keyword_of(name)
        except ValueError as exc:
            raise BadRequestError(str(exc)) from exc
        if keyword == "ModalitiesInStudy" and level == "Study":
            series = TABLES["Series"]
            condition = condition_for(
                series.c.Modality, "CS", pattern, case_sensitive=case_sensitive, dialect=dialect
            )
            if condition is not None:
                conditions.append(
                    sa.exists().where(series.c.parent_pk == table.c.pk).where(condition)
                )
            continue
        owner = _owner_level(level, keyword)
        if owner is None:
            raise BadRequestError(
                f"{keyword} cannot be searched at the {level} level; searchable tags are "
                f"the main DICOM tags of the {level} level and the levels above it"
            )
        condition = condition_for(
            TABLES[owner].c[keyword],
            vr_of(keyword),
            pattern,
            case_sensitive=case_sensitive,
            dialect=dialect,
        )
        if condition is not None:
            conditions.append(condition)
            levels_used.add(owner)
    joined = table
    current = level
    highest = min(LEVELS.index(lvl) for lvl in levels_used)
    while LEVELS.index(current) > highest:
        parent = PARENT[current]
        joined = joined.join(TABLES[parent], TABLES[current].c.parent_pk == TABLES[parent].c.pk)
        current = parent
    statement = sa.select(table.c.public_id).select_from(joined).where(*conditions)
    if limit or since:
        # Paging needs a stable order. Without paging, no ORDER BY: it would tempt SQLite
        # to walk the primary key instead of the index of a range condition.
        statement = statement.order_by(table.c.pk)
    if since:
        statement = statement.offset(since)
    if limit:
        statement = statement.limit(limit)
    return statement
