"""Web UI sign-in: the session cookie, CSRF refusals, sign-out ending the session, tokens still for /api/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobplane_api.ui.auth import CSRF_COOKIE, SESSION_COOKIE, SESSION_DESCRIPTION
from jobplane_store.identity import Token
from tests.ui_support import PASSWORD, UiWorld, csrf_of


@pytest.fixture
def world(tmp_path: Path) -> UiWorld:
    world = UiWorld(tmp_path)
    world.user("alice", actions=["view"])
    return world


@pytest.fixture
def client(world: UiWorld) -> Iterator[TestClient]:
    with TestClient(world.app(), follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, username: str = "alice", password: str = PASSWORD) -> str:
    """Sign in through the form; the signed-in CSRF token."""
    page = client.get("/login/")
    answer = client.post(
        "/login/",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text), "next": "/jobs/"},
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/jobs/").text)


def test_pages_redirect_to_sign_in_and_come_back(client: TestClient) -> None:
    answer = client.get("/jobs/?q=net")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login/?next=/jobs/%3Fq%3Dnet"
    # htmx gets a redirect header instead, so the whole page changes rather than a fragment.
    assert client.get("/jobs/", headers={"HX-Request": "true"}).headers["HX-Redirect"].startswith("/login/")


def test_signing_in_sets_a_session_cookie_that_scripts_cannot_read(
    client: TestClient, world: UiWorld
) -> None:
    page = client.get("/login/")
    assert page.status_code == 200
    assert "httponly" in page.headers["set-cookie"].lower()  # the sign-in form's double-submit cookie
    answer = client.post(
        "/login/",
        data={"username": "alice", "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": "/jobs/"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/jobs/"
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and SESSION_COOKIE in v)
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS (scheme https) it is Secure
    jobs = client.get("/jobs/")
    assert jobs.status_code == 200
    assert 'data-testid="user-menu">alice<' in jobs.text
    with world.sessions() as session:
        token = session.scalars(select(Token)).one()
        assert (token.description, token.expires is not None) == (SESSION_DESCRIPTION, True)


def test_over_tls_the_cookie_is_secure(world: UiWorld) -> None:
    with TestClient(world.app(), base_url="https://ui.test", follow_redirects=False) as client:
        page = client.get("/login/")
        answer = client.post(
            "/login/", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
        )
        cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and SESSION_COOKIE in v)
        assert "Secure" in cookie


def test_a_wrong_password_is_refused_without_saying_which_part(client: TestClient) -> None:
    page = client.get("/login/")
    for username, password in (("alice", "wrong"), ("nobody", PASSWORD)):
        answer = client.post(
            "/login/", data={"username": username, "password": password, "csrf_token": csrf_of(page.text)}
        )
        assert answer.status_code == 400
        assert "Invalid username/password." in answer.text
        assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


def test_a_post_without_its_csrf_token_is_refused(client: TestClient) -> None:
    page = client.get("/login/")
    refused = client.post("/login/", data={"username": "alice", "password": PASSWORD})
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    # A token that is not the one of this browser's cookie is refused as well.
    forged = client.post(
        "/login/", data={"username": "alice", "password": PASSWORD, "csrf_token": "x" + csrf_of(page.text)}
    )
    assert forged.status_code == 403
    token = sign_in(client)
    # Signed in: the token is bound to the session; the sign-in page's token no longer counts.
    assert (
        client.post("/logout/", data={"csrf_token": client.cookies.get(CSRF_COOKIE) or ""}).status_code == 403
    )
    assert client.post("/logout/").status_code == 403
    assert client.get("/jobs/").status_code == 200  # still signed in
    # htmx sends it as a header.
    assert client.post("/logout/", headers={"X-CSRFToken": token}).status_code == 303


def test_signing_out_ends_the_session_even_for_a_copied_cookie(client: TestClient, world: UiWorld) -> None:
    token = sign_in(client)
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie
    answer = client.post("/logout/", data={"csrf_token": token})
    assert (answer.status_code, answer.headers["location"]) == (303, "/login/")
    assert client.get("/jobs/").status_code == 303
    client.cookies.set(SESSION_COOKIE, cookie)
    assert client.get("/jobs/").status_code == 303
    with world.sessions() as session:
        assert session.scalars(select(Token)).all() == []


def test_the_api_takes_tokens_and_ignores_the_session_cookie(client: TestClient, world: UiWorld) -> None:
    sign_in(client)
    refused = client.get("/api/extras/jobs/")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Authentication credentials were not provided."}
    with world.sessions.begin() as session:
        from jobplane_api.identity import service

        _, key = service.create_user_token(session=session, username="alice")
    assert client.get("/api/extras/jobs/", headers={"Authorization": f"Token {key}"}).status_code == 200


def test_next_never_leaves_the_site(client: TestClient) -> None:
    page = client.get("/login/?next=//evil.test/x")
    assert 'name="next" value="/jobs/"' in page.text
    answer = client.post(
        "/login/",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "https://evil.test/",
        },
    )
    assert answer.headers["location"] == "/jobs/"


def test_pages_carry_security_headers_and_the_api_keeps_json_errors(client: TestClient) -> None:
    page = client.get("/login/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    api_missing = client.get("/api/no-such-endpoint/")
    assert api_missing.json() == {"detail": "Not found."}


def test_static_assets_are_served_from_the_package(client: TestClient) -> None:
    for path in (
        "/static/vendor/htmx.min.js",
        "/static/vendor/htmx-ext-sse.js",
        "/static/vendor/pico.min.css",
    ):
        assert client.get(path).status_code == 200, path


def test_signing_in_clears_the_users_expired_sessions(client: TestClient, world: UiWorld) -> None:
    from datetime import UTC, datetime, timedelta

    from jobplane_api.identity import service

    with world.sessions.begin() as session:
        service.create_user_token(session=session, username="alice", description="kept: not a session")
        old = service.create_user_token(
            session=session, username="alice", description=SESSION_DESCRIPTION,
            expires=datetime.now(UTC) + timedelta(seconds=30),
        )[0]  # fmt: skip
        old.expires = datetime.now(UTC) - timedelta(hours=1)
    sign_in(client)
    with world.sessions() as session:
        left = sorted((token.description, token.expires is None) for token in session.scalars(select(Token)))
    assert left == [(SESSION_DESCRIPTION, False), ("kept: not a session", True)]
