"""What a JobRepository calls for: when to sync it, the sync Job to run, and what that Job's report says.

Pure functions, no Kubernetes or Git calls: repositories.py reads the objects, resolves the ref, calls
these, and applies the result.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from jobplane_crds.gitcontract import CREDENTIALS_MOUNT, SYNC_REPORT_PREFIX, GitCredentials, SyncContract
from jobplane_crds.times import parse_duration
from jobplane_crds.v1alpha1 import JobQueue, JobRepository, JobRepositoryStatus
from jobplane_operator.reconcile.conditions import condition
from jobplane_operator.reconcile.jobrun import (
    CONTAINER,
    LABEL_MANAGED_BY,
    controller_owner,
    label_value,
    queue_pod_template,
)

__all__ = [
    "ANNOTATION_SYNC_REQUEST",
    "CREDENTIALS_NOT_SCOPED",
    "CREDENTIALS_URL_KEY",
    "DEGRADED",
    "LABEL_REPOSITORY",
    "LABEL_SECRET_TYPE",
    "LABEL_SYNC_JOB",
    "SECRET_TYPE_REPOSITORY_CREDENTIALS",
    "SYNCED",
    "SyncReport",
    "credentials_scope_problem",
    "parse_duration",
    "parse_sync_report",
    "plan_sync_job",
    "repository_conditions",
    "repository_event_matters",
    "scope_report",
    "scrub",
    "secret_values",
    "sync_due",
    "sync_failure",
    "sync_job_finished",
    "sync_job_name",
    "sync_job_state",
    "synced_message",
    "url_in_scope",
]

ANNOTATION_SYNC_REQUEST = "jobplane.io/sync-requested-at"
LABEL_REPOSITORY = "jobplane.io/repository"
LABEL_SYNC_JOB = "jobplane.io/sync-job"
SYNCED = "Synced"
DEGRADED = "Degraded"
# A repository whose sync fails is tried again sooner than its interval: after as long as it has been
# failing (10 s, 20 s, 40 s...), up to the interval. A manifest applied before its queue or Secret heals.
FAILURE_RETRY_MIN = timedelta(seconds=10)
DEFAULT_INTERVAL = timedelta(minutes=5)
MESSAGE_MAX = 4096
# The fetch gets this share of the sync's deadline; importing the modules and reporting get the rest,
# so that a slow remote ends with a FetchTimeout report rather than a killed pod.
FETCH_SHARE = 2 / 3
MIB = 1024 * 1024

_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


def _condition_of(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def sync_due(repo: JobRepository, now: datetime) -> str | None:
    """Why the repository should be checked now (Requested, SpecChanged, FirstCheck, Interval), or None.

    A suspended repository is never checked, requests included; one whose sync Job runs waits for it.
    """
    status = repo.status or JobRepositoryStatus()
    if repo.spec.suspend or status.sync_job:
        return None
    request = (repo.metadata.annotations or {}).get(ANNOTATION_SYNC_REQUEST)
    if request and request != status.sync_request:
        return "Requested"
    if (repo.metadata.generation or 1) != status.observed_generation:
        return "SpecChanged"
    last = status.last_check_time
    if last is None:
        return "FirstCheck"
    try:
        wait = parse_duration(repo.spec.interval or "5m")
    except ValueError:
        wait = DEFAULT_INTERVAL
    synced = next((c for c in status.conditions if c.type == SYNCED), None)
    if synced is not None and synced.status == "False":
        wait = min(wait, max(FAILURE_RETRY_MIN, last - synced.last_transition_time))
    return "Interval" if now - last >= wait else None


def repository_event_matters(repo: JobRepository, now: datetime, *, listing: bool) -> bool:
    """Whether an event of a JobRepository calls for a reconcile: one that is due, and every repository at
    start-up (``listing``: a sync Job a previous process started is followed). The echoes of our own status
    writes are not due, and a running sync Job is followed through its own events.
    """
    if listing:
        return True
    return sync_due(repo, now) is not None


def sync_job_name(
    repo_name: str, repo_uid: str, commit: str, request: str | None, previous_check: str
) -> str:
    """The sync Job of one attempt: the same name for the same attempt (an operator restarted between
    creating the Job and recording it adopts it), a new one for the next attempt (``previous_check``, the
    lastCheckTime before this attempt, moves with every attempt)."""
    digest = hashlib.sha256("\0".join([repo_uid, commit, request or "", previous_check]).encode())
    suffix = digest.hexdigest()[:10]
    stem = _DNS_LABEL.sub("-", repo_name.lower())[: 63 - len(suffix) - len("-sync-")].strip("-") or "repo"
    return f"{stem}-sync-{suffix}"


def plan_sync_job(
    repository: JobRepository,
    *,
    job_name: str,
    commit: str,
    queue: JobQueue | None,
    default_image: str,
    timeout: int,
    max_bytes: int,
    ttl_seconds_after_finished: int | None = None,
) -> dict[str, Any]:
    """The batch/v1 Job that fetches ``commit``, imports its job modules and prints its report.

    It runs like a job pod of the queue ``queue`` (placement, image, overlay), owned by the repository, never
    retried, within ``timeout`` seconds; credentials reach it only as a mounted Secret. What to sync is its
    environment, the sync contract (:class:`~jobplane_crds.gitcontract.SyncContract`), and its command
    is `jobplane sync-repo` alone.
    """
    meta, spec = repository.metadata, repository.spec
    if not (meta.name and meta.namespace and meta.uid):
        raise ValueError("plan_sync_job needs a stored JobRepository (name, namespace and uid)")
    queue_spec = queue.spec if queue is not None else None
    contract = SyncContract(
        repo_url=spec.url,
        repo_commit=commit,
        repo_slug=spec.slug,
        repo_credentials_dir=Path(CREDENTIALS_MOUNT) if spec.credentials_secret_ref else None,
        git_timeout=max(1, math.floor(timeout * FETCH_SHARE)),
        git_max_bytes=max_bytes,
    )
    # The checkout and its objects: twice the fetch limit, so the limit, not the volume, is what stops it.
    tmp_size = f"{max(1, math.ceil(2 * max_bytes / MIB))}Mi"
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": tmp_size}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if spec.credentials_secret_ref:
        volumes.append(
            {
                "name": "git-credentials",
                "secret": {"secretName": spec.credentials_secret_ref, "defaultMode": 0o400},
            }
        )
        mounts.append({"name": "git-credentials", "mountPath": CREDENTIALS_MOUNT, "readOnly": True})
    labels = {LABEL_MANAGED_BY: "jobplane", LABEL_REPOSITORY: label_value(meta.name)}
    template = queue_pod_template(
        queue_spec,
        default_image=default_image,
        command=["jobplane", "sync-repo"],
        env=contract.env(),
        volumes=volumes,
        mounts=mounts,
        labels={**labels, LABEL_SYNC_JOB: job_name},
        secret_volumes=bool(spec.credentials_secret_ref),
    )
    owner = controller_owner(repository.api_version, "JobRepository", meta.name, meta.uid)
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name,
            "namespace": meta.namespace,
            "labels": labels,
            "annotations": {"jobplane.io/commit": commit},
            "ownerReferences": [owner],
        },
        "spec": {"backoffLimit": 0, "activeDeadlineSeconds": max(1, timeout), "template": template},
    }
    if ttl_seconds_after_finished is not None:
        job["spec"]["ttlSecondsAfterFinished"] = ttl_seconds_after_finished
    return job


# --- the sync Job's outcome ---------------------------------------------------------------------------


def _job_condition(job: Mapping[str, Any], *kinds: str) -> Mapping[str, Any] | None:
    for item in (job.get("status") or {}).get("conditions") or []:
        if item.get("type") in kinds and item.get("status") == "True":
            return dict(item)
    return None


def sync_job_state(job: Mapping[str, Any]) -> Literal["running", "succeeded", "failed"]:
    """Whether the sync Job still runs, or how it ended (from the conditions the Job controller writes)."""
    if _job_condition(job, "Complete", "SuccessCriteriaMet"):
        return "succeeded"
    if _job_condition(job, "Failed", "FailureTarget"):
        return "failed"
    return "running"


def sync_job_finished(job: Mapping[str, Any] | None) -> bool:
    """Whether an event of a sync Job (None: it is gone) calls for a reconcile of its repository."""
    if job is None or (job.get("metadata") or {}).get("deletionTimestamp"):
        return True
    return sync_job_state(job) != "running"


@dataclass(frozen=True)
class SyncReport:
    """What `jobplane sync-repo` found at one commit: the job classes (describe_job dicts) and the modules
    that failed to import, or why nothing could be read at all (``failure``: reason, message)."""

    commit: str
    jobs: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    failure: tuple[str, str] | None = None


def parse_sync_report(log: str, prefix: str = SYNC_REPORT_PREFIX) -> SyncReport | None:
    """The report in a sync pod's log: the last line that starts with the prefix (what the job modules
    printed while being imported comes before it). None when there is none, or it is not a report."""
    for line in reversed(log.splitlines()):
        if not line.startswith(prefix):
            continue
        try:
            raw = json.loads(line[len(prefix) :])
        except ValueError:
            return None
        return _report_of(raw)
    return None


def _report_of(raw: Any) -> SyncReport | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("commit"), str):
        return None
    failure = raw.get("failure")
    if failure is not None:
        if not isinstance(failure, dict):
            return None
        reason = str(failure.get("reason") or "SyncFailed")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", reason):
            reason = "SyncFailed"
        return SyncReport(commit=raw["commit"], failure=(reason, str(failure.get("message") or "")))
    jobs, errors = raw.get("jobs", []), raw.get("errors", {})
    if not isinstance(jobs, list) or not isinstance(errors, dict):
        return None
    if not all(isinstance(job, dict) and isinstance(job.get("classPath"), str) for job in jobs):
        return None
    return SyncReport(
        commit=raw["commit"], jobs=jobs, errors={str(key): str(value) for key, value in errors.items()}
    )


def scope_report(report: SyncReport, slug: str) -> SyncReport:
    """The report without jobs outside the repository's package: a repository may only define jobs under
    <slug>.jobs, never replace another source's (an image job, another repository's)."""
    package = f"{slug}.jobs"
    kept, errors = [], dict(report.errors)
    for job in report.jobs:
        module = str(job.get("moduleName") or job["classPath"].rpartition(".")[0])
        if module == package or module.startswith(package + "."):
            kept.append(job)
        else:
            errors[module] = (
                f"registers {job['classPath']}, which is outside the repository's package {package}"
            )
    return SyncReport(commit=report.commit, jobs=kept, errors=errors, failure=report.failure)


def _pod_terminated(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER:
            state = status.get("state") or {}
            return dict(state.get("terminated") or {})
    return {}


def _tail(text: str, limit: int = 1024) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def sync_failure(
    job: Mapping[str, Any] | None,
    pod: Mapping[str, Any] | None,
    report: SyncReport | None,
    *,
    commit: str,
    timeout: int,
) -> tuple[str, str] | None:
    """Why a finished sync Job gives nothing to apply, as (reason, message); None when its report is good.

    The report's own failure is the most precise (FetchFailed, NoJobsPackage...); else what the Job and pod
    say (deadline, memory, exit code), under the reason SyncFailed.
    """
    if report is not None and report.failure is not None:
        return report.failure
    if job is None:
        return "SyncFailed", "The sync Job was deleted before the operator read its outcome"
    deadline = _job_condition(job, "Failed", "FailureTarget")
    if deadline is not None and deadline.get("reason") == "DeadlineExceeded":
        return "SyncFailed", f"The sync took longer than {timeout} s (the operator's repository_sync_timeout)"
    if deadline is not None:
        terminated = _pod_terminated(pod) if pod else {}
        if pod is None:
            return "SyncFailed", "The sync pod was deleted before it finished"
        if terminated.get("reason") == "OOMKilled":
            return "SyncFailed", "The sync pod went over its memory limit (the queue's resources)"
        code = terminated.get("exitCode")
        said = _tail(str(terminated.get("message") or ""))
        return "SyncFailed", f"The sync pod exited with code {code}" + (f": {said}" if said else "")
    if report is None:
        if pod is None:
            return "SyncFailed", "The sync pod is gone: its report cannot be read"
        return "SyncFailed", "The sync pod printed no report"
    if report.commit != commit:
        return "SyncFailed", f"The sync pod reported commit {report.commit}, not {commit}"
    return None


# --- credentials never leave the Secret -----------------------------------------------------------------


def secret_values(credentials: GitCredentials | None) -> list[str]:
    """Every form of the credentials that could appear in a message: the values and the basic-auth token."""
    if credentials is None:
        return []
    values = [value for value in credentials.secrets() if value]
    if credentials.username and credentials.password:
        pair = f"{credentials.username}:{credentials.password}".encode()
        values.append(base64.b64encode(pair).decode())
    if credentials.password:
        values.append(base64.b64encode(credentials.password.encode()).decode())
    return values


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced (longest first, so no part of one survives)."""
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


