"""``job-results/``, ``job-logs/`` and ``file-proxies/``: the history of runs, read from Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from jobplane_api.deps import DepthDep, KubeDep, PrincipalDep, SessionDep, SettingsDep
from jobplane_api.pagination import Page, PageDep
from jobplane_api.routes import attachment, base_url, query_filters
from jobplane_api.schemas import FileProxyRead, JobLogEntryRead, JobResultRead, JobRunResponse
from jobplane_api.services import log_stream
from jobplane_api.services import results as service
from jobplane_api.services.nesting import page_at_depth, related_of_results, result_at_depth
from jobplane_api.services.reruns import rerun_result

router = APIRouter(prefix="/api/extras")

ResultId = Annotated[str, Path(description="The job result's UUID (the JobRun's uid).")]


@router.get(
    "/job-results/",
    response_model=Page[JobResultRead],
    tags=["job results"],
    description=(
        "Newest first. Filters: status, name, user, job_model, task_name, queue, run_name, id, "
        "date_created__gte/__gt/__lte/__lt (ISO date or date-time, UTC when it has no offset)."
    ),
)
def list_results(
    request: Request, session: SessionDep, principal: PrincipalDep, page: PageDep, depth: DepthDep
) -> Page[JobResultRead] | JSONResponse:
    listed = service.list_results(
        session=session,
        principal=principal,
        page=page,
        base_url=base_url(request),
        filters=query_filters(request),
    )
    if not depth:
        return listed
    related = related_of_results(
        listed.results,
        depth,
        session=session,
        kube=request.app.state.kube,
        principal=principal,
        base_url=base_url(request),
    )
    return JSONResponse(page_at_depth(listed, lambda result: result_at_depth(result, depth, related)))


@router.get("/job-results/{result_id}/", response_model=JobResultRead, tags=["job results"])
def get_result(
    result_id: ResultId, request: Request, session: SessionDep, principal: PrincipalDep, depth: DepthDep
) -> JobResultRead | JSONResponse:
    record = service.get_result(
        session=session, principal=principal, result_id=result_id, base_url=base_url(request)
    )
    if not depth:
        return record
    related = related_of_results(
        [record],
        depth,
        session=session,
        kube=request.app.state.kube,
        principal=principal,
        base_url=base_url(request),
    )
    return JSONResponse(result_at_depth(record, depth, related))


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


def log_stream_target(
    result_id: ResultId, session: SessionDep, principal: PrincipalDep
) -> log_stream.StreamTarget:
    return log_stream.open_log_stream(session=session, principal=principal, result_id=result_id)


def log_filter(request: Request) -> log_stream.LogFilter:
    return log_stream.LogFilter.of(query_filters(request))


def resume_point(
    after: Annotated[
        int | None, Query(ge=0, le=2**62, description="Send entries after this id (Last-Event-ID wins).")
    ] = None,
    last_event_id: Annotated[str | None, Header(description="The id of the last entry received.")] = None,
) -> int:
    """Checked before the stream opens, so that a bad value is a 400 rather than a broken stream."""
    return log_stream.parse_resume_point(last_event_id, after)


# Milliseconds a client waits before it reconnects (with Last-Event-ID) after the stream drops.
RECONNECT_MS = 2000


@router.get(
    "/job-results/{result_id}/logs/stream/",
    response_class=EventSourceResponse,
    tags=["job results"],
    description=(
        "The result's log as Server-Sent Events, while it is written (jobplane's addition). "
        "`status` events carry the result's status, first as it is and then when it changes; each `log` "
        "event is one entry (as `job-logs/` shows it) with the entry's id as the event id; `end` comes "
        "once the run has ended and all its entries were sent (its status; null when the result was "
        "deleted). A stream that closes without `end` is resumed by reconnecting with `Last-Event-ID` "
        "(EventSource does so by itself): no entry is sent twice or skipped. Filters: log_level, "
        "grouping, q."
    ),
)
async def stream_logs(
    request: Request,
    target: Annotated[log_stream.StreamTarget, Depends(log_stream_target)],
    filters: Annotated[log_stream.LogFilter, Depends(log_filter)],
    start: Annotated[int, Depends(resume_point)],
) -> AsyncIterator[ServerSentEvent]:
    url = base_url(request)
    events = log_stream.follow_logs(
        target,
        sessions=request.app.state.sessions,
        notifier=request.app.state.result_notifier,
        after=start,
        filters=filters,
    )
    first = True
    async for event in events:
        if isinstance(event, log_stream.StatusChanged):
            yield ServerSentEvent(
                event="status", data={"status": event.status}, retry=RECONNECT_MS if first else None
            )
            first = False
        elif isinstance(event, log_stream.LogLines):
            for entry in event.entries:
                yield ServerSentEvent(event="log", id=str(entry.id), data=service.log_record(entry, url))
        else:
            yield ServerSentEvent(event="end", data={"status": event.status})


@router.post("/job-results/{result_id}/cancel/", response_model=JobResultRead, tags=["job results"])
def cancel_result(
    result_id: ResultId, request: Request, session: SessionDep, kube: KubeDep, principal: PrincipalDep
) -> JobResultRead:
    """Stop the run: its pod is deleted and the result ends REVOKED (409 when it already finished)."""
    return service.cancel_result(
        session=session, kube=kube, principal=principal, result_id=result_id, base_url=base_url(request)
    )


@router.post(
    "/job-results/{result_id}/rerun/", status_code=201, response_model=JobRunResponse, tags=["job results"]
)
def rerun(
    result_id: ResultId,
    request: Request,
    session: SessionDep,
    kube: KubeDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> JobRunResponse:
    """Run the result's job again with the same inputs and queue, as the caller (jobplane's addition:
    Nautobot re-runs from its form only). Answers as the run endpoint; 409 when the inputs are not kept
    (a sensitive job's, or uploads the run has read)."""
    return rerun_result(
        session=session,
        kube=kube,
        principal=principal,
        result_id=result_id,
        namespace=settings.namespace,
        upload_max_size=settings.upload_max_size,
        base_url=base_url(request),
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
