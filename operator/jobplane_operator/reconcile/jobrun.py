"""What a JobRun should own (its one batch/v1 Job) and what its Job and pod say about how it ended.

Pure functions, no Kubernetes calls: the kopf handlers read the objects, call these, and apply the result.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jobplane.schema import JobDataError, validate_data
from jobplane_crds.envcontract import GitFetchLimits
from jobplane_crds.gitcontract import CREDENTIALS_MOUNT
from jobplane_crds.podcontract import (
    DATA_DATABASE_FILE,
    DATA_DATABASE_MOUNT,
    DATA_DATABASE_UNAVAILABLE,
    PodContract,
)
from jobplane_crds.runtoken import run_token
from jobplane_crds.runview import RunView
from jobplane_crds.times import parse_time
from jobplane_crds.v1alpha1 import (
    INPUTS_SECRET_KEY,
    INPUTS_SECRET_TYPE,
    ApprovalDecision,
    JobDefinition,
    JobQueue,
    JobQueueSpec,
    JobRepository,
    JobRun,
    JobRunPhase,
)
from jobplane_crds.v1alpha1.jobdefinition import JobMetadata
from jobplane_operator.reconcile.waiting import KUEUE_ADMISSION, names_in_short

__all__ = [
    "DATA_DATABASE_VOLUME",
    "DEFAULT_QUEUE",
    "INPUTS_MOUNT",
    "LABEL_KUEUE_QUEUE",
    "RUN_TOKEN_KEY",
    "RUN_TOKEN_MOUNT",
    "START_ANNOTATIONS",
    "Admission",
    "ApprovalWait",
    "JobPlan",
    "LeaseHolder",
    "Observation",
    "Refusal",
    "RepositorySource",
    "SingletonTurn",
    "admit",
    "approval_wait",
    "check_runnable",
    "controller_owner",
    "default_queue",
    "find_definition",
    "first_poll_age",
    "handled_job",
    "holder_is_active",
    "image_digest_of",
    "indexed_run",
    "inputs_secret_refusal",
    "inputs_wait_over",
    "job_event_matters",
    "job_name_for",
    "kueue_wait_message",
    "merge_pod_template",
    "observe",
    "plan_job",
    "poll_interval",
    "queue_pod_template",
    "repository_of",
    "repository_source",
    "run_commit",
    "run_event_matters",
    "singleton_holder",
    "singleton_holders",
    "singleton_lease",
    "singleton_lease_name",
    "singleton_turn",
    "start_expired",
    "start_record",
    "token_secret_name",
]


INPUTS_MOUNT = "/var/run/jobplane/inputs"
INPUTS_KEY = INPUTS_SECRET_KEY
RUN_TOKEN_MOUNT = "/var/run/jobplane/run-token"
RUN_TOKEN_KEY = "token"
DATA_DATABASE_VOLUME = "data-database"
# The group of the image's user (Dockerfile: USER 10001:10001). Secret files belong to root; with this
# fsGroup the kubelet gives them to this group, readable (0440), so a non-root job can read its Secrets.
SECRET_FS_GROUP = 10001
CONTAINER = "job"

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_RUN = "jobplane.io/run"
LABEL_RUN_UID = "jobplane.io/run-uid"
LABEL_QUEUE = "jobplane.io/queue"
LABEL_JOB = "jobplane.io/job"
# Kueue manages a Job that carries this label: it admits it to the named LocalQueue by unsuspending it.
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
# What a run's first status records about its start (status field -> annotation of its Job). A run of a
# queue without a concurrency limit may get no status write when its Job is created: its Job carries
# these until the first status written from the Job's events (or a poll) copies them.
START_ANNOTATIONS = {
    "classPath": "jobplane.io/class-path",
    "queue": "jobplane.io/queue",
    "commit": "jobplane.io/commit",
    "attempt": "jobplane.io/attempt",
}
ATTEMPT = 1  # one pod per run: backoffLimit 0, no retry
# Reasons a refusing pod may put in its termination message for its run; any other reads InvalidInputs.
POD_REASONS = frozenset({DATA_DATABASE_UNAVAILABLE})
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")


def label_value(text: str) -> str:
    """A Kubernetes label value for free text: allowed characters, at most 63, alphanumeric at both ends."""
    return _LABEL_VALUE.sub("-", text)[:63].strip("-_.")


_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


def job_name_for(run_name: str, run_uid: str) -> str:
    """The one Job name of a run: its name plus a piece of its uid, within a DNS label's 63 characters.

    The uid part means a JobRun deleted and created again under the same name never adopts the old Job.
    """
    suffix = hashlib.sha256(run_uid.encode()).hexdigest()[:8]
    stem = _DNS_LABEL.sub("-", run_name.lower())[: 63 - len(suffix) - 1].strip("-") or "run"
    return f"{stem}-{suffix}"


def token_secret_name(job_name: str) -> str:
    """The Secret holding a run's token: named after its Job (a DNS label, so the name stays valid)."""
    return f"{job_name}-token"


@dataclass(frozen=True)
class RepositorySource:
    """Where a repository job's code is: the pod fetches exactly ``commit`` of ``url`` as package ``slug``."""

    url: str
    commit: str
    slug: str
    credentials_secret_ref: str | None = None
    max_bytes: int | None = None  # the fetch's size limit; None: the image's default


@dataclass(frozen=True)
class JobPlan:
    """The batch/v1 Job to create for a run, the Secret that carries sensitive inputs (if any), and the
    Secret holding its run-scoped token (when pods report to the API), to create before the Job."""

    job: dict[str, Any]
    inputs_secret: str | None = None
    token_secret: dict[str, Any] | None = None


def _merge_named(base: list[Any], overlay: list[Any]) -> list[Any]:
    merged = [copy.deepcopy(item) for item in base]
    index = {item.get("name"): i for i, item in enumerate(merged) if isinstance(item, dict)}
    for item in overlay:
        name = item.get("name") if isinstance(item, dict) else None
        if name is not None and name in index:
            merged[index[name]] = merge_pod_template(merged[index[name]], item)
        else:
            merged.append(copy.deepcopy(item))
    return merged