# --- which Secret may serve as a repository's credentials (Argo CD's repo-creds) ------------------------
#
# Whoever may create a JobRepository names its credentialsSecretRef; without a scope they could have the
# operator send any Secret of the namespace (the API's database password...) to a URL of their choosing.
# A Secret is used only when whoever wrote it said so: the label, and the URLs (a prefix) it is for.

LABEL_SECRET_TYPE = "jobplane.io/secret-type"
SECRET_TYPE_REPOSITORY_CREDENTIALS = "repository-credentials"
CREDENTIALS_URL_KEY = "url"
CREDENTIALS_NOT_SCOPED = "CredentialsNotScoped"

_DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22}
# git's scp-like form: [user@]host:path, with no slash before the colon (then it is a local path).
_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^@/:\[\]]+|\[[0-9A-Fa-f:.]+\]):(?P<path>.*)$")


@dataclass(frozen=True)
class _Location:
    """A Git URL as scoping compares it: scheme, host[:port] (lower case, default port dropped, no user)
    and the path's segments (percent-decoded, empty ones dropped)."""

    scheme: str
    host: str
    path: tuple[str, ...]


def _location(url: str) -> _Location | None:
    """``url`` as compared for scoping; None when it is not a Git remote URL one can safely compare (a
    query, a fragment, a dot segment, an encoded slash...): such a URL is in no scope."""
    url = url.strip()
    if not url or any(char.isspace() or not char.isprintable() for char in url) or "?" in url or "#" in url:
        return None
    port: int | None
    if "://" in url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        try:
            host, port = (parts.hostname or ""), parts.port
        except ValueError:
            return None
        if scheme == "file":
            if parts.netloc not in ("", "localhost"):
                return None
            host = ""
        elif not host:
            return None
        path = parts.path
    else:
        match = _SCP_LIKE.match(url)
        if match is None:
            return None
        scheme, host, port, path = "ssh", match["host"].strip("[]").lower(), None, match["path"]
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    segments = tuple(unquote(segment) for segment in path.split("/") if segment)
    # What a server resolves differently from a string comparison (../, %2F, a backslash) is in no scope.
    if any(segment in (".", "..") or "/" in segment or "\\" in segment for segment in segments):
        return None
    return _Location(scheme, netloc, segments)


