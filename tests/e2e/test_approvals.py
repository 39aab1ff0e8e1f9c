"""Approvals through kubectl, as people who are not cluster admins, with the admission webhook active.

``rita`` requests runs and schedules; ``bob`` and ``dave`` hold the custom RBAC verb ``approve`` on jobruns
and jobschedules (group jobplane.io), as a CSR approver holds ``approve`` on signers; ``mallory`` may patch
runs but has no ``approve``. An approval-required job's run waits with no Job, is approved or denied by
someone else than its requester, and the decision is stamped from who set the annotation.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.cluster.cluster import wait_for
from tests.e2e.api_support import Api, make_token
from tests.e2e.test_admission import NOOP, User, override, run_status
from tests.stack import Stack

pytestmark = pytest.mark.cluster

RUNS = {"apiGroups": ["jobplane.io"], "resources": ["jobruns"], "verbs": ["create", "get", "list", "patch"]}
SCHEDULES = {"apiGroups": ["jobplane.io"], "resources": ["jobschedules"], "verbs": ["create", "get", "patch"]}
APPROVE = {"apiGroups": ["jobplane.io"], "resources": ["jobruns", "jobschedules"], "verbs": ["approve"]}


@pytest.fixture(scope="module")
def stack(api_stack: Stack) -> Stack:
    return api_stack


@pytest.fixture(scope="module")
def approval_required(stack: Stack) -> Any:
    admin = Api(stack, stack.admin_token)
    admin.enable(NOOP)
    override(stack, NOOP, approvalRequired=True)
    yield NOOP
    override(stack, NOOP, approvalRequired=None)


@pytest.fixture(scope="module")
def users(stack: Stack, approval_required: str) -> dict[str, User]:
    made = {
        # rita may approve too: what stops her approving her own runs is admission, not RBAC
        "rita": User(stack.cluster, stack.namespace, "rita", [RUNS, SCHEDULES, APPROVE]),
        "bob": User(stack.cluster, stack.namespace, "bob", [RUNS, SCHEDULES, APPROVE]),
        "dave": User(stack.cluster, stack.namespace, "dave", [RUNS, APPROVE]),
        "mallory": User(stack.cluster, stack.namespace, "mallory-approver", [RUNS]),
    }
    assert made["bob"].kubectl("auth", "can-i", "approve", "jobruns.jobplane.io").stdout.strip() == "yes"
    assert made["mallory"].kubectl("auth", "can-i", "approve", "jobruns.jobplane.io").stdout.strip() == "no"
    return made


def annotate(user: User, kind: str, name: str, value: str) -> Any:
    return user.kubectl("annotate", "--overwrite", kind, name, f"jobplane.io/approval={value}")


def jobs_of(stack: Stack, run: str) -> list[Any]:
    listed = stack.cluster.get_json("jobs", "-n", stack.namespace, "-l", f"jobplane.io/run={run}")
    return list(listed["items"])


def awaiting(stack: Stack, rita: User, prefix: str) -> str:
    name = f"{prefix}-{secrets.token_hex(3)}"
    applied = rita.apply("JobRun", name, {"job": NOOP})
    assert applied.returncode == 0, applied.stderr
    status = run_status(stack, name, "AwaitingApproval", timeout=60)
    assert status["reason"] == "AwaitingApproval"
    assert "requested by rita" in status["message"]
    approved = next(c for c in status["conditions"] if c["type"] == "Approved")
    assert (approved["status"], approved["reason"]) == ("False", "AwaitingApproval")
    waiting = next(c for c in status["conditions"] if c["type"] == "Waiting")
    assert (waiting["status"], waiting["reason"]) == ("True", "AwaitingApproval")
    assert "waiting for someone else to approve or deny it" in waiting["message"]
    return name


def test_a_run_waits_with_no_job_and_a_denied_run_ends_without_one(
    stack: Stack, users: dict[str, User]
) -> None:
    name = awaiting(stack, users["rita"], "deny")
    assert jobs_of(stack, name) == []

    denied = annotate(users["bob"], "jobrun", name, "deny")
    assert denied.returncode == 0, denied.stderr
    status = run_status(stack, name, "Cancelled", timeout=60)
    assert status["reason"] == "Denied"
    assert status["approval"]["decision"] == "Denied"
    assert status["approval"]["by"] == "bob"
    assert jobs_of(stack, name) == []

    # final: nobody changes it afterwards, not even another approver
    again = annotate(users["dave"], "jobrun", name, "approve")
    assert again.returncode != 0
    assert "ApprovalFinal" in again.stderr


def test_self_approval_a_user_without_the_verb_and_a_spoofed_approver_are_refused_then_another_approves(
    stack: Stack, users: dict[str, User]
) -> None:
    name = awaiting(stack, users["rita"], "approve")

    own = annotate(users["rita"], "jobrun", name, "approve")
    assert own.returncode != 0
    assert "SelfApproval" in own.stderr

    no_verb = annotate(users["mallory"], "jobrun", name, "approve")
    assert no_verb.returncode != 0
    assert "NotAllowedToApprove" in no_verb.stderr

    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    spoof = json.dumps({"spec": {"approval": {"decision": "Approved", "by": "dave", "at": at}}})
    spoofed = users["bob"].kubectl("patch", "jobrun", name, "--type=merge", "-p", spoof)
    assert spoofed.returncode != 0
    assert "ApproverSpoofed" in spoofed.stderr
    named = json.dumps(
        {
            "metadata": {"annotations": {"jobplane.io/approval": "approve"}},
            "spec": {"approval": {"decision": "Approved", "by": "dave", "at": at}},
        }
    )
    stamped = users["bob"].kubectl("patch", "jobrun", name, "--type=merge", "-p", named)
    assert stamped.returncode == 0, stamped.stderr  # the name is replaced by the real one
    stored = stack.cluster.get_json("jobrun", name, "-n", stack.namespace)
    assert stored["spec"]["approval"]["by"] == "bob"

    status = run_status(stack, name, "Succeeded", timeout=180)
    assert status["approval"]["by"] == "bob"
    approved = next(c for c in status["conditions"] if c["type"] == "Approved")
    assert (approved["status"], approved["reason"]) == ("True", "Approved")
    assert len(jobs_of(stack, name)) == 1
    # the job result says who approved it, and when
    admin = Api(stack, stack.admin_token)
    result = admin.wait_result(stored["metadata"]["uid"], timeout=60)
    assert (result["requested_by"], result["approved_by"]) == ("rita", "bob")
    assert result["approved_at"] is not None


def test_a_schedule_awaiting_approval_does_not_fire_until_approved_once(
    stack: Stack, users: dict[str, User]
) -> None:
    name = f"appr-{secrets.token_hex(3)}"
    start = (datetime.now(UTC) + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    spec = {"job": NOOP, "schedule": {"interval": "Once", "startTime": start}}
    applied = users["rita"].apply("JobSchedule", name, spec)
    assert applied.returncode == 0, applied.stderr

    def ready() -> dict[str, Any] | None:
        status = stack.cluster.get_json("jobschedule", name, "-n", stack.namespace).get("status") or {}
        found = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
        return found if found and found["reason"] == "AwaitingApproval" else None

    condition = wait_for("the schedule to await approval", ready, timeout=60)
    assert "requested by rita" in condition["message"]
    own = annotate(users["rita"], "jobschedule", name, "approve")
    assert "SelfApproval" in own.stderr

    # its start time passes without a fire
    passed = datetime.fromisoformat(start) + timedelta(seconds=5)
    wait_for("the start time to pass", lambda: datetime.now(UTC) > passed, timeout=60, interval=1)
    runs = stack.cluster.get_json("jobruns", "-n", stack.namespace, "-l", f"jobplane.io/schedule={name}")
    assert runs["items"] == []

    approved = annotate(users["bob"], "jobschedule", name, "approve")
    assert approved.returncode == 0, approved.stderr

    def fired() -> list[Any] | None:
        listed = stack.cluster.get_json(
            "jobruns", "-n", stack.namespace, "-l", f"jobplane.io/schedule={name}"
        )
        return list(listed["items"]) or None

    (run,) = wait_for("the approved schedule to fire", fired, timeout=60)
    assert run["spec"]["approval"]["by"] == "bob"
    assert run["spec"]["requestedBy"] == "rita"
    status = run_status(stack, run["metadata"]["name"], "Succeeded", timeout=180)
    assert status["approval"]["decision"] == "Approved"

    changed = json.dumps({"spec": {"job": "hello_world.HelloWorld"}})
    refused = users["bob"].kubectl("patch", "jobschedule", name, "--type=merge", "-p", changed)
    assert refused.returncode != 0
    assert "ApprovalFinal" in refused.stderr


# --- through the API, as Nautobot 2.x's scheduled-job approvals ---------------------------------------------

RESERVE = "inventory.reserve_prefixes.ReservePrefixes"
RESERVE_DATA = {"parent": "10.20.0.0/16", "prefix_length": 24, "count": 1}
OWN_REQUEST = "You cannot approve your own job request!"
PAST_START = (
    "The job's start time is in the past. If you want to force a run anyway, add the `force` query parameter."
)


@pytest.fixture(scope="module")
def api_users(stack: Stack) -> dict[str, Api]:
    """``rita-api`` asks, ``bob-api`` approves: both may view, run and approve, and change and delete
    scheduled jobs; what stops rita approving her own request is the request being hers."""
    admin = Api(stack, stack.admin_token)
    admin.enable(RESERVE)
    override(stack, RESERVE, approvalRequired=True)
    suffix = secrets.token_hex(3)
    names = ("rita-api", "bob-api")
    for name in names:
        stack.cli("users", "create", name, check=False)
    grants = {
        "view": "extras.job,extras.jobresult,extras.joblogentry,extras.scheduledjob",
        "run,approve": "extras.job",
        "change,delete": "extras.scheduledjob",
    }
    for actions, objects in grants.items():
        users = [arg for name in names for arg in ("--user", name)]
        stack.cli("permissions", "create", f"{actions.replace(',', '-')}-{suffix}", "--object-types", objects,
                  "--actions", actions, *users)  # fmt: skip
    return {name.split("-")[0]: Api(stack, make_token(stack, name)) for name in names}


def ask(rita: Api) -> dict[str, Any]:
    """rita's run of the approval-required job: a scheduled job once at now, awaiting approval."""

    def scheduled() -> Any:
        answer = rita.run(RESERVE, {"data": RESERVE_DATA})
        assert answer.status_code == 201, answer.text
        return answer.json() if answer.json()["scheduled_job"] else None

    # the API's cache of the definition may lag the override by a moment
    answer = wait_for("the API to see approval_required", scheduled, timeout=30)
    assert answer["job_result"] is None
    job = answer["scheduled_job"]
    assert job["approval_required"] is True
    assert job["one_off"] is True
    return dict(job)


