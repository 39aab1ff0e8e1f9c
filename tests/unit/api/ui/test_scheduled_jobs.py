"""Scheduled jobs pages without a browser: the run form's schedule, the list and its approval filter, a
scheduled job's page and its buttons per user, and each action through the API's services."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.datastructures import FormData

from jobplane_api.identity import Principal
from jobplane_api.identity.principal import Grant
from jobplane_api.schemas import ChoiceValue, JobScheduleReference, ScheduledJobRead
from jobplane_api.services.approvals import OWN_REQUEST
from jobplane_api.services.jobs import job_record
from jobplane_api.services.schedules import ScheduleInput
from jobplane_api.ui.forms import schedule_of_form
from jobplane_api.ui.routes.scheduled_jobs import Actions, interval_text, schedule_actions, state_badge
from jobplane_store.models import JobResult, JobStatus
from tests.ui_support import SCHEDULING, Reserve, TwoQueues, UiWorld, csrf_of, job_definition
from tests.unit.api.ui.test_auth import sign_in

RESERVE = "77777777-7777-4777-8777-777777777777"
QUEUES = "55555555-5555-4555-8555-555555555555"
LATER = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)


# --- pure pieces ---------------------------------------------------------------------------------------


def test_the_form_schedule_is_the_multipart_runs() -> None:
    assert schedule_of_form(FormData([("_schedule_interval", "immediately")])) is None
    assert schedule_of_form(FormData([])) is None
    given = schedule_of_form(
        FormData(
            [
                ("_schedule_interval", "custom"),
                ("_schedule_name", " Nightly "),
                ("_schedule_crontab", "30 2 * * *"),
                ("_schedule_start_time", ""),
            ]
        )
    )
    assert given == ScheduleInput(
        interval="custom", name="Nightly", start_time="", crontab="30 2 * * *", time_zone="Etc/UTC", form=True
    )


def test_a_browsers_start_time_is_a_time_of_the_schedules_zone() -> None:
    form = FormData(
        [
            ("_schedule_interval", "future"),
            ("_schedule_name", "Once"),
            ("_schedule_start_time", "2027-03-28T02:30"),
            ("_schedule_time_zone", "Europe/Berlin"),
        ]
    )
    given = schedule_of_form(form)
    assert given is not None
    assert datetime.fromisoformat(given.start_time).utcoffset() == timedelta(hours=1)
    # A start with its own offset is kept; text that is no time is left for the service to refuse.
    form = FormData([("_schedule_interval", "future"), ("_schedule_start_time", "2027-01-01T00:00+05:00")])
    assert schedule_of_form(form).start_time == "2027-01-01T00:00+05:00"  # type: ignore[union-attr]
    form = FormData([("_schedule_interval", "future"), ("_schedule_start_time", "tomorrow")])
    assert schedule_of_form(form).start_time == "tomorrow"  # type: ignore[union-attr]


def record(**fields: Any) -> ScheduledJobRead:
    values: dict[str, Any] = {
        "id": uuid.UUID(int=1),
        "display": "x",
        "url": "http://t/",
        "natural_slug": "x",
        "name": "Nightly",
        "task": "tools.Reserve",
        "interval": "future",
        "crontab": "",
        "queue": "default",
        "job_queue": None,
        "job_model": None,
        "user": None,
        "approval_required": True,
        "state": ChoiceValue(value="pending", label="Pending"),
        "one_off": True,
        "start_time": None,
        "time_zone": "Etc/UTC",
        "enabled": True,
        "last_run_at": None,
        "total_run_count": 0,
        "date_changed": None,
        "description": "",
        "kwargs": {},
        "celery_kwargs": {},
        "next_run_at": None,
        "requested_by": "rita",
        "job_schedule": JobScheduleReference(namespace="runs", name="nightly-abcde"),
        **fields,
    }
    return ScheduledJobRead(**values)


def test_interval_and_state_as_the_pages_show_them() -> None:
    assert interval_text(record(interval="custom", crontab="0 3 * * 1")) == "Crontab 0 3 * * 1"
    assert interval_text(record(interval="daily")) == "Daily"
    assert state_badge(record()) == ("awaiting approval", "warn")
    assert state_badge(record(state=ChoiceValue(value="active", label="Active"), approved_by="abe")) == (
        "approved by abe",
        "ok",
    )
    assert state_badge(record(state=ChoiceValue(value="active", label="Active"))) == ("active", "ok")
    assert state_badge(record(state=ChoiceValue(value="completed", label="Completed")))[0] == "completed"
    completed = ChoiceValue(value="completed", label="Completed")
    assert state_badge(record(state=completed, approved_by="abe")) == ("completed, approved by abe", "muted")


def principal(name: str, *actions: str) -> Principal:
    grants = (Grant(frozenset(SCHEDULING), frozenset(actions)),) if actions else ()
    return Principal(username=name, write_enabled=True, grants=grants)


def test_the_buttons_follow_the_services_rules() -> None:
    reserve = job_record(job_definition(Reserve, uid=RESERVE), "http://t")
    pending = record()
    approver = principal("abe", "view", "run", "change", "delete", "approve")
    assert schedule_actions(approver, pending, reserve, may_change=True, may_delete=True) == Actions(
        pause=True, delete=True, approve=True, deny=True, dry_run=True
    )
    # The requester: no Approve, and why; they may still withdraw (deny) their own.
    rita = principal("rita", "view", "run", "change", "delete", "approve")
    own = schedule_actions(rita, pending, reserve, may_change=True, may_delete=True)
    assert (own.approve, own.deny, own.approve_refused) == (False, True, OWN_REQUEST)
    # Change on the scheduled job but no approve on its job; a reader: nothing at all.
    changer = principal("carl", "view", "run", "change")
    assert schedule_actions(changer, pending, reserve, may_change=True, may_delete=False).approve_refused == (
        "You do not have permission to approve this request."
    )
    reader = schedule_actions(principal("rex", "view"), pending, reserve, may_change=False, may_delete=False)
    assert (reader.pause, reader.delete, reader.approve, reader.deny, reader.dry_run) == (False,) * 5
    # Resuming needs run on the job; a completed one-off has nothing to resume.
    paused = record(state=ChoiceValue(value="active", label="Active"), enabled=False)
    assert schedule_actions(approver, paused, reserve, may_change=True, may_delete=True).resume
    assert not schedule_actions(
        principal("carl", "view", "change"), paused, reserve, may_change=True, may_delete=True
    ).resume
    done = record(state=ChoiceValue(value="completed", label="Completed"), enabled=False)
    assert not schedule_actions(approver, done, reserve, may_change=True, may_delete=True).resume


# --- pages ----------------------------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> UiWorld:
    world = UiWorld(tmp_path, [job_definition(Reserve, uid=RESERVE), job_definition(TwoQueues, uid=QUEUES)])
    every = ["view", "run", "change", "delete", "approve"]
    world.user("rita", actions=every, object_types=SCHEDULING)
    world.user("abe", actions=every, object_types=SCHEDULING)
    world.user("rex", actions=["view"], object_types=SCHEDULING)
    world.user("jo", actions=["view", "run"])  # jobs and results only: no scheduled jobs
    return world


@pytest.fixture
def client(world: UiWorld) -> Iterator[TestClient]:
    with TestClient(world.app(), follow_redirects=False) as client:
        yield client


def run(client: TestClient, token: str, key: str, **fields: str) -> Any:
    return client.post(f"/jobs/{key}/run/", data={"csrf_token": token, **fields})


def test_scheduling_from_the_form_errors_next_to_fields_then_lands_on_the_scheduled_job(
    client: TestClient, world: UiWorld
) -> None:
    token = sign_in(client, "rita")
    page = client.get(f"/jobs/{QUEUES}/run/").text
    assert 'name="_schedule_interval"' in page
    assert 'name="_schedule_crontab"' in page
    answer = run(
        client, token, QUEUES, count="2", _schedule_interval="custom", _schedule_name="Every night",
        _schedule_crontab="61 2 * * *",
    )  # fmt: skip
    assert answer.status_code == 400
    assert re.search(r'data-testid="error-_schedule_crontab">[^<]+<', answer.text)
    assert 'value="Every night"' in answer.text  # the form comes back filled
    assert world.schedules() == []
    answer = run(
        client, token, QUEUES, count="2", _schedule_interval="custom", _schedule_name="Every night",
        _schedule_crontab="30 2 * * *", _schedule_time_zone="Europe/Berlin",
    )  # fmt: skip
    assert answer.status_code == 303, answer.text
    (schedule,) = world.schedules()
    assert answer.headers["location"] == f"/scheduled-jobs/{schedule['metadata']['uid']}/?created=1"
    assert schedule["spec"]["schedule"]["crontab"] == "30 2 * * *"
    assert schedule["spec"]["schedule"]["timeZone"] == "Europe/Berlin"
    assert (schedule["spec"]["data"], schedule["spec"]["requestedBy"]) == ({"count": 2}, "rita")
    assert world.runs() == []
    page = client.get(answer.headers["location"]).text
    assert "Scheduled: Every night runs crontab 30 2 * * *" in page
    listed = client.get("/scheduled-jobs/").text
    assert "Every night" in listed
    assert "Crontab 30 2 * * *" in listed


def test_a_name_already_taken_is_said_next_to_the_name(client: TestClient, world: UiWorld) -> None:
    token = sign_in(client, "rita")
    start = LATER.strftime("%Y-%m-%dT%H:%M")
    fields = {
        "count": "1",
        "_schedule_interval": "daily",
        "_schedule_name": "Daily",
        "_schedule_start_time": start,
    }
    assert run(client, token, QUEUES, **fields).status_code == 303
    again = run(client, token, QUEUES, **fields)
    assert again.status_code == 400
    assert "Scheduled job with this Name already exists." in again.text
    assert 'data-testid="error-_schedule_name"' in again.text


def as_user(client: TestClient, username: str) -> str:
    """Sign out of the client's session (its cookies) and in as ``username``; the CSRF token."""
    client.cookies.clear()
    return sign_in(client, username)


