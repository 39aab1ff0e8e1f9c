"""Jobs from Git repositories between the operator and its pods: the credentials mount, the sync report.

The operator mounts a repository's credentials Secret at :data:`CREDENTIALS_MOUNT` in sync and run pods
(one file per key of :data:`CREDENTIAL_KEYS`) and reads a sync pod's report from its last stdout line,
:data:`SYNC_REPORT_PREFIX` then compact JSON; the pods (``jobplane_runtime``) read and write the same.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

__all__ = ["CREDENTIALS_MOUNT", "CREDENTIAL_KEYS", "SYNC_REPORT_PREFIX", "GitCredentials"]

# Where the credentials Secret is mounted in sync and run pods (one file per key).
CREDENTIALS_MOUNT = "/var/run/jobplane/git-credentials"
# The last stdout line of `jobplane sync-repo`: this prefix, then the report as compact JSON.
SYNC_REPORT_PREFIX = "JOBPLANE-SYNC-REPORT "
# The keys of a credentials Secret (Flux's names), which are also the file names where it is mounted.
CREDENTIAL_KEYS = ("username", "password", "identity", "known_hosts")


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
