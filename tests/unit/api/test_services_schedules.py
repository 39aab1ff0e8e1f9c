"""Scheduled jobs (services/schedules.py): a run request's schedule checked as Nautobot's serializers check
it, the JobSchedule it becomes, the record Nautobot's clients read, and a sensitive job's inputs Secret."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobplane_api.errors import BadRequest, Unavailable
from jobplane_api.identity import Principal
from jobplane_api.kube import KubeError, find_definition
from jobplane_api.services.mirror import plan_result, scheduled_job_of
from jobplane_api.services.results import result_record
from jobplane_api.services.runs import RunRequest, run_job
from jobplane_api.services.schedules import (
    PlannedSchedule,
    ScheduleInput,
    checked_schedule,
    schedule_spec,
    scheduled_job_record,
)
from jobplane_crds.v1alpha1 import Interval, JobDefinition, JobQueue, JobSchedule
from jobplane_store.models import JobResult, JobStatus, utcnow
from tests.builders import job_schedule
from tests.unit.api import test_services_runs
from tests.unit.api.test_services_runs import JOB_UID, NAMESPACE, definition

session = test_services_runs.session  # the same fixture: a session on an empty SQLite store
NOW = datetime(2026, 12, 6, 6, 0, 0, tzinfo=UTC)
LATER = "2026-12-06T07:30:00Z"
BASE = "http://api.test"
ADA = Principal("ada", is_superuser=True, write_enabled=True, user_id=1)

# Nautobot 3.1's ScheduledJobSerializer: the model's fields but the unused celery-beat ones, plus queue,
# state and associated_approval_workflows, and BaseModelSerializer's id/object_type/display/url/natural_slug.
NAUTOBOT_SCHEDULED_JOB_FIELDS = {
    *("id", "object_type", "display", "url", "natural_slug", "queue", "time_zone"),
    *("associated_approval_workflows", "state", "name", "task", "interval", "crontab", "args", "kwargs"),
    *("one_off", "start_time", "enabled", "last_run_at", "total_run_count", "date_changed", "description"),
    *("celery_kwargs", "job_model", "job_queue", "user", "decision_date"),
}


def fails(given: ScheduleInput) -> dict[str, Any]:
    with pytest.raises(BadRequest) as refused:
        checked_schedule(given, now=NOW)
    return refused.value.body()


# --- checking a schedule -----------------------------------------------------------------------------------


def test_immediately_or_no_schedule_is_a_run_now() -> None:
    assert checked_schedule(None, now=NOW) is None
    assert checked_schedule(ScheduleInput(), now=NOW) is None
    # A start time with "immediately" is ignored, as the seed's multipart example sends one in the past.
    past = ScheduleInput(interval="immediately", start_time="2022-10-18T17:31:23.698Z", form=True)
    assert checked_schedule(past, now=NOW) is None


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ("future", Interval.ONCE),
        ("hourly", Interval.HOURLY),
        ("daily", Interval.DAILY),
        ("weekly", Interval.WEEKLY),
    ],
)
def test_nautobots_intervals_become_the_jobschedules(interval: str, expected: Interval) -> None:
    planned = checked_schedule(ScheduleInput(interval=interval, name="nightly", start_time=LATER), now=NOW)
    assert planned == PlannedSchedule(
        name="nightly",
        interval=expected,
        start_time=datetime(2026, 12, 6, 7, 30, tzinfo=UTC),
        time_zone="Etc/UTC",
    )
    assert planned.schedule() == {"interval": expected.value, "startTime": LATER, "timeZone": "Etc/UTC"}


def test_custom_is_a_crontab_whose_start_is_its_next_match_unless_given() -> None:
    planned = checked_schedule(ScheduleInput(interval="custom", name="c", crontab="15 2 * * *"), now=NOW)
    assert planned is not None
    assert planned.interval == Interval.CRONTAB
    assert planned.start_time == datetime(2026, 12, 7, 2, 15, tzinfo=UTC)
    assert planned.schedule()["crontab"] == "15 2 * * *"
    zoned = ScheduleInput(
        interval="custom", name="c", crontab="15 2 * * *", time_zone="Europe/Berlin", start_time=LATER
    )
    planned = checked_schedule(zoned, now=NOW)
    assert planned is not None
    assert (planned.time_zone, planned.start_time.isoformat()) == (
        "Europe/Berlin",
        "2026-12-06T07:30:00+00:00",
    )


def test_a_start_time_without_offset_is_utc_and_one_with_an_offset_is_kept_as_the_moment_it_names() -> None:
    naive = checked_schedule(
        ScheduleInput(interval="future", name="n", start_time="2026-12-06T08:00"), now=NOW
    )
    offset = checked_schedule(
        ScheduleInput(interval="future", name="n", start_time="2026-12-06T09:00:00+01:00"), now=NOW
    )
    assert naive is not None
    assert offset is not None
    assert naive.start_time == offset.start_time == datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def test_refusals_are_nautobots_nested_under_schedule_for_json() -> None:
    assert fails(ScheduleInput(interval="yearly", name="y")) == {
        "schedule": {"interval": ['"yearly" is not a valid choice.']}
    }
    assert fails(ScheduleInput(interval="daily", start_time=LATER)) == {
        "schedule": {"name": ["Please provide a name for the job schedule."]}
    }
    start_message = "Please enter a valid date and time greater than or equal to the current date and time."
    # Missing (but with custom), past, and less than 15 s ahead (Nautobot's earliest_possible_time).
    for start in (None, "2026-12-06T05:59:00Z", (NOW + timedelta(seconds=14)).isoformat()):
        assert fails(ScheduleInput(interval="future", name="f", start_time=start)) == {
            "schedule": {"start_time": [start_message]}
        }
    assert checked_schedule(
        ScheduleInput(interval="future", name="f", start_time=(NOW + timedelta(seconds=15)).isoformat()),
        now=NOW,
    )
    assert fails(ScheduleInput(interval="future", name="f", start_time="tomorrow")) == {
        "schedule": {
            "start_time": [
                "Datetime has wrong format. Use one of these formats instead: "
                "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
            ]
        }
    }
    assert fails(ScheduleInput(interval="custom", name="c")) == {
        "schedule": {"crontab": ["Please enter a valid crontab."]}
    }
    four_fields = fails(ScheduleInput(interval="custom", name="c", crontab="0 2 * *"))
    assert "five fields" in four_fields["schedule"]["crontab"][0]
    out_of_range = fails(ScheduleInput(interval="custom", name="c", crontab="61 2 * * *"))
    assert "not a valid cron expression" in out_of_range["schedule"]["crontab"][0]
    assert list(
        fails(ScheduleInput(interval="daily", name="d", start_time=LATER, time_zone="Mars/Base"))
    ) == ["schedule"]


def test_refusals_of_a_form_name_its_schedule_fields_at_the_top_level() -> None:
    """Nautobot's JobMultiPartInputSerializer: _schedule_name, _schedule_start_time, _schedule_crontab."""
    assert fails(ScheduleInput(interval="weekly", start_time=LATER, form=True)) == {
        "_schedule_name": ["Please provide a name for the job schedule."]
    }
    assert list(fails(ScheduleInput(interval="weekly", name="w", form=True))) == ["_schedule_start_time"]
    assert list(fails(ScheduleInput(interval="custom", name="w", form=True))) == ["_schedule_crontab"]
    assert list(fails(ScheduleInput(interval="often", name="w", form=True))) == ["_schedule_interval"]


