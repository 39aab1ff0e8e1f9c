"""The operator on a real control plane, job pods on kwok's simulated pools: every run ends, precisely."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.cluster import Cluster, free_port, wait_for
from tests.cluster.helpers import GPU_TOLERATION
from tests.e2e.support import KWOK_IMAGE, Workspace, reporting, running_operator

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def operator(jobplane_crds: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(jobplane_crds, KWOK_IMAGE, log_path, pending_timeout="3") as log:
        yield log


@pytest.fixture
def workspace(cluster: Cluster, namespace: str, operator: Path) -> Iterator[Workspace]:
    with reporting(Workspace.prepare(cluster, namespace, pool="batch"), operator) as ws:
        yield ws


def test_a_run_of_an_enabled_job_gets_one_owned_job_and_ends_succeeded(workspace: Workspace) -> None:
    workspace.enable("hello_world.HelloWorld")
    workspace.run("hello", "hello_world.HelloWorld", data={"who": "Ada"})
    status = workspace.wait_phase("hello", "Succeeded")
    assert status["reason"] == "Completed"
    assert status["classPath"] == "hello_world.HelloWorld"
    assert status["queue"] == "default"
    assert status["completionTime"]
    (job,) = workspace.jobs()
    assert job["metadata"]["name"] == status["jobName"]
    assert job["metadata"]["ownerReferences"][0]["name"] == "hello"
    assert job["spec"]["activeDeadlineSeconds"] == 600
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["nodeSelector"] == {"pool": "batch"}
    env = {e["name"]: e.get("value") for e in pod_spec["containers"][0]["env"]}
    assert json.loads(env["JOBPLANE_RUN_DATA"]) == {"who": "Ada"}
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Accepted"]["status"] == "True"
    assert conditions["Finished"]["reason"] == "Completed"
    workspace.failed = False


@pytest.mark.parametrize(
    ("job", "spec", "reason", "message"),
    [
        ("hello_world.HelloWorld", {}, "JobDisabled", "disabled"),
        ("nosuch.Job", {}, "JobNotFound", "No JobDefinition"),
        ("noop.Noop", {"data": {"extra": 1}}, "InvalidInputs", "Job data contained an unknown property"),
        ("noop.Noop", {"queue": "gpu"}, "QueueNotAllowed", "not one of the job's queues"),
        ("device_login.DeviceLogin", {"data": {"username": "x"}}, "SensitiveInputsInSpec", "in a Secret"),
    ],
)
def test_runs_that_may_not_start_are_refused_at_apply_with_a_clear_reason(
    workspace: Workspace, job: str, spec: dict[str, Any], reason: str, message: str
) -> None:
    workspace.enable("noop.Noop")
    workspace.enable("device_login.DeviceLogin")
    refused = workspace.try_run("refused", job, **spec)
    assert refused.returncode != 0
    assert f"{reason}: " in refused.stderr
    assert message in refused.stderr
    stored = workspace.cluster.kubectl("get", "jobrun", "refused", "-n", workspace.namespace, check=False)
    assert stored.returncode != 0
    assert workspace.jobs() == []
    workspace.failed = False


def test_a_failing_pod_ends_the_run_failed_with_its_exit_code(workspace: Workspace) -> None:
    workspace.enable("noop.Noop", taskQueues=["flaky"])
    annotations = {"jobplane.io/kwok-exit-code": "42", "jobplane.io/kwok-reason": "Error"}
    workspace.apply(
        "JobQueue",
        "flaky",
        {"nodeSelector": {"pool": "batch"}, "podTemplate": {"metadata": {"annotations": annotations}}},
    )
    workspace.run("flaky", "noop.Noop")
    status = workspace.wait_phase("flaky", "Failed")
    assert status["reason"] == "Error"
    assert "exited with code 42" in status["message"]
    workspace.failed = False


def test_cancel_deletes_the_job_and_ends_the_run_cancelled(workspace: Workspace) -> None:
    workspace.enable("noop.Noop", taskQueues=["slow"])
    annotations = {"jobplane.io/kwok-run-for": "10m"}
    workspace.apply(
        "JobQueue",
        "slow",
        {"nodeSelector": {"pool": "batch"}, "podTemplate": {"metadata": {"annotations": annotations}}},
    )
    workspace.run("long", "noop.Noop")
    workspace.wait_phase("long", "Running")
    workspace.cluster.kubectl(
        "patch",
        "jobrun",
        "long",
        "-n",
        workspace.namespace,
        "--type=merge",
        "-p",
        '{"spec": {"cancel": true}}',
    )
    status = workspace.wait_phase("long", "Cancelled")
    assert status["reason"] == "Cancelled"
    wait_for("the Job to be gone", lambda: workspace.jobs() == [], timeout=30)
    workspace.failed = False


def test_a_pod_that_cannot_be_scheduled_ends_the_run(workspace: Workspace) -> None:
    workspace.enable("noop.Noop", taskQueues=["gpu-untolerated"])
    workspace.apply("JobQueue", "gpu-untolerated", {"nodeSelector": {"pool": "gpu"}})
    workspace.run("stuck", "noop.Noop")
    status = workspace.wait_phase("stuck", "Failed", timeout=45)
    assert status["reason"] == "Unschedulable"
    assert "taint" in status["message"] or "node" in status["message"]
    wait_for("the Job to be gone", lambda: workspace.jobs() == [], timeout=30)
    workspace.failed = False


def test_a_gpu_queue_places_pods_on_the_gpu_pool_only(workspace: Workspace) -> None:
    workspace.enable("noop.Noop", taskQueues=["gpu"])
    workspace.apply("JobQueue", "gpu", {"nodeSelector": {"pool": "gpu"}, "tolerations": [GPU_TOLERATION]})
    workspace.run("trained", "noop.Noop")
    status = workspace.wait_phase("trained", "Succeeded")
    pod = workspace.cluster.get_json("pod", status["podName"], "-n", workspace.namespace)
    assert pod["spec"]["nodeName"].startswith("kwok-gpu-")
    workspace.failed = False


def test_deleting_the_job_by_hand_ends_the_run(workspace: Workspace) -> None:
    workspace.enable("noop.Noop", taskQueues=["slow"])
    workspace.apply(
        "JobQueue",
        "slow",
        {
            "nodeSelector": {"pool": "batch"},
            "podTemplate": {"metadata": {"annotations": {"jobplane.io/kwok-run-for": "10m"}}},
        },
    )
    workspace.run("orphaned", "noop.Noop")
    status = workspace.wait_phase("orphaned", "Running")
    workspace.cluster.kubectl("delete", "job", status["jobName"], "-n", workspace.namespace, "--wait=false")
    status = workspace.wait_phase("orphaned", "Failed", timeout=30)
    assert status["reason"] in ("JobDeleted", "PodDeleted")
    workspace.failed = False


def test_sensitive_inputs_stay_in_their_secret_which_the_run_owns_and_removes(workspace: Workspace) -> None:
    secret_value = "s3cret-Pa55"
    workspace.enable("device_login.DeviceLogin")
    inputs = {"username": "netops", "password": secret_value}
    workspace.run_with_inputs("tour", "device_login.DeviceLogin", inputs, "tour-inputs")
    status = workspace.wait_phase("tour", "Succeeded", "Failed")
    (job,) = workspace.jobs()
    assert secret_value not in json.dumps(job)
    assert secret_value not in json.dumps(workspace.get("jobrun", "tour"))
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["inputs"]["secret"]["secretName"] == "tour-inputs"
    assert status["phase"] == "Succeeded"
    gone = workspace.cluster.kubectl("get", "secret", "tour-inputs", "-n", workspace.namespace, check=False)
    assert gone.returncode != 0
    workspace.failed = False


def test_a_concurrency_limit_holds_and_runs_start_in_creation_order(workspace: Workspace) -> None:
    workspace.enable("noop.Noop", taskQueues=["limited"])
    annotations = {"jobplane.io/kwok-run-for": "2s"}
    workspace.apply(
        "JobQueue",
        "limited",
        {
            "nodeSelector": {"pool": "batch"},
            "concurrencyLimit": 2,
            "podTemplate": {"metadata": {"annotations": annotations}},
        },
    )
    names = [f"run-{i}" for i in range(1, 6)]
    for name in names:
        workspace.run(name, "noop.Noop")
        time.sleep(1.1)  # creation timestamps have one-second resolution: keep the order unambiguous
    started: list[str] = []
    most_unfinished = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        runs = {
            r["metadata"]["name"]: r.get("status") or {}
            for r in workspace.cluster.get_json("jobruns", "-n", workspace.namespace)["items"]
        }
        jobs = workspace.jobs()
        unfinished = [
            j
            for j in jobs
            if not any(
                c["type"] in ("Complete", "Failed") and c["status"] == "True"
                for c in j.get("status", {}).get("conditions", [])
            )
        ]
        most_unfinished = max(most_unfinished, len(unfinished))
        started += [name for name in names if runs.get(name, {}).get("jobName") and name not in started]
        queued = [s for s in runs.values() if s.get("phase") == "Queued"]
        assert all(s["queuePosition"] >= 1 and "Concurrency limit 2" in s["message"] for s in queued)
        if all(runs.get(name, {}).get("phase") == "Succeeded" for name in names):
            break
        time.sleep(0.2)
    assert [runs[name].get("phase") for name in names] == ["Succeeded"] * 5
    assert most_unfinished <= 2
    assert started == names
    workspace.failed = False


def test_the_metrics_endpoint_reports_runs_by_phase_and_reconcile_latency(
    workspace: Workspace, cluster: Cluster, tmp_path: Path
) -> None:
    workspace.enable("noop.Noop")
    workspace.run("measured", "noop.Noop")
    workspace.wait_phase("measured", "Succeeded")
    port = free_port()
    with running_operator(
        cluster, KWOK_IMAGE, tmp_path / "metrics.log", metrics_port=str(port), metrics_address="127.0.0.1"
    ):

        def scrape() -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    return str(response.read().decode())
            except OSError:
                return None

        text = wait_for("/metrics to answer", scrape, timeout=60)
    assert f'jobplane_runs{{namespace="{workspace.namespace}",phase="Succeeded"}} 1.0' in text
    assert "jobplane_reconcile_seconds_bucket" in text
    workspace.failed = False


def test_deleting_a_run_removes_its_job_pod_and_secret(workspace: Workspace) -> None:
    workspace.enable("device_login.DeviceLogin", taskQueues=["slow"])
    annotations = {"jobplane.io/kwok-run-for": "10m"}
    workspace.apply(
        "JobQueue",
        "slow",
        {"nodeSelector": {"pool": "batch"}, "podTemplate": {"metadata": {"annotations": annotations}}},
    )
    inputs = {"username": "netops", "password": "pa55word1"}
    workspace.run_with_inputs("doomed", "device_login.DeviceLogin", inputs, "login-inputs")
    workspace.wait_phase("doomed", "Running")
    secret = workspace.cluster.get_json("secret", "login-inputs", "-n", workspace.namespace)
    assert secret["metadata"]["ownerReferences"][0]["name"] == "doomed"
    workspace.cluster.kubectl("delete", "jobrun", "doomed", "-n", workspace.namespace)

    def all_gone() -> bool:
        leftovers = workspace.cluster.kubectl(
            "get", "jobs,pods,secrets", "-n", workspace.namespace, "-o", "name", check=False
        ).stdout.split()
        return not [name for name in leftovers if "doomed" in name or "login-inputs" in name]

    wait_for("the run's Job, pod and Secret to be collected", all_gone, timeout=60)
    workspace.failed = False
