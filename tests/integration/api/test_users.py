"""``/api/users/users/`` against a real Postgres: what a result's nested user url leads to."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jobplane_api.app import create_app
from jobplane_api.identity import service
from jobplane_api.settings import ApiSettings
from jobplane_store.models import JobResult, JobStatus, utcnow

pytestmark = pytest.mark.postgres


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    app = create_app(ApiSettings(kubernetes=False), engine=engine, mirror=False)
    with TestClient(app) as client:
        yield client


def key_of(sessions: sessionmaker[Session], username: str, *, superuser: bool = False) -> dict[str, str]:
    with sessions.begin() as session:
        service.create_user(session=session, username=username, is_superuser=superuser)
        _, key = service.create_user_token(session=session, username=username)
    return {"Authorization": f"Token {key}"}


def test_a_results_user_url_leads_to_the_user(client: TestClient, sessions: sessionmaker[Session]) -> None:
    root = key_of(sessions, "root", superuser=True)
    result_id = uuid.uuid4()
    with sessions.begin() as session:
        ada = service.create_user(session=session, username="ada")
        service.create_group(session=session, name="ops")
        service.add_user_to_group(session=session, username="ada", group_name="ops")
        ada_id = ada.id
        session.add(
            JobResult(
                id=result_id,
                name="Hello",
                job_class_path="hello_world.HelloWorld",
                user="ada",
                status=JobStatus.SUCCESS,
                date_created=utcnow(),
            )
        )
    base = str(client.base_url)
    nested = client.get(f"/api/extras/job-results/{result_id}/", headers=root).json()["user"]
    assert nested == {"id": ada_id, "object_type": "users.user", "url": f"{base}/api/users/users/{ada_id}/"}
    user = client.get(nested["url"], headers=root).json()
    (group,) = user.pop("groups")
    assert group["object_type"] == "auth.group"
    assert group["url"] == f"{base}/api/users/groups/{group['id']}/"
    user.pop("date_joined")
    assert user == {
        "id": ada_id,
        "object_type": "users.user",
        "display": "ada",
        "url": nested["url"],
        "username": "ada",
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": True,
        "is_staff": False,
        "is_superuser": False,
        "last_login": None,
        "config_data": {},
    }
    listed = client.get("/api/users/users/", params={"username": "ada"}, headers=root).json()
    assert [u["id"] for u in listed["results"]] == [ada_id]
    assert client.get("/api/users/users/999999/", headers=root).status_code == 404
    assert client.get("/api/users/users/", params={"id": "x"}, headers=root).status_code == 400


def test_seeing_users_needs_the_view_permission(client: TestClient, sessions: sessionmaker[Session]) -> None:
    bob = key_of(sessions, "bob")
    with sessions() as session:
        bob_id = service.get_user(session=session, username="bob").id
    assert client.get("/api/users/users/", headers=bob).status_code == 403
    assert client.get(f"/api/users/users/{bob_id}/", headers=bob).status_code == 403
    with sessions.begin() as session:
        service.create_permission(
            session=session, name="see users", users=["bob"], object_types=["users.user"], actions=["view"]
        )
    assert client.get(f"/api/users/users/{bob_id}/", headers=bob).json()["username"] == "bob"
