"""One reconcile pass over a JobRepository: check its ref, run a sync Job, apply the Job's report to the
namespace's JobDefinitions; and what becomes of those definitions when the repository goes."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from jobplane_crds.v1alpha1 import (
    JobDefinition,
    JobDefinitionStatus,
    JobQueue,
    JobRepository,
    JobRepositoryStatus,
)
from jobplane_crds.v1alpha1.jobdefinition import JobSource
from jobplane_operator.kube import Clients
from jobplane_operator.parsing import listed
from jobplane_operator.reconcile.conditions import rfc3339
from jobplane_operator.reconcile.jobdefinition import (
    SyncPlan,
    plan_adoptions,
    plan_forget,
    plan_sync,
)
from jobplane_operator.reconcile.jobrepository import (
    ANNOTATION_SYNC_REQUEST,
    CREDENTIALS_NOT_SCOPED,
    LABEL_SYNC_JOB,
    SyncReport,
    credentials_scope_problem,
    parse_sync_report,
    plan_sync_job,
    repository_conditions,
    scope_report,
    scrub,
    secret_values,
    sync_due,
    sync_failure,
    sync_job_name,
    sync_job_state,
    synced_message,
)
from jobplane_operator.reconcile.jobrun import CONTAINER
from jobplane_operator.settings import OperatorSettings
from jobplane_runtime.gitsource import (
    GitCredentials,
    GitSourceError,
    credentials_from_secret,
    resolve_ref,
    validate_slug,
    validate_url,
)

__all__ = [
    "RepositoryCatalog",
    "adopt_definitions",
    "forget_missing_repositories",
    "forget_repository",
    "reconcile_repository",
    "repository_lock",
]

log = logging.getLogger(__name__)

# The report is the last line of the sync pod's log; what a job module prints at exit may follow it.
LOG_TAIL_LINES = 200
APPLY_ATTEMPTS = 4
APPLY_BACKOFF = 0.25  # seconds before the second attempt; doubled for each next one, up to 2 s
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")

Resolver = Callable[..., str]


class RepositoryCatalog(Protocol):
    """Where a repository's reconcile looks up JobQueues and the namespace's other repositories."""

    def queue(self, namespace: str, name: str) -> JobQueue | None: ...

    def repositories(self, namespace: str) -> list[JobRepository]: ...


class InvalidPlan(ValueError):
    """The report would make definitions the API refuses: nothing of it is written."""


class ApplyFailed(RuntimeError):
    """The API kept failing while the definitions were written; the next pass tries again."""


_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def repository_lock(namespace: str, name: str) -> threading.Lock:
    """One reconcile of a repository at a time in this process (one operator acts: the Lease)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((namespace, name), threading.Lock())


