"""JobSchedule: run a job later, once or repeatedly; the operator creates one JobRun per fire."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field

from jobplane_crds.v1alpha1.common import Condition, CrdModel, PrinterColumn, Resource
from jobplane_crds.v1alpha1.jobrun import APPROVAL_FINAL, Approval, JobRunPhase

__all__ = [
    "FIRE_SUFFIX_LENGTH",
    "SCHEDULE_INPUTS_SECRET_TYPE",
    "SCHEDULE_NAME_MAX",
    "ConcurrencyPolicy",
    "Interval",
    "JobSchedule",
    "JobScheduleSpec",
    "JobScheduleStatus",
    "Schedule",
    "ScheduledRun",
    "SkippedFire",
]

# A fire's JobRun is named <schedule>-<YYYYMMDDHHMM> (UTC): 13 characters, and a run's name is a label
# value (jobplane.io/run) on its Job and pod, at most 63 characters.
FIRE_SUFFIX_LENGTH = 13
SCHEDULE_NAME_MAX = 63 - FIRE_SUFFIX_LENGTH
# The only Secrets a schedule takes sensitive inputs from: of this type and owned by the schedule. Each
# fire gets its own copy, of type jobplane.io/run-inputs, owned by the fire's run.
SCHEDULE_INPUTS_SECRET_TYPE = "jobplane.io/schedule-inputs"
# Five fields (minute hour day-of-month month day-of-week) of cron's characters; the rest of the syntax
# is checked at admission by the cron library the operator uses.
CRONTAB_PATTERN = r"^[0-9A-Za-z*,/?#LW-]+( +[0-9A-Za-z*,/?#LW-]+){4}$"


class Interval(StrEnum):
    """How often a schedule fires (Nautobot's interval names, in PascalCase)."""

    ONCE = "Once"
    HOURLY = "Hourly"
    DAILY = "Daily"
    WEEKLY = "Weekly"
    CRONTAB = "Crontab"


class ConcurrencyPolicy(StrEnum):
    """What a fire does while an earlier fire's run has not ended (as a CronJob's)."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class Schedule(CrdModel):
    """When the schedule fires."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.interval == 'Crontab' ? has(self.crontab) : !has(self.crontab)",
                    "message": "crontab is required with interval Crontab, and only then",
                },
                {
                    "rule": "self.interval == 'Crontab' || has(self.startTime)",
                    "message": "startTime is required with interval Once, Hourly, Daily and Weekly",
                },
            ]
        }
    }

    interval: Interval
    """Once (at startTime), Hourly, Daily or Weekly (from startTime on, at its minute, its time of day,
    its weekday and time of day in timeZone), or Crontab."""
    start_time: datetime | None = None
    """The first fire (Once: the only one). With Crontab, optional: no fire before it."""
    crontab: str | None = Field(default=None, max_length=255, pattern=CRONTAB_PATTERN)
    """A five-field cron expression (minute hour day-of-month month day-of-week), read in timeZone.
    Across daylight saving time it behaves as Debian's cron: a time skipped by a jump forward fires right
    after the jump; a time repeated by a jump back fires once, at its first occurrence, unless the hour
    field is a wildcard (*/30 * * * * fires in both repeated half hours)."""
    time_zone: str = Field(
        default="Etc/UTC", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$"
    )
    """The IANA time zone of the crontab and of the intervals' time of day (Europe/Berlin)."""


def _unchanged_when_set(field: str) -> dict[str, Any]:
    return {
        "rule": (
            f"has(self.{field}) == has(oldSelf.{field})"
            f" && (!has(self.{field}) || self.{field} == oldSelf.{field})"
        ),
        "message": f"{field} is immutable: create a new JobSchedule instead",
    }


