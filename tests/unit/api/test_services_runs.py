"""The run path of the API (services/runs.py) against the smallest fake of the Kubernetes gateway it calls.

The real gateway and cluster are driven by the e2e tests; here the gateway's answers are chosen, so the
path where the inputs Secret cannot be stored is exercised on purpose.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from jobplane import Job, StringVar
from jobplane_api.errors import PermissionDenied, Unavailable
from jobplane_api.identity import Principal
from jobplane_api.identity.principal import Grant
from jobplane_api.kube import KubeError, find_definition
from jobplane_api.schemas import JobRunResponse
from jobplane_api.services.runs import RunRequest, run_job
from jobplane_crds.v1alpha1 import JobDefinition, JobQueue
from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker
from jobplane_store.models import JobResult, JobStatus
from tests.builders import job_definition

NAMESPACE = "runs"
JOB_UID = "7c0e9a52-1d3b-4f6e-8a2d-5b9c0f1e2d3a"


class Login(Job):
    password = StringVar()

    class Meta:
        has_sensitive_variables = True


def definition() -> dict[str, Any]:
    return job_definition(
        "tools-login",
        metadata={"uid": JOB_UID, "creationTimestamp": "2026-11-25T10:00:00Z"},
        enabled=True,
        overrides={},
        status={
            "classPath": "tools.Login",
            "installed": True,
            "code": {"name": "Login", "hasSensitiveVariables": True},
            "variablesSchema": Login.json_schema(),
        },
    )


class FakeGateway:
    """The calls run_job makes on KubeGateway; the inputs Secret is refused as the apiserver would."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.secrets: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str, str | None]] = []

    def raw_definition(self) -> dict[str, Any]:
        """The one job, as Kubernetes would send it."""
        return definition()

    def find_definition(self, key: str) -> JobDefinition | None:
        return find_definition([JobDefinition.model_validate(self.raw_definition())], key)

    def queues(self) -> list[JobQueue]:
        return []

    def create_run(
        self, *, namespace: str, generate_name: str, spec: dict[str, Any], labels: dict[str, str]
    ) -> dict[str, Any]:
        name = f"{generate_name}x7k2p"
        run = {
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "labels": labels},
            "spec": spec,
        }
        self.runs[name] = run
        self.created.append(run)
        return run

    def create_inputs_secret(self, *, run: dict[str, Any], name: str, data_json: str) -> None:
        self.secrets.append({"run": run["metadata"]["name"], "name": name, "data": json.loads(data_json)})
        raise KubeError('secrets "jobplane-inputs" is forbidden: exceeded quota', status=403)

    def delete_run(self, namespace: str, name: str, *, uid: str | None = None) -> None:
        self.deleted.append((namespace, name, uid))
        self.runs.pop(name, None)


def run_login(session: Session, kube: FakeGateway) -> JobRunResponse:
    """Ada (a superuser) runs the sensitive job with a password, as the run endpoint does."""
    return run_job(
        session=session,
        kube=kube,  # type: ignore[arg-type]
        principal=Principal("ada", is_superuser=True, write_enabled=True, user_id=1),
        key="Login",
        request=RunRequest(data={"password": "hunter2"}),
        namespace=NAMESPACE,
        upload_max_size=1024,
        base_url="http://api.test",
    )


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    ensure_schema(engine)
    with make_sessionmaker(engine)() as session:
        yield session
    engine.dispose()


def test_a_run_whose_inputs_secret_cannot_be_stored_is_deleted_by_uid_and_leaves_no_result(
    session: Session,
) -> None:
    kube = FakeGateway()

    with pytest.raises(Unavailable) as refused:
        run_login(session, kube)

    assert refused.value.status_code == 503
    assert "Could not store the run's inputs" in refused.value.detail
    assert "exceeded quota" in refused.value.detail
    # The run was made first (the Secret is owned by it), without the inputs in its spec...
    assert len(kube.secrets) == 1
    made = kube.secrets[0]
    assert made["data"] == {"password": "hunter2"}
    # ...then deleted, naming the uid of the run just made: never another run of the same name.
    assert len(kube.deleted) == 1
    (created,) = kube.created
    assert kube.deleted[0] == (NAMESPACE, made["run"], created["metadata"]["uid"])
    assert kube.runs == {}
    # No job result is recorded for a run that never was.
    assert session.scalar(select(func.count()).select_from(JobResult)) == 0


def test_a_stored_secret_keeps_the_inputs_out_of_the_spec_and_the_result(session: Session) -> None:
    """The same path when the Secret is stored: the contrast that shows the test above can fail."""

    class Storing(FakeGateway):
        def create_inputs_secret(self, *, run: dict[str, Any], name: str, data_json: str) -> None:
            self.secrets.append({"run": run["metadata"]["name"], "name": name, "data": json.loads(data_json)})

    kube = Storing()
    answer = run_login(session, kube)

    assert kube.deleted == []
    (run,) = kube.runs.values()
    assert run["spec"]["inputsSecretRef"] == kube.secrets[0]["name"]
    assert "data" not in run["spec"]
    assert answer.job_result is not None
    assert str(answer.job_result.id) == run["metadata"]["uid"]
    assert answer.job_result.task_kwargs is None


