"""`jobplane run-pod` in real pods from the project image: logs, exit codes, termination messages, secrets."""

from __future__ import annotations

import base64
import hashlib
import json
import textwrap
from typing import Any

import pytest

from tests.cluster.cluster import Cluster
from tests.cluster.helpers import apply, job, job_pods, terminated, wait_job_finished, wait_pod_terminated

pytestmark = pytest.mark.cluster

RUN_UID = "3d0f6c1e-5b7a-4c2d-9e8f-0a1b2c3d4e5f"
SECRET = "correct-Horse-battery-Staple-7"

# A job with sensitive variables, mounted from a ConfigMap as a JOBS_ROOT: no bundled example has one.
SENSITIVE_JOBS = textwrap.dedent(
    """
    import hashlib

    from jobplane import Job, StringVar, register_jobs


    class UseToken(Job):
        token = StringVar()

        def run(self, *, token):
            self.logger.info("using a token of %d characters", len(token))
            return {"sha256": hashlib.sha256(token.encode()).hexdigest()}


    register_jobs(UseToken)
    """
)


def run_pod_job(
    name: str,
    image: str,
    class_path: str,
    *,
    env: dict[str, str] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    volume_mounts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Job as the operator will make it: `jobplane run-pod`, run identity in env, non-root, no retries."""
    manifest = job(
        name,
        image=image,
        command=["jobplane", "run-pod", class_path],
        active_deadline_seconds=60,
        volumes=volumes,
        volume_mounts=volume_mounts,
    )
    pod_spec = manifest["spec"]["template"]["spec"]
    # fsGroup lets the image's user read a Secret file mounted with mode 0440.
    pod_spec["securityContext"] = {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001}
    variables = {"JOBPLANE_RUN_NAME": name, "JOBPLANE_RUN_UID": RUN_UID, **(env or {})}
    pod_spec["containers"][0]["env"] = [{"name": k, "value": v} for k, v in variables.items()]
    return manifest


def run_to_end(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """Apply the Job, wait for it; returns its terminal condition type, the pod and the pod's log."""
    name = manifest["metadata"]["name"]
    apply(cluster, namespace, manifest)
    condition = wait_job_finished(cluster, namespace, name, timeout=120)
    pod = wait_pod_terminated(cluster, namespace, name)
    logs = cluster.kubectl("logs", pod["metadata"]["name"], "-n", namespace).stdout
    return pod, logs, str(condition["type"])


def events(logs: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in logs.splitlines() if line.startswith("{")]


def summary(pod: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(terminated(pod)["message"]))


def test_hello_world_succeeds_with_json_logs_and_a_summary(
    cluster: Cluster, namespace: str, project_image: str
) -> None:
    manifest = run_pod_job(
        "hello",
        project_image,
        "hello_world.HelloWorld",
        env={"JOBPLANE_RUN_DATA": json.dumps({"who": "Kubernetes"})},
    )
    pod, logs, condition = run_to_end(cluster, namespace, manifest)
    assert condition == "Complete"
    assert pod["status"]["phase"] == "Succeeded"
    assert terminated(pod)["exitCode"] == 0
    lines = events(logs)
    assert lines[0] == {
        "type": "started",
        "job": "hello_world.HelloWorld",
        "run": "hello",
        "run_uid": RUN_UID,
    }
    assert {"level": "success", "grouping": "run", "message": "Hello, Kubernetes!"}.items() <= lines[
        -3
    ].items()
    assert lines[-1]["type"] == "result"
    assert summary(pod) == {
        "status": "SUCCESS",
        "result": '{"greeting": "Hello, Kubernetes!"}',
        "error": None,
    }


def test_a_job_that_raises_exits_1_with_the_exception(
    cluster: Cluster, namespace: str, project_image: str
) -> None:
    manifest = run_pod_job(
        "raises",
        project_image,
        "lifecycle_hooks.LifecycleHooks",
        env={"JOBPLANE_RUN_DATA": json.dumps({"raise_error": True})},
    )
    pod, logs, condition = run_to_end(cluster, namespace, manifest)
    assert condition == "Failed"
    assert terminated(pod)["exitCode"] == 1
    message = summary(pod)
    assert message["status"] == "FAILURE"
    assert message["error"] == "RuntimeError: raise_error was set"
    assert any(e.get("message", "").startswith("The run failed: RuntimeError") for e in events(logs))


def test_soft_time_limit_runs_the_cleanup(cluster: Cluster, namespace: str, project_image: str) -> None:
    manifest = run_pod_job("slow", project_image, "soft_time_limit.SlowCleanup")
    pod, logs, condition = run_to_end(cluster, namespace, manifest)
    assert condition == "Failed"
    assert terminated(pod)["exitCode"] == 1
    messages = [e["message"] for e in events(logs) if e["type"] == "log"]
    assert any(m.startswith("Soft time limit reached after") for m in messages)
    assert any(m.startswith("Removed /tmp/jobplane-slow-cleanup-") for m in messages)
    assert summary(pod)["error"] == "SoftTimeLimitExceeded: Soft time limit of 1 s exceeded"


def test_bad_data_exits_2_with_the_errors(cluster: Cluster, namespace: str, project_image: str) -> None:
    manifest = run_pod_job(
        "bad-data", project_image, "hello_world.HelloWorld", env={"JOBPLANE_RUN_DATA": '{"who": 5}'}
    )
    pod, logs, condition = run_to_end(cluster, namespace, manifest)
    assert condition == "Failed"
    assert terminated(pod)["exitCode"] == 2
    assert summary(pod) == {
        "status": "FAILURE",
        "result": None,
        "error": "JobDataError: who: Enter a string.",
    }
    assert json.loads(logs) == {"errors": {"who": ["Enter a string."]}}  # stderr: nothing ran, no events


def test_sensitive_inputs_come_from_a_secret_file_and_show_nowhere(
    cluster: Cluster, namespace: str, project_image: str
) -> None:
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "sensitive-jobs"},
        "data": {"sensitive_jobs.py": SENSITIVE_JOBS},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "run-input"},
        "data": {"data.json": base64.b64encode(json.dumps({"token": SECRET}).encode()).decode()},
    }
    apply(cluster, namespace, configmap)
    # create, not apply: apply would copy the object into its last-applied annotation.
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(secret))
    manifest = run_pod_job(
        "sensitive",
        project_image,
        "sensitive_jobs.UseToken",
        env={
            "JOBPLANE_JOBS_ROOT": "/opt/test-jobs",
            "JOBPLANE_RUN_DATA_FILE": "/run/jobplane/input/data.json",
        },
        volumes=[
            {"name": "jobs", "configMap": {"name": "sensitive-jobs"}},
            {"name": "input", "secret": {"secretName": "run-input", "defaultMode": 0o440}},
        ],
        volume_mounts=[
            {"name": "jobs", "mountPath": "/opt/test-jobs", "readOnly": True},
            {"name": "input", "mountPath": "/run/jobplane/input", "readOnly": True},
        ],
    )
    pod, logs, condition = run_to_end(cluster, namespace, manifest)
    assert condition == "Complete", logs
    # The job got the value: its result is the value's hash.
    assert events(logs)[-1]["result"] == {"sha256": hashlib.sha256(SECRET.encode()).hexdigest()}
    pod_json = cluster.kubectl("get", "pod", pod["metadata"]["name"], "-n", namespace, "-o", "json").stdout
    job_json = cluster.kubectl("get", "job", "sensitive", "-n", namespace, "-o", "json").stdout
    encoded = base64.b64encode(SECRET.encode()).decode()
    for where, text in (("pod", pod_json), ("job", job_json), ("logs", logs)):
        assert SECRET not in text, where
        assert encoded not in text, where
    # Nor in any container argument or env value (the spec of the pods that ran).
    for ran in job_pods(cluster, namespace, "sensitive"):
        for container in ran["spec"]["containers"]:
            assert all(SECRET not in arg for arg in container.get("command", []) + container.get("args", []))
            assert all(SECRET not in str(var.get("value", "")) for var in container.get("env", []))
