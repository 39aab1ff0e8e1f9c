"""A local run's writes to a SQLite results store through the standard library's sqlite3, without SQLAlchemy.

``jobplane runjob --local`` on the default SQLite store is the job author's inner loop, and importing
SQLAlchemy's ORM cost more than the rest of a no-op run (measured start-up cost,
``bench/runjob_overhead.py``). The schema stays the Alembic migrations' alone: :meth:`SqliteResultsStore.
ensure_schema` reads the stored revision and, when it is not :data:`HEAD_REVISION`, runs the migrations
through :mod:`jobplane_store.database`. The rows are those :mod:`jobplane_store.results` writes through the
models, value for value (UUIDs as 32 hex digits, UTC timestamps without zone, JSON text, None as NULL):
``tests/integration/store/test_sqlite.py`` writes the same run both ways and compares the rows, and
reads these back through the models.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from jobplane_crds.reports import LogEntry

__all__ = [
    "HEAD_REVISION",
    "LOG_LEVELS",
    "JobStatus",
    "NewJobResult",
    "ResultSummary",
    "RunEnd",
    "SqliteResultsStore",
    "count_by_level",
    "set_sqlite_pragmas",
    "sqlite_file",
]

# The newest migration. Checked against Alembic's own view by a test, so that a start-up can tell an
# up-to-date database without importing Alembic (which costs a tenth of a second per CLI call).
HEAD_REVISION = "0008_result_provenance_waiting"
LOG_LEVELS = ("debug", "info", "success", "warning", "failure", "error", "critical")


class JobStatus(StrEnum):
    """Celery's state names, which Nautobot clients already understand."""

    PENDING = "PENDING"
    STARTED = "STARTED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.REVOKED)


def set_sqlite_pragmas(dbapi_connection: Any) -> None:
    """What makes one SQLite file safe for two processes (the CLI and its job), on a new connection."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    # Cascades need foreign keys on; WAL lets the CLI read a run's logs while its job process writes them.
    cursor.execute("PRAGMA foreign_keys=ON")
    _set_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _set_wal(cursor: Any) -> None:
    # Two processes opening a new database at once both switch it to WAL; SQLite answers the loser
    # "database is locked" at once, without waiting on the busy timeout. The switch is short: try again.
    for attempt in range(50):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.02 * (attempt + 1))


def sqlite_file(url: str) -> str | None:
    """The file of a plain ``sqlite:///PATH`` URL; None for any other (memory, options, escapes, Postgres)."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            path = url.removeprefix(prefix)
            if path and path != ":memory:" and not any(char in path for char in "?%#"):
                return path
    return None


def _timestamp(value: datetime) -> str:
    # The models' UTCDateTime on SQLite: UTC without a zone, in SQLAlchemy's DATETIME text form.
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the results store only takes aware timestamps")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _read_timestamp(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _json(value: Any) -> str | None:
    # The models' JSONType: none_as_null, SQLAlchemy's default serializer.
    return None if value is None else json.dumps(value)


def _read_json(value: Any) -> Any:
    # A JSON column has NUMERIC affinity in SQLite: a number comes back as one, as SQLAlchemy's reader allows.
    if value is None or isinstance(value, int | float):
        return value
    return json.loads(value)


