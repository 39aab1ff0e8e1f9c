"""A JobRepository's reconcile against a fake API: check, sync Job, apply all or nothing, forget."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobplane_crds.v1alpha1 import JobQueue, JobRepository
from jobplane_operator import repositories
from jobplane_operator.kube import SecretData
from jobplane_operator.reconcile.jobdefinition import definition_name
from jobplane_operator.reconcile.jobrepository import ANNOTATION_SYNC_REQUEST, sync_job_name
from jobplane_operator.repositories import (
    adopt_definitions,
    forget_missing_repositories,
    forget_repository,
    reconcile_repository,
)
from jobplane_operator.settings import OperatorSettings
from jobplane_runtime.gitsource import SYNC_REPORT_PREFIX, GitCredentials, GitSourceError
from tests.builders import job_repository
from tests.unit.operator.test_reconcile_jobdefinition import describe
from tests.unit.operator.test_reconcile_jobrepository import repository_secret

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
UID = "0b7e2f5c-8d4a-4c1e-9f3b-2a1d0c9e8f70"
C1, C2 = "1" * 40, "2" * 40
PASSWORD = "hunter2-very-secret"
SETTINGS = OperatorSettings(image="localhost/jobplane:dev", repository_sync_timeout=120)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repositories, "APPLY_BACKOFF", 0.0)


def ts(delta: timedelta = timedelta(0)) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """Stands for a kubernetes ApiException (a 500 by default)."""

    def __init__(self, what: str, status: int = 500, message: str = "") -> None:
        super().__init__(what)
        self.status, self.reason = status, what
        self.body = json.dumps({"message": message})


class FakeClients:
    """An API holding JobDefinitions, Jobs, pods and Secrets in memory, recording every write."""

    def __init__(self) -> None:
        self.definitions: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, list[dict[str, Any]]] = {}
        self.logs: dict[str, str] = {}
        self.secrets: dict[str, SecretData] = {}
        self.repository_statuses: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.failures: dict[str, int] = {}  # method → how many more calls fail
        self.conflicts: dict[str, int] = {}  # definition → how many more status patches conflict
        self.version = 0
        self.refuse_jobs = ""  # a message: create_job answers 422 with it
        self.log_errors: list[ApiError] = []  # what the next reads of a pod's log raise

    def _maybe_fail(self, method: str) -> None:
        self.calls.append(method)
        if self.failures.get(method):
            self.failures[method] -= 1
            raise ApiError(method)

    def _bump(self) -> str:
        self.version += 1
        return str(self.version)

    # --- definitions ---
    def list_job_definitions(self, namespace: str) -> list[dict[str, Any]]:
        self._maybe_fail("list_job_definitions")
        return copy.deepcopy(list(self.definitions.values()))

    def list_all_job_definitions(self, namespaces: list[str] | None = None) -> list[dict[str, Any]]:
        return [{**d, "metadata": {**d["metadata"], "namespace": "ops"}} for d in self.definitions.values()]

    def create_job_definition(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        self._maybe_fail("create_job_definition")
        if name not in self.definitions:
            labels = {"app.kubernetes.io/managed-by": "jobplane"}
            meta = {"name": name, "generation": 1, "labels": labels, "resourceVersion": self._bump()}
            self.definitions[name] = {"metadata": meta, "spec": copy.deepcopy(spec)}

    def patch_definition_status(
        self, namespace: str, name: str, status: dict[str, Any], rv: str | None
    ) -> bool:
        self._maybe_fail("patch_definition_status")
        obj = self.definitions.get(name)
        if obj is None:
            return False
        if self.conflicts.get(name) or (rv is not None and rv != obj["metadata"]["resourceVersion"]):
            self.conflicts[name] = max(0, self.conflicts.get(name, 0) - 1)
            obj["metadata"]["resourceVersion"] = self._bump()  # someone else wrote it
            return False
        obj["status"] = copy.deepcopy(status)
        obj["metadata"]["resourceVersion"] = self._bump()
        return True

    def delete_job_definition(self, namespace: str, name: str, rv: str | None) -> bool:
        obj = self.definitions.get(name)
        if obj is None or (rv is not None and rv != obj["metadata"]["resourceVersion"]):
            return False
        del self.definitions[name]
        return True

    # --- repositories ---
    def patch_repository_status(
        self, namespace: str, name: str, status: dict[str, Any], rv: str | None
    ) -> bool:
        self.calls.append("patch_repository_status")
        self.repository_statuses.append(copy.deepcopy(status))
        return True

    def list_all_job_repositories(self, namespaces: list[str] | None = None) -> list[dict[str, Any]]:
        return []

    def get_secret_data(self, namespace: str, name: str) -> SecretData | None:
        self.calls.append("get_secret_data")
        return self.secrets.get(name)

    # --- Jobs and pods ---
    def create_job(self, namespace: str, body: dict[str, Any]) -> None:
        self._maybe_fail("create_job")
        if self.refuse_jobs:
            raise ApiError("Unprocessable Entity", 422, self.refuse_jobs)
        self.jobs.setdefault(body["metadata"]["name"], copy.deepcopy(body))

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.jobs.get(name))

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.pods.get(selector.split("=", 1)[1], []))

    def read_pod_log(self, namespace: str, name: str, container: str, tail_lines: int) -> str | None:
        self.calls.append("read_pod_log")
        if self.log_errors:
            raise self.log_errors.pop(0)
        return self.logs.get(name)

    # --- helpers for the tests ---
    def finish(self, job_name: str, *, succeeded: bool, log: str, exit_code: int = 0) -> None:
        condition = {"type": "Complete" if succeeded else "Failed", "status": "True", "reason": ""}
        self.jobs[job_name]["status"] = {"conditions": [condition]}
        pod = f"{job_name}-abcde"
        terminated = {"exitCode": exit_code}
        self.pods[job_name] = [
            {
                "metadata": {"name": pod, "creationTimestamp": ts()},
                "status": {"containerStatuses": [{"name": "job", "state": {"terminated": terminated}}]},
            }
        ]
        self.logs[pod] = log

    def installed(self) -> dict[str, tuple[bool, str | None]]:
        return {
            d["status"]["classPath"]: (d["status"]["installed"], d["status"]["source"].get("commit"))
            for d in self.definitions.values()
            if d.get("status")
        }


class FakeCatalog:
    """The operator's indexes: each repository parsed into its model."""

    def __init__(self, repositories: list[dict[str, Any]] | None = None) -> None:
        self.others = repositories or []

    def queue(self, namespace: str, name: str) -> JobQueue | None:
        return None

    def repositories(self, namespace: str) -> list[JobRepository]:
        return [JobRepository.model_validate(obj) for obj in self.others]


