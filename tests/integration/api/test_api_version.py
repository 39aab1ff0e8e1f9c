"""The ``API-Version`` header against the real app and its Postgres, read by pynautobot as its users do."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pynautobot
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jobplane_api.app import create_app
from jobplane_api.identity import service
from jobplane_api.settings import ApiSettings
from jobplane_api.versioning import API_VERSION
from tests.integration.api.conftest import serve_app

pytestmark = pytest.mark.postgres


@pytest.fixture
def base_url(engine: Engine) -> Iterator[str]:
    with serve_app(create_app(ApiSettings(kubernetes=False), engine=engine, mirror=False)) as url:
        yield url


def test_pynautobot_reads_the_api_version_and_every_api_answer_has_it(
    base_url: str, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        service.create_user(session=session, username="root", is_superuser=True)
        _, key = service.create_user_token(session=session, username="root")

    assert API_VERSION == "3.1"
    assert pynautobot.api(base_url, token=key).version == API_VERSION
    # Whatever version the request asks for (the seed's curl examples ask for 1.3), and on refusals too.
    asked = httpx.get(f"{base_url}/api/", headers={"Accept": "application/json; version=1.3; indent=4"})
    assert asked.headers["API-Version"] == API_VERSION
    refused = httpx.get(f"{base_url}/api/extras/job-results/")
    assert refused.status_code == 403
    assert refused.headers["API-Version"] == API_VERSION
    root = {"Authorization": f"Token {key}"}
    missing = httpx.get(f"{base_url}/api/extras/job-results/{uuid.uuid4()}/", headers=root)
    assert missing.status_code == 404
    assert missing.headers["API-Version"] == API_VERSION
