"""The API's Kubernetes side on a real kube-apiserver: the gateway's cache and writes, and the run mirror.

No operator runs here: the tests write JobDefinition and JobRun statuses through the status subresource,
as the operator would. Nor does admission (its namespaces opt out): the runs here name jobs that no
operator could start, to test the gateway and the mirror alone.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from jobplane_api.kube import KubeGateway, KubeInvalid, KubeNotFound
from jobplane_api.services.mirror import RunMirror
from jobplane_api.settings import ApiSettings
from jobplane_store.database import create_store_engine, make_sessionmaker, upgrade
from jobplane_store.models import JobResult
from tests.cluster.cluster import Cluster, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("jobplane_crds", "without_admission")]

CLASS_PATH = "hello_world.HelloWorld"


def _kubectl_json(cluster: Cluster, namespace: str, *args: str, body: dict[str, Any] | None = None) -> Any:
    proc = cluster.kubectl(
        *args, "-n", namespace, "-o", "json", input=json.dumps(body) if body is not None else None
    )
    return json.loads(proc.stdout)


def _create(cluster: Cluster, namespace: str, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = {"apiVersion": "jobplane.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return dict(_kubectl_json(cluster, namespace, "create", "-f", "-", body=body))


def _patch(
    cluster: Cluster, namespace: str, kind: str, name: str, patch: dict[str, Any], *, status: bool
) -> None:
    extra = ["--subresource=status"] if status else []
    cluster.kubectl("patch", kind, name, "-n", namespace, *extra, "--type=merge", "-p", json.dumps(patch))


def _definition(
    cluster: Cluster, namespace: str, name: str, class_path: str, code_name: str
) -> dict[str, Any]:
    created = _create(cluster, namespace, "JobDefinition", name, {"enabled": True})
    _patch(
        cluster,
        namespace,
        "jobdefinition",
        name,
        {"status": {"classPath": class_path, "installed": True, "code": {"name": code_name}}},
        status=True,
    )
    return created


@pytest.fixture
def gateway(cluster: Cluster, namespace: str) -> Iterator[KubeGateway]:
    from kubernetes import config

    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
    kube = KubeGateway(ApiSettings(namespace=namespace), api_client=api_client)
    kube.start()
    try:
        assert kube.wait_synced(30)
        yield kube
    finally:
        kube.stop()


# --- the gateway ------------------------------------------------------------------------------------
def test_the_cache_follows_definitions_and_queues(
    cluster: Cluster, namespace: str, gateway: KubeGateway
) -> None:
    assert gateway.definitions() == []
    created = _definition(cluster, namespace, "hello", CLASS_PATH, "Hello World")
    uid = created["metadata"]["uid"]

    found = wait_for(
        "the definition in the cache", lambda: gateway.find_definition("Hello World"), timeout=15
    )
    assert found.metadata.uid == uid
    assert [d.metadata.name for d in gateway.definitions()] == ["hello"]

    # An admin renames the job with kubectl: the cache follows.
    _patch(
        cluster,
        namespace,
        "jobdefinition",
        "hello",
        {"spec": {"overrides": {"name": "Greeter"}}},
        status=False,
    )
    wait_for("the renamed definition", lambda: gateway.find_definition("Greeter"), timeout=15)
    assert gateway.find_definition("Hello World") is None

    _create(cluster, namespace, "JobQueue", "gpu", {"nodeSelector": {"pool": "gpu"}})
    queue = wait_for("the queue in the cache", lambda: gateway.queue("gpu"), timeout=15)
    assert queue.spec.node_selector == {"pool": "gpu"}
    assert [q.metadata.name for q in gateway.queues()] == ["gpu"]

    cluster.kubectl("delete", "jobdefinition", "hello", "-n", namespace)
    wait_for("the definition gone", lambda: gateway.find_definition(uid) is None, timeout=15)
    assert gateway.definitions() == []


def test_find_definition_tries_uid_then_display_name_then_object_name_then_class_path(
    cluster: Cluster, namespace: str, gateway: KubeGateway
) -> None:
    # "b" is the display name of the first and the object name of the second: the display name wins.
    first = _definition(cluster, namespace, "a", "mod_a.JobA", "b")
    second = _definition(cluster, namespace, "b", "mod_b.JobB", "Job B")
    wait_for(
        "both definitions discovered",
        lambda: (
            all(d.status is not None and d.status.class_path for d in gateway.definitions())
            and len(gateway.definitions()) == 2
        ),
        timeout=15,
    )

    def name_of(key: str) -> str | None:
        found = gateway.find_definition(key)
        return None if found is None else str(found.metadata.name)

    assert name_of(first["metadata"]["uid"]) == "a"
    assert name_of(second["metadata"]["uid"]) == "b"
    assert name_of("b") == "a"
    assert name_of("Job B") == "b"
    assert name_of("mod_b.JobB") == "b"
    assert name_of("mod_a.JobA") == "a"
    assert name_of("nothing") is None
    assert gateway.resolve_definition("b", namespace).metadata.name == "b"  # type: ignore[union-attr]


def test_a_spec_patch_is_seen_at_once_and_refusals_are_domain_errors(
    cluster: Cluster, namespace: str, gateway: KubeGateway
) -> None:
    _definition(cluster, namespace, "hello", CLASS_PATH, "Hello World")
    wait_for("the definition in the cache", lambda: gateway.find_definition(CLASS_PATH), timeout=15)

    updated = gateway.patch_definition_spec("hello", {"enabled": False, "overrides": {"grouping": "Demo"}})
    assert updated.spec.enabled is False
    # No wait: the very next read sees the write.
    cached = gateway.find_definition(CLASS_PATH)
    assert cached is not None
    assert (cached.spec.enabled, cached.spec.overrides.grouping) == (False, "Demo")
    assert cached.status.class_path == CLASS_PATH  # type: ignore[union-attr]  # a spec patch leaves status alone

    # A merge patch with null removes an override.
    gateway.patch_definition_spec("hello", {"overrides": {"grouping": None}})
    removed = gateway.find_definition(CLASS_PATH)
    assert removed is not None
    assert removed.spec.overrides.grouping is None
    # Gone from the object, not stored as null: the model parsed no grouping at all.
    assert "grouping" not in removed.spec.overrides.model_fields_set

    with pytest.raises(KubeInvalid):
        gateway.patch_definition_spec("hello", {"overrides": {"softTimeLimit": -1}})
    with pytest.raises(KubeNotFound):
        gateway.patch_definition_spec("missing", {"enabled": True})

    gateway.delete_definition("hello")
    assert gateway.find_definition(CLASS_PATH) is None
    with pytest.raises(KubeNotFound):
        gateway.delete_definition("hello")


def test_runs_and_inputs_secrets_are_created_cancelled_and_removed(
    cluster: Cluster, namespace: str, gateway: KubeGateway
) -> None:
    secret = "hello-inputs-1"
    run = gateway.create_run(
        namespace=namespace,
        generate_name="hello-",
        spec={"job": CLASS_PATH, "inputsSecretRef": secret, "requestedBy": "ada"},
        labels={"jobplane.io/job": "hello"},
    )
    name, uid = run["metadata"]["name"], run["metadata"]["uid"]
    assert name.startswith("hello-")
    assert uuid.UUID(uid)
    assert run["spec"]["cancel"] is False
    # Made after its run, already owned by it and of the one type the operator mounts.
    gateway.create_inputs_secret(run=run, name=secret, data_json='{"pw": "s"}')
    stored = cluster.get_json("secret", secret, "-n", namespace)
    assert stored["type"] == "jobplane.io/run-inputs"
    assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "jobplane"
    (owner,) = stored["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("JobRun", name, uid, True)
    assert set(stored["data"]) == {"data.json"}

    assert gateway.get_run(namespace, name)["metadata"]["uid"] == uid
    cancelled = gateway.cancel_run(namespace, name)
    assert cancelled["spec"]["cancel"] is True
    with pytest.raises(KubeNotFound):
        gateway.cancel_run(namespace, "missing")
    with pytest.raises(KubeNotFound):
        gateway.get_run(namespace, "missing")

    gateway.delete_run(namespace, name)
    gateway.delete_run(namespace, name)  # already gone: no error
    assert cluster.kubectl("get", "jobrun", name, "-n", namespace, check=False).returncode != 0
    # Its inputs Secret goes with it (owned by the run): the API never deletes a Secret itself.
    wait_for(
        "the inputs Secret collected",
        lambda: cluster.kubectl("get", "secret", secret, "-n", namespace, check=False).returncode != 0,
        timeout=60,
    )


# --- the mirror -------------------------------------------------------------------------------------
@pytest.fixture
def store(postgres_url: str) -> Iterator[Engine]:
    engine = create_store_engine(postgres_url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _result(engine: Engine, uid: str) -> JobResult | None:
    with make_sessionmaker(engine)() as session:
        return session.get(JobResult, uuid.UUID(uid))


def _wait_status(engine: Engine, uid: str, status: str) -> JobResult:
    def check() -> JobResult | None:
        row = _result(engine, uid)
        return row if row is not None and row.status == status else None

    return wait_for(f"result {uid} in {status}", check, timeout=20)


@pytest.mark.postgres
def test_the_mirror_follows_kubectl_runs_to_their_end(
    cluster: Cluster, namespace: str, gateway: KubeGateway, store: Engine
) -> None:
    definition = _definition(cluster, namespace, "hello", CLASS_PATH, "Hello World")
    wait_for("the definition in the cache", lambda: gateway.find_definition(CLASS_PATH), timeout=15)
    mirror = RunMirror(ApiSettings(namespace=namespace), make_sessionmaker(store), gateway)
    mirror.start()
    try:
        assert mirror.wait_synced(30)
        runs = {
            key: _create(cluster, namespace, "JobRun", key, {"job": "hello", "data": {"who": key}, **extra})
            for key, extra in (("ok", {"requestedBy": "ada"}), ("oom", {}), ("stop", {"queue": "default"}))
        }
        uids = {key: run["metadata"]["uid"] for key, run in runs.items()}
        for key in runs:
            row = _wait_status(store, uids[key], "PENDING")
            assert (row.name, row.job_class_path, row.run_name, row.run_namespace) == (
                "Hello World",
                "hello",
                key,
                namespace,
            )
            assert row.task_kwargs == {"who": key}
            assert row.job_model_id == uuid.UUID(definition["metadata"]["uid"])
        assert _result(store, uids["ok"]).user == "ada"  # type: ignore[union-attr]

        started = "2025-01-02T03:04:10Z"
        _patch(
            cluster,
            namespace,
            "jobrun",
            "ok",
            {
                "status": {
                    "phase": "Running",
                    "reason": "Started",
                    "classPath": CLASS_PATH,
                    "startTime": started,
                }
            },
            status=True,
        )
        row = _wait_status(store, uids["ok"], "STARTED")
        assert (row.job_class_path, row.reason) == (CLASS_PATH, "Started")
        assert row.date_started is not None

        done = {"completionTime": "2025-01-02T03:05:00Z", "classPath": CLASS_PATH}
        _patch(
            cluster,
            namespace,
            "jobrun",
            "ok",
            {
                "status": {
                    "phase": "Succeeded",
                    "reason": "Completed",
                    "result": {"result": '"Hello ok"'},
                    **done,
                }
            },
            status=True,
        )
        _patch(
            cluster,
            namespace,
            "jobrun",
            "oom",
            {
                "status": {
                    "phase": "Failed",
                    "reason": "OOMKilled",
                    "message": "The job used more than its memory limit",
                    **done,
                }
            },
            status=True,
        )
        _patch(cluster, namespace, "jobrun", "stop", {"spec": {"cancel": True}}, status=False)
        _patch(
            cluster,
            namespace,
            "jobrun",
            "stop",
            {"status": {"phase": "Cancelled", "reason": "Cancelled", **done}},
            status=True,
        )

        ok = _wait_status(store, uids["ok"], "SUCCESS")
        assert ok.result == "Hello ok"
        assert ok.date_done is not None
        oom = _wait_status(store, uids["oom"], "FAILURE")
        assert oom.result == {
            "exc_type": "OOMKilled",
            "exc_message": "The job used more than its memory limit",
        }
        assert oom.reason == "OOMKilled"
        stop = _wait_status(store, uids["stop"], "REVOKED")
        assert stop.queue == "default"

        # A finished run that goes back to Running in Kubernetes (it never should) changes nothing.
        _patch(cluster, namespace, "jobrun", "ok", {"status": {"phase": "Running"}}, status=True)
        time.sleep(1)
        assert _result(store, uids["ok"]).status == "SUCCESS"  # type: ignore[union-attr]
    finally:
        mirror.stop()
    # Everything is mirrored already: a full pass writes nothing.
    assert mirror.sync_once() == 0


@pytest.mark.postgres
def test_sync_once_mirrors_runs_made_while_no_mirror_watched(
    cluster: Cluster, namespace: str, gateway: KubeGateway, store: Engine
) -> None:
    run = _create(cluster, namespace, "JobRun", "late", {"job": CLASS_PATH, "dryRun": True})
    _patch(
        cluster,
        namespace,
        "jobrun",
        "late",
        {"status": {"phase": "Failed", "reason": "JobNotFound", "message": "No JobDefinition named it"}},
        status=True,
    )
    mirror = RunMirror(ApiSettings(namespace=namespace), make_sessionmaker(store), gateway)
    assert mirror.sync_once() == 1
    row = _result(store, run["metadata"]["uid"])
    assert row is not None
    assert (row.status, row.name, row.dry_run, row.job_model_id) == ("FAILURE", CLASS_PATH, True, None)
    assert row.result == {"exc_type": "JobNotFound", "exc_message": "No JobDefinition named it"}
    assert mirror.sync_once() == 0
