"""The SQL engine of the index: SQLite tuned for one writer and many readers, or any URL."""

from __future__ import annotations

import sqlalchemy as sa

from .matching import UNICODE_LOWER, fold_case

#: Execution option marking a connection that writes (SQLite: BEGIN IMMEDIATE).
WRITE_OPTION = "workbench_write"


def _lower(value: object) -> object:
    return fold_case(value) if isinstance(value, str) else value


def create_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and immediate write locks."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"timeout": 60, "check_same_thread": False},
            pool_size=16, max_overflow=16,
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # WAL lets readers run during a write. NORMAL skips the WAL fsync at each commit:
            # a power loss may roll back the last commits, but their files were fsynced
            # (file and directory) before the commit, and reconcile() re-indexes files
            # without rows on start, so no acknowledged instance is lost. The busy timeout
            # makes writers of other processes wait instead of failing "database is locked".
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()
            dbapi_connection.create_function(UNICODE_LOWER, 1, _lower, deterministic=True)

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):
            # Writers take SQLite's write lock at BEGIN: a deferred transaction that upgrades
            # to a writer fails with SQLITE_BUSY at once instead of waiting for the timeout.
            immediate = conn.get_execution_options().get(WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)
