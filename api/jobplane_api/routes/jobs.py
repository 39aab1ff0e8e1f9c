"""``/api/extras/jobs/``: list, read, change, delete and run jobs, by UUID or by name."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from jobplane_api.deps import DepthDep, KubeDep, PrincipalDep, SessionDep, SettingsDep
from jobplane_api.errors import BadRequest, PayloadTooLarge
from jobplane_api.pagination import Page, PageDep
from jobplane_api.routes import base_url, query_filters
from jobplane_api.schemas import JobRead, JobRunRequest, JobRunResponse, JobUpdate, JobVariableRead
from jobplane_api.services import jobs as service
from jobplane_api.services import nesting
from jobplane_api.services.runs import RunRequest, UploadedFile, run_job
from jobplane_api.services.schedules import ScheduleInput

router = APIRouter(prefix="/api/extras/jobs", tags=["jobs"])

JobKey = Annotated[str, Path(description="The job's UUID, its name, or its class path.", min_length=1)]
FILTERS_DOC = (
    "Filters: installed, enabled, hidden, grouping, name, module_name, module_name__isw, grouping__ic, q."
)


@router.get("/", response_model=Page[JobRead], description=FILTERS_DOC)
def list_jobs(
    request: Request, kube: KubeDep, principal: PrincipalDep, page: PageDep, depth: DepthDep
) -> Page[JobRead] | JSONResponse:
    records = service.list_jobs(
        kube=kube, principal=principal, base_url=base_url(request), filters=query_filters(request)
    )
    listed = page.page(records[page.offset : page.offset + page.limit], len(records))
    if not depth:
        return listed
    related = nesting.Related(queues=nesting.queues_by_id(kube, principal, base_url(request)))
    return JSONResponse(nesting.page_at_depth(listed, lambda job: nesting.job_at_depth(job, depth, related)))


@router.get("/{key}/", response_model=JobRead)
def get_job(
    key: JobKey, request: Request, kube: KubeDep, principal: PrincipalDep, depth: DepthDep
) -> JobRead | JSONResponse:
    _, record = service.find_job(kube=kube, principal=principal, key=key, base_url=base_url(request))
    if not depth:
        return record
    related = nesting.Related(queues=nesting.queues_by_id(kube, principal, base_url(request)))
    return JSONResponse(nesting.job_at_depth(record, depth, related))


# Two routes rather than one with two methods: each gets an OpenAPI operation id of its own.
@router.patch("/{key}/", response_model=JobRead)
@router.put("/{key}/", response_model=JobRead)
def change_job(
    key: JobKey, update: JobUpdate, request: Request, kube: KubeDep, principal: PrincipalDep
) -> JobRead:
    """Enable or disable the job, or override its metadata (PUT is taken as PATCH, as Nautobot's fields
    that are not sent keep their value)."""
    return service.patch_job(
        kube=kube, principal=principal, key=key, update=update, base_url=base_url(request)
    )


@router.delete("/{key}/", status_code=204, response_class=Response)
def delete_job(key: JobKey, request: Request, kube: KubeDep, principal: PrincipalDep) -> Response:
    service.delete_job(kube=kube, principal=principal, key=key, base_url=base_url(request))
    return Response(status_code=204)


@router.get("/{key}/variables/", response_model=list[JobVariableRead])
def job_variables(
    key: JobKey, request: Request, kube: KubeDep, principal: PrincipalDep
) -> list[JobVariableRead]:
    definition, _ = service.find_job(kube=kube, principal=principal, key=key, base_url=base_url(request))
    return service.job_variables(definition)


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic schema with its ``$defs`` put in place: an OpenAPI extra cannot point into them."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


RUN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": _inlined(JobRunRequest.model_json_schema())},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "description": (
                        "Job variables as form fields (files for FileVars), plus _task_queue, _job_queue, "
                        "_schedule_interval, _schedule_name, _schedule_start_time, _schedule_crontab, "
                        "_schedule_time_zone (Jobplane's addition), _ignore_singleton_lock."
                    ),
                    "additionalProperties": {"type": "string"},
                }
            },
        },
    }
}

CONTROL_FIELDS = {
    "_task_queue",
    "_job_queue",
    "_schedule_interval",
    "_schedule_type",
    "_schedule_name",
    "_schedule_start_time",
    "_schedule_crontab",
    "_schedule_time_zone",
    "_ignore_singleton_lock",
}
# The multipart fields of a schedule, as the JSON schedule's keys.
SCHEDULE_FIELDS = {
    "_schedule_interval": "interval",
    "_schedule_type": "interval",
    "_schedule_name": "name",
    "_schedule_start_time": "start_time",
    "_schedule_crontab": "crontab",
    "_schedule_time_zone": "time_zone",
}


def _unquoted(value: str) -> str:
    # curl's -F 'name="value"' strips the quotes, other clients send them literally: accept both for the
    # control fields, whose values never contain quotes.
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _form_value(values: list[Any], prop: dict[str, Any]) -> Any:
    """A form field's text as the JSON value the job's schema expects."""
    types = prop.get("type")
    types = types if isinstance(types, list) else [types]
    text = [str(value) for value in values]
    if "array" in types:
        return text
    value = text[-1]
    if prop.get("x-jobplane-json"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value  # the validator says it is not JSON
    if "boolean" in types:
        word = value.strip().lower()
        return {"true": True, "on": True, "1": True, "false": False, "off": False, "0": False, "": False}.get(
            word, value
        )
    if "integer" in types and "string" not in types:
        try:
            return int(value)
        except ValueError:
            return value
    if "null" in types and value == "":
        return None
    if "object" in str(prop.get("anyOf", "")) and value.startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


async def _multipart(request: Request, kube: KubeDep, key: str, max_size: int) -> RunRequest:
    form = await request.form(max_part_size=max_size + 1)
    definition = kube.find_definition(key)
    schema = definition.variables_schema if definition is not None else {}
    properties: dict[str, Any] = schema.get("properties") or {}
    run = RunRequest(data={})
    grouped: dict[str, list[Any]] = {}
    schedule: dict[str, str] = {}
    for name, value in form.multi_items():
        grouped.setdefault(name, []).append(value)
    for name, values in grouped.items():
        if name in CONTROL_FIELDS:
            text = _unquoted(str(values[-1]))
            if name in ("_task_queue",):
                run.task_queue = text
            elif name == "_job_queue":
                run.job_queue = text
            elif name == "_ignore_singleton_lock":
                # A checkbox's value as Django's BooleanField reads it: absent, "false", "0" or "" is off.
                run.ignore_singleton_lock = text.strip().lower() not in ("", "false", "0", "off", "no")
            elif name in SCHEDULE_FIELDS:
                schedule[SCHEDULE_FIELDS[name]] = text
            continue
        upload = values[-1]
        if isinstance(upload, UploadFile):
            content = await upload.read()
            if len(content) > max_size:
                raise PayloadTooLarge(f"File {name!r} is above the limit of {max_size} bytes.")
            run.files[name] = UploadedFile(name=upload.filename or name, content=content)
            continue
        run.data[name] = _form_value(values, properties.get(name) or {})
    await form.close()
    if schedule:
        run.schedule = ScheduleInput(form=True, **schedule)
    return run


async def _json(request: Request) -> RunRequest:
    raw = await request.body()
    if not raw.strip():
        return RunRequest()
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("JSON parse error - the body is not UTF-8 text.") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"JSON parse error - {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(body, dict):
        raise BadRequest(body={"non_field_errors": ["Invalid data. Expected a dictionary."]})
    try:
        parsed = JobRunRequest.model_validate(body)
    except ValueError as exc:
        errors: dict[str, list[str]] = {}
        for error in getattr(exc, "errors", lambda: [])():
            where = ".".join(str(part) for part in error.get("loc", ())) or "non_field_errors"
            errors.setdefault(where, []).append(str(error.get("msg")))
        raise BadRequest(body=errors or {"non_field_errors": [str(exc)]}) from None
    return RunRequest(
        data=parsed.data,
        task_queue=parsed.task_queue,
        job_queue=parsed.job_queue,
        schedule=(
            ScheduleInput(
                interval=parsed.schedule.interval,
                name=parsed.schedule.name,
                start_time=parsed.schedule.start_time,
                crontab=parsed.schedule.crontab,
                time_zone=parsed.schedule.time_zone,
            )
            if parsed.schedule is not None
            else None
        ),
        dryrun=parsed.dryrun,
        ignore_singleton_lock=parsed.ignore_singleton_lock,
    )


@router.post("/{key}/run/", status_code=201, response_model=JobRunResponse, openapi_extra=RUN_BODY)
async def run(
    key: JobKey,
    request: Request,
    session: SessionDep,
    kube: KubeDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> JobRunResponse:
    """Run a job now, or schedule it: a JSON body `{"data", "task_queue", "schedule"}`, or a multipart form
    (for files; `_schedule_*` fields). A schedule other than `immediately` answers 201 with
    `scheduled_job` set and `job_result` null. `_ignore_singleton_lock` (either body) starts a singleton
    job's run beside an active one."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        run_request = await _multipart(request, kube, key, settings.upload_max_size)
    else:
        run_request = await _json(request)
    return await run_in_threadpool(
        run_job,
        session=session,
        kube=kube,
        principal=principal,
        key=key,
        request=run_request,
        namespace=settings.namespace,
        upload_max_size=settings.upload_max_size,
        base_url=base_url(request),
    )
