"""Applies a JobSchedule's plan in two halves: the fire (its JobRun, its inputs Secret, Replace's
cancellations), then the history's deletions and the schedule's status. The decisions are
reconcile.jobschedule's; this is the part that calls the API.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from jobplane_crds import GROUP
from jobplane_crds.runview import RunView
from jobplane_crds.v1alpha1 import (
    INPUTS_SECRET_KEY,
    SCHEDULE_INPUTS_SECRET_TYPE,
    VERSION,
    JobDefinition,
    JobSchedule,
)
from jobplane_operator.kube import JOB_RUNS, Clients
from jobplane_operator.reconcile.jobrun import find_definition
from jobplane_operator.reconcile.jobschedule import (
    LABEL_SCHEDULE,
    fire_run,
    plan,
    refused_status,
    run_inputs_secret,
    run_name,
)

__all__ = ["JOB_SCHEDULES", "SchedulePass", "finish_schedule", "fire_schedule"]

log = logging.getLogger(__name__)

JOB_SCHEDULES = "jobschedules"


def _runs_path(namespace: str, *rest: str) -> str:
    return Clients._path("apis", GROUP, VERSION, "namespaces", namespace, JOB_RUNS, *rest)


def _owned_runs(
    api: Clients, schedule: JobSchedule, known: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """The schedule's runs (its label and its uid as owner): ``known`` (the operator's index of them, kept
    by its watch) or, when not given or when it has none of the runs the status lists (the index still
    filling at start-up), a LIST. An index that lags a create by a moment is safe: a fire's run has a
    deterministic name, so a second pass over the same fire finds it already made (409)."""
    meta = schedule.metadata
    listed_in_status = bool(schedule.status and schedule.status.runs)
    if known is None or (not known and listed_in_status):
        query = {"labelSelector": f"{LABEL_SCHEDULE}={meta.name}"}
        known = json.loads(api._call("GET", _runs_path(meta.namespace or ""), query=query)).get("items") or []
    return [run for run in known if any(o.get("uid") == meta.uid for o in RunView(run).owner_references)]


def _inputs(api: Clients, schedule: JobSchedule) -> tuple[str | None, str | None]:
    """The schedule's sensitive inputs (base64, as stored) or why they cannot be used."""
    ref = schedule.spec.inputs_secret_ref
    if not ref:
        return None, None
    secret = api.get_secret(schedule.metadata.namespace or "", ref)
    if secret is None:
        return None, f"Secret {ref!r} (spec.inputsSecretRef) does not exist"
    owners = (secret.get("metadata") or {}).get("ownerReferences") or []
    if secret.get("type") != SCHEDULE_INPUTS_SECRET_TYPE or not any(
        o.get("kind") == "JobSchedule" and o.get("uid") == schedule.metadata.uid and o.get("controller")
        for o in owners
    ):
        return None, (
            f"Secret {ref!r} (spec.inputsSecretRef) must be of type {SCHEDULE_INPUTS_SECRET_TYPE} and owned "
            "by this schedule (an ownerReference with controller: true and its uid)"
        )
    value = (secret.get("data") or {}).get(INPUTS_SECRET_KEY)
    if not value:
        return None, f"Secret {ref!r} (spec.inputsSecretRef) has no key {INPUTS_SECRET_KEY}"
    return str(value), None


