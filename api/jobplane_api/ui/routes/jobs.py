"""Jobs pages: the list grouped by grouping, a job's page with its admin settings, and its run form."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import groupby
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from jobplane.schema import JobDataError, validate_data
from jobplane_api.deps import KubeDep, SessionDep, SettingsDep
from jobplane_api.errors import ApiError, BadRequest, PermissionDenied
from jobplane_api.identity import Principal
from jobplane_api.pagination import PageParams
from jobplane_api.routes import base_url
from jobplane_api.schemas import JobRead, JobResultRead, JobRunResponse, JobUpdate
from jobplane_api.services import jobs as service
from jobplane_api.services.results import list_results, readable_result
from jobplane_api.services.runs import RunRequest, run_job
from jobplane_api.ui.auth import UserDep, csrf_protect
from jobplane_api.ui.forms import (
    QUEUE_FIELD,
    SCHEDULE_FIELDS,
    SCHEDULE_INTERVALS,
    FormField,
    fields_of,
    form_values,
    parse_run_form,
    schedule_of_form,
    schedule_values,
)
from jobplane_api.ui.templating import is_htmx, render
from jobplane_crds.v1alpha1 import JobDefinition

__all__ = ["ObjectChoices", "approval_note", "router", "run_blocker", "run_landing"]

router = APIRouter(prefix="/jobs", dependencies=[Depends(csrf_protect)])

RECENT_RESULTS = 10
# Where an ObjectVar's choices come from: its property schema -> (key, label) pairs, or None when its rows
# are not known here (the control is then a text input taking a key or a JSON object of filters, as the
# API's data does). app.state.ui_object_choices; ui/object_choices.py reads the job-data database.
ObjectChoices = Callable[[Mapping[str, Any]], list[tuple[str, str]] | None]

# The admin settings form: Nautobot's overridable fields, in its order, with their control.
SETTINGS_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("name", "Name", "text"),
    ("grouping", "Grouping", "text"),
    ("description", "Description", "textarea"),
    ("hidden", "Hidden", "boolean"),
    ("approval_required", "Approval required", "boolean"),
    ("dryrun_default", "Dry-run by default", "boolean"),
    ("has_sensitive_variables", "Has sensitive variables", "boolean"),
    ("is_singleton", "Singleton (one run at a time)", "boolean"),
    ("soft_time_limit", "Soft time limit (seconds, 0: the default)", "number"),
    ("time_limit", "Time limit (seconds, 0: the default)", "number"),
    ("task_queues", "Queues (comma-separated, the first is the default)", "list"),
)


def run_blocker(principal: Principal, job: JobRead) -> str | None:
    """Why this user cannot run this job now, or None: the run service's refusals, said in advance."""
    if not job.installed:
        return "This job is not installed: its code was not found at the last sync."
    if not job.enabled:
        return "This job is disabled: an administrator must enable it before it can run."
    if not principal.allows("run", service.JOB, job.model_dump(mode="json")):
        return "You do not have permission to run this job."
    return None


def approval_note(job: JobRead) -> str | None:
    """What running an approval-required job does (the run service makes it a scheduled job that waits)."""
    if not job.approval_required:
        return None
    return (
        "This job requires approval: your request becomes a scheduled job that runs only once someone else "
        "who may approve it has approved it."
    )


def _can_change(principal: Principal, job: JobRead) -> bool:
    return principal.allows("change", service.JOB, job.model_dump(mode="json"))


@router.get("/")
def job_list(request: Request, user: UserDep, kube: KubeDep, q: str = "", hidden: bool = False) -> Response:
    """Every job the user may view, grouped; hidden ones only when asked for; ``q`` searches."""
    filters: dict[str, list[str]] = {}
    if q.strip():
        filters["q"] = q.split()
    if not hidden:
        filters["hidden"] = ["false"]
    records = service.list_jobs(kube=kube, principal=user, base_url=base_url(request), filters=filters)
    groups = [(grouping, list(jobs)) for grouping, jobs in groupby(records, key=lambda job: job.grouping)]
    context = {"nav": "jobs", "groups": groups, "q": q, "hidden": hidden, "count": len(records)}
    template = "jobs/_list_table.html" if is_htmx(request) else "jobs/list.html"
    return render(request, template, context)


def _recent_results(
    request: Request, session: SessionDep, user: Principal, job: JobRead
) -> list[JobResultRead] | None:
    """The job's latest results the user may see; None when they may see none at all."""
    try:
        page = list_results(
            session=session,
            principal=user,
            page=PageParams(limit=RECENT_RESULTS, offset=0, url=str(request.url)),
            base_url=base_url(request),
            filters={"job_model_id": [str(job.id)]},
        )
    except PermissionDenied:
        return None
    return list(page.results)


def _settings_values(job: JobRead) -> list[dict[str, Any]]:
    rows = []
    for name, label, control in SETTINGS_FIELDS:
        value = getattr(job, name)
        if control == "list":
            value = ", ".join(value)
        rows.append(
            {
                "name": name,
                "label": label,
                "control": control,
                "value": value,
                "override": bool(getattr(job, f"{name}_override")),
            }
        )
    return rows


