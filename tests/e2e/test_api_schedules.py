"""Nautobot's scheduled jobs through the API on the test cluster: curl's JSON and multipart schedules become
JobSchedules, listed, paused, resumed and deleted; a fire's run ends and its job result names the schedule;
a sensitive job's password is in no spec, answer, row or log; pynautobot's scheduled_jobs and run(schedule=).

The fires wait for the operator's clock (the same machine's): a start 20 s ahead (Nautobot's earliest is
15 s), awaited with timeouts, never a sleep.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pynautobot
import pytest

from tests.cluster.cluster import wait_for
from tests.conftest import PostgresServer
from tests.e2e.api_support import Api, database_dump
from tests.e2e.test_api import curl
from tests.e2e.test_schedules import condition, get, runs_of, status_of
from tests.stack import ADMIN, Stack

pytestmark = pytest.mark.cluster

HELLO = "hello_world.HelloWorld"
LOGIN = "device_login.DeviceLogin"  # sensitive variables


@pytest.fixture(scope="module")
def stack(api_stack: Stack) -> Stack:
    return api_stack


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Api:
    api = Api(stack, stack.admin_token)
    for class_path in (HELLO, LOGIN):
        api.enable(class_path)
    return api


def ahead(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0).isoformat()


def scheduled_job(admin: Api, scheduled_id: str) -> dict[str, Any]:
    answer = admin.get(f"/api/extras/scheduled-jobs/{scheduled_id}/")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def fired_run(stack: Stack, schedule: str) -> dict[str, Any]:
    """The first run the operator made for the schedule (its JobRun, once it exists)."""
    runs: list[dict[str, Any]] = wait_for(
        f"a run of {schedule}", lambda: runs_of(stack, schedule) or None, timeout=120, interval=0.5
    )
    return runs[0]


def gone(stack: Stack, kind: str, name: str) -> bool:
    found = stack.cluster.kubectl("get", kind, name, "-n", stack.namespace, check=False)
    return found.returncode != 0 and "NotFound" in found.stderr


def test_curl_schedules_in_json_and_multipart_are_listed_paused_resumed_and_deleted(
    admin: Api, stack: Stack
) -> None:
    token, host = stack.admin_token, stack.api_url
    common = ["-H", f"Authorization: Token {token}", "-H", "Accept: application/json"]
    suffix = secrets.token_hex(3)
    job_id = admin.job(HELLO)["id"]
    body = {
        "data": {"who": "curl"},
        "schedule": {"name": f"Nightly {suffix}", "interval": "daily", "start_time": ahead(3600)},
    }
    by_json = curl(
        "-X", "POST", *common, "-H", "Content-Type: application/json",
        f"{host}/api/extras/jobs/{job_id}/run/", "--data", json.dumps(body),
    )  # fmt: skip
    by_form = curl(
        "-X", "POST", *common, "-H", "Content-Type: multipart/form-data",
        f"{host}/api/extras/jobs/{quote('Hello world')}/run/",
        "-F", f'_schedule_name="Mondays {suffix}"', "-F", '_schedule_interval="custom"',
        "-F", '_schedule_crontab="0 3 * * 1"', "-F", 'who="form"',
    )  # fmt: skip
    made: dict[str, dict[str, Any]] = {}
    for answer in (by_json, by_form):
        assert answer["status"] == 201, answer
        answer_body = answer["body"]
        assert isinstance(answer_body, dict)
        assert answer_body["job_result"] is None
        record = answer_body["scheduled_job"]
        made[record["name"]] = record
        schedule = get(stack, "jobschedule", record["job_schedule"]["name"])
        assert schedule["metadata"]["uid"] == record["id"]
        # Created by the API's identity for the caller: admission kept the requester it named.
        assert schedule["spec"]["requestedBy"] == ADMIN
    daily, mondays = made[f"Nightly {suffix}"], made[f"Mondays {suffix}"]
    assert (daily["interval"], daily["kwargs"], daily["user"]["object_type"]) == (
        "daily",
        {"who": "curl"},
        "users.user",
    )
    assert (mondays["interval"], mondays["crontab"], mondays["kwargs"]) == (
        "custom",
        "0 3 * * 1",
        {"who": "form"},
    )
    assert condition(status_of(stack, daily["job_schedule"]["name"]), "Ready")["reason"] == "Scheduled"

    listed = admin.get("/api/extras/scheduled-jobs/", job_model="Hello world", q=suffix).json()
    assert sorted(item["name"] for item in listed["results"]) == sorted(made)
    assert admin.get("/api/extras/scheduled-jobs/", name=f"Nightly {suffix}").json()["count"] == 1

    url = f"/api/extras/scheduled-jobs/{daily['id']}/"
    name = daily["job_schedule"]["name"]
    paused = admin.client.patch(url, json={"enabled": False})
    assert paused.status_code == 200, paused.text
    assert paused.json()["enabled"] is False
    assert get(stack, "jobschedule", name)["spec"]["suspend"] is True
    assert condition(status_of(stack, name), "Ready")["reason"] == "Suspended"
    resumed = admin.client.patch(url, json={"enabled": True})
    assert resumed.json()["enabled"] is True
    assert condition(status_of(stack, name), "Ready")["reason"] == "Scheduled"
    # Resumed by the admin, still requested by whoever scheduled it.
    assert get(stack, "jobschedule", name)["spec"]["requestedBy"] == ADMIN

    for record in made.values():
        assert admin.client.delete(f"/api/extras/scheduled-jobs/{record['id']}/").status_code == 204
        schedule_name = record["job_schedule"]["name"]
        wait_for("the JobSchedule deleted", lambda n=schedule_name: gone(stack, "jobschedule", n), timeout=60)
        assert admin.get(f"/api/extras/scheduled-jobs/{record['id']}/").status_code == 404

    refused = admin.run(
        HELLO, {"data": {}, "schedule": {"name": "late", "interval": "future", "start_time": ahead(-60)}}
    )
    assert refused.status_code == 400
    assert refused.json() == {
        "schedule": {
            "start_time": [
                "Please enter a valid date and time greater than or equal to the current date and time."
            ]
        }
    }


def test_a_scheduled_run_fires_and_its_result_names_its_scheduled_job(admin: Api, stack: Stack) -> None:
    answer = admin.run(
        HELLO,
        {
            "data": {"who": "the schedule"},
            "schedule": {
                "name": f"Soon {secrets.token_hex(3)}",
                "interval": "future",
                "start_time": ahead(20),
            },
        },
    )
    assert answer.status_code == 201, answer.text
    scheduled = answer.json()["scheduled_job"]
    run = fired_run(stack, scheduled["job_schedule"]["name"])
    result = admin.wait_result(run["metadata"]["uid"], timeout=180)
    assert result["status"]["value"] == "SUCCESS", result
    assert result["task_kwargs"] == {"who": "the schedule"}
    assert result["scheduled_job"]["id"] == scheduled["id"]
    assert result["scheduled_job"]["url"] == scheduled["url"]
    assert result["user"] == scheduled["user"]

    def finished() -> dict[str, Any] | None:
        record = scheduled_job(admin, scheduled["id"])
        return record if record["state"]["value"] == "completed" else None

    record = wait_for("the scheduled job completed", finished, timeout=60, interval=0.5)
    assert (record["total_run_count"], record["enabled"]) == (1, False)
    assert record["last_run_at"] is not None
    assert datetime.fromisoformat(record["last_run_at"]) == datetime.fromisoformat(scheduled["start_time"])


def test_a_sensitive_jobs_password_is_in_no_spec_answer_row_or_log(
    admin: Api, stack: Stack, postgres: PostgresServer
) -> None:
    password = f"Pw{secrets.token_hex(8)}9"
    answer = admin.run(
        LOGIN,
        {
            "data": {"username": "netops", "password": password},
            "schedule": {
                "name": f"Login {secrets.token_hex(3)}",
                "interval": "future",
                "start_time": ahead(20),
            },
        },
    )
    assert answer.status_code == 201, answer.text
    scheduled = answer.json()["scheduled_job"]
    schedule_name = scheduled["job_schedule"]["name"]
    run = fired_run(stack, schedule_name)
    result = admin.wait_result(run["metadata"]["uid"], timeout=180)
    assert result["status"]["value"] == "SUCCESS", result
    # The job got the password, from the schedule's Secret through the fire's own copy.
    assert result["result"] == {"user": "netops", "password_length": len(password)}
    assert result["task_kwargs"] is None

    secret_name = get(stack, "jobschedule", schedule_name)["spec"]["inputsSecretRef"]
    secret = get(stack, "secret", secret_name)
    assert secret["type"] == "jobplane.io/schedule-inputs"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == scheduled["id"]

    kubectl = stack.cluster.kubectl
    places = {
        "run answer": answer.text,
        "scheduled job": json.dumps(scheduled_job(admin, scheduled["id"])),
        "scheduled jobs": admin.get("/api/extras/scheduled-jobs/").text,
        "job result": json.dumps(result),
        "log lines": json.dumps(admin.logs(result["id"])),
        "jobschedules": kubectl("get", "jobschedules", "-n", stack.namespace, "-o", "json").stdout,
        "jobruns": kubectl("get", "jobruns", "-n", stack.namespace, "-o", "json").stdout,
        "jobs": kubectl("get", "jobs", "-n", stack.namespace, "-o", "json").stdout,
        "api log": stack.log_path("api").read_text(errors="replace"),
        "operator log": stack.log_path("operator").read_text(errors="replace"),
        "database": database_dump(stack, postgres),
    }
    assert "netops" in places["database"]  # the dump is real: the job's result is in it
    assert [where for where, text in places.items() if password in text] == []

    # Deleting the scheduled job takes its inputs Secret along (owner reference).
    assert admin.client.delete(f"/api/extras/scheduled-jobs/{scheduled['id']}/").status_code == 204
    wait_for("the schedule's inputs Secret deleted", lambda: gone(stack, "secret", secret_name), timeout=60)


def test_pynautobot_schedules_a_job_and_reads_and_deletes_scheduled_jobs(admin: Api, stack: Stack) -> None:
    nb = pynautobot.api(stack.api_url, token=stack.admin_token)
    job = nb.extras.jobs.get(name="Hello world")
    name = f"Weekly {secrets.token_hex(3)}"
    made = nb.extras.jobs.run(
        job_id=job.id,
        data={"who": "pynautobot"},
        schedule={"name": name, "interval": "weekly", "start_time": ahead(7200)},
    )
    assert made.job_result is None
    assert made.scheduled_job.name == name

    listed = nb.extras.scheduled_jobs.all()
    assert name in [item.name for item in listed]
    assert len(listed) == admin.get("/api/extras/scheduled-jobs/").json()["count"]
    record = nb.extras.scheduled_jobs.get(made.scheduled_job.id)
    assert (record.name, record.interval, record.enabled) == (name, "weekly", True)
    assert dict(record.kwargs) == {"who": "pynautobot"}  # pynautobot makes a Record of a dict
    assert record.job_model.id == job.id
    assert record.job_model.name == "Hello world"  # followed to the job's own record
    assert str(record) == f"{name}: weekly"
    assert nb.extras.scheduled_jobs.get(name=name) == record
    assert record.delete() is True
    assert nb.extras.scheduled_jobs.get(made.scheduled_job.id) is None
