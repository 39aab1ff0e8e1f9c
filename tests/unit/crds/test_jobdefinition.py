"""A job's effective metadata: the admin's overrides over what the code declares, field by field."""

from __future__ import annotations

from datetime import UTC, datetime

from jobplane_crds.v1alpha1.jobdefinition import JobDefinition, effective_metadata, effective_of


def test_effective_metadata_ignores_unset_overrides() -> None:
    code = {"name": "A", "hidden": False}
    assert effective_metadata(code, {"name": None, "hidden": True}) == {
        **dict.fromkeys(effective_metadata(code, None)),
        "name": "A",
        "hidden": True,
    }


def test_effective_of_reads_a_definition_object_and_ignores_its_stale_status_effective() -> None:
    definition = {
        "spec": {"overrides": {"timeLimit": 30, "taskQueues": ["gpu"]}},
        "status": {"code": {"name": "A", "timeLimit": 600}, "effective": {"name": "old", "timeLimit": 1}},
    }
    effective = effective_of(definition)
    assert (effective["name"], effective["timeLimit"], effective["taskQueues"]) == ("A", 30, ["gpu"])
    assert effective_of({"spec": {}}) == dict.fromkeys(effective_metadata({}, None))
    assert effective_of(None) == {}


def test_the_models_effective_metadata_is_the_objects() -> None:
    raw = {
        "metadata": {"name": "a", "creationTimestamp": "2026-01-02T03:04:05Z", "resourceVersion": "7"},
        "spec": {"overrides": {"timeLimit": 30, "taskQueues": [], "hidden": None}, "classPath": "m.Spec"},
        "status": {"code": {"name": "A", "timeLimit": 600, "hidden": True}, "effective": {"name": "old"}},
    }
    definition = JobDefinition.model_validate(raw)
    assert definition.effective().model_dump(by_alias=True) == effective_of(raw)
    assert (definition.class_path, definition.variables_schema) == ("m.Spec", {})
    assert JobDefinition().effective().model_dump(by_alias=True) == effective_of({"spec": {}})
    assert definition.metadata.resource_version == "7"
    assert definition.metadata.creation_timestamp == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    discovered = JobDefinition.model_validate(
        {**raw, "status": {"classPath": "m.Found", "variablesSchema": {"a": 1}}}
    )
    assert (discovered.class_path, discovered.variables_schema) == ("m.Found", {"a": 1})


def test_of_parses_an_object_once() -> None:
    definition = JobDefinition.model_validate({"metadata": {"name": "a"}})
    assert JobDefinition.of(definition) is definition
    assert JobDefinition.of({"metadata": {"name": "a"}}).metadata.name == "a"
