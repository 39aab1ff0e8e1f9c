"""Runs a job on this machine with no cluster: validation, a JobResult, a child process under time limits."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Protocol, TextIO, runtime_checkable

from jobplane.job import Job, TimeLimits
from jobplane.joblog import LogEntry
from jobplane.localsettings import RunSettings
from jobplane.schema import JobDataError, validate_data
from jobplane.variables import ObjectVar, VariableError
from jobplane_runtime.runner import execute_job
from jobplane_store.sqlite import (
    LOG_LEVELS,
    JobStatus,
    NewJobResult,
    ResultSummary,
    RunEnd,
    SqliteResultsStore,
    sqlite_file,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "LocalStoreReporter",
    "ResultsStore",
    "format_summary",
    "job_permission_fields",
    "open_results_store",
    "run_local",
    "store_input_file",
    "validate_for_run",
]

# How long the child gets after SIGTERM when the user interrupts a run, before SIGKILL.
INTERRUPT_GRACE_SECONDS = 5.0


@runtime_checkable
class ResultsStore(Protocol):
    """The units of work of a local run on the results store, each its own short transaction."""

    def close(self) -> None: ...

    def ensure_schema(self) -> None: ...

    def create_job_result(self, new: NewJobResult) -> uuid.UUID: ...

    def mark_started(self, job_result_id: uuid.UUID, now: datetime) -> None: ...

    def add_log_entry(self, job_result_id: uuid.UUID, entry: LogEntry) -> None: ...

    def add_file(self, job_result_id: uuid.UUID | None, name: str, content: bytes) -> uuid.UUID: ...

    def read_file(self, file_id: uuid.UUID) -> tuple[str, bytes] | None: ...

    def delete_files(self, file_ids: Sequence[uuid.UUID]) -> None: ...

    def finish_job_result(self, job_result_id: uuid.UUID, end: RunEnd) -> bool: ...

    def finish_if_unfinished(self, job_result_id: uuid.UUID, entry: LogEntry, end: RunEnd) -> None: ...

    def summary(self, job_result_id: uuid.UUID) -> ResultSummary | None: ...


def open_results_store(database_url: str) -> ResultsStore:
    """The results store at ``database_url``; a plain SQLite file is written without SQLAlchemy."""
    path = sqlite_file(database_url)
    if path is not None:
        return SqliteResultsStore(path)
    # SQLAlchemy only for a store that is not a plain SQLite file (measured start-up cost: its ORM is
    # more than half of a no-op local run's start-up).
    from jobplane_store.results import SessionResultsStore

    return SessionResultsStore.for_url(database_url)


class LocalStoreReporter:
    """Reports a run straight into the results store, one short transaction per event.

    Each log entry is committed as it happens, so it is visible while the job runs and survives
    the job raising, or its process being killed. ``store`` is a :class:`ResultsStore`, or the sessions
    of one (SQLAlchemy's sessionmaker).
    """

    def __init__(
        self, store: ResultsStore | sessionmaker[Session], job_result_id: uuid.UUID, max_file_size: int
    ) -> None:
        if not isinstance(store, ResultsStore):
            from jobplane_store.results import SessionResultsStore  # it has SQLAlchemy's sessions already

            store = SessionResultsStore(store)
        self._store = store
        self._id = job_result_id
        self._max_file_size = max_file_size

    def started(self) -> None:
        self._store.mark_started(self._id, datetime.now(UTC))

    def log(self, entry: LogEntry) -> None:
        self._store.add_log_entry(self._id, entry)

    def create_file(self, name: str, content: bytes) -> str:
        if len(content) > self._max_file_size:
            raise ValueError(
                f"File {name!r} is {len(content)} bytes, above the limit of {self._max_file_size} bytes "
                "(JOBPLANE_CREATE_FILE_MAX_SIZE)"
            )
        return str(self._store.add_file(self._id, name, content))

    def open_input_file(self, file_id: str) -> IO[bytes]:
        stored = self._store.read_file(uuid.UUID(file_id))
        if stored is None:
            raise VariableError(f"No uploaded file with id {file_id}")
        handle = io.BytesIO(stored[1])
        handle.name = stored[0]
        return handle

    def discard_input_files(self, file_ids: list[str]) -> None:
        self._store.delete_files([uuid.UUID(f) for f in file_ids])

    def finished(self, status: str, result: Any, traceback: str | None) -> None:
        self._store.finish_job_result(
            self._id, RunEnd(JobStatus(status), datetime.now(UTC), result, traceback)
        )


def store_input_file(store: ResultsStore, name: str, content: bytes) -> str:
    """Keep an uploaded FileVar input until its run ends; returns the id to put in the job data."""
    return str(store.add_file(None, name, content))


class DataSessions:
    """Sessions on the job-data database, its engine made on first use and disposed by :meth:`dispose`.

    Most runs never touch it (no ObjectVar, no ``self.db``): they do not import SQLAlchemy (measured
    start-up cost).
    """

    def __init__(self, settings: RunSettings) -> None:
        self._settings = settings
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    def __call__(self) -> Session:
        if self._sessions is None:
            # Local: only a job that uses self.db pays for SQLAlchemy (a plain local run uses sqlite3).
            from jobplane_store.database import create_store_engine, make_sessionmaker

            self._engine = create_store_engine(self._settings.effective_data_database_url)
            self._sessions = make_sessionmaker(self._engine)
        return self._sessions()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


class _ResolveOnly:
    """A ResolveContext that checks ObjectVar inputs against the data database before a run is created."""

    def __init__(self, session: Session) -> None:
        self.db = session

    def open_input_file(self, file_id: str) -> Any:  # pragma: no cover - FileVars are not resolved early
        raise NotImplementedError


def validate_for_run(
    job_class: type[Job], data: Any, data_sessions: Callable[[], Session] | None
) -> dict[str, Any]:
    """Schema validation, then ObjectVar look-ups; JobDataError with every problem, field by field."""
    cleaned = validate_data(job_class.json_schema(), data)
    object_vars = [v for v in job_class.variables() if isinstance(v, ObjectVar) and cleaned.get(v.name)]
    if object_vars and data_sessions is not None:
        errors: dict[str, list[str]] = {}
        with data_sessions() as session:
            for var in object_vars:
                try:
                    var.resolve(cleaned[var.name], _ResolveOnly(session))
                except VariableError as exc:
                    errors[var.name] = [str(exc)]
                except Exception as exc:  # e.g. the model's table does not exist yet
                    errors[var.name] = [
                        f"Could not look up {var.model.__name__}: {type(exc).__name__}: {exc}"
                    ]
        if errors:
            raise JobDataError(errors)
    return cleaned


def job_permission_fields(job_class: type[Job]) -> dict[str, Any]:
    """The fields of a job that permission constraints on ``extras.job`` may name, for a local run.

    The same fields the API matches (its job record), read from the code. A local run has no job record,
    so ``id`` and ``enabled`` are absent: a constraint naming them matches nothing here.
    """
    properties = job_class.properties()
    return {
        "name": properties.name,
        "grouping": properties.grouping,
        "module_name": job_class.__module__,
        "job_class_name": job_class.__name__,
        "class_path": job_class.class_path(),
        "installed": True,
        "hidden": properties.hidden,
        "description": properties.description,
    }


def _child(
    job_class: type[Job],
    data: dict[str, Any],
    job_result_id: uuid.UUID,
    settings: RunSettings,
    limits: TimeLimits,
    user: str | None,
    echo: bool,
) -> None:
    store = open_results_store(settings.database_url)
    data_sessions = DataSessions(settings)
    reporter = LocalStoreReporter(store, job_result_id, settings.create_file_max_size)
    try:
        execute_job(
            job_class,
            data,
            reporter=reporter,
            job_result_id=str(job_result_id),
            limits=limits,
            user=user,
            data_session_factory=data_sessions,
            echo=_print_entry if echo else None,
        )
    finally:
        store.close()
        data_sessions.dispose()
    sys.stdout.flush()


def _print_entry(entry: LogEntry) -> None:
    print(entry.format_line(), flush=True)


def _finalize_if_unfinished(
    store: ResultsStore, job_result_id: uuid.UUID, why: str, status: JobStatus
) -> None:
    """End a run whose process could not (killed, crashed): log the reason and mark it terminal."""
    level = "failure" if status == JobStatus.FAILURE else "warning"
    store.finish_if_unfinished(
        job_result_id,
        LogEntry(level=level, message=why, grouping="initialization"),
        RunEnd(status, datetime.now(UTC), {"exc_type": "JobProcessEnded", "exc_message": why}),
    )


def run_local(
    job_class: type[Job],
    data: Any,
    *,
    settings: RunSettings,
    user: str | None,
    file_inputs: dict[str, tuple[str, bytes]] | None = None,
    echo: bool = True,
    out: TextIO | None = None,
) -> ResultSummary:
    """Validate, create the JobResult, run the job in a child process and enforce its limits.

    Raises JobDataError (and creates nothing) when the data does not fit the job.
    """
    store = open_results_store(settings.database_url)
    data_sessions = DataSessions(settings)
    try:
        return _run(
            job_class, data, store, data_sessions, settings, user, file_inputs or {}, echo, out or sys.stdout
        )
    finally:
        # Closing the last connection is what checkpoints SQLite's WAL back into the database file.
        store.close()
        data_sessions.dispose()


def _run(
    job_class: type[Job],
    data: Any,
    store: ResultsStore,
    data_sessions: DataSessions,
    settings: RunSettings,
    user: str | None,
    file_inputs: dict[str, tuple[str, bytes]],
    echo: bool,
    out: TextIO,
) -> ResultSummary:
    store.ensure_schema()
    data = dict(data) if isinstance(data, dict) else data
    cleaned = validate_for_run(job_class, data, data_sessions)
    for var_name, (file_name, content) in file_inputs.items():
        cleaned[var_name] = store_input_file(store, file_name, content)

    properties = job_class.properties()
    limits = properties.time_limits(settings)
    job_result_id = store.create_job_result(
        NewJobResult(
            name=properties.name,
            job_class_path=job_class.class_path(),
            user=user,
            task_kwargs=None if properties.has_sensitive_variables else cleaned,
            queue=properties.task_queues[0],
            soft_time_limit=limits.soft,
            time_limit=limits.hard,
        )
    )
    print(f"Running {job_class.class_path()} as job result {job_result_id}", file=out, flush=True)

    # No open connection may cross the fork.
    store.close()
    data_sessions.dispose()
    interrupted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    try:
        process = _ForkedProcess(
            lambda: _child(job_class, cleaned, job_result_id, settings, limits, user, echo)
        )
        why, status = _supervise(process, limits, interrupted)
    finally:
        signal.signal(signal.SIGINT, previous)
    if why is None and process.exitcode != 0:
        why = _describe_exit(process.exitcode)
        status = JobStatus.FAILURE
    if why is not None:
        _finalize_if_unfinished(store, job_result_id, why, status)
    # A child that exited 0 must have ended the run; if not, nothing may stay PENDING or STARTED.
    _finalize_if_unfinished(
        store, job_result_id, "The job process ended without reporting a result", JobStatus.FAILURE
    )
    final = store.summary(job_result_id)
    if final is None:
        raise RuntimeError(f"job result {job_result_id} disappeared from the results store during the run")
    return final


class _ForkedProcess:
    """The job's process: forked (it inherits the imported job class), in a process group of its own."""

    POLL_SECONDS = 0.01

    def __init__(self, target: Callable[[], None]) -> None:
        self.exitcode: int | None = None
        self.pid = os.fork()
        if self.pid != 0:
            # Both sides set the group, so it exists whichever runs first; a kill takes the job's children.
            with contextlib.suppress(OSError):
                os.setpgid(self.pid, self.pid)
        else:  # pragma: no cover - the child's side is observed through the store
            code = 1
            try:
                os.setpgid(0, 0)
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # The parent decides what an interrupt means.
                target()
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)

    def wait(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds (None: for ever) for the process to end; True if it has."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.exitcode is None:
            pid, status = os.waitpid(self.pid, 0 if deadline is None else os.WNOHANG)
            if pid:
                self.exitcode = os.waitstatus_to_exitcode(status)
                break
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(self.POLL_SECONDS)
        return True

    def kill_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


def _supervise(
    process: _ForkedProcess, limits: TimeLimits, interrupted: list[int]
) -> tuple[str | None, JobStatus]:
    """Wait for the job process; kill it at the hard limit or on Ctrl-C. Returns why it was ended."""
    deadline = time.monotonic() + limits.hard
    while not process.wait(timeout=min(0.1, max(0.0, deadline - time.monotonic()))):
        if interrupted:
            process.kill_group(signal.SIGTERM)
            if not process.wait(timeout=INTERRUPT_GRACE_SECONDS):
                process.kill_group(signal.SIGKILL)
                process.wait(timeout=None)
            return "Cancelled: interrupted by the user", JobStatus.REVOKED
        if time.monotonic() >= deadline:
            process.kill_group(signal.SIGKILL)
            process.wait(timeout=None)
            return (
                f"Hard time limit of {limits.hard:g} s exceeded: the job process was killed",
                JobStatus.FAILURE,
            )
    return None, JobStatus.FAILURE


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        return f"The job process was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    return f"The job process exited with code {exitcode}"


def format_summary(summary: ResultSummary) -> str:
    """Nautobot's runjob summary: counts per level, status, result, duration."""
    counts = ", ".join(
        f"{level}: {count}" for level in LOG_LEVELS if (count := summary.log_counts.get(level))
    )
    lines = [
        f"Logs: {counts or 'none'}",
        f"Status: {summary.status}",
        f"Result: {json.dumps(summary.result, default=str)}",
    ]
    if summary.traceback:
        lines.append(f"Traceback:\n{summary.traceback.rstrip()}")
    duration = summary.duration
    lines.append(f"Duration: {duration:.3f} s" if duration is not None else "Duration: unknown")
    return "\n".join(lines)
