"""Labels of resources (Orthanc 1.12): set, removed, listed, and used to filter finds.

A label is a non-empty string of letters, digits, ``_`` and ``-`` (Orthanc's rule), at most
64 characters.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from ..errors import BadRequestError
from ..schema import TABLES, labels
from . import reads

_VALID = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: How ``/tools/find`` combines the labels it is given (``LabelsConstraint``).
CONSTRAINTS = ("All", "Any", "None")


def check_label(label: str) -> str:
    """``label`` if valid, else a 400 naming it."""
    if not isinstance(label, str) or not _VALID.fullmatch(label):
        raise BadRequestError(f"Invalid label {label!r}: use 1 to 64 letters, digits, "
                              "'_' or '-'")  # fmt: skip
    return label


def add(conn: sa.Connection, level: str, public_id: str, label: str) -> None:
    check_label(label)
    pk = reads.row(conn, level, public_id).pk
    present = conn.execute(sa.select(labels.c.label).where(
        labels.c.resource_type == level, labels.c.resource_pk == pk,
        labels.c.label == label)).first()  # fmt: skip
    if present is None:
        conn.execute(labels.insert().values(resource_type=level, resource_pk=pk, label=label))


def remove(conn: sa.Connection, level: str, public_id: str, label: str) -> None:
    pk = reads.row(conn, level, public_id).pk
    conn.execute(labels.delete().where(labels.c.resource_type == level,
                                       labels.c.resource_pk == pk,
                                       labels.c.label == check_label(label)))  # fmt: skip


def of_resource(conn: sa.Connection, level: str, public_id: str) -> list[str]:
    pk = reads.row(conn, level, public_id).pk
    return sorted(conn.execute(sa.select(labels.c.label).where(
        labels.c.resource_type == level, labels.c.resource_pk == pk)).scalars())  # fmt: skip


def of_rows(conn: sa.Connection, level: str, pks: list[int]) -> dict[int, list[str]]:
    """Row key → sorted labels, for the rows of ``level`` that have any."""
    found: dict[int, list[str]] = {}
    for chunk in reads.chunks(pks):
        query = sa.select(labels.c.resource_pk, labels.c.label).where(
            labels.c.resource_type == level, labels.c.resource_pk.in_(chunk)
        )
        for pk, label in conn.execute(query):
            found.setdefault(pk, []).append(label)
    return {pk: sorted(names) for pk, names in found.items()}


def every_label(conn: sa.Connection) -> list[str]:
    return sorted(conn.execute(sa.select(labels.c.label).distinct()).scalars())


def delete_rows(conn: sa.Connection, level: str, pks: list[int]) -> None:
    """Forget the labels of rows being deleted."""
    for chunk in reads.chunks(pks):
        conn.execute(labels.delete().where(labels.c.resource_type == level,
                                           labels.c.resource_pk.in_(chunk)))  # fmt: skip


def matching(conn: sa.Connection, level: str, public_ids: list[str], wanted: list[str],
             constraint: str) -> list[str]:  # fmt: skip
    """Those of ``public_ids`` (order kept) whose labels satisfy ``constraint`` over
    ``wanted``: all of them, any of them, or none of them."""
    if constraint not in CONSTRAINTS:
        raise BadRequestError(f"LabelsConstraint must be one of {', '.join(CONSTRAINTS)}, "
                              f"not {constraint!r}")  # fmt: skip
    wanted_set = {check_label(label) for label in wanted}
    if not wanted_set:
        return public_ids
    table = TABLES[level]
    found: dict[str, set[str]] = {}
    for chunk in reads.chunks(public_ids):
        query = (sa.select(table.c.public_id, labels.c.label)
                 .join(labels, sa.and_(labels.c.resource_pk == table.c.pk,
                                       labels.c.resource_type == level))
                 .where(table.c.public_id.in_(chunk), labels.c.label.in_(wanted_set)))  # fmt: skip
        for public_id, label in conn.execute(query):
            found.setdefault(public_id, set()).add(label)
    keep = {
        "All": lambda have: have == wanted_set,
        "Any": lambda have: bool(have),
        "None": lambda have: not have,
    }[constraint]
    return [public_id for public_id in public_ids if keep(found.get(public_id, set()))]
