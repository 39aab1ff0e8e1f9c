"""The entry point of a job pod (``jobplane run-pod``): load the job, run it, report its outcome."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import threading
import traceback as tb
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, Protocol, TextIO

from jobplane.discovery import find_job
from jobplane.job import TimeLimits
from jobplane.joblog import LogEntry
from jobplane.schema import JobDataError
from jobplane.settings import Settings
from jobplane.variables import ObjectVar, VariableError
from jobplane_crds.envcontract import ContractError
from jobplane_crds.podcontract import DATA_DATABASE_UNAVAILABLE, PodContract
from jobplane_runtime.gitsource import GitSourceError, discover_repository, prepare_repository_job
from jobplane_runtime.runner import RunReporter, execute_job

if TYPE_CHECKING:
    from jobplane.job import Job

__all__ = [
    "DEFAULT_TERMINATION_MESSAGE_PATH",
    "EXIT_BAD_INPUT",
    "EXIT_FAILURE",
    "EXIT_OK",
    "TERMINATION_MESSAGE_LIMIT",
    "PodInputError",
    "PodReporter",
    "PodRun",
    "StdoutReporter",
    "build_summary",
    "data_database_url",
    "load_data",
    "make_reporter",
    "read_contract",
    "read_pod_run",
    "run_pod",
    "scrub",
    "termination_message_path",
]

# The same codes as the rest of the CLI (jobplane.cli imports this module lazily, so they are restated).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
# What a process killed by SIGTERM reports, so the operator sees the same code with or without our handler.
EXIT_TERMINATED = 128 + signal.SIGTERM

DEFAULT_TERMINATION_MESSAGE_PATH = Path("/dev/termination-log")
# The kubelet keeps at most 4096 bytes of a container's termination message and cuts the rest.
TERMINATION_MESSAGE_LIMIT = 4096
# How long a SIGTERM'd pod spends sending its last log entries to the API before it exits.
TERMINATE_FLUSH_SECONDS = 3.0
RESULT_EXCERPT_MAX = 2048
ERROR_EXCERPT_MAX = 1024
TRUNCATED = "...[truncated]"
HIDDEN = "<hidden>"

FAILURE_LEVELS = frozenset({"failure", "error", "critical"})


class PodInputError(ValueError):
    """The pod was started with inputs run-pod cannot use: nothing ran. ``kind`` names the problem."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


# Where an operator that was given no data database is told to get one (its setting, the chart's values).
DATA_DATABASE_HINT = "the operator's JOBPLANE_OPERATOR_DATA_DATABASE_SECRET (the chart's dataDatabase values)"


@dataclass(frozen=True)
class PodRun:
    """What the pod was asked to run, read from its arguments and environment."""

    class_path: str
    run_name: str | None
    run_uid: str
    user: str | None
    data: Any
    data_from_file: bool
    soft_time_limit: float | None
    dryrun: bool
    termination_message_path: Path | None


# --- reading the pod's inputs ------------------------------------------------------------------


def read_contract(env: Mapping[str, str]) -> PodContract:
    """The pod contract the operator wrote into ``env``; PodInputError("InvalidInput") naming every variable
    that does not fit, never its value."""
    try:
        return PodContract.read(env)
    except ContractError as exc:
        raise PodInputError(exc.reason, str(exc)) from None


