"""Settings of the SDK, the runner and the CLI, read from ``JOBPLANE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobplane.localsettings import data_database_url_of
from jobplane_crds.envcontract import GitFetchFields

__all__ = ["Settings", "get_settings"]


class Settings(GitFetchFields, BaseSettings):
    """Everything the SDK reads from the environment; build it with :func:`get_settings`.

    A local run reads its fields through :func:`jobplane.localsettings.read_local_settings` first (the same
    defaults, without pydantic), and comes here for anything that is not plainly valid. The bounds of a fetch
    of job code (``git_timeout``, ``git_max_bytes``) are the pod contract's
    :class:`~jobplane_crds.envcontract.GitFetchFields`, which the operator writes into the pods it starts
    (as GitFetchLimits).
    """

    model_config = SettingsConfigDict(env_prefix="JOBPLANE_", extra="ignore", frozen=True)

    # --- where jobs come from -------------------------------------------------------------
    jobs_root: Path = Field(
        default=Path("jobs/examples"),
        description=(
            "Folder whose Python modules and packages are imported by file name to discover jobs, "
            "as Nautobot's JOBS_ROOT. Defaults to the bundled examples of a checkout."
        ),
    )
    jobs_entry_point_group: str = Field(
        default="jobplane.jobs",
        description="Entry-point group naming installed modules that register jobs.",
    )

    # --- jobs from Git repositories (sync-repo, and run-pod of a repository's job) ---------------
    # git_timeout and git_max_bytes: GitFetchFields (the pod contract), above.
    git_workdir: Path = Field(
        default=Path("/tmp/jobplane-repos"),
        description=(
            "Where run-pod checks out a repository job's commit (a folder per slug); it goes on sys.path. "
            "Under /tmp, the one writable place of a pod with a read-only root filesystem."
        ),
    )

    # --- where the cluster is ---
    namespace: str = Field(
        default="default",
        description="Namespace of the Jobplane resources this process reads and writes (sync-jobs).",
    )

    # --- the API, for `jobplane runjob` without --local ------------------------------------
    url: str | None = Field(
        default=None, description="URL of the Jobplane API that `runjob` submits runs to (JOBPLANE_URL)."
    )
    token: SecretStr | None = Field(
        default=None, description="API token for `runjob` (JOBPLANE_TOKEN); never printed."
    )

    # --- where results go -----------------------------------------------------------------
    database_url: str = Field(
        default="sqlite:///jobplane.sqlite3",
        description=(
            "SQLAlchemy URL of the results store: SQLite by default (a file in the working "
            "directory), or postgresql+psycopg://user:password@host/db."
        ),
    )
    data_database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the database that jobs read and change (the models of ObjectVar, "
            "Job.db). Defaults to database_url, or for SQLite to a sibling file named <name>-data."
        ),
    )

    # --- limits ---------------------------------------------------------------------------
    soft_time_limit: float = Field(
        default=300.0, gt=0, description="Soft time limit in seconds for jobs whose Meta says 0."
    )
    time_limit: float = Field(
        default=600.0, gt=0, description="Hard time limit in seconds for jobs whose Meta says 0."
    )
    create_file_max_size: int = Field(
        default=10 * 1024 * 1024, gt=0, description="Largest file in bytes a job may create."
    )

    @model_validator(mode="after")
    def _data_database_is_not_the_sqlite_store(self) -> Settings:
        if (
            self.data_database_url
            and self.data_database_url == self.database_url
            and self.database_url.startswith("sqlite")
        ):
            raise ValueError(
                "JOBPLANE_DATA_DATABASE_URL must not be the SQLite file of JOBPLANE_DATABASE_URL: SQLite "
                "has one writer per file, so a job's open transaction would block its own log lines. "
                "Leave it unset (a sibling -data file is used) or point it at another database."
            )
        return self

    @property
    def effective_data_database_url(self) -> str:
        """The job-data database: as set, else the results store's (a sibling file for SQLite)."""
        return data_database_url_of(self.database_url, self.data_database_url)


def get_settings() -> Settings:
    """Read the settings from the environment now (never cached at import time, so tests can override)."""
    return Settings()
