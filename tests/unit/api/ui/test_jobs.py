"""Jobs pages without a browser: the list, a job's page and settings, the run form and its submission."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobplane_api.kube import JOB_DEFINITIONS
from jobplane_store.models import FileProxy, JobResult
from tests.ui_support import (
    Disabled,
    Hidden,
    Sensitive,
    Tour,
    TwoQueues,
    UiWorld,
    csrf_of,
    job_definition,
)
from tests.unit.api.ui.test_auth import sign_in

TOUR = "11111111-1111-4111-8111-111111111111"
DISABLED = "22222222-2222-4222-8222-222222222222"
HIDDEN = "33333333-3333-4333-8333-333333333333"
SENSITIVE = "44444444-4444-4444-8444-444444444444"
QUEUES = "55555555-5555-4555-8555-555555555555"
GONE = "66666666-6666-4666-8666-666666666666"

VALID = {"hostname": "edge-1", "port_count": "0", "role": "router", "network": "10.0.0.0/24"}


@pytest.fixture
def world(tmp_path: Path) -> UiWorld:
    world = UiWorld(
        tmp_path,
        [
            job_definition(
                Tour, uid=TOUR, source={"type": "repository", "repository": "netops", "commit": "a" * 40}
            ),
            job_definition(Disabled, uid=DISABLED, enabled=False),
            job_definition(Hidden, uid=HIDDEN),
            job_definition(Sensitive, uid=SENSITIVE),
            job_definition(TwoQueues, uid=QUEUES),
        ],
    )
    gone = job_definition(Disabled, uid=GONE, installed=False)
    gone["metadata"]["name"] = "gone"
    gone["status"]["code"]["name"] = "Gone job"
    world.add_definition(gone)
    world.user("root", superuser=True)
    world.user("runner", actions=["view", "run"])
    world.user("viewer", actions=["view"])
    return world


@pytest.fixture
def client(world: UiWorld) -> Iterator[TestClient]:
    with TestClient(world.app(), follow_redirects=False) as client:
        yield client


def submit(client: TestClient, job: str, data: dict[str, str], **kwargs: object) -> object:
    page = client.get(f"/jobs/{job}/run/")
    assert page.status_code == 200, page.text
    return client.post(f"/jobs/{job}/run/", data={**data, "csrf_token": csrf_of(page.text)}, **kwargs)


def test_the_list_groups_searches_and_hides_hidden_jobs(client: TestClient) -> None:
    sign_in(client, "viewer")
    page = client.get("/jobs/").text
    assert re.findall(r"<h2>(.*?)</h2>", page) == ["Getting started", "Tools"]
    assert "Variables tour" in page
    assert "Disabled one" in page
    assert "Gone job" in page
    assert "Hidden helper" not in page
    assert "not installed" in page
    assert "disabled" in page
    assert "enabled" in page
    assert "Hidden helper" in client.get("/jobs/?hidden=true").text
    found = client.get("/jobs/?q=tour")
    assert "Variables tour" in found.text
    assert "Disabled one" not in found.text
    # htmx asks for the table alone.
    fragment = client.get("/jobs/?q=tour", headers={"HX-Request": "true"}).text
    assert "<html" not in fragment
    assert "Variables tour" in fragment
    assert "No jobs match" in client.get("/jobs/?q=nothing-like-it").text


def test_the_list_shows_only_jobs_the_user_may_view(client: TestClient, world: UiWorld) -> None:
    world.user("tools", actions=["view"], object_types=["extras.job"], constraints={"grouping": "Tools"})
    sign_in(client, "tools")
    page = client.get("/jobs/").text
    assert "Variables tour" not in page
    assert "Disabled one" in page
    assert client.get(f"/jobs/{TOUR}/").status_code == 404
    assert client.get(f"/jobs/{TOUR}/run/").status_code == 404


def test_a_job_page_shows_source_variables_and_the_run_button(client: TestClient) -> None:
    sign_in(client, "runner")
    page = client.get(f"/jobs/{TOUR}/").text
    assert "Every variable type." in page
    assert "Git repository <strong>netops</strong> at <code>aaaaaaaaaaaa</code>" in page
    for name in ("hostname", "port_count", "settings", "upload"):
        assert f"<code>{name}</code>" in page
    assert 'data-testid="run-link"' in page
    assert "Administration" not in page  # no change permission
    assert "Local (the image" in client.get(f"/jobs/{QUEUES}/").text


@pytest.mark.parametrize(
    ("user", "job", "reason"),
    [
        ("runner", DISABLED, "This job is disabled"),
        ("runner", GONE, "This job is not installed"),
        ("viewer", TOUR, "You do not have permission to run this job."),
    ],
)
def test_no_run_button_and_the_reason_why(client: TestClient, user: str, job: str, reason: str) -> None:
    sign_in(client, user)
    for path in (f"/jobs/{job}/", f"/jobs/{job}/run/"):
        page = client.get(path).text
        assert reason in page
        assert 'data-testid="run-link"' not in page
        assert 'data-testid="run-button"' not in page


def test_the_run_form_has_one_control_per_type_with_defaults(client: TestClient) -> None:
    sign_in(client, "runner")
    page = client.get(f"/jobs/{TOUR}/run/").text
    assert re.search(
        r'<input type="text" id="hostname" name="hostname" required[^>]*minlength="3" maxlength="30"', page
    )
    assert '<textarea rows="4" id="notes" name="notes"' in page
    # A bound of 0 and a default of 0 are kept.
    assert re.search(r'id="port_count" name="port_count" value="0" min="0" max="48"', page)
    assert 'type="checkbox" role="switch" id="enabled" name="enabled" value="true">' in page
    assert 'id="dryrun" name="dryrun" value="true"' in page
    assert '<option value="switch" selected>Switch</option>' in page
    assert '<input type="checkbox" name="features" value="bgp" >' in page
    assert 'id="item" name="item"' in page
    assert "A row of Widget." in page
    assert '<input type="file" id="upload" name="upload"' in page
    assert 'placeholder="192.0.2.1" value=""' in page
    assert 'value="198.51.100.0/24"' in page
    assert "Prefix length from /16 to /29." in page
    assert '<textarea rows="5" class="code"' in page
    assert 'enctype="multipart/form-data"' in page
    assert "_task_queue" not in page  # one queue: no selector
    assert 'name="_task_queue"' in client.get(f"/jobs/{QUEUES}/run/").text


def test_bad_values_come_back_next_to_their_fields(client: TestClient, world: UiWorld) -> None:
    sign_in(client, "runner")
    answer = submit(
        client,
        TOUR,
        {
            **VALID,
            "hostname": "Bad Name",
            "port_count": "49",
            "settings": "{not json",
            "network": "10.0.0.0/8",
        },
    )
    assert answer.status_code == 400
    text = answer.text
    assert 'data-testid="error-hostname">Invalid value. Must match regex: ^[a-z][a-z0-9-]*$<' in text
    assert 'data-testid="error-settings">Enter valid JSON.<' in text
    # The JSON error is found first; the rest of the form is then validated by the API's validator.
    answer = submit(
        client, TOUR, {**VALID, "hostname": "Bad Name", "port_count": "49", "network": "10.0.0.0/8"}
    )
    assert 'data-testid="error-hostname">Invalid value. Must match regex' in answer.text
    assert 'data-testid="error-port_count">Ensure this value is less than or equal to 48.<' in answer.text
    assert 'data-testid="error-network">Prefix length must be at least /16 (it is /8).<' in answer.text
    assert 'value="Bad Name"' in answer.text  # the submitted values are kept
    answer = submit(client, TOUR, {**VALID, "hostname": ""})
    assert 'data-testid="error-hostname">This field is required.<' in answer.text
    assert world.runs() == []


def test_a_valid_run_goes_through_the_run_service_to_the_result_page(
    client: TestClient, world: UiWorld
) -> None:
    sign_in(client, "runner")
    answer = submit(
        client,
        TOUR,
        {
            **VALID,
            "enabled": "true",
            "features": ["bgp", "ospf"],
            "settings": '{"a": [1, 2]}',
            "items": "3, 4",
        },
    )
    assert answer.status_code == 303, answer.text
    result_id = answer.headers["location"].removeprefix("/job-results/").rstrip("/")
    (run,) = world.runs()
    assert run["spec"]["requestedBy"] == "runner"
    assert run["spec"]["data"] == {
        "hostname": "edge-1", "notes": None, "port_count": 0, "enabled": True, "dryrun": False,
        "role": "router", "features": ["bgp", "ospf"], "item": None, "items": ["3", "4"], "upload": None,
        "gateway": None, "management_ip": None, "network": "10.0.0.0/24", "settings": {"a": [1, 2]},
    }  # fmt: skip
    with world.sessions() as session:
        result = session.get(JobResult, uuid.UUID(result_id))
        assert result is not None
        assert result.user == "runner"


def test_a_file_is_uploaded_with_the_run(client: TestClient, world: UiWorld) -> None:
    sign_in(client, "runner")
    page = client.get(f"/jobs/{TOUR}/run/")
    answer = client.post(
        f"/jobs/{TOUR}/run/",
        data={**VALID, "csrf_token": csrf_of(page.text)},
        files={"upload": ("inventory.csv", b"name\nedge-1\n", "text/csv")},
    )
    assert answer.status_code == 303, answer.text
    (run,) = world.runs()
    with world.sessions() as session:
        proxy = session.scalars(select(FileProxy)).one()
        assert (proxy.name, proxy.content, str(proxy.id)) == (
            "inventory.csv",
            b"name\nedge-1\n",
            run["spec"]["data"]["upload"],
        )


def test_a_sensitive_jobs_inputs_go_to_a_secret(client: TestClient, world: UiWorld) -> None:
    sign_in(client, "runner")
    answer = submit(client, SENSITIVE, {"password": "s3cret"})
    assert answer.status_code == 303, answer.text
    (run,) = world.runs()
    assert "data" not in run["spec"] or run["spec"]["data"] == {}
    assert run["spec"]["inputsSecretRef"]
    (secret,) = world.core.secrets
    assert "s3cret" in secret.string_data["data.json"]


def test_the_queue_is_chosen_and_checked_by_the_run_service(client: TestClient, world: UiWorld) -> None:
    sign_in(client, "runner")
    assert submit(client, QUEUES, {"_task_queue": "gpu"}).status_code == 303
    assert world.runs()[0]["spec"]["queue"] == "gpu"
    refused = submit(client, QUEUES, {"_task_queue": "nope"})
    assert refused.status_code == 400
    assert 'data-testid="error-queue">&#34;nope&#34; is not a valid choice.<' in refused.text


def test_a_user_without_run_is_refused_by_the_service_too(client: TestClient, world: UiWorld) -> None:
    sign_in(client, "viewer")
    page = client.get(f"/jobs/{TOUR}/")
    answer = client.post(f"/jobs/{TOUR}/run/", data={**VALID, "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 403
    assert 'data-testid="form-error">You do not have permission' in answer.text
    client.cookies.clear()
    sign_in(client, "runner")
    page = client.get(f"/jobs/{DISABLED}/")
    answer = client.post(f"/jobs/{DISABLED}/run/", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 403
    assert "This job is not enabled to be run." in answer.text
    assert world.runs() == []


def test_an_admin_enables_overrides_and_resets(client: TestClient, world: UiWorld) -> None:
    sign_in(client, "root")
    page = client.get(f"/jobs/{DISABLED}/")
    assert 'data-testid="toggle-enabled">Enable<' in page.text
    token = csrf_of(page.text)
    assert (
        client.post(f"/jobs/{DISABLED}/settings/", data={"csrf_token": token, "enabled": "true"}).status_code
        == 303
    )
    stored = world.fake.objects[(JOB_DEFINITIONS, "ui-support-disabled")]
    assert stored["spec"]["enabled"] is True
    form = {
        "csrf_token": token, "name": "Renamed", "name_override": "true", "hidden": "true",
        "hidden_override": "true", "time_limit": "120", "time_limit_override": "true",
        "task_queues": "default, gpu", "task_queues_override": "true",
    }  # fmt: skip
    assert client.post(f"/jobs/{DISABLED}/settings/", data=form).status_code == 303
    assert stored["spec"]["overrides"] == {
        "name": "Renamed",
        "hidden": True,
        "timeLimit": 120.0,
        "taskQueues": ["default", "gpu"],
    }
    page = client.get(f"/jobs/{DISABLED}/").text
    assert "<h1>Renamed</h1>" in page
    # Unticking "override" resets the field to the code's value.
    form = {"csrf_token": token, "hidden": "true", "hidden_override": "true"}
    assert client.post(f"/jobs/{DISABLED}/settings/", data=form).status_code == 303
    assert stored["spec"]["overrides"] == {"hidden": True}
    bad = client.post(
        f"/jobs/{DISABLED}/settings/",
        data={"csrf_token": token, "time_limit": "-1", "time_limit_override": "true"},
    )
    assert bad.status_code == 400
    assert 'data-testid="settings-error"' in bad.text


def test_changing_needs_the_change_permission(client: TestClient, world: UiWorld) -> None:
    sign_in(client, "runner")
    page = client.get(f"/jobs/{DISABLED}/")
    assert "Administration" not in page.text
    answer = client.post(
        f"/jobs/{DISABLED}/settings/", data={"csrf_token": csrf_of(page.text), "enabled": "true"}
    )
    assert answer.status_code == 403
    assert world.fake.objects[(JOB_DEFINITIONS, "ui-support-disabled")]["spec"]["enabled"] is False


def test_error_pages_are_pages_with_the_users_nav(client: TestClient) -> None:
    sign_in(client, "viewer")
    missing = client.get("/nowhere/")
    assert missing.status_code == 404
    assert 'data-testid="user-menu">viewer<' in missing.text
    unknown = client.get("/jobs/no-such-job/")
    assert unknown.status_code == 404
    assert "No job with id or name" in unknown.text
    bad = client.get("/jobs/?hidden=maybe")
    assert bad.status_code == 400
    assert "text/html" in bad.headers["content-type"]
    assert client.get("/api/extras/jobs/no-such-job/").json() == {
        "detail": "Authentication credentials were not provided."
    }


def test_a_rerun_fills_the_form_with_the_runs_inputs(client: TestClient, world: UiWorld) -> None:
    sign_in(client, "runner")
    data = {**VALID, "enabled": "true", "features": ["ospf"], "settings": '"just text"', "items": "3, 4"}
    first = submit(client, TOUR, data)
    result_id = first.headers["location"].split("/")[2]
    page = client.get(f"/jobs/{TOUR}/run/?rerun={result_id}").text
    assert 'id="hostname" name="hostname" required aria-describedby="hostname-help" value="edge-1"' in page
    assert 'id="enabled" name="enabled" value="true" checked>' in page
    assert '<option value="router" selected>Router</option>' in page
    assert '<input type="checkbox" name="features" value="ospf" checked>' in page
    assert 'value="3, 4"' in page
    assert ">&#34;just text&#34;</textarea>" in page
    assert 'value="10.0.0.0/24"' in page
    # Submitting it again runs with the same inputs.
    again = client.post(f"/jobs/{TOUR}/run/", data={**data, "csrf_token": csrf_of(page)})
    assert again.status_code == 303
    assert world.runs()[0]["spec"]["data"] == world.runs()[1]["spec"]["data"]


def test_a_rerun_of_a_sensitive_job_or_of_another_job_fills_nothing(
    client: TestClient, world: UiWorld
) -> None:
    sign_in(client, "runner")
    secret = submit(client, SENSITIVE, {"password": "s3cret"}).headers["location"].split("/")[2]
    page = client.get(f"/jobs/{SENSITIVE}/run/?rerun={secret}").text
    assert "s3cret" not in page
    assert "The inputs of that run are not stored" in page
    assert client.get(f"/jobs/{TOUR}/run/?rerun={secret}").status_code == 400
    assert client.get(f"/jobs/{TOUR}/run/?rerun={uuid.uuid4()}").status_code == 404
