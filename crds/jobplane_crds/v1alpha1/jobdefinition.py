"""JobDefinition: a job class known to the cluster; admin state in spec, its code's metadata in status."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from pydantic import Field

from jobplane_crds.v1alpha1.common import Condition, CrdModel, PrinterColumn, Resource

__all__ = [
    "OVERRIDABLE",
    "JobDefinition",
    "JobDefinitionSpec",
    "JobDefinitionStatus",
    "JobMetadata",
    "JobSource",
    "overridden",
]

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


class JobMetadata(CrdModel):
    """The overridable properties of a job (Nautobot's JOB_OVERRIDABLE_FIELDS, plus queues)."""

    name: str | None = Field(default=None, max_length=100)
    """Display name, unique among jobs."""
    grouping: str | None = Field(default=None, max_length=255)
    """Group in job lists."""
    description: str | None = None
    """Markdown description; its first line is shown in lists."""
    approval_required: bool | None = None
    """Runs wait for another user's approval."""
    dryrun_default: bool | None = None
    """Initial value of the job's dryrun variable."""
    has_sensitive_variables: bool | None = None
    """Inputs are never stored, and reach the pod only through a Secret."""
    hidden: bool | None = None
    """Left out of the default job list (not a security control)."""
    is_singleton: bool | None = None
    """At most one run of this job at a time."""
    soft_time_limit: float | None = Field(default=None, ge=0)
    """Seconds before SoftTimeLimitExceeded is raised in the job; 0 means the system default."""
    time_limit: float | None = Field(default=None, ge=0)
    """Seconds before the pod is stopped (activeDeadlineSeconds); 0 means the system default."""
    task_queues: list[str] | None = None
    """Queues the job may run on; the first is its default."""


def overridden(code: JobMetadata | None, overrides: JobMetadata) -> JobMetadata:
    """Each override an admin gave over what the code declares; a field left out (or null) follows code."""
    given = {
        field: value
        for field in overrides.model_fields_set
        if (value := getattr(overrides, field)) is not None
    }
    return (code or JobMetadata()).model_copy(update=given)


class JobDefinitionSpec(CrdModel):
    """Admin state: whether the job may run, and overrides of its code's metadata."""

    enabled: bool = False
    """New jobs start disabled; an admin enables them."""
    overrides: JobMetadata = Field(default_factory=JobMetadata)
    """Values that replace the code's; a field left out follows the code."""
    class_path: str | None = Field(default=None, max_length=255)
    """The class this definition is for (<module>.<ClassName>); set when applied before discovery."""


class JobSource(CrdModel):
    """Where the job's code comes from."""

    type: str = Field(pattern=r"^(image|repository)$")
    """image (the job is in the image's JOBS_ROOT or packages) or repository (a JobRepository)."""
    repository: str | None = None
    """The JobRepository, for repository jobs."""
    commit: str | None = None
    """The commit the metadata was read from, for repository jobs."""


class JobDefinitionStatus(CrdModel):
    """What discovery found in the code, and the values in effect after overrides."""

    class_path: str | None = None
    """<module>.<ClassName>."""
    module_name: str | None = None
    """The module that defines the class."""
    job_class_name: str | None = None
    """The class name."""
    source: JobSource | None = None
    """Where the code comes from."""
    installed: bool | None = None
    """False when the class is no longer found; the definition is kept, never deleted."""
    supports_dryrun: bool | None = None
    """The job declares a DryRunVar named dryrun."""
    code: JobMetadata | None = None
    """The metadata as the code declares it."""
    effective: JobMetadata | None = None
    """The metadata in force: overrides over code."""
    variables_schema: dict[str, Any] | None = None
    """The JSON Schema of the job's inputs."""
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Current state, one condition per type (Installed, Runnable)."""
    observed_generation: int | None = None
    """The metadata.generation this status describes."""


class JobDefinition(Resource):
    """A job class and its admin settings."""

    kind_name = "JobDefinition"
    plural = "jobdefinitions"
    short_names = ("jobdef",)
    printer_columns = (
        PrinterColumn(name="Class", type="string", json_path=".status.classPath"),
        PrinterColumn(name="Enabled", type="boolean", json_path=".spec.enabled"),
        PrinterColumn(name="Installed", type="boolean", json_path=".status.installed"),
        PrinterColumn(name="Grouping", type="string", json_path=".status.effective.grouping", priority=1),
        PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),
    )

    kind: str = "JobDefinition"
    spec: JobDefinitionSpec = Field(default_factory=JobDefinitionSpec)
    status: JobDefinitionStatus | None = None

    def effective(self) -> JobMetadata:
        """The metadata in force now: the admin's overrides over what the code said at the last sync.

        Computed from spec rather than read from status.effective, which may predate an edit; computed once
        per object (a changed resource is a new object), as readers ask for it on every request.
        """
        return self._effective

    @cached_property
    def _effective(self) -> JobMetadata:
        return overridden(self.status.code if self.status is not None else None, self.spec.overrides)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> JobDefinition:
        """A copy, without this object's computed effective metadata (the copy's fields may differ)."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("_effective", None)
        return copied

    @property
    def class_path(self) -> str | None:
        """<module>.<ClassName>: as discovery found it, else as the spec names it (set before discovery)."""
        return (self.status.class_path if self.status is not None else None) or self.spec.class_path or None

    @property
    def variables_schema(self) -> dict[str, Any]:
        """The JSON Schema of the job's inputs; empty while discovery has not described them."""
        return (self.status.variables_schema if self.status is not None else None) or {}
