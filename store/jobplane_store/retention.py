"""Results retention: which finished results are past their keep, and deleting them in small batches.

A result goes, with its log entries and files, once it is older than the policy's age or beyond the newest
``keep_per_job`` results of its job, whichever comes first; a result that has not finished never goes.
Each batch is one short transaction, so retention never holds locks for long on a busy store; the batches
continue until nothing is left to delete.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from jobplane_store.models import FileProxy, JobLogEntry, JobResult, JobResultTombstone, JobStatus

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "RETENTION_USER",
    "RetentionPolicy",
    "RetentionReport",
    "apply_retention",
    "delete_results",
    "job_cutoffs",
    "parse_age",
    "results_past_age",
    "results_past_count",
]

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
# deleted_by of the tombstones retention leaves (see delete_results).
RETENTION_USER = "results-retention"
FINISHED = (JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.REVOKED)
_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """An age written as a count and a unit: 90s, 30m, 12h, 30d, 4w."""
    found = _AGE.match(text)
    if found is None or int(found.group(1)) <= 0:
        raise ValueError(f"{text!r} is not an age: a positive count and a unit, s, m, h, d or w (e.g. 30d)")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


@dataclass(frozen=True)
class RetentionPolicy:
    """How long finished results are kept: ``max_age``, and at most ``keep_per_job`` per job (class path)."""

    max_age: timedelta | None = None
    keep_per_job: int | None = None

    def __post_init__(self) -> None:
        if self.max_age is None and self.keep_per_job is None:
            raise ValueError("a retention policy needs a maximum age, a count to keep per job, or both")
        if self.max_age is not None and self.max_age <= timedelta(0):
            raise ValueError("the maximum age of results must be positive")
        if self.keep_per_job is not None and self.keep_per_job < 1:
            raise ValueError("the results kept per job must be at least 1 (use a maximum age to keep none)")


@dataclass
class RetentionReport:
    """What one application of the policy deleted."""

    results: int = 0
    logs: int = 0
    files: int = 0
    batches: int = 0

    def summary(self) -> str:
        return (
            f"deleted {self.results} results, {self.logs} log entries and {self.files} files "
            f"in {self.batches} batches"
        )


def results_past_age(*, session: Session, cutoff: datetime, limit: int) -> list[uuid.UUID]:
    """Up to ``limit`` finished results created before ``cutoff``, oldest first."""
    query = (
        select(JobResult.id)
        .where(JobResult.date_created < cutoff, JobResult.status.in_(FINISHED))
        .order_by(JobResult.date_created, JobResult.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def job_cutoffs(*, session: Session, keep: int) -> dict[str, tuple[datetime, uuid.UUID]]:
    """By job (class path) with more than ``keep`` results: its ``keep``-th newest result's (created, id).

    Results older than that one are beyond the count. Results made after this is read are newer, so the
    cutoffs hold for the whole application of the policy.
    """
    cutoffs: dict[str, tuple[datetime, uuid.UUID]] = {}
    for job in session.scalars(select(JobResult.job_class_path).distinct()):
        row = session.execute(
            select(JobResult.date_created, JobResult.id)
            .where(JobResult.job_class_path == job)
            .order_by(JobResult.date_created.desc(), JobResult.id.desc())
            .offset(keep - 1)
            .limit(1)
        ).first()
        if row is not None:
            cutoffs[job] = (row.date_created, row.id)
    return cutoffs


def results_past_count(
    *, session: Session, job: str, cutoff: tuple[datetime, uuid.UUID], limit: int
) -> list[uuid.UUID]:
    """Up to ``limit`` finished results of ``job`` older than its cutoff (see job_cutoffs), oldest first."""
    created, last_id = cutoff
    older = (JobResult.date_created < created) | (
        (JobResult.date_created == created) & (JobResult.id < last_id)
    )
    query = (
        select(JobResult.id)
        .where(JobResult.job_class_path == job, older, JobResult.status.in_(FINISHED))
        .order_by(JobResult.date_created, JobResult.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def delete_results(*, session: Session, ids: list[uuid.UUID], report: RetentionReport) -> None:
    """Delete these results with their log entries and files (uploaded inputs too), and count them.

    A result of a JobRun gets a tombstone, as one a user deletes: the API's mirror then never records it
    again from a JobRun that is still in the cluster (kept longer than its result).
    """
    logs = session.execute(delete(JobLogEntry).where(JobLogEntry.job_result_id.in_(ids)))
    files = session.execute(
        delete(FileProxy).where(FileProxy.job_result_id.in_(ids) | FileProxy.input_for_result_id.in_(ids))
    )
    gone = session.execute(
        delete(JobResult)
        .where(JobResult.id.in_(ids), JobResult.status.in_(FINISHED))
        .returning(JobResult.id, JobResult.run_name, JobResult.run_namespace)
    ).all()
    tombstones = [
        {
            "id": row.id,
            "run_name": row.run_name,
            "run_namespace": row.run_namespace,
            "deleted_by": RETENTION_USER,
        }
        for row in gone
        if row.run_name
    ]
    if tombstones:
        session.execute(insert(JobResultTombstone), tombstones)
    report.results += len(gone)
    report.logs += logs.rowcount  # type: ignore[attr-defined]
    report.files += files.rowcount  # type: ignore[attr-defined]
    report.batches += 1


def _past_count(
    session: Session, *, job: str, cutoff: tuple[datetime, uuid.UUID], limit: int
) -> list[uuid.UUID]:
    return results_past_count(session=session, job=job, cutoff=cutoff, limit=limit)


def apply_retention(
    sessions: sessionmaker[Session],
    policy: RetentionPolicy,
    *,
    now: datetime,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> RetentionReport:
    """Delete every finished result past ``policy`` at ``now``, ``batch_size`` results per transaction."""
    if batch_size < 1:
        raise ValueError("the batch size must be at least 1")
    report = RetentionReport()

    def drain(pick: Callable[[Session], list[uuid.UUID]]) -> None:
        while True:
            with sessions() as session, session.begin():
                ids = pick(session)
                if ids:
                    delete_results(session=session, ids=ids, report=report)
            if ids:
                log.info("retention batch results=%d total=%d", len(ids), report.results)
            if len(ids) < batch_size:
                return

    if policy.max_age is not None:
        cutoff = now - policy.max_age
        drain(lambda session: results_past_age(session=session, cutoff=cutoff, limit=batch_size))
    if policy.keep_per_job is not None:
        keep = policy.keep_per_job
        with sessions() as session:
            cutoffs = job_cutoffs(session=session, keep=keep)
        for job, job_cutoff in sorted(cutoffs.items()):
            drain(partial(_past_count, job=job, cutoff=job_cutoff, limit=batch_size))
    return report
