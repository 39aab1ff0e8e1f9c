"""Which JobDefinitions to create and which statuses to write after a discovery (Nautobot's Job refresh).

New jobs start disabled; code-derived fields live in status and are refreshed; what admins wrote in spec is
never touched; a class that disappeared is marked not installed, never deleted; a module that failed to
import keeps its jobs as they were. Running the same sync twice plans nothing.

Each source (the image, each JobRepository) only ever installs and uninstalls its own definitions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobplane_crds.v1alpha1 import JobDefinition, JobDefinitionSpec, JobDefinitionStatus
from jobplane_crds.v1alpha1.common import ObjectMeta
from jobplane_crds.v1alpha1.jobdefinition import JobMetadata, JobSource, overridden
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


def _name(obj: JobDefinition) -> str:
    return obj.metadata.name or ""


def _generation(obj: JobDefinition) -> int:
    return obj.metadata.generation or 1


def _stored(status: JobDefinitionStatus | None) -> dict[str, Any]:
    """A status in its stored form (the fields it has, as JSON): what a status written over it starts from."""
    return status.model_dump(by_alias=True, exclude_unset=True, mode="json") if status is not None else {}


def _effective(spec: JobDefinitionSpec, code: JobMetadata | None) -> dict[str, Any]:
    """status.effective as written: ``spec``'s overrides over ``code``, every field named."""
    return overridden(code, spec.overrides).model_dump(by_alias=True)


def _source_key(source: JobSource | None) -> tuple[str, str] | None:
    if source is None:
        return None
    return source.type, source.repository or "" if source.type == "repository" else ""


def same_source(a: JobSource | None, b: JobSource | None) -> bool:
    """Whether two JobDefinition sources are the same provider: the image, or one named JobRepository
    (the commit does not matter)."""
    return _source_key(a) is not None and _source_key(a) == _source_key(b)


def _describe_source(source: JobSource) -> str:
    if source.type == "repository":
        return f"JobRepository {source.repository!r}"
    return f"the {source.type}"


def _uninstalled(obj: JobDefinition, reason: str, message: str, now: datetime) -> dict[str, Any]:
    generation, stored = _generation(obj), _stored(obj.status)
    return {
        **stored,
        "installed": False,
        "observedGeneration": generation,
        "conditions": [
            condition(stored, INSTALLED, "False", reason, message, generation=generation, now=now)
        ],
    }


def _with_status(obj: JobDefinition, status: JobDefinitionStatus) -> JobDefinition:
    # A new object rather than model_copy: a copy would keep the original's cached effective().
    return JobDefinition(metadata=obj.metadata, spec=obj.spec, status=status)