def count_by_level(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Every level's count of log entries (0 for a level without any) from (level, count) rows."""
    counts = dict.fromkeys(LOG_LEVELS, 0)
    counts.update({level: count for level, count in rows if level in counts})
    return counts


@dataclass(frozen=True)
class NewJobResult:
    """A run about to start: what its JobResult is created with."""

    name: str
    job_class_path: str
    user: str | None
    task_kwargs: dict[str, Any] | None
    queue: str | None = None
    soft_time_limit: float | None = None
    time_limit: float | None = None


@dataclass(frozen=True)
class RunEnd:
    """How a run ended: its terminal status, when, its result and its traceback."""

    status: JobStatus
    now: datetime
    result: Any = None
    traceback: str | None = None


@dataclass(frozen=True)
class ResultSummary:
    """What the CLI prints of a finished run (Nautobot's runjob summary)."""

    id: uuid.UUID
    status: str
    result: Any
    traceback: str | None
    duration: float | None
    log_counts: dict[str, int]


class SqliteResultsStore:
    """The results store of a local run on one SQLite file; a connection per process, opened on first use."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            # Autocommit: every unit of work below opens its own transaction (see _transaction).
            connection = sqlite3.connect(self.path, isolation_level=None)
            set_sqlite_pragmas(connection)
            self._connection = connection
        return self._connection

    def close(self) -> None:
        """Close the connection (before a fork, and at the end: closing checkpoints the WAL into the file)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def revision(self) -> str | None:
        try:
            row = self._connect().execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return None
        return None if row is None else str(row[0])

    def ensure_schema(self) -> None:
        """Bring the schema up to date by the migrations (Alembic) unless the stored revision is the head."""
        if self.revision() == HEAD_REVISION:
            return
        self.close()
        # Only a store that is not up to date pays for SQLAlchemy and Alembic (measured start-up cost).
        from jobplane_store.database import create_store_engine, ensure_schema

        engine = create_store_engine(f"sqlite:///{self.path}")
        try:
            ensure_schema(engine)
        finally:
            engine.dispose()

    def create_job_result(self, new: NewJobResult) -> uuid.UUID:
        job_result_id = uuid.uuid4()
        counts = [f"{level}_log_count" for level in LOG_LEVELS]
        columns = [
            "id",
            "name",
            "job_class_path",
            "user",
            "status",
            "date_created",
            "task_kwargs",
            "queue",
            "soft_time_limit",
            "time_limit",
            *counts,
            "dry_run",
        ]
        values = [
            job_result_id.hex,
            new.name,
            new.job_class_path,
            new.user,
            JobStatus.PENDING.value,
            _timestamp(datetime.now(UTC)),
            _json(new.task_kwargs),
            new.queue,
            new.soft_time_limit,
            new.time_limit,
            *([0] * len(counts)),
            False,
        ]
        quoted = ", ".join(f'"{column}"' for column in columns)
        with self._transaction() as connection:
            connection.execute(
                f"INSERT INTO job_result ({quoted}) VALUES ({', '.join('?' * len(columns))})", values
            )
        return job_result_id

    def mark_started(self, job_result_id: uuid.UUID, now: datetime) -> None:
        with self._transaction() as connection:
            connection.execute(
                "UPDATE job_result SET status = ?, date_started = ? WHERE id = ? AND status = ?",
                (JobStatus.STARTED.value, _timestamp(now), job_result_id.hex, JobStatus.PENDING.value),
            )

    def add_log_entry(self, job_result_id: uuid.UUID, entry: LogEntry) -> None:
        with self._transaction() as connection:
            self._insert_log_entry(connection, job_result_id, entry)

    def _insert_log_entry(
        self, connection: sqlite3.Connection, job_result_id: uuid.UUID, entry: LogEntry
    ) -> None:
        connection.execute(
            "INSERT INTO job_log_entry (job_result_id, log_level, grouping, message, log_object, "
            "absolute_url, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                job_result_id.hex,
                entry.level,
                entry.grouping,
                entry.message,
                entry.log_object,
                entry.absolute_url,
                _timestamp(entry.created),
            ),
        )

    def add_file(self, job_result_id: uuid.UUID | None, name: str, content: bytes) -> uuid.UUID:
        file_id = uuid.uuid4()
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO file_proxy (id, name, content, size, uploaded_at, job_result_id) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    file_id.hex,
                    name,
                    content,
                    len(content),
                    _timestamp(datetime.now(UTC)),
                    None if job_result_id is None else job_result_id.hex,
                ),
            )
        return file_id

    def read_file(self, file_id: uuid.UUID) -> tuple[str, bytes] | None:
        row = (
            self._connect()
            .execute("SELECT name, content FROM file_proxy WHERE id = ?", (file_id.hex,))
            .fetchone()
        )
        return None if row is None else (row[0], row[1])

    def delete_files(self, file_ids: Sequence[uuid.UUID]) -> None:
        if not file_ids:
            return
        with self._transaction() as connection:
            connection.execute(
                f"DELETE FROM file_proxy WHERE id IN ({', '.join('?' * len(file_ids))})",
                [file_id.hex for file_id in file_ids],
            )

    def finish_job_result(self, job_result_id: uuid.UUID, end: RunEnd) -> bool:
        """Move a run to a terminal status with its per-level log counts; False if it already ended."""
        with self._transaction() as connection:
            return self._finish(connection, job_result_id, end)

    def _finish(self, connection: sqlite3.Connection, job_result_id: uuid.UUID, end: RunEnd) -> bool:
        counts = count_by_level(
            connection.execute(
                "SELECT log_level, count(*) FROM job_log_entry WHERE job_result_id = ? GROUP BY log_level",
                (job_result_id.hex,),
            )
        )
        assignments = ", ".join(f"{level}_log_count = ?" for level in LOG_LEVELS)
        changed = connection.execute(
            f"UPDATE job_result SET status = ?, date_done = ?, result = ?, traceback = ?, {assignments} "
            "WHERE id = ? AND status IN (?, ?)",
            (
                end.status.value,
                _timestamp(end.now),
                _json(end.result),
                end.traceback,
                *(counts[level] for level in LOG_LEVELS),
                job_result_id.hex,
                JobStatus.PENDING.value,
                JobStatus.STARTED.value,
            ),
        )
        return bool(changed.rowcount)

    def finish_if_unfinished(self, job_result_id: uuid.UUID, entry: LogEntry, end: RunEnd) -> None:
        """Log ``entry`` and end the run, in one transaction, unless it has ended already."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT status FROM job_result WHERE id = ?", (job_result_id.hex,)
            ).fetchone()
            if row is None or JobStatus(row[0]).is_terminal:
                return
            self._insert_log_entry(connection, job_result_id, entry)
            self._finish(connection, job_result_id, end)

    def summary(self, job_result_id: uuid.UUID) -> ResultSummary | None:
        counts = ", ".join(f"{level}_log_count" for level in LOG_LEVELS)
        row = (
            self._connect()
            .execute(
                f"SELECT status, result, traceback, date_created, date_started, date_done, {counts} "
                "FROM job_result WHERE id = ?",
                (job_result_id.hex,),
            )
            .fetchone()
        )
        if row is None:
            return None
        status, result, traceback, created, started, done, *level_counts = row
        done_at = _read_timestamp(done)
        began = _read_timestamp(started) or _read_timestamp(created)
        return ResultSummary(
            id=job_result_id,
            status=status,
            result=_read_json(result),
            traceback=traceback,
            duration=None if done_at is None or began is None else (done_at - began).total_seconds(),
            log_counts=dict(zip(LOG_LEVELS, level_counts, strict=True)),
        )
