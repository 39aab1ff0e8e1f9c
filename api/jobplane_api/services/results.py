"""Job results, their logs and files: reading, deleting and cancelling, as Nautobot shows them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, Select, delete, func, literal_column, or_, select, text
from sqlalchemy.orm import Session, load_only

from jobplane_api.errors import BadRequest, Conflict, NotFound, PermissionDenied, Unavailable
from jobplane_api.kube import KubeError, KubeNotFound
from jobplane_api.pagination import Page, PageParams
from jobplane_api.schemas import (
    ChoiceValue,
    FileProxyRead,
    JobLogEntryRead,
    JobResultRead,
    JobRunReference,
    NestedObject,
)
from jobplane_api.services.result_events import notify_result_changed
from jobplane_store.identity import User
from jobplane_store.models import (
    LOG_LEVELS,
    FileProxy,
    JobLogEntry,
    JobResult,
    JobResultTombstone,
    JobStatus,
)

if TYPE_CHECKING:
    from jobplane_api.identity import Principal
    from jobplane_api.kube import KubeGateway

__all__ = [
    "FILE",
    "LOG",
    "RESULT",
    "cancel_refusal",
    "cancel_result",
    "checked_levels",
    "delete_result",
    "file_record",
    "get_file",
    "get_result",
    "list_files",
    "list_logs",
    "list_results",
    "log_record",
    "log_search",
    "readable_result",
    "result_logs",
    "result_record",
    "user_ids",
]

RESULT = "extras.jobresult"
LOG = "extras.joblogentry"
FILE = "extras.fileproxy"
# What a list page selects: everything a record shows except the bulky JSON and text columns, which only
# the detail page reads.
SUMMARY_COLUMNS: tuple[Any, ...] = tuple(
    getattr(JobResult, name)
    for name in JobResult.__table__.columns.keys()  # noqa: SIM118 - a ColumnCollection, not a dict
    if name not in ("result", "traceback", "task_kwargs", "message", "waiting_message")
)


# Where Nautobot's API serves each related object type; a nested object's url is built from it.
API_PATHS = {
    "extras.job": "extras/jobs",
    "extras.jobresult": "extras/job-results",
    "extras.fileproxy": "extras/file-proxies",
    "extras.scheduledjob": "extras/scheduled-jobs",
    "users.user": "users/users",
}


def _ref(object_type: str, object_id: uuid.UUID | int, base_url: str) -> NestedObject:
    """A related object as Nautobot renders it at depth 0."""
    return NestedObject(
        id=object_id, object_type=object_type, url=f"{base_url}/api/{API_PATHS[object_type]}/{object_id}/"
    )


def user_ids(session: Session, usernames: Iterable[str | None]) -> dict[str, int]:
    """The ids of the users with these names; a user since deleted is missing (its results show null)."""
    wanted = {name for name in usernames if name}
    if not wanted:
        return {}
    rows = session.execute(select(User.username, User.id).where(User.username.in_(wanted))).all()
    return {username: user_id for username, user_id in rows}


def result_record(
    result: JobResult,
    base_url: str,
    *,
    users: Mapping[str, int] | None = None,
    files: Sequence[FileProxy] = (),
    summary: bool = False,
) -> JobResultRead:
    """The Nautobot record of a result; ``summary`` leaves out the columns a list page does not load.

    ``users`` maps usernames to user ids (``user_ids``): the result stores the requester's name, and
    Nautobot shows the user as a nested object, or null when the user no longer exists.
    """
    url = f"{base_url}/api/extras/job-results/{result.id}/"
    job_model = None
    if result.job_model_id is not None:
        job_model = _ref("extras.job", result.job_model_id, base_url)
    user_id = (users or {}).get(result.user) if result.user else None
    run = None
    if result.run_name and result.run_namespace:
        run = JobRunReference(namespace=result.run_namespace, name=result.run_name)
    return JobResultRead(
        id=result.id,
        display=f"{result.name} started at {result.date_created.isoformat()} ({result.status})",
        url=url,
        # Nautobot's choices are Celery's states, each its own label.
        status=ChoiceValue(value=result.status, label=result.status),
        name=result.name,
        task_name=result.job_class_path,
        date_created=result.date_created,
        date_started=result.date_started,
        date_done=result.date_done,
        duration=result.duration,
        result=None if summary else result.result,
        traceback=None if summary else result.traceback,
        task_kwargs=None if summary else result.task_kwargs,
        celery_kwargs={
            "queue": result.queue,
            "soft_time_limit": result.soft_time_limit,
            "time_limit": result.time_limit,
        },
        job_model=job_model,
        user=_ref("users.user", user_id, base_url) if user_id is not None else None,
        scheduled_job=(
            _ref("extras.scheduledjob", result.scheduled_job_id, base_url)
            if result.scheduled_job_id is not None
            else None
        ),
        files=[_ref(FILE, proxy.id, base_url) for proxy in files],
        debug_log_count=result.debug_log_count,
        info_log_count=result.info_log_count,
        success_log_count=result.success_log_count,
        warning_log_count=result.warning_log_count,
        failure_log_count=result.failure_log_count,
        error_log_count=result.error_log_count,
        critical_log_count=result.critical_log_count,
        reason=result.reason,
        message=None if summary else result.message,
        run=run,
        requested_by=result.user,
        approved_by=result.approved_by,
        approved_at=result.approved_at,
        commit=result.commit,
        image_digest=result.image_digest,
        waiting_reason=result.waiting_reason,
        waiting_message=None if summary else result.waiting_message,
        dry_run=result.dry_run,
    )


def _restricted(principal: Principal, action: str, object_type: str) -> ColumnElement[bool] | None:
    if not principal.has(action, object_type):
        raise PermissionDenied()
    return principal.sql_filter(action, object_type)


RESULT_FILTERS = {
    "status": JobResult.status,
    "name": JobResult.name,
    "user": JobResult.user,
    "job_model": JobResult.job_model_id,
    "job_model_id": JobResult.job_model_id,
    "task_name": JobResult.job_class_path,
    "queue": JobResult.queue,
    "run_name": JobResult.run_name,
}


def _in_filter(column: Any, values: list[str], field: str) -> ColumnElement[bool]:
    if column.type.python_type is uuid.UUID:
        try:
            parsed: list[Any] = [uuid.UUID(value) for value in values]
        except ValueError:
            raise BadRequest(body={field: ["Enter a valid UUID."]}) from None
        return cast("ColumnElement[bool]", column.in_(parsed))
    return cast("ColumnElement[bool]", column.in_(values))


# Nautobot's lookups of a result's creation time (date_created__gte=2026-12-01 ...).
DATE_LOOKUPS = {
    "date_created__gte": "__ge__",
    "date_created__gt": "__gt__",
    "date_created__lte": "__le__",
    "date_created__lt": "__lt__",
}


def _moment(value: str, field: str) -> datetime:
    """An ISO date or date-time; a naive one is UTC (as the API writes every time)."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(body={field: ["Enter a valid date/time."]}) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _apply_filters(query: Select[Any], filters: Mapping[str, list[str]]) -> Select[Any]:
    for key, values in filters.items():
        if key in DATE_LOOKUPS:
            for value in values:
                compare = getattr(JobResult.date_created, DATE_LOOKUPS[key])
                query = query.where(compare(_moment(value, key)))
        elif key == "status":
            query = query.where(JobResult.status.in_([value.upper() for value in values]))
        elif key in RESULT_FILTERS:
            query = query.where(_in_filter(RESULT_FILTERS[key], values, key))
        elif key == "id":
            query = query.where(_in_filter(JobResult.id, values, key))
    return query


