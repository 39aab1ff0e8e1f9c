"""When a JobSchedule fires and what each fire does: every schedule kind, DST, deadlines, concurrency,
history (pure functions, an injected clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jobplane_crds.v1alpha1 import INPUTS_SECRET_TYPE, JobSchedule
from jobplane_crds.v1alpha1.jobschedule import SCHEDULE_NAME_MAX, Schedule
from jobplane_crds.v1alpha1.schedule_times import fire_times, latest_fire, schedule_error
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

UID = "5c0a4f8e-1111-2222-3333-444455556666"
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(*args: int, tz: Any = UTC) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


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
    obj: dict[str, Any] = {
        "metadata": {
            "name": "nightly",
            "namespace": "ops",
            "uid": UID,
            "generation": 2,
            "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "spec": {"job": "audit.Audit", "schedule": when, "requestedBy": "alice", **spec},
    }
    if status is not None:
        obj["status"] = status
    return JobSchedule.model_validate(obj)


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


def times(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    return list(islice(fire_times(schedule, after), count))


# --- the schedule kinds -------------------------------------------------------------------------------------


def test_once_fires_at_its_start_time_and_never_again() -> None:
    once = Schedule(interval="Once", start_time=at(2026, 3, 1, 9, 0, 30))
    assert times(once, at(2026, 1, 1), 5) == [at(2026, 3, 1, 9, 0, 30)]
    assert times(once, at(2026, 3, 1, 9, 0, 30), 5) == []
    assert latest_fire(once, at(2026, 3, 1, 9, 0, 29)) is None
    assert latest_fire(once, at(2026, 3, 1, 9, 0, 30)) == at(2026, 3, 1, 9, 0, 30)


def test_hourly_daily_weekly_keep_the_start_times_minute_time_of_day_and_weekday() -> None:
    start = at(2026, 3, 4, 9, 15, tz=BERLIN)  # a Wednesday, 08:15 UTC
    hourly = Schedule(interval="Hourly", start_time=start, time_zone="Europe/Berlin")
    assert times(hourly, at(2026, 1, 1), 3) == [
        at(2026, 3, 4, 8, 15),
        at(2026, 3, 4, 9, 15),
        at(2026, 3, 4, 10, 15),
    ]
    daily = Schedule(interval="Daily", start_time=start, time_zone="Europe/Berlin")
    # Across the jump to summer time (2026-03-29) the time of day stays 09:15 in Berlin.
    assert times(daily, at(2026, 3, 28, 12), 2) == [at(2026, 3, 29, 7, 15), at(2026, 3, 30, 7, 15)]
    weekly = Schedule(interval="Weekly", start_time=start, time_zone="Europe/Berlin")
    assert times(weekly, start, 2) == [at(2026, 3, 11, 8, 15), at(2026, 3, 18, 8, 15)]


def test_the_first_fire_of_an_interval_is_its_start_time_itself() -> None:
    start = at(2026, 3, 4, 9, 15)
    daily = Schedule(interval="Daily", start_time=start)
    assert times(daily, at(2026, 1, 1), 1) == [start]
    assert latest_fire(daily, start) == start
    assert latest_fire(daily, start - timedelta(seconds=1)) is None


def test_crontab_in_a_time_zone_and_never_before_its_start_time() -> None:
    cron = Schedule(interval="Crontab", crontab="0 9 * * 1-5", time_zone="America/New_York")
    assert times(cron, at(2026, 7, 3, 12), 2) == [at(2026, 7, 3, 13), at(2026, 7, 6, 13)]  # EDT, Fri then Mon
    assert times(cron, at(2026, 12, 4, 12), 1) == [at(2026, 12, 4, 14)]  # EST
    later = Schedule(interval="Crontab", crontab="0 9 * * *", start_time=at(2026, 7, 10))
    assert times(later, at(2026, 7, 1), 1) == [at(2026, 7, 10, 9)]
    assert latest_fire(later, at(2026, 7, 9, 12)) is None


@pytest.mark.parametrize(
    ("crontab", "zone", "error"),
    [
        ("61 * * * *", "Etc/UTC", "not a valid cron expression"),
        ("0 0 30 2 *", "Etc/UTC", "not a valid cron expression"),
        ("0 9 * * *", "Mars/Olympus_Mons", "not an IANA time zone"),
        ("0 9 * * *", "Europe/Berlin", None),
    ],
)
def test_bad_crontabs_and_zones_are_named(crontab: str, zone: str, error: str | None) -> None:
    found = schedule_error(Schedule(interval="Crontab", crontab=crontab, time_zone=zone))
    assert (found is None) if error is None else (error in (found or ""))


# --- daylight saving time (Debian cron's rules, through cronsim) -------------------------------------------


def test_a_time_skipped_by_the_spring_jump_fires_right_after_it_in_berlin() -> None:
    # 2027-03-28: Berlin goes from 02:00 CET straight to 03:00 CEST; 02:30 does not exist that day.
    cron = Schedule(interval="Crontab", crontab="30 2 * * *", time_zone="Europe/Berlin")
    fires = times(cron, at(2027, 3, 27, 12), 3)
    assert fires == [at(2027, 3, 28, 1, 0), at(2027, 3, 29, 0, 30), at(2027, 3, 30, 0, 30)]
    assert fires[0].astimezone(BERLIN) == at(2027, 3, 28, 3, 0, tz=BERLIN)  # once, at the jump
    assert latest_fire(cron, at(2027, 3, 28, 1, 5)) == at(2027, 3, 28, 1, 0)


def test_a_time_repeated_by_the_autumn_fallback_fires_once_in_berlin() -> None:
    # 2026-10-25: Berlin goes from 03:00 CEST back to 02:00 CET; 02:30 happens twice. A fixed time fires at
    # its first occurrence only (CEST, 00:30 UTC), never a second time an hour later.
    cron = Schedule(interval="Crontab", crontab="30 2 * * *", time_zone="Europe/Berlin")
    assert times(cron, at(2026, 10, 24, 12), 2) == [at(2026, 10, 25, 0, 30), at(2026, 10, 26, 1, 30)]
    assert latest_fire(cron, at(2026, 10, 25, 1, 45)) == at(2026, 10, 25, 0, 30)


def test_a_wildcard_hour_fires_in_both_repeated_hours() -> None:
    every_half_hour = Schedule(interval="Crontab", crontab="*/30 * * * *", time_zone="Europe/Berlin")
    assert times(every_half_hour, at(2026, 10, 24, 23, 50), 5) == [
        at(2026, 10, 25, 0, 0), at(2026, 10, 25, 0, 30), at(2026, 10, 25, 1, 0), at(2026, 10, 25, 1, 30),
        at(2026, 10, 25, 2, 0),
    ]  # fmt: skip


def test_new_york_gap_and_overlap() -> None:
    cron = Schedule(interval="Crontab", crontab="30 2 * * *", time_zone="America/New_York")
    # 2027-03-14 02:00 EST jumps to 03:00 EDT: fires at 03:00 EDT (07:00 UTC).
    assert times(cron, at(2027, 3, 13, 12), 1) == [at(2027, 3, 14, 7, 0)]
    # 2026-11-01 02:00 EDT falls back to 01:00 EST; 02:30 happens once (EST, 07:30 UTC).
    assert times(cron, at(2026, 10, 31, 12), 2) == [at(2026, 11, 1, 7, 30), at(2026, 11, 2, 7, 30)]


def test_a_daily_interval_across_the_jump_keeps_the_wall_clock_time() -> None:
    daily = Schedule(
        interval="Daily", start_time=at(2027, 3, 20, 2, 30, tz=BERLIN), time_zone="Europe/Berlin"
    )
    fires = [moment.astimezone(BERLIN).strftime("%m-%d %H:%M") for moment in times(daily, at(2027, 3, 26), 4)]
    assert fires == ["03-26 02:30", "03-27 02:30", "03-28 03:00", "03-29 02:30"]


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
