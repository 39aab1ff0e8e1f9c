"""The history endpoints against a real Postgres: pages, filters, permissions, logs, files, deletes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kubernetes.client.exceptions import ApiException
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jobplane_api.app import create_app
from jobplane_api.identity import service
from jobplane_api.services.mirror import RunMirror
from jobplane_api.settings import ApiSettings
from jobplane_store.models import (
    FileProxy,
    JobLogEntry,
    JobResult,
    JobResultTombstone,
    JobStatus,
    utcnow,
)
from jobplane_store.retention import RetentionPolicy, apply_retention
from tests.builders import job_run
from tests.unit.api.test_git_repositories import NAMESPACE, FakeCustomObjects, fake_gateway

pytestmark = pytest.mark.postgres


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    app = create_app(ApiSettings(kubernetes=False, default_page_size=3), engine=engine, mirror=False)
    with TestClient(app) as client:
        yield client


def token(sessions: sessionmaker[Session], username: str, **permission: Any) -> dict[str, str]:
    """A user with one permission (or a superuser when none is given), and a header with their token."""
    with sessions.begin() as session:
        service.create_user(session=session, username=username, is_superuser=not permission)
        if permission:
            service.create_permission(session=session, name=f"p-{username}", users=[username], **permission)
        _, key = service.create_user_token(session=session, username=username)
    return {"Authorization": f"Token {key}"}


@pytest.fixture
def results(sessions: sessionmaker[Session]) -> list[JobResult]:
    """Seven results, newest last: ada's and bob's, some failed, one with logs and a file."""
    now = utcnow()
    rows = [
        JobResult(
            id=uuid.uuid4(),
            name="Hello",
            job_class_path="hello_world.HelloWorld",
            user="ada" if index % 2 else "bob",
            status=JobStatus.FAILURE if index % 3 == 0 else JobStatus.SUCCESS,
            date_created=now - timedelta(minutes=10 - index),
            date_done=now - timedelta(minutes=9 - index),
            result={"index": index},
        )
        for index in range(7)
    ]
    with sessions.begin() as session:
        session.add_all(rows)
        session.flush()
        for number in range(4):
            session.add(
                JobLogEntry(
                    job_result_id=rows[-1].id,
                    log_level="warning" if number == 2 else "info",
                    grouping="run",
                    message=f"line {number}",
                    created=now + timedelta(seconds=number),
                )
            )
        session.add(FileProxy(name="report.txt", content=b"a,b\n", size=4, job_result_id=rows[-1].id))
    return rows


def test_results_are_paged_newest_first_with_nautobot_links(
    client: TestClient, sessions: sessionmaker[Session], results: list[JobResult]
) -> None:
    headers = token(sessions, "root")
    first = client.get("/api/extras/job-results/", headers=headers).json()
    assert first["count"] == 7
    assert [r["id"] for r in first["results"]] == [str(r.id) for r in reversed(results[-3:])]
    assert first["previous"] is None
    assert first["next"].endswith("/api/extras/job-results/?limit=3&offset=3")
    last = client.get("/api/extras/job-results/", params={"offset": 6}, headers=headers).json()
    assert [r["id"] for r in last["results"]] == [str(results[0].id)]
    assert last["next"] is None
    # A list shows summaries; the detail has the result, the files and the status as Nautobot's choice.
    assert first["results"][0]["result"] is None
    detail = client.get(f"/api/extras/job-results/{results[-1].id}/", headers=headers).json()
    assert detail["result"] == {"index": 6}
    assert detail["status"] == {"value": "FAILURE", "label": "FAILURE"}
    (proxy,) = client.get("/api/extras/file-proxies/", headers=headers).json()["results"]
    assert detail["files"] == [
        {"id": proxy["id"], "object_type": "extras.fileproxy", "url": proxy["url"]},
    ]


def nested_objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every object of a body that pynautobot takes for a record of another endpoint (it has a url)."""
    if isinstance(value, dict):
        if "url" in value:
            yield value
        for item in value.values():
            yield from nested_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from nested_objects(item)


