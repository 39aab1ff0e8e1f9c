"""When a JobSchedule fires and what each fire does: pure functions over its spec, status, runs and a clock.

Fire times come from ``jobplane_crds.v1alpha1.schedule_times``, shared with the API; no Kubernetes calls
here. ``plan`` decides what to create, cancel, delete and write to status;
``jobplane_operator.schedules`` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobplane_crds.runview import RunView
from jobplane_crds.times import parse_time
from jobplane_crds.v1alpha1 import (
    APPROVAL_ANNOTATION,
    INPUTS_SECRET_KEY,
    INPUTS_SECRET_TYPE,
    ApprovalDecision,
    ConcurrencyPolicy,
    Interval,
    JobRunPhase,
    JobSchedule,
)
from jobplane_crds.v1alpha1.schedule_times import aware, fire_times, latest_fire, schedule_error
from jobplane_operator.reconcile.conditions import condition, rfc3339
from jobplane_operator.reconcile.jobrun import LABEL_MANAGED_BY, controller_owner

__all__ = [
    "ANNOTATION_SCHEDULED_AT",
    "LABEL_SCHEDULE",
    "MAX_MISSED_FIRES",
    "SchedulePlan",
    "fire_run",
    "plan",
    "refused_status",
    "run_inputs_secret",
    "run_name",
    "schedule_event_matters",
    "schedule_run",
]

LABEL_SCHEDULE = "jobplane.io/schedule"
ANNOTATION_SCHEDULED_AT = "jobplane.io/scheduled-at"
# More missed fires than this (as a CronJob's 100) are not enumerated: only the latest is considered, and
# the status says how the schedule got so far behind.
MAX_MISSED_FIRES = 100
# How many of its runs a schedule lists in its status (active ones beyond the history limits included).
STATUS_RUNS_MAX = 20


def run_name(schedule_name: str, fire: datetime) -> str:
    """The fire's JobRun name: the same for the same fire in every replica and after every restart, so
    an AlreadyExists means this fire was already done."""
    return f"{schedule_name}-{aware(fire).astimezone(UTC):%Y%m%d%H%M}"


def _parse(value: Any) -> datetime | None:
    moment = parse_time(value)
    return moment.astimezone(UTC) if moment is not None else None


def _scheduled_at(run: dict[str, Any]) -> datetime | None:
    return _parse(RunView(run).annotations.get(ANNOTATION_SCHEDULED_AT))


def _phase(run: dict[str, Any]) -> JobRunPhase | None:
    try:
        return RunView(run).phase
    except ValueError:
        return None


def _active(run: dict[str, Any]) -> bool:
    phase = _phase(run)
    return phase is None or not phase.is_terminal


@dataclass
class SchedulePlan:
    """What one pass over a schedule does."""

    status: dict[str, Any]
    """The whole status to write (a merge patch of it)."""
    fire: datetime | None = None
    """The fire to create a run for (its name: run_name)."""
    cancel: list[str] = field(default_factory=list)
    """Active runs to cancel first (concurrencyPolicy Replace)."""
    delete: list[str] = field(default_factory=list)
    """Ended runs beyond the history limits."""


def _history(schedule: JobSchedule, runs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The runs to keep (newest first) and the names of the ended ones beyond the limits."""

    def newest_first(run: dict[str, Any]) -> tuple[datetime, str]:
        view = RunView(run)
        when = _scheduled_at(run) or _parse(view.creation_timestamp) or datetime.min.replace(tzinfo=UTC)
        return when, view.name

    kept, delete = [], []
    succeeded = failed = 0
    for run in sorted(runs, key=newest_first, reverse=True):
        phase = _phase(run)
        if phase == JobRunPhase.SUCCEEDED:
            succeeded += 1
            if succeeded > schedule.spec.successful_runs_history_limit:
                delete.append(RunView(run).name)
                continue
        elif phase is not None and phase.is_terminal:
            failed += 1
            if failed > schedule.spec.failed_runs_history_limit:
                delete.append(RunView(run).name)
                continue
        kept.append(run)
    return kept, delete


