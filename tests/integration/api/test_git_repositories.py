"""The git-repositories endpoints and `jobplane repo` against the real app, its Postgres and tokens.

Kubernetes is the gateway on an in-memory apiserver (tests/unit/api/test_git_repositories.py); the real
cluster path is covered by tests/e2e/test_git_repositories.py.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jobplane_api.app import create_app
from jobplane_api.identity import service
from jobplane_api.kube import SYNC_REQUESTED_AT, KubeGateway
from jobplane_api.services.sync_results import SyncResultMirror
from jobplane_api.settings import ApiSettings
from jobplane_store.models import JobResult, JobStatus, utcnow
from tests.integration.api.conftest import serve_app
from tests.unit.api.test_git_repositories import FakeCustomObjects, fake_gateway, signed

pytestmark = pytest.mark.postgres

PATH = "/api/extras/git-repositories/"
HOOK = f"{PATH}webhook/"
PASSWORD = "hunter2-secret"
SECRET = "s3cret"


@pytest.fixture
def fake() -> FakeCustomObjects:
    return FakeCustomObjects()


@pytest.fixture
def gateway(fake: FakeCustomObjects) -> KubeGateway:
    return fake_gateway(fake)


def _app(engine: Engine, gateway: KubeGateway, secret: str | None = SECRET) -> Any:
    settings = ApiSettings(
        kubernetes=False,
        default_page_size=2,
        git_webhook_secret=SecretStr(secret) if secret is not None else None,
    )
    return create_app(settings, engine=engine, kube=gateway, mirror=False)


@pytest.fixture
def client(engine: Engine, gateway: KubeGateway) -> Iterator[TestClient]:
    with TestClient(_app(engine, gateway)) as client:
        yield client


def token(
    sessions: sessionmaker[Session], username: str, *actions: str, write: bool = True
) -> dict[str, str]:
    """A user with these actions on git repositories (a superuser when none), and their token's header."""
    with sessions.begin() as session:
        service.create_user(session=session, username=username, is_superuser=not actions)
        if actions:
            service.create_permission(
                session=session,
                name=f"p-{username}",
                users=[username],
                object_types=["extras.gitrepository"],
                actions=list(actions),
            )
        _, key = service.create_user_token(session=session, username=username, write_enabled=write)
    return {"Authorization": f"Token {key}"}


def create(client: TestClient, headers: dict[str, str], name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "remote_url": f"https://git.example.com/{name}.git", **fields}
    created = client.post(PATH, json=body, headers=headers)
    assert created.status_code == 201, created.text
    answer: dict[str, Any] = created.json()
    return answer


def test_create_read_list_change_delete(
    client: TestClient, sessions: sessionmaker[Session], fake: FakeCustomObjects
) -> None:
    root = token(sessions, "root")
    netops = create(client, root, "netops", branch="dev", secrets_group="git-creds", interval="1h")
    assert netops["object_type"] == "extras.gitrepository"
    assert (netops["slug"], netops["branch"], netops["secrets_group"], netops["interval"]) == (
        "netops",
        "dev",
        "git-creds",
        "1h",
    )
    assert netops["url"] == f"http://testserver{PATH}{netops['id']}/"
    assert fake.objects[("jobrepositories", "netops")]["spec"]["credentialsSecretRef"] == "git-creds"
    for name in ("alpha", "zeta"):
        create(client, root, name)

    assert client.get(f"{PATH}{netops['id']}/", headers=root).json() == netops
    assert client.get(f"{PATH}netops/", headers=root).json() == netops
    first = client.get(PATH, headers=root).json()
    assert (first["count"], [r["name"] for r in first["results"]]) == (3, ["alpha", "netops"])
    assert first["next"] == f"http://testserver{PATH}?limit=2&offset=2"
    assert [r["name"] for r in client.get(first["next"], headers=root).json()["results"]] == ["zeta"]
    filtered = client.get(PATH, params={"remote_url": "https://GIT.example.com/zeta/"}, headers=root).json()
    assert [r["name"] for r in filtered["results"]] == ["zeta"]
    assert client.get(PATH, params={"slug": "alpha"}, headers=root).json()["count"] == 1

    changed = client.patch(f"{PATH}netops/", json={"branch": "main", "secrets_group": None}, headers=root)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["branch"], changed.json()["secrets_group"]) == ("main", None)
    assert "credentialsSecretRef" not in fake.objects[("jobrepositories", "netops")]["spec"]
    # A PUT of the record as read (Nautobot clients do that) changes nothing.
    again = client.put(f"{PATH}netops/", json=changed.json(), headers=root)
    assert again.status_code == 200, again.text
    assert again.json() == changed.json()

    assert client.delete(f"{PATH}{netops['id']}/", headers=root).status_code == 204
    assert client.get(f"{PATH}netops/", headers=root).status_code == 404
    assert client.delete(f"{PATH}netops/", headers=root).status_code == 404


