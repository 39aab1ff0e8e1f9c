"""Why a run waits, and which image it ran, on the whole stack: real pods, the operator, the API, Postgres."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.cluster import Cluster, wait_for
from tests.conftest import PostgresServer
from tests.e2e.api_support import Api, running_stack
from tests.e2e.support import Workspace
from tests.stack import Stack

pytestmark = pytest.mark.cluster

SLOW = "api_examples.SlowCounter"
NOOP = "noop.Noop"
HELLO = "hello_world.HelloWorld"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def stack(
    jobplane_crds: Cluster,
    project_image: str,
    postgres: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The stack, its operator giving an unschedulable pod a minute (its pending poll every 20 s) before
    its run fails: long enough to read why it waits."""
    workdir = tmp_path_factory.mktemp("stack")
    options: dict[str, Any] = {"operator_env": {"JOBPLANE_OPERATOR_PENDING_TIMEOUT": "60"}}
    with running_stack(jobplane_crds, postgres.create_database(), project_image, workdir, **options) as up:
        yield up


@pytest.fixture(scope="module")
def workspace(stack: Stack) -> Workspace:
    return Workspace(stack.cluster, stack.namespace)


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Api:
    return Api(stack, stack.admin_token)


def waiting_of(status: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == "Waiting"), None)


def run_of(workspace: Workspace, name: str) -> dict[str, Any]:
    return dict(workspace.get("jobrun", name).get("status") or {})


def run_name_of(admin: Api, result_id: str) -> str:
    def named() -> str | None:
        run = admin.get(f"/api/extras/job-results/{result_id}/").json().get("run")
        return str(run["name"]) if run else None

    return wait_for(f"job result {result_id} to name its JobRun", named, timeout=60)


def test_a_run_behind_a_full_queue_says_whom_it_waits_for_then_runs_and_records_its_image(
    stack: Stack, workspace: Workspace, admin: Api
) -> None:
    # A queue of one slot on the real node; the first run holds it until it is cancelled.
    workspace.apply(
        "JobQueue",
        "solo",
        {
            "nodeSelector": {"pool": "default"},
            "concurrencyLimit": 1,
        },
    )
    workspace.enable(SLOW, taskQueues=["solo"])
    holding = admin.run(SLOW, {"data": {"steps": 600, "pause": 1}})
    assert holding.status_code == 201, holding.text
    holding_id = holding.json()["job_result"]["id"]
    first = run_name_of(admin, holding_id)
    workspace.wait_phase(first, "Running", timeout=180)

    behind = admin.run(SLOW, {"data": {"steps": 1, "pause": 0}})
    assert behind.status_code == 201, behind.text
    behind_id = behind.json()["job_result"]["id"]
    second = run_name_of(admin, behind_id)

    def waits() -> dict[str, Any] | None:
        condition = waiting_of(run_of(workspace, second))
        return condition if condition and condition["status"] == "True" else None

    condition = wait_for(f"{second} to say why it waits", waits, timeout=60)
    assert condition["reason"] == "QueueConcurrencyLimit"
    said = f"Concurrency limit 1 of queue solo reached: 1 active ({first}); position 1, 0 run(s) ahead"
    assert said in condition["message"]
    assert run_of(workspace, second)["phase"] == "Queued"

    def queue_shows(active: int, waiting: int) -> dict[str, Any] | None:
        status = workspace.get("jobqueue", "solo").get("status") or {}
        wanted = {"active": active, "waiting": waiting, "limit": 1}
        return status if {key: status.get(key) for key in wanted} == wanted else None

    wait_for("the queue to show 1 active, 1 waiting", lambda: queue_shows(1, 1), timeout=60)

    def result_waits() -> dict[str, Any] | None:
        result = dict(admin.get(f"/api/extras/job-results/{behind_id}/").json())
        return result if result["waiting_reason"] == "QueueConcurrencyLimit" else None

    result = wait_for("the API's job result to say why it waits", result_waits, timeout=60)
    assert first in result["waiting_message"]
    assert result["status"]["value"] == "PENDING"

    # The slot frees up: the waiting run starts, runs to its end, and waits for nothing any more.
    cancelled = admin.client.post(f"/api/extras/job-results/{holding_id}/cancel/")
    assert cancelled.status_code == 200, cancelled.text
    done = admin.wait_result(behind_id, timeout=180)
    assert done["status"]["value"] == "SUCCESS", done

    def finished() -> dict[str, Any] | None:
        status = run_of(workspace, second)
        return status if status.get("phase") == "Succeeded" and status.get("imageDigest") else None

    status = wait_for(f"{second} to succeed with its image digest", finished, timeout=60)
    condition = waiting_of(status)
    assert condition is not None
    assert condition["status"] == "False"
    assert DIGEST.match(status["imageDigest"]), status["imageDigest"]

    def result_has_digest() -> dict[str, Any] | None:
        result = dict(admin.get(f"/api/extras/job-results/{behind_id}/").json())
        return result if result["image_digest"] else None

    result = wait_for("the API's job result to carry the digest", result_has_digest, timeout=60)
    assert result["image_digest"] == status["imageDigest"]
    assert (result["waiting_reason"], result["waiting_message"]) == (None, None)
    # The run it waited for ran the same image.
    assert run_of(workspace, first)["imageDigest"] == status["imageDigest"]
    wait_for("the queue to show nothing active or waiting", lambda: queue_shows(0, 0), timeout=60)


def test_a_run_whose_pod_no_node_takes_shows_the_schedulers_message(workspace: Workspace) -> None:
    workspace.apply(
        "JobQueue",
        "nowhere",
        {"nodeSelector": {"pool": "no-such-pool"}},
    )
    workspace.enable(NOOP, taskQueues=["nowhere"])
    workspace.run("stuck", NOOP)

    def waits() -> dict[str, Any] | None:
        condition = waiting_of(run_of(workspace, "stuck"))
        return condition if condition and condition["status"] == "True" else None

    condition = wait_for("the unschedulable run to say why it waits", waits, timeout=60)
    assert condition["reason"] == "Unschedulable"
    assert condition["message"].startswith("The scheduler finds no node for the pod: 0/")
    assert "didn't match Pod's node affinity/selector" in condition["message"]
    # Past the pending timeout it ends with the same reason, and no longer waits.
    status = workspace.wait_phase("stuck", "Failed", timeout=120)
    assert status["reason"] == "Unschedulable"
    ended = waiting_of(status)
    assert ended is not None
    assert ended["status"] == "False"


def test_a_run_whose_image_cannot_be_pulled_shows_the_containers_reason(workspace: Workspace) -> None:
    workspace.apply(
        "JobQueue",
        "unpullable",
        {
            "nodeSelector": {"pool": "default"},
            "image": "localhost/jobplane-never-built:0",  # no registry here: every pull fails
        },
    )
    workspace.enable(HELLO, taskQueues=["unpullable"])
    workspace.run("unpulled", HELLO)

    def waits() -> dict[str, Any] | None:
        condition = waiting_of(run_of(workspace, "unpulled"))
        return condition if condition and condition["status"] == "True" else None

    condition = wait_for("the run to say it cannot pull its image", waits, timeout=60)
    assert condition["reason"] == "ImagePull"
    assert condition["message"].startswith(("ErrImagePull: ", "ImagePullBackOff: ")), condition["message"]
    assert "localhost/jobplane-never-built:0" in condition["message"]
    status = workspace.wait_phase("unpulled", "Failed", timeout=120)
    assert status["reason"] == "ImagePullFailed"
