"""The JobRun reconcile logic: the Job it plans, the phase and reason its Job and pod give, and the commit a
run of a repository job is pinned to."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobplane.settings import Settings
from jobplane_crds.gitcontract import CREDENTIALS_MOUNT, GitCheckoutFields, SyncContract
from jobplane_crds.podcontract import (
    DATA_DATABASE_FILE,
    DATA_DATABASE_MOUNT,
    DATA_DATABASE_UNAVAILABLE,
    PodContract,
)
from jobplane_crds.runview import RunView
from jobplane_crds.v1alpha1 import JobDefinition, JobQueue, JobRepository, JobRun, JobRunPhase
from jobplane_operator import runs
from jobplane_operator.kube import SecretData
from jobplane_operator.reconcile.collection import finished_at, run_queue_name
from jobplane_operator.reconcile.jobrun import (
    DATA_DATABASE_VOLUME,
    INPUTS_MOUNT,
    LABEL_RUN_UID,
    Refusal,
    RepositorySource,
    admit,
    check_runnable,
    find_definition,
    first_poll_age,
    handled_job,
    image_digest_of,
    indexed_run,
    job_event_matters,
    job_name_for,
    label_value,
    merge_pod_template,
    observe,
    plan_job,
    poll_interval,
    repository_of,
    repository_source,
    run_commit,
    run_event_matters,
    start_expired,
    start_record,
)
from jobplane_operator.runs import DisruptedPods, reconcile_run
from jobplane_operator.settings import OperatorSettings
from tests.builders import job_definition, job_queue, job_run
from tests.unit.operator.test_reconcile_jobrepository import plan as plan_sync
from tests.unit.operator.test_reconcile_jobrepository import repository_secret

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
UID = "6f1f6c2e-3f0a-4d3e-9d7e-1b2c3d4e5f60"
ENV_DATA = PodContract.env_name("run_data")
ENV_DATA_FILE = PodContract.env_name("run_data_file")
ENV_REPO_URL = PodContract.env_name("repo_url")
ENV_REPO_COMMIT = PodContract.env_name("repo_commit")
ENV_REPO_SLUG = PodContract.env_name("repo_slug")
ENV_REPO_CREDENTIALS_DIR = PodContract.env_name("repo_credentials_dir")


def make_run(name: str = "nightly-audit", **spec: Any) -> JobRun:
    return JobRun.of(job_run(name, namespace="ops", metadata={"uid": UID}, **{"job": "audit.Audit", **spec}))


def make_queue(**spec: Any) -> JobQueue:
    return JobQueue.of(job_queue("gpu", namespace="ops", **spec))


def plan(
    run: JobRun | None = None, queue: JobQueue | None = None, sensitive: bool = False, **planned: Any
) -> dict[str, Any]:
    return plan_job(
        run or make_run(data={"site": "ams1"}),
        **{
            "class_path": "audit.Audit",
            "hard_time_limit": 90.5,
            "soft_time_limit": 60,
            "has_sensitive_variables": sensitive,
            "queue": queue,
            "default_image": "localhost/jobplane:dev",
            **planned,
        },
    ).job


def env_of(job: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


# --- names ---


def test_job_name_is_deterministic_a_dns_label_and_tied_to_the_uid() -> None:
    name = job_name_for("Nightly_Audit", UID)
    assert name == job_name_for("Nightly_Audit", UID)
    assert name.startswith("nightly-audit-")
    assert job_name_for("Nightly_Audit", "another-uid") != name
    long = job_name_for("x" * 200, UID)
    assert len(long) <= 63
    assert long[0].isalnum()
    assert long[-1].isalnum()


# --- the planned Job ---


def test_the_job_is_owned_by_the_run_and_never_retried() -> None:
    job = plan()
    owner = job["metadata"]["ownerReferences"][0]
    assert owner == {
        "apiVersion": "jobplane.io/v1alpha1",
        "kind": "JobRun",
        "name": "nightly-audit",
        "uid": UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert job["metadata"]["namespace"] == "ops"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # A disrupted pod (evicted, preempted, its node lost) fails the Job at once, never replaced.
    assert job["spec"]["podFailurePolicy"] == {
        "rules": [{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]}]
    }


def test_the_job_is_labelled_for_run_queue_and_job_and_collected_after_its_ttl() -> None:
    job = plan_job(
        make_run(),
        class_path="inventory.populate_location.PopulateLocation",
        hard_time_limit=60,
        soft_time_limit=30,
        has_sensitive_variables=False,
        queue=None,
        default_image="img",
        queue_name="batch",
        ttl_seconds_after_finished=3600,
    ).job
    labels = job["metadata"]["labels"]
    assert labels["jobplane.io/run"] == "nightly-audit"
    assert labels["jobplane.io/queue"] == "batch"
    assert labels["jobplane.io/job"] == "inventory.populate_location.PopulateLocation"
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    assert "ttlSecondsAfterFinished" not in plan()["spec"]


def test_label_values_are_valid_for_any_text() -> None:
    assert label_value("a" * 80 + ".Job") == "a" * 63
    assert label_value("_x y/z.") == "x-y-z"


def test_the_hard_limit_becomes_active_deadline_seconds_and_the_soft_one_goes_to_the_pod() -> None:
    job = plan()
    assert job["spec"]["activeDeadlineSeconds"] == 91
    assert env_of(job)["JOBPLANE_RUN_SOFT_TIME_LIMIT"] == "60"
    assert env_of(job)["JOBPLANE_RUN_CLASS_PATH"] == "audit.Audit"


def test_pods_run_non_root_with_nothing_extra() -> None:
    pod = plan()["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["jobplane", "run-pod"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["automountServiceAccountToken"] is False
    assert "resources" not in container  # no limits imposed on users' jobs by default


def test_non_sensitive_inputs_go_in_the_environment() -> None:
    job = plan(make_run(data={"site": "ams1"}))
    assert json.loads(env_of(job)[ENV_DATA]) == {"site": "ams1"}
    assert ENV_DATA_FILE not in env_of(job)


def test_sensitive_inputs_only_travel_as_a_secret_file() -> None:
    planned = plan_job(
        make_run(inputsSecretRef="audit-inputs"),
        class_path="audit.Audit",
        hard_time_limit=600,
        soft_time_limit=300,
        has_sensitive_variables=True,
        queue=None,
        default_image="img",
    )
    job = planned.job
    assert ENV_DATA not in env_of(job)
    assert env_of(job)[ENV_DATA_FILE] == f"{INPUTS_MOUNT}/data.json"
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["inputs"]["secret"]["secretName"] == planned.inputs_secret == "audit-inputs"


def test_a_sensitive_job_without_a_secret_gets_no_inputs_even_if_spec_data_has_some() -> None:
    job = plan(make_run(data={"password": "hunter2"}), sensitive=True)
    assert json.loads(env_of(job)[ENV_DATA]) == {}
    assert "hunter2" not in json.dumps(job)


def test_the_queue_places_the_pod_on_its_pool_with_its_defaults() -> None:
    queue = make_queue(
        nodeSelector={"pool": "gpu"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        resources={"limits": {"memory": "64Mi", "nvidia.com/gpu": 1}},
        image="localhost/jobplane-gpu:1",
        serviceAccountName="gpu-jobs",
        priorityClassName="batch-low",
        podTemplate={
            "spec": {
                "hostNetwork": True,
                "containers": [
                    {"name": "job", "env": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}]}
                ],
            }
        },
    )
    pod = plan(queue=queue)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["serviceAccountName"] == "gpu-jobs"
    assert pod["priorityClassName"] == "batch-low"
    assert pod["hostNetwork"] is True
    container = pod["containers"][0]
    assert container["image"] == "localhost/jobplane-gpu:1"
    assert container["resources"] == {"limits": {"memory": "64Mi", "nvidia.com/gpu": 1}}
    names = [e["name"] for e in container["env"]]
    assert "HTTPS_PROXY" in names
    assert "JOBPLANE_RUN_CLASS_PATH" in names  # merged by name, not replaced


def test_merge_pod_template_merges_maps_and_named_lists_and_replaces_the_rest() -> None:
    base = {"spec": {"volumes": [{"name": "tmp", "emptyDir": {}}], "args": ["a"], "x": {"y": 1}}}
    overlay = {"spec": {"volumes": [{"name": "certs", "secret": {}}], "args": ["b"], "x": {"z": 2}}}
    merged = merge_pod_template(base, overlay)
    assert [v["name"] for v in merged["spec"]["volumes"]] == ["tmp", "certs"]
    assert merged["spec"]["args"] == ["b"]
    assert merged["spec"]["x"] == {"y": 1, "z": 2}
    assert base["spec"]["args"] == ["a"]  # inputs are not modified


def test_the_job_carries_what_the_runs_first_status_records() -> None:
    source = RepositorySource(url="https://git.example.com/netops.git", commit="c" * 40, slug="netops")
    job = plan(make_run(), class_path="netops.jobs.audit.Audit", queue_name="batch", repository=source)
    assert job["metadata"]["annotations"] == {
        "jobplane.io/class-path": "netops.jobs.audit.Audit",
        "jobplane.io/queue": "batch",
        "jobplane.io/commit": "c" * 40,
        "jobplane.io/attempt": "1",
    }
    assert "annotations" not in job["spec"]["template"]["metadata"]  # the Job's, not its pod's
    assert start_record(job) == {
        "classPath": "netops.jobs.audit.Audit",
        "queue": "batch",
        "commit": "c" * 40,
        "attempt": 1,
    }
    image_job = plan()
    assert start_record(image_job) == {
        "classPath": "audit.Audit",
        "queue": "default",
        "commit": None,
        "attempt": 1,
    }
    # A Job made before these were recorded: nothing, and the status keeps what it has.
    assert set(start_record({"metadata": {"name": "j"}}).values()) == {None}


def test_a_run_that_was_never_stored_cannot_be_planned() -> None:
    unsaved = JobRun.of(job_run("x", job="a.B"))
    with pytest.raises(ValueError, match="stored JobRun"):
        plan(unsaved)


# --- observing the outcome ---


def ts(delta: timedelta = timedelta(0)) -> str:
    return (NOW + delta).isoformat().replace("+00:00", "Z")


def job_with(condition: str | None = None, reason: str = "") -> dict[str, Any]:
    conditions = [{"type": condition, "status": "True", "reason": reason}] if condition else []
    return {"metadata": {"name": "j"}, "status": {"conditions": conditions}}


def pod_with(
    *,
    phase: str = "Running",
    terminated: dict[str, Any] | None = None,
    waiting: dict[str, Any] | None = None,
    created: timedelta = timedelta(seconds=-5),
    **status: Any,
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if terminated is not None:
        state["terminated"] = terminated
    if waiting is not None:
        state["waiting"] = waiting
    return {
        "metadata": {"name": "j-abcde", "creationTimestamp": ts(created)},
        "status": {"phase": phase, "containerStatuses": [{"name": "job", "state": state}], **status},
    }


def look(job: dict[str, Any], *pods: dict[str, Any]) -> Any:
    return observe(job, list(pods), now=NOW, pending_timeout=timedelta(seconds=10))


def test_completed_job_succeeds_with_the_pods_summary() -> None:
    summary = {"status": "SUCCESS", "result": '{"ok": true}'}
    seen = look(
        job_with("Complete"),
        pod_with(
            phase="Succeeded", terminated={"exitCode": 0, "message": json.dumps(summary)}, startTime=ts()
        ),
    )
    assert (seen.phase, seen.reason, seen.summary) == (JobRunPhase.SUCCEEDED, "Completed", summary)
    assert seen.start_time == ts()  # known even when no event showed the pod Running


def test_job_failure_reasons_are_precise() -> None:
    job_failed = {"status": "FAILURE", "error": "KeyError: 'x'"}
    cases = [
        (
            job_with("Failed", "DeadlineExceeded"),
            pod_with(phase="Failed", terminated={"exitCode": 137}),
            "DeadlineExceeded",
        ),
        (
            job_with("Failed", "BackoffLimitExceeded"),
            pod_with(phase="Failed", terminated={"exitCode": 137, "reason": "OOMKilled"}),
            "OOMKilled",
        ),
        (
            job_with("Failed", "BackoffLimitExceeded"),
            pod_with(phase="Failed", terminated={"exitCode": 1, "message": json.dumps(job_failed)}),
            "JobFailed",
        ),
        (
            job_with("Failed", "BackoffLimitExceeded"),
            pod_with(phase="Failed", terminated={"exitCode": 2, "message": "{}"}),
            "InvalidInputs",
        ),
        (
            job_with("Failed", "BackoffLimitExceeded"),
            pod_with(phase="Failed", terminated={"exitCode": 139}),
            "Error",
        ),
        (
            job_with("Failed", "BackoffLimitExceeded"),
            pod_with(phase="Failed", reason="Evicted", message="low on memory"),
            "Evicted",
        ),
        (
            job_with("Failed", "BackoffLimitExceeded"),
            pod_with(
                phase="Failed",
                conditions=[
                    {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager"}
                ],
            ),
            "NodeLost",
        ),
        (job_with("Failed", "BackoffLimitExceeded"), pod_with(phase="Failed"), "PodDeleted"),
    ]
    for job, pod, reason in cases:
        seen = look(job, pod)
        assert (seen.phase, seen.reason) == (JobRunPhase.FAILED, reason), reason
    assert look(job_with("Failed", "BackoffLimitExceeded")).reason == "PodDeleted"
    deleted = pod_with(phase="Failed", terminated={"exitCode": 143, "message": '{"status": "FAILURE"}'})
    deleted["metadata"]["deletionTimestamp"] = ts()
    assert look(job_with("Failed", "BackoffLimitExceeded"), deleted).reason == "PodDeleted"
    assert look(job_with("Failed", "DeadlineExceeded"), deleted).reason == "DeadlineExceeded"
    jobfailed = look(cases[2][0], cases[2][1])
    assert jobfailed.message == "KeyError: 'x'"


def evicted_pod(**status: Any) -> dict[str, Any]:
    """A pod as the Eviction API leaves it (kubectl drain): marked DisruptionTarget, then deleted."""
    pod = pod_with(
        conditions=[
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting",
            }
        ],
        startTime=ts(),
        **status,
    )
    pod["metadata"]["deletionTimestamp"] = ts()
    return pod


def test_an_evicted_pod_ends_its_run_at_once_with_the_evictions_message() -> None:
    # Still terminating, its Job not failed yet: the run ends now, with what the eviction said.
    seen = look(job_with(), evicted_pod())
    assert (seen.phase, seen.reason, seen.message) == (
        JobRunPhase.FAILED,
        "Evicted",
        "Eviction API: evicting",
    )
    assert (seen.pod_name, seen.start_time, seen.stop_job) == ("j-abcde", ts(), False)
    # Terminated and deleted, its Job failed by the pod failure policy: still Evicted, not PodDeleted.
    gone = evicted_pod(phase="Failed", terminated={"exitCode": 143, "message": '{"status": "FAILURE"}'})
    ended = look(job_with("Failed", "PodFailurePolicy"), gone)
    assert (ended.phase, ended.reason, ended.message) == (
        JobRunPhase.FAILED,
        "Evicted",
        "Eviction API: evicting",
    )
    assert ended.summary == {"status": "FAILURE"}


def test_a_disrupted_pod_already_gone_leaves_the_jobs_word_for_it() -> None:
    job = job_with("Failed", "PodFailurePolicy")
    job["status"]["conditions"][0]["message"] = (
        "Pod ops/j-abcde has condition DisruptionTarget matching FailJob rule at index 0"
    )
    seen = look(job)
    assert (seen.phase, seen.reason) == (JobRunPhase.FAILED, "PodDisrupted")
    assert seen.message == job["status"]["conditions"][0]["message"]


def test_each_disruption_reason_names_the_runs_reason() -> None:
    for disruption, reason in [
        ("PreemptionByScheduler", "Preempted"),
        ("DeletionByTaintManager", "NodeLost"),
        ("DeletionByPodGC", "NodeLost"),
        ("TerminationByKubelet", "NodeShutdown"),
    ]:
        condition = {"type": "DisruptionTarget", "status": "True", "reason": disruption, "message": "m"}
        seen = look(job_with(), pod_with(conditions=[condition]))
        assert (seen.phase, seen.reason, seen.message) == (JobRunPhase.FAILED, reason, "m"), disruption
    # A kubelet under memory pressure says Evicted in the pod's status, with its own message.
    pressure = {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet"}
    seen = look(
        job_with(), pod_with(phase="Failed", reason="Evicted", message="low on memory", conditions=[pressure])
    )
    assert (seen.reason, seen.message) == ("Evicted", "low on memory")
    # A condition that is not True, or of no known reason, decides nothing before the Job does.
    for condition in [
        {"type": "DisruptionTarget", "status": "False", "reason": "EvictionByEvictionAPI"},
        {"type": "DisruptionTarget", "status": "True", "reason": "SomethingNew"},
    ]:
        assert look(job_with(), pod_with(conditions=[condition])).phase == JobRunPhase.RUNNING


def test_unschedulable_ends_the_run_after_the_pending_timeout_only() -> None:
    condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}
    early = look(job_with(), pod_with(phase="Pending", created=timedelta(seconds=-3), conditions=[condition]))
    assert (early.phase, early.reason, early.stop_job) == (JobRunPhase.PENDING, "Unschedulable", False)
    late = look(job_with(), pod_with(phase="Pending", created=timedelta(seconds=-30), conditions=[condition]))
    assert (late.phase, late.reason, late.stop_job) == (JobRunPhase.FAILED, "Unschedulable", True)
    assert late.message == "0/3 nodes"


def test_image_pull_failures_end_the_run() -> None:
    backoff = {"reason": "ImagePullBackOff", "message": "not found"}
    assert look(job_with(), pod_with(phase="Pending", waiting=backoff)).phase == JobRunPhase.PENDING
    late = look(job_with(), pod_with(phase="Pending", waiting=backoff, created=timedelta(minutes=-1)))
    assert (late.phase, late.reason, late.stop_job) == (JobRunPhase.FAILED, "ImagePullFailed", True)
    invalid = look(job_with(), pod_with(phase="Pending", waiting={"reason": "InvalidImageName"}))
    assert (invalid.phase, invalid.stop_job) == (JobRunPhase.FAILED, True)


def test_an_image_pull_that_waits_says_the_containers_reason_and_message() -> None:
    backoff = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "registry.example/jobs:9"'}
    seen = look(job_with(), pod_with(phase="Pending", waiting=backoff))
    assert (seen.phase, seen.reason) == (JobRunPhase.PENDING, "ImagePullFailed")
    assert seen.message == 'ImagePullBackOff: Back-off pulling image "registry.example/jobs:9"'


DIGEST = "sha256:" + "ab12" * 16


@pytest.mark.parametrize(
    ("image_id", "digest"),
    [
        (f"docker.io/library/python@{DIGEST}", DIGEST),  # pulled: repository@digest
        (f"localhost/jobplane@{DIGEST}", DIGEST),
        (DIGEST, DIGEST),  # imported locally: the bare digest
        (f"docker-pullable://registry.example/jobs@{DIGEST}", DIGEST),
        ("", None),  # not started yet
        ("registry.example/jobs:9", None),  # a tag is no digest
        ("sha256:short", None),
    ],
)
def test_the_image_digest_is_read_from_the_job_containers_image_id(image_id: str, digest: str | None) -> None:
    pod = pod_with(phase="Succeeded")
    pod["status"]["containerStatuses"][0]["imageID"] = image_id
    assert image_digest_of(pod) == digest


def test_the_digest_is_the_job_containers_never_a_sidecars() -> None:
    pod = pod_with(phase="Running")
    pod["status"]["containerStatuses"].append({"name": "sidecar", "imageID": DIGEST, "state": {}})
    assert image_digest_of(pod) is None
    assert image_digest_of(None) is None


def test_an_observation_carries_the_digest_its_pod_ran() -> None:
    pod = pod_with(phase="Succeeded", terminated={"exitCode": 0, "message": "{}"})
    pod["status"]["containerStatuses"][0]["imageID"] = f"localhost/jobplane@{DIGEST}"
    assert look(job_with("Complete"), pod).image_digest == DIGEST
    assert look(job_with()).image_digest is None  # no pod yet


def test_running_and_waiting_states() -> None:
    running = look(job_with(), pod_with(phase="Running", startTime=ts()))
    assert (running.phase, running.start_time) == (JobRunPhase.RUNNING, ts())
    assert look(job_with()).phase == JobRunPhase.PENDING
    assert look(job_with(), pod_with(phase="Pending")).reason == "PodPending"
    # The pod ended, the Job controller has not caught up: not terminal yet.
    assert look(job_with(), pod_with(phase="Failed", terminated={"exitCode": 1})).phase == JobRunPhase.RUNNING


# --- queue admission ---


def test_admission_without_a_limit_always_starts() -> None:
    assert admit(("t1", "a"), [("t0", "z")], active=[f"a{i}" for i in range(50)], limit=None).start


def test_admission_starts_the_oldest_waiting_runs_first() -> None:
    waiting = [("t1", "r1"), ("t1", "r2"), ("t2", "r3")]
    assert admit(("t1", "r1"), waiting, active=["busy"], limit=2).start
    later = admit(("t1", "r2"), waiting, active=["busy"], limit=2, queue="limited")
    assert (later.start, later.position) == (False, 2)
    assert later.message == (
        "Concurrency limit 2 of queue limited reached: 1 active (busy); position 2, 1 run(s) ahead (r1). "
        "It starts when a slot frees up (or raise the JobQueue's spec.concurrencyLimit)"
    )
    assert admit(("t1", "r2"), waiting, active=[], limit=2).start
    assert not admit(("t2", "r3"), waiting, active=[], limit=2).start


def test_admission_with_a_full_queue_waits_and_a_zero_limit_never_starts() -> None:
    full = admit(("t0", "first"), [], active=["b", "a"], limit=2)
    assert (full.start, full.position) == (False, 1)
    assert "2 active (a, b); position 1, 0 run(s) ahead (none)" in full.message
    assert not admit(("t0", "only"), [], active=[], limit=0).start


def test_a_long_queue_names_the_first_runs_ahead_and_counts_the_rest() -> None:
    waiting = [(f"t{i:02}", f"r{i:02}") for i in range(12)]
    last = admit(("t11", "r11"), waiting, active=["x"], limit=1)
    assert (last.start, last.position) == (False, 12)
    assert "11 run(s) ahead (r00, r01, r02, r03, r04 and 6 more)" in last.message


# --- refusals ---


def definition(enabled: bool = True, installed: bool = True, **code: Any) -> dict[str, Any]:
    return job_definition(
        "audit-abc123",
        enabled=enabled,
        overrides={},
        status={
            "classPath": "audit.Audit",
            "installed": installed,
            "code": {"taskQueues": ["default", "batch"], "hasSensitiveVariables": False, **code},
            "variablesSchema": {
                "type": "object",
                "properties": {"depth": {"type": "integer", "minimum": 0}},
                "additionalProperties": False,
                "required": [],
            },
        },
    )


def model(obj: dict[str, Any]) -> JobDefinition:
    """A definition as the operator's index holds it."""
    return JobDefinition.model_validate(obj)


