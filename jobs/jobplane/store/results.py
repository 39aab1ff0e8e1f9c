"""Repository functions of the results store; they take a session and never commit (the caller does)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from jobplane.joblog import LogEntry
from jobplane.store.database import create_store_engine, ensure_schema, make_sessionmaker
from jobplane.store.models import LOG_LEVELS, FileProxy, JobLogEntry, JobResult, JobStatus, utcnow
from jobplane.store.sqlite import NewJobResult, ResultSummary, RunEnd, count_by_level

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

    The counterpart of :class:`jobplane.store.sqlite.SqliteResultsStore` (which a run on a SQLite file uses
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
