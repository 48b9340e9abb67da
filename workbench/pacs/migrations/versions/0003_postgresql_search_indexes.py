"""PostgreSQL: indexes for searches without case and for wildcards.

A search without case compares ``lower(column COLLATE "und-x-icu")``
(:func:`workbench.pacs.matching.lowered`), so the same expression is indexed, in
``text_pattern_ops`` so that a wildcard with a literal prefix (``doe*``) uses it too. A
case-sensitive wildcard is a ``LIKE`` on the column itself, which an ordinary index serves only
in the "C" collation: the identifiers and descriptions searched that way get a
``text_pattern_ops`` index as well. SQLite has its NOCASE indexes instead (revision 0002).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LOWER_INDEXED_TAGS = {
    "patients": ("PatientID", "PatientName"),
    "studies": ("PatientID", "PatientName", "AccessionNumber", "StudyDescription"),
    "series": ("Modality",),
}
PATTERN_INDEXED_TAGS = {
    "patients": ("PatientID",),
    "studies": ("PatientID", "AccessionNumber", "StudyDescription"),
    "series": ("Modality",),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, keywords in LOWER_INDEXED_TAGS.items():
        for keyword in keywords:
            op.execute(
                f'CREATE INDEX IF NOT EXISTS "ix_{table}_{keyword}_lower" ON "{table}" '
                f'(lower("{keyword}" COLLATE "und-x-icu") text_pattern_ops)'
            )
    for table, keywords in PATTERN_INDEXED_TAGS.items():
        for keyword in keywords:
            op.execute(
                f'CREATE INDEX IF NOT EXISTS "ix_{table}_{keyword}_pattern" ON "{table}" '
                f'("{keyword}" text_pattern_ops)'
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for suffix, tags in (("lower", LOWER_INDEXED_TAGS), ("pattern", PATTERN_INDEXED_TAGS)):
        for table, keywords in tags.items():
            for keyword in keywords:
                op.execute(f'DROP INDEX IF EXISTS "ix_{table}_{keyword}_{suffix}"')
