"""What a custom resource may claim when it is created or changed: pure decisions of the admission webhook.

Kubernetes RBAC decides who may create a JobRun, a JobQueue or a JobRepository; these functions decide what
that object may claim on its author's behalf (who asked for it, which job and inputs, which Secret). The
kopf handlers in ``jobplane_operator.admission`` read what they need and call these; no I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobplane_crds.v1alpha1 import (
    APPROVAL_ANNOTATION,
    SCHEDULE_INPUTS_SECRET_TYPE,
    ApprovalDecision,
    JobDefinition,
    JobRun,
    JobRunSpec,
    JobSchedule,
)
from jobplane_crds.v1alpha1.schedule_times import schedule_error
from jobplane_operator.reconcile.conditions import rfc3339
from jobplane_operator.reconcile.jobrun import Refusal, check_runnable, default_queue, find_definition

__all__ = [
    "APPROVAL_VALUES",
    "FORCE_VERB",
    "Denial",
    "approval_of",
    "force_denial",
    "only_restrains",
    "pods_denial",
    "requester_of",
    "review_approval",
    "review_run",
    "review_schedule",
    "schedule_requester",
    "status_code",
]

# How a refusal reads at `kubectl apply`: the HTTP status the apiserver reports for it.
_CODES = {
    "JobNotFound": 404,
    "JobNotDiscovered": 404,
    "QueueNotFound": 404,
    "JobDisabled": 403,
    "RequesterSpoofed": 403,
    "NotAllowedToCreatePods": 403,
    "NotAllowedToCreateRuns": 403,
    "JobNotInstalled": 405,
    "ApproverSpoofed": 403,
    "SelfApproval": 403,
    "NotAllowedToApprove": 403,
    "ApprovalFinal": 409,
    "NotAllowedToForce": 403,
}
# The custom RBAC verb (on jobruns, group jobplane.io) that lets a kubectl user force a singleton job's run.
FORCE_VERB = "force"
# The annotation's values and the decisions they make.
APPROVAL_VALUES = {"approve": ApprovalDecision.APPROVED, "deny": ApprovalDecision.DENIED}


@dataclass(frozen=True)
class Denial:
    """Why an object is refused at admission: a PascalCase reason and a message a person can act on."""

    reason: str
    message: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


def status_code(denial: Denial) -> int:
    """The HTTP status of a refusal (400 for what the object says, 403/404/405 as the API answers)."""
    return _CODES.get(denial.reason, 400)


def requester_of(given: str | None, username: str, trusted: Collection[str]) -> str:
    """Who a new JobRun is requested by: the Kubernetes user who creates it, whatever the manifest says.

    A trusted identity (the API's service account) creates runs for its own users, so its value is kept;
    it is never taken from a field anyone could set.
    """
    if username in trusted and given:
        return given
    return username


def review_run(
    run: JobRun,
    *,
    username: str,
    trusted: Collection[str],
    definitions: list[JobDefinition],
    queue_exists: Callable[[str], bool],
    secret_exists: Callable[[str], bool],
) -> Denial | None:
    """Why a new JobRun may not be stored, or None: the same rules, and messages, as a run's start.

    The job must exist, be installed and enabled, may use the queue, and the inputs must fit its
    variables schema (one validator: the API's and the operator's); approval-required jobs are refused
    until approvals exist. ``requestedBy`` must be the creator's own name unless they are trusted. A
    sensitive job's inputs Secret must not exist yet: the run's creator makes it afterwards, owned by the
    run, so no Secret made for something else can be claimed.
    """
    if run.spec.requested_by != requester_of(run.spec.requested_by, username, trusted):
        return Denial(
            "RequesterSpoofed",
            f"spec.requestedBy is {run.spec.requested_by!r} but the run is created by {username!r}: only "
            "the Jobplane API creates runs for someone else",
        )
    definition = find_definition(run.spec.job, definitions)
    queue = run.spec.queue or default_queue(definition)
    refusal: Refusal | None = check_runnable(run, definition, queue, queue_exists(queue))
    if refusal is not None:
        return Denial(refusal.reason, refusal.message)
    ref = run.spec.inputs_secret_ref
    if ref and secret_exists(ref):
        return Denial(
            "InputsSecretExists",
            f"Secret {ref!r} (spec.inputsSecretRef) exists already, so it was not made for this run: name "
            "a Secret that does not exist yet, then create it of type jobplane.io/run-inputs with an "
            "ownerReference to this JobRun",
        )
    return None


def force_denial(
    run: JobRun, *, username: str, namespace: str, trusted: Collection[str], may_force: Callable[[], bool]
) -> Denial | None:
    """Why a run may not ignore its singleton job's lock (spec.ignoreSingletonLock), or None.

    Creating JobRuns is not enough: RBAC cannot narrow create to one job, and it is what CI and GitOps
    identities hold; forcing starts a singleton job beside a run that is still active, which the job's
    author or admin made a singleton to prevent. It takes the custom verb force on jobruns
    (``may_force``: a SubjectAccessReview), as approving takes approve. The API (trusted) checked its own
    user's run permission on the job, as Nautobot's form does.
    """
    if not run.spec.ignore_singleton_lock or username in trusted:
        return None
    if may_force():
        return None
    return Denial(
        "NotAllowedToForce",
        f"{username!r} may not set spec.ignoreSingletonLock in namespace {namespace!r}: that takes the verb "
        f"{FORCE_VERB} on jobruns (group jobplane.io) by RBAC, beside create",
    )


def pods_denial(kind: str, may_create_pods: bool, namespace: str, username: str) -> Denial | None:
    """A JobQueue's pod template (or a JobRepository's code) makes the operator start pods as it says:
    only someone who may create pods in the namespace themselves may write one."""
    if may_create_pods:
        return None
    return Denial(
        "NotAllowedToCreatePods",
        f"{username!r} may not create pods in namespace {namespace!r}, and a {kind} makes the operator "
        "create pods as it describes: ask for that right, or for someone who has it to apply this",
    )


# Fields of a JobSchedule whose change gives its fires nothing new: pausing it, trimming its history.
_RESTRAINING = frozenset(
    {"requestedBy", "suspend", "successfulRunsHistoryLimit", "failedRunsHistoryLimit", "approval"}
)


def only_restrains(old_spec: dict[str, Any], new_spec: dict[str, Any]) -> bool:
    """Whether an update of a JobSchedule changes nothing its fires do, or only stops them (suspend: true)
    or trims their history: such an edit keeps the schedule's requester and needs no right to run."""

    def rest(spec: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in spec.items() if key not in _RESTRAINING}

    resumes = bool(old_spec.get("suspend")) and not new_spec.get("suspend")
    return rest(old_spec) == rest(new_spec) and not resumes


