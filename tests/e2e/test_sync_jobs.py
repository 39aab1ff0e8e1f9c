"""`jobplane sync-jobs` against a real apiserver: created disabled, refreshed, never deleted, idempotent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jobplane_crds.v1alpha1 import JobDefinition
from tests.builders import job_definition, write_module
from tests.cluster.cluster import Cluster

pytestmark = pytest.mark.cluster

AUDIT = """
    from jobplane import IntegerVar, Job, register_jobs

    name = "Audits"

    class Audit(Job):
        depth = IntegerVar(min_value=0, default=1)

        class Meta:
            time_limit = 120

        def run(self, *, depth):
            return depth

    register_jobs(Audit)
"""

REPORT = """
    from jobplane import Job, register_jobs

    class Report(Job):
        def run(self):
            pass

    register_jobs(Report)
"""


def sync(cluster: Cluster, namespace: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "JOBPLANE_JOBS_ROOT": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "jobplane.cli", "sync-jobs", "--namespace", namespace],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def definitions(cluster: Cluster, namespace: str) -> dict[str, dict[str, Any]]:
    items = cluster.get_json("jobdefinitions", "-n", namespace)["items"]
    return {item["status"]["classPath"]: item for item in items if item.get("status")}


@pytest.mark.usefixtures("jobplane_crds")
def test_sync_jobs_creates_refreshes_and_uninstalls_without_deleting(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    root = tmp_path / "jobs"
    write_module(root, "sync_audit", AUDIT)
    write_module(root, "sync_report", REPORT)

    first = sync(cluster, namespace, root)
    assert "2 created, 0 updated" in first.stdout
    found = definitions(cluster, namespace)
    audit = found["sync_audit.Audit"]
    assert audit["spec"]["enabled"] is False
    assert audit["status"]["installed"] is True
    assert audit["status"]["effective"]["grouping"] == "Audits"
    assert audit["status"]["effective"]["timeLimit"] == 120
    assert audit["status"]["variablesSchema"]["properties"]["depth"]["minimum"] == 0
    assert JobDefinition.model_validate(audit).status is not None

    # Nothing changed in the code: nothing is written, not even a resourceVersion.
    versions = {path: obj["metadata"]["resourceVersion"] for path, obj in found.items()}
    again = sync(cluster, namespace, root)
    assert "0 created, 0 updated" in again.stdout
    assert {
        p: o["metadata"]["resourceVersion"] for p, o in definitions(cluster, namespace).items()
    } == versions

    # An admin enables the job and renames it; the next sync keeps both.
    name = audit["metadata"]["name"]
    patch = {"spec": {"enabled": True, "overrides": {"name": "Nightly audit"}}}
    cluster.kubectl("patch", "jobdefinition", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    sync(cluster, namespace, root)
    audit = definitions(cluster, namespace)["sync_audit.Audit"]
    assert audit["spec"]["enabled"] is True
    assert audit["status"]["effective"]["name"] == "Nightly audit"
    assert audit["status"]["code"]["name"] == "Audit"

    # A module that breaks keeps its jobs; a module that goes away uninstalls them, never deletes.
    write_module(root, "sync_audit", "raise RuntimeError('half-edited')")
    (root / "sync_report.py").unlink()
    broken = sync(cluster, namespace, root)
    assert "module sync_audit failed to import" in broken.stderr
    after = definitions(cluster, namespace)
    assert after["sync_audit.Audit"]["status"]["installed"] is True
    assert after["sync_report.Report"]["status"]["installed"] is False
    assert after["sync_report.Report"]["status"]["conditions"][0]["reason"] == "ClassNotFound"


@pytest.mark.usefixtures("jobplane_crds")
def test_a_definition_applied_before_its_class_exists_is_adopted(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    manifest = job_definition(
        "audit", enabled=True, classPath="sync_audit2.Audit", overrides={"hidden": True}
    )
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    root = tmp_path / "jobs"
    write_module(root, "sync_audit2", AUDIT)
    sync(cluster, namespace, root)
    adopted = cluster.get_json("jobdefinition", "audit", "-n", namespace)
    assert adopted["spec"]["enabled"] is True
    assert adopted["status"]["installed"] is True
    assert adopted["status"]["effective"]["hidden"] is True
    assert len(cluster.get_json("jobdefinitions", "-n", namespace)["items"]) == 1
