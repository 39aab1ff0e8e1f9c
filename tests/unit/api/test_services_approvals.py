"""Approvals through the API (services/approvals.py): Nautobot 2.x's approve, deny and dry-run of a scheduled
job, each decision written as an approver's annotation naming the API's user, and an approval-required run
that becomes a scheduled job awaiting approval."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from jobplane import DryRunVar, Job, StringVar
from jobplane_api.errors import ApiError, Conflict, PermissionDenied
from jobplane_api.identity import Principal
from jobplane_api.identity.principal import Grant
from jobplane_api.kube import find_definition
from jobplane_api.services.approvals import (
    OWN_REQUEST,
    PAST_START,
    DryRunNotAllowed,
    SelfApproval,
    StartTimePassed,
    approve_scheduled_job,
    deny_scheduled_job,
    dry_run_scheduled_job,
)
from jobplane_api.services.runs import RunRequest, run_job
from jobplane_crds.v1alpha1 import JobDefinition, JobQueue, JobSchedule
from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker
from tests.builders import job_definition, job_run, job_schedule

NAMESPACE = "runs"
JOB_UID = "1b6f7c2e-3d4a-4b5c-8d9e-0f1a2b3c4d5e"
SCHEDULE_UID = "5e0c2f4a-9b1d-4c3e-8f7a-6d5c4b3a2910"
NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
BASE = "http://api.test"


class Reserve(Job):
    site = StringVar()
    dryrun = DryRunVar()

    class Meta:
        has_sensitive_variables = False
        approval_required = True


def definition(**code: Any) -> dict[str, Any]:
    return job_definition(
        "ipam-reserve",
        metadata={"uid": JOB_UID, "creationTimestamp": "2026-11-25T10:00:00Z"},
        enabled=True,
        overrides={},
        status={
            "classPath": "ipam.Reserve",
            "installed": True,
            "supportsDryrun": True,
            "code": {"name": "Reserve", "hasSensitiveVariables": False, "approvalRequired": True, **code},
            "variablesSchema": Reserve.json_schema(),
        },
    )


def schedule(start: datetime = NOW + timedelta(hours=1), **spec: Any) -> dict[str, Any]:
    return job_schedule(
        "reserve-x7k2p",
        namespace=NAMESPACE,
        metadata={
            "uid": SCHEDULE_UID,
            "creationTimestamp": "2026-12-06T05:00:00Z",
            "annotations": {"jobplane.io/display-name": "Reserve"},
        },
        **{
            "job": "ipam-reserve",
            "queue": "default",
            "schedule": {"interval": "Once", "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "requestedBy": "rita",
            "data": {"site": "ams"},
            **spec,
        },
    )


class Gateway:
    """What the approvals make of KubeGateway: the schedules, one job, the decision patch, runs."""

    def __init__(self, *schedules: dict[str, Any], job: dict[str, Any] | None = None) -> None:
        self.namespace = NAMESPACE
        self.by_name = {item["metadata"]["name"]: item for item in schedules}
        self.job = job or definition()
        self.patches: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str]] = []
        self.runs: list[dict[str, Any]] = []

    def schedules(self) -> list[JobSchedule]:
        return [JobSchedule.model_validate(item) for item in self.by_name.values()]

    def queues(self) -> list[JobQueue]:
        return []

    def find_definition(self, key: str) -> JobDefinition | None:
        return find_definition([JobDefinition.model_validate(self.job)], key)

    def resolve_definition(self, job: str, namespace: str) -> JobDefinition | None:
        return JobDefinition.model_validate(self.job) if job == self.job["metadata"]["name"] else None

    def decide_schedule(self, name: str, patch: dict[str, Any], *, uid: str) -> JobSchedule:
        self.patches.append(patch)
        found = self.by_name[name]
        found["metadata"].setdefault("annotations", {}).update(patch["metadata"]["annotations"])
        found["spec"].update(patch["spec"])
        return JobSchedule.model_validate(found)

    def delete_schedule(self, name: str, *, uid: str) -> None:
        self.deleted.append((name, uid))
        self.by_name.pop(name, None)

    def create_run(
        self, *, namespace: str, generate_name: str, spec: dict[str, Any], labels: dict[str, str]
    ) -> dict[str, Any]:
        run = {
            "metadata": {"name": f"{generate_name}a1b2c", "namespace": namespace, "uid": str(uuid.uuid4())}
        }
        self.runs.append({**run, "spec": spec})
        return run

    def create_schedule(
        self, *, generate_name: str, spec: dict[str, Any], labels: Any, annotations: Any
    ) -> JobSchedule:
        made = {
            "metadata": {
                "name": f"{generate_name}x7k2p",
                "namespace": NAMESPACE,
                "uid": str(uuid.uuid4()),
                "annotations": dict(annotations),
            },
            "spec": spec,
        }
        self.by_name[made["metadata"]["name"]] = made
        return JobSchedule.model_validate(made)


def user(name: str, *actions: tuple[str, str]) -> Principal:
    grants = tuple(Grant(frozenset({kind}), frozenset({action})) for kind, action in actions)
    return Principal(name, write_enabled=True, grants=grants, user_id=hash(name) % 1000)


SCHEDULED = "extras.scheduledjob"
JOB = "extras.job"
APPROVER = (
    *((SCHEDULED, action) for action in ("view", "change", "delete")),
    *((JOB, action) for action in ("view", "run", "approve")),
)
BOB = user("bob", *APPROVER)
RITA = user("rita", *APPROVER)  # the requester, with every right an approver has
CAROL = user("carol", (SCHEDULED, "view"), (SCHEDULED, "change"), (SCHEDULED, "delete"), (JOB, "view"))


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    ensure_schema(engine)
    with make_sessionmaker(engine)() as session:
        yield session
    engine.dispose()


def approve(session: Session, kube: Gateway, principal: Principal, *, force: bool = False) -> Any:
    return approve_scheduled_job(
        session=session,
        kube=kube,  # type: ignore[arg-type]
        principal=principal,
        scheduled_job_id=SCHEDULE_UID,
        force=force,
        base_url=BASE,
        now=NOW,
    )


def deny(kube: Gateway, principal: Principal) -> None:
    deny_scheduled_job(
        kube=kube,  # type: ignore[arg-type]
        principal=principal,
        scheduled_job_id=SCHEDULE_UID,
        base_url=BASE,
        now=NOW,
    )


def refused(call: Any, *args: Any, **kwargs: Any) -> tuple[int, Any]:
    with pytest.raises(ApiError) as error:
        call(*args, **kwargs)
    return error.value.status_code, error.value.body()


# --- approve ------------------------------------------------------------------------------------------------


def test_another_user_approves_and_the_decision_names_them_as_an_approvers_annotation(
    session: Session,
) -> None:
    kube = Gateway(schedule())
    record = approve(session, kube, BOB)
    assert kube.patches == [
        {
            "metadata": {"annotations": {"jobplane.io/approval": "approve"}},
            "spec": {"approval": {"decision": "Approved", "by": "bob", "at": "2026-12-06T06:00:00Z"}},
        }
    ]
    assert str(record.id) == SCHEDULE_UID
    assert record.approval_required is True


def test_the_requester_cannot_approve_their_own_request_even_as_superuser(session: Session) -> None:
    kube = Gateway(schedule())
    assert refused(approve, session, kube, RITA) == (403, OWN_REQUEST)
    superuser = Principal("rita", is_superuser=True, write_enabled=True, user_id=1)
    with pytest.raises(SelfApproval):
        approve(session, kube, superuser)
    assert kube.patches == []


def test_approving_needs_the_approve_permission_on_the_job_and_change_on_the_scheduled_job(
    session: Session,
) -> None:
    kube = Gateway(schedule())
    assert refused(approve, session, kube, CAROL) == (
        403,
        {"detail": "You do not have permission to approve this request."},
    )
    viewer = user("vic", (SCHEDULED, "view"), (JOB, "view"), (JOB, "approve"))
    with pytest.raises(PermissionDenied) as error:
        approve(session, kube, viewer)
    assert error.value.body() == {"detail": "You do not have permission to perform this action."}
    assert kube.patches == []


def test_a_one_off_whose_start_has_passed_is_approved_only_with_force(session: Session) -> None:
    kube = Gateway(schedule(start=NOW - timedelta(minutes=1)))
    assert refused(approve, session, kube, BOB) == (400, PAST_START)
    with pytest.raises(StartTimePassed):
        approve(session, kube, BOB)
    approve(session, kube, BOB, force=True)
    assert kube.patches[0]["spec"]["approval"]["by"] == "bob"


def test_a_decision_is_given_once(session: Session) -> None:
    kube = Gateway(schedule(approval={"decision": "Approved", "by": "dave", "at": "2026-12-06T05:30:00Z"}))
    with pytest.raises(Conflict) as error:
        approve(session, kube, BOB)
    assert "already approved by dave" in error.value.detail
    assert kube.patches == []


# --- deny ---------------------------------------------------------------------------------------------------


def test_a_denial_is_recorded_then_the_scheduled_job_is_deleted() -> None:
    kube = Gateway(schedule())
    deny(kube, BOB)
    assert kube.patches[0]["spec"]["approval"]["decision"] == "Denied"
    assert kube.patches[0]["metadata"]["annotations"] == {"jobplane.io/approval": "deny"}
    assert kube.deleted == [("reserve-x7k2p", SCHEDULE_UID)]


def test_the_requester_withdraws_their_own_request_without_a_decision() -> None:
    kube = Gateway(schedule())
    deny(kube, RITA)
    assert kube.patches == []
    assert kube.deleted == [("reserve-x7k2p", SCHEDULE_UID)]


def test_denying_needs_the_approve_permission_on_the_job() -> None:
    kube = Gateway(schedule())
    assert refused(deny, kube, CAROL) == (403, {"detail": "You do not have permission to deny this request."})
    assert kube.deleted == []


# --- dry-run ------------------------------------------------------------------------------------------------


def dry_run(session: Session, kube: Gateway, principal: Principal) -> Any:
    return dry_run_scheduled_job(
        session=session,
        kube=kube,  # type: ignore[arg-type]
        principal=principal,
        scheduled_job_id=SCHEDULE_UID,
        namespace=NAMESPACE,
        upload_max_size=1024,
        base_url=BASE,
    )


def test_a_dry_run_runs_now_with_the_inputs_and_dryrun_without_approving(session: Session) -> None:
    kube = Gateway(schedule())
    result = dry_run(session, kube, BOB)
    (run,) = kube.runs
    assert run["spec"]["dryRun"] is True
    assert run["spec"]["data"] == {"site": "ams", "dryrun": True}
    assert run["spec"]["requestedBy"] == "bob"
    assert "approval" not in run["spec"]
    assert kube.patches == []
    assert result.dry_run is True


def test_a_job_without_dry_run_answers_405_and_running_it_needs_the_run_permission(session: Session) -> None:
    job = definition()
    job["status"]["supportsDryrun"] = False
    assert refused(dry_run, session, Gateway(schedule(), job=job), BOB) == (
        405,
        {"detail": "This job does not support dry-run."},
    )
    with pytest.raises(DryRunNotAllowed):
        dry_run(session, Gateway(schedule(), job={**definition(), "spec": {"enabled": False}}), BOB)
    assert refused(dry_run, session, Gateway(schedule()), CAROL) == (
        403,
        {"detail": "You do not have permission to run this job."},
    )


# --- the run endpoint ---------------------------------------------------------------------------------------


def run(session: Session, kube: Gateway, **request: Any) -> Any:
    return run_job(
        session=session,
        kube=kube,  # type: ignore[arg-type]
        principal=RITA,
        key="Reserve",
        request=RunRequest(**request),
        namespace=NAMESPACE,
        upload_max_size=1024,
        base_url=BASE,
        now=NOW,
    )


def test_an_approval_required_run_is_a_scheduled_job_once_at_now_awaiting_approval(session: Session) -> None:
    kube = Gateway()
    answer = run(session, kube, data={"site": "ams"})
    assert answer.job_result is None
    assert answer.scheduled_job is not None
    assert answer.scheduled_job.approval_required is True
    assert answer.scheduled_job.one_off is True
    assert answer.scheduled_job.name.startswith("Reserve - 2026-12-06 06:00:00")
    (made,) = kube.by_name.values()
    assert made["spec"]["schedule"]["interval"] == "Once"
    assert made["spec"]["requestedBy"] == "rita"
    assert "approval" not in made["spec"]
    assert kube.runs == []


def test_a_dry_run_of_a_job_with_a_dryrunvar_needs_no_approval(session: Session) -> None:
    kube = Gateway()
    answer = run(session, kube, data={"site": "ams", "dryrun": True})
    assert answer.scheduled_job is None
    assert answer.job_result is not None
    assert kube.runs[0]["spec"]["dryRun"] is True


# --- what the scheduled job shows ---------------------------------------------------------------------------


def record_of(**spec: Any) -> Any:
    from jobplane_api.services.schedules import scheduled_job_record

    return scheduled_job_record(
        schedule(**spec),
        BASE,
        definition=definition(),
        queue_ids={},
        users={"rita": 3, "bob": 4},
        run_count=0,
    )


def test_a_scheduled_job_is_pending_then_shows_who_approved_it_and_when_or_that_it_was_denied() -> None:
    pending = record_of()
    assert (pending.state.value, pending.approved_by_user, pending.approved_at) == ("pending", None, None)
    approved = record_of(approval={"decision": "Approved", "by": "bob", "at": "2026-12-06T05:30:00Z"})
    assert approved.state.value == "active"
    assert approved.approved_by_user is not None
    assert approved.approved_by_user.id == 4
    assert (approved.approved_by, approved.approved_at) == ("bob", datetime(2026, 12, 6, 5, 30, tzinfo=UTC))
    by_kubectl = record_of(approval={"decision": "Approved", "by": "dave", "at": "2026-12-06T05:30:00Z"})
    assert (by_kubectl.approved_by_user, by_kubectl.approved_by) == (None, "dave")  # no API user of that name
    denied = record_of(approval={"decision": "Denied", "by": "bob", "at": "2026-12-06T05:30:00Z"})
    assert (denied.state.value, denied.approved_by_user, denied.approved_by) == ("denied", None, None)


# --- what the job result shows ------------------------------------------------------------------------------


def test_the_job_result_records_who_approved_its_run_and_when_once_approved() -> None:
    from jobplane_api.services.mirror import ExistingResult, plan_result

    run = job_run(
        "r1",
        namespace=NAMESPACE,
        metadata={"uid": str(uuid.uuid4())},
        job="ipam-reserve",
        requestedBy="rita",
        status={"phase": "AwaitingApproval"},
    )
    created = plan_result(run, None, job_name="Reserve")
    assert created is not None
    assert "approved_by" not in created.values
    run["spec"]["approval"] = {"decision": "Approved", "by": "bob", "at": "2026-12-06T05:30:00Z"}
    existing = ExistingResult(status="PENDING", name="Reserve", job_class_path="ipam.Reserve", user="rita")
    changed = plan_result(run, existing, job_name="Reserve")
    assert changed is not None
    assert changed.values["approved_by"] == "bob"
    assert changed.values["approved_at"] == datetime(2026, 12, 6, 5, 30, tzinfo=UTC)
    run["spec"]["approval"] = {"decision": "Denied", "by": "bob", "at": "2026-12-06T05:30:00Z"}
    denied = plan_result(run, None, job_name="Reserve")
    assert denied is not None
    assert "approved_by" not in denied.values