def pending(client: TestClient, token: str) -> str:
    """Rita asks for a run of the approval-required job: the id of the scheduled job it became."""
    answer = run(client, token, RESERVE, site="ams")
    assert answer.status_code == 303, answer.text
    match = re.fullmatch(r"/scheduled-jobs/([0-9a-f-]{36})/\?created=1", answer.headers["location"])
    assert match, answer.headers["location"]
    return match.group(1)


def test_an_approval_required_run_lands_on_its_scheduled_job_which_says_so(
    client: TestClient, world: UiWorld
) -> None:
    token = sign_in(client, "rita")
    assert "requires approval" in client.get(f"/jobs/{RESERVE}/run/").text
    scheduled = pending(client, token)
    assert world.runs() == []
    page = client.get(f"/scheduled-jobs/{scheduled}/?created=1").text
    assert "is awaiting approval" in page
    assert 'data-testid="approve"' not in page
    assert OWN_REQUEST.replace("'", "&#39;") in page
    # Her own Approve, posted anyway, is refused by the service with its words.
    answer = client.post(f"/scheduled-jobs/{scheduled}/approve/", data={"csrf_token": token})
    assert answer.status_code == 403
    assert 'data-testid="refused"' in answer.text
    awaiting = client.get("/scheduled-jobs/?state=pending").text
    assert "Reserve addresses - " in awaiting
    assert "awaiting approval" in awaiting


