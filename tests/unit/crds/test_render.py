"""The CRD renderer: committed YAML matches the models, schemas are structural, every field is documented."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from jobplane_crds.render import CRDS_DIR, crd_manifest, render_all
from jobplane_crds.v1alpha1 import KINDS, JobRepository, JobRun, JobRunPhase
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


def _repository_schema() -> dict[str, Any]:
    return _open_api(JobRepository)["properties"]["spec"]  # type: ignore[no-any-return]


def test_jobrepository_crd_names_columns_and_an_immutable_slug() -> None:
    manifest = crd_manifest(JobRepository)
    assert manifest["metadata"]["name"] == "jobrepositories.jobplane.io"
    assert manifest["spec"]["names"]["shortNames"] == ["jrepo"]
    version = manifest["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert list(columns)[:5] == ["URL", "Ref", "Commit", "Synced", "Age"]
    assert columns["Synced"] == '.status.conditions[?(@.type=="Synced")].status'
    spec = _repository_schema()
    assert spec["required"] == ["url", "slug"]
    assert spec["properties"]["slug"]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    conditions = _open_api(JobRepository)["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_jobrepository_defaults_are_in_the_schema_so_a_reapply_changes_nothing() -> None:
    properties = _repository_schema()["properties"]
    assert properties["ref"]["default"] == "main"
    assert properties["interval"]["default"] == "5m"
    assert properties["suspend"]["default"] is False
    assert "default" not in properties["credentialsSecretRef"]
    # What the apiserver stores equals what the model makes of the same manifest.
    spec = JobRepository.model_validate(
        {"metadata": {"name": "ops"}, "spec": {"url": "https://git.example.com/ops.git", "slug": "ops"}}
    ).spec
    assert spec.model_dump(by_alias=True, exclude_none=True) == {
        "url": "https://git.example.com/ops.git",
        "ref": "main",
        "slug": "ops",
        "interval": "5m",
        "suspend": False,
    }


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://git.example.com/ops.git", False),
        ("https://bot@git.example.com/ops.git", False),
        ("https://git.example.com:8443/ops.git", False),
        ("ssh://git@git.example.com:22/ops.git", False),
        ("git@github.com:org/ops.git", False),
        ("file:///srv/git/ops.git", False),
        ("https://bot:s3cret@git.example.com/ops.git", True),
        ("https://:token@git.example.com/ops.git", True),
        ("HTTP://bot:pw@git.example.com/ops.git", True),
    ],
)
def test_a_url_holding_a_password_is_refused_at_admission(url: str, refused: bool) -> None:
    (rule,) = _repository_schema()["properties"]["url"]["x-kubernetes-validations"]
    pattern = re.search(r"matches\('(.*)'\)", rule["rule"])
    assert pattern is not None
    # CEL's matches() is RE2, a subset of Python's re for a pattern like this one.
    assert bool(re.search(pattern.group(1), url)) is refused
    assert "credentialsSecretRef" in rule["message"]


@pytest.mark.parametrize("slug", ["9ops", "ops-jobs", "ops.jobs", ""])
def test_a_slug_must_be_a_python_identifier(slug: str) -> None:
    with pytest.raises(ValidationError):
        JobRepository.model_validate(
            {"metadata": {"name": "x"}, "spec": {"url": "https://h/r.git", "slug": slug}}
        )


@pytest.mark.parametrize(
    ("interval", "valid"), [("5m", True), ("1h30m", True), ("45s", True), ("5", False), ("1d", False)]
)
def test_the_interval_is_a_go_duration(interval: str, valid: bool) -> None:
    manifest = {
        "metadata": {"name": "x"},
        "spec": {"url": "https://h/r.git", "slug": "x", "interval": interval},
    }
    if valid:
        assert JobRepository.model_validate(manifest).spec.interval == interval
    else:
        with pytest.raises(ValidationError):
            JobRepository.model_validate(manifest)