def load_data(contract: PodContract) -> tuple[Any, bool]:
    """The job data and whether it came from a file: the file, else the inline value, else ``{}``.

    Setting both is refused by the contract: which one the operator meant would be a guess. Errors never
    quote the data, which may be sensitive.
    """
    path = contract.run_data_file
    if path is None:
        return contract.inline_data(), False
    variable = PodContract.env_name("run_data_file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise PodInputError("InvalidInput", f"cannot read {variable} {path}: {reason}") from exc
    try:
        return json.loads(text), True
    except json.JSONDecodeError as exc:
        # exc.msg and the position, never str(exc.doc): the document is the data itself.
        where = f"line {exc.lineno}, column {exc.colno}"
        raise PodInputError(
            "InvalidInput", f"the file {path} ({variable}) is not valid JSON: {exc.msg} ({where})"
        ) from None


def termination_message_path(env: Mapping[str, str] | PodContract) -> Path | None:
    """Where the summary goes: the contract's override (empty: nowhere), else Kubernetes' file if it exists.

    From the environment it is read on its own: a pod whose contract is broken still leaves a summary.
    """
    if isinstance(env, PodContract):
        override = env.termination_message_path
    else:
        override = env.get(PodContract.env_name("termination_message_path"))
    if override is not None:
        return Path(override) if override else None
    # Kubernetes mounts this file into every container; elsewhere (a laptop, as root) never create it.
    return DEFAULT_TERMINATION_MESSAGE_PATH if DEFAULT_TERMINATION_MESSAGE_PATH.exists() else None


def read_pod_run(class_path: str | None, contract: PodContract) -> PodRun:
    """Everything run-pod needs from its argument and the pod contract; PodInputError if something is
    wrong."""
    path = class_path or contract.run_class_path
    if not path:
        variable = PodContract.env_name("run_class_path")
        raise PodInputError("InvalidInput", f"no job class path: give it as an argument or in {variable}")
    data, from_file = load_data(contract)
    return PodRun(
        class_path=path,
        run_name=contract.run_name,
        # A run started by hand has no JobRun: a fresh id keeps job_result_id unique all the same.
        run_uid=contract.run_uid or str(uuid.uuid4()),
        user=contract.run_user,
        data=data,
        data_from_file=from_file,
        soft_time_limit=contract.run_soft_time_limit,
        dryrun=bool(contract.run_dryrun),
        termination_message_path=termination_message_path(contract),
    )


def data_database_url(contract: PodContract, settings: Settings) -> str | None:
    """The job-data database's URL: from the file the operator mounts (the pod contract), else
    JOBPLANE_DATA_DATABASE_URL (a pod started by hand), else None. Never quoted in an error."""
    try:
        mounted = contract.data_database_url()
    except ContractError as exc:
        raise PodInputError(exc.reason, str(exc)) from None
    if mounted and settings.data_database_url:
        variable = PodContract.env_name("data_database_url_file")
        raise PodInputError("InvalidInput", f"set only one of {variable} and JOBPLANE_DATA_DATABASE_URL")
    return mounted or settings.data_database_url


def _data_engine(url: str) -> Any:
    # SQLAlchemy is imported only by pods that have a data database.
    from sqlalchemy.exc import SQLAlchemyError

    from jobplane_store.database import create_store_engine

    try:
        return create_store_engine(url)
    except (SQLAlchemyError, ValueError) as exc:
        # Their messages quote the URL, password and all: only the kind of problem is told.
        raise PodInputError(
            DATA_DATABASE_UNAVAILABLE,
            f"the data database's URL is not one SQLAlchemy can use ({type(exc).__name__})",
        ) from None


def _password_of(url: str | None) -> str | None:
    if not url:
        return None
    # SQLAlchemy is imported only by pods that have a data database.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        return None


# --- the termination message ---------------------------------------------------------------------


def _excerpt(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    if limit <= len(TRUNCATED):
        return text[:limit]
    return text[: limit - len(TRUNCATED)] + TRUNCATED


def build_summary(
    status: str,
    result: Any,
    error: str | None,
    *,
    reason: str | None = None,
    limit: int = TERMINATION_MESSAGE_LIMIT,
) -> str:
    """The termination message: ``{"status", "result" (a JSON excerpt), "error"}`` in at most ``limit`` bytes,
    and ``"reason"`` (PascalCase) when the pod knows better why its run failed than its exit code says.

    Everything is ASCII (non-ASCII is escaped), so characters and bytes count the same.
    """
    result_text = None if result is None else json.dumps(result, default=str)
    result_budget, error_budget = RESULT_EXCERPT_MAX, ERROR_EXCERPT_MAX
    extra = {"reason": reason} if reason else {}
    while True:
        text = json.dumps(
            {
                "status": status,
                "result": _excerpt(result_text, result_budget),
                "error": _excerpt(error, error_budget),
                **extra,
            }
        )
        excess = len(text) - limit
        if excess <= 0:
            return text
        # Escaping makes quotes and control characters longer than one byte, so shrink and measure
        # again; every round lowers a budget, so this ends (at worst with both excerpts empty).
        if result_budget > 0:
            result_budget = max(0, result_budget - excess)
        elif error_budget > 0:
            error_budget = max(0, error_budget - excess)
        else:  # pragma: no cover - a status alone never fills 4 KiB
            return text[:limit]


def write_termination_message(path: Path | None, message: str, err: TextIO) -> None:
    if path is None:
        return
    try:
        path.write_text(message, encoding="ascii")
    except OSError as exc:
        # The outcome is still in the exit code and on stdout; a missing message must not fail the run.
        print(f"jobplane: cannot write the termination message to {path}: {exc.strerror}", file=err)


def scrub(text: str, data: Any) -> str:
    """``text`` with the values found in ``data`` replaced by <hidden>: for jobs with sensitive variables."""
    values: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                collect(item)
        elif isinstance(value, list | tuple):
            for item in value:
                collect(item)
        elif value is not None and not isinstance(value, bool):
            for form in (repr(value), json.dumps(value), str(value)):
                # Very short values (a digit, "a") would also hit ordinary words of the message.
                if len(form) >= 3:
                    values.append(form)

    collect(data)
    for value in sorted(set(values), key=len, reverse=True):
        text = text.replace(value, HIDDEN)
    return text


# --- the reporter --------------------------------------------------------------------------------


@contextlib.contextmanager
def _no_soft_limit_interrupts() -> Iterator[None]:
    # A soft time limit firing in the middle of a write would leave half a JSON line on stdout.
    blocked = threading.current_thread() is threading.main_thread()
    if blocked:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    try:
        yield
    finally:
        if blocked:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})


