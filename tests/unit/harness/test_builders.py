"""The custom-resource builders of tests/builders.py: bodies hold what a test gives, the CRD's schema takes
them, and only `unvalidated` makes one the models refuse."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from jobplane_crds.render import crd_manifest
from jobplane_crds.v1alpha1 import JobDefinition, JobQueue, JobRepository, JobRun, JobSchedule
from jobplane_crds.v1alpha1.common import Resource
from tests.builders import job_definition, job_queue, job_repository, job_run, job_schedule

BUILT: list[tuple[type[Resource], dict[str, Any]]] = [
    (JobRun, job_run("r1", namespace="ops", job="audit.Audit", data={"site": "ams1"}, dry_run=True)),
    (JobDefinition, job_definition("audit-audit", enabled=True, overrides={"timeLimit": 30})),
    (JobQueue, job_queue("gpu", node_selector={"pool": "gpu"}, concurrencyLimit=2)),
    (JobRepository, job_repository("netops", url="https://git.example.com/netops.git", slug="netops")),
    (
        JobSchedule,
        job_schedule("nightly", job="audit.Audit", schedule={"interval": "Crontab", "crontab": "0 3 * * *"}),
    ),
]


@pytest.mark.parametrize(("kind", "body"), BUILT, ids=lambda value: getattr(value, "kind_name", ""))
def test_each_body_is_one_the_crds_schema_accepts(kind: type[Resource], body: dict[str, Any]) -> None:
    schema = crd_manifest(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    jsonschema.validate(body, schema)
    assert body["apiVersion"] == "jobplane.io/v1alpha1"
    assert body["kind"] == kind.kind_name
    assert kind.of(body).model_dump(mode="json", by_alias=True, exclude_unset=True) == body


def test_a_body_holds_the_fields_given_in_camel_case_and_none_of_the_defaults() -> None:
    body = job_run(
        "r1",
        namespace="ops",
        metadata={"uid": "u1", "labels": {"team": "net"}, "resourceVersion": "7"},
        job="audit.Audit",
        dry_run=True,
        status={"phase": "Running", "jobName": "r1-abc"},
    )
    assert body == {
        "apiVersion": "jobplane.io/v1alpha1",
        "kind": "JobRun",
        "metadata": {
            "name": "r1",
            "namespace": "ops",
            "uid": "u1",
            "labels": {"team": "net"},
            "resourceVersion": "7",
        },
        "spec": {"job": "audit.Audit", "dryRun": True},
        "status": {"phase": "Running", "jobName": "r1-abc"},
    }
    assert job_queue("default") == {
        "apiVersion": "jobplane.io/v1alpha1",
        "kind": "JobQueue",
        "metadata": {"name": "default"},
        "spec": {},
    }


@pytest.mark.parametrize(
    ("build", "fields"),
    [
        (job_run, {"job": "audit.Audit", "dryrun": True}),  # misspelt
        (job_run, {"data": {}}),  # no job
        (job_queue, {"concurrencyLimit": -1}),
        (job_repository, {"url": "https://h/r.git", "slug": "net-ops"}),
        (job_schedule, {"job": "a.A", "schedule": {"interval": "Fortnightly"}}),
        (job_definition, {"overrides": {"timeLimit": "soon"}}),
    ],
)
def test_a_field_the_model_refuses_is_refused_by_the_builder(
    build: Callable[..., dict[str, Any]], fields: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        build("x", **fields)


def test_a_status_the_model_refuses_is_refused_too() -> None:
    with pytest.raises(ValidationError):
        job_run("r1", job="a.A", status={"conditions": [{"type": "Accepted", "status": "True"}]})


def test_unvalidated_fields_are_merged_into_nested_objects_after_validation() -> None:
    body = job_run(
        "r1",
        job="audit.Audit",
        data={"site": "ams1"},
        unvalidated={"spec": {"data": "not an object", "retries": 3}, "status": {"phase": "Exploded"}},
    )
    assert body["spec"] == {"job": "audit.Audit", "data": "not an object", "retries": 3}
    assert body["status"] == {"phase": "Exploded"}
    with pytest.raises(ValidationError):
        JobRun.of(body)
