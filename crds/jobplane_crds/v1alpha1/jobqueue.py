"""JobQueue: where runs execute (a node pool), with defaults for their pods and a concurrency limit."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from jobplane_crds.v1alpha1.common import Condition, CrdModel, PrinterColumn, Resource

__all__ = ["JobQueue", "JobQueueSpec", "JobQueueStatus", "ResourceRequirements", "Toleration"]

Quantity = int | str
# A label value that names a LocalQueue (a DNS-1123 subdomain, within the 63 characters of a label value).
LOCAL_QUEUE_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class Toleration(CrdModel):
    """A core/v1 Toleration, so the queue's pods may land on tainted nodes of its pool."""

    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class ResourceRequirements(CrdModel):
    """Default requests and limits of the job container (core/v1 ResourceRequirements)."""

    requests: dict[str, Quantity] | None = None
    """For example cpu: 100m, memory: 256Mi."""
    limits: dict[str, Quantity] | None = None
    """For example memory: 1Gi; a container above its memory limit is OOM-killed."""


class JobQueueSpec(CrdModel):
    """How and where the queue's runs execute."""

    node_selector: dict[str, str] | None = None
    """Labels a node must have (the node pool), e.g. pool: gpu."""
    tolerations: list[Toleration] | None = None
    """Taints of the pool's nodes that the pods tolerate."""
    affinity: dict[str, Any] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """A core/v1 Affinity for the pods."""
    resources: ResourceRequirements | None = None
    """Default resources of the job container; none by default."""
    image: str | None = None
    """Image of the job pods; defaults to the operator's configured image."""
    service_account_name: str | None = None
    """ServiceAccount of the job pods."""
    priority_class_name: str | None = None
    """PriorityClass of the pods."""
    concurrency_limit: int | None = Field(default=None, ge=0)
    """At most this many runs at once; more wait in phase Queued. Unset means no limit. Not with
    kueueLocalQueue (Kueue's quota bounds those runs): a queue that sets both is refused."""
    pod_template: dict[str, Any] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """A partial core/v1 PodTemplateSpec merged into every pod (env, volumes, securityContext...)."""
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0)
    """Seconds a finished run of this queue stays in the cluster after it ended (its status.completionTime):
    then its JobRun is deleted, and its Job and pod with it. 0 deletes it as soon as it ends. Unset: the
    operator's default (the chart's operator.runTTLSecondsAfterFinished, one day unless changed). Its
    JobResult, logs and files stay in the API's database under their own retention."""
    kueue_local_queue: str | None = Field(
        default=None, min_length=1, max_length=63, pattern=LOCAL_QUEUE_PATTERN
    )
    """Hand the queue's runs to this Kueue LocalQueue (in the run's namespace): each Job is created
    suspended, labelled kueue.x-k8s.io/queue-name, and starts when Kueue admits it within its
    ClusterQueue's quota. Jobplane's own limit is then off: concurrencyLimit may not be set with it, and
    a run waits in phase Pending with a Waiting condition of reason KueueAdmission, not in Queued. Kueue
    must run in the cluster with its batch/job integration, else the Jobs stay suspended."""


class JobQueueStatus(CrdModel):
    """Load of the queue, as the operator's index of runs shows it; written only when it changes."""

    active: int | None = None
    """Runs of the queue that have a Job and have not ended (they hold the queue's slots)."""
    waiting: int | None = None
    """Runs of the queue waiting to start: in phase Queued (for a slot, or for a singleton's lock), or,
    on a queue handed to Kueue, with their Job suspended until Kueue admits it (reason KueueAdmission)."""
    limit: int | None = None
    """The concurrency limit the counts were taken under; unset when the queue has none."""
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Current state, one condition per type."""
    observed_generation: int | None = None
    """The metadata.generation this status describes."""


class JobQueue(Resource):
    """A queue of job runs, mapped to a node pool."""

    kind_name = "JobQueue"
    plural = "jobqueues"
    short_names = ("jq",)
    root_validations: ClassVar[tuple[dict[str, str], ...]] = (
        {
            "rule": "!has(self.spec) || !has(self.spec.kueueLocalQueue) || !has(self.spec.concurrencyLimit)",
            "message": "spec.concurrencyLimit and spec.kueueLocalQueue exclude each other: the runs of a "
            "queue handed to Kueue are bounded by its ClusterQueue's quota, so leave concurrencyLimit unset",
        },
    )
    printer_columns = (
        PrinterColumn(name="Pool", type="string", json_path=".spec.nodeSelector"),
        PrinterColumn(name="Limit", type="integer", json_path=".spec.concurrencyLimit"),
        PrinterColumn(name="Active", type="integer", json_path=".status.active"),
        PrinterColumn(name="Waiting", type="integer", json_path=".status.waiting"),
        PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),
        PrinterColumn(name="Kueue-LocalQueue", type="string", json_path=".spec.kueueLocalQueue", priority=1),
    )

    kind: str = "JobQueue"
    spec: JobQueueSpec = Field(default_factory=JobQueueSpec)
    status: JobQueueStatus | None = None
