"""JobRepository: a Git repository of job code, synced by the operator into JobDefinitions."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from jobplane_crds.gitcontract import PASSWORD_IN_URL, SLUG_PATTERN
from jobplane_crds.times import DURATION_PATTERN
from jobplane_crds.v1alpha1.common import Condition, CrdModel, PrinterColumn, Resource

__all__ = ["JobRepository", "JobRepositorySpec", "JobRepositoryStatus"]


class JobRepositorySpec(CrdModel):
    """Where the job code is and how closely to follow it; written by people, the API or GitOps."""

    # A password in the URL would sit in etcd, in every copy of the manifest and in the API's answers:
    # refused at admission, so that credentials only ever live in the Secret.
    url: str = Field(
        min_length=1,
        max_length=2048,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"!self.matches('{PASSWORD_IN_URL}')",
                    "message": "url must not hold a password: put credentials in the Secret named by "
                    "credentialsSecretRef",
                }
            ]
        },
    )
    """The Git URL to clone (https://, http://, ssh:// or git@host:path). Credentials never go here: a
    URL holding a password is refused."""
    ref: str = Field(default="main", min_length=1, max_length=255)
    """The branch, tag or commit to follow."""
    credentials_secret_ref: str | None = Field(default=None, max_length=253)
    """Name of a Secret in this namespace with the Git credentials: keys `username` and `password`
    (HTTP basic; a token goes in `password`), or `identity` (an SSH private key) and `known_hosts`. It is
    used only if labelled `jobplane.io/secret-type: repository-credentials` with a key `url` holding a
    prefix of this repository's URL; otherwise the sync fails with reason CredentialsNotScoped."""
    slug: str = Field(
        pattern=SLUG_PATTERN,
        max_length=63,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self == oldSelf",
                    "message": "slug is immutable: create a new JobRepository instead",
                }
            ]
        },
    )
    """The Python package name of the repository: its jobs import as <slug>.jobs.<module>.<Class>.
    Unique among the namespace's repositories, and immutable (the jobs' class paths depend on it)."""
    interval: str = Field(default="5m", pattern=DURATION_PATTERN, max_length=32)
    """How often to look for new commits on the ref, as a Go duration (30s, 5m, 1h30m); the operator looks
    at most every few seconds (its repository_poll_check). A failing repository is tried again sooner, 10 s
    after the failure, then ever less often up to this interval. A webhook or a sync request does not wait."""
    suspend: bool = False
    """Stop following the repository, as Flux does: no polling, and webhook or manual sync requests wait
    until it is unset (a sync already running still completes). Its jobs stay installed as they are."""


class JobRepositoryStatus(CrdModel):
    """What the operator found in the repository; never written by people."""

    commit: str | None = None
    """The commit whose jobs are installed: the last one synced successfully."""
    last_sync_time: datetime | None = None
    """When that commit's jobs were applied."""
    last_check_time: datetime | None = None
    """When the operator last resolved the ref (a poll, a request or a spec change)."""
    sync_request: str | None = None
    """The value of the jobplane.io/sync-requested-at annotation last acted on."""
    class_paths: list[str] = Field(default_factory=list)
    """The job classes the installed commit provides."""
    import_errors: dict[str, str] = Field(default_factory=dict)
    """Modules of the installed commit that failed to import, with their errors; their jobs are
    kept as the last good import described them."""
    sync_job: str | None = None
    """The batch/v1 Job syncing the repository now, if any."""
    syncing_commit: str | None = None
    """The commit that Job syncs."""
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Current state, one condition per type: Synced (the last sync worked) and Degraded (modules failed
    to import)."""
    observed_generation: int | None = None
    """The metadata.generation last acted on."""


class JobRepository(Resource):
    """A Git repository of jobs: its commits' job classes become JobDefinitions."""

    kind_name = "JobRepository"
    plural = "jobrepositories"
    short_names = ("jrepo",)
    printer_columns = (
        PrinterColumn(name="URL", type="string", json_path=".spec.url"),
        PrinterColumn(name="Ref", type="string", json_path=".spec.ref"),
        PrinterColumn(name="Commit", type="string", json_path=".status.commit"),
        PrinterColumn(
            name="Synced", type="string", json_path='.status.conditions[?(@.type=="Synced")].status'
        ),
        PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),
        PrinterColumn(
            name="Reason",
            type="string",
            json_path='.status.conditions[?(@.type=="Synced")].reason',
            priority=1,
        ),
    )

    kind: str = "JobRepository"
    spec: JobRepositorySpec
    status: JobRepositoryStatus | None = None
