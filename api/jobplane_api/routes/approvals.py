"""``/api/extras/scheduled-jobs/{id}/approve/``, ``deny/`` and ``dry-run/``: Nautobot 2.x's approvals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from jobplane_api.deps import KubeDep, PrincipalDep, SessionDep, SettingsDep
from jobplane_api.routes import base_url
from jobplane_api.schemas import JobResultRead, ScheduledJobRead
from jobplane_api.services import approvals as service

router = APIRouter(prefix="/api/extras/scheduled-jobs", tags=["scheduled jobs"])

ScheduledJobId = Annotated[str, Path(description="The scheduled job's UUID (the JobSchedule's uid).")]


@router.post("/{scheduled_job_id}/approve/", response_model=ScheduledJobRead)
def approve(
    scheduled_job_id: ScheduledJobId,
    request: Request,
    session: SessionDep,
    kube: KubeDep,
    principal: PrincipalDep,
    force: Annotated[bool, Query(description="Approve a one-off whose start time has passed.")] = False,
) -> ScheduledJobRead:
    """Approve it: it then fires as scheduled. Needs change on the scheduled job and approve on its job;
    never one's own request (403 "You cannot approve your own job request!")."""
    return service.approve_scheduled_job(
        session=session,
        kube=kube,
        principal=principal,
        scheduled_job_id=scheduled_job_id,
        force=force,
        base_url=base_url(request),
    )


@router.post("/{scheduled_job_id}/deny/", response_model=None)
def deny(scheduled_job_id: ScheduledJobId, request: Request, kube: KubeDep, principal: PrincipalDep) -> None:
    """Deny it: the scheduled job is deleted, never having fired (200, null). Needs delete on the scheduled
    job and approve on its job."""
    service.deny_scheduled_job(
        kube=kube, principal=principal, scheduled_job_id=scheduled_job_id, base_url=base_url(request)
    )


@router.post("/{scheduled_job_id}/dry-run/", response_model=JobResultRead)
async def dry_run(
    scheduled_job_id: ScheduledJobId,
    request: Request,
    session: SessionDep,
    kube: KubeDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> JobResultRead:
    """Run its job now with its inputs and dryrun true, without approving it (the job must have a
    DryRunVar: 405 otherwise); needs view on the scheduled job and run on its job."""
    return await run_in_threadpool(
        service.dry_run_scheduled_job,
        session=session,
        kube=kube,
        principal=principal,
        scheduled_job_id=scheduled_job_id,
        namespace=settings.namespace,
        upload_max_size=settings.upload_max_size,
        base_url=base_url(request),
    )
