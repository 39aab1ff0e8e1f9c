"""The JobRepository reconcile logic: when a sync is due, the sync Job it plans, and what its report says."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobplane_crds.gitcontract import CREDENTIALS_MOUNT, SYNC_REPORT_PREFIX, GitCredentials, SyncContract
from jobplane_crds.v1alpha1 import JobQueue, JobRepository
from jobplane_operator.kube import SecretData
from jobplane_operator.reconcile.jobrepository import (
    ANNOTATION_SYNC_REQUEST,
    LABEL_SECRET_TYPE,
    SECRET_TYPE_REPOSITORY_CREDENTIALS,
    SyncReport,
    credentials_scope_problem,
    parse_duration,
    parse_sync_report,
    plan_sync_job,
    repository_conditions,
    repository_event_matters,
    scope_report,
    scrub,
    secret_values,
    sync_due,
    sync_failure,
    sync_job_finished,
    sync_job_name,
    sync_job_state,
    url_in_scope,
)
from tests.builders import job_repository

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
UID = "0b7e2f5c-8d4a-4c1e-9f3b-2a1d0c9e8f70"
C1 = "1" * 40
C2 = "2" * 40


def ts(delta: timedelta = timedelta(0)) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def sync_due_of(obj: dict[str, Any], now: datetime) -> str | None:
    return sync_due(JobRepository.model_validate(obj), now)


def repository_event_matters_of(obj: dict[str, Any], now: datetime, *, listing: bool) -> bool:
    return repository_event_matters(JobRepository.model_validate(obj), now, listing=listing)


def repo_obj(
    *,
    generation: int = 1,
    annotations: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return job_repository(
        "netops",
        namespace="ops",
        metadata={"uid": UID, "generation": generation, "annotations": annotations or {}},
        status=status,
        **{"url": "https://git.example.com/netops.git", "slug": "netops", "interval": "5m", **spec},
    )


def synced_status(**extra: Any) -> dict[str, Any]:
    return {"commit": C1, "observedGeneration": 1, "lastCheckTime": ts(timedelta(minutes=-1)), **extra}


# --- durations and when a sync is due ---


def test_durations_are_go_style() -> None:
    assert parse_duration("45s") == timedelta(seconds=45)
    assert parse_duration("5m") == timedelta(minutes=5)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("1m1m") == timedelta(minutes=2)
    for bad in ("", "5", "1d", "m", "-5m", "5 m"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_a_repository_never_checked_is_due() -> None:
    assert sync_due_of(repo_obj(), NOW) == "SpecChanged"  # no status at all: nothing observed yet
    assert sync_due_of(repo_obj(status={"observedGeneration": 1}), NOW) == "FirstCheck"


def test_a_checked_repository_is_due_when_its_interval_elapsed() -> None:
    assert sync_due_of(repo_obj(status=synced_status()), NOW) is None
    assert sync_due_of(repo_obj(status=synced_status()), NOW + timedelta(minutes=4)) == "Interval"
    assert sync_due_of(repo_obj(interval="1h", status=synced_status()), NOW + timedelta(minutes=4)) is None


def test_a_spec_change_or_a_new_request_makes_it_due_at_once() -> None:
    assert sync_due_of(repo_obj(generation=2, status=synced_status()), NOW) == "SpecChanged"
    requested = {ANNOTATION_SYNC_REQUEST: "2026-11-25T11:59:59.123456Z"}
    assert sync_due_of(repo_obj(annotations=requested, status=synced_status()), NOW) == "Requested"
    acted = synced_status(syncRequest="2026-11-25T11:59:59.123456Z")
    assert sync_due_of(repo_obj(annotations=requested, status=acted), NOW) is None


def test_a_suspended_repository_is_never_due_not_even_on_request() -> None:
    requested = {ANNOTATION_SYNC_REQUEST: "2026-11-25T11:59:59.123456Z"}
    assert (
        sync_due_of(repo_obj(suspend=True, annotations=requested, generation=3), NOW + timedelta(days=1))
        is None
    )


def test_nothing_is_due_while_a_sync_job_runs() -> None:
    running = synced_status(syncJob="netops-sync-abc", lastCheckTime=ts(timedelta(hours=-2)))
    requested = {ANNOTATION_SYNC_REQUEST: "later"}
    assert sync_due_of(repo_obj(annotations=requested, generation=2, status=running), NOW) is None


def test_a_failing_repository_is_tried_again_sooner_and_less_often_as_it_keeps_failing() -> None:
    def failing(since: timedelta, last: timedelta) -> dict[str, Any]:
        synced = {
            "type": "Synced",
            "status": "False",
            "reason": "FetchFailed",
            "lastTransitionTime": ts(since),
        }
        return repo_obj(interval="1h", status=synced_status(lastCheckTime=ts(last), conditions=[synced]))

    just_failed = failing(timedelta(0), timedelta(0))
    assert sync_due_of(just_failed, NOW + timedelta(seconds=9)) is None
    assert sync_due_of(just_failed, NOW + timedelta(seconds=10)) == "Interval"
    long_failing = failing(timedelta(minutes=-8), timedelta(0))  # failing for 8 minutes: wait 8 more
    assert sync_due_of(long_failing, NOW + timedelta(minutes=7)) is None
    assert sync_due_of(long_failing, NOW + timedelta(minutes=8)) == "Interval"
    ancient = failing(timedelta(days=-3), timedelta(0))  # never longer than the interval
    assert sync_due_of(ancient, NOW + timedelta(hours=1)) == "Interval"


def test_repository_events_matter_when_due_and_all_at_start_up() -> None:
    quiet = repo_obj(status=synced_status())
    assert not repository_event_matters_of(quiet, NOW, listing=False)  # the echo of our own status write
    assert repository_event_matters_of(quiet, NOW, listing=True)
    assert repository_event_matters_of(repo_obj(generation=2, status=synced_status()), NOW, listing=False)


# --- the sync Job ---


def test_sync_job_names_are_dns_labels_stable_for_one_attempt_and_new_for_the_next() -> None:
    name = sync_job_name("NetOps", UID, C1, None, "")
    assert name == sync_job_name("NetOps", UID, C1, None, "")
    assert name.startswith("netops-sync-")
    others = {
        sync_job_name("NetOps", UID, C2, None, ""),
        sync_job_name("NetOps", UID, C1, "request", ""),
        sync_job_name("NetOps", UID, C1, None, ts()),
        sync_job_name("NetOps", "another-uid", C1, None, ""),
    }
    assert name not in others
    assert len(others) == 4
    long = sync_job_name("r" * 253, UID, C1, None, "")
    assert len(long) <= 63
    assert long[0].isalnum()
    assert long[-1].isalnum()


def make_repository(**spec: Any) -> JobRepository:
    return JobRepository.model_validate(repo_obj(**spec))


def plan(
    repository: JobRepository | None = None, queue: JobQueue | None = None, **options: Any
) -> dict[str, Any]:
    return plan_sync_job(
        repository or make_repository(),
        job_name="netops-sync-0123456789",
        commit=C1,
        queue=queue,
        default_image="localhost/jobplane:dev",
        timeout=300,
        max_bytes=512 * 1024 * 1024,
        **options,
    )


def pod_of(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def env_of(job: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod_of(job)["containers"][0]["env"]}


def test_the_sync_job_is_owned_by_the_repository_labelled_and_never_retried() -> None:
    job = plan(ttl_seconds_after_finished=3600)
    (owner,) = job["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "jobplane.io/v1alpha1",
        "kind": "JobRepository",
        "name": "netops",
        "uid": UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert job["metadata"]["namespace"] == "ops"
    assert job["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "jobplane",
        "jobplane.io/repository": "netops",
    }
    assert job["spec"]["template"]["metadata"]["labels"]["jobplane.io/sync-job"] == "netops-sync-0123456789"
    assert "jobplane.io/run" not in job["spec"]["template"]["metadata"]["labels"]  # not mistaken for a run
    assert "jobplane.io/queue" not in job["metadata"]["labels"]  # never counted against a queue's limit
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 300
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    assert pod_of(job)["restartPolicy"] == "Never"


def test_the_sync_pod_runs_sync_repo_non_root_in_a_bounded_tmp() -> None:
    job = plan()
    pod = pod_of(job)
    (container,) = pod["containers"]
    assert container["name"] == "job"  # so the queue's pod template overlays apply
    assert container["image"] == "localhost/jobplane:dev"
    assert container["command"] == ["jobplane", "sync-repo"]  # what to sync is in its environment
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["automountServiceAccountToken"] is False
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "1024Mi"}}]
    env = env_of(job)
    assert env == {
        "JOBPLANE_REPO_URL": "https://git.example.com/netops.git",
        "JOBPLANE_REPO_COMMIT": C1,
        "JOBPLANE_REPO_SLUG": "netops",
        "JOBPLANE_GIT_TIMEOUT": "200",  # the fetch ends (and reports) before the deadline
        "JOBPLANE_GIT_MAX_BYTES": str(512 * 1024 * 1024),
    }  # and no credentials folder: the repository names no Secret
    assert "ttlSecondsAfterFinished" not in job["spec"]


def test_credentials_reach_the_sync_pod_only_as_a_mounted_secret() -> None:
    job = plan(make_repository(credentialsSecretRef="git-creds"))
    pod = pod_of(job)
    container = pod["containers"][0]
    assert container["command"] == ["jobplane", "sync-repo"]
    assert env_of(job)["JOBPLANE_REPO_CREDENTIALS_DIR"] == CREDENTIALS_MOUNT
    assert "git-creds" not in json.dumps(container["env"])  # the Secret's name is the volume's business
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["git-credentials"]["secret"] == {"secretName": "git-creds", "defaultMode": 0o400}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["git-credentials"] == {
        "name": "git-credentials",
        "mountPath": CREDENTIALS_MOUNT,
        "readOnly": True,
    }
    assert pod["securityContext"]["fsGroup"] == 10001  # the image's user reads the root-owned files


def test_the_sync_pods_environment_is_the_sync_contract_the_pod_reads() -> None:
    # The operator's side renders, the pod's side (what `jobplane sync-repo` calls) reads: a field renamed,
    # dropped or rendered differently on either side fails here.
    job = plan(make_repository(credentialsSecretRef="git-creds"))
    assert SyncContract.read(env_of(job)) == SyncContract(
        repo_url="https://git.example.com/netops.git",
        repo_commit=C1,
        repo_slug="netops",
        repo_credentials_dir=Path(CREDENTIALS_MOUNT),
        git_timeout=200,
        git_max_bytes=512 * 1024 * 1024,
    )
    # Every variable of the contract, and nothing else, is what the pod is given.
    assert set(env_of(job)) == {SyncContract.env_name(field) for field in SyncContract.model_fields}


def test_the_sync_pod_takes_the_queues_placement_image_and_overlay() -> None:
    queue = JobQueue.model_validate(
        {
            "metadata": {"name": "default", "namespace": "ops"},
            "spec": {
                "nodeSelector": {"pool": "jobs"},
                "tolerations": [{"key": "pool", "operator": "Exists"}],
                "image": "registry.example.com/jobplane:1",
                "serviceAccountName": "jobs",
                "resources": {"limits": {"memory": "1Gi"}},
                "podTemplate": {
                    "spec": {
                        "volumes": [{"name": "repos", "hostPath": {"path": "/srv/git"}}],
                        "containers": [
                            {"name": "job", "volumeMounts": [{"name": "repos", "mountPath": "/srv/git"}]}
                        ],
                    }
                },
            },
        }
    )
    pod = pod_of(plan(queue=queue))
    assert pod["nodeSelector"] == {"pool": "jobs"}
    assert pod["tolerations"] == [{"key": "pool", "operator": "Exists"}]
    assert pod["serviceAccountName"] == "jobs"
    container = pod["containers"][0]
    assert container["image"] == "registry.example.com/jobplane:1"
    assert container["resources"] == {"limits": {"memory": "1Gi"}}
    assert [m["name"] for m in container["volumeMounts"]] == ["tmp", "repos"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp", "repos"]


def test_a_repository_never_stored_cannot_be_planned() -> None:
    unsaved = JobRepository.model_validate(
        {"metadata": {"name": "x"}, "spec": {"url": "https://h/r.git", "slug": "x"}}
    )
    with pytest.raises(ValueError, match="stored JobRepository"):
        plan(unsaved)


# --- the sync Job's outcome ---


def job_with(condition: str | None = None, reason: str = "") -> dict[str, Any]:
    conditions = [{"type": condition, "status": "True", "reason": reason}] if condition else []
    return {"metadata": {"name": "netops-sync-0123456789"}, "status": {"conditions": conditions}}


def test_the_sync_jobs_state_comes_from_its_conditions() -> None:
    assert sync_job_state(job_with()) == "running"
    assert sync_job_state(job_with("Complete")) == "succeeded"
    assert sync_job_state(job_with("SuccessCriteriaMet")) == "succeeded"
    assert sync_job_state(job_with("Failed", "BackoffLimitExceeded")) == "failed"
    assert sync_job_state(job_with("FailureTarget", "DeadlineExceeded")) == "failed"
    assert not sync_job_finished(job_with())
    assert sync_job_finished(job_with("Complete"))
    assert sync_job_finished(None)  # gone
    deleting = job_with()
    deleting["metadata"]["deletionTimestamp"] = ts()
    assert sync_job_finished(deleting)


def report_line(payload: dict[str, Any]) -> str:
    return SYNC_REPORT_PREFIX + json.dumps(payload)


def described(class_path: str) -> dict[str, Any]:
    module, _, cls = class_path.rpartition(".")
    return {"classPath": class_path, "moduleName": module, "jobClassName": cls, "code": {"name": cls}}


def test_the_report_is_the_last_report_line_whatever_was_printed_before() -> None:
    forged = report_line({"commit": C2, "jobs": [described("evil.jobs.x.X")], "errors": {}})
    real = {
        "commit": C1,
        "jobs": [described("netops.jobs.hello.Hello")],
        "errors": {"netops.jobs.bad": "boom"},
    }
    log = "\n".join(["Fetched commit", f"user print: {SYNC_REPORT_PREFIX}", forged, report_line(real), ""])
    report = parse_sync_report(log)
    assert report == SyncReport(commit=C1, jobs=real["jobs"], errors={"netops.jobs.bad": "boom"})
    # Lines after the report (a module printing at exit) do not hide it.
    assert parse_sync_report(log + "atexit says bye\n") == report


def test_a_failure_report_carries_its_reason_and_message() -> None:
    report = parse_sync_report(
        report_line({"commit": C1, "failure": {"reason": "NoJobsPackage", "message": "no jobs"}})
    )
    assert report is not None
    assert report.failure == ("NoJobsPackage", "no jobs")
    odd = parse_sync_report(report_line({"commit": C1, "failure": {"reason": "not pascal!", "message": "x"}}))
    assert odd is not None
    assert odd.failure == ("SyncFailed", "x")


@pytest.mark.parametrize(
    "log",
    [
        "",
        "nothing to see\n",
        SYNC_REPORT_PREFIX + "{not json",
        report_line({"jobs": []}),  # no commit
        report_line({"commit": C1, "jobs": {"a": 1}}),
        report_line({"commit": C1, "jobs": [{"noClassPath": True}]}),
        report_line({"commit": C1, "failure": "boom"}),
        SYNC_REPORT_PREFIX + "[]",
    ],
)
def test_no_report_or_a_malformed_one_gives_none(log: str) -> None:
    assert parse_sync_report(log) is None


def test_jobs_outside_the_repositorys_package_are_refused_as_errors() -> None:
    report = SyncReport(
        commit=C1,
        jobs=[
            described("netops.jobs.hello.Hello"),
            described("netops.jobs.Top"),
            described("hello_world.HelloWorld"),
        ],
    )
    scoped = scope_report(report, "netops")
    assert [job["classPath"] for job in scoped.jobs] == ["netops.jobs.hello.Hello", "netops.jobs.Top"]
    assert "outside the repository's package netops.jobs" in scoped.errors["hello_world"]


def pod_with(terminated: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "netops-sync-0123456789-x"},
        "status": {"containerStatuses": [{"name": "job", "state": {"terminated": terminated}}]},
    }


def test_why_a_sync_gives_nothing_to_apply() -> None:
    def why(job: Any, pod: Any, report: SyncReport | None) -> tuple[str, str] | None:
        return sync_failure(job, pod, report, commit=C1, timeout=300)

    good = SyncReport(commit=C1, jobs=[described("netops.jobs.a.A")])
    assert why(job_with("Complete"), pod_with({"exitCode": 0}), good) is None
    failed = job_with("Failed", "BackoffLimitExceeded")
    fetch = SyncReport(commit=C1, failure=("FetchFailed", "could not read from remote"))
    assert why(failed, pod_with({"exitCode": 1}), fetch) == ("FetchFailed", "could not read from remote")
    reason, message = why(job_with("Failed", "DeadlineExceeded"), None, None) or ("", "")
    assert (reason, "300 s" in message) == ("SyncFailed", True)
    oom = why(failed, pod_with({"exitCode": 137, "reason": "OOMKilled"}), None)
    assert oom is not None
    assert "memory" in oom[1]
    crashed = why(failed, pod_with({"exitCode": 2, "message": "Traceback ... ImportError"}), None)
    assert crashed == ("SyncFailed", "The sync pod exited with code 2: Traceback ... ImportError")
    # A pod that failed after printing a good report is a failure all the same: nothing is applied.
    assert why(failed, pod_with({"exitCode": 1}), good) is not None
    assert why(job_with("Complete"), pod_with({"exitCode": 0}), None) == (
        "SyncFailed",
        "The sync pod printed no report",
    )
    other = why(job_with("Complete"), pod_with({"exitCode": 0}), SyncReport(commit=C2))
    assert other is not None
    assert C2 in other[1]
    deleted = why(None, None, None)
    assert deleted is not None
    assert "deleted" in deleted[1]


# --- credentials never leave the Secret ---


def test_messages_are_scrubbed_of_every_form_of_the_credentials() -> None:
    credentials = GitCredentials(username="bot", password="hunter2-token")
    secrets = secret_values(credentials)
    message = "auth failed for hunter2-token (header Basic Ym90Omh1bnRlcjItdG9rZW4=)"
    cleaned = scrub(message, secrets)
    assert "hunter2" not in cleaned
    assert "Ym90Omh1bnRlcjItdG9rZW4=" not in cleaned
    assert cleaned.startswith("auth failed for ***")
    assert secret_values(None) == []
    assert scrub("nothing secret", []) == "nothing secret"


# --- which Secret may serve as a repository's credentials ---

REPO_URL = "https://git.example.com/netops.git"
SCOPED = {LABEL_SECRET_TYPE: SECRET_TYPE_REPOSITORY_CREDENTIALS}


def encoded(**values: str) -> dict[str, str]:
    """A Secret's data as the API holds it: base64 values."""
    return {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}


