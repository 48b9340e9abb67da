"""``Index.find``: each PS3.4 C.2.2.2 matching type, answered from SQL on a controlled index."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.pacs.test_index_store import SMALL_FILE, make_instance
from workbench.pacs import BadRequestError, Index

STUDIES = [
    # PatientID, PatientName, StudyDate, StudyTime, Modality, StudyDescription, Accession
    ("P1", "Doe^John", "20200115", "101500", "CT", "Head [routine]", "A1"),
    ("P2", "DOE^JANE", "20200301", "080000", "MR", "Knee_left", "A2"),
    ("P3", "Smith^Ann", "20191231", "235959", "CT", "Chest 100%", "A3"),
    ("P4", "O'Brien^Pat", "20210610", "120000", "US", "Abdomen", "A4"),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory, sample_data, database):
    idx = Index(database.config(tmp_path_factory.mktemp("find")))
    template = sample_data / SMALL_FILE
    uids = {}
    for n, (pid, name, date, time, modality, description, accession) in enumerate(STUDIES):
        study_uid = f"1.2.826.0.1.3680043.8.498.{n + 1}"
        result = idx.ingest_bytes(
            make_instance(
                template,
                patient=pid,
                name=name,
                study=study_uid,
                StudyDate=date,
                StudyTime=time,
                Modality=modality,
                StudyDescription=description,
                AccessionNumber=accession,
            )
        )
        uids[pid] = (study_uid, result)
    idx.uids = uids
    yield idx
    idx.close()


def _patients_of(index, level, query, **kwargs):
    ids = index.find(level, query, **kwargs)
    found = set()
    for resource_id in ids:
        patient = index.ancestor(level, resource_id, "Patient")
        found.add(index.main_dicom_tags("Patient", patient)["PatientID"])
    return found


def test_universal_matching(index):
    assert _patients_of(index, "Study", {}) == {"P1", "P2", "P3", "P4"}
    assert _patients_of(index, "Study", {"StudyDescription": ""}) == {"P1", "P2", "P3", "P4"}


def test_single_value_is_case_sensitive_except_pn(index):
    assert _patients_of(index, "Study", {"AccessionNumber": "A2"}) == {"P2"}
    assert _patients_of(index, "Study", {"AccessionNumber": "a2"}) == set()
    assert _patients_of(index, "Study", {"PatientName": "doe^john"}) == {"P1"}
    assert _patients_of(index, "Study", {"AccessionNumber": "a2"}, case_sensitive=False) == {"P2"}


def test_wildcards(index):
    assert _patients_of(index, "Study", {"PatientName": "doe*"}) == {"P1", "P2"}
    assert _patients_of(index, "Study", {"PatientName": "D?E^J*"}) == {"P1", "P2"}
    assert _patients_of(index, "Series", {"Modality": "C?"}) == {"P1", "P3"}
    assert _patients_of(index, "Study", {"StudyDescription": "Knee*"}) == {"P2"}
    assert _patients_of(index, "Study", {"StudyDescription": "knee*"}) == set()


def test_sql_and_glob_metacharacters_are_literal(index):
    assert _patients_of(index, "Study", {"StudyDescription": "Head [routine]"}) == {"P1"}
    assert _patients_of(index, "Study", {"StudyDescription": "*[routine]"}) == {"P1"}
    assert _patients_of(index, "Study", {"StudyDescription": "Knee_*"}) == {"P2"}
    assert _patients_of(index, "Study", {"StudyDescription": "Knee%"}) == set()
    assert _patients_of(index, "Study", {"StudyDescription": "*100%"}) == {"P3"}
    assert _patients_of(index, "Study", {"PatientName": "O'Brien*"}) == {"P4"}
    assert _patients_of(index, "Study", {"PatientID": "' OR '1'='1"}) == set()
    assert index.statistics()["CountStudies"] == 4  # nothing was executed as SQL


def test_date_and_time_ranges(index):
    assert _patients_of(index, "Study", {"StudyDate": "20200101-20201231"}) == {"P1", "P2"}
    assert _patients_of(index, "Study", {"StudyDate": "-20200115"}) == {"P1", "P3"}
    assert _patients_of(index, "Study", {"StudyDate": "20200301-"}) == {"P2", "P4"}
    assert _patients_of(index, "Study", {"StudyDate": "20191231"}) == {"P3"}
    assert _patients_of(index, "Study", {"StudyTime": "080000-120000"}) == {"P1", "P2", "P4"}
    assert _patients_of(index, "Study", {"StudyTime": "100000-115959"}) == {"P1"}
    assert _patients_of(index, "Study", {"StudyTime": "-1016"}) == {"P1", "P2"}


def test_uid_lists_and_value_lists(index):
    uid1 = index.uids["P1"][0]
    uid3 = index.uids["P3"][0]
    assert _patients_of(index, "Study", {"StudyInstanceUID": f"{uid1}\\{uid3}"}) == {"P1", "P3"}
    assert _patients_of(index, "Series", {"Modality": "US\\MR"}) == {"P2", "P4"}


def test_upper_level_keys_and_modalities_in_study(index):
    assert _patients_of(index, "Instance", {"PatientName": "smith*"}) == {"P3"}
    assert _patients_of(index, "Study", {"ModalitiesInStudy": "CT"}) == {"P1", "P3"}
    assert _patients_of(index, "Study", {"0010,0020": "P4"}) == {"P4"}


def test_limit_and_since_page_in_creation_order(index):
    everything = index.list_ids("Study")  # creation order
    assert index.find("Study", {}, limit=2) == everything[:2]
    assert index.find("Study", {}, since=2, limit=10) == everything[2:]


@pytest.mark.parametrize(
    "level, query, message",
    [
        ("Study", {"NotATag": "x"}, "Unknown DICOM tag"),
        ("Patient", {"StudyDate": "2020"}, "cannot be searched at the Patient level"),
        ("Study", {"StudyDate": "2020ab-2021"}, "Invalid DA range"),
        ("Study", {"StudyDate": "-"}, "at least one bound"),
        ("Galaxy", {}, "Unknown resource level"),
    ],
)
def test_bad_queries_are_refused_with_a_reason(index, level, query, message):
    with pytest.raises(BadRequestError, match=message):
        index.find(level, query)


def query_plan(engine: sa.Engine, statement: sa.Select) -> str:
    """The database's plan for ``statement``; PostgreSQL is told to avoid sequential scans,
    which it prefers on tables this small, so the plan shows whether an index can serve."""
    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}"))
        else:
            conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
            rows = conn.execute(sa.text(f"EXPLAIN {compiled}"))
        return " ".join(str(row[-1]) for row in rows)


def test_queries_use_the_indexes(index):
    # UID, identifier, name (also without case) and date queries must search an index.
    for query, case_sensitive in (
        ({"StudyInstanceUID": "1.2.3"}, True),
        ({"StudyDate": "20200101-20200131"}, True),
        ({"PatientID": "P1"}, True),
        ({"PatientID": "p1"}, False),
        ({"PatientName": "SMITH^J*"}, True),
        ({"AccessionNumber": "a*"}, False),
        ({"StudyInstanceUID": "1.2.3"}, False),
        ({"StudyDescription": "Knee*"}, True),
    ):
        statement = index.find_statement("Study", query, case_sensitive=case_sensitive)
        plan = query_plan(index.engine, statement)
        uses_index = ("USING INDEX", "USING COVERING INDEX", "Index Scan", "Index Only Scan")
        assert any(words in plan for words in uses_index), (query, plan)


def test_a_kept_statement_finds_what_is_stored_now(tmp_path, sample_data, database):
    """Statements are kept between searches, never their results: a study stored or deleted
    between two identical searches is seen by the second."""
    idx = Index(database.config(tmp_path))
    try:
        template = sample_data / SMALL_FILE
        query = {"PatientID": "KEPT", "StudyDate": "20200101-20201231"}
        assert idx.find("Study", query) == []
        first = idx.ingest_bytes(
            make_instance(
                template, patient="KEPT", study="1.2.826.0.1.3680043.8.498.77", StudyDate="20200202"
            )
        )
        assert idx.find("Study", query) == [first.study_id]
        assert idx.find("Study", dict(reversed(query.items()))) == [first.study_id]
        idx.delete("Study", first.study_id)
        assert idx.find("Study", query) == []
    finally:
        idx.close()
