"""plan_result: what the run mirror writes into a JobResult for each state of its JobRun."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from jobplane_api.services.mirror import PHASE_STATUS, ExistingResult, ResultChange, plan_result
from tests.builders import job_run

UID = "0b6f3a52-6c1e-4d8e-9a0e-3f1f1d6a2c11"
CLASS_PATH = "hello_world.HelloWorld"
CREATED = "2025-01-02T03:04:05Z"
STARTED = "2025-01-02T03:04:10Z"
DONE = "2025-01-02T03:05:00Z"


def _run(phase: str | None = None, *, spec: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    return job_run(
        "hello-x1",
        namespace="jobs",
        metadata={"uid": UID, "creationTimestamp": CREATED},
        status={"phase": phase, **status} if phase is not None or status else None,
        **{
            "job": "hello-world",
            "data": {"who": "Ada"},
            "dryRun": False,
            "requestedBy": "ada",
            **(spec or {}),
        },
    )


def _existing(change: ResultChange, **overrides: Any) -> ExistingResult:
    """The row a change produced (what the database would hold next)."""
    names = {f.name for f in dataclasses.fields(ExistingResult)}
    values = {key: value for key, value in change.values.items() if key in names}
    return ExistingResult(**{**values, **overrides})


def _apply(existing: ExistingResult, change: ResultChange | None) -> ExistingResult:
    if change is None:
        return existing
    assert not change.create
    return dataclasses.replace(existing, **change.values)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- a new row -------------------------------------------------------------------------------------
def test_a_run_written_by_a_newer_operator_is_still_mirrored() -> None:
    # A status field (and a phase) this API's models do not know: the JobRun model refuses such an object,
    # the mirror reads runs through RunView and must not lose the result over it (an upgrade's window).
    run = _run("Succeeded", classPath=CLASS_PATH, completionTime=DONE)
    run["status"]["someFieldOfALaterVersion"] = {"x": 1}
    change = plan_result(run, None, job_name="Hello World")
    assert change is not None
    assert (change.values["status"], change.values["date_done"]) == ("SUCCESS", _at(DONE))
    run["status"]["phase"] = "SomePhaseOfALaterVersion"
    later = plan_result(run, None, job_name="Hello World")
    assert later is not None
    assert later.values["status"] == "PENDING"


def test_a_new_run_creates_a_pending_row_with_its_identity() -> None:
    change = plan_result(_run(), None, job_name=None)
    assert change is not None
    assert change.create
    assert change.values == {
        "id": uuid.UUID(UID),
        "date_created": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        "status": "PENDING",
        "name": "hello-world",
        "job_class_path": "hello-world",
        "dry_run": False,
        "user": "ada",
        "run_name": "hello-x1",
        "run_namespace": "jobs",
        "task_kwargs": {"who": "Ada"},
    }


@pytest.mark.parametrize(
    ("phase", "status"),
    [
        ("Pending", "PENDING"),
        ("Queued", "PENDING"),
        ("Scheduled", "PENDING"),
        ("AwaitingApproval", "PENDING"),
        ("Running", "STARTED"),
        ("Succeeded", "SUCCESS"),
        ("Failed", "FAILURE"),
        ("Cancelled", "REVOKED"),
        (None, "PENDING"),
    ],
)
def test_every_phase_maps_to_its_status(phase: str | None, status: str) -> None:
    change = plan_result(_run(phase, reason="Why"), None, job_name=None)
    assert change is not None
    assert change.values["status"] == status


def test_the_definition_names_the_result_and_the_status_gives_the_class_path() -> None:
    job_model = uuid.uuid4()
    run = _run(
        "Queued", classPath=CLASS_PATH, queue="gpu", commit="abc123", reason="QueueFull", message="2 ahead"
    )
    change = plan_result(run, None, job_name="Hello World", job_model_id=job_model)
    assert change is not None
    values = change.values
    assert (values["name"], values["job_class_path"], values["job_model_id"]) == (
        "Hello World",
        CLASS_PATH,
        job_model,
    )
    assert (values["queue"], values["commit"], values["reason"], values["message"]) == (
        "gpu",
        "abc123",
        "QueueFull",
        "2 ahead",
    )


def test_without_a_definition_the_class_path_names_the_result() -> None:
    change = plan_result(_run("Running", classPath=CLASS_PATH), None, job_name=None)
    assert change is not None
    assert change.values["name"] == CLASS_PATH


def test_the_queue_comes_from_the_spec_until_the_operator_places_the_run() -> None:
    change = plan_result(_run(spec={"queue": "cpu"}), None, job_name=None)
    assert change is not None
    assert change.values["queue"] == "cpu"


def test_sensitive_inputs_are_never_stored() -> None:
    run = _run(spec={"data": {}, "inputsSecretRef": "hello-inputs-abc"})
    change = plan_result(run, None, job_name=None)
    assert change is not None
    assert "task_kwargs" not in change.values
    assert change.values.get("task_kwargs") is None


def test_a_dry_run_is_recorded() -> None:
    change = plan_result(_run(spec={"dryRun": True}), None, job_name=None)
    assert change is not None
    assert change.values["dry_run"] is True


def test_long_values_are_clipped_to_their_columns() -> None:
    change = plan_result(_run("Failed", reason="R" * 300, classPath="m." + "C" * 300), None, job_name=None)
    assert change is not None
    assert len(change.values["reason"]) == 100
    assert len(change.values["job_class_path"]) == 255


# --- following a run -------------------------------------------------------------------------------
def test_a_run_is_followed_from_pending_to_success() -> None:
    created = plan_result(_run("Pending"), None, job_name="Hello")
    assert created is not None
    row = _existing(created)
    running = plan_result(
        _run("Running", classPath=CLASS_PATH, startTime=STARTED, reason="Started"), row, job_name="Hello"
    )
    assert running is not None
    assert running.values == {
        "status": "STARTED",
        "job_class_path": CLASS_PATH,
        "date_started": _at(STARTED),
        "reason": "Started",
    }
    row = _apply(row, running)
    done = plan_result(
        _run(
            "Succeeded",
            classPath=CLASS_PATH,
            startTime=STARTED,
            completionTime=DONE,
            reason="Completed",
            result={"status": "SUCCESS", "result": '{"greeting": "Hello Ada"}'},
        ),
        row,
        job_name="Hello",
    )
    assert done is not None
    assert done.ends
    assert done.values == {
        "status": "SUCCESS",
        "date_done": _at(DONE),
        "reason": "Completed",
        "result": {"greeting": "Hello Ada"},
    }


def test_a_truncated_success_summary_is_kept_as_text() -> None:
    run = _run("Succeeded", completionTime=DONE, result={"result": '{"items": [1, 2, 3'})
    change = plan_result(run, None, job_name=None)
    assert change is not None
    assert change.values["result"] == '{"items": [1, 2, 3'


def test_a_failure_nobody_reported_carries_its_reason_as_the_exception() -> None:
    row = ExistingResult(status="STARTED", name="Hello", job_class_path=CLASS_PATH)
    run = _run(
        "Failed",
        classPath=CLASS_PATH,
        completionTime=DONE,
        reason="OOMKilled",
        message="The job used more than its 256Mi memory limit",
        result={"status": "FAILURE", "error": "MemoryError"},
    )
    change = plan_result(run, row, job_name="Hello")
    assert change is not None
    assert change.values["status"] == "FAILURE"
    assert change.values["result"] == {
        "exc_type": "OOMKilled",
        "exc_message": "The job used more than its 256Mi memory limit",
    }
    assert change.values["traceback"] == "MemoryError"
    assert change.values["date_done"] == _at(DONE)


def test_a_failure_the_pod_reported_keeps_the_pods_result() -> None:
    reported = {"exc_type": "ValueError", "exc_message": "bad input"}
    row = ExistingResult(
        status="STARTED", name="Hello", job_class_path=CLASS_PATH, result=reported, traceback="Traceback ..."
    )
    run = _run("Failed", classPath=CLASS_PATH, reason="JobFailed", message="exit 1", result={"error": "x"})
    change = plan_result(run, row, job_name="Hello")
    assert change is not None
    assert change.values["status"] == "FAILURE"
    assert "result" not in change.values
    assert "traceback" not in change.values


def test_a_cancelled_run_is_revoked_without_a_result() -> None:
    row = ExistingResult(status="PENDING", name="Hello", job_class_path=CLASS_PATH)
    change = plan_result(_run("Cancelled", reason="Cancelled", completionTime=DONE), row, job_name="Hello")
    assert change is not None
    assert change.values["status"] == "REVOKED"
    assert "result" not in change.values


def test_a_run_deleted_before_it_ended_is_revoked() -> None:
    row = ExistingResult(status="STARTED", name="Hello", job_class_path=CLASS_PATH)
    change = plan_result(_run("Running"), row, job_name="Hello", deleted=True)
    assert change is not None
    assert change.values["status"] == "REVOKED"
    assert change.values["reason"] == "JobRunDeleted"


def test_deleting_a_finished_run_changes_nothing() -> None:
    run = _run("Succeeded", reason="Completed", completionTime=DONE)
    created = plan_result(run, None, job_name=None)
    assert created is not None
    assert plan_result(run, _existing(created), job_name=None, deleted=True) is None


# --- rules -----------------------------------------------------------------------------------------
def test_a_status_never_moves_backwards() -> None:
    # The pod reported STARTED before the operator saw its pod run.
    row = ExistingResult(
        status="STARTED", name="Hello", job_class_path=CLASS_PATH, date_started=_at(STARTED), reason="Started"
    )
    change = plan_result(_run("Pending", reason="PodPending"), row, job_name="Hello")
    assert change is None or "status" not in change.values
    assert change is None or "reason" not in change.values


@pytest.mark.parametrize("terminal", ["SUCCESS", "FAILURE", "REVOKED"])
@pytest.mark.parametrize("phase", ["Pending", "Running", "Succeeded", "Failed", "Cancelled"])
def test_a_terminal_status_is_never_overwritten(terminal: str, phase: str) -> None:
    row = ExistingResult(
        status=terminal,
        name="Hello",
        job_class_path=CLASS_PATH,
        result={"reported": True},
        traceback="tb",
        reason="Reported",
        message="by the pod",
    )
    change = plan_result(
        _run(phase, reason="Other", message="other", result={"result": "1", "error": "e"}),
        row,
        job_name="Hello",
    )
    guarded = {"status", "result", "traceback"}
    if PHASE_STATUS.get(phase) != terminal:
        # Only a run that ends as the row says may give its reason (see the test below).
        guarded |= {"reason", "message"}
    if change is not None:
        assert not guarded & set(change.values)


def test_a_terminal_row_still_gets_missing_details() -> None:
    # The pod reported its outcome; the JobRun later tells the reason and the times.
    row = ExistingResult(status="FAILURE", name="Hello", job_class_path=CLASS_PATH, result={"exc_type": "E"})
    run = _run("Failed", startTime=STARTED, completionTime=DONE, reason="JobFailed", message="exit 1")
    change = plan_result(run, row, job_name="Hello")
    assert change is not None
    assert change.values["reason"] == "JobFailed"
    assert change.values["date_done"] == _at(DONE)
    assert "status" not in change.values


def test_a_result_the_pod_ended_before_the_runs_first_status_gets_its_queue_and_commit_from_it() -> None:
    # A run's first status may come after its pod has reported its end (the operator writes it from the
    # Job's events): the row the pod's report made then learns the queue and commit from that status.
    row = ExistingResult(status="SUCCESS", name=CLASS_PATH, job_class_path=CLASS_PATH, result={"ok": 1})
    run = _run("Succeeded", reason="Completed", classPath=CLASS_PATH, queue="network", commit="c" * 40)
    change = plan_result(run, row, job_name="Hello")
    assert change is not None
    assert (change.values["queue"], change.values["commit"]) == ("network", "c" * 40)
    assert change.values["name"] == "Hello"
    assert "status" not in change.values
    assert "result" not in change.values


def test_a_run_ending_as_the_pod_reported_replaces_a_stale_waiting_reason() -> None:
    # The row took PodPending while it waited; the pod reported SUCCESS before the operator saw the end.
    row = ExistingResult(status="SUCCESS", name="Hello", job_class_path=CLASS_PATH, reason="PodPending")
    change = plan_result(_run("Succeeded", reason="Completed"), row, job_name="Hello")
    assert change is not None
    assert change.values["reason"] == "Completed"
    assert "status" not in change.values
    # A run that ends otherwise than the row says does not get the last word.
    other = plan_result(_run("Failed", reason="OOMKilled"), row, job_name="Hello")
    assert other is not None
    assert "reason" not in other.values
    assert "status" not in other.values


def test_times_the_pod_reported_are_kept() -> None:
    reported = datetime(2025, 1, 2, 3, 4, 11, tzinfo=UTC)
    row = ExistingResult(status="STARTED", name="Hello", job_class_path=CLASS_PATH, date_started=reported)
    change = plan_result(_run("Running", startTime=STARTED), row, job_name="Hello")
    assert change is None or "date_started" not in change.values


def test_the_api_rows_identity_is_not_rewritten() -> None:
    row = ExistingResult(
        status="PENDING",
        name="Hello (renamed later)",
        job_class_path=CLASS_PATH,
        user="api-user",
        queue="default",
        task_kwargs={"who": "Ada"},
        run_name="hello-x1",
        run_namespace="jobs",
    )
    change = plan_result(_run("Pending", classPath=CLASS_PATH, queue="gpu"), row, job_name="Hello")
    assert change is None


def test_a_fallback_name_is_replaced_once_the_job_is_known() -> None:
    row = ExistingResult(status="PENDING", name=CLASS_PATH, job_class_path=CLASS_PATH)
    change = plan_result(_run("Pending", classPath=CLASS_PATH), row, job_name="Hello World")
    assert change is not None
    assert change.values["name"] == "Hello World"


@pytest.mark.parametrize(
    "states",
    [
        [("Pending", {}), ("Running", {"startTime": STARTED}), ("Succeeded", {"completionTime": DONE})],
        [("Queued", {"reason": "QueueFull"}), ("Failed", {"reason": "OOMKilled", "completionTime": DONE})],
        [("AwaitingApproval", {}), ("Cancelled", {"reason": "Cancelled", "completionTime": DONE})],
    ],
)
def test_replaying_every_event_writes_nothing(states: list[tuple[str, dict[str, Any]]]) -> None:
    row: ExistingResult | None = None
    for phase, status in states:
        run = _run(phase, classPath=CLASS_PATH, **status)
        change = plan_result(run, row, job_name="Hello", job_model_id=uuid.UUID(int=7))
        assert change is not None
        row = _existing(change) if change.create else _apply(row, change)  # type: ignore[arg-type]
        assert plan_result(run, row, job_name="Hello", job_model_id=uuid.UUID(int=7)) is None
    # And the whole history again, in order: nothing moves.
    for phase, status in states:
        assert plan_result(_run(phase, classPath=CLASS_PATH, **status), row, job_name="Hello") is None


# --- why a run waits, and which image it ran ---------------------------------------------------------
def _waiting(reason: str, message: str, status: str = "True") -> list[dict[str, Any]]:
    return [
        {
            "type": "Waiting",
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": CREATED,
        }
    ]


LIMIT_MESSAGE = "Concurrency limit 1 of queue limited reached: 1 active (first); position 1, 0 run(s) ahead"
DIGEST = "sha256:" + "0f" * 32


def test_a_waiting_run_shows_why_and_the_reason_clears_once_it_runs() -> None:
    queued = _run(
        "Queued", reason="ConcurrencyLimit", conditions=_waiting("QueueConcurrencyLimit", LIMIT_MESSAGE)
    )
    change = plan_result(queued, None, job_name="Hello")
    assert change is not None
    assert (change.values["waiting_reason"], change.values["waiting_message"]) == (
        "QueueConcurrencyLimit",
        LIMIT_MESSAGE,
    )
    row = _existing(change)
    running = _run(
        "Running", reason="PodRunning", conditions=_waiting("PodRunning", "No longer waiting", "False")
    )
    moved = plan_result(running, row, job_name="Hello")
    assert moved is not None
    assert (moved.values["waiting_reason"], moved.values["waiting_message"]) == (None, None)
    assert plan_result(running, _apply(row, moved), job_name="Hello") is None


def test_a_wait_that_changes_its_cause_is_followed() -> None:
    row = ExistingResult(
        status="PENDING",
        name="Hello",
        job_class_path=CLASS_PATH,
        waiting_reason="QueueConcurrencyLimit",
        waiting_message=LIMIT_MESSAGE,
    )
    unschedulable = _run(
        "Pending", reason="Unschedulable", conditions=_waiting("Unschedulable", "The scheduler finds no node")
    )
    change = plan_result(unschedulable, row, job_name="Hello")
    assert change is not None
    assert (change.values["waiting_reason"], change.values["waiting_message"]) == (
        "Unschedulable",
        "The scheduler finds no node",
    )


def test_a_row_the_pod_already_moved_on_waits_for_nothing() -> None:
    # The pod reported it started while the JobRun still showed its wait: the row does not go back.
    row = ExistingResult(status="STARTED", name="Hello", job_class_path=CLASS_PATH)
    stale = _run(
        "Queued", reason="ConcurrencyLimit", conditions=_waiting("QueueConcurrencyLimit", LIMIT_MESSAGE)
    )
    change = plan_result(stale, row, job_name="Hello")
    assert change is None or not {"status", "waiting_reason", "waiting_message"} & change.values.keys()


def test_the_image_digest_the_pod_ran_is_recorded_next_to_the_commit() -> None:
    row = ExistingResult(status="STARTED", name="Hello", job_class_path=CLASS_PATH)
    done = _run("Succeeded", reason="Completed", completionTime=DONE, commit="c" * 40, imageDigest=DIGEST)
    change = plan_result(done, row, job_name="Hello")
    assert change is not None
    assert (change.values["image_digest"], change.values["commit"]) == (DIGEST, "c" * 40)
    created = plan_result(done, None, job_name="Hello")
    assert created is not None
    assert created.values["image_digest"] == DIGEST
    assert "waiting_reason" not in created.values
