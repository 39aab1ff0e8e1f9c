"""What a run reports: its log lines, as the runner makes them, pods send them and the store keeps them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["LogEntry"]


@dataclass(frozen=True)
class LogEntry:
    """One log line of a run, as stored and as streamed."""

    level: str
    message: str
    grouping: str = "main"
    log_object: str | None = None
    absolute_url: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_report(self) -> dict[str, str | None]:
        """The entry as pods report it: on stdout and to the API."""
        return {
            "level": self.level,
            "grouping": self.grouping,
            "message": self.message,
            "object": self.log_object,
            "url": self.absolute_url,
            "time": self.created.isoformat(),
        }

    def format_line(self) -> str:
        where = f" [{self.log_object}]" if self.log_object else ""
        return f"{self.created:%H:%M:%S} {self.level.upper():<8} {self.grouping}{where}: {self.message}"
