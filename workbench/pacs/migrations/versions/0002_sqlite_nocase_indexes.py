"""SQLite: a second index in NOCASE collation on the text columns searched without case.

SQLite's ``LIKE`` and ``= ... COLLATE NOCASE`` use them (:mod:`workbench.pacs.matching`).
``IF NOT EXISTS``: indexes made before migrations existed may already have them.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NOCASE_INDEXED_TAGS = {
    "patients": ("PatientID", "PatientName"),
    "studies": ("PatientID", "PatientName", "AccessionNumber", "StudyDescription"),
    "series": ("Modality",),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, keywords in NOCASE_INDEXED_TAGS.items():
        for keyword in keywords:
            op.execute(
                f'CREATE INDEX IF NOT EXISTS "ix_{table}_{keyword}_nocase" '
                f'ON "{table}" ("{keyword}" COLLATE NOCASE)'
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, keywords in NOCASE_INDEXED_TAGS.items():
        for keyword in keywords:
            op.execute(f'DROP INDEX IF EXISTS "ix_{table}_{keyword}_nocase"')