def repository_secret(
    url: str | None = REPO_URL, *, labels: dict[str, str] | None = None, **values: str
) -> SecretData:
    """A Git credentials Secret as the operator reads it: scoped to ``url`` (None: no url key) and
    labelled as repository credentials unless ``labels`` says otherwise. The one builder for the tests."""
    given = dict(values) or {"username": "bot", "password": "hunter2-token"}
    if url is not None:
        given["url"] = url
    return SecretData(labels=dict(SCOPED if labels is None else labels), data=encoded(**given))


@pytest.mark.parametrize(
    ("url", "prefix"),
    [
        (REPO_URL, REPO_URL),  # the full URL
        (REPO_URL, "https://git.example.com/netops"),  # without .git
        ("https://git.example.com/netops", REPO_URL),  # .git on the prefix only
        (REPO_URL, "https://git.example.com"),  # the whole host
        (REPO_URL, "https://git.example.com/"),
        ("https://git.example.com/team/netops.git", "https://git.example.com/team"),
        ("https://git.example.com/team/netops.git", "https://git.example.com/team/"),  # trailing slash
        ("https://git.example.com/team/netops.git/", "https://git.example.com/team/netops"),
        ("https://git.example.com/team/sub/netops.git", "https://git.example.com/team"),
        ("https://GIT.Example.COM/team/x.git", "HTTPS://git.example.com/team"),  # scheme, host: any case
        ("https://git.example.com:443/team/x.git", "https://git.example.com/team"),  # the default port
        ("https://git.example.com:8443/team/x.git", "https://git.example.com:8443/team"),
        ("https://bot@git.example.com/team/x.git", "https://git.example.com/team"),  # the user is ignored
        (" https://git.example.com/team/x.git", "https://git.example.com/team\n"),  # echo's newline
        ("https://git.example.com/te%61m/x.git", "https://git.example.com/team"),  # percent-decoded
        # ssh: scp-like and ssh:// are the same place
        ("git@github.com:acme/jobs.git", "git@github.com:acme"),
        ("git@github.com:acme/jobs.git", "ssh://git@github.com/acme"),
        ("ssh://git@github.com/acme/jobs.git", "git@github.com:acme/"),
        ("ssh://git@github.com:22/acme/jobs.git", "github.com:acme/jobs"),
        ("git@GitHub.com:acme/jobs.git", "ssh://github.com"),
        ("git@[::1]:acme/jobs.git", "ssh://[::1]/acme"),
        ("file:///srv/git/netops.git", "file:///srv/git"),
    ],
)
def test_a_url_within_the_prefix_is_in_scope(url: str, prefix: str) -> None:
    assert url_in_scope(url, prefix)