def _without_git_suffix(segment: str) -> str:
    return segment[: -len(".git")] if segment.endswith(".git") and segment != ".git" else segment


def url_in_scope(url: str, prefix: str) -> bool:
    """Whether the repository URL ``url`` lies within ``prefix``: the same scheme and host (compared case
    blind, with the default port dropped; scp-like ``git@host:path`` is ``ssh://host/path``; the user is
    ignored, since the credentials go to the host) and a path that is the prefix's, or lies under it at a
    ``/`` boundary. A trailing slash and, for the whole URL, a ``.git`` suffix make no difference; paths
    compare case-sensitively (a server may treat them so).

    ``https://git.example.com/team`` covers ``https://git.example.com/team/jobs.git`` but not
    ``https://git.example.com/team-evil/jobs.git``, nor ``http://git.example.com/team/jobs.git``.
    """
    repository, scope = _location(url), _location(prefix)
    if repository is None or scope is None:
        return False
    if (repository.scheme, repository.host) != (scope.scheme, scope.host):
        return False
    depth = len(scope.path)
    if depth > len(repository.path):
        return False
    if depth and depth == len(repository.path):
        last = _without_git_suffix(repository.path[-1]) == _without_git_suffix(scope.path[-1])
        return last and repository.path[:-1] == scope.path[:-1]
    return repository.path[:depth] == scope.path