def test_what_the_jobschedule_would_refuse_is_refused_first_naming_the_field() -> None:
    """A zone or crontab the CRD's schema refuses is a 400 of the request, never a failed create (503)."""
    for zone in ("../etc/passwd", "Europe/" + "x" * 80, "Nowhere/Atall"):
        given = ScheduleInput(interval="daily", name="d", start_time=LATER, time_zone=zone)
        assert list(fails(given)["schedule"]) == ["time_zone"]
    long_crontab = ScheduleInput(interval="custom", name="c", crontab="1,2,3 " + "1," * 200 + "1 * * *")
    assert fails(long_crontab) == {
        "schedule": {"crontab": ["Ensure this field has no more than 255 characters."]}
    }


# --- the JobSchedule's spec ---------------------------------------------------------------------------


def planned() -> PlannedSchedule:
    return PlannedSchedule(
        name="nightly",
        interval=Interval.DAILY,
        start_time=datetime(2026, 12, 7, 2, tzinfo=UTC),
        time_zone="UTC",
    )


def test_a_spec_carries_the_inputs_or_only_the_name_of_their_secret() -> None:
    plain = schedule_spec(
        planned(), job="tools-login", queue="default", requested_by="ada", data={"x": 1}, inputs_secret=None
    )
    assert plain == {
        "job": "tools-login",
        "queue": "default",
        "schedule": {"interval": "Daily", "startTime": "2026-12-07T02:00:00Z", "timeZone": "UTC"},
        "requestedBy": "ada",
        "data": {"x": 1},
    }
    sensitive = schedule_spec(
        planned(), job="tools-login", queue="default", requested_by="ada", data={}, inputs_secret="s-1"
    )
    assert sensitive["inputsSecretRef"] == "s-1"
    assert "data" not in sensitive