def status_of(**status: Any) -> RunView:
    """A run with this status, as the operator's index holds it."""
    return RunView({"metadata": {"name": "r"}, "spec": {"job": "noop.Noop"}, "status": status})


def test_definitions_are_found_by_name_or_class_path() -> None:
    found = model(definition())
    assert find_definition("audit-abc123", [found]) is found
    assert find_definition("audit.Audit", [found]) is found
    assert find_definition("other.Job", [found]) is None


@pytest.mark.parametrize(
    ("found", "queue", "exists", "data", "reason"),
    [
        (None, "default", True, {}, "JobNotFound"),
        (definition(enabled=False), "default", True, {}, "JobDisabled"),
        (definition(installed=False), "default", True, {}, "JobNotInstalled"),
        (definition(), "gpu", True, {}, "QueueNotAllowed"),
        (definition(), "batch", False, {}, "QueueNotFound"),
        (definition(), "default", False, {"depth": -1}, "InvalidInputs"),
        (definition(hasSensitiveVariables=True), "default", False, {"depth": 1}, "SensitiveInputsInSpec"),
    ],
)
def test_runs_that_may_not_start_are_refused_with_a_reason(
    found: dict[str, Any] | None, queue: str, exists: bool, data: dict[str, Any], reason: str
) -> None:
    refusal = check_runnable(make_run(data=data), model(found) if found else None, queue, exists)
    assert refusal is not None
    assert refusal.reason == reason


