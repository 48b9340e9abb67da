"""The SQL engine of the index: SQLite tuned for one writer and many readers, PostgreSQL
shared by several servers, or any URL."""

from __future__ import annotations

import os
import sqlite3

import sqlalchemy as sa

from .errors import DatabaseUnavailableError
from .matching import UNICODE_LOWER, fold_case

#: Execution option marking a connection that writes (SQLite: BEGIN IMMEDIATE; PostgreSQL:
#: the index's write lock, below).
WRITE_OPTION = "workbench_write"

#: PostgreSQL advisory lock taken by every write transaction of every process using the
#: database, as SQLite's BEGIN IMMEDIATE does: two servers on one database never both find a
#: patient missing and both create it, and changes are numbered in the order they commit.
POSTGRESQL_WRITE_LOCK = 0x776F726B62656E64  # "workbend"


class _WriterConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions also hold an exclusive ``flock`` on a
    lock file beside the database. Writers of several processes (a server's DICOM workers)
    then wait in the kernel and are woken as soon as the lock is free, instead of polling
    SQLite's lock with ever longer sleeps (1, 2, 5, ... 100 ms), which leaves the lock idle
    and lets one process starve the others."""

    lock_path: str | None = None
    _lock_fd: int | None = None
    _locked = False

    def lock_for_writing(self) -> None:
        if self.lock_path is None or _fcntl is None:
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        _fcntl.flock(self._lock_fd, _fcntl.LOCK_EX)
        self._locked = True

    def _unlock(self) -> None:
        if self._locked and self._lock_fd is not None and _fcntl is not None:
            _fcntl.flock(self._lock_fd, _fcntl.LOCK_UN)
        self._locked = False

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._unlock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._unlock()

    def close(self) -> None:
        self._unlock()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        super().close()


try:
    import fcntl as _fcntl
except ImportError:  # Windows: SQLite's own lock alone
    _fcntl = None  # type: ignore[assignment]


def _lower(value: object) -> object:
    return fold_case(value) if isinstance(value, str) else value


def create_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and immediate write locks,
    PostgreSQL a write lock shared by every process and errors of a database out of reach
    raised as :class:`~workbench.pacs.errors.DatabaseUnavailableError`."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            connect_args={"timeout": 60, "check_same_thread": False, "factory": _WriterConnection},
            pool_size=16,
            max_overflow=16,
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # WAL lets readers run during a write. NORMAL skips the WAL fsync at each commit:
            # a power loss may roll back the last commits, but their files were fsynced
            # (file and directory) before the commit, and reconcile() re-indexes files
            # without rows on start, so no acknowledged instance is lost. The busy timeout
            # makes writers of other processes wait instead of failing "database is locked".
            dbapi_connection.isolation_level = None
            database = engine.url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                dbapi_connection.lock_path = f"{database}.writers.lock"
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
            if immediate:
                conn.connection.dbapi_connection.lock_for_writing()
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if url.startswith("postgresql"):
        return _postgresql_engine(url)
    return sa.create_engine(url, pool_pre_ping=True)


def _postgresql_engine(url: str) -> sa.Engine:
    # Commits stay synchronous here, unlike SQLite's: PostgreSQL can crash on its own while
    # our servers keep running, and reconcile (which re-indexes files whose rows a crash
    # lost) only runs when a server starts. Grouped commits make each sync count instead.
    # A server restarted under us: the pool tests each connection before handing it out
    # (pre-ping) and drops the dead ones; a server that does not answer fails in seconds.
    engine = sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=16,
        max_overflow=16,
        connect_args={"connect_timeout": 10},
    )

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        if conn.get_execution_options().get(WRITE_OPTION, False):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({POSTGRESQL_WRITE_LOCK})")

    @sa.event.listens_for(engine, "handle_error")
    def _unavailable(context: sa.engine.ExceptionContext):
        # Cannot connect, or the connection died: the database is away, not the request
        # wrong. Callers report it as such (REST 503, DIMSE 0xA700), so what was being
        # written is not acknowledged; a commit whose answer was lost is set right by
        # reconcile (a row whose file is gone).
        error = context.original_exception
        if context.is_disconnect or isinstance(
            context.sqlalchemy_exception, (sa.exc.OperationalError, sa.exc.InterfaceError)
        ):
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
            return DatabaseUnavailableError(f"The index database is unavailable: {reason}")
        return None

    return engine
