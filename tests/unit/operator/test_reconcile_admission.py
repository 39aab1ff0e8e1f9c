"""What admission lets a new JobRun claim: its requester, its job and inputs, its Secret (pure functions)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobplane_crds.v1alpha1 import INPUTS_SECRET_TYPE, JobDefinition, JobRun
from jobplane_operator.reconcile.admission import (
    Denial,
    force_denial,
    pods_denial,
    requester_of,
    review_run,
    status_code,
)
from jobplane_operator.reconcile.jobrun import inputs_secret_refusal
from tests.builders import job_run
from tests.unit.operator.test_reconcile_jobrun import UID, definition

API = "system:serviceaccount:jobplane:jobplane-api"


def new_run(**spec: Any) -> JobRun:
    return JobRun.of(job_run("r1", namespace="ops", metadata={"uid": UID}, **{"job": "audit.Audit", **spec}))


def review(
    run: JobRun,
    *,
    username: str = "alice",
    definitions: list[dict[str, Any]] | None = None,
    queues: tuple[str, ...] = ("default", "batch"),
    secrets: tuple[str, ...] = (),
) -> Denial | None:
    return review_run(
        run,
        username=username,
        trusted={API},
        definitions=[
            JobDefinition.model_validate(obj)
            for obj in ([definition()] if definitions is None else definitions)
        ],
        queue_exists=lambda name: name in queues,
        secret_exists=lambda name: name in secrets,
    )


# --- the requester ----------------------------------------------------------------------------------------


def test_the_requester_is_the_kubernetes_user_whatever_the_manifest_says() -> None:
    assert requester_of("admin", "alice", {API}) == "alice"
    assert requester_of(None, "alice", {API}) == "alice"


def test_only_the_trusted_api_identity_keeps_the_requester_it_names() -> None:
    assert requester_of("ada", API, {API}) == "ada"
    assert requester_of(None, API, {API}) == API  # a run the API makes for nobody is its own


def test_a_spoofed_requester_that_reaches_validation_is_refused() -> None:
    denial = review(new_run(requestedBy="admin"), username="alice")
    assert denial is not None
    assert denial.reason == "RequesterSpoofed"
    assert status_code(denial) == 403
    assert review(new_run(requestedBy="alice"), username="alice") is None
    assert review(new_run(requestedBy="ada"), username=API) is None


# --- the job and its inputs, as the API and the operator decide them ----------------------------------------


@pytest.mark.parametrize(
    ("spec", "definitions", "reason", "code"),
    [
        ({"job": "nosuch.Job"}, None, "JobNotFound", 404),
        ({}, [definition(enabled=False)], "JobDisabled", 403),
        ({}, [definition(installed=False)], "JobNotInstalled", 405),
        ({"queue": "gpu"}, None, "QueueNotAllowed", 400),
        ({"data": {"depth": -1}}, None, "InvalidInputs", 400),
        ({"inputsSecretRef": "x"}, None, "InputsSecretNotAllowed", 400),
    ],
)
def test_a_run_that_could_not_start_is_refused_before_it_is_stored(
    spec: dict[str, Any], definitions: list[dict[str, Any]] | None, reason: str, code: int
) -> None:
    denial = review(new_run(requestedBy="alice", **spec), definitions=definitions)
    assert denial is not None
    assert (denial.reason, status_code(denial)) == (reason, code)
    assert str(denial).startswith(f"{reason}: ")


def test_invalid_inputs_are_refused_with_the_api_s_error_document() -> None:
    denial = review(new_run(requestedBy="alice", data={"depth": -1, "extra": 1}))
    assert denial is not None
    errors = json.loads(denial.message)["errors"]
    assert set(errors) == {"depth", "extra"}


def test_a_queue_the_job_may_use_but_that_does_not_exist_is_refused() -> None:
    denial = review(new_run(requestedBy="alice", queue="batch"), queues=("default",))
    assert denial is not None
    assert denial.reason == "QueueNotFound"


def test_a_run_of_an_approval_required_job_is_admitted_to_wait_for_its_approval() -> None:
    assert review(new_run(requestedBy="alice"), definitions=[definition(approvalRequired=True)]) is None


def test_forcing_a_singleton_takes_the_verb_force_beside_create() -> None:
    asked: list[str] = []

    def may(answer: bool) -> Any:
        return lambda: asked.append("sar") or answer

    forced = new_run(ignoreSingletonLock=True)
    denial = force_denial(forced, username="ci", namespace="ops", trusted=(API,), may_force=may(False))
    assert denial is not None
    assert (denial.reason, status_code(denial)) == ("NotAllowedToForce", 403)
    assert "verb force on jobruns" in denial.message
    assert (
        force_denial(forced, username="oncall", namespace="ops", trusted=(API,), may_force=may(True)) is None
    )
    assert asked == ["sar", "sar"]
    # The API checked its user's run permission; a run that is not forced asks nothing.
    assert force_denial(forced, username=API, namespace="ops", trusted=(API,), may_force=may(False)) is None
    assert (
        force_denial(new_run(), username="ci", namespace="ops", trusted=(API,), may_force=may(False)) is None
    )
    assert asked == ["sar", "sar"]


def test_a_good_run_is_admitted() -> None:
    assert review(new_run(requestedBy="alice", data={"depth": 0}, queue="batch")) is None


# --- the inputs Secret ------------------------------------------------------------------------------------


def sensitive() -> list[dict[str, Any]]:
    return [definition(hasSensitiveVariables=True)]


def test_a_run_naming_an_existing_secret_is_refused_at_admission() -> None:
    run = new_run(requestedBy="alice", inputsSecretRef="api-database")
    denial = review(run, definitions=sensitive(), secrets=("api-database",))
    assert denial is not None
    assert denial.reason == "InputsSecretExists"
    assert "ownerReference" in denial.message


def test_a_run_naming_a_secret_yet_to_be_made_is_admitted() -> None:
    run = new_run(requestedBy="alice", inputsSecretRef="r1-inputs")
    assert review(run, definitions=sensitive()) is None


def secret(type_: str = INPUTS_SECRET_TYPE, **owner: Any) -> dict[str, Any]:
    reference = {"kind": "JobRun", "name": "r1", "uid": UID, "controller": True, **owner}
    return {"type": type_, "metadata": {"name": "r1-inputs", "ownerReferences": [reference]}}


@pytest.mark.parametrize(
    ("found", "reason"),
    [
        (None, "InputsSecretNotFound"),
        (secret(type_="Opaque"), "InputsSecretNotOwned"),
        (secret(uid="someone-else"), "InputsSecretNotOwned"),
        (secret(controller=False), "InputsSecretNotOwned"),
        (secret(kind="ConfigMap"), "InputsSecretNotOwned"),
        ({"type": INPUTS_SECRET_TYPE, "metadata": {"name": "r1-inputs"}}, "InputsSecretNotOwned"),
    ],
)
def test_the_operator_takes_inputs_only_from_a_typed_secret_its_run_owns(
    found: dict[str, Any] | None, reason: str
) -> None:
    refusal = inputs_secret_refusal(found, ref="r1-inputs", run_uid=UID)
    assert refusal is not None
    assert refusal.reason == reason
    assert inputs_secret_refusal(secret(), ref="r1-inputs", run_uid=UID) is None


# --- queues and repositories start pods ----------------------------------------------------------------


def test_a_queue_or_repository_needs_its_author_to_be_allowed_to_create_pods() -> None:
    denial = pods_denial("JobQueue", False, "ops", "alice")
    assert denial is not None
    assert denial.reason == "NotAllowedToCreatePods"
    assert status_code(denial) == 403
    assert "'alice'" in denial.message
    assert "'ops'" in denial.message
    assert pods_denial("JobQueue", True, "ops", "alice") is None
