"""A local run's writes to SQLite without SQLAlchemy: the rows the models write, read back by the models."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from jobplane.joblog import LogEntry
from jobplane_runtime.local import LocalStoreReporter, ResultsStore, open_results_store
from jobplane_store.database import HEAD_REVISION, create_store_engine, current_revision, make_sessionmaker
from jobplane_store.models import FileProxy, JobResult, JobStatus
from jobplane_store.results import SessionResultsStore, list_log_entries
from jobplane_store.sqlite import NewJobResult, RunEnd, SqliteResultsStore, sqlite_file

WHEN = datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
# Written from the clock inside the store: compared by form, not value.
CLOCK_COLUMNS = {"date_created", "uploaded_at"}


def one_run(store: ResultsStore) -> dict[str, uuid.UUID]:
    """The same units of work, in the order a local run makes them, with every kind of value."""
    store.ensure_schema()
    upload = store.add_file(None, "input.txt", b"uploaded")
    ok = store.create_job_result(
        NewJobResult(
            name="Grüße",
            job_class_path="hello.Hello",
            user="ada",
            task_kwargs={"who": "Zoë", "n": 3, "tags": ["a", "b"], "nested": {"x": None}},
            queue="default",
            soft_time_limit=30,
            time_limit=60.5,
        )
    )
    reporter = LocalStoreReporter(store, ok, max_file_size=100)
    reporter.started()
    store.mark_started(ok, WHEN + timedelta(hours=1))  # a started run is not started again
    reporter.log(LogEntry(level="info", message="first", grouping="run", created=WHEN))
    reporter.log(
        LogEntry(
            level="failure",
            message="second",
            log_object="leaf-1",
            absolute_url="/d/1/",
            created=WHEN.astimezone(),
        )
    )
    made = reporter.create_file("out.csv", b"a,b\n")
    assert reporter.open_input_file(str(upload)).read() == b"uploaded"
    reporter.discard_input_files([str(upload)])
    assert store.finish_job_result(
        ok, RunEnd(JobStatus.SUCCESS, WHEN + timedelta(seconds=2), {"rows": [1, 2]})
    )
    assert not store.finish_job_result(ok, RunEnd(JobStatus.FAILURE, WHEN, None, "late"))
    store.finish_if_unfinished(
        ok, LogEntry(level="failure", message="never"), RunEnd(JobStatus.FAILURE, WHEN)
    )

    secret = store.create_job_result(
        NewJobResult(
            name="Secret",
            job_class_path="s.Secret",
            user=None,
            task_kwargs=None,
            queue=None,
            soft_time_limit=None,
            time_limit=None,
        )
    )
    reporter = LocalStoreReporter(store, secret, max_file_size=100)
    reporter.started()
    store.finish_if_unfinished(
        secret,
        LogEntry(level="warning", message="killed", grouping="initialization", created=WHEN),
        RunEnd(
            JobStatus.REVOKED, datetime.now(UTC), {"exc_type": "JobProcessEnded", "exc_message": "killed"}
        ),
    )
    # A JSON column has NUMERIC affinity in SQLite: a number is stored, and read back, as one.
    counted = store.create_job_result(
        NewJobResult(
            name="Count",
            job_class_path="c.Count",
            user="bob",
            task_kwargs={},
            queue="default",
            soft_time_limit=1.5,
            time_limit=3,
        )
    )
    store.finish_job_result(
        counted, RunEnd(JobStatus.FAILURE, WHEN, 7, "Traceback (most recent call last):\n")
    )
    return {"ok": ok, "secret": secret, "counted": counted, "made": uuid.UUID(made)}


def raw_rows(path: Path, ids: dict[str, uuid.UUID]) -> dict[str, list[dict[str, Any]]]:
    """Every row of the store's tables as stored, ids replaced by their role, the clock's by its form."""
    names = {value.hex: f"<{role}>" for role, value in ids.items()}
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in ("job_result", "job_log_entry", "file_proxy"):
        rows = []
        for row in connection.execute(f"SELECT * FROM {table} ORDER BY rowid"):
            values = dict(row)
            for column, value in values.items():
                if column in CLOCK_COLUMNS or (column == "date_started" and value):
                    assert TIMESTAMP.fullmatch(value), (column, value)
                    values[column] = "<clock>"
                elif column == "date_done" and table == "job_result" and values["status"] == "REVOKED":
                    assert TIMESTAMP.fullmatch(value), value
                    values[column] = "<clock>"
                elif isinstance(value, str) and value in names:
                    values[column] = names[value]
            rows.append(values)
        tables[table] = rows
    connection.close()
    return tables


def test_the_sqlite_writer_stores_what_the_models_store(tmp_path: Path) -> None:
    by_models = tmp_path / "models.sqlite3"
    by_sqlite3 = tmp_path / "sqlite3.sqlite3"
    models_store = SessionResultsStore.for_url(f"sqlite:///{by_models}")
    sqlite_store = SqliteResultsStore(str(by_sqlite3))
    try:
        models_ids = one_run(models_store)
        sqlite_ids = one_run(sqlite_store)
        for run in ("ok", "secret", "counted"):
            sqlite_summary = sqlite_store.summary(sqlite_ids[run])
            models_summary = models_store.summary(models_ids[run])
            assert sqlite_summary is not None
            assert models_summary is not None
            # The durations run from each store's own start time (the clock).
            assert models_summary == dataclasses.replace(
                sqlite_summary, id=models_ids[run], duration=models_summary.duration
            )
        counted = sqlite_store.summary(sqlite_ids["counted"])
        assert counted is not None
        assert (counted.result, counted.status) == (7, "FAILURE")
    finally:
        models_store.close()
        sqlite_store.close()
    assert raw_rows(by_sqlite3, sqlite_ids) == raw_rows(by_models, models_ids)


def test_the_models_read_what_the_sqlite_writer_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobplane.sqlite3'}"
    store = SqliteResultsStore(str(tmp_path / "jobplane.sqlite3"))
    try:
        ids = one_run(store)
        summary = store.summary(ids["ok"])
    finally:
        store.close()
    assert summary is not None
    assert (summary.status, summary.result, summary.traceback) == ("SUCCESS", {"rows": [1, 2]}, None)
    assert summary.log_counts == {
        "debug": 0,
        "info": 1,
        "success": 0,
        "warning": 0,
        "failure": 1,
        "error": 0,
        "critical": 0,
    }
    engine = create_store_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            done = session.get(JobResult, ids["ok"])
            assert done is not None
            assert done.status == JobStatus.SUCCESS
            assert done.name == "Grüße"
            assert done.task_kwargs == {"who": "Zoë", "n": 3, "tags": ["a", "b"], "nested": {"x": None}}
            assert done.result == {"rows": [1, 2]}
            assert (done.soft_time_limit, done.time_limit, done.dry_run) == (30.0, 60.5, False)
            assert (done.info_log_count, done.failure_log_count) == (1, 1)
            assert done.date_done == WHEN + timedelta(seconds=2)
            assert done.duration == summary.duration
            logs = list_log_entries(session=session, job_result_id=ids["ok"])
            assert [(e.log_level, e.message, e.created) for e in logs] == [
                ("info", "first", WHEN),
                ("failure", "second", WHEN),
            ]
            files = session.scalars(select(FileProxy)).all()
            assert [(f.id, f.name, f.content, f.size, f.job_result_id) for f in files] == [
                (ids["made"], "out.csv", b"a,b\n", 4, ids["ok"])
            ]
            revoked = session.get(JobResult, ids["secret"])
            assert revoked is not None
            assert (revoked.status, revoked.task_kwargs, revoked.warning_log_count) == ("REVOKED", None, 1)
            assert revoked.result == {"exc_type": "JobProcessEnded", "exc_message": "killed"}
    finally:
        engine.dispose()


def test_a_new_sqlite_store_is_migrated_by_alembic_and_then_only_read(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    store = SqliteResultsStore(str(path))
    try:
        assert store.revision() is None
        store.ensure_schema()
        assert store.revision() == HEAD_REVISION
        store.ensure_schema()
    finally:
        store.close()
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        assert current_revision(engine) == HEAD_REVISION
    finally:
        engine.dispose()


def test_a_naive_timestamp_is_refused_as_by_the_models(tmp_path: Path) -> None:
    store = SqliteResultsStore(str(tmp_path / "s.sqlite3"))
    try:
        store.ensure_schema()
        run = store.create_job_result(
            NewJobResult(
                name="n",
                job_class_path="m.N",
                user=None,
                task_kwargs=None,
                queue=None,
                soft_time_limit=None,
                time_limit=None,
            )
        )
        with pytest.raises(ValueError, match="only takes aware timestamps"):
            store.add_log_entry(run, LogEntry(level="info", message="x", created=datetime(2026, 1, 1)))
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///jobplane.sqlite3", "jobplane.sqlite3"),
        ("sqlite:////var/lib/jobplane/results.db", "/var/lib/jobplane/results.db"),
        ("sqlite+pysqlite:///r.db", "r.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file.db?timeout=5", None),
        ("sqlite:///with%20space.db", None),
        ("sqlite+aiosqlite:///r.db", None),
        ("postgresql+psycopg://u:p@h/db", None),
    ],
)
def test_only_a_plain_sqlite_file_is_written_without_sqlalchemy(url: str, path: str | None) -> None:
    assert sqlite_file(url) == path
    store = open_results_store(url) if path is not None else None
    assert store is None or isinstance(store, SqliteResultsStore)
