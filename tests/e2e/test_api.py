"""The API end to end: Nautobot's documented requests run real jobs in pods; results, logs and files land in
Postgres; permissions; sensitive inputs; kubectl-made runs; cancel; `jobplane runjob` through the API."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from tests.builders import job_run
from tests.cluster.cluster import wait_for
from tests.conftest import PostgresServer
from tests.e2e.api_support import Api, database_dump, make_token
from tests.stack import Stack

pytestmark = pytest.mark.cluster

HELLO = "hello_world.HelloWorld"
VARIABLES = "api_examples.ExampleVariables"
FILE_JOB = "api_examples.ExampleFile"
SLOW = "api_examples.SlowCounter"
LOGIN = "device_login.DeviceLogin"


@pytest.fixture(scope="module")
def stack(api_stack: Stack) -> Stack:
    return api_stack


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Api:
    api = Api(stack, stack.admin_token)
    for class_path in (HELLO, VARIABLES, FILE_JOB, SLOW, LOGIN):
        api.enable(class_path)
    return api


def curl(*args: str) -> dict[str, object]:
    """Run curl as a user would; the body must be JSON (all the documented calls answer JSON)."""
    done = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    body, _, code = done.stdout.rpartition("\n")
    return {"status": int(code), "body": json.loads(body)}


def test_the_three_documented_requests_run_jobs_in_pods(admin: Api, stack: Stack, tmp_path: Path) -> None:
    token, host = stack.admin_token, stack.api_url
    common = ["-H", f"Authorization: Token {token}", "-H", "Accept: application/json; version=1.3; indent=4"]

    # 1. By UUID, with no user inputs.
    job_id = admin.job(HELLO)["id"]
    by_id = curl(
        "-X", "POST", *common, "-H", "Content-Type: application/json", f"{host}/api/extras/jobs/{job_id}/run/"
    )
    # 2. By name, with inputs.
    by_name = curl(
        "-X", "POST", *common, "-H", "Content-Type: application/json",
        f"{host}/api/extras/jobs/{quote('Example variables')}/run/",
        "--data", '{"data": {"string_variable": "somevalue", "integer_variable": 123}}',
    )  # fmt: skip
    # 3. Multipart, with a file.
    upload = tmp_path / "file.txt"
    upload.write_text("alpha\nbeta\ngamma\n")
    multipart = curl(
        "-X", "POST", *common, "-H", "Content-Type: multipart/form-data",
        f"{host}/api/extras/jobs/{quote('Example file')}/run/",
        "-F", '_schedule_interval="immediately"', "-F", '_schedule_start_time="2022-10-18T17:31:23.698Z"',
        "-F", 'interval="3"', "-F", f'myfile=@"{upload}"',
    )  # fmt: skip

    for answer in (by_id, by_name, multipart):
        assert answer["status"] == 201, answer
        body = answer["body"]
        assert isinstance(body, dict)
        assert body["scheduled_job"] is None
        assert body["job_result"]["status"]["value"] == "PENDING"

    results = {
        name: admin.wait_result(answer["body"]["job_result"]["id"], timeout=180)  # type: ignore[index]
        for name, answer in (("hello", by_id), ("variables", by_name), ("file", multipart))
    }
    assert {name: result["status"]["value"] for name, result in results.items()} == dict.fromkeys(
        results, "SUCCESS"
    ), results
    assert results["hello"]["result"] == {"greeting": "Hello, world!"}
    assert results["variables"]["result"] == {"string_variable": "somevalue", "integer_variable": 123}
    assert results["variables"]["task_kwargs"] == {"string_variable": "somevalue", "integer_variable": 123}
    assert results["file"]["result"] == {"lines": 3}
    # Each really ran in a pod of the stack's namespace (the run's pod is recorded on the JobRun).
    for result in results.values():
        assert result["run"] is not None
        assert result["date_started"] is not None
        run_name = result["run"]["name"]
        # The pod's own report can reach the API before the operator sees the pod end.
        status = wait_for(
            f"jobrun {run_name} Succeeded",
            lambda run_name=run_name: (
                s if (s := stack.cluster.get_json("jobrun", run_name, "-n", stack.namespace)["status"])
                .get("phase") == "Succeeded" else None
            ),
            timeout=60,
        )  # fmt: skip
        assert status["podName"]

    file_logs = admin.logs(results["file"]["id"])
    assert [entry["message"] for entry in file_logs if entry["grouping"] == "lines"] == [
        "line 1: alpha",
        "line 2: beta",
        "line 3: gamma",
    ]
    assert results["file"]["info_log_count"] >= 3
    assert results["file"]["success_log_count"] == 1
    (report,) = results["file"]["files"]
    download = admin.client.get(f"/api/extras/file-proxies/{report['id']}/download/")
    assert download.status_code == 200
    assert download.content == b"1: alpha\n2: beta\n3: gamma\n"
    # The uploaded input never travelled in the JobRun: its spec names a file id only.
    run_name = results["file"]["run"]["name"]
    spec = stack.cluster.get_json("jobrun", run_name, "-n", stack.namespace)["spec"]
    assert "alpha" not in json.dumps(spec)


def test_logs_are_readable_while_the_job_runs(admin: Api) -> None:
    answer = admin.run(SLOW, {"data": {"steps": 30, "pause": 1}})
    assert answer.status_code == 201, answer.text
    result_id = answer.json()["job_result"]["id"]

    def some_steps_while_running() -> list[str] | None:
        steps = [entry["message"] for entry in admin.logs(result_id) if entry["grouping"] == "count"]
        result = admin.client.get(f"/api/extras/job-results/{result_id}/").json()
        return steps if len(steps) >= 3 and result["status"]["value"] == "STARTED" else None

    steps = wait_for("three steps logged while running", some_steps_while_running, timeout=120, interval=0.5)
    assert steps[:3] == ["step 1 of 30", "step 2 of 30", "step 3 of 30"]

    # Cancel it: the pod goes, the result ends REVOKED.
    cancelled = admin.client.post(f"/api/extras/job-results/{result_id}/cancel/")
    assert cancelled.status_code == 200, cancelled.text
    final = admin.wait_result(result_id, timeout=60)
    assert final["status"]["value"] == "REVOKED"
    again = admin.client.post(f"/api/extras/job-results/{result_id}/cancel/")
    assert again.status_code == 409


def test_a_jobrun_applied_with_kubectl_appears_in_job_results(admin: Api, stack: Stack) -> None:
    name = f"kubectl-{secrets.token_hex(3)}"
    definition = admin.job(HELLO)["natural_slug"]
    body = job_run(name, namespace=stack.namespace, job=definition, data={"who": "kubectl"})
    stack.cluster.kubectl("apply", "-f", "-", input=json.dumps(body))
    uid = stack.cluster.get_json("jobrun", name, "-n", stack.namespace)["metadata"]["uid"]

    def mirrored() -> dict[str, object] | None:
        response = admin.client.get("/api/extras/job-results/", params={"run_name": name})
        results = response.json()["results"]
        return results[0] if results and results[0]["status"]["value"] == "SUCCESS" else None

    listed = wait_for("the kubectl run in job-results", mirrored, timeout=120, interval=0.5)
    assert listed["id"] == uid
    detail = admin.client.get(f"/api/extras/job-results/{uid}/").json()
    assert detail["result"] == {"greeting": "Hello, kubectl!"}
    assert detail["task_name"] == HELLO


def test_a_deleted_result_takes_its_jobrun_and_job_along_and_stays_deleted(admin: Api, stack: Stack) -> None:
    response = admin.run(HELLO, {"data": {"who": "Del"}})
    assert response.status_code == 201, response.text
    result_id = response.json()["job_result"]["id"]
    admin.wait_result(result_id, "SUCCESS")
    detail = admin.client.get(f"/api/extras/job-results/{result_id}/").json()
    run_name = detail["run"]["name"]
    job_name = wait_for(
        "the run's Job named",
        lambda: (stack.cluster.get_json("jobrun", run_name, "-n", stack.namespace).get("status") or {}).get(
            "jobName"
        ),
        timeout=60,
        interval=0.5,
    )

    assert admin.client.delete(f"/api/extras/job-results/{result_id}/").status_code == 204

    def gone(kind: str, name: str) -> bool:
        proc = stack.cluster.kubectl("get", kind, name, "-n", stack.namespace, check=False)
        return proc.returncode != 0 and "NotFound" in proc.stderr

    wait_for("the JobRun deleted", lambda: gone("jobrun", run_name), timeout=60, interval=0.5)
    # Its batch/v1 Job (and so its pod) goes through the owner reference.
    wait_for("the Job collected", lambda: gone("job", job_name), timeout=60, interval=0.5)
    # The mirror saw the JobRun go (its DELETED event) and recorded nothing again.
    assert admin.client.get(f"/api/extras/job-results/{result_id}/").status_code == 404
    listed = admin.client.get("/api/extras/job-results/", params={"run_name": run_name}).json()
    assert listed["count"] == 0


def test_bad_requests_get_nautobot_errors(admin: Api) -> None:
    bad_data = admin.run(
        VARIABLES, {"data": {"string_variable": "x", "integer_variable": "many", "extra": 1}}
    )
    assert bad_data.status_code == 400
    errors = bad_data.json()["errors"]
    assert errors["extra"] == ["Job data contained an unknown property"]
    assert "integer_variable" in errors
    unknown_queue = admin.run(VARIABLES, {"data": {}, "task_queue": "nope"})
    assert unknown_queue.status_code == 400
    assert unknown_queue.json() == {"task_queue": ['"nope" is not a valid choice.']}
    scheduled = admin.run(VARIABLES, {"data": {}, "schedule": {"interval": "daily", "name": "nightly"}})
    assert scheduled.status_code == 400
    assert "schedule" in scheduled.json()
    assert admin.run("no.Such").status_code == 404
    not_utf8 = admin.client.post(
        f"/api/extras/jobs/{VARIABLES}/run/", content=b"\xff", headers={"Content-Type": "application/json"}
    )
    assert not_utf8.status_code == 400
    assert not_utf8.json() == {"detail": "JSON parse error - the body is not UTF-8 text."}

    disabled = admin.job("noop.Noop")
    assert disabled["enabled"] is False
    refused = admin.run(disabled["id"])
    assert refused.status_code == 403
    assert refused.json() == {"detail": "This job is not enabled to be run."}


def test_the_permission_matrix(admin: Api, stack: Stack) -> None:
    suffix = secrets.token_hex(3)
    viewer, runner, compliance = f"viewer-{suffix}", f"runner-{suffix}", f"compliance-{suffix}"
    for user in (viewer, runner, compliance):
        stack.cli("users", "create", user)
    objects = "extras.job,extras.jobresult,extras.joblogentry,extras.fileproxy"
    stack.cli("permissions", "create", f"view-{suffix}", "--object-types", objects, "--actions", "view",
              "--user", viewer, "--user", runner, "--user", compliance)  # fmt: skip
    stack.cli("permissions", "create", f"run-{suffix}", "--object-types", "extras.job", "--actions", "run",
              "--user", runner)  # fmt: skip
    stack.cli("permissions", "create", f"run-api-examples-{suffix}", "--object-types", "extras.job",
              "--actions", "run", "--constraints", json.dumps({"grouping": "API examples"}),
              "--user", compliance)  # fmt: skip
    good = {"data": {"string_variable": "s", "integer_variable": 1}}

    nobody = Api(stack, None)
    assert nobody.get("/api/extras/jobs/").status_code == 403
    assert nobody.run(VARIABLES, good).status_code == 403

    view_only = Api(stack, make_token(stack, viewer))
    assert view_only.get("/api/extras/jobs/").status_code == 200
    assert view_only.run(VARIABLES, good).status_code == 403

    read_only = Api(stack, make_token(stack, runner, "--read-only"))
    assert read_only.get("/api/extras/job-results/").status_code == 200
    assert read_only.run(VARIABLES, good).status_code == 403

    constrained = Api(stack, make_token(stack, compliance))
    # They may view every job but run only grouping "API examples": hello_world is "Getting started".
    assert constrained.run(HELLO).status_code == 403
    allowed = constrained.run(VARIABLES, good)
    assert allowed.status_code == 201, allowed.text

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    expired = Api(stack, make_token(stack, runner, "--expires", tomorrow))
    assert expired.get("/api/extras/jobs/").status_code == 200
    # Its expiry comes by the database's clock, not by waiting on this machine's speed.
    with psycopg.connect(stack.database_url.replace("postgresql+psycopg", "postgresql")) as conn:
        moved = conn.execute(
            "UPDATE users_token SET expires = now() - interval '1 second' WHERE expires IS NOT NULL"
            " AND user_id = (SELECT id FROM users_user WHERE username = %s)",
            (runner,),
        ).rowcount
    assert moved == 1
    refused = expired.get("/api/extras/jobs/")
    assert refused.status_code == 403
    assert "expired" in refused.json()["detail"].lower()

    runner_api = Api(stack, make_token(stack, runner))
    assert runner_api.run(VARIABLES, good).status_code == 201
    assert admin.run(VARIABLES, good).status_code == 201  # the superuser


def test_sensitive_inputs_are_nowhere_but_in_the_job(
    admin: Api, stack: Stack, postgres: PostgresServer
) -> None:
    password = f"Pw{secrets.token_hex(8)}9"
    answer = admin.run(LOGIN, {"data": {"username": "netops", "password": password}})
    assert answer.status_code == 201, answer.text
    result = admin.wait_result(answer.json()["job_result"]["id"], timeout=180)
    assert result["status"]["value"] == "SUCCESS", result
    assert result["result"] == {"user": "netops", "password_length": len(password)}
    assert result["task_kwargs"] is None

    places = {
        "jobruns": stack.cluster.kubectl("get", "jobruns", "-n", stack.namespace, "-o", "json").stdout,
        "jobs": stack.cluster.kubectl("get", "jobs", "-n", stack.namespace, "-o", "json").stdout,
        "pods": stack.cluster.kubectl("get", "pods", "-n", stack.namespace, "-o", "json").stdout,
        "log lines": json.dumps(admin.logs(result["id"])),
        "api log": stack.log_path("api").read_text(errors="replace"),
        "operator log": stack.log_path("operator").read_text(errors="replace"),
    }
    run_name = result["run"]["name"]
    run = wait_for(
        f"jobrun {run_name} Succeeded",
        lambda: (s if (s := stack.cluster.get_json("jobrun", run_name, "-n", stack.namespace)["status"])
                 .get("phase") == "Succeeded" else None),
        timeout=60,
    )  # fmt: skip
    pod = run["podName"]
    places["pod log"] = stack.cluster.kubectl("logs", pod, "-n", stack.namespace).stdout
    places["database"] = database_dump(stack, postgres)
    assert "netops" in places["database"]  # the dump is real: the job's result is in it
    leaked = [where for where, text in places.items() if password in text]
    assert leaked == []
    # The inputs Secret is gone once the run ended.
    wait_for(
        "the inputs Secret deleted",
        lambda: (
            "jobplane-inputs-" not in stack.cluster.kubectl("get", "secrets", "-n", stack.namespace).stdout
        ),
        timeout=30,
    )


def test_runjob_submits_through_the_api_and_follows_the_run(admin: Api, stack: Stack) -> None:
    env = {**os.environ, "JOBPLANE_URL": stack.api_url, "JOBPLANE_TOKEN": stack.admin_token}
    ok = subprocess.run(
        [sys.executable, "-m", "jobplane.cli", "runjob", VARIABLES, "--data",
         '{"string_variable": "cli", "integer_variable": 7}'],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "Status: SUCCESS" in ok.stdout
    assert "string_variable=cli integer_variable=7" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "jobplane.cli", "runjob", VARIABLES, "--data", '{"integer_variable": -1}'],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "string_variable" in bad.stderr


def test_lists_paginate_like_nautobot(admin: Api) -> None:
    first = admin.get("/api/extras/job-results/", limit=2).json()
    assert first["count"] >= 3
    assert len(first["results"]) == 2
    assert first["previous"] is None
    second = admin.client.get(first["next"]).json()
    assert second["previous"] is not None
    assert {r["id"] for r in first["results"]}.isdisjoint({r["id"] for r in second["results"]})
    jobs = admin.get("/api/extras/jobs/", module_name__isw="api_").json()
    assert {job["class_path"] for job in jobs["results"]} == {VARIABLES, FILE_JOB, SLOW}
    queues = admin.get("/api/extras/job-queues/").json()
    assert [queue["name"] for queue in queues["results"]] == ["default"]
    assert admin.get("/api/status/").json()["database"] == "ok"