def merge_pod_template(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Overlay a queue's partial pod template on the operator's: maps merge, named lists merge by name.

    Lists of named items (containers, env, volumes, volumeMounts) merge like a strategic merge patch;
    other lists and scalars from the overlay replace the base's.
    """
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = merge_pod_template(current, value)
        elif (
            isinstance(current, list)
            and isinstance(value, list)
            and all(isinstance(item, dict) and "name" in item for item in [*current, *value])
        ):
            merged[key] = _merge_named(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def controller_owner(api_version: str, kind: str, name: str, uid: str) -> dict[str, Any]:
    """An owner reference that makes the owner the controller: deleting it deletes what it owns."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def queue_pod_template(
    queue: JobQueueSpec | None,
    *,
    default_image: str,
    command: list[str],
    env: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    mounts: list[dict[str, Any]],
    labels: dict[str, str],
    secret_volumes: bool,
) -> dict[str, Any]:
    """The pod template of a pod on ``queue``: one non-root container with a read-only root filesystem
    running ``command``, the queue's image, resources and placement, then its pod-template overlay.

    ``secret_volumes``: Secrets are mounted (0400), so the pod's group must be able to read them.
    """
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": (queue.image if queue and queue.image else default_image),
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "env": env,
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if queue and queue.resources:
        container["resources"] = queue.resources.model_dump(by_alias=True, exclude_none=True)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": volumes,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "automountServiceAccountToken": False,
    }
    if secret_volumes:
        pod_spec["securityContext"]["fsGroup"] = SECRET_FS_GROUP
    if queue:
        optional = {
            "nodeSelector": queue.node_selector,
            "tolerations": [t.model_dump(by_alias=True, exclude_none=True) for t in queue.tolerations or []]
            or None,
            "affinity": queue.affinity,
            "serviceAccountName": queue.service_account_name,
            "priorityClassName": queue.priority_class_name,
        }
        pod_spec.update({key: value for key, value in optional.items() if value})
    template: dict[str, Any] = {"metadata": {"labels": labels}, "spec": pod_spec}
    if queue and queue.pod_template:
        template = merge_pod_template(template, queue.pod_template)
    return template


def plan_job(
    run: JobRun,
    *,
    class_path: str,
    hard_time_limit: float,
    soft_time_limit: float,
    has_sensitive_variables: bool,
    queue: JobQueue | None,
    default_image: str,
    queue_name: str = "default",
    ttl_seconds_after_finished: int | None = None,
    api_url: str | None = None,
    run_token_key: bytes | None = None,
    repository: RepositorySource | None = None,
    data_database_secret: str | None = None,
    data_database_secret_key: str = "url",
) -> JobPlan:
    """The Job that runs ``run``: owned by it, on its queue's pool, under its limits, inputs kept safe.

    With ``api_url`` the pod reports to the API, proving its run with a token (keyed by
    ``run_token_key``) that only ever travels in a Secret mounted as a file. With ``repository`` the pod
    fetches the job's code at the pinned commit first; Git credentials too are only a mounted Secret.
    With ``data_database_secret`` (the operator's setting, never a run's) the pod gets the job-data
    database's URL as a file of that Secret, told through the pod contract.
    The Job's annotations carry what the run's first status records (START_ANNOTATIONS).
    """
    meta = run.metadata
    if not (meta.name and meta.namespace and meta.uid):
        raise ValueError("plan_job needs a stored JobRun (name, namespace and uid)")
    if api_url and run_token_key is None:
        raise ValueError("plan_job needs the run-token key to plan a run that reports to the API")
    uid = meta.uid
    name = job_name_for(meta.name, uid)
    spec = queue.spec if queue is not None else None
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    secret = run.spec.inputs_secret_ref if has_sensitive_variables else None
    if secret:
        # Inputs travel only as a mounted file from a Secret: never in the spec, env, or command line.
        volumes.append({"name": "inputs", "secret": {"secretName": secret, "defaultMode": 0o400}})
        mounts.append({"name": "inputs", "mountPath": INPUTS_MOUNT, "readOnly": True})
    # A sensitive job without a Secret runs with no inputs; spec.data is never copied for it.
    data = {} if has_sensitive_variables else run.spec.data
    token_secret_ref = token_secret_name(name) if api_url else None
    if token_secret_ref:
        volumes.append(
            {"name": "run-token", "secret": {"secretName": token_secret_ref, "defaultMode": 0o400}}
        )
        mounts.append({"name": "run-token", "mountPath": RUN_TOKEN_MOUNT, "readOnly": True})
    if data_database_secret:
        # Referenced, never read: the kubelet mounts the key as a file. Optional, so that a missing Secret
        # or key starts the pod anyway and the runner ends the run saying which (DataDatabaseUnavailable)
        # rather than the pod waiting on its volume until the hard time limit.
        item = {"key": data_database_secret_key, "path": DATA_DATABASE_FILE}
        volumes.append(
            {
                "name": DATA_DATABASE_VOLUME,
                "secret": {
                    "secretName": data_database_secret,
                    "items": [item],
                    "defaultMode": 0o400,
                    "optional": True,
                },
            }
        )
        mounts.append({"name": DATA_DATABASE_VOLUME, "mountPath": DATA_DATABASE_MOUNT, "readOnly": True})
    credentials = repository.credentials_secret_ref if repository else None
    if credentials:
        volumes.append(
            {"name": "git-credentials", "secret": {"secretName": credentials, "defaultMode": 0o400}}
        )
        mounts.append({"name": "git-credentials", "mountPath": CREDENTIALS_MOUNT, "readOnly": True})
    data_database = (
        PodContract.for_data_database(data_database_secret, data_database_secret_key)
        if data_database_secret
        else PodContract()
    )
    # What the pod is told, as the runner reads it (the pod contract): the names of the files above, never
    # what is in them.
    contract = PodContract(
        run_name=meta.name,
        run_uid=uid,
        run_namespace=meta.namespace,
        run_class_path=class_path,
        run_queue=queue_name,
        run_soft_time_limit=soft_time_limit,
        run_dryrun=run.spec.dry_run,
        run_data_file=Path(INPUTS_MOUNT, INPUTS_KEY) if secret else None,
        run_data=None if secret else json.dumps(data, sort_keys=True),
        api_url=api_url if token_secret_ref else None,
        run_token_file=Path(RUN_TOKEN_MOUNT, RUN_TOKEN_KEY) if token_secret_ref else None,
        data_database_url_file=data_database.data_database_url_file,
        data_database_secret=data_database.data_database_secret,
        repo_url=repository.url if repository else None,
        repo_commit=repository.commit if repository else None,
        repo_slug=repository.slug if repository else None,
        repo_credentials_dir=Path(CREDENTIALS_MOUNT) if credentials else None,
    )
    env: list[dict[str, Any]] = [*contract.env()]
    if repository is not None and repository.max_bytes is not None:
        env += GitFetchLimits(git_max_bytes=repository.max_bytes).env()

    labels = {
        LABEL_MANAGED_BY: "jobplane",
        LABEL_RUN: meta.name[:63],
        LABEL_RUN_UID: uid,
        LABEL_QUEUE: label_value(queue_name),
        LABEL_JOB: label_value(class_path),
    }
    template = queue_pod_template(
        spec,
        default_image=default_image,
        command=["jobplane", "run-pod"],
        env=env,
        volumes=volumes,
        mounts=mounts,
        labels=dict(labels),
        secret_volumes=bool(secret or token_secret_ref or credentials or data_database_secret),
    )
    owner = controller_owner(run.api_version, "JobRun", meta.name, uid)
    started = {"classPath": class_path, "queue": queue_name, "attempt": str(ATTEMPT)}
    if repository is not None:
        started["commit"] = repository.commit
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta.namespace,
            "labels": labels,
            "annotations": {START_ANNOTATIONS[key]: value for key, value in started.items()},
            "ownerReferences": [owner],
        },
        "spec": {
            "backoffLimit": 0,
            # A pod Kubernetes takes away (eviction, preemption, its node gone) fails the Job at once and
            # is never replaced; with backoffLimit 0 it would fail too, but then the Job's own condition
            # would not say the pod was disrupted.
            "podFailurePolicy": {
                "rules": [{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]}]
            },
            # The hard time limit, enforced by the Job controller: SIGTERM, then SIGKILL after the grace.
            "activeDeadlineSeconds": max(1, math.ceil(hard_time_limit)),
            "template": template,
        },
    }
    if spec is not None and spec.kueue_local_queue:
        # Kueue admits it: created suspended (no pod, no startTime: the Job controller starts the
        # activeDeadlineSeconds clock only when Kueue resumes it), labelled with the LocalQueue.
        job["metadata"]["labels"] = {**labels, LABEL_KUEUE_QUEUE: spec.kueue_local_queue}
        job["spec"]["suspend"] = True
    if ttl_seconds_after_finished is not None:
        # The finished Job and its pod (their logs) go away after this; the run's outcome is in its status.
        job["spec"]["ttlSecondsAfterFinished"] = ttl_seconds_after_finished
    token_secret = None
    if token_secret_ref and run_token_key is not None:
        token = run_token(run_token_key, uid)
        token_secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": token_secret_ref,
                "namespace": meta.namespace,
                "labels": dict(labels),
                "ownerReferences": [dict(owner)],
            },
            "type": "Opaque",
            "data": {RUN_TOKEN_KEY: base64.b64encode(token.encode()).decode()},
        }
    return JobPlan(job=job, inputs_secret=secret, token_secret=token_secret)


