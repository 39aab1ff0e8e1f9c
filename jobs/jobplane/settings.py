"""Settings of the SDK, the runner and the CLI, read from ``JOBPLANE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Everything the SDK reads from the environment; build it with :func:`get_settings`."""

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
            "Job.db). Defaults to database_url."
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

    @property
    def effective_data_database_url(self) -> str:
        return self.data_database_url or self.database_url


def get_settings() -> Settings:
    """Read the settings from the environment now (never cached at import time, so tests can override)."""
    return Settings()
