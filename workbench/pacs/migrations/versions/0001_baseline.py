"""Baseline: the index as ``metadata.create_all`` made it before migrations existed.

The tables are spelled out here, not taken from :mod:`workbench.pacs.schema`, so that later
revisions change what this one made and a new database passes through the same steps as an
old one.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The tag columns of each level as they were (workbench.pacs.tags at the time), frozen here.
# fmt: off
PATIENT_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "OtherPatientIDs")
STUDY_TAGS = (
    "StudyDate", "StudyTime", "StudyID", "StudyDescription", "AccessionNumber",
    "StudyInstanceUID", "RequestedProcedureDescription", "InstitutionName",
    "RequestingPhysician", "ReferringPhysicianName", *PATIENT_TAGS,
)
SERIES_TAGS = (
    "SeriesDate", "SeriesTime", "Modality", "Manufacturer", "StationName", "SeriesDescription",
    "BodyPartExamined", "SequenceName", "ProtocolName", "SeriesNumber", "CardiacNumberOfImages",
    "ImagesInAcquisition", "NumberOfTemporalPositions", "NumberOfSlices", "NumberOfTimeSlices",
    "SeriesInstanceUID", "ImageOrientationPatient", "SeriesType", "OperatorsName",
    "PerformedProcedureStepDescription", "AcquisitionDeviceProcessingDescription",
    "ContrastBolusAgent",
)
INSTANCE_TAGS = (
    "InstanceCreationDate", "InstanceCreationTime", "AcquisitionNumber", "ImageIndex",
    "InstanceNumber", "NumberOfFrames", "TemporalPositionIdentifier", "SOPInstanceUID",
    "ImagePositionPatient", "ImageOrientationPatient", "ImageComments", "SOPClassUID",
)
# fmt: on
INDEXED_TAGS = {
    "patients": ("PatientID", "PatientName"),
    "studies": (
        "StudyInstanceUID",
        "StudyDate",
        "AccessionNumber",
        "StudyDescription",
        "PatientID",
        "PatientName",
    ),
    "series": ("SeriesInstanceUID", "Modality"),
    "instances": ("SOPInstanceUID",),
}


def _level_table(name: str, parent: str | None, tags: tuple[str, ...], *extra: sa.Column):
    columns = [
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("public_id", sa.String(44), nullable=False, unique=True),
    ]
    if parent:
        columns.append(
            sa.Column(
                "parent_pk", sa.Integer, sa.ForeignKey(f"{parent}.pk"), nullable=False, index=True
            )
        )
    columns += [sa.Column(keyword, sa.Text, nullable=True) for keyword in tags]
    columns += [
        sa.Column("last_update", sa.String(15), nullable=False),
        sa.Column("last_update_ts", sa.Float, nullable=False),
        *extra,
    ]
    op.create_table(name, *columns)
    for keyword in INDEXED_TAGS[name]:
        op.create_index(f"ix_{name}_{keyword}", name, [keyword])


def upgrade() -> None:
    _level_table(
        "patients",
        None,
        PATIENT_TAGS,
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("recycling_order", sa.Integer, nullable=False, index=True),
    )
    _level_table("studies", "patients", STUDY_TAGS)
    _level_table(
        "series", "studies", SERIES_TAGS, sa.Column("expected_instances", sa.Integer, nullable=True)
    )
    _level_table(
        "instances",
        "series",
        INSTANCE_TAGS,
        sa.Column("file_uuid", sa.String(36), nullable=True, unique=True),
        sa.Column("file_size", sa.BigInteger, nullable=False),
        sa.Column("transfer_syntax", sa.Text, nullable=True),
        sa.Column("index_in_series", sa.Integer, nullable=True),
        sa.Column("received", sa.String(15), nullable=False),
        sa.Column("remote_aet", sa.Text, nullable=True),
        sa.Column("origin", sa.Text, nullable=True),
    )
    op.create_table(
        "changes",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("change_type", sa.String(32), nullable=False),
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("public_id", sa.String(44), nullable=False),
        sa.Column("date", sa.String(15), nullable=False),
    )
    op.create_table(
        "totals",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in ("totals", "changes", "instances", "series", "studies", "patients"):
        op.drop_table(name)