def kueue_wait_message(job: dict[str, Any], workload: dict[str, Any] | None = None) -> str:
    """What a run whose Job is suspended waits for: Kueue's admission through the LocalQueue it names, and
    Kueue's own word for why not yet, from the Job's Workload (None: not read, or not made yet)."""
    meta = job.get("metadata") or {}
    local_queue = (meta.get("labels") or {}).get(LABEL_KUEUE_QUEUE)
    where = f"LocalQueue {local_queue}" if local_queue else "no LocalQueue (the Job has no queue-name label)"
    head = f"Job {meta.get('name')} is suspended until Kueue admits it through {where}"
    said = _kueue_says(workload) if workload is not None else None
    if said:
        return f"{head}. Kueue: {said}"
    if workload is not None:
        return (
            f"{head}: Kueue has its Workload {workload.get('metadata', {}).get('name')} and says nothing yet"
        )
    return (
        f"{head}: its ClusterQueue's quota is in use, or Kueue is not running (kubectl get workloads shows "
        "why)"
    )


def _kueue_says(workload: dict[str, Any]) -> str | None:
    """Why Kueue has not admitted a Workload: its QuotaReserved (or Admitted) condition's message."""
    conditions = {c.get("type"): c for c in (workload.get("status") or {}).get("conditions") or []}
    for kind in ("QuotaReserved", "Admitted"):
        found = conditions.get(kind)
        if found and found.get("status") == "False" and found.get("message"):
            return str(found["message"])
    return None


def start_record(job: dict[str, Any]) -> dict[str, Any]:
    """The status fields a run's Job carries from its start (see START_ANNOTATIONS); a field the Job
    does not carry is None (a Job made before they were recorded, or an image job's commit)."""
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    record: dict[str, Any] = {key: annotations.get(name) or None for key, name in START_ANNOTATIONS.items()}
    attempt = str(record["attempt"] or "")
    record["attempt"] = int(attempt) if attempt.isdigit() else None
    return record


# --- admission ---------------------------------------------------------------------------------------

DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class Refusal:
    """Why a run may not start; it ends Failed with this reason and no pod is created."""

    reason: str
    message: str


def find_definition(job: str, definitions: Sequence[JobDefinition]) -> JobDefinition | None:
    """The JobDefinition a run names: by object name, or by class path."""
    for definition in definitions:
        if definition.metadata.name == job:
            return definition
    for definition in definitions:
        discovered = definition.status.class_path if definition.status else None
        if job in (discovered, definition.spec.class_path):
            return definition
    return None


