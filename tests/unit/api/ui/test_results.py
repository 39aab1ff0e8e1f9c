"""Results pages without a browser: the list and its filters, a result's page, its files, Cancel."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobplane_api.identity import Grant, Principal
from jobplane_api.services.jobs import list_jobs
from jobplane_api.ui.routes.results import JobChoice, job_choices
from jobplane_crds.v1alpha1 import Condition, JobRun
from jobplane_store.models import FileProxy, JobLogEntry, JobResult, JobStatus
from tests.ui_support import Disabled, Hidden, Reserve, Tour, TwoQueues, UiWorld, csrf_of, job_definition
from tests.unit.api.ui.test_auth import sign_in

TOUR = "11111111-1111-4111-8111-111111111111"
DAY = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(tmp_path: Path) -> UiWorld:
    world = UiWorld(tmp_path, [job_definition(Tour, uid=TOUR)])
    world.user("root", superuser=True)
    world.user("ada", actions=["view", "run"])
    world.user("bob", actions=["view"], object_types=["extras.jobresult"], constraints={"user": "$user"})
    return world


@pytest.fixture
def client(world: UiWorld) -> Iterator[TestClient]:
    with TestClient(world.app(), follow_redirects=False) as client:
        yield client


def add_result(
    world: UiWorld, *, user: str = "ada", status: str = JobStatus.SUCCESS, days: int = 0
) -> JobResult:
    row = JobResult(
        id=uuid.uuid4(),
        name="Variables tour",
        job_class_path="ui_support.Tour",
        job_model_id=uuid.UUID(TOUR),
        user=user,
        status=status,
        date_created=DAY - timedelta(days=days),
        date_done=DAY - timedelta(days=days) + timedelta(seconds=3)
        if JobStatus(status).is_terminal
        else None,
        result={"answer": 42} if status == JobStatus.SUCCESS else None,
        task_kwargs={"hostname": "edge-1"},
        queue="default",
    )
    with world.sessions.begin() as session:
        session.add(row)
        session.flush()
        for number, (level, grouping) in enumerate(
            [("info", "main"), ("warning", "main"), ("info", "cleanup"), ("failure", "cleanup")]
        ):
            session.add(
                JobLogEntry(
                    job_result_id=row.id,
                    log_level=level,
                    grouping=grouping,
                    message=f"entry {number} of {user}",
                    created=DAY,
                )
            )
        session.add(FileProxy(name="report.csv", content=b"a,b\n1,2\n", size=8, job_result_id=row.id))
    return row


def test_a_finished_result_shows_its_details_logs_value_files_and_rerun(
    client: TestClient, world: UiWorld
) -> None:
    row = add_result(world)
    sign_in(client, "root")
    page = client.get(f"/job-results/{row.id}/")
    assert page.status_code == 200
    html = page.text
    assert "SUCCESS" in html
    assert "&#34;answer&#34;: 42" in html or '"answer": 42' in html
    assert html.count('data-testid="log-row"') == 4
    # A finished run with all its entries on the page opens no stream.
    assert "sse-connect" not in html
    assert f'href="/jobs/{TOUR}/run/?rerun={row.id}"' in html
    assert 'data-testid="cancel"' not in html
    (link,) = html.split(f"/job-results/{row.id}/files/")[1:2]
    file_id = link.split("/")[0]
    download = client.get(f"/job-results/{row.id}/files/{file_id}/")
    assert download.status_code == 200
    # A file of another result is not reached through this one's page.
    assert client.get(f"/job-results/{uuid.uuid4()}/files/{file_id}/").status_code == 404
    assert download.content == b"a,b\n1,2\n"
    assert "report.csv" in download.headers["content-disposition"]


def test_log_filters_narrow_the_table_and_the_stream(client: TestClient, world: UiWorld) -> None:
    row = add_result(world, status=JobStatus.STARTED)
    sign_in(client, "ada")
    html = client.get(f"/job-results/{row.id}/", params={"log_level": "warning"}).text
    assert html.count('data-testid="log-row"') == 1
    assert "entry 1 of ada" in html
    # The run is active: the stream follows with the same filter, after the last entry shown.
    assert 'sse-connect="/job-results/' in html
    assert "log_level=warning" in html
    fragment = client.get(
        f"/job-results/{row.id}/",
        params={"grouping": "cleanup", "q": "3"},
        headers={"HX-Request": "true", "HX-Target": "log-panel"},
    )
    assert fragment.text.lstrip().startswith('<div id="log-panel">')
    assert fragment.text.count('data-testid="log-row"') == 1
    assert "entry 3 of ada" in fragment.text
    assert client.get(f"/job-results/{row.id}/", params={"log_level": "loud"}).status_code == 400


def test_cancel_is_offered_only_to_who_may_cancel(client: TestClient, world: UiWorld) -> None:
    mine = add_result(world, status=JobStatus.STARTED)
    theirs = add_result(world, user="root", status=JobStatus.STARTED)
    token = sign_in(client, "ada")
    assert 'data-testid="cancel"' in client.get(f"/job-results/{mine.id}/").text
    html = client.get(f"/job-results/{theirs.id}/").text
    assert 'data-testid="cancel"' not in html
    assert "Only the user who requested a run" in html
    # The service refuses it too (same check), and a POST without the CSRF token is refused before that.
    assert client.post(f"/job-results/{theirs.id}/cancel/").status_code == 403
    refused = client.post(f"/job-results/{theirs.id}/cancel/", data={"csrf_token": token})
    assert refused.status_code == 403
    assert "Only the user who requested a run" in refused.text
    # This result has no JobRun: the service says so (409), shown as a page.
    assert client.post(f"/job-results/{mine.id}/cancel/", data={"csrf_token": token}).status_code == 409


def test_rerun_in_one_click_runs_the_same_inputs_and_says_why_when_it_cannot(
    client: TestClient, world: UiWorld
) -> None:
    row = add_result(world)
    token = sign_in(client, "ada")
    html = client.get(f"/job-results/{row.id}/").text
    assert f'action="/job-results/{row.id}/rerun/"' in html
    assert 'data-testid="rerun-now"' in html
    inputs = html.split('data-testid="result-inputs">')[1].split("</td>")[0]
    assert "&#34;hostname&#34;: &#34;edge-1&#34;" in inputs
    assert client.post(f"/job-results/{row.id}/rerun/").status_code == 403  # no CSRF token
    assert world.runs() == []

    answer = client.post(f"/job-results/{row.id}/rerun/", data={"csrf_token": token})

    assert answer.status_code == 303
    new_id = answer.headers["location"].split("/")[2]
    (created,) = world.runs()
    assert created["metadata"]["uid"] == new_id
    assert created["spec"]["data"]["hostname"] == "edge-1"
    assert created["spec"]["requestedBy"] == "ada"
    # Inputs that are not kept (a sensitive job's): no button, the reason, and the form still offered.
    with world.sessions.begin() as session:
        stored = session.get(JobResult, row.id)
        assert stored is not None
        stored.task_kwargs = None
    html = client.get(f"/job-results/{row.id}/").text
    assert 'data-testid="rerun-now"' not in html
    assert "The inputs of this run were sensitive" in html
    assert "Not stored: the job has sensitive variables." in html
    assert f'href="/jobs/{TOUR}/run/?rerun={row.id}"' in html
    refused = client.post(f"/job-results/{row.id}/rerun/", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "The inputs of this run were sensitive" in refused.text


def test_results_are_only_what_the_user_may_view(client: TestClient, world: UiWorld) -> None:
    adas, bobs = add_result(world), add_result(world, user="bob")
    sign_in(client, "bob")
    listing = client.get("/job-results/").text
    assert str(bobs.id) in listing
    assert str(adas.id) not in listing
    assert client.get(f"/job-results/{adas.id}/").status_code == 404
    assert client.get(f"/job-results/{adas.id}/logs/stream/").status_code == 404
    # bob may not view files (his permission is on results only): no link, and the route refuses.
    html = client.get(f"/job-results/{bobs.id}/").text
    assert 'data-testid="files"' not in html
    with world.sessions() as session:
        file_id = session.scalars(select(FileProxy.id).where(FileProxy.job_result_id == bobs.id)).one()
    assert client.get(f"/job-results/{bobs.id}/files/{file_id}/").status_code == 403


def test_the_list_filters_by_job_status_user_and_date_and_pages(client: TestClient, world: UiWorld) -> None:
    rows = [
        add_result(world, days=day, status=JobStatus.FAILURE if day % 2 else JobStatus.SUCCESS)
        for day in range(5)
    ]
    other = add_result(world, user="root", days=10)
    sign_in(client, "root")
    page = client.get("/job-results/", params={"limit": 2}).text
    assert 'data-testid="result-row"' in page
    assert page.count('data-testid="result-row"') == 2
    assert "6 results" in page
    assert "offset=2" in page  # the next page link
    assert (
        client.get("/job-results/", params={"limit": 2, "offset": 4}).text.count('data-testid="result-row"')
        == 2
    )
    failed = client.get("/job-results/", params={"status": "FAILURE"}).text
    assert failed.count('data-testid="result-row"') == 2
    assert "2 results" in client.get("/job-results/", params={"status": "FAILURE"}).text
    assert str(other.id) in client.get("/job-results/", params={"user": "root"}).text
    assert "1 result," in client.get("/job-results/", params={"user": "root"}).text
    # Dates: from the 27th through the 29th, whole days.
    dated = client.get(
        "/job-results/", params={"date_created__gte": "2026-11-27", "date_created__lte": "2026-11-29"}
    )
    assert "3 results" in dated.text
    assert str(rows[0].id) not in dated.text
    assert (
        client.get("/job-results/", params={"job_model_id": TOUR}).text.count('data-testid="result-row"') == 6
    )
    assert client.get("/job-results/", params={"date_created__gte": "soon"}).status_code == 400
    fragment = client.get("/job-results/", params={"status": "SUCCESS"}, headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith("{#") is False
    assert '<div id="results-table">' in fragment.text
    assert "<html" not in fragment.text


def job_viewer(name: str, constraints: object = None) -> Principal:
    grant = Grant.from_permission(
        name=name, object_types=["extras.job"], actions=["view"], constraints=constraints
    )
    assert grant is not None
    return Principal(username=name, grants=(grant,))


def test_the_job_filter_offers_by_name_the_jobs_the_user_may_view(client: TestClient, world: UiWorld) -> None:
    world.add_definition(job_definition(Disabled, enabled=False))
    world.add_definition(job_definition(Hidden))
    world.add_definition(job_definition(TwoQueues, overrides={"name": "Two queues, renamed"}))
    world.add_definition(job_definition(Reserve, overrides={"grouping": "Addresses"}))
    unnamed = job_definition(Hidden)
    unnamed["metadata"]["name"] = "unnamed"
    unnamed["status"]["code"] = {}  # no Meta: the class's name, and its module as the grouping
    world.add_definition(unnamed)
    base = "http://testserver"
    everyone = [ROOT_PRINCIPAL, job_viewer("viewer")]
    for user in everyone:
        # The names-only path gives what the jobs list service gives, in its order.
        listed = list_jobs(kube=world.gateway, principal=user, base_url=base, filters={})
        assert job_choices(world.gateway, user, base) == [JobChoice(str(job.id), job.name) for job in listed]
        assert len(listed) == 6
    # A constrained view is the jobs list service's own check, field by field.
    tools = job_viewer("toolsmith", {"grouping": "Tools"})
    assert [choice.name for choice in job_choices(world.gateway, tools, base)] == [
        "Disabled one",
        "Hidden helper",
        "Two queues, renamed",
    ]
    assert job_choices(world.gateway, job_viewer("nobody", {"name": "no such job"}), base) == []
    # No view of jobs at all (bob views his results only): an empty filter.
    assert job_choices(world.gateway, Principal(username="bob"), base) == []
    sign_in(client, "root")
    html = client.get("/job-results/").text
    assert f'<option value="{TOUR}" >Variables tour</option>' in html
    assert html.index(">Hidden helper<") < html.index(">Two queues, renamed<")


ROOT_PRINCIPAL = Principal(username="root", is_superuser=True)


def test_pages_need_a_sign_in(client: TestClient, world: UiWorld) -> None:
    row = add_result(world)
    assert client.get("/job-results/").status_code == 303
    assert client.get(f"/job-results/{row.id}/").status_code == 303
    assert client.get(f"/job-results/{row.id}/logs/stream/").status_code == 303
    # The API's stream takes tokens only: the session cookie is never read there.
    sign_in(client, "ada")
    assert client.get(f"/api/extras/job-results/{row.id}/logs/stream/").status_code == 403
    html = client.get(f"/job-results/{row.id}/").text
    assert csrf_of(html)


def test_a_waiting_result_says_why_from_its_runs_waiting_condition_or_the_mirrored_reason() -> None:
    from jobplane_api.ui.routes.results import _waiting

    row = JobResult(
        id=uuid.uuid4(),
        name="Tour",
        job_class_path="tour.Tour",
        status=JobStatus.PENDING,
        reason="ConcurrencyLimit",
        message="Concurrency limit 1 of queue solo reached",
        waiting_reason="QueueConcurrencyLimit",
        waiting_message="Concurrency limit 1 of queue solo reached: 1 active (first)",
    )
    waits = {
        "type": "Waiting",
        "status": "True",
        "reason": "SingletonLockHeld",
        "message": "run r7 is active",
        "lastTransitionTime": "2026-12-06T06:00:00Z",
    }
    pending = {
        "type": "Approved",
        "status": "False",
        "reason": "AwaitingApproval",
        "message": "",
        "lastTransitionTime": "2026-12-06T06:00:00Z",
    }
    run = JobRun.model_validate(
        {
            "spec": {"job": "tour"},
            "status": {"phase": "Queued", "reason": "SingletonActive", "conditions": [waits, pending]},
        }
    )
    shown = _waiting(row, run)
    assert shown is not None
    assert (shown["phase"], shown["reason"], shown["message"]) == (
        "Queued",
        "SingletonLockHeld",
        "run r7 is active",
    )
    assert shown["conditions"] == [
        Condition.model_validate(pending)
    ]  # the Waiting condition is the box itself, not listed again
    # Without its JobRun (the cluster unreachable), what the mirror recorded.
    unread = _waiting(row, None)
    assert unread is not None
    assert (unread["reason"], unread["message"]) == (
        "QueueConcurrencyLimit",
        "Concurrency limit 1 of queue solo reached: 1 active (first)",
    )
    row.status = JobStatus.STARTED
    assert _waiting(row, run) is None
