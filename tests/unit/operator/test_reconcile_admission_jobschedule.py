"""What admission lets a JobSchedule claim: whose its fires are, and only runs its author could make."""

from __future__ import annotations

from typing import Any

from jobplane_crds.v1alpha1 import JobDefinition, JobSchedule
from jobplane_operator.reconcile.admission import (
    Denial,
    only_restrains,
    review_schedule,
    schedule_requester,
    status_code,
)
from tests.builders import job_schedule
from tests.unit.operator.test_reconcile_jobrun import UID, definition

API = "system:serviceaccount:jobplane:jobplane-api"


def spec_of(**spec: Any) -> dict[str, Any]:
    return {
        "job": "audit.Audit",
        "data": {},
        "schedule": {"interval": "Crontab", "crontab": "0 * * * *", "timeZone": "Etc/UTC"},
        "concurrencyPolicy": "Allow",
        "suspend": False,
        "successfulRunsHistoryLimit": 3,
        "failedRunsHistoryLimit": 1,
        **spec,
    }


def review(
    spec: dict[str, Any],
    old: dict[str, Any] | None = None,
    *,
    username: str = "alice",
    may_create_runs: bool = True,
    definitions: list[dict[str, Any]] | None = None,
    secrets: tuple[str, ...] = (),
) -> Denial | None:
    schedule = JobSchedule.of(job_schedule("s", namespace="ops", metadata={"uid": UID}, **spec))
    return review_schedule(
        schedule,
        old,
        username=username,
        trusted={API},
        definitions=[
            JobDefinition.model_validate(obj)
            for obj in ([definition()] if definitions is None else definitions)
        ],
        queue_exists=lambda name: name in ("default", "batch"),
        secret_exists=lambda name: name in secrets,
        may_create_runs=lambda: may_create_runs,
    )


# --- whose fires ------------------------------------------------------------------------------------------


def test_a_new_schedule_is_its_creators_whatever_the_manifest_says() -> None:
    assert schedule_requester("admin", None, spec_of(requestedBy="admin"), "mallory", {API}) == "mallory"
    assert schedule_requester("ada", None, spec_of(requestedBy="ada"), API, {API}) == "ada"


def test_an_edit_of_what_fires_makes_them_the_editors() -> None:
    # A created it, B changes the job's data: the fires are B's from now on, and checked as B's runs.
    old = spec_of(requestedBy="alice")
    new = spec_of(requestedBy="alice", data={"depth": 3})
    assert schedule_requester("alice", old, new, "bob", {API}) == "bob"
    assert review(new, old, username="bob") == Denial(
        "RequesterSpoofed",
        "spec.requestedBy is 'alice' but must be 'bob': a schedule's fires are requested by whoever "
        "created it or last changed what it runs",
    )
    assert review({**new, "requestedBy": "bob"}, old, username="bob") is None


def test_pausing_or_trimming_history_keeps_the_requester_and_needs_no_right_to_run() -> None:
    old = spec_of(requestedBy="alice")
    paused = spec_of(requestedBy="alice", suspend=True, failedRunsHistoryLimit=0)
    assert only_restrains(old, paused)
    assert schedule_requester("alice", old, paused, "oncall", {API}) == "alice"
    assert review(paused, old, username="oncall", may_create_runs=False) is None
    # Resuming decides that fires happen again: the resumer's, and checked.
    assert not only_restrains(paused, old)
    assert schedule_requester("alice", paused, old, "oncall", {API}) == "oncall"
    denial = review({**old, "requestedBy": "oncall"}, paused, username="oncall", may_create_runs=False)
    assert denial is not None
    assert denial.reason == "NotAllowedToCreateRuns"


def test_an_author_who_may_not_create_runs_may_not_schedule_them() -> None:
    denial = review(spec_of(requestedBy="eve"), username="eve", may_create_runs=False)
    assert denial is not None
    assert (denial.reason, status_code(denial)) == ("NotAllowedToCreateRuns", 403)
    # The API checks its own users' permissions before it writes a schedule for them.
    assert review(spec_of(requestedBy="ada"), username=API, may_create_runs=False) is None


# --- what fires -----------------------------------------------------------------------------------------


def test_each_fire_is_checked_now_as_a_run_would_be() -> None:
    def reason(spec: dict[str, Any], **kw: Any) -> str | None:
        denial = review({"requestedBy": "alice", **spec}, **kw)
        return denial.reason if denial else None

    assert reason(spec_of()) is None
    assert reason(spec_of(job="nope.Nope")) == "JobNotFound"
    assert reason(spec_of(), definitions=[definition(enabled=False)]) == "JobDisabled"
    assert reason(spec_of(queue="gpu")) == "QueueNotAllowed"
    assert reason(spec_of(data={"depth": -1})) == "InvalidInputs"
    assert reason(spec_of(data={"depth": 1}), definitions=[definition(hasSensitiveVariables=True)]) == (
        "SensitiveInputsInSpec"
    )
    assert reason(spec_of(), definitions=[definition(approvalRequired=True)]) is None  # waits for approval
    bad_zone = spec_of(schedule={"interval": "Crontab", "crontab": "0 * * * *", "timeZone": "Nowhere/Land"})
    assert reason(bad_zone) == "InvalidSchedule"
    bad_cron = spec_of(schedule={"interval": "Crontab", "crontab": "0 25 * * *", "timeZone": "Etc/UTC"})
    assert reason(bad_cron) == "InvalidSchedule"


def test_a_sensitive_schedules_secret_must_not_exist_yet() -> None:
    sensitive = [definition(hasSensitiveVariables=True)]
    spec = spec_of(requestedBy="alice", inputsSecretRef="creds")
    assert review(spec, definitions=sensitive) is None
    denial = review(spec, definitions=sensitive, secrets=("creds",))
    assert denial is not None
    assert denial.reason == "InputsSecretExists"
    assert "jobplane.io/schedule-inputs" in denial.message