def default_queue(definition: JobDefinition | None, effective: JobMetadata | None = None) -> str:
    """The queue a run of ``definition`` goes to when it names none: the first of the job's queues.
    ``effective``: its effective metadata, when the caller has it (each computation costs ~40 us)."""
    if definition is not None and effective is None:
        effective = definition.effective()
    queues = effective.task_queues if effective is not None else None
    return (queues or [DEFAULT_QUEUE])[0]


def check_runnable(
    run: JobRun,
    definition: JobDefinition | None,
    queue_name: str,
    queue_exists: bool,
    effective: JobMetadata | None = None,
) -> Refusal | None:
    """Nautobot's rules for starting a run, plus ours: the job exists, is enabled and installed, may use the
    queue, and the inputs fit its variables schema (checked from the schema alone, no job code imported).
    """
    if definition is None:
        return Refusal("JobNotFound", f"No JobDefinition named {run.spec.job!r} or with that class path")
    status = definition.status
    if status is None or not status.class_path:
        return Refusal("JobNotDiscovered", "The job's class has not been discovered yet (run sync-jobs)")
    if not definition.spec.enabled:
        return Refusal("JobDisabled", f"Job {status.class_path} is disabled; an admin must enable it")
    if not status.installed:
        return Refusal("JobNotInstalled", f"Job {status.class_path} is no longer installed")
    effective = effective or definition.effective()
    allowed = effective.task_queues or [DEFAULT_QUEUE]
    if queue_name not in allowed:
        return Refusal("QueueNotAllowed", f"Queue {queue_name!r} is not one of the job's queues: {allowed}")
    if not queue_exists and queue_name != DEFAULT_QUEUE:
        return Refusal("QueueNotFound", f"No JobQueue named {queue_name!r} in this namespace")
    if effective.has_sensitive_variables is False and run.spec.inputs_secret_ref:
        return Refusal(
            "InputsSecretNotAllowed",
            "This job has no sensitive variables: give its inputs in spec.data, not in a Secret "
            "(spec.inputsSecretRef)",
        )
    if effective.has_sensitive_variables is not False:
        if run.spec.data:
            return Refusal(
                "SensitiveInputsInSpec",
                "This job has sensitive variables: give its inputs in a Secret (spec.inputsSecretRef), "
                "never in spec.data",
            )
        return None  # The inputs are checked by the pod, which alone reads the Secret.
    try:
        validate_data(status.variables_schema or {"type": "object"}, run.spec.data)
    except JobDataError as exc:
        return Refusal("InvalidInputs", json.dumps(exc.as_response(), sort_keys=True))
    return None


@dataclass(frozen=True)
class ApprovalWait:
    """Why a run of an approval-required job does not start: it waits (AwaitingApproval) or was denied."""

    phase: JobRunPhase
    reason: str
    message: str


def approval_wait(
    run: JobRun, definition: JobDefinition | None, effective: JobMetadata | None = None
) -> ApprovalWait | None:
    """Whether a run may start as far as approval goes (None), waits for a decision, or was denied.

    As Nautobot: a job with approval_required runs only once someone other than its requester approved
    it, except a dry run of a job with a DryRunVar (``dryrun``), which needs no approval. A denied run
    ends Cancelled with reason Denied and never gets a Job.
    """
    if definition is None or not (effective or definition.effective()).approval_required:
        return None
    class_path = definition.status.class_path if definition.status else None
    if run.spec.dry_run and definition.status and definition.status.supports_dryrun:
        return None
    approval = run.spec.approval
    name = run.metadata.name or ""
    if approval is None:
        requester = run.spec.requested_by or "an unknown user"
        return ApprovalWait(
            JobRunPhase.AWAITING_APPROVAL,
            "AwaitingApproval",
            f"Job {class_path or run.spec.job} requires approval: requested by {requester}, "
            "waiting for someone else to approve or deny it (kubectl annotate jobrun "
            f"{name} jobplane.io/approval=approve, or =deny)",
        )
    if approval.decision == ApprovalDecision.DENIED:
        return ApprovalWait(
            JobRunPhase.CANCELLED, "Denied", f"Denied by {approval.by} at {approval.at.isoformat()}"
        )
    return None


def inputs_secret_refusal(secret: dict[str, Any] | None, *, ref: str, run_uid: str) -> Refusal | None:
    """Why a run may not take its sensitive inputs from ``secret`` (the Secret ``ref`` as read), or None.

    Only a Secret of Jobplane's inputs type that the run owns as its controller qualifies: one made for
    another purpose (a database password, another run's inputs) is never mounted, adopted or deleted.
    """
    if secret is None:
        return Refusal("InputsSecretNotFound", f"Secret {ref!r} (spec.inputsSecretRef) does not exist")
    if secret.get("type") != INPUTS_SECRET_TYPE:
        return Refusal(
            "InputsSecretNotOwned",
            f"Secret {ref!r} (spec.inputsSecretRef) is not of type {INPUTS_SECRET_TYPE}: a run takes its "
            "inputs only from a Secret of that type created for it",
        )
    owners = (secret.get("metadata") or {}).get("ownerReferences") or []
    if not any(
        owner.get("kind") == "JobRun" and owner.get("uid") == run_uid and owner.get("controller")
        for owner in owners
    ):
        return Refusal(
            "InputsSecretNotOwned",
            f"Secret {ref!r} (spec.inputsSecretRef) is not owned by this run: its ownerReferences must "
            "name the JobRun (with its uid) as controller",
        )
    return None


# --- singleton jobs: one run at a time, held by a coordination.k8s.io Lease --------------------------------

ANNOTATION_HOLDER_UID = "jobplane.io/holder-uid"
# The runs a forced run took the Lease from while they were active (JSON [{"name", "uid"}]): they keep
# holding it with the new holder until they end, so a run that is not forced waits for all of them.
ANNOTATION_TAKEN_FROM = "jobplane.io/taken-from"


@dataclass(frozen=True)
class LeaseHolder:
    """A run a singleton Lease names: by name, and by uid (a run made again under a name is another)."""

    name: str
    uid: str