def test_a_runnable_run_is_not_refused_and_overrides_decide_the_queues() -> None:
    assert check_runnable(make_run(data={"depth": 0}), model(definition()), "default", False) is None
    overridden = definition()
    overridden["spec"]["overrides"] = {"taskQueues": ["gpu"]}
    assert check_runnable(make_run(), model(overridden), "gpu", True) is None
    refused = check_runnable(make_run(), model(overridden), "default", False)
    assert refused is not None
    assert refused.reason == "QueueNotAllowed"


# --- which events call for a reconcile ---


def run_obj(cancel: bool = False, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "r"}, "spec": {"job": "noop.Noop", "cancel": cancel}, "status": status}


def test_run_events_reconcile_runs_to_start_or_cancel_and_every_unfinished_run_at_start_up() -> None:
    assert run_event_matters({"metadata": {"name": "r"}, "spec": {}}, listing=False)  # just created
    assert run_event_matters(run_obj(phase="Pending"), listing=False)  # its start failed half-way
    assert not run_event_matters(run_obj(phase="Pending", jobName="j"), listing=False)  # our own write
    assert not run_event_matters(run_obj(phase="Queued"), listing=False)  # the poll starts it
    assert run_event_matters(run_obj(cancel=True, phase="Running", jobName="j"), listing=False)
    assert run_event_matters(run_obj(phase="Running", jobName="j"), listing=True)
    assert run_event_matters(run_obj(phase="Queued"), listing=True)
    for phase in ("Succeeded", "Failed", "Cancelled"):
        assert not run_event_matters(run_obj(cancel=True, phase=phase), listing=True)


# A stored run's metadata, less its annotations and managed fields (stored_run adds those).
STORED_METADATA = {
    "name": "r",
    "namespace": "ops",
    "uid": UID,
    "resourceVersion": "7",
    "generation": 1,
    "creationTimestamp": "2026-11-25T11:00:00Z",
    "labels": {"jobplane.io/schedule": "nightly"},
}


def stored_run(**status: Any) -> dict[str, Any]:
    """A JobRun as the apiserver hands it out: with its managed fields and kubectl's annotation."""
    manifest = {"spec": {"job": "noop.Noop", "data": {"site": "x" * 500}, "queue": "batch"}}
    return {
        "apiVersion": "jobplane.io/v1alpha1",
        "kind": "JobRun",
        "metadata": {
            **STORED_METADATA,
            "labels": dict(STORED_METADATA["labels"]),  # type: ignore[call-overload]
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps(manifest),
                "jobplane.io/scheduled-at": "2026-11-25T11:00:00Z",
            },
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:data": {}}}}],
        },
        "spec": manifest["spec"],
        "status": status,
    }


def test_the_index_keeps_an_unfinished_run_whole_but_for_what_nothing_reads() -> None:
    obj = stored_run(phase="Running", jobName="j", reason="PodRunning", conditions=[{"type": "Accepted"}])
    kept = indexed_run(obj)
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["annotations"] == {"jobplane.io/scheduled-at": "2026-11-25T11:00:00Z"}
    assert {key: value for key, value in kept.items() if key != "metadata"} == {
        key: value for key, value in obj.items() if key != "metadata"
    }
    obj["status"]["phase"] = "Succeeded"
    obj["metadata"]["labels"]["x"] = "y"
    assert kept["status"]["phase"] == "Running"  # a copy: kopf's body changes under it
    assert "x" not in kept["metadata"]["labels"]
    assert indexed_run({"metadata": {"name": "new"}, "spec": {"job": "noop.Noop"}}) == {
        "metadata": {"name": "new"},
        "spec": {"job": "noop.Noop"},
    }


