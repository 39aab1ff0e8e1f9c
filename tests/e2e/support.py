"""Helpers for the operator's e2e tests: the operator as a process, and a namespace to run jobs in."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.cluster.cluster import Cluster, wait_for
from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "jobs" / "examples"
KWOK_IMAGE = "localhost/kwok-does-not-pull:1"  # kwok nodes never pull; the real node is never chosen


@contextlib.contextmanager
def running_operator(
    cluster: Cluster, image: str, log_path: Path, kill_with: str = "SIGTERM", **settings: str
) -> Iterator[Path]:
    """`jobplane operator` as its own process, watching the whole cluster; yields its log file.

    It is stopped with ``kill_with`` when the block ends (SIGKILL to test a crash).
    """
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "JOBPLANE_OPERATOR_IMAGE": image,
        "JOBPLANE_OPERATOR_RESYNC_INTERVAL": "1",
        # Each operator of a test gets its own Lease unless the test shares one on purpose.
        "JOBPLANE_OPERATOR_LEASE_NAME": f"test-{uuid.uuid4().hex[:8]}",
        "JOBPLANE_OPERATOR_LEASE_DURATION": "4",
        "JOBPLANE_OPERATOR_METRICS_PORT": "0",
        "JOBPLANE_JOBS_ROOT": str(EXAMPLES),
        **{f"JOBPLANE_OPERATOR_{key.upper()}": value for key, value in settings.items()},
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jobplane.cli", "operator"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield log_path
    finally:
        process.send_signal(getattr(signal, kill_with))
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Workspace:
    """A namespace with the example jobs' definitions and helpers to run them through the operator."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.failed = True

    @classmethod
    def prepare(cls, cluster: Cluster, namespace: str, pool: str) -> Workspace:
        """The example jobs' definitions in the namespace, and a default queue on the given pool."""
        ws = cls(cluster, namespace)
        ws.sync_jobs()
        ws.apply("JobQueue", "default", {"nodeSelector": {"pool": pool}})
        return ws

    def sync_jobs(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), "JOBPLANE_JOBS_ROOT": str(EXAMPLES)}
        subprocess.run(
            [sys.executable, "-m", "jobplane.cli", "sync-jobs", "--namespace", self.namespace],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def definition_name(self, class_path: str) -> str:
        for item in self.cluster.get_json("jobdefinitions", "-n", self.namespace)["items"]:
            if item["status"]["classPath"] == class_path:
                return str(item["metadata"]["name"])
        raise AssertionError(f"no definition for {class_path}")

    def enable(self, class_path: str, **overrides: Any) -> None:
        patch: dict[str, Any] = {"spec": {"enabled": True}}
        if overrides:
            patch["spec"]["overrides"] = overrides
        self.cluster.kubectl(
            "patch",
            "jobdefinition",
            self.definition_name(class_path),
            "-n",
            self.namespace,
            "--type=merge",
            "-p",
            json.dumps(patch),
        )

    def apply(
        self, kind: str, name: str, spec: dict[str, Any], *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        body = {"apiVersion": "jobplane.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
        return self.cluster.kubectl(
            "apply", "--server-side", "-n", self.namespace, "-f", "-", input=json.dumps(body), check=check
        )

    def run(self, name: str, job: str, **spec: Any) -> None:
        self.apply("JobRun", name, {"job": job, **spec})

    def try_run(self, name: str, job: str, **spec: Any) -> subprocess.CompletedProcess[str]:
        """Apply a JobRun that admission may refuse; the answer says whether it did."""
        return self.apply("JobRun", name, {"job": job, **spec}, check=False)

    def run_with_inputs(self, name: str, job: str, inputs: dict[str, Any], secret: str) -> None:
        """A run of a job with sensitive variables, as a kubectl user makes one (README): the run names a
        Secret that does not exist yet, then the Secret is created of type jobplane.io/run-inputs, owned by
        the run."""
        self.run(name, job, inputsSecretRef=secret)
        uid = self.get("jobrun", name)["metadata"]["uid"]
        owner = {"apiVersion": "jobplane.io/v1alpha1", "kind": "JobRun", "name": name, "uid": uid}
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, "ownerReferences": [{**owner, "controller": True}]},
            "type": "jobplane.io/run-inputs",
            "stringData": {"data.json": json.dumps(inputs)},
        }
        self.cluster.kubectl("create", "-n", self.namespace, "-f", "-", input=json.dumps(body))

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return dict(self.cluster.get_json(kind, name, "-n", self.namespace))

    def wait_phase(self, name: str, *phases: str, timeout: float = 60) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            status = self.get("jobrun", name).get("status") or {}
            return status if status.get("phase") in phases else None

        return wait_for(f"jobrun {name} in {phases}", check, timeout=timeout)

    def jobs(self) -> list[dict[str, Any]]:
        return list(self.cluster.get_json("jobs", "-n", self.namespace)["items"])


@contextlib.contextmanager
def reporting(ws: Workspace, operator_log: Path) -> Iterator[Workspace]:
    """Yield the workspace; if the test did not mark it passed, print the operator's log tail."""
    yield ws
    if ws.failed:
        print(operator_log.read_text()[-6000:])
