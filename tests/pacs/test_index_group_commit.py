"""Group commit: instances arriving together are indexed in one transaction, each writer
answered only once its rows are committed, one writer's bad row never costs the others."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from tests.pacs.test_index_store import make_instance, template  # noqa: F401 - fixture
from workbench.pacs import Index
from workbench.pacs.database import POSTGRESQL_WRITE_LOCK
from workbench.pacs.errors import PacsError, StorageFullError
from workbench.pacs.index.commits import GroupCommit

WRITERS = 8


def _wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def test_writers_queued_behind_a_commit_go_in_the_next_group():
    lock = threading.RLock()
    groups: list[list[int]] = []

    def commit_many(items: list[int]) -> list[int | BaseException]:
        groups.append(items)
        return [ValueError(f"refused {item}") if item == 3 else item * 10 for item in items]

    group = GroupCommit(commit_many, lock)
    answers: dict[int, object] = {}

    def write(item: int) -> None:
        try:
            answers[item] = group.submit(item)
        except ValueError as exc:
            answers[item] = str(exc)

    with lock:  # a commit in progress: every writer queues behind it
        threads = [threading.Thread(target=write, args=(item,)) for item in range(WRITERS)]
        for thread in threads:
            thread.start()
        _wait_until(lambda: len(group._queue) == WRITERS)
    for thread in threads:
        thread.join(30)
    assert sorted(item for items in groups for item in items) == list(range(WRITERS))
    assert len(groups) == 1, groups  # the first to get the lock committed everyone's
    assert answers == {item: "refused 3" if item == 3 else item * 10 for item in range(WRITERS)}


def test_a_writer_alone_commits_at_once():
    groups = []
    group = GroupCommit(lambda items: groups.append(items) or items, threading.RLock())
    assert [group.submit(n) for n in range(3)] == [0, 1, 2]
    assert groups == [[0], [1], [2]]


@pytest.fixture
def index(tmp_path, database):
    idx = Index(database.config(tmp_path / "store"))
    yield idx
    idx.close()


class _WriteLockHeld:
    """Another client of the database holding its write lock, as another server's long
    write would: writers of the index queue up behind it."""

    def __init__(self, index: Index) -> None:
        self.engine = sa.create_engine(index.engine.url, poolclass=sa.pool.NullPool)
        self.sqlite = self.engine.dialect.name == "sqlite"

    def __enter__(self) -> None:
        self.conn = self.engine.connect()
        self.conn.exec_driver_sql(
            "BEGIN IMMEDIATE"
            if self.sqlite
            else f"SELECT pg_advisory_lock({POSTGRESQL_WRITE_LOCK})"
        )

    def __exit__(self, *_exc) -> None:
        if self.sqlite:
            self.conn.exec_driver_sql("ROLLBACK")
        else:
            self.conn.exec_driver_sql(f"SELECT pg_advisory_unlock({POSTGRESQL_WRITE_LOCK})")
        self.conn.close()
        self.engine.dispose()


def _ingest_together(index: Index, blobs: list[bytes]) -> tuple[list, list]:
    """Ingest ``blobs`` from one thread each while the write lock is held elsewhere, so
    that all but the first queue up; return (results, errors) once every thread is done."""
    results, errors = [], []

    def ingest(data: bytes) -> None:
        try:
            results.append(index.ingest_bytes(data))
        except PacsError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ingest, args=(blob,)) for blob in blobs]
    with _WriteLockHeld(index):
        for thread in threads:
            thread.start()
        # One writer waits for the database inside its transaction, the others queue up.
        _wait_until(lambda: len(index._writer._group._queue) == len(blobs) - 1)
        assert not results and not errors, "answered before its rows were committed"
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    return results, errors


def test_concurrent_instances_share_a_transaction(index, template):  # noqa: F811
    commits = []
    sa.event.listen(index.engine, "commit", lambda conn: commits.append(1))
    blobs = [make_instance(template, patient=f"GROUP{n % 2}") for n in range(WRITERS)]
    blobs.append(blobs[0])  # the same instance twice in one group: stored once
    results, errors = _ingest_together(index, blobs)
    assert not errors
    assert len(commits) == 2, "the queued writers were not committed together"
    assert sorted(result.status for result in results) == ["AlreadyStored"] + ["Success"] * WRITERS
    ids = {result.instance_id for result in results}
    assert set(index.list_ids("Instance")) == ids and len(ids) == WRITERS
    assert len(index.list_ids("Patient")) == 2
    new = [c for c in index.changes(limit=100)["Changes"] if c["ChangeType"] == "NewInstance"]
    assert sorted(c["ID"] for c in new) == sorted(ids)  # each logged once
    statistics = index.statistics()
    assert statistics["CountInstances"] == WRITERS
    files = [index.store.path_of(uuid) for uuid in index.store.iter_uuids()]
    assert len(files) == WRITERS  # the duplicate's copy removed
    assert int(statistics["TotalDiskSize"]) == sum(path.stat().st_size for path in files)
    logged = [(c["ChangeType"], c["ID"]) for c in index.changes(limit=100)["Changes"]]
    for patient in index.list_ids("Patient"):  # a new parent is logged after its instance
        first_instance = min(
            n
            for n, (kind, resource) in enumerate(logged)
            if kind == "NewInstance" and index.ancestor("Instance", resource, "Patient") == patient
        )
        assert logged.index(("NewPatient", patient)) > first_instance


def test_a_refused_instance_in_a_group_costs_the_others_nothing(tmp_path, database, template):  # noqa: F811
    # One patient at most, and it is protected: its instances are stored, a new patient's
    # refused. The group fails as a whole, then each instance is indexed alone.
    index = Index(database.config(tmp_path / "store", MaximumPatientCount=1))
    try:
        kept = index.ingest_bytes(make_instance(template, patient="KEPT"))
        index.set_protected(kept.patient_id, True)
        blobs = [
            make_instance(template, patient="KEPT" if n % 2 else f"NEW{n}") for n in range(WRITERS)
        ]
        results, errors = _ingest_together(index, blobs)
        assert len(results) == len(errors) == WRITERS // 2
        assert all(isinstance(error, StorageFullError) for error in errors)
        assert {result.patient_id for result in results} == {kept.patient_id}
        indexed = set(index.list_ids("Instance"))
        assert indexed == {kept.instance_id} | {result.instance_id for result in results}
        assert len(list(index.store.iter_uuids())) == len(indexed)  # refused files removed
        assert index.list_ids("Patient") == [kept.patient_id]
    finally:
        index.close()
