"""The ``jobplane`` command line: runjob (as ``nautobot-server runjob``), jobs, db, and API identities.

The composition root: the only module that imports both servers. Each command imports what it runs inside
its own handler, for two reasons: the servers and the in-cluster parts need extras a job author's
``pip install jobplane`` does not bring (kopf, the Kubernetes client, FastAPI, httpx, GitPython; see
:data:`COMMAND_EXTRAS`), and no command should pay another's start-up cost (``runjob --local`` imports
neither server).
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from jobplane.localsettings import LocalRunSettings, RunSettings, read_local_settings
from jobplane.repocli import add_repo_commands

if TYPE_CHECKING:
    from jobplane.settings import Settings

__all__ = ["COMMAND_EXTRAS", "EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_OK", "EXIT_UNAVAILABLE", "main", "run"]

EXIT_OK = 0
EXIT_FAILURE = 1  # the job ran and failed (or was cancelled)
EXIT_BAD_INPUT = 2  # nothing ran: unknown job, bad data, bad arguments
EXIT_UNAVAILABLE = 3  # the requested mode is not available here (or its extra is not installed)

# The pyproject extra that brings what a command needs beyond the SDK's own dependencies.
COMMAND_EXTRAS = {
    "operator": "operator",
    "sync-jobs": "operator",
    "api": "api",
    "run-pod": "pod",
    "sync-repo": "pod",
    "runjob": "client",  # without --local: it submits to the API
    "repo": "client",
}
# Import names of the extras' packages, and the extra that installs each one.
OPTIONAL_PACKAGES = {
    "kopf": "operator",
    "kubernetes": "operator",
    "prometheus_client": "operator",
    "cronsim": "operator",
    "git": "pod",
    "httpx": "client",
    "fastapi": "api",
    "starlette": "api",
    "uvicorn": "api",
    "multipart": "api",
    "jinja2": "api",
    "psycopg": "postgres",
}


# The sync pod's contract, as `jobplane sync-repo --help` lists it (a unit test holds it to the model; the
# model itself is not imported to build the parser, which every command, runjob --local too, does).
SYNC_REPO_VARIABLES = (
    "JOBPLANE_REPO_URL (the repository's Git URL), JOBPLANE_REPO_COMMIT (the full 40-character commit "
    "id), JOBPLANE_REPO_SLUG (the package name its jobs import under), JOBPLANE_REPO_CREDENTIALS_DIR "
    "(optional: a folder with the files username and password, or identity and known_hosts), "
    "JOBPLANE_GIT_TIMEOUT (optional: seconds the fetch may take) and JOBPLANE_GIT_MAX_BYTES (optional: "
    "the largest checkout, in bytes)"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobplane", description="Nautobot-style Python Jobs on Kubernetes.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    runjob = commands.add_parser("runjob", help="run a job and wait for its result")
    runjob.add_argument("class_path", help="the job's class path, <module>.<ClassName>")
    runjob.add_argument(
        "-u",
        "--username",
        help="with --local: a user of the results store who may run the job; the run is theirs "
        "(default: the current OS user, unchecked)",
    )
    runjob.add_argument("-l", "--local", action="store_true", help="run here, without a cluster")
    runjob.add_argument("-d", "--data", default="{}", help="the job's inputs as a JSON object")
    runjob.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="VAR=PATH",
        help="upload a file for a FileVar (repeatable)",
    )
    runjob.add_argument("-q", "--quiet", action="store_true", help="do not stream log lines")

    jobs = commands.add_parser("jobs", help="list the jobs this installation can run")
    jobs.add_argument("--json", action="store_true", help="print JSON (with each job's variables schema)")

    commands.add_parser("operator", help="run the operator (JOBPLANE_OPERATOR_* settings)")
    commands.add_parser("api", help="serve the REST API (JOBPLANE_API_* settings)")

    sync = commands.add_parser("sync-jobs", help="create or refresh one JobDefinition per discovered job")
    sync.add_argument(
        "-n", "--namespace", help="namespace of the JobDefinitions (default: JOBPLANE_NAMESPACE)"
    )

    sync_repo = commands.add_parser(
        "sync-repo",
        help="fetch one commit of a Git repository, import its jobs, and print a JOBPLANE-SYNC-REPORT line",
        description=(
            "A sync pod's main process. What to sync is the sync pod's contract, which the operator writes "
            "into the pod's environment (jobplane_crds.gitcontract.SyncContract), and nothing else: "
            f"{SYNC_REPO_VARIABLES}. It has no flags for them, so that a sync run by hand takes exactly "
            "what a pod is given: set the same variables. A contract that does not hold is reported like "
            "any failure (reason InvalidInput), naming the variable and never its value."
        ),
    )
    sync_repo.add_argument(
        "--workdir", type=Path, help="where to check it out (default: a temporary folder, removed after)"
    )

    run_pod = commands.add_parser(
        "run-pod",
        help="run one job as a Kubernetes pod's main process (inputs from JOBPLANE_RUN_* variables)",
    )
    run_pod.add_argument(
        "class_path", nargs="?", help="the job's class path (default: JOBPLANE_RUN_CLASS_PATH)"
    )

    wait = commands.add_parser(
        "wait-for", help="wait until a TCP connection to HOST:PORT succeeds (the chart's webhook check)"
    )
    wait.add_argument("address", metavar="HOST:PORT")
    wait.add_argument("--timeout", type=float, default=120.0, help="seconds to keep trying (default 120)")

    db = commands.add_parser("db", help="manage the results store")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply the schema migrations")
    db_commands.add_parser("revision", help="print the schema revision of the database")

    retention = commands.add_parser(
        "results-retention",
        help="delete finished results (with their logs and files) past an age or a count per job",
        description=(
            "Delete the finished results older than --max-age, and those beyond the newest --keep-per-job "
            "results of each job (class path), with their log entries and files, in batches of "
            "--batch-size results, one short transaction each. Unfinished results are never deleted. "
            "The database is JOBPLANE_DATABASE_URL."
        ),
    )
    retention.add_argument("--max-age", help="delete finished results created longer ago: 90s, 12h, 30d, 4w")
    retention.add_argument(
        "--keep-per-job", type=int, metavar="N", help="keep the newest N results of each job, delete the rest"
    )
    retention.add_argument(
        "--batch-size", type=int, default=1000, metavar="N", help="results per transaction (default 1000)"
    )

    _add_identity_commands(commands)
    add_repo_commands(commands)
    return parser


def _add_identity_commands(commands: Any) -> None:
    """users, groups, tokens and permissions of the API, in its database (JOBPLANE_API_DATABASE_URL)."""

    def action(command: str, name: str, summary: str) -> argparse.ArgumentParser:
        parent = parsers.get(command)
        if parent is None:
            parent = commands.add_parser(command, help=f"manage the API's {command}")
            parsers[command] = parent.add_subparsers(dest="identity_action", required=True, metavar="ACTION")
        leaf: argparse.ArgumentParser = parsers[command].add_parser(name, help=summary)
        leaf.add_argument("--database-url", help="the API's database (default: JOBPLANE_API_DATABASE_URL)")
        return leaf

    parsers: dict[str, Any] = {}
    user = action("users", "create", "create a user of the API")
    user.add_argument("username")
    user.add_argument("--superuser", action="store_true", help="may do everything, without permissions")
    user.add_argument("--group", action="append", default=[], metavar="NAME", help="a group to join")
    user.add_argument(
        "--password-stdin",
        action="store_true",
        help="read a password from the first line of stdin (for POST /api/users/tokens/ with basic auth)",
    )

    password = action(
        "users", "set-password", "set a user's password, read from stdin (asked for at a terminal)"
    )
    password.add_argument("username")
    password.add_argument("--remove", action="store_true", help="remove the password: no password login")

    group = action("groups", "create", "create a group of users")
    group.add_argument("name")

    token = action("tokens", "create", "create an API token and print its key (shown only this once)")
    token.add_argument("username")
    expiry = token.add_mutually_exclusive_group()
    expiry.add_argument("--expires", metavar="ISO8601", help="when the token stops working (UTC if no zone)")
    expiry.add_argument("--expires-in-days", type=int, metavar="N", help="the token works for N days")
    token.add_argument("--read-only", action="store_true", help="the token can only read")
    token.add_argument("--description", default="", help="what the token is for")

    permission = action("permissions", "create", "create an object permission (Nautobot's)")
    permission.add_argument("name")
    permission.add_argument(
        "--object-types",
        required=True,
        metavar="TYPES",
        help="comma-separated, e.g. extras.job,extras.jobresult",
    )
    permission.add_argument(
        "--actions", required=True, metavar="ACTIONS", help="comma-separated, e.g. view,run"
    )
    permission.add_argument(
        "--constraints",
        metavar="JSON",
        help='an object of lookups or a list of them, e.g. {"grouping": "Demo"}',
    )
    permission.add_argument(
        "--user", action="append", default=[], metavar="USERNAME", help="give it to a user"
    )
    permission.add_argument("--group", action="append", default=[], metavar="NAME", help="give it to a group")
    permission.add_argument("--description", default="", help="what the permission is for")


def _error(message: str) -> None:
    print(f"jobplane: {message}", file=sys.stderr)


def _missing_extra(command: str, exc: ModuleNotFoundError) -> str | None:
    """The message for a command that needs a package of an extra this installation lacks (None: not so).

    A missing Postgres driver names the ``postgres`` extra whatever the command (JOBPLANE_DATABASE_URL
    chose Postgres); any other package names the command's own extra, which brings it.
    """
    package = (exc.name or "").partition(".")[0]
    if package not in OPTIONAL_PACKAGES:
        return None
    extra = "postgres" if package == "psycopg" else COMMAND_EXTRAS.get(command, OPTIONAL_PACKAGES[package])
    return (
        f"'jobplane {command}' needs the Python package {package!r}, which is not installed: "
        f"pip install 'jobplane[{extra}]' (the job SDK alone installs none of the servers' dependencies)"
    )


def _print_errors(errors: dict[str, Any]) -> None:
    print(json.dumps(errors, indent=2), file=sys.stderr)


def _read_files(specs: list[str]) -> dict[str, tuple[str, bytes]]:
    files = {}
    for spec in specs:
        var, sep, path = spec.partition("=")
        if not sep or not var or not path:
            raise ValueError(f"--file takes VAR=PATH, not {spec!r}")
        try:
            files[var] = (Path(path).name, Path(path).read_bytes())
        except OSError as exc:
            raise ValueError(f"--file {var}: cannot read {path}: {exc.strerror}") from exc
    return files


def _runjob(args: argparse.Namespace, settings: Settings | LocalRunSettings) -> int:
    from jobplane.discovery import find_job
    from jobplane.schema import JobDataError

    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as exc:
        _error(f"--data is not valid JSON: {exc}")
        return EXIT_BAD_INPUT
    try:
        file_inputs = _read_files(args.file)
    except ValueError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    if not args.local:
        if isinstance(settings, LocalRunSettings):
            raise TypeError("main() reads the settings without the model for runjob --local only")
        return _runjob_remote(args, settings, data, file_inputs)

    job_class, discovery = find_job(args.class_path, settings)
    if job_class is None:
        _error(f"no job with class path {args.class_path!r}")
        if discovery is not None:
            if discovery.jobs:
                print("Known jobs:\n  " + "\n  ".join(sorted(discovery.jobs)), file=sys.stderr)
            for module, error in discovery.errors.items():
                print(f"Module {module} failed to import: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if isinstance(data, dict):
        # File inputs are checked with the rest of the data; the placeholder becomes the stored file's id.
        overlap = set(file_inputs) & set(data)
        if overlap:
            _error(f"{', '.join(sorted(overlap))} given both in --data and as --file")
            return EXIT_BAD_INPUT
        data.update({var: "00000000-0000-0000-0000-000000000000" for var in file_inputs})

    if args.username is not None:
        refusal = _refuse_requester(args.username, job_class, settings)
        if refusal is not None:
            code, message = refusal
            _error(message)
            return code

    from jobplane_runtime.local import format_summary, run_local

    try:
        job_result = run_local(
            job_class,
            data,
            settings=settings,
            user=args.username or getpass.getuser(),
            file_inputs=file_inputs,
            echo=not args.quiet,
        )
    except JobDataError as exc:
        _print_errors(exc.as_response())
        return EXIT_BAD_INPUT
    except sqlite3.Error as exc:
        # The SQLite results store cannot be opened or written (a missing folder, no permission, a file
        # that is not a database): say which, not a traceback. The job did not run.
        _error(f"cannot use the results store {settings.database_url} (JOBPLANE_DATABASE_URL): {exc}")
        return EXIT_UNAVAILABLE
    print(format_summary(job_result))
    return EXIT_OK if job_result.status == "SUCCESS" else EXIT_FAILURE


def _refuse_requester(username: str, job_class: Any, settings: RunSettings) -> tuple[int, str] | None:
    """The exit code and why ``username`` may not run the job locally (None: they may), as the API decides.

    The user and their object permissions are read from the results store (JOBPLANE_DATABASE_URL) and
    judged by the API's own evaluator; constraints are matched against the job's fields from the code.
    """
    from sqlalchemy.exc import OperationalError

    from jobplane_api.identity import IdentityError, principal_of_user
    from jobplane_runtime.local import job_permission_fields
    from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker

    engine = create_store_engine(settings.database_url)
    try:
        ensure_schema(engine)
        with make_sessionmaker(engine)() as session:
            principal = principal_of_user(session=session, username=username)
    except IdentityError as exc:
        return EXIT_BAD_INPUT, f"{exc.message} in the results store: the run was not created"
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return EXIT_UNAVAILABLE, f"cannot read users from the results store: {reason}"
    finally:
        engine.dispose()
    if not principal.allows("run", "extras.job", job_permission_fields(job_class)):
        return EXIT_BAD_INPUT, (
            f"user {username!r} may not run {job_class.class_path()}: no enabled permission of theirs "
            "grants the run action on extras.job for this job"
        )
    return None


def _runjob_remote(
    args: argparse.Namespace, settings: Settings, data: Any, file_inputs: dict[str, tuple[str, bytes]]
) -> int:
    """Submit through the API (JOBPLANE_URL, JOBPLANE_TOKEN) and follow the run in the cluster."""
    if not settings.url or settings.token is None:
        _error(
            "runjob without --local submits to the API: set JOBPLANE_URL and JOBPLANE_TOKEN, "
            "or run the job on this machine with --local"
        )
        return EXIT_UNAVAILABLE
    if args.username:
        _error("--username is for --local runs: through the API a run belongs to the token's user")
        return EXIT_BAD_INPUT
    from jobplane.remote import RemoteError, run_remote

    try:
        return run_remote(
            url=settings.url,
            token=settings.token.get_secret_value(),
            class_path=args.class_path,
            data=data,
            files=file_inputs,
            echo=not args.quiet,
        )
    except RemoteError as exc:
        _error(str(exc))
        return EXIT_UNAVAILABLE


def _jobs(args: argparse.Namespace, settings: Settings) -> int:
    from jobplane.discovery import discover_jobs

    discovery = discover_jobs(settings)
    if args.json:
        listing = {
            "jobs": [
                {
                    "class_path": path,
                    "grouping": cls.properties().grouping,
                    "name": cls.properties().name,
                    "description": cls.properties().description,
                    "variables": cls.json_schema(),
                }
                for path, cls in sorted(discovery.jobs.items())
            ],
            "errors": discovery.errors,
            "conflicts": discovery.conflicts,
        }
        print(json.dumps(listing, indent=2, default=str))
    else:
        for path, cls in sorted(
            discovery.jobs.items(), key=lambda item: (item[1].properties().grouping, item[0])
        ):
            props = cls.properties()
            variables = ", ".join(f"{v.name}: {v.type_name}" for v in cls.variables()) or "-"
            print(f"{props.grouping} / {props.name}\n    {path}\n    variables: {variables}")
        for module, error in sorted(discovery.errors.items()):
            print(f"IMPORT ERROR {module}: {error}")
        for class_path, error in sorted(discovery.conflicts.items()):
            print(f"REGISTRATION ERROR {class_path}: {error}")
    return EXIT_FAILURE if discovery.errors or discovery.conflicts else EXIT_OK


def _operator(args: argparse.Namespace, settings: Settings) -> int:
    from jobplane_operator.main import run_operator

    return run_operator(settings)


def _api(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError as SettingsError

    from jobplane_api.main import serve
    from jobplane_api.settings import get_api_settings

    try:
        api_settings = get_api_settings()
    except SettingsError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(part) for part in error["loc"])
            _error(f"invalid setting: JOBPLANE_API_{field.upper()}: {error['msg']}")
        return EXIT_BAD_INPUT
    return serve(api_settings)


def _sync_jobs(args: argparse.Namespace, settings: Settings) -> int:
    from jobplane_operator.sync_jobs import sync_jobs

    report = sync_jobs(settings, args.namespace or settings.namespace)
    for module, error in sorted(report.import_errors.items()):
        _error(f"module {module} failed to import (its job definitions are left as they were): {error}")
    print(f"JobDefinitions: {report.summary()}")
    return EXIT_OK


def _sync_repo(args: argparse.Namespace) -> int:
    from jobplane_runtime.syncrepo import sync_repo

    return sync_repo(out=sys.stdout, workdir=args.workdir)


def _run_pod(args: argparse.Namespace, settings: Settings) -> int:
    from jobplane_runtime.pod import run_pod

    return run_pod(args.class_path, settings)


def _wait_for(args: argparse.Namespace) -> int:
    from jobplane.waitfor import parse_address, wait_for_tcp

    try:
        host, port = parse_address(args.address)
    except ValueError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    error = wait_for_tcp(host, port, args.timeout)
    if error is not None:
        _error(f"{host}:{port} did not accept a connection within {args.timeout:g} s: {error}")
        return EXIT_UNAVAILABLE
    print(f"{host}:{port} accepts connections")
    return EXIT_OK


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from jobplane_store.database import create_store_engine, current_revision, upgrade

    engine = create_store_engine(settings.database_url)
    try:
        if args.db_command == "upgrade":
            upgrade(engine)
        print(current_revision(engine) or "(empty)")
    finally:
        engine.dispose()
    return EXIT_OK


def _results_retention(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from jobplane_store.database import create_store_engine, make_sessionmaker
    from jobplane_store.retention import RetentionPolicy, apply_retention, parse_age

    try:
        max_age = parse_age(args.max_age) if args.max_age is not None else None
        policy = RetentionPolicy(max_age=max_age, keep_per_job=args.keep_per_job)
        if args.batch_size < 1:
            raise ValueError("--batch-size must be at least 1")
    except ValueError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    engine = create_store_engine(settings.database_url)
    try:
        report = apply_retention(
            make_sessionmaker(engine), policy, now=datetime.now(UTC), batch_size=args.batch_size
        )
    finally:
        engine.dispose()
    print(f"Results retention: {report.summary()}")
    return EXIT_OK


def _repo(args: argparse.Namespace, settings: Settings) -> int:
    from jobplane.repocli import run_repo_command

    return run_repo_command(args, settings)


def _identity(args: argparse.Namespace, settings: Settings) -> int:
    from jobplane_api.identity.commands import run_identity_command

    return run_identity_command(args)


def _read_settings(args: argparse.Namespace) -> Settings | LocalRunSettings | None:
    """The command's settings; None (after saying why) when the environment holds an invalid one.

    ``runjob --local`` takes them without pydantic when they are plainly valid (measured start-up cost:
    building the settings model was a third of a no-op local run); anything else is judged by the model.
    """
    if args.command == "runjob" and args.local:
        local = read_local_settings(os.environ)
        if local is not None:
            return local
    # Imported here, not at the top: a local run with plainly valid settings never needs pydantic.
    from pydantic import ValidationError

    from jobplane.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        # Name the variable and the problem, never the value: URLs carry passwords.
        for error in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(part) for part in error["loc"])
            where = f"JOBPLANE_{field.upper()}: " if field else ""
            _error(f"invalid setting: {where}{error['msg']}")
        return None


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    os._exit(128 + signum)  # the status of a process killed by the signal (pod.EXIT_TERMINATED)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("run-pod", "sync-repo") and threading.current_thread() is threading.main_thread():
        # A pod's main process is PID 1 of its container, and the kernel drops the signals PID 1 has no
        # handler for: a pod deleted before run-pod installs its own handler (after the job's code is
        # fetched and imported) would run on to the end of its grace period. Until then, SIGTERM ends it.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if args.command == "sync-repo":
            # Its settings are the sync contract, which sync_repo reads: a bad one ends in a report.
            return _sync_repo(args)
        if args.command == "wait-for":
            return _wait_for(args)
        return _run_command(args)
    except ModuleNotFoundError as exc:
        message = _missing_extra(args.command, exc)
        if message is None:
            raise
        _error(message)
        return EXIT_UNAVAILABLE


def _run_command(args: argparse.Namespace) -> int:
    """A command that reads the settings (every one but sync-repo)."""
    settings = _read_settings(args)
    if settings is None:
        return EXIT_BAD_INPUT
    handlers = {
        "jobs": _jobs,
        "sync-jobs": _sync_jobs,
        "operator": _operator,
        "api": _api,
        "run-pod": _run_pod,
        "db": _db,
        "users": _identity,
        "groups": _identity,
        "tokens": _identity,
        "permissions": _identity,
        "repo": _repo,
        "results-retention": _results_retention,
    }
    if args.command == "runjob":
        return _runjob(args, settings)
    if isinstance(settings, LocalRunSettings):
        raise TypeError(
            f"main() reads the settings without the model for runjob --local only, not {args.command}"
        )
    return handlers[args.command](args, settings)


def run() -> NoReturn:
    """The console script: main(), then exit without tearing the interpreter down.

    Everything is written and flushed by then; module teardown with SQLAlchemy loaded only adds
    about a tenth of a second to every command.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
