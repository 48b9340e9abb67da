"""Reading the index: rows, the hierarchy, counts and the change log, over one connection.

Every function takes an open connection; :class:`workbench.pacs.Index` opens it (reads run on
pooled connections of their own, which SQLite's WAL mode lets proceed during a write) and
:mod:`.views` turns what comes back into Orthanc's JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import sqlalchemy as sa

from ..errors import BadRequestError, UnknownResourceError
from ..schema import CHILD, PARENT, TABLES, changes, totals
from ..schema import instances as instances_table
from ..schema import patients as patients_table
from ..schema import series as series_table
from ..schema import studies as studies_table
from ..tags import IDENTIFIER, LEVELS, stored_tags
from .prepared import Prepared

#: Name of the running total of the stored files' sizes.
DISK_SIZE = "disk_size"
#: The last change ``DELETE /changes`` cleared: ``/changes`` shows none up to it (the rows stay
#: for hooks, and sequence numbers keep growing, as Orthanc's after clearing).
CHANGES_CLEARED_TO = "changes_cleared_to"

# Statements of the hot paths, built once (SQLAlchemy then reuses their compiled form).
_ROW_BY_ID = {
    level: sa.select(table).where(table.c.public_id == sa.bindparam("public_id"))
    for level, table in TABLES.items()
}
_PUBLIC_ID_BY_PK = {
    level: sa.select(table.c.public_id).where(table.c.pk == sa.bindparam("pk"))
    for level, table in TABLES.items()
}
_CHILD_IDS = {
    level: sa.select(TABLES[child].c.public_id)
    .where(TABLES[child].c.parent_pk == sa.bindparam("parent_pk"))
    .order_by(TABLES[child].c.pk)
    for level, child in CHILD.items()
}


#: The list of public IDs the batch reads below take (``IN``, expanded at execution).
_IDS = sa.bindparam("ids", expanding=True)


def chunks(items: list, size: int = 500) -> Iterator[list]:
    """``items`` in slices short enough for an SQL ``IN`` list."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def row(conn: sa.Connection, level: str, public_id: str) -> sa.Row:
    """The row of a resource.

    Raises
    ------
    UnknownResourceError
        If there is no such resource.
    """
    found = conn.execute(_ROW_BY_ID[level], {"public_id": public_id}).first()
    if found is None:
        raise UnknownResourceError(level, public_id)
    return found


def rows(conn: sa.Connection, level: str, public_ids: list[str]) -> dict[str, sa.Row]:
    """The rows of the resources of ``level`` that exist among ``public_ids``."""
    table = TABLES[level]
    found = {}
    for chunk in chunks(public_ids):
        for item in conn.execute(sa.select(table).where(table.c.public_id.in_(chunk))):
            found[item.public_id] = item
    return found


def exists(conn: sa.Connection, level: str, public_id: str) -> bool:
    table = TABLES[level]
    return (
        conn.execute(sa.select(table.c.pk).where(table.c.public_id == public_id)).first()
        is not None
    )


def public_id_of(conn: sa.Connection, level: str, pk: int) -> str | None:
    return conn.execute(_PUBLIC_ID_BY_PK[level], {"pk": pk}).scalar()


def parent_row(conn: sa.Connection, level: str, pk: int) -> sa.Row | None:
    """``(pk, public_id)`` of the parent of the resource of ``level`` with key ``pk``."""
    table, parent = TABLES[level], TABLES[PARENT[level]]
    return conn.execute(
        sa.select(parent.c.pk, parent.c.public_id)
        .select_from(table.join(parent, table.c.parent_pk == parent.c.pk))
        .where(table.c.pk == pk)
    ).first()


def child_ids(conn: sa.Connection, level: str, pk: int) -> list[str]:
    """Public IDs of the children of the resource with key ``pk``, in creation order."""
    return list(conn.execute(_CHILD_IDS[level], {"parent_pk": pk}).scalars())


def indexes_in_series(conn: sa.Connection, series_pk: int) -> list[int]:
    """The index in series of each instance of a series that has one."""
    query = sa.select(instances_table.c.index_in_series).where(
        instances_table.c.parent_pk == series_pk, instances_table.c.index_in_series.is_not(None)
    )
    return list(conn.execute(query).scalars())


def list_ids(
    conn: sa.Connection, level: str, *, limit: int | None = None, since: int | None = None
) -> list[str]:
    table = TABLES[level]
    query = sa.select(table.c.public_id).order_by(table.c.pk)
    if since:
        query = query.offset(since)
    if limit:
        query = query.limit(limit)
    return list(conn.execute(query).scalars())


