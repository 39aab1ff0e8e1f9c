"""Builders for the web UI's tests: the real app on a SQLite store and an in-memory apiserver, users.

The route tests (TestClient) and the browser tests (uvicorn + Chromium) share these. Kubernetes is the real
KubeGateway on the in-memory CustomObjectsApi of tests/unit/api/test_git_repositories.py; the whole-stack
path is tests/e2e (tests/stack.py serves the same app).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jobplane import Job
from jobplane.store.database import create_store_engine, ensure_schema, make_sessionmaker
from jobplane_api.app import create_app
from jobplane_api.identity import service
from jobplane_api.kube import GROUP, JOB_DEFINITIONS, VERSION, KubeGateway
from jobplane_api.settings import ApiSettings
from tests.unit.api.test_git_repositories import NAMESPACE, FakeCustomObjects, fake_gateway

__all__ = [
    "NAMESPACE",
    "PASSWORD",
    "UiWorld",
    "csrf_of",
    "job_definition",
]

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a rendered page's forms carry."""
    match = _CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def job_definition(
    job: type[Job],
    *,
    uid: str | None = None,
    enabled: bool = True,
    installed: bool = True,
    overrides: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JobDefinition discovery would write for this class (code metadata, schema, source)."""
    meta = getattr(job, "Meta", None)
    code: dict[str, Any] = {"name": getattr(meta, "name", job.__name__)}
    for attribute, field in (
        ("grouping", "grouping"),
        ("description", "description"),
        ("hidden", "hidden"),
        ("has_sensitive_variables", "hasSensitiveVariables"),
        ("task_queues", "taskQueues"),
        ("dryrun_default", "dryrunDefault"),
    ):
        if meta is not None and hasattr(meta, attribute):
            code[field] = getattr(meta, attribute)
    class_path = f"{job.__module__.rpartition('.')[2]}.{job.__name__}"
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JobDefinition",
        "metadata": {
            "name": class_path.lower().replace(".", "-").replace("_", "-"),
            "namespace": NAMESPACE,
            "uid": uid or str(uuid.uuid4()),
            "creationTimestamp": "2026-11-25T10:00:00Z",
        },
        "spec": {"enabled": enabled, "overrides": dict(overrides or {})},
        "status": {
            "classPath": class_path,
            "installed": installed,
            "supportsDryrun": any(
                getattr(var, "type_name", "") == "DryRunVar" for var in job.__dict__.values()
            ),
            "source": dict(source or {"type": "image"}),
            "code": code,
            "variablesSchema": job.json_schema(),
        },
    }


class UiWorld:
    """The app (API + UI) on a SQLite store and an in-memory apiserver, and helpers to fill both."""

    def __init__(self, tmp_path: Path, definitions: Sequence[Mapping[str, Any]] = ()) -> None:
        self.engine: Engine = create_store_engine(f"sqlite:///{tmp_path / 'ui.sqlite3'}")
        ensure_schema(self.engine)
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.fake = FakeCustomObjects(served=("jobdefinitions", "jobruns", "jobqueues", "jobrepositories"))
        self.gateway: KubeGateway = fake_gateway(self.fake)
        self.settings = ApiSettings(kubernetes=False, namespace=NAMESPACE)
        for definition in definitions:
            self.add_definition(definition)

    def app(self) -> FastAPI:
        return create_app(self.settings, engine=self.engine, kube=self.gateway, mirror=False)

    def add_definition(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        body = dict(definition)
        self.fake.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, JOB_DEFINITIONS, body)
        stored = self.fake.objects[(JOB_DEFINITIONS, body["metadata"]["name"])]
        stored["metadata"]["uid"] = body["metadata"]["uid"]
        stored["metadata"].setdefault("creationTimestamp", "2026-11-25T10:00:00Z")
        stored["status"] = body["status"]
        self.gateway._definitions.put(stored)
        return stored

    def user(
        self,
        username: str,
        *,
        superuser: bool = False,
        actions: Sequence[str] = (),
        object_types: Sequence[str] = ("extras.job", "extras.jobresult"),
        constraints: Any = None,
        password: str = PASSWORD,
    ) -> str:
        """A user with a password and (unless superuser) one permission of these actions; its username."""
        with self.sessions.begin() as session:
            service.create_user(session=session, username=username, is_superuser=superuser, password=password)
            if actions:
                service.create_permission(
                    session=session,
                    name=f"{username}-permission",
                    object_types=list(object_types),
                    actions=list(actions),
                    constraints=constraints,
                    users=[username],
                )
        return username
