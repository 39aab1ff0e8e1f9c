"""The pod contract: what the operator puts into a job pod's environment and `jobplane run-pod` reads back.

One pydantic-settings model both sides use: the operator builds it by keyword and renders its fields as
EnvVars (:meth:`PodContract.env`); the runner reads them (:meth:`PodContract.read`). A variable's name is
its field's, upper-cased, after the prefix ``JOBPLANE_`` (``run_data`` is ``JOBPLANE_RUN_DATA``), so no
name is written twice. Nothing secret is ever a value here: the run's token, sensitive inputs, Git
credentials and the data database's URL reach the pod as files of mounted Secrets, and the contract names
those files.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_serializer, field_validator, model_validator
from pydantic_core import PydanticCustomError

from jobplane_crds.envcontract import ENV_PREFIX, WrittenByKeyword, env_vars, seconds_text

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

_SECRET_REF = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[-._a-zA-Z0-9]+$")
# The words a flag may be (any case); anything else is refused rather than guessed.
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})
# The one variable whose empty value means something (no termination message at all), not "unset".
_EMPTY_MEANS_SOMETHING = frozenset({"termination_message_path"})
# The types of our own errors, whose messages read after the variable's name ("JOBPLANE_X must be ...").
_OWN_ERRORS = frozenset({"pod_contract"})


class PodContractError(ValueError):
    """The pod's environment breaks the contract, or what it points at cannot be read; ``reason`` is
    PascalCase, and the message never holds a value that may be secret."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def _refuse(message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError("pod_contract", message, context or None)


