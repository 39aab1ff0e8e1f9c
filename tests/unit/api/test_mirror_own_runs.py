"""The run endpoint's own runs and the JobRun mirror of the same API process (services/mirror.RunsWritten).

The endpoint records a run it created; its mirror then skips the watch event for that very version of the
run, once the endpoint's row is committed and holds all the mirror would write. Every other event is
mirrored as before: a later version, a rolled-back request, a row the mirror would still add to.
The run endpoint (run_job), the mirror (RunMirror) and the store (SQLite) are the real ones; only the
Kubernetes gateway is a fake, answering as the apiserver does (a uid and a resourceVersion).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from jobplane import Job, StringVar
from jobplane_api.identity import Principal
from jobplane_api.kube import find_definition
from jobplane_api.services.mirror import RunMirror, RunsWritten
from jobplane_api.services.runs import RunRequest, run_job
from jobplane_api.settings import ApiSettings
from jobplane_crds.v1alpha1 import JobDefinition, JobQueue
from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker
from jobplane_store.models import JobResult, JobStatus
from tests.builders import job_definition

NAMESPACE = "runs"
JOB_UID = "5d1c0f3e-2b7a-4c9e-8f61-0a3b5c7d9e12"


class Report(Job):
    scope = StringVar(required=False)

    class Meta:
        has_sensitive_variables = False


class Secretive(Job):
    """Sensitive, and without variables: a run of it has no inputs, so no Secret either."""

    class Meta:
        has_sensitive_variables = True


def _definition(job: type[Job]) -> dict[str, Any]:
    sensitive = bool(job.Meta.has_sensitive_variables)
    return job_definition(
        "tools-report",
        metadata={"uid": JOB_UID, "creationTimestamp": "2026-11-25T10:00:00Z"},
        enabled=True,
        overrides={},
        status={
            "classPath": f"tools.{job.__name__}",
            "installed": True,
            "code": {"name": job.__name__, "hasSensitiveVariables": sensitive},
            "variablesSchema": job.json_schema(),
        },
    )


class Gateway:
    """What run_job and RunMirror call; runs get a uid and a resourceVersion as the apiserver gives."""

    def __init__(self, job: type[Job] = Report) -> None:
        self.definition = _definition(job)
        self.model = JobDefinition.model_validate(self.definition)
        self.version = 100

    def find_definition(self, key: str) -> JobDefinition | None:
        return find_definition([self.model], key)

    def resolve_definition(self, key: str, namespace: str) -> JobDefinition | None:
        return self.find_definition(key)

    def wait_synced(self, timeout: float | None = None) -> bool:
        return True

    def queues(self) -> list[JobQueue]:
        return []

    def create_run(
        self, *, namespace: str, generate_name: str, spec: dict[str, Any], labels: dict[str, str]
    ) -> dict[str, Any]:
        self.version += 1
        return {
            "metadata": {
                "name": f"{generate_name}q4z8w",
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "resourceVersion": str(self.version),
                "creationTimestamp": "2026-11-25T10:00:01Z",
                "labels": labels,
            },
            "spec": spec,
        }


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    ensure_schema(engine)
    yield engine
    engine.dispose()


def _mirror(
    engine: Engine, gateway: Gateway, *, wait: float = 5.0
) -> tuple[RunMirror, sessionmaker[Session]]:
    sessions = make_sessionmaker(engine)
    mirror = RunMirror(ApiSettings(namespace=NAMESPACE), sessions, gateway)  # type: ignore[arg-type]
    mirror.written = RunsWritten(wait=wait)
    mirror.written.install(sessions)  # as RunMirror.start() does, without its watch threads
    return mirror, sessions


def _run_endpoint(session: Session, gateway: Gateway, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST .../run/ as the route does it (the session commits after run_job); returns the JobRun made."""
    made: list[dict[str, Any]] = []
    create = gateway.create_run

    def recording(**kwargs: Any) -> dict[str, Any]:
        made.append(create(**kwargs))
        return made[-1]

    gateway.create_run = recording  # type: ignore[method-assign]
    try:
        run_job(
            session=session,
            kube=gateway,  # type: ignore[arg-type]
            principal=Principal("ada", is_superuser=True, write_enabled=True, user_id=1),
            key=JOB_UID,
            request=RunRequest(data={"scope": "all"} if data is None else data),
            namespace=NAMESPACE,
            upload_max_size=1024,
            base_url="http://api.test",
        )
    finally:
        del gateway.create_run
    return made[0]


class Statements:
    """Counts the SQL statements the engine runs (the mirror's transaction, or none), of one thread if
    given."""

    def __init__(self, engine: Engine, thread: int | None = None) -> None:
        self.count = 0
        self._thread = thread
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        if self._thread is None or self._thread == threading.get_ident():
            self.count += 1


def _row(sessions: sessionmaker[Session], run: dict[str, Any]) -> JobResult | None:
    with sessions() as session:
        return session.scalar(select(JobResult).where(JobResult.id == uuid.UUID(run["metadata"]["uid"])))


def _later(run: dict[str, Any], version: str, **status: Any) -> dict[str, Any]:
    return {**run, "metadata": {**run["metadata"], "resourceVersion": version}, "status": status}


