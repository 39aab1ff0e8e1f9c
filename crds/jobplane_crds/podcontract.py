"""The pod contract: what the operator puts into a job pod's environment and `jobplane run-pod` reads back.

One pydantic-settings model both sides use: the operator renders its fields as EnvVars (:meth:`env`), the
runner reads them (:meth:`PodContract.read`). It covers the job-data database so far; the rest of a job
pod's environment still goes by the ``ENV_*`` names of ``jobplane.pod``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DATA_DATABASE_FILE",
    "DATA_DATABASE_MOUNT",
    "DATA_DATABASE_UNAVAILABLE",
    "PodContract",
    "PodContractError",
]

# Where the operator mounts the data database's Secret in a job pod, and the file its key becomes.
DATA_DATABASE_MOUNT = "/var/run/jobplane/data-database"
DATA_DATABASE_FILE = "url"
# The reason a run ends with when the pod was promised a data database and cannot read its URL.
DATA_DATABASE_UNAVAILABLE = "DataDatabaseUnavailable"

ENV_PREFIX = "JOBPLANE_"
_SECRET_REF = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[-._a-zA-Z0-9]+$")


class PodContractError(ValueError):
    """The pod's environment breaks the contract, or what it points at cannot be read; ``reason`` is
    PascalCase, and the message never holds a value that may be secret."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class PodContract(BaseSettings):
    """What a job pod is given beyond its run's identity and inputs. Build it with :meth:`read` in the pod
    and with keyword arguments in the operator."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", frozen=True
    )

    data_database_url_file: Path | None = Field(
        default=None,
        description=(
            "File holding the SQLAlchemy URL of the job-data database (ObjectVar look-ups, Job.db): a key "
            "of a Secret the operator mounts. Unset: the pod has no data database. The URL itself never "
            "sits in the pod's environment."
        ),
    )
    data_database_secret: str | None = Field(
        default=None,
        description="The Secret and key (<name>/<key>) that file comes from, named in errors only.",
    )

    @field_validator("data_database_secret")
    @classmethod
    def _secret_ref(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_REF.match(value):
            raise ValueError("must be <secret name>/<key>")
        return value

    # --- the operator's side ---------------------------------------------------------------------------
    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable of a field (data_database_url_file: JOBPLANE_DATA_DATABASE_URL_FILE)."""
        if field not in cls.model_fields:
            raise KeyError(field)
        return f"{ENV_PREFIX}{field.upper()}"

    @classmethod
    def for_data_database(cls, secret: str, key: str) -> PodContract:
        """A pod given the data database's URL from ``key`` of Secret ``secret``, mounted at
        DATA_DATABASE_MOUNT as the file DATA_DATABASE_FILE."""
        return cls(
            data_database_url_file=Path(DATA_DATABASE_MOUNT) / DATA_DATABASE_FILE,
            data_database_secret=f"{secret}/{key}",
        )

    def env(self) -> list[dict[str, str]]:
        """The pod's EnvVars for every field that is set, in field order."""
        values = self.model_dump(mode="json", exclude_none=True)
        return [{"name": self.env_name(field), "value": str(values[field])} for field in values]

    # --- the runner's side -----------------------------------------------------------------------------
    @classmethod
    def read(cls, env: Mapping[str, str] | None = None) -> PodContract:
        """The contract from ``env`` (default: the process environment); PodContractError("InvalidInput")
        naming the variables that do not fit, never their values."""
        try:
            if env is None:
                return cls()
            values: dict[str, Any] = {}
            for field in cls.model_fields:
                value = env.get(cls.env_name(field))
                if value is not None and value.strip():
                    values[field] = value
            return cls.model_validate(values)
        except ValidationError as exc:
            names = ", ".join(
                cls.env_name(str(error["loc"][0])) if error["loc"] else ENV_PREFIX for error in exc.errors()
            )
            raise PodContractError("InvalidInput", f"the pod's environment does not fit: {names}") from None

    def data_database_url(self) -> str | None:
        """The job-data database's URL, or None when the pod was given none.

        PodContractError(DATA_DATABASE_UNAVAILABLE) when it was promised one and the file is missing,
        unreadable or empty: the Secret was not there when the pod started (the kubelet mounts an
        optional Secret's keys only if they exist), or it lacks the key.
        """
        path = self.data_database_url_file
        if path is None:
            return None
        source = self._data_database_source()
        try:
            url = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            variable = self.env_name("data_database_url_file")
            raise PodContractError(
                DATA_DATABASE_UNAVAILABLE,
                f"cannot read the data database's URL from {path} ({variable}): {why}; "
                f"{source} must exist in the run's namespace with that key",
            ) from None
        if not url:
            raise PodContractError(
                DATA_DATABASE_UNAVAILABLE, f"the data database's URL in {path} is empty: see {source}"
            )
        return url

    def _data_database_source(self) -> str:
        if not self.data_database_secret:
            return "its Secret"
        name, key = self.data_database_secret.split("/", 1)
        return f"Secret {name!r} (key {key!r})"