def _create_run(api: Clients, body: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The fire's run, created or found already created by this schedule; else why not (admission)."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    try:
        return json.loads(api._call("POST", _runs_path(namespace), body)), None
    except ApiException as exc:
        if exc.status == 409:
            found = api.get_run(namespace, name)
            owner = body["metadata"]["ownerReferences"][0]["uid"]
            if found is not None and any(o.get("uid") == owner for o in RunView(found).owner_references):
                return found, None  # this fire was done before a restart: nothing more to create
            return None, f"a JobRun named {name!r} exists and was not made by this schedule"
        if exc.status in (400, 403, 404, 405, 422):
            try:
                message = json.loads(exc.body or "{}").get("message") or str(exc.reason)
            except ValueError:
                message = str(exc.reason)
            return None, message
        raise


@dataclass
class SchedulePass:
    """One pass over a schedule after its fire (if any) was made: what is left to write."""

    obj: dict[str, Any]
    """The schedule as the pass found it (its status and resourceVersion)."""
    runs: list[dict[str, Any]]
    """Its runs as the pass found them."""
    status: dict[str, Any]
    """The status to write."""
    delete: list[str] = field(default_factory=list)
    """Ended runs beyond the history limits."""


def fire_schedule(
    api: Clients,
    obj: dict[str, Any],
    now: datetime,
    definitions: list[JobDefinition] | None = None,
    runs: list[dict[str, Any]] | None = None,
) -> SchedulePass:
    """The first half of a pass: decide, and make the fire's run if one is due (with its inputs Secret,
    after Replace's cancellations); no other write, so that a fire waits for nothing but its own calls.

    ``definitions``: the namespace's JobDefinitions (the operator's index), to tell whether the job
    requires approval; read from the API when not given. An index that lags is safe: a fire's run of an
    approval-required job waits for its own approval anyway. ``runs``: the schedule's runs from the
    operator's index (see _owned_runs); listed from the API when not given.
    """
    schedule = JobSchedule.model_validate(obj)
    meta = schedule.metadata
    namespace, name = meta.namespace or "", meta.name or ""
    runs = _owned_runs(api, schedule, runs)
    if definitions is None:
        definitions = [JobDefinition.model_validate(obj) for obj in api.list_job_definitions(namespace)]
    definition = find_definition(schedule.spec.job, definitions)
    approval_required = bool(definition is not None and definition.effective().approval_required)
    decided = plan(schedule, now=now, runs=runs, approval_required=approval_required)
    status = decided.status
    if decided.fire is not None:
        inputs, problem = _inputs(api, schedule)
        run: dict[str, Any] | None = None
        if problem is None:
            for victim in decided.cancel:
                api._call(
                    "PATCH", _runs_path(namespace, victim), {"spec": {"cancel": True}},
                    content_type="application/merge-patch+json",
                )  # fmt: skip
            run, problem = _create_run(api, fire_run(schedule, decided.fire))
        if run is not None and inputs is not None:
            # After the run, owned by it: the run waits (WaitingForInputs) for this copy.
            api.create_secret(namespace, run_inputs_secret(run, inputs))
        if problem is not None:
            status = refused_status(schedule, decided, fire=decided.fire, message=problem, now=now)
            log.warning("schedule fire refused schedule=%s/%s message=%s", namespace, name, problem)
        else:
            log.info("schedule fired schedule=%s/%s run=%s", namespace, name, run_name(name, decided.fire))
    return SchedulePass(obj=obj, runs=runs, status=status, delete=decided.delete)


def finish_schedule(api: Clients, done: SchedulePass) -> bool:
    """The second half of a pass: delete the ended runs beyond the history limits, write the status.
    Whether the status was written (False: it was unchanged)."""
    meta = done.obj.get("metadata") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    for victim in done.delete:
        found = next(view for view in map(RunView, done.runs) if view.name == victim)
        body = {"preconditions": {"uid": found.uid}, "propagationPolicy": "Background"}
        try:
            api._call("DELETE", _runs_path(namespace, victim), body)
        except Exception as exc:  # a run deleted meanwhile, or a transient error: the next pass retries
            log.warning("history cleanup failed run=%s/%s error=%r", namespace, victim, exc)
    status = done.status
    if {key: value for key, value in status.items() if value is not None} == (done.obj.get("status") or {}):
        return False  # a look that found nothing new writes nothing (a thousand schedules, every minute)
    if not api._patch_status(namespace, JOB_SCHEDULES, name, status, meta.get("resourceVersion")):
        # Changed meanwhile: its next event decides again. A fire just made is known by its run.
        raise kopf.TemporaryError("the schedule changed while it was reconciled", delay=1)
    return True
