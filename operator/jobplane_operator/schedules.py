"""Applies a JobSchedule's plan: creates the fire's JobRun (and its inputs Secret), cancels and deletes runs,
writes the schedule's status. The decisions are reconcile.jobschedule's; this is the part that calls the API.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import kopf

from jobplane_crds import GROUP
from jobplane_crds.v1alpha1 import INPUTS_SECRET_KEY, SCHEDULE_INPUTS_SECRET_TYPE, VERSION, JobSchedule
from jobplane_operator.kube import JOB_RUNS, Clients
from jobplane_operator.reconcile.jobrun import effective_of, find_definition
from jobplane_operator.reconcile.jobschedule import (
    LABEL_SCHEDULE,
    fire_run,
    plan,
    refused_status,
    run_inputs_secret,
    run_name,
)

__all__ = ["JOB_SCHEDULES", "reconcile_schedule"]

log = logging.getLogger(__name__)

JOB_SCHEDULES = "jobschedules"


def _runs_path(namespace: str, *rest: str) -> str:
    return Clients._path("apis", GROUP, VERSION, "namespaces", namespace, JOB_RUNS, *rest)


def _owned_runs(api: Clients, schedule: JobSchedule) -> list[dict[str, Any]]:
    meta = schedule.metadata
    query = {"labelSelector": f"{LABEL_SCHEDULE}={meta.name}"}
    listed = json.loads(api._call("GET", _runs_path(meta.namespace or ""), query=query))
    return [
        run
        for run in listed.get("items") or []
        if any(o.get("uid") == meta.uid for o in (run.get("metadata") or {}).get("ownerReferences") or [])
    ]


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
    from kubernetes.client.exceptions import ApiException

    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    try:
        return json.loads(api._call("POST", _runs_path(namespace), body)), None
    except ApiException as exc:
        if exc.status == 409:
            found = api.get_run(namespace, name)
            owner = body["metadata"]["ownerReferences"][0]["uid"]
            if found is not None and any(
                o.get("uid") == owner for o in found["metadata"].get("ownerReferences") or []
            ):
                return found, None  # this fire was done before a restart: nothing more to create
            return None, f"a JobRun named {name!r} exists and was not made by this schedule"
        if exc.status in (400, 403, 404, 405, 422):
            try:
                message = json.loads(exc.body or "{}").get("message") or str(exc.reason)
            except ValueError:
                message = str(exc.reason)
            return None, message
        raise


def reconcile_schedule(
    api: Clients, obj: dict[str, Any], now: datetime, definitions: list[dict[str, Any]] | None = None
) -> None:
    """One pass over a schedule: fire if due, keep the history within its limits, write its status.

    ``definitions``: the namespace's JobDefinitions (the operator's index), to tell whether the job
    requires approval; read from the API when not given. An index that lags is safe: a fire's run of an
    approval-required job waits for its own approval anyway.
    """
    schedule = JobSchedule.model_validate(obj)
    meta = schedule.metadata
    namespace, name = meta.namespace or "", meta.name or ""
    runs = _owned_runs(api, schedule)
    if definitions is None:
        definitions = api.list_job_definitions(namespace)
    definition = find_definition(schedule.spec.job, definitions)
    approval_required = bool(effective_of(definition).get("approvalRequired"))
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
    for victim in decided.delete:
        found = next(r for r in runs if r["metadata"]["name"] == victim)
        body = {"preconditions": {"uid": found["metadata"]["uid"]}, "propagationPolicy": "Background"}
        try:
            api._call("DELETE", _runs_path(namespace, victim), body)
        except Exception as exc:  # a run deleted meanwhile, or a transient error: the next pass retries
            log.warning("history cleanup failed run=%s/%s error=%r", namespace, victim, exc)
    if {key: value for key, value in status.items() if value is not None} == (obj.get("status") or {}):
        return  # a look that found nothing new writes nothing (a thousand schedules, every minute)
    resource_version = (obj.get("metadata") or {}).get("resourceVersion")
    if not api._patch_status(namespace, JOB_SCHEDULES, name, status, resource_version):
        # Changed meanwhile: its next event decides again. A fire just made is known by its run.
        raise kopf.TemporaryError("the schedule changed while it was reconciled", delay=1)