def test_the_index_keeps_of_a_finished_run_what_its_collection_reads() -> None:
    result = {"status": "SUCCESS", "result": "r" * 2048}
    conditions = [
        {"type": "Accepted", "status": "True"},
        {"type": "Finished", "status": "True", "lastTransitionTime": "2026-11-25T11:05:00Z"},
    ]
    ended = {"phase": "Succeeded", "reason": "Completed", "queue": "batch", "jobName": "j", "result": result}
    obj = stored_run(**ended, completionTime="2026-11-25T11:04:00Z", conditions=conditions)
    kept = indexed_run(obj)
    assert kept == {
        "apiVersion": "jobplane.io/v1alpha1",
        "kind": "JobRun",
        "metadata": STORED_METADATA,  # no managed fields, no annotations
        "spec": {"job": "noop.Noop", "queue": "batch"},
        "status": {
            "phase": "Succeeded",
            "reason": "Completed",
            "queue": "batch",
            "jobName": "j",
            "completionTime": "2026-11-25T11:04:00Z",
        },
    }
    for read in (finished_at, run_queue_name):
        assert read(kept) == read(obj)
    assert poll_interval(RunView(kept), queued=1, pending=1, running=1) is None
    assert not run_event_matters(kept, listing=True)
    JobRun.model_validate(kept)  # still a JobRun, should anything validate it
    # Without a completionTime (written by something else), the Finished condition dates its end.
    untimed = indexed_run(stored_run(**ended, conditions=conditions))
    assert untimed["status"]["conditions"] == [conditions[1]]
    assert finished_at(untimed) == datetime(2026, 11, 25, 11, 5, tzinfo=UTC)


