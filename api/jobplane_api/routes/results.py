"""``job-results/``, ``job-logs/`` and ``file-proxies/``: the history of runs, read from Postgres."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from jobplane_api.deps import KubeDep, PrincipalDep, SessionDep
from jobplane_api.pagination import Page, PageDep
from jobplane_api.routes import attachment, base_url, query_filters
from jobplane_api.schemas import FileProxyRead, JobLogEntryRead, JobResultRead
from jobplane_api.services import results as service

router = APIRouter(prefix="/api/extras")

ResultId = Annotated[str, Path(description="The job result's UUID (the JobRun's uid).")]


@router.get(
    "/job-results/",
    response_model=Page[JobResultRead],
    tags=["job results"],
    description="Newest first. Filters: status, name, user, job_model, task_name, queue, run_name, id.",
)
def list_results(
    request: Request, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[JobResultRead]:
    return service.list_results(
        session=session,
        principal=principal,
        page=page,
        base_url=base_url(request),
        filters=query_filters(request),
    )


@router.get("/job-results/{result_id}/", response_model=JobResultRead, tags=["job results"])
def get_result(
    result_id: ResultId, request: Request, session: SessionDep, principal: PrincipalDep
) -> JobResultRead:
    return service.get_result(
        session=session, principal=principal, result_id=result_id, base_url=base_url(request)
    )


@router.delete("/job-results/{result_id}/", status_code=204, response_class=Response, tags=["job results"])
def delete_result(
    result_id: ResultId, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Delete the result, its logs and files, and the JobRun it mirrors; it never comes back.

    409 while the run has not ended (cancel it first); 503 when the JobRun could not be deleted.
    """
    service.delete_result(
        session=session, kube=request.app.state.kube, principal=principal, result_id=result_id
    )
    return Response(status_code=204)


@router.get("/job-results/{result_id}/logs/", response_model=list[JobLogEntryRead], tags=["job results"])
def result_logs(
    result_id: ResultId, request: Request, session: SessionDep, principal: PrincipalDep
) -> list[JobLogEntryRead]:
    return service.result_logs(
        session=session, principal=principal, result_id=result_id, base_url=base_url(request)
    )


@router.post("/job-results/{result_id}/cancel/", response_model=JobResultRead, tags=["job results"])
def cancel_result(
    result_id: ResultId, request: Request, session: SessionDep, kube: KubeDep, principal: PrincipalDep
) -> JobResultRead:
    """Stop the run: its pod is deleted and the result ends REVOKED (409 when it already finished)."""
    return service.cancel_result(
        session=session, kube=kube, principal=principal, result_id=result_id, base_url=base_url(request)
    )


@router.get(
    "/job-logs/",
    response_model=Page[JobLogEntryRead],
    tags=["job logs"],
    description="Newest first. Filters: job_result, log_level, grouping, q (message, grouping, level).",
)
def list_logs(
    request: Request, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[JobLogEntryRead]:
    return service.list_logs(
        session=session,
        principal=principal,
        page=page,
        base_url=base_url(request),
        filters=query_filters(request),
    )


@router.get("/job-logs/{log_id}/", response_model=JobLogEntryRead, tags=["job logs"])
def get_log(
    log_id: Annotated[int, Path(ge=1, le=2**62)],
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> JobLogEntryRead:
    return service.get_log(session=session, principal=principal, log_id=log_id, base_url=base_url(request))


@router.get("/file-proxies/", response_model=Page[FileProxyRead], tags=["files"])
def list_files(
    request: Request, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[FileProxyRead]:
    return service.list_files(
        session=session,
        principal=principal,
        page=page,
        base_url=base_url(request),
        filters=query_filters(request),
    )


@router.get("/file-proxies/{file_id}/", response_model=FileProxyRead, tags=["files"])
def get_file(file_id: str, request: Request, session: SessionDep, principal: PrincipalDep) -> FileProxyRead:
    proxy = service.get_file(session=session, principal=principal, file_id=file_id)
    return service.file_record(proxy, base_url(request))


@router.get(
    "/file-proxies/{file_id}/download/",
    response_class=Response,
    tags=["files"],
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_file(file_id: str, session: SessionDep, principal: PrincipalDep) -> Response:
    proxy = service.get_file(session=session, principal=principal, file_id=file_id, content=True)
    return attachment(proxy.name, proxy.content)
