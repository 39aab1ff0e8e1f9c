"""One reconcile pass over a JobRun: refuse it, start its Job, or record how its Job is doing."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from jobplane.settings import Settings
from jobplane_crds.runview import RunView
from jobplane_crds.v1alpha1 import (
    JobDefinition,
    JobDefinitionStatus,
    JobQueue,
    JobRepository,
    JobRun,
    JobRunPhase,
)
from jobplane_crds.v1alpha1.jobdefinition import JobMetadata
from jobplane_operator.kube import Clients
from jobplane_operator.metrics import METRICS
from jobplane_operator.parsing import listed, parsed
from jobplane_operator.reconcile.conditions import condition, rfc3339
from jobplane_operator.reconcile.jobdefinition import plan_name_conflicts
from jobplane_operator.reconcile.jobrepository import CREDENTIALS_NOT_SCOPED, credentials_scope_problem
from jobplane_operator.reconcile.jobrun import (
    LABEL_QUEUE,
    LABEL_RUN_UID,
    LeaseHolder,
    Observation,
    Refusal,
    RepositorySource,
    admit,
    approval_wait,
    check_runnable,
    default_queue,
    find_definition,
    holder_is_active,
    inputs_secret_refusal,
    inputs_wait_over,
    job_name_for,
    kueue_wait_message,
    label_value,
    observe,
    plan_job,
    pod_disruption,
    repository_of,
    repository_source,
    run_commit,
    singleton_lease,
    singleton_lease_name,
    singleton_turn,
    start_expired,
    start_record,
    token_secret_name,
)
from jobplane_operator.reconcile.waiting import KUEUE_ADMISSION, waiting_condition
from jobplane_operator.settings import OperatorSettings

__all__ = ["ApiCatalog", "Catalog", "reconcile_run", "refresh_definition"]

log = logging.getLogger(__name__)

SUMMARY_MAX = 2048
WAITING_FOR_INPUTS = "WaitingForInputs"


class Catalog(Protocol):
    """Where a reconcile looks up JobDefinitions, JobQueues and JobRepositories: kopf's in-memory indexes
    in the operator. Each object is read through its model, parsed once when it changes."""

    def definitions(self, namespace: str) -> list[JobDefinition]: ...

    def queue(self, namespace: str, name: str) -> JobQueue | None: ...

    def repository(self, namespace: str, name: str) -> JobRepository | None: ...

    def repositories(self, namespace: str) -> list[JobRepository]: ...


class ApiCatalog:
    """A Catalog that asks the API each time (for callers without the operator's indexes)."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def definitions(self, namespace: str) -> list[JobDefinition]:
        return [JobDefinition.model_validate(obj) for obj in self.clients.list_job_definitions(namespace)]

    def queue(self, namespace: str, name: str) -> JobQueue | None:
        found = self.clients.get_job_queue(namespace, name)
        return JobQueue.model_validate(found) if found is not None else None

    def repository(self, namespace: str, name: str) -> JobRepository | None:
        found = self.clients.get_job_repository(namespace, name)
        return JobRepository.model_validate(found) if found is not None else None

    def repositories(self, namespace: str) -> list[JobRepository]:
        listed = self.clients.list_all_job_repositories([namespace])
        return [JobRepository.model_validate(obj) for obj in listed]


class _StatusWriter:
    """Builds the run's next status from its current one and writes it only when something changed.

    It works on the run as stored (RunView), not on its model: the status it writes keeps every field it
    does not decide as stored, and is written only when it differs from the stored one; a model printed
    back could differ in form (a timestamp's) and write for nothing.
    """

    def __init__(self, clients: Clients, obj: dict[str, Any], now: datetime) -> None:
        self.clients = clients
        self.run = RunView(obj)
        self.old: dict[str, Any] = dict(self.run.status)
        self.now = now
        self.generation = self.run.generation
        self.conflicted = False
        self.carry: dict[str, Any] = {}  # fields decided earlier in the pass, for whichever write comes

    def write(self, phase: JobRunPhase, reason: str, message: str = "", **fields: Any) -> bool:
        """Write the status; True if it is now what was asked (written, or already so)."""
        status = {key: value for key, value in self.old.items() if key != "conditions"}
        status.update({key: value for key, value in {**self.carry, **fields}.items() if value is not None})
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
        approval = self.run.spec.get("approval")  # as stored: copied into the status as it is
        if approval:
            status["approval"] = approval
        if approval or phase == JobRunPhase.AWAITING_APPROVAL:
            conditions.append(self._approved(approval, reason, message))
        if status.get("singletonLockTakenFrom"):
            conditions.append(self._singleton_lock_ignored(status["singletonLockTakenFrom"]))
        waiting = waiting_condition(
            self.old, phase, reason, message, generation=self.generation, now=self.now
        )
        if waiting is not None:
            conditions.append(waiting)
        status["conditions"] = conditions
        if status != self.old:
            where = (self.run.namespace, self.run.name)
            if not self.clients.patch_run_status(*where, status, self.run.resource_version):
                log.debug("run changed meanwhile; the next event decides run=%s/%s", *where)
                self.conflicted = True
                return False
            log.info("run status run=%s/%s phase=%s reason=%s", *where, phase, reason)
        return True

    def _singleton_lock_ignored(self, taken_from: list[str]) -> dict[str, Any]:
        # Who forced the run, and which active runs it started beside: read by kubectl and the API.
        requester = self.run.spec.get("requestedBy") or "an unknown requester"
        runs = ", ".join(taken_from)
        message = (
            f"Forced by {requester} (spec.ignoreSingletonLock): took the singleton lock of job "
            f"{self.run.job} from active run {runs}, which was not stopped"
        )
        return condition(
            self.old,
            "SingletonLockIgnored",
            "True",
            "Forced",
            message,
            generation=self.generation,
            now=self.now,
        )

    def _approved(self, approval: dict[str, Any] | None, reason: str, message: str) -> dict[str, Any]:
        # Approved: True once approved, False while awaiting a decision or when denied; who and when.
        if not approval:
            status, reason = "False", "AwaitingApproval"
        else:
            approved = approval.get("decision") == "Approved"
            status, reason = ("True", "Approved") if approved else ("False", "Denied")
            message = f"{approval.get('decision')} by {approval.get('by')} at {approval.get('at')}"
        return condition(
            self.old, "Approved", status, reason, message, generation=self.generation, now=self.now
        )


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


def _order_key(run: RunView) -> tuple[str, str]:
    return (run.creation_timestamp or "", run.name)


def _queue_of(run: RunView, definitions: list[JobDefinition]) -> str:
    if run.queue:
        return run.queue
    return default_queue(find_definition(run.job, definitions))


def _waiting_on(
    clients: Clients, namespace: str, queue: str, definitions: list[JobDefinition]
) -> list[tuple[str, str]]:
    """Runs of the queue that have no Job yet and have not ended, oldest first. Read through RunView:
    the namespace's every run, at each start on a limited queue."""
    waiting = []
    for run in map(RunView, clients.list_runs(namespace)):
        if run.job_name or run.finished:
            continue
        if run.phase == JobRunPhase.AWAITING_APPROVAL:
            continue  # not waiting for a slot: for a decision, which may never come
        if run.cancel:
            continue
        if _queue_of(run, definitions) == queue:
            waiting.append(_order_key(run))
    return sorted(waiting)


@dataclass(frozen=True)
class _Admission:
    """What starting a run needs: its definition, queue and code, or why it may not start."""

    definitions: list[JobDefinition]
    definition: JobDefinition | None
    effective: JobMetadata
    queue_name: str
    queue: JobQueue | None
    refusal: Refusal | None
    repository: RepositorySource | None
    commit: str | None  # the commit the run is pinned to, for a repository job


def _admission(
    run: JobRun, namespace: str, catalog: Catalog, settings: OperatorSettings, clients: Clients
) -> _Admission:
    definitions = catalog.definitions(namespace)
    definition = find_definition(run.spec.job, definitions)
    effective = definition.effective() if definition is not None else JobMetadata()
    queue_name = run.spec.queue or default_queue(definition, effective)
    queue = catalog.queue(namespace, queue_name)
    refusal = check_runnable(run, definition, queue_name, queue is not None, effective)
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
            if source is not None:
                refusal = _unscoped_credentials(clients, namespace, name, source)
    return _Admission(definitions, definition, effective, queue_name, queue, refusal, repository, commit)


def _unscoped_credentials(
    clients: Clients, namespace: str, repository: str, source: RepositorySource
) -> Refusal | None:
    """Why the repository's Git credentials may not be mounted into the run's pod, or None.

    Read at each start (one GET, for repository jobs with credentials only): a Secret that loses its scope
    (its label, its url key) is no longer mounted, whatever the repository's last sync found.
    """
    ref = source.credentials_secret_ref
    if not ref:
        return None
    secret = clients.get_secret_data(namespace, ref)
    if secret is None:
        return Refusal(
            "SecretNotFound",
            f"JobRepository {repository!r}: Secret {ref!r} (spec.credentialsSecretRef) does not exist",
        )
    problem = credentials_scope_problem(source.url, ref, secret.labels, secret.data)
    if problem is not None:
        return Refusal(CREDENTIALS_NOT_SCOPED, f"JobRepository {repository!r}: {problem}")
    return None


@dataclass(frozen=True)
class _StartedBefore:
    """A run whose status says it has not started, though its Job exists: it is observed, not started.

    A run of a queue without a concurrency limit gets no status write when its Job is created (its Job
    carries what that write would record); and a crash can come between the two for any run.
    """

    job: dict[str, Any] | None  # None: it was there a moment ago and is gone now


def _start(
    clients: Clients,
    catalog: Catalog,
    run: JobRun,
    writer: _StatusWriter,
    settings: OperatorSettings,
    defaults: Settings,
) -> _StartedBefore | None:
    namespace = run.metadata.namespace or ""
    found = _admission(run, namespace, catalog, settings, clients)
    if found.refusal is not None:
        # A refusal ends the run for good, and the indexes may lag a moment behind the API (a job
        # enabled or synced just before the run was created): decide it on fresh data only.
        found = _admission(run, namespace, ApiCatalog(clients), settings, clients)
    queue_name, definitions = found.queue_name, found.definitions
    if found.refusal is not None:
        started = _started_before(clients, run)
        if started is not None:
            return started  # e.g. its job was disabled after its Job was created: the pod runs on
        refusal = found.refusal
        writer.write(
            JobRunPhase.FAILED, refusal.reason, refusal.message, queue=queue_name, commit=found.commit
        )
        return None
    assert found.definition is not None  # check_runnable refuses a missing (or undiscovered) definition
    class_path = str(found.definition.class_path)
    undecided = approval_wait(run, found.definition, found.effective)
    if undecided is not None:
        # No Job until someone other than the requester approves (spec.approval, stamped at admission).
        writer.write(
            undecided.phase, undecided.reason, undecided.message, queue=queue_name, commit=found.commit
        )
        return None
    forced_over = False
    if found.effective.is_singleton:
        holder, taken_from = _take_singleton(clients, run, class_path, writer.now)
        if taken_from and not (run.status and run.status.singleton_lock_taken_from):
            # Said at once, whatever the queue: the status is where kubectl and the API read it.
            writer.carry["singletonLockTakenFrom"] = taken_from
            forced_over = True
        if holder is not None:
            writer.write(
                JobRunPhase.QUEUED,
                "SingletonActive",
                f"Job {class_path} is a singleton and {holder} is active: this run starts when it ends",
                queue=queue_name,
                commit=found.commit,
            )
            return None
    queue = found.queue
    limit = queue.spec.concurrency_limit if queue else None
    if queue is not None and queue.spec.kueue_local_queue:
        # Kueue admits the queue's runs (its ClusterQueue's quota): no count, no place in line here. The
        # status names the Job at once, so the run says it waits for Kueue while its Job is suspended.
        return _create(clients, run, writer, settings, defaults, found, queue, record=True)
    if limit is None:
        # Nothing to count: runs of an unlimited queue start side by side, and the status that names the
        # Job waits for the Job's events (its pod ready, or its end) or a pending poll: one write fewer per
        # run. The Job carries what that status records. With pods reporting to the API, a result may end
        # before it: the API's mirror fills the class path, queue and commit in when the status comes.
        # A run that was awaiting approval says at once that it no longer does.
        approved_now = bool(run.status and run.status.phase == JobRunPhase.AWAITING_APPROVAL)
        record = approved_now or forced_over
        return _create(clients, run, writer, settings, defaults, found, queue, record=record)
    with _queue_lock(namespace, queue_name):
        active = clients.unfinished_job_runs(namespace, f"{LABEL_QUEUE}={label_value(queue_name)}")
        waiting = _waiting_on(clients, namespace, queue_name, definitions)
        admission = admit(_order_key(writer.run), waiting, active, limit, queue=queue_name)
        free = max(0, limit - len(active))
        METRICS.queue_waiting.labels(namespace, queue_name).set(max(0, len(waiting) - free))
        if not admission.start:
            writer.write(
                JobRunPhase.QUEUED,
                "ConcurrencyLimit",
                admission.message,
                queue=queue_name,
                queuePosition=admission.position,
                commit=found.commit,
            )
            return None
        # Under the lock until its status names the Job: the next count then sees it started.
        return _create(clients, run, writer, settings, defaults, found, queue, record=True)


def _take_singleton(
    clients: Clients, run: JobRun, class_path: str, now: datetime
) -> tuple[str | None, list[str]]:
    """Take the job's singleton Lease for this run: (None, the active runs a forced run took it from) when
    it holds it now, else (who holds it, []).

    One attempt per pass, each write conditional (create, or replace at the resourceVersion read): of two
    runs deciding at once only one gets it, and the other waits for its next poll.
    """
    meta = run.metadata
    namespace, run_name, run_uid = meta.namespace or "", meta.name or "", meta.uid or ""
    name = singleton_lease_name(class_path)
    lease = clients.get_lease(namespace, name)

    def is_active(holder: LeaseHolder) -> bool:
        return holder_is_active(holder.uid, clients.get_run(namespace, holder.name))

    turn = singleton_turn(lease, run_uid=run_uid, forced=run.spec.ignore_singleton_lock, is_active=is_active)
    if turn.waits_for is not None:
        return f"run {turn.waits_for.name}", []
    taken_from = [holder.name for holder in turn.taken_from]
    if not turn.take:
        return None, taken_from
    body = singleton_lease(name, run_name, run_uid, now, class_path, turn.taken_from)
    if not clients.take_lease(namespace, body, lease):
        return "another run", []
    if taken_from:
        log.warning(
            "singleton lock ignored run=%s/%s job=%s taken_from=%s requested_by=%s",
            namespace, run_name, class_path, ",".join(taken_from), run.spec.requested_by,
        )  # fmt: skip
    return None, taken_from


def _started_before(clients: Clients, run: JobRun) -> _StartedBefore | None:
    """Before a run that has no status naming its Job fails: whether its Job exists after all."""
    meta = run.metadata
    job = clients.get_job(meta.namespace or "", job_name_for(meta.name or "", meta.uid or ""))
    return None if job is None else _StartedBefore(job)


def _create(
    clients: Clients,
    run: JobRun,
    writer: _StatusWriter,
    settings: OperatorSettings,
    defaults: Settings,
    found: _Admission,
    queue: JobQueue | None,
    *,
    record: bool,
) -> _StartedBefore | None:
    """Create the run's Job; with ``record``, write the status that names it (a limited queue's count
    needs it). Without, the Job's annotations carry that status until its events or a poll write it."""
    namespace = run.metadata.namespace or ""
    assert found.definition is not None
    effective, queue_name = found.effective, found.queue_name
    class_path = str(found.definition.class_path)
    sensitive = effective.has_sensitive_variables is not False
    ref = run.spec.inputs_secret_ref
    refusal = (
        inputs_secret_refusal(clients.get_secret(namespace, ref), ref=ref, run_uid=run.metadata.uid or "")
        if sensitive and ref
        else None
    )
    if refusal is not None:
        started = _started_before(clients, run)
        if started is not None:
            return started  # its Secret went after its pod read it
        if refusal.reason == "InputsSecretNotFound" and not inputs_wait_over(
            run, now=writer.now, timeout=settings.pending_timeout
        ):
            # Its creator makes the Secret right after the run (it must name the run's uid to own it).
            writer.write(
                JobRunPhase.PENDING,
                WAITING_FOR_INPUTS,
                f"Waiting for Secret {ref!r} (spec.inputsSecretRef) to be created",
                queue=queue_name,
                commit=found.commit,
            )
            return None
        writer.write(
            JobRunPhase.FAILED, refusal.reason, refusal.message, queue=queue_name, commit=found.commit
        )
        return None
    plan = plan_job(
        run,
        class_path=class_path,
        hard_time_limit=float(effective.time_limit or 0) or defaults.time_limit,
        soft_time_limit=float(effective.soft_time_limit or 0) or defaults.soft_time_limit,
        has_sensitive_variables=sensitive,
        queue=queue,
        default_image=settings.image,
        queue_name=queue_name,
        ttl_seconds_after_finished=settings.job_ttl_seconds or None,
        api_url=settings.api_url,
        run_token_key=settings.token_key() if settings.api_url else None,
        repository=found.repository,
        data_database_secret=settings.data_database_secret,
        data_database_secret_key=settings.data_database_secret_key,
    )
    if plan.token_secret is not None:
        # Before the Job, so its pod never waits on a missing volume; adopted if a restart left it.
        clients.create_secret(namespace, plan.token_secret)
    job_name = plan.job["metadata"]["name"]
    if not clients.create_job(namespace, plan.job):
        # Started before, its status never written: a crash, or a run of an unlimited queue whose pod
        # is not ready yet (a poll). Observing it writes that status, so no poll comes back to start it.
        return _StartedBefore(clients.get_job(namespace, job_name))
    if record:
        suspended = bool(plan.job["spec"].get("suspend"))
        writer.write(
            JobRunPhase.PENDING,
            KUEUE_ADMISSION if suspended else "JobCreated",
            kueue_wait_message(plan.job) if suspended else "",
            jobName=job_name,
            **start_record(plan.job),
        )
    return None


def reconcile_run(
    clients: Clients,
    obj: dict[str, Any],
    settings: OperatorSettings,
    defaults: Settings,
    catalog: Catalog | None = None,
    job: dict[str, Any] | None = None,
    deleted_job: str | None = None,
    now: datetime | None = None,
    *,
    polled: bool = False,
) -> bool:
    """Bring one run one step closer to done; safe to call any number of times, from any event.

    ``job`` is the run's Job as an event just delivered it, which spares reading it; ``deleted_job`` the
    name of a Job an event just reported deleted. ``polled``: the poll loop's look, not an event's; a run
    it finds without a status was most likely started already. False when the run changed since ``obj``
    was read, so nothing was written: read it again to decide on fresh data.
    """
    with METRICS.reconcile_seconds.time():
        writer = _StatusWriter(clients, obj, now or datetime.now(UTC))
        _reconcile(clients, obj, writer, settings, defaults, catalog, job, deleted_job, polled=polled)
        return not writer.conflicted


def _reconcile(
    clients: Clients,
    obj: dict[str, Any],
    writer: _StatusWriter,
    settings: OperatorSettings,
    defaults: Settings,
    catalog: Catalog | None,
    known_job: dict[str, Any] | None,
    deleted_job: str | None,
    *,
    polled: bool = False,
) -> None:
    # Parsed here, once per pass: about 20 µs, less than the copy kopf's event made (see RunView).
    run = JobRun.model_validate(obj)
    phase = run.status.phase if run.status else None
    namespace, name, uid = run.metadata.namespace or "", run.metadata.name or "", run.metadata.uid or ""
    now = writer.now
    if phase is not None and phase.is_terminal:
        return
    job_name = job_name_for(name, uid)
    fresh = known_job is not None and known_job.get("metadata", {}).get("name") == job_name
    # An event of its Job (or of the Job's deletion) shows the run started, whatever its status says.
    evented = fresh or deleted_job == job_name
    job: dict[str, Any] | None
    if not run.spec.cancel and not (run.status and run.status.job_name) and not evented:
        # Not started as far as its status knows: creating its Job is idempotent (one that exists is
        # observed instead), so there is nothing to read first. Unless the run is too old to tell
        # whether a Job of it ran and was deleted since: then only an existing Job is followed.
        expired = start_expired(run, now=now, job_ttl_seconds=settings.job_ttl_seconds)
        # A poll finds a run of an unlimited queue without a status until its pod is ready: its Job is
        # read, not created again (a create refused as existing costs the apiserver a Job's whole
        # admission, and then the read anyway).
        started = _started_before(clients, run) if expired or polled else None
        if expired and started is None:
            writer.write(JobRunPhase.FAILED, expired.reason, expired.message)
            return
        if started is None:
            started = _start(clients, catalog or ApiCatalog(clients), run, writer, settings, defaults)
        if started is None:
            return
        job = started.job
    elif evented:
        job = known_job if fresh else None
    else:
        job = clients.get_job(namespace, job_name)
    # What the run's Job carries from its start, for a run whose status does not record it yet.
    recorded = start_record(job) if job is not None else {}
    if run.spec.cancel:
        if job is not None:
            clients.delete_job(namespace, job_name)
        writer.write(
            JobRunPhase.CANCELLED,
            "Cancelled",
            "Cancelled on request (spec.cancel)",
            jobName=job_name if job is not None else None,
            **recorded,
        )
        _forget_secrets(clients, run, namespace, job_name, settings)
        return
    if job is None:
        # We created it and it is gone: someone deleted the Job. The run ends rather than waits.
        writer.write(
            JobRunPhase.FAILED,
            "JobDeleted",
            f"Job {job_name} was deleted before it finished",
            jobName=job_name,
        )
        return
    # A pod Kubernetes took away and deleted before this look: its last state, as its events showed it.
    pods = clients.list_pods(namespace, f"{LABEL_RUN_UID}={uid}") or DISRUPTED_PODS.of(uid)
    # A Job Kueue holds suspended: Kueue's Workload says why it waits.
    job_uid = (job.get("metadata") or {}).get("uid")
    suspended = bool((job.get("spec") or {}).get("suspend"))
    workload = clients.kueue_workload(namespace, job_uid) if suspended and job_uid else None
    observation = observe(
        job, pods, now=now, pending_timeout=timedelta(seconds=settings.pending_timeout), workload=workload
    )
    written = writer.write(
        observation.phase,
        observation.reason,
        observation.message,
        jobName=job_name,
        podName=observation.pod_name,
        startTime=observation.start_time,
        result=_result_fields(observation),
        imageDigest=observation.image_digest,
        **recorded,
    )
    if not written:
        return
    if observation.stop_job:
        # Only once the reason is recorded: a run whose Job vanished otherwise reads as JobDeleted.
        clients.delete_job(namespace, job_name)
    if observation.phase.is_terminal:
        DISRUPTED_PODS.forget(uid)
        _forget_secrets(clients, run, namespace, job_name, settings)


class DisruptedPods:
    """The last state of run pods that Kubernetes took away (evicted, preempted, node lost), by run uid.

    Job events are enough to follow a run, except for one thing: the reason Kubernetes took its pod lives on
    the pod, and a pod that stops at once is deleted before its Job's failure is read (the Job's condition
    then names only "a DisruptionTarget"). Pod events keep that state here until the run's end is written;
    bounded, oldest first out, since a run deleted before it ended never comes back to take its entry.
    """

    def __init__(self, limit: int = 1000) -> None:
        self._pods: dict[str, dict[str, Any]] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def remember(self, pod: dict[str, Any]) -> None:
        uid = (pod.get("metadata", {}).get("labels") or {}).get(LABEL_RUN_UID)
        if not uid or pod_disruption(pod) is None:
            return
        kept = {
            "metadata": {key: pod["metadata"].get(key) for key in ("name", "creationTimestamp")},
            "status": pod.get("status") or {},
        }
        with self._lock:
            self._pods.pop(uid, None)
            self._pods[uid] = kept
            while len(self._pods) > self._limit:
                del self._pods[next(iter(self._pods))]

    def of(self, run_uid: str) -> list[dict[str, Any]]:
        with self._lock:
            pod = self._pods.get(run_uid)
        return [pod] if pod is not None else []

    def forget(self, run_uid: str) -> None:
        with self._lock:
            self._pods.pop(run_uid, None)


DISRUPTED_PODS = DisruptedPods()


def _forget_secrets(
    clients: Clients, run: JobRun, namespace: str, job_name: str, settings: OperatorSettings
) -> None:
    # Sensitive inputs and the run token live exactly as long as their run needs them (the JobRun's
    # owner reference collects them too, if this delete is missed). The inputs Secret is deleted only
    # if it is the run's own (its type, its owner), and only that very object (its uid).
    ref = run.spec.inputs_secret_ref
    if ref and run.metadata.uid:
        secret = clients.get_secret(namespace, ref)
        if secret is not None and inputs_secret_refusal(secret, ref=ref, run_uid=run.metadata.uid) is None:
            clients.delete_secret(namespace, ref, uid=secret["metadata"]["uid"])
    if settings.api_url:
        clients.delete_secret(namespace, token_secret_name(job_name))


def refresh_definition(clients: Clients, obj: dict[str, Any], now: datetime | None = None) -> bool:
    """Keep a JobDefinition's status.effective in line with an admin's edit of spec.overrides, and the
    NameUnique conditions of the namespace's definitions in line with the names that edit gives.

    False when the definition changed since ``obj`` was read, so nothing was written: decide again on a
    fresh read (its kopf handler raises TemporaryError, and kopf calls it again)."""
    definition = parsed(JobDefinition, obj)
    if definition is None:
        return True  # It does not fit the model (warned about): nothing is written over what cannot be read.
    status = definition.status
    if not (status and status.code and status.code.model_fields_set):
        return True  # Not discovered yet: sync-jobs fills the status when the class appears.
    meta = definition.metadata
    namespace, name = meta.namespace or "", meta.name or ""
    # Written and compared in the stored form: the status as stored, the model's effective() as written.
    stored = status.model_dump(by_alias=True, exclude_unset=True, mode="json")
    wanted = {
        "effective": definition.effective().model_dump(by_alias=True),
        "observedGeneration": meta.generation or 1,
    }
    changed = any(stored.get(key) != value for key, value in wanted.items())
    if changed and not clients.patch_definition_status(namespace, name, wanted, meta.resource_version):
        return False
    edited = JobDefinition(
        metadata=meta, spec=definition.spec, status=JobDefinitionStatus.model_validate({**stored, **wanted})
    )
    definitions = [
        edited if item.metadata.name == name else item
        for item in listed(JobDefinition, clients.list_job_definitions(namespace)).fits
    ]
    for other, conflicts in plan_name_conflicts(definitions, now=now or datetime.now(UTC)).items():
        # Without a resource version: the conditions are recomputed from all names on every such edit.
        conditions = {"conditions": conflicts["conditions"]}
        clients.patch_definition_status(namespace, other, conditions, None)
    return True
