"""Alembic environment of the index: runs on the connection :func:`upgrade` hands over.

From the command line (new revisions), ``alembic -c workbench/pacs/migrations/alembic.ini``
connects to the URL given as ``-x url=...`` instead.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from workbench.pacs.migrations import declared_in_schema
from workbench.pacs.schema import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters a table by copying it; batch mode lets one revision serve both.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=declared_in_schema,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("give the database as: alembic -c ... -x url=sqlite:///index.sqlite ...")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