@pytest.mark.parametrize(
    ("url", "prefix"),
    [
        ("https://git.example.com/team-evil/x.git", "https://git.example.com/team"),  # not at a boundary
        ("https://git.example.com/teamx", "https://git.example.com/team"),
        ("https://git.example.com/netops.git", "https://git.example.com/netops/sub"),  # longer prefix
        ("https://git.example.com/other/netops.git", "https://git.example.com/team"),
        ("https://git.example.com.evil.net/team/x.git", "https://git.example.com/team"),  # another host
        ("https://evil.net/git.example.com/team/x.git", "https://git.example.com/team"),
        ("https://git.example.com@evil.net/team/x.git", "https://git.example.com/team"),  # a user, not a host
        ("http://git.example.com/team/x.git", "https://git.example.com/team"),  # in the clear: another scheme
        ("https://git.example.com:8443/team/x.git", "https://git.example.com/team"),  # another port
        ("https://git.example.com/Team/x.git", "https://git.example.com/team"),  # paths: case-sensitive
        ("ssh://git.example.com/team/x.git", "https://git.example.com/team"),
        ("git@git.example.com:team/x.git", "https://git.example.com/team"),
        ("git@github.com:acme-evil/jobs.git", "git@github.com:acme"),
        ("git@evil.net:acme/jobs.git", "git@github.com:acme"),
        # what a server resolves otherwise than a string comparison is in no scope
        ("https://git.example.com/team/../evil/x.git", "https://git.example.com/team"),
        ("https://git.example.com/team/%2e%2e/evil/x.git", "https://git.example.com/team"),
        ("https://git.example.com/team%2F..%2Fevil/x.git", "https://git.example.com/team"),
        ("https://git.example.com/team/x.git?u=/evil", "https://git.example.com/team"),
        ("https://git.example.com/team/x.git#frag", "https://git.example.com/team"),
        # not URLs
        (REPO_URL, ""),
        (REPO_URL, "git.example.com/netops"),
        (REPO_URL, "https://"),
        (REPO_URL, "https:///netops.git"),
        (REPO_URL, "https://git.example.com:99999/netops.git"),
        ("", "https://git.example.com"),
        ("file:///srv/git/netops.git", "file://evil.net/srv/git"),
    ],
)
def test_a_url_outside_the_prefix_is_not_in_scope(url: str, prefix: str) -> None:
    assert not url_in_scope(url, prefix)