# The list's order, total (ties in date_created broken by id), and its exact reverse: the same index read
# from either end.
NEWEST_FIRST = (JobResult.date_created.desc(), JobResult.id.desc())
OLDEST_FIRST = (JobResult.date_created.asc(), JobResult.id.asc())


def list_results(
    *,
    session: Session,
    principal: Principal,
    page: PageParams,
    base_url: str,
    filters: Mapping[str, list[str]],
) -> Page[JobResultRead]:
    """Newest first; a page selects summary columns only, the count uses the same filters, and a page past
    the middle is read from the oldest end (:func:`_page_ids`)."""
    restriction = _restricted(principal, "view", RESULT)
    ids = select(JobResult.id)
    count_query = select(func.count()).select_from(JobResult)
    if restriction is not None:
        ids, count_query = ids.where(restriction), count_query.where(restriction)
    ids, count_query = _apply_filters(ids, filters), _apply_filters(count_query, filters)
    count = session.scalar(count_query) or 0
    rows: Sequence[JobResult] = []
    if page.offset < count:
        # A deferred join: the offset walks the (date_created, id) index alone, and only the page's rows are
        # read from the table (a deep page took 51 ms of SQL reading every row before it, 6 ms this way).
        page_ids = _page_ids(ids, page, count).subquery()
        rows = session.scalars(
            select(JobResult)
            .options(load_only(*SUMMARY_COLUMNS))
            .join(page_ids, JobResult.id == page_ids.c.id)
            .order_by(*NEWEST_FIRST)
        ).all()
    files = _files_of(session, [row.id for row in rows])
    users = user_ids(session, (row.user for row in rows))
    records = [
        result_record(row, base_url, users=users, files=files.get(row.id, ()), summary=True) for row in rows
    ]
    return page.page(records, count)


