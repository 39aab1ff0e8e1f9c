"""Why a run has not started: its Waiting condition, decided from the phase and reason of its status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobplane_crds.v1alpha1 import WAITING, JobRunPhase, WaitingReason
from jobplane_operator.reconcile.conditions import condition

# The status reason of a run whose Job is suspended, waiting for Kueue to admit it (spec.kueueLocalQueue).
KUEUE_ADMISSION = "KueueAdmission"

__all__ = ["KUEUE_ADMISSION", "Waiting", "names_in_short", "waiting_condition", "waiting_of"]

# The status reasons (phase, reason) the reconcile writes while a run waits for something it can name.
_WAITING_FOR: dict[tuple[JobRunPhase, str], WaitingReason] = {
    (JobRunPhase.QUEUED, "ConcurrencyLimit"): WaitingReason.QUEUE_CONCURRENCY_LIMIT,
    (JobRunPhase.QUEUED, "SingletonActive"): WaitingReason.SINGLETON_LOCK_HELD,
    (JobRunPhase.PENDING, "WaitingForInputs"): WaitingReason.INPUTS_SECRET_MISSING,
    (JobRunPhase.PENDING, "Unschedulable"): WaitingReason.UNSCHEDULABLE,
    (JobRunPhase.PENDING, "ImagePullFailed"): WaitingReason.IMAGE_PULL,
    (JobRunPhase.PENDING, "CreateContainerFailed"): WaitingReason.CONTAINER_NOT_CREATED,
    (JobRunPhase.PENDING, KUEUE_ADMISSION): WaitingReason.KUEUE_ADMISSION,
}
NAMES_SHOWN = 5


@dataclass(frozen=True)
class Waiting:
    """What a run waits for (a reason of the Waiting condition) and what a person can do about it."""

    reason: WaitingReason
    message: str


def waiting_of(phase: JobRunPhase, reason: str, message: str) -> Waiting | None:
    """What the run waits for, from the status the reconcile is about to write; None when it waits for
    nothing it can name (it runs, it ended, or its pod is being created)."""
    if phase == JobRunPhase.AWAITING_APPROVAL:
        return Waiting(
            WaitingReason.AWAITING_APPROVAL,
            message or "The job requires approval: someone other than the requester must approve this run",
        )
    found = _WAITING_FOR.get((phase, reason))
    if found is None:
        return None
    if found == WaitingReason.UNSCHEDULABLE:
        message = f"The scheduler finds no node for the pod: {message or 'no message'}"
    return Waiting(found, message)


def waiting_condition(
    old_status: Mapping[str, Any] | None,
    phase: JobRunPhase,
    reason: str,
    message: str,
    *,
    generation: int,
    now: datetime,
) -> dict[str, Any] | None:
    """The Waiting condition of the status being written, or None for a run that never waited.

    True, with the reason and message of what it waits for; once it no longer waits, False with the
    status's own reason (JobCreated, PodRunning, Completed...), so the last wait stays readable in its
    lastTransitionTime.
    """
    waiting = waiting_of(phase, reason, message)
    if waiting is not None:
        return condition(
            old_status, WAITING, "True", waiting.reason, waiting.message, generation=generation, now=now
        )
    had = any(c.get("type") == WAITING for c in (old_status or {}).get("conditions") or [])
    if not had:
        return None
    return condition(
        old_status,
        WAITING,
        "False",
        reason,
        f"No longer waiting: the run is {phase.value}",
        generation=generation,
        now=now,
    )


def names_in_short(names: Sequence[str], limit: int = NAMES_SHOWN) -> str:
    """Names for a message: all of a few, else the first ``limit`` and how many more."""
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"
