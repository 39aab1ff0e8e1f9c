"""Sync planning for JobDefinitions: created disabled, refreshed in status only, never deleted, idempotent;
each source (the image, each repository) touching only its own."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from jobplane_crds.v1alpha1 import JobDefinition
from jobplane_crds.v1alpha1.jobdefinition import JobSource
from jobplane_operator.reconcile import jobdefinition
from jobplane_operator.reconcile.jobdefinition import definition_name

# The planner reads definitions through their model; these tests keep them as the apiserver stores them.


def models(objects: list[dict[str, Any]]) -> list[JobDefinition]:
    return [JobDefinition.model_validate(obj) for obj in objects]


def source_of(source: dict[str, Any] | None) -> JobSource | None:
    return JobSource.model_validate(source) if source is not None else None


def plan_sync(existing: list[dict[str, Any]], discovered: list[dict[str, Any]], **kwargs: Any) -> Any:
    return jobdefinition.plan_sync(
        models(existing), discovered, **{**kwargs, "source": source_of(kwargs["source"])}
    )


def plan_forget(objects: list[dict[str, Any]], repository: str, *, now: datetime) -> dict[str, Any]:
    return jobdefinition.plan_forget(models(objects), repository, now=now)


def plan_adoptions(objects: list[dict[str, Any]], *, now: datetime) -> list[jobdefinition.Adoption]:
    return jobdefinition.plan_adoptions(models(objects), now=now)


def plan_name_conflicts(objects: list[dict[str, Any]], *, now: datetime) -> dict[str, Any]:
    return jobdefinition.plan_name_conflicts(models(objects), now=now)


def same_source(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    return jobdefinition.same_source(source_of(a), source_of(b))


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
    for name, body in plan.create.items():
        objects[name] = stored(name, body["spec"])
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


def test_the_written_status_names_every_effective_field_as_the_stored_form_always_has() -> None:
    # Read through the model, written as before: the discovery as found, every overridable field in
    # effective (an override left out follows the code), the source as given.
    spec = {"classPath": "hello.Hello", "overrides": {"timeLimit": 5.0, "hidden": None}}
    existing = [stored("hello", spec, generation=3)]
    plan = plan_sync(existing, [describe("hello.Hello")], failed_modules=(), source=IMAGE, now=NOW)
    assert list(plan.status["hello"]) == [
        *describe("hello.Hello"),
        "source",
        "installed",
        "effective",
        "observedGeneration",
        "conditions",
    ]
    assert plan.status["hello"]["source"] == {"type": "image"}
    assert plan.status["hello"]["effective"] == {
        "name": "Hello",
        "grouping": "hello",
        "description": None,
        "approvalRequired": None,
        "dryrunDefault": None,
        "hasSensitiveVariables": None,
        "hidden": None,
        "isSingleton": None,
        "softTimeLimit": None,
        "timeLimit": 5.0,
        "taskQueues": None,
    }
    assert plan.status["hello"]["conditions"] == [
        {
            "type": "Installed",
            "status": "True",
            "reason": "Discovered",
            "message": "The class was found in the job code",
            "observedGeneration": 3,
            "lastTransitionTime": "2026-11-25T12:00:00Z",
        }
    ]


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


# --- sources: the image and each repository install and uninstall only their own jobs ---

C1, C2 = "1" * 40, "2" * 40


def repo_source(name: str, commit: str) -> dict[str, Any]:
    return {"type": "repository", "repository": name, "commit": commit}


def sync_from(
    existing: list[dict[str, Any]],
    discovered: list[dict[str, Any]],
    source: dict[str, Any],
    failed: tuple[str, ...] = (),
    now: datetime = NOW,
) -> tuple[Any, list[dict[str, Any]]]:
    plan = plan_sync(existing, discovered, failed_modules=failed, source=source, now=now)
    objects = {o["metadata"]["name"]: copy.deepcopy(o) for o in existing}
    for name, body in plan.create.items():
        objects[name] = stored(name, body["spec"])
    for name, status in plan.status.items():
        objects[name]["status"] = copy.deepcopy(status)
    return plan, list(objects.values())


def by_path(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["status"]["classPath"]: o for o in objects if o.get("status")}


def test_repository_jobs_record_their_repository_and_commit() -> None:
    _, objects = sync_from([], [describe("net.jobs.a.A")], repo_source("net", C1))
    assert objects[0]["status"]["source"] == repo_source("net", C1)
    assert objects[0]["spec"] == {"enabled": False}
    _, after = sync_from(objects, [describe("net.jobs.a.A")], repo_source("net", C2))
    assert after[0]["status"]["source"]["commit"] == C2


def test_a_repository_sync_leaves_image_jobs_and_other_repositories_jobs_alone() -> None:
    _, objects = apply_plan([], [describe("hello.Hello")])
    _, objects = sync_from(objects, [describe("a.jobs.x.X")], repo_source("repo-a", C1))
    _, objects = sync_from(objects, [describe("b.jobs.y.Y")], repo_source("repo-b", C1))
    # Repository A's next commit has no jobs at all: only A's are uninstalled.
    plan, after = sync_from(objects, [], repo_source("repo-a", C2))
    assert list(plan.status) == [by_path(objects)["a.jobs.x.X"]["metadata"]["name"]]
    installed = {path: o["status"]["installed"] for path, o in by_path(after).items()}
    assert installed == {"hello.Hello": True, "a.jobs.x.X": False, "b.jobs.y.Y": True}
    # And the image's sync does not uninstall the repositories' jobs.
    plan, after = apply_plan(after, [describe("hello.Hello")])
    assert plan.empty


def test_jobs_kept_because_their_module_failed_keep_their_old_commit() -> None:
    _, objects = sync_from([], [describe("net.jobs.a.A"), describe("net.jobs.b.B")], repo_source("net", C1))
    plan, after = sync_from(
        objects, [describe("net.jobs.a.A")], repo_source("net", C2), failed=("net.jobs.b",)
    )
    kept = by_path(after)["net.jobs.b.B"]["status"]
    assert kept["installed"] is True
    assert kept["source"]["commit"] == C1
    assert by_path(after)["net.jobs.a.A"]["status"]["source"]["commit"] == C2
    # A package that fails as a whole keeps all of its jobs.
    plan, _ = sync_from(after, [], repo_source("net", C2), failed=("net.jobs",))
    assert plan.empty


def test_a_class_another_installed_source_provides_is_a_conflict_left_to_it() -> None:
    _, objects = sync_from([], [describe("shared.jobs.x.X")], repo_source("first", C1))
    plan, after = sync_from(objects, [describe("shared.jobs.x.X")], repo_source("second", C2))
    assert plan.empty
    assert "JobRepository 'first'" in plan.conflicts["shared.jobs.x.X"]
    assert after[0]["status"]["source"] == repo_source("first", C1)
    # Once the first one's jobs are uninstalled (its repository deleted), the second may take the class.
    after[0]["status"]["installed"] = False
    plan, taken = sync_from(after, [describe("shared.jobs.x.X")], repo_source("second", C2))
    assert not plan.conflicts
    assert taken[0]["status"]["source"] == repo_source("second", C2)
    assert taken[0]["status"]["installed"] is True


def test_the_definitions_of_a_deleted_repository_are_marked_not_installed_and_kept() -> None:
    _, objects = sync_from([], [describe("net.jobs.a.A")], repo_source("net", C1))
    _, objects = sync_from(objects, [describe("ops.jobs.b.B")], repo_source("ops", C1))
    _, objects = apply_plan(objects, [describe("hello.Hello")])
    planned = plan_forget(objects, "net", now=NOW)
    (name,) = planned
    status = planned[name]
    assert status["installed"] is False
    assert status["source"] == repo_source("net", C1)
    assert status["code"]["name"] == "A"
    (installed,) = status["conditions"]
    assert (installed["status"], installed["reason"]) == ("False", "RepositoryDeleted")
    for obj in objects:
        if obj["metadata"]["name"] == name:
            obj["status"] = status
    assert plan_forget(objects, "net", now=NOW) == {}


def test_a_definition_applied_after_the_sync_takes_over_the_syncs_untouched_one() -> None:
    _, objects = sync_from([], [describe("ops.jobs.hello.Hello")], repo_source("ops", C1))
    objects[0]["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "jobplane"}
    objects[0]["metadata"]["resourceVersion"] = "7"
    gitops = stored(
        "ops-hello",
        {"enabled": True, "classPath": "ops.jobs.hello.Hello", "overrides": {"description": "from gitops"}},
    )
    (adoption,) = plan_adoptions([*objects, gitops], now=NOW)
    assert adoption.claimant == "ops-hello"
    assert adoption.duplicate == objects[0]["metadata"]["name"]
    assert adoption.duplicate_resource_version == "7"
    assert adoption.status["classPath"] == "ops.jobs.hello.Hello"
    assert adoption.status["source"] == repo_source("ops", C1)
    assert adoption.status["effective"]["description"] == "from gitops"
    assert adoption.status["conditions"][0]["reason"] == "Discovered"
    # Nothing to do once adopted, and nothing when the sync's definition was touched by an admin.
    gitops["status"] = adoption.status
    assert plan_adoptions([*objects, gitops], now=NOW) == []
    del gitops["status"]
    objects[0]["spec"]["enabled"] = True
    assert plan_adoptions([*objects, gitops], now=NOW) == []


def test_sources_compare_by_kind_and_repository_not_commit() -> None:
    assert same_source(repo_source("a", C1), repo_source("a", C2))
    assert not same_source(repo_source("a", C1), repo_source("b", C1))
    assert same_source(IMAGE, {"type": "image"})
    assert not same_source(IMAGE, repo_source("a", C1))
    assert not same_source(None, None)


def name_unique(obj: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in obj["status"].get("conditions", []) if c["type"] == "NameUnique"), None)


def test_two_jobs_of_one_name_are_both_marked_as_a_name_conflict_naming_each_other() -> None:
    # Different groupings do not help: as in Nautobot, a job name is unique among all jobs.
    discovered = [describe("a.Sync", grouping="A"), describe("b.Sync", grouping="B")]
    plan, objects = apply_plan([], discovered)
    found = by_path(objects)
    for mine, other in (("a.Sync", "b.Sync"), ("b.Sync", "a.Sync")):
        cond = name_unique(found[mine])
        assert cond is not None
        assert (cond["status"], cond["reason"]) == ("False", "NameConflict")
        assert f"Job name 'Sync' of {mine} is also the name of {other}" in cond["message"]
        assert found[other]["metadata"]["name"] in cond["message"]
        assert "spec.overrides.name" in cond["message"]
        assert found[mine]["status"]["conditions"][0]["type"] == "Installed"
    # Idempotent: the next sync plans nothing, and keeps the transition time.
    plan, _ = apply_plan(objects, discovered, now=NOW + timedelta(hours=1))
    assert plan.empty


def test_an_override_or_a_removed_class_clears_the_name_conflict() -> None:
    _, objects = apply_plan([], [describe("a.Sync"), describe("b.Sync")])
    renamed = by_path(objects)["b.Sync"]
    renamed["spec"]["overrides"] = {"name": "Sync B"}
    renamed["metadata"]["generation"] = 2
    _, after = apply_plan(objects, [describe("a.Sync"), describe("b.Sync")])
    assert all(name_unique(obj) is None for obj in after)
    assert by_path(after)["b.Sync"]["status"]["effective"]["name"] == "Sync B"
    # A class that leaves the code is not installed: it clashes with nobody.
    _, objects = apply_plan([], [describe("a.Sync"), describe("b.Sync")])
    _, after = apply_plan(objects, [describe("a.Sync")])
    assert all(name_unique(obj) is None for obj in after)


def test_a_name_clash_across_sources_marks_the_other_sources_definition_too() -> None:
    _, objects = apply_plan([], [describe("hello.Hello")])
    plan, after = sync_from(objects, [describe("net.jobs.x.Hello")], repo_source("net", C1))
    image_name = by_path(after)["hello.Hello"]["metadata"]["name"]
    assert image_name in plan.status  # the image's definition is marked by the repository's sync
    assert name_unique(by_path(after)["hello.Hello"])["reason"] == "NameConflict"  # type: ignore[index]
    assert "net.jobs.x.Hello" in name_unique(by_path(after)["hello.Hello"])["message"]  # type: ignore[index]
    assert by_path(after)["hello.Hello"]["status"]["source"] == IMAGE


def test_plan_name_conflicts_leaves_unique_names_alone() -> None:
    _, objects = apply_plan([], [describe("a.One"), describe("b.Two")])
    assert plan_name_conflicts(objects, now=NOW) == {}
