"""A job's effective metadata: the admin's overrides over what the code declares, field by field."""

from __future__ import annotations

from jobplane_crds.v1alpha1.jobdefinition import effective_metadata, effective_of


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
