"""Settings of the operator, read from ``JOBPLANE_OPERATOR_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["OperatorSettings", "get_operator_settings"]


class OperatorSettings(BaseSettings):
    """How the operator runs; build it with :func:`get_operator_settings`."""

    model_config = SettingsConfigDict(env_prefix="JOBPLANE_OPERATOR_", extra="ignore", frozen=True)

    # --- what it watches ---------------------------------------------------------------------
    namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces whose JobRuns it reconciles (JSON list); empty means the whole cluster.",
    )

    # --- the pods it starts ------------------------------------------------------------------
    image: str = Field(
        default="jobplane:latest",
        description="Image of job pods whose queue names none: the image the jobs were discovered in.",
    )

    # --- high availability: several replicas, one leader ---------------------------------------
    leader_election: bool = Field(
        default=True, description="Act only while holding the Lease, so replicas never act at once."
    )
    lease_name: str = Field(default="jobplane-operator", description="Name of the coordination.k8s.io Lease.")
    lease_namespace: str = Field(
        default="default", description="Namespace of the Lease (the operator's own)."
    )
    lease_duration: int = Field(
        default=15, ge=4, description="Seconds a leader's Lease lasts without renewal (takeover time)."
    )

    # --- observability -----------------------------------------------------------------------
    metrics_address: str = Field(default="0.0.0.0", description="Address of the Prometheus endpoint.")
    metrics_port: int = Field(default=8080, ge=0, le=65535, description="Port of /metrics; 0 turns it off.")

    job_ttl_seconds: int = Field(
        default=3600,
        ge=0,
        description=(
            "ttlSecondsAfterFinished of job pods' Jobs: how long a finished Job and its pod (and logs) "
            "stay; 0 keeps them until their JobRun is deleted."
        ),
    )

    # --- how it decides ----------------------------------------------------------------------
    pending_timeout: float = Field(
        default=20.0,
        gt=0,
        description=(
            "Seconds a pod may stay unschedulable or unable to pull its image before its run fails; "
            "raise it for node pools that a cluster autoscaler grows on demand."
        ),
    )
    resync_interval: float = Field(
        default=5.0, gt=0, description="Seconds between re-checks of a run that waits (Pending, Queued)."
    )
    running_resync_interval: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between safety re-checks of a Running run (its Job's events do the work).",
    )


def get_operator_settings() -> OperatorSettings:
    return OperatorSettings()
