"""Git repositories pages without a browser: the list, the add form and its errors, a repository's page
with its jobs, Sync landing on its result, and who sees what."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select

from jobplane_api.kube import REPOSITORY_DISPLAY_NAME, SYNC_REQUESTED_AT
from jobplane_api.schemas import GitRepositoryRead
from jobplane_api.services.git_repositories import repository_record, url_problem
from jobplane_api.services.sync_results import SYNC_TASK_NAME
from jobplane_api.ui.routes.git_repositories import repository_job_ids, sync_state, write_of_form
from jobplane_crds.v1alpha1 import JobDefinition
from jobplane_store.models import JobResult, JobStatus
from tests.builders import job_repository
from tests.ui_support import Disabled, Tour, UiWorld, csrf_of, job_definition
from tests.unit.api.ui.test_auth import sign_in

GIT = ["extras.gitrepository", "extras.job", "extras.jobresult"]
TOUR = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"
COMMIT = "c0ffee" + "0" * 34
SYNCED: dict[str, Any] = {
    "commit": COMMIT,
    "lastSyncTime": "2026-11-30T12:00:00Z",
    "conditions": [
        {
            "type": "Synced",
            "status": "True",
            "reason": "Synced",
            "message": "2 jobs",
            "lastTransitionTime": "2026-01-03T00:00:00Z",
        }
    ],
}


@pytest.fixture
def world(tmp_path: Path) -> UiWorld:
    world = UiWorld(
        tmp_path,
        [
            job_definition(
                Tour, uid=TOUR, source={"type": "repository", "repository": "netops", "commit": COMMIT}
            ),
            job_definition(Disabled, uid=OTHER),
        ],
    )
    world.fake.add("netops", {"url": "https://git.example.com/netops.git", "slug": "netops"}, SYNCED)
    world.fake.objects[("jobrepositories", "netops")]["metadata"]["annotations"] = {
        REPOSITORY_DISPLAY_NAME: "Network ops"
    }
    world.user("root", superuser=True)
    world.user("reader", actions=["view"], object_types=GIT)
    world.user("jobs-only", actions=["view"], object_types=["extras.job"])
    world.user("adder", actions=["view", "add"], object_types=GIT)
    return world


@pytest.fixture
def client(world: UiWorld) -> Iterator[TestClient]:
    with TestClient(world.app(), follow_redirects=False) as client:
        yield client


def submit_add(client: TestClient, **fields: str | list[str]) -> Any:
    """The add form, opened then submitted with these fields (and its CSRF token)."""
    form = client.get("/git-repositories/add/")
    assert form.status_code == 200, form.text
    return client.post("/git-repositories/add/", data={"csrf_token": csrf_of(form.text), **fields})


def netops_id(world: UiWorld) -> str:
    return str(world.fake.objects[("jobrepositories", "netops")]["metadata"]["uid"])


# --- pure pieces -----------------------------------------------------------------------------------------


def test_the_form_becomes_the_apis_create_body() -> None:
    form = {
        "name": " Net ops ",
        "remote_url": "https://h/r.git",
        "slug": "",
        "branch": " ",
        "secrets_group": "",
    }
    assert write_of_form(form, ["extras.job"]) == {
        "name": "Net ops",
        "remote_url": "https://h/r.git",
        "provided_contents": ["extras.job"],
    }
    # Blank required fields still go, for the service to refuse with its own words; nothing ticked is [].
    assert write_of_form({"branch": "v2", "secrets_group": "creds"}, []) == {
        "name": "",
        "remote_url": "",
        "branch": "v2",
        "secrets_group": "creds",
        "provided_contents": [],
    }


def _record(status: dict[str, Any], *, suspend: bool = False) -> GitRepositoryRead:
    return repository_record(
        job_repository(
            "r",
            namespace="jobs",
            metadata={"uid": str(uuid.uuid4())},
            url="https://h/r.git",
            slug="r",
            suspend=suspend,
            status=status,
        ),
        "http://ui.test",
    )


def test_the_last_sync_as_a_badge() -> None:
    assert sync_state(_record({})) == ("not synced yet", "muted")
    assert sync_state(_record(SYNCED)) == ("synced", "ok")
    failed = {
        "lastSyncTime": "2026-11-30T12:00:00Z",
        "conditions": [
            {
                "type": "Synced",
                "status": "False",
                "reason": "CloneFailed",
                "lastTransitionTime": "2026-01-03T00:00:00Z",
            }
        ],
    }
    assert sync_state(_record(failed)) == ("sync failed", "bad")
    degraded = {
        **SYNCED,
        "conditions": [
            *SYNCED["conditions"],
            {
                "type": "Degraded",
                "status": "True",
                "reason": "ImportErrors",
                "lastTransitionTime": "2026-01-03T00:00:00Z",
            },
        ],
    }
    assert sync_state(_record(degraded)) == ("degraded", "bad")
    assert sync_state(_record(SYNCED, suspend=True)) == ("suspended", "muted")


def test_a_repositorys_jobs_are_those_its_sync_discovered() -> None:
    definitions: list[dict[str, Any]] = [
        {"metadata": {"uid": "b"}, "status": {"source": {"type": "repository", "repository": "netops"}}},
        {"metadata": {"uid": "a"}, "status": {"source": {"type": "repository", "repository": "netops"}}},
        {"metadata": {"uid": "c"}, "status": {"source": {"type": "repository", "repository": "other"}}},
        {"metadata": {"uid": "d"}, "status": {"source": {"type": "image"}}},
        {"metadata": {"uid": "e"}, "spec": {}},
    ]
    typed = [JobDefinition.model_validate(definition) for definition in definitions]
    assert repository_job_ids(typed, "netops") == ["a", "b"]


# --- pages -----------------------------------------------------------------------------------------------


def test_the_list_shows_each_repository_and_its_last_sync(client: TestClient, world: UiWorld) -> None:
    sign_in(client, "reader")
    page = client.get("/git-repositories/")
    assert page.status_code == 200
    html = page.text
    assert 'data-repository="Network ops"' in html
    assert f'href="/git-repositories/{netops_id(world)}/"' in html
    assert "<code>netops</code>" in html
    assert "https://git.example.com/netops.git" in html
    assert "synced" in html
    assert COMMIT[:12] in html
    assert 'href="/git-repositories/"' in html  # the nav link


def test_a_reader_gets_neither_add_nor_sync(client: TestClient, world: UiWorld) -> None:
    csrf = sign_in(client, "reader")
    html = client.get("/git-repositories/").text
    assert 'data-testid="add-repository"' not in html
    assert 'data-testid="sync"' not in html
    assert 'data-testid="sync"' not in client.get(f"/git-repositories/{netops_id(world)}/").text
    assert client.get("/git-repositories/add/").status_code == 403
    refused = client.post(
        "/git-repositories/add/", data={"csrf_token": csrf, "name": "x", "remote_url": "https://h/x"}
    )
    assert refused.status_code == 403
    assert (
        client.post(f"/git-repositories/{netops_id(world)}/sync/", data={"csrf_token": csrf}).status_code
        == 403
    )
    assert [name for plural, name in world.fake.objects if plural == "jobrepositories"] == ["netops"]


def test_without_view_the_pages_and_the_nav_link_are_gone(client: TestClient) -> None:
    sign_in(client, "jobs-only")
    assert 'href="/git-repositories/"' not in client.get("/jobs/").text
    assert client.get("/git-repositories/").status_code == 403


def test_an_admin_sees_add_and_sync(client: TestClient) -> None:
    sign_in(client, "root")
    html = client.get("/git-repositories/").text
    assert 'href="/git-repositories/add/"' in html
    assert 'data-testid="sync"' in html


def test_adding_shows_the_services_errors_next_to_their_fields(client: TestClient, world: UiWorld) -> None:
    sign_in(client, "adder")
    form = client.get("/git-repositories/add/")
    assert form.status_code == 200
    # Every text field has its label; the checkboxes sit inside theirs.
    fields = re.findall(r'<input type="text" id="([a-z_]+)"', form.text)
    assert fields == ["name", "slug", "remote_url", "branch", "secrets_group"]
    assert all(f'<label for="{field}">' in form.text for field in fields)
    assert form.text.count('<label><input type="checkbox" name="provided_contents"') == 6
    answer = submit_add(
        client,
        name="Edge",
        remote_url="ftp://git.example.com/edge.git",
        branch="main",
        provided_contents=["extras.job", "extras.exporttemplate"],
    )
    assert answer.status_code == 400
    html = answer.text
    problem = url_problem("ftp://git.example.com/edge.git")
    assert problem is not None
    assert f'data-testid="error-remote_url">{escape(problem)}</small>' in html
    assert 'data-testid="error-provided_contents"' in html
    assert 'data-testid="error-name"' not in html
    # What was typed comes back.
    assert 'value="Edge"' in html
    assert 'value="ftp://git.example.com/edge.git"' in html
    assert [name for plural, name in world.fake.objects if plural == "jobrepositories"] == ["netops"]


def test_a_name_taken_is_said_next_to_the_name(client: TestClient) -> None:
    sign_in(client, "adder")
    answer = submit_add(
        client,
        name="Network ops",
        remote_url="https://git.example.com/other.git",
        provided_contents="extras.job",
    )
    assert answer.status_code == 400
    assert 'data-testid="error-name">Git repository with this name already exists.</small>' in answer.text


def test_adding_creates_the_repository_and_opens_its_page(client: TestClient, world: UiWorld) -> None:
    sign_in(client, "adder")
    answer = submit_add(
        client,
        name="Edge routers",
        remote_url="https://git.example.com/edge.git",
        slug="",
        branch="",
        secrets_group="git-creds",
        provided_contents="extras.job",
    )
    assert answer.status_code == 303, answer.text
    created = world.fake.objects[("jobrepositories", "edge-routers")]
    assert created["spec"]["url"] == "https://git.example.com/edge.git"
    assert created["spec"]["ref"] == "main"
    assert created["spec"]["slug"] == "edge_routers"
    assert created["spec"]["credentialsSecretRef"] == "git-creds"
    assert answer.headers["location"] == f"/git-repositories/{created['metadata']['uid']}/"
    page = client.get(answer.headers["location"]).text
    assert "Edge routers" in page
    assert 'data-testid="no-jobs"' in page


def test_a_form_without_its_csrf_token_is_refused(client: TestClient, world: UiWorld) -> None:
    sign_in(client, "root")
    answer = client.post("/git-repositories/add/", data={"name": "x", "remote_url": "https://h/x.git"})
    assert answer.status_code == 403
    assert client.post(f"/git-repositories/{netops_id(world)}/sync/").status_code == 403


def test_a_repositorys_page_lists_its_jobs(client: TestClient, world: UiWorld) -> None:
    sign_in(client, "reader")
    page = client.get(f"/git-repositories/{netops_id(world)}/")
    assert page.status_code == 200
    html = page.text
    assert f'href="/jobs/{TOUR}/"' in html
    assert "Variables tour" in html
    assert f"/jobs/{OTHER}/" not in html
    assert COMMIT in html
    # By name too, as the API finds it.
    assert client.get("/git-repositories/Network ops/").status_code == 200
    assert client.get("/git-repositories/nothing/").status_code == 404


def test_sync_lands_on_the_syncs_result(client: TestClient, world: UiWorld) -> None:
    csrf = sign_in(client, "root")
    before = datetime.now(UTC)
    answer = client.post(f"/git-repositories/{netops_id(world)}/sync/", data={"csrf_token": csrf})
    assert answer.status_code == 303, answer.text
    result_id = answer.headers["location"].split("/")[2]
    assert answer.headers["location"] == f"/job-results/{result_id}/"
    with world.sessions() as session:
        row = session.scalars(select(JobResult).where(JobResult.id == uuid.UUID(result_id))).one()
        assert row.job_class_path == SYNC_TASK_NAME
        assert row.status == JobStatus.PENDING
        assert row.user == "root"
    annotations = world.fake.objects[("jobrepositories", "netops")]["metadata"]["annotations"]
    assert annotations[SYNC_REQUESTED_AT] >= before.strftime("%Y-%m-%dT%H:%M:%S")
    assert client.get(answer.headers["location"]).status_code == 200
    # htmx follows it with a redirect header instead.
    hx = client.post(
        f"/git-repositories/{netops_id(world)}/sync/", headers={"HX-Request": "true", "X-CSRFToken": csrf}
    )
    assert hx.status_code == 204
    assert hx.headers["HX-Redirect"].startswith("/job-results/")
