"""Writing the index: instances in, resources out, protection, totals and the change log.

One writer at a time inside a process (a lock), one short transaction per instance; writers
of other processes wait for the database's write lock (:mod:`..database`). A file is always
durable in the store before its row is committed, and removed from the store only after the
rows that named it are gone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from .. import recycle
from ..config import Config
from ..database import WRITE_OPTION
from ..errors import BadRequestError, PacsError, UnknownResourceError
from ..ids import resource_ids
from ..parsing import ParsedInstance, index_in_series, parse_instance
from ..results import IngestResult
from ..schema import CHILD, PARENT, TABLES, changes, patients, totals
from ..schema import instances as instances_table
from ..schema import series as series_table
from ..schema import studies as studies_table
from ..stability import Resource
from ..store import FileStore, LinkedFile, PendingFile
from ..tags import IDENTIFIER, LEVELS, stored_tags
from . import attachments, labels, metadata, reads, views
from .commits import GroupCommit
from .prepared import Prepared

log = logging.getLogger(__name__)

_TOUCH = {
    level: Prepared(table.update().where(table.c.pk == sa.bindparam("b_pk")))
    for level, table in TABLES.items()
}
_TOUCHED_AT = {
    level: sa.select(table.c.last_update_ts).where(table.c.public_id == sa.bindparam("public_id"))
    for level, table in TABLES.items()
}
# What ingesting an instance needs to know before writing, in one statement rather than five:
# whether the instance and its parents exist (their keys), and the next recycling order.
_LOOKUP = Prepared(
    sa.select(
        *(
            sa.select(table.c.pk).where(table.c.public_id == sa.bindparam(name)).scalar_subquery()
            for name, table in (
                ("instance", instances_table),
                ("patient", patients),
                ("study", studies_table),
                ("series", series_table),
            )
        ),
        sa.select(sa.func.max(patients.c.recycling_order)).scalar_subquery(),
    )
)
_ADD_TOTAL = Prepared(
    totals.update()
    .where(totals.c.name == sa.bindparam("b_name"))
    .values(value=totals.c.value + sa.bindparam("delta"))
)
_HIGHEST_ORDER = Prepared(sa.select(sa.func.max(patients.c.recycling_order)))
_LOG_CHANGE = Prepared(changes.insert())
_INSERT_INSTANCE = Prepared(instances_table.insert())


@dataclass(frozen=True)
class _Row:
    """One instance to index: its header, its durable file and where it came from."""

    parsed: ParsedInstance
    file_uuid: str
    size: int
    remote_aet: str | None
    origin: str
    #: The file still being made durable, if it is (its rows wait for it to commit).
    pending: PendingFile | LinkedFile | None = None

    def wait(self) -> None:
        """Return once the file is durable; raise what kept it out of the store."""
        if self.pending is not None:
            self.pending.wait()

    def settle(self) -> None:
        """Wait for the work on the file to end, whatever its outcome."""
        if self.pending is not None:
            self.pending.settle()

    def values(self) -> tuple[ParsedInstance, str, int, str | None, str]:
        return self.parsed, self.file_uuid, self.size, self.remote_aet, self.origin


class _Deferred:
    """Writes of one ingest transaction that only its end needs, made once for all its
    instances: the parents' timestamps (and the patients' recycling order), the disk size
    total and the change log. Alone, an instance costs the same statements as before; in a
    group or a batch, these are a few statements for all of them rather than five each.
    """

    def __init__(self) -> None:
        self.touches: dict[str, dict[int, dict[str, Any]]] = {level: {} for level in TABLES}
        self.disk_size = 0
        self.changes: list[dict[str, str]] = []
        #: The highest recycling order given in this transaction (not yet written).
        self.order = 0

    def touch(self, level: str, pk: int, values: dict[str, Any]) -> None:
        self.touches[level][pk] = {"b_pk": pk, **values}  # the latest values win

    def log(self, items: Iterable[tuple[str, str, str]], date: str) -> None:
        self.changes += [
            {"change_type": kind, "resource_type": level, "public_id": public_id, "date": date}
            for kind, level, public_id in items
        ]

    def flush(self, conn: sa.Connection) -> None:
        """Write what was deferred (in the transaction of ``conn``)."""
        for level, rows in self.touches.items():
            if rows:
                _TOUCH[level].execute_many(conn, list(rows.values()))
                rows.clear()
        if self.disk_size:
            Writer._add_total(conn, reads.DISK_SIZE, self.disk_size)
            self.disk_size = 0
        if self.changes:
            _LOG_CHANGE.execute_many(conn, self.changes)
            self.changes = []


def _now() -> tuple[str, float]:
    """(Orthanc's "YYYYMMDDTHHMMSS" in UTC, seconds since the epoch) of this moment."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S"), now.timestamp()


class Writer:
    """Every change to the index's rows, and the store files they free.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The index database.
    store : FileStore
        Where the files are; files whose rows are deleted are removed from it.
    config : Config
        ``OverwriteInstances`` and the recycling limits.
    on_new_instance : callable
        Called with the ``(level, public ID)`` of the series, study and patient of each new
        instance, once it is committed (the stability monitor).
    """

    def __init__(
        self,
        engine: sa.Engine,
        store: FileStore,
        config: Config,
        on_new_instance: Callable[[tuple[Resource, ...]], None],
    ) -> None:
        self.engine = engine
        self.store = store
        self.config = config
        self._on_new_instance = on_new_instance
        self._lock = threading.RLock()
        self._group = GroupCommit(self._index_rows, self._lock)
        # The last_update_ts this process wrote on each series, study and patient that is
        # waiting to be announced stable (see announce_stable).
        self._written_at: dict[Resource, float] = {}

    @contextmanager
    def writing(self) -> Iterator[sa.Connection]:
        """One short write transaction at a time (committed on exit, rolled back on error)."""
        with self._lock, self.engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    # -- instances in ---------------------------------------------------------------------
    def store_instance(
        self,
        parsed: ParsedInstance,
        commit: Callable[[], tuple[str, int]],
        remote_aet: str | None,
        origin: str,
    ) -> IngestResult:
        """Make the file durable with ``commit``, then index it (the file first, always).

        The rows are committed with those of other instances arriving at the same time
        (:class:`.commits.GroupCommit`); the result is returned once they are committed.
        """
        # Duplicates are rare: they are detected inside the transaction, and the copy that
        # was stored for nothing is removed afterwards.
        file_uuid, size = commit()
        status, obsolete = self._group.submit(_Row(parsed, file_uuid, size, remote_aet, origin))
        return self._committed(parsed, file_uuid, status, obsolete)

    def store_pending(
        self,
        parsed: ParsedInstance,
        pending: PendingFile | LinkedFile,
        remote_aet: str | None,
        origin: str,
    ) -> IngestResult:
        """Index a file still being made durable (:meth:`.FileStore.link_received`).

        Its rows are written meanwhile and committed once the file is durable (the disk
        writing a large file while they are prepared); the file first, still.
        """
        row = _Row(parsed, pending.file_uuid, pending.size, remote_aet, origin, pending)
        status, obsolete = self._group.submit(row)
        return self._committed(parsed, pending.file_uuid, status, obsolete)

    def store_batch(
        self,
        items: list[tuple[ParsedInstance, str, int]],
        remote_aet: str | None,
        origin: str,
        durable: Future | None = None,
    ) -> list[IngestResult | PacsError]:
        """Index files of the store (``(parsed, uuid, size)`` each) in one transaction; an
        outcome per item, in order.

        The files are durable already, or made so by ``durable``
        (:meth:`.FileStore.start_commit_files`): the rows are then inserted meanwhile and
        committed once it is done, or refused with its error. Should one item fail, the
        batch is indexed again item by item so the others are kept; the failed item's file
        is removed and its error returned in its place.
        """
        rows = [_Row(parsed, file_uuid, size, remote_aet, origin,
                     None if durable is None else PendingFile(file_uuid, size, durable))
                for parsed, file_uuid, size in items]  # fmt: skip
        results: list[IngestResult | PacsError] = []
        for row, outcome in zip(rows, self._index_rows(rows), strict=True):
            if isinstance(outcome, BaseException):
                error = outcome if isinstance(outcome, PacsError) else PacsError(str(outcome))
                results.append(error)
            else:
                results.append(self._committed(row.parsed, row.file_uuid, *outcome))
        return results

    def _index_rows(self, rows: list[_Row]) -> list[tuple[str, list[str]] | BaseException]:
        """Insert the rows of files already durable in one transaction; ``(status, files to
        delete)`` or the exception that refused it, per row.

        Should one row fail, they are inserted again one by one so the others are kept;
        the failed row's file is removed.
        """
        try:
            with self.writing() as conn:
                deferred = _Deferred()
                if len(rows) > 1 and not self._decides_per_instance():
                    outcomes = self._insert_many(conn, deferred, rows)
                else:
                    outcomes = [self._insert_instance(conn, deferred, *row.values())
                                for row in rows]  # fmt: skip
                deferred.flush(conn)
                for row in rows:  # no row is committed before its file is durable
                    row.wait()
                return outcomes
        except Exception as exc:
            for row in rows:  # a file still arriving would otherwise outlive its removal
                row.settle()
            if len(rows) == 1:
                self.store.remove(rows[0].file_uuid)
                return [exc]
            log.info("A group of %d instances failed as a whole; indexing one by one", len(rows))
        outcomes: list[tuple[str, list[str]] | BaseException] = []
        for row in rows:
            try:
                row.wait()
                outcomes.append(self.index_instance(*row.values()))
            except Exception as exc:
                if not isinstance(exc, PacsError):
                    log.exception("Cannot index %s", row.parsed.sop_instance_uid)
                self.store.remove(row.file_uuid)
                outcomes.append(exc)
        return outcomes

    def _decides_per_instance(self) -> bool:
        """Whether ingest needs one instance's rows before deciding the next's (overwriting
        a stored instance, recycling to make room)."""
        config = self.config
        return bool(config.OverwriteInstances or config.MaximumStorageSize
                    or config.MaximumPatientCount)  # fmt: skip

    def _committed(
        self, parsed: ParsedInstance, file_uuid: str, status: str, obsolete: list[str]
    ) -> IngestResult:
        """Once an instance's rows are committed: drop the files no row names, announce it."""
        patient_id, study_id, series_id, instance_id = parsed.ids
        if status == "AlreadyStored":
            self.store.remove(file_uuid)
        else:  # Orthanc's order: the series is announced stable first
            self._on_new_instance(
                (("Series", series_id), ("Study", study_id), ("Patient", patient_id))
            )
        for old in obsolete:
            self.store.remove(old)
        return IngestResult(
            status, instance_id, series_id, study_id, patient_id, parsed.sop_instance_uid
        )

    def index_stored_file(self, file_uuid: str) -> IngestResult | None:
        """Index a file of the store that has no row; ``None`` (and the file removed) when
        its instance is indexed already.

        Raises
        ------
        InvalidInstanceError
            If the file is not a storable DICOM instance (it is left in place).
        """
        path = self.store.path_of(file_uuid)
        parsed = parse_instance(path)
        patient_id, study_id, series_id, instance_id = parsed.ids
        with self.engine.connect() as conn:
            if reads.exists(conn, "Instance", instance_id):
                self.store.remove(file_uuid)
                return None
        status, obsolete = self.index_instance(
            parsed, file_uuid, path.stat().st_size, None, "Plugins"
        )
        for old in obsolete:
            self.store.remove(old)
        return IngestResult(
            status, instance_id, series_id, study_id, patient_id, parsed.sop_instance_uid
        )

    def index_instance(
        self,
        parsed: ParsedInstance,
        file_uuid: str,
        size: int,
        remote_aet: str | None,
        origin: str,
    ) -> tuple[str, list[str]]:
        """Insert the rows of one stored file. Returns (status, files to delete after commit)."""
        with self.writing() as conn:
            deferred = _Deferred()
            outcome = self._insert_instance(
                conn, deferred, parsed, file_uuid, size, remote_aet, origin
            )
            deferred.flush(conn)
            return outcome

    def _insert_instance(
        self,
        conn: sa.Connection,
        deferred: _Deferred,
        parsed: ParsedInstance,
        file_uuid: str,
        size: int,
        remote_aet: str | None,
        origin: str,
    ) -> tuple[str, list[str]]:
        """:meth:`index_instance` inside a transaction of the caller's, which flushes
        ``deferred`` before it commits."""
        patient_id, study_id, series_id, instance_id = parsed.ids
        obsolete: list[str] = []
        keys = {
            "instance": instance_id,
            "patient": patient_id,
            "study": study_id,
            "series": series_id,
        }
        existing, patient_pk, study_pk, series_pk, order = _LOOKUP.execute(conn, keys).fetchone()
        if existing is not None:
            if not self.config.OverwriteInstances:
                return "AlreadyStored", []
            obsolete += self._delete_instances(conn, [existing])
            _, patient_pk, study_pk, series_pk, order = _LOOKUP.execute(conn, keys).fetchone()

        if self.config.MaximumStorageSize or self.config.MaximumPatientCount:
            deferred.flush(conn)  # the plan reads the totals and the recycling order
            victims = recycle.plan_recycling(
                conn,
                max_storage_mb=self.config.MaximumStorageSize,
                max_patients=self.config.MaximumPatientCount,
                disk_size=reads.total(conn, reads.DISK_SIZE),
                incoming_size=size,
                incoming_patient_pk=patient_pk,
            )
            for victim in victims:
                log.info("Recycling patient %s to make room", victim)
                obsolete += self._delete_under(conn, "Patient", victim)
            if victims:
                _, patient_pk, study_pk, series_pk, order = _LOOKUP.execute(conn, keys).fetchone()

        order = max(order or 0, deferred.order)
        known = {"Patient": patient_pk, "Study": study_pk, "Series": series_pk}
        instance_row = self._write_instance(
            conn, deferred, _Row(parsed, file_uuid, size, remote_aet, origin), known, order
        )
        _INSERT_INSTANCE.execute(conn, instance_row)
        return "Success", obsolete

    def _insert_many(
        self, conn: sa.Connection, deferred: _Deferred, rows: list[_Row]
    ) -> list[tuple[str, list[str]]]:
        """Many instances in one transaction (without overwriting nor recycling, which
        decide instance by instance): what exists is looked up for all of them in a few
        queries and their instance rows inserted in one statement, so an instance costs
        little more than the rows of its new parents."""
        ids = [row.parsed.ids for row in rows]
        known = {
            level: _pks_of(conn, TABLES[level], list({each[depth] for each in ids}))
            for depth, level in enumerate(LEVELS)
        }
        order = max(_highest_recycling_order(conn), deferred.order)
        outcomes: list[tuple[str, list[str]]] = []
        instance_rows = []
        for row, (patient_id, study_id, series_id, instance_id) in zip(rows, ids, strict=True):
            if instance_id in known["Instance"]:
                outcomes.append(("AlreadyStored", []))
                continue
            parents = {
                "Patient": known["Patient"].get(patient_id),
                "Study": known["Study"].get(study_id),
                "Series": known["Series"].get(series_id),
            }
            instance_rows.append(self._write_instance(conn, deferred, row, parents, order))
            order = deferred.order
            for level, public_id in zip(LEVELS, row.parsed.ids, strict=True):
                known[level][public_id] = parents.get(level, -1)
            outcomes.append(("Success", []))
        if instance_rows:  # the same keys in every row: one executemany
            _INSERT_INSTANCE.execute_many(conn, instance_rows)
        return outcomes

    def _write_instance(
        self,
        conn: sa.Connection,
        deferred: _Deferred,
        row: _Row,
        parents: dict[str, int | None],
        order: int,
    ) -> dict[str, Any]:
        """Insert the new parents of an instance (their keys filled in ``parents``), defer
        the touches of the others and the instance's changes; return the instance's row.

        ``order`` is the highest recycling order given so far.
        """
        parsed = row.parsed
        patient_id, study_id, series_id, instance_id = parsed.ids
        now_text, now_ts = _now()
        new_changes: list[tuple[str, str, str]] = []
        order += 1
        deferred.order = order
        stamp = {"last_update": now_text, "last_update_ts": now_ts}
        if parents["Patient"] is None:
            parents["Patient"] = conn.execute(
                patients.insert(),
                {
                    "public_id": patient_id,
                    "protected": False,
                    "recycling_order": order,
                    **parsed.tags["Patient"],
                    **stamp,
                },
            ).inserted_primary_key[0]
            new_changes.append(("NewPatient", "Patient", patient_id))
        else:
            deferred.touch("Patient", parents["Patient"], {"recycling_order": order, **stamp})
        parent_pk = parents["Patient"]
        for level, public_id in (("Study", study_id), ("Series", series_id)):
            if parents[level] is None:
                parents[level] = conn.execute(
                    TABLES[level].insert(),
                    {
                        "public_id": public_id,
                        "parent_pk": parent_pk,
                        **parsed.tags[level],
                        **stamp,
                    },
                ).inserted_primary_key[0]
                new_changes.append((f"New{level}", level, public_id))
            else:
                deferred.touch(level, parents[level], stamp)
            parent_pk = parents[level]
        new_changes.append(("NewInstance", "Instance", instance_id))
        for resource in (("Series", series_id), ("Study", study_id), ("Patient", patient_id)):
            self._written_at[resource] = now_ts
        deferred.disk_size += row.size
        # Orthanc logs the instance first, then the new parents bottom-up.
        deferred.log(reversed(new_changes), now_text)
        return {
            "public_id": instance_id,
            "parent_pk": parent_pk,
            "file_uuid": row.file_uuid,
            "file_size": row.size,
            "transfer_syntax": parsed.transfer_syntax,
            "index_in_series": index_in_series(parsed.tags["Instance"]),
            "received": now_text,
            "remote_aet": row.remote_aet,
            "origin": row.origin,
            **parsed.tags["Instance"],
            **stamp,
        }

    def index_records(self, records: Iterable[dict[str, str]], *, batch_size: int = 5000) -> int:
        """Index instances from tag dictionaries alone (see :meth:`Index.index_records`)."""
        inserted = 0
        batch: list[dict[str, str]] = []
        for record in records:
            batch.append(record)
            if len(batch) >= batch_size:
                inserted += self._index_record_batch(batch)
                batch = []
        if batch:
            inserted += self._index_record_batch(batch)
        return inserted

    def _index_record_batch(self, records: list[dict[str, str]]) -> int:
        now_text, now_ts = _now()
        stamp = {"last_update": now_text, "last_update_ts": now_ts}
        all_ids = [_record_ids(record) for record in records]
        inserted = 0
        with self.writing() as conn:
            known: dict[str, dict[str, int]] = {}
            order = _highest_recycling_order(conn)
            for depth, level in enumerate(LEVELS):
                table = TABLES[level]
                wanted = list({ids[depth] for ids in all_ids})
                known[level] = _pks_of(conn, table, wanted)
                columns = stored_tags(level)
                rows = []
                for record, ids in zip(records, all_ids, strict=True):
                    public_id = ids[depth]
                    if public_id in known[level]:
                        continue
                    known[level][public_id] = -1  # claimed by this batch
                    values: dict[str, Any] = {"public_id": public_id, **stamp}
                    for keyword in columns:
                        values[keyword] = record.get(keyword)
                    values[IDENTIFIER[level]] = record.get(IDENTIFIER[level], "")
                    if level == "Patient":
                        order += 1
                        values.update(protected=False, recycling_order=order)
                    else:
                        values["parent_pk"] = known[PARENT[level]][ids[depth - 1]]
                    if level == "Instance":
                        values.update(
                            file_uuid=None,
                            file_size=0,
                            received=now_text,
                            origin="Plugins",
                            transfer_syntax=None,
                            remote_aet=None,
                            index_in_series=index_in_series(values),
                        )
                    rows.append(values)
                if level == "Instance":
                    if rows:
                        conn.execute(table.insert(), rows)
                    inserted = len(rows)
                elif rows:  # the keys of new parents, for their children's rows
                    with_keys = table.insert().returning(table.c.public_id, table.c.pk)
                    known[level].update(conn.execute(with_keys, rows).all())
        return inserted

    # -- resources out --------------------------------------------------------------------
    def delete(self, level: str, public_id: str) -> dict[str, str] | None:
        """Delete a resource, everything under it and the parents it leaves empty; return
        the remaining ancestor's reference (see :meth:`Index.delete`)."""
        table = TABLES[level]
        with self.writing() as conn:
            row = conn.execute(sa.select(table.c.pk).where(table.c.public_id == public_id)).first()
            if row is None:
                raise UnknownResourceError(level, public_id)
            ancestor = reads.parent_row(conn, level, row.pk) if level in PARENT else None
            files = self._delete_under(conn, level, row.pk)
            remaining = None
            # Climb while parents became empty.
            current_level = PARENT.get(level)
            while ancestor is not None and current_level is not None:
                child_table = TABLES[CHILD[current_level]]
                has_child = conn.execute(
                    sa.select(child_table.c.pk)
                    .where(child_table.c.parent_pk == ancestor.pk)
                    .limit(1)
                ).first()
                if has_child is not None:
                    remaining = views.reference(current_level, ancestor.public_id)
                    break
                next_ancestor = (
                    reads.parent_row(conn, current_level, ancestor.pk)
                    if current_level in PARENT
                    else None
                )
                _delete_rows(conn, current_level, [ancestor.pk])
                ancestor = next_ancestor
                current_level = PARENT.get(current_level)
            self._log_changes(conn, [("Deleted", level, public_id)], _now()[0])
        for file_uuid in files:
            self.store.remove(file_uuid)
        return remaining

    def _delete_under(self, conn: sa.Connection, level: str, pk: int) -> list[str]:
        """Delete a resource's rows and its descendants; return the file UUIDs to remove."""
        current = level
        by_level = {level: [pk]}
        while current in CHILD:
            child = CHILD[current]
            child_table = TABLES[child]
            child_pks = []
            for chunk in reads.chunks(by_level[current]):
                child_pks += (
                    conn.execute(
                        sa.select(child_table.c.pk).where(child_table.c.parent_pk.in_(chunk))
                    )
                    .scalars()
                    .all()
                )
            by_level[child] = child_pks
            current = child
        files = self._delete_instances(conn, by_level["Instance"])
        for lvl in ("Series", "Study", "Patient"):
            if lvl in by_level:
                _delete_rows(conn, lvl, by_level[lvl])
        return files

    def _delete_instances(self, conn: sa.Connection, pks: list[int]) -> list[str]:
        files: list[str] = []
        freed = 0
        for chunk in reads.chunks(pks):
            for file_uuid, size in conn.execute(
                sa.select(instances_table.c.file_uuid, instances_table.c.file_size).where(
                    instances_table.c.pk.in_(chunk)
                )
            ):
                if file_uuid:
                    files.append(file_uuid)
                freed += size or 0
        _delete_rows(conn, "Instance", pks)
        self._add_total(conn, reads.DISK_SIZE, -freed)
        return files

    # -- labels, protection, totals, change log -------------------------------------------
    def put_metadata(self, level: str, public_id: str, name: str, value: str,
                     if_match: int | None) -> int:  # fmt: skip
        with self.writing() as conn:
            return metadata.put(conn, level, public_id, name, value, if_match)

    def delete_metadata(self, level: str, public_id: str, name: str,
                        if_match: int | None) -> None:  # fmt: skip
        with self.writing() as conn:
            metadata.delete(conn, level, public_id, name, if_match)

    def put_server_metadata(self, level: str, public_id: str, name: str, value: str) -> None:
        with self.writing() as conn:
            metadata.put_server(conn, level, public_id, name, value)

    def next_in_sequence(self, name: str) -> int:
        """Add one to the counter ``name`` (kept with the totals) and return it: 1, 2..."""
        with self.writing() as conn:
            self._add_total(conn, name, 1)
            return conn.execute(sa.select(totals.c.value).where(totals.c.name == name)).scalar()

    def set_label(self, level: str, public_id: str, label: str, present: bool) -> None:
        with self.writing() as conn:
            (labels.add if present else labels.remove)(conn, level, public_id, label)

    def set_protected(self, patient_id: str, protected: bool) -> None:
        with self.writing() as conn:
            reads.row(conn, "Patient", patient_id)
            conn.execute(
                patients.update()
                .where(patients.c.public_id == patient_id)
                .values(protected=bool(protected))
            )

    def announce_stable(self, resources: list[Resource]) -> None:
        """Log ``Stable<Level>`` changes for the resources still indexed whose last instance
        came through this process.

        Another server on the same database may have given a resource instances since this
        one last did: the row then carries that server's later timestamp, that server will
        announce it, and announcing it here would be early (and twice).
        """
        with self.writing() as conn:
            items = []
            for level, public_id in resources:
                mine = self._written_at.pop((level, public_id), None)
                touched = conn.execute(_TOUCHED_AT[level], {"public_id": public_id}).scalar()
                if touched is not None and (mine is None or touched <= mine):
                    items.append((f"Stable{level}", level, public_id))
            self._log_changes(conn, items, _now()[0])

    @staticmethod
    def _add_total(conn: sa.Connection, name: str, delta: int) -> None:
        updated = _ADD_TOTAL.execute(conn, {"b_name": name, "delta": delta})
        if updated.rowcount == 0:
            conn.execute(totals.insert().values(name=name, value=delta))

    @staticmethod
    def _log_changes(conn: sa.Connection, items: Iterable[tuple[str, str, str]], date: str) -> None:
        rows = [
            {"change_type": kind, "resource_type": level, "public_id": public_id, "date": date}
            for kind, level, public_id in items
        ]
        if rows:
            conn.execute(changes.insert(), rows)


def _delete_rows(conn: sa.Connection, level: str, pks: list[int]) -> None:
    table = TABLES[level]
    labels.delete_rows(conn, level, pks)
    metadata.delete_rows(conn, level, pks)
    attachments.delete_rows(conn, level, pks)
    for chunk in reads.chunks(pks):
        conn.execute(table.delete().where(table.c.pk.in_(chunk)))


def _pks_of(conn: sa.Connection, table: sa.Table, public_ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in reads.chunks(public_ids):
        statement = _pks_statement(table, len(chunk))
        params = {f"id{i}": public_id for i, public_id in enumerate(chunk)}
        found.update(statement.rows(conn, params))
    return found


@lru_cache(maxsize=256)
def _pks_statement(table: sa.Table, count: int) -> Prepared:
    """``(public_id, pk)`` of the rows among ``count`` public IDs (``id0``, ``id1``...).

    Run on the DBAPI cursor: a group of instances committed together looks up its four
    levels this way, and building and executing them through SQLAlchemy cost more than the
    lookups themselves (a fresh ``IN`` list each time). One statement per table and list
    length: groups are small, and longer lists come in chunks of one length but the last.
    """
    ids = [sa.bindparam(f"id{i}") for i in range(count)]
    return Prepared(sa.select(table.c.public_id, table.c.pk).where(table.c.public_id.in_(ids)))


def _highest_recycling_order(conn: sa.Connection) -> int:
    return _HIGHEST_ORDER.rows(conn, {})[0][0] or 0


def _record_ids(record: dict[str, str]) -> tuple[str, str, str, str]:
    try:
        return resource_ids(
            record.get("PatientID", ""),
            record["StudyInstanceUID"],
            record["SeriesInstanceUID"],
            record["SOPInstanceUID"],
        )
    except KeyError as exc:
        raise BadRequestError(f"Record lacks {exc.args[0]}") from exc
