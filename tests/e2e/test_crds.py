"""The generated CRDs in a real kube-apiserver: accepted, defaulted, documented, strict where they must be.

The schemas alone: these namespaces opt out of the admission webhook (tests/e2e/test_admission.py), whose
checks come on top of them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobplane_crds.v1alpha1 import JobDefinition, JobQueue, JobRun
from tests.cluster.cluster import Cluster

pytestmark = pytest.mark.cluster


def _create(cluster: Cluster, namespace: str, obj: dict[str, Any], *, check: bool = True) -> Any:
    return cluster.kubectl(
        "create", "-n", namespace, "-f", "-", "-o", "json", input=json.dumps(obj), check=check
    )


def _run(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "jobplane.io/v1alpha1", "kind": "JobRun", "metadata": {"name": name}, "spec": spec}


@pytest.mark.usefixtures("without_admission")
def test_a_jobrun_is_stored_with_schema_defaults_and_listed_with_its_columns(
    cluster: Cluster, namespace: str
) -> None:
    created = json.loads(_create(cluster, namespace, _run("hello", job="hello_world.HelloWorld")).stdout)
    assert created["spec"] == {
        "job": "hello_world.HelloWorld",
        "data": {},
        "dryRun": False,
        "cancel": False,
        "ignoreSingletonLock": False,
    }
    assert JobRun.model_validate(created).spec.job == "hello_world.HelloWorld"
    listed = cluster.kubectl("get", "jr", "-n", namespace).stdout.splitlines()
    assert listed[0].split() == ["NAME", "JOB", "QUEUE", "PHASE", "REASON", "AGE"]
    assert listed[1].split()[:2] == ["hello", "hello_world.HelloWorld"]


@pytest.mark.usefixtures("without_admission")
def test_reapplying_the_same_manifest_changes_nothing(cluster: Cluster, namespace: str) -> None:
    manifest = json.dumps(_run("gitops", job="hello_world.HelloWorld", data={"who": "Ada"}))
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=manifest)
    first = cluster.get_json("jobrun", "gitops", "-n", namespace)["metadata"]
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=manifest)
    second = cluster.get_json("jobrun", "gitops", "-n", namespace)["metadata"]
    assert (second["generation"], second["resourceVersion"]) == (
        first["generation"],
        first["resourceVersion"],
    )


@pytest.mark.usefixtures("without_admission")
def test_invalid_objects_are_refused_with_actionable_messages(cluster: Cluster, namespace: str) -> None:
    missing_job = _create(cluster, namespace, _run("nojob", data={"a": 1}), check=False)
    assert missing_job.returncode != 0
    assert "spec.job: Required value" in missing_job.stderr

    bad_queue = {
        "apiVersion": "jobplane.io/v1alpha1",
        "kind": "JobQueue",
        "metadata": {"name": "gpu"},
        "spec": {"concurrencyLimit": -1, "nodeSelector": {"pool": "gpu"}},
    }
    refused = _create(cluster, namespace, bad_queue, check=False)
    assert refused.returncode != 0
    assert "spec.concurrencyLimit" in refused.stderr
    assert "greater than or equal to 0" in refused.stderr

    unknown = _create(cluster, namespace, _run("typo", job="x.Y", dryrun=True), check=False)
    assert unknown.returncode != 0
    assert 'unknown field "spec.dryrun"' in unknown.stderr

    # Kueue's quota bounds a queue handed to it: a limit of its own beside it would be ignored, so refused.
    kueue = {**bad_queue, "spec": {"kueueLocalQueue": "team-a", "concurrencyLimit": 2}}
    refused = _create(cluster, namespace, kueue, check=False)
    assert refused.returncode != 0
    assert "spec.concurrencyLimit and spec.kueueLocalQueue exclude each other" in refused.stderr
    not_a_name = {**bad_queue, "spec": {"kueueLocalQueue": "Team A"}}
    refused = _create(cluster, namespace, not_a_name, check=False)
    assert refused.returncode != 0
    assert "spec.kueueLocalQueue" in refused.stderr


@pytest.mark.usefixtures("without_admission")
def test_what_a_run_is_cannot_change_but_it_can_be_cancelled(cluster: Cluster, namespace: str) -> None:
    _create(
        cluster, namespace, _run("pinned", job="hello_world.HelloWorld", requestedBy="ada", queue="default")
    )

    def patch(spec: dict[str, Any]) -> Any:
        body = json.dumps({"spec": spec})
        return cluster.kubectl(
            "patch", "jobrun", "pinned", "-n", namespace, "--type=merge", "-p", body, check=False
        )

    for spec, message in (
        ({"job": "other.Job"}, "job is immutable"),
        ({"data": {"who": "Eve"}}, "data is immutable"),
        ({"requestedBy": "eve"}, "requestedBy is immutable"),
        ({"queue": "gpu"}, "queue is immutable"),
        ({"dryRun": True}, "dryRun is immutable"),
    ):
        refused = patch(spec)
        assert refused.returncode != 0, spec
        assert message in refused.stderr
    assert patch({"cancel": True}).returncode == 0
    assert cluster.get_json("jobrun", "pinned", "-n", namespace)["spec"]["cancel"] is True


@pytest.mark.usefixtures("without_admission")
def test_status_is_a_subresource_people_cannot_write_through_spec_updates(
    cluster: Cluster, namespace: str
) -> None:
    _create(cluster, namespace, _run("status", job="hello_world.HelloWorld"))
    body = json.dumps({"status": {"phase": "Succeeded"}})
    cluster.kubectl("patch", "jobrun", "status", "-n", namespace, "--type=merge", "-p", body)
    assert "status" not in cluster.get_json("jobrun", "status", "-n", namespace)
    cluster.kubectl(
        "patch", "jobrun", "status", "-n", namespace, "--subresource=status", "--type=merge", "-p", body
    )
    assert cluster.get_json("jobrun", "status", "-n", namespace)["status"]["phase"] == "Succeeded"
    bad = json.dumps({"status": {"phase": "Exploded"}})
    refused = cluster.kubectl(
        "patch",
        "jobrun",
        "status",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        bad,
        check=False,
    )
    assert refused.returncode != 0
    assert "Unsupported value" in refused.stderr


@pytest.mark.usefixtures("jobplane_crds")
def test_kubectl_explain_documents_every_spec_field(cluster: Cluster) -> None:
    for kind, model in (("jobrun", JobRun), ("jobqueue", JobQueue), ("jobdefinition", JobDefinition)):
        explained = cluster.kubectl("explain", f"{kind}.spec").stdout
        spec_model = model.model_fields["spec"].annotation
        for field in spec_model.model_fields.values():  # type: ignore[union-attr]
            assert field.alias in explained, f"{kind}.spec.{field.alias}"
    assert "a JobDefinition name or a class path" in cluster.kubectl("explain", "jobrun.spec.job").stdout