class PodContract(WrittenByKeyword):
    """The environment of a job pod. Build it with keyword arguments in the operator (never from the
    operator's own environment) and with :meth:`read` in the pod.

    Blank values are unset, as the runner has always read them (a pod template may set a variable to "").
    """

    # --- which run, and how: always written by the operator ----------------------------------------------
    run_name: str | None = Field(default=None, description="The JobRun's name.")
    run_uid: str | None = Field(
        default=None, description="The JobRun's uid: the job result's id. Unset: a fresh one (a run by hand)."
    )
    run_namespace: str | None = Field(default=None, description="The JobRun's namespace.")
    run_class_path: str | None = Field(
        default=None, description="The job's class path; run-pod's argument, when given, wins."
    )
    run_queue: str | None = Field(default=None, description="The queue the run went through.")
    run_soft_time_limit: float | None = Field(
        default=None,
        description="The soft time limit in seconds, above 0 and finite. Unset: the job's or the default.",
    )
    run_dryrun: bool | None = Field(default=None, description="Whether this is a dry run: true or false.")
    # --- the run's inputs: one or the other, never both ---------------------------------------------------
    run_data_file: Path | None = Field(
        default=None,
        description="File holding the inputs as JSON: a key of the run's inputs Secret, for sensitive jobs.",
    )
    run_data: str | None = Field(
        default=None, description="The inputs as a JSON document, for jobs without sensitive variables."
    )
    # --- where the pod reports: both, or it reports on stdout only ----------------------------------------
    api_url: str | None = Field(default=None, description="The Jobplane API the pod reports to.")
    run_token_file: Path | None = Field(
        default=None, description="File holding the run-scoped token: a key of the run's token Secret."
    )
    # --- the job-data database (ObjectVar look-ups, Job.db) -----------------------------------------------
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
    # --- a job from a Git repository: the URL, and then the commit and slug too ---------------------------
    repo_url: str | None = Field(default=None, description="The repository the job's code comes from.")
    repo_commit: str | None = Field(default=None, description="The commit the run is pinned to.")
    repo_slug: str | None = Field(default=None, description="The package name the repository imports under.")
    repo_credentials_dir: Path | None = Field(
        default=None, description="Folder where the repository's credentials Secret is mounted."
    )
    # --- read by the runner, never written by the operator -------------------------------------------------
    run_user: str | None = Field(default=None, description="Who asked for the run (a run started by hand).")
    termination_message_path: str | None = Field(
        default=None,
        description=(
            "Where the run's summary goes instead of Kubernetes' /dev/termination-log; empty: nowhere "
            "(a run outside Kubernetes)."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, values: Any) -> Any:
        if not isinstance(values, Mapping):
            return values
        return {
            key: value
            for key, value in values.items()
            if key in _EMPTY_MEANS_SOMETHING or not (isinstance(value, str) and not value.strip())
        }

    @field_validator("run_soft_time_limit", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise _refuse("must be a number of seconds") from None
        if isinstance(value, int | float) and not (math.isfinite(value) and value > 0):
            raise _refuse("must be above 0 and finite")
        return value

    @field_validator("run_dryrun", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        word = value.strip().lower() if isinstance(value, str) else None
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise _refuse("must be true or false")

    @field_validator("run_data")
    @classmethod
    def _json(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                # exc.msg and the position, never the document: the inputs themselves.
                raise _refuse(
                    "is not valid JSON: {problem} (line {line}, column {column})",
                    problem=exc.msg,
                    line=exc.lineno,
                    column=exc.colno,
                ) from None
        return value

    @field_validator("repo_url", "repo_commit", "repo_slug")
    @classmethod
    def _trimmed(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None

    @field_validator("data_database_secret")
    @classmethod
    def _secret_ref(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_REF.match(value):
            raise _refuse("must be <secret name>/<key>")
        return value

    @model_validator(mode="after")
    def _whole(self) -> PodContract:
        data, data_file = self.env_name("run_data"), self.env_name("run_data_file")
        if self.run_data is not None and self.run_data_file is not None:
            # Which one the operator meant would be a guess.
            raise _refuse(f"set only one of {data_file} and {data}")
        missing = [self.env_name(f) for f in ("repo_commit", "repo_slug") if getattr(self, f) is None]
        if self.repo_url is not None and missing:
            url, commit, slug = (self.env_name(f) for f in ("repo_url", "repo_commit", "repo_slug"))
            verb = "is" if len(missing) == 1 else "are"
            raise _refuse(
                f"{' and '.join(missing)} {verb} missing: a repository job needs {url}, {commit} and {slug}"
            )
        return self

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

    @field_serializer("run_soft_time_limit")
    def _limit_text(self, value: float | None) -> str | None:
        return None if value is None else seconds_text(value)

    @field_serializer("run_dryrun")
    def _flag_text(self, value: bool | None) -> str | None:
        return None if value is None else "true" if value else "false"

    def env(self) -> list[dict[str, str]]:
        """The pod's EnvVars (``name``/``value``) for every field that is set, in field order. No entry is a
        ``valueFrom``: what is secret is a mounted file, and only its path is a value."""
        return env_vars(self.model_dump(mode="json", exclude_none=True))

    # --- the runner's side -----------------------------------------------------------------------------
    @classmethod
    def read(cls, env: Mapping[str, str] | None = None) -> PodContract:
        """The contract from ``env`` (default: the process environment). PodContractError("InvalidInput")
        names every variable that does not fit and why, never its value."""
        env = os.environ if env is None else env
        values = {field: env[cls.env_name(field)] for field in cls.model_fields if cls.env_name(field) in env}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise PodContractError("InvalidInput", cls._describe(exc)) from None

    @classmethod
    def _describe(cls, exc: ValidationError) -> str:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            if not error["loc"]:  # the whole environment: its message names the variables
                problems.append(error["msg"])
                continue
            name = cls.env_name(str(error["loc"][0]))
            own = error["type"] in _OWN_ERRORS
            problems.append(f"{name} {error['msg']}" if own else f"{name} is malformed: {error['msg']}")
        return "; ".join(problems)

    def inline_data(self) -> Any:
        """The inputs given inline (``run_data``), parsed; ``{}`` when there are none. The file
        (``run_data_file``) is the runner's to read."""
        return json.loads(self.run_data) if self.run_data is not None else {}

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
