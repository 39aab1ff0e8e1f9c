"""JobSchedules on the test cluster: fires that become runs, no double fire across an operator crash,
suspend, concurrencyPolicy Forbid, and admission tried as people who are not cluster admins.

Where a test can, it avoids the wall clock: a schedule `Once` at a time already past (within
startingDeadlineSeconds) fires at once. The every-minute schedules wait for real minute boundaries: that is
what they test.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.builders import job_schedule
from tests.cluster.cluster import wait_for
from tests.e2e.api_support import Api
from tests.e2e.test_admission import User
from tests.stack import OPERATOR_IDENTITY, Stack

pytestmark = pytest.mark.cluster

HELLO = "hello_world.HelloWorld"
SLOW = "api_examples.SlowCounter"
LOGIN = "device_login.DeviceLogin"  # sensitive variables
SCHEDULED_AT = "jobplane.io/scheduled-at"


@pytest.fixture(scope="module")
def stack(api_stack: Stack) -> Stack:
    api = Api(api_stack, api_stack.admin_token)
    for class_path in (HELLO, SLOW, LOGIN):
        api.enable(class_path)
    return api_stack


def kubectl(stack: Stack, *args: str, **kw: Any) -> Any:
    return stack.cluster.kubectl(*args, "-n", stack.namespace, **kw)


def apply_schedule(stack: Stack, name: str, spec: dict[str, Any]) -> None:
    body = job_schedule(name, **spec)
    kubectl(stack, "apply", "--server-side", "-f", "-", input=json.dumps(body))


def get(stack: Stack, kind: str, name: str) -> dict[str, Any]:
    return dict(stack.cluster.get_json(kind, name, "-n", stack.namespace))


def runs_of(stack: Stack, schedule: str) -> list[dict[str, Any]]:
    listed = stack.cluster.get_json(
        "jobruns", "-n", stack.namespace, "-l", f"jobplane.io/schedule={schedule}"
    )
    return sorted(listed["items"], key=lambda run: run["metadata"]["annotations"][SCHEDULED_AT])


def status_of(stack: Stack, name: str) -> dict[str, Any]:
    """The schedule's status once the operator has seen its current spec."""

    def seen() -> dict[str, Any] | None:
        obj = get(stack, "jobschedule", name)
        status = obj.get("status") or {}
        return status if status.get("observedGeneration") == obj["metadata"]["generation"] else None

    return wait_for(f"jobschedule {name} reconciled", seen, timeout=60)


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def wait_phase(stack: Stack, run: str, *phases: str, timeout: float = 180) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = get(stack, "jobrun", run).get("status") or {}
        return status if status.get("phase") in phases else None

    return wait_for(f"jobrun {run} in {phases}", check, timeout=timeout)


