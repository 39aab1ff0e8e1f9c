"""Repository functions of the results store; they take a session and never commit (the caller does)."""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnDefault, Engine, bindparam, delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.base import Executable

from jobplane_crds.reports import LogEntry
from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker
from jobplane_store.models import LOG_LEVELS, FileProxy, JobLogEntry, JobResult, JobStatus, utcnow
from jobplane_store.sqlite import NewJobResult, ResultSummary, RunEnd, count_by_level

__all__ = [
    "SessionResultsStore",
    "add_file",
    "add_log_entry",
    "count_logs_by_level",
    "create_job_result",
    "delete_files",
    "finish_job_result",
    "get_job_result",
    "list_log_entries",
    "log_count_columns",
    "mark_started",
    "upsert_job_result",
]


def create_job_result(
    *,
    session: Session,
    name: str,
    job_class_path: str,
    user: str | None,
    task_kwargs: dict[str, Any] | None,
    queue: str | None = None,
    soft_time_limit: float | None = None,
    time_limit: float | None = None,
) -> JobResult:
    result = JobResult(
        id=uuid.uuid4(),
        name=name,
        job_class_path=job_class_path,
        user=user,
        status=JobStatus.PENDING,
        date_created=utcnow(),
        task_kwargs=task_kwargs,
        queue=queue,
        soft_time_limit=soft_time_limit,
        time_limit=time_limit,
    )
    session.add(result)
    session.flush()
    return result


