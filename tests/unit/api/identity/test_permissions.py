"""Object permission constraints: validation, matching in Python, and the same answers in SQL (SQLite)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from jobplane_api.identity.errors import InvalidPermission
from jobplane_api.identity.permissions import (
    compile_constraints,
    constraints_to_sql,
    evaluate_constraints,
    validate_permission,
)
from jobplane_store.database import create_store_engine
from jobplane_store.models import Base, JobResult, utcnow

JOB = {
    "id": "6f1c1f2e-3c1a-4a53-9f2b-0c1e2d3f4a5b",
    "name": "Backup configs",
    "grouping": "Compliance",
    "module_name": "network.backup",
    "job_class_name": "BackupConfigs",
    "class_path": "network.backup.BackupConfigs",
    "enabled": True,
    "installed": True,
    "hidden": False,
    "description": "Back up every device's config (100% of them)",
}


def job_matches(constraints: Any, username: str | None = "ada", job: dict[str, Any] = JOB) -> bool:
    compiled = compile_constraints(constraints, ["extras.job"])
    return evaluate_constraints(compiled, job, username)


@pytest.mark.parametrize(
    ("constraints", "expected"),
    [
        ({"grouping": "Compliance"}, True),
        ({"grouping": "compliance"}, False),
        ({"grouping__exact": "Compliance"}, True),
        ({"grouping__iexact": "compliance"}, True),
        ({"name__in": ["Backup configs", "Other"]}, True),
        ({"name__in": ["Other"]}, False),
        ({"name__in": []}, False),
        ({"module_name__startswith": "network."}, True),
        ({"module_name__startswith": "Network."}, False),
        ({"module_name__istartswith": "NETWORK."}, True),
        ({"module_name__isw": "NETWORK."}, True),
        ({"description__contains": "100%"}, True),
        ({"description__contains": "BACK UP"}, False),
        ({"description__icontains": "BACK UP"}, True),
        ({"description__ic": "back up"}, True),
        ({"name__gt": "A"}, True),
        ({"name__gte": "Backup configs"}, True),
        ({"name__lt": "Backup configs"}, False),
        ({"name__lte": "Backup configs"}, True),
        ({"description__isnull": True}, False),
        ({"description__isnull": False}, True),
        ({"grouping__neq": "Compliance"}, False),
        ({"grouping__n": "Other"}, True),
        ({"grouping__n": ["Other", "Compliance"]}, False),
        ({"enabled": True, "hidden": False}, True),
        ({"enabled": True, "hidden": True}, False),
        ({"installed__neq": False}, True),
        ({"id": "6F1C1F2E-3C1A-4A53-9F2B-0C1E2D3F4A5B"}, True),
        ({"id__in": [str(uuid.UUID(int=1))]}, False),
        ([{"grouping": "Other"}, {"name__ic": "backup"}], True),
        ([{"grouping": "Other"}, {"name": "Other"}], False),
        # Nautobot's rule: no constraints, or an empty set of them, matches every object.
        (None, True),
        ({}, True),
        ([], True),
        ([{"grouping": "Other"}, {}], True),
    ],
)
def test_lookups_match_a_job_as_nautobot_would(constraints: Any, expected: bool) -> None:
    assert job_matches(constraints) is expected


def test_user_token_stands_for_the_requesting_username() -> None:
    job = {**JOB, "name": "ada"}
    assert job_matches({"name": "$user"}, "ada", job)
    assert not job_matches({"name": "$user"}, "bob", job)
    assert job_matches({"name__in": ["x", "$user"]}, "ada", job)
    # Without a user, "$user" stands for nobody: it never matches (not even a missing value).
    assert not job_matches({"name": "$user"}, None, job)
    assert not job_matches({"name__in": ["$user"]}, None, job)


def test_an_object_lacking_a_constrained_field_does_not_match() -> None:
    job = {key: value for key, value in JOB.items() if key != "grouping"}
    assert not job_matches({"grouping__n": "Other"}, job=job)
    assert job_matches({"name": "Backup configs"}, job=job)


def test_uuids_in_objects_compare_with_uuid_strings() -> None:
    job = {**JOB, "id": uuid.UUID(JOB["id"])}
    assert job_matches({"id": JOB["id"]}, job=job)


@pytest.mark.parametrize(
    ("object_types", "actions", "constraints", "message"),
    [
        ([], ["view"], None, "at least one object type"),
        (["extras.job"], [], None, "at least one action"),
        (["extras.jobs"], ["view"], None, "unknown object type 'extras.jobs'; known object types: extras."),
        (["extras.job"], ["execute"], None, "unknown action 'execute'; known actions: add, approve, change"),
        (["extras.job"], ["view"], {"owner": "x"}, "extras.job has no field 'owner'; fields: class_path"),
        (
            ["extras.job"],
            ["view"],
            {"name__regex": "x"},
            "unknown lookup 'regex' in constraint 'name__regex'",
        ),
        (
            ["extras.job"],
            ["view"],
            {"enabled__gt": True},
            "lookup 'gt' does not apply to 'enabled' (a boolean",
        ),
        (["extras.job"], ["view"], {"enabled": "yes"}, "takes a boolean value, not 'yes'"),
        (["extras.job"], ["view"], {"name__in": "x"}, "'name__in' takes a list of string values"),
        (["extras.job"], ["view"], {"name__in": [None]}, "cannot hold null (use __isnull)"),
        (["extras.job"], ["view"], {"name__isnull": "yes"}, "takes true or false"),
        (["extras.job"], ["view"], {"name__ic": 3}, "'name__ic' takes a string"),
        (["extras.job"], ["view"], {"id": "not-a-uuid"}, "'not-a-uuid' is not a UUID"),
        (["extras.job"], ["view"], {"id": "$user"}, "'$user' is not a UUID"),
        (["extras.job"], ["view"], "grouping=x", "must be a JSON object or a list of them"),
        (["extras.job"], ["view"], [["grouping"]], "must hold JSON objects, not list"),
        (["users.user"], ["view"], {"username": "x"}, "permissions on users.user cannot have constraints"),
        (
            ["extras.job", "extras.jobresult"],
            ["view"],
            {"grouping": "x"},
            "extras.jobresult has no field 'grouping'",
        ),
    ],
)
def test_invalid_permissions_are_refused_with_a_message_a_person_can_act_on(
    object_types: list[str], actions: list[str], constraints: Any, message: str
) -> None:
    with pytest.raises(InvalidPermission) as raised:
        validate_permission(object_types, actions, constraints)
    assert message in raised.value.message
    assert isinstance(raised.value, ValueError)


def test_constraints_shared_by_several_object_types_name_common_fields() -> None:
    validate_permission(["extras.jobresult", "extras.fileproxy"], ["view", "delete"], {"name__isw": "x"})
    validate_permission(["users.user", "extras.job"], ["view"], None)


# --- the same answers in SQL ----------------------------------------------------------------------

RESULTS: list[dict[str, Any]] = [
    {
        "name": "Backup",
        "user": "ada",
        "status": "SUCCESS",
        "queue": "default",
        "job_class_path": "net.Backup",
    },
    {"name": "backup", "user": "bob", "status": "FAILURE", "queue": None, "job_class_path": "net.Backup"},
    {"name": "Audit 50%", "user": None, "status": "PENDING", "queue": "big", "job_class_path": "sec.Audit"},
    {
        "name": "Audit_x",
        "user": "ada",
        "status": "STARTED",
        "queue": "default",
        "job_class_path": "sec.Audit",
    },
]


@pytest.fixture
def engine(tmp_path: Any) -> Iterator[Engine]:
    import jobplane_store.identity  # noqa: F401  (the whole metadata, as migrations create it)

    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def rows(engine: Engine) -> list[dict[str, Any]]:
    rows = []
    with Session(engine) as session, session.begin():
        for values in RESULTS:
            job_model_id = uuid.uuid4()
            session.add(
                JobResult(id=uuid.uuid4(), job_model_id=job_model_id, date_created=utcnow(), **values)
            )
        session.flush()
        for result in session.scalars(select(JobResult)):
            rows.append(
                {
                    "id": result.id,
                    "name": result.name,
                    "user": result.user,
                    "status": result.status,
                    "job_model_id": result.job_model_id,
                    "queue": result.queue,
                    "job_class_path": result.job_class_path,
                }
            )
    return rows


@pytest.mark.parametrize(
    "constraints",
    [
        {"user": "$user"},
        {"user__n": "$user"},
        {"user__isnull": True},
        {"queue": None},
        {"queue__neq": None},
        {"queue__n": ["big"]},
        {"queue__neq": "default"},
        {"status__in": ["SUCCESS", "FAILURE"]},
        {"name__iexact": "BACKUP"},
        {"name__isw": "AUD"},
        {"name__contains": "50%"},
        {"name__contains": "_x"},
        {"name__icontains": "T_X"},
        {"name__gt": "B"},
        {"name__lte": "Audit_x"},
        {"job_class_path__startswith": "sec.", "user": "$user"},
        [{"status": "PENDING"}, {"user": "bob"}],
        [{"status": "PENDING", "user": "ada"}, {"queue__isnull": True}],
    ],
)
def test_sql_where_clauses_select_what_python_matching_accepts(
    engine: Engine, rows: list[dict[str, Any]], constraints: Any
) -> None:
    compiled = compile_constraints(constraints, ["extras.jobresult"])
    expected = {row["id"] for row in rows if evaluate_constraints(compiled, row, "ada")}
    with Session(engine) as session:
        clause = constraints_to_sql(compiled, "extras.jobresult", "ada")
        selected = set(session.scalars(select(JobResult.id).where(clause)))
    assert selected == expected


def test_sql_matches_uuid_fields_given_as_strings(engine: Engine, rows: list[dict[str, Any]]) -> None:
    wanted = rows[2]
    compiled = compile_constraints(
        {"job_model_id": str(wanted["job_model_id"]).upper()}, ["extras.jobresult"]
    )
    with Session(engine) as session:
        clause = constraints_to_sql(compiled, "extras.jobresult", "ada")
        assert list(session.scalars(select(JobResult.id).where(clause))) == [wanted["id"]]
        clause = constraints_to_sql(
            compile_constraints({"id__in": [str(rows[0]["id"])]}, ["extras.jobresult"]),
            "extras.jobresult",
            None,
        )
        assert list(session.scalars(select(JobResult.id).where(clause))) == [rows[0]["id"]]


def test_user_token_without_a_user_selects_nothing_in_sql(engine: Engine, rows: list[dict[str, Any]]) -> None:
    compiled = compile_constraints({"user": "$user"}, ["extras.jobresult"])
    with Session(engine) as session:
        clause = constraints_to_sql(compiled, "extras.jobresult", None)
        assert list(session.scalars(select(JobResult.id).where(clause))) == []


def test_jobs_are_not_matched_in_sql() -> None:
    with pytest.raises(ValueError, match=r"extras\.job is not matched in SQL"):
        constraints_to_sql(None, "extras.job", "ada")
