"""User metadata of resources, as Orthanc keeps it: values under indexes 1024 to 65535 (the
names Orthanc gives user metadata without a ``UserMetadata`` configuration), each with a
revision that ``If-Match`` checks.

The same table keeps the few metadata the server writes itself and a client only reads,
under their Orthanc names (``ModifiedFrom``, ``AnonymizedFrom``: where a modified or
anonymized resource comes from).
"""

from __future__ import annotations

import sqlalchemy as sa

from ..errors import BadRequestError, PacsError, UnknownResourceError
from ..schema import user_metadata as table
from . import reads

FIRST_USER, LAST_USER = 1024, 65535


class RevisionConflictError(PacsError):
    """``If-Match`` names another revision than the stored one (Orthanc: 409)."""

    http_status = 409


def is_user_name(name: str) -> bool:
    return name.isdigit() and FIRST_USER <= int(name) <= LAST_USER


#: Metadata the server writes (never a client), kept in the same table.
SERVER_NAMES = ("ModifiedFrom", "AnonymizedFrom")


def _rows(conn: sa.Connection, level: str, public_id: str):
    pk = reads.row(conn, level, public_id).pk
    return conn.execute(sa.select(table.c.name, table.c.value, table.c.revision).where(
        table.c.resource_type == level, table.c.resource_pk == pk))  # fmt: skip


def values(conn: sa.Connection, level: str, public_id: str) -> dict[str, tuple[str, int]]:
    """Name → (value, revision) of a resource's user metadata, in index order."""
    rows = [row for row in _rows(conn, level, public_id) if is_user_name(row.name)]
    return {name: (value, revision) for name, value, revision in
            sorted(rows, key=lambda row: int(row.name))}  # fmt: skip


def server_values(conn: sa.Connection, level: str, public_id: str) -> dict[str, str]:
    """Name → value of the metadata the server wrote on a resource (``SERVER_NAMES``)."""
    return {row.name: row.value for row in _rows(conn, level, public_id)
            if row.name in SERVER_NAMES}  # fmt: skip


def put_server(conn: sa.Connection, level: str, public_id: str, name: str, value: str) -> None:
    """Write one of the server's own metadata (``SERVER_NAMES``), once: a resource keeps
    the first value (where it came from)."""
    if name not in SERVER_NAMES:
        raise ValueError(f"{name!r} is not metadata the server writes")
    pk = reads.row(conn, level, public_id).pk
    if _current(conn, level, pk, name) is None:
        conn.execute(table.insert().values(resource_type=level, resource_pk=pk, name=name,
                                           value=value, revision=0))  # fmt: skip


def _current(conn: sa.Connection, level: str, pk: int, name: str):
    return conn.execute(sa.select(table.c.value, table.c.revision).where(
        table.c.resource_type == level, table.c.resource_pk == pk,
        table.c.name == name)).first()  # fmt: skip


def _check_revision(found, if_match: int | None, name: str) -> None:
    if if_match is not None and (found is None or found.revision != if_match):
        raise RevisionConflictError(f"Metadata {name} is not at revision {if_match}")


def put(conn: sa.Connection, level: str, public_id: str, name: str, value: str,
        if_match: int | None = None) -> int:  # fmt: skip
    """Store a value; return its new revision."""
    if not is_user_name(name):
        raise BadRequestError(f"Metadata {name!r} is not a user metadata index "
                              f"({FIRST_USER} to {LAST_USER})")  # fmt: skip
    pk = reads.row(conn, level, public_id).pk
    found = _current(conn, level, pk, name)
    _check_revision(found, if_match, name)
    key = (table.c.resource_type == level) & (table.c.resource_pk == pk) & (table.c.name == name)
    if found is None:
        conn.execute(table.insert().values(resource_type=level, resource_pk=pk, name=name,
                                           value=value, revision=0))  # fmt: skip
        return 0
    conn.execute(table.update().where(key).values(value=value, revision=found.revision + 1))
    return found.revision + 1


def delete(conn: sa.Connection, level: str, public_id: str, name: str,
           if_match: int | None = None) -> None:  # fmt: skip
    pk = reads.row(conn, level, public_id).pk
    found = _current(conn, level, pk, name)
    if found is None:
        raise UnknownResourceError("Metadata", f"{name} of {public_id}")
    _check_revision(found, if_match, name)
    conn.execute(
        table.delete().where(
            table.c.resource_type == level, table.c.resource_pk == pk, table.c.name == name
        )
    )


def delete_rows(conn: sa.Connection, level: str, pks: list[int]) -> None:
    """Forget the metadata of rows being deleted."""
    for chunk in reads.chunks(pks):
        conn.execute(table.delete().where(table.c.resource_type == level,
                                          table.c.resource_pk.in_(chunk)))  # fmt: skip