def plan_sync(
    existing: Iterable[JobDefinition],
    discovered: Iterable[Mapping[str, Any]],
    *,
    failed_modules: Iterable[str],
    source: JobSource,
    now: datetime,
    refused: Collection[str] = (),
) -> SyncPlan:
    """Plan the writes that bring JobDefinitions in line with one discovery.

    ``discovered`` holds ``jobplane.discovery.describe_job`` dicts; ``existing`` the namespace's
    JobDefinitions: those of this ``source`` (the image, or one JobRepository: type and repository name), any
    applied by hand or GitOps before their class was found (matched by ``spec.classPath`` or by name), and
    those of other sources, which are left alone: a class path another installed source provides is a
    conflict.

    ``refused`` names the namespace's definitions that do not fit the model (an installed CRD older than the
    operator; ``parsing.parsed`` left them out): nothing is written over them, and a class whose definition
    would have one of their names is reported among the conflicts and left as it is.
    """
    plan = SyncPlan()
    by_path: dict[str, JobDefinition] = {}
    by_name: dict[str, JobDefinition] = {}
    for item in existing:
        by_name[_name(item)] = item
        if item.class_path:
            by_path[item.class_path] = item
    failed = tuple(failed_modules)
    seen: set[str] = set()
    planned: dict[str, JobDefinitionStatus] = {}
    for description in discovered:
        class_path = description["classPath"]
        current = by_path.get(class_path) or by_name.get(definition_name(class_path))
        if current is None and definition_name(class_path) in refused:
            plan.conflicts[class_path] = (
                f"JobDefinition {definition_name(class_path)} of {class_path} does not fit this operator's "
                "model (is its CRD older?): left as it is"
            )
            continue
        current_status = current.status if current is not None else None
        theirs = current_status.source if current_status is not None else None
        if theirs and not same_source(theirs, source) and current_status and current_status.installed:
            plan.conflicts[class_path] = f"{class_path} is already provided by {_describe_source(theirs)}"
            continue
        name = _name(current) if current is not None else definition_name(class_path)
        seen.add(name)
        generation = _generation(current) if current is not None else 1
        stored = _stored(current_status)
        spec = current.spec if current is not None else JobDefinitionSpec()
        status = {
            **description,
            "source": source.model_dump(by_alias=True, exclude_unset=True),
            "installed": True,
            "effective": _effective(spec, JobMetadata.model_validate(description["code"])),
            "observedGeneration": generation,
            "conditions": [
                condition(
                    stored,
                    INSTALLED,
                    "True",
                    "Discovered",
                    "The class was found in the job code",
                    generation=generation,
                    now=now,
                ),
                # Decided below, over every definition's name: kept as it was until then.
                *(c for c in stored.get("conditions", []) if c["type"] == NAME_UNIQUE),
            ],
        }
        planned[name] = JobDefinitionStatus.model_validate(status)
        if current is None:
            plan.create[name] = {"spec": {"enabled": False}}
        # Compared as stored and as written, not as models (which take a left-out field for a null): the
        # statuses a sync writes stay what they were.
        if current is None or stored != status:
            plan.status[name] = status
    for name, obj in by_name.items():
        if name in seen or obj.status is None or not same_source(obj.status.source, source):
            continue
        module = obj.status.module_name or ""
        if any(module == m or module.startswith(m + ".") for m in failed):
            continue  # Its module failed to import this time: keep what the last good import said.
        status = _uninstalled(obj, "ClassNotFound", "The class is no longer in the job code", now)
        if _stored(obj.status) != status:
            planned[name] = JobDefinitionStatus.model_validate(status)
            plan.status[name] = status
    # Names are compared once this plan is written: over every source's definitions, not only this one's.
    after = [
        _with_status(obj, planned[name]) if name in plan.status else obj for name, obj in by_name.items()
    ] + [
        JobDefinition(metadata=ObjectMeta(name=name, generation=1), status=planned[name])
        for name in plan.create
    ]
    plan.status.update(plan_name_conflicts(after, now=now))
    return plan


def display_name(obj: JobDefinition) -> str:
    """The job's name as the API shows it: the effective name, else the class name, else the object name."""
    stored = obj.status.effective if obj.status is not None else None
    effective = stored if stored is not None and stored.model_fields_set else obj.effective()
    return str(effective.name or (obj.class_path or "").rpartition(".")[2] or _name(obj))


def plan_name_conflicts(definitions: Iterable[JobDefinition], *, now: datetime) -> dict[str, dict[str, Any]]:
    """Statuses (name → status) that mark installed definitions sharing a job name, and unmark the others.

    As in Nautobot, a job's name is unique among all jobs, whatever their grouping or source: the API
    finds a job by name, so two of one name would shadow each other. Each of them gets the condition
    NameUnique=False, reason NameConflict, naming the others; an admin resolves it by overriding a name
    (``spec.overrides.name``). The condition goes away once the name is unique again. Runs that name a
    definition by object name or class path are not refused: a job added later (say, by a new repository)
    must not stop a job that was already running, which Nautobot avoids by renaming the newcomer.
    """
    definitions = list(definitions)
    by_display: dict[str, list[JobDefinition]] = {}
    for obj in definitions:
        if obj.status is not None and obj.status.installed:
            by_display.setdefault(display_name(obj), []).append(obj)
    planned: dict[str, dict[str, Any]] = {}
    for obj in definitions:
        status = _stored(obj.status)
        if not status:
            continue
        generation = _generation(obj)
        kept = [c for c in status.get("conditions", []) if c["type"] != NAME_UNIQUE]
        clashing = (
            [other for other in by_display.get(display_name(obj), []) if _name(other) != _name(obj)]
            if obj.status is not None and obj.status.installed
            else []
        )
        if clashing:
            others = ", ".join(sorted(f"{o.class_path} (JobDefinition {_name(o)})" for o in clashing))
            message = (
                f"Job name {display_name(obj)!r} of {obj.class_path} is also the name of {others}; "
                "job names must be unique: override the name (spec.overrides.name) of all but one"
            )
            kept.append(
                condition(
                    status, NAME_UNIQUE, "False", NAME_CONFLICT, message, generation=generation, now=now
                )
            )
        if kept != status.get("conditions", []):
            planned[_name(obj)] = {**status, "conditions": kept}
    return planned


