"""Builders and waits for tests on the local cluster: Job manifests, Job/pod conditions with deadlines."""

from __future__ import annotations

import json
from typing import Any

from tests.cluster.cluster import Cluster, wait_for

# Pods on the real node use the cluster's pod network (as any pod), and never pull: images are imported into
# the node's containerd beforehand.
REAL_NODE_SELECTOR = {"pool": "default"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def job(
    name: str,
    *,
    image: str = "localhost/kwok-does-not-pull:1",
    command: list[str] | None = None,
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict[str, str]] | None = None,
    annotations: dict[str, str] | None = None,
    resources: dict[str, Any] | None = None,
    active_deadline_seconds: int | None = None,
    grace_seconds: int | None = None,
    volumes: list[dict[str, Any]] | None = None,
    volume_mounts: list[dict[str, Any]] | None = None,
    run_as_root: bool = False,
) -> dict[str, Any]:
    """A batch/v1 Job with one container, no retries, and the knobs the cluster tests need."""
    container: dict[str, Any] = {"name": "main", "image": image, "imagePullPolicy": "Never"}
    if command:
        container["command"] = command
    if resources:
        container["resources"] = resources
    if volume_mounts:
        container["volumeMounts"] = volume_mounts
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "nodeSelector": node_selector if node_selector is not None else REAL_NODE_SELECTOR,
        "containers": [container],
    }
    if tolerations:
        pod_spec["tolerations"] = tolerations
    if volumes:
        pod_spec["volumes"] = volumes
    if grace_seconds is not None:
        pod_spec["terminationGracePeriodSeconds"] = grace_seconds
    if run_as_root:
        pod_spec["securityContext"] = {"runAsUser": 0}
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {"metadata": {"annotations": annotations or {}}, "spec": pod_spec},
    }
    if active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = active_deadline_seconds
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}


def apply(cluster: Cluster, namespace: str, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def job_condition(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    """The Job's terminal condition (Complete or Failed) once it is True, else None."""
    status = cluster.get_json("job", name, "-n", namespace).get("status", {})
    for cond in status.get("conditions", []):
        if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
            return dict(cond)
    return None


def wait_job_finished(cluster: Cluster, namespace: str, name: str, timeout: float = 90) -> dict[str, Any]:
    return wait_for(
        f"job {namespace}/{name} to finish",
        lambda: job_condition(cluster, namespace, name),
        timeout=timeout,
        interval=0.5,
    )


def job_pods(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return list(
        cluster.get_json("pods", "-n", namespace, "-l", f"batch.kubernetes.io/job-name={name}")["items"]
    )


def wait_pod_terminated(
    cluster: Cluster, namespace: str, job_name: str, timeout: float = 90
) -> dict[str, Any]:
    """The Job's single pod once its container has terminated; returns the pod."""

    def check() -> dict[str, Any] | None:
        for pod in job_pods(cluster, namespace, job_name):
            statuses = pod.get("status", {}).get("containerStatuses", [])
            if (
                statuses
                and "terminated" in statuses[0].get("state", {})
                and pod["status"].get("phase") in ("Succeeded", "Failed")
            ):
                return pod
        return None

    return wait_for(f"pod of job {namespace}/{job_name} to terminate", check, timeout=timeout, interval=0.5)


def terminated(pod: dict[str, Any]) -> dict[str, Any]:
    return dict(pod["status"]["containerStatuses"][0]["state"]["terminated"])
