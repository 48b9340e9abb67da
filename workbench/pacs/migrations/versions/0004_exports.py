"""The log of instances sent to modalities (Orthanc's ``/exports``).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exports",
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


def downgrade() -> None:
    op.drop_table("exports")
