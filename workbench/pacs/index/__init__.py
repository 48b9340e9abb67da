"""The index: patients → studies → series → instances over a file store and an SQL database.

:class:`Index` is the one object the REST API, the DIMSE node and notebooks share. Behind it,
one module per job: :mod:`.writes` (instances in, resources out, the change log),
:mod:`.reads` (rows, hierarchy, counts), :mod:`.find` (a DICOM query as SQL) and :mod:`.views`
(Orthanc's JSON). Writes are serialised by one lock and kept short (one small transaction per
instance); reads run on their own pooled connections, which SQLite's WAL mode lets proceed
while a write commits.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa

from .. import migrations
from ..config import Config
from ..database import create_engine
from ..errors import InvalidInstanceError, PacsError, UnknownResourceError
from ..importing import ImportSummary, iter_sources, staged_ahead, staged_batches
from ..incoming import IncomingFilter, Refused, admit
from ..parsing import ParsedInstance, parse_instance
from ..reconcile import reconcile
from ..results import IngestResult, ReconcileReport
from ..schema import CHILD, PARENT, totals
from ..schema import changes as changes_table
from ..stability import StabilityMonitor
from ..store import FileStore, StoreLock
from ..tags import LEVELS, normalize_level
from . import attachments as attachment_rows
from . import exports, reads, views
from . import labels as label_rows
from . import metadata as metadata_rows
from . import modalities as modality_rows
from .completion import SeriesCompletion
from .find import find_statement, searchable_keywords
from .writes import Writer, _now

log = logging.getLogger(__name__)

__all__ = [
    "AnswerLookups",
    "ImportSummary",
    "Index",
    "IngestResult",
    "ReconcileReport",
    "searchable_keywords",
]


class AnswerLookups(NamedTuple):
    """What :meth:`Index.answer_lookups` read, by public ID."""

    tags: dict[str, dict[str, str]]
    files: dict[str, Path]
    study_summaries: dict[str, tuple[list[str], int, int]]
    #: Counted level → public ID → number of descendants of that level.
    counts: dict[str, dict[str, int]]


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
        migrations.upgrade(self.engine)
        self._writer = Writer(
            self.engine,
            self.store,
            self.config,
            on_new_instance=self._new_instance,
        )
        self._completion = SeriesCompletion(self.engine, self._log_change)
        # Announces StableSeries/Study/Patient in the change log, as Orthanc does.
        self._stability = StabilityMonitor(self.config.StableAge, self._writer.announce_stable)
        self.last_reconcile: ReconcileReport | None = None
        #: Called with each instance before it is stored (see :mod:`workbench.pacs.incoming`).
        self.incoming_filter: IncomingFilter | None = None
        # Every process using the store holds a shared lock on it; reconciling needs it
        # exclusively, so a second process (say `workbench import` next to a running server)
        # never deletes what the first one is still writing.
        self._store_lock = StoreLock(self.store.root / "store.lock")
        if reconcile:
            if self._store_lock.try_exclusive():
                self.last_reconcile = self.reconcile()
            else:
                log.info("Store %s is in use by another process; not reconciling", self.store.root)
        self._store_lock.share()
        if self.config.DicomModalitiesInDatabase:
            set_aside = self.config.DicomModalities
            self.config.DicomModalities = self.stored_modalities()
            if set_aside and set_aside != self.config.DicomModalities:
                log.warning("DicomModalitiesInDatabase is true: the modalities of the database "
                            "are used, not DicomModalities of the configuration (%s)",
                            ", ".join(sorted(set_aside)))  # fmt: skip

    # ----------------------------------------------------------------------------- writing
    def _new_instance(self, resources: tuple[tuple[str, str], ...]) -> None:
        """Once a new instance is committed: its series, study and patient are not stable
        yet, and its series may now be complete."""
        self._stability.touch(resources)
        self._completion.new_instance(resources[0][1])

    def _log_change(self, change_type: str, level: str, public_id: str) -> None:
        with self._writer.writing() as conn:
            conn.execute(changes_table.insert().values(
                change_type=change_type, resource_type=level, public_id=public_id,
                date=_now()[0]))  # fmt: skip

    @property
    def incoming_dir(self) -> Path:
        """A directory on the storage filesystem where writers put files before ingesting."""
        return self.store.incoming_dir

    def ingest_file(
        self,
        path: str | Path,
        *,
        move: bool = False,
        remote_aet: str | None = None,
        origin: str = "Plugins",
        label: str | None = None,
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
            admit(self.incoming_filter, parsed, remote_aet, origin)
        except (InvalidInstanceError, Refused):
            if move:
                path.unlink(missing_ok=True)
            raise
        return self._writer.store_instance(
            parsed, lambda: self.store.commit_file(path, move=move), remote_aet, origin
        )

    def ingest_received(
        self,
        path: str | Path,
        *,
        remote_aet: str | None = None,
        origin: str = "DicomProtocol",
        label: str | None = None,
    ) -> IngestResult:
        """Store a file a receiver wrote and deletes once this returns (a C-STORE's data set
        as pynetdicom wrote it), and index it (see :meth:`ingest_file`).

        The file is linked into the store and its writeback started before its header is
        parsed (:meth:`.FileStore.link_received`); its rows are written while the disk
        writes it, and committed once it and its name are fsynced; only then is the result
        returned. ``path`` is left in place, unchanged.
        """
        path = Path(path)
        linked = self.store.link_received(path)
        try:
            parsed = parse_instance(path, label)
            admit(self.incoming_filter, parsed, remote_aet, origin)
        except BaseException:
            linked.discard()
            raise
        return self._writer.store_pending(parsed, linked, remote_aet, origin)

    def ingest_files(
        self,
        paths: list[Path],
        *,
        remote_aet: str | None = None,
        origin: str = "Plugins",
        labels: list[str] | None = None,
        parsed: list[ParsedInstance | None] | None = None,
        names: list[str | None] | None = None,
        check: Callable[[ParsedInstance], None] | None = None,
    ) -> list[tuple[ParsedInstance | None, IngestResult | PacsError]]:
        """Store many files of :attr:`incoming_dir` as one batch: two syncs of the store for
        all the files and one transaction for all the rows, inserted while the files are
        synced and committed once they are durable (see :meth:`ingest_file`).

        Parameters
        ----------
        paths : list of Path
            Files on the storage filesystem; each is consumed (moved in, or deleted).
        remote_aet, origin : str, optional
            Provenance, as for :meth:`ingest_file`.
        labels : list of str, optional
            How error messages name each file.
        parsed : list of ParsedInstance or None, optional
            The headers already read (from the bytes the files were written from, say);
            a file whose entry is ``None`` is read here.
        names : list of str or None, optional
            Store names given by :meth:`FileStore.batch_names` (``None``: a new one).
        check : callable, optional
            Called with each parsed instance before it is stored; a :class:`PacsError` it
            raises refuses that instance alone.

        Returns
        -------
        list of (ParsedInstance or None, IngestResult or PacsError)
            One outcome per path, in order: the parsed header (``None`` when the file could
            not be read) and the result, or the error that refused the instance. Returned
            once every stored file is durable and every row committed.
        """
        outcomes: list[tuple[ParsedInstance | None, IngestResult | PacsError]] = []
        accepted: list[tuple[int, ParsedInstance, Path]] = []
        for position, path in enumerate(paths):
            header = parsed[position] if parsed else None
            try:
                if header is None:
                    header = parse_instance(path, labels[position] if labels else None)
                admit(self.incoming_filter, header, remote_aet, origin)
                if check is not None:
                    check(header)
            except PacsError as exc:
                path.unlink(missing_ok=True)
                outcomes.append((header, exc))
                continue
            outcomes.append((header, PacsError("not stored")))  # replaced below
            accepted.append((position, header, path))
        sources = [path for _, _, path in accepted]
        fresh = self.store.batch_names()
        chosen = [(names[position] if names else None) or next(fresh)
                  for position, _, _ in accepted]  # fmt: skip
        try:
            sizes = [path.stat().st_size for path in sources]
        except BaseException:
            for path in sources:
                path.unlink(missing_ok=True)
            raise
        # The rows are inserted while the files are made durable, and committed after.
        durable = self.store.start_commit_files(sources, chosen)
        results = self._writer.store_batch(
            [(parsed, name, size)
             for (_, parsed, _), name, size in zip(accepted, chosen, sizes, strict=True)],
            remote_aet,
            origin,
            durable=durable,
        )  # fmt: skip
        if durable.exception() is not None:  # every instance refused: nothing was kept
            for path in sources:
                path.unlink(missing_ok=True)
        for (position, parsed, _), result in zip(accepted, results, strict=True):
            outcomes[position] = (parsed, result)
        return outcomes

    def ingest_bytes(
        self,
        data: bytes,
        *,
        remote_aet: str | None = None,
        origin: str = "Plugins",
        label: str | None = None,
    ) -> IngestResult:
        """Store one DICOM Part-10 file given as bytes (see :meth:`ingest_file`).

        The header is parsed from memory and the bytes are written once, straight to the
        temporary file that is renamed into the store.
        """
        parsed = parse_instance(data, label or f"uploaded data ({len(data)} bytes)")
        admit(self.incoming_filter, parsed, remote_aet, origin)
        return self._writer.store_instance(
            parsed, lambda: self.store.commit_bytes(data), remote_aet, origin
        )

    def import_path(
        self, *paths: str | Path, progress: bool = True, recursive: bool = True
    ) -> ImportSummary:
        """Import files, folders and ZIP archives; bad files are reported, not fatal.

        Files are copied into the store in batches (see :func:`.importing.staged_batches`;
        the next batch is copied while one is read and indexed), each made durable by one
        sync of the store and indexed in one transaction, as :meth:`ingest_files` does; an
        instance refused (not DICOM, filtered out, no room) is noted in the summary's errors
        with the reason.

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
        bar = tqdm(total=len(sources), disable=not progress, unit="file", desc="Importing")
        # Closed at once if indexing fails: the batch staged ahead leaves the store then.
        staged = staged_ahead(staged_batches(sources, self.store, summary.errors))
        with bar, contextlib.closing(staged):
            for batch in staged:
                outcomes = self.ingest_files(batch.paths, origin="Plugins", labels=batch.labels,
                                             names=batch.names)  # fmt: skip
                for label, (_, outcome) in zip(batch.labels, outcomes, strict=True):
                    if isinstance(outcome, PacsError):
                        summary.errors[label] = str(outcome)
                    else:
                        summary.results.append(outcome)
                bar.update(len(batch.paths) + batch.unreadable)
        return summary

    def index_records(self, records: Iterable[dict[str, str]], *, batch_size: int = 5000) -> int:
        """Index instances from tag dictionaries alone, without files, in bulk.

        Meant for migrations, tests and benchmarks that need a large index quickly: each
        record maps keywords to values and must hold StudyInstanceUID, SeriesInstanceUID and
        SOPInstanceUID (PatientID defaults to ""). Such instances have no file (``/file``
        answers 404). Existing instances are skipped. Returns the number of rows inserted.
        """
        return self._writer.index_records(records, batch_size=batch_size)

    def reindex_stored_file(self, file_uuid: str) -> IngestResult | None:
        """Index a file that is in the store but has no row (as after a crash between the
        file's rename and the commit).

        Returns
        -------
        IngestResult or None
            ``None`` when the instance is indexed already; the file was then a leftover copy
            and is removed.

        Raises
        ------
        InvalidInstanceError
            If the file is not a storable DICOM instance (it is left where it is).
        """
        return self._writer.index_stored_file(file_uuid)

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
        return self._writer.delete(normalize_level(level), public_id)

    def set_protected(self, patient_id: str, protected: bool) -> None:
        """Protect a patient from recycling (or remove the protection)."""
        self._writer.set_protected(patient_id, protected)

    def user_metadata(self, level: str, public_id: str) -> dict[str, tuple[str, int]]:
        """Name → (value, revision) of a resource's user metadata (indexes 1024-65535)."""
        with self.engine.connect() as conn:
            return metadata_rows.values(conn, normalize_level(level), public_id)

    def put_metadata(self, level: str, public_id: str, name: str, value: str,
                     if_match: int | None = None) -> int:  # fmt: skip
        """Store user metadata ``name``; return its revision (0, then one more per change).

        Raises
        ------
        RevisionConflictError
            ``if_match`` is not the stored revision.
        """
        return self._writer.put_metadata(normalize_level(level), public_id, name, value,
                                         if_match)  # fmt: skip

    def delete_metadata(self, level: str, public_id: str, name: str,
                        if_match: int | None = None) -> None:  # fmt: skip
        """Delete user metadata ``name`` (a 404 if the resource has none by that name)."""
        self._writer.delete_metadata(normalize_level(level), public_id, name, if_match)

    def user_attachments(self, level: str, public_id: str) -> list[attachment_rows.Attachment]:
        """A resource's user attachments (content types 1024-65535), without their bytes."""
        with self.engine.connect() as conn:
            return attachment_rows.listing(conn, normalize_level(level), public_id)

    def user_attachment(self, level: str, public_id: str, content_type: int,
                        with_data: bool = False) -> attachment_rows.Attachment:  # fmt: skip
        """One user attachment (a 404 if the resource has none of that type)."""
        with self.engine.connect() as conn:
            return attachment_rows.one(conn, normalize_level(level), public_id, content_type,
                                       with_data)  # fmt: skip

    def put_attachment(self, level: str, public_id: str, content_type: int, data: bytes,
                       if_match: int | None = None) -> attachment_rows.Attachment:  # fmt: skip
        """Store a user attachment; a 409 if ``if_match`` is not its stored revision."""
        with self._writer.writing() as conn:
            return attachment_rows.put(conn, normalize_level(level), public_id, content_type,
                                       data, if_match)  # fmt: skip

    def delete_attachment(self, level: str, public_id: str, content_type: int,
                          if_match: int | None = None) -> None:  # fmt: skip
        """Delete a user attachment (a 404 if there is none, 409 on a stale revision)."""
        with self._writer.writing() as conn:
            attachment_rows.delete(conn, normalize_level(level), public_id, content_type,
                                   if_match)  # fmt: skip

    def stored_modalities(self) -> dict[str, Any]:
        """The DICOM modalities kept in the database (``DicomModalitiesInDatabase``), by name,
        each as declared (``[AET, host, port]`` or Orthanc's object form)."""
        with self.engine.connect() as conn:
            return modality_rows.declared(conn)

    def store_modality(self, name: str, definition: Any) -> None:
        """Keep the declaration of modality ``name`` in the database (replacing any)."""
        with self._writer.writing() as conn:
            modality_rows.save(conn, name, definition)

    def forget_modality(self, name: str) -> None:
        """Remove modality ``name`` from the database."""
        with self._writer.writing() as conn:
            modality_rows.forget(conn, name)

    def add_label(self, level: str, public_id: str, label: str) -> None:
        """Give a resource a label (Orthanc 1.12); a 400 for an invalid label."""
        self._writer.set_label(normalize_level(level), public_id, label, True)

    def remove_label(self, level: str, public_id: str, label: str) -> None:
        """Take a label off a resource (nothing happens if it did not have it)."""
        self._writer.set_label(normalize_level(level), public_id, label, False)

    def labels(self, level: str | None = None, public_id: str | None = None) -> list[str]:
        """The labels of one resource, or with no resource every label in use, sorted."""
        with self.engine.connect() as conn:
            if public_id is None:
                return label_rows.every_label(conn)
            return label_rows.of_resource(conn, normalize_level(level), public_id)

    def with_labels(self, level: str, public_ids: list[str], wanted: list[str],
                    constraint: str = "All") -> list[str]:  # fmt: skip
        """Those of ``public_ids`` having all (``"All"``), any (``"Any"``) or none
        (``"None"``) of the ``wanted`` labels, order kept."""
        with self.engine.connect() as conn:
            return label_rows.matching(conn, normalize_level(level), public_ids, wanted,
                                       constraint)  # fmt: skip

    def is_protected(self, patient_id: str) -> bool:
        """Whether a patient is protected from recycling."""
        with self.engine.connect() as conn:
            return bool(reads.row(conn, "Patient", patient_id).protected)

    # ------------------------------------------------------------------------------ reading
    def exists(self, level: str, public_id: str) -> bool:
        """Whether a resource of ``level`` has ID ``public_id``."""
        with self.engine.connect() as conn:
            return reads.exists(conn, normalize_level(level), public_id)

    def level_of(self, public_id: str) -> str | None:
        """The level holding ``public_id`` (Orthanc IDs never repeat across levels), or None."""
        with self.engine.connect() as conn:
            return next((level for level in LEVELS if reads.exists(conn, level, public_id)), None)

    def main_dicom_tags(self, level: str, public_id: str) -> dict[str, str]:
        """The main DICOM tags of a resource at its own level, as Orthanc lists them."""
        level = normalize_level(level)
        with self.engine.connect() as conn:
            return views.main_tags(level, reads.row(conn, level, public_id))

    def resource(self, level: str, public_id: str) -> dict[str, Any]:
        """The Orthanc JSON of ``GET /{level}/{id}``."""
        level = normalize_level(level)
        with self.engine.connect() as conn:
            row = reads.row(conn, level, public_id)
            return views.resource(conn, level, row, self.config.StableAge)

    def resources(self, level: str, public_ids: list[str]) -> list[dict[str, Any]]:
        """The Orthanc JSON of several resources of one level (``?expand``)."""
        level = normalize_level(level)
        with self.engine.connect() as conn:
            rows = reads.rows(conn, level, public_ids)
            labels = label_rows.of_rows(conn, level, [row.pk for row in rows.values()])
            stable_age = self.config.StableAge
            return [
                views.resource(conn, level, rows[i], stable_age, labels.get(rows[i].pk, []))
                for i in public_ids
                if i in rows
            ]

    def list_ids(
        self, level: str, *, limit: int | None = None, since: int | None = None
    ) -> list[str]:
        """IDs of every resource of ``level`` in insertion order (``GET /patients``)."""
        with self.engine.connect() as conn:
            return reads.list_ids(conn, normalize_level(level), limit=limit, since=since)

    def children(self, level: str, public_id: str) -> list[str]:
        """IDs of the direct children of a resource (empty for an instance)."""
        level = normalize_level(level)
        if level not in CHILD:
            return []
        with self.engine.connect() as conn:
            return reads.child_ids(conn, level, reads.row(conn, level, public_id).pk)

    def parent(self, level: str, public_id: str) -> str | None:
        """ID of the parent of a resource (``None`` for a patient)."""
        level = normalize_level(level)
        if level not in PARENT:
            return None
        with self.engine.connect() as conn:
            return reads.parent_row(conn, level, reads.row(conn, level, public_id).pk).public_id

    def ancestor(self, level: str, public_id: str, target_level: str) -> str:
        """ID of the ancestor at ``target_level`` (or the resource itself)."""
        with self.engine.connect() as conn:
            return reads.ancestor(
                conn, normalize_level(level), public_id, normalize_level(target_level)
            )

    def instances_of(self, level: str, public_id: str) -> list[str]:
        """IDs of every instance under a resource, ordered by series then index in series."""
        with self.engine.connect() as conn:
            rows = reads.instance_rows(conn, normalize_level(level), public_id)
        return [row.public_id for row in rows]

    def instance_files(
        self, level: str, public_id: str, limit: int | None = None
    ) -> list[tuple[str, Path]]:
        """``(instance ID, file path)`` of every instance under a resource that has a file
        (of the first ``limit`` instances, in series order)."""
        with self.engine.connect() as conn:
            rows = reads.instance_rows(conn, normalize_level(level), public_id, limit)
        return [(row.public_id, self.store.path_of(row.file_uuid)) for row in rows if row.file_uuid]

    def by_uids(self, level: str, uids: dict[str, str]) -> tuple[str, Path | None] | None:
        """The resource of ``level`` named by its UID and its parents' (``{"Study": ...,
        "Series": ..., "Instance": ...}`` down to ``level``) in one query: its ID and, for an
        instance with a file, the file's path. ``None`` if nothing stored has these UIDs.

        UIDs are compared exactly (:meth:`find` also reads lists and empty values).
        """
        level = normalize_level(level)
        with self.engine.connect() as conn:
            found = reads.by_uids(conn, level, uids)
        if found is None:
            return None
        public_id, file_uuid = found
        return public_id, self.store.path_of(file_uuid) if file_uuid else None

    def representative_files(self, level: str, public_ids: list[str]) -> dict[str, Path]:
        """The file of one instance under each resource, in one query: where attributes that
        all its instances share and the index does not keep are read."""
        with self.engine.connect() as conn:
            found = reads.representative_files(conn, normalize_level(level), public_ids)
        return {public_id: self.store.path_of(uuid) for public_id, uuid in found.items()}

    def stored_files(self) -> dict[str, str]:
        """File UUID → instance ID of every indexed instance that has a file."""
        with self.engine.connect() as conn:
            return reads.stored_files(conn)

    def instance_path(self, instance_id: str) -> Path:
        """Path of the stored file of an instance.

        Raises
        ------
        UnknownResourceError
            If the instance is unknown or has no file (bulk-indexed rows).
        """
        with self.engine.connect() as conn:
            row = reads.row(conn, "Instance", instance_id)
        if not row.file_uuid:
            raise UnknownResourceError("Instance", instance_id)
        return self.store.path_of(row.file_uuid)

    def instance_info(self, instance_id: str) -> dict[str, Any]:
        """Internal facts about an instance: transfer syntax, SOP class, reception, origin."""
        with self.engine.connect() as conn:
            return views.instance_info(reads.row(conn, "Instance", instance_id))

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

        ``/tools/find`` and C-FIND both search through here.

        Parameters
        ----------
        level : str
            "Patient", "Study", "Series" or "Instance".
        query : dict
            Keyword (or "gggg,eeee") → DICOM matching pattern: single value, ``*``/``?``
            wildcards, ranges ``A-B``/``-B``/``A-`` for DA/TM/DT, backslash-separated lists.
            Attributes of the level and of the levels above it may be used, plus
            ``ModalitiesInStudy`` at study level (see :func:`searchable_keywords`).
        case_sensitive : bool
            Case sensitivity of non-PN attributes (PN is always case-insensitive).
        limit, since : int, optional
            Paging, in the order resources were created (unordered without paging).

        Raises
        ------
        BadRequestError
            For an unknown level or tag, a tag below ``level``, or a malformed pattern.
        """
        statement = self.find_statement(
            level, query, case_sensitive=case_sensitive, limit=limit, since=since
        )
        with self.engine.connect() as conn:
            return list(conn.execute(statement).scalars())

    def find_statement(
        self,
        level: str,
        query: dict[str, str],
        *,
        case_sensitive: bool = True,
        limit: int | None = None,
        since: int | None = None,
    ):
        """The SELECT of :meth:`find` (public IDs), for callers that need more columns."""
        return find_statement(
            level,
            query,
            case_sensitive=case_sensitive,
            limit=limit,
            since=since,
            dialect=self.engine.dialect.name,
        )

    def tags_with_parents(self, level: str, public_ids: list[str]) -> dict[str, dict[str, str]]:
        """The stored tags of many resources of ``level``, each merged with its parents'
        (its own win on a clash), read in a few joined queries. Absent tags are left out."""
        with self.engine.connect() as conn:
            return reads.tags_with_parents(conn, normalize_level(level), public_ids)

    def answer_lookups(
        self,
        level: str,
        public_ids: list[str],
        *,
        files: bool = False,
        summaries: bool = False,
        counted: tuple[str, ...] = (),
    ) -> AnswerLookups:
        """What answers about many resources read from the index, on one connection: the
        tags with parents (:meth:`tags_with_parents`), with ``files`` a file of each
        (:meth:`representative_files`), with ``summaries`` each study's
        (:meth:`study_summaries`; ``level`` is then ``"Study"``), and the number of
        descendants of each level in ``counted`` (:meth:`descendant_counts`)."""
        level = normalize_level(level)
        with self.engine.connect() as conn:
            tags, found = reads.tags_and_files(conn, level, public_ids, files=files)
            studies = reads.study_summaries(conn, public_ids) if summaries else {}
            counts = {
                below: reads.descendant_counts(conn, level, normalize_level(below), public_ids)
                for below in counted
            }
        paths = {public_id: self.store.path_of(uuid) for public_id, uuid in found.items()}
        return AnswerLookups(tags, paths, studies, counts)

    def descendant_counts(self, level: str, counted: str, public_ids: list[str]) -> dict[str, int]:
        """Number of descendants of level ``counted`` of each of ``public_ids``."""
        with self.engine.connect() as conn:
            return reads.descendant_counts(
                conn, normalize_level(level), normalize_level(counted), public_ids
            )

    def modalities_in_studies(self, study_ids: list[str]) -> dict[str, list[str]]:
        """The distinct modalities of each study's series, in series order."""
        with self.engine.connect() as conn:
            return reads.modalities_in_studies(conn, study_ids)

    def study_summaries(self, study_ids: list[str]) -> dict[str, tuple[list[str], int, int]]:
        """(modalities in series order, series count, instance count) of each study, in one
        query."""
        with self.engine.connect() as conn:
            return reads.study_summaries(conn, study_ids)

    def lookup(self, value: str) -> list[dict[str, str]]:
        """Resources whose DICOM identifier equals ``value`` (Orthanc's ``/tools/lookup``)."""
        with self.engine.connect() as conn:
            found = reads.lookup(conn, value.strip())
        return [views.reference(level, public_id) for level, public_id in found]

    def modify(self, level: str, public_id: str, request: dict[str, Any] | None = None,
               ) -> dict[str, Any]:  # fmt: skip
        """Store a modified copy of a resource, as Orthanc's ``POST /{level}/{id}/modify``.

        Parameters
        ----------
        level, public_id : str
            The resource.
        request : dict, optional
            Orthanc's options: ``Replace``, ``Remove``, ``Keep``, ``Force``,
            ``RemovePrivateTags``, ``PrivateCreator``, ``Transcode``, ``KeepSource``.

        Returns
        -------
        dict
            Orthanc's answer: ``ID``, ``Path``, ``PatientID``, ``Type`` of the copy...
        """
        from ..modification import Modification

        level = normalize_level(level)
        request = {} if request is None else request
        modification = Modification.from_modify_request(request, level)
        return self.store_modified(level, public_id, modification, request)

    def anonymize(self, level: str, public_id: str, request: dict[str, Any] | None = None,
                  *, patient_id: str | None = None, patient_name: str | None = None,
                  ) -> dict[str, Any]:  # fmt: skip
        """Store an anonymized copy of a resource (PS3.15 Basic Profile, as Orthanc's
        ``POST /{level}/{id}/anonymize``); return the new one.

        Parameters
        ----------
        level, public_id : str
            The resource.
        request : dict, optional
            Orthanc's options: ``Keep``, ``Replace``, ``Remove``, ``KeepPrivateTags``,
            ``DicomVersion``, ``Force``, ``PrivateCreator``, ``Transcode``, ``KeepSource``.
        patient_id, patient_name : str, optional
            The new patient's ID and name (shortcuts for ``Replace``).

        Returns
        -------
        dict
            Orthanc's answer: ``ID``, ``Path``, ``PatientID``, ``Type`` of the copy...
        """
        request = dict(request or {})
        shortcuts = {"PatientID": patient_id, "PatientName": patient_name}
        if any(shortcuts.values()):
            request["Replace"] = {**{k: v for k, v in shortcuts.items() if v},
                                  **request.get("Replace", {})}  # fmt: skip
            request["Force"] = True
        modification = self.anonymization(request)
        return self.store_modified(normalize_level(level), public_id, modification, request)

    def anonymization(self, request: dict[str, Any]):
        """The :class:`~workbench.pacs.modification.Modification` an anonymize request asks
        for, the patient named ``Anonymized<n>`` (this server's next ``n``) unless it says."""
        from ..anonymize import anonymization, name_patient
        from ..resource_modification import ANONYMIZATION_SEQUENCE

        modification, named = anonymization(request)
        if not named:
            name_patient(modification, self._writer.next_in_sequence(ANONYMIZATION_SEQUENCE))
        return modification

    def store_modified(self, level: str, public_id: str, modification,
                       request: dict[str, Any], job=None) -> dict[str, Any]:  # fmt: skip
        """Store a modified copy of a resource (``Transcode``, ``KeepSource``, ``Permissive``
        read from ``request``); Orthanc's answer."""
        from ..resource_modification import Options, modify_resource

        self.resource(level, public_id)  # 404 before any work
        return modify_resource(self, level, public_id, modification, Options.of(request), job)

    def server_metadata(self, level: str, public_id: str) -> dict[str, str]:
        """The metadata the server wrote on a resource (``ModifiedFrom``, ``AnonymizedFrom``)."""
        with self.engine.connect() as conn:
            return metadata_rows.server_values(conn, normalize_level(level), public_id)

    def put_server_metadata(self, level: str, public_id: str, name: str, value: str) -> None:
        """Record where a resource comes from (``ModifiedFrom``/``AnonymizedFrom``), once."""
        self._writer.put_server_metadata(normalize_level(level), public_id, name, value)

    # ---------------------------------------------------------------------------- statistics
    def statistics(self) -> dict[str, Any]:
        """Counts and sizes of the whole store (``GET /statistics``)."""
        with self.engine.connect() as conn:
            counts = reads.counts(conn)
            size = reads.total(conn, reads.DISK_SIZE)
        return views.statistics(counts, size)

    def resource_statistics(self, level: str, public_id: str) -> dict[str, Any]:
        """Counts and sizes under one resource (``GET /{level}/{id}/statistics``)."""
        level = normalize_level(level)
        with self.engine.connect() as conn:
            counts = reads.resource_counts(conn, level, public_id)
        return views.resource_statistics(level, *counts)

    def changes(self, *, since: int = 0, limit: int = 100, last: bool = False,
                every: bool = False) -> dict[str, Any]:  # fmt: skip
        """The change log (``GET /changes``): as Orthanc, the changes of resources still
        indexed and no ``Deleted``; ``every`` shows every row (what hooks follow)."""
        with self.engine.connect() as conn:
            rows, done, last_seq = reads.change_rows(conn, since=since, limit=limit, last=last,
                                                     every=every)  # fmt: skip
        return views.changes(rows, done, last_seq)

    def clear_changes(self) -> None:
        """Empty ``/changes`` (``DELETE /changes``): what was logged so far is no longer
        shown; hooks still follow every row."""
        with self._writer.writing() as conn:
            last = conn.execute(sa.select(sa.func.max(changes_table.c.seq))).scalar() or 0
            floor = totals.c.name == reads.CHANGES_CLEARED_TO
            if conn.execute(totals.update().where(floor).values(value=last)).rowcount == 0:
                conn.execute(totals.insert().values(name=reads.CHANGES_CLEARED_TO, value=last))

    def log_exports(self, modality: str, resources: list[tuple[str, str]]) -> None:
        """Note resources ((level, ID) pairs) as sent to ``modality``, when
        ``LogExportedResources`` is on."""
        if not self.config.LogExportedResources or not resources:
            return
        rows = [
            (level, public_id, self.tags_with_parents(level, [public_id]).get(public_id, {}))
            for level, public_id in resources
        ]
        with self._writer.writing() as conn:
            exports.log(conn, modality, rows, _now()[0])

    def exports(self, *, since: int = 0, limit: int = 100, last: bool = False) -> dict[str, Any]:
        """The export log (``GET /exports``)."""
        with self.engine.connect() as conn:
            return exports.page(conn, since=since, limit=limit, last=last)

    def clear_exports(self) -> None:
        """Empty the export log (``DELETE /exports``)."""
        with self._writer.writing() as conn:
            exports.clear(conn)

    # --------------------------------------------------------------------------- lifecycle
    def reconcile(self) -> ReconcileReport:
        """Bring files and rows back in agreement (see :func:`workbench.pacs.reconcile.reconcile`).

        Returns
        -------
        ReconcileReport
            What was repaired; also logged.
        """
        return reconcile(self)

    def close(self) -> None:
        """Release database connections and the store lock.

        Resources not yet stable are not announced (as when Orthanc stops).
        """
        self._stability.stop()
        self.store.close()
        self.engine.dispose()
        self._store_lock.release()
