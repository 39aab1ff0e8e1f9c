"""What a principal may do: superusers, grants with or without constraints, read-only and anonymous use."""

from __future__ import annotations

import pytest
from sqlalchemy import false
from sqlalchemy.dialects import sqlite

from jobplane_api.identity.permissions import OBJECT_TYPES
from jobplane_api.identity.principal import Grant, Principal

COMPLIANCE = {"id": "00000000-0000-0000-0000-000000000001", "grouping": "Compliance", "name": "Audit"}
OTHER = {"id": "00000000-0000-0000-0000-000000000002", "grouping": "Other", "name": "Cleanup"}


def grant(object_types: list[str], actions: list[str], constraints: object = None) -> Grant:
    made = Grant.from_permission(
        name="p", object_types=object_types, actions=actions, constraints=constraints
    )
    assert made is not None
    return made


def sql(clause: object) -> str:
    assert clause is not None
    return str(clause.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]


def test_superuser_may_do_everything_with_a_write_token() -> None:
    root = Principal("root", is_superuser=True, write_enabled=True)
    assert root.has("run", "extras.job")
    assert root.allows("delete", "extras.job", OTHER)
    assert root.sql_filter("delete", "extras.jobresult") is None


def test_read_only_tokens_only_view_even_for_superusers() -> None:
    root = Principal("root", is_superuser=True, write_enabled=False)
    assert root.has("view", "extras.job")
    assert not root.has("run", "extras.job")
    assert not root.allows("run", "extras.job", OTHER)
    assert root.sql_filter("delete", "extras.jobresult") is false()
    assert not root.may_use("change")
    reader = Principal("ada", write_enabled=False, grants=(grant(["extras.job"], ["view", "run"]),))
    assert reader.has("view", "extras.job")
    assert not reader.has("run", "extras.job")


def test_constrained_grants_apply_per_object() -> None:
    ada = Principal(
        "ada",
        write_enabled=True,
        grants=(
            grant(["extras.job"], ["view"]),
            grant(["extras.job"], ["run"], {"grouping": "Compliance"}),
        ),
    )
    assert ada.has("run", "extras.job")
    assert ada.allows("run", "extras.job", COMPLIANCE)
    assert not ada.allows("run", "extras.job", OTHER)
    assert ada.allows("view", "extras.job", OTHER)
    assert not ada.has("delete", "extras.job")
    assert not ada.allows("delete", "extras.job", COMPLIANCE)
    assert ada.restrict("run", "extras.job", [OTHER, COMPLIANCE]) == [COMPLIANCE]


def test_sql_filter_is_none_when_unrestricted_false_without_grant_else_an_or_of_grants() -> None:
    ada = Principal(
        "ada",
        write_enabled=True,
        grants=(
            grant(["extras.jobresult"], ["view"], {"user": "$user"}),
            grant(["extras.jobresult"], ["view"], [{"status": "FAILURE"}, {"queue__isnull": True}]),
            grant(["extras.joblogentry"], ["view"]),
        ),
    )
    assert ada.sql_filter("view", "extras.joblogentry") is None
    assert ada.sql_filter("delete", "extras.jobresult") is false()
    assert ada.sql_filter("view", "extras.fileproxy") is false()
    assert sql(ada.sql_filter("view", "extras.jobresult")) == (
        "job_result.user = 'ada' OR job_result.status = 'FAILURE' OR job_result.queue IS NULL"
    )


def test_anonymous_callers() -> None:
    nobody = Principal.anonymous()
    assert nobody.is_anonymous
    assert not nobody.has("view", "extras.job")
    reader = Principal.anonymous_reader()
    assert reader.is_anonymous
    assert reader.username is None
    assert all(reader.has("view", object_type) for object_type in OBJECT_TYPES)
    assert reader.allows("view", "extras.job", OTHER)
    assert reader.sql_filter("view", "extras.jobresult") is None
    assert not reader.has("run", "extras.job")
    assert reader.sql_filter("delete", "extras.jobresult") is false()


def test_a_stored_permission_with_invalid_constraints_grants_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    made = Grant.from_permission(
        name="hand-written", object_types=["extras.job"], actions=["view"], constraints={"owner": "x"}
    )
    assert made is None
    assert "ignoring invalid object permission name=hand-written" in caplog.text