def singleton_lease_name(class_path: str) -> str:
    """The Lease a singleton job's runs take in turn: one per job class and namespace."""
    digest = hashlib.sha256(class_path.encode()).hexdigest()[:16]
    return f"jobplane-singleton-{digest}"


def singleton_lease(
    name: str,
    run_name: str,
    run_uid: str,
    now: datetime,
    class_path: str,
    taken_from: Sequence[LeaseHolder] = (),
) -> dict[str, Any]:
    """A Lease held by one run (by name, and its uid in an annotation: a run made again under the same name
    does not inherit it), and by the active runs a forced run took it from. It does not expire by time and
    is never released by a write: a holder that has ended (or is gone) no longer holds it, and the next run
    replaces it (a write conditional on the Lease's resourceVersion, so two runs can never both take it)."""
    annotations = {ANNOTATION_HOLDER_UID: run_uid}
    if taken_from:
        annotations[ANNOTATION_TAKEN_FROM] = json.dumps([{"name": h.name, "uid": h.uid} for h in taken_from])
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "labels": {LABEL_MANAGED_BY: "jobplane", LABEL_JOB: label_value(class_path)},
            "annotations": annotations,
        },
        "spec": {"holderIdentity": run_name, "acquireTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
    }


def singleton_holder(lease: dict[str, Any]) -> tuple[str, str]:
    """The run (name, uid) a singleton Lease names as its holder."""
    holder = str((lease.get("spec") or {}).get("holderIdentity") or "")
    uid = str(((lease.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_HOLDER_UID) or "")
    return holder, uid


def singleton_holders(lease: dict[str, Any]) -> list[LeaseHolder]:
    """Every run a singleton Lease names: its holder first, then the runs a forced run took it from."""
    name, uid = singleton_holder(lease)
    holders = [LeaseHolder(name, uid)] if name else []
    raw = ((lease.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_TAKEN_FROM)
    try:
        taken = json.loads(raw) if raw else []
    except json.JSONDecodeError:
        taken = []  # written by us only; unreadable, it names no one
    for item in taken if isinstance(taken, list) else []:
        if isinstance(item, dict) and item.get("name") and item.get("uid"):
            holders.append(LeaseHolder(str(item["name"]), str(item["uid"])))
    return holders


def holder_is_active(holder_uid: str, holder_run: dict[str, Any] | None) -> bool:
    """Whether the run a Lease names still holds it: it exists (the same object) and has not ended."""
    run = RunView(holder_run) if holder_run is not None else None
    return run is not None and run.uid == holder_uid and not run.finished


@dataclass(frozen=True)
class SingletonTurn:
    """Whether a run of a singleton job may start now, by the job's Lease.

    ``take``: write the Lease naming this run (conditional on the Lease read), keeping ``taken_from``
    in it; ``waits_for``: the active run it waits for (None when it may start); ``taken_from``: the active
    runs a forced run starts beside (they are not stopped), for its status.
    """

    take: bool
    waits_for: LeaseHolder | None = None
    taken_from: tuple[LeaseHolder, ...] = ()


def singleton_turn(
    lease: dict[str, Any] | None,
    *,
    run_uid: str,
    forced: bool,
    is_active: Callable[[LeaseHolder], bool],
) -> SingletonTurn:
    """A run's turn at its singleton job's Lease (``is_active``: whether a run the Lease names still runs).

    A run the Lease names already holds it. Otherwise it takes the Lease when no run it names is active;
    while one is, it waits, unless it is forced (spec.ignoreSingletonLock): then it takes the Lease over
    and the active runs stay named in it, so a run that is not forced waits for them too (Nautobot's
    forced run clears the lock; here the run it ignored still counts until it ends).
    """
    holders = singleton_holders(lease) if lease is not None else []
    if holders and holders[0].uid == run_uid:
        # It holds it (taken on an earlier pass, whose status write may have been lost): the same record.
        return SingletonTurn(
            take=False, taken_from=tuple(h for h in holders[1:] if is_active(h)) if forced else ()
        )
    active = tuple(h for h in holders if h.uid != run_uid and is_active(h))
    if active and not forced:
        return SingletonTurn(take=False, waits_for=active[0])
    return SingletonTurn(take=True, taken_from=active)


def inputs_wait_over(run: JobRun, *, now: datetime, timeout: float) -> bool:
    """Whether a run has waited for its inputs Secret longer than ``timeout`` seconds since its creation."""
    age = now - (run.metadata.creation_timestamp or now)
    return age.total_seconds() > timeout


def repository_of(definition: JobDefinition | None) -> str | None:
    """The JobRepository a definition's code comes from; None for the image's jobs."""
    source = definition.status.source if definition and definition.status else None
    if source is None or source.type != "repository":
        return None
    return source.repository or None


def run_commit(definition: JobDefinition | None, pinned_commit: str | None) -> str | None:
    """The commit a run of a repository job uses: the one it was pinned to when first seen, else the one
    its definition was last synced from. None for an image job."""
    if definition is None or definition.status is None or repository_of(definition) is None:
        return None
    source = definition.status.source
    return pinned_commit or (source.commit if source and source.commit else None)


def repository_source(
    definition: JobDefinition,
    repository: JobRepository | None,
    *,
    pinned_commit: str | None,
    max_bytes: int | None = None,
) -> RepositorySource | Refusal | None:
    """Where a run of ``definition`` gets its code: None for an image job, else its JobRepository at the
    run's commit — ``pinned_commit`` (recorded when the run was first seen) or the definition's.

    A repository job whose JobRepository is gone is refused: there is nowhere to fetch its code from.
    """
    name = repository_of(definition)
    if name is None:
        return None
    class_path = definition.status.class_path if definition.status else None
    if repository is None:
        return Refusal(
            "RepositoryNotFound", f"Job {class_path} comes from JobRepository {name!r}, which does not exist"
        )
    commit = run_commit(definition, pinned_commit)
    if not commit:
        return Refusal("RepositoryNotSynced", f"JobRepository {name!r} has no synced commit for {class_path}")
    spec = repository.spec
    return RepositorySource(
        url=spec.url,
        commit=str(commit),
        slug=spec.slug,
        credentials_secret_ref=spec.credentials_secret_ref or None,
        max_bytes=max_bytes,
    )


@dataclass(frozen=True)
class Admission:
    """Whether a run may start on a queue with a concurrency limit, or where it waits."""

    start: bool
    position: int = 0  # 1-based place among the waiting runs when it may not start
    message: str = ""


def admit(
    run_key: tuple[str, str],
    waiting: list[tuple[str, str]],
    active: Sequence[str],
    limit: int | None,
    *,
    queue: str = DEFAULT_QUEUE,
) -> Admission:
    """Runs start in creation order as slots free up: (creationTimestamp, name) keys, oldest first.

    ``waiting`` holds every run of the queue that has no Job yet, this one included; ``active`` names
    the runs whose Jobs hold the queue's slots. A run that waits is told which runs hold the slots and
    which wait ahead of it.
    """
    if limit is None:
        return Admission(start=True)
    order = sorted(set(waiting) | {run_key})
    index = order.index(run_key)
    free = max(0, limit - len(active))
    if index < free:
        return Admission(start=True)
    ahead = [name for _, name in order[:index]]
    return Admission(
        start=False,
        position=index + 1,
        message=(
            f"Concurrency limit {limit} of queue {queue} reached: {len(active)} active "
            f"({names_in_short(sorted(active))}); position {index + 1}, {len(ahead)} run(s) ahead "
            f"({names_in_short(ahead)}). It starts when a slot frees up (or raise the JobQueue's "
            "spec.concurrencyLimit)"
        ),
    )


# --- observing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """The run's phase as its Job and pod show it, and whether the operator must stop the Job."""

    phase: JobRunPhase
    reason: str
    message: str = ""
    pod_name: str | None = None
    start_time: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    stop_job: bool = False
    image_digest: str | None = None  # of the image the job container ran (image_digest_of)


WAITING_FAILURES = {
    "ErrImagePull": "ImagePullFailed",
    "ImagePullBackOff": "ImagePullFailed",
    "InvalidImageName": "ImagePullFailed",
    "CreateContainerConfigError": "CreateContainerFailed",
    "CreateContainerError": "CreateContainerFailed",
}


# The reasons Kubernetes gives a pod's DisruptionTarget condition, as the run's reason. A pod evicted by
# its kubelet under node pressure also says Evicted in its status (read first, with the kubelet's message).
DISRUPTIONS = {
    "EvictionByEvictionAPI": "Evicted",  # kubectl drain, or any client of the Eviction API
    "TerminationByKubelet": "NodeShutdown",  # the kubelet's graceful node shutdown
    "PreemptionByScheduler": "Preempted",
    "DeletionByTaintManager": "NodeLost",
    "DeletionByPodGC": "NodeLost",  # its node object was deleted
}


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in obj.get("status", {}).get("conditions", []) or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def _container_status(pod: dict[str, Any]) -> dict[str, Any]:
    for status in pod.get("status", {}).get("containerStatuses", []) or []:
        if status.get("name") == CONTAINER:
            return dict(status)
    return {}


_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")


def image_digest_of(pod: dict[str, Any] | None) -> str | None:
    """The digest of the image the job container runs or ran (sha256:...), from its status' imageID.

    The kubelet reports the image it started as ``<repository>@<digest>``, or as the bare digest of an
    image that has no repository digest (one imported locally); None until a container has started.
    """
    image_id = str(_container_status(pod).get("imageID") or "") if pod else ""
    digest = image_id.rsplit("@", 1)[-1].removeprefix("docker-pullable://")
    return digest if _DIGEST.match(digest) else None


def _summary(terminated: dict[str, Any]) -> dict[str, Any]:
    message = terminated.get("message") or ""
    try:
        parsed = json.loads(message)
    except ValueError:
        return {"error": message[-1024:]} if message else {}
    return parsed if isinstance(parsed, dict) else {}


def _since(timestamp: str | None, now: datetime) -> timedelta:
    if not timestamp:
        return timedelta(0)
    return now - (parse_time(timestamp) or now)


def _terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    status = _container_status(pod)
    found = status.get("state", {}).get("terminated") or status.get("lastState", {}).get("terminated")
    return dict(found) if found else None


def pod_disruption(pod: dict[str, Any]) -> tuple[str, str] | None:
    """The run's reason and message when Kubernetes takes the pod away (evicted, preempted, node lost)."""
    pod_status = pod.get("status", {})
    if pod_status.get("reason") == "Evicted":
        return "Evicted", str(pod_status.get("message", ""))
    disruption = _condition(pod, "DisruptionTarget")
    if disruption is not None and disruption.get("reason") in DISRUPTIONS:
        return DISRUPTIONS[disruption["reason"]], str(disruption.get("message", ""))
    return None


def _ended(pod: dict[str, Any] | None, *, failed_condition: dict[str, Any]) -> Observation:
    """A finished Job that failed: the most precise reason its pod gives."""
    deadline = failed_condition.get("reason") == "DeadlineExceeded"
    if pod is None:
        if deadline:
            return Observation(JobRunPhase.FAILED, "DeadlineExceeded", "The hard time limit was reached")
        if failed_condition.get("reason") == "PodFailurePolicy":
            # Its pod was disrupted and is gone already; the Job's condition names it and the condition.
            return Observation(JobRunPhase.FAILED, "PodDisrupted", str(failed_condition.get("message", "")))
        return Observation(JobRunPhase.FAILED, "PodDeleted", "The job's pod was deleted before it finished")
    pod_name = pod["metadata"]["name"]
    terminated = _terminated(pod)
    summary = _summary(terminated) if terminated else {}

    start_time = pod.get("status", {}).get("startTime")

    def failed(reason: str, message: str) -> Observation:
        return Observation(
            JobRunPhase.FAILED, reason, message, pod_name, start_time=start_time, summary=summary
        )

    if deadline:
        return failed("DeadlineExceeded", "The hard time limit was reached")
    disrupted = pod_disruption(pod)
    if disrupted is not None:
        return failed(*disrupted)
    if pod["metadata"].get("deletionTimestamp"):
        # Deleted by someone while it ran (the Job controller only deletes pods at a deadline).
        return failed("PodDeleted", "The job's pod was deleted before it finished")
    if terminated is None or _condition(pod, "DisruptionTarget") is not None:
        return failed("PodDeleted", "The job's pod was deleted before it finished")
    if terminated.get("reason") == "OOMKilled":
        return failed("OOMKilled", "The job went over its memory limit")
    code = terminated.get("exitCode")
    if code == 1 and summary.get("status") == "FAILURE":
        return failed("JobFailed", str(summary.get("error") or ""))
    if code == 2:
        # Nothing ran: the inputs, unless the pod named a reason of the ones it may give.
        reason = summary.get("reason")
        return failed(reason if reason in POD_REASONS else "InvalidInputs", str(summary.get("error") or ""))
    return failed("Error", f"The job container exited with code {code}")


def observe(
    job: dict[str, Any],
    pods: list[dict[str, Any]],
    *,
    now: datetime,
    pending_timeout: timedelta,
    workload: dict[str, Any] | None = None,
) -> Observation:
    """Where a run stands, from its Job and that Job's pods (and its Kueue Workload, for a suspended Job),
    and which image digest its pod ran.

    A pod that cannot be scheduled, or whose image cannot be pulled, for longer than ``pending_timeout``
    ends the run (``stop_job``): it would otherwise wait for ever, which is what our users fled.
    """
    pod = max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), default=None)
    observation = _observe(job, pod, now=now, pending_timeout=pending_timeout, workload=workload)
    digest = image_digest_of(pod)
    return observation if digest is None else replace(observation, image_digest=digest)


