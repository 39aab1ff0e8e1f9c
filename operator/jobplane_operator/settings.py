"""Settings of the operator, read from ``JOBPLANE_OPERATOR_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobplane_crds.runtoken import MIN_KEY_BYTES

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

    # --- the job-data database (ObjectVar look-ups, Job.db) -------------------------------------
    data_database_secret: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
        description=(
            "Secret, in every run namespace, holding the SQLAlchemy URL of the database jobs read and change "
            "(never the API's results store). Mounted into run pods only (not repository syncs), as a file; "
            "the operator never reads it. Empty: pods have no data database."
        ),
    )
    data_database_secret_key: str = Field(
        default="url",
        pattern=r"^[-._a-zA-Z0-9]+$",
        max_length=253,
        description="The key of the URL in that Secret.",
    )

    # --- reporting to the API ----------------------------------------------------------------
    api_url: str | None = Field(
        default=None,
        description=(
            "URL job pods reach the API at (http://jobplane-api.jobplane.svc:8000); when set, each run gets "
            "a run-scoped token Secret and its pod reports logs, files and its result there."
        ),
    )
    run_token_key: SecretStr | None = Field(
        default=None,
        description="Key of the run-scoped tokens, shared with the API (at least 32 bytes); needs api_url.",
    )
    run_token_key_file: Path | None = Field(
        default=None, description="File holding that key instead (a mounted Secret)."
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

    # --- admission: what a resource may claim (every replica serves it) -------------------------
    controllers: bool = Field(
        default=True,
        description=(
            "Run the controllers (runs, repositories, definitions) behind the Lease; false serves "
            "admission only (a replica of its own, or the tests' shared admission server)."
        ),
    )
    webhook_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description=(
            "Port of the HTTPS admission webhook (the chart: 9443); 0 serves none. Without it nothing "
            "stamps requestedBy or checks a kubectl JobRun before it is stored: unsafe beyond a test."
        ),
    )
    webhook_address: str = Field(default="0.0.0.0", description="Address the admission webhook listens on.")
    webhook_cert_file: Path | None = Field(
        default=None, description="The webhook's serving certificate (PEM); re-read when it changes."
    )
    webhook_key_file: Path | None = Field(default=None, description="Its private key (PEM).")
    webhook_ready_file: Path | None = Field(
        default=None,
        description="A file that exists while the webhook listens (a readiness probe that tells replicas "
        "apart even when they share a port on the host's network).",
    )
    trusted_requesters: list[str] = Field(
        default_factory=list,
        description=(
            "Kubernetes usernames (JSON list) that may create a JobRun on behalf of someone else, keeping "
            "its spec.requestedBy: the API's service account (system:serviceaccount:NS:NAME). Everyone "
            "else's runs are stamped with their own username."
        ),
    )
    self_approval_groups: list[str] = Field(
        default_factory=list,
        description=(
            "Kubernetes groups (JSON list) whose members may approve or deny their own runs and schedules "
            "of approval-required jobs through kubectl, as Nautobot's superusers might if configured. "
            "Empty, the default: nobody approves their own request (Nautobot 2.x refuses it even to "
            "superusers); the API never lets its users do it whatever this says."
        ),
    )

    # --- observability -----------------------------------------------------------------------
    metrics_address: str = Field(default="0.0.0.0", description="Address of the Prometheus endpoint.")
    metrics_port: int = Field(default=8080, ge=0, le=65535, description="Port of /metrics; 0 turns it off.")

    job_ttl_seconds: int = Field(
        default=3600,
        ge=0,
        description=(
            "ttlSecondsAfterFinished of job pods' Jobs: how long a finished Job and its pod (and logs) "
            "stay; 0 keeps them until their JobRun is deleted. A run not started within this time of its "
            "creation ends NotStartedInTime (a Job it had would be gone: it might have run)."
        ),
    )

    run_ttl_seconds: int | None = Field(
        default=86400,
        ge=0,
        description=(
            "Seconds a finished JobRun stays in the cluster after it ended, unless its JobQueue sets "
            "spec.ttlSecondsAfterFinished: then it is deleted, with its Job and pod. 0 deletes it as soon "
            "as it ends; empty (the chart: null) keeps finished runs until someone deletes them. One day by "
            "default. Its JobResult, logs and files stay in the API's database under their own retention."
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

    # --- jobs from Git repositories (JobRepository) -------------------------------------------
    allow_file_urls: bool = Field(
        default=False,
        description=(
            "Accept file:// repository URLs. Off by default: such a URL reads the operator's and the pods' "
            "own file systems; for tests and repositories mounted into the pods by a queue."
        ),
    )
    repository_queue: str = Field(
        default="default",
        description=(
            "JobQueue (in the repository's namespace) whose placement, image and pod template the sync "
            "Jobs use; without such a queue they run with the operator's defaults, like runs."
        ),
    )
    repository_sync_timeout: int = Field(
        default=300,
        ge=10,
        description=(
            "Seconds a sync may take: resolving the ref (git ls-remote) in the operator, and the whole "
            "sync Job (fetch, imports, report) as its activeDeadlineSeconds."
        ),
    )
    repository_max_bytes: int = Field(
        default=512 * 1024 * 1024,
        gt=0,
        description="Largest fetch of a repository commit, in bytes, for sync Jobs and job pods alike.",
    )
    repository_poll_check: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Seconds between looks at which repositories are due (their interval elapsed): the finest "
            "interval a JobRepository gets. Webhooks and sync requests do not wait for it."
        ),
    )

    @field_validator("run_ttl_seconds", mode="before")
    @classmethod
    def _empty_keeps_runs(cls, value: object) -> object:
        # An environment variable cannot be null: set and empty says "no TTL".
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _webhook_has_a_certificate(self) -> OperatorSettings:
        if self.webhook_port and not (self.webhook_cert_file and self.webhook_key_file):
            raise ValueError(
                "JOBPLANE_OPERATOR_WEBHOOK_PORT needs JOBPLANE_OPERATOR_WEBHOOK_CERT_FILE and "
                "JOBPLANE_OPERATOR_WEBHOOK_KEY_FILE: the apiserver only calls webhooks over HTTPS"
            )
        if not self.controllers and not self.webhook_port:
            raise ValueError(
                "JOBPLANE_OPERATOR_CONTROLLERS=false leaves nothing to do without a webhook port"
            )
        return self

    @model_validator(mode="after")
    def _token_key_with_api_url(self) -> OperatorSettings:
        if self.run_token_key is not None and self.run_token_key_file is not None:
            raise ValueError(
                "set only one of JOBPLANE_OPERATOR_RUN_TOKEN_KEY and JOBPLANE_OPERATOR_RUN_TOKEN_KEY_FILE"
            )
        if self.api_url:
            if self.run_token_key is None and self.run_token_key_file is None:
                raise ValueError(
                    "JOBPLANE_OPERATOR_API_URL needs the run-token key the API shares: set "
                    "JOBPLANE_OPERATOR_RUN_TOKEN_KEY or JOBPLANE_OPERATOR_RUN_TOKEN_KEY_FILE"
                )
            key = self.token_key()
            if key is None or len(key) < MIN_KEY_BYTES:
                raise ValueError(f"the run-token key must be at least {MIN_KEY_BYTES} bytes long")
        return self

    def token_key(self) -> bytes | None:
        """The run-token key (the file is read at each call, so a rotated Secret is picked up)."""
        if self.run_token_key_file is not None:
            try:
                return self.run_token_key_file.read_bytes().strip()
            except OSError as exc:
                where = self.run_token_key_file
                raise ValueError(
                    f"cannot read JOBPLANE_OPERATOR_RUN_TOKEN_KEY_FILE {where}: {exc.strerror}"
                ) from None
        if self.run_token_key is not None:
            return self.run_token_key.get_secret_value().encode()
        return None


def get_operator_settings() -> OperatorSettings:
    return OperatorSettings()