def test_bad_input_gets_field_errors_and_no_credential_is_echoed(
    client: TestClient, sessions: sessionmaker[Session], fake: FakeCustomObjects
) -> None:
    root = token(sessions, "root")
    leaky = client.post(
        PATH,
        json={"name": "leaky", "remote_url": f"https://ada:{PASSWORD}@git.example.com/x.git"},
        headers=root,
    )
    assert leaky.status_code == 400
    assert list(leaky.json()) == ["remote_url"]
    assert "secrets_group" in leaky.json()["remote_url"][0]
    assert PASSWORD not in leaky.text
    assert fake.objects == {}

    typed = client.post(
        PATH, json={"name": "x", "remote_url": "https://h/x", "suspend": "maybe"}, headers=root
    )
    assert typed.status_code == 400
    assert list(typed.json()) == ["suspend"]
    assert client.post(PATH, content=b"not json", headers=root).status_code == 400
    missing = client.post(PATH, json={}, headers=root)
    assert missing.json() == {"name": ["This field is required."], "remote_url": ["This field is required."]}

    create(client, root, "netops")
    taken = client.post(PATH, json={"name": "netops", "remote_url": "https://h/y"}, headers=root)
    assert (taken.status_code, taken.json()) == (
        400,
        {
            "name": ["Git repository with this name already exists."],
            "slug": ["Git repository with this slug already exists."],
        },
    )
    reslugged = client.patch(f"{PATH}netops/", json={"slug": "other"}, headers=root)
    assert (reslugged.status_code, list(reslugged.json())) == (400, ["slug"])


def test_sync_sets_the_request_annotation_only(
    client: TestClient, sessions: sessionmaker[Session], fake: FakeCustomObjects
) -> None:
    root = token(sessions, "root")
    created = create(client, root, "netops")
    before = json.loads(json.dumps(fake.objects[("jobrepositories", "netops")]))
    synced = client.post(f"{PATH}{created['id']}/sync/", headers=root)
    assert synced.status_code == 200, synced.text
    assert synced.json()["message"] == "Repository netops sync job added to queue."
    assert synced.json()["job_result"]["status"]["value"] == "PENDING"
    after = fake.objects[("jobrepositories", "netops")]
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    requested = after["metadata"]["annotations"][SYNC_REQUESTED_AT]
    assert time.strptime(requested, "%Y-%m-%dT%H:%M:%S.%fZ")
    assert client.post(f"{PATH}netops/sync/", headers=root).json()["message"].startswith("Repository netops")
    assert (
        fake.objects[("jobrepositories", "netops")]["metadata"]["annotations"][SYNC_REQUESTED_AT] > requested
    )
    assert client.post(f"{PATH}nope/sync/", headers=root).status_code == 404
    client.patch(f"{PATH}netops/", json={"suspend": True}, headers=root)
    assert client.post(f"{PATH}netops/sync/", headers=root).status_code == 409


def test_permissions(client: TestClient, sessions: sessionmaker[Session]) -> None:
    create(client, token(sessions, "root"), "netops")
    viewer = token(sessions, "viewer", "view")
    changer = token(sessions, "changer", "view", "change")
    reader = token(sessions, "reader", write=False)  # a superuser's read-only token

    assert client.get(PATH, headers=viewer).json()["count"] == 1
    assert (
        client.post(PATH, json={"name": "x", "remote_url": "https://h/x"}, headers=viewer).status_code == 403
    )
    assert client.post(f"{PATH}netops/sync/", headers=viewer).status_code == 403
    assert client.patch(f"{PATH}netops/", json={"branch": "dev"}, headers=viewer).status_code == 403
    assert client.delete(f"{PATH}netops/", headers=changer).status_code == 403
    assert client.post(f"{PATH}netops/sync/", headers=changer).status_code == 200
    assert client.get(PATH, headers=reader).status_code == 200
    assert client.post(f"{PATH}netops/sync/", headers=reader).status_code == 403
    assert client.get(PATH).status_code == 403
    assert client.post(f"{PATH}netops/sync/").status_code == 403