def _runs_status(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    listed = []
    for run in runs[:STATUS_RUNS_MAX]:
        when = _scheduled_at(run)
        if when is None:
            continue
        entry: dict[str, Any] = {"name": RunView(run).name, "scheduleTime": rfc3339(when)}
        phase = _phase(run)
        if phase is not None:
            entry["phase"] = phase.value
        listed.append(entry)
    return listed


def _skip(
    status: dict[str, Any], old: dict[str, Any], fire: datetime, reason: str, message: str, **kw: Any
) -> None:
    status["lastSkipped"] = {"scheduleTime": rfc3339(fire), "reason": reason, "message": message}
    status["conditions"].append(condition(old, "FireSkipped", "True", reason, message, **kw))


def plan(
    schedule: JobSchedule, *, now: datetime, runs: list[dict[str, Any]], approval_required: bool = False
) -> SchedulePlan:
    """What to do now: at most one fire (the latest one due), the cancellations Replace needs, the ended
    runs beyond the history limits, and the status that says so.

    ``runs`` are the schedule's own runs (label and owner), as listed now. Fires already done are known
    from status.lastScheduleTime, status.lastSkipped and the runs' scheduled-at annotations, so a status
    write that was lost (a restart in between) never fires twice: the run's name is the same anyway.
    """
    now = aware(now).astimezone(UTC)
    spec = schedule.spec
    old = schedule.status.model_dump(mode="json", by_alias=True) if schedule.status else {}
    generation = schedule.metadata.generation or 0
    kw: dict[str, Any] = {"generation": generation, "now": now}
    kept, delete = _history(schedule, runs)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": [],
        "runs": _runs_status(kept),
        "lastScheduleTime": old.get("lastScheduleTime"),
        "lastSkipped": old.get("lastSkipped"),
        "nextScheduleTime": None,
    }
    result = SchedulePlan(status=status, delete=delete)

    error = schedule_error(spec.schedule)
    if error is not None:
        status["conditions"].append(condition(old, "Ready", "False", "InvalidSchedule", error, **kw))
        return result

    done = [
        _parse(old.get("lastScheduleTime")),
        _parse((old.get("lastSkipped") or {}).get("scheduleTime")),
        *(_scheduled_at(run) for run in runs),
    ]
    bound = max((moment for moment in done if moment is not None), default=None)
    if bound is None and spec.schedule.interval != Interval.ONCE:
        # A repeating schedule does not make up for the time before it existed; a Once in the past fires
        # (within startingDeadlineSeconds), as "run at 09:00" applied at 09:00:05 should.
        created = schedule.metadata.creation_timestamp
        bound = created.astimezone(UTC) if created is not None else None
    latest = latest_fire(spec.schedule, now)
    due = latest if latest is not None and (bound is None or latest > bound) else None
    upcoming = next(fire_times(spec.schedule, max(now, bound) if bound else now), None)

    if spec.suspend:
        status["conditions"].append(
            condition(old, "Ready", "False", "Suspended", "spec.suspend is true: no fires", **kw)
        )
        return result
    waiting = _approval_wait(schedule, approval_required)
    if waiting is not None:
        # No fire until approved, none ever once denied. A fire due meanwhile is not recorded as done:
        # approved later, the schedule makes up its latest due fire (within startingDeadlineSeconds), as
        # Nautobot runs an approved one-off ScheduledJob.
        status["conditions"].append(condition(old, "Ready", "False", *waiting, **kw))
        return result
    if upcoming is not None:
        status["nextScheduleTime"] = rfc3339(upcoming)
        status["conditions"].append(
            condition(old, "Ready", "True", "Scheduled", f"next fire at {rfc3339(upcoming)}", **kw)
        )
    else:
        message = "the schedule fires no more (interval Once)" if due is None else "this is the last fire"
        status["conditions"].append(condition(old, "Ready", "False", "Finished", message, **kw))
    if due is None:
        previous = next((c for c in old.get("conditions") or [] if c.get("type") == "FireSkipped"), None)
        if previous is not None:
            status["conditions"].append({**previous})
        return result

    missed = 0
    for moment in fire_times(spec.schedule, bound) if bound else ():
        if moment >= due or missed > MAX_MISSED_FIRES:
            break
        missed += 1
    late = (now - due).total_seconds()
    deadline = spec.starting_deadline_seconds
    active = [run for run in runs if _active(run)]
    if deadline is not None and late > deadline:
        _skip(
            status, old, due, "MissedStartingDeadline",
            f"the fire at {rfc3339(due)} is {int(late)} s late, beyond startingDeadlineSeconds ({deadline})",
            **kw,
        )  # fmt: skip
    elif active and spec.concurrency_policy == ConcurrencyPolicy.FORBID:
        names = ", ".join(sorted(RunView(run).name for run in active))
        _skip(
            status, old, due, "ConcurrencyForbidden",
            f"the fire at {rfc3339(due)} was skipped: concurrencyPolicy is Forbid and {names} has not ended",
            **kw,
        )  # fmt: skip
    else:
        result.fire = due
        if spec.concurrency_policy == ConcurrencyPolicy.REPLACE:
            result.cancel = sorted(RunView(run).name for run in active)
        status["lastScheduleTime"] = rfc3339(due)
        if missed > MAX_MISSED_FIRES:
            reason = "TooManyMissedFires"
            message = (
                f"more than {MAX_MISSED_FIRES} fires were missed before {rfc3339(due)} (the operator was "
                "down, or the clock jumped); only the latest ran"
            )
        elif missed:
            reason, message = "MissedFires", f"{missed} earlier fire(s) were missed; only the latest ran"
        else:
            reason, message = (
                "Fired",
                f"the fire at {rfc3339(due)} created {run_name(schedule.metadata.name or '', due)}",
            )
        status["conditions"].append(
            condition(old, "FireSkipped", "True" if missed else "False", reason, message, **kw)
        )
    return result


