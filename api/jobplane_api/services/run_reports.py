"""What a job pod reports about its own run: start, log entries, output files, input files and its result.

The pod proves which run it speaks for with a run-scoped token (:mod:`jobplane_crds.runtoken`); every function
here is already scoped to that one run. Functions take a keyword-only ``session`` and never commit: the
request's session dependency does.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from jobplane.joblog import LogEntry
from jobplane_api.errors import ApiError, NotFound, PayloadTooLarge, Unavailable
from jobplane_api.services.result_events import notify_result_changed
from jobplane_crds.runtoken import verify_run_token
from jobplane_store.models import FileProxy, JobLogEntry, JobResult, JobStatus
from jobplane_store.results import log_count_columns, upsert_job_result

__all__ = [
    "FINAL_STATUSES",
    "MAX_LOG_BATCH",
    "InputFile",
    "RunTokenInvalid",
    "add_logs",
    "authenticate_run",
    "discard_input_files",
    "read_input_file",
    "record_result",
    "record_started",
    "store_file",
]

log = logging.getLogger(__name__)

# One POST of logs/ carries at most this many entries; the pod sends batches of 200.
MAX_LOG_BATCH = 1000
FINAL_STATUSES = frozenset({JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.REVOKED})
_UNFINISHED = (JobStatus.PENDING, JobStatus.STARTED)
_COLUMN_MAX = {
    "name": 255,
    "job_class_path": 255,
    "user": 150,
    "run_name": 253,
    "run_namespace": 63,
    "queue": 100,
    "commit": 64,
}


class RunTokenInvalid(ApiError):
    """No run token, or one of another run: the pod endpoints answer 401 (not Nautobot's 403)."""

    status_code = 401
    code = "RunTokenInvalid"
    default_detail = "A valid run token is required: Authorization: Bearer <token>."


@dataclass(frozen=True)
class InputFile:
    """An uploaded FileVar input, served to the one run it is bound to."""

    name: str
    content: bytes


def authenticate_run(*, key: bytes | None, run_uid: str, authorization: str | None) -> uuid.UUID:
    """The run a request speaks for, from ``Authorization: Bearer <token>``; RunTokenInvalid otherwise."""
    if key is None:
        raise Unavailable("No run-token key is configured (JOBPLANE_API_RUN_TOKEN_KEY): pods cannot report.")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RunTokenInvalid()
    if not verify_run_token(key, run_uid, token):
        raise RunTokenInvalid("This run token is not valid for this run.")
    try:
        return uuid.UUID(run_uid)
    except ValueError:
        # Only reachable with the real key: a token minted for a name that is no run uid.
        raise NotFound("No run with this id.") from None


def _clip(column: str, value: str | None) -> str | None:
    return None if value is None else value[: _COLUMN_MAX[column]]


def _status_of(session: Session, run_uid: uuid.UUID, *, lock: bool = False) -> str:
    query = select(JobResult.status).where(JobResult.id == run_uid)
    status = session.scalar(query.with_for_update() if lock else query)
    if status is None:
        raise NotFound("No job result for this run: report started/ first.")
    return status


def record_started(
    *,
    session: Session,
    run_uid: uuid.UUID,
    class_path: str,
    run_name: str | None,
    namespace: str | None,
    user: str | None,
    now: datetime,
    queue: str | None = None,
    commit: str | None = None,
) -> None:
    """Create the run's JobResult if neither the API nor the mirror has yet, and move it to STARTED.

    A row that already exists keeps its name and user (its creator knew them better) but takes the class
    path the pod runs (the mirror may have made it from the run's spec.job, a definition's name) and the
    queue and commit it lacks: the pod may report before the run's first status, which also has them.
    A terminal row is left as it is.
    """
    values: dict[str, Any] = {
        "id": run_uid,
        "name": _clip("name", class_path),
        "job_class_path": _clip("job_class_path", class_path),
        "user": _clip("user", user),
        "status": JobStatus.STARTED,
        "date_created": now,
        "date_started": now,
        "run_name": _clip("run_name", run_name),
        "run_namespace": _clip("run_namespace", namespace),
        "queue": _clip("queue", queue),
        "commit": _clip("commit", commit),
    }
    notify_result_changed(session, run_uid)
    if upsert_job_result(session, values) is not None:
        log.info("run started, result created run_uid=%s class_path=%s", run_uid, class_path)
        return
    session.execute(
        update(JobResult)
        .where(JobResult.id == run_uid, JobResult.status.in_(_UNFINISHED))
        .values(
            status=JobStatus.STARTED,
            date_started=func.coalesce(JobResult.date_started, now),
            job_class_path=values["job_class_path"],
            run_name=func.coalesce(JobResult.run_name, values["run_name"]),
            run_namespace=func.coalesce(JobResult.run_namespace, values["run_namespace"]),
            queue=func.coalesce(JobResult.queue, values["queue"]),
            commit=func.coalesce(JobResult.commit, values["commit"]),
        )
    )
    log.info("run started run_uid=%s class_path=%s", run_uid, class_path)


def _refresh_counts(session: Session, run_uid: uuid.UUID) -> None:
    counts = log_count_columns(session=session, job_result_id=run_uid)
    session.execute(update(JobResult).where(JobResult.id == run_uid).values(**counts))


def add_logs(*, session: Session, run_uid: uuid.UUID, entries: Sequence[LogEntry]) -> int:
    """Store a batch of log entries; accepted after the result too (a late flush). Returns how many.

    The result row stays locked until the batch commits, so the batches of one run take their ids in the
    order they commit: a log stream that resumes after id N (its Last-Event-ID) can never miss a batch
    that committed after it read, with lower ids (a retried request racing the one it repeats).
    """
    if len(entries) > MAX_LOG_BATCH:
        raise PayloadTooLarge(f"At most {MAX_LOG_BATCH} log entries per request; got {len(entries)}.")
    status = _status_of(session, run_uid, lock=True)
    if not entries:
        return 0
    session.execute(
        insert(JobLogEntry),
        [
            {
                "job_result_id": run_uid,
                "log_level": entry.level,
                "grouping": entry.grouping,
                "message": entry.message,
                "log_object": entry.log_object,
                "absolute_url": entry.absolute_url,
                "created": entry.created,
            }
            for entry in entries
        ],
    )
    if JobStatus(status).is_terminal:
        # The counts were taken when the result came; keep them true for entries that came after it.
        _refresh_counts(session, run_uid)
    notify_result_changed(session, run_uid)
    return len(entries)


def store_file(
    *, session: Session, run_uid: uuid.UUID, name: str, content: bytes, max_size: int
) -> FileProxy:
    """Keep a file the job created, as a FileProxy of its result."""
    if len(content) > max_size:
        raise PayloadTooLarge(f"File {name!r} is above the upload limit of {max_size} bytes.")
    _status_of(session, run_uid)
    proxy = FileProxy(id=uuid.uuid4(), name=name, content=content, size=len(content), job_result_id=run_uid)
    session.add(proxy)
    session.flush()
    log.info("run file stored run_uid=%s file_id=%s size=%d", run_uid, proxy.id, proxy.size)
    return proxy


def read_input_file(*, session: Session, run_uid: uuid.UUID, file_id: str) -> InputFile:
    """An uploaded input bound to this run; any other file (or another run's) is not found."""
    try:
        wanted = uuid.UUID(file_id)
    except ValueError:
        raise NotFound(f"No input file {file_id} for this run.") from None
    row = session.execute(
        select(FileProxy.name, FileProxy.content).where(
            FileProxy.id == wanted, FileProxy.input_for_result_id == run_uid
        )
    ).first()
    if row is None:
        raise NotFound(f"No input file {file_id} for this run.")
    return InputFile(name=row.name, content=row.content)


def discard_input_files(*, session: Session, run_uid: uuid.UUID) -> int:
    """Delete the run's uploaded inputs once it has used them, as Nautobot does; returns how many."""
    deleted = session.execute(delete(FileProxy).where(FileProxy.input_for_result_id == run_uid))
    return int(deleted.rowcount)  # type: ignore[attr-defined]


def record_result(
    *,
    session: Session,
    run_uid: uuid.UUID,
    status: JobStatus,
    result: Any,
    traceback: str | None,
    now: datetime,
) -> bool:
    """End the run with its result and per-level log counts; True if this call ended it.

    A result that is already terminal (a repeated report, or the mirror that saw the JobRun end first)
    keeps its status; what it lacks (result, traceback, end time) is filled in and its counts refreshed.
    """
    if status not in FINAL_STATUSES:
        raise ValueError(f"not a final status: {status}")
    current = _status_of(session, run_uid)
    notify_result_changed(session, run_uid)
    count_values = log_count_columns(session=session, job_result_id=run_uid)
    if not JobStatus(current).is_terminal:
        # The reason the mirror recorded (PodRunning...) told why the run was where it was, not why it
        # ended: cleared, for the JobRun's end to give (the mirror fills it when it sees that).
        ended = session.execute(
            update(JobResult)
            .where(JobResult.id == run_uid, JobResult.status.in_(_UNFINISHED))
            .values(
                status=status,
                date_done=now,
                result=result,
                traceback=traceback,
                reason=None,
                message=None,
                **count_values,
            )
        )
        if ended.rowcount:  # type: ignore[attr-defined]
            log.info("run finished run_uid=%s status=%s", run_uid, status)
            return True
    values: dict[str, Any] = {"date_done": func.coalesce(JobResult.date_done, now), **count_values}
    if traceback is not None:
        values["traceback"] = func.coalesce(JobResult.traceback, traceback)
    session.execute(update(JobResult).where(JobResult.id == run_uid).values(**values))
    if result is not None:
        # JSON columns do not coalesce portably: fill the result only where none was stored.
        session.execute(
            update(JobResult).where(JobResult.id == run_uid, JobResult.result.is_(None)).values(result=result)
        )
    log.info("run result for an ended run kept its status run_uid=%s reported=%s", run_uid, status)
    return False
