"""The CRD renderer: committed YAML matches the models, schemas are structural, every field is documented."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from jobplane_crds.render import CRDS_DIR, crd_manifest, render_all
from jobplane_crds.v1alpha1 import KINDS, JobRun, JobRunPhase
from jobplane_crds.v1alpha1.common import Resource


def test_committed_yaml_matches_the_models() -> None:
    rendered = render_all()
    committed = {path.name: path.read_text(encoding="utf-8") for path in CRDS_DIR.glob("*.yaml")}
    assert committed.keys() == rendered.keys()
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} drifted: run python -m jobplane_crds.render"


def _walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


def _open_api(kind: type[Resource]) -> dict[str, Any]:
    return crd_manifest(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind_name)
def test_schemas_are_structural(kind: type[Resource]) -> None:
    for path, node in _walk(_open_api(kind)):
        assert not {"$ref", "anyOf", "title"} & node.keys(), path
        untyped_ok = node.get("x-kubernetes-preserve-unknown-fields") or node.get(
            "x-kubernetes-int-or-string"
        )
        assert "type" in node or untyped_ok, f"{kind.kind_name}{path} has no type"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind_name)
def test_every_spec_and_status_field_is_documented(kind: type[Resource]) -> None:
    schema = _open_api(kind)
    for part in ("spec", "status"):
        # Direct fields: what `kubectl explain <kind>.spec` lists.
        for name, node in schema["properties"][part]["properties"].items():
            assert node.get("description"), f"{kind.kind_name}.{part}.{name} has no description"


def test_jobrun_crd_names_columns_status_and_immutability() -> None:
    manifest = crd_manifest(JobRun)
    spec = manifest["spec"]
    assert manifest["metadata"]["name"] == "jobruns.jobplane.io"
    assert spec["names"]["shortNames"] == ["jr"]
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]][:5] == [
        "Job",
        "Queue",
        "Phase",
        "Reason",
        "Age",
    ]
    run_spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert run_spec["properties"]["job"]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    rules = [rule["rule"] for rule in run_spec["x-kubernetes-validations"]]
    assert any("requestedBy" in rule for rule in rules)
    phases = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["phase"]["enum"]
    assert phases == [phase.value for phase in JobRunPhase]


def test_models_read_camel_case_manifests() -> None:
    manifest = yaml.safe_load(
        """
        apiVersion: jobplane.io/v1alpha1
        kind: JobRun
        metadata: {name: hello, namespace: default}
        spec:
          job: hello_world.HelloWorld
          data: {who: Ada}
          dryRun: true
        """
    )
    run = JobRun.model_validate(manifest)
    assert run.spec.dry_run is True
    assert run.spec.data == {"who": "Ada"}
    assert run.model_dump(by_alias=True, exclude_none=True)["spec"]["dryRun"] is True
