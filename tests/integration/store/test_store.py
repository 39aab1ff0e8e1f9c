"""The results store on SQLite and on a real Postgres: migrations from empty, results, logs, files."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import StatementError

from jobplane.joblog import LogEntry
from jobplane_runtime.local import LocalStoreReporter
from jobplane_store import results
from jobplane_store.database import (
    HEAD_REVISION,
    MIGRATIONS_DIR,
    create_store_engine,
    current_revision,
    ensure_schema,
    make_sessionmaker,
    upgrade,
)
from jobplane_store.models import Base, FileProxy, JobLogEntry, JobResult, JobStatus


def test_head_revision_constant_matches_alembic() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_migrations_from_an_empty_database_match_the_models(store_url: str) -> None:
    engine = create_store_engine(store_url)
    assert current_revision(engine) is None
    ensure_schema(engine)
    assert current_revision(engine) == HEAD_REVISION
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        assert inspector.has_table(table.name)
        migrated = {c["name"] for c in inspector.get_columns(table.name)}
        assert migrated == {c.name for c in table.columns}, table.name
    fks = inspector.get_foreign_keys("job_log_entry")
    assert fks[0]["name"] == "fk_job_log_entry_job_result_id_job_result"
    ensure_schema(engine)  # a second call is a no-op
    assert current_revision(engine) == HEAD_REVISION


def test_migrations_leave_no_diff_against_the_models(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_store_engine(store_url)
    ensure_schema(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_result_lifecycle_logs_and_files_round_trip(store_url: str) -> None:
    engine = create_store_engine(store_url)
    ensure_schema(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        result = results.create_job_result(
            session=session,
            name="Hello",
            job_class_path="hello.Hello",
            user="ada",
            task_kwargs={"who": "world", "n": 0},
            soft_time_limit=300,
            time_limit=600,
        )
        job_result_id = result.id
    reporter = LocalStoreReporter(sessions, job_result_id, max_file_size=100)
    reporter.started()
    when = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    reporter.log(LogEntry(level="info", message="first", grouping="run", created=when))
    reporter.log(LogEntry(level="failure", message="second", log_object="leaf-1", absolute_url="/d/1/"))
    reporter.log(LogEntry(level="info", message="third"))
    file_id = reporter.create_file("out.csv", b"a,b\n1,2\n")
    with pytest.raises(ValueError, match="above the limit of 100 bytes"):
        reporter.create_file("big.bin", b"x" * 101)

    # Visible to another session while the run is still going.
    with sessions() as session:
        running = session.get(JobResult, job_result_id)
        assert running is not None
        assert running.status == JobStatus.STARTED
        assert running.date_started is not None
        assert running.date_started.tzinfo is not None
        assert [
            e.message for e in results.list_log_entries(session=session, job_result_id=job_result_id)
        ] == [
            "first",
            "second",
            "third",
        ]

    reporter.finished("SUCCESS", {"rows": [1, 2]}, None)
    reporter.finished("FAILURE", None, "late")  # a terminal run does not change again
    with sessions() as session:
        done = session.get(JobResult, job_result_id)
        assert done is not None
        assert done.status == JobStatus.SUCCESS
        assert done.result == {"rows": [1, 2]}
        assert done.task_kwargs == {"who": "world", "n": 0}
        assert (done.info_log_count, done.failure_log_count, done.error_log_count) == (2, 1, 0)
        assert done.duration is not None
        assert 0 <= done.duration < 60
        logs = results.list_log_entries(session=session, job_result_id=job_result_id)
        assert logs[0].created == when
        assert (logs[1].log_object, logs[1].absolute_url, logs[1].grouping) == ("leaf-1", "/d/1/", "main")
        files = session.scalars(select(FileProxy).where(FileProxy.job_result_id == job_result_id)).all()
        assert [(f.id, f.name, f.content, f.size) for f in files] == [
            (uuid.UUID(file_id), "out.csv", b"a,b\n1,2\n", 8)
        ]


def test_sensitive_inputs_are_stored_as_null(store_url: str) -> None:
    engine = create_store_engine(store_url)
    ensure_schema(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        created = results.create_job_result(
            session=session, name="Secret", job_class_path="s.Secret", user=None, task_kwargs=None
        )
    with sessions() as session:
        # SQL NULL, not the JSON value null: nothing of the inputs is in the row.
        stored_null = session.scalar(
            select(func.count()).where(JobResult.id == created.id, JobResult.task_kwargs.is_(None))
        )
    assert stored_null == 1


def test_deleting_a_result_cascades_to_logs_and_files(store_url: str) -> None:
    engine = create_store_engine(store_url)
    ensure_schema(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        result = results.create_job_result(
            session=session, name="X", job_class_path="x.X", user=None, task_kwargs=None
        )
        results.add_log_entry(
            session=session, job_result_id=result.id, entry=LogEntry(level="info", message="m")
        )
        results.add_file(session=session, job_result_id=result.id, name="f", content=b"1")
        job_result_id = result.id
    with engine.begin() as connection:
        # Delete in SQL, as a retention job would: the database itself must cascade.
        connection.execute(JobResult.__table__.delete().where(JobResult.id == job_result_id))
    with sessions() as session:
        assert session.scalars(select(JobLogEntry)).all() == []
        assert session.scalars(select(FileProxy)).all() == []


def test_naive_timestamps_are_refused(store_url: str) -> None:
    engine = create_store_engine(store_url)
    ensure_schema(engine)
    naive = datetime.now() - timedelta(seconds=1)
    with make_sessionmaker(engine)() as session:
        session.add(JobResult(name="X", job_class_path="x.X", date_created=naive))
        with pytest.raises(StatementError, match="naive datetime"):
            session.flush()


def test_two_processes_migrating_at_once_both_succeed(store_url: str) -> None:
    # The chart's migrations hook and a starting API replica may upgrade the same database together.
    engines = [create_store_engine(store_url) for _ in range(2)]
    errors: list[BaseException] = []

    def migrate(engine: Any) -> None:
        try:
            upgrade(engine)
        except BaseException as exc:  # pragma: no cover - what the test looks for
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert errors == []
        assert current_revision(engines[0]) == HEAD_REVISION
    finally:
        for engine in engines:
            engine.dispose()


def test_the_one_upsert_inserts_keeps_or_completes_a_row_and_is_compiled_once(store_url: str) -> None:
    """results.upsert_job_result on both backends: a new row takes the columns' defaults; a row another
    writer made first is left as it is, or gets only the columns named; the statement is cached."""
    from sqlalchemy import event
    from sqlalchemy.engine.default import DefaultExecutionContext
    from sqlalchemy.engine.interfaces import CacheStats

    engine = create_store_engine(store_url)
    ensure_schema(engine)
    hits: list[Any] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.startswith('INSERT INTO "job_result"'):
            assert isinstance(context, DefaultExecutionContext)
            hits.append(context.cache_hit)

    made_at = datetime(2026, 11, 25, 10, 0, 1, tzinfo=UTC)
    uid = uuid.uuid4()
    with make_sessionmaker(engine)() as session, session.begin():
        first = results.upsert_job_result(
            session,
            {"id": uid, "name": "Hello", "job_class_path": "hello.Hello", "status": JobStatus.STARTED,
             "date_created": made_at, "task_kwargs": {"who": "Ada", "n": [1, 2]}, "user": "ada"},
        )  # fmt: skip
        assert first is not None
        assert (first.status, first.date_created, first.task_kwargs) == (
            JobStatus.STARTED,
            made_at,
            {"who": "Ada", "n": [1, 2]},
        )
        assert (first.info_log_count, first.dry_run, first.result, first.queue) == (0, False, None, None)
        # Another writer's insert of the same run: left as it is.
        kept = results.upsert_job_result(
            session, {"id": uid, "name": "Other", "job_class_path": "x.Y", "status": JobStatus.PENDING}
        )
        assert kept is None
        # The run's creator completes it: only the columns it names; status and creation time stay.
        completed = results.upsert_job_result(
            session,
            {"id": uid, "name": "Hello!", "job_class_path": "hello.Hello", "status": JobStatus.PENDING,
             "date_created": made_at + timedelta(hours=1), "queue": "default", "task_kwargs": None},
            update_columns=["name", "queue", "task_kwargs"],
        )  # fmt: skip
        assert completed is first  # the session's object, refreshed from what the statement returned
        assert (completed.name, completed.queue, completed.task_kwargs) == ("Hello!", "default", None)
        assert (completed.status, completed.date_created) == (JobStatus.STARTED, made_at)
        # A row without a creation time takes the column's default (now), as the ORM's insert did.
        other = results.upsert_job_result(session, {"id": uuid.uuid4(), "name": "N", "job_class_path": "n.N"})
        assert other is not None
        assert other.status == JobStatus.PENDING
        assert abs(other.date_created - datetime.now(UTC)) < timedelta(minutes=5)
        with pytest.raises(ValueError, match="unknown columns"):
            results.upsert_job_result(session, {"id": uuid.uuid4(), "colour": "red"})
    with make_sessionmaker(engine)() as session:
        stored = session.get(JobResult, uid)
        assert stored is not None
        assert (stored.name, stored.status, stored.task_kwargs) == ("Hello!", JobStatus.STARTED, None)
    # Compiled once per statement shape (insert-or-keep, insert-or-complete), then taken from the cache.
    assert hits == [CacheStats.CACHE_MISS, CacheStats.CACHE_HIT, CacheStats.CACHE_MISS, CacheStats.CACHE_HIT]
    engine.dispose()