class Resolver:
    """Stands for gitsource.resolve_ref: a commit per ref, or an error."""

    def __init__(self, commit: str | None = C1, error: GitSourceError | None = None) -> None:
        self.commit, self.error = commit, error
        self.calls: list[tuple[str, str, GitCredentials | None, float, bool]] = []

    def __call__(
        self, url: str, ref: str, credentials: GitCredentials | None, *, timeout: float, allow_file: bool
    ) -> str:
        self.calls.append((url, ref, credentials, timeout, allow_file))
        if self.error is not None:
            raise self.error
        assert self.commit is not None
        return self.commit


def repo_obj(
    *, status: dict[str, Any] | None = None, annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    return job_repository(
        "netops",
        namespace="ops",
        metadata={
            "uid": UID,
            "generation": 1,
            "resourceVersion": "41",
            "creationTimestamp": ts(timedelta(days=-1)),
            "annotations": annotations or {},
        },
        status=status,
        **{
            "url": "https://git.example.com/netops.git",
            "slug": "netops",
            "ref": "main",
            "interval": "5m",
            **spec,
        },
    )


def reconcile(
    clients: FakeClients,
    obj: dict[str, Any],
    resolver: Resolver | None = None,
    catalog: FakeCatalog | None = None,
    now: datetime = NOW,
) -> dict[str, Any]:
    """One pass; the repository as it is afterwards (its status merged as the API would)."""
    before = len(clients.repository_statuses)
    reconcile_repository(
        clients,  # type: ignore[arg-type]
        obj,
        SETTINGS,
        catalog or FakeCatalog(),
        now,
        resolve=resolver or Resolver(),
    )
    after = copy.deepcopy(obj)
    for patch in clients.repository_statuses[before:]:
        status = dict(after.get("status") or {})
        status.update(patch)
        after["status"] = {key: value for key, value in status.items() if value is not None}
    return after


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def report(commit: str, jobs: list[dict[str, Any]], errors: dict[str, str] | None = None) -> str:
    payload = {"commit": commit, "jobs": jobs, "errors": errors or {}}
    return f"Fetched commit {commit}\nimport noise\n{SYNC_REPORT_PREFIX}{json.dumps(payload)}\n"


# --- checking the ref -------------------------------------------------------------------------------------


def test_a_new_repository_gets_a_sync_job_for_its_refs_commit() -> None:
    clients, resolver = FakeClients(), Resolver(C1)
    after = reconcile(clients, repo_obj(), resolver)
    assert resolver.calls == [("https://git.example.com/netops.git", "main", None, 120.0, False)]
    (job_name,) = clients.jobs
    assert job_name == sync_job_name("netops", UID, C1, None, "")
    job = clients.jobs[job_name]
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["JOBPLANE_REPO_COMMIT"] == C1
    status = after["status"]
    assert (status["syncJob"], status["syncingCommit"]) == (job_name, C1)
    assert (status["lastCheckTime"], status["observedGeneration"]) == (ts(), 1)
    assert condition(after, "Synced")["reason"] == "Syncing"
    assert "commit" not in status
    # An operator restarted before it recorded the Job adopts it rather than starting a second one.
    clients.repository_statuses.clear()
    reconcile(clients, repo_obj(), Resolver(C1))
    assert list(clients.jobs) == [job_name]


def test_the_same_commit_with_nothing_asked_only_records_the_check() -> None:
    clients = FakeClients()
    status = {
        "commit": C1,
        "observedGeneration": 1,
        "lastCheckTime": ts(timedelta(minutes=-6)),
        "classPaths": ["a"],
    }
    after = reconcile(clients, repo_obj(status=status), Resolver(C1))
    assert clients.jobs == {}
    assert after["status"]["lastCheckTime"] == ts()
    assert condition(after, "Synced")["status"] == "True"


def test_a_sync_request_syncs_even_the_same_commit_once() -> None:
    clients = FakeClients()
    status = {"commit": C1, "observedGeneration": 1, "lastCheckTime": ts(timedelta(minutes=-1))}
    requested = {ANNOTATION_SYNC_REQUEST: "2026-11-25T11:59:59.000001Z"}
    after = reconcile(clients, repo_obj(status=status, annotations=requested), Resolver(C1))
    assert len(clients.jobs) == 1
    assert after["status"]["syncRequest"] == "2026-11-25T11:59:59.000001Z"


def test_nothing_happens_when_nothing_is_due() -> None:
    clients, resolver = FakeClients(), Resolver(C2)
    status = {"commit": C1, "observedGeneration": 1, "lastCheckTime": ts(timedelta(minutes=-1))}
    reconcile(clients, repo_obj(status=status), resolver)
    assert resolver.calls == []
    assert clients.calls == []


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"url": "ftp://127.0.0.1/x.git"}, "InvalidURL"),
        ({"url": "file:///srv/git/x.git"}, "InvalidURL"),  # file:// is off by default
        ({"slug": "class"}, "InvalidSlug"),  # a keyword: <slug>.jobs could never be imported
        # What a slug may shadow ("json") is for the sync pod to say: its modules are the image's.
    ],
)
def test_an_invalid_spec_is_a_condition_with_no_pod_and_no_network(spec: dict[str, Any], reason: str) -> None:
    clients, resolver = FakeClients(), Resolver()
    after = reconcile(clients, repo_obj(**spec), resolver)
    synced = condition(after, "Synced")
    assert (synced["status"], synced["reason"]) == ("False", reason)
    assert synced["message"]
    assert resolver.calls == []
    assert clients.jobs == {}


