"""JobDefinition: a job class known to the cluster; admin state in spec, its code's metadata in status."""

from __future__ import annotations

from collections.abc import Mapping
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
    "effective_metadata",
    "effective_of",
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

        Computed from spec at every use rather than read from status.effective, which may predate an edit.
        """
        code = self.status.code if self.status is not None and self.status.code is not None else None
        values: dict[str, Any] = {}
        for field in JobMetadata.model_fields:
            given = getattr(self.spec.overrides, field)
            values[field] = given if given is not None else getattr(code, field, None)
        return JobMetadata.model_construct(**values)  # both sides were validated when parsed

    @property
    def class_path(self) -> str | None:
        """<module>.<ClassName>: as discovery found it, else as the spec names it (applied first)."""
        return (self.status.class_path if self.status is not None else None) or self.spec.class_path or None


def effective_metadata(code: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Overrides over code, field by field; a field an admin left out follows the code."""
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    return {key: given.get(key, code.get(key)) for key in OVERRIDABLE}


def effective_of(definition: Mapping[str, Any] | None) -> dict[str, Any]:
    """The metadata of a JobDefinition object in force now: the admin's overrides over what the code said
    at the last sync; empty for no definition.

    Computed from spec at every use rather than read from status.effective, which may predate an edit.
    """
    if definition is None:
        return {}
    status = definition.get("status") or {}
    return effective_metadata(status.get("code") or {}, (definition.get("spec") or {}).get("overrides"))
