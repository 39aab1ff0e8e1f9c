"""Which JobDefinitions to create and which statuses to write after a discovery (Nautobot's Job refresh).

New jobs start disabled; code-derived fields live in status and are refreshed; what admins wrote in spec is
never touched; a class that disappeared is marked not installed, never deleted; a module that failed to
import keeps its jobs as they were. Running the same sync twice plans nothing.

Each source (the image, each JobRepository) only ever installs and uninstalls its own definitions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobplane_crds.v1alpha1.jobdefinition import effective_metadata
from jobplane_operator.reconcile.conditions import condition

__all__ = [
    "Adoption",
    "SyncPlan",
    "definition_name",
    "plan_adoptions",
    "plan_forget",
    "plan_name_conflicts",
    "plan_sync",
    "same_source",
]

INSTALLED = "Installed"
NAME_UNIQUE = "NameUnique"
NAME_CONFLICT = "NameConflict"
MANAGED_BY = ("app.kubernetes.io/managed-by", "jobplane")
_NAME_CHARS = re.compile(r"[^a-z0-9.-]+")


def definition_name(class_path: str) -> str:
    """A JobDefinition name for a class path: readable, a valid DNS subdomain, unique per class path."""
    readable = _NAME_CHARS.sub("-", class_path.lower().replace("_", "-")).strip(".-")
    suffix = hashlib.sha256(class_path.encode()).hexdigest()[:6]
    # Lowercasing can make two class paths equal (a.Job, a.JOB); the hash keeps them apart.
    return f"{readable[: 253 - len(suffix) - 1].rstrip('.-')}-{suffix}"


@dataclass
class SyncPlan:
    """Definitions to create (name → body) and statuses to write (name → status)."""

    create: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Class paths found in the code that another installed source already provides: left to it.
    conflicts: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.create and not self.status


def _class_path_of(obj: Mapping[str, Any]) -> str | None:
    found = (obj.get("status") or {}).get("classPath") or (obj.get("spec") or {}).get("classPath")
    return str(found) if found else None


def _source_key(source: Mapping[str, Any] | None) -> tuple[str, str] | None:
    if not source or not source.get("type"):
        return None
    kind = str(source["type"])
    return kind, str(source.get("repository") or "") if kind == "repository" else ""


def same_source(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two JobDefinition sources are the same provider: the image, or one named JobRepository
    (the commit does not matter)."""
    return _source_key(a) is not None and _source_key(a) == _source_key(b)


def _describe_source(source: Mapping[str, Any]) -> str:
    if source.get("type") == "repository":
        return f"JobRepository {source.get('repository')!r}"
    return f"the {source.get('type')}"


def _uninstalled(obj: Mapping[str, Any], reason: str, message: str, now: datetime) -> dict[str, Any]:
    generation = int(obj["metadata"].get("generation", 1))
    return {
        **dict(obj.get("status") or {}),
        "installed": False,
        "observedGeneration": generation,
        "conditions": [
            condition(obj.get("status"), INSTALLED, "False", reason, message, generation=generation, now=now)
        ],
    }