def test_the_older_repository_keeps_a_slug_two_share() -> None:
    older = repo_obj()
    older["metadata"].update(name="first", creationTimestamp=ts(timedelta(days=-9)))
    clients = FakeClients()
    after = reconcile(clients, repo_obj(), catalog=FakeCatalog([older, repo_obj()]))
    synced = condition(after, "Synced")
    assert (synced["reason"], "'first'" in synced["message"]) == ("SlugConflict", True)
    assert clients.jobs == {}


def test_a_missing_credentials_secret_is_a_condition() -> None:
    clients, resolver = FakeClients(), Resolver()
    after = reconcile(clients, repo_obj(credentialsSecretRef="git-creds"), resolver)
    assert condition(after, "Synced")["reason"] == "SecretNotFound"
    assert resolver.calls == []
    assert after["status"]["lastCheckTime"] == ts()  # tried again later, sooner while it fails


def test_credentials_go_to_git_and_never_into_the_status() -> None:
    clients = FakeClients()
    clients.secrets["git-creds"] = repository_secret(username="bot", password=PASSWORD)
    leaky = GitSourceError("FetchFailed", f"fatal: Authentication failed for bot:{PASSWORD}")
    resolver = Resolver(error=leaky)
    after = reconcile(clients, repo_obj(credentialsSecretRef="git-creds"), resolver)
    credentials = resolver.calls[0][2]
    assert credentials is not None
    assert (credentials.username, credentials.password) == ("bot", PASSWORD)
    synced = condition(after, "Synced")
    assert (synced["status"], synced["reason"]) == ("False", "FetchFailed")
    assert PASSWORD not in json.dumps(clients.repository_statuses)
    assert "Authentication failed" in synced["message"]


