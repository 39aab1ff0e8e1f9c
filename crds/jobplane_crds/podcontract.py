"""The pod contract: what the operator puts into a job pod's environment and `jobplane run-pod` reads back.

One pydantic-settings model both sides use (an :class:`~jobplane_crds.envcontract.EnvContract`): the
operator builds it by keyword and renders its fields as EnvVars (:meth:`PodContract.env`); the runner reads
them (:meth:`PodContract.read`). A variable's name is its field's, upper-cased, after the prefix
``JOBPLANE_`` (``run_data`` is ``JOBPLANE_RUN_DATA``), so no name is written twice. A repository job's
``JOBPLANE_REPO_*`` variables are the sync pod's too (:class:`~jobplane_crds.gitcontract.GitCheckoutFields`).
Nothing secret is ever a value here: the run's token, sensitive inputs, Git credentials and the data
database's URL reach the pod as files of mounted Secrets, and the contract names those files.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_serializer, field_validator, model_validator

from jobplane_crds.envcontract import ContractError, EnvContract, refuse, seconds_text
from jobplane_crds.gitcontract import GitCheckoutFields

__all__ = [
    "DATA_DATABASE_FILE",
    "DATA_DATABASE_MOUNT",
    "DATA_DATABASE_UNAVAILABLE",
    "PodContract",
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


class PodContract(GitCheckoutFields, EnvContract):
    """The environment of a job pod. Build it with keyword arguments in the operator (never from the
    operator's own environment) and with :meth:`read` in the pod.

    Blank values are unset, as the runner has always read them (a pod template may set a variable to ""),
    except the termination message's path, whose empty value means "none at all".
    """

    blank_means_something = frozenset({"termination_message_path"})

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
    # (a job from a Git repository: repo_url, then repo_commit and repo_slug too, are GitCheckoutFields')
    # --- read by the runner, never written by the operator -------------------------------------------------
    run_user: str | None = Field(default=None, description="Who asked for the run (a run started by hand).")
    termination_message_path: str | None = Field(
        default=None,
        description=(
            "Where the run's summary goes instead of Kubernetes' /dev/termination-log; empty: nowhere "
            "(a run outside Kubernetes)."
        ),
    )

    @field_validator("run_soft_time_limit", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise refuse("must be a number of seconds") from None
        if isinstance(value, int | float) and not (math.isfinite(value) and value > 0):
            raise refuse("must be above 0 and finite")
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
        raise refuse("must be true or false")

    @field_validator("run_data")
    @classmethod
    def _json(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                # exc.msg and the position, never the document: the inputs themselves.
                raise refuse(
                    "is not valid JSON: {problem} (line {line}, column {column})",
                    problem=exc.msg,
                    line=exc.lineno,
                    column=exc.colno,
                ) from None
        return value

    @field_validator("data_database_secret")
    @classmethod
    def _secret_ref(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_REF.match(value):
            raise refuse("must be <secret name>/<key>")
        return value

    @model_validator(mode="after")
    def _whole(self) -> PodContract:
        data, data_file = self.env_name("run_data"), self.env_name("run_data_file")
        if self.run_data is not None and self.run_data_file is not None:
            # Which one the operator meant would be a guess.
            raise refuse(f"set only one of {data_file} and {data}")
        # A URL calls for the rest of the checkout; no URL: a job of the image, whatever else is set.
        problem = self._checkout_missing("a repository job") if self.repo_url is not None else None
        if problem is not None:
            raise problem
        return self

    # --- the operator's side ---------------------------------------------------------------------------
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

    # --- the runner's side -----------------------------------------------------------------------------
    def inline_data(self) -> Any:
        """The inputs given inline (``run_data``), parsed; ``{}`` when there are none. The file
        (``run_data_file``) is the runner's to read."""
        return json.loads(self.run_data) if self.run_data is not None else {}

    def data_database_url(self) -> str | None:
        """The job-data database's URL, or None when the pod was given none.

        ContractError(DATA_DATABASE_UNAVAILABLE) when it was promised one and the file is missing,
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
            raise ContractError(
                DATA_DATABASE_UNAVAILABLE,
                f"cannot read the data database's URL from {path} ({variable}): {why}; "
                f"{source} must exist in the run's namespace with that key",
            ) from None
        if not url:
            raise ContractError(
                DATA_DATABASE_UNAVAILABLE, f"the data database's URL in {path} is empty: see {source}"
            )
        return url

    def _data_database_source(self) -> str:
        if not self.data_database_secret:
            return "its Secret"
        name, key = self.data_database_secret.split("/", 1)
        return f"Secret {name!r} (key {key!r})"