class _StatusWriter:
    """Builds the repository's next status from its current one; writes it only when something changed.

    From the status as stored (``obj``'s), not as the model would print it back: the fields it does not
    decide are kept as they are, and an unchanged status is not written.
    """

    def __init__(self, clients: Clients, repo: JobRepository, obj: Mapping[str, Any], now: datetime) -> None:
        self.clients = clients
        self.repo = repo
        self.old: dict[str, Any] = dict(obj.get("status") or {})
        self.now = now
        self.conflicted = False

    def write(
        self,
        *,
        synced: tuple[str, str, str] | None = None,
        import_errors: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> bool:
        """Set ``fields`` (None removes one) and the conditions; True if the status is now so."""
        status = {key: value for key, value in self.old.items() if key != "conditions"}
        status.update(fields)
        status = {key: value for key, value in status.items() if value is not None}
        generation = int(status.get("observedGeneration") or self.repo.metadata.generation or 1)
        status["conditions"] = repository_conditions(
            self.old, synced=synced, import_errors=import_errors, generation=generation, now=self.now
        )
        if status == self.old:
            return True
        patch: dict[str, Any] = {key: None for key in self.old if key not in status}
        patch.update(status)
        meta = self.repo.metadata
        where = (meta.namespace or "", meta.name or "")
        if not self.clients.patch_repository_status(*where, patch, meta.resource_version):
            log.debug("repository changed meanwhile; deciding again repository=%s/%s", *where)
            self.conflicted = True
            return False
        self.old = status
        return True


def reconcile_repository(
    clients: Clients,
    obj: dict[str, Any],
    settings: OperatorSettings,
    catalog: RepositoryCatalog,
    now: datetime | None = None,
    *,
    resolve: Resolver = resolve_ref,
) -> bool:
    """Bring one repository one step closer to its ref's jobs; safe to call any number of times.

    Follows a running sync Job to its end (and applies its report), or, when the repository is due (see
    sync_due), resolves its ref and starts a sync Job for a new commit. False when the repository changed
    since ``obj`` was read, so nothing was written: read it again to decide on fresh data.
    """
    repo = JobRepository.model_validate(obj)
    writer = _StatusWriter(clients, repo, obj, now or datetime.now(UTC))
    if repo.status and repo.status.sync_job:
        _follow(clients, repo, writer, settings)
    elif sync_due(repo, writer.now) is not None:
        _check(clients, repo, writer, settings, catalog, resolve)
    return not writer.conflicted


def _invalid(
    repo: JobRepository, settings: OperatorSettings, catalog: RepositoryCatalog
) -> tuple[str, str] | None:
    """Why the spec cannot be synced, as (reason, message); checked before any network or pod."""
    try:
        validate_url(repo.spec.url, allow_file=settings.allow_file_urls)
        # The form only: what a slug may shadow is a matter of the image the sync pod runs, not of
        # this process (whose working directory may hold any folder).
        validate_slug(repo.spec.slug, shadowing=False)
    except GitSourceError as exc:
        return exc.reason, exc.message
    namespace, name = repo.metadata.namespace or "", repo.metadata.name or ""

    def age(other: JobRepository) -> tuple[datetime, str]:
        created = other.metadata.creation_timestamp or datetime.min.replace(tzinfo=UTC)
        return created, other.metadata.name or ""

    mine = age(repo)
    for other in catalog.repositories(namespace):
        if other.metadata.name == name or other.spec.slug != repo.spec.slug:
            continue
        if age(other) < mine:  # the older repository keeps the slug
            return "SlugConflict", (
                f"JobRepository {other.metadata.name!r} already uses slug {repo.spec.slug!r} "
                "in this namespace; pick another slug"
            )
    return None


def _credentials(
    clients: Clients, repo: JobRepository
) -> tuple[GitCredentials | None, list[str], tuple[str, str] | None]:
    """The repository's Git credentials, the values to scrub from messages, and why they are unusable.

    A Secret not scoped to the repository's URL (credentials_scope_problem) is unusable: none of its values
    is decoded, and nothing reaches Git or a pod.
    """
    ref = repo.spec.credentials_secret_ref
    if not ref:
        return None, [], None
    secret = clients.get_secret_data(repo.metadata.namespace or "", ref)
    if secret is None:
        return None, [], ("SecretNotFound", f"Secret {ref!r} (spec.credentialsSecretRef) does not exist")
    problem = credentials_scope_problem(repo.spec.url, ref, secret.labels, secret.data)
    if problem is not None:
        return None, [], (CREDENTIALS_NOT_SCOPED, problem)
    try:
        credentials = credentials_from_secret(secret.data)
    except GitSourceError as exc:
        # Its message names keys, never values; scrub it all the same.
        return None, [], (exc.reason, f"Secret {ref!r}: {exc.message}")
    return credentials, secret_values(credentials), None


def _check(
    clients: Clients,
    repo: JobRepository,
    writer: _StatusWriter,
    settings: OperatorSettings,
    catalog: RepositoryCatalog,
    resolve: Resolver,
) -> None:
    meta, status = repo.metadata, repo.status or JobRepositoryStatus()
    namespace, name = meta.namespace or "", meta.name or ""
    generation = meta.generation or 1
    request = (meta.annotations or {}).get(ANNOTATION_SYNC_REQUEST)
    acted: dict[str, Any] = {
        "observedGeneration": generation,
        "syncRequest": request or status.sync_request,
    }
    problem = _invalid(repo, settings, catalog)
    if problem is not None:
        # Nothing reached the network: no lastCheckTime, so a fix (or the other repository's removal) is
        # picked up at the next look.
        writer.write(synced=("False", *problem), **acted)
        return
    checked: dict[str, Any] = {**acted, "lastCheckTime": rfc3339(writer.now)}
    credentials, secrets, unusable = _credentials(clients, repo)
    if unusable is not None:
        log.info("credentials unusable repository=%s/%s reason=%s", namespace, name, unusable[0])
        writer.write(synced=("False", unusable[0], scrub(unusable[1], secrets)), **checked)
        return
    try:
        commit = resolve(
            repo.spec.url,
            repo.spec.ref,
            credentials,
            timeout=float(settings.repository_sync_timeout),
            allow_file=settings.allow_file_urls,
        )
    except GitSourceError as exc:
        log.info("ref not resolved repository=%s/%s reason=%s", namespace, name, exc.reason)
        writer.write(synced=("False", exc.reason, scrub(exc.message, secrets)), **checked)
        return
    unchanged = (
        commit == status.commit
        and (not request or request == status.sync_request)
        and generation == status.observed_generation
    )
    if unchanged:
        count = len(status.class_paths)
        writer.write(synced=("True", "Synced", synced_message(commit, count)), **checked)
        return
    # The previous check's time as stored (the text the name was made of before a restart, if it was).
    previous_check = str(writer.old.get("lastCheckTime") or "")
    job_name = sync_job_name(name, meta.uid or "", commit, request, previous_check)
    body = plan_sync_job(
        repo,
        job_name=job_name,
        commit=commit,
        queue=catalog.queue(namespace, settings.repository_queue),
        default_image=settings.image,
        timeout=settings.repository_sync_timeout,
        max_bytes=settings.repository_max_bytes,
        ttl_seconds_after_finished=settings.job_ttl_seconds or None,
    )
    try:
        clients.create_job(namespace, body)  # adopted if a restart left it
    except Exception as exc:
        refused = _refusal(exc)
        if refused is None:
            raise  # the API is unwell: the next look tries again
        # An invalid pod (a queue's pod template, a quota): retried as a failure is, not at every look.
        writer.write(synced=("False", "SyncJobRefused", scrub(refused, secrets)), **checked)
        return
    if writer.write(syncJob=job_name, syncingCommit=commit, **checked):
        log.info("sync started repository=%s/%s commit=%s job=%s", namespace, name, commit, job_name)


def _api_said(exc: Exception) -> str | None:
    """The message of a Kubernetes API error's Status body, if it has one."""
    try:
        said = json.loads(getattr(exc, "body", "") or "{}").get("message")
    except (ValueError, AttributeError):
        return None
    return str(said) if said else None


def _log_unreadable(exc: Exception, pod: Mapping[str, Any]) -> str | None:
    """Why a finished sync pod's log cannot be read, when the apiserver answered that it cannot reach the
    pod's kubelet (a 5xx: its node gone or stopped since the pod ended), or None for any other failure.

    Without this, such a sync would stay Syncing forever (the log never becomes readable): it fails instead,
    and is retried with the back-off of any failed sync, from a new pod.
    """
    status = getattr(exc, "status", None)
    if not isinstance(status, int) or status < 500:
        return None
    said = _api_said(exc)
    node = (pod.get("spec") or {}).get("nodeName") or "?"
    return f"The sync pod's log cannot be read from its node {node}: {said or getattr(exc, 'reason', exc)}"


def _refusal(exc: Exception) -> str | None:
    """What the API said when it refused to create a Job (a 4xx), or None for any other failure."""
    status = getattr(exc, "status", None)
    if not isinstance(status, int) or not 400 <= status < 500 or status in (408, 429):
        return None
    said = _api_said(exc)
    return f"The API refused the sync Job ({status}): {said or getattr(exc, 'reason', '')}"


def _follow(clients: Clients, repo: JobRepository, writer: _StatusWriter, settings: OperatorSettings) -> None:
    status = repo.status or JobRepositoryStatus()
    namespace, name = repo.metadata.namespace or "", repo.metadata.name or ""
    job_name, commit = str(status.sync_job), status.syncing_commit or ""
    job = clients.get_job(namespace, job_name)
    if job is not None and sync_job_state(job) == "running":
        return
    pod, report, unreadable = None, None, None
    if job is not None:
        pods = clients.list_pods(namespace, f"{LABEL_SYNC_JOB}={job_name}")
        pod = max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), default=None)
        text = None
        if pod:
            try:
                text = clients.read_pod_log(namespace, pod["metadata"]["name"], CONTAINER, LOG_TAIL_LINES)
            except Exception as exc:
                unreadable = _log_unreadable(exc, pod)
                if unreadable is None:
                    raise  # the API is unwell: the next look tries again
        report = parse_sync_report(text) if text else None
    try:
        _, secrets, _ = _credentials(clients, repo)  # only to scrub what the pod said
    except Exception as exc:
        log.warning("credentials not read repository=%s/%s error=%r", namespace, name, exc)
        secrets = []
    done: dict[str, Any] = {"syncJob": None, "syncingCommit": None}
    failure = sync_failure(job, pod, report, commit=commit, timeout=settings.repository_sync_timeout)
    if unreadable is not None:  # no log, so no report: the node is why
        failure = ("SyncFailed", unreadable)
    if failure is not None or report is None:
        reason, message = failure or ("SyncFailed", "The sync pod printed no report")
        log.info("sync failed repository=%s/%s commit=%s reason=%s", namespace, name, commit, reason)
        writer.write(synced=("False", reason, scrub(message, secrets)), **done)
        return
    report = scope_report(report, repo.spec.slug)
    try:
        report = _apply(clients, namespace, name, report, writer.now)
    except InvalidPlan as exc:
        writer.write(synced=("False", "InvalidReport", scrub(str(exc), secrets)), **done)
        return
    except ApplyFailed as exc:
        # The Job stays recorded: the next pass reads its report again and writes what is still missing.
        log.warning("definitions not written repository=%s/%s error=%s", namespace, name, exc)
        writer.write(synced=("False", "ApplyFailed", scrub(str(exc), secrets)))
        return
    errors = {module: scrub(error, secrets) for module, error in report.errors.items()}
    class_paths = sorted(job["classPath"] for job in report.jobs)
    written = writer.write(
        synced=("True", "Synced", synced_message(report.commit, len(class_paths))),
        import_errors=errors,
        commit=report.commit,
        lastSyncTime=rfc3339(writer.now),
        classPaths=class_paths,
        importErrors=errors,
        **done,
    )
    if written:
        log.info(
            "synced repository=%s/%s commit=%s jobs=%d import_errors=%d",
            namespace,
            name,
            report.commit,
            len(class_paths),
            len(errors),
        )