def schedule_requester(
    given: str | None, old_spec: dict[str, Any] | None, new_spec: dict[str, Any], username: str,
    trusted: Collection[str],
) -> str:  # fmt: skip
    """Whose runs a JobSchedule's fires are: the Kubernetes user who created it, or who last changed what
    its fires do (its job, data, queue, times, or resumed it). A fire then never carries the identity of
    someone other than the person who decided it. The API (trusted) writes schedules for its users.
    """
    if username in trusted and given:
        return given
    if old_spec is not None and only_restrains(old_spec, new_spec) and old_spec.get("requestedBy"):
        return str(old_spec["requestedBy"])
    return username


def review_schedule(
    schedule: JobSchedule,
    old_spec: dict[str, Any] | None,
    *,
    username: str,
    trusted: Collection[str],
    definitions: list[JobDefinition],
    queue_exists: Callable[[str], bool],
    secret_exists: Callable[[str], bool],
    may_create_runs: Callable[[], bool],
) -> Denial | None:
    """Why a JobSchedule may not be stored (created, or changed as ``old_spec`` was), or None.

    Its author must be allowed to create JobRuns in the namespace by their own RBAC (a schedule is runs
    made later, on their behalf), and every fire is checked now as a run would be (job, queue, inputs,
    approval): a schedule that can never fire is refused at apply rather than skipped at each fire.
    Updates that only pause it or trim its history are let through without these checks.
    """
    spec = schedule.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    expected = schedule_requester(schedule.spec.requested_by, old_spec, spec, username, trusted)
    if schedule.spec.requested_by != expected:
        return Denial(
            "RequesterSpoofed",
            f"spec.requestedBy is {schedule.spec.requested_by!r} but must be {expected!r}: a schedule's "
            "fires are requested by whoever created it or last changed what it runs",
        )
    if old_spec is not None and only_restrains(old_spec, spec):
        return None  # an approval decision is reviewed by review_approval
    if old_spec is not None and old_spec.get("approval"):
        decided = old_spec["approval"]
        return Denial(
            "ApprovalFinal",
            f"this JobSchedule was {decided.get('decision')} by {decided.get('by')}: what it runs and when "
            "can no longer change; create a new JobSchedule",
        )
    if username not in trusted and not may_create_runs():
        return Denial(
            "NotAllowedToCreateRuns",
            f"{username!r} may not create JobRuns in this namespace, and a JobSchedule creates them on its "
            "author's behalf: ask for that right, or for someone who has it to apply this",
        )
    error = schedule_error(schedule.spec.schedule)
    if error is not None:
        return Denial("InvalidSchedule", error)
    run = JobRun(
        metadata=schedule.metadata,
        spec=JobRunSpec(
            job=schedule.spec.job,
            data=schedule.spec.data,
            queue=schedule.spec.queue,
            inputs_secret_ref=schedule.spec.inputs_secret_ref,
            requested_by=username,
        ),
    )
    denial = review_run(
        run, username=username, trusted=(), definitions=definitions, queue_exists=queue_exists,
        secret_exists=lambda name: False,
    )  # fmt: skip
    if denial is not None:
        return denial
    ref = schedule.spec.inputs_secret_ref
    if old_spec is None and ref and secret_exists(ref):
        return Denial(
            "InputsSecretExists",
            f"Secret {ref!r} (spec.inputsSecretRef) exists already, so it was not made for this schedule: "
            f"name a Secret that does not exist yet, then create it of type {SCHEDULE_INPUTS_SECRET_TYPE} "
            "with an ownerReference to this JobSchedule",
        )
    return None


