"""Scheduled jobs pages: the list (its "awaiting approval" filter is Nautobot's approval queue), a scheduled
job's page with its runs, and its actions: Pause/Resume, Delete, Approve, Deny and Dry run.

Every read and write goes through the services the REST API uses (``services.schedules``,
``services.approvals``, ``services.results``) with the signed-in user as the principal: a button shows only
when that service would accept it (the same permission evaluator), and whatever it still refuses comes back
with its own message. Every action is a plain POST form with the CSRF token, so the pages work without
JavaScript.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from jobplane_api.deps import KubeDep, SessionDep, SettingsDep
from jobplane_api.errors import ApiError, PermissionDenied
from jobplane_api.identity import Principal
from jobplane_api.pagination import PageParams
from jobplane_api.routes import base_url
from jobplane_api.schemas import JobRead, JobResultRead, ScheduledJobRead, ScheduledJobUpdate
from jobplane_api.services import approvals
from jobplane_api.services import jobs as jobs_service
from jobplane_api.services import schedules as service
from jobplane_api.services.results import list_results
from jobplane_api.ui.auth import UserDep, csrf_protect
from jobplane_api.ui.routes.results import STATUS_TONES
from jobplane_api.ui.templating import render

__all__ = [
    "AWAITING_APPROVAL",
    "Actions",
    "interval_text",
    "router",
    "schedule_actions",
    "state_badge",
]

router = APIRouter(prefix="/scheduled-jobs", dependencies=[Depends(csrf_protect)])

# The service's state of a scheduled job that waits for its approval (Nautobot 3.1's "pending").
AWAITING_APPROVAL = "pending"
PAGE_SIZE = 50
RECENT_RUNS = 25
INTERVALS = {"future": "Once", "hourly": "Hourly", "daily": "Daily", "weekly": "Weekly"}


def interval_text(record: ScheduledJobRead) -> str:
    """The interval as the list shows it: Once, Hourly..., or the crontab."""
    if record.interval == "custom":
        return f"Crontab {record.crontab}"
    return INTERVALS.get(record.interval, record.interval or "—")


def state_badge(record: ScheduledJobRead) -> tuple[str, str]:
    """The state as a badge (words, tone): awaiting approval, approved by whom, completed, denied..."""
    state = record.state.value
    if state == AWAITING_APPROVAL:
        return "awaiting approval", "warn"
    if state == "denied":
        return "denied", "bad"
    # An approved one-off fires at once and completes: who approved it still shows.
    approved = f"approved by {record.approved_by}" if record.approval_required and record.approved_by else ""
    if state == "completed":
        return ("completed, " + approved if approved else "completed"), "muted"
    return (approved or "active"), "ok"


@dataclass(frozen=True)
class Actions:
    """What the user may do with a scheduled job, as the services would decide it, and why not Approve."""

    pause: bool = False
    resume: bool = False
    delete: bool = False
    approve: bool = False
    deny: bool = False
    dry_run: bool = False
    approve_refused: str | None = None


def schedule_actions(
    user: Principal,
    record: ScheduledJobRead,
    job: JobRead | None,
    *,
    may_change: bool,
    may_delete: bool,
) -> Actions:
    """The buttons of a scheduled job's page. ``may_change``/``may_delete``: the schedules service lets the
    user change/delete this one (its permission and constraints); ``job``: its job, if the user sees it.

    As the services check: pausing needs change, resuming also run on the job; approving needs change and
    approve on the job and never one's own request; denying needs delete and approve (the requester may
    withdraw their own); a dry run needs run on an enabled, installed job that supports it."""
    job_fields = job.model_dump(mode="json") if job is not None else None

    def on_job(action: str) -> bool:
        return job_fields is not None and user.allows(action, jobs_service.JOB, job_fields)

    awaiting = record.state.value == AWAITING_APPROVAL
    live = record.state.value not in ("completed", "denied")
    may_approve = on_job("approve")
    own = record.requested_by is not None and record.requested_by == user.username
    refused: str | None = None
    if awaiting:
        if own:
            refused = approvals.OWN_REQUEST
        elif not (may_change and may_approve):
            refused = "You do not have permission to approve this request."
    runnable = job is not None and job.enabled and job.installed and job.supports_dryrun
    return Actions(
        pause=may_change and record.enabled,
        resume=may_change and live and not record.enabled and on_job("run"),
        delete=may_delete,
        approve=awaiting and refused is None,
        deny=awaiting and may_delete and may_approve,
        dry_run=awaiting and runnable and on_job("run"),
        approve_refused=refused,
    )


def _jobs(request: Request, user: Principal, kube: KubeDep) -> dict[str, JobRead]:
    """The jobs the user may view, by id."""
    try:
        listed = jobs_service.list_jobs(kube=kube, principal=user, base_url=base_url(request), filters={})
    except PermissionDenied:
        return {}
    return {str(job.id): job for job in listed}


def _job_of(record: ScheduledJobRead, jobs: Mapping[str, JobRead]) -> JobRead | None:
    return jobs.get(str(record.job_model.id)) if record.job_model is not None else None


@router.get("/")
def scheduled_job_list(
    request: Request,
    user: UserDep,
    kube: KubeDep,
    session: SessionDep,
    state: str = "",
    offset: int = 0,
) -> Response:
    """Every scheduled job the user may view, by name; ``state=pending``: those awaiting approval."""
    filters = {"state": [state]} if state else {}
    page = service.list_scheduled_jobs(
        session=session,
        kube=kube,
        principal=user,
        page=PageParams(limit=PAGE_SIZE, offset=max(0, offset), url=str(request.url)),
        base_url=base_url(request),
        filters=filters,
    )
    jobs = _jobs(request, user, kube)
    rows = [
        {
            "record": record,
            "job": _job_of(record, jobs),
            "interval": interval_text(record),
            "state": state_badge(record),
        }
        for record in page.results
    ]
    context = {
        "nav": "scheduled",
        "page": page,
        "rows": rows,
        "state": state,
        "awaiting": state == AWAITING_APPROVAL,
    }
    return render(request, "scheduled_jobs/list.html", context)


def _runs(session: SessionDep, user: Principal, request: Request, record: ScheduledJobRead) -> Any:
    """The scheduled job's latest runs the user may see (the results list's own permission filter); None
    when they may see no result at all."""
    ids = service.recent_run_ids(session=session, scheduled_job_id=record.id, limit=RECENT_RUNS)
    try:
        page = list_results(
            session=session,
            principal=user,
            page=PageParams(limit=RECENT_RUNS, offset=0, url=str(request.url)),
            base_url=base_url(request),
            filters={"id": [str(value) for value in ids] or [str(uuid.UUID(int=0))]},
        )
    except PermissionDenied:
        return None
    results: list[JobResultRead] = list(page.results)
    return results


def _detail(
    request: Request,
    user: Principal,
    kube: KubeDep,
    session: SessionDep,
    scheduled_job_id: str,
    *,
    refused: str | None = None,
    status_code: int = 200,
) -> Response:
    record = service.get_scheduled_job(
        session=session,
        kube=kube,
        principal=user,
        scheduled_job_id=scheduled_job_id,
        base_url=base_url(request),
    )
    job = _job_of(record, _jobs(request, user, kube))
    permitted = {
        action: service.may_scheduled_job(
            kube=kube,
            principal=user,
            base_url=base_url(request),
            scheduled_job_id=str(record.id),
            action=action,
        )
        for action in ("change", "delete")
    }
    context = {
        "nav": "scheduled",
        "record": record,
        "job": job,
        "interval": interval_text(record),
        "state": state_badge(record),
        "actions": schedule_actions(
            user, record, job, may_change=permitted["change"], may_delete=permitted["delete"]
        ),
        "runs": _runs(session, user, request, record),
        "tones": STATUS_TONES,
        "created": request.query_params.get("created") == "1",
        "refused": refused,
    }
    return render(request, "scheduled_jobs/detail.html", context, status_code=status_code)


@router.get("/{scheduled_job_id}/")
def scheduled_job_detail(
    request: Request, scheduled_job_id: str, user: UserDep, kube: KubeDep, session: SessionDep
) -> Response:
    return _detail(request, user, kube, session, scheduled_job_id)


def _refused(
    request: Request,
    user: Principal,
    kube: KubeDep,
    session: SessionDep,
    scheduled_job_id: str,
    exc: ApiError,
) -> Response:
    """The scheduled job's page again, with the service's refusal above its buttons."""
    message = exc.body() if isinstance(exc.body(), str) else exc.detail
    return _detail(
        request, user, kube, session, scheduled_job_id, refused=str(message), status_code=exc.status_code
    )


async def _act(
    request: Request,
    scheduled_job_id: str,
    user: Principal,
    kube: KubeDep,
    db: SessionDep,
    call: Callable[..., Any],
    landing: Callable[[Any], str],
    **arguments: Any,
) -> Response:
    """Call one of the API's services for the user on this scheduled job; land where ``landing`` says on
    success, or show the page again with the service's refusal."""
    try:
        answer = await run_in_threadpool(
            call,
            kube=kube,
            principal=user,
            scheduled_job_id=scheduled_job_id,
            base_url=base_url(request),
            **arguments,
        )
    except ApiError as exc:
        return _refused(request, user, kube, db, scheduled_job_id, exc)
    return RedirectResponse(landing(answer), status_code=303)