@functools.cache
def _upsert_statement(update_columns: tuple[str, ...]) -> Executable:
    """``INSERT ... ON CONFLICT (id) DO NOTHING`` (no ``update_columns``) or ``DO UPDATE SET`` those columns,
    ``RETURNING`` the row: one statement per column set, built once, as a ``text()`` with a typed bind
    parameter and a typed result column per column of the table.

    Not SQLAlchemy's ``postgresql.insert(...).on_conflict_do_update(...)``: in SQLAlchemy 2.0 the dialects'
    ``Insert`` has no cache key (``inherit_cache = False``, logged ``[no key]``; cacheable from 2.1 on), so
    it was compiled anew on every execution, the largest part of the run endpoint's SQL CPU. A ``text()``
    with typed parameters is cached per dialect like any other statement; its SQL is the upsert that
    Postgres and SQLite (3.35+) both speak, and the types still convert each value (UUIDs, aware
    timestamps, JSON/JSONB, with Postgres's bind casts) as the ORM's insert did; it returns the row as
    JobResult entities.
    """
    table = JobResult.__table__
    names = [column.name for column in table.columns]

    def quoted(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    conflict = (
        "DO UPDATE SET " + ", ".join(f"{quoted(name)} = excluded.{quoted(name)}" for name in update_columns)
        if update_columns
        else "DO NOTHING"
    )
    sql = (
        f"INSERT INTO {quoted(JobResult.__tablename__)} ({', '.join(quoted(name) for name in names)}) "
        f"VALUES ({', '.join(f':{name}' for name in names)}) "
        f"ON CONFLICT ({quoted('id')}) {conflict} "
        f"RETURNING {', '.join(quoted(name) for name in names)}"
    )
    typed = [bindparam(column.name, type_=column.type) for column in table.columns]
    # The ORM statement itself is kept too: its cache key (30 parameters' worth) is then computed once.
    return select(JobResult).from_statement(text(sql).bindparams(*typed).columns(*table.columns))


def _default_of(default: Any) -> Any:
    """A column's Python-side default (what the ORM's insert would have used for a value not given)."""
    if not isinstance(default, ColumnDefault):
        return None
    return default.arg(None) if default.is_callable else default.arg


def upsert_job_result(
    session: Session, values: Mapping[str, Any], *, update_columns: Collection[str] = ()
) -> JobResult | None:
    """Insert the JobResult ``values`` describe (``id`` required; columns not given take their defaults);
    if a row of that id exists already (another writer came first), set only ``update_columns`` of it to
    the given values, or leave it as it is when none are named.

    Returns the row as stored after the statement (loaded into the session, replacing what it held), or
    None when an existing row was left as it is. The one upsert of job results: the run endpoint, the
    JobRun mirror and the pod's first report all write through it.
    """
    columns = JobResult.__table__.columns
    unknown = (set(values) | set(update_columns)) - {column.name for column in columns}
    if unknown or "id" not in values:
        raise ValueError(f"not a job result row: unknown columns {sorted(unknown)}, id {values.get('id')!r}")
    row = {
        column.name: values[column.name] if column.name in values else _default_of(column.default)
        for column in columns
    }
    statement = _upsert_statement(tuple(column.name for column in columns if column.name in update_columns))
    return session.execute(
        statement,
        row,
        execution_options={"populate_existing": True},
    ).scalar_one_or_none()


def get_job_result(*, session: Session, job_result_id: uuid.UUID) -> JobResult | None:
    return session.get(JobResult, job_result_id)


def mark_started(*, session: Session, job_result_id: uuid.UUID, now: datetime) -> None:
    session.execute(
        update(JobResult)
        .where(JobResult.id == job_result_id, JobResult.status == JobStatus.PENDING)
        .values(status=JobStatus.STARTED, date_started=now)
    )


def add_log_entry(*, session: Session, job_result_id: uuid.UUID, entry: LogEntry) -> None:
    session.add(
        JobLogEntry(
            job_result_id=job_result_id,
            log_level=entry.level,
            grouping=entry.grouping,
            message=entry.message,
            log_object=entry.log_object,
            absolute_url=entry.absolute_url,
            created=entry.created,
        )
    )


def add_file(*, session: Session, job_result_id: uuid.UUID | None, name: str, content: bytes) -> FileProxy:
    proxy = FileProxy(
        id=uuid.uuid4(), name=name, content=content, size=len(content), job_result_id=job_result_id
    )
    session.add(proxy)
    session.flush()
    return proxy


def delete_files(*, session: Session, file_ids: Sequence[uuid.UUID]) -> None:
    if file_ids:
        session.execute(delete(FileProxy).where(FileProxy.id.in_(list(file_ids))))


def count_logs_by_level(*, session: Session, job_result_id: uuid.UUID) -> dict[str, int]:
    rows = session.execute(
        select(JobLogEntry.log_level, func.count())
        .where(JobLogEntry.job_result_id == job_result_id)
        .group_by(JobLogEntry.log_level)
    ).tuples()
    return count_by_level(rows)


def log_count_columns(*, session: Session, job_result_id: uuid.UUID) -> dict[str, int]:
    """The per-level counts as the JobResult columns that hold them (``info_log_count``, ...)."""
    counts = count_logs_by_level(session=session, job_result_id=job_result_id)
    return {f"{level}_log_count": count for level, count in counts.items()}


def finish_job_result(
    *,
    session: Session,
    job_result_id: uuid.UUID,
    status: JobStatus,
    now: datetime,
    result: Any = None,
    traceback: str | None = None,
) -> bool:
    """Move a run to a terminal status with its per-level log counts; False if it already ended."""
    counts = log_count_columns(session=session, job_result_id=job_result_id)
    changed = session.execute(
        update(JobResult)
        .where(
            JobResult.id == job_result_id,
            JobResult.status.in_([JobStatus.PENDING, JobStatus.STARTED]),
        )
        .values(
            status=status,
            date_done=now,
            result=result,
            traceback=traceback,
            **counts,
        )
    )
    return bool(changed.rowcount)  # type: ignore[attr-defined]


def list_log_entries(
    *, session: Session, job_result_id: uuid.UUID, after_id: int | None = None
) -> list[JobLogEntry]:
    statement = select(JobLogEntry).where(JobLogEntry.job_result_id == job_result_id)
    if after_id is not None:
        statement = statement.where(JobLogEntry.id > after_id)
    return list(session.scalars(statement.order_by(JobLogEntry.id)))


class SessionResultsStore:
    """A local run's units of work on any results store, through the models: one short transaction each.

    The counterpart of :class:`jobplane_store.sqlite.SqliteResultsStore` (which a run on a SQLite file uses
    instead, without SQLAlchemy), with the same methods; the local runner takes either.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    @classmethod
    def for_url(cls, url: str) -> SessionResultsStore:
        return cls(make_sessionmaker(create_store_engine(url)))

    @property
    def _engine(self) -> Engine:
        engine: Engine = self._sessions.kw["bind"]
        return engine

    def close(self) -> None:
        self._engine.dispose()

    def ensure_schema(self) -> None:
        ensure_schema(self._engine)

    def create_job_result(self, new: NewJobResult) -> uuid.UUID:
        with self._sessions.begin() as session:
            return create_job_result(session=session, **dataclasses.asdict(new)).id

    def mark_started(self, job_result_id: uuid.UUID, now: datetime) -> None:
        with self._sessions.begin() as session:
            mark_started(session=session, job_result_id=job_result_id, now=now)

    def add_log_entry(self, job_result_id: uuid.UUID, entry: LogEntry) -> None:
        with self._sessions.begin() as session:
            add_log_entry(session=session, job_result_id=job_result_id, entry=entry)

    def add_file(self, job_result_id: uuid.UUID | None, name: str, content: bytes) -> uuid.UUID:
        with self._sessions.begin() as session:
            return add_file(session=session, job_result_id=job_result_id, name=name, content=content).id

    def read_file(self, file_id: uuid.UUID) -> tuple[str, bytes] | None:
        with self._sessions() as session:
            proxy = session.get(FileProxy, file_id)
            return None if proxy is None else (proxy.name, proxy.content)

    def delete_files(self, file_ids: Sequence[uuid.UUID]) -> None:
        with self._sessions.begin() as session:
            delete_files(session=session, file_ids=file_ids)

    def finish_job_result(self, job_result_id: uuid.UUID, end: RunEnd) -> bool:
        with self._sessions.begin() as session:
            return finish_job_result(session=session, job_result_id=job_result_id, **dataclasses.asdict(end))

    def finish_if_unfinished(self, job_result_id: uuid.UUID, entry: LogEntry, end: RunEnd) -> None:
        with self._sessions.begin() as session:
            current = get_job_result(session=session, job_result_id=job_result_id)
            if current is None or JobStatus(current.status).is_terminal:
                return
            add_log_entry(session=session, job_result_id=job_result_id, entry=entry)
            session.flush()
            finish_job_result(session=session, job_result_id=job_result_id, **dataclasses.asdict(end))

    def summary(self, job_result_id: uuid.UUID) -> ResultSummary | None:
        with self._sessions() as session:
            done = get_job_result(session=session, job_result_id=job_result_id)
            if done is None:
                return None
            return ResultSummary(
                id=done.id,
                status=done.status,
                result=done.result,
                traceback=done.traceback,
                duration=done.duration,
                log_counts={level: getattr(done, f"{level}_log_count") for level in LOG_LEVELS},
            )
