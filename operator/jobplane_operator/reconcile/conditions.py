"""Status conditions as the Kubernetes API conventions want them: the transition time moves only on change."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["condition", "rfc3339"]

MESSAGE_MAX = 32768


def rfc3339(moment: datetime) -> str:
    """A timestamp as Kubernetes writes them (UTC, whole seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    old_status: Mapping[str, Any] | None,
    kind: str,
    status: str,
    reason: str,
    message: str,
    *,
    generation: int,
    now: datetime,
) -> dict[str, Any]:
    """The condition `kind` now; it keeps the old lastTransitionTime while status and reason stay the same."""
    previous = next(
        (c for c in (old_status or {}).get("conditions", []) or [] if c.get("type") == kind), None
    )
    unchanged = previous is not None and (previous.get("status"), previous.get("reason")) == (status, reason)
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message[:MESSAGE_MAX],
        "observedGeneration": generation,
        "lastTransitionTime": previous["lastTransitionTime"] if unchanged and previous else rfc3339(now),
    }
