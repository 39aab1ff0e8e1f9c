"""Authentication and permissions against a real Postgres: tokens, users, groups, grants, migration 0002."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from jobplane_api.identity import AuthenticationFailed, authenticate, service
from jobplane_api.identity.tokens import create_token
from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker, upgrade
from jobplane_store.identity import Group, Token, User
from jobplane_store.models import JobResult, utcnow

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def make_token(
    sessions: sessionmaker[Session],
    username: str,
    *,
    superuser: bool = False,
    active: bool = True,
    groups: tuple[str, ...] = (),
    **token_options: Any,
) -> str:
    """A user (created when new) and a token of theirs; returns the key."""
    with sessions.begin() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            for group in groups:
                if session.scalar(select(Group).where(Group.name == group)) is None:
                    service.create_group(session=session, name=group)
            user = service.create_user(
                session=session, username=username, is_superuser=superuser, groups=groups
            )
        user.is_active = active
        _, key = create_token(session=session, user=user, **token_options)
    return key


def auth(sessions: sessionmaker[Session], authorization: str | None, now: datetime = NOW) -> Any:
    with sessions.begin() as session:
        return authenticate(session=session, authorization=authorization, now=now)


def test_a_valid_token_authenticates_its_user_with_their_grants(sessions: sessionmaker[Session]) -> None:
    key = make_token(sessions, "ada", description="laptop")
    with sessions.begin() as session:
        service.create_permission(
            session=session,
            name="run compliance jobs",
            object_types=["extras.job"],
            actions=["view", "run"],
            constraints={"grouping": "Compliance"},
            users=["ada"],
        )
        service.create_permission(
            session=session,
            name="see own results",
            object_types=["extras.jobresult"],
            actions=["view"],
            constraints={"user": "$user"},
            users=["ada"],
        )
    principal = auth(sessions, f"Token {key}")
    assert (principal.username, principal.is_superuser, principal.write_enabled) == ("ada", False, True)
    assert not principal.is_anonymous
    assert principal.allows("run", "extras.job", {"grouping": "Compliance"})
    assert not principal.allows("run", "extras.job", {"grouping": "Other"})
    assert not principal.has("delete", "extras.job")

    # The result filter runs on Postgres.
    with sessions.begin() as session:
        for user in ("ada", "bob"):
            session.add(
                JobResult(id=uuid.uuid4(), name="J", job_class_path="m.J", user=user, date_created=utcnow())
            )
    with sessions() as session:
        visible = session.scalars(
            select(JobResult.user).where(principal.sql_filter("view", "extras.jobresult"))
        )
        assert list(visible) == ["ada"]


def test_the_header_takes_the_token_scheme_only(sessions: sessionmaker[Session]) -> None:
    key = make_token(sessions, "ada")
    assert auth(sessions, f"token   {key} ").username == "ada"
    cases = {
        f"Bearer {key}": "Bearer tokens are for job runs only; use 'Authorization: Token <key>'",
        f"Basic {key}": "Invalid token header: use 'Authorization: Token <key>'",
        "Token": "Invalid token header. No credentials provided.",
        f"Token {key} extra": "Invalid token header. Token string should not contain spaces.",
        "Token " + "0" * 40: "Invalid token",
        f"Token {key[:-1]}": "Invalid token",
    }
    for header, message in cases.items():
        with pytest.raises(AuthenticationFailed) as raised:
            auth(sessions, header)
        assert raised.value.message == message, header


def test_no_header_is_an_anonymous_principal_without_grants(sessions: sessionmaker[Session]) -> None:
    for header in (None, "", "  "):
        principal = auth(sessions, header)
        assert principal.is_anonymous
        assert principal.grants == ()
        assert not principal.has("view", "extras.job")


def test_expired_tokens_and_inactive_users_are_refused(sessions: sessionmaker[Session]) -> None:
    expiring = make_token(sessions, "ada", expires=NOW + timedelta(hours=1))
    assert auth(sessions, f"Token {expiring}").username == "ada"
    with pytest.raises(AuthenticationFailed, match=r"^Token expired$"):
        auth(sessions, f"Token {expiring}", now=NOW + timedelta(hours=1))
    inactive = make_token(sessions, "bob", active=False)
    with pytest.raises(AuthenticationFailed, match=r"^User inactive or deleted\.$"):
        auth(sessions, f"Token {inactive}")


def test_read_only_tokens_only_view(sessions: sessionmaker[Session]) -> None:
    key = make_token(sessions, "root", superuser=True, write_enabled=False)
    principal = auth(sessions, f"Token {key}")
    assert principal.is_superuser
    assert not principal.write_enabled
    assert principal.has("view", "extras.job")
    assert not principal.has("run", "extras.job")


def test_grants_come_from_groups_and_only_from_enabled_permissions(sessions: sessionmaker[Session]) -> None:
    key = make_token(sessions, "ada", groups=("ops", "audit"))
    make_token(sessions, "bob", groups=("other",))
    with sessions.begin() as session:
        service.create_permission(
            session=session, name="ops run", object_types=["extras.job"], actions=["run"], groups=["ops"]
        )
        service.create_permission(
            session=session,
            name="audit view results",
            object_types=["extras.jobresult"],
            actions=["view"],
            groups=["audit"],
            users=["ada"],  # given twice: one grant
        )
        service.create_permission(
            session=session,
            name="disabled delete",
            object_types=["extras.job"],
            actions=["delete"],
            groups=["ops"],
            enabled=False,
        )
        service.create_permission(
            session=session,
            name="other groups",
            object_types=["extras.job"],
            actions=["change"],
            groups=["other"],
        )
    principal = auth(sessions, f"Token {key}")
    assert principal.has("run", "extras.job")
    assert principal.has("view", "extras.jobresult")
    assert not principal.has("delete", "extras.job")
    assert not principal.has("change", "extras.job")
    assert len(principal.grants) == 2


def test_last_used_is_written_at_most_once_a_minute(sessions: sessionmaker[Session]) -> None:
    key = make_token(sessions, "ada")

    def last_used() -> datetime | None:
        with sessions() as session:
            return session.scalar(select(Token.last_used))

    auth(sessions, f"Token {key}", now=NOW)
    assert last_used() == NOW
    auth(sessions, f"Token {key}", now=NOW + timedelta(seconds=59))
    assert last_used() == NOW
    auth(sessions, f"Token {key}", now=NOW + timedelta(seconds=61))
    assert last_used() == NOW + timedelta(seconds=61)


def test_a_request_holding_the_token_row_never_stalls_another(sessions: sessionmaker[Session]) -> None:
    key = make_token(sessions, "ada")
    with sessions.begin() as first:
        authenticate(session=first, authorization=f"Token {key}", now=NOW)  # locks the row until commit
        with sessions.begin() as second:
            second.execute(text("SET LOCAL lock_timeout = '2s'"))
            later = NOW + timedelta(minutes=5)
            assert authenticate(session=second, authorization=f"Token {key}", now=later).username == "ada"
    with sessions() as session:
        assert session.scalar(select(Token.last_used)) == NOW


def test_authentication_costs_two_queries_and_a_rare_update(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    key = make_token(sessions, "ada", groups=("ops",))
    auth(sessions, f"Token {key}")  # last_used written now, not in the counted calls
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        auth(sessions, f"Token {key}", now=NOW + timedelta(seconds=10))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 2, statements


def test_case_sensitive_lookups_are_case_sensitive_on_postgres(sessions: sessionmaker[Session]) -> None:
    key = make_token(sessions, "ada")
    with sessions.begin() as session:
        service.create_permission(
            session=session,
            name="backups",
            object_types=["extras.jobresult"],
            actions=["view"],
            constraints=[{"name__startswith": "Back"}, {"name__contains": "_x"}],
            users=["ada"],
        )
        for name in ("Backup", "backup", "Audit_x", "AuditAx"):
            session.add(JobResult(id=uuid.uuid4(), name=name, job_class_path="m.J", date_created=utcnow()))
    principal = auth(sessions, f"Token {key}")
    with sessions() as session:
        names = session.scalars(
            select(JobResult.name)
            .where(principal.sql_filter("view", "extras.jobresult"))
            .order_by(JobResult.name)
        )
        assert list(names) == ["Audit_x", "Backup"]


def test_migration_0002_keeps_existing_results_and_can_be_undone(postgres_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from jobplane_store.database import MIGRATIONS_DIR, current_revision

    engine = create_store_engine(postgres_url)
    try:
        upgrade(engine, "0001_initial")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO job_result (id, name, job_class_path, status, date_created,"
                    " debug_log_count, info_log_count, success_log_count, warning_log_count,"
                    " failure_log_count, error_log_count, critical_log_count)"
                    " VALUES (:id, 'old', 'm.Old', 'SUCCESS', now(), 0, 0, 0, 0, 0, 0, 0)"
                ),
                {"id": uuid.uuid4()},
            )
        ensure_schema(engine)
        with make_sessionmaker(engine)() as session:
            old = session.scalars(select(JobResult)).one()
            assert (old.name, old.dry_run, old.job_model_id, old.reason) == ("old", False, None, None)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0001_initial")
        assert current_revision(engine) == "0001_initial"
        assert not inspect(engine).has_table("users_token")
        assert "dry_run" not in {column["name"] for column in inspect(engine).get_columns("job_result")}
    finally:
        engine.dispose()