def plan_sync(
    existing: Iterable[Mapping[str, Any]],
    discovered: Iterable[Mapping[str, Any]],
    *,
    failed_modules: Iterable[str],
    source: Mapping[str, Any],
    now: datetime,
) -> SyncPlan:
    """Plan the writes that bring JobDefinitions in line with one discovery.

    ``discovered`` holds ``jobplane.discovery.describe_job`` dicts; ``existing`` the namespace's JobDefinition
    objects: those of this ``source`` (the image, or one JobRepository: type and repository name), any applied
    by hand or GitOps before their class was found (matched by ``spec.classPath`` or by name), and those of
    other sources, which are left alone: a class path another installed source provides is a conflict.
    """
    plan = SyncPlan()
    by_path: dict[str, Mapping[str, Any]] = {}
    by_name: dict[str, Mapping[str, Any]] = {}
    for item in existing:
        by_name[item["metadata"]["name"]] = item
        known_path = _class_path_of(item)
        if known_path:
            by_path[known_path] = item
    failed = tuple(failed_modules)
    seen: set[str] = set()
    for description in discovered:
        class_path = description["classPath"]
        current = by_path.get(class_path) or by_name.get(definition_name(class_path))
        current_status = (current or {}).get("status") or {}
        theirs = current_status.get("source")
        if theirs and not same_source(theirs, source) and current_status.get("installed"):
            plan.conflicts[class_path] = f"{class_path} is already provided by {_describe_source(theirs)}"
            continue
        name = current["metadata"]["name"] if current else definition_name(class_path)
        seen.add(name)
        generation = int(current["metadata"].get("generation", 1)) if current else 1
        overrides = (current or {}).get("spec", {}).get("overrides")
        status = {
            **description,
            "source": dict(source),
            "installed": True,
            "effective": effective_metadata(description["code"], overrides),
            "observedGeneration": generation,
            "conditions": [
                condition(
                    (current or {}).get("status"),
                    INSTALLED,
                    "True",
                    "Discovered",
                    "The class was found in the job code",
                    generation=generation,
                    now=now,
                ),
                # Decided below, over every definition's name: kept as it was until then.
                *(c for c in current_status.get("conditions") or [] if c.get("type") == NAME_UNIQUE),
            ],
        }
        if current is None:
            plan.create[name] = {"spec": {"enabled": False}}
        if current is None or current.get("status") != status:
            plan.status[name] = status
    for name, obj in by_name.items():
        if name in seen or not same_source((obj.get("status") or {}).get("source"), source):
            continue
        module = str((obj.get("status") or {}).get("moduleName") or "")
        if any(module == m or module.startswith(m + ".") for m in failed):
            continue  # Its module failed to import this time: keep what the last good import said.
        status = _uninstalled(obj, "ClassNotFound", "The class is no longer in the job code", now)
        if obj.get("status") != status:
            plan.status[name] = status
    # Names are compared once this plan is written: over every source's definitions, not only this one's.
    after = [{**obj, "status": plan.status.get(name, obj.get("status"))} for name, obj in by_name.items()] + [
        {"metadata": {"name": name, "generation": 1}, "status": plan.status[name]} for name in plan.create
    ]
    plan.status.update(plan_name_conflicts(after, now=now))
    return plan


def display_name(obj: Mapping[str, Any]) -> str:
    """The job's name as the API shows it: the effective name, else the class name, else the object name."""
    status = obj.get("status") or {}
    effective = status.get("effective") or effective_metadata(
        status.get("code") or {}, (obj.get("spec") or {}).get("overrides")
    )
    class_path = _class_path_of(obj) or ""
    return str(effective.get("name") or class_path.rpartition(".")[2] or obj["metadata"]["name"])


def plan_name_conflicts(
    definitions: Iterable[Mapping[str, Any]], *, now: datetime
) -> dict[str, dict[str, Any]]:
    """Statuses (name → status) that mark installed definitions sharing a job name, and unmark the others.

    As in Nautobot, a job's name is unique among all jobs, whatever their grouping or source: the API
    finds a job by name, so two of one name would shadow each other. Each of them gets the condition
    NameUnique=False, reason NameConflict, naming the others; an admin resolves it by overriding a name
    (``spec.overrides.name``). The condition goes away once the name is unique again. Runs that name a
    definition by object name or class path are not refused: a job added later (say, by a new repository)
    must not stop a job that was already running, which Nautobot avoids by renaming the newcomer.
    """
    installed = [obj for obj in definitions if (obj.get("status") or {}).get("installed")]
    by_display: dict[str, list[Mapping[str, Any]]] = {}
    for obj in installed:
        by_display.setdefault(display_name(obj), []).append(obj)
    planned: dict[str, dict[str, Any]] = {}
    for obj in definitions:
        status = dict(obj.get("status") or {})
        if not status:
            continue
        generation = int(obj["metadata"].get("generation", 1))
        kept = [c for c in status.get("conditions") or [] if c.get("type") != NAME_UNIQUE]
        clashing = (
            [
                other
                for other in by_display.get(display_name(obj), [])
                if other["metadata"]["name"] != obj["metadata"]["name"]
            ]
            if status.get("installed")
            else []
        )
        if clashing:
            others = ", ".join(
                sorted(f"{_class_path_of(o)} (JobDefinition {o['metadata']['name']})" for o in clashing)
            )
            message = (
                f"Job name {display_name(obj)!r} of {_class_path_of(obj)} is also the name of {others}; "
                "job names must be unique: override the name (spec.overrides.name) of all but one"
            )
            kept.append(
                condition(
                    status, NAME_UNIQUE, "False", NAME_CONFLICT, message, generation=generation, now=now
                )
            )
        if kept != (status.get("conditions") or []):
            planned[obj["metadata"]["name"]] = {**status, "conditions": kept}
    return planned