def scope_problem(url: str = REPO_URL, secret: SecretData | None = None) -> str | None:
    found = secret or repository_secret()
    return credentials_scope_problem(url, "git-creds", found.labels, found.data)


def test_a_labelled_secret_whose_url_covers_the_repository_may_be_used() -> None:
    assert scope_problem() is None
    assert scope_problem(secret=repository_secret("https://git.example.com/")) is None
    assert scope_problem("git@git.example.com:netops.git", repository_secret("ssh://git.example.com")) is None
    assert scope_problem(secret=repository_secret(identity="KEY", known_hosts="host")) is None


@pytest.mark.parametrize(
    ("secret", "says"),
    [
        (repository_secret(labels={}), ["the label jobplane.io/secret-type: repository-credentials"]),
        (
            repository_secret(labels={LABEL_SECRET_TYPE: "other"}),
            ["the label jobplane.io/secret-type: repository-credentials"],
        ),
        (
            repository_secret(labels={"jobplane.io/secret-typo": SECRET_TYPE_REPOSITORY_CREDENTIALS}),
            ["the label jobplane.io/secret-type"],
        ),
        (repository_secret(None), ["add a key url holding", REPO_URL]),
        (repository_secret(""), ["add a key url holding"]),
        (
            repository_secret(None, labels={}),
            ["add the label jobplane.io/secret-type: repository-credentials", "add a key url"],
        ),
        (repository_secret("https://git.example.com/team"), ["key url names other repositories", REPO_URL]),
        (repository_secret("https://git.example.com/netops.git/x"), ["names other repositories"]),
        (repository_secret("https://git.example.com/net"), ["names other repositories"]),
        (repository_secret("http://git.example.com/netops.git"), ["names other repositories"]),
        (repository_secret("not a url"), ["key url holds no Git URL"]),
        (SecretData(labels=SCOPED, data={"url": "%%% not base64"}), ["key url holds no Git URL"]),
        (
            repository_secret("https://git.example.com/team", labels={}),
            ["add the label", "names other repositories"],
        ),
    ],
)
def test_a_secret_not_scoped_to_the_repository_is_refused_saying_what_to_add(
    secret: SecretData, says: list[str]
) -> None:
    problem = scope_problem(secret=secret)
    assert problem is not None
    assert "'git-creds'" in problem
    assert "spec.credentialsSecretRef" in problem
    for words in says:
        assert words in problem