def _back(scheduled_job_id: str) -> Callable[[Any], str]:
    return lambda _answer: f"/scheduled-jobs/{scheduled_job_id}/"


def _to_list(_answer: Any) -> str:
    return "/scheduled-jobs/"


def _to_result(result: Any) -> str:
    return f"/job-results/{result.id}/"


@router.post("/{scheduled_job_id}/pause/")
@router.post("/{scheduled_job_id}/resume/")
async def pause_or_resume(
    request: Request, scheduled_job_id: str, user: UserDep, kube: KubeDep, session: SessionDep
) -> Response:
    """Pause: no more fires until resumed; resume: fire again, which needs the right to run the job too
    (the API's PATCH of enabled)."""
    update = ScheduledJobUpdate(enabled=request.url.path.endswith("/resume/"))
    return await _act(
        request, scheduled_job_id, user, kube, session, service.change_scheduled_job,
        _back(scheduled_job_id), session=session, update=update,
    )  # fmt: skip


@router.get("/{scheduled_job_id}/delete/")
def delete_confirmation(
    request: Request, scheduled_job_id: str, user: UserDep, kube: KubeDep, session: SessionDep
) -> Response:
    """Nautobot's confirmation page before a delete."""
    record = service.get_scheduled_job(
        session=session,
        kube=kube,
        principal=user,
        scheduled_job_id=scheduled_job_id,
        base_url=base_url(request),
    )
    return render(request, "scheduled_jobs/delete.html", {"nav": "scheduled", "record": record})


