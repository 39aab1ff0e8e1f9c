"""Scheduled jobs through the real app and its Postgres: the run endpoint's schedule (JSON and multipart)
becomes a JobSchedule, listed, read, paused and resumed, deleted, within the caller's permissions.

Kubernetes is the gateway on an in-memory apiserver (tests/unit/api/test_git_repositories.py); the operator
firing the schedules is tests/e2e/test_api_schedules.py.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jobplane import Job, StringVar
from jobplane_api.app import create_app
from jobplane_api.identity import service
from jobplane_api.kube import GROUP, JOB_DEFINITIONS, VERSION, KubeGateway
from jobplane_api.settings import ApiSettings
from jobplane_store.models import JobResult, JobStatus, utcnow
from tests.builders import job_definition
from tests.integration.api.test_results_endpoints import token
from tests.unit.api.test_git_repositories import NAMESPACE, FakeCustomObjects, fake_gateway

pytestmark = pytest.mark.postgres

BACKUP_UID = "1c1f0d4e-2b3a-4c5d-8e9f-0a1b2c3d4e51"
LOGIN_UID = "2c1f0d4e-2b3a-4c5d-8e9f-0a1b2c3d4e52"
SCHEDULES = "jobschedules"


class Backup(Job):
    host = StringVar()

    class Meta:
        has_sensitive_variables = False


class Login(Job):
    password = StringVar()


class SchedulesApiserver(FakeCustomObjects):
    """The in-memory apiserver, naming objects from generateName and deleting with a uid precondition."""

    def __init__(self) -> None:
        super().__init__(served=("jobdefinitions", "jobqueues", "jobrepositories", "jobruns", SCHEDULES))
        self.secrets: list[Any] = []
        self.counter = 0

    def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        body = copy.deepcopy(body)
        prefix = body["metadata"].pop("generateName", None)
        if prefix is not None:
            self.counter += 1
            body["metadata"]["name"] = f"{prefix}{self.counter:05d}"
        return super().create_namespaced_custom_object(group, version, namespace, plural, body)

    def create_namespaced_secret(self, namespace: str, body: Any) -> None:
        self.secrets.append(body)

    def schedules(self) -> list[dict[str, Any]]:
        return [obj for (plural, _name), obj in sorted(self.objects.items()) if plural == SCHEDULES]


def _definition(fake: SchedulesApiserver, job: type[Job], uid: str, grouping: str) -> None:
    name = job.__name__
    body = job_definition(name.lower(), enabled=True, overrides={})
    fake.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, JOB_DEFINITIONS, body)
    stored = fake.objects[(JOB_DEFINITIONS, name.lower())]
    stored["metadata"]["uid"] = uid
    sensitive = job is Login
    stored["status"] = {
        "classPath": f"{grouping.lower()}.{name}",
        "installed": True,
        "code": {"name": name, "grouping": grouping, "hasSensitiveVariables": sensitive},
        "variablesSchema": job.json_schema(),
    }


@pytest.fixture
def fake() -> SchedulesApiserver:
    return SchedulesApiserver()


@pytest.fixture
def gateway(fake: SchedulesApiserver) -> KubeGateway:
    _definition(fake, Backup, BACKUP_UID, "Network")
    _definition(fake, Login, LOGIN_UID, "Tools")
    gateway = fake_gateway(fake, cache_definitions=True)
    gateway._core = fake
    return gateway


@pytest.fixture
def client(engine: Engine, gateway: KubeGateway) -> Iterator[TestClient]:
    settings = ApiSettings(kubernetes=False, namespace=NAMESPACE)
    with TestClient(create_app(settings, engine=engine, kube=gateway, mirror=False)) as client:
        yield client


def ahead(minutes: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).replace(microsecond=0).isoformat()


def multipart(fields: dict[str, str]) -> list[tuple[str, tuple[None, str]]]:
    """Plain form fields sent as multipart/form-data, as curl -F sends them."""
    return [(name, (None, value)) for name, value in fields.items()]


def schedule_backup(client: TestClient, headers: dict[str, str], name: str = "Nightly backup") -> Any:
    return client.post(
        "/api/extras/jobs/Backup/run/",
        json={"data": {"host": "r1"}, "schedule": {"name": name, "interval": "daily", "start_time": ahead()}},
        headers=headers,
    )


def test_a_schedule_in_json_creates_a_jobschedule_listed_read_paused_resumed_and_deleted(
    client: TestClient, sessions: sessionmaker[Session], fake: SchedulesApiserver
) -> None:
    root = token(sessions, "root")
    answer = schedule_backup(client, root)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["job_result"] is None
    scheduled = body["scheduled_job"]
    (made,) = fake.schedules()
    assert scheduled["id"] == made["metadata"]["uid"]
    assert made["metadata"]["name"].startswith("nightly-backup-")
    assert made["spec"]["job"] == "backup"
    assert made["spec"]["data"] == {"host": "r1"}
    assert made["spec"]["requestedBy"] == "root"
    assert made["spec"]["schedule"]["interval"] == "Daily"
    assert (scheduled["name"], scheduled["interval"], scheduled["enabled"]) == (
        "Nightly backup",
        "daily",
        True,
    )
    assert scheduled["job_model"]["id"] == BACKUP_UID
    assert scheduled["user"]["object_type"] == "users.user"
    assert scheduled["kwargs"] == {"host": "r1"}
    url = f"/api/extras/scheduled-jobs/{scheduled['id']}/"
    assert scheduled["url"].endswith(url)

    listed = client.get("/api/extras/scheduled-jobs/", headers=root).json()
    assert (listed["count"], listed["results"][0]["id"]) == (1, scheduled["id"])
    for params in ({"job_model": "Backup"}, {"job_model": BACKUP_UID}, {"name": "Nightly backup"}):
        assert client.get("/api/extras/scheduled-jobs/", params=params, headers=root).json()["count"] == 1
    for params in ({"job_model": "Login"}, {"name": "Other"}, {"enabled": "false"}):
        assert client.get("/api/extras/scheduled-jobs/", params=params, headers=root).json()["count"] == 0
    assert client.get(url, headers=root).json() == scheduled

    paused = client.patch(url, json={"enabled": False}, headers=root)
    assert paused.status_code == 200, paused.text
    assert paused.json()["enabled"] is False
    assert fake.objects[(SCHEDULES, made["metadata"]["name"])]["spec"]["suspend"] is True
    resumed = client.patch(url, json={"enabled": True, "name": "ignored"}, headers=root)
    assert resumed.json()["enabled"] is True
    assert resumed.json()["name"] == "Nightly backup"
    assert client.patch(url, json={"enabled": None}, headers=root).json() == {
        "enabled": ["This field may not be null."]
    }

    # The same name again is Nautobot's uniqueness refusal.
    again = schedule_backup(client, root)
    assert again.status_code == 400
    assert again.json() == {"schedule": {"name": ["Scheduled job with this Name already exists."]}}

    assert client.delete(url, headers=root).status_code == 204
    assert fake.schedules() == []
    assert client.get(url, headers=root).status_code == 404
    assert client.delete(url, headers=root).status_code == 404


def test_a_schedule_in_a_multipart_form_and_its_refusals(
    client: TestClient, sessions: sessionmaker[Session], fake: SchedulesApiserver
) -> None:
    root = token(sessions, "root")
    form = {
        "host": "r2",
        "_schedule_name": '"Every quarter hour"',
        "_schedule_interval": "custom",
        "_schedule_crontab": "*/15 * * * *",
    }
    answer = client.post("/api/extras/jobs/Backup/run/", files=multipart(form), headers=root)
    assert answer.status_code == 201, answer.text
    scheduled = answer.json()["scheduled_job"]
    assert (scheduled["name"], scheduled["interval"], scheduled["crontab"]) == (
        "Every quarter hour",
        "custom",
        "*/15 * * * *",
    )
    # Without a start time, it starts at the crontab's next match, as Nautobot's does.
    assert scheduled["start_time"] is not None
    (made,) = fake.schedules()
    assert made["spec"]["schedule"]["crontab"] == "*/15 * * * *"
    assert made["spec"]["data"] == {"host": "r2"}

    refused = client.post(
        "/api/extras/jobs/Backup/run/",
        files=multipart({"host": "r2", "_schedule_name": "n", "_schedule_interval": "custom"}),
        headers=root,
    )
    assert refused.json() == {"_schedule_crontab": ["Please enter a valid crontab."]}
    past = client.post(
        "/api/extras/jobs/Backup/run/",
        json={
            "data": {"host": "r"},
            "schedule": {"name": "p", "interval": "future", "start_time": ahead(-1)},
        },
        headers=root,
    )
    assert past.status_code == 400
    assert list(past.json()["schedule"]) == ["start_time"]
    assert len(fake.schedules()) == 1


def test_a_sensitive_jobs_inputs_go_to_a_secret_owned_by_its_schedule_and_nowhere_else(
    client: TestClient, sessions: sessionmaker[Session], fake: SchedulesApiserver
) -> None:
    root = token(sessions, "root")
    answer = client.post(
        "/api/extras/jobs/Login/run/",
        json={
            "data": {"password": "hunter2"},
            "schedule": {"name": "l", "interval": "future", "start_time": ahead()},
        },
        headers=root,
    )
    assert answer.status_code == 201, answer.text
    assert "hunter2" not in answer.text
    (made,) = fake.schedules()
    assert "hunter2" not in json.dumps(made)
    (secret,) = fake.secrets
    assert made["spec"]["inputsSecretRef"] == secret.metadata.name
    assert secret.type == "jobplane.io/schedule-inputs"
    (owner,) = secret.metadata.owner_references
    assert (owner.kind, owner.uid, owner.controller) == ("JobSchedule", made["metadata"]["uid"], True)
    assert json.loads(secret.string_data["data.json"]) == {"password": "hunter2"}
    record = client.get(f"/api/extras/scheduled-jobs/{made['metadata']['uid']}/", headers=root).json()
    assert record["kwargs"] == {}


def test_scheduled_jobs_are_scoped_by_the_permissions_on_them_and_on_their_jobs(
    client: TestClient, sessions: sessionmaker[Session], fake: SchedulesApiserver
) -> None:
    root = token(sessions, "root")
    backup_id = schedule_backup(client, root).json()["scheduled_job"]["id"]
    login = client.post(
        "/api/extras/jobs/Login/run/",
        json={
            "data": {"password": "x"},
            "schedule": {"name": "l", "interval": "hourly", "start_time": ahead()},
        },
        headers=root,
    ).json()["scheduled_job"]["id"]

    netops = token(sessions, "netops", object_types=["extras.scheduledjob"], actions=["view", "change"])
    with sessions.begin() as session:
        service.create_permission(
            session=session,
            name="p-netops-jobs",
            users=["netops"],
            object_types=["extras.job"],
            actions=["view"],
            constraints={"grouping": "Network"},
        )
    listed = client.get("/api/extras/scheduled-jobs/", headers=netops).json()
    assert [item["id"] for item in listed["results"]] == [backup_id]
    assert client.get(f"/api/extras/scheduled-jobs/{login}/", headers=netops).status_code == 404
    # Pausing needs change; resuming also the run permission on the job, which netops lacks.
    url = f"/api/extras/scheduled-jobs/{backup_id}/"
    assert client.patch(url, json={"enabled": False}, headers=netops).status_code == 200
    assert client.patch(url, json={"enabled": True}, headers=netops).status_code == 403
    assert client.delete(url, headers=netops).status_code == 403
    # Without the view permission on scheduled jobs: refused, as Nautobot refuses.
    viewer = token(sessions, "viewer", object_types=["extras.job"], actions=["view"])
    assert client.get("/api/extras/scheduled-jobs/", headers=viewer).status_code == 403
    assert client.get("/api/extras/scheduled-jobs/").status_code == 403  # anonymous
    # Constrained to one's own schedules ({"user": "$user"}): root's are not ada's.
    ada = token(sessions, "ada", object_types=["extras.job"], actions=["view", "run"])
    with sessions.begin() as session:
        service.create_permission(
            session=session,
            name="p-ada-own-schedules",
            users=["ada"],
            object_types=["extras.scheduledjob"],
            actions=["view"],
            constraints={"user": "$user"},
        )
    assert client.get("/api/extras/scheduled-jobs/", headers=ada).json()["count"] == 0
    hers = schedule_backup(client, ada, name="Ada's backup")
    assert hers.status_code == 201, hers.text
    assert sorted(item["spec"]["requestedBy"] for item in fake.schedules()) == ["ada", "root", "root"]
    listed = client.get("/api/extras/scheduled-jobs/", headers=ada).json()
    assert [item["name"] for item in listed["results"]] == ["Ada's backup"]


def test_a_scheduled_runs_result_links_its_schedule_and_counts_in_its_runs(
    client: TestClient, sessions: sessionmaker[Session], fake: SchedulesApiserver
) -> None:
    root = token(sessions, "root")
    scheduled = schedule_backup(client, root).json()["scheduled_job"]
    result_id = uuid.uuid4()
    with sessions.begin() as session:
        session.add(
            JobResult(
                id=result_id,
                name="Backup",
                job_class_path="network.Backup",
                user="root",
                status=JobStatus.SUCCESS,
                date_created=utcnow(),
                scheduled_job_id=uuid.UUID(scheduled["id"]),
            )
        )
    result = client.get(f"/api/extras/job-results/{result_id}/", headers=root).json()
    assert result["scheduled_job"]["id"] == scheduled["id"]
    assert result["scheduled_job"]["url"].endswith(f"/api/extras/scheduled-jobs/{scheduled['id']}/")
    record = client.get(f"/api/extras/scheduled-jobs/{scheduled['id']}/", headers=root).json()
    assert record["total_run_count"] == 1


def test_depth_renders_a_scheduled_jobs_job_and_user_in_full(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    root = token(sessions, "root")
    scheduled = schedule_backup(client, root).json()["scheduled_job"]
    url = f"/api/extras/scheduled-jobs/{scheduled['id']}/"
    deep = client.get(url, params={"depth": 1}, headers=root).json()
    assert (deep["job_model"]["name"], deep["job_model"]["grouping"]) == ("Backup", "Network")
    assert "job_queues" not in deep["job_model"]  # many-to-many: left out of a nested object
    assert deep["user"]["username"] == "root"
    assert "groups" not in deep["user"]
    listed = client.get("/api/extras/scheduled-jobs/", params={"depth": 1}, headers=root).json()
    assert listed["results"][0]["job_model"]["name"] == "Backup"
    assert client.get(url, params={"depth": "one"}, headers=root).status_code == 400
    # Someone who may view scheduled jobs only sees references, as following their urls would show them.
    reader = token(sessions, "reader", object_types=["extras.scheduledjob", "extras.job"], actions=["view"])
    limited = client.get(url, params={"depth": 1}, headers=reader).json()
    assert limited["job_model"]["name"] == "Backup"
    assert set(limited["user"]) == {"id", "object_type", "url"}