def _page_ids(ids: Select[Any], page: PageParams, count: int) -> Select[Any]:
    """The ids of the page at ``page.offset`` of ``count`` results newest first, walked from the nearer end.

    An offset is walked entry by entry, so a page past the middle is read oldest first from the other end
    of the index: the same rows (the order is total, ties in date_created broken by id), with an offset
    of at most half the count; the outer query puts them newest first again.
    """
    end = min(page.offset + page.limit, count)
    from_end = count - end
    if from_end >= page.offset:
        return ids.order_by(*NEWEST_FIRST).limit(page.limit).offset(page.offset)
    return ids.order_by(*OLDEST_FIRST).limit(end - page.offset).offset(from_end)


def _files_of(session: Session, result_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[FileProxy]]:
    if not result_ids:
        return {}
    rows = session.scalars(
        select(FileProxy)
        .options(load_only(FileProxy.id, FileProxy.name, FileProxy.job_result_id))
        .where(FileProxy.job_result_id.in_(result_ids))
    ).all()
    grouped: dict[uuid.UUID, list[FileProxy]] = {}
    for row in rows:
        if row.job_result_id is not None:
            grouped.setdefault(row.job_result_id, []).append(row)
    return grouped


def _parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound() from None


def _get(
    session: Session, principal: Principal, result_id: str, action: str, *, lock: bool = False
) -> JobResult:
    restriction = _restricted(principal, action, RESULT)
    query = select(JobResult).where(JobResult.id == _parse_id(result_id))
    if restriction is not None:
        query = query.where(restriction)
    if lock:
        query = query.with_for_update()
    result = session.scalars(query).first()
    if result is None:
        raise NotFound()
    return result


def readable_result(*, session: Session, principal: Principal, result_id: str) -> JobResult:
    """The result row, if the caller may view it (NotFound otherwise, PermissionDenied without view)."""
    return _get(session, principal, result_id, "view")


def get_result(*, session: Session, principal: Principal, result_id: str, base_url: str) -> JobResultRead:
    result = _get(session, principal, result_id, "view")
    return _full_record(session, result, base_url)


def _full_record(session: Session, result: JobResult, base_url: str) -> JobResultRead:
    files = _files_of(session, [result.id]).get(result.id, ())
    return result_record(result, base_url, users=user_ids(session, [result.user]), files=files)


def delete_result(
    *, session: Session, kube: KubeGateway | None, principal: Principal, result_id: str
) -> None:
    """Delete the result for good: its logs and files, the JobRun it mirrors, and a tombstone in its place.

    The JobRun goes first (its Job, pod and Secrets follow by owner reference), so nothing the result
    stood for lingers in the cluster; the tombstone keeps the mirror from recording the run again from an
    event it had queued or a relist. A run that has not ended is refused (cancel it first). An API without
    Kubernetes (and so without a mirror) leaves JobRuns alone: there the row goes, its tombstone stays.
    """
    # Locked: a second delete of the same result waits, then finds nothing (404).
    result = _get(session, principal, result_id, "delete", lock=True)
    if not JobStatus(result.status).is_terminal:
        raise Conflict("This job result is still running: cancel it first, then delete it.")
    if kube is not None and result.run_name and result.run_namespace:
        try:
            kube.delete_run(result.run_namespace, result.run_name, uid=str(result.id))
        except KubeError as exc:
            raise Unavailable(f"The JobRun of this result could not be deleted: {exc}") from None
    session.add(
        JobResultTombstone(
            id=result.id,
            run_name=result.run_name,
            run_namespace=result.run_namespace,
            deleted_by=principal.username,
        )
    )
    session.execute(delete(JobResult).where(JobResult.id == result.id))
    notify_result_changed(session, result.id)