# --- the record ------------------------------------------------------------------------------------------


def schedule_object(**spec: Any) -> dict[str, Any]:
    return job_schedule(
        "nightly-backup-x7k2p",
        namespace=NAMESPACE,
        metadata={
            "uid": "5e0c2f4a-9b1d-4c3e-8f7a-6d5c4b3a2910",
            "creationTimestamp": "2026-12-06T06:00:00Z",
            "annotations": {"jobplane.io/display-name": "Nightly backup"},
        },
        status={"lastScheduleTime": "2026-12-06T02:00:00Z", "nextScheduleTime": "2026-12-07T02:00:00Z"},
        **{
            "job": "tools-login",
            "queue": "default",
            "schedule": {"interval": "Daily", "startTime": "2026-12-07T02:00:00Z", "timeZone": "Etc/UTC"},
            "requestedBy": "ada",
            "data": {"host": "r1"},
            **spec,
        },
    )


def test_a_record_has_nautobots_fields_and_jobplanes_additions() -> None:
    record = scheduled_job_record(
        schedule_object(), BASE, definition=definition(), queue_ids={}, users={"ada": 7}, run_count=3
    )
    fields = set(record.model_dump())
    assert NAUTOBOT_SCHEDULED_JOB_FIELDS - fields == set()
    # 2.x's approval fields for its clients; the JobSchedule, its next fire and requester are Jobplane's.
    assert fields - NAUTOBOT_SCHEDULED_JOB_FIELDS == {
        *("approved_by_user", "approved_at", "approval_required", "next_run_at", "requested_by"),
        *("job_schedule", "approved_by"),
    }
    assert str(record.id) == "5e0c2f4a-9b1d-4c3e-8f7a-6d5c4b3a2910"
    assert record.url == f"{BASE}/api/extras/scheduled-jobs/{record.id}/"
    assert (record.name, record.display, record.interval, record.crontab) == (
        "Nightly backup",
        "Nightly backup: daily",
        "daily",
        "",
    )
    assert (record.task, record.queue, record.job_queue, record.one_off) == (
        "tools.Login",
        "default",
        None,
        False,
    )
    assert record.job_model is not None
    assert str(record.job_model.id) == JOB_UID
    assert record.user is not None
    assert record.user.id == 7
    assert record.user.url == f"{BASE}/api/users/users/7/"
    assert (record.enabled, record.state.value, record.approved_by_user) == (True, "active", None)
    assert (record.total_run_count, record.kwargs, record.args) == (3, {"host": "r1"}, [])
    assert record.last_run_at == datetime(2026, 12, 6, 2, tzinfo=UTC)
    assert record.start_time == datetime(2026, 12, 7, 2, tzinfo=UTC)
    assert (record.job_schedule.namespace, record.job_schedule.name) == (NAMESPACE, "nightly-backup-x7k2p")


