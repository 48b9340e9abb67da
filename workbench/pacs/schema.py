"""SQL schema of the index: one table per level, main DICOM tags as indexed columns.

Orthanc keeps main tags as rows of a generic table; we keep them as typed columns of each
level's table, which lets SQLite (or PostgreSQL) answer UID, identifier, name and date
queries from ordinary B-tree indexes at a million instances.

This is the schema the code reads and writes; databases are brought to it by the revisions of
:mod:`workbench.pacs.migrations` (which also add SQLite's NOCASE indexes), never by
``create_all``.
"""

from __future__ import annotations

import sqlalchemy as sa

from .tags import LEVELS, PLURAL, stored_tags

metadata = sa.MetaData()

#: Tag columns with their own B-tree index (the attributes users search by).
INDEXED_TAGS = {
    "Patient": ("PatientID", "PatientName"),
    "Study": (
        "StudyInstanceUID",
        "StudyDate",
        "AccessionNumber",
        "StudyDescription",
        "PatientID",
        "PatientName",
    ),
    "Series": ("SeriesInstanceUID", "Modality"),
    "Instance": ("SOPInstanceUID",),
}

PARENT = {"Study": "Patient", "Series": "Study", "Instance": "Series"}
CHILD = {"Patient": "Study", "Study": "Series", "Series": "Instance"}


def _level_table(level: str, *extra: sa.Column) -> sa.Table:
    name = PLURAL[level]
    columns = [
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("public_id", sa.String(44), nullable=False, unique=True),
    ]
    if level in PARENT:
        parent_table = PLURAL[PARENT[level]]
        columns.append(
            sa.Column(
                "parent_pk",
                sa.Integer,
                sa.ForeignKey(f"{parent_table}.pk"),
                nullable=False,
                index=True,
            )
        )
    columns += [sa.Column(keyword, sa.Text, nullable=True) for keyword in stored_tags(level)]
    columns += [
        # ISO text "YYYYMMDDTHHMMSS" as Orthanc shows it, UTC.
        sa.Column("last_update", sa.String(15), nullable=False),
        # Seconds since the epoch of the last change; drives IsStable.
        sa.Column("last_update_ts", sa.Float, nullable=False),
    ]
    columns += list(extra)
    table = sa.Table(name, metadata, *columns)
    for keyword in INDEXED_TAGS[level]:
        sa.Index(f"ix_{name}_{keyword}", table.c[keyword])
    return table


patients = _level_table(
    "Patient",
    sa.Column("protected", sa.Boolean, nullable=False, default=False),
    # Monotonic counter bumped when an instance arrives; the lowest is recycled first.
    sa.Column("recycling_order", sa.Integer, nullable=False, index=True),
)
studies = _level_table("Study")
series = _level_table("Series", sa.Column("expected_instances", sa.Integer, nullable=True))
instances = _level_table(
    "Instance",
    # NULL for rows indexed without a file (bulk metadata imports, e.g. benchmarks).
    sa.Column("file_uuid", sa.String(36), nullable=True, unique=True),
    sa.Column("file_size", sa.BigInteger, nullable=False, default=0),
    sa.Column("transfer_syntax", sa.Text, nullable=True),
    sa.Column("index_in_series", sa.Integer, nullable=True),
    sa.Column("received", sa.String(15), nullable=False),
    sa.Column("remote_aet", sa.Text, nullable=True),
    sa.Column("origin", sa.Text, nullable=True),
)

changes = sa.Table(
    "changes",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("change_type", sa.String(32), nullable=False),
    sa.Column("resource_type", sa.String(16), nullable=False),
    sa.Column("public_id", sa.String(44), nullable=False),
    sa.Column("date", sa.String(15), nullable=False),
)

#: Instances sent to modalities, when ``LogExportedResources`` is on (Orthanc's ``/exports``).
exports = sa.Table(
    "exports",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("resource_type", sa.String(16), nullable=False),
    sa.Column("public_id", sa.String(44), nullable=False),
    sa.Column("remote_modality", sa.Text, nullable=False),
    sa.Column("date", sa.String(15), nullable=False),
    sa.Column("patient_id", sa.Text, nullable=True),
    sa.Column("study_instance_uid", sa.Text, nullable=True),
    sa.Column("series_instance_uid", sa.Text, nullable=True),
    sa.Column("sop_instance_uid", sa.Text, nullable=True),
)

#: Labels of resources (Orthanc 1.12): a resource is named by its level and its row's key,
#: so deleting the row deletes its labels in the same transaction (see ``writes``).
labels = sa.Table(
    "labels",
    metadata,
    sa.Column("resource_type", sa.String(16), primary_key=True),
    sa.Column("resource_pk", sa.Integer, primary_key=True),
    sa.Column("label", sa.String(64), primary_key=True),
    sa.Index("ix_labels_label", "label"),
)

#: User metadata of resources (Orthanc's indexes 1024 to 65535), with a revision per value.
user_metadata = sa.Table(
    "user_metadata",
    metadata,
    sa.Column("resource_type", sa.String(16), primary_key=True),
    sa.Column("resource_pk", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(16), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
)

#: User attachments of resources (Orthanc's content types 1024 to 65535): small files a client
#: keeps with a resource, in the database (a resource's DICOM files stay in the store).
attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("resource_type", sa.String(16), primary_key=True),
    sa.Column("resource_pk", sa.Integer, primary_key=True),
    sa.Column("content_type", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("md5", sa.String(32), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
)

#: DICOM modalities declared over REST, with ``DicomModalitiesInDatabase`` (Orthanc's option):
#: each as its REST body (JSON), so they outlive a restart and every node on one database
#: starts with them.
modalities = sa.Table(
    "modalities",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("definition", sa.Text, nullable=False),
)

#: Running totals so /statistics and recycling never scan the instance table.
totals = sa.Table(
    "totals",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

TABLES = {"Patient": patients, "Study": studies, "Series": series, "Instance": instances}
assert set(TABLES) == set(LEVELS)
