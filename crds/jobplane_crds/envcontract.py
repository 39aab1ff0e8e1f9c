"""What the operator writes into a pod's environment: the base every such contract is built on
(:class:`EnvContract`: written by keyword, rendered as EnvVars, read back with messages that name the
variable and never its value), and the smallest one, the bounds of a fetch of job code (which
``jobplane.settings.Settings`` reads too).

Apart from the pod contract (:mod:`jobplane_crds.podcontract`) so that reading the settings, which every
``jobplane`` command does, never builds that larger model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, Field, ValidationError, field_serializer, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = [
    "ENV_PREFIX",
    "ContractError",
    "EnvContract",
    "GitFetchFields",
    "GitFetchLimits",
    "WrittenByKeyword",
    "env_name",
    "env_vars",
    "refuse",
    "seconds_text",
]

ENV_PREFIX = "JOBPLANE_"
# The type of our own refusals, whose messages read after the variable's name ("JOBPLANE_X must be ...").
_OWN_ERROR = "env_contract"


def seconds_text(value: float) -> str:
    """Seconds as an EnvVar's value."""
    # Short when that is exact ("60", "2.5"), every digit otherwise: the reader gets what was meant.
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def env_name(field: str) -> str:
    """The environment variable of a contract's field: the prefix, then the field upper-cased."""
    return f"{ENV_PREFIX}{field.upper()}"


def env_vars(fields: Mapping[str, Any]) -> list[dict[str, str]]:
    """The EnvVars (``name``/``value``) of a contract's fields, named by the prefix and the field."""
    return [{"name": env_name(field), "value": str(value)} for field, value in fields.items()]


def refuse(message: str, **context: Any) -> PydanticCustomError:
    """A validator's refusal of a contract's value: ``message`` reads after the variable's name and never
    holds the value (``context`` fills its ``{placeholders}``)."""
    return PydanticCustomError(_OWN_ERROR, message, context or None)


class ContractError(ValueError):
    """A pod's environment breaks its contract, or what it points at cannot be read; ``reason`` is
    PascalCase, and the message never holds a value that may be secret."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class WrittenByKeyword(BaseSettings):
    """A contract the operator builds by keyword: a field it leaves out stays unset, never filled from the
    operator's own environment (which may hold JOBPLANE_* variables of its own)."""

    # hide_input_in_errors: a refusal on the operator's side is logged, and a value may be secret.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, hide_input_in_errors=True
    )

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


class EnvContract(WrittenByKeyword):
    """A pod's environment as one model: the operator builds it by keyword and renders it (:meth:`env`),
    the pod reads it back (:meth:`read`). A variable's name is its field's (:func:`env_name`), so no name is
    written twice.

    Blank values are unset (a pod template may set a variable to ""), except the fields named in
    ``blank_means_something``.
    """

    blank_means_something: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, values: Any) -> Any:
        if not isinstance(values, Mapping):
            return values
        return {
            key: value
            for key, value in values.items()
            if key in cls.blank_means_something or not (isinstance(value, str) and not value.strip())
        }

    # --- the operator's side ---------------------------------------------------------------------------
    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable of a field (data_database_url_file: JOBPLANE_DATA_DATABASE_URL_FILE)."""
        if field not in cls.model_fields:
            raise KeyError(field)
        return env_name(field)

    def env(self) -> list[dict[str, str]]:
        """The pod's EnvVars (``name``/``value``) for every field that was set, in field order (a field left
        out is left to the pod's default). No entry is a ``valueFrom``: what is secret is a mounted file,
        and only its path is a value."""
        return env_vars(self.model_dump(mode="json", exclude_unset=True, exclude_none=True))

    # --- the pod's side --------------------------------------------------------------------------------
    @classmethod
    def read(cls, env: Mapping[str, str] | None = None) -> Self:
        """The contract from ``env`` (default: the process environment). ContractError("InvalidInput")
        names every variable that does not fit and why, never its value."""
        env = os.environ if env is None else env
        values = {field: env[env_name(field)] for field in cls.model_fields if env_name(field) in env}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ContractError("InvalidInput", cls._describe(exc)) from None

    @classmethod
    def _describe(cls, exc: ValidationError) -> str:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            if not error["loc"]:  # the whole environment: its message names the variables
                problems.append(error["msg"])
                continue
            name = cls.env_name(str(error["loc"][0]))
            own = error["type"] == _OWN_ERROR
            problems.append(f"{name} {error['msg']}" if own else f"{name} is malformed: {error['msg']}")
        return "; ".join(problems)


class GitFetchFields(BaseModel):
    """How far a fetch of job code may go: in a sync pod, in a run pod of a repository's job, and in any
    jobplane process that fetches. The fields of :class:`GitFetchLimits` and of the sync pod's contract
    (what the operator writes) and of ``jobplane.settings.Settings`` (what every jobplane process reads,
    with pydantic-settings), so the variables are defined once."""

    git_timeout: float = Field(
        default=120.0,
        gt=0,
        allow_inf_nan=False,
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


class GitFetchLimits(GitFetchFields, EnvContract):
    """The Git fetch limits the operator writes into a run pod: build it with only what it means to set
    (a pod left without one uses the image's default)."""
