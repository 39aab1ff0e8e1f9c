"""Version v1alpha1 of the jobplane.io resources."""

from __future__ import annotations

from jobplane_crds.v1alpha1.common import VERSION, Condition, Resource
from jobplane_crds.v1alpha1.jobdefinition import JobDefinition, JobDefinitionSpec, JobDefinitionStatus
from jobplane_crds.v1alpha1.jobqueue import JobQueue, JobQueueSpec, JobQueueStatus
from jobplane_crds.v1alpha1.jobrepository import JobRepository, JobRepositorySpec, JobRepositoryStatus
from jobplane_crds.v1alpha1.jobrun import (
    APPROVAL_ANNOTATION,
    INPUTS_SECRET_KEY,
    INPUTS_SECRET_TYPE,
    WAITING,
    Approval,
    ApprovalDecision,
    JobRun,
    JobRunPhase,
    JobRunSpec,
    JobRunStatus,
    WaitingReason,
)
from jobplane_crds.v1alpha1.jobschedule import (
    SCHEDULE_INPUTS_SECRET_TYPE,
    ConcurrencyPolicy,
    Interval,
    JobSchedule,
    JobScheduleSpec,
    JobScheduleStatus,
)

KINDS: tuple[type[Resource], ...] = (JobDefinition, JobRun, JobQueue, JobRepository, JobSchedule)

__all__ = [
    "APPROVAL_ANNOTATION",
    "INPUTS_SECRET_KEY",
    "INPUTS_SECRET_TYPE",
    "KINDS",
    "SCHEDULE_INPUTS_SECRET_TYPE",
    "VERSION",
    "WAITING",
    "Approval",
    "ApprovalDecision",
    "ConcurrencyPolicy",
    "Condition",
    "Interval",
    "JobDefinition",
    "JobDefinitionSpec",
    "JobDefinitionStatus",
    "JobQueue",
    "JobQueueSpec",
    "JobQueueStatus",
    "JobRepository",
    "JobRepositorySpec",
    "JobRepositoryStatus",
    "JobRun",
    "JobRunPhase",
    "JobRunSpec",
    "JobRunStatus",
    "JobSchedule",
    "JobScheduleSpec",
    "JobScheduleStatus",
    "WaitingReason",
]