@pytest.mark.parametrize(
    "secret",
    [
        repository_secret(labels={}, username="bot", password=PASSWORD),  # not labelled
        repository_secret(None, username="bot", password=PASSWORD),  # no url key
        repository_secret("https://git.example.com/other", username="bot", password=PASSWORD),
        repository_secret("https://git.example.com/net", username="bot", password=PASSWORD),
    ],
)
def test_credentials_not_scoped_to_the_repository_go_nowhere(secret: SecretData) -> None:
    clients, resolver = FakeClients(), Resolver()
    clients.secrets["git-creds"] = secret
    after = reconcile(clients, repo_obj(credentialsSecretRef="git-creds"), resolver)
    synced = condition(after, "Synced")
    assert (synced["status"], synced["reason"]) == ("False", "CredentialsNotScoped")
    assert "jobplane.io/secret-type" in synced["message"] or "key url" in synced["message"]
    assert resolver.calls == []  # no ls-remote: nothing reached the URL
    assert clients.jobs == {}  # no sync pod: nothing mounted
    assert PASSWORD not in json.dumps(clients.repository_statuses)
    assert after["status"]["lastCheckTime"] == ts()  # looked at again, so a fixed Secret is picked up
    # Once the Secret is scoped, the next look uses it.
    clients.secrets["git-creds"] = repository_secret(username="bot", password=PASSWORD)
    after = reconcile(clients, after, resolver, now=NOW + timedelta(minutes=1))
    assert resolver.calls[0][2] == GitCredentials(username="bot", password=PASSWORD)
    assert after["status"]["syncJob"] in clients.jobs


def test_an_unknown_ref_is_a_condition_and_the_installed_commit_stays() -> None:
    clients = FakeClients()
    status = {"commit": C1, "observedGeneration": 1, "lastCheckTime": ts(timedelta(minutes=-6))}
    after = reconcile(
        clients, repo_obj(status=status), Resolver(error=GitSourceError("RefNotFound", "no 'main'"))
    )
    assert condition(after, "Synced")["reason"] == "RefNotFound"
    assert after["status"]["commit"] == C1
    assert clients.jobs == {}


# --- following the sync Job -----------------------------------------------------------------------------


def started(clients: FakeClients, commit: str = C1, **spec: Any) -> dict[str, Any]:
    """A repository whose sync Job for ``commit`` was just created."""
    return reconcile(clients, repo_obj(**spec), Resolver(commit))


def test_a_running_sync_job_is_left_alone() -> None:
    clients = FakeClients()
    repo = started(clients)
    clients.calls.clear()
    reconcile(clients, repo)
    assert clients.calls == []


