"""JobRun: one request to run a job; the operator turns it into exactly one batch/v1 Job."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from jobplane_crds.v1alpha1.common import Condition, CrdModel, PrinterColumn, Resource

__all__ = [
    "APPROVAL_ANNOTATION",
    "APPROVAL_FINAL",
    "INPUTS_SECRET_KEY",
    "INPUTS_SECRET_TYPE",
    "WAITING",
    "Approval",
    "ApprovalDecision",
    "JobRun",
    "JobRunPhase",
    "JobRunSpec",
    "JobRunStatus",
    "ResultSummary",
    "WaitingReason",
]

IMMUTABLE = "is immutable: create a new JobRun instead"
# The only Secrets a run takes sensitive inputs from: of this type, and owned by the run (its controller
# owner reference names the run's uid), so a Secret created for another purpose is never mounted.
INPUTS_SECRET_TYPE = "jobplane.io/run-inputs"
INPUTS_SECRET_KEY = "data.json"
# What an approver sets (kubectl annotate) on a JobRun or a JobSchedule of an approval-required job:
# "approve" or "deny". The admission webhook turns it into spec.approval, naming who and when.
APPROVAL_ANNOTATION = "jobplane.io/approval"
# An approval, once given, is final (CEL on spec.approval, and the admission webhook for the annotation).
APPROVAL_FINAL: dict[str, Any] = {
    "rule": "!has(oldSelf.approval) || (has(self.approval) && self.approval == oldSelf.approval)",
    "message": "approval is final: it cannot be changed or withdrawn once given",
}


class JobRunPhase(StrEnum):
    PENDING = "Pending"
    AWAITING_APPROVAL = "AwaitingApproval"
    SCHEDULED = "Scheduled"
    QUEUED = "Queued"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobRunPhase.SUCCEEDED, JobRunPhase.FAILED, JobRunPhase.CANCELLED)


# The condition that says why a run has not started (status True) and that it no longer waits (False).
WAITING = "Waiting"


class WaitingReason(StrEnum):
    """The reasons of a True Waiting condition: what the run waits for, each with a message to act on."""

    QUEUE_CONCURRENCY_LIMIT = "QueueConcurrencyLimit"
    """Its queue runs as many runs as its concurrencyLimit allows; the message names the runs ahead."""
    SINGLETON_LOCK_HELD = "SingletonLockHeld"
    """Its job is a singleton and another run holds the job's lock; the message names that run."""
    AWAITING_APPROVAL = "AwaitingApproval"
    """Its job requires approval and no one other than the requester has approved it yet."""
    INPUTS_SECRET_MISSING = "InputsSecretMissing"
    """Its spec.inputsSecretRef names a Secret that does not exist yet."""
    UNSCHEDULABLE = "Unschedulable"
    """The scheduler finds no node for its pod; the message is the scheduler's."""
    IMAGE_PULL = "ImagePull"
    """The kubelet cannot pull its image; the message is the container's waiting reason and message."""
    CONTAINER_NOT_CREATED = "ContainerNotCreated"
    """The kubelet cannot create its container (a missing ConfigMap or Secret key...)."""
    KUEUE_ADMISSION = "KueueAdmission"
    """Its queue hands runs to a Kueue LocalQueue (spec.kueueLocalQueue) and its Job stays suspended until
    Kueue admits it within the ClusterQueue's quota."""


class ApprovalDecision(StrEnum):
    APPROVED = "Approved"
    DENIED = "Denied"


class Approval(CrdModel):
    """A decision on a run (or schedule) of an approval-required job. Stamped by the admission webhook
    from the annotation jobplane.io/approval (approve or deny) and the Kubernetes user who set it; never
    taken from a manifest, and final once given."""

    decision: ApprovalDecision
    """Approved (the run starts, the schedule fires) or Denied (the run ends Cancelled, reason Denied; the
    schedule never fires)."""
    by: str = Field(min_length=1, max_length=253)
    """Who decided: the Kubernetes user who set the annotation, or the API's user when the API set it."""
    at: datetime
    """When the decision was made."""


def _unchanged_when_set(field: str) -> dict[str, Any]:
    # An optional field may not be added, removed or changed after creation.
    return {
        "rule": (
            f"has(self.{field}) == has(oldSelf.{field})"
            f" && (!has(self.{field}) || self.{field} == oldSelf.{field})"
        ),
        "message": f"{field} {IMMUTABLE}",
    }


