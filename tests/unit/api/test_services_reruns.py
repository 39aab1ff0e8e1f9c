"""Re-run (services/reruns.py): which inputs a re-run sends, and ``POST job-results/{id}/rerun/`` on the app
with a SQLite store and an in-memory apiserver (tests/ui_support.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobplane_api.identity import service
from jobplane_api.services.reruns import SENSITIVE_REFUSAL, RerunInputs, rerun_inputs
from jobplane_api.services.run_reports import discard_input_files
from jobplane_store.models import FileProxy, JobResult
from tests.ui_support import Disabled, Sensitive, Tour, TwoQueues, UiWorld, job_definition

TOUR = "11111111-1111-4111-8111-111111111111"
SENSITIVE = "44444444-4444-4444-8444-444444444444"
QUEUES = "55555555-5555-4555-8555-555555555555"
NO_VARIABLES = "77777777-7777-4777-8777-777777777777"

TOUR_DATA = {"hostname": "edge-1", "role": "router", "features": ["ospf"], "settings": {"mtu": 9000}}


# --- which inputs (pure) ---------------------------------------------------------------------------------


def test_the_stored_inputs_are_sent_again_and_uploads_are_named_by_their_file_id() -> None:
    schema = Tour.json_schema()
    stored = {"hostname": "edge-1", "upload": "5a0c8d6e-2f1b-4c3d-9e8f-7a6b5c4d3e2f", "port_count": 0}

    inputs = rerun_inputs(stored, schema)

    assert inputs == RerunInputs(
        data={"hostname": "edge-1", "port_count": 0},
        files={"upload": "5a0c8d6e-2f1b-4c3d-9e8f-7a6b5c4d3e2f"},
    )
    assert rerun_inputs({"hostname": "edge-1", "upload": None}, schema) == RerunInputs(
        data={"hostname": "edge-1"}
    )


def test_a_sensitive_job_s_inputs_are_not_stored_so_only_a_job_without_variables_re_runs() -> None:
    assert rerun_inputs(None, Sensitive.json_schema()) == SENSITIVE_REFUSAL
    assert rerun_inputs(None, Disabled.json_schema()) == RerunInputs()


# --- the endpoint ----------------------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> UiWorld:
    no_variables = job_definition(Disabled, uid=NO_VARIABLES)
    no_variables["metadata"]["name"] = "no-variables"
    no_variables["status"]["code"].update(name="No variables", hasSensitiveVariables=True)
    world = UiWorld(
        tmp_path,
        [
            job_definition(Tour, uid=TOUR),
            job_definition(Sensitive, uid=SENSITIVE),
            job_definition(TwoQueues, uid=QUEUES),
            no_variables,
        ],
    )
    world.user("ada", actions=["view", "run"])
    world.user("bob", actions=["view", "run"])
    world.user("viewer", actions=["view"])
    # May run, and view only the results they requested.
    world.user("own", actions=["view", "run"], object_types=["extras.job"])
    with world.sessions.begin() as session:
        service.create_permission(
            session=session,
            name="own-results",
            object_types=["extras.jobresult"],
            actions=["view"],
            constraints={"user": "$user"},
            users=["own"],
        )
    return world


@pytest.fixture
def client(world: UiWorld) -> Iterator[TestClient]:
    with TestClient(world.app()) as client:
        yield client


def token(world: UiWorld, username: str) -> dict[str, str]:
    with world.sessions.begin() as session:
        _, key = service.create_user_token(session=session, username=username)
    return {"Authorization": f"Token {key}"}


def run(client: TestClient, headers: dict[str, str], job: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(f"/api/extras/jobs/{job}/run/", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()["job_result"]
    return result


def rerun(client: TestClient, headers: dict[str, str], result_id: str) -> Any:
    return client.post(f"/api/extras/job-results/{result_id}/rerun/", headers=headers)


def test_a_rerun_is_a_new_run_of_the_job_with_the_same_inputs_and_queue_by_the_caller(
    client: TestClient, world: UiWorld
) -> None:
    ada, bob = token(world, "ada"), token(world, "bob")
    first = run(client, ada, TOUR, {"data": TOUR_DATA})
    queued = run(client, ada, QUEUES, {"data": {"count": 3}, "task_queue": "gpu"})

    again = rerun(client, bob, first["id"])
    other = rerun(client, bob, queued["id"])

    assert again.status_code == 201, again.text
    assert set(again.json()) == {"job_result", "scheduled_job"}
    assert again.json()["scheduled_job"] is None
    record = again.json()["job_result"]
    assert record["id"] != first["id"]
    assert record["task_kwargs"] == first["task_kwargs"]
    assert record["job_model"] == first["job_model"]
    assert record["requested_by"] == "bob"
    assert record["status"]["value"] == "PENDING"
    runs = {run["metadata"]["uid"]: run for run in world.runs()}
    assert runs[record["id"]]["spec"] == {**runs[first["id"]]["spec"], "requestedBy": "bob"}
    assert runs[other.json()["job_result"]["id"]]["spec"]["queue"] == "gpu"


def test_an_upload_not_yet_read_is_sent_again_and_one_already_read_is_refused(
    client: TestClient, world: UiWorld
) -> None:
    ada = token(world, "ada")
    answer = client.post(
        f"/api/extras/jobs/{TOUR}/run/",
        data={"hostname": "edge-1"},
        files={"upload": ("inventory.csv", b"name\nedge-1\n", "text/csv")},
        headers=ada,
    )
    assert answer.status_code == 201, answer.text
    first = answer.json()["job_result"]

    again = rerun(client, ada, first["id"])

    assert again.status_code == 201, again.text
    new_id = again.json()["job_result"]["task_kwargs"]["upload"]
    assert new_id != first["task_kwargs"]["upload"]
    with world.sessions() as session:
        copy = session.scalars(select(FileProxy).where(FileProxy.id == uuid.UUID(new_id))).one()
        assert (copy.name, copy.content) == ("inventory.csv", b"name\nedge-1\n")
        assert str(copy.input_for_result_id) == again.json()["job_result"]["id"]
    with world.sessions.begin() as session:
        discard_input_files(session=session, run_uid=uuid.UUID(first["id"]))

    refused = rerun(client, ada, first["id"])

    assert refused.status_code == 409
    assert refused.json() == {
        "detail": "Uploaded files are deleted once a run has read them, and this run's (upload) are gone: "
        "run the job again and choose them."
    }


def test_a_sensitive_run_is_refused_unless_its_job_has_no_variables(
    client: TestClient, world: UiWorld
) -> None:
    ada = token(world, "ada")
    secret = run(client, ada, SENSITIVE, {"data": {"password": "s3cret"}})
    bare = run(client, ada, NO_VARIABLES, {"data": {}})
    before = len(world.runs())

    refused = rerun(client, ada, secret["id"])

    assert refused.status_code == 409
    assert refused.json() == {"detail": SENSITIVE_REFUSAL}
    assert len(world.runs()) == before
    again = rerun(client, ada, bare["id"])
    assert again.status_code == 201, again.text
    assert again.json()["job_result"]["task_kwargs"] is None


def test_a_rerun_needs_run_on_the_job_and_view_on_the_result(client: TestClient, world: UiWorld) -> None:
    ada = token(world, "ada")
    first = run(client, ada, TOUR, {"data": TOUR_DATA})
    own = token(world, "own")
    before = len(world.runs())

    assert rerun(client, token(world, "viewer"), first["id"]).status_code == 403
    assert rerun(client, own, first["id"]).status_code == 404
    assert rerun(client, ada, str(uuid.uuid4())).status_code == 404
    assert rerun(client, {}, first["id"]).status_code == 403
    assert len(world.runs()) == before
    # Their own run they may re-run.
    mine = run(client, own, TOUR, {"data": TOUR_DATA})
    assert rerun(client, own, mine["id"]).status_code == 201


def test_a_rerun_of_a_disabled_job_or_with_inputs_the_job_no_longer_takes_is_refused_as_a_run(
    client: TestClient, world: UiWorld
) -> None:
    ada = token(world, "ada")
    first = run(client, ada, TOUR, {"data": TOUR_DATA})
    with world.sessions.begin() as session:
        row = session.get(JobResult, uuid.UUID(first["id"]))
        assert row is not None
        row.task_kwargs = {**(row.task_kwargs or {}), "hostname": "Not A Hostname"}

    bad = rerun(client, ada, first["id"])

    assert bad.status_code == 400
    assert "hostname" in bad.json()["errors"]
    definition = world.gateway.find_definition(TOUR)
    assert definition is not None
    definition.spec.enabled = False
    disabled = rerun(client, ada, first["id"])
    assert disabled.status_code == 403
    assert disabled.json() == {"detail": "This job is not enabled to be run."}
