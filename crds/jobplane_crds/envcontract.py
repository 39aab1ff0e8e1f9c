"""What the operator writes into a pod's environment: the base every such contract is built on, and the
smallest one, the bounds of a fetch of job code (which ``jobplane.settings.Settings`` reads too).

Apart from the pod contract (:mod:`jobplane_crds.podcontract`) so that reading the settings, which every
``jobplane`` command does, never builds that larger model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, field_serializer
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = ["ENV_PREFIX", "GitFetchFields", "GitFetchLimits", "WrittenByKeyword", "env_vars", "seconds_text"]

ENV_PREFIX = "JOBPLANE_"


def seconds_text(value: float) -> str:
    """Seconds as an EnvVar's value."""
    # Short when that is exact ("60", "2.5"), every digit otherwise: the reader gets what was meant.
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def env_vars(fields: Mapping[str, Any]) -> list[dict[str, str]]:
    """The EnvVars (``name``/``value``) of a contract's fields, named by the prefix and the field."""
    return [{"name": f"{ENV_PREFIX}{field.upper()}", "value": str(value)} for field, value in fields.items()]


class WrittenByKeyword(BaseSettings):
    """A contract the operator builds by keyword: a field it leaves out stays unset, never filled from the
    operator's own environment (which may hold JOBPLANE_* variables of its own)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class GitFetchFields(BaseModel):
    """How far a fetch of job code may go: in a sync pod, in a run pod of a repository's job, and in any
    jobplane process that fetches. The fields of :class:`GitFetchLimits` (what the operator writes) and of
    ``jobplane.settings.Settings`` (what every jobplane process reads, with pydantic-settings), so the
    variables are defined once."""

    git_timeout: float = Field(
        default=120.0,
        gt=0,
        description="Seconds a fetch of one commit may take, or a listing of a repository's refs.",
    )
    git_max_bytes: int = Field(
        default=512 * 1024 * 1024,
        gt=0,
        description="Largest a checkout may be, in bytes: the fetched history plus the checked-out files.",
    )

    @field_serializer("git_timeout")
    def _timeout_text(self, value: float) -> str:
        return seconds_text(value)


class GitFetchLimits(GitFetchFields, WrittenByKeyword):
    """The Git fetch limits the operator writes into a pod: build it with only what it means to set."""

    def env(self) -> list[dict[str, str]]:
        """The EnvVars of the limits that were set (a pod left without one uses the image's default)."""
        return env_vars(self.model_dump(mode="json", include=self.model_fields_set))
