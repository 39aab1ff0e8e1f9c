"""When a JobSchedule's schedule fires: its fire times, its latest fire and why it cannot fire at all.

Fire times come from cronsim (Debian cron's rules across daylight saving time) in the schedule's IANA time
zone. The operator fires by them and the API checks and previews schedules with them, so they live here,
with the model, rather than in either process.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from jobplane_crds.v1alpha1.jobschedule import Interval, Schedule

__all__ = ["aware", "fire_times", "latest_fire", "schedule_error"]

_MINUTE = timedelta(minutes=1)


def _zone(schedule: Schedule) -> ZoneInfo:
    return ZoneInfo(schedule.time_zone)


def aware(moment: datetime) -> datetime:
    """The moment itself if it carries a time zone, else the same wall time read as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _expression(schedule: Schedule) -> str:
    """The schedule as a five-field cron expression (Once has none): the intervals keep startTime's
    minute, time of day and weekday in the schedule's zone, as Nautobot's interval schedules do."""
    if schedule.interval == Interval.CRONTAB:
        return schedule.crontab or ""
    local = aware(schedule.start_time or datetime.min).astimezone(_zone(schedule))
    if schedule.interval == Interval.HOURLY:
        return f"{local.minute} * * * *"
    if schedule.interval == Interval.DAILY:
        return f"{local.minute} {local.hour} * * *"
    return f"{local.minute} {local.hour} * * {local.isoweekday() % 7}"  # cron's 0 is Sunday


def schedule_error(schedule: Schedule) -> str | None:
    """Why the schedule cannot fire (an unknown time zone, a crontab cronsim refuses), or None."""
    try:
        zone = _zone(schedule)
    except (ZoneInfoNotFoundError, ValueError):
        return f"timeZone {schedule.time_zone!r} is not an IANA time zone (Europe/Berlin, Etc/UTC, ...)"
    if schedule.interval == Interval.CRONTAB:
        try:
            CronSim(schedule.crontab or "", datetime.now(zone))
        except CronSimError as exc:
            return f"crontab {schedule.crontab!r} is not a valid cron expression: {exc}"
    elif schedule.start_time is None:
        return f"startTime is required with interval {schedule.interval.value}"
    return None


def _first_allowed(schedule: Schedule) -> datetime | None:
    # The intervals fire at whole minutes, from startTime's own minute on.
    if schedule.start_time is None:
        return None
    start = aware(schedule.start_time).astimezone(UTC)
    if schedule.interval == Interval.ONCE:
        return start
    return start.replace(second=0, microsecond=0)


def fire_times(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """The schedule's fire times strictly after ``after``, in order, in UTC."""
    after = aware(after).astimezone(UTC)
    first = _first_allowed(schedule)
    if schedule.interval == Interval.ONCE:
        if first is not None and first > after:
            yield first
        return
    if first is not None and first - _MINUTE >= after:
        after = first - _MINUTE  # cronsim yields times strictly after its start: startTime itself fires
    for moment in CronSim(_expression(schedule), after.astimezone(_zone(schedule))):
        yield moment.astimezone(UTC)


def latest_fire(schedule: Schedule, now: datetime) -> datetime | None:
    """The last fire time at or before ``now``, or None (none yet)."""
    now = aware(now).astimezone(UTC)
    first = _first_allowed(schedule)
    if schedule.interval == Interval.ONCE:
        return first if first is not None and first <= now else None
    # cronsim's reverse order yields times strictly before its start.
    start = now.replace(microsecond=0) + timedelta(seconds=1)
    moment = next(CronSim(_expression(schedule), start.astimezone(_zone(schedule)), reverse=True), None)
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment if first is None or moment >= first else None
