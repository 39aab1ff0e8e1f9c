"""Approvals of scheduled jobs as Nautobot 2.x answers them: approve, deny and dry-run a JobSchedule.

A run of an approval-required job asked through the API becomes a scheduled job (a JobSchedule) that waits
for approval: once at now when asked for immediately, as Nautobot stores it (``future`` at now). Approving
or denying writes the decision the way an approver does with kubectl: the annotation
``jobplane.io/approval`` and ``spec.approval`` naming the API's user, which admission keeps only because
the API's identity is trusted, and which it refuses when that user requested it. The operator fires an
approved schedule and never a denied one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from jobplane_api.errors import ApiError, BadRequest, Conflict, PermissionDenied, Unavailable
from jobplane_api.kube import KubeError
from jobplane_api.schemas import JobRead, JobResultRead, ScheduledJobRead
from jobplane_api.services import schedules
from jobplane_api.services.jobs import JOB, job_record
from jobplane_api.services.runs import RunRequest, run_job
from jobplane_crds.v1alpha1 import APPROVAL_ANNOTATION, ApprovalDecision, Interval, JobSchedule

if TYPE_CHECKING:
    from jobplane_api.identity import Principal
    from jobplane_api.kube import KubeGateway
    from jobplane_crds.v1alpha1.jobdefinition import JobMetadata

__all__ = [
    "OWN_REQUEST",
    "PAST_START",
    "approval_decision",
    "approve_scheduled_job",
    "awaiting_approval",
    "deny_scheduled_job",
    "dry_run_scheduled_job",
]

# Nautobot's words (extras/api/views.py, ScheduledJobViewSet), answered as bare JSON strings.
OWN_REQUEST = "You cannot approve your own job request!"
PAST_START = (
    "The job's start time is in the past. If you want to force a run anyway, add the `force` query parameter."
)


class _Said(ApiError):
    """An answer whose body is a bare JSON string, as Nautobot's ``Response("...", status=...)``."""

    def body(self) -> Any:
        return self.detail


class SelfApproval(_Said):
    status_code = 403
    code = "SelfApproval"
    default_detail = OWN_REQUEST


class StartTimePassed(_Said):
    status_code = 400
    code = "StartTimePassed"
    default_detail = PAST_START


class DryRunNotAllowed(ApiError):
    """DRF's MethodNotAllowed with Nautobot's detail."""

    status_code = 405
    code = "MethodNotAllowed"
    default_detail = "This job cannot be dry-run at this time."


def awaiting_approval(
    record: JobRead, effective: JobMetadata, *, dryrun: bool, now: datetime
) -> schedules.PlannedSchedule | None:
    """The scheduled job an immediate run of an approval-required job becomes, or None (it runs now).

    Nautobot 2.x: such a run is stored as a one-off schedule at now, named "<job> - <time>", which waits
    for approval; a dry run of a job that supports dry-run needs none.
    """
    if not effective.approval_required or (dryrun and record.supports_dryrun):
        return None
    return schedules.PlannedSchedule(
        name=f"{record.name} - {now.isoformat(sep=' ')}",
        interval=Interval.ONCE,
        start_time=now,
        time_zone="Etc/UTC",
    )


