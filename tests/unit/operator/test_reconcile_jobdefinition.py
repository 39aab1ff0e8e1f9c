"""Sync planning for JobDefinitions: created disabled, refreshed in status only, never deleted, idempotent."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from jobplane_operator.reconcile.jobdefinition import definition_name, effective_metadata, plan_sync

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
IMAGE = {"type": "image"}


def describe(class_path: str, **code: Any) -> dict[str, Any]:
    module, _, cls = class_path.rpartition(".")
    return {
        "classPath": class_path,
        "moduleName": module,
        "jobClassName": cls,
        "supportsDryrun": False,
        "code": {"name": cls, "grouping": module, "timeLimit": 0.0, **code},
        "variablesSchema": {"type": "object", "properties": {}},
    }


def stored(
    name: str, spec: dict[str, Any], status: dict[str, Any] | None = None, generation: int = 1
) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": name, "generation": generation}, "spec": spec}
    if status is not None:
        obj["status"] = copy.deepcopy(status)
    return obj


def apply_plan(
    existing: list[dict[str, Any]],
    discovered: list[dict[str, Any]],
    failed: tuple[str, ...] = (),
    now: datetime = NOW,
) -> tuple[Any, list[dict[str, Any]]]:
    """Plan, then return the plan and the objects as the apiserver would hold them afterwards."""
    plan = plan_sync(existing, discovered, failed_modules=failed, source=IMAGE, now=now)
    objects = {o["metadata"]["name"]: copy.deepcopy(o) for o in existing}
    for name, spec in plan.create.items():
        objects[name] = stored(name, spec)
    for name, status in plan.status.items():
        objects[name]["status"] = copy.deepcopy(status)
    return plan, list(objects.values())


def test_definition_names_are_dns_subdomains_and_unique_per_class_path() -> None:
    name = definition_name("inventory.populate_location.PopulateLocation")
    assert name.startswith("inventory.populate-location.populatelocation-")
    assert definition_name("a.Job") != definition_name("a.JOB")
    assert len(definition_name("m." + "X" * 400)) <= 253


def test_new_jobs_are_created_disabled_with_code_metadata_in_status() -> None:
    plan, _ = apply_plan([], [describe("hello.Hello", timeLimit=30.0)])
    (name,) = plan.create
    assert plan.create[name] == {"spec": {"enabled": False}}
    status = plan.status[name]
    assert status["installed"] is True
    assert status["classPath"] == "hello.Hello"
    assert status["source"] == IMAGE
    assert status["effective"]["timeLimit"] == 30.0
    assert status["conditions"][0]["reason"] == "Discovered"


def test_a_second_sync_plans_nothing_even_later() -> None:
    _, objects = apply_plan([], [describe("hello.Hello")])
    plan, _ = apply_plan(objects, [describe("hello.Hello")], now=NOW + timedelta(hours=1))
    assert plan.empty


def test_admin_overrides_are_kept_and_win_in_effective_values() -> None:
    _, objects = apply_plan([], [describe("hello.Hello", name="Hello")])
    objects[0]["spec"] = {"enabled": True, "overrides": {"name": "Say hello", "timeLimit": None}}
    objects[0]["metadata"]["generation"] = 2
    plan, after = apply_plan(objects, [describe("hello.Hello", name="Hello", timeLimit=5.0)])
    assert plan.create == {}
    assert after[0]["spec"] == {"enabled": True, "overrides": {"name": "Say hello", "timeLimit": None}}
    assert after[0]["status"]["effective"]["name"] == "Say hello"
    assert after[0]["status"]["effective"]["timeLimit"] == 5.0
    assert after[0]["status"]["code"]["name"] == "Hello"
    assert after[0]["status"]["observedGeneration"] == 2


def test_a_vanished_class_is_uninstalled_not_deleted_and_comes_back() -> None:
    _, objects = apply_plan([], [describe("a.One"), describe("b.Two")])
    _, after = apply_plan(objects, [describe("a.One")])
    gone = next(o for o in after if o["status"]["classPath"] == "b.Two")
    assert gone["status"]["installed"] is False
    assert gone["status"]["conditions"][0]["reason"] == "ClassNotFound"
    assert gone["status"]["code"]["name"] == "Two"  # what the code last said is kept
    assert len(after) == 2
    again, _ = apply_plan(after, [describe("a.One")])
    assert again.empty
    _, restored = apply_plan(after, [describe("a.One"), describe("b.Two")])
    assert next(o for o in restored if o["status"]["classPath"] == "b.Two")["status"]["installed"] is True


def test_jobs_of_a_module_that_failed_to_import_are_left_alone() -> None:
    _, objects = apply_plan([], [describe("a.One"), describe("broken.sub.Two")])
    plan, after = apply_plan(objects, [describe("a.One")], failed=("broken",))
    assert plan.empty
    assert all(o["status"]["installed"] for o in after)


def test_a_definition_applied_before_discovery_is_adopted_by_class_path() -> None:
    gitops = stored("my-audit", {"enabled": True, "classPath": "audit.Audit", "overrides": {"hidden": True}})
    plan, after = apply_plan([gitops], [describe("audit.Audit")])
    assert plan.create == {}
    assert after[0]["metadata"]["name"] == "my-audit"
    assert after[0]["spec"]["enabled"] is True
    assert after[0]["status"]["effective"]["hidden"] is True


def test_definitions_of_another_source_are_not_uninstalled() -> None:
    repo_job = stored(
        "repo-job", {}, {"classPath": "repo.jobs.X", "source": {"type": "repository"}, "installed": True}
    )
    plan, _ = apply_plan([repo_job], [])
    assert plan.empty


def test_effective_metadata_ignores_unset_overrides() -> None:
    code = {"name": "A", "hidden": False}
    assert effective_metadata(code, {"name": None, "hidden": True}) == {
        **dict.fromkeys(effective_metadata(code, None)),
        "name": "A",
        "hidden": True,
    }