def past_once(seconds_ago: int = 20, **spec: Any) -> dict[str, Any]:
    start = (datetime.now(UTC) - timedelta(seconds=seconds_ago)).replace(microsecond=0)
    return {
        "job": HELLO,
        "data": {"who": "schedule"},
        "schedule": {"interval": "Once", "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "startingDeadlineSeconds": 600,
        **spec,
    }


def fire_name(schedule: str, start_time: str) -> str:
    moment = datetime.fromisoformat(start_time.replace("Z", "+00:00"))
    return f"{schedule}-{moment:%Y%m%d%H%M}"


def test_a_once_schedule_already_due_fires_at_once_and_its_run_completes(stack: Stack) -> None:
    name = f"once-{secrets.token_hex(3)}"
    spec = past_once()
    apply_schedule(stack, name, spec)
    run_name = fire_name(name, spec["schedule"]["startTime"])
    finished = wait_phase(stack, run_name, "Succeeded", "Failed")
    assert finished["phase"] == "Succeeded", finished
    run = get(stack, "jobrun", run_name)
    schedule = get(stack, "jobschedule", name)
    owner = run["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("JobSchedule", name, schedule["metadata"]["uid"])
    # The fire carries the schedule's requester (the admin who applied it), not the operator's identity.
    assert run["spec"]["requestedBy"] == schedule["spec"]["requestedBy"] != OPERATOR_IDENTITY
    assert run["spec"]["data"] == {"who": "schedule"}
    status = status_of(stack, name)
    assert status["lastScheduleTime"] == spec["schedule"]["startTime"]
    assert "nextScheduleTime" not in status
    assert condition(status, "Ready")["reason"] == "Finished"
    wait_for(
        "the run's phase in the schedule's status",
        lambda: (
            [r.get("phase") for r in (get(stack, "jobschedule", name).get("status") or {}).get("runs", [])]
            == ["Succeeded"]
        ),
        timeout=30,
    )
    assert runs_of(stack, name) == [run]


def test_a_fire_beyond_its_starting_deadline_is_skipped_and_said(stack: Stack) -> None:
    name = f"late-{secrets.token_hex(3)}"
    apply_schedule(stack, name, past_once(seconds_ago=120, startingDeadlineSeconds=30))
    status = status_of(stack, name)
    assert status["lastSkipped"]["reason"] == "MissedStartingDeadline"
    assert condition(status, "FireSkipped")["status"] == "True"
    assert runs_of(stack, name) == []


def test_suspend_stops_fires_until_resumed(stack: Stack) -> None:
    name = f"paused-{secrets.token_hex(3)}"
    spec = past_once(suspend=True)
    apply_schedule(stack, name, spec)
    status = status_of(stack, name)
    assert condition(status, "Ready")["reason"] == "Suspended"
    assert runs_of(stack, name) == []
    apply_schedule(stack, name, {**spec, "suspend": False})
    run_name = fire_name(name, spec["schedule"]["startTime"])
    wait_for(
        f"jobrun {run_name}",
        lambda: [r["metadata"]["name"] for r in runs_of(stack, name)] == [run_name],
        timeout=60,
    )


def test_a_sensitive_schedules_inputs_reach_each_fire_through_a_secret_of_its_own(stack: Stack) -> None:
    name = f"login-{secrets.token_hex(3)}"
    password = f"pw{secrets.token_hex(8)}"
    spec = {**past_once(suspend=True, inputsSecretRef=f"{name}-inputs"), "job": LOGIN, "data": {}}
    apply_schedule(stack, name, spec)
    schedule = get(stack, "jobschedule", name)
    owner = {"apiVersion": "jobplane.io/v1alpha1", "kind": "JobSchedule", "name": name}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "jobplane.io/schedule-inputs",
        "metadata": {
            "name": f"{name}-inputs",
            "ownerReferences": [{**owner, "uid": schedule["metadata"]["uid"], "controller": True}],
        },
        "stringData": {"data.json": json.dumps({"username": "ops", "password": password})},
    }
    kubectl(stack, "create", "-f", "-", input=json.dumps(secret))
    apply_schedule(stack, name, {**spec, "suspend": False})
    run_name = fire_name(name, spec["schedule"]["startTime"])
    wait_for(f"jobrun {run_name}", lambda: runs_of(stack, name) or None, timeout=60)
    finished = wait_phase(stack, run_name, "Succeeded", "Failed")
    assert finished["phase"] == "Succeeded", finished
    run = get(stack, "jobrun", run_name)
    assert run["spec"]["inputsSecretRef"] == f"{run_name}-inputs"  # the fire's own copy, not the schedule's
    result = Api(stack, stack.admin_token).wait_result(run["metadata"]["uid"])
    assert result["result"] == {"user": "ops", "password_length": len(password)}
    # The copy went with its run's end; the schedule's stays for the next fires.
    wait_for(
        "the fire's inputs Secret deleted",
        lambda: kubectl(stack, "get", "secret", f"{run_name}-inputs", check=False).returncode != 0,
        timeout=60,
    )
    assert kubectl(stack, "get", "secret", f"{name}-inputs", check=False).returncode == 0
    for text in (
        json.dumps(run),
        json.dumps(get(stack, "jobschedule", name)),
        json.dumps(result),
        stack.log_path("operator").read_text(errors="replace"),
    ):
        assert password not in text


def test_bad_schedules_are_refused_at_apply(stack: Stack) -> None:
    def refused(name: str, spec: dict[str, Any]) -> str:
        body = {
            "apiVersion": "jobplane.io/v1alpha1",
            "kind": "JobSchedule",
            "metadata": {"name": name},
            "spec": spec,
        }
        answer = kubectl(stack, "apply", "-f", "-", input=json.dumps(body), check=False)
        assert answer.returncode != 0, f"{name} was accepted"
        return str(answer.stderr)

    cron = {"job": HELLO, "schedule": {"interval": "Crontab", "crontab": "0 25 * * *"}}
    assert "InvalidSchedule" in refused("bad-cron", cron)  # admission: cronsim refuses hour 25
    # The CRD's pattern (five fields) refuses it before admission is asked.
    assert "should match" in refused(
        "bad-fields", {**cron, "schedule": {"interval": "Crontab", "crontab": "@daily"}}
    )
    zone = {
        "job": HELLO,
        "schedule": {"interval": "Crontab", "crontab": "0 9 * * *", "timeZone": "Mars/Base"},
    }
    assert "not an IANA time zone" in refused("bad-zone", zone)
    assert "startTime is required" in refused("no-start", {"job": HELLO, "schedule": {"interval": "Daily"}})
    assert "at most 50 characters" in refused(
        "x" * 51, {**cron, "schedule": {"interval": "Once", "startTime": "2030-01-01T00:00:00Z"}}
    )
    assert "JobNotFound" in refused("no-job", {**past_once(), "job": "nope.Nope"})


@pytest.mark.timeout(900)  # three real minute boundaries, two operator restarts
def test_every_minute_fires_at_the_minute_and_never_twice_across_operator_crashes(stack: Stack) -> None:
    every = f"every-{secrets.token_hex(3)}"
    forbid = f"forbid-{secrets.token_hex(3)}"
    apply_schedule(stack, every, {"job": HELLO, "schedule": {"interval": "Crontab", "crontab": "* * * * *"}})
    # Forbid, with a run that outlasts the next minute: that fire is skipped, and said.
    apply_schedule(
        stack,
        forbid,
        {
            "job": SLOW,
            "data": {"steps": 240, "pause": 1},
            "schedule": {"interval": "Crontab", "crontab": "* * * * *"},
            "concurrencyPolicy": "Forbid",
        },
    )
    first = wait_for("the first fire", lambda: runs_of(stack, every) or None, timeout=90)[0]
    fired_at = datetime.fromisoformat(first["metadata"]["annotations"][SCHEDULED_AT].replace("Z", "+00:00"))
    created = datetime.fromisoformat(first["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    assert fired_at.second == 0
    assert timedelta(0) <= created - fired_at <= timedelta(seconds=5)  # the fire's lag

    # The operator crashes before the next minute and comes back after it: that fire happens, once.
    second_at = fired_at + timedelta(minutes=1)
    stack.restart_operator(until=lambda: datetime.now(UTC) >= second_at + timedelta(seconds=5))
    wait_for("the missed fire", lambda: len(runs_of(stack, every)) >= 2, timeout=60)
    # Crash again, wipe the schedule's status (lastScheduleTime gone), restart in the same minute: the
    # fire of second_at is known by its run (deterministic name), not made again.
    stack.restart_operator(
        until=lambda: kubectl(
            stack,
            "patch",
            "jobschedule",
            every,
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"status": null}',
        )
    )
    status = status_of(stack, every)
    third_at = second_at + timedelta(minutes=1)
    wait_for("the next minute's fire", lambda: len(runs_of(stack, every)) >= 3, timeout=120)
    runs = runs_of(stack, every)
    times = [run["metadata"]["annotations"][SCHEDULED_AT] for run in runs]
    assert times[:3] == [moment.strftime("%Y-%m-%dT%H:%M:%SZ") for moment in (fired_at, second_at, third_at)]
    assert len(set(times)) == len(times)  # never two runs for one fire
    assert [run["metadata"]["name"] for run in runs[:3]] == [
        f"{every}-{moment:%Y%m%d%H%M}" for moment in (fired_at, second_at, third_at)
    ]
    assert status["nextScheduleTime"] >= third_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    for run in runs[:2]:
        assert wait_phase(stack, run["metadata"]["name"], "Succeeded", "Failed")["phase"] == "Succeeded"

    forbidden = runs_of(stack, forbid)
    assert len(forbidden) == 1, [run["metadata"]["name"] for run in forbidden]
    skipped = get(stack, "jobschedule", forbid)["status"]["lastSkipped"]
    assert skipped["reason"] == "ConcurrencyForbidden"
    assert forbidden[0]["metadata"]["name"] in skipped["message"]
    kubectl(stack, "delete", "jobschedule", every, forbid, "--wait=false")


# --- the trust boundary ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def users(stack: Stack) -> dict[str, User]:
    """``scheduler`` may write schedules but not create runs; ``runner`` may do both; ``pauser`` may only
    patch schedules."""
    schedules = {
        "apiGroups": ["jobplane.io"],
        "resources": ["jobschedules"],
        "verbs": ["create", "get", "list", "patch", "update"],
    }
    runs = {"apiGroups": ["jobplane.io"], "resources": ["jobruns"], "verbs": ["create", "get", "list"]}
    pause = {"apiGroups": ["jobplane.io"], "resources": ["jobschedules"], "verbs": ["get", "patch"]}
    return {
        "scheduler": User(stack.cluster, stack.namespace, "scheduler", [schedules]),
        "runner": User(stack.cluster, stack.namespace, "runner", [schedules, runs]),
        "editor": User(stack.cluster, stack.namespace, "editor", [schedules, runs]),
        "pauser": User(stack.cluster, stack.namespace, "pauser", [pause]),
    }


def test_who_may_not_create_runs_may_not_schedule_them(stack: Stack, users: dict[str, User]) -> None:
    answer = users["scheduler"].apply("JobSchedule", f"sneaky-{secrets.token_hex(3)}", past_once())
    assert answer.returncode != 0
    assert "NotAllowedToCreateRuns" in answer.stderr


def test_fires_carry_whoever_last_decided_them_never_a_spoofed_name(
    stack: Stack, users: dict[str, User]
) -> None:
    name = f"owned-{secrets.token_hex(3)}"
    spec = past_once(suspend=True, requestedBy="admin")
    applied = users["runner"].apply("JobSchedule", name, spec)
    assert applied.returncode == 0, applied.stderr
    assert get(stack, "jobschedule", name)["spec"]["requestedBy"] == "runner"  # the spoof is replaced

    # Pausing changes nothing the fires do: allowed without the right to run, and still runner's.
    paused = users["pauser"].kubectl(
        "patch", "jobschedule", name, "--type=merge", "-p", '{"spec": {"failedRunsHistoryLimit": 0}}'
    )
    assert paused.returncode == 0, paused.stderr
    assert get(stack, "jobschedule", name)["spec"]["requestedBy"] == "runner"
    # Resuming decides that it fires: pauser may not create runs, so may not.
    resumed = users["pauser"].kubectl(
        "patch", "jobschedule", name, "--type=merge", "-p", '{"spec": {"suspend": false}}'
    )
    assert resumed.returncode != 0
    assert "NotAllowedToCreateRuns" in resumed.stderr
    # Nor may anyone write another name: the requester stays whoever last decided the fires.
    spoofed = users["editor"].kubectl(
        "patch", "jobschedule", name, "--type=merge", "-p", '{"spec": {"requestedBy": "admin"}}'
    )
    assert spoofed.returncode == 0, spoofed.stderr
    assert get(stack, "jobschedule", name)["spec"]["requestedBy"] == "runner"

    # editor resumes it with other data: the fire is editor's run, not runner's.
    edited = users["editor"].kubectl(
        "patch",
        "jobschedule",
        name,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"suspend": False, "data": {"who": "editor"}}}),
    )
    assert edited.returncode == 0, edited.stderr
    assert get(stack, "jobschedule", name)["spec"]["requestedBy"] == "editor"
    run_name = fire_name(name, spec["schedule"]["startTime"])
    wait_for(f"jobrun {run_name}", lambda: runs_of(stack, name) or None, timeout=60)
    run = get(stack, "jobrun", run_name)
    assert (run["spec"]["requestedBy"], run["spec"]["data"]) == ("editor", {"who": "editor"})