def _detail(
    request: Request,
    session: SessionDep,
    user: Principal,
    definition: JobDefinition,
    job: JobRead,
    *,
    errors: Mapping[str, list[str]] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "nav": "jobs",
        "job": job,
        "source": (definition.status.source if definition.status is not None else None) or {},
        "fields": fields_of(definition.variables_schema),
        "results": _recent_results(request, session, user, job),
        "blocker": run_blocker(user, job),
        "can_change": _can_change(user, job),
        "settings": _settings_values(job),
        "errors": errors or {},
    }
    return render(request, "jobs/detail.html", context, status_code=status_code)


@router.get("/{key}/")
def job_detail(request: Request, key: str, user: UserDep, kube: KubeDep, session: SessionDep) -> Response:
    definition, job = service.find_job(kube=kube, principal=user, key=key, base_url=base_url(request))
    return _detail(request, session, user, definition, job)


def _settings_update(form: Mapping[str, Any], getlist: Callable[[str], list[Any]]) -> dict[str, Any]:
    """The PATCH body of the settings form: a ticked "override" sends the value, an unticked one resets
    the field to the code's value (its flag false), as the API's PATCH takes it."""
    body: dict[str, Any] = {}
    for name, _label, control in SETTINGS_FIELDS:
        override = str(form.get(f"{name}_override", "")).lower() in ("on", "true", "1")
        body[f"{name}_override"] = override
        if not override:
            continue
        raw = form.get(name)
        text = raw if isinstance(raw, str) else ""
        if control == "boolean":
            body[name] = any(str(v).lower() in ("on", "true", "1") for v in getlist(name))
        elif control == "number":
            body[name] = text.strip() or "0"
        elif control == "list":
            body[name] = [part.strip() for part in text.split(",") if part.strip()]
        else:
            body[name] = text
    return body


@router.post("/{key}/settings/")
async def change_settings(
    request: Request, key: str, user: UserDep, kube: KubeDep, session: SessionDep
) -> Response:
    """Enable/disable, or save the overrides: through the API's PATCH service (same checks)."""
    form = await request.form()
    if "enabled" in form:
        body: dict[str, Any] = {"enabled": str(form.get("enabled")).lower() == "true"}
    else:
        body = _settings_update(form, form.getlist)
    try:
        update = JobUpdate.model_validate(body)
        await run_in_threadpool(
            service.patch_job, kube=kube, principal=user, key=key, update=update, base_url=base_url(request)
        )
    except (ValidationError, BadRequest) as exc:
        definition, job = service.find_job(kube=kube, principal=user, key=key, base_url=base_url(request))
        return _detail(request, session, user, definition, job, errors=_errors_of(exc), status_code=400)
    return RedirectResponse(f"/jobs/{key}/", status_code=303)


def _errors_of(exc: ValidationError | BadRequest) -> dict[str, list[str]]:
    if isinstance(exc, ValidationError):
        errors: dict[str, list[str]] = {}
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ())) or "non_field_errors"
            errors.setdefault(where, []).append(str(error.get("msg")))
        return errors
    body = exc.body()
    return {key: value if isinstance(value, list) else [str(value)] for key, value in body.items()}


# --- the run form ------------------------------------------------------------------------------------


def _object_choices(request: Request, fields: list[FormField]) -> dict[str, list[tuple[str, str]]]:
    provider: ObjectChoices | None = getattr(request.app.state, "ui_object_choices", None)
    if provider is None:
        return {}
    found: dict[str, list[tuple[str, str]]] = {}
    for spec in fields:
        if spec.type in ("ObjectVar", "MultiObjectVar"):
            choices = provider(spec.schema)
            if choices is not None:
                found[spec.name] = choices
    return found


def _run_page(
    request: Request,
    user: Principal,
    definition: JobDefinition,
    job: JobRead,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, list[str]] | None = None,
    form_errors: list[str] | None = None,
    queue: str | None = None,
    notes: list[str] | None = None,
    schedule: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    fields = fields_of(definition.variables_schema)
    queues = service.job_queue_names(definition)
    approval = approval_note(job)
    context = {
        "nav": "jobs",
        "job": job,
        "fields": fields,
        "values": values,
        "errors": errors or {},
        "form_errors": form_errors or [],
        "queues": queues,
        "queue": queue if queue in queues else queues[0],
        "notes": notes or [],
        "queue_field": QUEUE_FIELD,
        "blocker": run_blocker(user, job),
        "object_choices": _object_choices(request, fields),
        "schedule_fields": SCHEDULE_FIELDS,
        "schedule_intervals": SCHEDULE_INTERVALS,
        "schedule": schedule or {},
        "approval_note": approval,
    }
    return render(request, "jobs/run.html", context, status_code=status_code)


