"""Executes one run of a job in this process: lifecycle, soft time limit, logging, result, files.

Where results go is the reporter's business (the local store here; the API from a pod), so the same
lifecycle runs on a laptop and in a Kubernetes pod.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import ipaddress
import json
import logging
import signal
import threading
import traceback as tb
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

from jobplane.job import Job, SoftTimeLimitExceeded, TimeLimits
from jobplane.joblog import JOB_LOGGER_NAME, LogEntry, entry_from_record
from jobplane.variables import FileVar, VariableError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["ExceptionInfo", "RunOutcome", "RunReporter", "execute_job", "to_json"]

SUCCESS = "SUCCESS"
FAILURE = "FAILURE"


class RunReporter(Protocol):
    """Where a run's state, logs and files go."""

    def started(self) -> None: ...

    def log(self, entry: LogEntry) -> None: ...

    def create_file(self, name: str, content: bytes) -> str: ...

    def open_input_file(self, file_id: str) -> IO[bytes]: ...

    def discard_input_files(self, file_ids: list[str]) -> None: ...

    def finished(self, status: str, result: Any, traceback: str | None) -> None: ...


@dataclass(frozen=True)
class ExceptionInfo:
    """What on_failure/after_return receive as ``einfo`` (Celery's ExceptionInfo, reduced)."""

    exception: BaseException
    type: type[BaseException]
    traceback: str


@dataclass(frozen=True)
class RunOutcome:
    status: str
    result: Any
    traceback: str | None


def _json_default(value: Any) -> Any:
    # What Celery's (Kombu's) JSON encoder accepts beyond plain JSON, plus ip objects and sets.
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network):
        return str(value)
    if isinstance(value, ipaddress.IPv6Network | ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def to_json(value: Any) -> Any:
    """The JSON-ready form of a job's return value; TypeError if it cannot be represented."""
    return json.loads(json.dumps(value, default=_json_default))


class _Context:
    """What the running job and its variables reach: files, the data database, the result id."""

    def __init__(
        self,
        *,
        job: Job,
        job_result_id: str,
        user: str | None,
        reporter: RunReporter,
        data_session_factory: Callable[[], Session] | None,
    ) -> None:
        self.job = job
        self.job_result_id = job_result_id
        self.user = user
        self._reporter = reporter
        self._data_session_factory = data_session_factory
        self._db: Session | None = None

    @property
    def db(self) -> Session:
        if self._db is None:
            if self._data_session_factory is None:
                raise RuntimeError(
                    "this run has no data database: a job pod gets one from the operator's "
                    "JOBPLANE_OPERATOR_DATA_DATABASE_SECRET (the chart's dataDatabase values), a pod "
                    "started by hand from JOBPLANE_DATA_DATABASE_URL"
                )
            self._db = self._data_session_factory()
        return self._db

    def create_file(self, name: str, content: bytes) -> str:
        file_id = self._reporter.create_file(name, content)
        self.job.logger.info("Created file %s (%d bytes)", name, len(content), extra={"grouping": "files"})
        return file_id

    def open_input_file(self, file_id: str) -> IO[bytes]:
        return self._reporter.open_input_file(file_id)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()  # Uncommitted changes are rolled back: the author commits what they keep.


class _ReporterHandler(logging.Handler):
    def __init__(self, reporter: RunReporter, echo: Callable[[LogEntry], None] | None) -> None:
        super().__init__(logging.DEBUG)
        self.reporter = reporter
        self.echo = echo

    def emit(self, record: logging.LogRecord) -> None:
        # A soft time limit must not fire inside the store write (it would be swallowed with the
        # write's error handling): hold SIGALRM until the entry is written, then let it through.
        blocked = threading.current_thread() is threading.main_thread()
        if blocked:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            entry = entry_from_record(record)
            if self.echo is not None:
                self.echo(entry)
            if not getattr(record, "skip_db_logging", False):
                self.reporter.log(entry)
        except Exception:
            self.handleError(record)
        finally:
            if blocked:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})


@contextlib.contextmanager
def _captured_logs(reporter: RunReporter, echo: Callable[[LogEntry], None] | None) -> Iterator[None]:
    logger = logging.getLogger(JOB_LOGGER_NAME)
    handler = _ReporterHandler(reporter, echo)
    previous = (logger.level, logger.propagate)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]