def test_nested_objects_are_nautobots_depth_0_references_or_null(
    client: TestClient, sessions: sessionmaker[Session], results: list[JobResult]
) -> None:
    headers = token(sessions, "root")
    with sessions.begin() as session:
        ada_id = service.create_user(session=session, username="ada").id
        job_id = uuid.uuid4()
        session.get_one(JobResult, results[-1].id).job_model_id = job_id
    base = str(client.base_url)
    listed = client.get("/api/extras/job-results/", params={"limit": 0}, headers=headers).json()["results"]
    by_id = {record["id"]: record for record in listed}
    newest, adas = by_id[str(results[-1].id)], by_id[str(results[1].id)]
    assert newest["job_model"] == {
        "id": str(job_id),
        "object_type": "extras.job",
        "url": f"{base}/api/extras/jobs/{job_id}/",
    }
    assert adas["user"] == {
        "id": ada_id,
        "object_type": "users.user",
        "url": f"{base}/api/users/users/{ada_id}/",
    }
    # bob has no user (any more): Nautobot shows a user it cannot find as null, like the other relations;
    # requested_by still names whoever asked.
    assert (newest["user"], newest["requested_by"], adas["requested_by"]) == (None, "bob", "ada")
    assert (adas["job_model"], adas["scheduled_job"], adas["run"]) == (None, None, None)
    log = client.get(f"/api/extras/job-results/{results[-1].id}/logs/", headers=headers).json()[0]
    (proxy,) = client.get("/api/extras/file-proxies/", headers=headers).json()["results"]
    reference = {
        "id": str(results[-1].id),
        "object_type": "extras.jobresult",
        "url": f"{base}/api/extras/job-results/{results[-1].id}/",
    }
    assert log["job_result"] == proxy["job_result"] == reference
    # What pynautobot needs of each object with a url: an id, and a url to an /api/<app>/<endpoint>/ path.
    for body in (listed, log, proxy, client.get(reference["url"], headers=headers).json()):
        for nested in nested_objects(body):
            assert nested["id"] is not None
            assert nested["url"].startswith(f"{base}/api/")
            assert len(nested["url"].removeprefix(f"{base}/api/").strip("/").split("/")) == 3


def test_filters_and_bad_filter_values(
    client: TestClient, sessions: sessionmaker[Session], results: list[JobResult]
) -> None:
    headers = token(sessions, "root")
    failed = client.get("/api/extras/job-results/", params={"status": "failure", "limit": 0}, headers=headers)
    assert {r["id"] for r in failed.json()["results"]} == {str(results[i].id) for i in (0, 3, 6)}
    assert client.get("/api/extras/job-results/", params={"limit": -1}, headers=headers).status_code == 400
    bad_id = client.get("/api/extras/job-results/", params={"job_model": "nope"}, headers=headers)
    assert bad_id.status_code == 400
    assert bad_id.json() == {"job_model": ["Enter a valid UUID."]}
    assert client.get("/api/extras/job-results/not-a-uuid/", headers=headers).status_code == 404


def test_a_constrained_permission_shows_only_its_objects(
    client: TestClient, sessions: sessionmaker[Session], results: list[JobResult]
) -> None:
    ada = token(
        sessions, "ada", object_types=["extras.jobresult"], actions=["view"], constraints={"user": "$user"}
    )
    listed = client.get("/api/extras/job-results/", params={"limit": 0}, headers=ada).json()
    assert listed["count"] == 3
    with sessions() as session:
        ada_id = service.get_user(session=session, username="ada").id
    assert {r["user"]["id"] for r in listed["results"]} == {ada_id}
    bobs = next(r for r in results if r.user == "bob")
    assert client.get(f"/api/extras/job-results/{bobs.id}/", headers=ada).status_code == 404
    # No view on logs or files: those lists are refused outright.
    assert client.get("/api/extras/job-logs/", headers=ada).status_code == 403
    assert client.delete(f"/api/extras/job-results/{results[1].id}/", headers=ada).status_code == 403


