"""One reconcile pass over a JobRun: refuse it, start its Job, or record how its Job is doing."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from jobplane.settings import Settings
from jobplane_crds.v1alpha1 import JobQueue, JobRun, JobRunPhase
from jobplane_operator.kube import Clients
from jobplane_operator.metrics import METRICS
from jobplane_operator.reconcile.conditions import condition, rfc3339
from jobplane_operator.reconcile.jobrun import (
    DEFAULT_QUEUE,
    LABEL_QUEUE,
    LABEL_RUN_UID,
    Observation,
    Refusal,
    RepositorySource,
    admit,
    check_runnable,
    controller_owner,
    effective_of,
    find_definition,
    job_name_for,
    label_value,
    observe,
    plan_job,
    repository_of,
    repository_source,
    run_commit,
    token_secret_name,
)
from jobplane_operator.settings import OperatorSettings

__all__ = ["ApiCatalog", "Catalog", "reconcile_run", "refresh_definition"]

log = logging.getLogger(__name__)

SUMMARY_MAX = 2048


class Catalog(Protocol):
    """Where a reconcile looks up JobDefinitions, JobQueues and JobRepositories: kopf's in-memory indexes
    in the operator."""

    def definitions(self, namespace: str) -> list[dict[str, Any]]: ...

    def queue(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def repository(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def repositories(self, namespace: str) -> list[dict[str, Any]]: ...


class ApiCatalog:
    """A Catalog that asks the API each time (for callers without the operator's indexes)."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def definitions(self, namespace: str) -> list[dict[str, Any]]:
        return self.clients.list_job_definitions(namespace)

    def queue(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.clients.get_job_queue(namespace, name)

    def repository(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.clients.get_job_repository(namespace, name)

    def repositories(self, namespace: str) -> list[dict[str, Any]]:
        return self.clients.list_all_job_repositories([namespace])


class _StatusWriter:
    """Builds the run's next status from its current one and writes it only when something changed."""

    def __init__(self, clients: Clients, obj: dict[str, Any], now: datetime) -> None:
        self.clients = clients
        self.obj = obj
        self.old: dict[str, Any] = dict(obj.get("status") or {})
        self.now = now
        self.generation = int(obj["metadata"].get("generation", 1))
        self.conflicted = False

    def write(self, phase: JobRunPhase, reason: str, message: str = "", **fields: Any) -> bool:
        """Write the status; True if it is now what was asked (written, or already so)."""
        status = {key: value for key, value in self.old.items() if key != "conditions"}
        status.update({key: value for key, value in fields.items() if value is not None})
        status.update({"phase": phase.value, "reason": reason, "message": message})
        if phase != JobRunPhase.QUEUED:
            status.pop("queuePosition", None)
        status["observedGeneration"] = self.generation
        accepted = not (phase == JobRunPhase.FAILED and not status.get("jobName"))
        conditions = [
            condition(
                self.old,
                "Accepted",
                "True" if accepted else "False",
                "JobCreated" if accepted else reason,
                "" if accepted else message,
                generation=self.generation,
                now=self.now,
            )
        ]
        if phase.is_terminal:
            status.setdefault("completionTime", rfc3339(self.now))
            conditions.append(
                condition(
                    self.old, "Finished", "True", reason, message, generation=self.generation, now=self.now
                )
            )
        status["conditions"] = conditions
        if status != self.old:
            meta = self.obj["metadata"]
            where = (meta["namespace"], meta["name"])
            if not self.clients.patch_run_status(*where, status, meta.get("resourceVersion")):
                log.debug("run changed meanwhile; the next event decides run=%s/%s", *where)
                self.conflicted = True
                return False
            log.info("run status run=%s/%s phase=%s reason=%s", *where, phase, reason)
        return True


def _owner(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    api_version = obj.get("apiVersion", "jobplane.io/v1alpha1")
    return controller_owner(api_version, "JobRun", meta["name"], meta["uid"])


def _result_fields(observation: Observation) -> dict[str, Any] | None:
    summary = observation.summary
    if not summary:
        return None

    def text(value: Any) -> str | None:
        return None if value is None else str(value)[:SUMMARY_MAX]

    return {
        "status": text(summary.get("status")),
        "result": text(summary.get("result")),
        "error": text(summary.get("error")),
    }


_QUEUE_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_QUEUE_LOCKS_GUARD = threading.Lock()


def _queue_lock(namespace: str, queue: str) -> threading.Lock:
    # Handlers run in a thread pool; counting a queue's Jobs and creating one must not interleave.
    # One operator acts at a time, so a lock in this process is enough.
    with _QUEUE_LOCKS_GUARD:
        return _QUEUE_LOCKS.setdefault((namespace, queue), threading.Lock())


def _order_key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return (str(meta.get("creationTimestamp", "")), str(meta["name"]))


def _queue_of(obj: dict[str, Any], definitions: list[dict[str, Any]]) -> str:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    if status.get("queue"):
        return str(status["queue"])
    if spec.get("queue"):
        return str(spec["queue"])
    effective = effective_of(find_definition(str(spec.get("job", "")), definitions))
    return str((effective.get("taskQueues") or [DEFAULT_QUEUE])[0])


def _waiting_on(
    clients: Clients, namespace: str, queue: str, definitions: list[dict[str, Any]]
) -> list[tuple[str, str]]:
    """Runs of the queue that have no Job yet and have not ended, oldest first."""
    waiting = []
    for obj in clients.list_runs(namespace):
        status = obj.get("status") or {}
        phase = status.get("phase")
        if status.get("jobName") or (phase and JobRunPhase(phase).is_terminal):
            continue
        if (obj.get("spec") or {}).get("cancel"):
            continue
        if _queue_of(obj, definitions) == queue:
            waiting.append(_order_key(obj))
    return sorted(waiting)


@dataclass(frozen=True)
class _Admission:
    """What starting a run needs: its definition, queue and code, or why it may not start."""

    definitions: list[dict[str, Any]]
    definition: dict[str, Any] | None
    effective: dict[str, Any]
    queue_name: str
    queue_obj: dict[str, Any] | None
    refusal: Refusal | None
    repository: RepositorySource | None
    commit: str | None  # the commit the run is pinned to, for a repository job


def _admission(run: JobRun, namespace: str, catalog: Catalog, settings: OperatorSettings) -> _Admission:
    definitions = catalog.definitions(namespace)
    definition = find_definition(run.spec.job, definitions)
    effective = effective_of(definition)
    queue_name = run.spec.queue or (effective.get("taskQueues") or [DEFAULT_QUEUE])[0]
    queue_obj = catalog.queue(namespace, queue_name)
    refusal = check_runnable(run, definition, queue_name, queue_obj is not None)
    # A run pins its commit at its first status write; a run started later keeps it (a push meanwhile
    # changes the definition, not what was asked for).
    pinned = run.status.commit if run.status else None
    repository, commit = None, run_commit(definition, pinned)
    name = repository_of(definition)
    if definition is not None and name is not None and refusal is None:
        # From the index: no API call per run.
        source = repository_source(
            definition,
            catalog.repository(namespace, name),
            pinned_commit=pinned,
            max_bytes=settings.repository_max_bytes,
        )
        if isinstance(source, Refusal):
            refusal = source
        else:
            repository = source
    return _Admission(definitions, definition, effective, queue_name, queue_obj, refusal, repository, commit)


def _start(
    clients: Clients,
    catalog: Catalog,
    run: JobRun,
    obj: dict[str, Any],
    writer: _StatusWriter,
    settings: OperatorSettings,
    defaults: Settings,
) -> None:
    namespace = obj["metadata"]["namespace"]
    found = _admission(run, namespace, catalog, settings)
    if found.refusal is not None:
        # A refusal ends the run for good, and the indexes may lag a moment behind the API (a job
        # enabled or synced just before the run was created): decide it on fresh data only.
        found = _admission(run, namespace, ApiCatalog(clients), settings)
    queue_name, definitions = found.queue_name, found.definitions
    if found.refusal is not None:
        job_name = job_name_for(obj["metadata"]["name"], obj["metadata"]["uid"])
        if clients.get_job(namespace, job_name) is not None:
            # Started already, its status never written (the operator stopped right after creating the
            # Job), and refused now (the job disabled since): the Job runs, so the run follows it.
            writer.write(JobRunPhase.PENDING, "JobCreated", "", jobName=job_name, queue=queue_name, attempt=1)
            return
        refusal = found.refusal
        writer.write(
            JobRunPhase.FAILED, refusal.reason, refusal.message, queue=queue_name, commit=found.commit
        )
        return
    assert found.definition is not None  # check_runnable refuses a missing definition
    queue = JobQueue.model_validate(found.queue_obj) if found.queue_obj else None
    limit = queue.spec.concurrency_limit if queue else None
    if limit is None:
        # Nothing to count: runs of an unlimited queue start side by side.
        _create(clients, run, obj, writer, settings, defaults, found, queue)
        return
    with _queue_lock(namespace, queue_name):
        active = clients.count_unfinished_jobs(namespace, f"{LABEL_QUEUE}={label_value(queue_name)}")
        waiting = _waiting_on(clients, namespace, queue_name, definitions)
        admission = admit(_order_key(obj), waiting, active, limit)
        METRICS.queue_waiting.labels(namespace, queue_name).set(max(0, len(waiting) - max(0, limit - active)))
        if not admission.start:
            writer.write(
                JobRunPhase.QUEUED,
                "ConcurrencyLimit",
                admission.message,
                queue=queue_name,
                queuePosition=admission.position,
                commit=found.commit,
            )
            return
        # Under the lock until its status names the Job: the next count then sees it started.
        _create(clients, run, obj, writer, settings, defaults, found, queue)


def _create(
    clients: Clients,
    run: JobRun,
    obj: dict[str, Any],
    writer: _StatusWriter,
    settings: OperatorSettings,
    defaults: Settings,
    found: _Admission,
    queue: JobQueue | None,
) -> None:
    namespace = obj["metadata"]["namespace"]
    assert found.definition is not None
    effective, queue_name = found.effective, found.queue_name
    class_path = found.definition["status"]["classPath"]
    sensitive = effective.get("hasSensitiveVariables", True) is not False
    if (
        sensitive
        and run.spec.inputs_secret_ref
        and not clients.own_secret(namespace, run.spec.inputs_secret_ref, _owner(obj))
    ):
        writer.write(
            JobRunPhase.FAILED,
            "InputsSecretNotFound",
            f"Secret {run.spec.inputs_secret_ref!r} (spec.inputsSecretRef) does not exist",
            queue=queue_name,
            commit=found.commit,
        )
        return
    plan = plan_job(
        run,
        class_path=class_path,
        hard_time_limit=float(effective.get("timeLimit") or 0) or defaults.time_limit,
        soft_time_limit=float(effective.get("softTimeLimit") or 0) or defaults.soft_time_limit,
        has_sensitive_variables=sensitive,
        queue=queue,
        default_image=settings.image,
        queue_name=queue_name,
        ttl_seconds_after_finished=settings.job_ttl_seconds or None,
        api_url=settings.api_url,
        run_token_key=settings.token_key() if settings.api_url else None,
        repository=found.repository,
    )
    if plan.token_secret is not None:
        # Before the Job, so its pod never waits on a missing volume; adopted if a restart left it.
        clients.create_secret(namespace, plan.token_secret)
    clients.create_job(namespace, plan.job)
    writer.write(
        JobRunPhase.PENDING,
        "JobCreated",
        "",
        jobName=plan.job["metadata"]["name"],
        classPath=class_path,
        queue=queue_name,
        attempt=1,
        commit=found.commit,
    )


def reconcile_run(
    clients: Clients,
    obj: dict[str, Any],
    settings: OperatorSettings,
    defaults: Settings,
    catalog: Catalog | None = None,
    job: dict[str, Any] | None = None,
) -> bool:
    """Bring one run one step closer to done; safe to call any number of times, from any event.

    ``job`` is the run's Job as an event just delivered it, which spares reading it. False when the
    run changed since ``obj`` was read, so nothing was written: read it again to decide on fresh data.
    """
    with METRICS.reconcile_seconds.time():
        writer = _StatusWriter(clients, obj, datetime.now(UTC))
        _reconcile(clients, obj, writer, settings, defaults, catalog, job)
        return not writer.conflicted


def _reconcile(
    clients: Clients,
    obj: dict[str, Any],
    writer: _StatusWriter,
    settings: OperatorSettings,
    defaults: Settings,
    catalog: Catalog | None,
    known_job: dict[str, Any] | None,
) -> None:
    run = JobRun.model_validate(obj)
    phase = run.status.phase if run.status else None
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    now = writer.now
    if phase is not None and phase.is_terminal:
        return
    job_name = job_name_for(name, obj["metadata"]["uid"])
    if not run.spec.cancel and not (run.status and run.status.job_name):
        # Not started as far as its status knows: creating its Job is idempotent (a Job left by a crash
        # before the status was written is adopted), so there is nothing to read first.
        _start(clients, catalog or ApiCatalog(clients), run, obj, writer, settings, defaults)
        return
    fresh = known_job is not None and known_job.get("metadata", {}).get("name") == job_name
    job = known_job if fresh else clients.get_job(namespace, job_name)
    if run.spec.cancel:
        if job is not None:
            clients.delete_job(namespace, job_name)
        writer.write(JobRunPhase.CANCELLED, "Cancelled", "Cancelled on request (spec.cancel)")
        _forget_secrets(clients, run, namespace, job_name, settings)
        return
    if job is None:
        # We created it and it is gone: someone deleted the Job. The run ends rather than waits.
        writer.write(JobRunPhase.FAILED, "JobDeleted", f"Job {job_name} was deleted before it finished")
        return
    pods = clients.list_pods(namespace, f"{LABEL_RUN_UID}={obj['metadata']['uid']}")
    observation = observe(job, pods, now=now, pending_timeout=timedelta(seconds=settings.pending_timeout))
    written = writer.write(
        observation.phase,
        observation.reason,
        observation.message,
        jobName=job_name,
        podName=observation.pod_name,
        startTime=observation.start_time,
        result=_result_fields(observation),
    )
    if not written:
        return
    if observation.stop_job:
        # Only once the reason is recorded: a run whose Job vanished otherwise reads as JobDeleted.
        clients.delete_job(namespace, job_name)
    if observation.phase.is_terminal:
        _forget_secrets(clients, run, namespace, job_name, settings)


def _forget_secrets(
    clients: Clients, run: JobRun, namespace: str, job_name: str, settings: OperatorSettings
) -> None:
    # Sensitive inputs and the run token live exactly as long as their run needs them (the JobRun's
    # owner reference collects them too, if this delete is missed).
    if run.spec.inputs_secret_ref:
        clients.delete_secret(namespace, run.spec.inputs_secret_ref)
    if settings.api_url:
        clients.delete_secret(namespace, token_secret_name(job_name))


def refresh_definition(clients: Clients, obj: dict[str, Any]) -> None:
    """Keep a JobDefinition's status.effective in line with an admin's edit of spec.overrides."""
    status = dict(obj.get("status") or {})
    if not status.get("code"):
        return  # Not discovered yet: sync-jobs fills the status when the class appears.
    meta = obj["metadata"]
    wanted = {
        "effective": effective_of(obj),
        "observedGeneration": int(meta.get("generation", 1)),
    }
    if any(status.get(key) != value for key, value in wanted.items()):
        clients.patch_definition_status(meta["namespace"], meta["name"], wanted, meta.get("resourceVersion"))
