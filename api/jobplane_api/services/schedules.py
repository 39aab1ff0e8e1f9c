"""Scheduled jobs as Nautobot shows them, held as JobSchedules: created by the run endpoint, listed, read,
paused or resumed, and deleted.

A run request's ``schedule`` (or the multipart ``_schedule_*`` fields) other than ``immediately`` becomes a
JobSchedule, written with the API's trusted identity for the user who asked (admission keeps that
requester). A job with sensitive variables gets its inputs through a Secret owned by the schedule, never in
its spec. The pure parts (:func:`checked_schedule`, :func:`schedule_spec`, :func:`scheduled_job_record`)
carry the decisions and are tested without a cluster.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobplane_api.errors import BadRequest, NotFound, PermissionDenied, Unavailable
from jobplane_api.kube import KubeError
from jobplane_api.pagination import Page, PageParams
from jobplane_api.schemas import (
    ChoiceValue,
    JobScheduleReference,
    NestedObject,
    ScheduledJobRead,
    ScheduledJobUpdate,
)
from jobplane_api.services.filters import parse_boolean
from jobplane_api.services.jobs import JOB, job_record, queue_ids
from jobplane_api.services.results import user_ids
from jobplane_crds.v1alpha1 import ApprovalDecision, Interval, JobDefinition, JobSchedule
from jobplane_crds.v1alpha1.jobschedule import SCHEDULE_NAME_MAX, Schedule
from jobplane_crds.v1alpha1.schedule_times import fire_times, schedule_error
from jobplane_store.models import JobResult

if TYPE_CHECKING:
    from jobplane_api.identity import Principal
    from jobplane_api.kube import KubeGateway

__all__ = [
    "DISPLAY_NAME",
    "EARLIEST",
    "IMMEDIATELY",
    "INTERVALS",
    "SCHEDULED_JOB",
    "PlannedSchedule",
    "ScheduleInput",
    "change_scheduled_job",
    "checked_schedule",
    "create_scheduled_job",
    "delete_scheduled_job",
    "get_scheduled_job",
    "list_scheduled_jobs",
    "may_scheduled_job",
    "recent_run_ids",
    "schedule_spec",
    "scheduled_job_record",
]

SCHEDULED_JOB = "extras.scheduledjob"
IMMEDIATELY = "immediately"
# Nautobot's interval names and the JobSchedule's.
INTERVALS: dict[str, Interval] = {
    "future": Interval.ONCE,
    "hourly": Interval.HOURLY,
    "daily": Interval.DAILY,
    "weekly": Interval.WEEKLY,
    "custom": Interval.CRONTAB,
}
NAUTOBOT_INTERVALS = {crd: name for name, crd in INTERVALS.items()}
CHOICES = (IMMEDIATELY, *INTERVALS)
# Nautobot's ScheduledJob.earliest_possible_time(): a schedule starts at least this far ahead.
EARLIEST = timedelta(seconds=15)
DEFAULT_TIME_ZONE = "Etc/UTC"
NAME_MAX = 255  # Nautobot's CHARFIELD_MAX_LENGTH
# The scheduled job's name (free text, unique) as Nautobot's clients gave it; the object name comes from it.
DISPLAY_NAME = "jobplane.io/display-name"
REQUESTED_VIA = {"jobplane.io/requested-via": "api"}
STATES = {
    "active": "Active",
    "pending": "Pending",
    "denied": "Denied",
    "completed": "Completed",
}
START_TIME_MESSAGE = "Please enter a valid date and time greater than or equal to the current date and time."
DATETIME_MESSAGE = (
    "Datetime has wrong format. Use one of these formats instead: "
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)


@dataclass(frozen=True)
class ScheduleInput:
    """A run request's schedule as sent: the JSON ``schedule`` object, or the multipart ``_schedule_*``
    fields (``form``: errors then name those fields, at the top level, as Nautobot's do)."""

    interval: Any = IMMEDIATELY
    name: Any = None
    start_time: Any = None
    crontab: Any = None
    time_zone: Any = None
    form: bool = False


@dataclass(frozen=True)
class PlannedSchedule:
    """A checked schedule: what the JobSchedule will say."""

    name: str
    interval: Interval
    start_time: datetime
    time_zone: str
    crontab: str | None = None

    def schedule(self) -> dict[str, Any]:
        """The JobSchedule's spec.schedule."""
        body: dict[str, Any] = {
            "interval": self.interval.value,
            "startTime": _rfc3339(self.start_time),
            "timeZone": self.time_zone,
        }
        if self.crontab is not None:
            body["crontab"] = self.crontab
        return body


def _rfc3339(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return text


def _parse_time(value: Any) -> datetime | None:
    """An ISO 8601 date-time (naive: UTC, Nautobot's default TIME_ZONE), or None when it is not one."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _Errors:
    """Nautobot's error shapes: ``{"schedule": {"field": [...]}}`` for JSON, ``{"_schedule_field": [...]}``
    for a form."""

    def __init__(self, form: bool) -> None:
        self.form = form

    def fail(self, field: str, message: str) -> BadRequest:
        if self.form:
            return BadRequest(body={f"_schedule_{field}": [message]})
        return BadRequest(body={"schedule": {field: [message]}})


def checked_schedule(given: ScheduleInput | None, *, now: datetime) -> PlannedSchedule | None:
    """The schedule a run request asks for, checked as Nautobot's serializers check it; None: run now.

    Nautobot's order and messages: the interval is one of its choices; a name is required; a start time
    is required (except with ``custom``) and at least 15 s ahead; ``custom`` needs a valid crontab. With
    ``custom`` and no start time, the start is the crontab's next match, as Nautobot computes it.
    """
    if given is None:
        return None
    errors = _Errors(given.form)
    interval = given.interval if given.interval not in (None, "") else IMMEDIATELY
    if not isinstance(interval, str) or interval not in CHOICES:
        raise errors.fail("interval", f'"{interval}" is not a valid choice.')
    if interval == IMMEDIATELY:
        return None
    name = given.name
    if name is None or (isinstance(name, str) and not name.strip()):
        raise errors.fail("name", "Please provide a name for the job schedule.")
    if not isinstance(name, str):
        raise errors.fail("name", "Not a valid string.")
    if len(name) > NAME_MAX:
        raise errors.fail("name", f"Ensure this field has no more than {NAME_MAX} characters.")
    time_zone = str(given.time_zone or DEFAULT_TIME_ZONE)
    if not _ZONE.match(time_zone) or len(time_zone) > ZONE_MAX or not _known_zone(time_zone):
        raise errors.fail("time_zone", f'"{time_zone}" is not a valid IANA time zone.')
    start: datetime | None = None
    if given.start_time not in (None, ""):
        start = _parse_time(given.start_time)
        if start is None:
            raise errors.fail("start_time", DATETIME_MESSAGE)
    if (start is None and interval != "custom") or (start is not None and start < now + EARLIEST):
        raise errors.fail("start_time", START_TIME_MESSAGE)
    crontab: str | None = None
    if interval == "custom":
        if not isinstance(given.crontab, str) or not given.crontab.strip():
            raise errors.fail("crontab", "Please enter a valid crontab.")
        crontab = " ".join(given.crontab.split())
        problem = _crontab_problem(crontab, str(time_zone))
        if problem is not None:
            raise errors.fail("crontab", problem)
        if start is None:
            schedule = Schedule(interval=Interval.CRONTAB, crontab=crontab, time_zone=str(time_zone))
            start = next(fire_times(schedule, now), None)
            if start is None:  # pragma: no cover - a valid crontab always matches again
                raise errors.fail("crontab", "This crontab never fires.")
    assert start is not None
    return PlannedSchedule(
        name=name, interval=INTERVALS[interval], start_time=start, time_zone=str(time_zone), crontab=crontab
    )


_CRONTAB = re.compile(r"^[0-9A-Za-z*,/?#LW-]+( +[0-9A-Za-z*,/?#LW-]+){4}$")
# The JobSchedule's timeZone: its pattern and length.
_ZONE = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")
ZONE_MAX = 64
CRONTAB_MAX = 255


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _crontab_problem(crontab: str, time_zone: str) -> str | None:
    """Why the operator could not fire this crontab (the JobSchedule's pattern, then cronsim), or None."""
    fields = crontab.split()
    if len(crontab) > CRONTAB_MAX:
        return f"Ensure this field has no more than {CRONTAB_MAX} characters."
    if len(fields) != 5:
        return f"A crontab has five fields (minute hour day-of-month month day-of-week), not {len(fields)}."
    if not _CRONTAB.match(crontab):
        return f"{crontab!r} is not a valid crontab."
    error = schedule_error(Schedule(interval=Interval.CRONTAB, crontab=crontab, time_zone=time_zone))
    return error


def schedule_spec(
    planned: PlannedSchedule,
    *,
    job: str,
    queue: str,
    requested_by: str | None,
    data: dict[str, Any],
    inputs_secret: str | None,
) -> dict[str, Any]:
    """The JobSchedule's spec: the job and queue, when, and for whom; the inputs, or the name of the Secret
    that will hold them (a job with sensitive variables: never in the spec)."""
    spec: dict[str, Any] = {"job": job, "queue": queue, "schedule": planned.schedule()}
    if requested_by:
        spec["requestedBy"] = requested_by  # kept by admission for the API's own identity only
    if inputs_secret is not None:
        spec["inputsSecretRef"] = inputs_secret
    else:
        spec["data"] = data
    return spec


def _object_name(display: str) -> str:
    """The start of the JobSchedule's name (Kubernetes adds 5 characters): a DNS label from the display
    name, short enough for each fire's run name (<schedule>-<YYYYMMDDHHMM>)."""
    slug = re.sub(r"[^a-z0-9]+", "-", display.lower()).strip("-")
    return (slug[: SCHEDULE_NAME_MAX - 6].rstrip("-") or "schedule") + "-"


def display_name(schedule: JobSchedule) -> str:
    meta = schedule.metadata
    return str((meta.annotations or {}).get(DISPLAY_NAME) or meta.name or "")


# --- records -------------------------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    return _parse_time(value) if value else None


def _ref(object_type: str, path: str, object_id: Any, base_url: str) -> NestedObject:
    return NestedObject(id=object_id, object_type=object_type, url=f"{base_url}/api/{path}/{object_id}/")


def _finished(schedule: JobSchedule) -> bool:
    conditions = schedule.status.conditions if schedule.status is not None else []
    return any(c.type == "Ready" and c.reason == "Finished" for c in conditions)


def _changed(schedule: JobSchedule) -> datetime | None:
    """When the schedule was last written by anyone (its managedFields), else its creation."""
    times = [_time(entry.get("time")) for entry in schedule.metadata.managed_fields or []]
    known = [moment for moment in times if moment is not None]
    return max(known) if known else _time(schedule.metadata.creation_timestamp)


def scheduled_job_record(
    schedule: JobSchedule | Mapping[str, Any],
    base_url: str,
    *,
    definition: JobDefinition | Mapping[str, Any] | None,
    queue_ids: Mapping[str, str],
    users: Mapping[str, int],
    run_count: int,
) -> ScheduledJobRead:
    """The Nautobot record of a JobSchedule; ``definition`` is the JobDefinition its job names (or None),
    ``run_count`` the job results its fires made."""
    schedule = JobSchedule.of(schedule)
    definition = JobDefinition.of(definition) if definition is not None else None
    meta, spec, status = schedule.metadata, schedule.spec, schedule.status
    when = spec.schedule
    uid = str(meta.uid)
    name = display_name(schedule)
    interval = NAUTOBOT_INTERVALS.get(when.interval, "custom")
    effective = definition.effective() if definition is not None else None
    queue = str(spec.queue or ((effective.task_queues if effective else None) or ["default"])[0])
    queue_id = queue_ids.get(queue)
    found = definition.status.class_path if definition is not None and definition.status is not None else None
    task = str(found or spec.job)
    requested_by = spec.requested_by
    user_id = users.get(requested_by) if requested_by else None
    start = _time(when.start_time)
    finished = _finished(schedule)
    state = "completed" if finished else "active"
    # Nautobot 2.x's approval fields and 3.1's states: pending until approved, denied for good.
    approval = spec.approval
    approval_required = bool(effective and effective.approval_required)
    approved = approval is not None and approval.decision == ApprovalDecision.APPROVED
    if approval is not None and approval.decision == ApprovalDecision.DENIED:
        state = "denied"
    elif approval_required and approval is None:
        state = "pending"
    approver_id = users.get(approval.by) if approval is not None and approved else None
    limits = {
        key: float(value)
        for key in ("soft_time_limit", "time_limit")
        if effective is not None and (value := getattr(effective, key))
    }
    return ScheduledJobRead(
        id=uuid.UUID(uid),
        display=f"{name}: {interval}",
        url=f"{base_url}/api/extras/scheduled-jobs/{uid}/",
        natural_slug=str(meta.name),
        name=name,
        task=task,
        interval=interval,
        crontab=str(when.crontab or ""),
        queue=queue,
        job_queue=_ref("extras.jobqueue", "extras/job-queues", queue_id, base_url) if queue_id else None,
        job_model=_ref(JOB, "extras/jobs", definition.metadata.uid, base_url)
        if definition is not None
        else None,
        user=_ref("users.user", "users/users", user_id, base_url) if user_id is not None else None,
        approved_by_user=(
            _ref("users.user", "users/users", approver_id, base_url) if approver_id is not None else None
        ),
        approved_at=_time(approval.at) if approval is not None and approved else None,
        approved_by=approval.by if approval is not None and approved else None,
        approval_required=approval_required,
        state=ChoiceValue(value=state, label=STATES[state]),
        one_off=when.interval == Interval.ONCE,
        start_time=start,
        time_zone=str(when.time_zone or DEFAULT_TIME_ZONE),
        enabled=not spec.suspend and not finished,
        last_run_at=_time(status.last_schedule_time if status is not None else None),
        total_run_count=run_count,
        date_changed=_changed(schedule),
        description=f"Jobplane job {name} scheduled by {requested_by or 'nobody'} for "
        f"{start.isoformat() if start else 'its crontab'}",
        kwargs={} if spec.inputs_secret_ref else dict(spec.data),
        celery_kwargs={
            "queue": queue,
            "nautobot_job_profile": False,
            "nautobot_job_console_log": False,
            "nautobot_job_ignore_singleton_lock": False,
            **limits,
        },
        next_run_at=_time(status.next_schedule_time if status is not None else None),
        requested_by=requested_by,
        job_schedule=JobScheduleReference(namespace=str(meta.namespace or ""), name=str(meta.name)),
    )


def _run_counts(session: Session, ids: Iterable[str]) -> dict[uuid.UUID, int]:
    wanted = [uuid.UUID(value) for value in ids]
    if not wanted:
        return {}
    rows = session.execute(
        select(JobResult.scheduled_job_id, func.count())
        .where(JobResult.scheduled_job_id.in_(wanted))
        .group_by(JobResult.scheduled_job_id)
    ).all()
    return {scheduled_job_id: count for scheduled_job_id, count in rows}


def recent_run_ids(*, session: Session, scheduled_job_id: uuid.UUID, limit: int) -> list[uuid.UUID]:
    """The ids of the job results of a scheduled job's latest fires, newest first (its page lists them
    through the results list, which applies the caller's permission on results)."""
    return list(
        session.scalars(
            select(JobResult.id)
            .where(JobResult.scheduled_job_id == scheduled_job_id)
            .order_by(JobResult.date_created.desc(), JobResult.id.desc())
            .limit(limit)
        ).all()
    )


# --- permissions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Visible:
    """A JobSchedule the caller may view, with the job it runs."""

    schedule: JobSchedule
    definition: JobDefinition | None
    job_visible: bool


def _constraint_fields(schedule: JobSchedule, definition: JobDefinition | None) -> dict[str, Any]:
    """The fields a permission's constraints on extras.scheduledjob may name."""
    spec = schedule.spec
    return {
        "id": str(schedule.metadata.uid),
        "name": display_name(schedule),
        "user": spec.requested_by,
        "interval": NAUTOBOT_INTERVALS.get(spec.schedule.interval, ""),
        "enabled": not spec.suspend,
        "job_model_id": str(definition.metadata.uid) if definition is not None else None,
    }


def _visible(kube: KubeGateway, principal: Principal, base_url: str, action: str = "view") -> list[_Visible]:
    """The schedules the caller may act on: the permission on extras.scheduledjob (with its constraints),
    and the job they run must be one the caller may view (as the jobs list shows them)."""
    if not principal.has("view", SCHEDULED_JOB) or not principal.has(action, SCHEDULED_JOB):
        raise PermissionDenied()
    try:
        schedules = kube.schedules()
    except KubeError as exc:
        raise Unavailable(f"Could not list the scheduled jobs: {exc}") from None
    ids = queue_ids(kube)
    visible: list[_Visible] = []
    for schedule in schedules:
        definition = kube.resolve_definition(schedule.spec.job, schedule.metadata.namespace or kube.namespace)
        job_visible = definition is not None and principal.allows(
            "view", JOB, job_record(definition, base_url, ids).model_dump(mode="json")
        )
        # A schedule whose job is gone (or was never there) shows only to those who see every job.
        if not job_visible and not principal.is_superuser:
            continue
        fields = _constraint_fields(schedule, definition)
        if not principal.allows("view", SCHEDULED_JOB, fields):
            continue
        if action != "view" and not principal.allows(action, SCHEDULED_JOB, fields):
            continue
        visible.append(_Visible(schedule, definition, job_visible))
    return visible


def _records(
    session: Session, kube: KubeGateway, visible: list[_Visible], base_url: str
) -> list[ScheduledJobRead]:
    ids = queue_ids(kube)
    specs = [item.schedule.spec for item in visible]
    names = [spec.requested_by for spec in specs] + [
        spec.approval.by if spec.approval else None for spec in specs
    ]
    users = user_ids(session, names)
    counts = _run_counts(session, (str(item.schedule.metadata.uid) for item in visible))
    return [
        scheduled_job_record(
            item.schedule,
            base_url,
            definition=item.definition,
            queue_ids=ids,
            users=users,
            run_count=counts.get(uuid.UUID(str(item.schedule.metadata.uid)), 0),
        )
        for item in visible
    ]


# --- filters -------------------------------------------------------------------------------------------


def _matches(record: ScheduledJobRead, key: str, values: list[str]) -> bool | None:
    """Whether the record passes one of Nautobot's ScheduledJob filters; None: not a filter we know."""
    if key == "id":
        return str(record.id) in values
    if key == "name":
        return record.name in values
    if key == "enabled":
        return record.enabled in {parse_boolean(key, value) for value in values}
    if key == "time_zone":
        return record.time_zone in values
    if key == "state":
        return record.state.value in values
    if key == "interval":
        return record.interval in values
    if key == "q":
        text = f"{record.name} {record.task} {record.description}".lower()
        return all(value.lower() in text for value in values if value)
    return None


def _filtered(
    records: list[ScheduledJobRead], filters: Mapping[str, list[str]], job_names: Mapping[str, str]
) -> list[ScheduledJobRead]:
    kept = []
    for record in records:
        passed = True
        for key, values in filters.items():
            if key in ("job_model", "job_model_id"):
                job_id = str(record.job_model.id) if record.job_model is not None else None
                ok = job_id is not None and (job_id in values or job_names.get(job_id) in values)
            else:
                ok = _matches(record, key, values) is not False
            if not ok:
                passed = False
                break
        if passed:
            kept.append(record)
    return kept


# --- services ------------------------------------------------------------------------------------------


def list_scheduled_jobs(
    *,
    session: Session,
    kube: KubeGateway,
    principal: Principal,
    page: PageParams,
    base_url: str,
    filters: Mapping[str, list[str]],
) -> Page[ScheduledJobRead]:
    """By name, as Nautobot orders them. Filters: id, name, job_model (name or id), job_model_id, enabled,
    interval, state, time_zone, q."""
    visible = _visible(kube, principal, base_url)
    job_names = {
        str(item.definition.metadata.uid): job_record(item.definition, base_url).name
        for item in visible
        if item.definition is not None
    }
    records = _filtered(_records(session, kube, visible, base_url), filters, job_names)
    records.sort(key=lambda record: (record.name, str(record.id)))
    return page.page(records[page.offset : page.offset + page.limit], len(records))


def may_scheduled_job(
    *, kube: KubeGateway, principal: Principal, base_url: str, scheduled_job_id: str, action: str
) -> bool:
    """Whether the caller may ``action`` (change, delete) this scheduled job, found as the services find
    it, for a page to offer only what they would allow."""
    try:
        _find(kube, principal, base_url, scheduled_job_id, action)
    except (PermissionDenied, NotFound):
        return False
    return True


def _find(
    kube: KubeGateway, principal: Principal, base_url: str, scheduled_job_id: str, action: str = "view"
) -> _Visible:
    for item in _visible(kube, principal, base_url, action):
        if str(item.schedule.metadata.uid) == scheduled_job_id:
            return item
    raise NotFound()


def get_scheduled_job(
    *, session: Session, kube: KubeGateway, principal: Principal, scheduled_job_id: str, base_url: str
) -> ScheduledJobRead:
    item = _find(kube, principal, base_url, scheduled_job_id)
    return _records(session, kube, [item], base_url)[0]


def delete_scheduled_job(
    *, kube: KubeGateway, principal: Principal, scheduled_job_id: str, base_url: str
) -> None:
    """Delete the JobSchedule: no more fires; its runs (and a sensitive job's inputs Secret) go with it
    through their owner references, their job results stay."""
    item = _find(kube, principal, base_url, scheduled_job_id, "delete")
    meta = item.schedule.metadata
    try:
        kube.delete_schedule(str(meta.name), uid=str(meta.uid))
    except KubeError as exc:
        raise Unavailable(f"Could not delete the scheduled job: {exc}") from None


def change_scheduled_job(
    *,
    session: Session,
    kube: KubeGateway,
    principal: Principal,
    scheduled_job_id: str,
    update: ScheduledJobUpdate,
    base_url: str,
) -> ScheduledJobRead:
    """``enabled``: false pauses the fires (spec.suspend), true resumes them, which also needs the right
    to run the job (the fires run it again); the runs stay requested by whoever scheduled it."""
    item = _find(kube, principal, base_url, scheduled_job_id, "change")
    given = update.model_dump(exclude_unset=True)
    if "enabled" not in given:
        return _records(session, kube, [item], base_url)[0]
    if not isinstance(update.enabled, bool):
        message = "This field may not be null." if update.enabled is None else "Must be a valid boolean."
        raise BadRequest(body={"enabled": [message]})
    if update.enabled:
        job = job_record(item.definition, base_url) if item.definition is not None else None
        if job is None or not principal.allows("run", JOB, job.model_dump(mode="json")):
            raise PermissionDenied("You do not have permission to run this job.")
    try:
        updated = kube.patch_schedule_spec(str(item.schedule.metadata.name), {"suspend": not update.enabled})
    except KubeError as exc:
        raise Unavailable(f"Could not change the scheduled job: {exc}") from None
    return _records(session, kube, [_Visible(updated, item.definition, item.job_visible)], base_url)[0]


def create_scheduled_job(
    *,
    session: Session,
    kube: KubeGateway,
    principal: Principal,
    definition: JobDefinition,
    planned: PlannedSchedule,
    queue: str,
    data: dict[str, Any],
    sensitive: bool,
    base_url: str,
    form: bool = False,
) -> ScheduledJobRead:
    """Create the JobSchedule for the caller; a sensitive job's inputs go to a Secret of the schedule-inputs
    type owned by it, made right after it (admission refuses a schedule naming a Secret that exists). If
    that Secret cannot be stored, the schedule is deleted again (by uid) before it fires."""
    try:
        taken = any(display_name(schedule) == planned.name for schedule in kube.schedules())
    except KubeError as exc:
        raise Unavailable(f"Could not list the scheduled jobs: {exc}") from None
    if taken:
        raise _Errors(form).fail("name", "Scheduled job with this Name already exists.")
    secret = f"jobplane-schedule-inputs-{uuid.uuid4().hex}" if sensitive and data else None
    spec = schedule_spec(
        planned,
        job=str(definition.metadata.name),
        queue=queue,
        requested_by=principal.username,
        data=data if not sensitive else {},
        inputs_secret=secret,
    )
    try:
        schedule = kube.create_schedule(
            generate_name=_object_name(planned.name),
            spec=spec,
            labels=REQUESTED_VIA,
            annotations={DISPLAY_NAME: planned.name},
        )
    except KubeError as exc:
        raise Unavailable(f"Could not create the scheduled job: {exc}") from None
    if secret is not None:
        try:
            kube.create_schedule_inputs_secret(schedule=schedule, name=secret, data_json=json.dumps(data))
        except KubeError as exc:
            kube.delete_schedule(str(schedule.metadata.name), uid=str(schedule.metadata.uid))
            raise Unavailable(f"Could not store the scheduled job's inputs: {exc}") from None
    visible = _Visible(schedule, definition, True)
    return _records(session, kube, [visible], base_url)[0]
