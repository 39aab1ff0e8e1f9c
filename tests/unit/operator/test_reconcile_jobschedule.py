"""What each fire of a JobSchedule does: deadlines, concurrency, history (pure functions, an injected clock).

Its fire times (every schedule kind, DST) are tested in tests/unit/crds/test_schedule_times.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jobplane_crds.v1alpha1 import INPUTS_SECRET_TYPE, JobSchedule
from jobplane_crds.v1alpha1.jobschedule import SCHEDULE_NAME_MAX
from jobplane_operator.reconcile.jobschedule import (
    ANNOTATION_SCHEDULED_AT,
    LABEL_SCHEDULE,
    MAX_MISSED_FIRES,
    fire_run,
    plan,
    refused_status,
    run_inputs_secret,
    run_name,
    schedule_event_matters,
    schedule_run,
)
from tests.builders import job_schedule
from tests.unit.crds.test_schedule_times import BERLIN, at

UID = "5c0a4f8e-1111-2222-3333-444455556666"
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


def schedule_of(
    interval: str = "Crontab",
    *,
    status: dict[str, Any] | None = None,
    created: datetime = CREATED,
    **spec: Any,
) -> JobSchedule:
    when = {"interval": interval}
    for key in ("crontab", "startTime", "timeZone"):
        if key in spec:
            when[key] = spec.pop(key)
    body = job_schedule(
        "nightly",
        namespace="ops",
        metadata={"uid": UID, "generation": 2, "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ")},
        status=status,
        **{"job": "audit.Audit", "schedule": when, "requestedBy": "alice", **spec},
    )
    return JobSchedule.of(body)


def run_of(name: str, fire: datetime, phase: str | None = None) -> dict[str, Any]:
    run: dict[str, Any] = {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "annotations": {ANNOTATION_SCHEDULED_AT: fire.strftime("%Y-%m-%dT%H:%M:%SZ")},
        }
    }
    if phase:
        run["status"] = {"phase": phase}
    return run


def cond(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


# --- the plan -----------------------------------------------------------------------------------------------


def test_a_due_fire_creates_its_run_and_says_when_the_next_is() -> None:
    schedule = schedule_of(crontab="*/5 * * * *", created=at(2026, 2, 1, 10, 2))
    now = at(2026, 2, 1, 10, 5, 3)
    decided = plan(schedule, now=now, runs=[])
    assert decided.fire == at(2026, 2, 1, 10, 5)
    assert decided.status["lastScheduleTime"] == "2026-02-01T10:05:00Z"
    assert decided.status["nextScheduleTime"] == "2026-02-01T10:10:00Z"
    assert cond(decided.status, "Ready")["reason"] == "Scheduled"
    assert cond(decided.status, "FireSkipped") | {"lastTransitionTime": None} == {
        "type": "FireSkipped", "status": "False", "reason": "Fired",
        "message": "the fire at 2026-02-01T10:05:00Z created nightly-202602011005", "observedGeneration": 2,
        "lastTransitionTime": None,
    }  # fmt: skip


def test_a_fire_already_done_is_not_done_again_even_without_its_status() -> None:
    # The run of 10:05 exists (a restart lost the status write): the plan does not fire 10:05 again.
    schedule = schedule_of(crontab="*/5 * * * *")
    runs = [run_of("nightly-202602011005", at(2026, 2, 1, 10, 5))]
    decided = plan(schedule, now=at(2026, 2, 1, 10, 7), runs=runs)
    assert decided.fire is None
    assert decided.status["nextScheduleTime"] == "2026-02-01T10:10:00Z"
    recorded = {"lastScheduleTime": "2026-02-01T10:05:00Z"}
    assert (
        plan(schedule_of(crontab="*/5 * * * *", status=recorded), now=at(2026, 2, 1, 10, 7), runs=[]).fire
        is None
    )


def test_the_run_name_is_deterministic_and_fits_a_label_value() -> None:
    assert run_name("nightly", at(2027, 3, 28, 3, 0, tz=BERLIN)) == "nightly-202703280100"
    assert len(run_name("x" * SCHEDULE_NAME_MAX, at(2026, 1, 1))) == 63


def test_a_repeating_schedule_does_not_make_up_for_the_time_before_it_existed() -> None:
    schedule = schedule_of(crontab="0 * * * *", created=at(2026, 2, 1, 10, 30))
    assert plan(schedule, now=at(2026, 2, 1, 10, 59), runs=[]).fire is None
    assert plan(schedule, now=at(2026, 2, 1, 11, 0, 1), runs=[]).fire == at(2026, 2, 1, 11)


def test_once_in_the_past_within_the_deadline_fires_at_once() -> None:
    start = at(2026, 2, 1, 9, 0)
    schedule = schedule_of(
        "Once",
        startTime="2026-02-01T09:00:00Z",
        startingDeadlineSeconds=300,
        created=start + timedelta(minutes=1),
    )
    decided = plan(schedule, now=start + timedelta(minutes=2), runs=[])
    assert decided.fire == start
    assert decided.status["nextScheduleTime"] is None
    assert cond(decided.status, "Ready")["reason"] == "Finished"


def test_a_fire_beyond_the_starting_deadline_is_skipped_and_said() -> None:
    schedule = schedule_of(crontab="0 * * * *", startingDeadlineSeconds=60)
    decided = plan(schedule, now=at(2026, 2, 1, 10, 3), runs=[])
    assert decided.fire is None
    assert decided.status["lastSkipped"] == {
        "scheduleTime": "2026-02-01T10:00:00Z",
        "reason": "MissedStartingDeadline",
        "message": "the fire at 2026-02-01T10:00:00Z is 180 s late, beyond startingDeadlineSeconds (60)",
    }
    skipped = cond(decided.status, "FireSkipped")
    assert (skipped["status"], skipped["reason"], skipped["observedGeneration"]) == (
        "True",
        "MissedStartingDeadline",
        2,
    )
    # Said once: the next pass does not decide on the same fire again.
    again = plan(
        schedule_of(crontab="0 * * * *", startingDeadlineSeconds=60, status=decided.status),
        now=at(2026, 2, 1, 10, 4),
        runs=[],
    )
    assert again.fire is None
    assert again.status["lastSkipped"] == decided.status["lastSkipped"]


def test_missed_fires_run_only_the_latest_and_too_many_are_said() -> None:
    status = {"lastScheduleTime": "2026-02-01T10:00:00Z"}
    few = plan(schedule_of(crontab="* * * * *", status=status), now=at(2026, 2, 1, 10, 4, 10), runs=[])
    assert few.fire == at(2026, 2, 1, 10, 4)
    assert cond(few.status, "FireSkipped")["reason"] == "MissedFires"
    assert "3 earlier fire(s)" in cond(few.status, "FireSkipped")["message"]
    many = plan(schedule_of(crontab="* * * * *", status=status), now=at(2026, 2, 3), runs=[])
    assert many.fire == at(2026, 2, 3)
    assert cond(many.status, "FireSkipped")["reason"] == "TooManyMissedFires"
    assert str(MAX_MISSED_FIRES) in cond(many.status, "FireSkipped")["message"]


def test_forbid_skips_a_fire_while_a_run_is_active() -> None:
    schedule = schedule_of(crontab="*/5 * * * *", concurrencyPolicy="Forbid")
    active = [run_of("nightly-202602011000", at(2026, 2, 1, 10, 0), "Running")]
    decided = plan(schedule, now=at(2026, 2, 1, 10, 5, 2), runs=active)
    assert decided.fire is None
    assert decided.status["lastSkipped"]["reason"] == "ConcurrencyForbidden"
    assert "nightly-202602011000 has not ended" in decided.status["lastSkipped"]["message"]
    ended = [run_of("nightly-202602011000", at(2026, 2, 1, 10, 0), "Succeeded")]
    assert plan(schedule, now=at(2026, 2, 1, 10, 5, 2), runs=ended).fire == at(2026, 2, 1, 10, 5)


def test_replace_cancels_the_active_runs_and_allow_lets_them_overlap() -> None:
    runs = [
        run_of("nightly-202602011000", at(2026, 2, 1, 10, 0), "Running"),
        run_of("nightly-202602010955", at(2026, 2, 1, 9, 55)),  # not started yet: active too
        run_of("nightly-202602010950", at(2026, 2, 1, 9, 50), "Failed"),
    ]
    now = at(2026, 2, 1, 10, 5, 2)
    replace = plan(schedule_of(crontab="*/5 * * * *", concurrencyPolicy="Replace"), now=now, runs=runs)
    assert replace.fire == at(2026, 2, 1, 10, 5)
    assert replace.cancel == ["nightly-202602010955", "nightly-202602011000"]
    allow = plan(schedule_of(crontab="*/5 * * * *"), now=now, runs=runs)
    assert (allow.fire, allow.cancel) == (at(2026, 2, 1, 10, 5), [])


def test_suspend_stops_fires_and_resuming_follows_the_deadline() -> None:
    suspended = schedule_of(crontab="*/5 * * * *", suspend=True)
    decided = plan(suspended, now=at(2026, 2, 1, 10, 5, 2), runs=[])
    assert (decided.fire, decided.status["nextScheduleTime"]) == (None, None)
    assert cond(decided.status, "Ready") | {"lastTransitionTime": None} == {
        "type": "Ready", "status": "False", "reason": "Suspended",
        "message": "spec.suspend is true: no fires", "observedGeneration": 2, "lastTransitionTime": None,
    }  # fmt: skip
    resumed = schedule_of(crontab="*/5 * * * *", startingDeadlineSeconds=30)
    assert (
        plan(resumed, now=at(2026, 2, 1, 10, 7), runs=[]).status["lastSkipped"]["reason"]
        == "MissedStartingDeadline"
    )


def test_history_keeps_the_newest_runs_within_the_limits() -> None:
    runs = [run_of(f"nightly-2026020110{m:02d}", at(2026, 2, 1, 10, m), "Succeeded") for m in range(0, 25, 5)]
    runs += [run_of("nightly-202602010950", at(2026, 2, 1, 9, 50), "Failed")]
    runs += [run_of("nightly-202602010945", at(2026, 2, 1, 9, 45), "Cancelled")]
    decided = plan(
        schedule_of(crontab="*/5 * * * *", successfulRunsHistoryLimit=2, failedRunsHistoryLimit=1),
        now=at(2026, 2, 1, 10, 21), runs=runs,
    )  # fmt: skip
    assert sorted(decided.delete) == [
        "nightly-202602010945", "nightly-202602011000", "nightly-202602011005", "nightly-202602011010",
    ]  # fmt: skip
    assert [r["name"] for r in decided.status["runs"]] == [
        "nightly-202602011020", "nightly-202602011015", "nightly-202602010950",
    ]  # fmt: skip


def test_the_operators_copy_of_a_run_plans_as_the_whole_run() -> None:
    runs = [
        run_of("nightly-202602011000", at(2026, 2, 1, 10, 0), "Running"),
        run_of("nightly-202602010955", at(2026, 2, 1, 9, 55)),
        run_of("nightly-202602010950", at(2026, 2, 1, 9, 50), "Succeeded"),
        run_of("nightly-202602010945", at(2026, 2, 1, 9, 45), "Failed"),
    ]
    for run in runs:
        run["metadata"] |= {"labels": {LABEL_SCHEDULE: "nightly"}, "ownerReferences": [{"uid": UID}]}
        run["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
        run["spec"] = {"job": "audit.Audit", "data": {"big": "x" * 1000}}
        run.setdefault("status", {})["conditions"] = [{"type": "Ready", "status": "True"}]
    slim = [schedule_run(run) for run in runs]
    assert slim[0] == {
        "metadata": {
            "name": "nightly-202602011000", "uid": "uid-nightly-202602011000",
            "labels": {LABEL_SCHEDULE: "nightly"}, "ownerReferences": [{"uid": UID}],
            "annotations": {ANNOTATION_SCHEDULED_AT: "2026-02-01T10:00:00Z"},
        },
        "status": {"phase": "Running"},
    }  # fmt: skip
    for policy in ("Allow", "Forbid", "Replace"):
        schedule = schedule_of(crontab="*/5 * * * *", concurrencyPolicy=policy, successfulRunsHistoryLimit=0)
        now = at(2026, 2, 1, 10, 5, 2)
        assert plan(schedule, now=now, runs=slim) == plan(schedule, now=now, runs=runs)


def test_an_invalid_schedule_is_said_and_never_fires() -> None:
    decided = plan(schedule_of(crontab="0 9 * * *", timeZone="Nowhere/Land"), now=at(2026, 2, 1, 10), runs=[])
    assert decided.fire is None
    ready = cond(decided.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSchedule")


def test_a_refused_fire_is_skipped_with_the_admission_message() -> None:
    schedule = schedule_of(crontab="*/5 * * * *", status={"lastScheduleTime": "2026-02-01T10:00:00Z"})
    decided = plan(schedule, now=at(2026, 2, 1, 10, 5, 1), runs=[])
    status = refused_status(
        schedule,
        decided,
        fire=at(2026, 2, 1, 10, 5),
        message="JobDisabled: off",
        now=at(2026, 2, 1, 10, 5, 1),
    )
    assert status["lastScheduleTime"] == "2026-02-01T10:00:00Z"
    assert status["lastSkipped"] == {
        "scheduleTime": "2026-02-01T10:05:00Z",
        "reason": "RunRefused",
        "message": "JobDisabled: off",
    }
    assert [c["reason"] for c in status["conditions"] if c["type"] == "FireSkipped"] == ["RunRefused"]


# --- the fire's run and its inputs ----------------------------------------------------------------------


def test_a_fire_run_carries_the_schedules_job_requester_and_owner_but_never_sensitive_inputs() -> None:
    schedule = schedule_of(
        crontab="0 * * * *", data={"depth": 2}, queue="batch", inputsSecretRef="nightly-in"
    )
    run = fire_run(schedule, at(2026, 2, 1, 10))
    assert run["metadata"]["name"] == "nightly-202602011000"
    assert run["metadata"]["labels"][LABEL_SCHEDULE] == "nightly"
    assert run["metadata"]["annotations"] == {ANNOTATION_SCHEDULED_AT: "2026-02-01T10:00:00Z"}
    owner = run["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("JobSchedule", UID, True)
    assert run["spec"] == {
        "job": "audit.Audit", "data": {"depth": 2}, "queue": "batch",
        "inputsSecretRef": "nightly-202602011000-inputs", "requestedBy": "alice",
    }  # fmt: skip
    secret = run_inputs_secret({**run, "metadata": {**run["metadata"], "uid": "run-uid"}}, "e30=")
    assert secret["type"] == INPUTS_SECRET_TYPE
    assert secret["data"] == {"data.json": "e30="}
    assert secret["metadata"]["ownerReferences"][0] | {"blockOwnerDeletion": None} == {
        "apiVersion": "jobplane.io/v1alpha1", "kind": "JobRun", "name": "nightly-202602011000",
        "uid": "run-uid", "controller": True, "blockOwnerDeletion": None,
    }  # fmt: skip


def test_events_matter_when_the_spec_changed_or_a_fire_is_due() -> None:
    obj = {
        "metadata": {"generation": 3},
        "status": {"observedGeneration": 3, "nextScheduleTime": "2026-02-01T10:05:00Z"},
    }
    assert not schedule_event_matters(obj, at(2026, 2, 1, 10, 4))
    assert schedule_event_matters(obj, at(2026, 2, 1, 10, 5))
    assert schedule_event_matters({**obj, "metadata": {"generation": 4}}, at(2026, 2, 1, 10, 4))
