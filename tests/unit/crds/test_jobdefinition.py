"""A job's effective metadata: the admin's overrides over what the code declares, field by field."""

from __future__ import annotations

from datetime import UTC, datetime

from jobplane_crds.v1alpha1.jobdefinition import OVERRIDABLE, JobDefinition, JobDefinitionSpec


def test_effective_metadata_is_overrides_over_code_not_a_stale_status_effective() -> None:
    definition = JobDefinition.model_validate(
        {
            "spec": {"overrides": {"timeLimit": 30, "taskQueues": ["gpu"], "name": None, "hidden": True}},
            "status": {
                "code": {"name": "A", "timeLimit": 600, "hidden": False},
                "effective": {"name": "old", "timeLimit": 1},
            },
        }
    )
    effective = definition.effective().model_dump(by_alias=True)
    assert effective == {
        **dict.fromkeys(OVERRIDABLE),
        "name": "A",
        "hidden": True,
        "timeLimit": 30,
        "taskQueues": ["gpu"],
    }
    assert JobDefinition().effective().model_dump(by_alias=True) == dict.fromkeys(OVERRIDABLE)


def test_a_copy_computes_its_own_effective_metadata() -> None:
    definition = JobDefinition.model_validate({"status": {"code": {"name": "A"}}})
    assert definition.effective().name == "A"
    renamed = definition.model_copy(
        update={"spec": JobDefinitionSpec.model_validate({"overrides": {"name": "B"}})}
    )
    assert (renamed.effective().name, definition.effective().name) == ("B", "A")


def test_the_models_effective_metadata_is_the_objects() -> None:
    raw = {
        "metadata": {"name": "a", "creationTimestamp": "2026-01-02T03:04:05Z", "resourceVersion": "7"},
        "spec": {"overrides": {"timeLimit": 30, "taskQueues": [], "hidden": None}, "classPath": "m.Spec"},
        "status": {"code": {"name": "A", "timeLimit": 600, "hidden": True}, "effective": {"name": "old"}},
    }
    definition = JobDefinition.model_validate(raw)
    assert definition.effective().model_dump(by_alias=True) == {
        **dict.fromkeys(OVERRIDABLE),
        "name": "A",
        "timeLimit": 30,
        "taskQueues": [],
        "hidden": True,
    }
    assert (definition.class_path, definition.variables_schema) == ("m.Spec", {})
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
