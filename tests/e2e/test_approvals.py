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

import pytest

from tests.cluster.cluster import wait_for
from tests.e2e.api_support import Api
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
