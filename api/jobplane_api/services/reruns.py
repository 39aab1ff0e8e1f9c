"""Re-run: a new run of a result's job with that run's inputs and queue, requested by the caller.

The new run goes through the run service (services/runs.py) like any other, so the job must still be
installed, enabled and runnable by the caller, and the inputs must still fit its schema.

What cannot be re-run, and why it is refused rather than guessed:

- A sensitive job's inputs are never stored (not in the result, the JobRun spec or the logs); they live in
  a run-inputs Secret owned by the run, which the operator deletes when the run ends. The API may create
  such Secrets but never read any Secret: RBAC cannot narrow ``get`` to one Secret type or to the Secrets
  the API made, so reading them would mean reading every Secret of the run namespaces (run tokens, the data
  database's URL, Git credentials). Such a re-run is refused, saying so; the form takes the inputs again.
- Uploaded files are deleted once the run has read them (as Nautobot does); while they are still there
  (a run that never started) they are uploaded again for the new run, otherwise the re-run is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobplane_api.errors import Conflict, PermissionDenied
from jobplane_api.schemas import JobRunResponse
from jobplane_api.services.jobs import JOB, find_job
from jobplane_api.services.results import readable_result
from jobplane_api.services.runs import RunRequest, UploadedFile, run_job
from jobplane_crds.v1alpha1 import JobDefinition
from jobplane_store.models import FileProxy, JobResult

if TYPE_CHECKING:
    from jobplane_api.identity import Principal
    from jobplane_api.kube import KubeGateway

__all__ = ["SENSITIVE_REFUSAL", "RerunInputs", "rerun_inputs", "rerun_refusal", "rerun_result"]

SENSITIVE_REFUSAL = (
    "The inputs of this run were sensitive: they are never stored, and the run's inputs Secret is deleted "
    "when it ends, so it cannot be re-run as it was. Run the job again with its inputs."
)


@dataclass(frozen=True)
class RerunInputs:
    """What a re-run sends: the job data, and for each FileVar the id of the upload to send again."""

    data: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


def _file_variables(schema: Mapping[str, Any]) -> set[str]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    return {name for name, prop in properties.items() if (prop or {}).get("x-jobplane-type") == "FileVar"}


def rerun_inputs(task_kwargs: Mapping[str, Any] | None, schema: Mapping[str, Any]) -> RerunInputs | str:
    """The inputs a re-run sends, from the stored ones and the job's schema; or why there are none.

    ``task_kwargs`` is None when the job had sensitive variables: only a job without variables can then
    be re-run (with none).
    """
    if task_kwargs is None:
        return RerunInputs() if not schema.get("properties") else SENSITIVE_REFUSAL
    uploads = _file_variables(schema)
    files = {name: str(value) for name, value in task_kwargs.items() if name in uploads and value}
    data = {name: value for name, value in task_kwargs.items() if name not in uploads}
    return RerunInputs(data=data, files=files)


def _kept_files(session: Session, result_id: uuid.UUID, wanted: Mapping[str, str]) -> dict[str, UploadedFile]:
    """The run's uploads still stored, by variable name (each upload is bound to its run)."""
    ids: dict[uuid.UUID, str] = {}
    for name, file_id in wanted.items():
        try:
            ids[uuid.UUID(file_id)] = name
        except ValueError:
            continue
    if not ids:
        return {}
    rows = session.execute(
        select(FileProxy.id, FileProxy.name, FileProxy.content).where(
            FileProxy.input_for_result_id == result_id, FileProxy.id.in_(list(ids))
        )
    ).all()
    return {ids[row.id]: UploadedFile(name=row.name, content=row.content) for row in rows}


def _files_refusal(missing: list[str]) -> str:
    return (
        f"Uploaded files are deleted once a run has read them, and this run's ({', '.join(missing)}) are "
        "gone: run the job again and choose them."
    )


def rerun_refusal(*, session: Session, previous: JobResult, definition: JobDefinition) -> str | None:
    """Why this result cannot be re-run with its inputs (the web UI says it instead of the button)."""
    schema = definition.variables_schema
    inputs = rerun_inputs(previous.task_kwargs, schema)
    if isinstance(inputs, str):
        return inputs
    missing = set(inputs.files) - set(_kept_files(session, previous.id, inputs.files))
    return _files_refusal(sorted(missing)) if missing else None


def rerun_result(
    *,
    session: Session,
    kube: KubeGateway,
    principal: Principal,
    result_id: str,
    namespace: str,
    upload_max_size: int,
    base_url: str,
) -> JobRunResponse:
    """Run the result's job again with its inputs and queue, as the caller: the run endpoint's answer.

    403 without the run permission; 404 for a result the caller may not view or whose job is gone (or not
    visible); 409 when its inputs are not kept; then whatever the run endpoint says (405, 403, 400).
    """
    if not principal.has("run", JOB):
        raise PermissionDenied()
    previous = readable_result(session=session, principal=principal, result_id=result_id)
    if previous.job_model_id is None:
        raise Conflict("This result's job no longer exists: it cannot be re-run.")
    key = str(previous.job_model_id)
    definition, _ = find_job(kube=kube, principal=principal, key=key, base_url=base_url, action="run")
    schema = definition.variables_schema
    inputs = rerun_inputs(previous.task_kwargs, schema)
    if isinstance(inputs, str):
        raise Conflict(inputs)
    files = _kept_files(session, previous.id, inputs.files)
    missing = sorted(set(inputs.files) - set(files))
    if missing:
        raise Conflict(_files_refusal(missing))
    return run_job(
        session=session,
        kube=kube,
        principal=principal,
        key=key,
        request=RunRequest(data=inputs.data, task_queue=previous.queue or None, files=files),
        namespace=namespace,
        upload_max_size=upload_max_size,
        base_url=base_url,
    )
