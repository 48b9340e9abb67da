"""User metadata of resources (``PUT /{level}/{id}/metadata/{1024..65535}``).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_metadata",
        sa.Column("resource_type", sa.String(16), primary_key=True),
        sa.Column("resource_pk", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(16), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("user_metadata")
