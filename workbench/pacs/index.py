"""The index: patients → studies → series → instances over a file store and an SQL database.

:class:`Index` is the one object the REST API, the DIMSE node and notebooks share. Writes are
serialised by one lock and kept short (one small transaction per instance); reads run on their
own pooled connections, which SQLite's WAL mode lets proceed while a write commits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from . import recycle
from .config import Config
from .database import WRITE_OPTION, create_engine
from .errors import BadRequestError, InvalidInstanceError, UnknownResourceError
from .ids import resource_ids
from .importing import ImportSummary, iter_sources
from .matching import condition_for
from .parsing import ParsedInstance, index_in_series, parse_instance
from .results import IngestResult, ReconcileReport
from .schema import (
    CHILD,
    PARENT,
    TABLES,
    changes,
    create_sqlite_nocase_indexes,
    metadata,
    patients,
    totals,
)
from .schema import instances as instances_table
from .schema import series as series_table
from .schema import studies as studies_table
from .stability import StabilityMonitor
from .store import FileStore, StoreLock
from .tags import (
    EXTRA_TAGS,
    IDENTIFIER,
    LEVELS,
    MAIN_TAGS,
    keyword_of,
    normalize_level,
    stored_tags,
    vr_of,
)

log = logging.getLogger(__name__)

_DISK_SIZE = "disk_size"


def _now() -> tuple[str, float]:
    now = time.time()
    return datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%S"), now


class Index:
    """An Orthanc-like index of DICOM instances stored as files.

    Parameters
    ----------
    config : Config, optional
        Storage location, database URL and limits. Defaults to ``Config()``.
    reconcile : bool
        Check files against rows on start and repair differences (see :meth:`reconcile`).

    Examples
    --------
    >>> index = Index(Config(StorageDirectory="/tmp/pacs"))      # doctest: +SKIP
    >>> index.import_path("study_folder/")                       # doctest: +SKIP
    >>> index.find("Study", {"PatientName": "DOE*"})             # doctest: +SKIP
    """

    def __init__(self, config: Config | None = None, *, reconcile: bool = True) -> None:
        self.config = config or Config()
        self.store = FileStore(self.config.storage_path)
        self.config.index_path.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(self.config.database_url)
        metadata.create_all(self.engine)
        if self.engine.dialect.name == "sqlite":
            with self.engine.begin() as conn:
                create_sqlite_nocase_indexes(conn)
        # One writer at a time inside this process; SQLite's busy timeout covers others.
        self._write_lock = threading.RLock()
        # Announces StableSeries/Study/Patient in the change log, as Orthanc does.
        self._stability = StabilityMonitor(self.config.StableAge, self._announce_stable)
        self.last_reconcile: ReconcileReport | None = None
        # Every process using the store holds a shared lock on it; reconciling needs it
        # exclusively, so a second process (say `workbench import` next to a running server)
        # never deletes what the first one is still writing.
        self._store_lock = StoreLock(self.store.root / "store.lock")
        if reconcile:
            if self._store_lock.try_exclusive():
                self.last_reconcile = self.reconcile()
            else:
                log.info("Store %s is in use by another process; not reconciling",
                         self.store.root)
        self._store_lock.share()

    # ----------------------------------------------------------------------------- writing
    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """One short write transaction at a time (committed on exit, rolled back on error)."""
        with self._write_lock, self.engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    @property
    def incoming_dir(self) -> Path:
        """A directory on the storage filesystem where writers put files before ingesting."""
        return self.store.incoming_dir

    def ingest_file(
        self, path: str | Path, *, move: bool = False, remote_aet: str | None = None,
        origin: str = "Plugins", label: str | None = None,
    ) -> IngestResult:
        """Store one DICOM Part-10 file and index it.

        Parameters
        ----------
        path : str or Path
            The file. With ``move=True`` it must be on the storage filesystem (e.g. in
            :attr:`incoming_dir`) and is renamed into the store; it is consumed either way.
        move : bool
            Rename instead of copying.
        remote_aet, origin : str, optional
            Provenance kept as instance metadata ("DicomProtocol", "RestApi", "Plugins"...).
        label : str, optional
            How error messages name the data (default: the path).

        Returns
        -------
        IngestResult
            Returned only once the file is durable and the row committed.

        Raises
        ------
        InvalidInstanceError
            The file is not a storable DICOM instance.
        StorageFullError
            The storage limits are reached and nothing can be recycled.
        """
        path = Path(path)
        try:
            parsed = parse_instance(path, label)
        except InvalidInstanceError:
            if move:
                path.unlink(missing_ok=True)
            raise
        return self._store(parsed, lambda: self.store.commit_file(path, move=move),
                           remote_aet, origin)

    def ingest_bytes(
        self, data: bytes, *, remote_aet: str | None = None, origin: str = "Plugins",
        label: str | None = None,
    ) -> IngestResult:
        """Store one DICOM Part-10 file given as bytes (see :meth:`ingest_file`).

        The header is parsed from memory and the bytes are written once, straight to the
        temporary file that is renamed into the store.
        """
        parsed = parse_instance(data, label or f"uploaded data ({len(data)} bytes)")
        return self._store(parsed, lambda: self.store.commit_bytes(data), remote_aet, origin)

    def _store(self, parsed: ParsedInstance, commit: Callable[[], tuple[str, int]],
               remote_aet: str | None, origin: str) -> IngestResult:
        """Make the file durable with ``commit``, then index it (the file first, always)."""
        patient_id, study_id, series_id, instance_id = parsed.ids
        # Duplicates are rare: they are detected inside the transaction, and the copy that
        # was stored for nothing is removed afterwards.
        file_uuid, size = commit()
        try:
            status, obsolete = self._index_instance(parsed, file_uuid, size, remote_aet, origin)
        except BaseException:
            self.store.remove(file_uuid)
            raise
        if status == "AlreadyStored":
            self.store.remove(file_uuid)
        else:  # Orthanc's order: the series is announced stable first
            self._stability.touch(
                (("Series", series_id), ("Study", study_id), ("Patient", patient_id))
            )
        for old in obsolete:
            self.store.remove(old)
        return IngestResult(status, instance_id, series_id, study_id, patient_id,
                            parsed.sop_instance_uid)

    def import_path(
        self, *paths: str | Path, progress: bool = True, recursive: bool = True
    ) -> ImportSummary:
        """Import files, folders and ZIP archives; bad files are reported, not fatal.

        Parameters
        ----------
        *paths : str or Path
            Files, directories (walked recursively) or ``.zip`` archives.
        progress : bool
            Show a tqdm progress bar.

        Returns
        -------
        ImportSummary
            Counts and the per-file errors.
        """
        from tqdm.auto import tqdm

        sources = list(iter_sources(paths, recursive=recursive))
        summary = ImportSummary()
        for label, opener in tqdm(sources, disable=not progress, unit="file", desc="Importing"):
            try:
                source = opener()
                if isinstance(source, bytes):
                    result = self.ingest_bytes(source, origin="Plugins")
                else:
                    result = self.ingest_file(source, origin="Plugins")
            except InvalidInstanceError as exc:
                summary.errors[label] = str(exc)
                continue
            summary.results.append(result)
        return summary

    def _exists(self, level: str, public_id: str) -> bool:
        table = TABLES[level]
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(table.c.pk).where(table.c.public_id == public_id)
            ).first()
        return found is not None

    def _index_instance(
        self, parsed: ParsedInstance, file_uuid: str, size: int, remote_aet: str | None, origin: str
    ) -> tuple[str, list[str]]:
        """Insert the rows of one stored file. Returns (status, files to delete after commit)."""
        patient_id, study_id, series_id, instance_id = parsed.ids
        now_text, now_ts = _now()
        obsolete: list[str] = []
        keys = {"instance": instance_id, "patient": patient_id, "study": study_id,
                "series": series_id}
        with self._writing() as conn:
            existing, patient_pk, study_pk, series_pk, order = conn.execute(_LOOKUP, keys).one()
            if existing is not None:
                if not self.config.OverwriteInstances:
                    return "AlreadyStored", []
                obsolete += self._delete_instances(conn, [existing])
                _, patient_pk, study_pk, series_pk, order = conn.execute(_LOOKUP, keys).one()

            if self.config.MaximumStorageSize or self.config.MaximumPatientCount:
                victims = recycle.plan_recycling(
                    conn,
                    max_storage_mb=self.config.MaximumStorageSize,
                    max_patients=self.config.MaximumPatientCount,
                    disk_size=self._total(conn, _DISK_SIZE),
                    incoming_size=size,
                    incoming_patient_pk=patient_pk,
                )
                for victim in victims:
                    log.info("Recycling patient %s to make room", victim)
                    obsolete += self._delete_under(conn, "Patient", victim)
                if victims:
                    _, patient_pk, study_pk, series_pk, order = conn.execute(_LOOKUP, keys).one()

            new_changes: list[tuple[str, str, str]] = []
            order = (order or 0) + 1
            stamp = {"last_update": now_text, "last_update_ts": now_ts}
            if patient_pk is None:
                patient_pk = conn.execute(patients.insert(), {
                    "public_id": patient_id, "protected": False, "recycling_order": order,
                    **parsed.tags["Patient"], **stamp}).inserted_primary_key[0]
                new_changes.append(("NewPatient", "Patient", patient_id))
            else:
                conn.execute(_TOUCH_PATIENT, {"b_pk": patient_pk, "recycling_order": order,
                                              **stamp})
            parent_pk = patient_pk
            for level, public_id, pk in (("Study", study_id, study_pk),
                                         ("Series", series_id, series_pk)):
                table = TABLES[level]
                if pk is None:
                    pk = conn.execute(table.insert(), {
                        "public_id": public_id, "parent_pk": parent_pk,
                        **parsed.tags[level], **stamp}).inserted_primary_key[0]
                    new_changes.append((f"New{level}", level, public_id))
                else:
                    conn.execute(_TOUCH[level], {"b_pk": pk, **stamp})
                parent_pk = pk
            conn.execute(instances_table.insert(), {
                "public_id": instance_id, "parent_pk": parent_pk, "file_uuid": file_uuid,
                "file_size": size, "transfer_syntax": parsed.transfer_syntax,
                "index_in_series": index_in_series(parsed.tags["Instance"]),
                "received": now_text, "remote_aet": remote_aet, "origin": origin,
                **parsed.tags["Instance"], **stamp})
            new_changes.append(("NewInstance", "Instance", instance_id))
            self._add_total(conn, _DISK_SIZE, size)
            # Orthanc logs the instance first, then the new parents bottom-up.
            self._log_changes(conn, reversed(new_changes), now_text)
        return "Success", obsolete

    def index_records(self, records: Iterable[dict[str, str]], *, batch_size: int = 5000) -> int:
        """Index instances from tag dictionaries alone, without files, in bulk.

        Meant for migrations, tests and benchmarks that need a large index quickly: each
        record maps keywords to values and must hold StudyInstanceUID, SeriesInstanceUID and
        SOPInstanceUID (PatientID defaults to ""). Such instances have no file (``/file``
        answers 404). Existing instances are skipped. Returns the number of rows inserted.
        """
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
        with self._writing() as conn:
            known: dict[str, dict[str, int]] = {}
            order = (conn.execute(sa.select(sa.func.max(patients.c.recycling_order))).scalar()
                     or 0)
            for depth, level in enumerate(LEVELS):
                table = TABLES[level]
                wanted = list({ids[depth] for ids in all_ids})
                known[level] = self._pks_of(conn, table, wanted)
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
                        values.update(file_uuid=None, file_size=0, received=now_text,
                                      origin="Plugins", transfer_syntax=None, remote_aet=None,
                                      index_in_series=index_in_series(values))
                    rows.append(values)
                if rows:
                    conn.execute(table.insert(), rows)
                    known[level].update(self._pks_of(conn, table, [r["public_id"] for r in rows]))
                if level == "Instance":
                    inserted = len(rows)
        return inserted

    @staticmethod
    def _pks_of(conn: sa.Connection, table: sa.Table, public_ids: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(public_ids), 500):
            chunk = public_ids[start:start + 500]
            found.update(conn.execute(sa.select(table.c.public_id, table.c.pk)
                                      .where(table.c.public_id.in_(chunk))).all())
        return found

    # ---------------------------------------------------------------------------- deleting
    def delete(self, level: str, public_id: str) -> dict[str, str] | None:
        """Delete a resource with everything under it; empty parents go too (as in Orthanc).

        Returns
        -------
        dict or None
            The remaining ancestor as ``{"ID", "Path", "Type"}``, or ``None``.

        Raises
        ------
        UnknownResourceError
            If there is no such resource.
        """
        level = normalize_level(level)
        table = TABLES[level]
        with self._writing() as conn:
            row = conn.execute(sa.select(table.c.pk).where(table.c.public_id == public_id)).first()
            if row is None:
                raise UnknownResourceError(level, public_id)
            ancestor = None
            if level in PARENT:
                ancestor = self._parent_row(conn, level, row.pk)
            files = self._delete_under(conn, level, row.pk)
            remaining = None
            # Climb while parents became empty.
            current_level = PARENT.get(level)
            while ancestor is not None and current_level is not None:
                child_table = TABLES[CHILD[current_level]]
                has_child = conn.execute(
                    sa.select(child_table.c.pk).where(child_table.c.parent_pk == ancestor.pk)
                    .limit(1)).first()
                if has_child is not None:
                    remaining = {"ID": ancestor.public_id,
                                 "Path": f"/{_plural(current_level)}/{ancestor.public_id}",
                                 "Type": current_level}
                    break
                next_ancestor = (self._parent_row(conn, current_level, ancestor.pk)
                                 if current_level in PARENT else None)
                self._delete_rows(conn, current_level, [ancestor.pk])
                ancestor = next_ancestor
                current_level = PARENT.get(current_level)
            self._log_changes(conn, [("Deleted", level, public_id)], _now()[0])
        for file_uuid in files:
            self.store.remove(file_uuid)
        return remaining

    def _parent_row(self, conn: sa.Connection, level: str, pk: int):
        table, parent = TABLES[level], TABLES[PARENT[level]]
        return conn.execute(
            sa.select(parent.c.pk, parent.c.public_id)
            .select_from(table.join(parent, table.c.parent_pk == parent.c.pk))
            .where(table.c.pk == pk)).first()

    def _delete_under(self, conn: sa.Connection, level: str, pk: int) -> list[str]:
        """Delete a resource's rows and its descendants; return the file UUIDs to remove."""
        pks = [pk]
        current = level
        by_level = {level: pks}
        while current in CHILD:
            child = CHILD[current]
            child_table = TABLES[child]
            child_pks = []
            for start in range(0, len(by_level[current]), 500):
                chunk = by_level[current][start:start + 500]
                child_pks += conn.execute(
                    sa.select(child_table.c.pk).where(child_table.c.parent_pk.in_(chunk))
                ).scalars().all()
            by_level[child] = child_pks
            current = child
        files = self._delete_instances(conn, by_level["Instance"])
        for lvl in ("Series", "Study", "Patient"):
            if lvl in by_level:
                self._delete_rows(conn, lvl, by_level[lvl])
        return files

    def _delete_instances(self, conn: sa.Connection, pks: list[int]) -> list[str]:
        files: list[str] = []
        freed = 0
        for start in range(0, len(pks), 500):
            chunk = pks[start:start + 500]
            for file_uuid, size in conn.execute(
                sa.select(instances_table.c.file_uuid, instances_table.c.file_size)
                .where(instances_table.c.pk.in_(chunk))
            ):
                if file_uuid:
                    files.append(file_uuid)
                freed += size or 0
        self._delete_rows(conn, "Instance", pks)
        self._add_total(conn, _DISK_SIZE, -freed)
        return files

    @staticmethod
    def _delete_rows(conn: sa.Connection, level: str, pks: list[int]) -> None:
        table = TABLES[level]
        for start in range(0, len(pks), 500):
            conn.execute(table.delete().where(table.c.pk.in_(pks[start:start + 500])))

    # ------------------------------------------------------------------------------ totals
    @staticmethod
    def _total(conn: sa.Connection, name: str) -> int:
        return int(conn.execute(sa.select(totals.c.value).where(totals.c.name == name))
                   .scalar() or 0)

    def _add_total(self, conn: sa.Connection, name: str, delta: int) -> None:
        updated = conn.execute(_ADD_TOTAL, {"b_name": name, "delta": delta})
        if updated.rowcount == 0:
            conn.execute(totals.insert().values(name=name, value=delta))

    @staticmethod
    def _log_changes(conn: sa.Connection, items: Iterable[tuple[str, str, str]], date: str):
        rows = [{"change_type": kind, "resource_type": level, "public_id": public_id,
                 "date": date} for kind, level, public_id in items]
        if rows:
            conn.execute(changes.insert(), rows)

    # ------------------------------------------------------------------------------ reading
    def _row(self, conn: sa.Connection, level: str, public_id: str):
        row = conn.execute(_ROW_BY_ID[level], {"public_id": public_id}).first()
        if row is None:
            raise UnknownResourceError(level, public_id)
        return row

    def exists(self, level: str, public_id: str) -> bool:
        """Whether a resource of ``level`` has ID ``public_id``."""
        return self._exists(normalize_level(level), public_id)

    def main_dicom_tags(self, level: str, public_id: str) -> dict[str, str]:
        """The main DICOM tags of a resource at its own level, as Orthanc lists them."""
        level = normalize_level(level)
        with self.engine.connect() as conn:
            return _main_tags(level, self._row(conn, level, public_id))

    def resource(self, level: str, public_id: str) -> dict[str, Any]:
        """The Orthanc JSON of ``GET /{level}/{id}``."""
        level = normalize_level(level)
        with self.engine.connect() as conn:
            return self._resource_json(conn, level, self._row(conn, level, public_id))

    def resources(self, level: str, public_ids: list[str]) -> list[dict[str, Any]]:
        """The Orthanc JSON of several resources of one level (``?expand``)."""
        level = normalize_level(level)
        table = TABLES[level]
        with self.engine.connect() as conn:
            rows = {}
            for start in range(0, len(public_ids), 500):
                chunk = public_ids[start:start + 500]
                for row in conn.execute(sa.select(table).where(table.c.public_id.in_(chunk))):
                    rows[row.public_id] = row
            return [self._resource_json(conn, level, rows[i]) for i in public_ids if i in rows]

    def _resource_json(self, conn: sa.Connection, level: str, row) -> dict[str, Any]:
        result: dict[str, Any] = {
            "ID": row.public_id,
            "MainDicomTags": _main_tags(level, row),
            "Type": level,
        }
        if level != "Instance":
            result["IsStable"] = (time.time() - row.last_update_ts) >= self.config.StableAge
            result["LastUpdate"] = row.last_update
            child = CHILD[level]
            result[_plural(child).capitalize()] = list(
                conn.execute(_CHILD_IDS[level], {"parent_pk": row.pk}).scalars())
        if level in PARENT:
            parent_level = PARENT[level]
            result[f"Parent{parent_level}"] = conn.execute(
                _PUBLIC_ID_BY_PK[parent_level], {"pk": row.parent_pk}).scalar()
            if level == "Study":
                result["PatientMainDicomTags"] = _main_tags("Patient", row)
        if level == "Series":
            result["ExpectedNumberOfInstances"] = row.expected_instances
            result["Status"] = "Unknown"
        if level == "Instance":
            result["FileSize"] = row.file_size
            result["FileUuid"] = row.file_uuid
            result["IndexInSeries"] = row.index_in_series  # null when not numbered
        return dict(sorted(result.items()))

    def list_ids(self, level: str, *, limit: int | None = None, since: int | None = None
                 ) -> list[str]:
        """IDs of every resource of ``level`` in insertion order (``GET /patients``)."""
        level = normalize_level(level)
        table = TABLES[level]
        query = sa.select(table.c.public_id).order_by(table.c.pk)
        if since:
            query = query.offset(since)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def children(self, level: str, public_id: str) -> list[str]:
        """IDs of the direct children of a resource (empty for an instance)."""
        level = normalize_level(level)
        if level not in CHILD:
            return []
        child_table = TABLES[CHILD[level]]
        with self.engine.connect() as conn:
            row = self._row(conn, level, public_id)
            return list(conn.execute(
                sa.select(child_table.c.public_id).where(child_table.c.parent_pk == row.pk)
                .order_by(child_table.c.pk)).scalars())

    def parent(self, level: str, public_id: str) -> str | None:
        """ID of the parent of a resource (``None`` for a patient)."""
        level = normalize_level(level)
        if level not in PARENT:
            return None
        with self.engine.connect() as conn:
            row = self._row(conn, level, public_id)
            return self._parent_row(conn, level, row.pk).public_id

    def ancestor(self, level: str, public_id: str, target_level: str) -> str:
        """ID of the ancestor at ``target_level`` (or the resource itself)."""
        level, target_level = normalize_level(level), normalize_level(target_level)
        current = public_id
        while level != target_level:
            if LEVELS.index(target_level) > LEVELS.index(level):
                raise BadRequestError(f"{target_level} is not above {level}")
            current = self.parent(level, current)
            level = PARENT[level]
        return current

    def instances_of(self, level: str, public_id: str) -> list[str]:
        """IDs of every instance under a resource, ordered by series then index in series."""
        level = normalize_level(level)
        query, _ = self._instances_query(level, public_id)
        with self.engine.connect() as conn:
            self._row(conn, level, public_id)
            return [row.public_id for row in conn.execute(query)]

    def instance_files(self, level: str, public_id: str) -> list[tuple[str, Path]]:
        """``(instance ID, file path)`` of every instance under a resource that has a file."""
        level = normalize_level(level)
        query, _ = self._instances_query(level, public_id)
        with self.engine.connect() as conn:
            self._row(conn, level, public_id)
            return [(row.public_id, self.store.path_of(row.file_uuid))
                    for row in conn.execute(query) if row.file_uuid]

    def _instances_query(self, level: str, public_id: str):
        inst, ser, stu, pat = instances_table, series_table, studies_table, patients
        joined = inst.join(ser, inst.c.parent_pk == ser.c.pk)
        joined = joined.join(stu, ser.c.parent_pk == stu.c.pk)
        joined = joined.join(pat, stu.c.parent_pk == pat.c.pk)
        query = (sa.select(inst.c.public_id, inst.c.file_uuid).select_from(joined)
                 .where(TABLES[level].c.public_id == public_id)
                 .order_by(ser.c.pk, inst.c.index_in_series, inst.c.pk))
        return query, joined

    def instance_path(self, instance_id: str) -> Path:
        """Path of the stored file of an instance.

        Raises
        ------
        UnknownResourceError
            If the instance is unknown or has no file (bulk-indexed rows).
        """
        with self.engine.connect() as conn:
            row = self._row(conn, "Instance", instance_id)
        if not row.file_uuid:
            raise UnknownResourceError("Instance", instance_id)
        return self.store.path_of(row.file_uuid)

    def instance_info(self, instance_id: str) -> dict[str, Any]:
        """Internal facts about an instance: transfer syntax, SOP class, reception, origin."""
        with self.engine.connect() as conn:
            row = self._row(conn, "Instance", instance_id)
        return {
            "TransferSyntax": row.transfer_syntax,
            "SopClassUid": row.SOPClassUID,
            "ReceptionDate": row.received,
            "RemoteAET": row.remote_aet,
            "Origin": row.origin,
            "IndexInSeries": row.index_in_series,
        }

    def open_series(self, series_id: str):
        """The series as a lazy ``xarray.DataArray`` (see :func:`workbench.io.open_series`)."""
        from workbench.io import open_series

        paths = [path for _, path in self.instance_files("Series", series_id)]
        if not paths:
            raise UnknownResourceError("Series", series_id)
        return open_series(paths)

    # ---------------------------------------------------------------------------- searching
    def find(
        self,
        level: str,
        query: dict[str, str],
        *,
        case_sensitive: bool = True,
        limit: int | None = None,
        since: int | None = None,
    ) -> list[str]:
        """IDs of the resources of ``level`` matching a DICOM query, from the SQL index.

        Parameters
        ----------
        level : str
            "Patient", "Study", "Series" or "Instance".
        query : dict
            Keyword (or "gggg,eeee") → DICOM matching pattern: single value, ``*``/``?``
            wildcards, ranges ``A-B``/``-B``/``A-`` for DA/TM/DT, backslash-separated lists.
            Attributes of the level and of the levels above it may be used, plus
            ``ModalitiesInStudy`` at study level.
        case_sensitive : bool
            Case sensitivity of non-PN attributes (PN is always case-insensitive).
        limit, since : int, optional
            Paging, in the order resources were created (unordered without paging).

        Raises
        ------
        BadRequestError
            For an unknown level or tag, a tag below ``level``, or a malformed pattern.
        """
        statement = self.find_statement(level, query, case_sensitive=case_sensitive,
                                        limit=limit, since=since)
        with self.engine.connect() as conn:
            return list(conn.execute(statement).scalars())

    def find_statement(self, level: str, query: dict[str, str], *, case_sensitive: bool = True,
                       limit: int | None = None, since: int | None = None) -> sa.Select:
        """The SELECT of :meth:`find` (public IDs), for callers that need more columns."""
        try:
            level = normalize_level(level)
        except ValueError as exc:
            raise BadRequestError(str(exc)) from exc
        table = TABLES[level]
        dialect = self.engine.dialect.name
        levels_used = {level}
        conditions = []
        for name, pattern in query.items():
            if not isinstance(pattern, str):
                raise BadRequestError(f"Query value of {name!r} must be a string")
            try:
                keyword = keyword_of(name)
            except ValueError as exc:
                raise BadRequestError(str(exc)) from exc
            if keyword == "ModalitiesInStudy" and level == "Study":
                condition = condition_for(series_table.c.Modality, "CS", pattern,
                                          case_sensitive=case_sensitive, dialect=dialect)
                if condition is not None:
                    conditions.append(sa.exists().where(
                        series_table.c.parent_pk == table.c.pk).where(condition))
                continue
            owner = _owner_level(level, keyword)
            if owner is None:
                raise BadRequestError(
                    f"{keyword} cannot be searched at the {level} level; searchable tags are "
                    f"the main DICOM tags of the {level} level and the levels above it")
            condition = condition_for(TABLES[owner].c[keyword], vr_of(keyword), pattern,
                                      case_sensitive=case_sensitive, dialect=dialect)
            if condition is not None:
                conditions.append(condition)
                levels_used.add(owner)
        joined = table
        current = level
        highest = min(LEVELS.index(lvl) for lvl in levels_used)
        while LEVELS.index(current) > highest:
            parent = PARENT[current]
            joined = joined.join(TABLES[parent], TABLES[current].c.parent_pk == TABLES[parent].c.pk)
            current = parent
        statement = sa.select(table.c.public_id).select_from(joined).where(*conditions)
        if limit or since:
            # Paging needs a stable order. Without paging, no ORDER BY: it would tempt SQLite
            # to walk the primary key instead of the index of a range condition.
            statement = statement.order_by(table.c.pk)
        if since:
            statement = statement.offset(since)
        if limit:
            statement = statement.limit(limit)
        return statement

    def lookup(self, value: str) -> list[dict[str, str]]:
        """Resources whose DICOM identifier equals ``value`` (Orthanc's ``/tools/lookup``)."""
        value = value.strip()
        found = []
        with self.engine.connect() as conn:
            for level in LEVELS:
                table = TABLES[level]
                for public_id in conn.execute(
                    sa.select(table.c.public_id).where(table.c[IDENTIFIER[level]] == value)
                ).scalars():
                    found.append({"ID": public_id, "Path": f"/{_plural(level)}/{public_id}",
                                  "Type": level})
        return found

    def anonymize(self, level: str, public_id: str, **options: Any) -> dict[str, str]:
        """Store an anonymized copy (PS3.15 Basic Profile) of a resource; return the new one.

        Parameters
        ----------
        level, public_id : str
            The resource.
        **options
            :class:`workbench.pacs.anonymize.Anonymizer` arguments (``patient_id``,
            ``patient_name``, ``replace``, ``keep``, ``remove``, ``keep_private_tags``).

        Returns
        -------
        dict
            ``{"ID", "Path", "PatientID", "Type"}`` of the anonymized copy, as Orthanc answers.
        """
        from .anonymize import Anonymizer, anonymize_resource

        return anonymize_resource(self, level, public_id, Anonymizer(**options))

    # ----------------------------------------------------------------------------- protecting
    def set_protected(self, patient_id: str, protected: bool) -> None:
        """Protect a patient from recycling (or remove the protection)."""
        with self._writing() as conn:
            self._row(conn, "Patient", patient_id)
            conn.execute(patients.update().where(patients.c.public_id == patient_id)
                         .values(protected=bool(protected)))

    def is_protected(self, patient_id: str) -> bool:
        """Whether a patient is protected from recycling."""
        with self.engine.connect() as conn:
            return bool(self._row(conn, "Patient", patient_id).protected)

    # ---------------------------------------------------------------------------- statistics
    def statistics(self) -> dict[str, Any]:
        """Counts and sizes of the whole store (``GET /statistics``)."""
        with self.engine.connect() as conn:
            counts = {level: conn.execute(sa.select(sa.func.count()).select_from(TABLES[level]))
                      .scalar_one() for level in LEVELS}
            size = self._total(conn, _DISK_SIZE)
        return {
            "CountInstances": counts["Instance"],
            "CountPatients": counts["Patient"],
            "CountSeries": counts["Series"],
            "CountStudies": counts["Study"],
            "TotalDiskSize": str(size),
            "TotalDiskSizeMB": size // recycle.MB,
            "TotalUncompressedSize": str(size),
            "TotalUncompressedSizeMB": size // recycle.MB,
        }

    def resource_statistics(self, level: str, public_id: str) -> dict[str, Any]:
        """Counts and sizes under one resource (``GET /{level}/{id}/statistics``)."""
        level = normalize_level(level)
        inst, ser, stu = instances_table, series_table, studies_table
        _, joined = self._instances_query(level, public_id)
        with self.engine.connect() as conn:
            self._row(conn, level, public_id)
            row = conn.execute(
                sa.select(sa.func.count(inst.c.pk),
                          sa.func.coalesce(sa.func.sum(inst.c.file_size), 0),
                          sa.func.count(sa.distinct(ser.c.pk)),
                          sa.func.count(sa.distinct(stu.c.pk)))
                .select_from(joined).where(TABLES[level].c.public_id == public_id)).one()
        count, size, n_series, n_studies = row
        result: dict[str, Any] = {
            "CountInstances": count,
            # Files are stored as received: DICOM size = disk size = uncompressed size.
            "DicomDiskSize": str(size),
            "DicomDiskSizeMB": size // recycle.MB,
            "DicomUncompressedSize": str(size),
            "DicomUncompressedSizeMB": size // recycle.MB,
            "DiskSize": str(size),
            "DiskSizeMB": size // recycle.MB,
            "UncompressedSize": str(size),
            "UncompressedSizeMB": size // recycle.MB,
        }
        if level in ("Patient", "Study"):
            result["CountSeries"] = n_series
        if level == "Patient":
            result["CountStudies"] = n_studies
        return dict(sorted(result.items()))

    def changes(self, *, since: int = 0, limit: int = 100, last: bool = False
                ) -> dict[str, Any]:
        """The change log (``GET /changes``)."""
        with self.engine.connect() as conn:
            last_seq = conn.execute(sa.select(sa.func.max(changes.c.seq))).scalar() or 0
            if last:
                query = sa.select(changes).order_by(changes.c.seq.desc()).limit(1)
            else:
                query = (sa.select(changes).where(changes.c.seq > since)
                         .order_by(changes.c.seq).limit(limit))
            rows = list(conn.execute(query))
        items = [{
            "ChangeType": row.change_type,
            "Date": row.date,
            "ID": row.public_id,
            "Path": f"/{_plural(row.resource_type)}/{row.public_id}",
            "ResourceType": row.resource_type,
            "Seq": row.seq,
        } for row in rows]
        done = last or not rows or rows[-1].seq >= last_seq
        return {"Changes": items, "Done": done,
                "Last": rows[-1].seq if rows else (last_seq if last else since)}

    def _announce_stable(self, resources: list[tuple[str, str]]) -> None:
        """Log ``Stable<Level>`` changes for the resources (those still indexed)."""
        with self._writing() as conn:
            items = [
                (f"Stable{level}", level, public_id)
                for level, public_id in resources
                if conn.execute(_PK_BY_ID[level], {"public_id": public_id}).first() is not None
            ]
            self._log_changes(conn, items, _now()[0])

    # ---------------------------------------------------------------------------- reconcile
    def reconcile(self) -> ReconcileReport:
        """Bring files and rows back in agreement (see :func:`workbench.pacs.reconcile.reconcile`).

        Returns
        -------
        ReconcileReport
            What was repaired; also logged.
        """
        from .reconcile import reconcile

        return reconcile(self)

    def close(self) -> None:
        """Release database connections and the store lock.

        Resources not yet stable are not announced (as when Orthanc stops).
        """
        self._stability.stop()
        self.engine.dispose()
        self._store_lock.release()