class PodReporter(RunReporter, Protocol):
    """What run-pod needs of a reporter: the runner's RunReporter, plus raw events and flushing."""

    @property
    def last_failure(self) -> str | None:
        """The message of the last failure-or-worse log entry: why a run that raised nothing failed."""

    def emit(self, event: Mapping[str, Any]) -> None: ...

    def flush(self, timeout: float) -> None:
        """Best effort: send what is still buffered within ``timeout`` seconds."""

    def close(self) -> None: ...


class StdoutReporter:
    """Reports a run as JSON lines on stdout, one event per line, for ``kubectl logs`` and log shippers.

    Used alone when the pod has no API to report to (created files then stay in memory); the API
    reporter (:mod:`jobplane_runtime.reporting`) writes the same lines and tells the API too.
    """

    def __init__(self, out: TextIO, *, max_file_size: int, run: Mapping[str, Any] | None = None) -> None:
        self._out = out
        self._max_file_size = max_file_size
        self._run = dict(run or {})
        # Reentrant: the SIGTERM handler writes its line even when the signal came in mid-write.
        self._lock = threading.RLock()
        self.files: dict[str, tuple[str, bytes]] = {}
        self.last_failure: str | None = None

    def emit(self, event: Mapping[str, Any]) -> None:
        line = json.dumps(event, default=str)
        with _no_soft_limit_interrupts(), self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def started(self) -> None:
        self.emit({"type": "started", **self._run})

    def log(self, entry: LogEntry) -> None:
        if entry.level in FAILURE_LEVELS:
            self.last_failure = entry.message
        self.emit({"type": "log", **entry.as_report()})

    def create_file(self, name: str, content: bytes) -> str:
        if len(content) > self._max_file_size:
            raise ValueError(
                f"File {name!r} is {len(content)} bytes, above the limit of {self._max_file_size} bytes "
                "(JOBPLANE_CREATE_FILE_MAX_SIZE)"
            )
        file_id = str(uuid.uuid4())
        self.files[file_id] = (name, content)
        self.emit({"type": "file", "id": file_id, "name": name, "size": len(content)})
        return file_id

    def open_input_file(self, file_id: str) -> IO[bytes]:
        raise VariableError(
            f"No uploaded file with id {file_id}: file inputs need the API "
            f"({PodContract.env_name('api_url')} is not set)"
        )

    def discard_input_files(self, file_ids: list[str]) -> None:
        """Nothing to discard: a pod holds no uploaded files."""

    def finished(self, status: str, result: Any, traceback: str | None) -> None:
        self.emit({"type": "result", "status": status, "result": result, "traceback": traceback})

    def flush(self, timeout: float) -> None:
        """Nothing is buffered: every line is flushed as it is written."""

    def close(self) -> None:
        """Nothing to release."""