def test_another_user_approves_and_the_page_says_by_whom(client: TestClient, world: UiWorld) -> None:
    scheduled = pending(client, sign_in(client, "rita"))
    token = as_user(client, "abe")
    page = client.get(f"/scheduled-jobs/{scheduled}/").text
    assert 'data-testid="approve"' in page
    assert 'data-testid="deny"' in page
    answer = client.post(f"/scheduled-jobs/{scheduled}/approve/", data={"csrf_token": token})
    assert answer.status_code == 303
    (schedule,) = world.schedules()
    assert schedule["spec"]["approval"]["by"] == "abe"
    page = client.get(f"/scheduled-jobs/{scheduled}/").text
    assert "approved by abe" in page
    assert client.get("/scheduled-jobs/?state=pending").text.count('data-testid="scheduled-row"') == 0


def test_deny_deletes_it_and_dry_run_runs_it_without_approving(client: TestClient, world: UiWorld) -> None:
    scheduled = pending(client, sign_in(client, "rita"))
    token = as_user(client, "abe")
    answer = client.post(f"/scheduled-jobs/{scheduled}/dry-run/", data={"csrf_token": token})
    assert answer.status_code == 303
    (dry,) = world.runs()
    assert answer.headers["location"] == f"/job-results/{dry['metadata']['uid']}/"
    assert dry["spec"]["dryRun"] is True
    assert dry["spec"]["requestedBy"] == "abe"
    assert "approval" not in world.schedules()[0]["spec"]
    answer = client.post(f"/scheduled-jobs/{scheduled}/deny/", data={"csrf_token": token})
    assert (answer.status_code, answer.headers["location"]) == (303, "/scheduled-jobs/")
    assert world.schedules() == []
    assert client.get(f"/scheduled-jobs/{scheduled}/").status_code == 404