# Statements of the hot paths, built once (SQLAlchemy then reuses their compiled form).
_PK_BY_ID = {level: sa.select(table.c.pk).where(table.c.public_id == sa.bindparam("public_id"))
             for level, table in TABLES.items()}
_TOUCH = {level: table.update().where(table.c.pk == sa.bindparam("b_pk"))
          for level, table in TABLES.items()}
_TOUCH_PATIENT = _TOUCH["Patient"]
_MAX_RECYCLING_ORDER = sa.select(sa.func.max(patients.c.recycling_order))
# What ingesting an instance needs to know before writing, in one statement rather than five:
# whether the instance and its parents exist (their keys), and the next recycling order.
_LOOKUP = sa.select(
    *(sa.select(table.c.pk).where(table.c.public_id == sa.bindparam(name)).scalar_subquery()
      for name, table in (("instance", instances_table), ("patient", patients),
                          ("study", studies_table), ("series", series_table))),
    _MAX_RECYCLING_ORDER.scalar_subquery(),
)
_ADD_TOTAL = (totals.update().where(totals.c.name == sa.bindparam("b_name"))
              .values(value=totals.c.value + sa.bindparam("delta")))
_ROW_BY_ID = {level: sa.select(table).where(table.c.public_id == sa.bindparam("public_id"))
              for level, table in TABLES.items()}
