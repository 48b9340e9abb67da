"""DICOM modalities kept in the index's database (``DicomModalitiesInDatabase``).

As Orthanc with that option: the declarations of the configuration file are set aside and
those made over REST (``PUT``/``DELETE /modalities/{name}``) are kept here, so they outlive a
restart. One row per modality, so two servers on one database changing different modalities
do not undo each other's change; a server reads them when its index opens and then follows
them (:mod:`workbench.pacs.node.shared_modalities`).
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from ..schema import modalities as table


def declared(conn: sa.Connection) -> dict[str, Any]:
    """Every modality stored, by name: its declaration as given (list or object form)."""
    rows = conn.execute(sa.select(table.c.name, table.c.definition).order_by(table.c.name))
    return {name: json.loads(definition) for name, definition in rows}


def save(conn: sa.Connection, name: str, definition: Any) -> None:
    """Declare ``name`` (or replace its declaration)."""
    conn.execute(table.delete().where(table.c.name == name))
    conn.execute(table.insert().values(name=name, definition=json.dumps(definition)))


def forget(conn: sa.Connection, name: str) -> None:
    """Remove ``name`` (nothing happens if it is not stored)."""
    conn.execute(table.delete().where(table.c.name == name))