def test_the_webhook_checks_the_signature_and_syncs_the_pushed_repository(
    client: TestClient,
    sessions: sessionmaker[Session],
    fake: FakeCustomObjects,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = token(sessions, "root")
    create(client, root, "netops", remote_url="http://127.0.0.1:8080/netops.git")
    create(client, root, "other")
    body = json.dumps(
        {
            "ref": "refs/heads/main",
            "repository": {"clone_url": "http://127.0.0.1:8080/netops.git", "note": PASSWORD},
        }
    ).encode()
    plain = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
    caplog.set_level(logging.DEBUG)

    missing = client.post(HOOK, content=body, headers=plain)
    assert missing.status_code == 401, missing.text
    forged = client.post(HOOK, content=body, headers={**plain, "X-Hub-Signature-256": signed(body, "nope")})
    assert forged.status_code == 403
    assert "does not match" in forged.json()["detail"]
    assert all(
        SYNC_REQUESTED_AT not in obj["metadata"].get("annotations", {}) for obj in fake.objects.values()
    )

    # No token: the signature is the authentication.
    accepted = client.post(HOOK, content=body, headers={**plain, "X-Hub-Signature-256": signed(body, SECRET)})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"synced": ["netops"]}
    assert SYNC_REQUESTED_AT in fake.objects[("jobrepositories", "netops")]["metadata"]["annotations"]
    assert SYNC_REQUESTED_AT not in fake.objects[("jobrepositories", "other")]["metadata"]["annotations"]

    unknown = json.dumps({"repository": {"clone_url": "https://elsewhere/x.git"}}).encode()
    answer = client.post(
        HOOK, content=unknown, headers={**plain, "X-Hub-Signature-256": signed(unknown, SECRET)}
    )
    assert (answer.status_code, answer.json()) == (202, {"synced": []})

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert PASSWORD not in logged
    assert signed(body, SECRET).removeprefix("sha256=") not in logged
    assert "repositories=netops" in logged


def test_an_unconfigured_webhook_says_which_setting_to_set(
    engine: Engine, gateway: KubeGateway, sessions: sessionmaker[Session]
) -> None:
    with TestClient(_app(engine, gateway, secret=None)) as client:
        refused = client.post(HOOK, content=b"{}", headers={"X-Hub-Signature-256": signed(b"{}", SECRET)})
    assert refused.status_code == 403
    assert "JOBPLANE_API_GIT_WEBHOOK_SECRET" in refused.json()["detail"]


