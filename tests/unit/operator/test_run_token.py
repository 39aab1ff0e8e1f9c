"""Run tokens on the operator's side: the settings, the token Secret plan_job plans, its life in runs.py."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from jobplane.settings import Settings
from jobplane_crds.podcontract import PodContract
from jobplane_crds.runtoken import run_token, verify_run_token
from jobplane_crds.v1alpha1 import JobRun
from jobplane_operator.reconcile.jobrun import (
    RUN_TOKEN_MOUNT,
    JobPlan,
    job_name_for,
    plan_job,
)
from jobplane_operator.runs import reconcile_run
from jobplane_operator.settings import OperatorSettings
from tests.builders import job_definition, job_run

UID = "6f1f6c2e-3f0a-4d3e-9d7e-1b2c3d4e5f60"
KEY = b"k" * 32
API_URL = "http://jobplane-api.jobplane.svc:8000"

ENV_API_URL = PodContract.env_name("api_url")
ENV_RUN_NAMESPACE = PodContract.env_name("run_namespace")
ENV_RUN_TOKEN_FILE = PodContract.env_name("run_token_file")


def make_run(**spec: Any) -> JobRun:
    return JobRun.of(
        job_run("nightly-audit", namespace="ops", metadata={"uid": UID}, **{"job": "audit.Audit", **spec})
    )


def plan(run: JobRun | None = None, **options: Any) -> JobPlan:
    return plan_job(
        run or make_run(data={"site": "ams1"}),
        class_path="audit.Audit",
        hard_time_limit=600,
        soft_time_limit=300,
        has_sensitive_variables=False,
        queue=None,
        default_image="img",
        **options,
    )


def env_of(job: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


# --- settings ---


def test_an_api_url_needs_a_token_key_and_says_which() -> None:
    with pytest.raises(ValidationError, match="JOBPLANE_OPERATOR_RUN_TOKEN_KEY"):
        OperatorSettings(api_url=API_URL)
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        OperatorSettings(api_url=API_URL, run_token_key="short")
    with pytest.raises(ValidationError, match="only one"):
        OperatorSettings(run_token_key="k" * 32, run_token_key_file=Path("/nowhere"))
    assert OperatorSettings().api_url is None
    assert OperatorSettings(api_url=API_URL, run_token_key="k" * 32).token_key() == KEY


def test_the_key_may_come_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("k" * 32 + "\n")
    assert OperatorSettings(api_url=API_URL, run_token_key_file=key_file).token_key() == KEY
    with pytest.raises(ValidationError, match="cannot read"):
        OperatorSettings(api_url=API_URL, run_token_key_file=tmp_path / "missing")


def test_the_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBPLANE_OPERATOR_API_URL", API_URL)
    monkeypatch.setenv("JOBPLANE_OPERATOR_RUN_TOKEN_KEY", "k" * 32)
    settings = OperatorSettings()
    assert settings.api_url == API_URL
    assert "k" * 32 not in repr(settings)


# --- plan_job ---


def test_without_an_api_url_nothing_about_reporting_is_planned() -> None:
    planned = plan()
    env = env_of(planned.job)
    assert planned.token_secret is None
    assert ENV_API_URL not in env
    assert ENV_RUN_TOKEN_FILE not in env
    assert env[ENV_RUN_NAMESPACE] == "ops"
    volumes = [v["name"] for v in planned.job["spec"]["template"]["spec"]["volumes"]]
    assert volumes == ["tmp"]
    assert "fsGroup" not in planned.job["spec"]["template"]["spec"]["securityContext"]


def test_with_an_api_url_the_run_gets_a_token_secret_it_owns() -> None:
    planned = plan(api_url=API_URL, run_token_key=KEY)
    job, secret = planned.job, planned.token_secret
    assert secret is not None
    assert secret["metadata"]["name"] == f"{job_name_for('nightly-audit', UID)}-token"
    assert secret["metadata"]["namespace"] == "ops"
    assert secret["metadata"]["labels"] == job["metadata"]["labels"]
    assert secret["metadata"]["ownerReferences"] == job["metadata"]["ownerReferences"]
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("JobRun", UID, True)
    assert (secret["kind"], secret["type"]) == ("Secret", "Opaque")
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert token == run_token(KEY, UID)
    assert verify_run_token(KEY, UID, token)


def test_the_token_is_mounted_read_only_and_never_in_env_or_args() -> None:
    planned = plan(api_url=API_URL, run_token_key=KEY)
    assert planned.token_secret is not None
    pod = planned.job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    secret_name = planned.token_secret["metadata"]["name"]
    assert volumes["run-token"]["secret"] == {"secretName": secret_name, "defaultMode": 0o400}
    assert mounts["run-token"] == {"name": "run-token", "mountPath": RUN_TOKEN_MOUNT, "readOnly": True}
    env = env_of(planned.job)
    assert env[ENV_API_URL] == API_URL
    assert env[ENV_RUN_TOKEN_FILE] == "/var/run/jobplane/run-token/token"
    # The image's user reads the root-owned Secret file through its group.
    assert pod["securityContext"]["fsGroup"] == 10001
    assert run_token(KEY, UID) not in json.dumps(planned.job)


def test_a_run_that_reports_cannot_be_planned_without_the_key() -> None:
    with pytest.raises(ValueError, match="run-token key"):
        plan(api_url=API_URL)


# --- runs.py: the Secret comes before the Job and goes when the run ends ---


class FakeClients:
    """Records every Kubernetes call reconcile_run makes; holds one enabled definition."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.definition = job_definition(
            "audit-abc123",
            namespace="ops",
            enabled=True,
            overrides={},
            status={
                "classPath": "audit.Audit",
                "installed": True,
                "code": {"taskQueues": ["default"], "hasSensitiveVariables": False},
                "variablesSchema": {"type": "object"},
            },
        )

    def list_job_definitions(self, namespace: str) -> list[dict[str, Any]]:
        self.calls.append(("list_job_definitions", namespace))
        return [self.definition]

    def get_job_queue(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("get_job_queue", name))
        return None

    def create_secret(self, namespace: str, body: dict[str, Any]) -> None:
        self.calls.append(("create_secret", body["metadata"]["name"]))

    def create_job(self, namespace: str, body: dict[str, Any]) -> bool:
        self.calls.append(("create_job", body["metadata"]["name"]))
        created = body["metadata"]["name"] not in self.jobs
        self.jobs.setdefault(body["metadata"]["name"], body)
        return created

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("get_job", name))
        return self.jobs.get(name)

    def delete_job(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_job", name))
        self.jobs.pop(name, None)

    def delete_secret(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_secret", name))

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.calls.append(("list_pods", selector))
        return []

    def patch_run_status(self, namespace: str, name: str, status: dict[str, Any], rv: str | None) -> bool:
        self.calls.append(("patch_run_status", status["phase"]))
        return True


def stored_run(**status: Any) -> dict[str, Any]:
    run = make_run().model_dump(by_alias=True, exclude_none=True, mode="json")
    run["metadata"].update({"resourceVersion": "1", "generation": 1})
    if status:
        run["status"] = status
    return run


def reconcile(clients: FakeClients, obj: dict[str, Any], settings: OperatorSettings) -> None:
    reconcile_run(clients, obj, settings, Settings())  # type: ignore[arg-type]


def kinds(clients: FakeClients) -> list[str]:
    return [name for name, _ in clients.calls]


def test_without_an_api_url_a_run_makes_the_same_calls_as_before() -> None:
    clients = FakeClients()
    reconcile(clients, stored_run(), OperatorSettings())
    # The default queue has no concurrency limit and pods do not report to the API: the Job is the one
    # write (its events write the status).
    assert kinds(clients) == ["list_job_definitions", "get_job_queue", "create_job"]
    job_name = job_name_for("nightly-audit", UID)
    cancelled = stored_run(phase="Pending", jobName=job_name)
    cancelled["spec"]["cancel"] = True
    clients.calls.clear()
    reconcile(clients, cancelled, OperatorSettings())
    assert "delete_secret" not in kinds(clients)


def test_with_an_api_url_the_secret_is_created_before_the_job_and_deleted_at_the_end() -> None:
    settings = OperatorSettings(api_url=API_URL, run_token_key="k" * 32)
    clients = FakeClients()
    reconcile(clients, stored_run(), settings)
    job_name = job_name_for("nightly-audit", UID)
    # The token before the Job, so its pod never waits on a missing volume; the status follows the Job.
    assert clients.calls[2:] == [("create_secret", f"{job_name}-token"), ("create_job", job_name)]
    env = env_of(clients.jobs[job_name])
    assert env[ENV_API_URL] == API_URL
    cancelled = stored_run(phase="Pending", jobName=job_name)
    cancelled["spec"]["cancel"] = True
    clients.calls.clear()
    reconcile(clients, cancelled, settings)
    assert ("delete_secret", f"{job_name}-token") in clients.calls