# --- applying a report -----------------------------------------------------------------------------------


def _checked_jobs(report: SyncReport) -> SyncReport:
    """The report with each job the API would refuse (a name too long...) moved to its module's errors,
    so one bad class does not stop the others."""
    jobs, errors = [], dict(report.errors)
    for job in report.jobs:
        trial = {**job, "source": {"type": "repository"}, "installed": True, "effective": job.get("code")}
        try:
            JobDefinitionStatus.model_validate(trial)
        except ValidationError as exc:
            module = str(job.get("moduleName") or job["classPath"].rpartition(".")[0])
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            errors[module] = f"{job['classPath']}: {where}: {first['msg']}"
            continue
        jobs.append(job)
    return SyncReport(commit=report.commit, jobs=jobs, errors=errors, failure=report.failure)


def _validate(plan: SyncPlan) -> None:
    for name in plan.create:
        if not _DNS_SUBDOMAIN.match(name):
            raise InvalidPlan(f"{name!r} is not a valid JobDefinition name")
    for name, status in plan.status.items():
        try:
            JobDefinitionStatus.model_validate(status)
        except ValidationError as exc:
            raise InvalidPlan(f"JobDefinition {name}: {exc.errors()[0]['msg']}") from None


def _write(clients: Clients, namespace: str, plan: SyncPlan, existing: Iterable[JobDefinition]) -> bool:
    """Write a plan; False when a definition changed since it was listed (the plan is then stale)."""
    versions = {obj.metadata.name: obj.metadata.resource_version for obj in existing}
    for name, body in plan.create.items():
        clients.create_job_definition(namespace, name, body["spec"])
    for name, status in plan.status.items():
        version = None if name in plan.create else versions.get(name)
        if not clients.patch_definition_status(namespace, name, status, version):
            return False
    return True


