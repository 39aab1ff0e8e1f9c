"""``/api/runs/{run_uid}/``: where a job pod reports its own run, with its run-scoped token.

Internal endpoints (not Nautobot's, not in the OpenAPI document): only ``jobplane run-pod`` calls them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Path, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobplane.joblog import LogEntry
from jobplane_api.deps import SessionDep, SettingsDep
from jobplane_api.errors import PayloadTooLarge
from jobplane_api.routes import attachment
from jobplane_api.services import run_reports as service
from jobplane_store.models import LOG_LEVELS, JobStatus

__all__ = ["FileCreated", "LogBatch", "LogEntryIn", "ResultIn", "StartedIn", "router"]

router = APIRouter(prefix="/api/runs/{run_uid}", tags=["run reports"], include_in_schema=False)


def authenticated_run(
    run_uid: Annotated[str, Path(description="The JobRun's uid (the job result's id).")],
    request: Request,
    settings: SettingsDep,
) -> uuid.UUID:
    return service.authenticate_run(
        key=settings.token_key(), run_uid=run_uid, authorization=request.headers.get("authorization")
    )


RunDep = Annotated[uuid.UUID, Depends(authenticated_run)]


class StartedIn(BaseModel):
    """The pod started the job (never its inputs)."""

    model_config = ConfigDict(extra="ignore")

    class_path: str = Field(min_length=1, max_length=255)
    run_name: str | None = Field(default=None, max_length=253)
    namespace: str | None = Field(default=None, max_length=63)
    user: str | None = Field(default=None, max_length=150)
    queue: str | None = Field(default=None, max_length=100)
    commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{40,64}$")


class LogEntryIn(BaseModel):
    """One entry of the job's log, as ``jobplane.joblog.LogEntry`` holds it."""

    model_config = ConfigDict(extra="ignore")

    level: str
    grouping: str = Field(default="main", max_length=100)
    message: str = ""
    object: str | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=255)
    time: datetime | None = None

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value not in LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}")
        return value


class LogBatch(BaseModel):
    entries: list[LogEntryIn]


class ResultIn(BaseModel):
    """The run's end as the job saw it."""

    status: JobStatus
    result: Any = None
    traceback: str | None = None

    @field_validator("status")
    @classmethod
    def _final(cls, value: JobStatus) -> JobStatus:
        if value not in service.FINAL_STATUSES:
            raise ValueError("status must be SUCCESS, FAILURE or REVOKED")
        return value


class FileCreated(BaseModel):
    id: str
    name: str
    size: int


def _aware(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@router.post("/started/", status_code=204, response_class=Response)
def started(body: StartedIn, run_uid: RunDep, session: SessionDep) -> Response:
    service.record_started(
        session=session,
        run_uid=run_uid,
        class_path=body.class_path,
        run_name=body.run_name,
        namespace=body.namespace,
        user=body.user,
        queue=body.queue,
        commit=body.commit,
        now=datetime.now(UTC),
    )
    return Response(status_code=204)


@router.post("/logs/", status_code=204, response_class=Response)
def logs(body: LogBatch, run_uid: RunDep, session: SessionDep) -> Response:
    entries = [
        LogEntry(
            level=entry.level,
            message=entry.message,
            grouping=entry.grouping,
            log_object=entry.object,
            absolute_url=entry.url,
            created=_aware(entry.time),
        )
        for entry in body.entries
    ]
    service.add_logs(session=session, run_uid=run_uid, entries=entries)
    return Response(status_code=204)


@router.post("/files/", status_code=201, response_model=FileCreated)
def files(
    file: Annotated[UploadFile, File(description="The file; its filename is the name it is kept under.")],
    run_uid: RunDep,
    session: SessionDep,
    settings: SettingsDep,
) -> FileCreated:
    limit = settings.upload_max_size
    name = file.filename or "file"
    # One byte over the limit is enough to refuse: never read a huge upload whole.
    content = file.file.read(limit + 1)
    if len(content) > limit:
        raise PayloadTooLarge(f"File {name!r} is above the upload limit of {limit} bytes.")
    proxy = service.store_file(session=session, run_uid=run_uid, name=name, content=content, max_size=limit)
    return FileCreated(id=str(proxy.id), name=proxy.name, size=proxy.size)


@router.get("/input-files/{file_id}/", response_class=Response)
def input_file(file_id: str, run_uid: RunDep, session: SessionDep) -> Response:
    found = service.read_input_file(session=session, run_uid=run_uid, file_id=file_id)
    return attachment(found.name, found.content)


@router.delete("/input-files/", status_code=204, response_class=Response)
def discard_input_files(run_uid: RunDep, session: SessionDep) -> Response:
    service.discard_input_files(session=session, run_uid=run_uid)
    return Response(status_code=204)


@router.post("/result/", status_code=204, response_class=Response)
def result(body: ResultIn, run_uid: RunDep, session: SessionDep) -> Response:
    service.record_result(
        session=session,
        run_uid=run_uid,
        status=body.status,
        result=body.result,
        traceback=body.traceback,
        now=datetime.now(UTC),
    )
    return Response(status_code=204)
