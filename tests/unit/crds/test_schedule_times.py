"""A schedule's fire times: every schedule kind, bad crontabs and zones, daylight saving time (pure
functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jobplane_crds.v1alpha1.jobschedule import Schedule
from jobplane_crds.v1alpha1.schedule_times import fire_times, latest_fire, schedule_error

BERLIN = ZoneInfo("Europe/Berlin")


def at(*args: int, tz: Any = UTC) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


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