def _decoded(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def credentials_scope_problem(
    url: str, secret: str, labels: Mapping[str, str] | None, data: Mapping[str, str] | None
) -> str | None:
    """Why the Secret ``secret`` (its ``labels``, and ``data`` as the API holds it: base64 values) may not
    serve as Git credentials for the repository URL ``url``; None when it may.

    It may when it is labelled ``jobplane.io/secret-type: repository-credentials`` and its key ``url``
    holds ``url`` or a prefix of it (see url_in_scope), as Argo CD's repo-creds do. The message says what
    to add, and never shows a value of the Secret (whatever Secret was named, its url key included).
    """
    labels, data = labels or {}, data or {}
    labelled = labels.get(LABEL_SECRET_TYPE) == SECRET_TYPE_REPOSITORY_CREDENTIALS
    encoded = data.get(CREDENTIALS_URL_KEY)
    prefix = _decoded(encoded)
    covered = prefix is not None and url_in_scope(url, prefix)
    if labelled and covered:
        return None
    fixes = [] if labelled else [f"add the label {LABEL_SECRET_TYPE}: {SECRET_TYPE_REPOSITORY_CREDENTIALS}"]
    wanted = f"the repository's URL or a prefix of it that ends at a '/' (for example {url})"
    if not encoded:
        fixes.append(f"add a key {CREDENTIALS_URL_KEY} holding {wanted}")
    elif prefix is None or _location(prefix) is None:
        fixes.append(f"its key {CREDENTIALS_URL_KEY} holds no Git URL: set it to {wanted}")
    elif not covered:
        # Whatever Secret was named, its value is not echoed: it could be another system's URL and password.
        fixes.append(
            f"its key {CREDENTIALS_URL_KEY} names other repositories (its value is not shown here): "
            f"set it to {wanted}"
        )
    return (
        f"Secret {secret!r} (spec.credentialsSecretRef) is not scoped to this repository, so it is not "
        f"used (Git credentials go only to the repositories their Secret names): {'; '.join(fixes)}"
    )


# --- status ------------------------------------------------------------------------------------------


def _errors_message(errors: Mapping[str, str]) -> str:
    listed = "; ".join(f"{module}: {error}" for module, error in sorted(errors.items()))
    noun = "module" if len(errors) == 1 else "modules"
    return f"{len(errors)} {noun} failed to import (their jobs are kept as last synced): {listed}"


def repository_conditions(
    old_status: Mapping[str, Any] | None,
    *,
    synced: tuple[str, str, str] | None,
    import_errors: Mapping[str, str] | None,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """The repository's conditions: Synced (``synced`` = status, reason, message; None keeps the old one)
    and Degraded (True with reason ImportErrors naming each failed module; ``import_errors`` None keeps it).

    A repository never looked at yet is Synced Unknown (Syncing) rather than without the condition.
    """
    old = old_status or {}
    conditions = []
    if synced is None:
        previous = _condition_of(old, SYNCED)
        synced = (
            (str(previous["status"]), str(previous["reason"]), str(previous.get("message") or ""))
            if previous
            else ("Unknown", "Syncing", "The first sync is on its way")
        )
    conditions.append(condition(old, SYNCED, *synced, generation=generation, now=now))
    if import_errors is None:
        previous = _condition_of(old, DEGRADED)
        if previous is not None:
            conditions.append(dict(previous))
        return conditions
    if import_errors:
        degraded = ("True", "ImportErrors", _errors_message(import_errors)[:MESSAGE_MAX])
    else:
        degraded = ("False", "AllModulesImported", "Every job module imported")
    conditions.append(condition(old, DEGRADED, *degraded, generation=generation, now=now))
    return conditions


def synced_message(commit: str, jobs: int) -> str:
    """The Synced condition's message once ``commit`` is installed."""
    noun = "job" if jobs == 1 else "jobs"
    return f"Commit {commit[:12]} is installed: {jobs} {noun}"