class JobRunSpec(CrdModel):
    """What to run; written by people, the API or a GitOps tool, never by the operator."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                *(
                    _unchanged_when_set(field)
                    for field in ("requestedBy", "queue", "inputsSecretRef", "dryRun", "ignoreSingletonLock")
                ),
                APPROVAL_FINAL,
            ]
        }
    }

    job: str = Field(
        min_length=1,
        max_length=255,
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": f"job {IMMUTABLE}"}]
        },
    )
    """The job to run: a JobDefinition name or a class path (<module>.<ClassName>)."""
    data: dict[str, Any] = Field(
        default_factory=dict,
        json_schema_extra={
            "default": {},
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": f"data {IMMUTABLE}"}],
        },
    )
    """The job's inputs, checked against the job's variables schema. Jobs with sensitive variables take
    their inputs from a Secret instead (inputsSecretRef), never from here."""
    inputs_secret_ref: str | None = Field(default=None, max_length=253)
    """Name of the Secret holding the inputs of a job with sensitive variables (key `data.json`). It must
    not exist when the run is created: create it afterwards, of type `jobplane.io/run-inputs` and owned
    by the run (an ownerReference with controller: true and the run's uid). The operator mounts no other
    Secret, and deletes it when the run ends."""
    queue: str | None = Field(default=None, max_length=63)
    """The JobQueue to run on; empty means the job's default queue."""
    dry_run: bool = False
    """Run the job's dry-run path (passed to its DryRunVar named dryrun)."""
    ignore_singleton_lock: bool = False
    """Start even while another run of this singleton job is active (Nautobot's "Ignore singleton lock"):
    the run takes the job's singleton Lease over and the active run is not stopped; later runs wait for
    both. Clears a lock held by a stuck run. Allowed only to a user with the verb force on jobruns (group
    jobplane.io) by RBAC; recorded in the SingletonLockIgnored condition with the requester."""
    cancel: bool = False
    """Set to true to stop the run: its Job and pod are deleted and the run ends Cancelled."""
    requested_by: str | None = Field(default=None, max_length=253)
    """Who asked for the run: stamped by the admission webhook from the Kubernetes user who created it
    (a value given is replaced), except for the API's own identity, which creates runs for its users."""
    approval: Approval | None = None
    """The approval decision, for a job that requires one: set it with `kubectl annotate jobrun <name>
    jobplane.io/approval=approve` (or deny), never here. Only someone other than the requester, allowed
    the verb approve on jobruns (group jobplane.io) by RBAC, may decide."""


class ResultSummary(CrdModel):
    """A short account of the outcome, copied from the pod's termination message."""

    status: str | None = None
    """SUCCESS, FAILURE or REVOKED, as in the JobResult."""
    result: str | None = Field(default=None, max_length=2048)
    """The start of the JSON the job returned."""
    error: str | None = Field(default=None, max_length=2048)
    """The exception, when the job raised one."""


class JobRunStatus(CrdModel):
    """What the operator observed; never written by people."""

    phase: JobRunPhase | None = None
    """Pending, AwaitingApproval, Scheduled, Queued, Running, Succeeded, Failed or Cancelled."""
    reason: str | None = None
    """Why the run is in its phase, in PascalCase (OOMKilled, DeadlineExceeded, Evicted, Unschedulable...)."""
    message: str | None = None
    """Details for a person."""
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Current state, one condition per type: Accepted, Finished, Approved, SingletonLockIgnored, and
    Waiting (True while the run waits, with a reason from QueueConcurrencyLimit, SingletonLockHeld,
    AwaitingApproval, InputsSecretMissing, Unschedulable, ImagePull, ContainerNotCreated, KueueAdmission)."""
    observed_generation: int | None = None
    """The metadata.generation this status describes."""
    job_name: str | None = None
    """The batch/v1 Job this run owns."""
    pod_name: str | None = None
    """The pod that ran (or runs) the job."""
    class_path: str | None = None
    """The job class that runs."""
    queue: str | None = None
    """The queue the run was placed on."""
    queue_position: int | None = None
    """Position among the queue's waiting runs, while Queued."""
    commit: str | None = None
    """The Git commit of the job code, for jobs from a repository."""
    image_digest: str | None = Field(default=None, max_length=200)
    """The digest of the image the job's container ran (sha256:...), from its pod's status (imageID)."""
    attempt: int | None = None
    """How many times a pod was started for this run."""
    start_time: datetime | None = None
    """When the pod started running the job."""
    completion_time: datetime | None = None
    """When the run reached its terminal phase."""
    result: ResultSummary | None = None
    """The outcome, in short."""
    singleton_lock_taken_from: list[str] | None = None
    """The active runs that held this singleton job's Lease when this run, forced by
    spec.ignoreSingletonLock, took it over; they were not stopped."""
    approval: Approval | None = None
    """The approval decision the run started (or was denied) with, copied from spec.approval."""


class JobRun(Resource):
    """A request to run a job once."""

    kind_name = "JobRun"
    plural = "jobruns"
    short_names = ("jr",)
    printer_columns = (
        PrinterColumn(name="Job", type="string", json_path=".spec.job"),
        PrinterColumn(name="Queue", type="string", json_path=".status.queue"),
        PrinterColumn(name="Phase", type="string", json_path=".status.phase"),
        PrinterColumn(name="Reason", type="string", json_path=".status.reason"),
        PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),
        PrinterColumn(name="Requested-By", type="string", json_path=".spec.requestedBy", priority=1),
        PrinterColumn(name="Approval", type="string", json_path=".spec.approval.decision", priority=1),
        PrinterColumn(name="Approved-By", type="string", json_path=".spec.approval.by", priority=1),
        PrinterColumn(name="Forced", type="boolean", json_path=".spec.ignoreSingletonLock", priority=1),
    )

    kind: str = "JobRun"
    spec: JobRunSpec
    status: JobRunStatus | None = None
