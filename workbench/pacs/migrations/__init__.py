"""Schema migrations of the index (Alembic): the index brings every database it opens, new or
old, SQLite or PostgreSQL, to the newest revision before using it.

:mod:`workbench.pacs.schema` describes the tables as the code uses them; ``versions/`` holds
the steps that make a database look like that. To add a column or a table, change the
schema, then add a revision on top of the newest one, e.g. from the repository root::

    alembic -c workbench/pacs/migrations/alembic.ini -x url=sqlite:////tmp/index.sqlite \\
        revision --autogenerate --rev-id 0004 -m "add labels"

(the URL names a database already at the newest revision, such as one an ``Index`` made) and
check the generated code; ``tests/pacs/test_migrations.py`` checks that the migrated schema is
the declared one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from ..database import WRITE_OPTION
from ..errors import PacsError

log = logging.getLogger(__name__)

#: The revision equal to the schema ``metadata.create_all`` made before migrations existed.
BASELINE = "0001"


#: Suffixes of the indexes one database kind has and :mod:`workbench.pacs.schema` does not
#: declare (SQLite's NOCASE ones, PostgreSQL's on lowered text and for patterns).
DIALECT_INDEX_SUFFIXES = ("_nocase", "_lower", "_pattern")


def declared_in_schema(item, name, kind, reflected, compare_to) -> bool:
    """Whether autogenerate compares this object with :mod:`workbench.pacs.schema` (Alembic's
    ``include_object``): the indexes of one database kind exist only in their revisions
    (0002, 0003), so it leaves them alone."""
    return not (kind == "index" and name and name.endswith(DIALECT_INDEX_SUFFIXES))


def alembic_config(connection: sa.Connection | None = None) -> AlembicConfig:
    """The Alembic configuration of the index, without an ``alembic.ini``.

    Parameters
    ----------
    connection : sqlalchemy.Connection, optional
        The connection the migration environment (``env.py``) runs on.
    """
    config = AlembicConfig()
    config.set_main_option("script_location", str(Path(__file__).parent))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: sa.Connection) -> str | None:
    """The revision a database is at (``None``: no ``alembic_version`` table)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: sa.Engine) -> str:
    """Bring the database of ``engine`` to the newest revision and return it.

    A new database gets every revision. A database made before migrations existed (the
    index's tables without ``alembic_version``) is recognised, stamped at :data:`BASELINE`
    and upgraded from there, keeping its rows. All of it runs in one transaction holding the
    database's write lock, so processes opening the same database at once do it in turn.

    Raises
    ------
    PacsError
        The database is at a revision this code does not know (made by a newer workbench).
    """
    head = head_revision()
    with engine.connect() as conn:
        if current_revision(conn) == head:  # the usual case: no write lock needed
            return head
    with engine.connect() as conn:
        # The index's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock) makes
        # processes opening one database at once migrate it one after the other.
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            config = alembic_config(conn)
            if current_revision(conn) is None and sa.inspect(conn).has_table("instances"):
                log.info(
                    "Index database %s predates migrations; stamping it at revision %s",
                    engine.url.render_as_string(hide_password=True),
                    BASELINE,
                )
                command.stamp(config, BASELINE)
            try:
                command.upgrade(config, "head")
            except CommandError as exc:
                raise PacsError(
                    f"Cannot migrate the index database "
                    f"{engine.url.render_as_string(hide_password=True)}: {exc}; it may have "
                    f"been made by a newer workbench (this one knows up to {head})"
                ) from exc
            return current_revision(conn)