def make_reporter(
    run: PodRun,
    contract: PodContract,
    *,
    out: TextIO,
    err: TextIO,
    max_file_size: int,
) -> PodReporter:
    """The API reporter when the operator gave the pod an API URL and a token file, else stdout alone.

    A token file that cannot be read is said on stderr and the run reports on stdout only: reporting
    never stops a job from running.
    """
    identity = {"job": run.class_path, "run": run.run_name, "run_uid": run.run_uid}
    api_url, token_file = contract.api_url, contract.run_token_file
    if not (api_url and token_file):
        return StdoutReporter(out, max_file_size=max_file_size, run=identity)
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        variable = PodContract.env_name("run_token_file")
        print(
            f"jobplane: cannot read the run token {token_file} ({variable}): {reason}; "
            "this run is reported on stdout only",
            file=err,
        )
        return StdoutReporter(out, max_file_size=max_file_size, run=identity)
    from jobplane_runtime.reporting import ApiReporter  # brings httpx; only for pods that report to the API

    return ApiReporter(
        out,
        api_url=api_url,
        token=token,
        run_uid=run.run_uid,
        max_file_size=max_file_size,
        run=identity,
        # Who and what ran, never the inputs (they may be sensitive). The queue and the commit too: the
        # report may come before the run's first status, which also records them.
        started_body={
            "class_path": run.class_path,
            "run_name": run.run_name,
            "namespace": contract.run_namespace,
            "user": run.user,
            "queue": contract.run_queue,
            "commit": contract.repo_commit,
        },
        err=err,
    )


# --- the run -------------------------------------------------------------------------------------


def _error_of(status: str, result: Any, traceback: str | None, reporter: PodReporter) -> str | None:
    if status == "SUCCESS":
        return None
    if traceback is not None and isinstance(result, dict) and "exc_type" in result:
        return f"{result['exc_type']}: {result.get('exc_message', '')}"
    # fail() or a failing hook: no exception reached the runner, the last failure line says why.
    return f"JobFailed: {reporter.last_failure or 'the job failed'}"


def _refuse(
    exc: PodInputError | JobDataError, path: Path | None, err: TextIO, data: Any, hidden: str | None = None
) -> int:
    """Nothing ran: say why on stderr and in the termination message; values of ``data`` are hidden, and
    ``hidden`` (the data database's password) too."""
    sensitive = data is not None
    reason = None
    if isinstance(exc, JobDataError):
        errors = exc.as_response()
        text = json.dumps(errors, indent=2)
        summary = f"JobDataError: {exc}"
        if sensitive:
            text, summary = scrub(text, data), scrub(summary, data)
    else:
        summary = f"{exc.kind}: {exc}"
        text = f"jobplane: {exc}"
        # A reason of the operator's own vocabulary, for what is not the run's inputs' fault.
        reason = exc.kind if exc.kind == DATA_DATABASE_UNAVAILABLE else None
    if hidden:
        text, summary = text.replace(hidden, HIDDEN), summary.replace(hidden, HIDDEN)
    print(text, file=err)
    write_termination_message(path, build_summary("FAILURE", None, summary, reason=reason), err)
    return EXIT_BAD_INPUT


def _repository_errors(checkout: Path) -> dict[str, str]:
    """Why a repository's job could not be found: its modules' import errors, named by repository file."""
    try:
        return discover_repository(checkout, checkout.name).errors
    except GitSourceError as exc:
        return {checkout.name: f"{exc.reason}: {exc.message}"}


def _prepare(job_class: type[Job], run: PodRun, data_sessions: Callable[[], Any] | None) -> dict[str, Any]:
    """The validated data: dry-run applied, sensitive data only from a file, the schema checked."""
    properties = job_class.properties()
    data = run.data
    if properties.has_sensitive_variables and not run.data_from_file and data not in ({}, None):
        # The value already sat in the pod's env; refusing makes that visible rather than quietly running.
        raise PodInputError(
            "SensitiveDataInEnv",
            f"{run.class_path} has sensitive variables: its data must come from a file "
            f"({PodContract.env_name('run_data_file')}), never from {PodContract.env_name('run_data')}",
        )
    if run.dryrun:
        if not job_class.supports_dryrun():
            raise PodInputError("DryRunNotSupported", f"{run.class_path} does not support dry-run")
        if isinstance(data, dict):
            data = {**data, "dryrun": True}
    if data_sessions is not None:
        from jobplane_runtime.local import validate_for_run  # brings SQLAlchemy; only with a data database

        # The same validation as --local: the schema, then every ObjectVar looked up.
        return validate_for_run(job_class, data, data_sessions)
    from jobplane.schema import validate_data

    cleaned = validate_data(job_class.json_schema(), data)
    lookups = [v.name for v in job_class.variables() if isinstance(v, ObjectVar) and cleaned.get(v.name)]
    if lookups:
        # Said before the run starts, rather than as an error in the middle of it.
        raise PodInputError(
            DATA_DATABASE_UNAVAILABLE,
            f"{run.class_path} looks {', '.join(lookups)} up in the data database and this pod has none: "
            f"see {DATA_DATABASE_HINT}",
        )
    return cleaned


