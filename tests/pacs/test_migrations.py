"""The index migrates the database it opens: new, made before migrations, or a revision behind;
on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.pacs.test_index_store import SMALL_FILE, make_instance
from workbench.pacs import Config, Index, migrations
from workbench.pacs.errors import PacsError
from workbench.pacs.schema import metadata

#: An index that one kind of database has and the other lacks (revisions 0002 and 0003).
DIALECT_INDEX = {
    "sqlite": "ix_studies_PatientName_nocase",
    "postgresql": "ix_studies_PatientName_lower",
}


def schema_differences(url: str) -> list:
    """What Alembic's autogenerate would still change to reach :mod:`workbench.pacs.schema`."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": migrations.declared_in_schema}
        )
        differences = compare_metadata(context, metadata)
    engine.dispose()
    return differences


def index_names(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    names = {index["name"] for index in sa.inspect(engine).get_indexes(table)}
    engine.dispose()
    return names


def revision_of(url: str) -> str | None:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        revision = migrations.current_revision(conn)
    engine.dispose()
    return revision


def test_a_new_database_gets_every_revision_and_the_declared_schema(tmp_path, database):
    config = database.config(tmp_path / "store")
    Index(config).close()
    assert revision_of(config.database_url) == migrations.head_revision()
    assert schema_differences(config.database_url) == []
    assert DIALECT_INDEX[database.kind] in index_names(config.database_url, "studies")


#: Tables added by revisions after the baseline: a database made before migrations existed
#: has none of them (revisions 0004-0008).
ADDED_AFTER_BASELINE = {"exports", "labels", "user_metadata", "attachments", "modalities"}


def baseline_tables() -> list[sa.Table]:
    return [t for t in metadata.sorted_tables if t.name not in ADDED_AFTER_BASELINE]


def test_a_database_made_by_create_all_is_stamped_and_keeps_its_rows(tmp_path, database):
    config = database.config(tmp_path / "store")
    config.index_path.mkdir(parents=True)
    # The index as the code made it before migrations existed (and before NOCASE indexes).
    legacy = sa.create_engine(config.database_url)
    metadata.create_all(legacy, tables=baseline_tables())
    with legacy.begin() as conn:
        conn.execute(sa.insert(metadata.tables["totals"]), [{"name": "legacy", "value": 7}])
    legacy.dispose()
    assert revision_of(config.database_url) is None

    index = Index(config)
    index.close()
    assert revision_of(config.database_url) == migrations.head_revision()
    assert schema_differences(config.database_url) == []
    assert DIALECT_INDEX[database.kind] in index_names(config.database_url, "studies")
    engine = sa.create_engine(config.database_url)
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT value FROM totals WHERE name = 'legacy'")).scalar()
    engine.dispose()
    assert kept == 7


def test_instances_of_an_index_without_version_survive_its_adoption(
    tmp_path, sample_data, database
):
    config = database.config(tmp_path / "store")
    index = Index(config)
    stored = index.ingest_bytes(make_instance(sample_data / SMALL_FILE, name="Müller^Anna"))
    index.close()
    engine = sa.create_engine(config.database_url)
    with engine.begin() as conn:  # back to what create_all left: no version, no NOCASE index
        conn.exec_driver_sql("DROP TABLE alembic_version")
        conn.exec_driver_sql(f'DROP INDEX "{DIALECT_INDEX[database.kind]}"')
        for table in ADDED_AFTER_BASELINE:
            conn.exec_driver_sql(f'DROP TABLE "{table}"')
    engine.dispose()

    reopened = Index(config)
    try:
        assert reopened.find("Study", {"PatientName": "müller*"}) == [stored.study_id]
        assert reopened.last_reconcile.files_reindexed == []
    finally:
        reopened.close()
    assert revision_of(config.database_url) == migrations.head_revision()


def test_opening_applies_the_revisions_a_database_lacks(tmp_path, database):
    config = database.config(tmp_path / "store")
    config.index_path.mkdir(parents=True)
    engine = sa.create_engine(config.database_url)
    with engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), migrations.BASELINE)
    engine.dispose()
    assert revision_of(config.database_url) == migrations.BASELINE
    assert DIALECT_INDEX[database.kind] not in index_names(config.database_url, "studies")

    Index(config).close()
    assert revision_of(config.database_url) == migrations.head_revision()
    assert DIALECT_INDEX[database.kind] in index_names(config.database_url, "studies")


def test_a_database_from_a_newer_workbench_is_refused_with_its_revision(tmp_path, database):
    config = database.config(tmp_path / "store")
    Index(config).close()
    engine = sa.create_engine(config.database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(PacsError, match=r"9999.*newer workbench"):
        Index(config)


def test_indexes_opening_one_new_database_at_once_migrate_it_once(tmp_path, database):
    config = database.config(tmp_path / "store")
    config.index_path.mkdir(parents=True)
    url = config.database_url
    errors: list[BaseException] = []

    def open_index(number: int) -> None:
        try:
            Index(
                Config(StorageDirectory=str(tmp_path / f"store{number}"), DatabaseUrl=url),
                reconcile=False,
            ).close()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_index, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert revision_of(url) == migrations.head_revision()
    assert schema_differences(url) == []


def test_an_index_of_the_previous_release_gets_attachments_in_place(
    tmp_path, sample_data, database
):
    """Revision 0007 on an index the previous release made (at 0006, with rows in it)."""
    config = database.config(tmp_path / "store")
    config.index_path.mkdir(parents=True)
    engine = sa.create_engine(config.database_url)
    with engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), "0006")
        assert "attachments" not in sa.inspect(conn).get_table_names()
    engine.dispose()
    assert revision_of(config.database_url) == "0006"

    index = Index(config)
    try:
        assert revision_of(config.database_url) == migrations.head_revision()
        stored = index.ingest_bytes(make_instance(sample_data / SMALL_FILE))
        index.put_metadata("Instance", stored.instance_id, "1024", "kept")
        index.put_attachment("Instance", stored.instance_id, 1024, b"notes")
        assert index.user_attachment("Instance", stored.instance_id, 1024, True).data == b"notes"
        index.delete("Patient", stored.patient_id)
        stored = index.ingest_bytes(make_instance(sample_data / SMALL_FILE))
        assert index.user_attachments("Instance", stored.instance_id) == []
    finally:
        index.close()
