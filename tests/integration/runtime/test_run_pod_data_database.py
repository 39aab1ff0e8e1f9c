"""`jobplane run-pod` with the job-data database of the pod contract: ObjectVar, MultiObjectVar and Job.db
behave as in `runjob --local` on the same data, and a database the pod cannot use ends the run saying why,
never showing its URL."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jobplane_crds.podcontract import DATA_DATABASE_UNAVAILABLE
from tests.builders import printed_result, runjob_local
from tests.integration.runtime.test_run_pod_local import EXAMPLES, RunPod

PASSWORD = "pa55-Wr0ng-h0rse"
TOUR = "variables_tour.VariablesTour"
LOOPBACKS = "inventory.check_router_loopbacks.CheckRouterLoopbacks"
TOUR_DATA = {"hostname": "edge-1", "location": {"name": "AMS1"}, "routers": [{"name": "ams1-rtr-01"}]}


@pytest.fixture
def run_pod(tmp_path: Path) -> RunPod:
    return RunPod(tmp_path)


def local(
    tmp_path: Path, data_url: str, class_path: str, data: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    return runjob_local(tmp_path, EXAMPLES, data_url, class_path, data)


def url_file(tmp_path: Path, url: str) -> str:
    """The file the kubelet would make of the Secret's key."""
    path = tmp_path / "data-database-url"
    path.write_text(url + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def inventory(tmp_path: Path, store_url: str) -> str:
    """A data database (SQLite, and a real Postgres) holding the demo inventory, loaded by a --local run."""
    seeded = local(tmp_path, store_url, "inventory.load_demo.LoadDemoInventory", {"with_problems": True})
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    return store_url


def test_object_vars_and_job_db_in_a_pod_behave_as_in_a_local_run(
    run_pod: RunPod, tmp_path: Path, inventory: str
) -> None:
    contract = {"JOBPLANE_DATA_DATABASE_URL_FILE": url_file(tmp_path, inventory)}
    for class_path, data in ((TOUR, TOUR_DATA), (LOOPBACKS, {"location": {"name": "AMS1"}})):
        in_pod = run_pod(class_path, jobs_root=EXAMPLES, JOBPLANE_RUN_DATA=json.dumps(data), **contract)
        assert in_pod.code == 0, in_pod.stderr
        here = local(tmp_path, inventory, class_path, data)
        assert here.returncode == 0, here.stdout + here.stderr
        assert in_pod.events[-1]["result"] == printed_result(here)
    # The objects themselves reached run(): the rows of the data database, as --local gives them.
    tour = run_pod(TOUR, jobs_root=EXAMPLES, JOBPLANE_RUN_DATA=json.dumps(TOUR_DATA), **contract)
    assert "location (ObjectVar): AMS1, id 1" in tour.logs()
    assert "routers (MultiObjectVar): ams1-rtr-01" in tour.logs()
    loopbacks = run_pod(LOOPBACKS, jobs_root=EXAMPLES, JOBPLANE_RUN_DATA="{}", **contract)
    assert loopbacks.code == 1  # LAB1's routers have no addressed loopback: Job.db read them all
    assert (
        loopbacks.events[-1]["result"]["failing"]
        == printed_result(local(tmp_path, inventory, LOOPBACKS, {}))["failing"]
    )


def test_an_object_that_is_not_there_is_refused_with_the_errors_of_a_local_run(
    run_pod: RunPod, tmp_path: Path, inventory: str
) -> None:
    data = {"hostname": "edge-1", "location": {"name": "NOWHERE"}, "routers": [{"name": "ams1-sw-01"}]}
    in_pod = run_pod(
        TOUR,
        jobs_root=EXAMPLES,
        JOBPLANE_RUN_DATA=json.dumps(data),
        JOBPLANE_DATA_DATABASE_URL_FILE=url_file(tmp_path, inventory),
    )
    here = local(tmp_path, inventory, TOUR, data)
    assert (in_pod.code, here.returncode) == (2, 2)
    assert json.loads(in_pod.stderr) == json.loads(here.stderr)
    assert json.loads(in_pod.stderr)["errors"]["location"] == ["No Location matches {'name': 'NOWHERE'}."]
    assert in_pod.message is not None
    assert in_pod.message["error"].startswith("JobDataError: ")
    assert "reason" not in in_pod.message  # the inputs' fault: the operator says InvalidInputs


def test_a_pod_promised_a_data_database_it_cannot_read_runs_nothing_and_says_which_secret(
    run_pod: RunPod, tmp_path: Path
) -> None:
    done = run_pod(
        "hello_world.HelloWorld",
        jobs_root=EXAMPLES,
        JOBPLANE_DATA_DATABASE_URL_FILE=str(tmp_path / "not-mounted" / "url"),
        JOBPLANE_DATA_DATABASE_SECRET="jobplane-data-database/url",
    )
    assert done.code == 2
    assert done.events == []  # nothing ran
    assert done.message is not None
    assert done.message["reason"] == DATA_DATABASE_UNAVAILABLE
    assert done.message["error"].startswith("DataDatabaseUnavailable: cannot read the data database's URL")
    assert (
        "Secret 'jobplane-data-database' (key 'url') must exist in the run's namespace"
        in done.message["error"]
    )
    assert "Traceback" not in done.stderr


def test_without_a_data_database_a_pod_refuses_object_var_inputs_and_runs_other_jobs(run_pod: RunPod) -> None:
    done = run_pod(TOUR, jobs_root=EXAMPLES, JOBPLANE_RUN_DATA=json.dumps(TOUR_DATA))
    assert done.code == 2
    assert done.message is not None
    assert done.message["reason"] == DATA_DATABASE_UNAVAILABLE
    assert "looks location, routers up in the data database and this pod has none" in done.message["error"]
    assert "JOBPLANE_OPERATOR_DATA_DATABASE_SECRET" in done.message["error"]
    # Nothing to look up: the job runs.
    plain = run_pod(TOUR, jobs_root=EXAMPLES, JOBPLANE_RUN_DATA='{"hostname": "edge-1"}')
    assert plain.code == 0, plain.stderr
    # Job.db without a database: the job fails saying where a pod gets one.
    loopbacks = run_pod(LOOPBACKS, jobs_root=EXAMPLES, JOBPLANE_RUN_DATA="{}")
    assert loopbacks.code == 1
    assert loopbacks.message is not None
    assert loopbacks.message["error"].startswith("RuntimeError: this run has no data database")


@pytest.mark.parametrize(
    ("url", "error"),
    [
        # Nothing listens on port 1: the look-up fails, as it would in a local run.
        (f"postgresql+psycopg://jobs:{PASSWORD}@127.0.0.1:1/inventory", "JobDataError: "),
        (f"postgresql+psycopg://jobs:{PASSWORD}@127.0.0.1:port/inventory", "DataDatabaseUnavailable: "),
        (f"nosuchdialect://jobs:{PASSWORD}@127.0.0.1/inventory", "DataDatabaseUnavailable: "),
    ],
    ids=["unreachable", "malformed", "unknown-dialect"],
)
def test_a_data_database_the_pod_cannot_use_is_refused_without_its_password(
    run_pod: RunPod, tmp_path: Path, url: str, error: str
) -> None:
    done = run_pod(
        TOUR,
        jobs_root=EXAMPLES,
        JOBPLANE_RUN_DATA=json.dumps(TOUR_DATA),
        JOBPLANE_DATA_DATABASE_URL_FILE=url_file(tmp_path, url),
    )
    assert done.code == 2, done.stderr
    assert done.message is not None
    assert done.message["error"].startswith(error)
    assert PASSWORD not in done.stdout + done.stderr + done.raw_message
    assert "Traceback" not in done.stderr


def test_the_mounted_url_and_an_inline_one_together_are_refused(run_pod: RunPod, tmp_path: Path) -> None:
    done = run_pod(
        "hello_world.HelloWorld",
        jobs_root=EXAMPLES,
        JOBPLANE_DATA_DATABASE_URL_FILE=url_file(tmp_path, f"sqlite:///{tmp_path / 'a.sqlite3'}"),
        JOBPLANE_DATA_DATABASE_URL=f"sqlite:///{tmp_path / 'b.sqlite3'}",
    )
    assert done.code == 2
    assert done.message is not None
    assert done.message["error"] == (
        "InvalidInput: set only one of JOBPLANE_DATA_DATABASE_URL_FILE and JOBPLANE_DATA_DATABASE_URL"
    )