@router.get("/{key}/run/")
def run_form(
    request: Request, key: str, user: UserDep, kube: KubeDep, session: SessionDep, rerun: str | None = None
) -> Response:
    """The run form; ``rerun`` (a result id) fills it with that run's inputs and queue."""
    definition, job = service.find_job(kube=kube, principal=user, key=key, base_url=base_url(request))
    values: dict[str, Any] | None = None
    queue: str | None = None
    notes: list[str] = []
    if rerun:
        previous = readable_result(session=session, principal=user, result_id=rerun)
        if previous.job_model_id != job.id:
            raise BadRequest(f"Result {rerun} is not a run of this job.")
        fields = fields_of(definition.variables_schema)
        if previous.task_kwargs is None and fields:
            # Sensitive inputs are never stored: there is nothing to fill in.
            notes.append("The inputs of that run are not stored (the job has sensitive variables).")
        else:
            values = form_values(fields, previous.task_kwargs or {})
        if any(spec.type == "FileVar" and (previous.task_kwargs or {}).get(spec.name) for spec in fields):
            notes.append("Files are not kept for a re-run: choose them again.")
        queue = previous.queue
    return _run_page(request, user, definition, job, values=values, queue=queue, notes=notes)


def _split_errors(body: Mapping[str, Any], names: set[str]) -> tuple[dict[str, list[str]], list[str]]:
    """A run refusal's body as errors per field, and the rest for the top of the form."""
    per_field: dict[str, list[str]] = {}
    general: list[str] = []
    errors = body.get("errors", body)
    if isinstance(errors, list):
        return per_field, [str(message) for message in errors]
    if not isinstance(errors, Mapping):
        return per_field, [str(errors)]
    for key, messages in errors.items():
        texts = messages if isinstance(messages, list) else [messages]
        if isinstance(messages, Mapping):  # {"schedule": {"interval": [...]}}
            texts = [f"{inner}: {' '.join(map(str, value))}" for inner, value in messages.items()]
        if key in names or key in SCHEDULE_FIELDS.values():
            per_field.setdefault(key, []).extend(str(text) for text in texts)
        elif key in ("task_queue", "job_queue"):
            per_field.setdefault(QUEUE_FIELD, []).extend(str(text) for text in texts)
        else:
            general.extend(
                f"{key}: {text}" if key not in ("detail", "non_field_errors") else str(text) for text in texts
            )
    return per_field, general


@router.post("/{key}/run/")
async def run(
    request: Request, key: str, user: UserDep, kube: KubeDep, session: SessionDep, settings: SettingsDep
) -> Response:
    """Run the job through the API's run service; the result page on success, the form with its errors
    otherwise (400)."""
    definition, job = service.find_job(kube=kube, principal=user, key=key, base_url=base_url(request))
    schema = definition.variables_schema
    fields = fields_of(schema)
    form = await request.form(max_part_size=settings.upload_max_size + 1)
    parsed = await parse_run_form(form, fields, max_size=settings.upload_max_size)
    schedule = schedule_of_form(form)

    def again(errors: Mapping[str, list[str]], general: list[str], status_code: int = 400) -> Response:
        return _run_page(
            request, user, definition, job, values=parsed.submitted, errors=errors,
            form_errors=general, queue=parsed.queue, schedule=schedule_values(form), status_code=status_code,
        )  # fmt: skip

    if parsed.errors:
        # Refused before the run service (a JSON that does not parse, a file too large): the rest of the
        # form still goes through the one validator, so every error shows at once.
        errors = dict(parsed.errors)
        checked = {name: value for name, value in parsed.data.items() if name not in errors}
        try:
            validate_data(
                {**schema, "required": [n for n in schema.get("required", ()) if n not in errors]}, checked
            )
        except JobDataError as exc:
            if isinstance(exc.errors, dict):
                for name, messages in exc.errors.items():
                    errors.setdefault(name, messages)
        return again(errors, [])
    try:
        response = await run_in_threadpool(
            run_job,
            session=session,
            kube=kube,
            principal=user,
            key=key,
            request=RunRequest(
                data=parsed.data, task_queue=parsed.queue, files=parsed.files, schedule=schedule
            ),
            namespace=settings.namespace,
            upload_max_size=settings.upload_max_size,
            base_url=base_url(request),
        )
    except BadRequest as exc:
        per_field, general = _split_errors(exc.body(), {spec.name for spec in fields})
        return again(per_field, general)
    except ApiError as exc:
        # Refused before the data was looked at (disabled, not installed, not allowed, too large).
        return again({}, [exc.detail], exc.status_code)
    target = run_landing(response)
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def run_landing(response: JobRunResponse) -> str:
    """Where a run request lands: its result's page, or the scheduled job it became (scheduled, or waiting
    for approval), which then says so."""
    if response.scheduled_job is not None:
        return f"/scheduled-jobs/{response.scheduled_job.id}/?created=1"
    assert response.job_result is not None
    return f"/job-results/{response.job_result.id}/"