def cancel_refusal(principal: Principal, result: JobResult) -> str | None:
    """Why this user may not cancel this run (the web UI says it instead of showing a button), or None."""
    if not principal.has("run", "extras.job"):
        return "Cancelling a run needs the run permission on jobs."
    if not principal.is_superuser and result.user != principal.username:
        return "Only the user who requested a run (or a superuser) may cancel it."
    return None


def cancel_result(
    *, session: Session, kube: KubeGateway, principal: Principal, result_id: str, base_url: str
) -> JobResultRead:
    """Ask the operator to stop the run (spec.cancel); the mirror records REVOKED when it has stopped."""
    result = _get(session, principal, result_id, "view")
    refusal = cancel_refusal(principal, result)
    if refusal is not None:
        raise PermissionDenied(refusal)
    if JobStatus(result.status).is_terminal:
        raise Conflict(f"This job result already finished ({result.status}).")
    if not result.run_name or not result.run_namespace:
        raise Conflict("This job result has no JobRun to cancel.")
    try:
        kube.cancel_run(result.run_namespace, result.run_name)
    except KubeNotFound:
        raise Conflict("The JobRun of this result no longer exists.") from None
    except KubeError as exc:
        raise Unavailable(str(exc)) from None
    return _full_record(session, result, base_url)


# --- logs ------------------------------------------------------------------------------------------------


def log_record(entry: JobLogEntry, base_url: str) -> JobLogEntryRead:
    return JobLogEntryRead(
        id=entry.id,
        display=f"{entry.log_level}: {entry.message[:50]}",
        url=f"{base_url}/api/extras/job-logs/{entry.id}/",
        created=entry.created,
        grouping=entry.grouping,
        log_level=entry.log_level,
        log_object=entry.log_object,
        message=entry.message,
        absolute_url=entry.absolute_url,
        job_result=_ref(RESULT, entry.job_result_id, base_url),
    )


def result_logs(
    *, session: Session, principal: Principal, result_id: str, base_url: str
) -> list[JobLogEntryRead]:
    """All log entries of one result, oldest first (Nautobot's unpaginated ``logs/``)."""
    result = _get(session, principal, result_id, "view")
    query = select(JobLogEntry).where(JobLogEntry.job_result_id == result.id)
    restriction = principal.sql_filter("view", LOG) if principal.has("view", LOG) else None
    if restriction is not None:
        query = query.where(restriction)
    rows = session.scalars(query.order_by(JobLogEntry.created, JobLogEntry.id)).all()
    return [log_record(row, base_url) for row in rows]


def checked_levels(values: Sequence[str]) -> list[str]:
    """The ``log_level`` values of a request, each one of LOG_LEVELS (BadRequest otherwise)."""
    if any(value not in LOG_LEVELS for value in values):
        raise BadRequest(body={"log_level": [f"Select a valid choice: {', '.join(LOG_LEVELS)}."]})
    return list(values)


def log_search(value: str) -> ColumnElement[bool]:
    """Entries whose message, grouping or level contains ``value`` (any case): the ``q`` of job-logs/."""
    pattern = f"%{value}%"
    return or_(
        JobLogEntry.message.ilike(pattern),
        JobLogEntry.grouping.ilike(pattern),
        JobLogEntry.log_level.ilike(pattern),
    )


def list_logs(
    *,
    session: Session,
    principal: Principal,
    page: PageParams,
    base_url: str,
    filters: Mapping[str, list[str]],
) -> Page[JobLogEntryRead]:
    restriction = _restricted(principal, "view", LOG)
    query = select(JobLogEntry)
    count_query = select(func.count()).select_from(JobLogEntry)
    conditions: list[ColumnElement[bool]] = [] if restriction is None else [restriction]
    for key, values in filters.items():
        if key in ("job_result", "job_result_id"):
            conditions.append(_in_filter(JobLogEntry.job_result_id, values, key))
        elif key == "log_level":
            conditions.append(JobLogEntry.log_level.in_(checked_levels(values)))
        elif key == "grouping":
            conditions.append(JobLogEntry.grouping.in_(values))
        elif key == "q":
            conditions.extend(log_search(value) for value in values)
    if conditions:
        query, count_query = query.where(*conditions), count_query.where(*conditions)
    count = _capped_count(session, count_query, JobLogEntry.__tablename__, filtered=bool(conditions))
    page_ids = (
        query.with_only_columns(JobLogEntry.id)
        .order_by(JobLogEntry.id.desc())
        .limit(page.limit)
        .offset(page.offset)
        .subquery()
    )
    rows = session.scalars(
        select(JobLogEntry).join(page_ids, JobLogEntry.id == page_ids.c.id).order_by(JobLogEntry.id.desc())
    ).all()
    return page.page([log_record(row, base_url) for row in rows], count)


