"""The operator with real job pods: the project image on the kubelet node runs the example jobs' code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.cluster import Cluster
from tests.e2e.support import Workspace, reporting, running_operator

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def operator(
    jobplane_crds: Cluster, project_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(jobplane_crds, project_image, log_path, pending_timeout="30") as log:
        yield log


@pytest.fixture
def workspace(cluster: Cluster, namespace: str, operator: Path) -> Iterator[Workspace]:
    with reporting(Workspace.prepare(cluster, namespace, pool="default"), operator) as ws:
        yield ws


def logs(workspace: Workspace, pod: str) -> str:
    return workspace.cluster.kubectl("logs", pod, "-n", workspace.namespace).stdout


def test_a_job_runs_its_real_code_and_the_result_reaches_the_run(workspace: Workspace) -> None:
    workspace.enable("hello_world.HelloWorld")
    workspace.run("hello", "hello_world.HelloWorld", data={"who": "Ada"})
    status = workspace.wait_phase("hello", "Succeeded", "Failed", timeout=120)
    assert (status["phase"], status["reason"]) == ("Succeeded", "Completed")
    assert status["result"]["status"] == "SUCCESS"
    assert json.loads(status["result"]["result"]) == {"greeting": "Hello, Ada!"}
    assert status["startTime"]
    lines = [
        json.loads(line) for line in logs(workspace, status["podName"]).splitlines() if line.startswith("{")
    ]
    assert {"type": "log", "level": "success"}.items() <= next(
        entry for entry in lines if entry.get("message") == "Hello, Ada!"
    ).items()
    workspace.failed = False


def test_a_job_that_raises_fails_with_its_exception(workspace: Workspace) -> None:
    workspace.enable("lifecycle_hooks.LifecycleHooks")
    workspace.run("raises", "lifecycle_hooks.LifecycleHooks", data={"raise_error": True})
    status = workspace.wait_phase("raises", "Succeeded", "Failed", timeout=120)
    assert (status["phase"], status["reason"]) == ("Failed", "JobFailed")
    assert "RuntimeError" in status["message"]
    assert status["result"]["status"] == "FAILURE"
    workspace.failed = False


def test_past_its_soft_limit_a_job_cleans_up_and_fails(workspace: Workspace) -> None:
    workspace.enable("soft_time_limit.SlowCleanup")
    workspace.run("soft", "soft_time_limit.SlowCleanup", data={"steps": 50})
    status = workspace.wait_phase("soft", "Succeeded", "Failed", timeout=120)
    assert (status["phase"], status["reason"]) == ("Failed", "JobFailed")
    assert "SoftTimeLimitExceeded" in status["message"]
    output = logs(workspace, status["podName"])
    assert "cleaning up" in output
    assert "Removed " in output
    workspace.failed = False


def test_past_its_hard_limit_a_job_is_stopped_with_deadline_exceeded(workspace: Workspace) -> None:
    workspace.enable("soft_time_limit.SlowCleanup", softTimeLimit=60, timeLimit=4)
    workspace.run("hard", "soft_time_limit.SlowCleanup", data={"steps": 50})
    status = workspace.wait_phase("hard", "Succeeded", "Failed", timeout=120)
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")
    (job,) = workspace.jobs()
    assert job["spec"]["activeDeadlineSeconds"] == 4
    workspace.failed = False


def test_over_its_queue_memory_limit_a_job_is_oom_killed(workspace: Workspace) -> None:
    workspace.enable("memory_use.AllocateMemory", taskQueues=["small"])
    workspace.apply(
        "JobQueue",
        "small",
        {"nodeSelector": {"pool": "default"}, "resources": {"limits": {"memory": "64Mi"}}},
    )
    workspace.run("hog", "memory_use.AllocateMemory", data={"megabytes": 512})
    status = workspace.wait_phase("hog", "Succeeded", "Failed", timeout=120)
    assert (status["phase"], status["reason"]) == ("Failed", "OOMKilled")
    workspace.failed = False


def test_a_pod_deleted_by_hand_ends_its_run_within_30_seconds(workspace: Workspace) -> None:
    workspace.enable("soft_time_limit.SlowCleanup", softTimeLimit=60, timeLimit=120)
    workspace.run("victim", "soft_time_limit.SlowCleanup", data={"steps": 50})
    status = workspace.wait_phase("victim", "Running", timeout=120)
    workspace.cluster.kubectl("delete", "pod", status["podName"], "-n", workspace.namespace, "--wait=false")
    status = workspace.wait_phase("victim", "Failed", timeout=30)
    assert status["reason"] == "PodDeleted"
    workspace.failed = False
