"""Builders for the web UI's tests: the real app on a SQLite store and an in-memory apiserver, users.

The route tests (TestClient) and the browser tests (uvicorn + Chromium) share these. Kubernetes is the real
KubeGateway on the in-memory CustomObjectsApi of tests/unit/api/test_git_repositories.py; the whole-stack
path is tests/e2e (tests/stack.py serves the same app).
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jobplane import (
    BooleanVar,
    ChoiceVar,
    DryRunVar,
    FileVar,
    IntegerVar,
    IPAddressVar,
    IPAddressWithMaskVar,
    IPNetworkVar,
    Job,
    JSONVar,
    MultiChoiceVar,
    MultiObjectVar,
    ObjectVar,
    StringVar,
    TextVar,
)
from jobplane_api.app import create_app
from jobplane_api.identity import service
from jobplane_api.kube import GROUP, JOB_DEFINITIONS, VERSION, KubeGateway
from jobplane_api.settings import ApiSettings
from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker
from tests.builders import job_definition as definition_body
from tests.unit.api.test_git_repositories import NAMESPACE, FakeCustomObjects, fake_gateway
from tests.unit.jobs.test_variables import Widget

__all__ = [
    "NAMESPACE",
    "PASSWORD",
    "SCHEDULING",
    "Disabled",
    "Hidden",
    "Reserve",
    "Sensitive",
    "Tour",
    "TwoQueues",
    "UiWorld",
    "csrf_of",
    "job_definition",
]

PASSWORD = "correct horse battery staple"


class Tour(Job):
    """One variable of every type, with bounds."""

    hostname = StringVar(min_length=3, max_length=30, regex=r"^[a-z][a-z0-9-]*$", description="Lower case.")
    notes = TextVar(required=False)
    port_count = IntegerVar(min_value=0, max_value=48, default=0)
    enabled = BooleanVar()
    dryrun = DryRunVar()
    role = ChoiceVar(choices=(("router", "Router"), ("switch", "Switch")), default="switch")
    features = MultiChoiceVar(choices=(("bgp", "BGP"), ("ospf", "OSPF")), required=False)
    item = ObjectVar(model=Widget, required=False, display_field="name")
    items = MultiObjectVar(model=Widget, required=False)
    upload = FileVar(required=False)
    gateway = IPAddressVar(required=False)
    management_ip = IPAddressWithMaskVar(required=False)
    network = IPNetworkVar(min_prefix_length=16, max_prefix_length=29, default="198.51.100.0/24")
    settings = JSONVar(required=False)

    class Meta:
        name = "Variables tour"
        grouping = "Getting started"
        description = "Every variable type."
        has_sensitive_variables = False

    def run(self, **data: Any) -> None:
        pass


class Sensitive(Job):
    password = StringVar()

    class Meta:
        name = "Sensitive"
        grouping = "Tools"
        description = "Its inputs go to a Secret."

    def run(self, **data: Any) -> None:
        pass


class Disabled(Job):
    class Meta:
        name = "Disabled one"
        grouping = "Tools"
        description = "Nobody enabled it."

    def run(self) -> None:
        pass


class Hidden(Job):
    class Meta:
        name = "Hidden helper"
        grouping = "Tools"
        hidden = True
        has_sensitive_variables = False

    def run(self) -> None:
        pass


class TwoQueues(Job):
    count = IntegerVar(default=1)

    class Meta:
        name = "Two queues"
        grouping = "Tools"
        task_queues = ("default", "gpu")
        has_sensitive_variables = False

    def run(self, **data: Any) -> None:
        pass


class Reserve(Job):
    """A job that needs someone else's approval to run, and supports dry-run."""

    site = StringVar(min_length=2)
    dryrun = DryRunVar()

    class Meta:
        name = "Reserve addresses"
        grouping = "Tools"
        approval_required = True
        has_sensitive_variables = False

    def run(self, **data: Any) -> None:
        pass


# The object types a scheduling user's permission names: jobs, their scheduled jobs, their results.
SCHEDULING = ("extras.job", "extras.scheduledjob", "extras.jobresult")


class RunObjects(FakeCustomObjects):
    """The in-memory apiserver, naming objects created with generateName as the apiserver does."""

    def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        if "name" not in body["metadata"] and "generateName" in body["metadata"]:
            body = {
                **body,
                "metadata": {
                    **body["metadata"],
                    "name": body["metadata"]["generateName"] + uuid.uuid4().hex[:5],
                },
            }
        return super().create_namespaced_custom_object(group, version, namespace, plural, body)

    def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        self._check(plural)
        obj = self.objects.get((plural, name))
        if obj is None:
            raise ApiException(status=404, reason="Not Found")
        return copy.deepcopy(obj)


class RecordingCore:
    """CoreV1Api's Secret calls the run path makes, recorded."""

    def __init__(self) -> None:
        self.secrets: list[Any] = []

    def create_namespaced_secret(self, namespace: str, body: Any) -> Any:
        self.secrets.append(body)
        return body


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
        ("approval_required", "approvalRequired"),
    ):
        if meta is not None and hasattr(meta, attribute):
            value = getattr(meta, attribute)
            code[field] = list(value) if isinstance(value, tuple) else value
    class_path = f"{job.__module__.rpartition('.')[2]}.{job.__name__}"
    return definition_body(
        class_path.lower().replace(".", "-").replace("_", "-"),
        namespace=NAMESPACE,
        metadata={"uid": uid or str(uuid.uuid4()), "creationTimestamp": "2026-11-25T10:00:00Z"},
        enabled=enabled,
        overrides=dict(overrides or {}),
        status={
            "classPath": class_path,
            "installed": installed,
            "supportsDryrun": any(
                getattr(var, "type_name", "") == "DryRunVar" for var in job.__dict__.values()
            ),
            "source": dict(source or {"type": "image"}),
            "code": code,
            "variablesSchema": job.json_schema(),
        },
    )


class UiWorld:
    """The app (API + UI) on a SQLite store and an in-memory apiserver, and helpers to fill both."""

    def __init__(
        self, tmp_path: Path, definitions: Sequence[Mapping[str, Any]] = (), **settings: Any
    ) -> None:
        """``settings`` are more ApiSettings fields (``ui_data_database_url``...)."""
        self.engine: Engine = create_store_engine(f"sqlite:///{tmp_path / 'ui.sqlite3'}")
        ensure_schema(self.engine)
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.fake = RunObjects(
            served=("jobdefinitions", "jobruns", "jobqueues", "jobrepositories", "jobschedules")
        )
        self.gateway: KubeGateway = fake_gateway(self.fake)
        self.core = RecordingCore()
        self.gateway._core = self.core
        self.settings = ApiSettings(kubernetes=False, namespace=NAMESPACE, **settings)
        for definition in definitions:
            self.add_definition(definition)

    def app(self) -> FastAPI:
        return create_app(self.settings, engine=self.engine, kube=self.gateway, mirror=False)

    def runs(self) -> list[dict[str, Any]]:
        """The JobRuns created so far."""
        return [obj for (plural, _), obj in self.fake.objects.items() if plural == "jobruns"]

    def schedules(self) -> list[dict[str, Any]]:
        """The JobSchedules there are now."""
        return [obj for (plural, _), obj in self.fake.objects.items() if plural == "jobschedules"]

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