def test_a_job_event_hands_on_the_job_less_its_template_and_managed_fields() -> None:
    planned = plan()
    job = {
        **planned,
        "metadata": {
            **planned["metadata"],
            "uid": "job-uid",
            "creationTimestamp": ts(timedelta(seconds=-30)),
            "managedFields": [{"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}}],
        },
        "status": {"active": 1, "ready": 1, "startTime": ts(timedelta(seconds=-20))},
    }
    handed = handled_job(job)
    assert "managedFields" not in handed["metadata"]
    assert "template" not in handed["spec"]
    assert "template" in job["spec"]
    assert handed["spec"] == {k: v for k, v in job["spec"].items() if k != "template"}
    assert handed["status"] == job["status"]
    assert handed["metadata"] == {k: v for k, v in job["metadata"].items() if k != "managedFields"}
    # What the decisions read of a Job reads the same of what is handed on.
    running = status_of(phase="Pending", jobName=job["metadata"]["name"])
    assert job_event_matters(handed, running) == job_event_matters(job, running)
    pods = [pod_with(phase="Running")]
    kwargs = {"now": NOW, "pending_timeout": timedelta(minutes=5)}
    assert observe(handed, pods, **kwargs) == observe(job, pods, **kwargs)
    assert start_record(handed) == start_record(job)
    # A copy: kopf's body may change under it.
    job["status"]["active"] = 0
    job["metadata"]["labels"]["x"] = "y"
    assert handed["status"]["active"] == 1
    assert "x" not in handed["metadata"]["labels"]


def job_counts(**counts: int) -> dict[str, Any]:
    return {"metadata": {"name": "j"}, "status": counts}


def test_job_events_matter_when_the_pod_starts_running_or_the_job_ends() -> None:
    pending = status_of(phase="Pending", jobName="j")
    running = status_of(phase="Running", jobName="j", podName="j-abcde")
    assert not job_event_matters(job_counts(), pending)  # just created
    assert not job_event_matters(job_counts(), status_of())  # the status naming the Job is on its way
    assert not job_event_matters(job_counts(active=1), pending)  # its pod waits: the pending poll
    assert job_event_matters(job_counts(active=1, ready=1), pending)
    assert not job_event_matters(job_counts(active=1, ready=1), running)
    assert job_event_matters(job_counts(active=1), running)  # its pod is finishing
    assert job_event_matters(job_counts(), running)
    assert job_event_matters(job_counts(succeeded=1), running)
    assert job_event_matters(job_counts(failed=1), pending)
    assert job_event_matters(job_with("Failed", "DeadlineExceeded"), pending)
    assert job_event_matters(job_with("Complete"), running)
    assert job_event_matters(None, running)  # the Job is gone
    deleting = job_counts(active=1, ready=1)
    deleting["metadata"]["deletionTimestamp"] = ts()
    assert job_event_matters(deleting, running)


def test_a_new_run_starts_and_the_start_up_listing_adopts_one_started_without_a_status() -> None:
    new = {"metadata": {"name": "r"}, "spec": {"job": "noop.Noop"}}
    assert run_event_matters(new, listing=False)
    # Its Job may exist (a run of an unlimited queue gets its first status from its Job): the listing of a
    # new process hands it over all the same, and starting it finds the Job (no second one).
    assert run_event_matters(new, listing=True)


def test_job_events_of_a_run_with_no_status_yet_matter_once_its_pod_is_ready_or_its_job_ends() -> None:
    no_status = RunView({"metadata": {"name": "r"}, "spec": {"job": "noop.Noop"}})
    assert not job_event_matters({"metadata": {"name": "j"}}, no_status)  # ADDED: no Job status yet
    assert not job_event_matters(job_counts(), no_status)
    assert not job_event_matters(job_counts(active=1), no_status)  # its pod waits: the pending poll's
    assert job_event_matters(job_counts(active=1, ready=1), no_status)
    assert job_event_matters(job_counts(succeeded=1), no_status)  # ended before an event showed it ready
    assert job_event_matters(job_counts(failed=1), no_status)
    for ended in ("Complete", "SuccessCriteriaMet", "Failed", "FailureTarget"):
        assert job_event_matters(job_with(ended), no_status), ended
    assert job_event_matters(None, no_status)  # deleted
    deleting = job_counts(active=1)
    deleting["metadata"]["deletionTimestamp"] = ts()
    assert job_event_matters(deleting, no_status)


def test_a_run_with_no_phase_is_polled_as_pending_counted_from_its_creation() -> None:
    assert poll_interval(status_of(), queued=1, pending=2, running=3) == 2

    def age(created: str | None, began: timedelta) -> float:
        obj = {"metadata": {"creationTimestamp": created} if created else {}}
        return first_poll_age(RunView(obj), now=NOW, began=NOW - began)

    # Seen a few seconds after its creation: counted from the creation, so due within the pending interval.
    assert age(ts(timedelta(seconds=-4)), began=timedelta(hours=1)) == 4
    # Created before this process started: its listing handed the run over, the clock starts then.
    assert age(ts(timedelta(hours=-2)), began=timedelta(seconds=30)) == 30
    assert age(None, began=timedelta(hours=1)) == 0
    assert age(ts(timedelta(seconds=5)), began=timedelta(hours=1)) == 0  # a clock behind the API's


def test_runs_are_polled_by_phase_and_ended_runs_never() -> None:
    def interval(**status: Any) -> float | None:
        return poll_interval(status_of(**status), queued=1, pending=2, running=3)

    assert interval(phase="Queued") == 1
    assert interval() == interval(phase="Pending") == 2
    assert interval(phase="Running") == 3
    assert interval(phase="Succeeded") is None
    assert interval(phase="Cancelled") is None


# --- jobs from a repository: the pod fetches the pinned commit ---

COMMIT = "c" * 40
NEWER = "d" * 40


def repository_job(commit: str = COMMIT, repository: str = "netops") -> dict[str, Any]:
    found = definition()
    found["status"]["classPath"] = "netops.jobs.audit.Audit"
    found["status"]["source"] = {"type": "repository", "repository": repository, "commit": commit}
    return found


def repository_obj(secret: str | None = "git-creds") -> dict[str, Any]:
    spec: dict[str, Any] = {"url": "https://git.example.com/netops.git", "slug": "netops"}
    if secret:
        spec["credentialsSecretRef"] = secret
    return {"metadata": {"name": "netops", "namespace": "ops"}, "spec": spec}


def test_image_jobs_have_no_repository_and_no_commit() -> None:
    assert repository_of(model(definition())) is None
    assert run_commit(model(definition()), None) is None
    assert repository_source(model(definition()), None, pinned_commit=None) is None


def test_a_run_uses_its_pinned_commit_else_the_definitions() -> None:
    found = model(repository_job(commit=NEWER))
    assert repository_of(found) == "netops"
    assert run_commit(found, None) == NEWER
    assert run_commit(found, COMMIT) == COMMIT
    repository = JobRepository.model_validate(repository_obj())
    source = repository_source(found, repository, pinned_commit=COMMIT, max_bytes=1024)
    assert source == RepositorySource(
        url="https://git.example.com/netops.git",
        commit=COMMIT,
        slug="netops",
        credentials_secret_ref="git-creds",
        max_bytes=1024,
    )


def test_a_repository_job_whose_repository_is_gone_is_refused() -> None:
    refusal = repository_source(model(repository_job()), None, pinned_commit=None)
    assert isinstance(refusal, Refusal)
    assert refusal.reason == "RepositoryNotFound"
    assert "netops" in refusal.message


def plan_repository_job(source: RepositorySource) -> dict[str, Any]:
    return plan_job(
        make_run(),
        class_path="netops.jobs.audit.Audit",
        hard_time_limit=60,
        soft_time_limit=30,
        has_sensitive_variables=False,
        queue=None,
        default_image="img",
        repository=source,
    ).job


def test_the_pod_of_a_repository_job_gets_the_commit_to_fetch() -> None:
    job = plan_repository_job(
        RepositorySource(url="https://git.example.com/netops.git", commit=COMMIT, slug="netops")
    )
    env = env_of(job)
    assert env[ENV_REPO_URL] == "https://git.example.com/netops.git"
    assert env[ENV_REPO_COMMIT] == COMMIT
    assert env[ENV_REPO_SLUG] == "netops"
    assert ENV_REPO_CREDENTIALS_DIR not in env
    pod = job["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert "fsGroup" not in pod["securityContext"]
    assert "jobplane.io/repository" not in job["metadata"]["labels"]  # its events are a run's, not a sync's


def test_git_credentials_reach_a_run_pod_only_as_a_mounted_secret() -> None:
    source = RepositorySource(
        url="https://git.example.com/netops.git",
        commit=COMMIT,
        slug="netops",
        credentials_secret_ref="git-creds",
        max_bytes=2048,
    )
    job = plan_repository_job(source)
    pod = job["spec"]["template"]["spec"]
    env = env_of(job)
    assert env[ENV_REPO_CREDENTIALS_DIR] == CREDENTIALS_MOUNT
    assert env["JOBPLANE_GIT_MAX_BYTES"] == "2048"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["git-credentials"]["secret"] == {"secretName": "git-creds", "defaultMode": 0o400}
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["git-credentials"] == {
        "name": "git-credentials",
        "mountPath": CREDENTIALS_MOUNT,
        "readOnly": True,
    }
    assert pod["securityContext"]["fsGroup"] == 10001


# --- runs.py: the commit is recorded at the first status write and kept ---


class FakeCatalog:
    """Indexes as the operator holds them (each object parsed into its model): one repository job, its
    repository, optional queues. The objects as stored are what FakeClients answers with."""

    def __init__(
        self, found: dict[str, Any], repository: dict[str, Any] | None, queues: dict[str, Any]
    ) -> None:
        self.found, self.repo, self.queues = found, repository, queues
        self.repository_lookups = 0

    def stored_repository(self, name: str) -> dict[str, Any] | None:
        self.repository_lookups += 1
        return self.repo if self.repo and name == self.repo["metadata"]["name"] else None

    def definitions(self, namespace: str) -> list[JobDefinition]:
        return [JobDefinition.model_validate(self.found)]

    def queue(self, namespace: str, name: str) -> JobQueue | None:
        found = self.queues.get(name)
        return JobQueue.model_validate(found) if found is not None else None

    def repository(self, namespace: str, name: str) -> JobRepository | None:
        found = self.stored_repository(name)
        return JobRepository.model_validate(found) if found is not None else None

    def repositories(self, namespace: str) -> list[JobRepository]:
        return [JobRepository.model_validate(self.repo)] if self.repo else []


class FakeClients:
    """The calls reconcile_run makes to start and observe a run; a fresh catalog reads the same objects.

    Jobs are kept by name, as the API would: creating one that exists answers False (a 409).
    """

    def __init__(self, catalog: FakeCatalog, active: int = 0) -> None:
        self.catalog = catalog
        self.active = active
        self.jobs: list[dict[str, Any]] = []  # every Job created, in order
        self.existing: dict[str, dict[str, Any]] = {}
        self.pods: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.calls: list[str] = []
        # The repository's credentials, scoped to it (repository_obj's URL).
        self.secrets: dict[str, SecretData] = {"git-creds": repository_secret("https://git.example.com/")}

    def get_secret_data(self, namespace: str, name: str) -> SecretData | None:
        self.calls.append("get_secret_data")
        return self.secrets.get(name)

    def list_job_definitions(self, namespace: str) -> list[dict[str, Any]]:
        self.calls.append("list_job_definitions")
        return [self.catalog.found]

    def get_job_queue(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append("get_job_queue")
        return self.catalog.queues.get(name)

    def get_job_repository(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append("get_job_repository")
        return self.catalog.stored_repository(name)

    def unfinished_job_runs(self, namespace: str, selector: str) -> list[str]:
        self.calls.append("unfinished_job_runs")
        return [f"active-{i}" for i in range(1, self.active + 1)]

    def list_runs(self, namespace: str) -> list[dict[str, Any]]:
        self.calls.append("list_runs")
        return []

    def create_job(self, namespace: str, body: dict[str, Any]) -> bool:
        self.calls.append("create_job")
        name = body["metadata"]["name"]
        if name in self.existing:
            return False
        self.jobs.append(body)
        self.existing[name] = body
        return True

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append("get_job")
        return self.existing.get(name)

    def delete_job(self, namespace: str, name: str) -> None:
        self.calls.append("delete_job")
        self.existing.pop(name, None)

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.calls.append("list_pods")
        return self.pods

    def patch_run_status(self, namespace: str, name: str, status: dict[str, Any], rv: str | None) -> bool:
        self.calls.append("patch_run_status")
        self.statuses.append(status)
        return True


def run_obj_of(job: str, **status: Any) -> dict[str, Any]:
    return job_run(
        "r1",
        namespace="ops",
        metadata={"uid": UID, "generation": 1, "resourceVersion": "1"},
        job=job,
        data={},
        status=status or None,
    )


def start(
    catalog: FakeCatalog, obj: dict[str, Any], active: int = 0, existing_job: str | None = None
) -> FakeClients:
    clients = FakeClients(catalog, active)
    if existing_job:
        clients.existing[existing_job] = {"metadata": {"name": existing_job}}
    reconcile_run(clients, obj, OperatorSettings(), Settings(), catalog)  # type: ignore[arg-type]
    return clients


def again(
    clients: FakeClients,
    obj: dict[str, Any],
    job: dict[str, Any] | None = None,
    deleted_job: str | None = None,
) -> None:
    """Another pass over the same run: a poll, or (``job``, ``deleted_job``) an event of its Job."""
    reconcile_run(
        clients,  # type: ignore[arg-type]
        obj,
        OperatorSettings(),
        Settings(),
        clients.catalog,  # type: ignore[arg-type]
        job=job,
        deleted_job=deleted_job,
    )


def ready(job: dict[str, Any]) -> dict[str, Any]:
    """The Job as its event shows it once its pod is ready."""
    return {**job, "status": {"active": 1, "ready": 1}}


RUNNING_POD = pod_with(phase="Running", startTime=ts())
RUNNING_POD["metadata"]["labels"] = {"jobplane.io/run-uid": UID}


def test_a_started_run_records_the_definitions_commit_and_its_pod_fetches_it() -> None:
    catalog = FakeCatalog(repository_job(), repository_obj(), {})
    obj = run_obj_of("netops.jobs.audit.Audit")
    clients = start(catalog, obj)
    (job,) = clients.jobs
    assert env_of(job)[ENV_REPO_COMMIT] == COMMIT
    assert catalog.repository_lookups == 1  # from the index: no API call
    # An unlimited queue: one write to start the run, the Job; what the status would have said rides on it.
    # One read: the repository's credentials Secret, checked to be scoped to it before it is mounted.
    assert clients.calls == ["get_secret_data", "create_job"]
    assert clients.statuses == []
    assert start_record(job) == {
        "classPath": "netops.jobs.audit.Audit",
        "queue": "default",
        "commit": COMMIT,
        "attempt": 1,
    }
    # The first status write, from the Job's event once its pod is ready, records it all.
    clients.pods = [RUNNING_POD]
    again(clients, obj, job=ready(job))
    (status,) = clients.statuses
    assert (status["phase"], status["jobName"]) == ("Running", job["metadata"]["name"])
    assert (status["classPath"], status["queue"], status["commit"], status["attempt"]) == (
        "netops.jobs.audit.Audit",
        "default",
        COMMIT,
        1,
    )


class ReportingClients(FakeClients):
    """Also creates the run-token Secret of pods that report to the API."""

    def create_secret(self, namespace: str, body: dict[str, Any]) -> None:
        self.calls.append("create_secret")


@pytest.mark.parametrize("job", ["audit.Audit", "netops.jobs.audit.Audit"])
def test_when_pods_report_to_the_api_the_run_starts_with_its_token_and_job_and_no_status_write(
    job: str,
) -> None:
    # The pod's own report may reach the API before the run's first status: the API's mirror fills the
    # class path, queue and commit in from that status later (tests/unit/api), so nothing waits on it.
    found = repository_job() if job.startswith("netops") else definition()
    catalog = FakeCatalog(found, repository_obj(), {})
    clients = ReportingClients(catalog)
    settings = OperatorSettings(api_url="http://api.jobplane:8080", run_token_key="k" * 32)
    reconcile_run(clients, run_obj_of(job), settings, Settings(), catalog)  # type: ignore[arg-type]
    (created,) = clients.jobs
    credentials = ["get_secret_data"] if job.startswith("netops") else []  # checked to be scoped
    assert clients.calls == [*credentials, "create_secret", "create_job"]
    assert clients.statuses == []
    commit = COMMIT if job.startswith("netops") else None
    assert start_record(created) == {"classPath": job, "queue": "default", "commit": commit, "attempt": 1}


def test_a_repository_run_started_without_a_status_gets_its_commit_from_its_job() -> None:
    catalog = FakeCatalog(repository_job(), repository_obj(), {})
    obj = run_obj_of("netops.jobs.audit.Audit")
    clients = start(catalog, obj)
    assert clients.statuses == []
    # A push meanwhile: the definition moves on, the Job (and its pod) keep the commit the run was started on.
    catalog.found = repository_job(commit=NEWER)
    clients.pods = [RUNNING_POD]
    again(clients, obj)  # the new process's listing
    assert len(clients.jobs) == 1
    (status,) = clients.statuses
    assert (status["phase"], status["commit"], status["classPath"]) == (
        "Running",
        COMMIT,
        "netops.jobs.audit.Audit",
    )


def test_a_queued_run_records_its_commit_and_starts_on_it_after_a_push() -> None:
    full = job_queue("default", concurrencyLimit=1)
    catalog = FakeCatalog(repository_job(), repository_obj(), {"default": full})
    clients = start(catalog, run_obj_of("netops.jobs.audit.Audit"), active=1)
    (queued,) = clients.statuses
    assert (queued["phase"], queued["commit"]) == ("Queued", COMMIT)
    # A push moves the definition on; the slot frees up; the run still runs what was asked for.
    catalog.found = repository_job(commit=NEWER)
    clients = start(catalog, run_obj_of("netops.jobs.audit.Audit", **queued), active=0)
    # A limited queue writes the status naming the Job under its lock: the next count sees it started.
    (started,) = clients.statuses
    (job,) = clients.jobs
    assert (started["phase"], started["reason"], started["commit"]) == ("Pending", "JobCreated", COMMIT)
    assert (started["jobName"], started["classPath"], started["attempt"]) == (
        job["metadata"]["name"],
        "netops.jobs.audit.Audit",
        1,
    )
    assert env_of(job)[ENV_REPO_COMMIT] == COMMIT
    assert start_record(job)["commit"] == COMMIT


def conditions_of(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_a_queued_run_says_why_it_waits_naming_the_active_runs_then_that_it_no_longer_does() -> None:
    limited = job_queue("default", concurrencyLimit=1)
    catalog = FakeCatalog(definition(), None, {"default": limited})
    clients = start(catalog, run_obj_of("audit.Audit"), active=1)
    (queued,) = clients.statuses
    waiting = conditions_of(queued)["Waiting"]
    assert (waiting["status"], waiting["reason"]) == ("True", "QueueConcurrencyLimit")
    assert waiting["message"] == queued["message"]
    assert (
        "Concurrency limit 1 of queue default reached: 1 active (active-1); position 1" in waiting["message"]
    )
    assert queued["queuePosition"] == 1
    # The slot frees up: the run starts, and its Waiting condition says it no longer waits.
    clients = start(catalog, run_obj_of("audit.Audit", **queued), active=0)
    (started,) = clients.statuses
    over = conditions_of(started)["Waiting"]
    assert (over["status"], over["reason"]) == ("False", "JobCreated")
    assert "queuePosition" not in started


def test_a_finished_run_records_the_image_digest_its_pod_ran() -> None:
    obj = run_obj_of("audit.Audit")
    clients = start(FakeCatalog(definition(), None, {}), obj)
    (job,) = clients.jobs
    pod = pod_with(phase="Succeeded", terminated={"exitCode": 0, "message": '{"status": "SUCCESS"}'})
    pod["status"]["containerStatuses"][0]["imageID"] = f"localhost/jobplane@{DIGEST}"
    clients.pods = [pod]
    again(clients, obj, job={**job, "status": {"succeeded": 1, "conditions": [
        {"type": "Complete", "status": "True"}
    ]}})  # fmt: skip
    (status,) = clients.statuses
    assert (status["phase"], status["imageDigest"]) == ("Succeeded", DIGEST)
    assert "Waiting" not in conditions_of(status)  # it never waited


def test_a_refused_repository_run_records_the_commit_and_why() -> None:
    catalog = FakeCatalog(repository_job(), None, {})
    clients = start(catalog, run_obj_of("netops.jobs.audit.Audit"))
    (status,) = clients.statuses
    assert (status["phase"], status["reason"], status["commit"]) == ("Failed", "RepositoryNotFound", COMMIT)
    assert clients.jobs == []
    disabled = repository_job()
    disabled["spec"]["enabled"] = False
    clients = start(FakeCatalog(disabled, repository_obj(), {}), run_obj_of("netops.jobs.audit.Audit"))
    (status,) = clients.statuses
    assert (status["reason"], status["commit"]) == ("JobDisabled", COMMIT)


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (repository_secret("https://git.example.com/", labels={}), "CredentialsNotScoped"),  # no label
        (repository_secret(None), "CredentialsNotScoped"),  # no url key
        (repository_secret("https://git.example.com/netops-evil"), "CredentialsNotScoped"),
        (repository_secret("https://evil.example.net/"), "CredentialsNotScoped"),
        (None, "SecretNotFound"),
    ],
)
def test_a_repository_run_whose_credentials_are_not_scoped_fails_without_mounting_them(
    secret: SecretData | None, reason: str
) -> None:
    catalog = FakeCatalog(repository_job(), repository_obj(), {})
    clients = FakeClients(catalog)
    clients.secrets = {"git-creds": secret} if secret is not None else {}
    reconcile_run(clients, run_obj_of("netops.jobs.audit.Audit"), OperatorSettings(), Settings(), catalog)  # type: ignore[arg-type]
    assert clients.jobs == []
    (status,) = clients.statuses
    assert (status["phase"], status["reason"], status["commit"]) == ("Failed", reason, COMMIT)
    message = {c["type"]: c for c in status["conditions"]}["Accepted"]["message"]
    assert "JobRepository 'netops'" in message
    assert "'git-creds'" in message
    assert "hunter2" not in json.dumps(status)


def test_a_repository_run_without_credentials_reads_no_secret() -> None:
    catalog = FakeCatalog(repository_job(), repository_obj(secret=None), {})
    clients = start(catalog, run_obj_of("netops.jobs.audit.Audit"))
    (job,) = clients.jobs
    assert clients.calls == ["create_job"]
    assert "git-credentials" not in {v["name"] for v in job["spec"]["template"]["spec"]["volumes"]}


def test_an_image_run_of_an_unlimited_queue_is_started_with_one_write_and_records_no_commit() -> None:
    obj = run_obj_of("audit.Audit")
    clients = start(FakeCatalog(definition(), None, {}), obj)
    (job,) = clients.jobs
    # One write to start the run, its Job; what the status would have said rides on the Job.
    assert clients.calls == ["create_job"]
    assert clients.statuses == []
    assert start_record(job) == {"classPath": "audit.Audit", "queue": "default", "commit": None, "attempt": 1}
    # The first status write, from the Job's event once its pod is ready, records it all.
    clients.pods = [RUNNING_POD]
    again(clients, obj, job=ready(job))
    assert clients.calls == ["create_job", "list_pods", "patch_run_status"]  # the event spared the read
    (status,) = clients.statuses
    assert (status["phase"], status["jobName"]) == ("Running", job["metadata"]["name"])
    assert (status["classPath"], status["queue"], status["attempt"]) == ("audit.Audit", "default", 1)
    assert "commit" not in status
    assert {c["type"]: c["reason"] for c in status["conditions"]}["Accepted"] == "JobCreated"
    assert len(clients.jobs) == 1


# --- runs.py: a run whose Job exists but whose status does not say so yet ---


def started_image_run() -> tuple[FakeClients, dict[str, Any], dict[str, Any]]:
    """A run of an unlimited queue just after its start: its Job exists, its status is not written."""
    obj = run_obj_of("audit.Audit")
    clients = start(FakeCatalog(definition(), None, {}), obj)
    (job,) = clients.jobs
    clients.calls.clear()
    return clients, obj, job


def test_the_poll_loop_reads_the_job_of_a_run_without_status_rather_than_creating_it_again() -> None:
    clients, obj, job = started_image_run()
    reconcile_run(clients, obj, OperatorSettings(), Settings(), clients.catalog, polled=True)  # type: ignore[arg-type]
    # No create refused as existing (a Job's whole admission in the apiserver): a read, then the pods.
    assert clients.calls == ["get_job", "list_pods", "patch_run_status"]
    assert len(clients.jobs) == 1
    (status,) = clients.statuses
    assert (status["phase"], status["reason"], status["jobName"]) == (
        "Pending",
        "JobCreated",
        job["metadata"]["name"],
    )


def test_the_poll_loop_starts_a_run_without_status_whose_job_does_not_exist() -> None:
    obj = run_obj_of("audit.Audit")
    clients = FakeClients(FakeCatalog(definition(), None, {}))
    reconcile_run(clients, obj, OperatorSettings(), Settings(), clients.catalog, polled=True)  # type: ignore[arg-type]
    assert clients.calls == ["get_job", "create_job"]  # e.g. its event's start failed
    assert len(clients.jobs) == 1


def test_a_poll_of_a_run_whose_job_exists_observes_it_rather_than_starting_it_again() -> None:
    clients, obj, job = started_image_run()
    again(clients, obj)  # a second look that is not the poll loop's: its pod never got ready
    assert len(clients.jobs) == 1  # create_job found it there (a 409)
    assert clients.calls == ["create_job", "get_job", "list_pods", "patch_run_status"]
    (status,) = clients.statuses
    assert (status["phase"], status["reason"], status["jobName"]) == (
        "Pending",
        "JobCreated",
        job["metadata"]["name"],
    )
    assert (status["classPath"], status["queue"], status["attempt"]) == ("audit.Audit", "default", 1)
    # Now it names its Job: the next poll observes it without going near admission.
    clients.calls.clear()
    again(clients, run_obj_of("audit.Audit", **status))
    assert clients.calls == ["get_job", "list_pods"]  # nothing changed, nothing written


def test_after_a_restart_a_run_whose_job_exists_gets_no_second_job_and_is_followed() -> None:
    clients, obj, job = started_image_run()
    # The new process's listing hands the run over (its status still empty), its pod now runs.
    clients.pods = [RUNNING_POD]
    again(clients, obj)
    assert len(clients.jobs) == 1
    (status,) = clients.statuses
    assert (status["phase"], status["jobName"], status["classPath"]) == (
        "Running",
        job["metadata"]["name"],
        "audit.Audit",
    )


def test_a_run_whose_job_an_event_delivered_is_observed_never_admitted_again() -> None:
    clients, obj, job = started_image_run()
    clients.catalog.found["spec"]["enabled"] = False  # admission would refuse it now
    clients.pods = [RUNNING_POD]
    again(clients, obj, job=ready(job))
    assert clients.calls == ["list_pods", "patch_run_status"]  # no admission, no create, no read of the Job
    (status,) = clients.statuses
    assert (status["phase"], status["jobName"]) == ("Running", job["metadata"]["name"])


def test_a_refused_run_whose_job_exists_is_observed_not_failed() -> None:
    clients, obj, job = started_image_run()
    # Disabled between its Job's creation and its first status write: the pod runs on.
    clients.catalog.found["spec"]["enabled"] = False
    clients.pods = [RUNNING_POD]
    again(clients, obj)
    # The refusal is checked on fresh data, then the Job is read once, found, and observed.
    assert clients.calls == [
        "list_job_definitions",
        "get_job_queue",
        "get_job",
        "list_pods",
        "patch_run_status",
    ]
    (status,) = clients.statuses
    assert (status["phase"], status["reason"], status["jobName"]) == (
        "Running",
        "PodRunning",
        job["metadata"]["name"],
    )
    assert {c["type"]: c["status"] for c in status["conditions"]}["Accepted"] == "True"
    # Without a Job, the same refusal fails the run.
    fresh = FakeClients(clients.catalog)
    again(fresh, obj)
    (refused,) = fresh.statuses
    assert (refused["phase"], refused["reason"]) == ("Failed", "JobDisabled")
    assert fresh.jobs == []


def test_a_job_deleted_before_the_runs_first_status_ends_the_run_without_a_new_job() -> None:
    clients, obj, job = started_image_run()
    name = job["metadata"]["name"]
    clients.existing.clear()  # someone deleted it; the event says so
    again(clients, obj, deleted_job=name)
    assert len(clients.jobs) == 1
    assert "create_job" not in clients.calls
    (status,) = clients.statuses
    assert (status["phase"], status["reason"], status["jobName"]) == ("Failed", "JobDeleted", name)
    # It had started: accepted, then ended (a refusal is the only Failed run that was not accepted).
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Accepted": "True", "Finished": "True"}


def test_cancelling_a_run_whose_status_is_not_written_yet_deletes_its_job() -> None:
    clients, obj, job = started_image_run()
    obj["spec"]["cancel"] = True
    again(clients, obj)
    assert clients.calls == ["get_job", "delete_job", "patch_run_status"]
    (status,) = clients.statuses
    assert (status["phase"], status["classPath"], status["queue"]) == ("Cancelled", "audit.Audit", "default")
    assert status["jobName"] == job["metadata"]["name"]
    assert clients.existing == {}


def _created_ago(obj: dict[str, Any], seconds: float) -> dict[str, Any]:
    created = datetime.now(UTC) - timedelta(seconds=seconds)
    obj["metadata"]["creationTimestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return obj


def test_a_run_with_no_status_expires_only_after_a_finished_job_would_be_deleted() -> None:
    now = datetime.now(UTC)
    fresh = _created_ago(run_obj_of("audit.Audit"), 3500)
    assert start_expired(JobRun.model_validate(fresh), now=now, job_ttl_seconds=3600) is None
    old = JobRun.model_validate(_created_ago(run_obj_of("audit.Audit"), 3700))
    expired = start_expired(old, now=now, job_ttl_seconds=3600)
    assert expired is not None
    assert expired.reason == "NotStartedInTime"
    assert "3600s" in expired.message
    assert "new JobRun" in expired.message
    # Jobs kept as long as their runs (no TTL), or a run with a status (Queued waits for a slot): never.
    assert start_expired(old, now=now, job_ttl_seconds=0) is None
    queued = JobRun.model_validate(_created_ago(run_obj_of("audit.Audit", phase="Queued"), 7200))
    assert start_expired(queued, now=now, job_ttl_seconds=3600) is None


def test_an_expired_run_is_failed_not_started_unless_its_job_exists() -> None:
    old = _created_ago(run_obj_of("audit.Audit"), 7200)
    clients = start(FakeCatalog(definition(), None, {}), old)
    (status,) = clients.statuses
    assert (status["phase"], status["reason"]) == ("Failed", "NotStartedInTime")
    assert clients.jobs == []  # it could have run already: never a Job now
    # Its Job still there (the operator stopped before writing the run's first status): it is followed.
    job_name = job_name_for("r1", UID)
    clients = start(FakeCatalog(definition(), None, {}), old, existing_job=job_name)
    (status,) = clients.statuses
    assert (status["phase"], status["jobName"]) == ("Pending", job_name)
    assert clients.jobs == []


# --- the job-data database: a Secret the admin named, referenced and never read ---

DATA_URL = "postgresql+psycopg://jobs:pa55-w0rd@db.example:5432/inventory"


def test_the_data_database_reaches_a_run_pod_only_as_an_optional_mounted_secret_told_by_the_contract() -> (
    None
):
    job = plan(data_database_secret="jobplane-data-database", data_database_secret_key="DB_URL")
    pod = job["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[DATA_DATABASE_VOLUME]["secret"] == {
        "secretName": "jobplane-data-database",
        "items": [{"key": "DB_URL", "path": DATA_DATABASE_FILE}],
        "defaultMode": 0o400,
        # A missing Secret or key starts the pod, whose runner then ends the run saying which.
        "optional": True,
    }
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts[DATA_DATABASE_VOLUME] == {
        "name": DATA_DATABASE_VOLUME,
        "mountPath": DATA_DATABASE_MOUNT,
        "readOnly": True,
    }
    assert pod["securityContext"]["fsGroup"] == 10001  # the non-root job can read the 0400 file
    # What the runner reads (the pod contract) is what was written; the URL is nowhere in the spec.
    told = PodContract.for_data_database("jobplane-data-database", "DB_URL")
    assert PodContract.read(env_of(job)) == PodContract(
        run_name="nightly-audit",
        run_uid=UID,
        run_namespace="ops",
        run_class_path="audit.Audit",
        run_queue="default",
        run_soft_time_limit=60,
        run_dryrun=False,
        run_data='{"site": "ams1"}',
        data_database_url_file=told.data_database_url_file,
        data_database_secret=told.data_database_secret,
    )
    container = pod["containers"][0]
    assert all("valueFrom" not in item for item in container["env"])
    assert "://" not in json.dumps(job)


def test_without_the_operators_setting_a_run_pod_has_no_data_database() -> None:
    job = plan()
    pod = job["spec"]["template"]["spec"]
    assert DATA_DATABASE_VOLUME not in {v["name"] for v in pod["volumes"]}
    assert PodContract.read(env_of(job)).data_database_url_file is None


def test_a_repository_sync_never_gets_the_data_database() -> None:
    # A sync imports code no admin has enabled yet: it must not see the jobs' data.
    sync = plan_sync()
    assert DATA_DATABASE_VOLUME not in {v["name"] for v in sync["spec"]["template"]["spec"]["volumes"]}
    env = {e["name"] for e in sync["spec"]["template"]["spec"]["containers"][0]["env"]}
    # Its own contract only: the checkout it shares with a run pod (JOBPLANE_REPO_*), none of the rest.
    assert env <= {SyncContract.env_name(field) for field in SyncContract.model_fields}
    run_only = set(PodContract.model_fields) - set(GitCheckoutFields.model_fields)
    assert not env & {PodContract.env_name(field) for field in run_only}


def test_the_operator_mounts_its_configured_secret_without_reading_any() -> None:
    clients = FakeClients(FakeCatalog(definition(), None, {}))
    settings = OperatorSettings(data_database_secret="data-db")
    reconcile_run(clients, run_obj_of("audit.Audit"), settings, Settings(), clients.catalog)  # type: ignore[arg-type]
    assert clients.calls == ["create_job"]  # no get_secret: referencing a Secret needs no right to read it
    (job,) = clients.jobs
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes[DATA_DATABASE_VOLUME]["secret"]["secretName"] == "data-db"
    assert volumes[DATA_DATABASE_VOLUME]["secret"]["items"] == [{"key": "url", "path": DATA_DATABASE_FILE}]


def test_a_run_cannot_name_the_data_database_secret() -> None:
    # The Secret is the operator's setting: nothing of a JobRun's spec reaches it.
    with pytest.raises(ValueError, match="Extra inputs"):
        make_run(dataDatabaseSecret="other")


@pytest.mark.parametrize(
    "value", ["Data_DB", "-db", "db/url", DATA_URL], ids=["upper", "leading-dash", "slash", "url"]
)
def test_the_setting_must_name_a_secret(value: str) -> None:
    with pytest.raises(ValueError, match="data_database_secret"):
        OperatorSettings(data_database_secret=value)


def test_a_pod_that_cannot_read_the_data_database_fails_its_run_with_that_reason() -> None:
    said = {
        "status": "FAILURE",
        "error": "DataDatabaseUnavailable: cannot read",
        "reason": DATA_DATABASE_UNAVAILABLE,
    }
    seen = look(
        job_with("Failed", "BackoffLimitExceeded"),
        pod_with(phase="Failed", terminated={"exitCode": 2, "message": json.dumps(said)}),
    )
    assert (seen.phase, seen.reason, seen.message) == (
        JobRunPhase.FAILED,
        DATA_DATABASE_UNAVAILABLE,
        "DataDatabaseUnavailable: cannot read",
    )
    # A reason the pod may not give is not taken: its run failed on its inputs.
    for reason in ("Completed", "OOMKilled", "Anything"):
        said["reason"] = reason
        seen = look(
            job_with("Failed", "BackoffLimitExceeded"),
            pod_with(phase="Failed", terminated={"exitCode": 2, "message": json.dumps(said)}),
        )
        assert seen.reason == "InvalidInputs"


# --- Kueue hand-off (spec.kueueLocalQueue) ---


def test_a_kueue_queue_plans_its_job_suspended_with_kueues_queue_label() -> None:
    job = plan(queue=make_queue(kueueLocalQueue="team-a", nodeSelector={"pool": "gpu"}))
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    # Kueue reads the pod template's labels and requests; the run's own labels stay as on any queue.
    assert "kueue.x-k8s.io/queue-name" not in job["spec"]["template"]["metadata"]["labels"]
    assert job["spec"]["activeDeadlineSeconds"] == 91
    plain = plan(queue=make_queue(nodeSelector={"pool": "gpu"}))
    assert "suspend" not in plain["spec"]
    assert "kueue.x-k8s.io/queue-name" not in plain["metadata"]["labels"]


def test_a_suspended_job_waits_for_kueue_and_is_never_reported_running() -> None:
    job = {**job_with(), "spec": {"suspend": True}}
    job["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "team-a"}
    waiting = look(job)
    assert (waiting.phase, waiting.reason) == (JobRunPhase.PENDING, "KueueAdmission")
    assert "suspended until Kueue admits it through LocalQueue team-a" in waiting.message
    # Suspended again (Kueue preempted it) while its pod still shows running: it waits, it does not run.
    assert look(job, pod_with(phase="Running", startTime=ts())).reason == "KueueAdmission"
    # An end is an end, suspended or not.
    ended = {**job_with("Complete"), "spec": {"suspend": True}}
    assert look(ended).phase == JobRunPhase.SUCCEEDED


QUOTA_MESSAGE = (
    "couldn't assign flavors to pod set main: "
    "insufficient unused quota for cpu in flavor default, 1 more needed"
)


def workload_with(**condition: Any) -> dict[str, Any]:
    conditions = [{"type": "QuotaReserved", "status": "False", "reason": "Pending", **condition}]
    return {"metadata": {"name": "job-j-1a2b3"}, "status": {"conditions": conditions}}


def test_a_run_waiting_for_kueue_says_what_kueues_workload_says() -> None:
    job = {**job_with(), "spec": {"suspend": True}}
    job["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "team-a"}

    def said(workload: dict[str, Any] | None) -> str:
        seen = observe(job, [], now=NOW, pending_timeout=timedelta(seconds=10), workload=workload)
        assert (seen.phase, seen.reason) == (JobRunPhase.PENDING, "KueueAdmission")
        return str(seen.message)

    assert said(workload_with(message=QUOTA_MESSAGE)) == (
        f"Job j is suspended until Kueue admits it through LocalQueue team-a. Kueue: {QUOTA_MESSAGE}"
    )
    # Made, nothing said yet; not made yet (or not readable): what it may be.
    assert said({"metadata": {"name": "job-j-1a2b3"}, "status": {}}).endswith(
        "Kueue has its Workload job-j-1a2b3 and says nothing yet"
    )
    assert "quota is in use, or Kueue is not running" in said(None)
    # A reserved quota is no reason to wait: nothing of it is quoted.
    assert "Kueue:" not in said(workload_with(status="True", message="Quota reserved in ClusterQueue cq"))


class KueueClients(FakeClients):
    def __init__(self, catalog: FakeCatalog, workload: dict[str, Any] | None) -> None:
        super().__init__(catalog)
        self.workload = workload
        self.asked: list[tuple[str, str]] = []

    def kueue_workload(self, namespace: str, job_uid: str) -> dict[str, Any] | None:
        self.asked.append((namespace, job_uid))
        return self.workload


def test_a_poll_of_a_run_kueue_holds_reads_its_workload_and_only_then() -> None:
    kueued = job_queue("default", kueueLocalQueue="team-a")
    catalog = FakeCatalog(definition(), None, {"default": kueued})
    obj = run_obj_of("audit.Audit", phase="Pending", reason="KueueAdmission", jobName="x")
    clients = KueueClients(catalog, workload_with(message=QUOTA_MESSAGE))
    job = {**job_with(), "spec": {"suspend": True}}
    job["metadata"].update(name=job_name_for("r1", UID), uid="job-uid-1")
    reconcile_run(clients, obj, OperatorSettings(), Settings(), catalog, job=job)  # type: ignore[arg-type]
    assert clients.asked == [("ops", "job-uid-1")]
    (status,) = clients.statuses
    assert status["message"].endswith(f"Kueue: {QUOTA_MESSAGE}")
    # Admitted (no longer suspended): Kueue is not asked.
    clients.asked.clear()
    running = {**job, "spec": {"suspend": False}}
    reconcile_run(clients, obj, OperatorSettings(), Settings(), catalog, job=running)  # type: ignore[arg-type]
    assert clients.asked == []


def test_kueues_admission_is_news_for_a_run_that_waits_for_it() -> None:
    waits = status_of(phase="Pending", reason="KueueAdmission", jobName="j")
    suspended = {**job_counts(), "spec": {"suspend": True}}
    resumed = {**job_counts(), "spec": {"suspend": False}}
    assert not job_event_matters(suspended, waits)
    assert job_event_matters(resumed, waits)
    assert not job_event_matters(resumed, status_of(phase="Pending", reason="PodPending", jobName="j"))


def test_a_run_of_a_kueue_queue_skips_jobplanes_count_and_says_it_waits_for_kueue() -> None:
    kueued = job_queue("default", kueueLocalQueue="team-a")
    catalog = FakeCatalog(definition(), None, {"default": kueued})
    clients = start(catalog, run_obj_of("audit.Audit"), active=5)
    assert "unfinished_job_runs" not in clients.calls  # no count: Kueue's quota decides
    (job,) = clients.jobs
    assert job["spec"]["suspend"] is True
    (created,) = clients.statuses
    assert (created["phase"], created["reason"], created["jobName"]) == (
        "Pending",
        "KueueAdmission",
        job["metadata"]["name"],
    )
    waiting = conditions_of(created)["Waiting"]
    assert (waiting["status"], waiting["reason"]) == ("True", "KueueAdmission")
    assert "LocalQueue team-a" in waiting["message"]


def test_an_evicted_pod_gone_before_its_jobs_failure_is_read_still_ends_its_run_as_evicted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The pod stopped at once and was deleted; its last state came with its events (the pod watch).
    clients, obj, job = started_image_run()
    failed = {**job, "status": job_with("Failed", "PodFailurePolicy")["status"]}
    pod = evicted_pod(phase="Failed", terminated={"exitCode": 143, "message": '{"status": "FAILURE"}'})
    pod["metadata"]["labels"] = {LABEL_RUN_UID: UID}
    memory = DisruptedPods(limit=2)
    memory.remember({**pod, "metadata": {**pod["metadata"], "labels": {LABEL_RUN_UID: "another-run"}}})
    memory.remember(pod_with(phase="Running"))  # not disrupted, no run uid: not kept
    memory.remember(pod)
    assert memory.of(UID)[0]["status"]["conditions"] == pod["status"]["conditions"]
    monkeypatch.setattr(runs, "DISRUPTED_PODS", memory)
    reconcile_run(clients, obj, OperatorSettings(), Settings(), clients.catalog, job=failed)  # type: ignore[arg-type]
    (status,) = clients.statuses
    assert (status["phase"], status["reason"]) == ("Failed", "Evicted")
    assert status["message"] == "Eviction API: evicting"
    assert status["podName"] == pod["metadata"]["name"]
    # Taken once the run's end is written; the oldest entries go first past the limit.
    assert memory.of(UID) == []
    for n in range(3):
        memory.remember({**pod, "metadata": {**pod["metadata"], "labels": {LABEL_RUN_UID: f"run-{n}"}}})
    assert [bool(memory.of(f"run-{n}")) for n in range(3)] == [False, True, True]
    assert memory.of("another-run") == []
