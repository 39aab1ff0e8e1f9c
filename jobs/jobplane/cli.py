"""The ``jobplane`` command line: runjob (as ``nautobot-server runjob``), jobs, db."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from jobplane.settings import Settings, get_settings

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_OK", "EXIT_UNAVAILABLE", "main", "run"]

EXIT_OK = 0
EXIT_FAILURE = 1  # the job ran and failed (or was cancelled)
EXIT_BAD_INPUT = 2  # nothing ran: unknown job, bad data, bad arguments
EXIT_UNAVAILABLE = 3  # the requested mode is not available here


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobplane", description="Nautobot-style Python Jobs on Kubernetes.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    runjob = commands.add_parser("runjob", help="run a job and wait for its result")
    runjob.add_argument("class_path", help="the job's class path, <module>.<ClassName>")
    runjob.add_argument("-u", "--username", help="who the run is for (default: the current OS user)")
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

    sync = commands.add_parser("sync-jobs", help="create or refresh one JobDefinition per discovered job")
    sync.add_argument(
        "-n", "--namespace", help="namespace of the JobDefinitions (default: JOBPLANE_NAMESPACE)"
    )

    run_pod = commands.add_parser(
        "run-pod",
        help="run one job as a Kubernetes pod's main process (inputs from JOBPLANE_RUN_* variables)",
    )
    run_pod.add_argument(
        "class_path", nargs="?", help="the job's class path (default: JOBPLANE_RUN_CLASS_PATH)"
    )

    db = commands.add_parser("db", help="manage the results store")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply the schema migrations")
    db_commands.add_parser("revision", help="print the schema revision of the database")
    return parser


def _error(message: str) -> None:
    print(f"jobplane: {message}", file=sys.stderr)


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


def _runjob(args: argparse.Namespace, settings: Settings) -> int:
    from jobplane.discovery import find_job
    from jobplane.schema import JobDataError

    if not args.local:
        _error("submitting runs to a cluster is not available yet; run the job on this machine with --local")
        return EXIT_UNAVAILABLE
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

    from jobplane.local import format_summary, run_local

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
    print(format_summary(job_result))
    return EXIT_OK if job_result.status == "SUCCESS" else EXIT_FAILURE


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
    return EXIT_FAILURE if discovery.errors else EXIT_OK


def _operator(args: argparse.Namespace, settings: Settings) -> int:
    from jobplane_operator.main import run_operator

    return run_operator(settings)


def _sync_jobs(args: argparse.Namespace, settings: Settings) -> int:
    from jobplane_operator.sync_jobs import sync_jobs

    report = sync_jobs(settings, args.namespace or settings.namespace)
    for module, error in sorted(report.import_errors.items()):
        _error(f"module {module} failed to import (its job definitions are left as they were): {error}")
    print(f"JobDefinitions: {report.summary()}")
    return EXIT_OK


def _run_pod(args: argparse.Namespace, settings: Settings) -> int:
    from jobplane.pod import run_pod

    return run_pod(args.class_path, settings)


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from jobplane.store.database import create_store_engine, current_revision, upgrade

    engine = create_store_engine(settings.database_url)
    try:
        if args.db_command == "upgrade":
            upgrade(engine)
        print(current_revision(engine) or "(empty)")
    finally:
        engine.dispose()
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        # Name the variable and the problem, never the value: URLs carry passwords.
        for error in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(part) for part in error["loc"])
            where = f"JOBPLANE_{field.upper()}: " if field else ""
            _error(f"invalid setting: {where}{error['msg']}")
        return EXIT_BAD_INPUT
    handlers = {
        "runjob": _runjob,
        "jobs": _jobs,
        "sync-jobs": _sync_jobs,
        "operator": _operator,
        "run-pod": _run_pod,
        "db": _db,
    }
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
