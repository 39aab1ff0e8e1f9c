"""The job-data database in real job pods: the operator mounts the Secret it was told of, and a job's
ObjectVar, MultiObjectVar and Job.db reach the rows a `runjob --local` run wrote into the test Postgres.

Job pods run on the real node on the pod network and reach a Postgres outside the cluster, as a user's would
be: one of this module's own, on the host's address on the cluster's bridge. The URL carries a password
(Postgres trusts the pod network here, so any password works): it must show nowhere but in its Secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.builders import printed_result, runjob_local
from tests.cluster.cluster import Cluster
from tests.conftest import start_postgres
from tests.e2e.support import EXAMPLES, Workspace, reporting, running_operator

# The first test of a session also waits for the cluster to start and the image to build.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

SECRET, KEY = "jobs-data", "URL"
PASSWORD = "da7a-Pa55-in-a-Secret"
TOUR = "variables_tour.VariablesTour"
LOOPBACKS = "inventory.check_router_loopbacks.CheckRouterLoopbacks"
TOUR_DATA = {"hostname": "edge-1", "location": {"name": "AMS1"}, "routers": [{"name": "ams1-rtr-01"}]}


def local_result(workdir: Path, data_url: str, class_path: str, data: dict[str, Any]) -> Any:
    """The result of `jobplane runjob --local` on this host against the data database."""
    return printed_result(runjob_local(workdir, EXAMPLES, data_url, class_path, data))


@pytest.fixture(scope="module")
def inventory(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A data database holding the demo inventory, written by a --local run on this host; pods and this host
    reach it alike on the bridge's host address."""
    gateway = cluster.network.gateway_ip
    with start_postgres(also_listen=gateway, trusted_network=cluster.network.pod_cidr) as postgres:
        url = postgres.create_database().replace(
            "://jobplane@127.0.0.1:", f"://jobplane:{PASSWORD}@{gateway}:"
        )
        workdir = tmp_path_factory.mktemp("local")
        local_result(workdir, url, "inventory.load_demo.LoadDemoInventory", {"with_problems": True})
        yield url, workdir


@pytest.fixture(scope="module")
def operator(
    jobplane_crds: Cluster, project_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(
        jobplane_crds,
        project_image,
        log_path,
        pending_timeout="30",
        data_database_secret=SECRET,
        data_database_secret_key=KEY,
    ) as log:
        yield log


def prepare(cluster: Cluster, namespace: str) -> Workspace:
    """The example jobs enabled, and a default queue on the real node."""
    ws = Workspace.prepare(cluster, namespace, pool="default")
    ws.apply("JobQueue", "default", {"nodeSelector": {"pool": "default"}})
    return ws


@pytest.fixture
def workspace(
    cluster: Cluster, namespace: str, operator: Path, inventory: tuple[str, Path]
) -> Iterator[Workspace]:
    ws = prepare(cluster, namespace)
    # The admin's Secret, made from stdin so the URL is in no command line.
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET},
        "stringData": {KEY: inventory[0]},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))
    with reporting(ws, operator) as ready:
        yield ready


def result_of(status: dict[str, Any]) -> Any:
    return json.loads(status["result"]["result"])


def test_object_vars_and_job_db_in_a_real_pod_reach_the_rows_a_local_run_wrote(
    workspace: Workspace, inventory: tuple[str, Path], operator: Path
) -> None:
    url, workdir = inventory
    workspace.enable(TOUR)
    workspace.enable(LOOPBACKS)
    workspace.run("tour", TOUR, data=TOUR_DATA)
    workspace.run("loopbacks", LOOPBACKS, data={"location": {"name": "AMS1"}})
    tour = workspace.wait_phase("tour", "Succeeded", "Failed", timeout=120)
    assert (tour["phase"], tour["reason"]) == ("Succeeded", "Completed"), tour
    loopbacks = workspace.wait_phase("loopbacks", "Succeeded", "Failed", timeout=120)
    assert (loopbacks["phase"], loopbacks["reason"]) == ("Succeeded", "Completed"), loopbacks
    # The same results as --local on the same data: the pod took the same code path.
    assert result_of(tour) == local_result(workdir, url, TOUR, TOUR_DATA)
    assert result_of(loopbacks) == local_result(workdir, url, LOOPBACKS, {"location": {"name": "AMS1"}})
    assert result_of(loopbacks) == {"location": "AMS1", "checked": 1, "failing": []}
    logs = workspace.cluster.kubectl("logs", tour["podName"], "-n", workspace.namespace).stdout
    assert "location (ObjectVar): AMS1, id 1" in logs
    assert "routers (MultiObjectVar): ams1-rtr-01" in logs

    # The URL stayed in its Secret: not in the Jobs, pods, runs, pod logs or the operator's log.
    jobs = workspace.cluster.kubectl(
        "get", "jobs,pods,jobruns", "-n", workspace.namespace, "-o", "json"
    ).stdout
    assert PASSWORD not in jobs
    assert url.split("@", 1)[1] not in jobs  # nor its host, port and database
    assert PASSWORD not in logs
    assert PASSWORD not in operator.read_text()
    (job,) = [j for j in workspace.jobs() if j["metadata"]["labels"]["jobplane.io/run"] == "tour"]
    pod = job["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "data-database")
    assert volume["secret"]["secretName"] == SECRET
    assert volume["secret"]["items"] == [{"key": KEY, "path": "url"}]
    workspace.failed = False


def test_an_object_not_in_the_data_database_fails_the_run_on_its_inputs(workspace: Workspace) -> None:
    workspace.enable(TOUR)
    workspace.run("nowhere", TOUR, data={"hostname": "edge-1", "location": {"name": "NOWHERE"}})
    status = workspace.wait_phase("nowhere", "Succeeded", "Failed", timeout=120)
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidInputs")
    assert "No Location matches {'name': 'NOWHERE'}." in status["message"]
    workspace.failed = False


def test_a_namespace_without_the_secret_fails_its_runs_saying_which_secret(
    cluster: Cluster, namespace: str, operator: Path
) -> None:
    with reporting(prepare(cluster, namespace), operator) as ws:
        ws.enable("hello_world.HelloWorld")
        ws.run("no-secret", "hello_world.HelloWorld", data={"who": "Ada"})
        status = ws.wait_phase("no-secret", "Succeeded", "Failed", timeout=120)
        assert (status["phase"], status["reason"]) == ("Failed", "DataDatabaseUnavailable"), status
        assert f"Secret '{SECRET}' (key '{KEY}') must exist in the run's namespace" in status["message"]
        ws.failed = False