def ancestor(conn: sa.Connection, level: str, public_id: str, target_level: str) -> str:
    """ID of the ancestor at ``target_level`` (or the resource itself)."""
    if LEVELS.index(target_level) > LEVELS.index(level):
        raise BadRequestError(f"{target_level} is not above {level}")
    current = public_id
    while level != target_level:
        current = parent_row(conn, level, row(conn, level, current).pk).public_id
        level = PARENT[level]
    return current


def _instances_joined() -> sa.Join:
    inst, ser, stu = instances_table, series_table, studies_table
    return (
        inst.join(ser, inst.c.parent_pk == ser.c.pk)
        .join(stu, ser.c.parent_pk == stu.c.pk)
        .join(patients_table, stu.c.parent_pk == patients_table.c.pk)
    )


@cache
def _instance_rows_statement(level: str, limited: bool) -> sa.Select:
    inst = instances_table
    query = (
        sa.select(inst.c.public_id, inst.c.file_uuid)
        .select_from(_instances_joined())
        .where(TABLES[level].c.public_id == sa.bindparam("public_id"))
        .order_by(series_table.c.pk, inst.c.index_in_series, inst.c.pk)
    )
    return query.limit(sa.bindparam("limit")) if limited else query


def instance_rows(
    conn: sa.Connection, level: str, public_id: str, limit: int | None = None
) -> list[sa.Row]:
    """``(public_id, file_uuid)`` of every instance under a resource (the first ``limit``),
    ordered by series then index in series.

    Raises
    ------
    UnknownResourceError
        If there is no such resource.
    """
    parameters: dict[str, object] = {"public_id": public_id}
    if limit is not None:
        parameters["limit"] = limit
    found = list(conn.execute(_instance_rows_statement(level, limit is not None), parameters))
    if not found:
        row(conn, level, public_id)  # unknown, or known without instances
    return found


@cache
def _by_uids_statement(level: str) -> Prepared:
    table = TABLES[level]
    joined, current, conditions = table, level, []
    while True:
        conditions.append(TABLES[current].c[IDENTIFIER[current]] == sa.bindparam(current))
        if current == "Study":
            break
        parent = PARENT[current]
        joined = joined.join(TABLES[parent], TABLES[current].c.parent_pk == TABLES[parent].c.pk)
        current = parent
    file_uuid = table.c.file_uuid if level == "Instance" else sa.null()
    # Run on the DBAPI cursor: every WADO-RS frame or rendered request starts here, and
    # SQLAlchemy's own work for one execution is most of this indexed lookup's cost.
    return Prepared(
        sa.select(table.c.public_id, file_uuid.label("file_uuid"))
        .select_from(joined)
        .where(*conditions)
        .order_by(table.c.pk)
        .limit(1)
    )


def by_uids(conn: sa.Connection, level: str, uids: dict[str, str]) -> tuple | None:
    """``(public_id, file_uuid)`` of the resource of ``level`` (Study, Series or Instance)
    whose UID and whose parents' UIDs are ``uids`` (level → UID, from the study down; the
    file for an instance only), the first stored if several match; ``None`` if none does.

    The UIDs are compared as they are: DICOM's single value matching of a UID, without the
    list and universal forms of :meth:`Index.find`.
    """
    found = _by_uids_statement(level).rows(conn, uids)
    return found[0] if found else None


@cache
def _representative_files_statement(level: str) -> sa.Select:
    inst, table = instances_table, TABLES[level]
    return (
        sa.select(table.c.public_id, sa.func.min(inst.c.file_uuid))
        .select_from(_instances_joined())
        .where(table.c.public_id.in_(_IDS), inst.c.file_uuid.is_not(None))
        .group_by(table.c.public_id)
    )


def representative_files(conn: sa.Connection, level: str, public_ids: list[str]) -> dict[str, str]:
    """One instance file UUID under each resource (any: for attributes every instance of it
    shares), one aggregated query per chunk."""
    found: dict[str, str] = {}
    for chunk in chunks(public_ids):
        found.update(conn.execute(_representative_files_statement(level), {"ids": chunk}).all())
    return found


def stored_files(conn: sa.Connection) -> dict[str, str]:
    """File UUID → instance ID of every instance that has a file."""
    inst = instances_table
    return dict(
        conn.execute(
            sa.select(inst.c.file_uuid, inst.c.public_id).where(inst.c.file_uuid.is_not(None))
        ).all()
    )