@router.post("/{scheduled_job_id}/delete/")
async def delete(
    request: Request, scheduled_job_id: str, user: UserDep, kube: KubeDep, session: SessionDep
) -> Response:
    """Delete it through the API's delete service; back to the list."""
    return await _act(request, scheduled_job_id, user, kube, session, service.delete_scheduled_job, _to_list)


@router.post("/{scheduled_job_id}/approve/")
async def approve(
    request: Request, scheduled_job_id: str, user: UserDep, kube: KubeDep, session: SessionDep
) -> Response:
    """Approve it through the API's approve service; it then fires as scheduled. As Nautobot's approval
    view (not its API), a one-off whose start has passed is approved all the same, and runs at once."""
    return await _act(
        request, scheduled_job_id, user, kube, session, approvals.approve_scheduled_job,
        _back(scheduled_job_id), session=session, force=True,
    )  # fmt: skip


@router.post("/{scheduled_job_id}/deny/")
async def deny(
    request: Request, scheduled_job_id: str, user: UserDep, kube: KubeDep, session: SessionDep
) -> Response:
    """Deny it through the API's deny service: recorded, then deleted (as Nautobot); back to the list."""
    return await _act(request, scheduled_job_id, user, kube, session, approvals.deny_scheduled_job, _to_list)


@router.post("/{scheduled_job_id}/dry-run/")
async def dry_run(
    request: Request,
    scheduled_job_id: str,
    user: UserDep,
    kube: KubeDep,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Run its job now with its inputs and dryrun true, without approving it; land on that run's result."""
    return await _act(
        request, scheduled_job_id, user, kube, session, approvals.dry_run_scheduled_job, _to_result,
        session=session, namespace=settings.namespace, upload_max_size=settings.upload_max_size,
    )  # fmt: skip