class JobScheduleSpec(CrdModel):
    """What to run and when; written by people, the API or a GitOps tool, never by the operator."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [_unchanged_when_set("inputsSecretRef"), APPROVAL_FINAL]
        }
    }

    job: str = Field(min_length=1, max_length=255)
    """The job to run: a JobDefinition name or a class path (<module>.<ClassName>)."""
    data: dict[str, Any] = Field(default_factory=dict, json_schema_extra={"default": {}})
    """The job's inputs, checked against the job's variables schema when the schedule is written and at
    every fire. Jobs with sensitive variables take them from inputsSecretRef instead."""
    inputs_secret_ref: str | None = Field(default=None, max_length=253)
    """Name of the Secret holding the inputs of a job with sensitive variables (key `data.json`). It must
    not exist when the schedule is created: create it afterwards, of type `jobplane.io/schedule-inputs`
    and owned by the schedule (an ownerReference with controller: true and the schedule's uid). Each
    fire's run gets a copy of its own, owned by that run; the inputs never appear in a JobRun."""
    queue: str | None = Field(default=None, max_length=63)
    """The JobQueue the runs go to; empty means the job's default queue."""
    schedule: Schedule
    """When to fire."""
    starting_deadline_seconds: int | None = Field(default=None, ge=0)
    """A fire more than this late (the operator was down, or the schedule suspended) is skipped, and the
    status says so. Unset: only the latest missed fire runs, however late."""
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    """Allow: runs may overlap. Forbid: a fire while an earlier run has not ended is skipped. Replace: the
    earlier runs are cancelled and the new one starts."""
    suspend: bool = False
    """True: no fires until it is set back to false (missed fires then follow startingDeadlineSeconds)."""
    successful_runs_history_limit: int = Field(default=3, ge=0, le=100)
    """How many succeeded runs to keep; older ones (and their JobResults' pods) are deleted."""
    failed_runs_history_limit: int = Field(default=1, ge=0, le=100)
    """How many failed or cancelled runs to keep."""
    requested_by: str | None = Field(default=None, max_length=253)
    """Who the fires' runs are requested by: stamped by the admission webhook from the Kubernetes user who
    created the schedule or last changed what it runs (a value given is replaced), except for the API's
    own identity, which writes schedules for its users."""
    approval: Approval | None = None
    """The approval decision, for a job that requires one: no fire until approved (`kubectl annotate
    jobschedule <name> jobplane.io/approval=approve`, or deny), never set here. Approved once, it fires
    as scheduled; what it runs can then no longer be changed (create a new JobSchedule)."""


class ScheduledRun(CrdModel):
    """A run the schedule created."""

    name: str
    """The JobRun's name: <schedule>-<fire time, UTC, YYYYMMDDHHMM>."""
    schedule_time: datetime
    """The fire it was created for."""
    phase: JobRunPhase | None = None
    """Its phase when the schedule was last reconciled."""


class SkippedFire(CrdModel):
    """A fire that created no run."""

    schedule_time: datetime
    """The fire time."""
    reason: str
    """MissedStartingDeadline, ConcurrencyForbidden or RunRefused (PascalCase)."""
    message: str = ""
    """Details for a person."""


class JobScheduleStatus(CrdModel):
    """What the operator observed and did; never written by people."""

    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Ready (the schedule is valid and will fire; False with Suspended, Finished or InvalidSchedule)
    and FireSkipped (True when the last fire created no run, with the reason)."""
    observed_generation: int | None = None
    """The metadata.generation this status describes."""
    last_schedule_time: datetime | None = None
    """The last fire that created (or found already created) its run."""
    next_schedule_time: datetime | None = None
    """The next fire; unset when suspended or finished."""
    last_skipped: SkippedFire | None = None
    """The last fire that was skipped, and why."""
    runs: list[ScheduledRun] = Field(default_factory=list)
    """The schedule's runs still kept (see the history limits), newest first."""


class JobSchedule(Resource):
    """Runs a job once at a given time, hourly, daily, weekly or on a crontab, as a CronJob does for Jobs."""

    kind_name = "JobSchedule"
    plural = "jobschedules"
    short_names = ("js",)
    root_validations: ClassVar[tuple[dict[str, str], ...]] = (
        {
            "rule": f"self.metadata.name.size() <= {SCHEDULE_NAME_MAX}",
            "message": f"metadata.name may have at most {SCHEDULE_NAME_MAX} characters: each fire's "
            "JobRun is named <schedule>-<YYYYMMDDHHMM>, within the 63 of a label value",
        },
    )
    printer_columns = (
        PrinterColumn(name="Job", type="string", json_path=".spec.job"),
        PrinterColumn(name="Interval", type="string", json_path=".spec.schedule.interval"),
        PrinterColumn(name="Suspend", type="boolean", json_path=".spec.suspend"),
        PrinterColumn(name="Last-Schedule", type="date", json_path=".status.lastScheduleTime"),
        PrinterColumn(name="Next-Schedule", type="string", json_path=".status.nextScheduleTime"),
        PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),
        PrinterColumn(name="Crontab", type="string", json_path=".spec.schedule.crontab", priority=1),
        PrinterColumn(name="Requested-By", type="string", json_path=".spec.requestedBy", priority=1),
        PrinterColumn(name="Approval", type="string", json_path=".spec.approval.decision", priority=1),
    )

    kind: str = "JobSchedule"
    spec: JobScheduleSpec
    status: JobScheduleStatus | None = None