def total(conn: sa.Connection, name: str) -> int:
    """A running total (e.g. :data:`DISK_SIZE`), 0 before the first write."""
    return int(conn.execute(sa.select(totals.c.value).where(totals.c.name == name)).scalar() or 0)


def counts(conn: sa.Connection) -> dict[str, int]:
    """Number of resources of each level."""
    return {
        level: conn.execute(sa.select(sa.func.count()).select_from(TABLES[level])).scalar_one()
        for level in LEVELS
    }


def resource_counts(conn: sa.Connection, level: str, public_id: str) -> tuple[int, int, int, int]:
    """(instances, their total size, series, studies) under a resource.

    Raises
    ------
    UnknownResourceError
        If there is no such resource.
    """
    row(conn, level, public_id)
    inst, ser, stu = instances_table, series_table, studies_table
    return tuple(
        conn.execute(
            sa.select(
                sa.func.count(inst.c.pk),
                sa.func.coalesce(sa.func.sum(inst.c.file_size), 0),
                sa.func.count(sa.distinct(ser.c.pk)),
                sa.func.count(sa.distinct(stu.c.pk)),
            )
            .select_from(_instances_joined())
            .where(TABLES[level].c.public_id == public_id)
        ).one()
    )


#: Changes ``/changes`` shows, as Orthanc: those of resources still indexed, and no
#: ``Deleted`` (Orthanc drops a resource's changes with it and tells only its plugins of the
#: deletion; our hooks read every row, ``Deleted`` included).
_VISIBLE_CHANGE = sa.and_(
    changes.c.change_type != "Deleted",
    sa.or_(*(
        sa.and_(changes.c.resource_type == level,
                sa.exists().where(table.c.public_id == changes.c.public_id))
        for level, table in TABLES.items()
    )),
)  # fmt: skip


def change_rows(
    conn: sa.Connection, *, since: int, limit: int, last: bool, every: bool = False
) -> tuple[list[sa.Row], bool, int]:
    """Rows of the change log after ``since`` (or the last one), whether they are the last
    ones, and the last sequence number ever given (the rows of deleted resources counted).

    Only the changes ``/changes`` shows (:data:`_VISIBLE_CHANGE`) unless ``every``.
    """
    last_seq = conn.execute(sa.select(sa.func.max(changes.c.seq))).scalar() or 0
    query = sa.select(changes)
    if not every:
        query = query.where(_VISIBLE_CHANGE, changes.c.seq > total(conn, CHANGES_CLEARED_TO))
    if last:
        return list(conn.execute(query.order_by(changes.c.seq.desc()).limit(1))), True, last_seq
    query = query.where(changes.c.seq > since).order_by(changes.c.seq).limit(limit + 1)
    rows = list(conn.execute(query))
    return rows[:limit], len(rows) <= limit, last_seq


def lookup(conn: sa.Connection, value: str) -> list[tuple[str, str]]:
    """``(level, public ID)`` of the resources whose DICOM identifier equals ``value``."""
    found = []
    for level in LEVELS:
        table = TABLES[level]
        query = sa.select(table.c.public_id).where(table.c[IDENTIFIER[level]] == value)
        found += [(level, public_id) for public_id in conn.execute(query).scalars()]
    return found


def _joined_to_parents(level: str) -> sa.FromClause:
    joined, current = TABLES[level], level
    while current in PARENT:
        parent = PARENT[current]
        joined = joined.join(TABLES[parent], TABLES[current].c.parent_pk == TABLES[parent].c.pk)
        current = parent
    return joined


@cache
def _tags_with_parents_statement(level: str, with_file: bool = False) -> sa.Select:
    table = TABLES[level]
    columns = [table.c.public_id.label("public_id")]
    if with_file:
        columns.append(_first_file(level).label("file_uuid"))
    for owner in LEVELS[: LEVELS.index(level) + 1]:
        columns += [TABLES[owner].c[k].label(f"{owner}:{k}") for k in stored_tags(owner)]
    return (
        sa.select(*columns)
        .select_from(_joined_to_parents(level))
        .where(table.c.public_id.in_(_IDS))
    )


def _first_file(level: str) -> sa.ColumnElement:
    """The smallest file UUID of the instances under each row of ``level`` (a correlated
    subquery), as :func:`representative_files` finds it."""
    inst = instances_table
    if level == "Instance":
        return inst.c.file_uuid
    joined, current = inst, "Instance"
    while PARENT[current] != level:
        parent = PARENT[current]
        joined = joined.join(TABLES[parent], TABLES[current].c.parent_pk == TABLES[parent].c.pk)
        current = parent
    return (
        sa.select(sa.func.min(inst.c.file_uuid))
        .select_from(joined)
        .where(TABLES[current].c.parent_pk == TABLES[level].c.pk, inst.c.file_uuid.is_not(None))
        .scalar_subquery()
    )