def plan_forget(
    existing: Iterable[JobDefinition], repository: str, *, now: datetime
) -> dict[str, dict[str, Any]]:
    """Statuses (name → status) that mark the definitions of a deleted JobRepository not installed.

    They are kept, with their admin settings and what the code last said, so that a repository created
    again under the same name takes them back.
    """
    source = JobSource(type="repository", repository=repository)
    message = f"JobRepository {repository!r} was deleted"
    planned = {}
    for obj in existing:
        if obj.status is None or not same_source(obj.status.source, source) or obj.status.installed is False:
            continue
        planned[_name(obj)] = _uninstalled(obj, "RepositoryDeleted", message, now)
    return planned


@dataclass(frozen=True)
class Adoption:
    """A definition applied before discovery (``claimant``, named by people or GitOps) takes the status of
    the one a sync created meanwhile for the same class (``duplicate``), which is then deleted."""

    claimant: str
    status: dict[str, Any]
    duplicate: str
    duplicate_resource_version: str | None = None


def _pristine(obj: JobDefinition) -> bool:
    # Made by a sync and never touched by an admin: disabled, no overrides, spec never edited.
    labels = obj.metadata.labels or {}
    return (
        labels.get(MANAGED_BY[0]) == MANAGED_BY[1]
        and _generation(obj) == 1
        and not obj.spec.enabled
        and not obj.spec.class_path
        and not any(value is not None for value in obj.spec.overrides.model_dump().values())
    )


def plan_adoptions(existing: Iterable[JobDefinition], *, now: datetime) -> list[Adoption]:
    """Merge each definition applied before discovery with the one a sync made for its class meanwhile.

    Manifests may arrive in any order: when a sync ran before the definition naming its class was applied,
    there would be two definitions of one class. The one people wrote wins; the sync's own goes, but only
    while nobody has touched it (otherwise both stay, and the sync keeps updating the first one it finds).
    """
    items = list(existing)
    waiting: dict[str, JobDefinition] = {}
    for obj in items:
        if obj.spec.class_path and not (obj.status is not None and obj.status.class_path):
            waiting.setdefault(obj.spec.class_path, obj)
    adoptions = []
    for obj in items:
        status = obj.status
        if status is None or not status.class_path:
            continue
        claimant = waiting.get(status.class_path)
        if claimant is None or claimant is obj or not _pristine(obj):
            continue
        generation = _generation(claimant)
        old_installed = next((c for c in status.conditions if c.type == INSTALLED), None)
        adopted = {
            **_stored(status),
            "effective": _effective(claimant.spec, status.code),
            "observedGeneration": generation,
            "conditions": [
                condition(
                    _stored(claimant.status),
                    INSTALLED,
                    old_installed.status if old_installed else "True",
                    old_installed.reason if old_installed else "Discovered",
                    old_installed.message if old_installed else "",
                    generation=generation,
                    now=now,
                )
            ],
        }
        adoptions.append(
            Adoption(
                claimant=_name(claimant),
                status=adopted,
                duplicate=_name(obj),
                duplicate_resource_version=obj.metadata.resource_version,
            )
        )
        del waiting[status.class_path]
    return adoptions
