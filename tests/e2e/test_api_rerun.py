"""``POST /api/extras/job-results/{id}/rerun/`` on the whole stack: a re-run runs in a pod with the same
inputs and queue, requested by the caller; a sensitive run (whose inputs Secret the operator deleted at
its end) and a file run (whose upload the pod read and so deleted) are refused, and nothing is created."""

from __future__ import annotations

import pytest

from tests.e2e.api_support import Api, make_token
from tests.stack import Stack

pytestmark = pytest.mark.cluster

WITH_VARS = "example.MyJobWithVars"
FILE_JOB = "api_examples.ExampleFile"
LOGIN = "device_login.DeviceLogin"


@pytest.fixture(scope="module")
def stack(api_stack: Stack) -> Stack:
    admin = Api(api_stack, api_stack.admin_token)
    for job in (WITH_VARS, FILE_JOB, LOGIN):
        admin.enable(job)
    return api_stack


def _runs(stack: Stack) -> set[str]:
    return set(stack.cluster.kubectl("get", "jobruns", "-n", stack.namespace, "-o", "name").stdout.split())


def test_a_rerun_runs_the_same_inputs_in_a_pod_for_the_caller(stack: Stack) -> None:
    admin = Api(stack, stack.admin_token)
    inputs = {"string_variable": "somevalue", "integer_variable": 123}
    answer = admin.run(WITH_VARS, {"data": inputs})
    assert answer.status_code == 201, answer.text
    first = admin.wait_result(answer.json()["job_result"]["id"])
    assert first["status"]["value"] == "SUCCESS", first

    other = Api(stack, make_token(stack, "rerunner", superuser=True))
    again = other.client.post(f"/api/extras/job-results/{first['id']}/rerun/")

    assert again.status_code == 201, again.text
    assert again.json()["scheduled_job"] is None
    second = other.wait_result(again.json()["job_result"]["id"])
    assert second["status"]["value"] == "SUCCESS", second
    assert second["id"] != first["id"]
    assert second["task_kwargs"] == first["task_kwargs"] == {**inputs, "pause": 0}
    assert second["result"] == first["result"] == inputs
    assert second["job_model"] == first["job_model"]
    assert second["celery_kwargs"]["queue"] == first["celery_kwargs"]["queue"]
    assert (first["requested_by"], second["requested_by"]) == ("admin", "rerunner")


def test_a_sensitive_run_and_a_read_upload_are_refused(stack: Stack) -> None:
    admin = Api(stack, stack.admin_token)
    login = admin.run(LOGIN, {"data": {"username": "netops", "password": "s3cretpassw0rd"}})
    assert login.status_code == 201, login.text
    upload = admin.client.post(
        f"/api/extras/jobs/{FILE_JOB}/run/",
        data={"interval": "0"},
        files={"myfile": ("hosts.txt", b"edge-1\n", "text/plain")},
    )
    assert upload.status_code == 201, upload.text
    for answer in (login, upload):
        ended = admin.wait_result(answer.json()["job_result"]["id"])
        assert ended["status"]["value"] == "SUCCESS", ended
    before = _runs(stack)

    sensitive = admin.client.post(f"/api/extras/job-results/{login.json()['job_result']['id']}/rerun/")
    read = admin.client.post(f"/api/extras/job-results/{upload.json()['job_result']['id']}/rerun/")

    assert sensitive.status_code == 409
    assert "sensitive" in sensitive.json()["detail"]
    assert read.status_code == 409
    assert "myfile" in read.json()["detail"]
    assert _runs(stack) == before