@contextlib.contextmanager
def _terminate_with_message(path: Path | None, reporter: PodReporter, err: TextIO) -> Iterator[None]:
    """On SIGTERM (cancel, deadline, eviction) leave a summary and exit at once.

    As PID 1 of its container, Python would otherwise ignore SIGTERM (the kernel drops signals PID 1
    has no handler for) and the pod would sit out its whole grace period until SIGKILL.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _terminated(signum: int, frame: FrameType | None) -> None:
        reporter.emit({"type": "terminated", "signal": "SIGTERM"})
        message = "Terminated: the pod received SIGTERM (cancelled, deadline exceeded or evicted)"
        write_termination_message(path, build_summary("FAILURE", None, message), err)
        err.flush()
        # The summary is safe first; then the log entries still buffered for the API, briefly.
        with contextlib.suppress(Exception):
            reporter.flush(TERMINATE_FLUSH_SECONDS)
        os._exit(EXIT_TERMINATED)

    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_pod(
    class_path: str | None,
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run one job as a pod's main process; returns the exit code (0 SUCCESS, 1 FAILURE, 2 nothing ran).

    Never opens the results store: the outcome goes to stdout and the termination message, and to the
    API when the operator gave the pod one (``JOBPLANE_API_URL`` and ``JOBPLANE_RUN_TOKEN_FILE``).
    """
    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        contract = read_contract(env)
        run = read_pod_run(class_path, contract)
    except PodInputError as exc:
        return _refuse(exc, termination_message_path(env), err, None)

    checkout = None
    if contract.repo_url:
        # A job from a Git repository: its commit is checked out before the class can be imported.
        try:
            checkout = prepare_repository_job(
                contract, settings.git_workdir, timeout=settings.git_timeout, max_bytes=settings.git_max_bytes
            )
        except GitSourceError as exc:
            failed = PodInputError("RepositoryFetchFailed", exc.message)
            return _refuse(failed, run.termination_message_path, err, None)

    job_class, discovery = find_job(run.class_path, settings)
    if job_class is None:
        errors = dict(discovery.errors) if discovery else {}
        if checkout is not None:
            errors.update(_repository_errors(checkout))
        problems = "".join(f"; module {module} failed to import: {error}" for module, error in errors.items())
        missing = PodInputError("JobNotFound", f"no job with class path {run.class_path!r}{problems}")
        return _refuse(missing, run.termination_message_path, err, None)
    sensitive_data = run.data if job_class.properties().has_sensitive_variables else None

    data_engine = None
    data_sessions = None
    password = None
    try:
        url = data_database_url(contract, settings)
        password = _password_of(url)
        if url:
            from jobplane_store.database import make_sessionmaker  # brings SQLAlchemy, as above

            data_engine = _data_engine(url)
            data_sessions = make_sessionmaker(data_engine)
    except PodInputError as exc:
        return _refuse(exc, run.termination_message_path, err, None, hidden=password)
    try:
        try:
            data = _prepare(job_class, run, data_sessions)
        except (PodInputError, JobDataError) as exc:
            return _refuse(exc, run.termination_message_path, err, sensitive_data, hidden=password)

        soft = run.soft_time_limit or job_class.properties().time_limits(settings).soft
        # The hard limit is Kubernetes' activeDeadlineSeconds: nothing in here may kill the run for it.
        limits = TimeLimits(soft=soft, hard=math.inf)
        reporter = make_reporter(run, contract, out=out, err=err, max_file_size=settings.create_file_max_size)
        with (
            _terminate_with_message(run.termination_message_path, reporter, err),
            contextlib.closing(reporter),
        ):
            try:
                outcome = execute_job(
                    job_class,
                    data,
                    reporter=reporter,
                    job_result_id=run.run_uid,
                    limits=limits,
                    user=run.user,
                    data_session_factory=data_sessions,
                )
            except Exception as exc:
                # The runner itself broke (not the job, whose errors it catches): still leave a summary.
                tb.print_exc(file=err)
                broken = f"{type(exc).__name__}: {exc}"
                write_termination_message(
                    run.termination_message_path, build_summary("FAILURE", None, broken), err
                )
                reporter.flush(TERMINATE_FLUSH_SECONDS)
                return EXIT_FAILURE
    finally:
        if data_engine is not None:
            data_engine.dispose()
    error = _error_of(outcome.status, outcome.result, outcome.traceback, reporter)
    write_termination_message(
        run.termination_message_path, build_summary(outcome.status, outcome.result, error), err
    )
    return EXIT_OK if outcome.status == "SUCCESS" else EXIT_FAILURE