def test_logs_and_files(
    client: TestClient, sessions: sessionmaker[Session], results: list[JobResult]
) -> None:
    headers = token(sessions, "root")
    run = results[-1]
    logs = client.get(f"/api/extras/job-results/{run.id}/logs/", headers=headers).json()
    assert [entry["message"] for entry in logs] == ["line 0", "line 1", "line 2", "line 3"]
    warnings = client.get("/api/extras/job-logs/", params={"log_level": "warning"}, headers=headers).json()
    assert [entry["message"] for entry in warnings["results"]] == ["line 2"]
    assert (
        client.get("/api/extras/job-logs/", params={"log_level": "loud"}, headers=headers).status_code == 400
    )
    searched = client.get("/api/extras/job-logs/", params={"q": "LINE 3"}, headers=headers).json()
    assert searched["count"] == 1
    (proxy,) = client.get("/api/extras/file-proxies/", headers=headers).json()["results"]
    download = client.get(proxy["file"], headers=headers)
    assert download.content == b"a,b\n"
    assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''report.txt"


def test_deleting_a_result_removes_its_logs_and_files(
    client: TestClient, sessions: sessionmaker[Session], results: list[JobResult]
) -> None:
    headers = token(sessions, "root")
    run = results[-1]
    assert client.delete(f"/api/extras/job-results/{run.id}/", headers=headers).status_code == 204
    assert client.get(f"/api/extras/job-results/{run.id}/", headers=headers).status_code == 404
    assert client.get("/api/extras/job-logs/", headers=headers).json()["count"] == 0
    assert client.get("/api/extras/file-proxies/", headers=headers).json()["count"] == 0


def test_a_running_result_cannot_be_deleted(client: TestClient, sessions: sessionmaker[Session]) -> None:
    headers = token(sessions, "root")
    running = JobResult(id=uuid.uuid4(), name="Slow", job_class_path="a.Slow", status=JobStatus.STARTED)
    with sessions.begin() as session:
        session.add(running)
    refused = client.delete(f"/api/extras/job-results/{running.id}/", headers=headers)
    assert refused.status_code == 409
    assert "cancel it first" in refused.json()["detail"]