def _observe(
    job: dict[str, Any],
    pod: dict[str, Any] | None,
    *,
    now: datetime,
    pending_timeout: timedelta,
    workload: dict[str, Any] | None,
) -> Observation:
    pod_name = pod["metadata"]["name"] if pod else None
    if _condition(job, "Complete") or _condition(job, "SuccessCriteriaMet"):
        terminated = _container_status(pod).get("state", {}).get("terminated", {}) if pod else {}
        # The start time too: a short run may have started and ended between two events.
        started = pod.get("status", {}).get("startTime") if pod else None
        return Observation(
            JobRunPhase.SUCCEEDED, "Completed", "", pod_name, start_time=started, summary=_summary(terminated)
        )
    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
    if failed:
        return _ended(pod, failed_condition=failed)
    if (job.get("spec") or {}).get("suspend"):
        return Observation(JobRunPhase.PENDING, KUEUE_ADMISSION, kueue_wait_message(job, workload), pod_name)
    if pod is None:
        return Observation(
            JobRunPhase.PENDING, "JobCreated", "Waiting for the Job controller to create the pod"
        )
    disrupted = pod_disruption(pod)
    if disrupted is not None and _condition(pod, "DisruptionTarget") is not None:
        # Kubernetes has decided: the pod goes, and the pod failure policy fails the Job rather than
        # replace it. The run ends now, not after the pod's grace period and the Job controller's turn
        # (by which time the pod, and the reason it carried, may be gone).
        return Observation(
            JobRunPhase.FAILED,
            *disrupted,
            pod_name,
            start_time=pod.get("status", {}).get("startTime"),
        )
    status = pod.get("status", {})
    waiting = _container_status(pod).get("state", {}).get("waiting", {})
    created = pod["metadata"].get("creationTimestamp")
    if waiting.get("reason") in WAITING_FAILURES:
        reason = WAITING_FAILURES[waiting["reason"]]
        if _since(created, now) >= pending_timeout or waiting["reason"] == "InvalidImageName":
            return Observation(
                JobRunPhase.FAILED, reason, waiting.get("message", ""), pod_name, stop_job=True
            )
        # The container's own reason (ErrImagePull, ImagePullBackOff...) says what the kubelet tries now.
        detail = f"{waiting['reason']}: {waiting.get('message') or 'no message'}"
        return Observation(JobRunPhase.PENDING, reason, detail, pod_name)
    for condition in status.get("conditions", []) or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            if condition.get("reason") == "Unschedulable" and _since(created, now) >= pending_timeout:
                return Observation(
                    JobRunPhase.FAILED, "Unschedulable", condition.get("message", ""), pod_name, stop_job=True
                )
            return Observation(
                JobRunPhase.PENDING,
                condition.get("reason") or "Scheduling",
                condition.get("message", ""),
                pod_name,
            )
    if status.get("phase") == "Running":
        return Observation(
            JobRunPhase.RUNNING, "PodRunning", "", pod_name, start_time=status.get("startTime")
        )
    if status.get("phase") in ("Succeeded", "Failed"):
        # The pod ended but the Job controller has not written its condition yet: wait for it.
        return Observation(JobRunPhase.RUNNING, "Finishing", "", pod_name, start_time=status.get("startTime"))
    return Observation(JobRunPhase.PENDING, "PodPending", "", pod_name)