def plan_forget(
    existing: Iterable[Mapping[str, Any]], repository: str, *, now: datetime
) -> dict[str, dict[str, Any]]:
    """Statuses (name → status) that mark the definitions of a deleted JobRepository not installed.

    They are kept, with their admin settings and what the code last said, so that a repository created
    again under the same name takes them back.
    """
    source = {"type": "repository", "repository": repository}
    message = f"JobRepository {repository!r} was deleted"
    planned = {}
    for obj in existing:
        status = obj.get("status") or {}
        if not same_source(status.get("source"), source) or status.get("installed") is False:
            continue
        planned[obj["metadata"]["name"]] = _uninstalled(obj, "RepositoryDeleted", message, now)
    return planned


@dataclass(frozen=True)
class Adoption:
    """A definition applied before discovery (``claimant``, named by people or GitOps) takes the status of
    the one a sync created meanwhile for the same class (``duplicate``), which is then deleted."""

    claimant: str
    status: dict[str, Any]
    duplicate: str
    duplicate_resource_version: str | None = None


def _pristine(obj: Mapping[str, Any]) -> bool:
    # Made by a sync and never touched by an admin: disabled, no overrides, spec never edited.
    meta, spec = obj["metadata"], obj.get("spec") or {}
    labels = meta.get("labels") or {}
    return (
        labels.get(MANAGED_BY[0]) == MANAGED_BY[1]
        and int(meta.get("generation", 1)) == 1
        and not spec.get("enabled")
        and not spec.get("classPath")
        and not any(value is not None for value in (spec.get("overrides") or {}).values())
    )


def plan_adoptions(existing: Iterable[Mapping[str, Any]], *, now: datetime) -> list[Adoption]:
    """Merge each definition applied before discovery with the one a sync made for its class meanwhile.

    Manifests may arrive in any order: when a sync ran before the definition naming its class was applied,
    there would be two definitions of one class. The one people wrote wins; the sync's own goes, but only
    while nobody has touched it (otherwise both stay, and the sync keeps updating the first one it finds).
    """
    items = list(existing)
    waiting: dict[str, Mapping[str, Any]] = {}
    for obj in items:
        spec_path = (obj.get("spec") or {}).get("classPath")
        if spec_path and not (obj.get("status") or {}).get("classPath"):
            waiting.setdefault(str(spec_path), obj)
    adoptions = []
    for obj in items:
        status = obj.get("status") or {}
        claimant = waiting.get(str(status.get("classPath") or ""))
        if claimant is None or claimant is obj or not _pristine(obj):
            continue
        generation = int(claimant["metadata"].get("generation", 1))
        old_installed = next((c for c in status.get("conditions") or [] if c.get("type") == INSTALLED), None)
        adopted = {
            **status,
            "effective": effective_metadata(
                status.get("code") or {}, (claimant.get("spec") or {}).get("overrides")
            ),
            "observedGeneration": generation,
            "conditions": [
                condition(
                    claimant.get("status"),
                    INSTALLED,
                    str(old_installed["status"]) if old_installed else "True",
                    str(old_installed["reason"]) if old_installed else "Discovered",
                    str(old_installed.get("message") or "") if old_installed else "",
                    generation=generation,
                    now=now,
                )
            ],
        }
        adoptions.append(
            Adoption(
                claimant=claimant["metadata"]["name"],
                status=adopted,
                duplicate=obj["metadata"]["name"],
                duplicate_resource_version=obj["metadata"].get("resourceVersion"),
            )
        )
        del waiting[str(status["classPath"])]
    return adoptions