def test_suspended_is_disabled_a_finished_once_is_completed_and_sensitive_inputs_are_not_shown() -> None:
    paused = scheduled_job_record(
        schedule_object(suspend=True), BASE, definition=None, queue_ids={}, users={}, run_count=0
    )
    assert (paused.enabled, paused.state.value, paused.job_model, paused.user) == (
        False,
        "active",
        None,
        None,
    )
    done = schedule_object(schedule={"interval": "Once", "startTime": "2026-12-06T02:00:00Z"})
    done["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "False",
            "reason": "Finished",
            "lastTransitionTime": "2026-12-06T02:00:01Z",
        }
    ]
    once = scheduled_job_record(done, BASE, definition=None, queue_ids={}, users={}, run_count=1)
    assert (once.interval, once.one_off, once.enabled, once.state.value) == (
        "future",
        True,
        False,
        "completed",
    )
    secret = schedule_object(inputsSecretRef="jobplane-schedule-inputs-1", data={})
    assert (
        scheduled_job_record(secret, BASE, definition=None, queue_ids={}, users={}, run_count=0).kwargs == {}
    )


# --- a scheduled run's result ------------------------------------------------------------------------------


def test_the_mirror_records_the_schedule_that_owns_a_run_and_the_result_links_it() -> None:
    schedule_uid = "5e0c2f4a-9b1d-4c3e-8f7a-6d5c4b3a2910"
    run = {
        "metadata": {
            "name": "nightly-backup-x7k2p-202612070200",
            "namespace": NAMESPACE,
            "uid": str(uuid.uuid4()),
            "creationTimestamp": "2026-12-07T02:00:01Z",
            "labels": {"jobplane.io/schedule": "nightly-backup-x7k2p"},
            "ownerReferences": [
                {"apiVersion": "jobplane.io/v1alpha1", "kind": "JobSchedule", "name": "nightly-backup-x7k2p",
                 "uid": schedule_uid, "controller": True},
            ],
        },
        "spec": {"job": "tools-login", "requestedBy": "ada", "data": {}},
    }  # fmt: skip
    assert scheduled_job_of(run) == uuid.UUID(schedule_uid)
    change = plan_result(run, None, job_name="Login")
    assert change is not None
    assert change.values["scheduled_job_id"] == uuid.UUID(schedule_uid)
    assert scheduled_job_of({"metadata": {"name": "plain"}}) is None
    row = JobResult(
        id=uuid.uuid4(),
        name="Login",
        job_class_path="tools.Login",
        status=JobStatus.PENDING,
        date_created=utcnow(),
        scheduled_job_id=uuid.UUID(schedule_uid),
        **{f"{level}_log_count": 0 for level in ("debug", "info", "success", "warning", "failure")},
        **{f"{level}_log_count": 0 for level in ("error", "critical")},
        dry_run=False,
    )
    linked = result_record(row, BASE).scheduled_job
    assert linked is not None
    assert (str(linked.id), linked.object_type) == (schedule_uid, "extras.scheduledjob")
    assert linked.url == f"{BASE}/api/extras/scheduled-jobs/{schedule_uid}/"


# --- the run endpoint's path, against the smallest fake of the gateway ------------------------------------


