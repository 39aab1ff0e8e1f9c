"""The run path: check the job and the caller, validate the inputs, create the JobRun and its JobResult."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from jobplane.schema import JobDataError, validate_data
from jobplane_api.errors import BadRequest, NotInstalled, PayloadTooLarge, PermissionDenied, Unavailable
from jobplane_api.kube import KubeError
from jobplane_api.schemas import JobRunResponse
from jobplane_api.services.jobs import JOB, class_path_of, find_job, job_queue_names
from jobplane_api.services.mirror import creating_run
from jobplane_api.services.results import result_record, user_ids
from jobplane_api.services.schedules import ScheduleInput, checked_schedule, create_scheduled_job
from jobplane_crds.runview import RunView
from jobplane_store.models import FileProxy, JobStatus
from jobplane_store.results import upsert_job_result

if TYPE_CHECKING:
    from jobplane_api.identity import Principal
    from jobplane_api.kube import KubeGateway
    from jobplane_crds.v1alpha1 import JobDefinition

__all__ = ["RunRequest", "UploadedFile", "run_job"]


@dataclass(frozen=True)
class UploadedFile:
    """A FileVar upload, read into memory (bounded by the upload size limit)."""

    name: str
    content: bytes


@dataclass
class RunRequest:
    """A run request, from the JSON body or the multipart form, before it is checked."""

    data: Any = field(default_factory=dict)
    task_queue: str | None = None
    job_queue: str | None = None
    schedule: ScheduleInput | None = None
    dryrun: bool | None = None
    ignore_singleton_lock: bool = False
    files: dict[str, UploadedFile] = field(default_factory=dict)

    @property
    def schedule_interval(self) -> str | None:
        return self.schedule.interval if self.schedule is not None else None


def _queue(request: RunRequest, allowed: list[str]) -> str:
    if request.task_queue and request.job_queue and request.task_queue != request.job_queue:
        raise BadRequest(body={"task_queue": ["Give task_queue or job_queue, not both."]})
    chosen = request.task_queue or request.job_queue
    if not chosen:
        return allowed[0]
    if chosen not in allowed:
        key = "task_queue" if request.task_queue else "job_queue"
        raise BadRequest(body={key: [f'"{chosen}" is not a valid choice.']})
    return chosen


def _validated(definition: JobDefinition, request: RunRequest, file_ids: dict[str, str]) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise BadRequest(body={"errors": ["Job data needs to be a dict"]})
    data = {**data, **file_ids}
    schema = definition.variables_schema or {"type": "object"}
    properties = schema.get("properties") or {}
    if request.dryrun is not None and "dryrun" in properties:
        data.setdefault("dryrun", request.dryrun)
    try:
        return validate_data(schema, data)
    except JobDataError as exc:
        raise BadRequest(body=exc.as_response()) from None


def run_job(
    *,
    session: Session,
    kube: KubeGateway,
    principal: Principal,
    key: str,
    request: RunRequest,
    namespace: str,
    upload_max_size: int,
    base_url: str,
    now: datetime | None = None,
) -> JobRunResponse:
    """Nautobot's run endpoint: 404 unknown, 405 not installed, 403 disabled or not allowed, 400 bad input.

    A schedule other than ``immediately`` creates a scheduled job (a JobSchedule) instead of a run, and the
    answer carries it with a null job result, as Nautobot's does. ``ignore_singleton_lock`` starts a
    singleton job's run beside an active one (the JobRun's spec.ignoreSingletonLock).
    """
    if not principal.has("run", JOB):
        # Nautobot's permission class refuses before its view runs, with DRF's words (the view's own
        # "This user does not have permission to run jobs." is never reached).
        raise PermissionDenied()
    definition, record = find_job(kube=kube, principal=principal, key=key, base_url=base_url, action="run")
    if not record.installed:
        raise NotInstalled()
    if not record.enabled:
        raise PermissionDenied("This job is not enabled to be run.")
    # Local: services.approvals runs approved runs through run_job, so each module needs the other.
    from jobplane_api.services.approvals import awaiting_approval

    effective = definition.effective()
    sensitive = effective.has_sensitive_variables is not False
    now = now or datetime.now(UTC)
    planned = checked_schedule(request.schedule, now=now)
    if planned is None:
        # An approval-required job's run waits for approval as a scheduled job once at now (Nautobot 2.x).
        given = request.data if isinstance(request.data, dict) else {}
        dryrun = bool(request.dryrun) or given.get("dryrun") is True
        planned = awaiting_approval(record, effective, dryrun=dryrun, now=now)
    queue = _queue(request, job_queue_names(definition))
    if planned is not None:
        if request.ignore_singleton_lock:
            # The lock is ignored by the run it is asked for; a schedule's fires (or an approved run) are
            # runs made later, when it may be held by someone else entirely.
            raise BadRequest(
                body={
                    "_ignore_singleton_lock": [
                        "Only a run started immediately can ignore the singleton lock."
                    ]
                }
            )
        if request.files:
            # An uploaded file is bound to the one run that reads it; a schedule's fires are many runs.
            raise BadRequest(body={"errors": ["A job with file inputs can only be run immediately."]})
        scheduled = create_scheduled_job(
            session=session,
            kube=kube,
            principal=principal,
            definition=definition,
            planned=planned,
            queue=queue,
            data=_validated(definition, request, {}),
            sensitive=sensitive,
            base_url=base_url,
            form=request.schedule is not None and request.schedule.form,
        )
        return JobRunResponse(job_result=None, scheduled_job=scheduled)

    file_ids: dict[str, str] = {}
    for name, upload in request.files.items():
        if len(upload.content) > upload_max_size:
            raise PayloadTooLarge(f"File {name!r} is above the limit of {upload_max_size} bytes.")
        file_ids[name] = str(uuid.uuid4())
    data = _validated(definition, request, file_ids)
    dry_run = bool(data.get("dryrun")) if record.supports_dryrun else False

    class_path = class_path_of(definition)
    job_name = str(definition.metadata.name)
    spec: dict[str, Any] = {"job": job_name, "queue": queue}
    if principal.username:
        spec["requestedBy"] = principal.username  # kept by admission for the API's own identity only
    if dry_run:
        spec["dryRun"] = True  # the operator lets a dry run of a job with a DryRunVar start unapproved
    if request.ignore_singleton_lock and effective.is_singleton:
        # Nautobot's rule: whoever may run the job may ignore its lock (the run permission, checked above
        # with its constraints). The run records the requester as who forced it.
        spec["ignoreSingletonLock"] = True
    secret = f"jobplane-inputs-{uuid.uuid4().hex}" if sensitive and data else None
    if secret is not None:
        # The inputs of a sensitive job go to a Secret the operator hands to the pod; never the spec.
        # It is made after the run, owned by it: admission refuses a run naming a Secret that exists.
        spec["inputsSecretRef"] = secret
    else:
        spec["data"] = data if not sensitive else {}
    # This process's mirror skips its watch event for the run as created, once this row is committed.
    with creating_run(session) as claim_run:
        try:
            run = kube.create_run(
                namespace=namespace,
                generate_name=f"{job_name[:40].rstrip('-.')}-",
                spec=spec,
                labels={"jobplane.io/requested-via": "api"},
            )
        except KubeError as exc:
            raise Unavailable(f"Could not create the run: {exc}") from None
        claim = claim_run(run)
    created = RunView(run)  # the apiserver's answer: it has a name and a uid
    if secret is not None:
        try:
            kube.create_inputs_secret(run=run, name=secret, data_json=json.dumps(data))
        except KubeError as exc:
            kube.delete_run(namespace, created.name, uid=created.uid)
            raise Unavailable(f"Could not store the run's inputs: {exc}") from None

    run_uid = uuid.UUID(str(created.uid))
    values: dict[str, Any] = {
        "name": record.name,
        "job_class_path": class_path,
        "job_model_id": record.id,
        "user": principal.username,
        "task_kwargs": None if sensitive else data,
        "queue": queue,
        "soft_time_limit": record.soft_time_limit,
        "time_limit": record.time_limit,
        "run_name": created.name,
        "run_namespace": namespace,
        "dry_run": dry_run,
    }
    # The mirror may have recorded the run already (it watches JobRuns): insert or complete that row, in one
    # statement that returns it (one round trip where an insert, an update and a read took three).
    # Its status and creation time stay the mirror's: the run may have moved on meanwhile.
    result = upsert_job_result(
        session,
        {"id": run_uid, "status": JobStatus.PENDING, "date_created": now, **values},
        update_columns=values,
    )
    assert result is not None  # a row is always written (inserted or updated) and returned
    if claim is not None:
        claim.recorded(result, definition, run)
    for name, upload in request.files.items():
        session.add(
            FileProxy(
                id=uuid.UUID(file_ids[name]),
                name=upload.name,
                content=upload.content,
                size=len(upload.content),
                uploaded_at=now,
                input_for_result_id=run_uid,
            )
        )
    session.flush()
    # The requester is the caller, whose id authentication read already.
    users = (
        {principal.username: principal.user_id}
        if principal.username and principal.user_id is not None and result.user == principal.username
        else user_ids(session, [result.user])
    )
    return JobRunResponse(job_result=result_record(result, base_url, users=users), scheduled_job=None)