def test_a_reader_sees_no_buttons_and_is_refused_a_post(client: TestClient, world: UiWorld) -> None:
    scheduled = pending(client, sign_in(client, "rita"))
    token = as_user(client, "rex")
    page = client.get(f"/scheduled-jobs/{scheduled}/").text
    for button in ("pause", "delete", "approve", "deny", "dry-run"):
        assert f'data-testid="{button}"' not in page
    assert "You do not have permission to approve this request." in page
    assert client.post(f"/scheduled-jobs/{scheduled}/pause/", data={"csrf_token": token}).status_code == 403
    assert client.post(f"/scheduled-jobs/{scheduled}/delete/", data={"csrf_token": token}).status_code == 403
    assert "suspend" not in world.schedules()[0]["spec"]


def test_pause_resume_and_delete(client: TestClient, world: UiWorld) -> None:
    token = sign_in(client, "rita")
    start = LATER.strftime("%Y-%m-%dT%H:%M")
    answer = run(
        client, token, QUEUES, count="1", _schedule_interval="hourly", _schedule_name="Hourly",
        _schedule_start_time=start,
    )  # fmt: skip
    scheduled = answer.headers["location"].split("/")[2]
    assert client.post(f"/scheduled-jobs/{scheduled}/pause/", data={"csrf_token": token}).status_code == 303
    assert world.schedules()[0]["spec"]["suspend"] is True
    page = client.get(f"/scheduled-jobs/{scheduled}/").text
    assert 'data-testid="resume"' in page
    assert 'data-testid="pause"' not in page
    assert client.post(f"/scheduled-jobs/{scheduled}/resume/", data={"csrf_token": token}).status_code == 303
    assert world.schedules()[0]["spec"]["suspend"] is False
    assert "Delete Hourly?" in client.get(f"/scheduled-jobs/{scheduled}/delete/").text
    answer = client.post(f"/scheduled-jobs/{scheduled}/delete/", data={"csrf_token": token})
    assert (answer.status_code, answer.headers["location"]) == (303, "/scheduled-jobs/")
    assert world.schedules() == []


def test_a_post_without_csrf_is_refused(client: TestClient, world: UiWorld) -> None:
    scheduled = pending(client, sign_in(client, "rita"))
    as_user(client, "abe")
    assert client.post(f"/scheduled-jobs/{scheduled}/approve/", data={}).status_code == 403
    assert "approval" not in world.schedules()[0]["spec"]


def test_the_runs_of_a_scheduled_job_link_to_their_results(client: TestClient, world: UiWorld) -> None:
    scheduled = pending(client, sign_in(client, "rita"))
    fired = uuid.uuid4()
    with world.sessions.begin() as session:
        session.add(
            JobResult(
                id=fired,
                name="Reserve addresses",
                job_class_path="ui_support.Reserve",
                job_model_id=uuid.UUID(RESERVE),
                user="rita",
                status=JobStatus.SUCCESS,
                date_created=datetime.now(UTC),
                scheduled_job_id=uuid.UUID(scheduled),
            )
        )
    page = client.get(f"/scheduled-jobs/{scheduled}/").text
    assert f'href="/job-results/{fired}/"' in page


def test_the_nav_link_and_the_pages_need_view_on_scheduled_jobs(client: TestClient, world: UiWorld) -> None:
    sign_in(client, "jo")
    assert 'href="/scheduled-jobs/"' not in client.get("/jobs/").text
    assert client.get("/scheduled-jobs/").status_code == 403
    as_user(client, "rex")
    assert 'href="/scheduled-jobs/"' in client.get("/jobs/").text
    assert csrf_of(client.get("/scheduled-jobs/").text)
