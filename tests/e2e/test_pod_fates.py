"""What becomes of a run when its pod meets a fate on the real kubelet node: evicted, among others."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.cluster import Cluster, wait_for
from tests.e2e.support import Workspace, reporting, running_operator

pytestmark = pytest.mark.cluster

SLOW = "api_examples.SlowCounter"
HELLO = "hello_world.HelloWorld"
# Seconds a pod may wait (unschedulable, unpullable) before its run fails: short, the fate is the point.
PENDING_TIMEOUT = 8


@pytest.fixture(scope="module")
def operator(
    jobplane_crds: Cluster, project_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(
        jobplane_crds, project_image, log_path, pending_timeout=str(PENDING_TIMEOUT)
    ) as log:
        yield log


@pytest.fixture
def workspace(cluster: Cluster, namespace: str, operator: Path) -> Iterator[Workspace]:
    with reporting(Workspace.prepare(cluster, namespace, pool="default"), operator) as ws:
        yield ws


def evict(workspace: Workspace, pod: str) -> None:
    """What `kubectl drain` does to each pod: a POST to the pod's eviction subresource."""
    body = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": workspace.namespace},
    }
    path = f"/api/v1/namespaces/{workspace.namespace}/pods/{pod}/eviction"
    workspace.cluster.kubectl("create", "--raw", path, "-f", "-", input=json.dumps(body))


def test_an_evicted_pod_fails_its_run_as_evicted_and_is_not_replaced(workspace: Workspace) -> None:
    workspace.enable(SLOW)
    workspace.run("evicted", SLOW, data={"steps": 600, "pause": 1})
    running = workspace.wait_phase("evicted", "Running", "Succeeded", "Failed", timeout=180)
    assert running["phase"] == "Running", running
    pod = running["podName"]

    evict(workspace, pod)
    evicted_at = time.monotonic()
    status = workspace.wait_phase("evicted", "Succeeded", "Failed", timeout=60)
    took = time.monotonic() - evicted_at
    print(f"evicted -> {status['phase']} in {took:.2f} s")
    assert (status["phase"], status["reason"]) == ("Failed", "Evicted"), status
    assert status["message"] == "Eviction API: evicting", status
    assert status["podName"] == pod

    # Failed at once by its pod failure policy: no second pod, the Job says why.
    (job,) = workspace.jobs()

    def job_failed() -> dict[str, Any] | None:
        job = workspace.get("job", workspace.jobs()[0]["metadata"]["name"])
        failed = [c for c in job["status"].get("conditions") or [] if c["type"] == "Failed"]
        return job if failed and failed[0]["status"] == "True" else None

    job = wait_for("the evicted pod's Job to fail", job_failed, timeout=60)
    (failed,) = [c for c in job["status"]["conditions"] if c["type"] == "Failed"]
    assert failed["reason"] == "PodFailurePolicy", failed
    assert job["status"].get("failed") == 1
    assert not job["status"].get("active")
    assert not job["status"].get("succeeded")
    pods = workspace.cluster.get_json("pods", "-n", workspace.namespace)["items"]
    assert [p["metadata"]["name"] for p in pods if p["metadata"]["name"] != pod] == []
    workspace.failed = False


def created_at(workspace: Workspace, run: str) -> datetime:
    """When the run's pod was created, by the apiserver's clock (this machine's)."""

    def pod_named() -> str | None:
        return (workspace.get("jobrun", run).get("status") or {}).get("podName")

    pod = workspace.get("pod", wait_for(f"{run} to name its pod", pod_named, timeout=60))
    return datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


def ends_after_the_pending_timeout(workspace: Workspace, run: str) -> dict[str, Any]:
    """The run's terminal status once its pod waited out the pending timeout; prints how long after."""
    created = created_at(workspace, run)
    status = workspace.wait_phase(run, "Succeeded", "Failed", timeout=60)
    past = (datetime.now(UTC) - created).total_seconds() - PENDING_TIMEOUT
    print(f"{run}: {status['reason']} {past:.2f} s after the pending timeout")
    # Not before its timeout (the creation timestamp is in whole seconds).
    assert past > -1, past
    return status


def test_an_unschedulable_pod_fails_its_run_after_the_pending_timeout(workspace: Workspace) -> None:
    workspace.apply("JobQueue", "nowhere", {"nodeSelector": {"pool": "no-such-pool"}})
    workspace.enable(HELLO, taskQueues=["nowhere"])
    workspace.run("unplaced", HELLO)
    status = ends_after_the_pending_timeout(workspace, "unplaced")
    assert (status["phase"], status["reason"]) == ("Failed", "Unschedulable"), status
    assert status["message"].startswith("0/"), status
    # Stopped: its Job, and the pod that waited for a node, go.
    wait_for("the unschedulable run's Job to go", lambda: workspace.jobs() == [] or None, timeout=30)
    workspace.failed = False


def test_an_image_that_cannot_be_pulled_fails_its_run_after_the_pending_timeout(workspace: Workspace) -> None:
    workspace.apply(
        "JobQueue",
        "unpullable",
        # No registry here: every pull fails.
        {"nodeSelector": {"pool": "default"}, "image": "localhost/jobplane-never-built:0"},
    )
    workspace.enable(HELLO, taskQueues=["unpullable"])
    workspace.run("unpulled", HELLO)
    status = ends_after_the_pending_timeout(workspace, "unpulled")
    assert (status["phase"], status["reason"]) == ("Failed", "ImagePullFailed"), status
    assert "localhost/jobplane-never-built:0" in status["message"], status
    workspace.failed = False