# --- approvals ------------------------------------------------------------------------------------------


def _annotation(annotations: Mapping[str, Any] | None) -> str | None:
    value = (annotations or {}).get(APPROVAL_ANNOTATION)
    return None if value is None else str(value)


def approval_of(
    annotations: Mapping[str, Any] | None,
    given: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    *,
    username: str,
    trusted: Collection[str],
    now: datetime,
) -> dict[str, Any] | None:
    """The spec.approval the mutating webhook stamps on a JobRun or JobSchedule being written.

    A decision already given stays as it is (the validating webhook refuses any change). Otherwise the
    annotation jobplane.io/approval (approve or deny) makes one, by the Kubernetes user writing it, now.
    A trusted identity (the API for its users, the operator copying an approved schedule's decision to a
    fire's run) names the approver in spec.approval.by, as it names the requester; anyone else's value is
    replaced. Without the annotation, what was given is left for the validating webhook to refuse.
    """
    if old:
        return dict(old)
    decision = APPROVAL_VALUES.get(_annotation(annotations) or "")
    if decision is None:
        return dict(given) if given else None
    if username in trusted and given and given.get("by"):
        return {"decision": decision.value, "by": str(given["by"]), "at": given.get("at") or rfc3339(now)}
    return {"decision": decision.value, "by": username, "at": rfc3339(now)}


def review_approval(
    kind: str,
    *,
    requested_by: str | None,
    annotations: Mapping[str, Any] | None,
    approval: Mapping[str, Any] | None,
    old_annotations: Mapping[str, Any] | None,
    old_approval: Mapping[str, Any] | None,
    creating: bool,
    username: str,
    groups: Collection[str],
    trusted: Collection[str],
    self_approval_groups: Collection[str],
    may_approve: Callable[[], bool],
) -> Denial | None:
    """Why an approval decision written to a JobRun or JobSchedule (``kind``) may not be stored, or None.

    A decision is final: once spec.approval is set, neither it nor the annotation may change. A new one
    must come from the annotation and name the user who wrote it (a trusted identity names its own
    user). The approver may not be the requester, unless they are in one of ``self_approval_groups`` (the
    operator setting, empty by default; never for a trusted identity's users, as the API's Nautobot-style
    users never approve their own). And the approver needs the custom RBAC verb ``approve`` on the kind's
    resource in group jobplane.io (``may_approve``: a SubjectAccessReview), as approving a CSR needs
    ``approve`` on signers; a trusted identity checked its own user's permission instead.
    """
    value = _annotation(annotations)
    if value is not None and value not in APPROVAL_VALUES:
        return Denial(
            "InvalidApproval",
            f"annotation {APPROVAL_ANNOTATION} is {value!r}: it takes approve or deny",
        )
    if old_approval:
        decided = f"{old_approval.get('decision')} by {old_approval.get('by')} at {old_approval.get('at')}"
        if dict(approval or {}) != dict(old_approval):
            return Denial("ApprovalFinal", f"this {kind} was {decided}: spec.approval cannot change")
        if value != _annotation(old_annotations) and APPROVAL_VALUES.get(value or "") != ApprovalDecision(
            str(old_approval.get("decision"))
        ):
            return Denial(
                "ApprovalFinal",
                f"this {kind} was {decided}: a decision cannot be changed or withdrawn",
            )
        return None
    if not approval:
        return None
    is_trusted = username in trusted
    if value is None or (not is_trusted and approval.get("by") != username):
        return Denial(
            "ApproverSpoofed",
            f"spec.approval is set only by the admission webhook, from annotation {APPROVAL_ANNOTATION} "
            f"(approve or deny) and the user who sets it ({username!r})",
        )
    approver = str(approval.get("by") or "")
    if approver == (requested_by or ""):
        # The operator copies a schedule's decision, checked when it was given, to the fires' runs.
        own_allowed = (not is_trusted and bool(set(groups) & set(self_approval_groups))) or (
            is_trusted and creating
        )
        if not own_allowed:
            return Denial(
                "SelfApproval",
                f"{approver!r} requested this {kind} and cannot approve or deny their own request: "
                "someone else must decide",
            )
    if not is_trusted and not may_approve():
        return Denial(
            "NotAllowedToApprove",
            f"{username!r} may not approve {kind}s in this namespace: that takes the verb approve on "
            f"resource {kind.lower()}s in group jobplane.io (a Role or ClusterRole rule)",
        )
    return None