class ScheduleGateway:
    """The calls run_job makes to schedule a job; the inputs Secret refused when ``refuse_secret``."""

    def __init__(self, *, refuse_secret: bool = False) -> None:
        self.refuse_secret = refuse_secret
        self.namespace = NAMESPACE
        self.schedules_made: dict[str, dict[str, Any]] = {}
        self.secrets: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str]] = []

    def find_definition(self, key: str) -> JobDefinition | None:
        return find_definition([JobDefinition.model_validate(definition())], key)

    def queues(self) -> list[JobQueue]:
        return []

    def schedules(self) -> list[JobSchedule]:
        return [JobSchedule.model_validate(made) for made in self.schedules_made.values()]

    def create_schedule(
        self, *, generate_name: str, spec: dict[str, Any], labels: Any, annotations: Any
    ) -> JobSchedule:
        name = f"{generate_name}x7k2p"
        made = {
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "uid": str(uuid.uuid4()),
                "labels": dict(labels),
                "annotations": dict(annotations),
            },
            "spec": spec,
        }
        self.schedules_made[name] = made
        return JobSchedule.model_validate(made)

    def create_schedule_inputs_secret(self, *, schedule: JobSchedule, name: str, data_json: str) -> None:
        self.secrets.append({"owner": schedule.metadata.uid, "name": name, "data": json.loads(data_json)})
        if self.refuse_secret:
            raise KubeError('secrets "x" is forbidden: exceeded quota', status=403)

    def delete_schedule(self, name: str, *, uid: str) -> None:
        self.deleted.append((name, uid))
        self.schedules_made.pop(name, None)


def schedule(session: Session, kube: ScheduleGateway, request: RunRequest) -> Any:
    """Ada (a superuser) runs the sensitive job with this request, as the run endpoint does."""
    return run_job(
        session=session,
        kube=kube,  # type: ignore[arg-type]
        principal=ADA,
        key="Login",
        request=request,
        namespace=NAMESPACE,
        upload_max_size=1024,
        base_url=BASE,
        now=NOW,
    )


def schedule_login(session: Session, kube: ScheduleGateway, name: str = "Nightly login") -> Any:
    when = ScheduleInput(interval="daily", name=name, start_time=LATER)
    return schedule(session, kube, RunRequest(data={"password": "hunter2"}, schedule=when))


def test_a_sensitive_job_is_scheduled_with_its_inputs_in_a_secret_owned_by_the_schedule(
    session: Session,
) -> None:
    kube = ScheduleGateway()
    answer = schedule_login(session, kube)

    assert answer.job_result is None
    assert answer.scheduled_job is not None
    (made,) = kube.schedules_made.values()
    assert str(answer.scheduled_job.id) == made["metadata"]["uid"]
    assert made["metadata"]["annotations"] == {"jobplane.io/display-name": "Nightly login"}
    assert made["metadata"]["name"].startswith("nightly-login-")
    assert made["spec"]["requestedBy"] == "ada"
    assert made["spec"]["inputsSecretRef"] == kube.secrets[0]["name"]
    assert "hunter2" not in json.dumps(made)
    assert "hunter2" not in answer.model_dump_json()
    assert kube.secrets[0]["owner"] == made["metadata"]["uid"]
    assert kube.secrets[0]["data"] == {"password": "hunter2"}
    assert answer.scheduled_job.kwargs == {}
    assert session.scalar(select(func.count()).select_from(JobResult)) == 0

    # The name is unique, as Nautobot's ScheduledJob.name.
    with pytest.raises(BadRequest) as taken:
        schedule_login(session, kube)
    assert taken.value.body() == {"schedule": {"name": ["Scheduled job with this Name already exists."]}}


def test_a_schedule_whose_inputs_secret_cannot_be_stored_is_deleted_by_uid(session: Session) -> None:
    kube = ScheduleGateway(refuse_secret=True)
    with pytest.raises(Unavailable) as refused:
        schedule_login(session, kube)
    assert "Could not store the scheduled job's inputs" in refused.value.detail
    (secret,) = kube.secrets
    assert kube.deleted == [(kube.deleted[0][0], secret["owner"])]
    assert kube.schedules_made == {}


def test_a_job_with_file_inputs_is_only_run_immediately(session: Session) -> None:
    from jobplane_api.services.runs import UploadedFile

    kube = ScheduleGateway()
    request = RunRequest(
        data={"password": "x"},
        files={"upload": UploadedFile(name="a.txt", content=b"a")},
        schedule=ScheduleInput(interval="future", name="f", start_time=LATER, form=True),
    )
    with pytest.raises(BadRequest) as refused:
        schedule(session, kube, request)
    assert refused.value.body() == {"errors": ["A job with file inputs can only be run immediately."]}
    assert kube.schedules_made == {}
