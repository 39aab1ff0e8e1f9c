"""Durations and timestamps as the custom resources write them: one parser of each, for every reader."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["DURATION_PATTERN", "parse_duration", "parse_time"]

# A Go-style duration of hours, minutes and seconds (1h30m, 5m, 45s): the schema's pattern and the parser's.
DURATION_PATTERN = r"^([0-9]+(s|m|h))+$"
_DURATION = re.compile(DURATION_PATTERN)
_DURATION_PART = re.compile(r"([0-9]+)(s|m|h)")
_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> timedelta:
    """A Go-style duration of hours, minutes and seconds (1h30m, 5m, 45s) as a timedelta."""
    if not _DURATION.match(text):
        raise ValueError(f"not a duration: {text!r} (use for example 30s, 5m or 1h30m)")
    return timedelta(seconds=sum(int(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(text)))


def parse_time(value: Any) -> datetime | None:
    """A resource's timestamp (RFC 3339, as Kubernetes writes metadata.creationTimestamp and the operator
    its status) as an aware datetime; None for none. A naive one is read as UTC. ValueError if it is not
    a timestamp."""
    if not value:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