def stored_schedule(stack: Stack, job: dict[str, Any]) -> dict[str, Any]:
    name = job["job_schedule"]["name"]
    return dict(stack.cluster.get_json("jobschedule", name, "-n", stack.namespace))


def test_through_the_api_self_approval_is_refused_and_another_user_approves_with_force(
    stack: Stack, api_users: dict[str, Api]
) -> None:
    rita, bob = api_users["rita"], api_users["bob"]
    job = ask(rita)
    schedule = stored_schedule(stack, job)
    assert schedule["spec"]["requestedBy"] == "rita-api"
    assert "approval" not in schedule["spec"]

    own = rita.client.post(f"/api/extras/scheduled-jobs/{job['id']}/approve/")
    assert (own.status_code, own.json()) == (403, OWN_REQUEST)
    past = bob.client.post(f"/api/extras/scheduled-jobs/{job['id']}/approve/")
    assert (past.status_code, past.json()) == (400, PAST_START)

    approved = bob.client.post(f"/api/extras/scheduled-jobs/{job['id']}/approve/", params={"force": "true"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["id"] == job["id"]
    stored = stored_schedule(stack, job)["spec"]["approval"]
    assert (stored["decision"], stored["by"]) == ("Approved", "bob-api")

    def fired() -> list[Any] | None:
        selector = f"jobplane.io/schedule={job['job_schedule']['name']}"
        return list(stack.cluster.get_json("jobruns", "-n", stack.namespace, "-l", selector)["items"]) or None

    (run,) = wait_for("the approved scheduled job to fire", fired, timeout=60)
    assert run["spec"]["requestedBy"] == "rita-api"
    assert run["spec"]["approval"]["by"] == "bob-api"
    status = run_status(stack, run["metadata"]["name"], "Succeeded", "Failed", timeout=180)
    assert status["approval"]["by"] == "bob-api"  # ran (its outcome is the data database's business)
    result = bob.wait_result(run["metadata"]["uid"], timeout=60)
    assert (result["approved_by"], result["scheduled_job"]["id"]) == ("bob-api", job["id"])
    shown = bob.get(f"/api/extras/scheduled-jobs/{job['id']}/").json()
    assert shown["approved_by_user"] is not None
    assert (shown["approved_by"], shown["state"]["value"]) == ("bob-api", "completed")  # it fired, once


def test_through_the_api_a_denied_request_is_deleted_never_having_run(
    stack: Stack, api_users: dict[str, Api]
) -> None:
    rita, bob = api_users["rita"], api_users["bob"]
    job = ask(rita)
    denied = bob.client.post(f"/api/extras/scheduled-jobs/{job['id']}/deny/")
    assert (denied.status_code, denied.json()) == (200, None)
    assert bob.get(f"/api/extras/scheduled-jobs/{job['id']}/").status_code == 404
    gone = stack.cluster.kubectl(
        "get", "jobschedule", job["job_schedule"]["name"], "-n", stack.namespace, check=False
    )
    assert gone.returncode != 0
    selector = f"jobplane.io/schedule={job['job_schedule']['name']}"
    assert stack.cluster.get_json("jobruns", "-n", stack.namespace, "-l", selector)["items"] == []


def test_through_the_api_a_dry_run_runs_now_without_approving(
    stack: Stack, api_users: dict[str, Api]
) -> None:
    rita, bob = api_users["rita"], api_users["bob"]
    job = ask(rita)
    answer = bob.client.post(f"/api/extras/scheduled-jobs/{job['id']}/dry-run/")
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["dry_run"] is True
    assert result["scheduled_job"] is None
    done = bob.wait_result(result["id"], timeout=180)
    assert done["status"]["value"] in ("SUCCESS", "FAILURE")  # it ran: a dry run waits for no approval
    run = stack.cluster.get_json("jobrun", done["run"]["name"], "-n", stack.namespace)
    assert run["spec"]["dryRun"] is True
    assert run["spec"]["requestedBy"] == "bob-api"
    assert "approval" not in stored_schedule(stack, job)["spec"]  # still awaiting approval


# --- pynautobot and curl, as against Nautobot ---------------------------------------------------------------


def token_of(api: Api) -> str:
    return str(api.client.headers["Authorization"]).removeprefix("Token ")


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0).isoformat()


def fired_result(stack: Stack, bob: Api, job: dict[str, Any]) -> dict[str, Any]:
    """The job result of the one run an approved scheduled job fired, once it ended."""

    def fired() -> list[Any] | None:
        selector = f"jobplane.io/schedule={job['job_schedule']['name']}"
        return list(stack.cluster.get_json("jobruns", "-n", stack.namespace, "-l", selector)["items"]) or None

    (run,) = wait_for("the approved scheduled job to fire", fired, timeout=90)
    run_status(stack, run["metadata"]["name"], "Succeeded", "Failed", timeout=180)
    return bob.wait_result(run["metadata"]["uid"], timeout=60)


def test_pynautobot_schedules_lists_approves_and_denies_as_against_nautobot(
    stack: Stack, api_users: dict[str, Api]
) -> None:
    import pynautobot

    tokens = {name: token_of(api) for name, api in api_users.items()}
    rita, bob = (pynautobot.api(stack.api_url, token=tokens[name]) for name in ("rita", "bob"))
    job = rita.extras.jobs.get(api_users["rita"].job(RESERVE)["id"])
    name = f"Reserve {secrets.token_hex(3)}"
    made = rita.extras.jobs.run(
        job_id=job.id,
        data=RESERVE_DATA,
        schedule={"name": name, "interval": "future", "start_time": in_seconds(30)},
    )
    assert made.job_result is None
    scheduled_id = made.scheduled_job.id

    (listed,) = bob.extras.scheduled_jobs.filter(name=name)
    assert (listed.id, listed.approval_required, listed.interval) == (scheduled_id, True, "future")
    assert (listed.approved_by_user, listed.approved_by) == (None, None)
    assert scheduled_id in [item.id for item in bob.extras.scheduled_jobs.filter(job_model=job.id)]

    # pynautobot has no method for approve/deny: its users post to the endpoint through its session.
    def post(nb: Any, token: str, action: str, identifier: str) -> Any:
        url = f"{nb.base_url}/extras/scheduled-jobs/{identifier}/{action}/"
        return nb.http_session.post(
            url, headers={"Authorization": f"Token {token}", "Accept": "application/json"}
        )

    own = post(rita, tokens["rita"], "approve", scheduled_id)
    assert (own.status_code, own.json()) == (403, OWN_REQUEST)
    approved = post(bob, tokens["bob"], "approve", scheduled_id)
    assert approved.status_code == 200, approved.text
    record = bob.extras.scheduled_jobs.get(scheduled_id)
    assert record.approved_by_user is not None
    assert record.approved_by == "bob-api"

    shown = api_users["bob"].get(f"/api/extras/scheduled-jobs/{scheduled_id}/").json()
    result = fired_result(stack, api_users["bob"], shown)
    assert result["scheduled_job"]["id"] == scheduled_id
    fetched = bob.extras.job_results.get(result["id"])
    assert fetched.scheduled_job.id == scheduled_id

    # A second request, denied: it is deleted, never having run.
    again = rita.extras.jobs.run(
        job_id=job.id,
        data=RESERVE_DATA,
        schedule={"name": f"{name} again", "interval": "future", "start_time": in_seconds(3600)},
    )
    denied = post(bob, tokens["bob"], "deny", again.scheduled_job.id)
    assert (denied.status_code, denied.json()) == (200, None)
    assert bob.extras.scheduled_jobs.get(again.scheduled_job.id) is None
    assert list(bob.extras.scheduled_jobs.filter(name=f"{name} again")) == []


def test_curl_schedules_lists_approves_and_denies_as_the_readme_shows(
    stack: Stack, api_users: dict[str, Api]
) -> None:
    from tests.e2e.test_api import curl

    host = stack.api_url
    rita, bob = (
        ["-H", f"Authorization: Token {token_of(api_users[name])}", "-H", "Accept: application/json"]
        for name in ("rita", "bob")
    )
    job_id = api_users["rita"].job(RESERVE)["id"]
    name = f"Reserve curl {secrets.token_hex(3)}"
    body = {
        "data": RESERVE_DATA,
        "schedule": {"name": name, "interval": "future", "start_time": in_seconds(30)},
    }
    made = curl(
        "-X", "POST", *rita, "-H", "Content-Type: application/json",
        f"{host}/api/extras/jobs/{job_id}/run/", "--data", json.dumps(body),
    )  # fmt: skip
    assert made["status"] == 201, made
    scheduled = made["body"]["scheduled_job"]  # type: ignore[index]
    assert made["body"]["job_result"] is None  # type: ignore[index]

    listed = curl(*bob, f"{host}/api/extras/scheduled-jobs/?name={quote(name)}")
    assert listed["status"] == 200
    (found,) = listed["body"]["results"]  # type: ignore[index]
    assert (found["id"], found["approval_required"]) == (scheduled["id"], True)

    own = curl("-X", "POST", *rita, f"{host}/api/extras/scheduled-jobs/{scheduled['id']}/approve/")
    assert own == {"status": 403, "body": OWN_REQUEST}
    approved = curl("-X", "POST", *bob, f"{host}/api/extras/scheduled-jobs/{scheduled['id']}/approve/")
    assert approved["status"] == 200, approved
    assert approved["body"]["approved_by"] == "bob-api"  # type: ignore[index]

    result = fired_result(stack, api_users["bob"], scheduled)
    assert result["scheduled_job"]["id"] == scheduled["id"]
    shown = curl(*bob, f"{host}/api/extras/job-results/{result['id']}/")
    assert shown["body"]["scheduled_job"]["id"] == scheduled["id"]  # type: ignore[index]

    body["schedule"] = {"name": f"{name} again", "interval": "future", "start_time": in_seconds(3600)}
    again = curl(
        "-X", "POST", *rita, "-H", "Content-Type: application/json",
        f"{host}/api/extras/jobs/{job_id}/run/", "--data", json.dumps(body),
    )  # fmt: skip
    again_id = again["body"]["scheduled_job"]["id"]  # type: ignore[index]
    denied = curl("-X", "POST", *bob, f"{host}/api/extras/scheduled-jobs/{again_id}/deny/")
    assert denied == {"status": 200, "body": None}
    assert curl(*bob, f"{host}/api/extras/scheduled-jobs/{again_id}/")["status"] == 404
