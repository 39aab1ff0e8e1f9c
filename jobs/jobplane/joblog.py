"""The job logger: Nautobot's levels and ``extra={"grouping", "object"}``, on stdlib logging."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

from jobplane_crds.reports import LogEntry

__all__ = [
    "CRITICAL",
    "DEBUG",
    "ERROR",
    "FAILURE",
    "INFO",
    "LEVEL_NAMES",
    "SUCCESS",
    "WARNING",
    "JobLogger",
    "LogEntry",
    "entry_from_record",
]

DEBUG = logging.DEBUG
INFO = logging.INFO
SUCCESS = 25
WARNING = logging.WARNING
FAILURE = 35
ERROR = logging.ERROR
CRITICAL = logging.CRITICAL

LEVEL_NAMES = {
    DEBUG: "debug",
    INFO: "info",
    SUCCESS: "success",
    WARNING: "warning",
    FAILURE: "failure",
    ERROR: "error",
    CRITICAL: "critical",
}
logging.addLevelName(SUCCESS, "SUCCESS")
logging.addLevelName(FAILURE, "FAILURE")

JOB_LOGGER_NAME = "jobplane.job"
GROUPING_MAX = 100
OBJECT_MAX = 200
URL_MAX = 255


def _level_name(levelno: int) -> str:
    if levelno in LEVEL_NAMES:
        return LEVEL_NAMES[levelno]
    # Custom numeric levels map to the nearest standard one below them.
    below = [level for level in LEVEL_NAMES if level <= levelno]
    return LEVEL_NAMES[max(below)] if below else "debug"


def entry_from_record(record: logging.LogRecord) -> LogEntry:
    """Turn a record of the job logger into a LogEntry (object text and URL from ``extra["object"]``)."""
    obj = getattr(record, "object", None)
    log_object = absolute_url = None
    if obj is not None:
        log_object = str(obj)[:OBJECT_MAX]
        get_url = getattr(obj, "get_absolute_url", None)
        if callable(get_url):
            try:
                url = get_url()
            except Exception:  # An object's URL must never break logging.
                url = None
            absolute_url = str(url)[:URL_MAX] if url else None
    message = record.getMessage()
    if record.exc_info:
        message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
    return LogEntry(
        level=_level_name(record.levelno),
        message=message,
        grouping=str(getattr(record, "grouping", None) or record.funcName or "main")[:GROUPING_MAX],
        log_object=log_object,
        absolute_url=absolute_url,
        created=datetime.fromtimestamp(record.created, UTC),
    )


class JobLogger:
    """``self.logger`` of a job: seven Nautobot levels; grouping defaults to the calling function's name."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(JOB_LOGGER_NAME)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(level, msg, args, kwargs, depth=2)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(DEBUG, msg, args, kwargs, depth=2)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(INFO, msg, args, kwargs, depth=2)

    def success(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(SUCCESS, msg, args, kwargs, depth=2)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(WARNING, msg, args, kwargs, depth=2)

    def failure(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(FAILURE, msg, args, kwargs, depth=2)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(ERROR, msg, args, kwargs, depth=2)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs.setdefault("exc_info", True)
        self._emit(ERROR, msg, args, kwargs, depth=2)

    def critical(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._emit(CRITICAL, msg, args, kwargs, depth=2)

    def isEnabledFor(self, level: int) -> bool:
        return self.logger.isEnabledFor(level)

    def _emit(
        self, level: int, msg: object, args: tuple[object, ...], kwargs: dict[str, Any], depth: int
    ) -> None:
        if not self.logger.isEnabledFor(level):
            return
        extra = dict(kwargs.pop("extra", None) or {})
        if not extra.get("grouping"):
            extra["grouping"] = sys._getframe(depth).f_code.co_name
        self.logger.log(level, msg, *args, extra=extra, stacklevel=depth + 1, **kwargs)