def _apply(
    clients: Clients,
    namespace: str,
    repository: str,
    report: SyncReport,
    now: datetime,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncReport:
    """Bring the namespace's definitions in line with the report; the report as applied (its conflicts
    and refused jobs among its errors).

    The whole plan is computed and checked before its first write, and written again from a fresh listing
    when a definition changed meanwhile or the API failed: the repository's status names the new commit
    only once every definition says so.
    """
    report = _checked_jobs(report)
    source = JobSource(type="repository", repository=repository, commit=report.commit)
    failure: Exception | None = None
    # Our own retry, not kopf's: this runs inside a pass over a repository (an event handler's or the poll
    # loop's, which kopf does not retry), and it must finish before the status names the new commit.
    for attempt in range(APPLY_ATTEMPTS):
        if attempt:
            sleep(min(2.0, APPLY_BACKOFF * 2 ** (attempt - 1)))
        try:
            existing = listed(JobDefinition, clients.list_job_definitions(namespace))
            plan = plan_sync(
                existing.fits,
                report.jobs,
                failed_modules=report.errors,
                source=source,
                now=now,
                refused=existing.refused,
            )
            _validate(plan)
            if not _write(clients, namespace, plan, existing.fits):
                continue
        except InvalidPlan:
            raise
        except Exception as exc:  # the API failed: the plan is idempotent, write it again
            log.info(
                "definitions write failed; trying again namespace=%s attempt=%d error=%r",
                namespace,
                attempt,
                exc,
            )
            failure = exc
            continue
        _adopt_quietly(clients, namespace, now)
        errors = dict(report.errors)
        for class_path, message in plan.conflicts.items():
            errors[class_path.rpartition(".")[0]] = message
        jobs = [job for job in report.jobs if job["classPath"] not in plan.conflicts]
        return SyncReport(commit=report.commit, jobs=jobs, errors=errors)
    raise ApplyFailed(f"writing the JobDefinitions failed {APPLY_ATTEMPTS} times: {failure!r}")


# --- definitions applied before discovery, and definitions of a deleted repository ----------------------


def adopt_definitions(clients: Clients, namespace: str, now: datetime | None = None) -> list[str]:
    """Merge definitions applied before discovery with those a sync made meanwhile for the same class.

    Manifests arrive in any order (GitOps): the definition people wrote takes the status and the sync's
    duplicate is deleted, provided nobody changed it. The names of the definitions deleted.
    """
    now = now or datetime.now(UTC)
    deleted = []
    existing = {obj.metadata.name: obj for obj in _definitions(clients, namespace)}
    for adoption in plan_adoptions(existing.values(), now=now):
        claimant = existing[adoption.claimant].metadata
        if not clients.patch_definition_status(
            namespace, adoption.claimant, adoption.status, claimant.resource_version
        ):
            continue  # it changed meanwhile: its next event decides again
        if clients.delete_job_definition(namespace, adoption.duplicate, adoption.duplicate_resource_version):
            deleted.append(adoption.duplicate)
            log.info(
                "definition adopted namespace=%s definition=%s duplicate=%s",
                namespace,
                adoption.claimant,
                adoption.duplicate,
            )
    return deleted


def _definitions(clients: Clients, namespace: str) -> list[JobDefinition]:
    """The namespace's definitions that fit the model; one that does not is left out (and written nothing)."""
    return listed(JobDefinition, clients.list_job_definitions(namespace)).fits


def _adopt_quietly(clients: Clients, namespace: str, now: datetime) -> None:
    try:
        adopt_definitions(clients, namespace, now)
    except Exception as exc:  # the definitions are written; a merge left undone is retried by its event
        log.warning("adopting definitions failed namespace=%s error=%r", namespace, exc)


def forget_repository(clients: Clients, namespace: str, name: str, now: datetime | None = None) -> int:
    """Mark the definitions of a deleted JobRepository not installed (never deleted); how many."""
    now = now or datetime.now(UTC)
    existing = {obj.metadata.name: obj for obj in _definitions(clients, namespace)}
    planned = plan_forget(existing.values(), name, now=now)
    for definition, status in planned.items():
        version = existing[definition].metadata.resource_version
        if not clients.patch_definition_status(namespace, definition, status, version):
            # Changed meanwhile (an admin's edit): write it on what it is now. Here, not through kopf's
            # retry: this runs on a repository's DELETED event and at start-up, which kopf does not retry.
            fresh = plan_forget(_definitions(clients, namespace), name, now=now).get(definition)
            if fresh is not None:
                clients.patch_definition_status(namespace, definition, fresh, None)
    if planned:
        log.info(
            "repository gone; its jobs are not installed repository=%s/%s jobs=%d",
            namespace,
            name,
            len(planned),
        )
    return len(planned)


def forget_missing_repositories(clients: Clients, namespaces: list[str], now: datetime | None = None) -> None:
    """At start-up: the definitions of repositories deleted while no operator watched are not installed."""
    present = {
        (obj["metadata"]["namespace"], obj["metadata"]["name"])
        for obj in clients.list_all_job_repositories(namespaces)
    }
    missing = set()
    for definition in listed(JobDefinition, clients.list_all_job_definitions(namespaces)).fits:
        status = definition.status
        source = status.source if status is not None else None
        if status is None or source is None or source.type != "repository" or not status.installed:
            continue
        key = (definition.metadata.namespace or "", source.repository or "")
        if key not in present:
            missing.add(key)
    for namespace, name in sorted(missing):
        forget_repository(clients, namespace, name, now)
