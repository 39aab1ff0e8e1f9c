"""``/api/extras/scheduled-jobs/``: list, read, pause or resume, and delete scheduled jobs (JobSchedules)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from jobplane_api.deps import DepthDep, KubeDep, PrincipalDep, SessionDep
from jobplane_api.pagination import Page, PageDep
from jobplane_api.routes import base_url, query_filters
from jobplane_api.schemas import ScheduledJobRead, ScheduledJobUpdate
from jobplane_api.services import schedules as service
from jobplane_api.services.nesting import page_at_depth, related_of_scheduled_jobs, scheduled_job_at_depth

router = APIRouter(prefix="/api/extras/scheduled-jobs", tags=["scheduled jobs"])

ScheduledJobId = Annotated[str, Path(description="The scheduled job's UUID (the JobSchedule's uid).")]


@router.get(
    "/",
    response_model=Page[ScheduledJobRead],
    description=(
        "By name. Filters: id, name, job_model (job name or id), job_model_id, enabled, interval, state, "
        "time_zone, q. Only schedules of jobs the caller may view."
    ),
)
def list_scheduled_jobs(
    request: Request,
    session: SessionDep,
    kube: KubeDep,
    principal: PrincipalDep,
    page: PageDep,
    depth: DepthDep,
) -> Page[ScheduledJobRead] | JSONResponse:
    listed = service.list_scheduled_jobs(
        session=session,
        kube=kube,
        principal=principal,
        page=page,
        base_url=base_url(request),
        filters=query_filters(request),
    )
    if not depth:
        return listed
    related = related_of_scheduled_jobs(
        listed.results, depth, session=session, kube=kube, principal=principal, base_url=base_url(request)
    )
    return JSONResponse(page_at_depth(listed, lambda record: scheduled_job_at_depth(record, depth, related)))


@router.get("/{scheduled_job_id}/", response_model=ScheduledJobRead)
def get_scheduled_job(
    scheduled_job_id: ScheduledJobId,
    request: Request,
    session: SessionDep,
    kube: KubeDep,
    principal: PrincipalDep,
    depth: DepthDep,
) -> ScheduledJobRead | JSONResponse:
    record = service.get_scheduled_job(
        session=session,
        kube=kube,
        principal=principal,
        scheduled_job_id=scheduled_job_id,
        base_url=base_url(request),
    )
    if not depth:
        return record
    related = related_of_scheduled_jobs(
        [record], depth, session=session, kube=kube, principal=principal, base_url=base_url(request)
    )
    return JSONResponse(scheduled_job_at_depth(record, depth, related))


@router.patch("/{scheduled_job_id}/", response_model=ScheduledJobRead)
def change_scheduled_job(
    scheduled_job_id: ScheduledJobId,
    update: ScheduledJobUpdate,
    request: Request,
    session: SessionDep,
    kube: KubeDep,
    principal: PrincipalDep,
) -> ScheduledJobRead:
    """`{"enabled": false}` pauses the fires, `true` resumes them (Jobplane's addition: Nautobot has no
    change of a scheduled job). Needs the change permission; resuming also the run permission on its job."""
    return service.change_scheduled_job(
        session=session,
        kube=kube,
        principal=principal,
        scheduled_job_id=scheduled_job_id,
        update=update,
        base_url=base_url(request),
    )


@router.delete("/{scheduled_job_id}/", status_code=204, response_class=Response)
def delete_scheduled_job(
    scheduled_job_id: ScheduledJobId, request: Request, kube: KubeDep, principal: PrincipalDep
) -> Response:
    """No more fires; its runs still going are stopped (they go with the JobSchedule), results stay."""
    service.delete_scheduled_job(
        kube=kube, principal=principal, scheduled_job_id=scheduled_job_id, base_url=base_url(request)
    )
    return Response(status_code=204)