def test_a_refusal_never_shows_a_value_of_the_secret() -> None:
    # Whoever names a Secret may read the repository's status: a database Secret's URL stays hidden.
    named = SecretData(
        labels=SCOPED,
        data=encoded(url="postgresql://api:db-password-1@db:5432/jobplane", password="db-password-1"),
    )
    problem = scope_problem(secret=named)
    assert problem is not None
    assert "db-password-1" not in problem
    assert "postgresql" not in problem
    assert "no Git URL" in problem or "names other repositories" in problem
    unlabelled = SecretData(labels={}, data=encoded(username="admin", password="db-password-1"))
    problem = scope_problem(secret=unlabelled)
    assert problem is not None
    assert "db-password-1" not in problem
    assert "admin" not in problem


def test_a_secret_with_no_labels_or_data_at_all_is_not_scoped() -> None:
    assert credentials_scope_problem(REPO_URL, "git-creds", None, None) is not None
    assert credentials_scope_problem(REPO_URL, "git-creds", SCOPED, {}) is not None


# --- conditions ---


def test_a_sync_that_worked_is_synced_and_import_errors_degrade_it_naming_each_module() -> None:
    errors = {"netops.jobs.third": "SyntaxError: '(' was never closed (jobs/third.py, line 3)"}
    conditions = repository_conditions(
        None,
        synced=("True", "Synced", "Commit 111 is installed"),
        import_errors=errors,
        generation=4,
        now=NOW,
    )
    synced, degraded = conditions
    assert (synced["type"], synced["status"], synced["reason"]) == ("Synced", "True", "Synced")
    assert (degraded["type"], degraded["status"], degraded["reason"]) == ("Degraded", "True", "ImportErrors")
    assert "netops.jobs.third" in degraded["message"]
    assert "jobs/third.py, line 3" in degraded["message"]
    assert {c["observedGeneration"] for c in conditions} == {4}
    assert {c["lastTransitionTime"] for c in conditions} == {ts()}
    clean = repository_conditions(
        {"conditions": conditions}, synced=("True", "Synced", "x"), import_errors={}, generation=4, now=NOW
    )
    assert (clean[1]["status"], clean[1]["reason"]) == ("False", "AllModulesImported")


