"""The Waiting condition: each cause a run can wait for, its message, and its end once the run goes on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobplane_crds.v1alpha1 import JobRunPhase, WaitingReason
from jobplane_operator.reconcile.waiting import names_in_short, waiting_condition, waiting_of

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)


@pytest.mark.parametrize(
    ("phase", "reason", "message", "waiting", "said"),
    [
        (
            JobRunPhase.QUEUED,
            "ConcurrencyLimit",
            "Concurrency limit 1 of queue q reached: 1 active (r1); position 1, 0 run(s) ahead (none). ...",
            WaitingReason.QUEUE_CONCURRENCY_LIMIT,
            "1 active (r1)",
        ),
        (
            JobRunPhase.QUEUED,
            "SingletonActive",
            "Job audit.Audit is a singleton and run r7 is active: this run starts when it ends",
            WaitingReason.SINGLETON_LOCK_HELD,
            "run r7 is active",
        ),
        (
            JobRunPhase.AWAITING_APPROVAL,
            "AwaitingApproval",
            "Awaiting approval by someone other than ada",
            WaitingReason.AWAITING_APPROVAL,
            "other than ada",
        ),
        (
            JobRunPhase.PENDING,
            "WaitingForInputs",
            "Waiting for Secret 'r1-inputs' (spec.inputsSecretRef) to be created",
            WaitingReason.INPUTS_SECRET_MISSING,
            "Secret 'r1-inputs'",
        ),
        (
            JobRunPhase.PENDING,
            "Unschedulable",
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
            WaitingReason.UNSCHEDULABLE,
            "The scheduler finds no node for the pod: 0/3 nodes are available: 3 node(s) didn't match",
        ),
        (
            JobRunPhase.PENDING,
            "ImagePullFailed",
            'ImagePullBackOff: Back-off pulling image "registry.example/jobs:9"',
            WaitingReason.IMAGE_PULL,
            'ImagePullBackOff: Back-off pulling image "registry.example/jobs:9"',
        ),
        (
            JobRunPhase.PENDING,
            "CreateContainerFailed",
            'CreateContainerConfigError: configmap "x" not found',
            WaitingReason.CONTAINER_NOT_CREATED,
            'configmap "x" not found',
        ),
        (
            JobRunPhase.PENDING,
            "KueueAdmission",
            "Job r-1 is suspended until Kueue admits it through LocalQueue team-a: ...",
            WaitingReason.KUEUE_ADMISSION,
            "LocalQueue team-a",
        ),
    ],
)
def test_each_cause_a_run_waits_for_is_named_with_a_message_to_act_on(
    phase: JobRunPhase, reason: str, message: str, waiting: WaitingReason, said: str
) -> None:
    found = waiting_of(phase, reason, message)
    assert found is not None
    assert found.reason == waiting
    assert said in found.message
    written = waiting_condition(None, phase, reason, message, generation=3, now=NOW)
    assert written is not None
    assert (written["type"], written["status"], written["reason"]) == ("Waiting", "True", waiting.value)
    assert said in written["message"]
    assert (written["observedGeneration"], written["lastTransitionTime"]) == (3, "2026-12-06T10:00:00Z")


def test_awaiting_approval_says_what_is_needed_even_without_a_message() -> None:
    found = waiting_of(JobRunPhase.AWAITING_APPROVAL, "AwaitingApproval", "")
    assert found is not None
    assert "someone other than the requester must approve" in found.message


@pytest.mark.parametrize(
    ("phase", "reason"),
    [
        (JobRunPhase.PENDING, "JobCreated"),
        (JobRunPhase.PENDING, "PodPending"),
        (JobRunPhase.RUNNING, "PodRunning"),
        (JobRunPhase.SUCCEEDED, "Completed"),
        (JobRunPhase.FAILED, "ImagePullFailed"),  # it ended: it waits for nothing any more
        (JobRunPhase.FAILED, "Unschedulable"),
    ],
)
def test_a_run_that_never_waited_gets_no_waiting_condition(phase: JobRunPhase, reason: str) -> None:
    assert waiting_of(phase, reason, "") is None
    assert waiting_condition({"conditions": []}, phase, reason, "", generation=1, now=NOW) is None


def test_a_wait_that_ends_turns_the_condition_false_with_the_runs_reason() -> None:
    waited = waiting_condition(None, JobRunPhase.QUEUED, "ConcurrencyLimit", "limit", generation=1, now=NOW)
    assert waited is not None
    old = {"conditions": [waited]}
    over = waiting_condition(old, JobRunPhase.PENDING, "JobCreated", "", generation=1, now=LATER)
    assert over is not None
    assert (over["status"], over["reason"]) == ("False", "JobCreated")
    assert over["message"] == "No longer waiting: the run is Pending"
    assert over["lastTransitionTime"] == "2026-12-06T10:00:30Z"


def test_a_wait_whose_message_moves_keeps_its_transition_time() -> None:
    first = waiting_condition(
        None, JobRunPhase.QUEUED, "ConcurrencyLimit", "position 2", generation=1, now=NOW
    )
    assert first is not None
    moved = waiting_condition(
        {"conditions": [first]}, JobRunPhase.QUEUED, "ConcurrencyLimit", "position 1", generation=1, now=LATER
    )
    assert moved is not None
    assert (moved["message"], moved["lastTransitionTime"]) == ("position 1", "2026-12-06T10:00:00Z")
    # A different cause is a transition of its own.
    other: dict[str, Any] | None = waiting_condition(
        {"conditions": [moved]}, JobRunPhase.PENDING, "Unschedulable", "0/1 nodes", generation=1, now=LATER
    )
    assert other is not None
    assert (other["reason"], other["lastTransitionTime"]) == ("Unschedulable", "2026-12-06T10:00:30Z")


def test_names_in_short() -> None:
    assert names_in_short([]) == "none"
    assert names_in_short(["a", "b"]) == "a, b"
    assert names_in_short([f"r{i}" for i in range(8)], limit=3) == "r0, r1, r2 and 5 more"
