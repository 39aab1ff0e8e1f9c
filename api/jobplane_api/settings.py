"""Settings of the API, read from ``JOBPLANE_API_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ApiSettings", "get_api_settings"]


class ApiSettings(BaseSettings):
    """How the API runs; build it with :func:`get_api_settings` (tests build their own)."""

    model_config = SettingsConfigDict(env_prefix="JOBPLANE_API_", extra="ignore", frozen=True)

    # --- the results store -----------------------------------------------------------------------
    database_url: SecretStr = Field(
        default=SecretStr(""),
        description="SQLAlchemy URL of the Postgres results store (postgresql://user:pass@host/db).",
    )

    # --- Kubernetes --------------------------------------------------------------------------------
    namespace: str = Field(
        default="default",
        description="Namespace of the JobDefinitions and JobQueues, and where API runs are created.",
    )
    watch_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces whose JobRuns are mirrored into job results (JSON list); empty: `namespace`.",
    )
    kubernetes: bool = Field(
        default=True, description="Talk to Kubernetes; off only for tests of the store alone."
    )

    # --- run tokens (shared with the operator) -----------------------------------------------------
    run_token_key: SecretStr | None = Field(
        default=None, description="Key of the run-scoped tokens pods report with (at least 32 bytes)."
    )
    run_token_key_file: Path | None = Field(
        default=None, description="File holding that key instead (a mounted Secret)."
    )

    # --- access ----------------------------------------------------------------------------------
    allow_anonymous_read: bool = Field(
        default=False, description="Let requests without a token read (never write); off by default."
    )

    # --- web UI ------------------------------------------------------------------------------------
    ui_session_hours: float = Field(
        default=12,
        gt=0,
        description=(
            "How long a web UI sign-in lasts, in hours; signing out, or deleting the session's token, "
            "ends it sooner."
        ),
    )

    ui_data_database_url: SecretStr | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the job-data database (the one jobs read, JOBPLANE_DATA_DATABASE_URL): "
            "with it the run form offers an ObjectVar's rows as choices (read only; a read-only "
            "database user is enough). Unset, an ObjectVar is a text field taking a key or filters. "
            "It must not be the results store."
        ),
    )

    # --- Git repositories ----------------------------------------------------------------------------
    git_webhook_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Shared secret of the push webhook (git-repositories/webhook/): requests must carry its "
            "HMAC-SHA256 in X-Hub-Signature-256. Unset, the webhook refuses every request."
        ),
    )

    # --- limits ------------------------------------------------------------------------------------
    default_page_size: int = Field(default=50, ge=1, description="Page size when a request gives no limit.")
    max_page_size: int = Field(default=1000, ge=1, description="The largest limit a request may ask for.")
    upload_max_size: int = Field(
        default=10 * 1024 * 1024, ge=1, description="Largest file a run may upload or a FileVar may carry."
    )

    # --- serving -----------------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Address to listen on (0.0.0.0 in a pod).")
    port: int = Field(default=8000, ge=1, le=65535, description="Port to listen on.")

    @model_validator(mode="after")
    def _data_database_is_not_the_store(self) -> ApiSettings:
        data = self.ui_data_database_url
        if data is not None and data.get_secret_value() == self.database_url.get_secret_value():
            # The run form would offer any table a job names: never the users, tokens and results.
            raise ValueError("JOBPLANE_API_UI_DATA_DATABASE_URL must not be the results store's database")
        return self

    @model_validator(mode="after")
    def _one_key_source(self) -> ApiSettings:
        if self.run_token_key is not None and self.run_token_key_file is not None:
            raise ValueError("set only one of JOBPLANE_API_RUN_TOKEN_KEY and JOBPLANE_API_RUN_TOKEN_KEY_FILE")
        return self

    @property
    def mirrored_namespaces(self) -> list[str]:
        return self.watch_namespaces or [self.namespace]

    def token_key(self) -> bytes | None:
        """The run-token key, or None when none is configured (pods then cannot report)."""
        if self.run_token_key_file is not None:
            return self.run_token_key_file.read_bytes().strip()
        if self.run_token_key is not None:
            return self.run_token_key.get_secret_value().encode()
        return None


def get_api_settings() -> ApiSettings:
    return ApiSettings()
