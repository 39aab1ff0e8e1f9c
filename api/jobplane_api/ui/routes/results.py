"""Job results pages: the list with its filters, a result's page, its live log stream, Cancel and Re-run.

Every read and write goes through the services the REST API uses (``services.results``,
``services.log_stream``, ``services.reruns``), with the signed-in user as the principal: the same
permissions, the same errors.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from jobplane_api.deps import KubeDep, SessionDep, SettingsDep
from jobplane_api.errors import ApiError, NotFound, PermissionDenied
from jobplane_api.identity import Principal
from jobplane_api.kube import KubeError
from jobplane_api.pagination import PageParams
from jobplane_api.routes import attachment, base_url
from jobplane_api.routes.results import RECONNECT_MS, resume_point
from jobplane_api.services import jobs as jobs_service
from jobplane_api.services import log_stream, reruns
from jobplane_api.services import results as service
from jobplane_api.ui.auth import UserDep, csrf_protect, csrf_token
from jobplane_api.ui.templating import is_htmx, render, templates
from jobplane_crds.v1alpha1 import WAITING, JobDefinition, JobRun, JobRunStatus
from jobplane_store.models import LOG_LEVELS, JobResult, JobStatus

if TYPE_CHECKING:
    from jobplane_api.kube import KubeGateway

__all__ = ["router"]

router = APIRouter(prefix="/job-results", dependencies=[Depends(csrf_protect)])

# Entries a result page renders itself; the rest come over the stream (or by the "more" link without JS).
LOG_PAGE = 1000
STATUSES = ("PENDING", "STARTED", "SUCCESS", "FAILURE", "REVOKED")
STATUS_TONES = {"SUCCESS": "ok", "FAILURE": "bad", "REVOKED": "warn", "STARTED": "muted", "PENDING": "muted"}
# The filters of the list page, as the list service takes them (the API's query parameters).
LIST_FILTERS = ("job_model_id", "status", "user", "date_created__gte", "date_created__lte")


# --- the list ---------------------------------------------------------------------------------------------


def _list_filters(request: Request) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for key in LIST_FILTERS:
        values = [value.strip() for value in request.query_params.getlist(key) if value.strip()]
        if values:
            filters[key] = values
    # A day picked as the end of the range includes that whole day.
    if "date_created__lte" in filters and all(len(v) == 10 for v in filters["date_created__lte"]):
        filters["date_created__lt"] = [_next_day(v) for v in filters.pop("date_created__lte")]
    return filters


def _next_day(day: str) -> str:
    try:
        return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    except ValueError:
        return day  # the service refuses it with its own message


class JobChoice(NamedTuple):
    """A job as the list's job filter offers it."""

    id: str
    name: str


def _views_every_job(user: Principal) -> bool:
    """Whether the user may view any job whatever its fields: a superuser, or a grant without constraints."""
    if not user.has("view", jobs_service.JOB):
        return False
    return user.is_superuser or any(
        grant.constraints is None and grant.covers("view", jobs_service.JOB) for grant in user.grants
    )


def job_choices(kube: KubeGateway, user: Principal, base: str) -> list[JobChoice]:
    """The jobs the user may view, by name, in the jobs list's order (grouping, then name).

    The jobs list service builds every job's whole record, which object permissions with constraints need
    (any field may be constrained); a user whose view of jobs is unconstrained sees every job, so only the
    names are read (see bench/ui_results.py).
    """
    if not user.has("view", jobs_service.JOB):
        return []
    if not _views_every_job(user):
        listed = jobs_service.list_jobs(kube=kube, principal=user, base_url=base, filters={})
        return [JobChoice(str(job.id), job.name) for job in listed]
    # Sorted as the service sorts (stable: jobs of the same grouping and name stay in the cache's order).
    ordered = sorted(map(_choice_key, kube.definitions()), key=lambda key: key[:2])
    return [JobChoice(uid, name) for _, name, uid in ordered]


def _choice_key(definition: JobDefinition) -> tuple[str, str, str]:
    """A job's grouping, name and id, as its record (``services.jobs.job_record``) has them."""
    effective = definition.effective()
    module_name, _, class_name = jobs_service.class_path_of(definition).rpartition(".")
    name = str(effective.name or class_name or definition.metadata.name)
    return str(effective.grouping or module_name), name, str(definition.metadata.uid)


