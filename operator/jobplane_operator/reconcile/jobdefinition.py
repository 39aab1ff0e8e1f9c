"""Which JobDefinitions to create and which statuses to write after a discovery (Nautobot's Job refresh).

New jobs start disabled; code-derived fields live in status and are refreshed; what admins wrote in spec is
never touched; a class that disappeared is marked not installed, never deleted; a module that failed to
import keeps its jobs as they were. Running the same sync twice plans nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobplane_operator.reconcile.conditions import condition

__all__ = ["OVERRIDABLE", "SyncPlan", "definition_name", "effective_metadata", "plan_sync"]

# The overridable fields of a JobDefinition (Nautobot's JOB_OVERRIDABLE_FIELDS, plus queues).
OVERRIDABLE = (
    "name",
    "grouping",
    "description",
    "approvalRequired",
    "dryrunDefault",
    "hasSensitiveVariables",
    "hidden",
    "isSingleton",
    "softTimeLimit",
    "timeLimit",
    "taskQueues",
)
INSTALLED = "Installed"
_NAME_CHARS = re.compile(r"[^a-z0-9.-]+")


def definition_name(class_path: str) -> str:
    """A JobDefinition name for a class path: readable, a valid DNS subdomain, unique per class path."""
    readable = _NAME_CHARS.sub("-", class_path.lower().replace("_", "-")).strip(".-")
    suffix = hashlib.sha256(class_path.encode()).hexdigest()[:6]
    # Lowercasing can make two class paths equal (a.Job, a.JOB); the hash keeps them apart.
    return f"{readable[: 253 - len(suffix) - 1].rstrip('.-')}-{suffix}"


def effective_metadata(code: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Overrides over code, field by field; a field an admin left out follows the code."""
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    return {key: given.get(key, code.get(key)) for key in OVERRIDABLE}


@dataclass
class SyncPlan:
    """Definitions to create (name → body) and statuses to write (name → status)."""

    create: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.create and not self.status


def _class_path_of(obj: Mapping[str, Any]) -> str | None:
    found = obj.get("status", {}).get("classPath") or obj.get("spec", {}).get("classPath")
    return str(found) if found else None


def plan_sync(
    existing: Iterable[Mapping[str, Any]],
    discovered: Iterable[Mapping[str, Any]],
    *,
    failed_modules: Iterable[str],
    source: Mapping[str, Any],
    now: datetime,
) -> SyncPlan:
    """Plan the writes that bring JobDefinitions in line with one discovery.

    ``discovered`` holds ``jobplane.discovery.describe_job`` dicts; ``existing`` the JobDefinition objects
    of this source (and any applied by hand or GitOps before their class was found, matched by
    ``spec.classPath`` or by name).
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
                )
            ],
        }
        if current is None:
            plan.create[name] = {"spec": {"enabled": False}}
        if current is None or current.get("status") != status:
            plan.status[name] = status
    for name, obj in by_name.items():
        if name in seen or obj.get("status", {}).get("source", {}).get("type") != source.get("type"):
            continue
        module = str(obj.get("status", {}).get("moduleName") or "")
        if any(module == m or module.startswith(m + ".") for m in failed):
            continue  # Its module failed to import this time: keep what the last good import said.
        old = dict(obj.get("status", {}))
        generation = int(obj["metadata"].get("generation", 1))
        status = {
            **old,
            "installed": False,
            "observedGeneration": generation,
            "conditions": [
                condition(
                    obj.get("status"),
                    INSTALLED,
                    "False",
                    "ClassNotFound",
                    "The class is no longer in the job code",
                    generation=generation,
                    now=now,
                )
            ],
        }
        if old != status:
            plan.status[name] = status
    return plan