def _approval_wait(schedule: JobSchedule, approval_required: bool) -> tuple[str, str] | None:
    """The Ready condition's reason and message while a schedule may not fire for want of approval."""
    if not approval_required:
        return None
    approval = schedule.spec.approval
    if approval is None:
        requester = schedule.spec.requested_by or "an unknown user"
        return (
            "AwaitingApproval",
            f"the job requires approval: requested by {requester}, waiting for someone else to approve or "
            f"deny it (kubectl annotate jobschedule {schedule.metadata.name} jobplane.io/approval=approve, "
            "or =deny)",
        )
    if approval.decision == ApprovalDecision.DENIED:
        return "Denied", f"Denied by {approval.by} at {rfc3339(approval.at)}: it never fires"
    return None


def refused_status(
    schedule: JobSchedule, planned: SchedulePlan, *, fire: datetime, message: str, now: datetime
) -> dict[str, Any]:
    """The status when the fire's run was refused at admission (the job was disabled since, ...): the fire
    is skipped, and said, rather than retried until the job is fixed."""
    old = schedule.status.model_dump(mode="json", by_alias=True) if schedule.status else {}
    status = {**planned.status, "lastScheduleTime": old.get("lastScheduleTime")}
    status["conditions"] = [c for c in status["conditions"] if c["type"] != "FireSkipped"]
    _skip(status, old, fire, "RunRefused", message, generation=schedule.metadata.generation or 0, now=now)
    return status


def fire_run(schedule: JobSchedule, fire: datetime) -> dict[str, Any]:
    """The JobRun of one fire: the schedule's job, data and queue; its requester; owned by the schedule.

    A sensitive job's inputs are not in it: the run names a Secret of its own (the fire's name + -inputs),
    which the operator creates after the run, as a copy of the schedule's, owned by the run.
    """
    meta = schedule.metadata
    name = run_name(meta.name or "", fire)
    spec: dict[str, Any] = {"job": schedule.spec.job, "data": dict(schedule.spec.data)}
    if schedule.spec.queue:
        spec["queue"] = schedule.spec.queue
    if schedule.spec.inputs_secret_ref:
        spec["inputsSecretRef"] = f"{name}-inputs"
    if schedule.spec.requested_by:
        spec["requestedBy"] = schedule.spec.requested_by
    annotations = {ANNOTATION_SCHEDULED_AT: rfc3339(fire)}
    approval = schedule.spec.approval
    if approval is not None and approval.decision == ApprovalDecision.APPROVED:
        # The schedule's decision goes with each fire's run: the operator (trusted) names the approver,
        # as the API does, so an approved schedule's runs do not wait again.
        spec["approval"] = approval.model_dump(mode="json", by_alias=True)
        annotations[APPROVAL_ANNOTATION] = "approve"
    return {
        "apiVersion": schedule.api_version,
        "kind": "JobRun",
        "metadata": {
            "name": name,
            "namespace": meta.namespace,
            "labels": {LABEL_SCHEDULE: meta.name or "", LABEL_MANAGED_BY: "jobplane"},
            "annotations": annotations,
            "ownerReferences": [
                controller_owner(schedule.api_version, "JobSchedule", meta.name or "", meta.uid or "")
            ],
        },
        "spec": spec,
    }


def run_inputs_secret(run: dict[str, Any], inputs: str) -> dict[str, Any]:
    """The fire's own copy of the schedule's inputs: of the run-inputs type, owned by the run (its uid)."""
    meta = run["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": INPUTS_SECRET_TYPE,
        "metadata": {
            "name": run["spec"]["inputsSecretRef"],
            "namespace": meta["namespace"],
            "labels": {LABEL_MANAGED_BY: "jobplane"},
            "ownerReferences": [controller_owner(run["apiVersion"], "JobRun", meta["name"], meta["uid"])],
        },
        "data": {INPUTS_SECRET_KEY: inputs},
    }


def schedule_run(run: dict[str, Any]) -> dict[str, Any]:
    """What ``plan`` (and the history's deletion) reads of a schedule's run: the operator keeps this much of
    each in memory rather than the whole run, or lists them for each pass."""
    view = RunView(run)
    meta, annotations = view.meta, view.meta.get("annotations") or {}
    slim: dict[str, Any] = {
        "metadata": {
            key: meta[key]
            for key in ("name", "namespace", "uid", "creationTimestamp", "ownerReferences", "labels")
            if key in meta
        },
        "status": {"phase": view.status.get("phase")},
    }
    if ANNOTATION_SCHEDULED_AT in annotations:
        slim["metadata"]["annotations"] = {ANNOTATION_SCHEDULED_AT: annotations[ANNOTATION_SCHEDULED_AT]}
    return slim


def schedule_event_matters(obj: dict[str, Any], now: datetime) -> bool:
    """Whether a schedule should be reconciled now: its spec changed since the last pass (or none was
    made), or its next fire is due. Our own status writes are not. Read as stored, not parsed: the schedule
    loop asks it of every schedule every second."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    if status.get("observedGeneration") != meta.get("generation"):
        return True
    upcoming = _parse(status.get("nextScheduleTime"))
    return upcoming is not None and upcoming <= aware(now)