# --- what the operator keeps of a run ------------------------------------------------------------------

# Never read by the operator, and often most of an object's size: the apiserver's record of who set
# which field (an entry per writer, a tree of every field it set) and kubectl's copy of the manifest.
_UNREAD_METADATA = ("managedFields",)
_UNREAD_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
# What is read of a finished run: whether it ended, when (collection) and on which queue (its TTL).
_FINISHED_STATUS = ("phase", "reason", "queue", "completionTime", "jobName")
_FINISHED_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "labels",
)


def handled_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """What a Job event hands to its run's (or repository's) decision, as a copy of its own: the Job less
    its pod template and ``managedFields``, which no decision reads and which are most of a Job's size
    (about 19 KB of Python objects of a 3 KB Job). Events wait for a handler thread with their copy: in a
    burst hundreds wait at once, and whole copies were the operator's memory high-water mark."""
    meta = job.get("metadata") or {}
    kept = {key: value for key, value in job.items() if key not in ("metadata", "spec")}
    kept["metadata"] = {key: value for key, value in meta.items() if key not in _UNREAD_METADATA}
    if "spec" in job:
        kept["spec"] = {key: value for key, value in (job.get("spec") or {}).items() if key != "template"}
    return copy.deepcopy(kept)


def indexed_run(run: Mapping[str, Any]) -> dict[str, Any]:
    """What the operator keeps in memory of a JobRun (its runs index), as a copy of its own.

    An unfinished run whole, less the fields nothing of the operator reads; a finished one only as much
    as the poll loop reads to collect it (phase, completion time, queue, names): a day of finished runs
    stays in the cluster at the default TTL, and each held whole cost the operator more than the run's
    JSON. A finished run is never reconciled again, so its spec, results and conditions are not kept
    (a Finished condition only stands in for a missing completionTime, see collection.finished_at).
    """
    view = RunView(run)
    meta, status = view.meta, view.status
    if not view.finished:
        kept = {key: value for key, value in run.items() if key != "metadata"}
        kept_meta = {key: value for key, value in meta.items() if key not in _UNREAD_METADATA}
        annotations = {
            key: value
            for key, value in (meta.get("annotations") or {}).items()
            if key not in _UNREAD_ANNOTATIONS
        }
        if "annotations" in kept_meta:
            kept_meta["annotations"] = annotations
        return copy.deepcopy({**kept, "metadata": kept_meta})
    slim_status = {key: status[key] for key in _FINISHED_STATUS if key in status}
    if not status.get("completionTime"):
        slim_status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") == "Finished"]
    return copy.deepcopy(
        {
            "apiVersion": run.get("apiVersion"),
            "kind": run.get("kind"),
            "metadata": {key: meta[key] for key in _FINISHED_METADATA if key in meta},
            "spec": {key: view.spec[key] for key in ("job", "queue") if key in view.spec},
            "status": slim_status,
        }
    )