def approval_decision(decision: ApprovalDecision, username: str | None, now: datetime) -> dict[str, Any]:
    """The merge patch that decides a JobSchedule for ``username``: the annotation an approver sets and the
    spec.approval naming them (kept by admission for the API's identity only)."""
    return {
        "metadata": {
            "annotations": {
                APPROVAL_ANNOTATION: "approve" if decision == ApprovalDecision.APPROVED else "deny"
            }
        },
        "spec": {
            "approval": {
                "decision": decision.value,
                "by": username or "",
                "at": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        },
    }


@dataclass(frozen=True)
class _Target:
    item: schedules._Visible
    job: JobRead | None


def _target(
    kube: KubeGateway, principal: Principal, base_url: str, scheduled_job_id: str, action: str
) -> _Target:
    item = schedules._find(kube, principal, base_url, scheduled_job_id, action)
    job = job_record(item.definition, base_url) if item.definition is not None else None
    return _Target(item, job)


def _may_approve(principal: Principal, job: JobRead | None) -> bool:
    return job is not None and principal.allows("approve", JOB, job.model_dump(mode="json"))


def _decide(kube: KubeGateway, schedule: JobSchedule, patch: dict[str, Any]) -> JobSchedule:
    meta = schedule.metadata
    try:
        return kube.decide_schedule(str(meta.name), patch, uid=str(meta.uid))
    except KubeError as exc:
        raise Unavailable(f"Could not record the decision: {exc}") from None


def approve_scheduled_job(
    *,
    session: Session,
    kube: KubeGateway,
    principal: Principal,
    scheduled_job_id: str,
    force: bool,
    base_url: str,
    now: datetime | None = None,
) -> ScheduledJobRead:
    """Nautobot's approve: the change permission on the scheduled job (else 403, or 404 when its
    constraints hide it), ``approve`` on its job, never one's own request (403, even a superuser's), a
    one-off whose start has passed only with ``force`` (400); then it fires as scheduled."""
    if not principal.has("change", schedules.SCHEDULED_JOB):
        raise PermissionDenied()
    target = _target(kube, principal, base_url, scheduled_job_id, "change")
    if not _may_approve(principal, target.job):
        raise PermissionDenied("You do not have permission to approve this request.")
    spec = target.item.schedule.spec
    if spec.requested_by == principal.username:
        raise SelfApproval()
    decided = spec.approval
    if decided:
        raise Conflict(f"This scheduled job was already {decided.decision.value.lower()} by {decided.by}.")
    now = now or datetime.now(UTC)
    when = spec.schedule
    start = schedules._time(when.start_time)
    if when.interval == Interval.ONCE and start is not None and start < now and not force:
        raise StartTimePassed()
    updated = _decide(
        kube, target.item.schedule, approval_decision(ApprovalDecision.APPROVED, principal.username, now)
    )
    return schedules._records(
        session,
        kube,
        [schedules._Visible(updated, target.item.definition, target.item.job_visible)],
        base_url,
    )[0]


def deny_scheduled_job(
    *,
    kube: KubeGateway,
    principal: Principal,
    scheduled_job_id: str,
    base_url: str,
    now: datetime | None = None,
) -> None:
    """Nautobot's deny: the delete permission on the scheduled job, ``approve`` on its job; the scheduled
    job is deleted (its answer is null). The denial is recorded first (who, when: it never fires even if the
    delete fails), except on one's own request, which Nautobot lets its requester withdraw."""
    if not principal.has("delete", schedules.SCHEDULED_JOB):
        raise PermissionDenied()
    target = _target(kube, principal, base_url, scheduled_job_id, "delete")
    if not _may_approve(principal, target.job):
        raise PermissionDenied("You do not have permission to deny this request.")
    schedule = target.item.schedule
    if not schedule.spec.approval and schedule.spec.requested_by != principal.username:
        patch = approval_decision(ApprovalDecision.DENIED, principal.username, now or datetime.now(UTC))
        schedule = _decide(kube, schedule, patch)
    schedules.delete_scheduled_job(
        kube=kube, principal=principal, scheduled_job_id=scheduled_job_id, base_url=base_url
    )


def dry_run_scheduled_job(
    *,
    session: Session,
    kube: KubeGateway,
    principal: Principal,
    scheduled_job_id: str,
    namespace: str,
    upload_max_size: int,
    base_url: str,
) -> JobResultRead:
    """Nautobot's dry-run: the view permission on the scheduled job; its job must be runnable and support
    dry-run (405 otherwise) and the caller may run it (403); runs it now with the scheduled job's inputs and
    ``dryrun`` true, without approving it (a dry run needs no approval)."""
    if not principal.has("view", schedules.SCHEDULED_JOB):
        raise PermissionDenied()
    target = _target(kube, principal, base_url, scheduled_job_id, "view")
    job = target.job
    if job is None or not (job.enabled and job.installed):
        raise DryRunNotAllowed()
    if not job.supports_dryrun:
        raise DryRunNotAllowed("This job does not support dry-run.")
    if not principal.allows("run", JOB, job.model_dump(mode="json")):
        raise PermissionDenied("You do not have permission to run this job.")
    spec = target.item.schedule.spec
    if spec.inputs_secret_ref:
        # Its inputs are in a Secret only the operator reads: the API has nothing to run it with.
        raise BadRequest(
            body={
                "errors": [
                    "This job's inputs are sensitive and kept from the API: dry-run it from its run form."
                ]
            }
        )
    request = RunRequest(data={**spec.data, "dryrun": True}, job_queue=spec.queue, dryrun=True)
    answer = run_job(
        session=session,
        kube=kube,
        principal=principal,
        key=str(job.id),
        request=request,
        namespace=namespace,
        upload_max_size=upload_max_size,
        base_url=base_url,
    )
    assert answer.job_result is not None  # a dry run is never scheduled
    return answer.job_result
