"""Core statements run straight on the DBAPI cursor, for the ones each instance ingested runs.

SQLAlchemy's own work for one execution (execution context, result set-up, events: ~40 µs)
costs more than SQLite's for a one-row write, and an instance needs seven of them. Here a
statement is compiled once per dialect and set of columns and its parameters handed to the
cursor as the dialect expects them; the transaction, its write lock and the errors stay
SQLAlchemy's (a failure goes through the engine's error handling as any other statement's).

That path uses three names SQLAlchemy does not document (``SQLCompiler._bind_processors``
and ``positiontup``, ``Connection._handle_dbapi_exception``). A release without them makes
every statement run through ``Connection.execute`` instead: slower, with the same results.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

LOGGER = logging.getLogger(__name__)


def _internals_present() -> bool:
    return all(hasattr(SQLCompiler, name) for name in ("_bind_processors", "positiontup")) and (
        hasattr(sa.Connection, "_handle_dbapi_exception")
    )


#: Whether statements run on the DBAPI cursor (else through ``Connection.execute``).
ON_CURSOR = _internals_present()
if not ON_CURSOR:
    LOGGER.warning(
        "SQLAlchemy %s lacks names the index's fast statements use: they run through "
        "SQLAlchemy instead (slower ingest, same results)",
        sa.__version__,
    )


class Prepared:
    """A Core statement compiled once per dialect (and per set of inserted columns).

    Parameters
    ----------
    statement : sqlalchemy.sql.Executable
        A statement with bound parameters (``sa.bindparam``), or an ``INSERT`` whose
        columns are those of the rows given.
    """

    def __init__(self, statement: sa.sql.Executable) -> None:
        self._statement = statement
        self._compiled: dict[tuple[str, str, tuple[str, ...]], SQLCompiler] = {}

    def _for(self, conn: sa.Connection, keys: tuple[str, ...]) -> SQLCompiler:
        key = (conn.dialect.name, conn.dialect.driver, keys)  # drivers differ in paramstyle
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._statement.compile(dialect=conn.dialect, column_keys=list(keys))
            self._compiled[key] = compiled  # type: ignore[assignment]
        return compiled  # type: ignore[return-value]

    def _arguments(self, compiled: SQLCompiler, params: Mapping[str, Any]) -> Any:
        values = compiled.construct_params(dict(params))
        for name, process in compiled._bind_processors.items():
            if name in values:
                values[name] = process(values[name])
        if compiled.positional:
            return tuple(values[name] for name in compiled.positiontup or ())
        return values

    def execute(self, conn: sa.Connection, params: Mapping[str, Any]) -> Any:
        """Run with one set of parameters; return a cursor (``fetchone``, ``fetchall``,
        ``rowcount``, ``close``)."""
        if not ON_CURSOR:
            return conn.execute(self._statement, dict(params))
        compiled = self._for(conn, tuple(params))
        return self._run(conn, compiled, "execute", self._arguments(compiled, params))

    def rows(self, conn: sa.Connection, params: Mapping[str, Any]) -> list[tuple]:
        """Run with one set of parameters and return every row, the cursor closed (read to
        its end: no read left open on SQLite)."""
        cursor = self.execute(conn, params)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    def execute_many(self, conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per row (rows with the same keys)."""
        if not ON_CURSOR:
            conn.execute(self._statement, [dict(row) for row in rows])
            return
        compiled = self._for(conn, tuple(rows[0]))
        self._run(conn, compiled, "executemany", [self._arguments(compiled, row) for row in rows])

    @staticmethod
    def _run(conn: sa.Connection, compiled: SQLCompiler, method: str, arguments: Any) -> Any:
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        try:
            getattr(cursor, method)(compiled.string, arguments)
        except conn.dialect.loaded_dbapi.Error as exc:
            # Wrapped, events fired (a PostgreSQL out of reach becomes unavailable), the
            # connection invalidated if it died: as for a statement run by SQLAlchemy.
            conn._handle_dbapi_exception(exc, compiled.string, arguments, cursor, None)
        return cursor