def test_conditions_keep_their_transition_time_and_what_is_not_decided_now() -> None:
    first = repository_conditions(
        None, synced=("True", "Synced", "a"), import_errors={}, generation=1, now=NOW
    )
    later = NOW + timedelta(hours=1)
    same = repository_conditions(
        {"conditions": first}, synced=("True", "Synced", "b"), import_errors={}, generation=1, now=later
    )
    assert same[0]["lastTransitionTime"] == ts()
    assert same[0]["message"] == "b"
    failed = repository_conditions(
        {"conditions": first},
        synced=("False", "RefNotFound", "no such ref"),
        import_errors=None,
        generation=2,
        now=later,
    )
    assert failed[0]["lastTransitionTime"] == ts(timedelta(hours=1))
    assert failed[1] == first[1]  # Degraded is about the installed commit: unchanged by a failed sync
    kept = repository_conditions(
        {"conditions": failed}, synced=None, import_errors=None, generation=2, now=later
    )
    assert kept[0]["reason"] == "RefNotFound"


def test_a_repository_not_looked_at_yet_says_its_first_sync_is_on_its_way() -> None:
    (synced,) = repository_conditions(None, synced=None, import_errors=None, generation=1, now=NOW)
    assert (synced["status"], synced["reason"]) == ("Unknown", "Syncing")
