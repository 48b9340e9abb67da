"""User attachments of resources, as Orthanc keeps them: files under content types 1024 to
65535, each with its size, MD5, UUID and a revision that ``If-Match`` checks."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from ..errors import UnknownResourceError
from ..schema import attachments as table
from . import reads
from .metadata import RevisionConflictError

FIRST_USER, LAST_USER = 1024, 65535


@dataclass(frozen=True)
class Attachment:
    """One user attachment (without its bytes, unless read with them)."""

    content_type: int
    uuid: str
    size: int
    md5: str
    revision: int
    data: bytes | None = None


_DESCRIBED = (table.c.content_type, table.c.uuid, table.c.size, table.c.md5, table.c.revision)


def _key(level: str, pk: int, content_type: int):
    return sa.and_(table.c.resource_type == level, table.c.resource_pk == pk,
                   table.c.content_type == content_type)  # fmt: skip


def listing(conn: sa.Connection, level: str, public_id: str) -> list[Attachment]:
    """A resource's user attachments, by content type."""
    pk = reads.row(conn, level, public_id).pk
    rows = conn.execute(sa.select(*_DESCRIBED).where(
        table.c.resource_type == level, table.c.resource_pk == pk).order_by(
        table.c.content_type))  # fmt: skip
    return [Attachment(*row) for row in rows]


def one(conn: sa.Connection, level: str, public_id: str, content_type: int,
        with_data: bool = False) -> Attachment:  # fmt: skip
    """One attachment (its bytes too with ``with_data``), or a 404."""
    pk = reads.row(conn, level, public_id).pk
    columns = (*_DESCRIBED, table.c.data) if with_data else _DESCRIBED
    row = conn.execute(sa.select(*columns).where(_key(level, pk, content_type))).first()
    if row is None:
        raise UnknownResourceError("Attachment", f"{content_type} of {public_id}")
    return Attachment(*row)


def put(conn: sa.Connection, level: str, public_id: str, content_type: int, data: bytes,
        if_match: int | None = None) -> Attachment:  # fmt: skip
    """Store (or replace) an attachment; ``if_match`` must be the stored revision when
    given. Returns what was stored."""
    pk = reads.row(conn, level, public_id).pk
    found = conn.execute(sa.select(table.c.revision).where(
        _key(level, pk, content_type))).scalar()  # fmt: skip
    if if_match is not None and found is not None and found != if_match:
        raise RevisionConflictError(f"Attachment {content_type} is not at revision {if_match}")
    values = {"uuid": str(uuid.uuid4()), "data": data, "size": len(data),
              "md5": hashlib.md5(data).hexdigest()}  # fmt: skip
    if found is None:
        values["revision"] = 0
        conn.execute(table.insert().values(resource_type=level, resource_pk=pk,
                                           content_type=content_type, **values))  # fmt: skip
    else:
        values["revision"] = found + 1
        conn.execute(table.update().where(_key(level, pk, content_type)).values(**values))
    return Attachment(content_type, values["uuid"], values["size"], values["md5"],
                      values["revision"])  # fmt: skip


def delete(conn: sa.Connection, level: str, public_id: str, content_type: int,
           if_match: int | None = None) -> None:  # fmt: skip
    found = one(conn, level, public_id, content_type)
    if if_match is not None and found.revision != if_match:
        raise RevisionConflictError(f"Attachment {content_type} is not at revision {if_match}")
    pk = reads.row(conn, level, public_id).pk
    conn.execute(table.delete().where(_key(level, pk, content_type)))


def delete_rows(conn: sa.Connection, level: str, pks: list[int]) -> None:
    """Forget the attachments of rows being deleted."""
    for chunk in reads.chunks(pks):
        conn.execute(table.delete().where(table.c.resource_type == level,
                                          table.c.resource_pk.in_(chunk)))  # fmt: skip