_PUBLIC_ID_BY_PK = {level: sa.select(table.c.public_id).where(table.c.pk == sa.bindparam("pk"))
                    for level, table in TABLES.items()}
_CHILD_IDS = {
    level: sa.select(TABLES[child].c.public_id)
    .where(TABLES[child].c.parent_pk == sa.bindparam("parent_pk"))
    .order_by(TABLES[child].c.pk)
    for level, child in CHILD.items()
}


def _record_ids(record: dict[str, str]) -> tuple[str, str, str, str]:
    try:
        return resource_ids(record.get("PatientID", ""), record["StudyInstanceUID"],
                            record["SeriesInstanceUID"], record["SOPInstanceUID"])
    except KeyError as exc:
        raise BadRequestError(f"Record lacks {exc.args[0]}") from exc


def _owner_level(level: str, keyword: str) -> str | None:
    """The level at or above ``level`` whose table stores ``keyword``."""
    for candidate in reversed(LEVELS[: LEVELS.index(level) + 1]):
        if keyword in MAIN_TAGS[candidate] or keyword in EXTRA_TAGS[candidate]:
            return candidate
    return None


def _main_tags(level: str, row) -> dict[str, str]:
    mapping = row._mapping
    return {k: mapping[k] for k in sorted(MAIN_TAGS[level]) if mapping[k] is not None}


def _plural(level: str) -> str:
    return {"Patient": "patients", "Study": "studies", "Series": "series",
            "Instance": "instances"}[level]
