"""Jobs from Git repositories between the operator and its pods: the commit a pod checks out, the sync
pod's contract, the credentials mount, the sync report.

A sync pod's environment is :class:`SyncContract`: the operator renders it (``plan_sync_job``) and
``jobplane sync-repo`` reads it back. A run pod of a repository's job gets the same ``JOBPLANE_REPO_*``
variables, :class:`GitCheckoutFields`, as part of the pod contract. The operator mounts a repository's
credentials Secret at :data:`CREDENTIALS_MOUNT` in sync and run pods (one file per key of
:data:`CREDENTIAL_KEYS`) and reads a sync pod's report from its last stdout line, :data:`SYNC_REPORT_PREFIX`
then compact JSON; the pods (``jobplane_runtime``) read and write the same.
"""

from __future__ import annotations

import base64
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from jobplane_crds.envcontract import EnvContract, GitFetchFields, env_name, refuse

__all__ = [
    "COMMIT_PATTERN",
    "CREDENTIALS_MOUNT",
    "CREDENTIAL_KEYS",
    "PASSWORD_IN_URL",
    "SCP_PASSWORD_IN_URL",
    "SLUG_PATTERN",
    "SYNC_REPORT_PREFIX",
    "GitCheckoutFields",
    "GitCredentials",
    "SyncContract",
]

# Where the credentials Secret is mounted in sync and run pods (one file per key).
CREDENTIALS_MOUNT = "/var/run/jobplane/git-credentials"
# The last stdout line of `jobplane sync-repo`: this prefix, then the report as compact JSON.
SYNC_REPORT_PREFIX = "JOBPLANE-SYNC-REPORT "
# The keys of a credentials Secret (Flux's names), which are also the file names where it is mounted.
CREDENTIAL_KEYS = ("username", "password", "identity", "known_hosts")

# A repository's package name: its jobs import as <slug>.jobs (a keyword is refused besides).
SLUG_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# A full commit id: what a pod checks out, never a branch that could move under it.
COMMIT_PATTERN = r"^[0-9a-fA-F]{40}$"
# A password in a URL (scheme://user:password@host/...), which JobRepository admission refuses (a CEL rule:
# RE2 and Python read it alike), and git's scp-like form of it (user:password@host:path).
PASSWORD_IN_URL = r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@]*:[^/?#@]*@"
SCP_PASSWORD_IN_URL = r"^[^@/]+:[^@/]*@[^/]+:"

_COMMIT = re.compile(COMMIT_PATTERN)
_SLUG = re.compile(SLUG_PATTERN)
_PASSWORD = re.compile(f"{PASSWORD_IN_URL}|{SCP_PASSWORD_IN_URL}")
_CHECKOUT = ("repo_url", "repo_commit", "repo_slug")


class GitCheckoutFields(BaseModel):
    """Which commit of which repository a pod checks out, and where its credentials are: the fields of the
    sync pod's contract and of a repository job's run pod (``JOBPLANE_REPO_*``), defined once.

    Refusals name the variable and never quote its value: a URL may hold a password (refused: credentials
    only ever live in the Secret). What git makes of the URL (its scheme, host, path) the pod checks when
    it fetches, and reports with the URL's password-free form.
    """

    repo_url: str | None = Field(
        default=None, description="The repository's Git URL (https://, http://, ssh://, user@host:path)."
    )
    repo_commit: str | None = Field(default=None, description="The full 40-character commit id to check out.")
    repo_slug: str | None = Field(
        default=None, description="The package name the repository imports under: <slug>.jobs.<module>."
    )
    repo_credentials_dir: Path | None = Field(
        default=None,
        description=(
            "Folder where the repository's credentials Secret is mounted (files username and password, or "
            "identity and known_hosts). Unset: the repository is fetched without credentials."
        ),
    )

    @field_validator(*_CHECKOUT, mode="before")
    @classmethod
    def _trimmed(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("repo_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and any(char.isspace() or not char.isprintable() for char in value):
            raise refuse("must be one URL, without whitespace or control characters")
        if value is not None and _PASSWORD.match(value):
            raise refuse(
                "must not hold a password: credentials go in the Secret named by the JobRepository's "
                "credentialsSecretRef"
            )
        return value

    @field_validator("repo_commit")
    @classmethod
    def _commit(cls, value: str | None) -> str | None:
        if value is not None and not _COMMIT.match(value):
            raise refuse("must be a full 40-character commit id (hexadecimal)")
        return value.lower() if value is not None else None

    @field_validator("repo_slug")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        if value is not None and (not _SLUG.match(value) or keyword.iskeyword(value)):
            raise refuse(
                "must be a Python identifier (letters, digits and _, not starting with a digit, not a "
                "keyword): the repository's jobs import as <slug>.jobs"
            )
        return value

    def _checkout_missing(self, needs: str) -> PydanticCustomError | None:
        """The refusal naming the variables of the checkout that are unset, or None when none is."""
        missing = [env_name(name) for name in _CHECKOUT if getattr(self, name) is None]
        if not missing:
            return None
        url, commit, slug = (env_name(name) for name in _CHECKOUT)
        named = ", ".join(missing[:-1]) + " and " + missing[-1] if len(missing) > 1 else missing[0]
        verb = "is" if len(missing) == 1 else "are"
        return refuse(f"{named} {verb} missing: {needs} needs {url}, {commit} and {slug}")


class SyncContract(GitCheckoutFields, GitFetchFields, EnvContract):
    """The environment of a sync pod, ``jobplane sync-repo``: the commit to fetch and import, the
    credentials folder when the repository has a credentials Secret, and the bounds of the fetch. The
    operator builds it by keyword and renders it (:meth:`env`); the pod reads it (:meth:`read`)."""

    @model_validator(mode="after")
    def _whole(self) -> SyncContract:
        problem = self._checkout_missing("a sync pod")
        if problem is not None:
            raise problem
        return self

    def checkout(self) -> tuple[str, str, str]:
        """The URL, commit and slug: always set once the contract is read."""
        url, commit, slug = self.repo_url, self.repo_commit, self.repo_slug
        if url is None or commit is None or slug is None:  # never: _whole refuses it
            raise ValueError("a sync contract without its commit")
        return url, commit, slug


@dataclass(frozen=True)
class GitCredentials:
    """HTTP basic credentials (a token goes in ``password``) and/or an SSH key with the hosts it trusts."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity: str | None = field(default=None, repr=False)
    known_hosts: str | None = None

    @property
    def has_basic(self) -> bool:
        return bool(self.username or self.password)

    def basic_token(self) -> str | None:
        """base64 of ``username:password``, as the Authorization header carries it."""
        if not self.has_basic:
            return None
        return base64.b64encode(f"{self.username or ''}:{self.password or ''}".encode()).decode("ascii")

    def secrets(self) -> list[str]:
        """Every value to scrub from a message: the password, the header token, the key and its lines."""
        values = [self.password or "", self.basic_token() or ""]
        if self.identity:
            values.append(self.identity.strip())
            # Each line of the key too (git never prints it; a line too short to be telling is left).
            lines = [line.strip() for line in self.identity.splitlines() if not line.startswith("-----")]
            values += [line for line in lines if len(line) >= 8]
        # Longest first, so a value that contains another one is hidden whole.
        return sorted({value for value in values if value}, key=len, reverse=True)