@contextlib.contextmanager
def soft_time_limit(seconds: float) -> Iterator[None]:
    """Raise SoftTimeLimitExceeded in this (main) thread after ``seconds``."""
    if threading.current_thread() is not threading.main_thread():
        # Signals only reach the main thread; the hard limit still holds from outside.
        yield
        return

    def _expired(signum: int, frame: Any) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        raise SoftTimeLimitExceeded(f"Soft time limit of {seconds:g} s exceeded")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _deserialize(job_class: type[Job], data: dict[str, Any], context: _Context) -> dict[str, Any]:
    kwargs = {}
    for var in job_class.variables():
        kwargs[var.name] = var.to_python(data.get(var.name), context)
    return kwargs


def execute_job(
    job_class: type[Job],
    data: dict[str, Any],
    *,
    reporter: RunReporter,
    job_result_id: str,
    limits: TimeLimits,
    user: str | None = None,
    data_session_factory: Callable[[], Session] | None = None,
    echo: Callable[[LogEntry], None] | None = None,
) -> RunOutcome:
    """Run the job's lifecycle once on validated data and report everything to ``reporter``.

    The hard time limit is not enforced here: whoever started this process kills it (the local
    CLI's parent process, or Kubernetes through activeDeadlineSeconds).
    """
    job = job_class()
    context = _Context(
        job=job,
        job_result_id=job_result_id,
        user=user,
        reporter=reporter,
        data_session_factory=data_session_factory,
    )
    job._context = context
    task_id, args = job_result_id, ()
    status, retval, einfo, trace = FAILURE, None, None, None
    file_inputs = [
        str(data[var.name])
        for var in job_class.variables()
        if isinstance(var, FileVar) and data.get(var.name)
    ]
    with _captured_logs(reporter, echo):
        reporter.started()
        log = job.logger
        log.info("Running job", extra={"grouping": "initialization"})
        if limits.warning:
            log.warning(limits.warning, extra={"grouping": "initialization"})
        kwargs: dict[str, Any] = {}
        try:
            with soft_time_limit(limits.soft):
                try:
                    kwargs = _deserialize(job_class, data, context)
                except VariableError as exc:
                    raise RuntimeError(f"Error initializing job: {exc}") from exc
                job.before_start(task_id, args, kwargs)
                if not job.failed:
                    retval = job.run(**kwargs)
        except Exception as exc:
            trace = tb.format_exc()
            einfo = ExceptionInfo(exception=exc, type=type(exc), traceback=trace)
            retval = {"exc_type": type(exc).__name__, "exc_message": str(exc)}
            if isinstance(exc, SoftTimeLimitExceeded):
                log.failure("%s: the job was stopped", exc, extra={"grouping": "initialization"})
            else:
                log.error("%s: %s", type(exc).__name__, exc, extra={"grouping": "run"})
        else:
            status = FAILURE if job.failed else SUCCESS
        # The hooks run outside the soft limit, so a job stopped by it still gets to clean up.
        if status == SUCCESS and not _call_hook(job, "on_success", retval, task_id, args, kwargs):
            status = FAILURE
        if status == FAILURE:
            exc_or_retval = einfo.exception if einfo else retval
            _call_hook(job, "on_failure", exc_or_retval, task_id, args, kwargs, einfo)
        if not _call_hook(job, "after_return", status, retval, task_id, args, kwargs, einfo):
            status = FAILURE
        try:
            result = to_json(retval)
        except (TypeError, ValueError) as exc:
            status, result = FAILURE, {"exc_type": "TypeError", "exc_message": str(exc)}
            log.error("The value run() returned cannot be stored as JSON: %s", exc, extra={"grouping": "run"})
        context.close()
        if file_inputs:
            reporter.discard_input_files(file_inputs)
        if status == SUCCESS:
            log.info("Job completed", extra={"grouping": "initialization"})
        reporter.finished(status, result, trace)
    return RunOutcome(status=status, result=result, traceback=trace)


def _call_hook(job: Job, name: str, *args: Any) -> bool:
    """Call a lifecycle hook; an exception in it is logged and makes the run fail."""
    try:
        getattr(job, name)(*args)
    except Exception as exc:
        job.logger.error("%s raised %s: %s", name, type(exc).__name__, exc, extra={"grouping": name})
        return False
    return True
