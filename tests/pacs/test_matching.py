"""PS3.4 C.2.2.2 matching: one table of cases, run against the SQL matcher and its Python twin.

The SQL side runs on the index's own engines, SQLite (with its Unicode lowering function) and
a real PostgreSQL, on a one-column table holding the stored value; the Python side is what
C-FIND applies to attributes the index does not store. All must give the table's answer.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from workbench.pacs.database import create_engine
from workbench.pacs.errors import BadRequestError
from workbench.pacs.matching import condition_for, matches

# (VR, stored value or None when the attribute is absent, query value, case sensitive,
#  expected)
CASES = [
    # universal matching
    ("LO", "ABC", "", True, True),
    ("LO", None, "", True, True),
    ("PN", "DOE^JOHN", "  ", True, True),
    # single value
    ("LO", "ABC", "ABC", True, True),
    ("LO", "ABC", "abc", True, False),
    ("LO", "ABC", "abc", False, True),
    ("LO", "ABC", "ABC  ", True, True),  # padding is not part of the value
    ("LO", "ABC", "AB", True, False),
    ("CS", "CT", "MR", True, False),
    ("DA", "20200315", "20200315", True, True),
    ("DA", "20200315", "20200316", True, False),
    ("UI", "1.2.3", "1.2.3", False, True),
    # PN without case, in any script
    ("PN", "DOE^JOHN", "doe^john", True, True),
    ("PN", "ÉVA^ÅSA", "éva^åsa", True, True),
    ("PN", "éva^åsa", "ÉVA^ÅSA", True, True),
    ("PN", "ΑΘΗΝΑ^ΝΙΚΗ", "αθηνα^νικη", True, True),
    ("PN", "Иванов^Иван", "ИВАНОВ^ИВАН", True, True),
    ("PN", "ÉVA", "eva", True, False),  # an accent is not a case
    ("PN", "STRAßE", "strasse", True, False),
    # wildcards
    ("PN", "DOE^JOHN", "doe*", True, True),
    ("PN", "DOE^JOHN", "D?E^J*", True, True),
    ("PN", "DOE^JOHN", "SMITH*", True, False),
    ("PN", "ÉVA^ÅSA", "éva*", True, True),
    ("LO", "ABC", "A*", True, True),
    ("LO", "ABC", "a*", True, False),
    ("LO", "ABC", "a*", False, True),
    ("LO", "ABC", "?B?", True, True),
    ("LO", "ABC", "??", True, False),
    ("LO", "ABC", "*", True, True),
    ("LO", None, "*", True, False),  # "*" matches any value, not an absent attribute
    ("LO", "Head [routine]", "*[routine]", True, True),  # [ is literal
    ("LO", "Knee_left", "Knee_*", True, True),  # so are SQL's _ and %
    ("LO", "Kneeleft", "Knee_*", True, False),
    ("LO", "Knee%", "Knee%", True, True),
    ("LO", "Knee left", "Knee%", True, False),
    ("UI", "1.2.3", "1.2.*", True, False),  # no wildcards in UIDs, dates and times
    # ranges of dates, times and date-times
    ("DA", "20200315", "20200101-20201231", True, True),
    ("DA", "20210101", "20200101-20201231", True, False),
    ("DA", "20200101", "20200101-20201231", True, True),
    ("DA", "20201231", "20200101-20201231", True, True),
    ("DA", "20210101", "-20201231", True, False),
    ("DA", "20191231", "-20201231", True, True),
    ("DA", "20210101", "20201231-", True, True),
    ("DA", "20201230", "20201231-", True, False),
    ("TM", "101559.9", "-1016", True, True),
    ("TM", "101600", "-1016", True, True),
    ("TM", "101700", "-1016", True, False),
    ("TM", "080000", "080000-120000", True, True),
    ("TM", "120001", "080000-120000", True, False),
    ("DT", "20200315101500", "20200315-20200316", True, True),
    ("DT", "20200317000000", "20200315-20200316", True, False),
    ("DT", "20200315101500", "-20200315", True, True),
    ("DA", None, "20200101-20201231", True, False),
    # lists of UIDs and of values
    ("UI", "1.2.3", "1.2.4\\1.2.3", True, True),
    ("UI", "1.2.5", "1.2.4\\1.2.3", True, False),
    ("UI", "1.2.3", " 1.2.3 \\\\", True, True),
    ("CS", "MR", "US\\MR", True, True),
    ("CS", "CT", "US\\MR", True, False),
    ("PN", "DOE^JOHN", "smith*\\doe*", True, True),
    ("CS", "CT", "US\\", True, True),  # an empty item is universal matching
    ("DA", "20200315", "20200101-20200131\\20200301-20200331", True, True),
    # absent attributes match only universal matching
    ("LO", None, "X", True, False),
    ("PN", None, "doe*", True, False),
    ("UI", None, "1.2.3\\1.2.4", True, False),
    # present but empty
    ("LO", "", "X", True, False),
    ("LO", "", "", True, True),
]


@pytest.fixture(scope="module")
def table(tmp_path_factory, database):
    """The stored values of :data:`CASES`, one row each, keyed by their position."""
    if database.postgres:
        # The "C" locale, whose own LOWER() folds ASCII letters only: PN rules must hold in it.
        url = database.postgres.new_database(locale="C")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('matching') / 'm.sqlite'}"
    engine = create_engine(url)
    table = sa.Table(
        "stored",
        sa.MetaData(),
        sa.Column("pk", sa.Integer, primary_key=True),
        sa.Column("value", sa.Text, nullable=True),
    )
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"pk": n, "value": case[1]} for n, case in enumerate(CASES)])
    yield engine, table
    engine.dispose()


def _sql_matches(table, pk: int, vr: str, pattern: str, case_sensitive: bool) -> bool:
    engine, stored = table
    condition = condition_for(
        stored.c.value, vr, pattern, case_sensitive=case_sensitive, dialect=engine.dialect.name
    )
    statement = sa.select(stored.c.pk).where(stored.c.pk == pk)
    if condition is not None:
        statement = statement.where(condition)
    with engine.connect() as conn:
        return conn.execute(statement).first() is not None


EACH_CASE = pytest.mark.parametrize(
    ("position", "case"), list(enumerate(CASES)), ids=[f"{c[0]}:{c[1]!r}~{c[2]!r}" for c in CASES]
)


@EACH_CASE
def test_matching_table_in_sql(table, position, case):
    vr, _, pattern, case_sensitive, expected = case
    assert _sql_matches(table, position, vr, pattern, case_sensitive) is expected


@EACH_CASE
def test_matching_table_in_python(position, case):
    vr, stored, pattern, case_sensitive, expected = case
    assert matches(stored, pattern, vr, case_sensitive=case_sensitive) is expected


@pytest.mark.parametrize(
    ("vr", "pattern", "message"),
    [
        ("DA", "2020ab-2021", "Invalid DA range bound"),
        ("DA", "-", "at least one bound"),
        ("TM", "10:00", "Invalid TM range bound"),
        ("DA", "2020*", "Invalid DA range bound"),  # dates have no wildcards
    ],
)
def test_malformed_values_are_refused_by_both(table, vr, pattern, message):
    with pytest.raises(BadRequestError, match=message):
        _sql_matches(table, 0, vr, pattern, True)
    with pytest.raises(BadRequestError, match=message):
        matches("20200101", pattern, vr)


def test_python_side_matches_any_value_of_a_multi_valued_attribute():
    # Attributes C-FIND reads from a header may hold several values; the index keeps one
    # text per attribute and compares it whole.
    assert matches("ORIGINAL\\PRIMARY\\AXIAL", "AXIAL", "CS")
    assert matches("CT\\PT", "PT", "CS")
    assert not matches("CT\\PT", "MR", "CS")