# --- which events call for a reconcile ----------------------------------------------------------------

_JOB_ENDED = ("Complete", "SuccessCriteriaMet", "Failed", "FailureTarget")


def run_event_matters(obj: Mapping[str, Any], *, listing: bool) -> bool:
    """Whether an event of a JobRun calls for a reconcile.

    A run to start or to cancel does; so does every unfinished run when the operator lists them at
    start-up (``listing``: it adopts what a previous process left). The rest, mostly the echoes of our
    own status writes, do not: Job events and polls follow a started run.
    """
    run = RunView(obj)
    if run.finished:
        return False
    if listing or run.cancel:
        return True
    return not run.job_name and run.phase != JobRunPhase.QUEUED


def job_event_matters(job: dict[str, Any] | None, run: RunView) -> bool:
    """Whether an event of a run's Job (None: the Job is gone) can change the run's status.

    The Job's own counts tell when its pod starts, runs and ends; only then are the pods worth reading.
    A pod that waits (unschedulable, pulling its image) changes nothing on its Job: the pending poll
    reads it.
    """
    if job is None or job.get("metadata", {}).get("deletionTimestamp"):
        return True
    status = job.get("status") or {}
    if status.get("failed") or status.get("succeeded") or any(_condition(job, kind) for kind in _JOB_ENDED):
        return True
    phase = run.phase
    if run.reason == KUEUE_ADMISSION and not (job.get("spec") or {}).get("suspend"):
        return True  # Kueue admitted it: the run no longer waits for Kueue, whatever its pod does next
    if status.get("ready"):
        return not (phase == JobRunPhase.RUNNING and run.pod_name)
    # Created, or its pod exists but is not ready yet: news only for a run that was already running.
    # A run with no phase (its Job created, no status written yet) gets its first status when its pod
    # is ready or its Job ends; a pod that never gets ready is the pending poll's (see poll_interval).
    return phase not in (None, JobRunPhase.PENDING)


def poll_interval(run: RunView, *, queued: float, pending: float, running: float) -> float | None:
    """How often to re-check a run, for what no event announces (None: never, it has ended).

    A Queued run waits for a free slot (often); a Pending one may have a pod that stays unschedulable
    or cannot pull its image, or may have failed to start (a few times per pending timeout); a Running
    one gets a slow safety net, its Job's events do the work. A run with no phase is polled as a Pending
    one, counted from its creation: it may be started already (its Job exists, no status written yet)
    with a pod that never gets ready, which no Job event announces.
    """
    phase = run.phase
    if phase is not None and phase.is_terminal:
        return None
    if phase == JobRunPhase.QUEUED:
        return queued
    return running if phase == JobRunPhase.RUNNING else pending


def start_expired(run: JobRun, *, now: datetime, job_ttl_seconds: int) -> Refusal | None:
    """Why a run with no status at all may no longer be started, or None.

    A run of a queue without a concurrency limit gets its first status from its Job's events, so a run
    with none may have a Job already. Once a run is older than a finished Job is kept
    (``job_ttl_seconds``), a missing Job no longer proves that none ran: starting it could run it twice.
    It ends instead, and says so. With no TTL (0), Jobs stay as long as their runs: no run expires.
    """
    if job_ttl_seconds <= 0 or (run.status and run.status.phase):
        return None
    age = now - (run.metadata.creation_timestamp or now)
    if age.total_seconds() <= job_ttl_seconds:
        return None
    return Refusal(
        "NotStartedInTime",
        f"Not started within {job_ttl_seconds}s of its creation (the operator was not running, or could "
        "not create its Job). A Job that ran in that time would be deleted by now, so starting it could "
        "run it twice: create a new JobRun to run it.",
    )


def first_poll_age(run: RunView, *, now: datetime, began: datetime) -> float:
    """How many seconds ago a run the poll loop sees for the first time counts as polled.

    Since its creation: a run started without a status (see poll_interval) gets one within the pending
    interval. But not since before ``began``, when this process started: its start-up listing hands over
    every run then, and polling a backlog as well would do the same work twice.
    """
    return max(0.0, min(_since(run.creation_timestamp, now), now - began).total_seconds())
