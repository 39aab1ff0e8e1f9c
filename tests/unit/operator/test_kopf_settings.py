"""The operator's kopf settings: Jobs filtered by the server, kopf's diff base, namespaces taken as given."""

from __future__ import annotations

import copy
from typing import Any

import kopf
from kopf._cogs.structs.references import Resource

from jobplane_operator.handlers import configure_kopf
from tests.builders import job_run

ACCEPTED = {
    "type": "Accepted",
    "status": "True",
    "reason": "Accepted",
    "lastTransitionTime": "2026-11-25T11:00:00Z",
}


def _settings(namespaces: list[str] | None = None) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    configure_kopf(settings, namespaces or [])
    return settings


def test_named_namespaces_are_taken_as_given_and_the_whole_cluster_is_still_scanned() -> None:
    # Listing namespaces, which the chart's operator may not, cost every operator pod its first minute.
    assert _settings(["ops", "jobs"]).scanning.disabled is True
    assert _settings([]).scanning.disabled is False


def test_only_jobplanes_jobs_and_run_pods_are_watched_and_the_rest_unfiltered() -> None:
    selectors = _settings().watching.label_selectors
    jobs = Resource("batch", "v1", "jobs", kind="Job", namespaced=True)
    runs = Resource("jobplane.io", "v1alpha1", "jobruns", kind="JobRun", namespaced=True)
    pods = Resource("", "v1", "pods", kind="Pod", namespaced=True)
    assert list(selectors.collect(jobs)) == ["app.kubernetes.io/managed-by=jobplane"]
    assert list(selectors.collect(pods)) == ["app.kubernetes.io/managed-by=jobplane,jobplane.io/run-uid"]
    assert list(selectors.collect(runs)) == []


def test_an_idle_objects_worker_lets_its_last_event_go_within_a_second() -> None:
    # kopf's default (5 s) held thousands of whole Jobs and pods in a burst (bench/scale.py).
    assert _settings().queueing.idle_timeout <= 1.0


def _run() -> dict[str, Any]:
    return job_run(
        "r1",
        namespace="ops",
        metadata={
            "uid": "u1",
            "resourceVersion": "7",
            "labels": {"team": "net"},
            "annotations": {
                "note": "kept",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "jobplane.io/last-handled-configuration": "{}",
            },
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        },
        job="audit.Audit",
        data={"site": "ams1"},
        status={"phase": "Running", "conditions": [ACCEPTED]},
    )


def test_the_diff_base_is_the_essence_kopf_builds_without_copying_status() -> None:
    ours = _settings().persistence.diffbase_storage
    kopfs = kopf.AnnotationsDiffBaseStorage(prefix="jobplane.io", key="last-handled-configuration")
    raw = _run()
    untouched = copy.deepcopy(raw)
    body = kopf.Body(raw)  # type: ignore[arg-type]
    essence = ours.build(body=body)
    assert essence == kopfs.build(body=body)
    assert essence == {
        "spec": {"job": "audit.Audit", "data": {"site": "ams1"}},
        "metadata": {"labels": {"team": "net"}, "annotations": {"note": "kept"}},
    }
    # A copy: changing the essence leaves the object alone, and the object is left as it was.
    essence["spec"]["data"]["site"] = "lon1"  # type: ignore[index]
    assert raw == untouched
    # Handlers on status fields need them: those go the way kopf builds them.
    assert ours.build(body=body, extra_fields=["status.phase"]) == kopfs.build(
        body=body, extra_fields=["status.phase"]
    )