@router.get("/")
def result_list(
    request: Request,
    user: UserDep,
    session: SessionDep,
    settings: SettingsDep,
    kube: KubeDep,
    limit: Annotated[int, Query(ge=1)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> Response:
    """Newest first, filtered by job, status, user and creation date; pages as the API's list pages."""
    page = PageParams(limit=min(limit, settings.max_page_size), offset=offset, url=str(request.url))
    filters = _list_filters(request)
    results = service.list_results(
        session=session, principal=user, page=page, base_url=base_url(request), filters=filters
    )
    context = {
        "nav": "results",
        "page": results,
        "offset": offset,
        "limit": page.limit,
        "jobs": job_choices(kube, user, base_url(request)),
        "statuses": STATUSES,
        "tones": STATUS_TONES,
        "chosen": {key: request.query_params.get(key, "") for key in LIST_FILTERS},
    }
    template = "results/_table.html" if is_htmx(request) else "results/list.html"
    return render(request, template, context)


# --- one result -------------------------------------------------------------------------------------------


def _live_run(request: Request, row: JobResult) -> JobRun | None:
    """The result's JobRun as the cluster has it now; None when there is none (any more) or no cluster."""
    kube: KubeGateway | None = request.app.state.kube
    if kube is None or not row.run_name or not row.run_namespace:
        return None
    try:
        run = JobRun.model_validate(kube.get_run(row.run_namespace, row.run_name))
    except KubeError:
        return None
    # A JobRun of the same name made since is another run.
    return run if str(run.metadata.uid) == str(row.id) else None


def _waiting(row: JobResult, run: JobRun | None) -> dict[str, Any] | None:
    """Why a run that has not started waits: its JobRun's Waiting condition (else its phase and reason),
    or, without the JobRun, what the mirror recorded of it."""
    if row.status != JobStatus.PENDING:
        return None
    status = (run.status if run is not None else None) or JobRunStatus()
    conditions = status.conditions
    waits = next((c for c in conditions if c.type == WAITING and c.status == "True"), None)
    return {
        "phase": status.phase.value if status.phase is not None else None,
        "reason": (waits.reason if waits else None) or status.reason or row.waiting_reason or row.reason,
        "message": (waits.message if waits else None) or status.message or row.waiting_message or row.message,
        "position": status.queue_position,
        "conditions": [
            condition
            for condition in conditions
            if condition.type != WAITING
            and (condition.status != "True" or condition.type in ("Queued", "Scheduled"))
        ],
    }


def _summary_context(request: Request, user: Principal, session: Any, row: JobResult) -> dict[str, Any]:
    record = service.get_result(
        session=session, principal=user, result_id=str(row.id), base_url=base_url(request)
    )
    files: list[Any] = []
    if record.files:
        try:
            files = service.list_files(
                session=session,
                principal=user,
                page=PageParams(limit=100, offset=0, url=str(request.url)),
                base_url=base_url(request),
                filters={"job_result": [str(row.id)]},
            ).results
        except PermissionDenied:
            files = []
    terminal = JobStatus(row.status).is_terminal
    run = _live_run(request, row)
    can_run = user.has("run", jobs_service.JOB)
    rerun = rerun_refusal = definition = None
    if terminal and row.job_model_id is not None:
        rerun = f"/jobs/{row.job_model_id}/run/?rerun={row.id}"
        definition = _definition(request, str(row.job_model_id)) if can_run else None
        if definition is not None:
            rerun_refusal = reruns.rerun_refusal(session=session, previous=row, definition=definition)
    return {
        "result": record,
        "row": row,
        "tone": STATUS_TONES.get(row.status, "muted"),
        "terminal": terminal,
        "files": files,
        "waiting": _waiting(row, run),
        "pod": run.status.pod_name if run is not None and run.status is not None else None,
        "cancel_refusal": None if terminal else service.cancel_refusal(user, row),
        "can_run": can_run,
        "rerun_url": rerun,
        # The one-click re-run (same inputs) is offered when the inputs are kept; the form always is.
        "rerun_now": definition is not None and rerun_refusal is None,
        "rerun_refusal": rerun_refusal,
    }


def _definition(request: Request, key: str) -> JobDefinition | None:
    kube: KubeGateway | None = request.app.state.kube
    return kube.find_definition(key) if kube is not None else None


def _log_filter(request: Request) -> log_stream.LogFilter:
    params = {key: request.query_params.getlist(key) for key in ("log_level", "grouping", "q")}
    return log_stream.LogFilter.of(params)


def _stream_query(filters: log_stream.LogFilter, after: int) -> str:
    pairs: list[tuple[str, str]] = [("after", str(after))]
    pairs += [("log_level", level) for level in filters.levels]
    pairs += [("grouping", grouping) for grouping in filters.groupings]
    pairs += [("q", search) for search in filters.searches]
    return urlencode(pairs)


@router.get("/{result_id}/")
def result_page(
    request: Request,
    result_id: str,
    user: UserDep,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> Response:
    """Status, timings, who and where, logs (live while the run is active), the return value and files."""
    target = log_stream.open_log_stream(session=session, principal=user, result_id=result_id)
    filters = _log_filter(request)
    row = service.readable_result(session=session, principal=user, result_id=result_id)
    entries = log_stream.log_page(
        session=session, target=target, filters=filters, after=after, limit=LOG_PAGE + 1
    )
    more = len(entries) > LOG_PAGE
    entries = entries[:LOG_PAGE]
    last_id = entries[-1].id if entries else after
    groupings = log_stream.log_groupings(session=session, result_id=row.id)
    summary = _summary_context(request, user, session, row)
    # The stream picks up after what the page shows: live entries, or the rest of a long log.
    follow = not summary["terminal"] or more
    context = {
        "nav": "results",
        **summary,
        "entries": entries,
        "more_url": f"?{_stream_query(filters, last_id)}" if more else None,
        "stream_url": f"/job-results/{row.id}/logs/stream/?{_stream_query(filters, last_id)}"
        if follow
        else None,
        "levels": LOG_LEVELS,
        "groupings": groupings,
        "filters": filters,
        "filtered": bool(filters.conditions()),
    }
    # A filter change swaps the log panel alone.
    panel = is_htmx(request) and request.headers.get("HX-Target") == "log-panel"
    return render(request, "results/_log_panel.html" if panel else "results/detail.html", context)


def _render_fragment(request: Request, name: str, context: Mapping[str, Any]) -> str:
    merged = {"request": request, "user": request.state.ui_principal, "csrf_token": csrf_token(request)}
    return templates().get_template(name).render({**merged, **context})


def _stream_target(request: Request, result_id: str, user: UserDep, session: SessionDep) -> Any:
    return log_stream.open_log_stream(session=session, principal=user, result_id=result_id)


def _summary_html(request: Request, user: Principal, result_id: uuid.UUID) -> str | None:
    with request.app.state.sessions() as session:
        try:
            row = service.readable_result(session=session, principal=user, result_id=str(result_id))
        except ApiError:  # gone, or no longer visible: the page says so when reloaded
            return None
        return _render_fragment(
            request, "results/_summary.html", _summary_context(request, user, session, row)
        )


@router.get("/{result_id}/logs/stream/", response_class=EventSourceResponse)
async def result_log_stream(
    request: Request,
    user: UserDep,
    target: Annotated[log_stream.StreamTarget, Depends(_stream_target)],
    start: Annotated[int, Depends(resume_point)],
) -> AsyncIterator[ServerSentEvent]:
    """The page's live log: each entry a table row (its id the event id), the summary again on each
    status change and at the end. The same service as the API's stream, signed in by the session."""
    filters = _log_filter(request)
    events = log_stream.follow_logs(
        target,
        sessions=request.app.state.sessions,
        notifier=request.app.state.result_notifier,
        after=start,
        filters=filters,
    )
    row_template = templates().get_template("results/_log_row.html")
    first = True
    async for event in events:
        if isinstance(event, log_stream.LogLines):
            for entry in event.entries:
                yield ServerSentEvent(
                    event="log", id=str(entry.id), raw_data=row_template.render(entry=entry)
                )
            continue
        html = await run_in_threadpool(_summary_html, request, user, target.result_id)
        if isinstance(event, log_stream.StatusChanged):
            # The summary again (status, timings, why it waits, the buttons), as it is now.
            yield ServerSentEvent(event="status", raw_data=html or "", retry=RECONNECT_MS if first else None)
            first = False
        else:
            yield ServerSentEvent(event="end", raw_data=html or "<p>This result no longer exists.</p>")


@router.get("/{result_id}/files/{file_id}/")
def download_file(result_id: str, file_id: str, user: UserDep, session: SessionDep) -> Response:
    """An output file of the result, with the API's permission on files."""
    proxy = service.get_file(session=session, principal=user, file_id=file_id, content=True)
    if str(proxy.job_result_id) != result_id:
        raise NotFound()
    return attachment(proxy.name, proxy.content)


@router.post("/{result_id}/cancel/")
def cancel(request: Request, result_id: str, user: UserDep, session: SessionDep, kube: KubeDep) -> Response:
    """Cancel through the API's service (same checks); back to the result page, which shows REVOKED once
    the run has stopped."""
    service.cancel_result(
        session=session, kube=kube, principal=user, result_id=result_id, base_url=base_url(request)
    )
    return _go_to(request, f"/job-results/{result_id}/")


@router.post("/{result_id}/rerun/")
def rerun(
    request: Request,
    result_id: str,
    user: UserDep,
    session: SessionDep,
    kube: KubeDep,
    settings: SettingsDep,
) -> Response:
    """Re-run with the same inputs through the API's service (same checks); the new result's page."""
    response = reruns.rerun_result(
        session=session,
        kube=kube,
        principal=user,
        result_id=result_id,
        namespace=settings.namespace,
        upload_max_size=settings.upload_max_size,
        base_url=base_url(request),
    )
    return _go_to(
        request, f"/job-results/{response.job_result.id}/" if response.job_result else "/job-results/"
    )


def _go_to(request: Request, target: str) -> Response:
    """After a form's POST: the page at ``target`` (htmx follows its header, a plain form the redirect)."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
