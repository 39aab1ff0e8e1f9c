"""Approvals: the decision stamped and checked at admission, and what a run or a schedule does with it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from jobplane_crds.v1alpha1 import APPROVAL_ANNOTATION, JobRun
from jobplane_operator.reconcile.admission import (
    Denial,
    approval_of,
    review_approval,
    review_schedule,
    schedule_requester,
    status_code,
)
from jobplane_operator.reconcile.jobrun import approval_wait
from jobplane_operator.reconcile.jobschedule import fire_run, plan
from tests.unit.operator.test_reconcile_admission import API
from tests.unit.operator.test_reconcile_jobrun import definition, model, run_obj_of
from tests.unit.operator.test_reconcile_jobschedule import at, cond, schedule_of
from tests.unit.operator.test_runs import BoundaryClients, catalog, reconcile

OPERATOR = "system:serviceaccount:jobplane:jobplane-operator"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
APPROVED = {"decision": "Approved", "by": "bob", "at": "2026-12-03T12:00:00Z"}
DENIED = {"decision": "Denied", "by": "bob", "at": "2026-12-03T12:00:00Z"}


def stamp(value: str | None, *, username: str = "bob", given: Any = None, old: Any = None) -> Any:
    annotations = {APPROVAL_ANNOTATION: value} if value is not None else {}
    return approval_of(annotations, given, old, username=username, trusted={API, OPERATOR}, now=NOW)


def review(
    *,
    value: str | None = "approve",
    approval: dict[str, Any] | None = None,
    old_value: str | None = None,
    old_approval: dict[str, Any] | None = None,
    username: str = "bob",
    requested_by: str = "alice",
    groups: tuple[str, ...] = (),
    self_approval_groups: tuple[str, ...] = (),
    may: bool = True,
    creating: bool = False,
    kind: str = "JobRun",
) -> Denial | None:
    asked: list[bool] = []

    def may_approve() -> bool:
        asked.append(True)
        return may

    denial = review_approval(
        kind,
        requested_by=requested_by,
        annotations={APPROVAL_ANNOTATION: value} if value is not None else {},
        approval=approval if approval is not None else stamp(value, username=username),
        old_annotations={APPROVAL_ANNOTATION: old_value} if old_value is not None else {},
        old_approval=old_approval,
        creating=creating,
        username=username,
        groups=groups,
        trusted={API, OPERATOR},
        self_approval_groups=self_approval_groups,
        may_approve=may_approve,
    )
    if username in (API, OPERATOR):
        assert not asked  # a trusted identity checked its own user's permission
    return denial


def reason(denial: Denial | None) -> str | None:
    return denial.reason if denial else None


# --- stamping -----------------------------------------------------------------------------------------------


def test_the_annotation_becomes_a_decision_naming_the_user_who_set_it_and_when() -> None:
    assert stamp("approve") == {"decision": "Approved", "by": "bob", "at": "2026-12-03T12:00:00Z"}
    assert stamp("deny")["decision"] == "Denied"
    assert stamp(None) is None


def test_a_named_approver_is_replaced_by_the_real_user_unless_a_trusted_identity_names_it() -> None:
    named = {"decision": "Approved", "by": "carol", "at": "2020-01-01T00:00:00Z"}
    assert stamp("approve", username="bob", given=named)["by"] == "bob"
    assert stamp("approve", username=API, given=named)["by"] == "carol"


def test_a_decision_already_given_is_kept_whatever_the_annotation_says_now() -> None:
    assert stamp("deny", old=APPROVED) == APPROVED


# --- reviewing ----------------------------------------------------------------------------------------------


def test_another_user_with_the_approve_verb_may_approve_or_deny() -> None:
    assert review(value="approve") is None
    assert review(value="deny") is None


def test_the_requester_may_not_approve_their_own_run() -> None:
    denial = review(username="alice", requested_by="alice")
    assert reason(denial) == "SelfApproval"
    assert denial is not None
    assert status_code(denial) == 403
    assert "cannot approve or deny their own request" in denial.message


def test_self_approval_only_for_members_of_a_configured_group_and_never_through_the_api() -> None:
    own = {"username": "alice", "requested_by": "alice"}
    assert reason(review(**own, groups=("admins",))) == "SelfApproval"  # off by default
    assert review(**own, groups=("admins",), self_approval_groups=("admins",)) is None
    assert reason(review(**own, groups=("devs",), self_approval_groups=("admins",))) == "SelfApproval"
    api_self = {"decision": "Approved", "by": "alice", "at": "2026-12-03T12:00:00Z"}
    assert reason(
        review(username=API, approval=api_self, groups=("admins",), self_approval_groups=("admins",))
    )
    assert reason(review(username=API, approval=api_self)) == "SelfApproval"


def test_a_user_without_the_approve_verb_is_refused() -> None:
    denial = review(may=False)
    assert reason(denial) == "NotAllowedToApprove"
    assert denial is not None
    assert "verb approve on resource jobruns" in denial.message
    schedule = review(may=False, kind="JobSchedule")
    assert schedule is not None
    assert "resource jobschedules" in schedule.message


def test_a_spoofed_approver_is_refused() -> None:
    someone_else = {"decision": "Approved", "by": "carol", "at": "2026-12-03T12:00:00Z"}
    assert reason(review(approval=someone_else)) == "ApproverSpoofed"
    # spec.approval written directly, without the annotation: even naming oneself
    assert reason(review(value=None, approval={**someone_else, "by": "bob"})) == "ApproverSpoofed"


def test_the_api_names_the_approver_and_its_own_permission_check_stands() -> None:
    assert review(username=API, approval={**APPROVED, "by": "carol"}, may=False) is None


def test_a_decision_is_final_it_cannot_change_be_withdrawn_or_given_twice() -> None:
    final = {"old_value": "approve", "old_approval": APPROVED}
    assert reason(review(value="deny", approval=APPROVED, **final)) == "ApprovalFinal"  # type: ignore[arg-type]
    assert reason(review(value=None, approval=APPROVED, **final)) == "ApprovalFinal"  # type: ignore[arg-type]
    assert reason(review(value="approve", approval={}, **final)) == "ApprovalFinal"  # type: ignore[arg-type]
    changed = {**APPROVED, "by": "carol"}
    assert reason(review(value="approve", approval=changed, **final)) == "ApprovalFinal"  # type: ignore[arg-type]
    denial = review(value="deny", approval=APPROVED, **final)  # type: ignore[arg-type]
    assert denial is not None
    assert status_code(denial) == 409
    # the same decision said again changes nothing, and is no second approval
    assert review(value="approve", approval=APPROVED, username="dave", **final) is None  # type: ignore[arg-type]


def test_an_annotation_value_other_than_approve_or_deny_is_refused() -> None:
    assert reason(review(value="yes", approval={})) == "InvalidApproval"


def test_a_run_created_already_approved_is_its_creators_own_approval() -> None:
    # The creator is the requester: a manifest carrying the annotation approves itself.
    assert reason(review(username="alice", requested_by="alice", creating=True)) == "SelfApproval"


def test_the_operator_copies_an_approved_schedules_decision_to_a_fires_run() -> None:
    self_approved = {"decision": "Approved", "by": "alice", "at": "2026-12-03T12:00:00Z"}
    assert review(username=OPERATOR, approval=self_approved, creating=True) is None
    assert review(username=OPERATOR, approval=APPROVED, creating=True) is None


# --- a run waits, is denied, or starts ----------------------------------------------------------------------


def run_with(**spec: Any) -> JobRun:
    obj = run_obj_of("audit.Audit")
    obj["spec"].update({"requestedBy": "alice", **spec})
    return JobRun.model_validate(obj)


def test_a_run_of_an_approval_required_job_waits_naming_its_requester() -> None:
    waiting = approval_wait(run_with(), model(definition(approvalRequired=True)))
    assert waiting is not None
    assert (waiting.phase, waiting.reason) == ("AwaitingApproval", "AwaitingApproval")
    assert "requested by alice" in waiting.message
    assert approval_wait(run_with(), model(definition())) is None


def test_a_denied_run_ends_cancelled_with_reason_denied_and_an_approved_one_starts() -> None:
    denied = approval_wait(run_with(approval=DENIED), model(definition(approvalRequired=True)))
    assert denied is not None
    assert (denied.phase, denied.reason) == ("Cancelled", "Denied")
    assert "Denied by bob" in denied.message
    assert approval_wait(run_with(approval=APPROVED), model(definition(approvalRequired=True))) is None


def test_a_dry_run_needs_no_approval_only_for_a_job_that_supports_dry_run() -> None:
    supports = definition(approvalRequired=True)
    supports["status"]["supportsDryrun"] = True
    assert approval_wait(run_with(dryRun=True), model(supports)) is None
    assert approval_wait(run_with(dryRun=True), model(definition(approvalRequired=True))) is not None


def test_the_operator_creates_no_job_while_awaiting_then_runs_once_approved() -> None:
    clients = BoundaryClients(catalog(approvalRequired=True))
    obj = run_obj_of("audit.Audit")
    obj["spec"]["requestedBy"] = "alice"
    reconcile(clients, obj)
    assert clients.jobs == []
    status = clients.statuses[-1]
    assert (status["phase"], status["reason"]) == ("AwaitingApproval", "AwaitingApproval")
    approved = next(c for c in status["conditions"] if c["type"] == "Approved")
    assert (approved["status"], approved["reason"]) == ("False", "AwaitingApproval")
    assert "requested by alice" in status["message"]

    obj["status"] = status
    obj["spec"]["approval"] = APPROVED
    reconcile(clients, obj)
    assert len(clients.jobs) == 1
    started = clients.statuses[-1]
    assert (started["phase"], started["reason"], started["approval"]) == ("Pending", "JobCreated", APPROVED)
    approved = next(c for c in started["conditions"] if c["type"] == "Approved")
    assert (approved["status"], approved["reason"]) == ("True", "Approved")
    denied = run_obj_of("audit.Audit")
    denied["spec"].update({"requestedBy": "alice", "approval": DENIED})
    clients = BoundaryClients(catalog(approvalRequired=True))
    reconcile(clients, denied)
    assert clients.jobs == []
    status = clients.statuses[-1]
    assert (status["phase"], status["reason"], status["approval"]) == ("Cancelled", "Denied", DENIED)
    approved = next(c for c in status["conditions"] if c["type"] == "Approved")
    assert (approved["status"], approved["reason"]) == ("False", "Denied")


# --- schedules ----------------------------------------------------------------------------------------------


def test_a_schedule_awaiting_approval_does_not_fire_and_says_who_asked() -> None:
    schedule = schedule_of("Once", startTime="2026-01-01T10:00:00Z")
    waiting = plan(schedule, now=at(2026, 1, 1, 10, 0, 5), runs=[], approval_required=True)
    assert waiting.fire is None
    ready = cond(waiting.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "AwaitingApproval")
    assert "requested by alice" in ready["message"]


def test_an_approved_once_schedule_fires_after_its_time_and_its_run_carries_the_approval() -> None:
    schedule = schedule_of("Once", startTime="2026-01-01T10:00:00Z", approval=APPROVED)
    fired = plan(schedule, now=at(2026, 1, 1, 10, 5), runs=[], approval_required=True)
    assert fired.fire == at(2026, 1, 1, 10, 0)
    run = fire_run(schedule, fired.fire)
    assert run["spec"]["approval"] == APPROVED
    assert run["metadata"]["annotations"][APPROVAL_ANNOTATION] == "approve"


def test_a_denied_schedule_never_fires() -> None:
    schedule = schedule_of("Once", startTime="2026-01-01T10:00:00Z", approval=DENIED)
    denied = plan(schedule, now=at(2026, 1, 1, 10, 5), runs=[], approval_required=True)
    assert denied.fire is None
    assert cond(denied.status, "Ready")["reason"] == "Denied"
    assert "approval" not in fire_run(schedule, at(2026, 1, 1, 10, 0))["spec"]


def test_approving_a_schedule_keeps_its_requester_and_an_approved_schedule_cannot_change() -> None:
    old = schedule_of(startTime=None, crontab="0 * * * *").spec.model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    approved = {**old, "approval": APPROVED}
    assert schedule_requester("alice", old, approved, "bob", {API}) == "alice"
    changed = schedule_of(crontab="5 * * * *", approval=APPROVED)
    denial = review_schedule(
        changed,
        {**old, "approval": APPROVED},
        username="alice",
        trusted={API},
        definitions=[definition(approvalRequired=True)],
        queue_exists=lambda name: True,
        secret_exists=lambda name: False,
        may_create_runs=lambda: True,
    )
    assert reason(denial) == "ApprovalFinal"


@pytest.mark.parametrize("field", ["suspend", "successfulRunsHistoryLimit"])
def test_pausing_an_approved_schedule_or_trimming_its_history_is_still_allowed(field: str) -> None:
    old = schedule_of(crontab="0 * * * *", approval=APPROVED)
    spec = old.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    new = schedule_of(crontab="0 * * * *", approval=APPROVED, **{field: True if field == "suspend" else 5})
    denial = review_schedule(
        new,
        spec,
        username="alice",
        trusted={API},
        definitions=[],
        queue_exists=lambda name: True,
        secret_exists=lambda name: False,
        may_create_runs=lambda: False,
    )
    assert denial is None