def test_the_event_of_a_run_the_endpoint_recorded_costs_no_statement_and_later_ones_are_mirrored(
    engine: Engine,
) -> None:
    gateway = Gateway()
    mirror, sessions = _mirror(engine, gateway)
    with sessions() as session:
        run = _run_endpoint(session, gateway)
        session.commit()
    statements = Statements(engine)

    mirror._on_event("ADDED", run)

    assert statements.count == 0
    row = _row(sessions, run)
    assert row is not None
    assert (row.status, row.name, row.task_kwargs) == (JobStatus.PENDING, "Report", {"scope": "all"})

    # The operator moves the run on: a new version, mirrored as ever.
    mirror._on_event("MODIFIED", _later(run, "900", phase="Running", startTime="2026-11-25T10:00:05Z"))
    assert statements.count > 0
    row = _row(sessions, run)
    assert row is not None
    assert row.status == JobStatus.STARTED
    assert row.date_started is not None
    # The same version seen again (a relist) is mirrored too: the skip was for one event.
    before = statements.count
    mirror._on_event("ADDED", run)
    assert statements.count > before


def test_a_run_whose_request_rolled_back_is_mirrored(engine: Engine) -> None:
    gateway = Gateway()
    mirror, sessions = _mirror(engine, gateway)
    with sessions() as session:
        run = _run_endpoint(session, gateway)
        session.rollback()  # the request failed after the run was made: no row from the endpoint
    assert _row(sessions, run) is None

    mirror._on_event("ADDED", run)

    row = _row(sessions, run)
    assert row is not None
    assert (row.status, row.name, row.run_name) == (JobStatus.PENDING, "Report", run["metadata"]["name"])


def test_a_row_the_mirror_would_still_add_to_is_mirrored(engine: Engine) -> None:
    """A sensitive job run without inputs: the endpoint stores no inputs (None), the mirror an empty dict
    from the run's spec. The endpoint's row is not complete for the mirror, so its event is applied."""
    gateway = Gateway(Secretive)
    mirror, sessions = _mirror(engine, gateway)
    with sessions() as session:
        run = _run_endpoint(session, gateway, data={})
        session.commit()
    row = _row(sessions, run)
    assert row is not None
    assert row.task_kwargs is None
    statements = Statements(engine)

    mirror._on_event("ADDED", run)

    assert statements.count > 0
    row = _row(sessions, run)
    assert row is not None
    assert row.task_kwargs == {}


def test_an_event_that_comes_while_the_request_is_open_waits_at_most_its_bound(engine: Engine) -> None:
    gateway = Gateway()
    mirror, sessions = _mirror(engine, gateway, wait=0.05)
    session = sessions()
    run = _run_endpoint(session, gateway)  # not committed yet

    assert mirror.written.covers("ADDED", run) is False  # the claim never settled within the bound
    session.rollback()
    session.close()


def test_the_mirror_of_an_api_without_the_registry_writes_as_before(engine: Engine) -> None:
    """A session from a sessionmaker whose mirror does not run carries no registry: nothing is claimed."""
    gateway = Gateway()
    sessions = make_sessionmaker(engine)
    mirror = RunMirror(ApiSettings(namespace=NAMESPACE), sessions, gateway)  # type: ignore[arg-type]
    with sessions() as session:
        run = _run_endpoint(session, gateway)
        session.commit()
    statements = Statements(engine)
    mirror._on_event("ADDED", run)
    assert statements.count > 0


def test_an_event_that_comes_before_the_create_is_answered_waits_for_the_claim_and_is_skipped(
    engine: Engine,
) -> None:
    """The watch often delivers the new run before the apiserver's answer reaches the endpoint: the mirror
    waits for the creates in flight, then for the claim to settle, and skips the run."""
    gateway = Gateway()
    mirror, sessions = _mirror(engine, gateway)
    create = gateway.create_run
    seen: list[threading.Thread] = []
    counted: list[Statements] = []
    skipped = threading.Event()

    def deliver_first(**kwargs: Any) -> dict[str, Any]:
        run = create(**kwargs)

        def watch() -> None:
            counted.append(Statements(engine, threading.get_ident()))
            mirror._on_event("ADDED", run)
            skipped.set()

        seen.append(threading.Thread(target=watch))
        seen[0].start()
        assert not skipped.wait(0.2)  # the mirror waits: the claim is not made yet
        return run

    gateway.create_run = deliver_first  # type: ignore[method-assign]
    with sessions() as session:
        run = _run_endpoint(session, gateway)
        assert not skipped.is_set()  # ...nor committed
        session.commit()
    seen[0].join(10)

    assert skipped.is_set()
    assert counted[0].count == 0
    row = _row(sessions, run)
    assert row is not None
    assert row.status == JobStatus.PENDING


def test_a_run_made_elsewhere_is_mirrored(engine: Engine) -> None:
    """kubectl's runs (or another replica's): no create of this process is in flight, no claim: applied."""
    gateway = Gateway()
    mirror, sessions = _mirror(engine, gateway, wait=30.0)
    run = gateway.create_run(
        namespace=NAMESPACE, generate_name="tools-report-", spec={"job": "tools-report"}, labels={}
    )

    mirror._on_event("ADDED", run)

    row = _row(sessions, run)
    assert row is not None
    assert (row.name, row.status) == ("Report", JobStatus.PENDING)
