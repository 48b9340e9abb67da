"""Labels of resources (Orthanc 1.12's ``/{level}/{id}/labels``).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("resource_type", sa.String(16), primary_key=True),
        sa.Column("resource_pk", sa.Integer, primary_key=True),
        sa.Column("label", sa.String(64), primary_key=True),
    )
    op.create_index("ix_labels_label", "labels", ["label"])


def downgrade() -> None:
    op.drop_index("ix_labels_label", table_name="labels")
    op.drop_table("labels")