def test_callers_without_a_valid_token_are_refused(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    assert client.get("/api/extras/job-results/").json() == {
        "detail": "Authentication credentials were not provided."
    }
    bad = client.get("/api/extras/job-results/", headers={"Authorization": "Token nope"})
    assert bad.status_code == 403
    # Jobs live in Kubernetes; without it the API says so instead of failing.
    jobs = client.get("/api/extras/jobs/", headers=token(sessions, "root"))
    assert jobs.status_code == 503


# --- deletes are final: the JobRun goes, and the mirror never brings the result back -----------------------


class RunsApiserver(FakeCustomObjects):
    """The in-memory apiserver, deleting as the real one does: with a uid precondition, and refusals."""

    def __init__(self) -> None:
        super().__init__(served=("jobdefinitions", "jobqueues", "jobrepositories", "jobruns"))
        self.refuse_deletes = False

    def delete_namespaced_custom_object(  # type: ignore[override]
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Any = None
    ) -> dict[str, Any]:
        if self.refuse_deletes:
            raise ApiException(status=403, reason="Forbidden")
        wanted = getattr(getattr(body, "preconditions", None), "uid", None)
        current = self.objects.get((plural, name))
        if current is not None and wanted is not None and current["metadata"]["uid"] != wanted:
            raise ApiException(status=409, reason="Conflict")
        return super().delete_namespaced_custom_object(group, version, namespace, plural, name)

    def add_run(self, name: str, phase: str = "Succeeded") -> dict[str, Any]:
        created = self.create_namespaced_custom_object(
            "jobplane.io",
            "v1alpha1",
            NAMESPACE,
            "jobruns",
            job_run(name, namespace=NAMESPACE, job="hello_world.HelloWorld", data={}, requestedBy="ada"),
        )
        self.objects[("jobruns", name)]["status"] = created["status"] = {"phase": phase}
        return created


@pytest.fixture
def apiserver() -> RunsApiserver:
    return RunsApiserver()


@pytest.fixture
def kube_client(engine: Engine, apiserver: RunsApiserver) -> Iterator[TestClient]:
    settings = ApiSettings(kubernetes=False, namespace=NAMESPACE)
    app = create_app(settings, engine=engine, kube=fake_gateway(apiserver), mirror=False)
    with TestClient(app) as client:
        yield client


def _mirror(sessions: sessionmaker[Session], apiserver: RunsApiserver) -> RunMirror:
    settings = ApiSettings(kubernetes=False, namespace=NAMESPACE)
    return RunMirror(settings, sessions, fake_gateway(apiserver), orphan_grace=timedelta(0))


def test_a_deleted_result_takes_its_jobrun_along_and_never_comes_back(
    kube_client: TestClient, sessions: sessionmaker[Session], apiserver: RunsApiserver
) -> None:
    headers = token(sessions, "root")
    run = apiserver.add_run("hello-x1")
    mirror = _mirror(sessions, apiserver)
    assert mirror.sync_once() == 1
    result_id = run["metadata"]["uid"]
    assert kube_client.get(f"/api/extras/job-results/{result_id}/", headers=headers).status_code == 200

    assert kube_client.delete(f"/api/extras/job-results/{result_id}/", headers=headers).status_code == 204
    # The JobRun is deleted (its Job, pod and Secrets follow through their owner references)...
    assert ("jobruns", "hello-x1") not in apiserver.objects
    # ...and a watch event queued before it went, its DELETED event or a relist record nothing again.
    assert mirror.apply(run) is False
    assert mirror.apply(run, deleted=True) is False
    assert mirror.sync_once() == 0
    assert kube_client.get(f"/api/extras/job-results/{result_id}/", headers=headers).status_code == 404
    with sessions() as session:
        tombstone = session.get_one(JobResultTombstone, uuid.UUID(result_id))
        assert (tombstone.run_namespace, tombstone.run_name, tombstone.deleted_by) == (
            NAMESPACE,
            "hello-x1",
            "root",
        )
    assert kube_client.delete(f"/api/extras/job-results/{result_id}/", headers=headers).status_code == 404


def test_only_the_run_a_result_mirrors_is_deleted_never_a_later_one_of_the_same_name(
    kube_client: TestClient, sessions: sessionmaker[Session], apiserver: RunsApiserver
) -> None:
    headers = token(sessions, "root")
    first = apiserver.add_run("nightly")
    mirror = _mirror(sessions, apiserver)
    mirror.sync_once()
    # The first run was deleted with kubectl and a new one took its name.
    apiserver.objects.pop(("jobruns", "nightly"))
    second = apiserver.add_run("nightly", phase="Running")
    mirror.sync_once()
    deleted = kube_client.delete(f"/api/extras/job-results/{first['metadata']['uid']}/", headers=headers)
    assert deleted.status_code == 204
    assert apiserver.objects[("jobruns", "nightly")]["metadata"]["uid"] == second["metadata"]["uid"]
    listed = kube_client.get("/api/extras/job-results/", headers=headers).json()["results"]
    assert [r["id"] for r in listed] == [second["metadata"]["uid"]]


def test_a_collected_runs_result_stays_finished_and_can_still_be_deleted(
    kube_client: TestClient, sessions: sessionmaker[Session], apiserver: RunsApiserver
) -> None:
    headers = token(sessions, "root")
    run = apiserver.add_run("collected", phase="Succeeded")
    mirror = _mirror(sessions, apiserver)
    mirror.sync_once()
    result_id = run["metadata"]["uid"]
    # The operator deletes the finished JobRun once its TTL is over: the mirror sees it go, then a relist.
    apiserver.objects.pop(("jobruns", "collected"))
    assert mirror.apply(run, deleted=True) is False
    assert mirror.sync_once() == 0
    kept = kube_client.get(f"/api/extras/job-results/{result_id}/", headers=headers)
    assert kept.status_code == 200
    assert (kept.json()["status"]["value"], kept.json()["reason"]) == ("SUCCESS", None)
    assert kube_client.delete(f"/api/extras/job-results/{result_id}/", headers=headers).status_code == 204
    assert kube_client.get(f"/api/extras/job-results/{result_id}/", headers=headers).status_code == 404


def test_a_result_removed_by_retention_is_never_recorded_again_from_its_jobrun(
    kube_client: TestClient, sessions: sessionmaker[Session], apiserver: RunsApiserver
) -> None:
    headers = token(sessions, "root")
    run = apiserver.add_run("kept-forever", phase="Succeeded")  # a queue that keeps its finished runs
    mirror = _mirror(sessions, apiserver)
    mirror.sync_once()
    result_id = uuid.UUID(run["metadata"]["uid"])
    with sessions.begin() as session:
        session.get_one(JobResult, result_id).date_created = utcnow() - timedelta(days=400)

    report = apply_retention(sessions, RetentionPolicy(max_age=timedelta(days=90)), now=utcnow())

    assert report.results == 1
    assert mirror.apply(run) is False
    assert mirror.sync_once() == 0
    assert kube_client.get(f"/api/extras/job-results/{result_id}/", headers=headers).status_code == 404
    assert ("jobruns", "kept-forever") in apiserver.objects  # retention never touches the cluster


def test_a_result_whose_jobrun_cannot_be_deleted_stays(
    kube_client: TestClient, sessions: sessionmaker[Session], apiserver: RunsApiserver
) -> None:
    headers = token(sessions, "root")
    run = apiserver.add_run("hello-x2", phase="Failed")
    _mirror(sessions, apiserver).sync_once()
    apiserver.refuse_deletes = True
    result_id = run["metadata"]["uid"]
    refused = kube_client.delete(f"/api/extras/job-results/{result_id}/", headers=headers)
    assert refused.status_code == 503
    assert "could not be deleted" in refused.json()["detail"]
    assert kube_client.get(f"/api/extras/job-results/{result_id}/", headers=headers).status_code == 200
    with sessions() as session:
        assert session.get(JobResultTombstone, uuid.UUID(result_id)) is None


def test_a_running_result_and_its_jobrun_are_left_alone(
    kube_client: TestClient, sessions: sessionmaker[Session], apiserver: RunsApiserver
) -> None:
    headers = token(sessions, "root")
    run = apiserver.add_run("slow", phase="Running")
    _mirror(sessions, apiserver).sync_once()
    refused = kube_client.delete(f"/api/extras/job-results/{run['metadata']['uid']}/", headers=headers)
    assert refused.status_code == 409
    assert ("jobruns", "slow") in apiserver.objects


def test_a_constrained_delete_permission_deletes_only_matching_results(
    client: TestClient, sessions: sessionmaker[Session], results: list[JobResult]
) -> None:
    with sessions.begin() as session:
        session.get_one(JobResult, results[0].id).name = "Backup"
    headers = token(
        sessions,
        "netops",
        object_types=["extras.jobresult"],
        actions=["view", "delete"],
        constraints={"name": "Backup"},
    )
    root = token(sessions, "root")
    # Outside the constraint the result is not this user's to see: 404, and it stays.
    assert client.delete(f"/api/extras/job-results/{results[1].id}/", headers=headers).status_code == 404
    assert client.get(f"/api/extras/job-results/{results[1].id}/", headers=root).status_code == 200
    assert client.delete(f"/api/extras/job-results/{results[0].id}/", headers=headers).status_code == 204
    assert client.get(f"/api/extras/job-results/{results[0].id}/", headers=root).status_code == 404


def test_a_constrained_delete_permission_with_a_wider_view_refuses_the_others(
    client: TestClient, sessions: sessionmaker[Session], results: list[JobResult]
) -> None:
    headers = token(sessions, "ada", object_types=["extras.jobresult"], actions=["view"])
    with sessions.begin() as session:
        service.create_permission(
            session=session,
            name="p-ada-delete",
            users=["ada"],
            object_types=["extras.jobresult"],
            actions=["delete"],
            constraints={"user": "$user"},
        )
    bobs, adas = results[0], results[1]
    assert (bobs.user, adas.user) == ("bob", "ada")
    assert client.delete(f"/api/extras/job-results/{bobs.id}/", headers=headers).status_code == 404
    assert client.get(f"/api/extras/job-results/{bobs.id}/", headers=headers).status_code == 200
    assert client.delete(f"/api/extras/job-results/{adas.id}/", headers=headers).status_code == 204