def test_a_row_the_mirror_wrote_first_is_completed_and_keeps_its_status_and_creation_time(
    session: Session,
) -> None:
    """The API's watch of JobRuns may record the run before run_job does: the row it made is completed
    with what only the API knows, and the status the run reached meanwhile is not put back to PENDING."""
    mirrored_at = datetime(2026, 11, 25, 10, 0, 1, tzinfo=UTC)

    class Mirrored(FakeGateway):
        def create_run(self, **kwargs: Any) -> dict[str, Any]:
            run = super().create_run(**kwargs)
            # As the mirror inserts a run it sees with a status already: the job's name not resolved yet.
            session.execute(
                insert(JobResult).values(
                    id=uuid.UUID(run["metadata"]["uid"]), name="tools-login", job_class_path="tools-login",
                    user="ada", status=JobStatus.STARTED, date_created=mirrored_at, run_name="other",
                )
            )  # fmt: skip
            return run

        def create_inputs_secret(self, *, run: dict[str, Any], name: str, data_json: str) -> None:
            self.secrets.append({"run": run["metadata"]["name"], "name": name})

    kube = Mirrored()
    answer = run_login(session, kube)

    (run,) = kube.runs.values()
    assert answer.job_result is not None
    record = answer.job_result
    assert str(record.id) == run["metadata"]["uid"]
    assert (record.status.value, record.date_created.replace(tzinfo=UTC)) == ("STARTED", mirrored_at)
    assert (record.name, record.task_name) == ("Login", "tools.Login")
    assert record.user is not None
    assert record.user.id == 1  # the caller's id, as authentication read it (no users table read)
    stored = session.get(JobResult, uuid.UUID(run["metadata"]["uid"]), populate_existing=True)
    assert stored is not None
    assert (stored.run_name, stored.run_namespace, stored.status) == (
        run["metadata"]["name"],
        NAMESPACE,
        "STARTED",
    )
    assert session.scalar(select(func.count()).select_from(JobResult)) == 1


def test_a_user_who_may_view_but_not_run_gets_nautobot_s_refusal_and_nothing_is_made(
    session: Session,
) -> None:
    """Nautobot's run action is guarded by a permission class needing extras.run_job: a user without it
    gets DRF's 403 words before the view runs (pynautobot's users see this body)."""
    kube = FakeGateway()
    viewer = Principal(
        "vic",
        write_enabled=True,
        grants=(Grant(frozenset({"extras.job"}), frozenset({"view"})),),
        user_id=2,
    )

    with pytest.raises(PermissionDenied) as refused:
        run_job(
            session=session,
            kube=kube,  # type: ignore[arg-type]
            principal=viewer,
            key="Login",
            request=RunRequest(data={"password": "hunter2"}),
            namespace=NAMESPACE,
            upload_max_size=1024,
            base_url="http://api.test",
        )

    assert refused.value.status_code == 403
    assert refused.value.detail == "You do not have permission to perform this action."
    assert kube.created == []
    assert kube.secrets == []
    assert session.scalar(select(func.count()).select_from(JobResult)) == 0


# --- Nautobot's _ignore_singleton_lock --------------------------------------------------------------------


class Audit(Job):
    scope = StringVar(required=False)

    class Meta:
        is_singleton = True
        has_sensitive_variables = False


class SingletonGateway(FakeGateway):
    def __init__(self, *, singleton: bool = True) -> None:
        super().__init__()
        self.singleton = singleton

    def raw_definition(self) -> dict[str, Any]:
        found = definition()
        found["metadata"]["name"] = "tools-audit"
        code = {"name": "Audit", "isSingleton": self.singleton, "hasSensitiveVariables": False}
        found["status"].update(classPath="tools.Audit", code=code, variablesSchema=Audit.json_schema())
        return found


def run_audit(
    session: Session, kube: FakeGateway, request: RunRequest, grants: tuple[Grant, ...]
) -> JobRunResponse:
    return run_job(
        session=session,
        kube=kube,  # type: ignore[arg-type]
        principal=Principal("oncall", write_enabled=True, grants=grants, user_id=3),
        key="Audit",
        request=request,
        namespace=NAMESPACE,
        upload_max_size=1024,
        base_url="http://api.test",
    )


RUNNER = (Grant(frozenset({"extras.job"}), frozenset({"view", "run"})),)


def test_whoever_may_run_a_singleton_job_may_ignore_its_lock_as_in_nautobot(session: Session) -> None:
    kube = SingletonGateway()
    answer = run_audit(session, kube, RunRequest(ignore_singleton_lock=True), RUNNER)
    assert answer.job_result is not None
    assert kube.created[-1]["spec"]["ignoreSingletonLock"] is True
    assert kube.created[-1]["spec"]["requestedBy"] == "oncall"  # who forced it, on the run's status
    run_audit(session, kube, RunRequest(), RUNNER)
    assert "ignoreSingletonLock" not in kube.created[-1]["spec"]


def test_the_lock_of_a_job_that_is_not_a_singleton_is_not_asked_for(session: Session) -> None:
    kube = SingletonGateway(singleton=False)
    run_audit(session, kube, RunRequest(ignore_singleton_lock=True), RUNNER)
    assert "ignoreSingletonLock" not in kube.created[-1]["spec"]


def test_ignoring_the_lock_takes_run_and_is_for_a_run_started_now(session: Session) -> None:
    from jobplane_api.errors import BadRequest
    from jobplane_api.services.schedules import ScheduleInput

    kube = SingletonGateway()
    viewer = (Grant(frozenset({"extras.job"}), frozenset({"view"})),)
    with pytest.raises(PermissionDenied):
        run_audit(session, kube, RunRequest(ignore_singleton_lock=True), viewer)
    later = ScheduleInput(interval="hourly", name="audit hourly", start_time="2099-01-01T00:00:00Z")
    with pytest.raises(BadRequest) as refused:
        run_audit(session, kube, RunRequest(ignore_singleton_lock=True, schedule=later), RUNNER)
    assert refused.value.status_code == 400
    assert set(refused.value.body()) == {"_ignore_singleton_lock"}
    assert kube.created == []