def test_job_results_show_the_commit_of_repository_runs(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    root = token(sessions, "root")
    commit = "c" * 40
    rows = [
        JobResult(
            id=uuid.uuid4(),
            name=name,
            job_class_path=path,
            status=JobStatus.SUCCESS,
            date_created=utcnow(),
            commit=sha,
        )
        for name, path, sha in (
            ("Hello", "netops.jobs.hello.Hello", commit),
            ("Image", "hello_world.HelloWorld", None),
        )
    ]
    with sessions.begin() as session:
        session.add_all(rows)
    shown = {row.name: client.get(f"/api/extras/job-results/{row.id}/", headers=root).json() for row in rows}
    assert shown["Hello"]["commit"] == commit
    assert shown["Image"]["commit"] is None


# --- `jobplane repo` against the served API ---------------------------------------------------------------


@pytest.fixture
def served(engine: Engine, gateway: KubeGateway) -> Iterator[str]:
    with serve_app(_app(engine, gateway)) as url:
        yield url


def jobplane(*args: str, url: str | None, key: str | None) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("JOBPLANE_")}
    if url is not None and key is not None:
        env.update(JOBPLANE_URL=url, JOBPLANE_TOKEN=key)
    return subprocess.run(
        [sys.executable, "-m", "jobplane.cli", "repo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_repo_commands_through_the_api(
    served: str, sessions: sessionmaker[Session], fake: FakeCustomObjects
) -> None:
    key = token(sessions, "root")["Authorization"].removeprefix("Token ")
    added = jobplane(
        "add", "netops", "--url", "https://git.example.com/netops.git", "--ref", "dev", url=served, key=key
    )
    assert added.returncode == 0, added.stderr
    assert "Repository netops added" in added.stdout
    assert fake.objects[("jobrepositories", "netops")]["spec"]["ref"] == "dev"

    leaky = jobplane("add", "leaky", "--url", f"https://ada:{PASSWORD}@h/x.git", url=served, key=key)
    assert leaky.returncode == 2
    assert "remote_url: The URL holds credentials" in leaky.stderr
    assert PASSWORD not in leaky.stderr

    synced = jobplane("sync", "netops", url=served, key=key)
    assert (synced.returncode, synced.stdout) == (0, "Repository netops sync job added to queue.\n")
    assert SYNC_REQUESTED_AT in fake.objects[("jobrepositories", "netops")]["metadata"]["annotations"]
    assert jobplane("sync", "missing", url=served, key=key).returncode == 2

    listed = jobplane("list", url=served, key=key)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split()[:5] == ["netops", "netops", "dev", "-", "pending"]

    unconfigured = jobplane("list", url=None, key=None)
    assert unconfigured.returncode == 3
    assert "JOBPLANE_URL and JOBPLANE_TOKEN" in unconfigured.stderr


# --- Nautobot's payload, and a sync's job result ------------------------------------------------------------

NAUTOBOT_PAYLOAD = {
    "name": "Acceptance Seed Jobs",
    "slug": "acceptance_seed_jobs",
    "remote_url": "https://git.example.com/acceptance/seed-jobs.git",
    "branch": "main",
    "provided_contents": ["extras.job"],
}


def test_nautobots_payload_is_registered_with_its_name_and_an_object_named_after_the_slug(
    client: TestClient, sessions: sessionmaker[Session], fake: FakeCustomObjects
) -> None:
    root = token(sessions, "root")
    created = client.post(PATH, json=NAUTOBOT_PAYLOAD, headers=root)
    assert created.status_code == 201, created.text
    record = created.json()
    assert {key: record[key] for key in NAUTOBOT_PAYLOAD} == NAUTOBOT_PAYLOAD
    assert (record["display"], record["job_repository"]) == (
        "Acceptance Seed Jobs",
        {"namespace": "jobs", "name": "acceptance-seed-jobs"},
    )
    assert set(record) >= {"id", "object_type", "url", "secrets_group", "current_head", "created"}
    stored = fake.objects[("jobrepositories", "acceptance-seed-jobs")]
    assert stored["metadata"]["annotations"]["jobplane.io/display-name"] == "Acceptance Seed Jobs"
    for key in (record["id"], "Acceptance%20Seed%20Jobs", "acceptance-seed-jobs"):
        assert client.get(f"{PATH}{key}/", headers=root).json() == record
    listed = client.get(PATH, params={"name": "Acceptance Seed Jobs"}, headers=root).json()
    assert [r["id"] for r in listed["results"]] == [record["id"]]

    again = client.post(PATH, json=NAUTOBOT_PAYLOAD, headers=root)
    assert (again.status_code, again.json()) == (
        400,
        {
            "name": ["Git repository with this name already exists."],
            "slug": ["Git repository with this slug already exists."],
        },
    )
    contents = client.post(
        PATH,
        json={
            **NAUTOBOT_PAYLOAD,
            "name": "Contexts",
            "slug": "contexts",
            "provided_contents": ["extras.job", "extras.configcontext", "nope"],
        },
        headers=root,
    )
    assert (contents.status_code, contents.json()) == (
        400,
        {
            "provided_contents": [
                '"nope" is not a valid choice.',
                "Only jobs (extras.job) are provided by Git repositories here, not extras.configcontext: "
                "remove it, or keep that content in Nautobot.",
            ]
        },
    )
    renamed = client.patch(f"{PATH}{record['id']}/", json={"name": "Seed Jobs"}, headers=root)
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["job_repository"]["name"]) == (
        "Seed Jobs",
        "acceptance-seed-jobs",
    )
    assert set(fake.objects) == {("jobrepositories", "acceptance-seed-jobs")}


