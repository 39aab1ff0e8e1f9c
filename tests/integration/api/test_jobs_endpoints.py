"""The jobs endpoints against the real app and its Postgres: run refusals, deletes, constrained writes.

Kubernetes is the gateway on an in-memory apiserver (tests/unit/api/test_git_repositories.py); the real
cluster path is covered by tests/e2e/test_api.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from jobplane_api.app import create_app
from jobplane_api.identity import service
from jobplane_api.kube import GROUP, JOB_DEFINITIONS, JOB_QUEUES, VERSION, KubeGateway
from jobplane_api.settings import ApiSettings
from jobplane_store.models import FileProxy, JobResult, JobStatus, utcnow
from tests.builders import job_queue
from tests.integration.api.test_results_endpoints import token
from tests.unit.api.test_git_repositories import NAMESPACE, FakeCustomObjects, fake_gateway
from tests.unit.api.test_services_jobs import definition

pytestmark = pytest.mark.postgres

NETWORK_UID = "1c1f0d4e-2b3a-4c5d-8e9f-0a1b2c3d4e51"
TOOLS_UID = "2c1f0d4e-2b3a-4c5d-8e9f-0a1b2c3d4e52"
GONE_UID = "3c1f0d4e-2b3a-4c5d-8e9f-0a1b2c3d4e53"


@pytest.fixture
def fake() -> FakeCustomObjects:
    return FakeCustomObjects(served=("jobdefinitions", "jobruns", "jobqueues", "jobrepositories"))


def _definition(fake: FakeCustomObjects, name: str, uid: str, grouping: str, **options: Any) -> None:
    """A JobDefinition in the fake apiserver with this uid and grouping (its cache entry follows)."""
    body = definition(f"{grouping.lower()}.{name}", code={"name": name, "grouping": grouping}, **options)
    body["metadata"]["name"] = name.lower()
    fake.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, JOB_DEFINITIONS, body)
    stored = fake.objects[(JOB_DEFINITIONS, name.lower())]
    stored["metadata"]["uid"] = uid
    stored["status"] = body["status"]


@pytest.fixture
def gateway(fake: FakeCustomObjects) -> KubeGateway:
    _definition(fake, "Backup", NETWORK_UID, "Network", enabled=True)
    _definition(fake, "Cleanup", TOOLS_UID, "Tools", enabled=True)
    _definition(fake, "Vanished", GONE_UID, "Tools", enabled=True, installed=False)
    return fake_gateway(fake, cache_definitions=True)


@pytest.fixture
def client(engine: Engine, gateway: KubeGateway) -> Iterator[TestClient]:
    settings = ApiSettings(kubernetes=False, namespace=NAMESPACE)
    with TestClient(create_app(settings, engine=engine, kube=gateway, mirror=False)) as client:
        yield client


def test_running_a_job_that_is_not_installed_is_405_and_starts_nothing(
    client: TestClient, sessions: sessionmaker[Session], fake: FakeCustomObjects
) -> None:
    root = token(sessions, "root")
    refused = client.post(f"/api/extras/jobs/{GONE_UID}/run/", json={"data": {}}, headers=root)
    assert refused.status_code == 405
    assert "not installed" in refused.json()["detail"]
    # By name too, and the answer comes before the body is looked at.
    by_name = client.post("/api/extras/jobs/Vanished/run/", json={"data": {"x": 1}}, headers=root)
    assert by_name.status_code == 405
    assert [call for call in fake.calls if call[0] == "create"] == []
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(JobResult)) == 0


def test_deleting_a_job_deletes_its_definition(
    client: TestClient, sessions: sessionmaker[Session], fake: FakeCustomObjects
) -> None:
    root = token(sessions, "root")
    assert client.delete(f"/api/extras/jobs/{TOOLS_UID}/", headers=root).status_code == 204
    assert (JOB_DEFINITIONS, "cleanup") not in fake.objects
    assert client.get(f"/api/extras/jobs/{TOOLS_UID}/", headers=root).status_code == 404
    assert client.delete(f"/api/extras/jobs/{TOOLS_UID}/", headers=root).status_code == 404
    # By name, as Nautobot's API also finds a job.
    assert client.delete("/api/extras/jobs/Backup/", headers=root).status_code == 204
    assert client.get("/api/extras/jobs/", headers=root).json()["count"] == 1


def test_deleting_a_job_needs_the_delete_permission(
    client: TestClient, sessions: sessionmaker[Session], fake: FakeCustomObjects
) -> None:
    viewer = token(sessions, "viewer", object_types=["extras.job"], actions=["view"])
    refused = client.delete(f"/api/extras/jobs/{TOOLS_UID}/", headers=viewer)
    assert refused.status_code == 403
    assert (JOB_DEFINITIONS, "cleanup") in fake.objects
    assert client.delete(f"/api/extras/jobs/{TOOLS_UID}/").status_code == 403  # anonymous


def test_a_constrained_change_permission_changes_only_matching_jobs(
    client: TestClient, sessions: sessionmaker[Session], fake: FakeCustomObjects
) -> None:
    headers = token(
        sessions,
        "netops",
        object_types=["extras.job"],
        actions=["view", "change"],
        constraints={"grouping": "Network"},
    )
    changed = client.patch(f"/api/extras/jobs/{NETWORK_UID}/", json={"enabled": False}, headers=headers)
    assert changed.status_code == 200
    assert changed.json()["enabled"] is False
    assert fake.objects[(JOB_DEFINITIONS, "backup")]["spec"]["enabled"] is False
    # A job outside the constraint is not even visible to this user: 404, and its spec is untouched.
    other = client.patch(f"/api/extras/jobs/{TOOLS_UID}/", json={"enabled": False}, headers=headers)
    assert other.status_code == 404
    assert fake.objects[(JOB_DEFINITIONS, "cleanup")]["spec"]["enabled"] is True
    listed = client.get("/api/extras/jobs/", headers=headers).json()
    assert [job["name"] for job in listed["results"]] == ["Backup"]


def test_a_constrained_permission_that_can_view_all_changes_and_deletes_only_matching_jobs(
    client: TestClient, sessions: sessionmaker[Session], fake: FakeCustomObjects
) -> None:
    headers = token(sessions, "netops", object_types=["extras.job"], actions=["view"])
    with sessions.begin() as session:
        service.create_permission(
            session=session,
            name="p-netops-write",
            users=["netops"],
            object_types=["extras.job"],
            actions=["change", "delete"],
            constraints={"grouping": "Network"},
        )
    # Seen but not matching: 403 with a reason, nothing written.
    refused = client.patch(f"/api/extras/jobs/{TOOLS_UID}/", json={"enabled": False}, headers=headers)
    assert refused.status_code == 403
    assert fake.objects[(JOB_DEFINITIONS, "cleanup")]["spec"]["enabled"] is True
    assert client.delete(f"/api/extras/jobs/{TOOLS_UID}/", headers=headers).status_code == 403
    assert (JOB_DEFINITIONS, "cleanup") in fake.objects
    # Matching: allowed.
    patched = client.patch(
        f"/api/extras/jobs/{NETWORK_UID}/",
        json={"description": "Nightly", "description_override": True},
        headers=headers,
    )
    assert patched.status_code == 200
    assert patched.json()["description"] == "Nightly"
    assert client.delete(f"/api/extras/jobs/{NETWORK_UID}/", headers=headers).status_code == 204
    assert (JOB_DEFINITIONS, "backup") not in fake.objects


def test_a_jobs_queues_are_written_through_nautobots_fields_by_a_user_who_may_view_them(
    client: TestClient, sessions: sessionmaker[Session], fake: FakeCustomObjects, gateway: KubeGateway
) -> None:
    """PATCH/PUT job_queues and default_job_queue as Nautobot 2.4+ takes them, as a non-superuser who may
    change jobs: queues it may not view are refused as unknown, as Nautobot restricts related objects."""
    uids = {}
    for name in ("default", "gpu", "cpu"):
        created = fake.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, JOB_QUEUES, job_queue(name))
        gateway._queues.put(created)
        uids[name] = created["metadata"]["uid"]
    headers = token(sessions, "netops", object_types=["extras.job"], actions=["view", "change"])
    url = f"/api/extras/jobs/{NETWORK_UID}/"

    def overrides() -> Any:
        return fake.objects[(JOB_DEFINITIONS, "backup")]["spec"].get("overrides", {}).get("taskQueues")

    hidden = client.patch(url, json={"job_queues": ["gpu"]}, headers=headers)
    assert hidden.status_code == 400
    assert list(hidden.json()) == ["job_queues"]
    assert overrides() is None
    with sessions.begin() as session:
        service.create_permission(
            session=session,
            name="queues",
            users=["netops"],
            object_types=["extras.jobqueue"],
            actions=["view"],
        )

    changed = client.patch(url, json={"job_queues": [{"name": "cpu"}]}, headers=headers)
    assert changed.status_code == 200, changed.text
    job = changed.json()
    # The code's default (default) stays among the queues, as Nautobot keeps it.
    assert [ref["id"] for ref in job["job_queues"]] == [uids["default"], uids["cpu"]]
    assert job["default_job_queue"]["id"] == uids["default"]
    assert job["default_job_queue"]["url"].endswith(f"/api/extras/job-queues/{uids['default']}/")
    assert (job["job_queues_override"], job["default_job_queue_override"]) == (True, True)
    assert job["task_queues"] == ["default", "cpu"]
    assert overrides() == ["default", "cpu"]

    made_default = client.patch(url, json={"default_job_queue": uids["cpu"]}, headers=headers)
    assert made_default.status_code == 200, made_default.text
    assert overrides() == ["cpu", "default"]

    assert list(client.patch(url, json={"default_job_queue": "tpu"}, headers=headers).json()) == [
        "default_job_queue"
    ]

    # The record sent back as it was read leaves the queues as they are.
    fake.calls.clear()
    record = client.get(url, headers=headers).json()
    assert client.put(url, json=record, headers=headers).status_code == 200
    patches = [call[2] for call in fake.calls if call[0] == "patch"]
    assert all("taskQueues" not in (body or {})["spec"].get("overrides", {}) for body in patches)
    assert overrides() == ["cpu", "default"]

    # A false flag: the code's queues again.
    reset = client.patch(url, json={"job_queues_override": False}, headers=headers)
    assert reset.status_code == 200
    assert overrides() is None
    assert reset.json()["task_queues"] == ["default"]
    assert reset.json()["job_queues_override"] is False


def test_depth_renders_related_objects_in_full_that_the_caller_may_view(
    client: TestClient, sessions: sessionmaker[Session], fake: FakeCustomObjects, gateway: KubeGateway
) -> None:
    """Nautobot's ?depth: 0 gives {id, object_type, url}; 1 the related records (without their
    many-to-many fields); 2 their related records too. Objects the caller may not view stay references."""
    queue = fake.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, JOB_QUEUES, job_queue("default"))
    gateway._queues.put(queue)
    root = token(sessions, "root")
    reader = token(sessions, "reader", object_types=["extras.jobresult"], actions=["view"])
    result_id = uuid.uuid4()
    with sessions.begin() as session:
        session.add(
            JobResult(
                id=result_id,
                name="Backup",
                job_class_path="network.Backup",
                job_model_id=uuid.UUID(NETWORK_UID),
                user="root",
                status=JobStatus.SUCCESS,
                date_created=utcnow(),
            )
        )
        session.flush()
        session.add(FileProxy(name="backup.txt", content=b"ok\n", size=3, job_result_id=result_id))

    job_url = f"/api/extras/jobs/{NETWORK_UID}/"
    shallow = client.get(job_url, headers=root).json()
    assert set(shallow["default_job_queue"]) == {"id", "object_type", "url"}
    job = client.get(job_url, params={"depth": 1}, headers=root).json()
    assert job["default_job_queue"]["name"] == "default"
    assert job["default_job_queue"]["display"] == "default"
    assert job["default_job_queue"]["url"] == shallow["default_job_queue"]["url"]
    assert [q["name"] for q in job["job_queues"]] == ["default"]
    listed = client.get("/api/extras/jobs/", params={"depth": "1", "name": "Backup"}, headers=root).json()
    assert listed["count"] == 1
    assert listed["results"][0]["job_queues"][0]["object_type"] == "extras.jobqueue"

    result_url = f"/api/extras/job-results/{result_id}/"
    result = client.get(result_url, params={"depth": 1}, headers=root).json()
    assert result["job_model"]["name"] == "Backup"
    assert result["job_model"]["display"] == "Backup"
    assert "job_queues" not in result["job_model"]  # many-to-many: left out of a nested object
    assert set(result["job_model"]["default_job_queue"]) == {"id", "object_type", "url"}
    assert result["user"]["username"] == "root"
    assert result["user"]["is_superuser"] is True
    assert "groups" not in result["user"]
    assert result["files"][0]["name"] == "backup.txt"
    assert result["files"][0]["size"] == 3
    assert result["scheduled_job"] is None
    deeper = client.get(result_url, params={"depth": 2}, headers=root).json()
    assert deeper["job_model"]["default_job_queue"]["name"] == "default"
    page = client.get("/api/extras/job-results/", params={"depth": 1}, headers=root).json()
    assert page["results"][0]["job_model"]["name"] == "Backup"
    # Someone who may view results only sees references, as following their urls would show them.
    limited = client.get(result_url, params={"depth": 1}, headers=reader).json()
    assert set(limited["job_model"]) == {"id", "object_type", "url"}
    assert set(limited["user"]) == {"id", "object_type", "url"}
    assert set(limited["files"][0]) == {"id", "object_type", "url"}

    # Bad depths are refused naming the parameter; every endpoint that takes depth checks it.
    for path in (
        job_url,
        result_url,
        "/api/extras/jobs/",
        "/api/users/tokens/",
        "/api/extras/git-repositories/",
    ):
        for bad in ("one", "-1", "11"):
            refused = client.get(path, params={"depth": bad}, headers=root)
            assert refused.status_code == 400, (path, bad, refused.text)
            assert list(refused.json()) == ["depth"]
    assert client.get("/api/users/tokens/", params={"depth": 1}, headers=root).status_code == 200
    # A write answers at depth 0, as Nautobot's do.
    written = client.patch(job_url, params={"depth": 1}, json={"enabled": True}, headers=root).json()
    assert set(written["default_job_queue"]) == {"id", "object_type", "url"}
