"""``/api/users/tokens/`` and ``provision/`` against the real app and its Postgres: Nautobot's behaviours,
keys shown once and stored hashed, basic authentication with a password, and ``jobplane users set-password``.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from jobplane_api.app import create_app
from jobplane_api.identity import service
from jobplane_api.settings import ApiSettings
from jobplane_store.identity import Token, User
from tests.integration.api.test_identity_cli import Cli

pytestmark = pytest.mark.postgres

PATH = "/api/users/tokens/"
PROVISION = f"{PATH}provision/"
PASSWORD = "correct horse battery"


def _client(engine: Engine, **settings: Any) -> Iterator[TestClient]:
    app = create_app(ApiSettings(kubernetes=False, **settings), engine=engine, mirror=False)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    yield from _client(engine, default_page_size=2)


def user(
    sessions: sessionmaker[Session],
    username: str,
    *,
    superuser: bool = False,
    password: str | None = PASSWORD,
    tokens: int = 1,
    write: bool = True,
) -> dict[str, str]:
    """A user with a password and ``tokens`` tokens; the header of the last one."""
    keys = []
    with sessions.begin() as session:
        service.create_user(session=session, username=username, is_superuser=superuser, password=password)
        for number in range(tokens):
            _, key = service.create_user_token(
                session=session, username=username, write_enabled=write, description=f"{username} {number}"
            )
            keys.append(key)
    return {"Authorization": f"Token {keys[-1]}"} if keys else {}


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def owners(client: TestClient, headers: dict[str, str]) -> list[str]:
    listed = client.get(PATH, params={"limit": 0}, headers=headers)
    assert listed.status_code == 200, listed.text
    return sorted(token["user"]["username"] for token in listed.json()["results"])


def test_users_list_their_own_tokens_and_superusers_everyones(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    ada = user(sessions, "ada", tokens=3)
    bob = user(sessions, "bob", tokens=1)
    root = user(sessions, "root", superuser=True)

    assert owners(client, ada) == ["ada"] * 3
    assert owners(client, bob) == ["bob"]
    assert owners(client, root) == ["ada", "ada", "ada", "bob", "root"]

    # Nautobot's limit/offset page, default size from the settings (2 here), oldest first.
    first = client.get(PATH, headers=ada).json()
    assert first["count"] == 3
    assert first["previous"] is None
    assert first["next"].endswith(f"{PATH}?limit=2&offset=2")
    assert [t["description"] for t in first["results"]] == ["ada 0", "ada 1"]
    token = first["results"][0]
    assert set(token) == {
        "id",
        "object_type",
        "display",
        "url",
        "user",
        "created",
        "expires",
        "last_used",
        "key",
        "key_prefix",
        "write_enabled",
        "description",
    }
    assert token["object_type"] == "users.token"
    assert token["url"] == f"http://testserver{PATH}{token['id']}/"
    assert token["key"] is None  # stored hashed: never shown after creation
    assert token["display"] == f"{token['key_prefix']}... (ada)"
    assert token["user"]["username"] == "ada"

    # Someone else's token is not found, as in Nautobot; a superuser reaches it.
    bobs = client.get(PATH, headers=bob).json()["results"][0]
    assert client.get(f"{PATH}{bobs['id']}/", headers=ada).status_code == 404
    assert client.patch(f"{PATH}{bobs['id']}/", json={"description": "x"}, headers=ada).status_code == 404
    assert client.delete(f"{PATH}{bobs['id']}/", headers=ada).status_code == 404
    assert client.get(f"{PATH}{bobs['id']}/", headers=root).json()["description"] == "bob 0"


def test_no_token_no_tokens_even_with_anonymous_read(engine: Engine, sessions: sessionmaker[Session]) -> None:
    user(sessions, "ada")
    for client in _client(engine, allow_anonymous_read=True):
        answer = client.get(PATH)
        assert answer.status_code == 403
        assert answer.json() == {"detail": "Authentication credentials were not provided."}
        assert client.post(PATH, json={}).status_code == 403


def test_a_created_token_shows_its_key_once_it_authenticates_and_only_its_hash_is_stored(
    client: TestClient, sessions: sessionmaker[Session], engine: Engine
) -> None:
    ada = user(sessions, "ada")
    created = client.post(
        PATH,
        json={"description": "ci", "write_enabled": False, "expires": "2099-01-01T00:00:00", "user": 99},
        headers=ada,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert len(key) == 40
    assert key.startswith(body["key_prefix"])
    assert (body["description"], body["write_enabled"], body["user"]["username"]) == ("ci", False, "ada")
    assert body["expires"].startswith("2099-01-01T00:00:00")  # a time without a zone is UTC

    mine = {"Authorization": f"Token {key}"}
    again = client.get(f"{PATH}{body['id']}/", headers=mine)
    assert again.status_code == 200
    assert again.json()["key"] is None
    assert again.json()["last_used"] is not None

    # The database holds the SHA-256 of the key and its first characters, never the key.
    with engine.connect() as connection:
        row = (
            connection.execute(text("SELECT * FROM users_token WHERE id = :id"), {"id": body["id"]})
            .one()
            ._asdict()
        )
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert row["key_prefix"] == key[:8]
    assert all(key not in str(value) for value in row.values())

    # A key chosen by the client (Nautobot lets it), hashed as well; a duplicate is refused.
    chosen = "0123456789abcdef0123456789abcdef01234567"
    picked = client.post(PATH, json={"key": chosen}, headers=ada)
    assert picked.status_code == 201
    assert picked.json()["key"] == chosen
    assert client.get(PATH, headers={"Authorization": f"Token {chosen}"}).status_code == 200
    duplicate = client.post(PATH, json={"key": chosen}, headers=ada)
    assert (duplicate.status_code, duplicate.json()) == (
        400,
        {"key": ["token with this key already exists."]},
    )
    assert client.post(PATH, json={"key": "short"}, headers=ada).status_code == 400
    past = client.post(PATH, json={"expires": "2001-01-01T00:00:00Z"}, headers=ada)
    assert past.status_code == 400
    assert "expires" in past.json()


def test_change_and_delete(client: TestClient, sessions: sessionmaker[Session]) -> None:
    ada = user(sessions, "ada", tokens=2)
    root = user(sessions, "root", superuser=True)
    first = client.get(PATH, headers=ada).json()["results"][0]
    url = f"{PATH}{first['id']}/"

    changed = client.patch(url, json={"description": "renamed", "write_enabled": False}, headers=ada)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["description"], changed.json()["write_enabled"]) == ("renamed", False)
    put = client.put(url, json={"expires": "2098-05-01T00:00:00Z"}, headers=ada).json()
    assert put["expires"].startswith("2098-05-01")
    assert put["description"] == "renamed"
    refused = client.patch(url, json={"key": "f" * 40}, headers=ada)
    assert refused.status_code == 400
    assert "key" in refused.json()
    assert client.patch(url, json={"description": "by root"}, headers=root).json()["description"] == "by root"

    assert client.delete(url, headers=ada).status_code == 204
    assert client.get(url, headers=ada).status_code == 404
    assert client.delete(url, headers=ada).status_code == 404
    # A user may delete the token they are using; it stops working at once.
    own = client.get(PATH, headers=ada).json()["results"][0]
    assert client.delete(f"{PATH}{own['id']}/", headers=ada).status_code == 204
    gone = client.get(PATH, headers=ada)
    assert (gone.status_code, gone.json()) == (403, {"detail": "Invalid token"})


def test_a_read_only_token_reads_but_changes_nothing(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    reader = user(sessions, "ada", tokens=1, write=False)
    listed = client.get(PATH, headers=reader)
    assert listed.status_code == 200
    token_id = listed.json()["results"][0]["id"]
    for answer in (
        client.post(PATH, json={}, headers=reader),
        client.patch(f"{PATH}{token_id}/", json={"write_enabled": True}, headers=reader),
        client.delete(f"{PATH}{token_id}/", headers=reader),
    ):
        assert answer.status_code == 403
        assert "read-only" in answer.json()["detail"]
    assert client.get(f"{PATH}{token_id}/", headers=reader).json()["write_enabled"] is False


def test_a_password_gets_a_token_and_a_wrong_one_is_refused_with_403(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    user(sessions, "ada", tokens=0)
    user(sessions, "nopass", tokens=0, password=None)
    with sessions.begin() as session:
        service.create_user(session=session, username="gone", password=PASSWORD).is_active = False

    # Nautobot's way: POST to the list with basic authentication, no body.
    created = client.post(PATH, headers=basic("ada", PASSWORD))
    assert created.status_code == 201, created.text
    assert created.json()["user"]["username"] == "ada"
    assert created.json()["write_enabled"] is True
    assert client.get(PATH, headers={"Authorization": f"Token {created.json()['key']}"}).status_code == 200

    # provision/: basic authentication, or NetBox's body with the token's fields.
    provisioned = client.post(PROVISION, json={"description": "laptop"}, headers=basic("ada", PASSWORD))
    assert provisioned.status_code == 201
    assert provisioned.json()["description"] == "laptop"
    in_body = client.post(PROVISION, json={"username": "ada", "password": PASSWORD, "write_enabled": False})
    assert in_body.status_code == 201
    assert in_body.json()["write_enabled"] is False
    reader = {"Authorization": f"Token {in_body.json()['key']}"}
    assert client.post(PATH, headers=reader).status_code == 403

    invalid = {"detail": "Invalid username/password."}
    for path in (PATH, PROVISION):
        for username, password in (("ada", "wrong"), ("nobody", PASSWORD), ("nopass", ""), ("ADA", PASSWORD)):
            refused = client.post(path, headers=basic(username, password))
            assert (refused.status_code, refused.json()) == (403, invalid), (path, username)
        inactive = client.post(path, headers=basic("gone", PASSWORD))
        assert (inactive.status_code, inactive.json()) == (403, {"detail": "User inactive or deleted."})
        garbled = client.post(path, headers={"Authorization": "Basic ***"})
        assert garbled.status_code == 403
        assert "base64" in garbled.json()["detail"]
    assert client.post(PROVISION, json={"username": "ada", "password": "no"}).json() == invalid
    assert client.post(PROVISION, json={}).status_code == 403

    with sessions() as session:
        ada = session.scalar(select(User).where(User.username == "ada"))
        assert ada is not None
        assert len(session.scalars(select(Token).where(Token.user_id == ada.id)).all()) == 3


def test_jobplane_users_set_password(tmp_path: Path, postgres_url: str, client: TestClient) -> None:
    cli = Cli(tmp_path, postgres_url)

    def run(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jobplane.cli", *args],
            cwd=tmp_path,
            env=cli.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    made = run("users", "create", "ada", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert made.returncode == 0, made.stderr
    assert client.post(PATH, headers=basic("ada", PASSWORD)).status_code == 201

    changed = run("users", "set-password", "ada", stdin="new secret\n")
    assert (changed.returncode, changed.stdout) == (0, "set the password of user ada\n")
    assert client.post(PATH, headers=basic("ada", PASSWORD)).status_code == 403
    assert client.post(PATH, headers=basic("ada", "new secret")).status_code == 201

    empty = run("users", "set-password", "ada", stdin="\n")
    assert (empty.returncode, empty.stderr) == (2, "jobplane: a password cannot be empty\n")
    unknown = run("users", "set-password", "nobody", stdin="x\n")
    assert (unknown.returncode, unknown.stderr) == (2, "jobplane: no user 'nobody'\n")

    assert cli.ok("users", "set-password", "ada", "--remove") == "removed the password of user ada\n"
    assert client.post(PATH, headers=basic("ada", "new secret")).status_code == 403


def test_the_list_filters_as_nautobots_filters(client: TestClient, sessions: sessionmaker[Session]) -> None:
    """Nautobot's TokenFilterSet (id, key, write_enabled, created, expires, description with their lookups,
    q) on the caller's own tokens; ``user`` for a superuser; a key is matched through its hash."""
    root = user(sessions, "root", superuser=True)
    bob = user(sessions, "bob", tokens=1)
    keys: dict[str, str] = {}
    with sessions.begin() as session:
        service.create_user(session=session, username="ada")
        made = {
            "deploy 100%": {"expires": datetime(2031, 1, 1, tzinfo=UTC)},
            "deploy_backup": {"expires": datetime(2032, 6, 1, tzinfo=UTC), "write_enabled": False},
            "Laptop": {},
        }
        for description, fields in made.items():
            _, key = service.create_user_token(
                session=session, username="ada", description=description, **fields
            )
            keys[description] = key
    ada = {"Authorization": f"Token {keys['Laptop']}"}

    def listed(headers: dict[str, str] = ada, **params: str | list[str]) -> list[str]:
        answer = client.get(PATH, params={"limit": 0, **params}, headers=headers)
        assert answer.status_code == 200, answer.text
        return sorted(token["description"] for token in answer.json()["results"])

    def refused(**params: str) -> dict[str, Any]:
        answer = client.get(PATH, params=params, headers=ada)
        assert answer.status_code == 400, answer.text
        body: dict[str, Any] = answer.json()
        return body

    everything = ["Laptop", "deploy 100%", "deploy_backup"]
    assert listed() == everything
    assert listed(q="DEPLOY") == ["deploy 100%", "deploy_backup"]
    assert listed(write_enabled="false") == ["deploy_backup"]
    assert listed(write_enabled="true") == ["Laptop", "deploy 100%"]
    # Text lookups: the value is matched as written (no LIKE wildcards), several values match any.
    assert listed(description__ic="100%") == ["deploy 100%"]
    assert listed(description__ic="y_b") == ["deploy_backup"]
    assert listed(description__isw="deploy") == ["deploy 100%", "deploy_backup"]
    assert listed(description__nisw="deploy") == ["Laptop"]
    assert listed(description__iew="TOP") == ["Laptop"]
    assert listed(description__ie="laptop") == ["Laptop"]
    assert listed(description="laptop") == []  # exact is exact
    assert listed(description=["Laptop", "deploy 100%"]) == ["Laptop", "deploy 100%"]
    assert listed(description__n="Laptop") == ["deploy 100%", "deploy_backup"]
    assert listed(description__re="^deploy.[0-9]") == ["deploy 100%"]
    assert listed(description__ire="^LAP") == ["Laptop"]
    assert listed(description__nire="^LAP") == ["deploy 100%", "deploy_backup"]
    # Date-time lookups; a token without an expiry is kept by expires__n, as Django's exclude() keeps it.
    assert listed(expires__gte="2031-06-01") == ["deploy_backup"]
    assert listed(expires__lt="2031-06-01T00:00:00Z") == ["deploy 100%"]
    assert listed(expires="2031-01-01T00:00:00+00:00") == ["deploy 100%"]
    assert listed(expires__n="2031-01-01T00:00:00Z") == ["Laptop", "deploy_backup"]
    assert listed(expires__isnull="true") == ["Laptop"]
    assert listed(expires__isnull="false") == ["deploy 100%", "deploy_backup"]
    assert listed(created__gte="2000-01-01", created__lt="2999-01-01") == everything
    assert listed(created__gt="2999-01-01") == []
    # A key is found by its whole value, compared through its hash; parts of it cannot be searched.
    assert listed(key=keys["deploy_backup"]) == ["deploy_backup"]
    assert listed(key__n=keys["deploy_backup"]) == ["Laptop", "deploy 100%"]
    assert listed(key=keys["deploy_backup"][:39] + "x") == []
    assert "stored hashed" in refused(key__isw=keys["Laptop"][:8])["key__isw"][0]
    # Ids, and filters combined (AND).
    first = client.get(PATH, params={"q": "Laptop"}, headers=ada).json()["results"][0]["id"]
    assert listed(id=str(first)) == ["Laptop"]
    assert listed(id__n=str(first), write_enabled="true") == ["deploy 100%"]
    # Only one's own tokens, whatever the filter: ada's key finds nothing with bob's token.
    assert listed(bob, key=keys["Laptop"]) == []
    assert listed(bob, user="ada") == []
    # user (username or id) is jobplane's, for a superuser who sees everyone's tokens.
    ada_id = client.get(PATH, headers=ada).json()["results"][0]["user"]["id"]
    assert listed(root, user="ada") == everything
    assert listed(root, user=str(ada_id)) == everything
    assert listed(root, user__n="ada") == ["bob 0", "root 0"]
    # The count and the links follow the filters.
    page = client.get(PATH, params={"q": "deploy", "limit": 1}, headers=ada).json()
    assert page["count"] == 2
    assert "q=deploy" in page["next"]
    # Bad values are refused naming the parameter; unknown parameters are ignored, as the other lists do.
    assert "boolean" in refused(write_enabled="maybe")["write_enabled"][0]
    assert "ISO 8601" in refused(expires__gte="next week")["expires__gte"][0]
    assert refused(id="one") == {"id": ["Enter a whole number."]}
    assert "regular expression" in refused(description__re="(")["description__re"][0]
    assert listed(colour="blue") == everything