def test_a_finished_sync_installs_its_jobs_disabled_then_names_the_commit() -> None:
    clients = FakeClients()
    repo = started(clients)
    job_name = repo["status"]["syncJob"]
    errors = {"netops.jobs.third": "SyntaxError: invalid syntax (jobs/third.py, line 3)"}
    jobs = [describe("netops.jobs.hello.Hello"), describe("netops.jobs.other.Other")]
    clients.finish(job_name, succeeded=True, log=report(C1, jobs, errors))
    after = reconcile(clients, repo, now=NOW + timedelta(seconds=5))
    assert clients.installed() == {
        "netops.jobs.hello.Hello": (True, C1),
        "netops.jobs.other.Other": (True, C1),
    }
    assert all(d["spec"] == {"enabled": False} for d in clients.definitions.values())
    status = after["status"]
    assert status["commit"] == C1
    assert status["classPaths"] == ["netops.jobs.hello.Hello", "netops.jobs.other.Other"]
    assert status["importErrors"] == errors
    assert status["lastSyncTime"] == ts(timedelta(seconds=5))
    assert "syncJob" not in status
    assert "syncingCommit" not in status
    assert clients.repository_statuses[-1]["syncJob"] is None  # cleared in the merge patch
    assert condition(after, "Synced")["status"] == "True"
    degraded = condition(after, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ImportErrors")
    assert "jobs/third.py" in degraded["message"]
    assert "netops.jobs.third" in degraded["message"]
    # The definitions were all written before the repository's status named the commit.
    last_definition_write = max(
        i for i, call in enumerate(clients.calls) if call == "patch_definition_status"
    )
    assert clients.calls.index("patch_repository_status", last_definition_write) > last_definition_write


def test_a_new_commit_updates_its_jobs_and_uninstalls_the_vanished_ones() -> None:
    clients = FakeClients()
    repo = started(clients)
    jobs = [describe("netops.jobs.hello.Hello"), describe("netops.jobs.other.Other")]
    clients.finish(repo["status"]["syncJob"], succeeded=True, log=report(C1, jobs))
    repo = reconcile(clients, repo)
    repo["metadata"]["annotations"][ANNOTATION_SYNC_REQUEST] = "now"
    repo = reconcile(clients, repo, Resolver(C2), now=NOW + timedelta(seconds=1))
    assert repo["status"]["syncingCommit"] == C2
    clients.finish(
        repo["status"]["syncJob"], succeeded=True, log=report(C2, [describe("netops.jobs.hello.Hello")])
    )
    repo = reconcile(clients, repo, now=NOW + timedelta(seconds=2))
    assert clients.installed() == {
        "netops.jobs.hello.Hello": (True, C2),
        "netops.jobs.other.Other": (False, C1),
    }
    assert repo["status"]["commit"] == C2
    assert condition(repo, "Degraded")["status"] == "False"


def test_a_failed_sync_changes_no_definition_and_keeps_the_installed_commit() -> None:
    clients = FakeClients()
    clients.secrets["git-creds"] = repository_secret(username="bot", password=PASSWORD)
    repo = started(clients, credentialsSecretRef="git-creds")
    failure = {
        "commit": C1,
        "failure": {"reason": "NoJobsPackage", "message": f"no jobs package ({PASSWORD})"},
    }
    clients.finish(
        repo["status"]["syncJob"], succeeded=False, exit_code=1, log=SYNC_REPORT_PREFIX + json.dumps(failure)
    )
    after = reconcile(clients, repo)
    assert clients.definitions == {}
    synced = condition(after, "Synced")
    assert (synced["status"], synced["reason"]) == ("False", "NoJobsPackage")
    assert PASSWORD not in synced["message"]
    assert "commit" not in after["status"]
    assert "syncJob" not in after["status"]


def test_a_sync_pod_without_a_report_fails_the_sync() -> None:
    clients = FakeClients()
    repo = started(clients)
    clients.finish(repo["status"]["syncJob"], succeeded=True, log="Traceback (most recent call last): ...\n")
    after = reconcile(clients, repo)
    assert condition(after, "Synced")["reason"] == "SyncFailed"
    assert clients.definitions == {}


def test_a_sync_pod_whose_node_cannot_be_reached_for_its_log_fails_the_sync_and_is_retried() -> None:
    # The apiserver answers 500 when it cannot dial the pod's kubelet (its node gone since the pod ended):
    # the log never becomes readable, so the sync must not stay Syncing forever.
    clients = FakeClients()
    repo = started(clients)
    first = repo["status"]["syncJob"]
    clients.finish(first, succeeded=True, log="")
    clients.pods[first][0]["spec"] = {"nodeName": "gone-1"}
    unreachable = 'Get "https://gone-1:10250/containerLogs/...": dial tcp: connect: connection refused'
    clients.log_errors.append(ApiError("read_pod_log", 500, unreachable))
    repo = reconcile(clients, repo)
    synced = condition(repo, "Synced")
    assert (synced["status"], synced["reason"]) == ("False", "SyncFailed")
    assert synced["message"] == f"The sync pod's log cannot be read from its node gone-1: {unreachable}"
    assert "syncJob" not in repo["status"]
    repo = reconcile(clients, repo, Resolver(C1), now=NOW + timedelta(seconds=10))
    assert repo["status"]["syncJob"] not in (None, first)


def test_a_sync_pod_log_the_api_refuses_for_another_reason_is_read_again_later() -> None:
    clients = FakeClients()
    repo = started(clients)
    job = repo["status"]["syncJob"]
    clients.finish(job, succeeded=True, log="")
    clients.log_errors.append(ApiError("read_pod_log", 403, "forbidden"))
    with pytest.raises(ApiError):
        reconcile(clients, repo)


def test_a_deleted_sync_job_fails_the_sync_and_a_later_check_starts_another() -> None:
    clients = FakeClients()
    repo = started(clients)
    first = repo["status"]["syncJob"]
    del clients.jobs[first]
    repo = reconcile(clients, repo)
    assert condition(repo, "Synced")["reason"] == "SyncFailed"
    assert "syncJob" not in repo["status"]
    repo = reconcile(clients, repo, Resolver(C1), now=NOW + timedelta(seconds=10))
    assert repo["status"]["syncJob"] != first


def test_the_write_is_retried_whole_when_the_api_fails_or_a_definition_changed() -> None:
    clients = FakeClients()
    repo = started(clients)
    jobs = [describe("netops.jobs.a.A"), describe("netops.jobs.b.B")]
    clients.finish(repo["status"]["syncJob"], succeeded=True, log=report(C1, jobs))
    clients.failures["create_job_definition"] = 1
    clients.conflicts[definition_name("netops.jobs.b.B")] = 1
    after = reconcile(clients, repo)
    assert clients.installed() == {"netops.jobs.a.A": (True, C1), "netops.jobs.b.B": (True, C1)}
    assert after["status"]["commit"] == C1
    assert clients.calls.count("list_job_definitions") >= 3  # each attempt plans on a fresh listing


def test_when_the_api_keeps_failing_the_commit_is_not_recorded_and_the_job_is_kept_for_later() -> None:
    clients = FakeClients()
    repo = started(clients)
    clients.finish(repo["status"]["syncJob"], succeeded=True, log=report(C1, [describe("netops.jobs.a.A")]))
    clients.failures["patch_definition_status"] = 100
    after = reconcile(clients, repo)
    assert "commit" not in after["status"]
    assert after["status"]["syncJob"] == repo["status"]["syncJob"]
    assert condition(after, "Synced")["reason"] == "ApplyFailed"
    clients.failures.clear()
    after = reconcile(clients, after)
    assert after["status"]["commit"] == C1
    assert clients.installed() == {"netops.jobs.a.A": (True, C1)}


def test_a_job_the_api_would_refuse_counts_as_its_modules_import_error() -> None:
    clients = FakeClients()
    repo = started(clients)
    jobs = [describe("netops.jobs.good.Good"), describe("netops.jobs.long.Long", name="x" * 200)]
    clients.finish(repo["status"]["syncJob"], succeeded=True, log=report(C1, jobs))
    after = reconcile(clients, repo)
    assert clients.installed() == {"netops.jobs.good.Good": (True, C1)}
    assert "netops.jobs.long.Long" in after["status"]["importErrors"]["netops.jobs.long"]
    assert condition(after, "Degraded")["status"] == "True"


def test_a_suspended_repository_still_finishes_the_sync_it_started() -> None:
    clients = FakeClients()
    repo = started(clients)
    repo["spec"]["suspend"] = True
    clients.finish(repo["status"]["syncJob"], succeeded=True, log=report(C1, [describe("netops.jobs.a.A")]))
    after = reconcile(clients, repo)
    assert after["status"]["commit"] == C1


# --- what becomes of the definitions -------------------------------------------------------------------


def synced_clients() -> FakeClients:
    clients = FakeClients()
    repo = started(clients)
    clients.finish(repo["status"]["syncJob"], succeeded=True, log=report(C1, [describe("netops.jobs.a.A")]))
    reconcile(clients, repo)
    return clients


def test_a_deleted_repositorys_jobs_are_kept_not_installed() -> None:
    clients = synced_clients()
    assert forget_repository(clients, "ops", "netops", NOW) == 1  # type: ignore[arg-type]
    (definition,) = clients.definitions.values()
    assert definition["status"]["installed"] is False
    assert definition["status"]["conditions"][0]["reason"] == "RepositoryDeleted"
    assert forget_repository(clients, "ops", "netops", NOW) == 0  # type: ignore[arg-type]


def test_at_start_up_the_jobs_of_repositories_deleted_meanwhile_are_uninstalled() -> None:
    clients = synced_clients()
    forget_missing_repositories(clients, ["ops"], NOW)  # type: ignore[arg-type]
    (definition,) = clients.definitions.values()
    assert definition["status"]["installed"] is False


def test_a_definition_applied_after_the_sync_replaces_the_syncs_own() -> None:
    clients = synced_clients()
    (duplicate,) = clients.definitions
    clients.definitions["ops-a"] = {
        "metadata": {"name": "ops-a", "generation": 1, "resourceVersion": "900"},
        "spec": {"enabled": True, "classPath": "netops.jobs.a.A", "overrides": {"description": "gitops"}},
    }
    assert adopt_definitions(clients, "ops", NOW) == [duplicate]  # type: ignore[arg-type]
    assert list(clients.definitions) == ["ops-a"]
    status = clients.definitions["ops-a"]["status"]
    assert (status["installed"], status["effective"]["description"]) == (True, "gitops")
    # The next sync keeps updating the adopted one.
    assert adopt_definitions(clients, "ops", NOW) == []  # type: ignore[arg-type]


def test_definitions_the_model_refuses_are_left_out_and_written_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The upgrade window: stored under an older CRD, these no longer fit the model (a field it dropped).
    clients = FakeClients()
    hello = definition_name("netops.jobs.hello.Hello")
    clients.definitions[hello] = {
        "metadata": {"name": hello, "generation": 1, "resourceVersion": "500"},
        "spec": {"enabled": True, "overrides": {"retiredField": "x"}},
    }
    clients.definitions["old-other"] = {
        "metadata": {"name": "old-other", "generation": 1, "resourceVersion": "501"},
        "spec": {"classPath": "netops.jobs.gone.Gone"},
        "status": {
            "classPath": "netops.jobs.gone.Gone",
            "source": {"type": "repository", "repository": "netops", "commit": C1},
            "installed": True,
            "retiredField": "x",
        },
    }
    refused = copy.deepcopy(clients.definitions)
    repo = started(clients)
    jobs = [describe("netops.jobs.hello.Hello"), describe("netops.jobs.other.Other")]
    clients.finish(repo["status"]["syncJob"], succeeded=True, log=report(C1, jobs))
    with caplog.at_level("WARNING"):
        after = reconcile(clients, repo, now=NOW + timedelta(seconds=5))
    # The readable job is installed; the refused ones are as they were, and the class whose definition is
    # one of them is named among the repository's errors rather than written over.
    assert clients.installed()["netops.jobs.other.Other"] == (True, C1)
    assert {name: clients.definitions[name] for name in refused} == refused
    assert after["status"]["commit"] == C1
    assert "does not fit" in after["status"]["importErrors"]["netops.jobs.hello"]
    assert f"JobDefinition left out: it does not fit the model name=None/{hello}" in caplog.text
    # Nor do the other planners write over them, or fail on them.
    forget_repository(clients, "ops", "netops", NOW)  # type: ignore[arg-type]
    forget_missing_repositories(clients, ["ops"], NOW)  # type: ignore[arg-type]
    assert adopt_definitions(clients, "ops", NOW) == []  # type: ignore[arg-type]
    assert {name: clients.definitions[name] for name in refused} == refused
    assert clients.installed()["netops.jobs.other.Other"] == (False, C1)


def test_a_sync_job_the_api_refuses_is_a_condition_tried_again_later() -> None:
    clients = FakeClients()
    clients.refuse_jobs = 'Job.batch "x" is invalid: spec.template.spec.volumes[1].name: Duplicate value'
    after = reconcile(clients, repo_obj(), Resolver(C1))
    synced = condition(after, "Synced")
    assert (synced["status"], synced["reason"]) == ("False", "SyncJobRefused")
    assert "Duplicate value" in synced["message"]
    assert after["status"]["lastCheckTime"] == ts()
    assert "syncJob" not in after["status"]
    # An API that is unwell is no reason to wait: nothing is recorded, the next look tries again.
    clients = FakeClients()
    clients.failures["create_job"] = 1
    with pytest.raises(ApiError):
        reconcile(clients, repo_obj(), Resolver(C1))
    assert clients.repository_statuses == []