def test_a_sync_answers_a_job_result_that_ends_when_the_sync_does(
    client: TestClient, sessions: sessionmaker[Session], gateway: KubeGateway, fake: FakeCustomObjects
) -> None:
    root = token(sessions, "root")
    record = client.post(PATH, json=NAUTOBOT_PAYLOAD, headers=root).json()
    mirror = SyncResultMirror(sessions, gateway)
    stored = fake.objects[("jobrepositories", "acceptance-seed-jobs")]

    synced = client.post(f"{PATH}{record['id']}/sync/", headers=root)
    assert synced.status_code == 200, synced.text
    answer = synced.json()
    assert answer["message"] == "Repository Acceptance Seed Jobs sync job added to queue."
    result_id = answer["job_result"]["id"]
    poll = f"/api/extras/job-results/{result_id}/"
    first = client.get(poll, headers=root).json()
    assert first == answer["job_result"]
    assert (first["name"], first["task_name"], first["status"]["value"], first["user"]["object_type"]) == (
        "Git Repository: Sync",
        "nautobot.core.jobs.GitRepositorySync",
        "PENDING",
        "users.user",
    )
    assert first["task_kwargs"]["repository"] == record["id"]

    # The operator acts on the request: a sync Job runs, then the Synced condition tells how it went.
    requested = stored["metadata"]["annotations"][SYNC_REQUESTED_AT]
    stored["status"] = {"syncRequest": requested, "syncJob": "seed-sync-1", "syncingCommit": "c" * 40}
    assert mirror.apply(copy.deepcopy(stored)) == 1
    assert client.get(poll, headers=root).json()["status"]["value"] == "STARTED"
    stored["status"] = {
        "syncRequest": requested,
        "commit": "c" * 40,
        "classPaths": ["acceptance_seed_jobs.jobs.hello.Hello"],
        "conditions": [
            {
                "type": "Synced",
                "status": "True",
                "reason": "Synced",
                "message": "1 job at ccc",
                "lastTransitionTime": "2026-03-04T05:06:08Z",
            }
        ],
    }
    assert mirror.apply(copy.deepcopy(stored)) == 1
    done = client.get(poll, headers=root).json()
    assert (done["status"]["value"], done["commit"], done["info_log_count"]) == ("SUCCESS", "c" * 40, 1)
    assert done["date_done"] is not None
    assert done["date_started"] is not None
    logs = client.get(f"{poll}logs/", headers=root).json()
    assert [(entry["log_level"], entry["message"]) for entry in logs] == [("info", "1 job at ccc")]

    # A sync that fails ends FAILURE, with the operator's reason.
    failing = client.post(f"{PATH}acceptance-seed-jobs/sync/", headers=root).json()["job_result"]["id"]
    stored["status"] = {
        "syncRequest": stored["metadata"]["annotations"][SYNC_REQUESTED_AT],
        "conditions": [
            {
                "type": "Synced",
                "status": "False",
                "reason": "RefNotFound",
                "message": "no main",
                "lastTransitionTime": "2026-03-04T05:06:08Z",
            }
        ],
    }
    assert mirror.apply(copy.deepcopy(stored)) == 1
    failed = client.get(f"/api/extras/job-results/{failing}/", headers=root).json()
    assert (failed["status"]["value"], failed["reason"], failed["failure_log_count"]) == (
        "FAILURE",
        "RefNotFound",
        1,
    )
    # One left waiting when the repository is deleted is revoked.
    waiting = client.post(f"{PATH}acceptance-seed-jobs/sync/", headers=root).json()["job_result"]["id"]
    assert client.delete(f"{PATH}acceptance-seed-jobs/", headers=root).status_code == 204
    mirror._on_event("DELETED", copy.deepcopy(stored))
    revoked = client.get(f"/api/extras/job-results/{waiting}/", headers=root).json()
    assert (revoked["status"]["value"], revoked["reason"]) == ("REVOKED", "JobRepositoryDeleted")