# Counting every log entry of a large installation costs more than the page itself (41-76 ms at 1M rows);
# past this many, an unfiltered list reports Postgres' own estimate of the table's size instead.
EXACT_COUNT_CAP = 100_000


def _capped_count(session: Session, count_query: Select[Any], table: str, *, filtered: bool) -> int:
    """The exact count up to EXACT_COUNT_CAP; beyond it, unfiltered on Postgres, the planner's estimate."""
    if filtered or session.get_bind().dialect.name != "postgresql":
        return session.scalar(count_query) or 0
    capped = select(func.count()).select_from(
        select(literal_column("1")).select_from(text(table)).limit(EXACT_COUNT_CAP + 1).subquery()
    )
    exact = session.scalar(capped) or 0
    if exact <= EXACT_COUNT_CAP:
        return exact
    estimate = session.scalar(
        text("SELECT reltuples::bigint FROM pg_class WHERE oid = CAST(:table AS regclass)"), {"table": table}
    )
    return max(exact, int(estimate or 0))


def get_log(*, session: Session, principal: Principal, log_id: int, base_url: str) -> JobLogEntryRead:
    restriction = _restricted(principal, "view", LOG)
    query = select(JobLogEntry).where(JobLogEntry.id == log_id)
    if restriction is not None:
        query = query.where(restriction)
    entry = session.scalars(query).first()
    if entry is None:
        raise NotFound()
    return log_record(entry, base_url)


# --- files -----------------------------------------------------------------------------------------------


def file_record(proxy: FileProxy, base_url: str) -> FileProxyRead:
    url = f"{base_url}/api/extras/file-proxies/{proxy.id}/"
    return FileProxyRead(
        id=proxy.id,
        display=proxy.name,
        url=url,
        name=proxy.name,
        size=proxy.size,
        uploaded_at=proxy.uploaded_at,
        file=f"{url}download/",
        job_result=_ref(RESULT, proxy.job_result_id, base_url) if proxy.job_result_id else None,
    )


FILE_COLUMNS = (FileProxy.id, FileProxy.name, FileProxy.size, FileProxy.uploaded_at, FileProxy.job_result_id)


def list_files(
    *,
    session: Session,
    principal: Principal,
    page: PageParams,
    base_url: str,
    filters: Mapping[str, list[str]],
) -> Page[FileProxyRead]:
    restriction = _restricted(principal, "view", FILE)
    conditions: list[ColumnElement[bool]] = [] if restriction is None else [restriction]
    for key, values in filters.items():
        if key in ("job_result", "job_result_id"):
            conditions.append(_in_filter(FileProxy.job_result_id, values, key))
        elif key == "name":
            conditions.append(FileProxy.name.in_(values))
    query = select(FileProxy).options(load_only(*FILE_COLUMNS)).where(*conditions)
    count = session.scalar(select(func.count()).select_from(FileProxy).where(*conditions)) or 0
    rows = session.scalars(
        query.order_by(FileProxy.uploaded_at.desc(), FileProxy.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    ).all()
    return page.page([file_record(row, base_url) for row in rows], count)


def get_file(*, session: Session, principal: Principal, file_id: str, content: bool = False) -> FileProxy:
    restriction = _restricted(principal, "view", FILE)
    columns = (*FILE_COLUMNS, FileProxy.content) if content else FILE_COLUMNS
    query = select(FileProxy).options(load_only(*columns)).where(FileProxy.id == _parse_id(file_id))
    if restriction is not None:
        query = query.where(restriction)
    proxy = session.scalars(query).first()
    if proxy is None:
        raise NotFound()
    return proxy