def tags_with_parents(
    conn: sa.Connection, level: str, public_ids: list[str]
) -> dict[str, dict[str, str]]:
    """The stored tags of resources of ``level``, each merged with its parents' (its own
    first), in one joined SELECT per chunk. Absent tags are left out."""
    return tags_and_files(conn, level, public_ids, files=False)[0]


def tags_and_files(
    conn: sa.Connection, level: str, public_ids: list[str], *, files: bool = True
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """:func:`tags_with_parents`, and with ``files`` what :func:`representative_files`
    finds, from the same SELECT."""
    # Columns in the statement's order: the resource's own tags come last, and win.
    names = [
        keyword for owner in LEVELS[: LEVELS.index(level) + 1] for keyword in stored_tags(owner)
    ]
    merged: dict[str, dict[str, str]] = {}
    found_files: dict[str, str] = {}
    statement = _tags_with_parents_statement(level, files)
    for chunk in chunks(public_ids):
        for public_id, *values in conn.execute(statement, {"ids": chunk}):
            if files:
                file_uuid, *values = values
                if file_uuid is not None:
                    found_files[public_id] = file_uuid
            merged[public_id] = {
                keyword: value
                for keyword, value in zip(names, values, strict=True)
                if value is not None
            }
    return merged, found_files


@cache
def _descendant_counts_statement(level: str, counted: str) -> sa.Select:
    table = TABLES[level]
    joined, current = TABLES[counted], counted
    while current != level:
        parent = PARENT[current]
        joined = joined.join(TABLES[parent], TABLES[current].c.parent_pk == TABLES[parent].c.pk)
        current = parent
    return (
        sa.select(table.c.public_id, sa.func.count())
        .select_from(joined)
        .where(table.c.public_id.in_(_IDS))
        .group_by(table.c.public_id)
    )


def descendant_counts(
    conn: sa.Connection, level: str, counted: str, public_ids: list[str]
) -> dict[str, int]:
    """Number of ``counted`` descendants of each resource of ``level``, one GROUP BY per
    chunk."""
    found = dict.fromkeys(public_ids, 0)
    statement = _descendant_counts_statement(level, counted)
    for chunk in chunks(public_ids):
        found.update(conn.execute(statement, {"ids": chunk}).all())
    return found


@cache
def _study_summaries_statement() -> sa.Select:
    studies, series, instances = studies_table, series_table, TABLES["Instance"]
    return (
        sa.select(studies.c.public_id, series.c.Modality, sa.func.count(instances.c.pk))
        .select_from(
            series.join(studies, series.c.parent_pk == studies.c.pk).outerjoin(
                instances, instances.c.parent_pk == series.c.pk
            )
        )
        .where(studies.c.public_id.in_(_IDS))
        .group_by(studies.c.public_id, series.c.pk, series.c.Modality)
        .order_by(series.c.pk)
    )


def study_summaries(
    conn: sa.Connection, study_ids: list[str]
) -> dict[str, tuple[list[str], int, int]]:
    """Each study's distinct modalities (in series order), series count and instance count,
    from one query per chunk: what a study-level answer's ModalitiesInStudy and
    NumberOfStudyRelated* need."""
    found: dict[str, tuple[list[str], int, int]] = {i: ([], 0, 0) for i in study_ids}
    for chunk in chunks(study_ids):
        rows = conn.execute(_study_summaries_statement(), {"ids": chunk})
        for study_id, modality, count in rows:
            modalities, series_count, instance_count = found[study_id]
            if modality and modality not in modalities:
                modalities.append(modality)
            found[study_id] = (modalities, series_count + 1, instance_count + count)
    return found


def modalities_in_studies(conn: sa.Connection, study_ids: list[str]) -> dict[str, list[str]]:
    """The distinct modalities of each study's series, in series order."""
    studies, series = studies_table, series_table
    found: dict[str, list[str]] = {study_id: [] for study_id in study_ids}
    for chunk in chunks(study_ids):
        for study_id, modality in conn.execute(
            sa.select(studies.c.public_id, series.c.Modality)
            .select_from(series.join(studies, series.c.parent_pk == studies.c.pk))
            .where(studies.c.public_id.in_(chunk))
            .order_by(series.c.pk)
        ):
            if modality and modality not in found[study_id]:
                found[study_id].append(modality)
    return found
