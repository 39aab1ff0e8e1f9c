"""SQLAlchemy models of the results store: JobResult, JobLogEntry and FileProxy, as in Nautobot."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeEngine

# Defined without SQLAlchemy, for the local run's writes on SQLite (jobplane_store.sqlite).
from jobplane_store.sqlite import LOG_LEVELS, JobStatus

__all__ = [
    "LOG_LEVELS",
    "Base",
    "FileProxy",
    "JobLogEntry",
    "JobResult",
    "JobResultTombstone",
    "JobStatus",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp on every backend: stored as UTC, read back aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the results store only takes aware timestamps")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class JSONType(TypeDecorator[Any]):
    """JSON on every backend, JSONB on Postgres; None is stored as SQL NULL, not as a JSON null."""

    impl = JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            # Imported here, not at the top: the Postgres dialect package is about a tenth of a local
            # SQLite run's start-up (python -X importtime), and an engine on Postgres has loaded it already.
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(JSON(none_as_null=True))


BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType(), Any: JSONType()}


class JobResult(Base):
    """One run of a job: who asked, what happened, what it returned."""

    __tablename__ = "job_result"
    __table_args__ = (Index("ix_job_result_class_path_created", "job_class_path", "date_created"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255))
    job_class_path: Mapped[str] = mapped_column(String(255))
    user: Mapped[str | None] = mapped_column(String(150))
    status: Mapped[str] = mapped_column(String(30), default=JobStatus.PENDING)
    date_created: Mapped[datetime] = mapped_column(default=utcnow)
    date_started: Mapped[datetime | None]
    date_done: Mapped[datetime | None]
    result: Mapped[Any | None]
    traceback: Mapped[str | None] = mapped_column(Text)
    # The inputs, for a re-run; None when the job has sensitive variables (they are never stored).
    task_kwargs: Mapped[dict[str, Any] | None]
    queue: Mapped[str | None] = mapped_column(String(100))
    soft_time_limit: Mapped[float | None]
    time_limit: Mapped[float | None]

    debug_log_count: Mapped[int] = mapped_column(default=0)
    info_log_count: Mapped[int] = mapped_column(default=0)
    success_log_count: Mapped[int] = mapped_column(default=0)
    warning_log_count: Mapped[int] = mapped_column(default=0)
    failure_log_count: Mapped[int] = mapped_column(default=0)
    error_log_count: Mapped[int] = mapped_column(default=0)
    critical_log_count: Mapped[int] = mapped_column(default=0)

    # The Kubernetes side of a run: its JobDefinition (the API's job id), its JobRun, and how it ended.
    job_model_id: Mapped[uuid.UUID | None]
    run_name: Mapped[str | None] = mapped_column(String(253))
    run_namespace: Mapped[str | None] = mapped_column(String(63))
    # PascalCase reason from the JobRun (e.g. OOMKilled) and its message, for runs that ended outside the job.
    reason: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str | None] = mapped_column(Text)
    commit: Mapped[str | None] = mapped_column(String(64))
    # The digest of the image the run's pod ran (sha256:...), from the pod's status via its JobRun.
    image_digest: Mapped[str | None] = mapped_column(String(200))
    # Why the run has not started, while it waits (its JobRun's Waiting condition); None once it runs.
    waiting_reason: Mapped[str | None] = mapped_column(String(100))
    waiting_message: Mapped[str | None] = mapped_column(Text)
    dry_run: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The JobSchedule (its uid: the scheduled job's id) whose fire made this run; None for other runs.
    scheduled_job_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    # Who approved the run of an approval-required job, and when (its JobRun's spec.approval).
    approved_by: Mapped[str | None] = mapped_column(String(253))
    approved_at: Mapped[datetime | None]

    logs: Mapped[list[JobLogEntry]] = relationship(
        back_populates="job_result",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="JobLogEntry.id",
    )
    files: Mapped[list[FileProxy]] = relationship(
        back_populates="job_result",
        cascade="all, delete-orphan",
        passive_deletes=True,
        foreign_keys="FileProxy.job_result_id",
    )

    @property
    def duration(self) -> float | None:
        """Seconds from start (or creation) to done, as Nautobot computes it."""
        if self.date_done is None:
            return None
        return (self.date_done - (self.date_started or self.date_created)).total_seconds()


# Lists are newest first, ordered by (date_created, id); filtered by status, or by user when a permission
# is constrained to the requesting user.
Index("ix_job_result_created_id", JobResult.date_created.desc(), JobResult.id.desc())
Index("ix_job_result_status_created", JobResult.status, JobResult.date_created.desc(), JobResult.id.desc())
Index("ix_job_result_user_created", JobResult.user, JobResult.date_created.desc(), JobResult.id.desc())


class JobLogEntry(Base):
    """One log line of a run, written as it happens."""

    __tablename__ = "job_log_entry"
    __table_args__ = (
        Index("ix_job_log_entry_result_created", "job_result_id", "created"),
        # A log stream reads "this result's entries after id N".
        Index("ix_job_log_entry_result_id", "job_result_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    job_result_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("job_result.id", ondelete="CASCADE"))
    log_level: Mapped[str] = mapped_column(String(10), default="info")
    grouping: Mapped[str] = mapped_column(String(100), default="main")
    message: Mapped[str] = mapped_column(Text, default="")
    log_object: Mapped[str | None] = mapped_column(String(200))
    absolute_url: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(default=utcnow)

    job_result: Mapped[JobResult] = relationship(back_populates="logs")


class FileProxy(Base):
    """A file a job created (or an uploaded FileVar input, which has no job result until run)."""

    __tablename__ = "file_proxy"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int]
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    job_result_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("job_result.id", ondelete="CASCADE"), index=True
    )
    # An uploaded FileVar input is bound to the run that consumes it (job_result_id stays NULL, as in
    # Nautobot), so that only that run can read it and it goes when the run's result does.
    input_for_result_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("job_result.id", ondelete="CASCADE"), index=True
    )

    job_result: Mapped[JobResult | None] = relationship(back_populates="files", foreign_keys=[job_result_id])


class JobResultTombstone(Base):
    """A job result a user deleted: the mirror never records its run again (a late watch event, a relist)."""

    __tablename__ = "job_result_tombstone"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    run_name: Mapped[str | None] = mapped_column(String(253))
    run_namespace: Mapped[str | None] = mapped_column(String(63))
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_by: Mapped[str | None] = mapped_column(String(150))
